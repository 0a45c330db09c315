//! The Maildir channel: each message written to `tmp/`, synced, then renamed
//! into `new/`, so a reader never sees half a message.
//!
//! The file name is derived from the alert id, not from the time and a
//! counter: a message re-sent after a crash (between the write and the
//! database recording it) replaces its first copy instead of doubling it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::DeliveryError;

pub fn deliver(
    root: &Path,
    alert_id: &str,
    created: i64,
    message: &[u8],
) -> Result<PathBuf, DeliveryError> {
    let io = |what: &str, e: std::io::Error| {
        let msg = format!("Maildir {}: cannot {what}: {e}", root.display());
        match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidFilename => {
                DeliveryError::Permanent(msg)
            }
            _ => DeliveryError::Transient(msg),
        }
    };
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(root.join(sub)).map_err(|e| io("create its folders", e))?;
    }
    let name = format!("{created}.{alert_id}.veille");
    let tmp = root.join("tmp").join(&name);
    let new = root.join("new").join(&name);
    let mut file = fs::File::create(&tmp).map_err(|e| io("create a message", e))?;
    file.write_all(message)
        .map_err(|e| io("write a message", e))?;
    file.sync_all().map_err(|e| io("sync a message", e))?;
    fs::rename(&tmp, &new).map_err(|e| io("move a message into new/", e))?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_land_in_new_and_a_resend_replaces_the_first_copy() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mail");
        let first = super::deliver(&root, "abc", 10, b"one").unwrap();
        let again = super::deliver(&root, "abc", 10, b"one").unwrap();
        assert_eq!(first, again);
        assert_eq!(std::fs::read_dir(root.join("new")).unwrap().count(), 1);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        assert!(root.join("cur").is_dir());
    }
}

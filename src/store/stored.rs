//! The JSON shapes kept in the database, each written with its version:
//! `{"v": N, "data": …}`. A reader takes every version up to its own and
//! the unversioned form written before versions existed; a row from a newer
//! veille, or one that does not parse, is an error naming the shape, which
//! delivery turns into that one row marked failed.
//!
//! The bytes today's code writes are pinned by golden tests
//! (`tests/golden/`): a change that cannot read them fails there.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored shape: what it is and the version written now.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub version: u64,
}

/// `alerts.hits`: the matched terms and where they are.
pub const HITS: Shape = Shape {
    name: "alert hits",
    version: 1,
};

/// `digests.body`: the frozen message, sent again as it is on every retry.
pub const DIGEST_BODY: Shape = Shape {
    name: "digest body",
    version: 1,
};

#[derive(Serialize)]
struct Versioned<'a, T> {
    v: u64,
    data: &'a T,
}

pub fn encode<T: Serialize>(shape: Shape, data: &T) -> Result<String> {
    Ok(serde_json::to_string(&Versioned {
        v: shape.version,
        data,
    })?)
}

pub fn decode<T: DeserializeOwned>(shape: Shape, text: &str) -> Result<T> {
    let unreadable = || format!("its {} cannot be read back", shape.name);
    let mut value: serde_json::Value = serde_json::from_str(text).with_context(unreadable)?;
    let version = value.get("v").map(serde_json::Value::as_u64);
    let data = match version {
        // Written before stored shapes carried a version.
        None => value,
        Some(Some(v)) if v <= shape.version => value["data"].take(),
        Some(Some(v)) => bail!(
            "its {} is version {v}, written by a newer veille (this one reads up to {})",
            shape.name,
            shape.version
        ),
        Some(None) => bail!("{}: its version is not a number", unreadable()),
    };
    serde_json::from_value(data).with_context(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredHit;

    fn hit() -> StoredHit {
        StoredHit {
            rule: "puces".into(),
            field: "title".into(),
            term: "puces".into(),
            start: 4,
            end: 9,
        }
    }

    #[test]
    fn versioned_and_unversioned_read_back_and_newer_or_broken_is_an_error() {
        let hits = vec![hit()];
        let text = encode(HITS, &hits).unwrap();
        assert!(text.starts_with(r#"{"v":1,"data":["#), "{text}");
        assert_eq!(decode::<Vec<StoredHit>>(HITS, &text).unwrap(), hits);
        let old = serde_json::to_string(&hits).unwrap();
        assert_eq!(decode::<Vec<StoredHit>>(HITS, &old).unwrap(), hits);
        let newer = r#"{"v":2,"data":[]}"#;
        let e = decode::<Vec<StoredHit>>(HITS, newer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 2") && e.contains("newer"), "{e}");
        let e = format!(
            "{:#}",
            decode::<Vec<StoredHit>>(HITS, "{\"a\":").unwrap_err()
        );
        assert!(e.starts_with("its alert hits cannot be read back"), "{e}");
        let e = format!(
            "{:#}",
            decode::<Vec<StoredHit>>(HITS, r#"{"x":1}"#).unwrap_err()
        );
        assert!(e.contains("cannot be read back"), "{e}");
    }
}

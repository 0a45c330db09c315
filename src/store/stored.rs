//! The JSON shapes kept in the database (`alerts.rules`, `alerts.hits`,
//! `digests.body`, `health_alerts.notice`; `items.categories` stays a plain list of strings, read
//! only as such), each written with its version:
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

/// `alerts.rules`: the names of the rules an alert is for.
pub const RULES: Shape = Shape {
    name: "alert rules",
    version: 1,
};

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

/// `health_alerts.notice`: what a feed-health alert says.
pub const HEALTH_NOTICE: Shape = Shape {
    name: "health notice",
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

    pub(super) fn hit() -> StoredHit {
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

/// The bytes today's code writes, pinned: if a change makes them unreadable
/// or writes them otherwise, these fail, and the change needs a new version
/// (and a reader for the old one) instead.
#[cfg(test)]
mod golden {
    use super::*;
    use crate::domain::model::Item;
    use crate::domain::outgoing::FrozenDigest;
    use crate::domain::wire::Fingerprint;
    use crate::store::StoredHit;

    const RULES_V0: &str = include_str!("../../tests/golden/rules-v0.json");
    const RULES_V1: &str = include_str!("../../tests/golden/rules-v1.json");
    const HITS_V0: &str = include_str!("../../tests/golden/hits-v0.json");
    const HITS_V1: &str = include_str!("../../tests/golden/hits-v1.json");
    const DIGEST_V0: &str = include_str!("../../tests/golden/digest-body-v0.json");
    const DIGEST_V1: &str = include_str!("../../tests/golden/digest-body-v1.json");
    const PRINT_F002: &[u8] = include_bytes!("../../tests/golden/fingerprint-f002.bin");
    const PRINT_F003: &[u8] = include_bytes!("../../tests/golden/fingerprint-f003.bin");

    fn hits() -> Vec<StoredHit> {
        vec![
            super::tests::hit(),
            StoredHit {
                rule: "tarifs".into(),
                field: "summary".into(),
                term: "droits de douane".into(),
                start: 0,
                end: 0,
            },
        ]
    }

    /// A dispatch as feeds carry it, for the fingerprint.
    fn dispatch() -> Item {
        Item {
            title: "Droits de douane : Pékin riposte".into(),
            link: Some("https://www.example.fr/eco/1".into()),
            summary: "La Chine imposera à partir du 10 avril des droits de douane supplémentaires de 34 % sur les produits importés des États-Unis, a annoncé vendredi le ministère chinois des Finances. Pékin a également ajouté onze entreprises américaines à sa liste des entités non fiables. La décision intervient deux jours après l'annonce de Washington.".into(),
            ..Item::default()
        }
    }

    #[test]
    fn alert_hits_read_back_as_written_now_and_before_versions() {
        assert_eq!(encode(HITS, &hits()).unwrap(), HITS_V1.trim_end());
        assert_eq!(decode::<Vec<StoredHit>>(HITS, HITS_V1).unwrap(), hits());
        assert_eq!(decode::<Vec<StoredHit>>(HITS, HITS_V0).unwrap(), hits());
    }

    #[test]
    fn alert_rules_read_back_as_written_now_and_before_versions() {
        let rules = vec!["puces".to_owned(), "droits de douane".to_owned()];
        assert_eq!(encode(RULES, &rules).unwrap(), RULES_V1.trim_end());
        assert_eq!(decode::<Vec<String>>(RULES, RULES_V1).unwrap(), rules);
        assert_eq!(decode::<Vec<String>>(RULES, RULES_V0).unwrap(), rules);
    }

    #[test]
    fn a_frozen_digest_reads_back_and_is_written_byte_for_byte_the_same() {
        let v1: FrozenDigest = decode(DIGEST_BODY, DIGEST_V1).unwrap();
        assert_eq!(encode(DIGEST_BODY, &v1).unwrap(), DIGEST_V1.trim_end());
        let v0: FrozenDigest = decode(DIGEST_BODY, DIGEST_V0).unwrap();
        assert_eq!(v0, v1);
        assert!(v1.mail.subject.starts_with("[veille] matin: 2 articles"));
    }

    #[test]
    fn a_stored_fingerprint_reads_back_and_is_written_the_same() {
        let print = Fingerprint::of(&dispatch());
        assert_eq!(print.to_bytes(), PRINT_F003);
        let read = Fingerprint::from_bytes(PRINT_F003).expect("today's fingerprints read back");
        assert_eq!(read.to_bytes(), PRINT_F003);
        // The version before (no flags, no lead figures) still reads, as
        // the same text.
        let mut keys = Vec::new();
        assert_eq!(Fingerprint::index_keys(PRINT_F003, &mut keys), Some(false));
        assert_eq!(keys, print.keys(), "the index reads the keys alone");
        assert_eq!(Fingerprint::index_keys(PRINT_F002, &mut keys), Some(false));
        assert!(
            keys.iter().all(|k| print.keys().contains(k)),
            "0xF002 sampled its opening less densely"
        );
        assert_eq!(
            Fingerprint::index_keys(&PRINT_F003[..PRINT_F003.len() - 1], &mut keys),
            None
        );
        let old = Fingerprint::from_bytes(PRINT_F002).expect("0xF002 reads back");
        assert_eq!(old.shingles(), print.shingles());
        assert!(!old.is_cut());
    }
}

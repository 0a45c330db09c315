//! Retention (SPEC §4): stories whose every item was first seen before the
//! cutoff are deleted with their items, links and sent or failed alerts;
//! what remains of them is the hash of each dedup key (`pruned_items`,
//! `pruned_links`), which `known_items` reads as "known, pruned".
//!
//! Pruning goes in batches, each its own short transaction, so that the
//! writer of polls never waits long behind it; the caller loops over
//! `prune_batch` until it reports nothing left, then calls `reclaim`.

use std::collections::BTreeSet;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use xxhash_rust::xxh3::xxh3_64;

use super::{Cursor, Pruned, Retained, Sqlite};
use crate::domain::ids::FeedId;

/// The hash a pruned item's (feed, key) is kept under.
pub(super) fn item_key_hash(feed_id: FeedId, item_key: &str) -> i64 {
    let mut bytes = Vec::with_capacity(item_key.len() + 10);
    bytes.push(b'i');
    bytes.extend_from_slice(&feed_id.0.to_le_bytes());
    bytes.push(0);
    bytes.extend_from_slice(item_key.as_bytes());
    xxh3_64(&bytes) as i64
}

/// The hash a pruned story's normalised link is kept under.
pub(super) fn link_hash(link: &str) -> i64 {
    let mut bytes = Vec::with_capacity(link.len() + 1);
    bytes.push(b'l');
    bytes.extend_from_slice(link.as_bytes());
    xxh3_64(&bytes) as i64
}

pub(super) fn item_pruned(conn: &Connection, feed_id: FeedId, item_key: &str) -> Result<bool> {
    let hash = item_key_hash(feed_id, item_key);
    Ok(conn
        .prepare_cached("SELECT 1 FROM pruned_items WHERE key = ?1")?
        .query_row([hash], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn link_pruned(conn: &Connection, link: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM pruned_links WHERE key = ?1")?
        .query_row([link_hash(link)], |_| Ok(()))
        .optional()?
        .is_some())
}

impl Sqlite {
    /// Prunes, in one transaction, up to `stories` of the stories after the
    /// cursor whose items were all first seen before `cutoff` and that no
    /// pending alert needs; on the run's first batch, also the sent or
    /// failed health alerts made before it. Stories are looked at in the
    /// order they were made, and the run ends at the first one made after
    /// the cutoff: later ones have items too recent.
    pub fn prune_batch(
        &mut self,
        cursor: &mut Cursor,
        cutoff: i64,
        stories: usize,
    ) -> Result<Pruned> {
        // Immediate: a read that turned into a write could not wait for
        // another process's write lock (SQLite answers "busy" at once).
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut pruned = Pruned::default();
        let mut digests = BTreeSet::new();
        if cursor.after == 0 {
            pruned.health_alerts = prune_health_alerts(&tx, cutoff, &mut digests)?;
        }
        let candidates: Vec<(i64, i64, Option<String>)> = tx
            .prepare_cached(
                "SELECT id, first_seen, link FROM stories WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![cursor.after, stories as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if candidates.len() < stories {
            cursor.done = true;
        }
        for (story_id, first_seen, link) in candidates {
            if first_seen >= cutoff {
                cursor.done = true;
                break;
            }
            cursor.after = story_id;
            if !prunable(&tx, story_id, cutoff)? {
                continue;
            }
            pruned.items += prune_story(&tx, story_id, link.as_deref(), &mut digests, &mut pruned)?;
            pruned.stories += 1;
        }
        pruned.digests = prune_digests(&tx, &digests)?;
        tx.commit()?;
        Ok(pruned)
    }

    /// Gives up to `bytes` of free pages back to the file system (the
    /// database is made with `auto_vacuum = INCREMENTAL`); SQLite reuses
    /// the others for new rows. Returns the bytes given back.
    pub fn reclaim(&mut self, bytes: u64) -> Result<u64> {
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let mode: i64 = self
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
        let page: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        if free == 0 || mode != 2 {
            return Ok(0);
        }
        let n = free.min(i64::try_from(bytes / page as u64).unwrap_or(i64::MAX));
        // `incremental_vacuum` returns a row per page freed; stepping
        // through them is what runs it.
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA incremental_vacuum({n})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        Ok((n * page) as u64)
    }

    pub fn retained(&self) -> Result<Retained> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        Ok(Retained {
            items: count("items")?,
            pruned_keys: count("pruned_items")?,
        })
    }
}

/// Deletes the health alerts sent or failed before `cutoff`, noting the
/// digests they were in. Returns how many went.
fn prune_health_alerts(
    tx: &Connection,
    cutoff: i64,
    digests: &mut BTreeSet<String>,
) -> Result<u64> {
    let mut stmt = tx.prepare_cached(
        "SELECT digest_id FROM health_alerts
         WHERE state <> 'pending' AND created < ?1 AND digest_id IS NOT NULL",
    )?;
    for id in stmt.query_map([cutoff], |r| r.get::<_, String>(0))? {
        digests.insert(id?);
    }
    Ok(tx
        .prepare_cached("DELETE FROM health_alerts WHERE state <> 'pending' AND created < ?1")?
        .execute([cutoff])? as u64)
}

/// Deletes the sent or failed digests among `digests` that no alert is in
/// any more. Returns how many went.
fn prune_digests(tx: &Connection, digests: &BTreeSet<String>) -> Result<u64> {
    let mut pruned = 0;
    for id in digests {
        pruned += tx
            .prepare_cached(
                "DELETE FROM digests WHERE id = ?1 AND state <> 'pending'
                   AND NOT EXISTS (SELECT 1 FROM alerts WHERE digest_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM health_alerts WHERE digest_id = ?1)",
            )?
            .execute([id])? as u64;
    }
    Ok(pruned)
}

fn prunable(tx: &Connection, story_id: i64, cutoff: i64) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT NOT EXISTS (SELECT 1 FROM items WHERE story_id = ?1 AND first_seen >= ?2)
                AND NOT EXISTS (SELECT 1 FROM alerts WHERE story_id = ?1 AND state = 'pending')",
        )?
        .query_row(params![story_id, cutoff], |r| r.get(0))?)
}

/// Deletes one story with what refers to it, keeping its keys' hashes;
/// collects the digests its alerts were in. Returns its items' count.
fn prune_story(
    tx: &Connection,
    story_id: i64,
    link: Option<&str>,
    digests: &mut BTreeSet<String>,
    pruned: &mut Pruned,
) -> Result<u64> {
    let mut keep_item =
        tx.prepare_cached("INSERT OR IGNORE INTO pruned_items (key) VALUES (?1)")?;
    let keys: Vec<(FeedId, String)> = tx
        .prepare_cached("SELECT feed_id, item_key FROM items WHERE story_id = ?1")?
        .query_map([story_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (feed_id, key) in &keys {
        keep_item.execute([item_key_hash(*feed_id, key)])?;
    }
    let mut keep_link =
        tx.prepare_cached("INSERT OR IGNORE INTO pruned_links (key) VALUES (?1)")?;
    let mut links: Vec<String> = tx
        .prepare_cached("SELECT link FROM story_links WHERE story_id = ?1")?
        .query_map([story_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    links.extend(link.map(str::to_owned));
    for l in &links {
        keep_link.execute([link_hash(l)])?;
    }
    let mut stmt = tx.prepare_cached(
        "SELECT digest_id FROM alerts WHERE story_id = ?1 AND digest_id IS NOT NULL",
    )?;
    for id in stmt.query_map([story_id], |r| r.get::<_, String>(0))? {
        digests.insert(id?);
    }
    pruned.alerts += tx
        .prepare_cached("DELETE FROM alerts WHERE story_id = ?1")?
        .execute([story_id])? as u64;
    tx.prepare_cached("DELETE FROM story_links WHERE story_id = ?1")?
        .execute([story_id])?;
    let items = tx
        .prepare_cached("DELETE FROM items WHERE story_id = ?1")?
        .execute([story_id])?;
    tx.prepare_cached("DELETE FROM stories WHERE id = ?1")?
        .execute([story_id])?;
    Ok(items as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::Identity;
    use crate::store::KnownItem;
    use crate::store::sqlite::tests::{RecordOne, ids, quiet_poll, record, store_with_two_feeds};

    /// Records item `key` of `feed` at `now`, alerting channel `moi`.
    fn seen(store: &mut Sqlite, feed: FeedId, key: &str, link: &str, now: i64) {
        let mut poll = quiet_poll(feed, vec![record(key, link, "moi", "r")]);
        poll.now = now;
        store.record_poll(&poll).unwrap();
    }

    fn sent_all(store: &Sqlite) {
        store
            .conn
            .execute("UPDATE alerts SET state = 'sent', sent_at = 1", [])
            .unwrap();
    }

    fn count(store: &Sqlite, table: &str) -> i64 {
        store
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn prune_all(store: &mut Sqlite, cutoff: i64, batch: usize) -> (Pruned, usize) {
        let (mut cursor, mut total, mut batches) = (Cursor::default(), Pruned::default(), 0);
        while !cursor.done {
            total.add(store.prune_batch(&mut cursor, cutoff, batch).unwrap());
            batches += 1;
        }
        (total, batches)
    }

    #[test]
    fn an_old_story_goes_and_its_keys_stay_known() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, b) = store_with_two_feeds(&dir);
        seen(&mut store, a, "a1", "https://x.fr/1", 100);
        seen(&mut store, a, "a2", "https://x.fr/2", 1000);
        sent_all(&store);
        let (pruned, _) = prune_all(&mut store, 500, 10);
        assert_eq!(
            pruned,
            Pruned {
                stories: 1,
                items: 1,
                alerts: 1,
                digests: 0,
                health_alerts: 0
            }
        );
        assert_eq!(count(&store, "items"), 1);
        let known = store.known_items(a, &ids(&["a1", "a2", "a3"])).unwrap();
        assert_eq!(known.get("a1"), Some(&KnownItem::Pruned));
        assert!(matches!(known.get("a2"), Some(KnownItem::Stored { .. })));
        assert_eq!(known.get("a3"), None);
        // Another feed, another key, the pruned story's link: known too.
        let by_link = Identity {
            item_key: "b1".into(),
            story_link: Some("https://x.fr/1".into()),
        };
        let other = Identity {
            item_key: "b2".into(),
            story_link: Some("https://x.fr/9".into()),
        };
        let known = store.known_items(b, &[by_link, other]).unwrap();
        assert_eq!(known.get("b1"), Some(&KnownItem::Pruned));
        assert_eq!(known.get("b2"), None);
        // The key is the feed's: another feed's `a1` is new.
        assert!(store.known_items(b, &ids(&["a1"])).unwrap().is_empty());
        let kept = store.retained().unwrap();
        assert_eq!((kept.items, kept.pruned_keys), (1, 1));
    }

    #[test]
    fn a_pending_alert_or_a_recent_item_keeps_the_story() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, b) = store_with_two_feeds(&dir);
        seen(&mut store, a, "a1", "https://x.fr/1", 100);
        seen(&mut store, a, "a2", "https://x.fr/2", 100);
        sent_all(&store);
        // a2's story gains an item after the cutoff.
        seen(&mut store, b, "b2", "https://x.fr/2", 900);
        seen(&mut store, a, "a3", "https://x.fr/3", 100);
        // a3's alert is still pending.
        let (pruned, _) = prune_all(&mut store, 500, 10);
        assert_eq!((pruned.stories, pruned.items), (1, 1));
        assert_eq!(count(&store, "items"), 3);
        // a1's went; a2's (b2 joined a story already alerted) and a3's stay.
        assert_eq!(count(&store, "alerts"), 2);
    }

    #[test]
    fn batches_end_at_the_first_story_after_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, _) = store_with_two_feeds(&dir);
        for i in 0..25 {
            seen(
                &mut store,
                a,
                &format!("a{i}"),
                &format!("https://x.fr/{i}"),
                100 + i,
            );
        }
        seen(&mut store, a, "late", "https://x.fr/late", 1000);
        sent_all(&store);
        let (pruned, batches) = prune_all(&mut store, 500, 10);
        assert_eq!((pruned.stories, batches), (25, 3));
        assert_eq!(count(&store, "items"), 1);
        assert_eq!(count(&store, "pruned_items"), 25);
        let (again, batches) = prune_all(&mut store, 500, 10);
        assert_eq!((again, batches), (Pruned::default(), 1));
    }

    #[test]
    fn a_sent_digest_goes_with_its_last_story() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, _) = store_with_two_feeds(&dir);
        seen(&mut store, a, "a1", "https://x.fr/1", 100);
        seen(&mut store, a, "a2", "https://x.fr/2", 900);
        let members: Vec<String> = store
            .conn
            .prepare("SELECT id FROM alerts")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            store
                .create_digest("moi", "d1", &members, &[], "{}", 950)
                .unwrap()
        );
        store
            .mark_sent(crate::store::Target::Digest, "d1", 960)
            .unwrap();
        let (pruned, _) = prune_all(&mut store, 500, 10);
        assert_eq!((pruned.stories, pruned.digests), (1, 0), "a2 still in it");
        let (pruned, _) = prune_all(&mut store, 2000, 10);
        assert_eq!((pruned.stories, pruned.digests), (1, 1));
        assert_eq!(count(&store, "digests"), 0);
    }

    #[test]
    fn a_new_database_gives_pruned_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, _) = store_with_two_feeds(&dir);
        let mode: i64 = store
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "incremental");
        for i in 0..2000 {
            let mut r = record(&format!("a{i}"), &format!("https://x.fr/{i}"), "moi", "r");
            r.item.summary = "x".repeat(500);
            let mut poll = quiet_poll(a, vec![r]);
            poll.now = 100;
            store.record_poll(&poll).unwrap();
        }
        sent_all(&store);
        prune_all(&mut store, 500, 500);
        let free = |s: &Sqlite| -> i64 {
            s.conn
                .pragma_query_value(None, "freelist_count", |r| r.get(0))
                .unwrap()
        };
        assert!(free(&store) > 100, "{} free pages", free(&store));
        let given = store.reclaim(u64::MAX).unwrap();
        assert!(given > 100 * 4096, "{given} bytes given back");
        assert_eq!(free(&store), 0);
    }

    #[test]
    fn a_database_made_before_retention_is_rewritten_once_to_give_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let mode = |s: &Sqlite| -> i64 {
            s.conn
                .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
                .unwrap()
        };
        {
            let old = Sqlite::open(&path).unwrap();
            old.conn.pragma_update(None, "auto_vacuum", "NONE").unwrap();
            old.conn.execute_batch("VACUUM").unwrap();
            assert_eq!(mode(&old), 0);
        }
        assert_eq!(mode(&Sqlite::open(&path).unwrap()), 2);
    }
}

//! Retention (`store::retention`) on SQLite, and giving the freed pages
//! back to the file system.

use anyhow::Result;

use super::{Cursor, Pruned, Retained, Sqlite};
use crate::store::retention;

impl Sqlite {
    /// Prunes a batch in one transaction (`store::retention::prune_batch`).
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
        let pruned = retention::prune_batch(&*tx, cursor, cutoff, stories)?;
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
        if n == 0 {
            // Less than a page asked: `incremental_vacuum(0)` would free
            // every page, not none.
            return Ok(0);
        }
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
        retention::retained(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::Identity;
    use crate::domain::ids::FeedId;
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
                .create_digest("moi", "d1", &members, &[], "{}", 950, None)
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

//! The SQLite backend: one file, embedded, the default. What makes it fast
//! stays here: one connection per `Sqlite` (the daemon keeps one for the
//! writer's group commit and one to read beside it, WAL), statements cached
//! per connection, and SQLite's write lock taken at the start of every write
//! (`BEGIN IMMEDIATE`), which is what orders two processes on one file.
//!
//! By entity: `open` (migrations, WAL, opening, the file's identity),
//! `feeds` (the configured feeds' rows), `polls` (recording a poll: items,
//! alerts, feed state), `stories` (which story a new item joins, the
//! stored fingerprints), `outbox` (claiming, leasing and marking alerts and
//! digests), `health` (feed-health episodes and their alerts), `retention`
//! (pruning and the keys kept), `status` (what `veille status` and
//! `/metrics` read), `ids` (the domain's ids as SQLite integers).

mod backend;
mod feeds;
mod health;
mod ids;
mod open;
mod outbox;
mod polls;
mod retention;
mod status;
mod stories;

use rusqlite::Connection;

use super::model::*;
use super::new_id;
use crate::domain::triage::KnownItem;
use crate::domain::wire_index::WireIndex;

pub use open::Identity;

pub struct Sqlite {
    conn: Connection,
    /// Who holds the leases this store takes (`outbox`): random, one per
    /// open store, so two processes (or two stores in one) never mistake
    /// each other's leases for their own.
    owner: String,
    /// Stories wire copies may join; read from the database when first
    /// needed (see `wire`).
    wire: Option<WireIndex>,
}

#[cfg(test)]
mod tests {
    use anyhow::Result;

    use super::*;
    use crate::domain::identity::Identity;
    use crate::domain::ids::FeedId;
    use crate::domain::model::Item;
    use crate::domain::wire::Fingerprint;
    use crate::store::{AlertDraft, FetchRecord, ItemRecord, PollRecord, StoredHit};

    /// One poll through the production path, `record_polls`.
    pub(super) trait RecordOne {
        fn record_poll(&mut self, poll: &PollRecord) -> Result<RecordSummary>;
    }

    impl RecordOne for Sqlite {
        fn record_poll(&mut self, poll: &PollRecord) -> Result<RecordSummary> {
            self.record_polls(std::slice::from_ref(poll))?.remove(0)
        }
    }

    /// Identities of link-less items with these keys.
    pub(super) fn ids(keys: &[&str]) -> Vec<Identity> {
        keys.iter()
            .map(|k| Identity {
                item_key: (*k).into(),
                story_link: None,
            })
            .collect()
    }

    /// A store with one feed, `A`, and that feed's id.
    pub(super) fn store_with_one_feed(dir: &tempfile::TempDir) -> (Sqlite, FeedId) {
        let mut store = Sqlite::open(&dir.path().join("v.db")).unwrap();
        let feeds = store
            .sync_feeds(&[("A".into(), "https://a/".into())])
            .unwrap();
        (store, feeds[0].id)
    }

    /// A store with feeds `A` and `B`, and their ids.
    pub(super) fn store_with_two_feeds(dir: &tempfile::TempDir) -> (Sqlite, FeedId, FeedId) {
        let mut store = Sqlite::open(&dir.path().join("v.db")).unwrap();
        let feeds = store
            .sync_feeds(&[
                ("A".into(), "https://a/".into()),
                ("B".into(), "https://b/".into()),
            ])
            .unwrap();
        let (a, b) = (feeds[0].id, feeds[1].id);
        (store, a, b)
    }

    /// A 304 poll at time 10 that records `items` (as a changed document
    /// would; the store does not care which).
    pub(super) fn quiet_poll(feed_id: FeedId, items: Vec<ItemRecord>) -> PollRecord {
        PollRecord {
            feed_id,
            now: 10,
            fetch: FetchRecord::NotModified,
            redirect_url: None,
            next_poll: 100,
            wire_window: 0,
            wire_keep: 0,
            lease: None,
            items,
            keep_text: false,
            pages: Default::default(),
        }
    }

    const DISPATCH: &str = "La Chine imposera à partir du 10 avril des droits de douane supplémentaires de 34 % sur les produits importés des États-Unis, a annoncé vendredi le ministère chinois des Finances. Pékin a également ajouté onze entreprises américaines à sa liste des entités non fiables.";

    /// A new item with a fingerprint, dated `at`.
    fn wire_record(key: &str, text: &str, at: i64) -> ItemRecord {
        let item = Item {
            title: format!("Titre {key}"),
            link: Some(format!("https://{key}.fr/1")),
            summary: text.into(),
            published: chrono::DateTime::from_timestamp(at, 0),
            ..Item::default()
        };
        ItemRecord {
            key: key.into(),
            is_new: true,
            story_link: item.link.clone(),
            content_hash: key.into(),
            wire: Some(Fingerprint::of(&item)),
            item,
            alerts: vec![],
            quiet: false,
            kept: None,
        }
    }

    fn wire_poll(feed_id: FeedId, now: i64, items: Vec<ItemRecord>) -> PollRecord {
        PollRecord {
            now,
            wire_window: 3600,
            wire_keep: 3600,
            lease: None,
            ..quiet_poll(feed_id, items)
        }
    }

    #[test]
    fn a_copy_joins_the_story_and_old_fingerprints_go_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, b) = store_with_two_feeds(&dir);
        const T: i64 = 1_800_000_000;
        store
            .record_poll(&wire_poll(a, T, vec![wire_record("a", DISPATCH, T - 60)]))
            .unwrap();
        let other = "Un séisme de magnitude 6,1 a frappé mardi le large du Japon sans déclencher d'alerte au tsunami, a indiqué l'agence météorologique japonaise. La secousse a été ressentie jusqu'à Tokyo.";
        let copy = format!("PÉKIN (AFP) - {DISPATCH}");
        store
            .record_poll(&wire_poll(
                b,
                T + 60,
                vec![wire_record("b", &copy, T), wire_record("c", other, T)],
            ))
            .unwrap();
        let story = |key: &str| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT story_id FROM items WHERE item_key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(story("b"), story("a"), "the copy joined");
        assert_ne!(story("c"), story("a"));
        let prints = |s: &Sqlite| -> i64 {
            s.conn
                .query_row("SELECT COUNT(*) FROM wire_prints", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(prints(&store), 3, "every copy is kept: a, b and c");
        drop(store);

        // Hours later, a fresh process: the first read of the index drops
        // what the window no longer covers.
        let mut store = Sqlite::open(&dir.path().join("v.db")).unwrap();
        let later = T + 5 * 3600;
        store
            .record_poll(&wire_poll(a, later, vec![wire_record("d", other, later)]))
            .unwrap();
        assert_eq!(prints(&store), 1, "only d's");
    }

    /// The index is a cache of the database: a copy recorded by another
    /// process (a `run --once` beside the daemon) is a candidate for this
    /// process's next item, although this one read its index before.
    #[test]
    fn a_story_another_process_recorded_is_joined_by_the_next_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (mut daemon, a, b) = store_with_two_feeds(&dir);
        const T: i64 = 1_800_000_000;
        let other = "Un séisme de magnitude 6,1 a frappé mardi le large du Japon sans déclencher d'alerte au tsunami, a indiqué l'agence météorologique japonaise. La secousse a été ressentie jusqu'à Tokyo.";
        daemon
            .record_poll(&wire_poll(b, T, vec![wire_record("c", other, T)]))
            .unwrap();
        assert_eq!(daemon.wire_index_size().0, 1, "the daemon read its index");
        let mut once = Sqlite::open(&dir.path().join("v.db")).unwrap();
        once.record_poll(&wire_poll(a, T + 10, vec![wire_record("a", DISPATCH, T)]))
            .unwrap();
        drop(once);
        let copy = format!("PÉKIN (AFP) - {DISPATCH}");
        daemon
            .record_poll(&wire_poll(b, T + 20, vec![wire_record("b", &copy, T + 5)]))
            .unwrap();
        let story = |key: &str| -> i64 {
            daemon
                .conn
                .query_row(
                    "SELECT story_id FROM items WHERE item_key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(story("b"), story("a"), "the copy joined the other's story");
    }

    #[test]
    fn a_paused_channel_keeps_its_first_fault_until_a_send_or_a_retry_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let items = vec![
            record("a", "https://x/a", "mail", "r"),
            record("b", "https://x/b", "mail", "r"),
        ];
        store.record_poll(&quiet_poll(feed, items)).unwrap();
        let first = store.pause_channel("mail", "535 no", 100, 1.0, 0).unwrap();
        assert_eq!((first.since, first.attempts, first.retry_at), (100, 1, 130));
        let second = store
            .pause_channel("mail", "535 still", 130, 1.0, 0)
            .unwrap();
        assert_eq!(
            (second.since, second.attempts, second.retry_at),
            (100, 2, 190)
        );
        assert_eq!(second.error, "535 still");
        assert_eq!(store.paused_channels(150).unwrap().len(), 1);
        assert!(
            store.paused_channels(190).unwrap().is_empty(),
            "its step has come"
        );
        let status = store.status().unwrap();
        assert_eq!(status.channels[0].paused.as_ref(), Some(&second));

        // A send through the channel ends the pause.
        let claimed = store.claim_alerts(200, 260, &["mail"], false, 1).unwrap();
        store
            .mark_sent(Target::Alert, &claimed.alerts[0].id, 200)
            .unwrap();
        assert!(store.status().unwrap().channels[0].paused.is_none());

        // So does `retry`, which also makes what is pending due now.
        store.pause_channel("mail", "refused", 300, 1.0, 0).unwrap();
        let other = store.claim_alerts(300, 360, &["mail"], false, 1).unwrap();
        let id = &other.alerts[0].id;
        store
            .mark_attempt_failed(Target::Alert, id, "451", Some(1000))
            .unwrap();
        let requeued = store.requeue_failed("mail", 300).unwrap();
        assert!(requeued.resumed);
        assert_eq!(requeued.hastened, 1, "{requeued:?}");
        assert!(store.paused_channels(0).unwrap().is_empty());
    }

    #[test]
    fn alerts_of_other_channels_do_not_crowd_out_the_due_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let mut items: Vec<ItemRecord> = (0..30)
            .map(|i| record(&format!("e{i}"), &format!("https://x/e{i}"), "email", "r"))
            .collect();
        items.push(record("m", "https://x/m", "mail", "r"));
        store.record_poll(&quiet_poll(feed, items)).unwrap();
        let due = store
            .claim_alerts(10, 70, &["mail"], false, 5)
            .unwrap()
            .alerts;
        assert_eq!(
            due.iter().map(|a| a.channel.as_str()).collect::<Vec<_>>(),
            ["mail"]
        );
    }

    #[test]
    fn a_failing_poll_in_a_group_leaves_the_others_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let poll = |feed_id, key: &str| {
            quiet_poll(
                feed_id,
                vec![record(key, &format!("https://x/{key}"), "moi", "r")],
            )
        };
        // Feed 999 does not exist: its items break a foreign key.
        let results = store
            .record_polls(&[poll(feed, "a1"), poll(FeedId(999), "z"), poll(feed, "a2")])
            .unwrap();
        assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
        let known = store.known_items(feed, &ids(&["a1", "a2"])).unwrap();
        assert_eq!(known.len(), 2);
        let stories: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM stories", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            stories, 2,
            "the failed poll's story was rolled back with it"
        );
    }

    #[test]
    fn an_alert_is_frozen_into_one_digest_only() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let items = vec![
            record("a1", "https://x/1", "matin", "r"),
            record("a2", "https://x/2", "matin", "r"),
        ];
        store.record_poll(&quiet_poll(feed, items)).unwrap();
        let members: Vec<String> = store
            .digest_members("matin", 10)
            .unwrap()
            .alerts
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(members.len(), 2);
        assert!(
            store
                .create_digest("matin", "d1", &members, &[], "{}", 20, None)
                .unwrap()
        );
        // A second digest made from the same read (another process racing)
        // is refused whole.
        assert!(
            !store
                .create_digest("matin", "d2", &members, &[], "{}", 21, None)
                .unwrap()
        );
        let digests: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM digests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(digests, 1);
        assert!(
            store
                .digest_members("matin", 100)
                .unwrap()
                .alerts
                .is_empty()
        );
        // Sent: the digest's alerts are sent with it.
        store.mark_sent(Target::Digest, "d1", 30).unwrap();
        let sent: i64 = store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM alerts WHERE state = 'sent'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(sent, 2);
    }

    #[test]
    fn migrations_are_valid() {
        open::migrations().validate().unwrap();
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        drop(Sqlite::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Sqlite::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer veille (schema 99"), "{err}");
    }

    pub(super) fn record(key: &str, link: &str, channel: &str, rule: &str) -> ItemRecord {
        ItemRecord {
            key: key.into(),
            is_new: true,
            wire: None,
            kept: None,
            story_link: Some(link.into()),
            content_hash: format!("h-{key}"),
            item: Item {
                title: key.into(),
                link: Some(link.into()),
                ..Item::default()
            },
            alerts: vec![AlertDraft {
                channel: channel.into(),
                rules: vec![rule.into()],
                hits: vec![StoredHit {
                    rule: rule.into(),
                    field: "title".into(),
                    term: "t".into(),
                    start: 0,
                    end: 2,
                }],
                due: 0,
            }],
            quiet: false,
        }
    }

    /// Alerts are read back a batch at a time: one whose item cannot be
    /// read is marked failed alone; an item and a story shared by two
    /// channels' alerts serve both.
    #[test]
    fn an_alert_whose_item_cannot_be_read_is_damaged_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a) = store_with_one_feed(&dir);
        let mut shared = record("a1", "https://x/1", "moi", "r1");
        shared.alerts.push(AlertDraft {
            channel: "toi".into(),
            ..shared.alerts[0].clone()
        });
        let items = vec![shared, record("a2", "https://x/2", "moi", "r1")];
        store.record_poll(&quiet_poll(a, items)).unwrap();
        store
            .conn
            .execute("UPDATE items SET title = x'00ff' WHERE item_key = 'a2'", [])
            .unwrap();
        let claimed = store
            .claim_alerts(10, 70, &["moi", "toi"], false, 10)
            .unwrap();
        let read: Vec<(&str, &str, usize)> = claimed
            .alerts
            .iter()
            .map(|d| (d.channel.as_str(), d.item.title.as_str(), d.outlets.len()))
            .collect();
        assert_eq!(read, [("moi", "a1", 1), ("toi", "a1", 1)]);
        assert_eq!(claimed.damaged.len(), 1);
        assert!(
            claimed.damaged[0].reason.contains("cannot be read"),
            "{}",
            claimed.damaged[0].reason
        );
    }

    #[test]
    fn one_alert_per_story_and_channel_naming_every_rule_and_feed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, b) = store_with_two_feeds(&dir);
        let poll = |feed_id, items| PollRecord {
            feed_id,
            now: 10,
            fetch: FetchRecord::Fetched {
                status: 200,
                etag: None,
                last_modified: None,
                items: 1,
                unread_items: 0,
            },
            redirect_url: None,
            next_poll: 100,
            lease: None,
            wire_window: 0,
            wire_keep: 0,
            items,
            keep_text: false,
            pages: Default::default(),
        };
        let s = store
            .record_poll(&poll(a, vec![record("a1", "https://x/1", "moi", "r1")]))
            .unwrap();
        assert_eq!(
            s,
            RecordSummary {
                new_items: 1,
                changed_items: 0,
                alerts: 1,
                alerted: vec!["moi".into()],
            }
        );
        let s = store
            .record_poll(&poll(b, vec![record("b1", "https://x/1", "moi", "r2")]))
            .unwrap();
        assert_eq!(
            s,
            RecordSummary {
                new_items: 1,
                changed_items: 0,
                alerts: 0,
                alerted: Vec::new(),
            }
        );
        let due = store
            .claim_alerts(10, 70, &["moi"], false, 10)
            .unwrap()
            .alerts;
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].rules, ["r1", "r2"]);
        let spans: Vec<(&str, usize, usize)> = due[0]
            .hits
            .iter()
            .map(|h| (h.rule.as_str(), h.start, h.end))
            .collect();
        assert_eq!(
            spans,
            [("r1", 0, 2), ("r2", 0, 0)],
            "merged hits keep terms, not spans"
        );
        let outlets: Vec<(&str, Option<&str>)> = due[0]
            .outlets
            .iter()
            .map(|o| (o.feed.as_str(), o.link.as_deref()))
            .collect();
        assert_eq!(
            outlets,
            [("A", Some("https://x/1")), ("B", Some("https://x/1"))]
        );
        store.mark_sent(Target::Alert, &due[0].id, 11).unwrap();
        store
            .record_poll(&poll(a, vec![record("a1", "https://x/1", "moi", "r3")]))
            .unwrap();
        assert!(
            store
                .claim_alerts(1000, 1060, &["moi"], false, 10)
                .unwrap()
                .alerts
                .is_empty()
        );
    }

    #[test]
    fn a_changed_url_resets_fetch_state_and_keeps_items() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        store
            .record_poll(&PollRecord {
                feed_id: feed,
                now: 10,
                fetch: FetchRecord::Failed(crate::domain::poll::FetchFailure {
                    status: Some(410),
                    error: "gone".into(),
                    gone: true,
                    retry_after_until: None,
                }),
                redirect_url: Some("https://a2/".into()),
                next_poll: 100,
                lease: None,
                wire_window: 0,
                wire_keep: 0,
                items: vec![record("a1", "https://x/1", "moi", "r1")],
                keep_text: false,
                pages: Default::default(),
            })
            .unwrap();
        let same = store
            .sync_feeds(&[("A".into(), "https://a/".into())])
            .unwrap();
        assert!(same[0].gone);
        assert_eq!(same[0].redirect_url.as_deref(), Some("https://a2/"));
        let moved = store
            .sync_feeds(&[("A".into(), "https://new/".into())])
            .unwrap();
        assert!(!moved[0].gone);
        assert_eq!(
            (
                moved[0].redirect_url.as_deref(),
                moved[0].consecutive_failures,
                moved[0].next_poll
            ),
            (None, 0, None)
        );
        assert_eq!(
            store.known_items(moved[0].id, &ids(&["a1"])).unwrap().len(),
            1
        );
    }
}

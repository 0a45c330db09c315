//! The store's contract, run against both backends through the same face
//! (`veille::store::Store`): an SQLite file and a PostgreSQL database of the
//! test server (`pg_server`). Each case is written once, over a `Location`;
//! `on_both!` makes one test per backend.

use veille::domain::identity::Identity;
use veille::domain::ids::FeedId;
use veille::domain::model::Item;
use veille::domain::poll::FetchFailure;
use veille::domain::wire::Fingerprint;
use veille::store::{
    AlertDraft, Claimed, Cursor, FeedClaim, FeedState, FetchRecord, ItemRecord, KnownItem,
    Location, PollRecord, ProcessInfo, Store, StoredHit, Target,
};

use crate::pg_server;

/// A store on a fresh database of the backend, and its one feed, `A`.
fn open(at: &Location) -> (Store, FeedId) {
    let mut store = Store::open(at).expect("open the store");
    let feeds = store
        .sync_feeds(&[("A".into(), "https://a.example/rss".into())])
        .unwrap();
    (store, feeds[0].id)
}

/// The rows of `table`, read beside the face: for what the store keeps but
/// never shows (wire fingerprints).
fn rows_in(at: &Location, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match at {
        Location::File(path) => rusqlite::Connection::open(path)
            .unwrap()
            .query_row(&sql, [], |r| r.get(0))
            .unwrap(),
        Location::Postgres(url) => crate::harness::pg_rows(&url.connect_url(), &sql).unwrap()[0][0]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap(),
    }
}

/// A new item of story `link`, alerting `channel`.
fn record(key: &str, link: &str, channel: &str) -> ItemRecord {
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
            rules: vec!["r".into()],
            hits: vec![StoredHit {
                rule: "r".into(),
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

fn poll(feed_id: FeedId, now: i64, items: Vec<ItemRecord>) -> PollRecord {
    PollRecord {
        feed_id,
        now,
        fetch: FetchRecord::NotModified,
        redirect_url: None,
        next_poll: now + 60,
        wire_window: 0,
        wire_keep: 0,
        lease: None,
        items,
        keep_text: false,
        pages: Default::default(),
    }
}

/// Items recorded together: one story per link, one alert per story and
/// channel; what is known of them afterwards, by key, with unknown keys
/// left out.
fn stories_and_known_items(at: &Location) {
    let (mut store, feed) = open(at);
    let items = vec![
        record("a1", "https://x.example/s1", "mail"),
        // The same story under another key: no second alert.
        record("a2", "https://x.example/s1", "mail"),
        record("a3", "https://x.example/s3", "mail"),
    ];
    let summaries = store.record_polls(&[poll(feed, 10, items)]).unwrap();
    let summary = summaries.into_iter().next().unwrap().unwrap();
    assert_eq!((summary.new_items, summary.alerts), (3, 2), "{summary:?}");
    let s1 = store.story_of_link("https://x.example/s1").unwrap();
    assert!(s1.is_some());
    assert_ne!(s1, store.story_of_link("https://x.example/s3").unwrap());
    assert_eq!(store.story_of_link("https://x.example/none").unwrap(), None);

    let ids: Vec<Identity> = ["a1", "a3", "zz"]
        .iter()
        .map(|k| Identity {
            item_key: (*k).into(),
            story_link: None,
        })
        .collect();
    let known = store.known_items(feed, &ids).unwrap();
    assert_eq!(known.len(), 2, "{known:?}");
    assert!(matches!(
        &known["a1"],
        KnownItem::Stored { content_hash, first_seen: 10 } if content_hash == "h-a1"
    ));
    assert!(store.known_items(feed, &[]).unwrap().is_empty());
}

/// An item a poll says is new but that the feed already has (another
/// process recorded it first) is updated, not inserted twice, in a write
/// of several polls as alone; the other polls of the write are kept.
fn an_item_recorded_first_elsewhere_is_updated(at: &Location) {
    let (mut store, a) = open(at);
    let feeds = store
        .sync_feeds(&[
            ("A".into(), "https://a.example/rss".into()),
            ("B".into(), "https://b.example/rss".into()),
        ])
        .unwrap();
    let b = feeds.iter().find(|f| f.name == "B").unwrap().id;
    let first = store
        .record_polls(&[poll(
            a,
            10,
            vec![record("a1", "https://x.example/1", "mail")],
        )])
        .unwrap();
    assert_eq!(first[0].as_ref().unwrap().alerts, 1);
    let mut again = record("a1", "https://x.example/1", "mail");
    again.content_hash = "h-a1-changed".into();
    let written = store
        .record_polls(&[
            poll(
                a,
                20,
                vec![again, record("a2", "https://x.example/2", "mail")],
            ),
            poll(b, 20, vec![record("b1", "https://x.example/3", "mail")]),
        ])
        .unwrap();
    let summaries: Vec<_> = written.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        (
            summaries[0].new_items,
            summaries[0].changed_items,
            summaries[0].alerts
        ),
        (1, 1, 1),
        "{summaries:?}"
    );
    assert_eq!((summaries[1].new_items, summaries[1].alerts), (1, 1));
    let ids = |keys: &[&str]| -> Vec<Identity> {
        keys.iter()
            .map(|k| Identity {
                item_key: (*k).into(),
                story_link: None,
            })
            .collect()
    };
    let known = store.known_items(a, &ids(&["a1", "a2"])).unwrap();
    assert!(matches!(
        &known["a1"],
        KnownItem::Stored { content_hash, first_seen: 10 } if content_hash == "h-a1-changed"
    ));
    assert!(known.contains_key("a2"));
    assert!(
        store
            .known_items(b, &ids(&["b1"]))
            .unwrap()
            .contains_key("b1")
    );
    assert_eq!(rows_in(at, "items"), 3);
    assert_eq!(rows_in(at, "alerts"), 3, "one alert a story");
}

/// SPEC §10, fencing: once a claim has passed to another process, the
/// first can record no outcome for it; the holder can.
fn an_outcome_is_fenced_once_the_claim_passed_on(at: &Location) {
    let (mut first, feed) = open(at);
    let items = vec![
        record("a", "https://x.example/a", "mail"),
        record("b", "https://x.example/b", "mail"),
    ];
    first.record_polls(&[poll(feed, 10, items)]).unwrap();
    let mut second = Store::open(at).unwrap();
    let mine = first.claim_alerts(100, 160, &["mail"], false, 2).unwrap();
    assert_eq!(mine.alerts.len(), 2);
    assert!(
        second
            .claim_alerts(120, 180, &["mail"], false, 2)
            .unwrap()
            .alerts
            .is_empty(),
        "held by the first"
    );
    // The first stalls past its lease; the second takes both.
    let theirs = second.claim_alerts(200, 260, &["mail"], false, 2).unwrap();
    assert_eq!(theirs.alerts.len(), 2, "the lease ran out");
    let (a, b) = (&mine.alerts[0].id, &mine.alerts[1].id);
    assert!(first.mark_sent(Target::Alert, a, 210).unwrap().is_empty());
    first
        .mark_attempt_failed(Target::Alert, b, "451", None)
        .unwrap();
    assert!(!first.renew(Target::Alert, a, 400).unwrap());
    // Nothing of the first's was recorded: both pending, no attempt
    // counted (read back by letting them go and taking them again).
    second
        .release(Target::Alert, &[a.clone(), b.clone()])
        .unwrap();
    let again = second.claim_alerts(230, 290, &["mail"], false, 2).unwrap();
    let mut attempts: Vec<(String, u32)> = again
        .alerts
        .iter()
        .map(|d| (d.id.clone(), d.attempts))
        .collect();
    attempts.sort();
    let mut expected = vec![(a.clone(), 0), (b.clone(), 0)];
    expected.sort();
    assert_eq!(attempts, expected, "fenced: nothing recorded");
    // The holder's outcomes are.
    assert_eq!(second.mark_sent(Target::Alert, a, 240).unwrap().len(), 1);
    second
        .mark_attempt_failed(Target::Alert, b, "451", Some(400))
        .unwrap();
    let retried = second.claim_alerts(400, 460, &["mail"], false, 2).unwrap();
    assert_eq!(retried.alerts.len(), 1, "only b is still pending");
    assert_eq!((&retried.alerts[0].id, retried.alerts[0].attempts), (b, 1));
    second
        .mark_attempt_failed(Target::Alert, b, "451", None)
        .unwrap();
    let status = second.status().unwrap();
    let mail = &status.channels[0];
    assert_eq!(
        (mail.sent, mail.failed, mail.pending),
        (1, 1, 0),
        "{status:?}"
    );
}

/// SPEC §4, retention: a pruned story's items go with their wire
/// fingerprints, even when `wire_window` would keep the prints longer; a
/// later copy from another outlet makes a story of its own (in a fresh
/// process, whose index is read back from the stored prints), and the
/// pruned item's key stays known.
fn pruning_takes_the_wire_prints_with_the_items(at: &Location) {
    let (mut store, feed) = open(at);
    let text = "Le gouvernement a présenté mercredi un plan de soutien à la filière \
                des semi-conducteurs, doté de deux milliards d'euros sur cinq ans. \
                Les industriels saluent une première étape mais réclament davantage \
                de moyens pour la formation des ingénieurs et la recherche publique.";
    let copy = |key: &str, link: &str| {
        let mut r = record(key, link, "mail");
        r.item.summary = text.into();
        r.wire = Some(Fingerprint::of(&r.item));
        assert!(r.wire.as_ref().unwrap().is_usable());
        r
    };
    let mut first = poll(feed, 10, vec![copy("a", "https://a.example/plan")]);
    first.wire_window = 3600;
    first.wire_keep = 1_000_000;
    store.record_polls(&[first]).unwrap().remove(0).unwrap();
    assert_eq!(rows_in(at, "wire_prints"), 1);
    let sent = store.claim_alerts(20, 80, &["mail"], false, 1).unwrap();
    store
        .mark_sent(Target::Alert, &sent.alerts[0].id, 30)
        .unwrap();
    let mut cursor = Cursor::default();
    while !cursor.done {
        store.prune_batch(&mut cursor, 100, 10).unwrap();
    }
    assert_eq!(store.retained().unwrap().items, 0, "the story was pruned");
    assert_eq!(rows_in(at, "wire_prints"), 0, "its print went with it");

    // Another outlet: a feed's own items are never copies of each other.
    let mut fresh = Store::open(at).unwrap();
    let other = fresh
        .sync_feeds(&[
            ("A".into(), "https://a.example/rss".into()),
            ("B".into(), "https://b.example/rss".into()),
        ])
        .unwrap()[1]
        .id;
    let mut later = poll(other, 200, vec![copy("b", "https://b.example/plan")]);
    later.wire_window = 3600;
    later.wire_keep = 1_000_000;
    let summary = fresh.record_polls(&[later]).unwrap().remove(0);
    let summary = summary.expect("the copy is recorded in a story of its own");
    assert_eq!((summary.new_items, summary.alerts), (1, 1), "{summary:?}");
    let ids = [Identity {
        item_key: "a".into(),
        story_link: None,
    }];
    assert_eq!(
        fresh.known_items(feed, &ids).unwrap()["a"],
        KnownItem::Pruned
    );
}

/// A new item of story `link`, alerting `channel` for `rule`.
fn matched(key: &str, link: &str, channel: &str, rule: &str) -> ItemRecord {
    let mut r = record(key, link, channel);
    for alert in &mut r.alerts {
        alert.rules = vec![rule.into()];
        alert.hits[0].rule = rule.into();
    }
    r
}

/// SPEC §4: one alert per story and channel, naming every rule that
/// matched the story: two items of one story in one write make one alert
/// with both rules; a later write adds its rule while the alert is
/// pending, and nothing once it is sent. Hits of the rules added keep
/// their terms, not their places in another item's text.
fn one_alert_a_story_names_every_rule(at: &Location) {
    let (mut store, feed) = open(at);
    let story = "https://x.example/s";
    let first = store
        .record_polls(&[poll(
            feed,
            10,
            vec![
                matched("a1", story, "mail", "r1"),
                matched("a2", story, "mail", "r2"),
                matched("a3", story, "push", "r1"),
            ],
        )])
        .unwrap()
        .remove(0)
        .unwrap();
    let mut alerted = first.alerted.clone();
    alerted.sort();
    assert_eq!(
        (first.alerts, alerted),
        (2, vec!["mail".to_string(), "push".into()])
    );
    let later = store
        .record_polls(&[poll(feed, 20, vec![matched("a4", story, "mail", "r3")])])
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(later.alerts, 0, "{later:?}");

    let claimed = store.claim_alerts(30, 90, &["mail"], true, 10).unwrap();
    let [alert] = &claimed.alerts[..] else {
        panic!("one alert for the story: {:?}", claimed.alerts.len());
    };
    assert_eq!(alert.rules, ["r1", "r2", "r3"]);
    let spans: Vec<(&str, usize, usize)> = alert
        .hits
        .iter()
        .map(|h| (h.rule.as_str(), h.start, h.end))
        .collect();
    assert_eq!(spans, [("r1", 0, 2), ("r2", 0, 0), ("r3", 0, 0)]);
    assert_eq!(alert.item.title, "a1", "the first item's text is quoted");
    assert_eq!(
        store.mark_sent(Target::Alert, &alert.id, 31).unwrap(),
        [10],
        "when its item was first seen"
    );
    assert!(
        store
            .mark_sent(Target::Alert, &alert.id, 32)
            .unwrap()
            .is_empty(),
        "sent once"
    );

    store
        .record_polls(&[poll(feed, 40, vec![matched("a5", story, "mail", "r4")])])
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(
        store
            .claim_alerts(50, 110, &["mail"], true, 10)
            .unwrap()
            .alerts
            .is_empty(),
        "a sent alert is not sent again, whatever matches later"
    );
    assert_eq!(rows_in(at, "alerts"), 2);
}

/// A failed fetch of `feed` at `now`.
fn failed(feed: FeedId, now: i64) -> PollRecord {
    PollRecord {
        fetch: FetchRecord::Failed(FetchFailure {
            status: Some(500),
            error: "HTTP 500".into(),
            gone: false,
            retry_after_until: None,
        }),
        ..poll(feed, now, Vec::new())
    }
}

/// Every poll of a write counts in its feed's row, as if written one after
/// the other: two failed polls of one feed are two failures; a fetch ends
/// the run and keeps its validators; a 304 ends it too.
fn every_poll_of_a_write_counts_in_its_feed(at: &Location) {
    let (mut store, a) = open(at);
    let feeds = store
        .sync_feeds(&[
            ("A".into(), "https://a.example/rss".into()),
            ("B".into(), "https://b.example/rss".into()),
        ])
        .unwrap();
    let b = feeds.iter().find(|f| f.name == "B").unwrap().id;
    let state = |store: &Store, id: FeedId| {
        store
            .feed_states()
            .unwrap()
            .into_iter()
            .find(|f| f.id == id)
            .unwrap()
    };
    let written = store
        .record_polls(&[
            failed(a, 10),
            failed(b, 10),
            failed(a, 11),
            poll(b, 12, Vec::new()),
        ])
        .unwrap();
    assert!(written.iter().all(Result::is_ok), "{written:?}");
    let (sa, sb) = (state(&store, a), state(&store, b));
    assert_eq!((sa.consecutive_failures, sa.next_poll), (2, Some(71)));
    assert_eq!((sb.consecutive_failures, sb.next_poll), (0, Some(72)));
    assert_eq!(sa.first_success, None);

    let fetched = PollRecord {
        fetch: FetchRecord::Fetched {
            status: 200,
            etag: Some("\"e1\"".into()),
            last_modified: Some("Mon, 07 Dec 2026 10:00:00 GMT".into()),
            items: 0,
            unread_items: 0,
        },
        ..poll(a, 20, Vec::new())
    };
    store.record_polls(&[fetched, failed(b, 20)]).unwrap();
    let (sa, sb) = (state(&store, a), state(&store, b));
    assert_eq!(sa.consecutive_failures, 0);
    assert_eq!(sa.etag.as_deref(), Some("\"e1\""));
    assert_eq!(sa.first_success, Some(20));
    assert_eq!(sb.consecutive_failures, 1);
}

/// Claims `feeds` at `now` for a minute (`per_host` 2), ending the claims
/// of `finished` first; what it took, by name.
fn take(store: &mut Store, feeds: &[FeedState], finished: &[FeedId], now: i64) -> Vec<FeedState> {
    let ids: Vec<FeedId> = feeds.iter().map(|f| f.id).collect();
    let mut taken = store
        .claim_feeds(&FeedClaim {
            candidates: &ids,
            fetched: &[],
            finished,
            now,
            until: now + 60,
            limit: 10,
            per_host: 2,
            any_time: false,
        })
        .unwrap();
    taken.sort_by(|a, b| a.name.cmp(&b.name));
    taken
}

fn names(feeds: &[FeedState]) -> Vec<&str> {
    feeds.iter().map(|f| f.name.as_str()).collect()
}

/// A quiet poll of `feed` made under its claim.
fn polled(feed: &FeedState, now: i64) -> PollRecord {
    PollRecord {
        lease: Some(feed.lease),
        ..poll(feed.id, now, Vec::new())
    }
}

/// SPEC §10, feeds: each feed is polled by one process at a time; a host
/// never sees more than `per_host` fetches from all processes together;
/// a poll is recorded only under the claim it was fetched with.
fn feeds_are_claimed_by_one_process_at_a_time(at: &Location) {
    let mut first = Store::open(at).unwrap();
    let specs: Vec<(String, String)> = [
        ("a", "https://one.example/a"),
        ("b", "https://one.example/b"),
        ("c", "https://one.example/c"),
        ("d", "https://two.example/d"),
    ]
    .iter()
    .map(|(n, u)| ((*n).into(), (*u).into()))
    .collect();
    let feeds = first.sync_feeds(&specs).unwrap();
    let mut second = Store::open(at).unwrap();
    assert_eq!(second.sync_feeds(&specs).unwrap().len(), 4);

    let mine = take(&mut first, &feeds, &[], 100);
    assert_eq!(names(&mine), ["a", "b", "d"], "two of one.example");
    assert!(mine.iter().all(|f| f.lease > 0), "{mine:?}");
    assert!(
        take(&mut second, &feeds, &[], 101).is_empty(),
        "held, or their host is busy"
    );
    // The first records a's poll under its claim: its host has room for c.
    first
        .record_polls(&[polled(&mine[0], 102)])
        .unwrap()
        .remove(0)
        .unwrap();
    let theirs = take(&mut second, &feeds, &[], 103);
    assert_eq!(names(&theirs), ["c"]);
    assert!(
        take(&mut second, &feeds, &[], 104).is_empty(),
        "a is not due until 162"
    );
    // The second's poll of c fails unrecorded; it ends that claim at its
    // next, which takes c again.
    assert_eq!(
        names(&take(&mut second, &feeds, &[theirs[0].id], 105)),
        ["c"]
    );

    // The claims run out; the second takes what is due, never polled
    // first (b, c) and two of one.example at most: a waits. The first's
    // poll of b is refused: the feed is the second's now.
    let later = take(&mut second, &feeds, &[], 170);
    assert_eq!(names(&later), ["b", "c", "d"]);
    assert!(later[0].lease > mine[1].lease, "a new claim on b");
    let refused = first
        .record_polls(&[polled(&mine[1], 171)])
        .unwrap()
        .remove(0);
    assert!(refused.is_err(), "fenced: {refused:?}");
    second
        .record_polls(&[polled(&later[0], 172)])
        .unwrap()
        .remove(0)
        .unwrap();

    // A stopping process ends its claims: what it held is free at once.
    assert_eq!(second.release_feeds().unwrap(), 2, "c and d");
    assert_eq!(names(&take(&mut first, &feeds, &[], 173)), ["a", "c", "d"]);
}

/// SPEC §10: a write of several polls records those whose claims hold and
/// refuses only the one whose claim passed to another process.
fn a_write_refuses_only_the_poll_whose_claim_passed_on(at: &Location) {
    let mut first = Store::open(at).unwrap();
    let specs: Vec<(String, String)> = [
        ("a", "https://one.example/a"),
        ("b", "https://two.example/b"),
    ]
    .iter()
    .map(|(n, u)| ((*n).into(), (*u).into()))
    .collect();
    let feeds = first.sync_feeds(&specs).unwrap();
    let mut second = Store::open(at).unwrap();
    let mine = take(&mut first, &feeds, &[], 100);
    assert_eq!(names(&mine), ["a", "b"]);
    // Both claims run out; the second takes a only.
    assert_eq!(names(&take(&mut second, &feeds[..1], &[], 170)), ["a"]);
    let written = first
        .record_polls(&[polled(&mine[0], 171), polled(&mine[1], 171)])
        .unwrap();
    assert!(written[0].is_err(), "a is the second's: {written:?}");
    assert!(written[1].is_ok(), "b's claim held: {written:?}");
    let states = first.feed_states().unwrap();
    let next = |name: &str| states.iter().find(|f| f.name == name).unwrap().next_poll;
    assert_eq!((next("a"), next("b")), (None, Some(231)));
}

/// SPEC §10, once-per-tick work: one process at a time holds its lease;
/// when it runs out another takes it, and the first cannot renew the new
/// term. `status` lists the processes, the feeds each holds and who leads.
fn one_process_leads_at_a_time(at: &Location) {
    let me = |pid: u32, digest: &str| ProcessInfo {
        host: "m1".into(),
        pid,
        version: "1.0".into(),
        config_digest: digest.into(),
    };
    let (mut first, feed) = open(at);
    let mut second = Store::open(at).unwrap();
    assert!(
        first.heartbeat(&me(1, "c1"), 100, 130).unwrap(),
        "free: taken"
    );
    assert!(!second.heartbeat(&me(2, "c2"), 101, 131).unwrap(), "held");
    assert!(first.heartbeat(&me(1, "c1"), 105, 135).unwrap(), "renewed");
    // The first stalls past its lease: the second takes it, and the first,
    // back, cannot take the new term.
    assert!(
        second.heartbeat(&me(2, "c2"), 136, 166).unwrap(),
        "ran out: taken"
    );
    assert!(
        !first.heartbeat(&me(1, "c1"), 137, 167).unwrap(),
        "not the first's any more"
    );
    let taken = first
        .claim_feeds(&FeedClaim {
            candidates: &[feed],
            fetched: &[],
            finished: &[],
            now: 138,
            until: 200,
            limit: 5,
            per_host: 2,
            any_time: true,
        })
        .unwrap();
    assert_eq!(taken.len(), 1);

    let listed = first.status().unwrap().processes;
    let seen: Vec<(i64, i64, bool, &str)> = listed
        .iter()
        .map(|p| (p.pid, p.feeds_held, p.leads, p.config_digest.as_str()))
        .collect();
    assert_eq!(
        seen,
        [(1, 1, false, "c1"), (2, 0, true, "c2")],
        "{listed:?}"
    );
    // A stopping process leaves the list and its lease: the other takes
    // it at once.
    second.retire().unwrap();
    assert!(
        first.heartbeat(&me(1, "c1"), 139, 169).unwrap(),
        "free again"
    );
    assert_eq!(first.status().unwrap().processes.len(), 1);
}

/// SPEC §10, once-per-tick work: a digest tick is taken once, however many
/// processes find it due at the same moment; the one that finds it taken
/// makes no digest, and what it would have held waits for the next.
fn a_digest_tick_is_made_once(at: &Location) {
    let (mut first, feed) = open(at);
    let mut second = Store::open(at).unwrap();
    assert!(
        first.take_tick("matin", None, 100).unwrap(),
        "a new channel"
    );
    assert!(
        !second.take_tick("matin", None, 100).unwrap(),
        "seen already"
    );
    first
        .record_polls(&[poll(
            feed,
            150,
            vec![record("a", "https://x.example/a", "matin")],
        )])
        .unwrap();
    // Both read the last tick (100) and find the next one due.
    let ids = |c: &Claimed| c.alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    let members = ids(&first.digest_members("matin", 200).unwrap());
    assert_eq!(members.len(), 1);
    assert!(
        first
            .create_digest("matin", "d1", &members, &[], "{}", 200, Some(100))
            .unwrap()
    );
    // An alert recorded since: the second would make a digest of it alone.
    first
        .record_polls(&[poll(
            feed,
            201,
            vec![record("b", "https://x.example/b", "matin")],
        )])
        .unwrap();
    let late = ids(&second.digest_members("matin", 202).unwrap());
    assert_eq!(late.len(), 1, "only the new one is not in a digest");
    assert!(
        !second
            .create_digest("matin", "d2", &late, &[], "{}", 202, Some(100))
            .unwrap(),
        "the tick after 100 is made already"
    );
    assert!(!second.take_tick("matin", Some(100), 202).unwrap());
    assert_eq!(second.last_tick("matin").unwrap(), Some(200));
    assert_eq!(rows_in(at, "digests"), 1);
    // Not lost: the next tick holds it.
    assert_eq!(ids(&second.digest_members("matin", 300).unwrap()), late);
}

/// One test per backend for each case.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$case(&veille::store::Location::File(dir.path().join("v.db")));
                }
            )*
        }

        mod on_postgresql {
            $(
                #[test]
                fn $case() {
                    let url = super::pg_server::database();
                    let at = veille::store::Location::postgres(&url).unwrap();
                    // The blocking client may not run inside a test's
                    // runtime; these tests have none.
                    super::$case(&at);
                }
            )*
        }
    };
}

on_both!(
    stories_and_known_items,
    an_item_recorded_first_elsewhere_is_updated,
    an_outcome_is_fenced_once_the_claim_passed_on,
    pruning_takes_the_wire_prints_with_the_items,
    feeds_are_claimed_by_one_process_at_a_time,
    one_process_leads_at_a_time,
    a_digest_tick_is_made_once,
    one_alert_a_story_names_every_rule,
    every_poll_of_a_write_counts_in_its_feed,
    a_write_refuses_only_the_poll_whose_claim_passed_on,
);

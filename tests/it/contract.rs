//! The store's contract, run against both backends through the same face
//! (`veille::store::Store`): an SQLite file and a PostgreSQL database of the
//! test server (`pg_server`). Each case is written once, over a `Location`;
//! `on_both!` makes one test per backend.

use veille::domain::health::{Episode, Event, Facts, Notice, Open};
use veille::domain::identity::Identity;
use veille::domain::ids::FeedId;
use veille::domain::model::Item;
use veille::domain::poll::FetchFailure;
use veille::domain::wire::{Evidence, Fingerprint};
use veille::store::texts::{History, Unpacker};
use veille::store::{
    AlertDraft, ChannelFault, Claimed, Cursor, FeedClaim, FeedState, FetchRecord, HealthChange,
    ItemRecord, KnownItem, Location, PollRecord, ProcessInfo, RecentChannel, RecordSummary,
    Requeued, RobotsTxt, Store, StoredHit, Target,
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

/// Records one poll of `feed` at `now` with `items`, which must be written.
fn recorded(store: &mut Store, feed: FeedId, now: i64, items: Vec<ItemRecord>) -> RecordSummary {
    store
        .record_polls(&[poll(feed, now, items)])
        .unwrap()
        .remove(0)
        .unwrap()
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
    let (mut store, _) = open(at);
    let ids = with_feeds(&mut store, &["A", "B"]);
    let (a, b) = (ids[0], ids[1]);
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

/// Several alerts recorded sent by one call: each as `mark_sent` would,
/// in the order asked. One whose lease passed to another process is not
/// recorded (the holder's record stands), nor one no longer pending.
fn several_alerts_are_recorded_sent_at_once(at: &Location) {
    let (mut first, feed) = open(at);
    let items = vec![
        record("a", "https://x.example/a", "mail"),
        record("b", "https://x.example/b", "mail"),
        record("c", "https://x.example/c", "mail"),
    ];
    first.record_polls(&[poll(feed, 10, items)]).unwrap();
    let mut second = Store::open(at).unwrap();
    assert_eq!(
        first
            .claim_alerts(100, 160, &["mail"], false, 2)
            .unwrap()
            .alerts
            .len(),
        2
    );
    // The first stalls past its lease: the second takes all three, gives
    // one back, which the first takes.
    let theirs = second.claim_alerts(200, 260, &["mail"], false, 3).unwrap();
    assert_eq!(theirs.alerts.len(), 3);
    let mine = first.claim_alerts(205, 265, &["mail"], false, 3).unwrap();
    assert!(mine.alerts.is_empty(), "all held by the second");
    let given = theirs.alerts[2].id.clone();
    second
        .release(Target::Alert, std::slice::from_ref(&given))
        .unwrap();
    let mine = first.claim_alerts(210, 270, &["mail"], false, 3).unwrap();
    let ids: Vec<&str> = mine.alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [given.as_str()]);
    let (held, done) = (theirs.alerts[0].id.as_str(), theirs.alerts[1].id.as_str());
    assert_eq!(second.mark_sent(Target::Alert, done, 215).unwrap(), [10]);

    let marked = first
        .mark_alerts_sent(&[held, given.as_str(), done], 220)
        .unwrap();
    assert_eq!(
        marked,
        [vec![], vec![10], vec![]],
        "only the first's own pending alert is recorded"
    );
    let status = first.status().unwrap();
    let mail = &status.channels[0];
    assert_eq!((mail.sent, mail.pending), (2, 1), "{status:?}");
    // The holder records its own.
    assert_eq!(second.mark_alerts_sent(&[held], 230).unwrap(), [vec![10]]);
    assert!(first.mark_alerts_sent(&[], 240).unwrap().is_empty());
    let status = first.status().unwrap();
    assert_eq!(
        (status.channels[0].sent, status.channels[0].pending),
        (3, 0)
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
    let (mut store, _) = open(at);
    let ids = with_feeds(&mut store, &["A", "B"]);
    let (a, b) = (ids[0], ids[1]);
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
    take_told(store, feeds, (&[], finished), now)
}

/// `take`, telling the store first of the fetches `fetched` ended.
fn take_told(
    store: &mut Store,
    feeds: &[FeedState],
    (fetched, finished): (&[FeedId], &[FeedId]),
    now: i64,
) -> Vec<FeedState> {
    let ids: Vec<FeedId> = feeds.iter().map(|f| f.id).collect();
    let mut taken = store
        .claim_feeds(&FeedClaim {
            candidates: &ids,
            fetched,
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

/// Feeds to sync, as (name, url).
fn specs(feeds: &[(&str, &str)]) -> Vec<(String, String)> {
    feeds
        .iter()
        .map(|(n, u)| ((*n).into(), (*u).into()))
        .collect()
}

/// SPEC §10, feeds: each feed is polled by one process at a time; a host
/// never sees more than `per_host` fetches from all processes together;
/// a poll is recorded only under the claim it was fetched with.
fn feeds_are_claimed_by_one_process_at_a_time(at: &Location) {
    let mut first = Store::open(at).unwrap();
    let specs = specs(&[
        ("a", "https://one.example/a"),
        ("b", "https://one.example/b"),
        ("c", "https://one.example/c"),
        ("d", "https://two.example/d"),
    ]);
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
    // Made again, it would be refused again: not a passing fault.
    assert_eq!(refused.unwrap_err().kind(), veille::store::Kind::Broken);
    second
        .record_polls(&[polled(&later[0], 172)])
        .unwrap()
        .remove(0)
        .unwrap();

    // A stopping process ends its claims: what it held is free at once.
    assert_eq!(second.release_feeds().unwrap(), 2, "c and d");
    assert_eq!(names(&take(&mut first, &feeds, &[], 173)), ["a", "c", "d"]);
}

/// A fetch told done (`fetched`) frees its place on its host for the next
/// claim but keeps its claim until its poll is written (wire copies write
/// a run's polls together); a claim told finished is ended.
fn a_fetch_told_done_keeps_its_claim_until_written(at: &Location) {
    let mut first = Store::open(at).unwrap();
    let specs = specs(&[
        ("a", "https://one.example/a"),
        ("b", "https://one.example/b"),
        ("c", "https://one.example/c"),
    ]);
    let feeds = first.sync_feeds(&specs).unwrap();
    let mut second = Store::open(at).unwrap();
    let claim = |store: &mut Store, fetched: &[FeedId], finished: &[FeedId], now: i64| {
        take_told(store, &feeds, (fetched, finished), now)
    };
    let mine = claim(&mut first, &[], &[], 100);
    assert_eq!(names(&mine), ["a", "b"], "two of one.example");
    // a fetched: its host has room for c; a itself stays the first's.
    let more = claim(&mut first, &[mine[0].id], &[], 101);
    assert_eq!(names(&more), ["c"]);
    assert!(claim(&mut second, &[], &[], 102).is_empty(), "all held");
    first
        .record_polls(&[polled(&mine[0], 103)])
        .unwrap()
        .remove(0)
        .expect("a's claim held");
    // b's claim told finished (its poll failed): b is free, and this claim
    // takes it anew.
    let again = claim(&mut first, &[], &[mine[1].id], 104);
    assert_eq!(names(&again), ["b"]);
    assert!(again[0].lease > mine[1].lease, "a new claim on b");
    assert!(claim(&mut second, &[], &[], 105).is_empty());
}

/// SPEC §10: a write of several polls records those whose claims hold and
/// refuses only the one whose claim passed to another process.
fn a_write_refuses_only_the_poll_whose_claim_passed_on(at: &Location) {
    let mut first = Store::open(at).unwrap();
    let specs = specs(&[
        ("a", "https://one.example/a"),
        ("b", "https://two.example/b"),
    ]);
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
    recorded(
        &mut first,
        feed,
        150,
        vec![record("a", "https://x.example/a", "matin")],
    );
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
    recorded(
        &mut first,
        feed,
        201,
        vec![record("b", "https://x.example/b", "matin")],
    );
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

/// Feeds named `names`, each at `https://<name>.example/rss` (A where
/// `open` put it); their ids, in that order.
fn with_feeds(store: &mut Store, names: &[&str]) -> Vec<FeedId> {
    let specs: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            let url = format!("https://{}.example/rss", n.to_lowercase());
            ((*n).into(), url)
        })
        .collect();
    let states = store.sync_feeds(&specs).unwrap();
    names
        .iter()
        .map(|n| states.iter().find(|f| f.name == *n).unwrap().id)
        .collect()
}

/// What waits per channel, by name.
fn pending(store: &Store) -> Vec<(String, i64)> {
    let mut waiting = store.pending_by_channel().unwrap();
    waiting.sort();
    waiting
}

/// SPEC §7, full text: a site's robots.txt is kept for every process on
/// the database, each fetch in place of the one before; a site's file
/// over two days old is forgotten when another is kept.
fn a_sites_robots_txt_is_kept_in_place_of_the_last(at: &Location) {
    let (mut store, _) = open(at);
    let robots = |origin: &str, fetched_at: i64, status: u16, body: &str| RobotsTxt {
        origin: origin.into(),
        fetched_at,
        status,
        body: body.into(),
    };
    let a = "https://a.example:443";
    assert_eq!(store.robots(a).unwrap(), None);
    let first = robots(a, 1_000, 200, "User-agent: *\nDisallow: /prive/\n");
    store.keep_robots(&first).unwrap();
    let other = Store::open(at).unwrap();
    assert_eq!(other.robots(a).unwrap(), Some(first));
    let again = robots(a, 90_000, 503, "");
    store.keep_robots(&again).unwrap();
    assert_eq!(other.robots(a).unwrap(), Some(again));
    assert_eq!(other.robots("https://b.example:443").unwrap(), None);
    let b = robots("https://b.example:443", 90_000 + 2 * 86_400 + 1, 404, "");
    store.keep_robots(&b).unwrap();
    assert_eq!(other.robots(a).unwrap(), None, "over two days old");
    assert_eq!(other.robots(&b.origin).unwrap(), Some(b));
    assert_eq!(rows_in(at, "robots"), 1);
}

/// SPEC §10, delivery: each store opened holds its claims for an owner of
/// its own; one that acts for another's owner (two connections of one
/// process) holds that one's leases, renews them and records their
/// outcomes, which it could not do before.
fn two_connections_of_one_process_are_one_holder(at: &Location) {
    let (mut first, feed) = open(at);
    recorded(
        &mut first,
        feed,
        10,
        vec![record("a", "https://x.example/a", "mail")],
    );
    let mut second = Store::open(at).unwrap();
    assert_ne!(first.owner(), second.owner());
    let claimed = first.claim_alerts(100, 160, &["mail"], false, 1).unwrap();
    let id = &claimed.alerts[0].id;
    assert!(
        !second.renew(Target::Alert, id, 200).unwrap(),
        "the first's"
    );
    assert!(second.mark_sent(Target::Alert, id, 110).unwrap().is_empty());

    second.act_for(first.owner());
    assert_eq!(second.owner(), first.owner());
    assert!(second.renew(Target::Alert, id, 200).unwrap());
    let mut third = Store::open(at).unwrap();
    assert!(
        third
            .claim_alerts(170, 230, &["mail"], false, 1)
            .unwrap()
            .alerts
            .is_empty(),
        "renewed until 200"
    );
    assert_eq!(second.mark_sent(Target::Alert, id, 180).unwrap(), [10]);
    assert_eq!(first.status().unwrap().channels[0].sent, 1);
}

/// SPEC §4, retention: the space rows leave behind is given back up to
/// what is asked and never more, and what is said to be given back is (a
/// backend that gives none back reuses it); a checkpoint leaves nothing
/// buffered beside the database proper (SQLite's write-ahead log is
/// emptied, and the file shrinks by what was given back). The database
/// answers its health check throughout.
fn freed_space_is_given_back_up_to_what_is_asked(at: &Location) {
    let (mut store, _) = open(at);
    store.health().unwrap();
    let robots = |origin: &str, fetched_at: i64, body: String| RobotsTxt {
        origin: origin.into(),
        fetched_at,
        status: 200,
        body,
    };
    // A large file, forgotten when another site's is kept days later.
    let large = "Disallow: /archives/\n".repeat(40_000);
    store
        .keep_robots(&robots("https://a.example:443", 0, large))
        .unwrap();
    store
        .keep_robots(&robots("https://b.example:443", 3 * 86_400, String::new()))
        .unwrap();
    store.checkpoint().unwrap();
    let size = |path: &std::path::Path| std::fs::metadata(path).unwrap().len();
    // What `reclaim(bytes)` says it gave, checked against the file.
    let mut give_back = |bytes: u64| {
        let before = match at {
            Location::File(path) => size(path),
            Location::Postgres(_) => 0,
        };
        let given = store.reclaim(bytes).unwrap();
        assert!(given <= bytes, "asked {bytes}, gave {given}");
        store.checkpoint().unwrap();
        if let Location::File(path) = at {
            let shrunk = before - size(path);
            assert_eq!(shrunk, given, "asked {bytes}: the file shrank by {shrunk}");
            let log = path.with_file_name(format!("{}-wal", path.display()));
            assert_eq!(size(&log), 0, "the write-ahead log is empty");
        }
        store.health().unwrap();
        given
    };
    assert_eq!(give_back(0), 0);
    assert_eq!(give_back(1_000), 0, "less than a page");
    let page = give_back(4096);
    let rest = give_back(u64::MAX);
    if let Location::File(_) = at {
        assert!(
            page > 0 && rest > 0,
            "the file had free pages: {page}, {rest}"
        );
    }
    assert_eq!(give_back(u64::MAX), 0, "nothing more is free");
}

/// SPEC §5: a fault of the channel pauses it whole; each fault after the
/// first keeps it paused one backoff step longer (from 30 s, doubling),
/// counted from the first fault, and never ends the pause before the wait
/// the server asked for. It is listed as paused until its next attempt is
/// due; the first delivery on it ends its pause, not another channel's.
fn a_channel_fault_pauses_it_until_it_sends(at: &Location) {
    let (mut store, feed) = open(at);
    recorded(
        &mut store,
        feed,
        10,
        vec![record("a", "https://x.example/a", "mail")],
    );
    assert!(store.paused_channels(0).unwrap().is_empty());
    let first = store
        .pause_channel("mail", "535 login refused", 100, 1.0, 0)
        .unwrap();
    let fault = |error: &str, since, attempts, retry_at| ChannelFault {
        error: error.into(),
        since,
        attempts,
        retry_at,
    };
    assert_eq!(first, fault("535 login refused", 100, 1, 130));
    let longer = store
        .pause_channel("mail", "TLS failed", 130, 1.0, 0)
        .unwrap();
    assert_eq!(longer, fault("TLS failed", 100, 2, 190));
    let asked = store
        .pause_channel("mail", "421 later", 190, 1.0, 1_000)
        .unwrap();
    assert_eq!(
        asked,
        fault("421 later", 100, 3, 1_000),
        "the server's wait"
    );
    let hook = store.pause_channel("hook", "401", 200, 0.0, 0).unwrap();
    assert_eq!(hook, fault("401", 200, 1, 215));

    let other = Store::open(at).unwrap();
    assert_eq!(
        other.paused_channels(214).unwrap(),
        [
            ("hook".to_string(), hook.clone()),
            ("mail".into(), asked.clone())
        ]
    );
    assert_eq!(
        other.paused_channels(999).unwrap(),
        [("mail".to_string(), asked.clone())]
    );
    assert!(
        other.paused_channels(1_000).unwrap().is_empty(),
        "due for its next attempt"
    );
    assert_eq!(other.status().unwrap().channels[0].paused, Some(asked));

    let claimed = store
        .claim_alerts(1_000, 1_060, &["mail"], false, 1)
        .unwrap();
    assert_eq!(
        store
            .mark_sent(Target::Alert, &claimed.alerts[0].id, 1_001)
            .unwrap(),
        [10]
    );
    let paused = other.paused_channels(0).unwrap();
    assert_eq!(paused, [("hook".to_string(), hook)], "mail's pause is over");
    let status = other.status().unwrap();
    let mail = status.channels.iter().find(|c| c.name == "mail").unwrap();
    assert_eq!(mail.paused, None);
    let anew = store.pause_channel("mail", "535", 2_000, 0.0, 0).unwrap();
    assert_eq!(anew, fault("535", 2_000, 1, 2_015), "a pause of its own");
}

/// SPEC §1 `veille retry`, §5: an alert failed for good, or found damaged
/// (whoever held it), is not claimed again and is counted as failed, the
/// damaged one with its reason; the retry puts both back in the queue, due
/// at once for a new round of tries, makes the channel's pending alerts
/// due now and ends its pause, and touches no other channel. What waits
/// is counted per channel throughout.
fn a_retry_queues_a_channels_failed_alerts_again(at: &Location) {
    let (mut store, feed) = open(at);
    let items = vec![
        record("a", "https://x.example/a", "mail"),
        record("b", "https://x.example/b", "mail"),
        record("c", "https://x.example/c", "mail"),
        record("d", "https://x.example/d", "push"),
    ];
    store.record_polls(&[poll(feed, 10, items)]).unwrap();
    assert_eq!(
        pending(&store),
        [("mail".to_string(), 3), ("push".into(), 1)]
    );
    let claimed = store.claim_alerts(100, 160, &["mail"], false, 10).unwrap();
    let by_title = |title: &str| {
        let alert = claimed.alerts.iter().find(|a| a.item.title == title);
        alert.unwrap().id.clone()
    };
    let (a, b, c) = (by_title("a"), by_title("b"), by_title("c"));
    store
        .mark_attempt_failed(Target::Alert, &a, "550 no such user", None)
        .unwrap();
    store
        .mark_attempt_failed(Target::Alert, &b, "451 later", Some(5_000))
        .unwrap();
    let mut other = Store::open(at).unwrap();
    other
        .mark_damaged(Target::Alert, &c, "its rules are not JSON")
        .unwrap();
    assert_eq!(
        pending(&store),
        [("mail".to_string(), 1), ("push".into(), 1)]
    );
    assert!(
        other
            .claim_alerts(4_000, 4_060, &["mail"], false, 10)
            .unwrap()
            .alerts
            .is_empty(),
        "b is not due, a and c failed"
    );
    let status = store.status().unwrap();
    let mail = &status.channels[0];
    assert_eq!(
        (mail.name.as_str(), mail.pending, mail.failed),
        ("mail", 1, 2)
    );
    let damaged: Vec<(&str, &str, &str)> = mail
        .damaged
        .iter()
        .map(|d| (d.id.as_str(), d.kind, d.reason.as_str()))
        .collect();
    assert_eq!(damaged, [(c.as_str(), "alert", "its rules are not JSON")]);
    store.pause_channel("mail", "535", 4_000, 1.0, 0).unwrap();
    store.pause_channel("push", "401", 4_000, 1.0, 0).unwrap();

    let requeued = store.requeue_failed("mail", 4_010).unwrap();
    assert_eq!(
        requeued,
        Requeued {
            alerts: 2,
            digests: 0,
            hastened: 1,
            resumed: true
        }
    );
    assert_eq!(
        pending(&store),
        [("mail".to_string(), 3), ("push".into(), 1)]
    );
    let paused: Vec<String> = store
        .paused_channels(4_010)
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(paused, ["push"]);
    let again = other
        .claim_alerts(4_010, 4_070, &["mail"], false, 10)
        .unwrap();
    let mut seen: Vec<(String, u32, i64)> = again
        .alerts
        .iter()
        .map(|d| (d.id.clone(), d.attempts, d.queued))
        .collect();
    seen.sort();
    let mut expected = vec![(a, 0, 4_010), (b, 1, 10), (c, 0, 4_010)];
    expected.sort();
    assert_eq!(seen, expected, "a new round for the failed ones");
    assert_eq!(
        store.requeue_failed("mail", 4_020).unwrap(),
        Requeued::default(),
        "nothing left to retry"
    );
}

/// SPEC §7, feed health: a feed's health facts are read back as its polls
/// left them. A review's change is recorded once (another process that
/// reviewed the same state records nothing) and queues one alert per
/// channel, due at once, taken by one process at a time and counted as
/// waiting until sent; the recovery ends the episode.
fn a_health_change_is_recorded_once_and_alerts_each_channel(at: &Location) {
    let mut store = Store::open(at).unwrap();
    let ids = with_feeds(&mut store, &["A", "B"]);
    let (a, b) = (ids[0], ids[1]);
    let mut quiet = record("b1", "https://x.example/b1", "mail");
    quiet.alerts.clear();
    let fetched = PollRecord {
        fetch: FetchRecord::Fetched {
            status: 200,
            etag: None,
            last_modified: None,
            items: 1,
            unread_items: 0,
        },
        ..poll(b, 10, vec![quiet])
    };
    store
        .record_polls(&[failed(a, 10), fetched, failed(a, 20)])
        .unwrap();
    let health = store.feed_health(&["A", "B", "Z"]).unwrap();
    let seen: Vec<(i64, &str, Option<Open>, &Facts)> = health
        .iter()
        .map(|f| (f.feed_id, f.name.as_str(), f.open, &f.facts))
        .collect();
    let failing = Facts {
        failing_since: Some(10),
        last_error: Some("HTTP 500".into()),
        last_fetch: Some(20),
        ..Facts::default()
    };
    let fine = Facts {
        first_success: Some(10),
        last_fetch: Some(10),
        arrivals: vec![10],
        ..Facts::default()
    };
    assert_eq!(seen, [(a.0, "A", None, &failing), (b.0, "B", None, &fine)]);

    assert!(!store.health_pending().unwrap());
    let open = Open {
        episode: Episode::Failing,
        since: 10,
    };
    let notice = Notice {
        feed: "A".into(),
        url: Some("https://a.example/rss".into()),
        event: Event::Failing,
        recovered_from: None,
        since: 10,
        at: 100,
        error: Some("HTTP 500".into()),
        usual_gap: None,
    };
    let change = HealthChange {
        feed_id: a.0,
        was: None,
        open: Some(open),
        notices: vec![notice.clone()],
    };
    let channels = ["mail".to_string(), "hook".into()];
    let mut other = Store::open(at).unwrap();
    assert_eq!(
        store
            .record_health(std::slice::from_ref(&change), &channels, 100)
            .unwrap(),
        2
    );
    assert_eq!(
        other.record_health(&[change], &channels, 101).unwrap(),
        0,
        "recorded already"
    );
    assert!(other.health_pending().unwrap());
    assert_eq!(other.feed_health(&["A"]).unwrap()[0].open, Some(open));
    assert_eq!(
        pending(&store),
        [("hook".to_string(), 1), ("mail".into(), 1)]
    );

    assert!(
        store
            .claim_health(99, 159, &["mail"])
            .unwrap()
            .health
            .is_empty(),
        "due at 100"
    );
    let mine = store.claim_health(100, 160, &["mail"]).unwrap();
    let [h] = &mine.health[..] else {
        panic!("one health alert for mail: {mine:?}");
    };
    assert_eq!(
        (h.channel.as_str(), h.attempts, h.queued, &h.notice),
        ("mail", 0, 100, &notice)
    );
    assert!(mine.alerts.is_empty() && mine.damaged.is_empty());
    assert!(
        other
            .claim_health(110, 170, &["mail"])
            .unwrap()
            .health
            .is_empty(),
        "held by the first"
    );
    let theirs = other.claim_health(110, 170, &["hook", "mail"]).unwrap();
    assert_eq!(theirs.health.len(), 1, "{theirs:?}");
    assert_eq!(theirs.health[0].channel, "hook");
    assert!(
        store
            .mark_sent(Target::Health, &h.id, 120)
            .unwrap()
            .is_empty()
    );
    assert!(store.health_pending().unwrap(), "the hook's still waits");
    other
        .mark_sent(Target::Health, &theirs.health[0].id, 121)
        .unwrap();
    assert!(!store.health_pending().unwrap());
    assert!(pending(&store).is_empty());

    let recovered = HealthChange {
        feed_id: a.0,
        was: Some(open),
        open: None,
        notices: vec![Notice {
            event: Event::Recovered,
            recovered_from: Some(Episode::Failing),
            at: 200,
            error: None,
            ..notice
        }],
    };
    assert_eq!(
        store
            .record_health(&[recovered], &channels[..1], 200)
            .unwrap(),
        1
    );
    assert_eq!(store.feed_health(&["A"]).unwrap()[0].open, None);
    assert!(store.health_pending().unwrap());
}

/// SPEC §5, a digest ends with the feeds failing for more than a day or
/// gone: those among the names given whose failures began by the time
/// given, or that are gone; not a feed that recovered, nor one failing
/// since later, nor one not named.
fn failing_feeds_are_those_failing_since_before_or_gone(at: &Location) {
    let mut store = Store::open(at).unwrap();
    let ids = with_feeds(&mut store, &["A", "B", "C", "D", "E"]);
    let (a, b, c, d, e) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let gone = PollRecord {
        fetch: FetchRecord::Failed(FetchFailure {
            status: Some(410),
            error: "HTTP 410".into(),
            gone: true,
            retry_after_until: None,
        }),
        ..poll(d, 900, Vec::new())
    };
    store
        .record_polls(&[
            failed(a, 10),
            failed(b, 10),
            failed(c, 500),
            gone,
            failed(e, 10),
            failed(a, 20),
        ])
        .unwrap();
    store.record_polls(&[poll(b, 30, Vec::new())]).unwrap();
    let failing = store.failing_feeds(&["A", "B", "C", "D"], 100).unwrap();
    let seen: Vec<(&str, Option<i64>, bool, Option<&str>)> = failing
        .iter()
        .map(|f| {
            let since = f.since.map(|s| s.timestamp());
            (f.name.as_str(), since, f.gone, f.error.as_deref())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("A", Some(10), false, Some("HTTP 500")),
            ("D", Some(900), true, Some("HTTP 410"))
        ]
    );
    let later: Vec<String> = store
        .failing_feeds(&["B", "C"], 501)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(later, ["C"]);
    assert!(store.failing_feeds(&[], 1_000).unwrap().is_empty());
}

/// SPEC §1 `veille recent`: the stories with an alert made at or after the
/// time given, newest first, each with the rules it matched, its title and
/// link, the feeds that carry it in the order they brought it, and each
/// channel's alert with where it stands.
fn recent_lists_the_stories_alerted_since_newest_first(at: &Location) {
    let mut store = Store::open(at).unwrap();
    let ids = with_feeds(&mut store, &["A", "B"]);
    let (a, b) = (ids[0], ids[1]);
    let (s1, s2) = ("https://x.example/1", "https://x.example/2");
    store
        .record_polls(&[poll(a, 10, vec![matched("a1", s1, "mail", "r1")])])
        .unwrap();
    let mut both = matched("a2", s2, "mail", "r2");
    both.alerts.extend(matched("a2", s2, "push", "r3").alerts);
    store.record_polls(&[poll(a, 20, vec![both])]).unwrap();
    let mut copy = record("b2", s2, "mail");
    copy.alerts.clear();
    store.record_polls(&[poll(b, 30, vec![copy])]).unwrap();
    let claimed = store.claim_alerts(40, 100, &["mail"], false, 10).unwrap();
    for alert in &claimed.alerts {
        if alert.item.title == "a2" {
            store.mark_sent(Target::Alert, &alert.id, 41).unwrap();
        } else {
            store
                .mark_attempt_failed(Target::Alert, &alert.id, "550", None)
                .unwrap();
        }
    }

    let channel = |name: &str, state: &str| RecentChannel {
        name: name.into(),
        state: state.into(),
    };
    let recent = store.recent(0).unwrap();
    let seen: Vec<_> = recent
        .iter()
        .map(|s| {
            (
                s.at,
                s.rules.clone(),
                s.title.as_str(),
                s.link.as_deref(),
                s.outlets.clone(),
                s.channels.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                20,
                vec!["r2".to_string(), "r3".into()],
                "a2",
                Some(s2),
                vec!["A".to_string(), "B".into()],
                vec![channel("mail", "sent"), channel("push", "pending")]
            ),
            (
                10,
                vec!["r1".to_string()],
                "a1",
                Some(s1),
                vec!["A".to_string()],
                vec![channel("mail", "failed")]
            ),
        ]
    );
    assert_eq!(store.recent(11).unwrap(), recent[..1], "a1 came before");
    assert_eq!(store.recent(20).unwrap(), recent[..1]);
    assert!(store.recent(21).unwrap().is_empty());
}

/// SPEC §4, `keep_text`, and §1 `veille test --history`: each version of
/// an item recorded with its text kept is read back, in the order seen,
/// with its feed, its story and when that began, whether it was recorded
/// quietly, and its text as packed; with the oldest text kept and the
/// stories alerted since. An item recorded without `keep_text` is not.
/// Pruning drops the texts seen before the cutoff, oldest first and no
/// more than asked; how many went.
fn kept_texts_are_read_back_and_pruned_oldest_first(at: &Location) {
    let (mut store, feed) = open(at);
    let text = |mut r: ItemRecord, summary: &str| {
        r.item.summary = summary.into();
        r.item.content = format!("{summary}, en entier.");
        r.item.categories = vec!["Économie".into(), "Asie".into()];
        r
    };
    let kept = |p: PollRecord| PollRecord {
        keep_text: true,
        ..p
    };
    let (la, lq) = ("https://x.example/a", "https://x.example/q");
    let first = text(record("a", la, "mail"), "Les puces");
    store
        .record_polls(&[kept(poll(feed, 10, vec![first]))])
        .unwrap();
    let mut quiet = text(record("q", lq, "mail"), "Sans bruit");
    quiet.alerts.clear();
    quiet.quiet = true;
    store
        .record_polls(&[kept(poll(feed, 20, vec![quiet]))])
        .unwrap();
    let mut changed = text(record("a", la, "mail"), "Les puces, la suite");
    (changed.is_new, changed.content_hash) = (false, "h-a-2".into());
    changed.alerts.clear();
    let written = store
        .record_polls(&[kept(poll(feed, 30, vec![changed]))])
        .unwrap();
    assert_eq!(written[0].as_ref().unwrap().changed_items, 1);
    let lost = "https://x.example/n";
    store
        .record_polls(&[poll(feed, 40, vec![record("n", lost, "mail")])])
        .unwrap();
    let story = |link: &str| store.story_of_link(link).unwrap().unwrap();

    let mut read = History::default();
    store.history(15, &mut read).unwrap();
    assert_eq!(read.oldest, Some(10));
    assert_eq!(read.alerted, [(story(lost), vec!["r".to_string()], 40)]);
    let versions: Vec<_> = read
        .kept
        .iter()
        .map(|k| {
            let link = k.item.link.as_deref();
            (
                k.feed.as_str(),
                k.story,
                k.story_began,
                k.seen,
                k.quiet,
                link,
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("A", story(lq), 20, 20, true, Some(lq)),
            ("A", story(la), 10, 30, false, Some(la)),
        ]
    );
    let mut unpacker = Unpacker::default();
    let mut texts = Vec::new();
    for (k, packed) in read.kept.iter_mut().zip(&read.packed) {
        unpacker.unpack(k, packed).unwrap();
        let i = &k.item;
        texts.push((i.title.clone(), i.summary.clone(), i.content.clone()));
        assert_eq!(i.categories, ["Économie", "Asie"]);
    }
    let version = |title: &str, summary: &str| {
        let content = format!("{summary}, en entier.");
        (title.to_string(), summary.to_string(), content)
    };
    assert_eq!(
        texts,
        [
            version("q", "Sans bruit"),
            version("a", "Les puces, la suite")
        ]
    );

    let oldest = |store: &Store| {
        let mut read = History::default();
        store.history(0, &mut read).unwrap();
        (
            read.oldest,
            read.kept.iter().map(|k| k.seen).collect::<Vec<_>>(),
        )
    };
    assert_eq!(oldest(&store), (Some(10), vec![10, 20, 30]));
    assert_eq!(store.prune_texts(25, 1).unwrap(), 1);
    assert_eq!(oldest(&store), (Some(20), vec![20, 30]), "the oldest went");
    assert_eq!(store.prune_texts(25, 10).unwrap(), 1);
    assert_eq!(store.prune_texts(25, 10).unwrap(), 0);
    assert_eq!(oldest(&store), (Some(30), vec![30]));
    assert_eq!(store.retained().unwrap().items, 3, "the items stay");
}

/// SPEC §10, delivery, and §5: a frozen digest is taken when its tick has
/// come, for its channel only, by one process at a time and as it was
/// frozen; once the holder's lease runs out another takes it, and only
/// that one's send is recorded. A sent digest is not taken again, even by
/// `run --once --flush-digests` (any time).
fn a_frozen_digest_is_claimed_by_one_process_at_a_time(at: &Location) {
    let (mut first, feed) = open(at);
    let mut second = Store::open(at).unwrap();
    recorded(
        &mut first,
        feed,
        150,
        vec![record("a", "https://x.example/a", "matin")],
    );
    let members: Vec<String> = first
        .digest_members("matin", 200)
        .unwrap()
        .alerts
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let body = r#"{"stories":["a"]}"#;
    assert!(
        first
            .create_digest("matin", "d1", &members, &[], body, 200, None)
            .unwrap()
    );
    assert!(
        no_digest(&mut second, 199, "matin", false),
        "its tick is at 200"
    );
    assert!(
        no_digest(&mut second, 200, "mail", true),
        "another channel's"
    );
    let mine = first.claim_digests(200, 260, &["matin"], false).unwrap();
    let [d] = &mine[..] else {
        panic!("one digest: {mine:?}");
    };
    assert_eq!(
        (
            d.id.as_str(),
            d.channel.as_str(),
            d.attempts,
            d.queued,
            d.stories,
            d.body.as_str()
        ),
        ("d1", "matin", 0, 200, 1, body)
    );
    for store in [&mut second, &mut first] {
        assert!(no_digest(store, 210, "matin", true), "held until 260");
    }
    let theirs = second.claim_digests(260, 320, &["matin"], false).unwrap();
    assert_eq!(theirs.len(), 1, "the lease ran out");
    assert_eq!(theirs[0].id, "d1");
    assert!(
        first
            .mark_sent(Target::Digest, "d1", 261)
            .unwrap()
            .is_empty(),
        "fenced"
    );
    assert_eq!(
        second.mark_sent(Target::Digest, "d1", 262).unwrap(),
        [150],
        "its alert's item was first seen at 150"
    );
    assert!(no_digest(&mut first, 400, "matin", true), "sent");
}

/// No digest of `channel` is claimed at `now`, for a minute.
fn no_digest(store: &mut Store, now: i64, channel: &str, any_time: bool) -> bool {
    store
        .claim_digests(now, now + 60, &[channel], any_time)
        .unwrap()
        .is_empty()
}

/// SPEC §4, wire copies, as `veille test` shows them: another outlet's
/// copy of a stored item is found with the story it would join and why;
/// from the feed that carries the story it would not join; an unrelated
/// text finds nothing, nor does a copy published too far apart or looked
/// up once the stored print is older than those kept. A store reads the
/// stored prints into its index when first asked, not before.
fn a_wire_copy_is_found_among_the_stored_stories(at: &Location) {
    let mut store = Store::open(at).unwrap();
    let a = with_feeds(&mut store, &["A", "B"])[0];
    let text = "Le gouvernement a présenté mercredi un plan de soutien à la filière \
                des semi-conducteurs, doté de deux milliards d'euros sur cinq ans. \
                Les industriels saluent une première étape mais réclament davantage \
                de moyens pour la formation des ingénieurs et la recherche publique.";
    let mut stored = record("a", "https://a.example/plan", "mail");
    stored.item.summary = text.into();
    stored.wire = Some(Fingerprint::of(&stored.item));
    let mut first = poll(a, 10, vec![stored]);
    first.wire_window = 3600;
    first.wire_keep = 1_000_000;
    store.record_polls(&[first]).unwrap().remove(0).unwrap();
    assert_eq!(store.wire_index_size().0, 1, "the writer indexed its copy");
    let story = store.story_of_link("https://a.example/plan").unwrap();

    let mut fresh = Store::open(at).unwrap();
    assert_eq!(fresh.wire_index_size(), (0, 0), "not read yet");
    let item = |title: &str, summary: &str| Item {
        title: title.into(),
        link: Some("https://b.example/plan".into()),
        summary: summary.into(),
        ..Item::default()
    };
    let copy = item("Un plan pour les puces", text);
    let fp = Fingerprint::of(&copy);
    let found = fresh
        .wire_matches(&fp, &copy, 20, 3600, 1_000_000, "B")
        .unwrap();
    let [m] = &found[..] else {
        panic!("one story to compare with: {found:?}");
    };
    assert_eq!(Some(m.story_id), story);
    assert_eq!(
        (m.title.as_str(), m.evidence, m.same_feed, m.gap),
        ("a", Evidence::Copy, false, 10)
    );
    assert!(m.joins());
    let (copies, bytes) = fresh.wire_index_size();
    assert_eq!(copies, 1);
    assert!(bytes > 0);

    let own = fresh
        .wire_matches(&fp, &copy, 20, 3600, 1_000_000, "A")
        .unwrap();
    assert_eq!(own.len(), 1);
    assert!(own[0].same_feed && !own[0].joins(), "{own:?}");
    let unrelated = item(
        "Rugby",
        "La finale de la coupe d'Europe de rugby s'est jouée samedi soir à Cardiff \
         devant soixante-dix mille spectateurs. Les supporters toulousains ont fêté \
         le sixième titre de leur club jusqu'au petit matin sur la place du Capitole.",
    );
    let other = Fingerprint::of(&unrelated);
    assert!(other.is_usable());
    assert!(
        fresh
            .wire_matches(&other, &unrelated, 20, 3600, 1_000_000, "B")
            .unwrap()
            .is_empty()
    );
    assert!(
        fresh
            .wire_matches(&fp, &copy, 100_000, 3600, 1_000_000, "B")
            .unwrap()
            .is_empty(),
        "published a day apart"
    );
    let mut late = Store::open(at).unwrap();
    assert!(
        late.wire_matches(&fp, &copy, 20_000, 1_000_000, 100, "B")
            .unwrap()
            .is_empty(),
        "the print is older than those kept"
    );
    assert_eq!(late.wire_index_size().0, 0);
}

/// PostgreSQL: the wire index is read afresh once the connection was made
/// again. A restarted server may have lost its last writes of polls (they
/// commit without waiting for the disk); an index kept from before would
/// still hold their copies. Here the rows are deleted by hand, as such a
/// loss would, and the server ends the connections to this test's database
/// (only: other tests run beside it on the same server).
#[test]
fn on_postgresql_the_wire_index_is_read_again_after_a_reconnect() {
    let url = pg_server::database();
    let at = Location::postgres(&url).unwrap();
    let (mut store, feed) = open(&at);
    let copy = |key: &str, link: &str, text: &str| {
        let mut r = record(key, link, "mail");
        r.item.summary = text.into();
        r.wire = Some(Fingerprint::of(&r.item));
        assert!(r.wire.as_ref().unwrap().is_usable());
        let mut p = poll(feed, 10, vec![r]);
        p.wire_window = 3600;
        p.wire_keep = 1_000_000;
        p
    };
    let plan = "Le gouvernement a présenté mercredi un plan de soutien à la filière \
                des semi-conducteurs, doté de deux milliards d'euros sur cinq ans. \
                Les industriels saluent une première étape mais réclament davantage \
                de moyens pour la formation des ingénieurs et la recherche publique.";
    let storm = "Une tempête a privé d'électricité quarante mille foyers de Bretagne \
                 dans la nuit de mardi à mercredi, selon le gestionnaire du réseau. \
                 Les équipes de réparation sont mobilisées et le courant devrait \
                 revenir dans la plupart des communes d'ici jeudi soir au plus tard.";
    store
        .record_polls(&[copy("a", "https://a.example/plan", plan)])
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(store.wire_index_size().0, 1);
    crate::harness::pg_rows(&url, "DELETE FROM wire_prints").unwrap();
    crate::harness::pg_rows(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'veille' AND datname = current_database()
           AND pid <> pg_backend_pid()",
    )
    .unwrap();
    let storm_poll = copy("b", "https://a.example/storm", storm);
    // The first call finds the connection gone; the next connects again.
    let mut written = store.record_polls(std::slice::from_ref(&storm_poll));
    if written.as_ref().map_or(true, |w| w[0].is_err()) {
        written = store.record_polls(&[storm_poll]);
    }
    written.unwrap().remove(0).unwrap();
    assert_eq!(
        store.wire_index_size().0,
        1,
        "the index read again holds what the database holds: the new copy"
    );
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
    several_alerts_are_recorded_sent_at_once,
    pruning_takes_the_wire_prints_with_the_items,
    feeds_are_claimed_by_one_process_at_a_time,
    a_fetch_told_done_keeps_its_claim_until_written,
    one_process_leads_at_a_time,
    a_digest_tick_is_made_once,
    one_alert_a_story_names_every_rule,
    every_poll_of_a_write_counts_in_its_feed,
    a_write_refuses_only_the_poll_whose_claim_passed_on,
    a_sites_robots_txt_is_kept_in_place_of_the_last,
    two_connections_of_one_process_are_one_holder,
    freed_space_is_given_back_up_to_what_is_asked,
    a_channel_fault_pauses_it_until_it_sends,
    a_retry_queues_a_channels_failed_alerts_again,
    a_health_change_is_recorded_once_and_alerts_each_channel,
    failing_feeds_are_those_failing_since_before_or_gone,
    recent_lists_the_stories_alerted_since_newest_first,
    kept_texts_are_read_back_and_pruned_oldest_first,
    a_frozen_digest_is_claimed_by_one_process_at_a_time,
    a_wire_copy_is_found_among_the_stored_stories,
);

//! One poll decided whole (SPEC §4, §7): from what the fetch brought and
//! what is stored of the feed, the record the store writes — how the fetch
//! ended, when the feed is polled next, and its new and changed items, each
//! with the alerts it causes and, while wire copies are on, the fingerprint
//! its copies are recognised by.
//!
//! The one thing left to the transaction that writes the record is which
//! story a new item joins: `wire::place` decides it there, on what the
//! store finds at that moment, because another process may have recorded
//! the same story since the poll began (SPEC §5 lets a `run --once` share
//! the daemon's database) and because polls recorded together are placed in
//! publication order across feeds.

use std::collections::HashMap;
use std::time::Duration;

use super::identity::Identity;
use super::ids::FeedId;
use super::model::{Item, ParsedFeed};
use super::rules::RuleSet;
use super::schedule::after_poll;
use super::triage::{self, Context, ItemRecord, KnownItem};
use super::wire::{Scratch, fingerprint_new};

/// What a fetch brought, the document read and its items looked up.
#[derive(Debug)]
pub enum Brought {
    /// 304: nothing changed.
    NotModified,
    /// The fetch failed: no document.
    Failed(FetchFailure),
    /// A document came (status 2xx) but could not be read; its validators
    /// are not kept, so the next poll fetches it again.
    Unreadable {
        status: u16,
        error: String,
    },
    Document(Document),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    pub status: Option<u16>,
    pub error: String,
    /// 410: stop polling until the URL changes.
    pub gone: bool,
    /// The end of a `Retry-After` wait, in Unix seconds.
    pub retry_after_until: Option<i64>,
}

/// A document read, with what is stored of its items.
#[derive(Debug)]
pub struct Document {
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub feed: ParsedFeed,
    /// `identity::identify` of `feed.items`, in the same order.
    pub ids: Vec<Identity>,
    /// What the store holds of those items, by item key.
    pub known: HashMap<String, KnownItem>,
    /// The text of new items' pages (`full_text`), by item key.
    pub pages: HashMap<String, String>,
}

/// How a fetch ended, as far as the feed's row is concerned.
#[derive(Debug, Clone)]
pub enum FetchRecord {
    /// A document was fetched and parsed.
    Fetched {
        status: u16,
        etag: Option<String>,
        last_modified: Option<String>,
        /// Items the document yielded, and those it held but did not.
        items: u32,
        unread_items: u32,
    },
    /// 304: nothing changed.
    NotModified,
    Failed(FetchFailure),
}

/// A poll, decided: what the store writes in one transaction.
#[derive(Debug)]
pub struct PollRecord {
    pub feed_id: FeedId,
    pub now: i64,
    pub fetch: FetchRecord,
    /// A permanent redirect seen on the way, to remember.
    pub redirect_url: Option<String>,
    pub next_poll: i64,
    pub items: Vec<ItemRecord>,
    /// `[daemon] wire_window` in seconds; items carry a fingerprint only
    /// when wire copies are on.
    pub wire_window: i64,
    /// How long stories stay joinable, in seconds (`domain::wire::keep_prints`).
    pub wire_keep: i64,
    /// The claim on the feed this poll was fetched under (SPEC §10): it is
    /// recorded only while that claim holds. `None`: made without one.
    pub lease: Option<i64>,
    /// Keep every item's text for `veille test --history` (`keep_text`).
    pub keep_text: bool,
    /// The pages fetched for full text during the poll (SPEC §7).
    pub pages: PageTally,
}

/// Pages of a feed's items fetched for their text: those that gave it,
/// those that failed, those that robots.txt kept from being fetched, and
/// the last failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageTally {
    pub ok: u32,
    pub failed: u32,
    pub skipped: u32,
    pub last_failure: Option<String>,
}

impl PageTally {
    pub fn is_empty(&self) -> bool {
        self.ok + self.failed + self.skipped == 0
    }
}

/// The feed as the poll found it.
pub struct Feed<'a> {
    pub id: FeedId,
    pub name: &'a str,
    pub tags: &'a [String],
    pub interval: Duration,
    /// The feed's own, or `[daemon]`'s (SPEC §2).
    pub first_poll_window: Duration,
    pub max_age: Duration,
    /// Failed polls in a row before this one.
    pub consecutive_failures: u32,
    /// No successful poll of this feed was recorded before.
    pub first_poll: bool,
}

/// What the config says about every poll.
pub struct Settings<'a> {
    pub rules: &'a RuleSet,
    /// Hold of each channel (absent = none).
    pub holds: &'a HashMap<String, Duration>,
    /// `[daemon] wire_window` in seconds while wire copies are on.
    pub wire_window: Option<i64>,
    /// How long stories stay joinable, in seconds.
    pub wire_keep: i64,
    /// Keep every item's text (`keep_text` is not zero), packed by this
    /// function as soon as the poll is decided (`ItemRecord::kept`); it
    /// gives `None` when it cannot, and the text is then packed when the
    /// poll is written.
    pub keep_text: Option<Pack<'a>>,
}

/// How an item's text is packed to be kept (`store::texts::encode`).
pub type Pack<'a> = &'a dyn Fn(&Item) -> Option<Vec<u8>>;

/// A decided poll, with what its report needs besides.
#[derive(Debug)]
pub struct Decision {
    pub record: PollRecord,
    /// Items beyond `parse::MAX_ITEMS`, not considered.
    pub dropped_items: usize,
}

/// Decides the poll of `feed` at `now`: `jitter` in [-1, 1] spreads the
/// next poll (`schedule::after_poll`); `redirect_url` is a permanent move
/// seen on the way.
pub fn decide(
    feed: &Feed,
    settings: &Settings,
    brought: Brought,
    redirect_url: Option<String>,
    now: i64,
    jitter: f64,
) -> Decision {
    let mut dropped_items = 0;
    let (fetch, items) = match brought {
        Brought::NotModified => (FetchRecord::NotModified, Vec::new()),
        Brought::Failed(f) => (FetchRecord::Failed(f), Vec::new()),
        Brought::Unreadable { status, error } => (
            FetchRecord::Failed(FetchFailure {
                status: Some(status),
                error,
                gone: false,
                retry_after_until: None,
            }),
            Vec::new(),
        ),
        Brought::Document(doc) => {
            dropped_items = doc.feed.dropped_items;
            let fetch = FetchRecord::Fetched {
                status: doc.status,
                etag: doc.etag.clone(),
                last_modified: doc.last_modified.clone(),
                items: doc.feed.items.len() as u32,
                unread_items: doc.feed.unread_items as u32,
            };
            (fetch, items(feed, settings, doc, now))
        }
    };
    let next_poll = next_poll(feed, &fetch, now, jitter);
    Decision {
        record: PollRecord {
            feed_id: feed.id,
            now,
            fetch,
            redirect_url,
            next_poll,
            items,
            wire_window: settings.wire_window.unwrap_or(0),
            wire_keep: settings.wire_keep,
            lease: None,
            keep_text: settings.keep_text.is_some(),
            pages: PageTally::default(),
        },
        dropped_items,
    }
}

/// The document's new and changed items with their alerts (`triage`), the
/// new ones fingerprinted while wire copies are on.
fn items(feed: &Feed, settings: &Settings, doc: Document, now: i64) -> Vec<ItemRecord> {
    let cx = context(feed, settings.holds, &doc.pages, now);
    let mut records = triage::triage(doc.feed.items, doc.ids, &doc.known, settings.rules, &cx);
    if settings.wire_window.is_some() {
        let mut scratch = Scratch::default();
        for r in records.iter_mut().filter(|r| r.is_new) {
            r.wire = fingerprint_new(&r.item, now, settings.wire_keep, &mut scratch);
        }
    }
    // Summary and content are stored only for an item that alerts (what
    // messages quote); the others' are dropped here, once packed to be
    // kept, so that a poll waiting to be written (all of them, in
    // `run --once`) holds what it writes. The publisher's id is in the
    // item's key already, and stored nowhere else.
    for r in &mut records {
        r.item.source_id = None;
        if let Some(pack) = settings.keep_text {
            r.kept = pack(&r.item);
            if r.kept.is_none() {
                continue;
            }
        }
        if r.alerts.is_empty() {
            r.item.summary = String::new();
            r.item.content = String::new();
        }
    }
    records.shrink_to_fit();
    records
}

/// The new items of a document whose page `full_text` fetches (SPEC §7):
/// not those a first poll or `max_age` records silently, and under "auto"
/// only those whose feed text looks cut. By index in `items`.
pub fn pages_wanted(
    feed: &Feed,
    mode: super::fulltext::Mode,
    items: &[super::model::Item],
    ids: &[Identity],
    known: &HashMap<String, KnownItem>,
    now: i64,
) -> Vec<usize> {
    if mode == super::fulltext::Mode::Never {
        return Vec::new();
    }
    let (holds, pages) = (HashMap::new(), HashMap::new());
    let cx = context(feed, &holds, &pages, now);
    triage::new_and_loud(items, ids, known, &cx)
        .into_iter()
        .filter(|&i| super::fulltext::wanted(mode, &items[i]))
        .collect()
}

/// What triage needs of the feed and the config.
fn context<'a>(
    feed: &'a Feed,
    holds: &'a HashMap<String, Duration>,
    pages: &'a HashMap<String, String>,
    now: i64,
) -> Context<'a> {
    Context {
        feed: feed.name,
        tags: feed.tags,
        now,
        first_poll: feed.first_poll,
        first_poll_window: feed.first_poll_window,
        max_age: feed.max_age,
        holds,
        pages,
    }
}

fn next_poll(feed: &Feed, fetch: &FetchRecord, now: i64, jitter: f64) -> i64 {
    let (failed, retry_after_until) = match fetch {
        FetchRecord::Failed(f) => (true, f.retry_after_until),
        _ => (false, None),
    };
    after_poll(
        failed,
        feed.consecutive_failures,
        now,
        feed.interval,
        retry_after_until,
        jitter,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::identify;
    use crate::domain::model::Item;
    use crate::domain::rules::{Accents, Field, Rule, Scope, Term};

    const NOW: i64 = 1_800_000_000;

    fn rules() -> RuleSet {
        RuleSet::new(vec![Rule {
            name: "puces".into(),
            any: vec![Term::compile("puces", Accents::Fold).unwrap()],
            all: vec![],
            none: vec![],
            query: None,
            fields: Field::ALL.to_vec(),
            scope: Scope::default(),
            notify: vec!["moi".into()],
        }])
    }

    fn feed(failures: u32) -> Feed<'static> {
        Feed {
            id: FeedId(7),
            name: "a",
            tags: &[],
            interval: Duration::from_secs(600),
            first_poll_window: Duration::from_secs(86_400),
            max_age: Duration::from_secs(7 * 86_400),
            consecutive_failures: failures,
            first_poll: false,
        }
    }

    fn decided(brought: Brought, failures: u32, wire: bool) -> Decision {
        let rules = rules();
        let holds = HashMap::from([("moi".to_owned(), Duration::from_secs(60))]);
        let settings = Settings {
            rules: &rules,
            holds: &holds,
            wire_window: wire.then_some(86_400),
            wire_keep: 7 * 86_400,
            keep_text: None,
        };
        decide(&feed(failures), &settings, brought, None, NOW, 0.0)
    }

    fn document(titles: &[&str], known: HashMap<String, KnownItem>) -> Brought {
        let items: Vec<Item> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| Item {
                source_id: Some(format!("g{i}")),
                link: Some(format!("https://a.example/{i}")),
                title: (*t).into(),
                summary: "Les fabricants de puces et de mémoire annoncent une hausse de leurs prix pour le trimestre prochain, selon plusieurs sources du secteur.".into(),
                ..Item::default()
            })
            .collect();
        let ids = identify(&items);
        Brought::Document(Document {
            status: 200,
            etag: Some("\"e\"".into()),
            last_modified: None,
            feed: ParsedFeed {
                title: "A".into(),
                items,
                dropped_items: 3,
                unread_items: 1,
            },
            ids,
            known,
            pages: HashMap::new(),
        })
    }

    #[test]
    fn a_document_is_recorded_with_its_validators_items_alerts_and_next_poll() {
        let d = decided(
            document(&["Puces : hausse", "Autre"], HashMap::new()),
            2,
            false,
        );
        let r = &d.record;
        assert!(matches!(
            &r.fetch,
            FetchRecord::Fetched { status: 200, etag: Some(e), items: 2, unread_items: 1, .. } if e == "\"e\""
        ));
        assert_eq!(d.dropped_items, 3);
        // A success resets the backoff: the next poll is one interval away.
        assert_eq!(r.next_poll, NOW + 600);
        assert_eq!(r.items.len(), 2);
        assert!(r.items.iter().all(|i| i.is_new && i.wire.is_none()));
        let alerts: Vec<(&str, i64)> = r.items[0]
            .alerts
            .iter()
            .map(|a| (a.channel.as_str(), a.due))
            .collect();
        assert_eq!(alerts, [("moi", NOW + 60)]);
        assert_eq!((r.feed_id, r.now, r.wire_window), (FeedId(7), NOW, 0));
    }

    /// The text of an item that alerts nothing is dropped once packed to
    /// be kept (a back-test reads it), and kept whole when packing fails.
    #[test]
    fn text_is_packed_to_be_kept_before_what_alerts_nothing_drops_it() {
        let rules = rules();
        let holds = HashMap::new();
        let keep = |pack: Pack| {
            let Brought::Document(mut doc) = document(&["Puces : hausse", "Météo"], HashMap::new())
            else {
                unreachable!()
            };
            doc.feed.items[1].summary = "Un anticyclone sur le Groenland.".into();
            let settings = Settings {
                rules: &rules,
                holds: &holds,
                wire_window: None,
                wire_keep: 0,
                keep_text: Some(pack),
            };
            decide(&feed(0), &settings, Brought::Document(doc), None, NOW, 0.0).record
        };
        let packed = keep(&|item| Some(item.summary.as_bytes().to_vec()));
        assert!(packed.keep_text);
        let [alerting, quiet] = &packed.items[..] else {
            panic!("two items")
        };
        assert!(!alerting.alerts.is_empty() && quiet.alerts.is_empty());
        assert_eq!(
            quiet.kept.as_deref(),
            Some("Un anticyclone sur le Groenland.".as_bytes())
        );
        assert!(quiet.item.summary.is_empty(), "dropped once packed");
        assert!(alerting.kept.is_some());
        assert!(
            alerting.item.summary.contains("puces"),
            "what a message quotes"
        );

        let unpacked = keep(&|_| None);
        assert!(unpacked.items.iter().all(|r| r.kept.is_none()));
        assert_eq!(
            unpacked.items[1].item.summary,
            "Un anticyclone sur le Groenland."
        );
    }

    #[test]
    fn known_items_unchanged_are_left_out_and_new_ones_fingerprinted_when_wire_copies_are_on() {
        let Brought::Document(doc) = document(&["Puces : hausse"], HashMap::new()) else {
            unreachable!()
        };
        let hash = crate::domain::identity::content_hash(&doc.feed.items[0]);
        let key = doc.ids[0].item_key.clone();
        let known = HashMap::from([(
            key,
            KnownItem::Stored {
                content_hash: hash,
                first_seen: NOW - 60,
            },
        )]);
        let d = decided(document(&["Puces : hausse", "Autre"], known), 0, true);
        let titles: Vec<&str> = d
            .record
            .items
            .iter()
            .map(|i| i.item.title.as_str())
            .collect();
        assert_eq!(titles, ["Autre"]);
        assert!(
            d.record.items[0].wire.is_some(),
            "a new item carries its fingerprint"
        );
        assert_eq!(d.record.wire_window, 86_400);
    }

    #[test]
    fn a_failure_backs_off_and_honours_retry_after_and_an_unreadable_document_is_a_failure() {
        let fail = |retry_after_until| {
            Brought::Failed(FetchFailure {
                status: Some(503),
                error: "503".into(),
                gone: false,
                retry_after_until,
            })
        };
        let plain = decided(fail(None), 0, false).record;
        assert!(matches!(
            plain.fetch,
            FetchRecord::Failed(FetchFailure {
                status: Some(503),
                ..
            })
        ));
        assert!(
            plain.next_poll > NOW + 600,
            "backs off: {}",
            plain.next_poll - NOW
        );
        let waited = decided(fail(Some(NOW + 10_000)), 0, false).record;
        assert!(waited.next_poll >= NOW + 10_000);
        let unreadable = decided(
            Brought::Unreadable {
                status: 200,
                error: "parse: no feed".into(),
            },
            0,
            false,
        )
        .record;
        assert!(matches!(
            unreadable.fetch,
            FetchRecord::Failed(FetchFailure { status: Some(200), ref error, gone: false, retry_after_until: None }) if error == "parse: no feed"
        ));
        assert!(unreadable.items.is_empty());
        let not_modified = decided(Brought::NotModified, 4, false).record;
        assert!(matches!(not_modified.fetch, FetchRecord::NotModified));
        assert_eq!(not_modified.next_poll, NOW + 600);
    }
}

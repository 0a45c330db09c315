//! From a parsed document to what must be recorded and alerted (SPEC §4):
//! new and changed items only, silence on a feed's first poll for items older
//! than `first_poll_window` (and undated ones), silence for items dated more
//! than `max_age` before they were first seen, and per matching rule one
//! alert draft per channel it notifies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::identity::{Identity, content_hash};
use super::model::Item;
use super::rules::{RuleMatch, RuleSet};
use super::wire::Fingerprint;

/// One matched term, stored with the alert so that messages can show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHit {
    pub rule: String,
    pub field: String,
    pub term: String,
    pub start: usize,
    pub end: usize,
}

/// An alert to create for the item it comes with.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDraft {
    pub channel: String,
    pub rules: Vec<String>,
    pub hits: Vec<StoredHit>,
    /// First delivery attempt: `now` plus the channel's hold.
    pub due: i64,
}

impl AlertDraft {
    /// Adds this draft's rules, with their hits, to the pending alert of
    /// the same story and channel, so that its one message names them all
    /// (SPEC §4: one alert per story and channel). These hits point into
    /// another item's text than the one the message shows: their terms are
    /// kept, their spans dropped. Returns whether anything was added.
    pub fn merge_into(&self, rules: &mut Vec<String>, hits: &mut Vec<StoredHit>) -> bool {
        let mut added = false;
        for r in &self.rules {
            if rules.contains(r) {
                continue;
            }
            rules.push(r.clone());
            let terms = self
                .hits
                .iter()
                .filter(|h| &h.rule == r)
                .map(|h| StoredHit {
                    start: 0,
                    end: 0,
                    ..h.clone()
                });
            hits.extend(terms);
            added = true;
        }
        added
    }
}

/// A new or changed item with what it should alert.
#[derive(Debug, Clone)]
pub struct ItemRecord {
    pub key: String,
    /// The feed had no item with this key when the poll began.
    pub is_new: bool,
    pub story_link: Option<String>,
    pub content_hash: String,
    pub item: Item,
    pub alerts: Vec<AlertDraft>,
    /// Recorded silently whatever it matches (a feed's first poll, an item
    /// older than `max_age`): a back-test skips it as the live poll did.
    pub quiet: bool,
    /// For a new item while wire copies are on: what recognises its copies
    /// (filled in by the caller, see `wire::Fingerprint`).
    pub wire: Option<Fingerprint>,
    /// The item's text as `keep_text` stores it, packed by the caller once
    /// the poll is decided, so that a poll waiting to be written need not
    /// hold the text itself (see `store::texts::encode`). `None`: packed
    /// when written.
    pub kept: Option<Vec<u8>>,
}

/// What is already stored of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownItem {
    Stored {
        content_hash: String,
        first_seen: i64,
    },
    /// Pruned by retention; only its dedup keys remain (SPEC §4): it is
    /// never recorded or alerted again, whatever it now says.
    Pruned,
}

/// The feed and moment a document is triaged for.
pub struct Context<'a> {
    pub feed: &'a str,
    pub tags: &'a [String],
    pub now: i64,
    /// No successful poll of this feed was recorded before.
    pub first_poll: bool,
    pub first_poll_window: Duration,
    pub max_age: Duration,
    /// Hold of each channel (absent = none).
    pub holds: &'a HashMap<String, Duration>,
    /// The text of new items' pages (`full_text`), by item key: rules see
    /// it as the item's content, in place of the feed's.
    pub pages: &'a HashMap<String, String>,
}

/// Items whose key is new or whose content changed, in document order, each
/// with the alerts it causes. Two items of one document with the same key are
/// one item: the first wins.
pub fn triage(
    items: Vec<Item>,
    ids: Vec<Identity>,
    known: &HashMap<String, KnownItem>,
    rules: &RuleSet,
    cx: &Context,
) -> Vec<ItemRecord> {
    let mut seen = HashSet::new();
    let mut records = Vec::new();
    for (mut item, id) in items.into_iter().zip(ids) {
        if !seen.insert(id.item_key.clone()) {
            continue;
        }
        // The feed's text only: a page that changes does not make the item
        // "updated" (SPEC §7).
        let hash = content_hash(&item);
        // The article's text in place of the feed's content, unless the
        // feed carried more (a page read badly loses none of its words).
        if let Some(page) = cx.pages.get(&id.item_key)
            && page.len() > item.content.len()
        {
            item.content = page.clone();
        }
        let before = match known.get(&id.item_key) {
            Some(KnownItem::Pruned) => continue,
            Some(KnownItem::Stored {
                content_hash,
                first_seen,
            }) => {
                if *content_hash == hash {
                    continue;
                }
                Some(*first_seen)
            }
            None => None,
        };
        let quiet = is_silent(&item, before, cx);
        let alerts = if quiet {
            Vec::new()
        } else {
            alerts_for(&item, rules, cx)
        };
        records.push(ItemRecord {
            key: id.item_key,
            is_new: before.is_none(),
            story_link: id.story_link,
            content_hash: hash,
            item,
            alerts,
            quiet,
            wire: None,
            kept: None,
        });
    }
    records
}

/// The items of a document that are new and would not be recorded
/// silently: those whose page `full_text` may fetch, by index.
pub fn new_and_loud(
    items: &[Item],
    ids: &[Identity],
    known: &HashMap<String, KnownItem>,
    cx: &Context,
) -> Vec<usize> {
    let mut seen = HashSet::new();
    (0..items.len().min(ids.len()))
        .filter(|&i| {
            let key = &ids[i].item_key;
            seen.insert(key) && !known.contains_key(key) && !is_silent(&items[i], None, cx)
        })
        .collect()
}

/// SPEC §4 "First poll": a new item on a feed's first poll alerts only when
/// dated within the window; afterwards an item dated more than `max_age`
/// before it was first seen never alerts.
/// `first_seen` is the stored item's, `None` for a new one.
fn is_silent(item: &Item, first_seen: Option<i64>, cx: &Context) -> bool {
    let date = item.date().map(|d| d.timestamp());
    if first_seen.is_none() && cx.first_poll {
        return date.is_none_or(|d| cx.now - d > cx.first_poll_window.as_secs() as i64);
    }
    let first_seen = first_seen.unwrap_or(cx.now);
    date.is_some_and(|d| first_seen - d > cx.max_age.as_secs() as i64)
}

fn alerts_for(item: &Item, rules: &RuleSet, cx: &Context) -> Vec<AlertDraft> {
    let matches = rules.evaluate(item, |r| r.scope.covers(cx.feed, cx.tags));
    let mut by_channel: BTreeMap<&str, AlertDraft> = BTreeMap::new();
    for RuleMatch { rule, hits } in matches {
        let stored: Vec<StoredHit> = hits
            .into_iter()
            .map(|h| StoredHit {
                rule: rule.name.clone(),
                field: h.field.name().into(),
                term: h.term,
                start: h.span.start,
                end: h.span.end,
            })
            .collect();
        for channel in &rule.notify {
            let hold = cx.holds.get(channel).copied().unwrap_or_default();
            let draft = by_channel.entry(channel).or_insert_with(|| AlertDraft {
                channel: channel.clone(),
                rules: Vec::new(),
                hits: Vec::new(),
                due: cx.now + hold.as_secs() as i64,
            });
            draft.rules.push(rule.name.clone());
            draft.hits.extend(stored.iter().cloned());
        }
    }
    by_channel.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::identify;
    use crate::domain::rules::{Accents, Field, Rule, Scope, Term};
    use chrono::DateTime;

    const NOW: i64 = 1_745_000_000;
    const HOUR: i64 = 3600;

    fn rule(name: &str, any: &[&str], notify: &[&str]) -> Rule {
        Rule {
            name: name.into(),
            any: any
                .iter()
                .map(|t| Term::compile(t, Accents::Fold).unwrap())
                .collect(),
            all: vec![],
            none: vec![],
            query: None,
            fields: Field::ALL.to_vec(),
            scope: Scope::default(),
            notify: notify.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn item(guid: &str, title: &str, age_hours: Option<i64>) -> Item {
        Item {
            source_id: Some(guid.into()),
            link: Some(format!("https://x.fr/{guid}")),
            title: title.into(),
            published: age_hours.map(|h| DateTime::from_timestamp(NOW - h * HOUR, 0).unwrap()),
            ..Item::default()
        }
    }

    fn run(
        items: Vec<Item>,
        known: &HashMap<String, KnownItem>,
        first_poll: bool,
    ) -> Vec<ItemRecord> {
        let holds = HashMap::from([("equipe".to_string(), Duration::from_secs(900))]);
        let cx = Context {
            feed: "F",
            tags: &[],
            now: NOW,
            first_poll,
            first_poll_window: Duration::from_secs(24 * 3600),
            max_age: Duration::from_secs(7 * 24 * 3600),
            holds: &holds,
            pages: &HashMap::new(),
        };
        let rules = RuleSet::new(vec![
            rule("puces", &["puces"], &["moi", "equipe"]),
            rule("ia", &["IA"], &["moi"]),
        ]);
        let ids = identify(&items);
        triage(items, ids, known, &rules, &cx)
    }

    fn alerted(records: &[ItemRecord]) -> Vec<(&str, bool)> {
        records
            .iter()
            .map(|r| (r.key.as_str(), !r.alerts.is_empty()))
            .collect()
    }

    #[test]
    fn the_first_poll_alerts_only_recent_dated_items() {
        let items = vec![
            item("a", "puces", Some(2)),
            item("b", "puces", Some(30)),
            item("c", "puces", None),
            item("d", "rien", Some(1)),
        ];
        let records = run(items, &HashMap::new(), true);
        assert_eq!(
            alerted(&records),
            [
                ("id:a", true),
                ("id:b", false),
                ("id:c", false),
                ("id:d", false)
            ]
        );
    }

    #[test]
    fn later_polls_silence_only_items_older_than_max_age() {
        let items = vec![
            item("a", "puces", Some(30)),
            item("b", "puces", Some(8 * 24)),
            item("c", "puces", None),
        ];
        let records = run(items, &HashMap::new(), false);
        assert_eq!(
            alerted(&records),
            [("id:a", true), ("id:b", false), ("id:c", true)]
        );
    }

    #[test]
    fn unchanged_items_are_skipped_and_changed_ones_rematched() {
        let a = item("a", "puces", Some(1));
        let known = HashMap::from([
            (
                "id:a".to_string(),
                KnownItem::Stored {
                    content_hash: content_hash(&a),
                    first_seen: NOW - HOUR,
                },
            ),
            (
                "id:b".to_string(),
                KnownItem::Stored {
                    content_hash: "old".into(),
                    first_seen: NOW - HOUR,
                },
            ),
        ]);
        let records = run(vec![a, item("b", "l'IA", Some(1))], &known, false);
        assert_eq!(alerted(&records), [("id:b", true)]);
    }

    #[test]
    fn pruned_items_are_never_recorded_again_even_changed() {
        let known = HashMap::from([("id:a".to_string(), KnownItem::Pruned)]);
        let records = run(
            vec![item("a", "puces", Some(1)), item("b", "puces", Some(1))],
            &known,
            false,
        );
        assert_eq!(alerted(&records), [("id:b", true)]);
    }

    #[test]
    fn one_draft_per_channel_naming_every_rule_with_its_hold() {
        let records = run(
            vec![
                item("a", "Les puces de l'IA", Some(1)),
                item("a", "doublon", Some(1)),
            ],
            &HashMap::new(),
            false,
        );
        assert_eq!(
            records.len(),
            1,
            "the second item with the same key is ignored"
        );
        let alerts = &records[0].alerts;
        let summary: Vec<(&str, Vec<&str>, i64)> = alerts
            .iter()
            .map(|a| {
                (
                    a.channel.as_str(),
                    a.rules.iter().map(String::as_str).collect(),
                    a.due - NOW,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("equipe", vec!["puces"], 900),
                ("moi", vec!["puces", "ia"], 0)
            ]
        );
        let hit = &alerts[1].hits[1];
        assert_eq!(
            (
                hit.term.as_str(),
                &records[0].item.title[hit.start..hit.end]
            ),
            ("IA", "IA")
        );
    }

    #[test]
    fn a_draft_adds_only_new_rules_to_a_pending_alert_with_their_terms_but_no_spans() {
        let hit = |rule: &str, term: &str| StoredHit {
            rule: rule.into(),
            field: "title".into(),
            term: term.into(),
            start: 3,
            end: 8,
        };
        let draft = AlertDraft {
            channel: "moi".into(),
            rules: vec!["a".into(), "b".into()],
            hits: vec![hit("a", "puces"), hit("b", "IA"), hit("b", "robots")],
            due: NOW,
        };
        let mut rules = vec!["a".to_owned()];
        let mut hits = vec![hit("a", "puces")];
        assert!(draft.merge_into(&mut rules, &mut hits));
        assert_eq!(rules, ["a", "b"]);
        let added: Vec<(&str, usize, usize)> = hits[1..]
            .iter()
            .map(|h| (h.term.as_str(), h.start, h.end))
            .collect();
        assert_eq!(added, [("IA", 0, 0), ("robots", 0, 0)]);
        assert_eq!(
            hits[0].start, 3,
            "the pending alert's own hits keep their spans"
        );
        assert!(
            !draft.merge_into(&mut rules, &mut hits),
            "nothing new the second time"
        );
        assert_eq!(hits.len(), 3);
    }
}

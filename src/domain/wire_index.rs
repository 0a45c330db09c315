//! The index of stored copies a new item may be a copy of (SPEC §4 "Wire
//! copies": a story is all its copies).
//!
//! Every fingerprinted item is an entry: its story, its date (published,
//! else first seen) and whether its text was cut short. The fingerprints
//! themselves stay in the database (`wire_prints`, one row per item); this
//! index over their keys lives in memory beside the store, which owns it.
//! It is a cache of the database: read once, when a fingerprint first needs
//! it, then brought up to date at the start of every write with the rows
//! written since (by this process or another: a `run --once` beside the
//! daemon), and kept up to date as items are written. It holds only entries
//! at most the keep horizon old.
//!
//! A lookup tallies the keys each entry shares with the new item, ranks
//! stories by their best entry, and returns each candidate story with its
//! copies inside the window: the story is judged on all of them
//! (`domain::wire::choose`).
//!
//! Layout, for memory: a map from index key (a sampled shingle, see
//! `domain::wire`) to the head of a chain of postings in one vector, rather
//! than a vector per key; most keys have one story. Entries of one story
//! are chained too, newest first.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ids::{ItemId, StoryId};

/// Keys are already uniform hashes: hashing them again (SipHash) was the
/// index's main cost.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        // Spread over the high bits too: hashbrown takes its control byte
        // from the top 7.
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Stories kept per key at most. A key carried by more stories than this
/// within the window is boilerplate (a site's standard lead, a recurring
/// sentence): it no longer names candidates, and costs nothing more. Copies
/// of one story count once, so a dispatch carried by a hundred outlets
/// keeps its keys.
const MAX_STORIES: u32 = 32;

/// Postings walked per key at most (a story with many copies posts a key
/// once per copy).
const MAX_WALK: usize = 256;

/// Candidate stories per item at most, those sharing the most keys first.
pub const MAX_CANDIDATES: usize = 4;

/// Copies of one candidate story compared with a new item at most, those
/// sharing the most keys with it first.
pub const MAX_COPIES: usize = 8;

const NONE: u32 = u32::MAX;

/// Inserts between two counts of dead entries.
const PRUNE_EVERY: usize = 4096;

/// A stored copy, as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub story_id: StoryId,
    pub item_id: ItemId,
    /// The item's date (published, else first seen): copies join within
    /// `wire_window` of it.
    pub at: i64,
    /// Its text was cut short (`Fingerprint::is_cut`).
    pub cut: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Head {
    /// First posting.
    first: u32,
    /// Stories posted under the key (copies of one story posted in a row
    /// count once), counting those not kept.
    stories: u32,
}

#[derive(Debug, Default)]
pub struct WireIndex {
    heads: KeyMap<u32, Head>,
    /// (entry, next posting of the same key)
    postings: Vec<(u32, u32)>,
    /// (entry, the story's previous entry)
    entries: Vec<(Entry, u32)>,
    /// Each story's newest entry.
    newest: KeyMap<i64, u32>,
    /// Entries older than this were pruned or never loaded.
    since: i64,
    /// The first entry not committed yet (the current write's).
    pending: Option<usize>,
    /// The highest item id of the committed entries: rows above it are
    /// read at the next refresh.
    seen: i64,
    /// Inserts since `prune` last counted the dead entries.
    unchecked: usize,
}

/// A story sharing keys with a new item, with its copies inside the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub story_id: StoryId,
    /// The story's copies inside the window, those sharing the most keys
    /// with the item first, at most `MAX_COPIES`.
    pub copies: Vec<Entry>,
    /// The story has a copy inside the window that is not cut short.
    pub has_full: bool,
    /// Seconds between the item and the story's copy published nearest to
    /// it, inside the window.
    pub gap: i64,
}

impl WireIndex {
    pub fn new(since: i64) -> WireIndex {
        WireIndex {
            since,
            ..WireIndex::default()
        }
    }

    /// Adds a copy. `committed`: it was read from the database; else it is
    /// the current write's, dead if that is rolled back (`forget_pending`).
    pub fn insert(&mut self, keys: &[u32], entry: Entry, committed: bool) {
        self.unchecked += 1;
        let e = self.entries.len() as u32;
        if committed {
            self.seen = self.seen.max(entry.item_id.0);
        } else {
            self.pending.get_or_insert(e as usize);
        }
        let previous = self.newest.insert(entry.story_id.0, e).unwrap_or(NONE);
        self.entries.push((entry, previous));
        for &key in keys {
            let head = self.heads.entry(key).or_insert(Head {
                first: NONE,
                stories: 0,
            });
            let same_story = head.first != NONE && {
                let (other, _) = self.postings[head.first as usize];
                self.entries[other as usize].0.story_id == entry.story_id
            };
            if !same_story {
                head.stories = head.stories.saturating_add(1);
            }
            if head.stories <= MAX_STORIES {
                self.postings.push((e, head.first));
                head.first = (self.postings.len() - 1) as u32;
            }
        }
    }

    fn alive(&self, e: &Entry) -> bool {
        e.at >= self.since
    }

    /// Stories sharing keys with `keys` through a copy published within
    /// `window` of `at`, most keys shared (by their best copy) first, at
    /// most `MAX_CANDIDATES`, each with its copies sharing keys.
    pub fn candidates(&self, keys: &[u32], at: i64, window: i64) -> Vec<Found> {
        let near = |e: &Entry| self.alive(e) && (e.at - at).abs() <= window;
        let mut tally: KeyMap<u32, u32> = KeyMap::default();
        for key in keys {
            let Some(head) = self.heads.get(key) else {
                continue;
            };
            if head.stories > MAX_STORIES {
                continue;
            }
            let mut p = head.first;
            let mut walked = 0;
            while p != NONE && walked < MAX_WALK {
                let (e, next) = self.postings[p as usize];
                if near(&self.entries[e as usize].0) {
                    *tally.entry(e).or_default() += 1;
                }
                p = next;
                walked += 1;
            }
        }
        let mut best: KeyMap<i64, u32> = KeyMap::default();
        for (&e, &n) in &tally {
            let story = self.entries[e as usize].0.story_id.0;
            let b = best.entry(story).or_default();
            *b = (*b).max(n);
        }
        let mut stories: Vec<(i64, u32)> = best.into_iter().collect();
        // Most keys shared first; then the oldest story, for a stable order.
        stories.sort_unstable_by_key(|&(s, n)| (std::cmp::Reverse(n), s));
        stories.truncate(MAX_CANDIDATES);
        stories
            .into_iter()
            .map(|(story, _)| {
                let mut copies: Vec<(u32, Entry)> = Vec::new();
                let mut has_full = false;
                let mut gap = i64::MAX;
                let mut e = self.newest.get(&story).copied().unwrap_or(NONE);
                while e != NONE {
                    let (entry, previous) = self.entries[e as usize];
                    if near(&entry) {
                        has_full |= !entry.cut;
                        gap = gap.min((entry.at - at).abs());
                        // A copy sharing no key is compared too, after the
                        // others: a short text may share no sampled shingle
                        // with the copy it copies best.
                        copies.push((tally.get(&e).copied().unwrap_or(0), entry));
                    }
                    e = previous;
                }
                copies.sort_by_key(|&(n, c)| (std::cmp::Reverse(n), c.at, c.item_id.0));
                copies.truncate(MAX_COPIES);
                Found {
                    story_id: StoryId(story),
                    copies: copies.into_iter().map(|(_, c)| c).collect(),
                    has_full,
                    gap,
                }
            })
            .collect()
    }

    /// Drops entries older than `since`, rebuilding the index when they are
    /// at least half of it. Dead entries are counted only every
    /// `PRUNE_EVERY` inserts, and a rebuild costs what the inserts that made
    /// the index grow cost, so both are shared out (this is called for every
    /// write). Until then, `candidates` skips old entries.
    /// Returns whether it rebuilt (the stored fingerprints of dropped
    /// entries may go too).
    pub fn prune(&mut self, since: i64) -> bool {
        self.since = self.since.max(since);
        if self.unchecked < PRUNE_EVERY || self.pending.is_some() {
            return false;
        }
        self.unchecked = 0;
        let dead = self.entries.iter().filter(|(e, _)| !self.alive(e)).count();
        if dead == 0 || dead * 2 < self.entries.len() {
            return false;
        }
        let mut by_entry: Vec<Vec<u32>> = vec![Vec::new(); self.entries.len()];
        for (&key, head) in &self.heads {
            let mut p = head.first;
            while p != NONE {
                let (e, next) = self.postings[p as usize];
                by_entry[e as usize].push(key);
                p = next;
            }
        }
        let old = std::mem::take(&mut self.entries);
        self.heads.clear();
        self.postings.clear();
        self.newest.clear();
        for ((entry, _), mut keys) in old.into_iter().zip(by_entry) {
            if self.alive(&entry) {
                // Chains were walked newest first; insert in key order.
                keys.sort_unstable();
                keys.dedup();
                self.insert(&keys, entry, true);
            }
        }
        self.unchecked = 0;
        true
    }

    /// The current write was committed: its entries are stored.
    pub fn committed(&mut self) {
        if let Some(first) = self.pending.take() {
            for (e, _) in &self.entries[first..] {
                self.seen = self.seen.max(e.item_id.0);
            }
        }
    }

    /// The current write was rolled back: its entries are dead.
    pub fn forget_pending(&mut self) {
        if let Some(first) = self.pending.take() {
            for (e, _) in &mut self.entries[first..] {
                e.at = i64::MIN;
            }
        }
    }

    /// The highest item id read from the database or committed: a refresh
    /// reads the rows above it.
    pub fn seen(&self) -> i64 {
        self.seen
    }

    /// Entries the index holds, counting those pruned but not yet dropped.
    pub fn copies(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held, roughly: for the benchmark's memory figure.
    pub fn heap_bytes(&self) -> usize {
        self.heads.capacity() * (std::mem::size_of::<(u32, Head)>() + 1)
            + self.postings.capacity() * std::mem::size_of::<(u32, u32)>()
            + self.entries.capacity() * std::mem::size_of::<(Entry, u32)>()
            + self.newest.capacity() * (std::mem::size_of::<(i64, u32)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(story_id: i64, item: i64, at: i64) -> Entry {
        Entry {
            story_id: StoryId(story_id),
            item_id: ItemId(item),
            at,
            cut: false,
        }
    }

    fn stories(found: &[Found]) -> Vec<i64> {
        found.iter().map(|f| f.story_id.0).collect()
    }

    fn items(found: &Found) -> Vec<i64> {
        found.copies.iter().map(|c| c.item_id.0).collect()
    }

    #[test]
    fn a_story_is_found_through_any_of_its_copies_and_judged_on_all_of_them() {
        let mut index = WireIndex::new(0);
        index.insert(&[1, 2], entry(1, 10, 1000), true);
        index.insert(&[3, 4, 5], entry(1, 11, 1100), true);
        index.insert(&[4, 5], entry(2, 20, 1000), true);
        let found = index.candidates(&[3, 4, 5], 1200, 3600);
        assert_eq!(stories(&found), [1, 2], "story 1's second copy shares most");
        assert_eq!(items(&found[0]), [11, 10], "those sharing keys first");
        let found = index.candidates(&[1, 4], 1200, 3600);
        assert_eq!(stories(&found), [1, 2]);
        assert_eq!(items(&found[0]), [10, 11], "most shared first, then oldest");
        assert!(found[0].has_full);
    }

    #[test]
    fn each_copy_counts_inside_the_window_measured_from_it() {
        let mut index = WireIndex::new(0);
        index.insert(&[1], entry(1, 10, 0), true);
        let cut = Entry {
            cut: true,
            ..entry(1, 11, 5000)
        };
        index.insert(&[1], cut, true);
        let found = index.candidates(&[1], 8000, 3600);
        assert_eq!(
            items(&found[0]),
            [11],
            "the first copy is out of the window"
        );
        assert!(!found[0].has_full, "its only copy inside is cut short");
        assert!(index.candidates(&[1], 20_000, 3600).is_empty());
    }

    #[test]
    fn entries_of_a_rolled_back_write_are_no_candidates() {
        let mut index = WireIndex::new(0);
        index.insert(&[1], entry(1, 10, 10), false);
        assert_eq!(
            stories(&index.candidates(&[1], 10, 60)),
            [1],
            "the write in progress sees its own copies"
        );
        assert_eq!(index.seen(), 0, "nothing committed yet");
        index.committed();
        assert_eq!(index.seen(), 10);
        index.insert(&[1], entry(2, 11, 10), false);
        index.unchecked = PRUNE_EVERY;
        assert!(!index.prune(5), "no rebuild while a write is pending");
        index.forget_pending();
        assert_eq!(index.seen(), 10);
        assert_eq!(
            stories(&index.candidates(&[1], 10, 60)),
            [1],
            "a rolled-back copy stays dead"
        );
    }

    #[test]
    fn a_key_too_many_stories_share_names_no_candidate_but_copies_count_once() {
        let mut index = WireIndex::new(0);
        for s in 0..=MAX_STORIES as i64 {
            index.insert(&[5, 100 + s as u32], entry(s, s, 1000), true);
        }
        assert!(index.candidates(&[5], 1000, 60).is_empty());
        assert_eq!(stories(&index.candidates(&[5, 107], 1000, 60)), [7]);
        let mut index = WireIndex::new(0);
        for c in 0..100 {
            index.insert(&[6], entry(1, c, 1000), true);
        }
        assert_eq!(
            stories(&index.candidates(&[6], 1000, 60)),
            [1],
            "a hundred copies of one story keep the key"
        );
    }

    #[test]
    fn pruning_keeps_what_is_inside_the_window() {
        let mut index = WireIndex::new(0);
        for s in 0..10 {
            index.insert(&[1, 2 + s as u32], entry(s, s, s * 100), true);
        }
        index.unchecked = PRUNE_EVERY;
        assert!(index.prune(650));
        assert_eq!(index.copies(), 3, "rebuilt without the 7 old entries");
        assert_eq!(stories(&index.candidates(&[1], 800, 1000)), [7, 8, 9]);
        assert_eq!(stories(&index.candidates(&[9], 800, 1000)), [7]);
        index.unchecked = PRUNE_EVERY;
        assert!(!index.prune(750));
        assert_eq!(index.copies(), 3, "one dead of three: not rebuilt yet");
        assert_eq!(stories(&index.candidates(&[1], 900, 1000)), [8, 9]);
    }
}

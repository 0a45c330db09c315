//! The index of stories a wire copy may join (SPEC §4 "Wire copies").
//!
//! Each story is indexed by its reference item: its earliest published
//! (first-seen when undated), the one it would have been opened by had its
//! items been fetched as they appeared. The fingerprints are stored per poll
//! in `wire_prints` (`store::stories`); this index over them lives in
//! memory beside the store, which owns it.
//! It is read from the database once, when a fingerprint first needs it
//! (never on a cycle where nothing is new), and kept up to date as items are
//! written, so no cycle rebuilds it. It holds only stories whose reference
//! is at most the keep horizon old.
//!
//! Layout, for memory: a map from index key (a sampled shingle, see
//! `domain::wire`) to the head of a chain of postings in one vector, rather
//! than a vector per key; most keys have one story.

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
}

type KeyMap<V> = HashMap<u32, V, BuildHasherDefault<KeyHasher>>;

/// Postings kept per key at most. A key carried by more stories than this
/// within the window is boilerplate (a site's standard lead, a recurring
/// sentence): it no longer names candidates, and costs nothing more.
const MAX_POSTINGS: u32 = 32;

/// Candidates confirmed per item at most, those sharing the most keys first.
pub const MAX_CANDIDATES: usize = 4;

const NONE: u32 = u32::MAX;

/// Inserts between two counts of dead entries.
const PRUNE_EVERY: usize = 4096;

/// A story's reference item, as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub story_id: StoryId,
    pub item_id: ItemId,
    /// The item's date (published, else first seen), the window's origin.
    pub at: i64,
    /// The `wire_prints` row holding its fingerprint; 0 until its group
    /// of polls' row is written (meanwhile the group holds it).
    pub row: i64,
}

#[derive(Debug, Default)]
pub struct WireIndex {
    /// key → (first posting, postings for this key, counting those not kept)
    heads: KeyMap<(u32, u32)>,
    /// (entry, next posting of the same key)
    postings: Vec<(u32, u32)>,
    entries: Vec<Entry>,
    /// Entries older than this were pruned or never loaded.
    since: i64,
    /// The first entry whose fingerprint row is not written yet (the
    /// current poll's); no rebuild moves entries meanwhile.
    pending: Option<usize>,
    /// Entries the pending poll retired (their story was given an earlier
    /// reference), with their dates: alive again if it is rolled back.
    retired: Vec<(u32, i64)>,
    /// Inserts since `prune` last counted the dead entries.
    unchecked: usize,
}

/// A story sharing keys with a new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub entry: Entry,
    /// Where the index holds it, for `retire`.
    pub at: u32,
}

impl WireIndex {
    pub fn new(since: i64) -> WireIndex {
        WireIndex {
            since,
            ..WireIndex::default()
        }
    }

    pub fn insert(&mut self, keys: &[u32], entry: Entry) {
        self.unchecked += 1;
        let e = self.entries.len() as u32;
        if entry.row == 0 {
            self.pending.get_or_insert(e as usize);
        }
        self.entries.push(entry);
        for &key in keys {
            let (head, count) = self.heads.entry(key).or_insert((NONE, 0));
            *count = count.saturating_add(1);
            if *count <= MAX_POSTINGS {
                self.postings.push((e, *head));
                *head = (self.postings.len() - 1) as u32;
            }
        }
    }

    /// Stories sharing keys with `keys` whose reference is within `window`
    /// of `at`, most keys shared first, at most `MAX_CANDIDATES`.
    pub fn candidates(&self, keys: &[u32], at: i64, window: i64) -> Vec<Candidate> {
        let mut tally: KeyMap<u32> = KeyMap::default();
        for key in keys {
            let Some(&(mut p, count)) = self.heads.get(key) else {
                continue;
            };
            if count > MAX_POSTINGS {
                continue;
            }
            while p != NONE {
                let (e, next) = self.postings[p as usize];
                let entry = &self.entries[e as usize];
                if entry.at >= self.since && (entry.at - at).abs() <= window {
                    *tally.entry(e).or_default() += 1;
                }
                p = next;
            }
        }
        let mut found: Vec<(u32, u32)> = tally.into_iter().collect();
        // Most keys shared first; then the oldest story, for a stable order.
        found.sort_unstable_by_key(|&(e, n)| (std::cmp::Reverse(n), e));
        found
            .into_iter()
            .take(MAX_CANDIDATES)
            .map(|(e, _)| Candidate {
                entry: self.entries[e as usize],
                at: e,
            })
            .collect()
    }

    /// The candidate's story has a new reference (inserted next): its old
    /// entry names it no more.
    pub fn retire(&mut self, c: &Candidate) {
        let e = &mut self.entries[c.at as usize];
        if *e == c.entry {
            self.retired.push((c.at, e.at));
            e.at = i64::MIN;
        }
    }

    /// Drops entries older than `since`, rebuilding the index when they are
    /// at least half of it. Dead entries are counted only every
    /// `PRUNE_EVERY` inserts, and a rebuild costs what the inserts that made
    /// the index grow cost, so both are shared out (this is called for every
    /// new item). Until then, `candidates` skips old entries.
    /// Returns whether it rebuilt (the stored fingerprints of dropped
    /// entries may go too).
    pub fn prune(&mut self, since: i64) -> bool {
        self.since = self.since.max(since);
        if self.unchecked < PRUNE_EVERY || self.pending.is_some() {
            return false;
        }
        self.unchecked = 0;
        let dead = self.entries.iter().filter(|e| e.at < self.since).count();
        if dead == 0 || dead * 2 < self.entries.len() {
            return false;
        }
        let mut by_entry: Vec<Vec<u32>> = vec![Vec::new(); self.entries.len()];
        for (&key, &(mut p, _)) in &self.heads {
            while p != NONE {
                let (e, next) = self.postings[p as usize];
                by_entry[e as usize].push(key);
                p = next;
            }
        }
        let old = std::mem::take(&mut self.entries);
        self.heads.clear();
        self.postings.clear();
        for (entry, mut keys) in old.into_iter().zip(by_entry) {
            if entry.at >= self.since {
                // Chains were walked newest first; insert in key order.
                keys.sort_unstable();
                self.insert(&keys, entry);
            }
        }
        self.unchecked = 0;
        true
    }

    /// The pending entries (one poll's) are stored in `row`.
    pub fn stored(&mut self, row: i64) {
        self.retired.clear();
        if let Some(first) = self.pending.take() {
            for e in &mut self.entries[first..] {
                e.row = row;
            }
        }
    }

    /// The pending entries' poll was rolled back: they are dead, and the
    /// entries it retired alive again.
    pub fn forget_pending(&mut self) {
        for (e, at) in self.retired.drain(..) {
            self.entries[e as usize].at = at;
        }
        if let Some(first) = self.pending.take() {
            for e in &mut self.entries[first..] {
                e.at = i64::MIN;
            }
        }
    }

    /// Stories indexed, counting those pruned but not yet dropped.
    pub fn stories(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held, roughly: for the benchmark's memory figure.
    pub fn heap_bytes(&self) -> usize {
        self.heads.capacity() * (std::mem::size_of::<(u32, (u32, u32))>() + 1)
            + self.postings.capacity() * std::mem::size_of::<(u32, u32)>()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// One poll's fingerprints, as a `wire_prints` row holds them.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub at_max: i64,
}

impl Batch {
    pub fn push(&mut self, e: &Entry, print: &[u8]) {
        for n in [e.item_id.0, e.story_id.0, e.at] {
            self.bytes.extend(n.to_le_bytes());
        }
        self.bytes.extend((print.len() as u32).to_le_bytes());
        self.bytes.extend(print);
        self.at_max = self.at_max.max(e.at);
    }
}

/// The records of a `wire_prints` row: (entry without its row, fingerprint
/// bytes). Stops at the first record it cannot read.
pub fn records(bytes: &[u8]) -> impl Iterator<Item = (Entry, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = bytes.get(at..at + 28)?;
        let n = |i: usize| i64::from_le_bytes(head[i..i + 8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[24..28].try_into().expect("4 bytes")) as usize;
        let print = bytes.get(at + 28..at + 28 + len)?;
        at += 28 + len;
        let entry = Entry {
            item_id: ItemId(n(0)),
            story_id: StoryId(n(8)),
            at: n(16),
            row: 0,
        };
        Some((entry, print))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(story_id: i64, at: i64) -> Entry {
        Entry {
            story_id: StoryId(story_id),
            item_id: ItemId(story_id * 10),
            at,
            row: 1,
        }
    }

    #[test]
    fn a_batch_reads_back_and_a_truncated_one_stops() {
        let mut batch = Batch::default();
        batch.push(&entry(1, 100), b"abc");
        batch.push(&entry(2, 300), b"");
        batch.push(&entry(3, 200), b"defg");
        assert_eq!(batch.at_max, 300);
        let read: Vec<(i64, i64, Vec<u8>)> = records(&batch.bytes)
            .map(|(e, p)| (e.story_id.0, e.at, p.to_vec()))
            .collect();
        assert_eq!(
            read,
            [
                (1, 100, b"abc".to_vec()),
                (2, 300, vec![]),
                (3, 200, b"defg".to_vec())
            ]
        );
        let cut = &batch.bytes[..batch.bytes.len() - 1];
        assert_eq!(records(cut).count(), 2);
    }

    #[test]
    fn entries_of_a_rolled_back_group_are_no_candidates() {
        let mut index = WireIndex::new(0);
        index.insert(
            &[1],
            Entry {
                row: 0,
                ..entry(1, 10)
            },
        );
        assert_eq!(
            stories(index.candidates(&[1], 10, 60)),
            [1],
            "the group being written sees its own references"
        );
        index.stored(7);
        assert_eq!(stories(index.candidates(&[1], 10, 60)), [1]);
        index.insert(
            &[1],
            Entry {
                row: 0,
                ..entry(2, 10)
            },
        );
        index.unchecked = PRUNE_EVERY;
        assert!(!index.prune(5), "no rebuild while a group is pending");
        index.forget_pending();
        index.stored(8);
        assert_eq!(
            stories(index.candidates(&[1], 10, 60)),
            [1],
            "a rolled-back group's entry stays dead"
        );
    }

    #[test]
    fn a_retired_reference_names_its_story_no_more_unless_rolled_back() {
        let mut index = WireIndex::new(0);
        index.insert(&[1, 2], entry(1, 1000));
        // Story 1's item 11, published earlier, takes over (pending).
        let take_over = |index: &mut WireIndex| {
            let old = index.candidates(&[1], 1000, 60)[0];
            index.retire(&old);
            let earlier = Entry {
                item_id: ItemId(11),
                row: 0,
                ..entry(1, 900)
            };
            index.insert(&[2, 3], earlier);
        };
        take_over(&mut index);
        index.forget_pending();
        assert_eq!(
            stories(index.candidates(&[1], 1000, 60)),
            [1],
            "a rolled-back takeover leaves the old reference"
        );
        assert!(index.candidates(&[3], 1000, 200).is_empty());
        take_over(&mut index);
        index.stored(9);
        assert!(index.candidates(&[1], 1000, 60).is_empty());
        let now = index.candidates(&[2, 3], 1000, 200);
        assert_eq!(now.len(), 1, "one entry per story");
        assert_eq!((now[0].entry.item_id, now[0].entry.at), (ItemId(11), 900));
    }

    fn stories(found: Vec<Candidate>) -> Vec<i64> {
        found.iter().map(|c| c.entry.story_id.0).collect()
    }

    #[test]
    fn candidates_share_keys_within_the_window_most_shared_first() {
        let mut index = WireIndex::new(0);
        index.insert(&[1, 2, 3], entry(1, 1000));
        index.insert(&[3, 4], entry(2, 1000));
        index.insert(&[1, 2, 3], entry(3, 100_000));
        index.insert(&[9], entry(4, 1000));
        assert_eq!(stories(index.candidates(&[2, 3, 4], 2000, 3600)), [1, 2]);
        assert_eq!(stories(index.candidates(&[3, 4], 2000, 3600)), [2, 1]);
        assert_eq!(
            stories(index.candidates(&[7], 2000, 3600)),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn a_key_too_many_stories_share_names_no_candidate() {
        let mut index = WireIndex::new(0);
        for s in 0..=MAX_POSTINGS as i64 {
            index.insert(&[5, 100 + s as u32], entry(s, 1000));
        }
        assert!(index.candidates(&[5], 1000, 60).is_empty());
        assert_eq!(stories(index.candidates(&[5, 107], 1000, 60)), [7]);
    }

    #[test]
    fn pruning_keeps_what_is_inside_the_window() {
        let mut index = WireIndex::new(0);
        for s in 0..10 {
            index.insert(&[1, 2 + s as u32], entry(s, s * 100));
        }
        index.unchecked = PRUNE_EVERY;
        assert!(index.prune(650));
        assert_eq!(index.stories(), 3, "rebuilt without the 7 old entries");
        assert_eq!(stories(index.candidates(&[1], 800, 1000)), [7, 8, 9]);
        assert_eq!(stories(index.candidates(&[9], 800, 1000)), [7]);
        index.unchecked = PRUNE_EVERY;
        assert!(!index.prune(750));
        assert_eq!(index.stories(), 3, "one dead of three: not rebuilt yet");
        assert_eq!(stories(index.candidates(&[1], 900, 1000)), [8, 9]);
    }
}

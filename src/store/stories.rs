//! Which story a new item belongs to (SPEC §4): the story its link names
//! (link identity always wins), else the story whose copies it copies (wire
//! copies: a story is all its copies), else a story of its own; and the
//! stored fingerprints later copies are recognised by, one row per item.
//!
//! The index over them (`domain::wire_index`) is a cache of `wire_prints`:
//! read the first time a write needs it, and brought up to date at the
//! start of every write with the rows committed since, whoever wrote them
//! (a `run --once` beside the daemon). Each backend makes a write see all
//! there is when it starts (SQLite's write lock from the first statement;
//! PostgreSQL's lock on the wire copies, `postgres`), and the rows it adds
//! come after.

use std::collections::HashMap;

use anyhow::Result;

use super::sql::{Db, ToValue, args, insert_rows};
use super::{ItemRecord, PollRecord, WireMatch};
use crate::domain::ids::{FeedId, ItemId, StoryId};
use crate::domain::wire::{
    self as copy, Evidence, Fingerprint, Similarity, StoryCopies, judge, wire_date,
};
use crate::domain::wire_index::{self as wire, WireIndex};

/// Where a new item goes.
pub struct Placement {
    pub story_id: StoryId,
    /// It joined a story as a wire copy, with this containment.
    pub joined: Option<f64>,
}

/// Brings the index up to date before a write that may place new items:
/// read whole the first time, then the rows committed since.
pub(super) fn before_write(
    tx: &impl Db,
    wire: &mut Option<WireIndex>,
    polls: &[PollRecord],
) -> Result<()> {
    let Some(poll) = polls
        .iter()
        .find(|p| p.items.iter().any(|r| r.is_new && r.wire.is_some()))
    else {
        return Ok(());
    };
    fresh_index(tx, wire, poll.now - poll.wire_keep, true)?;
    Ok(())
}

/// Places a new item as `domain::wire::place` decides, with the lookups it
/// asks for, and keeps what that changes to be written (`NewRows`): a
/// copy's link now names its story; a new story's row.
pub(super) fn place_new_item<'a>(
    tx: &impl Db,
    wire: &mut Option<WireIndex>,
    placing: &mut Placing<'a>,
    poll: &PollRecord,
    r: &'a ItemRecord,
) -> Result<Placement> {
    let link = r.story_link.as_deref();
    let by_link = link.and_then(|l| placing.links.get(l).copied());
    let mut joined = None;
    let placed = copy::place(by_link, || -> Result<Option<StoryId>> {
        let (Some(fp), Some(index)) = (&r.wire, wire.as_ref()) else {
            return Ok(None);
        };
        let at = wire_date(&r.item, poll.now);
        let candidates = index.candidates(fp.keys(), at, poll.wire_window);
        // What the judgement reads of this write's own items comes from
        // `placing.placed`: they need not be in the tables yet.
        let found = wire_matches(tx, candidates, &placing.placed, fp, poll.feed_id)?;
        let best = found.into_iter().next().filter(WireMatch::joins);
        joined = best.as_ref().map(|m| m.similarity.containment);
        Ok(best.map(|m| m.story_id))
    })?;
    let story_id = match placed {
        copy::Placement::ByLink(story) => story,
        copy::Placement::Copy(story) => {
            if let Some(link) = link {
                placing.new.links.push((link, story));
                placing.links.insert(link.to_owned(), story);
            }
            story
        }
        copy::Placement::New => {
            let story = StoryId(placing.story_ids.next().ok_or_else(too_many)?);
            placing.new.stories.push((story, link, poll.now));
            placing.placed.stories.insert(story);
            if let Some(link) = link {
                placing.links.insert(link.to_owned(), story);
            }
            story
        }
    };
    Ok(Placement { story_id, joined })
}

/// What a write of polls keeps while it places new items:
/// - the stories their links name, read in one query when the write starts
///   and kept up to date as it places items (a write holds the lock under
///   which stories are made, so no other can add one);
/// - ids for its new stories and items, reserved in one query, and the
///   rows themselves (`NewRows`), inserted many a statement;
/// - what later items of the same write are judged on (`Placed`): the
///   fingerprints of the copies it placed, written to `wire_prints` at its
///   end in a few statements (`store`), not one an item.
pub(super) struct Placing<'a> {
    links: HashMap<String, StoryId>,
    /// The keys of the items said to be new that their feed already has
    /// (another process recorded them first): they are updated instead.
    /// Read only for a write of one poll, so keys of one feed.
    stored: std::collections::HashSet<String>,
    story_ids: std::vec::IntoIter<i64>,
    item_ids: std::vec::IntoIter<i64>,
    pub(super) new: NewRows<'a>,
    placed: Placed<'a>,
    rows: Vec<(ItemId, StoryId, i64)>,
}

/// What a write placed so far, which the judgement of a later copy of the
/// same write reads here rather than in the tables: its rows are inserted
/// many a statement, later (`NewRows`), and reading them first would
/// insert them a few at a time. Borrowed from the polls written, not
/// copied: a cold `run --once` places every item of every feed in one
/// write.
#[derive(Default)]
pub(super) struct Placed<'a> {
    /// The fingerprints of the copies placed.
    prints: HashMap<ItemId, &'a Fingerprint>,
    /// Each new item's title.
    items: HashMap<ItemId, &'a str>,
    /// (feed, story) of each new item.
    carried: std::collections::HashSet<(FeedId, StoryId)>,
    /// The stories made: none of their items is in the tables before.
    stories: std::collections::HashSet<StoryId>,
}

impl<'a> Placing<'a> {
    pub(super) fn of(tx: &impl Db, polls: &'a [PollRecord]) -> Result<Placing<'a>> {
        let fresh = polls.iter().flat_map(|p| &p.items).filter(|r| r.is_new);
        let wanted: Vec<&str> = fresh
            .clone()
            .filter_map(|r| r.story_link.as_deref())
            .collect();
        let count = fresh.count();
        let (story_ids, item_ids) = match count {
            0 => (Vec::new(), Vec::new()),
            n => tx.reserve_ids(n)?,
        };
        // Which keys said to be new are taken (another process recorded
        // them first, or a caller without a claim writes a poll again).
        // A write of several polls trusts what each read when it was
        // fetched: should one be taken, the insert fails, the write rolls
        // back, and each poll is written again alone, checked here.
        let mut stored = std::collections::HashSet::new();
        if let [poll] = polls {
            let keys: Vec<&str> = poll
                .items
                .iter()
                .filter(|r| r.is_new)
                .map(|r| r.key.as_str())
                .collect();
            if !keys.is_empty() {
                stored = tx
                    .rows(
                        &format!(
                            "SELECT item_key FROM items WHERE feed_id = ?1 AND {}",
                            tx.in_list("item_key", 2)
                        ),
                        args![poll.feed_id, serde_json::to_string(&keys)?],
                        |r| r.get::<String>(0),
                    )?
                    .into_iter()
                    .collect();
            }
        }
        let mut links = HashMap::with_capacity(wanted.len());
        if wanted.is_empty() {
            return Ok(Placing::new(links, story_ids, item_ids, stored));
        }
        // A story's own link before a copy's (`story_of_link`).
        let found = tx.rows(
            &format!(
                "SELECT link, id, 0 FROM stories WHERE {}
                 UNION ALL SELECT link, story_id, 1 FROM story_links WHERE {}",
                tx.in_list("link", 1),
                tx.in_list("link", 1)
            ),
            args![serde_json::to_string(&wanted)?],
            |r| Ok((r.get::<String>(0)?, r.get::<StoryId>(1)?, r.get::<i64>(2)?)),
        )?;
        for (link, story, copy) in found {
            if copy == 0 {
                links.insert(link, story);
            } else {
                links.entry(link).or_insert(story);
            }
        }
        Ok(Placing::new(links, story_ids, item_ids, stored))
    }

    fn new(
        links: HashMap<String, StoryId>,
        stories: Vec<i64>,
        items: Vec<i64>,
        stored: std::collections::HashSet<String>,
    ) -> Placing<'a> {
        Placing {
            links,
            stored,
            story_ids: stories.into_iter(),
            item_ids: items.into_iter(),
            new: NewRows::default(),
            placed: Placed::default(),
            rows: Vec::new(),
        }
    }

    /// The feed's item under `key` is to be inserted: it is in neither
    /// the table nor the rows kept.
    pub(super) fn is_new(&self, feed_id: FeedId, key: &str) -> bool {
        !self.new.holds(feed_id, key) && !self.stored.contains(key)
    }

    /// A new item of `story`: its id, the row kept to be inserted.
    pub(super) fn new_item(&mut self, item: NewItem<'a>) -> Result<ItemId> {
        let id = ItemId(self.item_ids.next().ok_or_else(too_many)?);
        self.placed.items.insert(id, item.item.title.as_str());
        self.placed.carried.insert((item.feed_id, item.story_id));
        self.new.keys.insert((item.feed_id, item.key));
        self.new.items.push((id, item));
        Ok(id)
    }

    /// Inserts the new rows left, then the fingerprints of the copies
    /// placed, many rows a statement.
    pub(super) fn store(&mut self, tx: &impl Db) -> Result<()> {
        self.new.flush(tx)?;
        // The prints' bytes a part at a time, not all the write's at once.
        for part in self.rows.chunks(256) {
            let rows: Vec<_> = part
                .iter()
                .map(|(item, story, at)| (item, story, at, self.placed.prints[item].to_bytes()))
                .collect();
            insert_rows(
                tx,
                (
                    "INSERT INTO wire_prints (item_id, story_id, at, print)",
                    "ON CONFLICT (item_id) DO UPDATE SET story_id = excluded.story_id,
                         at = excluded.at, print = excluded.print",
                ),
                4,
                &rows,
                |(item, story, at, print), args| {
                    args.extend([item.value(), story.value(), at.value(), print.value()]);
                },
                |_| Ok(()),
            )?;
        }
        self.rows.clear();
        Ok(())
    }
}

/// After a new item is inserted: its fingerprint is indexed (pending
/// until the write commits) and kept to be stored (`Placing::store`), so
/// that later copies are compared with it too.
pub(super) fn index_copy<'a>(
    wire: &mut Option<WireIndex>,
    placing: &mut Placing<'a>,
    poll: &PollRecord,
    r: &'a ItemRecord,
    item_id: ItemId,
    story_id: StoryId,
) {
    let (Some(fp), Some(index)) = (&r.wire, wire.as_mut()) else {
        return;
    };
    let at = wire_date(&r.item, poll.now);
    let entry = wire::Entry {
        story_id,
        item_id,
        at,
        cut: fp.is_cut(),
    };
    index.insert(fp.keys(), entry, false);
    placing.rows.push((item_id, story_id, at));
    placing.placed.prints.insert(item_id, fp);
}

/// A write's ids are reserved for as many stories and items as it has new
/// items; one more cannot be.
fn too_many() -> anyhow::Error {
    anyhow::anyhow!("more new rows than new items in a write")
}

/// A new item's row as inserted (`NewRows`).
pub(super) struct NewItem<'a> {
    pub feed_id: FeedId,
    pub key: &'a str,
    pub story_id: StoryId,
    pub item: &'a crate::domain::model::Item,
    /// Summary and content, when they are kept (`polls::Columns`).
    pub summary: &'a str,
    pub content: &'a str,
    pub categories: String,
    pub published: Option<i64>,
    pub updated: Option<i64>,
    pub now: i64,
    pub content_hash: &'a str,
    pub joined: Option<f64>,
}

/// The new stories, story links and items of a write not yet in their
/// tables. Their ids were reserved (`Db::reserve_ids`), so they are
/// inserted many a statement: before anything reads them or points to
/// them (`flush`), and at the end of the write. One statement a row was
/// a round trip a row on PostgreSQL.
///
/// The write holds the lock under which stories and items are made, and
/// read the stories of its links and which of its items' keys are taken
/// (`Placing::of`): none of these rows can meet one another process made.
/// If one did, the write fails whole rather than point to a row that is
/// not its own.
#[derive(Default)]
pub(super) struct NewRows<'a> {
    stories: Vec<(StoryId, Option<&'a str>, i64)>,
    links: Vec<(&'a str, StoryId)>,
    items: Vec<(ItemId, NewItem<'a>)>,
    /// (feed, item key) of `items`.
    keys: std::collections::HashSet<(FeedId, &'a str)>,
}

/// New items a write holds at most before inserting them: one statement's
/// worth (`sql::batches`), so that a cold write of 20,000 items does not
/// hold every row at once (7 MiB more at the peak of a cold `run --once`).
const HELD_ROWS: usize = 256;

impl<'a> NewRows<'a> {
    /// Whether the rows held make a full statement, to be inserted now.
    pub(super) fn full(&self) -> bool {
        self.items.len() >= HELD_ROWS
    }

    /// The feed's item under `key` is among the rows not yet inserted.
    fn holds(&self, feed_id: FeedId, key: &str) -> bool {
        self.keys.contains(&(feed_id, key))
    }

    /// Inserts the rows kept: stories, then the links naming them, then
    /// items.
    pub(super) fn flush(&mut self, tx: &impl Db) -> Result<()> {
        let made = insert_rows(
            tx,
            (
                "INSERT INTO stories (id, link, first_seen)",
                "ON CONFLICT DO NOTHING RETURNING id",
            ),
            3,
            &self.stories,
            |(id, link, now), args| args.extend([id.value(), link.value(), now.value()]),
            |r| r.get::<i64>(0),
        )?;
        if made.len() != self.stories.len() {
            anyhow::bail!("not recorded: another process made one of its stories meanwhile");
        }
        insert_rows(
            tx,
            (
                "INSERT INTO story_links (link, story_id)",
                "ON CONFLICT (link) DO NOTHING",
            ),
            2,
            &self.links,
            |(link, story), args| args.extend([link.value(), story.value()]),
            |_| Ok(()),
        )?;
        let made = insert_rows(
            tx,
            (
                "INSERT INTO items (id, feed_id, item_key, story_id, title, link, summary, content,
                     categories, published, updated, first_seen, changed_at, content_hash, joined)",
                "ON CONFLICT DO NOTHING RETURNING id",
            ),
            15,
            &self.items,
            |(id, n), args| {
                args.extend([
                    id.value(),
                    n.feed_id.value(),
                    n.key.value(),
                    n.story_id.value(),
                    n.item.title.value(),
                    n.item.link.value(),
                    n.summary.value(),
                    n.content.value(),
                    n.categories.value(),
                    n.published.value(),
                    n.updated.value(),
                    n.now.value(),
                    n.now.value(),
                    n.content_hash.value(),
                    n.joined.value(),
                ]);
            },
            |r| r.get::<i64>(0),
        )?;
        if made.len() != self.items.len() {
            anyhow::bail!("not recorded: another process recorded one of its items meanwhile");
        }
        self.stories.clear();
        self.links.clear();
        self.items.clear();
        self.keys.clear();
        Ok(())
    }
}

/// The stored story a normalised link names, if any (link identity).
pub(super) fn story_of_link(conn: &impl Db, link: &str) -> Result<Option<StoryId>> {
    conn.row(
        "SELECT id FROM stories WHERE link = ?1
         UNION ALL SELECT story_id FROM story_links WHERE link = ?1 LIMIT 1",
        args![link],
        |r| r.get(0),
    )
}

/// The index, read from the database the first time it is needed, then
/// brought up to date with the rows committed since, and pruned of copies
/// older than `since`; with `tidy`, their stored fingerprints are deleted
/// too (so that `run --once` from cron keeps the table to a window's worth
/// as the daemon does).
pub(super) fn fresh_index<'a>(
    conn: &impl Db,
    wire: &'a mut Option<WireIndex>,
    since: i64,
    tidy: bool,
) -> Result<&'a mut WireIndex> {
    let index = match wire {
        Some(index) => index,
        None => {
            if tidy {
                conn.exec("DELETE FROM wire_prints WHERE at < ?1", args![since])?;
            }
            wire.insert(WireIndex::new(since))
        }
    };
    let mut keys = Vec::new();
    conn.rows(
        "SELECT item_id, story_id, at, print FROM wire_prints
         WHERE item_id > ?1 AND at >= ?2 ORDER BY item_id",
        args![index.seen(), since],
        |row| {
            let Some(cut) = row.bytes(3, |blob| Fingerprint::index_keys(blob, &mut keys))? else {
                return Ok(());
            };
            let entry = wire::Entry {
                item_id: row.get(0)?,
                story_id: row.get(1)?,
                at: row.get(2)?,
                cut,
            };
            index.insert(&keys, entry, true);
            Ok(())
        },
    )?;
    if index.prune(since) && tidy {
        conn.exec("DELETE FROM wire_prints WHERE at < ?1", args![since])?;
    }
    Ok(index)
}

/// The `candidates` the index found for `fp` (stories with copies sharing
/// its keys), each judged on those copies, best first. The comparison reads the stored fingerprints,
/// so an index entry whose item was rolled back is simply not found.
pub(super) fn wire_matches(
    conn: &impl Db,
    candidates: Vec<wire::Found>,
    placed: &Placed,
    fp: &Fingerprint,
    feed_id: FeedId,
) -> Result<Vec<WireMatch>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // What the judgement reads, in three queries at most whatever the
    // number of candidates: their copies' fingerprints, which of them this
    // feed already carries, and the titles shown; what the write placed
    // itself is read in `placed`.
    let copies: Vec<ItemId> = candidates
        .iter()
        .flat_map(|c| c.copies.iter().map(|e| e.item_id))
        .filter(|id| !placed.prints.contains_key(id))
        .collect();
    let stored: HashMap<ItemId, Fingerprint> = match copies.is_empty() {
        // Every copy was placed by this write: nothing to read.
        true => HashMap::new(),
        false => conn
            .rows(
                &format!(
                    "SELECT item_id, print FROM wire_prints WHERE {}",
                    conn.in_int_list("item_id", 1)
                ),
                args![serde_json::to_string(&ids(&copies))?],
                |r| Ok((r.get::<ItemId>(0)?, r.bytes(1, Fingerprint::from_bytes)?)),
            )?
            .into_iter()
            .filter_map(|(id, print)| Some((id, print?)))
            .collect(),
    };
    let mut same_feed: std::collections::HashSet<StoryId> = candidates
        .iter()
        .map(|c| c.story_id)
        .filter(|story| placed.carried.contains(&(feed_id, *story)))
        .collect();
    let stories: Vec<i64> = candidates
        .iter()
        .filter(|c| !placed.stories.contains(&c.story_id))
        .map(|c| c.story_id.0)
        .collect();
    if !stories.is_empty() {
        same_feed.extend(conn.rows(
            &format!(
                "SELECT DISTINCT story_id FROM items WHERE feed_id = ?1 AND {}",
                conn.in_int_list("story_id", 2)
            ),
            args![feed_id, serde_json::to_string(&stories)?],
            |r| r.get::<StoryId>(0),
        )?);
    }
    let mut judged = Vec::with_capacity(candidates.len());
    for candidate in &candidates {
        let prints: Vec<(ItemId, &Fingerprint)> = candidate
            .copies
            .iter()
            .filter_map(|c| {
                let print = placed
                    .prints
                    .get(&c.item_id)
                    .copied()
                    .or_else(|| stored.get(&c.item_id));
                print.map(|p| (c.item_id, p))
            })
            .collect();
        if prints.is_empty() {
            continue;
        }
        let story = StoryCopies {
            story: candidate.story_id,
            same_feed: false,
            has_full: candidate.has_full,
            gap: candidate.gap,
            copies: prints.iter().map(|(_, p)| *p).collect(),
        };
        // The copy that decided, or else the closest one.
        let (similarity, evidence, closest) = match judge(fp, &story) {
            Some(choice) => (choice.similarity, choice.evidence, choice.copy),
            None => {
                let sims: Vec<Similarity> = prints.iter().map(|(_, p)| fp.compare(p)).collect();
                let closest = (0..sims.len())
                    .max_by(|&a, &b| sims[a].containment.total_cmp(&sims[b].containment))
                    .unwrap_or(0);
                (sims[closest], Evidence::None, closest)
            }
        };
        judged.push((
            candidate.story_id,
            similarity,
            evidence,
            prints[closest].0,
            candidate.gap,
        ));
    }
    if judged.is_empty() {
        return Ok(Vec::new());
    }
    let (mine, closest): (Vec<ItemId>, Vec<ItemId>) = judged
        .iter()
        .map(|j| j.3)
        .partition(|id| placed.items.contains_key(id));
    let mut titles: HashMap<ItemId, String> = mine
        .into_iter()
        .map(|id| (id, placed.items[&id].to_owned()))
        .collect();
    if !closest.is_empty() {
        titles.extend(conn.rows(
            &format!(
                "SELECT id, title FROM items WHERE {}",
                conn.in_int_list("id", 1)
            ),
            args![serde_json::to_string(&ids(&closest))?],
            |r| Ok((r.get::<ItemId>(0)?, r.get::<String>(1)?)),
        )?);
    }
    let mut found: Vec<WireMatch> = judged
        .into_iter()
        .filter_map(|(story_id, similarity, evidence, copy, gap)| {
            Some(WireMatch {
                story_id,
                title: titles.get(&copy)?.clone(),
                similarity,
                evidence,
                same_feed: same_feed.contains(&story_id),
                gap,
            })
        })
        .collect();
    // Best first: one it may join, then as `wire::preferred` ranks them.
    let rank = |m: &WireMatch| (m.evidence, m.similarity.containment, m.gap);
    found.sort_by(|a, b| {
        b.joins()
            .cmp(&a.joins())
            .then(copy::preferred(rank(b), rank(a)))
    });
    Ok(found)
}

/// Item ids as the integers of a JSON array.
fn ids(items: &[ItemId]) -> Vec<i64> {
    items.iter().map(|i| i.0).collect()
}

//! Which story a new item belongs to (SPEC §4): the story its link names
//! (link identity always wins), else the story whose copies it copies (wire
//! copies: a story is all its copies), else a story of its own; and the
//! stored fingerprints later copies are recognised by, one row per item.
//!
//! The index over them (`domain::wire_index`) is a cache of `wire_prints`:
//! read the first time a write needs it, and brought up to date at the
//! start of every write with the rows committed since, whoever wrote them
//! (a `run --once` beside the daemon). A write holds SQLite's write lock
//! from its first statement, so what it reads then is all there is, and
//! the rows it adds come after.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};

use super::{ItemRecord, PollRecord, Sqlite, WireMatch};
use crate::domain::ids::{FeedId, ItemId, StoryId};
use crate::domain::model::Item;
use crate::domain::wire::{
    self as copy, Evidence, Fingerprint, Similarity, StoryCopies, judge, wire_date,
};
use crate::domain::wire_index::{self as wire, WireIndex};

impl Sqlite {
    /// The stored stories `fp` would be compared with if its item were new
    /// in the feed named `feed` (for `veille test --feed`), best first.
    pub fn wire_matches(
        &mut self,
        fp: &Fingerprint,
        item: &Item,
        now: i64,
        window: i64,
        keep: i64,
        feed: &str,
    ) -> Result<Vec<WireMatch>> {
        let feed_id: FeedId = self
            .conn
            .query_row("SELECT id FROM feeds WHERE name = ?1", [feed], |r| r.get(0))
            .optional()?
            .unwrap_or(FeedId(-1));
        let index = fresh_index(&self.conn, &mut self.wire, now - keep, false)?;
        let at = wire_date(item, now);
        wire_matches(&self.conn, index, fp, at, window, feed_id)
    }

    /// The stored story a normalised link names, if any (link identity).
    pub fn story_of_link(&self, link: &str) -> Result<Option<StoryId>> {
        story_of_link(&self.conn, link)
    }

    /// Copies in the wire index and the bytes it holds (0, 0 before it is
    /// first needed), for the benchmark.
    pub fn wire_index_size(&self) -> (usize, usize) {
        self.wire
            .as_ref()
            .map_or((0, 0), |w| (w.copies(), w.heap_bytes()))
    }
}

/// Where a new item goes.
pub(super) struct Placement {
    pub(super) story_id: StoryId,
    /// It joined a story as a wire copy, with this containment.
    pub(super) joined: Option<f64>,
}

/// Brings the index up to date before a write that may place new items:
/// read whole the first time, then the rows committed since.
pub(super) fn before_write(
    tx: &Connection,
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
/// asks for, and writes what that changes: a copy's link now names its
/// story; a new story's row.
pub(super) fn place_new_item(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    poll: &PollRecord,
    r: &ItemRecord,
) -> Result<Placement> {
    let link = r.story_link.as_deref();
    let by_link = match link {
        Some(l) => story_of_link(tx, l)?,
        None => None,
    };
    let mut joined = None;
    let placed = copy::place(by_link, || -> Result<Option<StoryId>> {
        let (Some(fp), Some(index)) = (&r.wire, wire.as_ref()) else {
            return Ok(None);
        };
        let at = wire_date(&r.item, poll.now);
        let found = wire_matches(tx, index, fp, at, poll.wire_window, poll.feed_id)?;
        let best = found.into_iter().next().filter(WireMatch::joins);
        joined = best.as_ref().map(|m| m.similarity.containment);
        Ok(best.map(|m| m.story_id))
    })?;
    let story_id = match placed {
        copy::Placement::ByLink(story) => story,
        copy::Placement::Copy(story) => {
            if let Some(link) = link {
                tx.prepare_cached("INSERT INTO story_links (link, story_id) VALUES (?1, ?2)")?
                    .execute(params![link, story])?;
            }
            story
        }
        copy::Placement::New => {
            tx.prepare_cached("INSERT INTO stories (link, first_seen) VALUES (?1, ?2)")?
                .execute(params![link, poll.now])?;
            StoryId(tx.last_insert_rowid())
        }
    };
    Ok(Placement { story_id, joined })
}

/// After a new item is inserted: its fingerprint is stored and indexed
/// (pending until the write commits), so that later copies are compared
/// with it too.
pub(super) fn index_copy(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    poll: &PollRecord,
    r: &ItemRecord,
    item_id: ItemId,
    story_id: StoryId,
) -> Result<()> {
    let (Some(fp), Some(index)) = (&r.wire, wire.as_mut()) else {
        return Ok(());
    };
    let at = wire_date(&r.item, poll.now);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO wire_prints (item_id, story_id, at, print) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![item_id, story_id, at, fp.to_bytes()])?;
    let entry = wire::Entry {
        story_id,
        item_id,
        at,
        cut: fp.is_cut(),
    };
    index.insert(fp.keys(), entry, false);
    Ok(())
}

fn story_of_link(conn: &Connection, link: &str) -> Result<Option<StoryId>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM stories WHERE link = ?1
             UNION ALL SELECT story_id FROM story_links WHERE link = ?1 LIMIT 1",
        )?
        .query_row([link], |row| row.get(0))
        .optional()?)
}

/// The index, read from the database the first time it is needed, then
/// brought up to date with the rows committed since, and pruned of copies
/// older than `since`; with `tidy`, their stored fingerprints are deleted
/// too (so that `run --once` from cron keeps the table to a window's worth
/// as the daemon does).
fn fresh_index<'a>(
    conn: &Connection,
    wire: &'a mut Option<WireIndex>,
    since: i64,
    tidy: bool,
) -> Result<&'a mut WireIndex> {
    let index = match wire {
        Some(index) => index,
        None => {
            if tidy {
                conn.prepare_cached("DELETE FROM wire_prints WHERE at < ?1")?
                    .execute([since])?;
            }
            wire.insert(WireIndex::new(since))
        }
    };
    let mut stmt = conn.prepare_cached(
        "SELECT item_id, story_id, at, print FROM wire_prints
         WHERE item_id > ?1 AND at >= ?2 ORDER BY item_id",
    )?;
    let mut rows = stmt.query(params![index.seen(), since])?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(3)?.as_blob()?;
        let Some(cut) = Fingerprint::index_keys(blob, &mut keys) else {
            continue;
        };
        let entry = wire::Entry {
            item_id: row.get(0)?,
            story_id: row.get(1)?,
            at: row.get(2)?,
            cut,
        };
        index.insert(&keys, entry, true);
    }
    if index.prune(since) && tidy {
        conn.prepare_cached("DELETE FROM wire_prints WHERE at < ?1")?
            .execute([since])?;
    }
    Ok(index)
}

/// The fingerprint of a stored copy; `None` when its row is gone (rolled
/// back, or pruned) or unreadable.
fn stored_print(conn: &Connection, item: ItemId) -> Result<Option<Fingerprint>> {
    let mut stmt = conn.prepare_cached("SELECT print FROM wire_prints WHERE item_id = ?1")?;
    let mut rows = stmt.query([item])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(Fingerprint::from_bytes(row.get_ref(0)?.as_blob()?))
}

/// The stories with copies sharing index keys with `fp`, each judged on
/// those copies, best first. The comparison reads the stored fingerprints,
/// so an index entry whose item was rolled back is simply not found.
fn wire_matches(
    conn: &Connection,
    index: &WireIndex,
    fp: &Fingerprint,
    at: i64,
    window: i64,
    feed_id: FeedId,
) -> Result<Vec<WireMatch>> {
    let mut found = Vec::new();
    for candidate in index.candidates(fp.keys(), at, window) {
        let mut prints = Vec::new();
        for c in &candidate.copies {
            if let Some(print) = stored_print(conn, c.item_id)? {
                prints.push((c.item_id, print));
            }
        }
        if prints.is_empty() {
            continue;
        }
        let same_feed = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM items WHERE story_id = ?1 AND feed_id = ?2)",
            )?
            .query_row(params![candidate.story_id, feed_id], |r| r.get(0))?;
        let story = StoryCopies {
            story: candidate.story_id,
            same_feed: false,
            has_full: candidate.has_full,
            copies: prints.iter().map(|(_, p)| p).collect(),
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
        let title: Option<String> = conn
            .prepare_cached("SELECT title FROM items WHERE id = ?1")?
            .query_row([prints[closest].0], |r| r.get(0))
            .optional()?;
        let Some(title) = title else {
            continue;
        };
        found.push(WireMatch {
            story_id: candidate.story_id,
            title,
            similarity,
            evidence,
            same_feed,
        });
    }
    found.sort_by(|a, b| {
        (b.joins(), b.evidence, b.similarity.containment)
            .partial_cmp(&(a.joins(), a.evidence, a.similarity.containment))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(found)
}

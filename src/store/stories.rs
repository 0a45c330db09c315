//! Which story a new item belongs to (SPEC §4): the story its link names
//! (link identity always wins), else the story whose first item it copies
//! (wire copies), else a story of its own; and the stored fingerprints
//! that later copies are recognised by.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};

use super::wire::{self, WireIndex};
use super::{ItemRecord, PollRecord, Store};
use crate::domain::model::Item;
use crate::domain::wire::{Fingerprint, Similarity};

impl Store {
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
        let feed_id: i64 = self
            .conn
            .query_row("SELECT id FROM feeds WHERE name = ?1", [feed], |r| r.get(0))
            .optional()?
            .unwrap_or(-1);
        let index = wire_index(&self.conn, &mut self.wire, now - keep, false)?;
        wire_matches(&self.conn, index, fp, wire_date(item, now), window, feed_id)
    }

    /// The stored story a normalised link names, if any (link identity).
    pub fn story_of_link(&self, link: &str) -> Result<Option<i64>> {
        story_of_link(&self.conn, link)
    }

    /// Stories in the wire index and the bytes it holds (0, 0 before it is
    /// first needed), for the benchmark.
    pub fn wire_index_size(&self) -> (usize, usize) {
        self.wire
            .as_ref()
            .map_or((0, 0), |w| (w.stories(), w.heap_bytes()))
    }
}

/// Where a new item goes.
pub(super) struct Placement<'a> {
    pub(super) story_id: i64,
    /// It opened a story that later copies may join: its fingerprint and
    /// the date the window counts from.
    opened: Option<(&'a Fingerprint, i64)>,
    /// It joined a story as a wire copy, with this containment.
    pub(super) joined: Option<f64>,
}

/// SPEC §4: a known link names its story (link identity always wins);
/// otherwise an item with a fingerprint may join the story whose first
/// item it copies; otherwise it opens a story of its own.
pub(super) fn place_new_item<'a>(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    poll: &PollRecord,
    r: &'a ItemRecord,
) -> Result<Placement<'a>> {
    let link = r.story_link.as_deref();
    if let Some(link) = link
        && let Some(story_id) = story_of_link(tx, link)?
    {
        return Ok(Placement {
            story_id,
            opened: None,
            joined: None,
        });
    }
    let at = wire_date(&r.item, poll.now);
    if let Some(fp) = &r.wire {
        let index = wire_index(tx, wire, poll.now - poll.wire_keep, true)?;
        let found = wire_matches(tx, index, fp, at, poll.wire_window, poll.feed_id)?;
        if let Some(m) = found.iter().find(|m| m.joins()) {
            if let Some(link) = link {
                tx.prepare_cached("INSERT INTO story_links (link, story_id) VALUES (?1, ?2)")?
                    .execute(params![link, m.story_id])?;
            }
            return Ok(Placement {
                story_id: m.story_id,
                opened: None,
                joined: Some(m.similarity.containment),
            });
        }
    }
    tx.prepare_cached("INSERT INTO stories (link, first_seen) VALUES (?1, ?2)")?
        .execute(params![link, poll.now])?;
    Ok(Placement {
        story_id: tx.last_insert_rowid(),
        opened: r.wire.as_ref().map(|fp| (fp, at)),
        joined: None,
    })
}

fn story_of_link(conn: &Connection, link: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM stories WHERE link = ?1
             UNION ALL SELECT story_id FROM story_links WHERE link = ?1 LIMIT 1",
        )?
        .query_row([link], |row| row.get(0))
        .optional()?)
}

/// The date a story's wire window counts from: the item's, else now; never
/// in the future.
fn wire_date(item: &Item, now: i64) -> i64 {
    item.date().map_or(now, |d| d.timestamp()).min(now)
}

/// A stored story an item was compared with.
#[derive(Debug, Clone)]
pub struct WireMatch {
    pub story_id: i64,
    /// The title of the story's first item.
    pub title: String,
    pub similarity: Similarity,
    /// The item's feed already carries the story: a feed's own items never
    /// join each other's stories.
    pub same_feed: bool,
}

impl WireMatch {
    pub fn joins(&self) -> bool {
        self.similarity.is_copy() && !self.same_feed
    }
}

/// The index, read from the database the first time it is needed, and
/// pruned of stories older than `since`; with `tidy`, their stored
/// fingerprints are deleted too (at the first read, so that `run --once`
/// from cron keeps the table to a window's worth as the daemon does).
fn wire_index<'a>(
    conn: &Connection,
    wire: &'a mut Option<WireIndex>,
    since: i64,
    tidy: bool,
) -> Result<&'a mut WireIndex> {
    if wire.is_none() {
        if tidy {
            conn.prepare_cached("DELETE FROM wire_prints WHERE at_max < ?1")?
                .execute([since])?;
        }
        let mut index = WireIndex::new(since);
        let mut stmt = conn.prepare("SELECT id, prints FROM wire_prints WHERE at_max >= ?1")?;
        let mut rows = stmt.query([since])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let blob = row.get_ref(1)?.as_blob()?;
            for (entry, print) in wire::records(blob) {
                if let (true, Some(fp)) = (entry.at >= since, Fingerprint::from_bytes(print)) {
                    index.insert(fp.keys(), wire::Entry { row: id, ..entry });
                }
            }
        }
        *wire = Some(index);
    }
    let index = wire.as_mut().expect("loaded above");
    if index.prune(since) && tidy {
        conn.prepare_cached("DELETE FROM wire_prints WHERE at_max < ?1")?
            .execute([since])?;
    }
    Ok(index)
}

/// The stored fingerprint of an index entry's item; `None` when its row is
/// gone (rolled back, or pruned).
fn stored_print(conn: &Connection, e: &wire::Entry) -> Result<Option<Fingerprint>> {
    let mut stmt = conn.prepare_cached("SELECT prints FROM wire_prints WHERE id = ?1")?;
    let mut rows = stmt.query([e.row])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let blob = row.get_ref(0)?.as_blob()?;
    Ok(wire::records(blob)
        .find(|(r, _)| r.item_id == e.item_id && r.story_id == e.story_id)
        .and_then(|(_, print)| Fingerprint::from_bytes(print)))
}

/// The stories whose first item shares index keys with `fp`, compared with
/// it, best first. The comparison reads the stored fingerprint, so an index
/// entry whose item was rolled back is simply not found.
fn wire_matches(
    conn: &Connection,
    index: &WireIndex,
    fp: &Fingerprint,
    at: i64,
    window: i64,
    feed_id: i64,
) -> Result<Vec<WireMatch>> {
    let mut found = Vec::new();
    for c in index.candidates(fp.keys(), at, window) {
        let Some(first) = stored_print(conn, &c)? else {
            continue;
        };
        let title: Option<String> = conn
            .prepare_cached("SELECT title FROM items WHERE id = ?1")?
            .query_row([c.item_id], |r| r.get(0))
            .optional()?;
        let Some(title) = title else {
            continue;
        };
        let same_feed = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM items WHERE story_id = ?1 AND feed_id = ?2)",
            )?
            .query_row(params![c.story_id, feed_id], |r| r.get(0))?;
        found.push(WireMatch {
            story_id: c.story_id,
            title,
            similarity: fp.compare(&first),
            same_feed,
        });
    }
    found.sort_by(|a, b| {
        (b.joins(), b.similarity.containment)
            .partial_cmp(&(a.joins(), a.similarity.containment))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(found)
}

/// After the item that opened a story is inserted: its fingerprint joins
/// the poll's batch and the index (pending until the batch is written).
pub(super) fn opened(
    wire: &mut Option<WireIndex>,
    prints: &mut wire::Batch,
    place: &Placement,
    item_id: i64,
) {
    if let (Some((fp, at)), Some(index)) = (place.opened, wire.as_mut()) {
        let entry = wire::Entry {
            story_id: place.story_id,
            item_id,
            at,
            row: 0,
        };
        prints.push(&entry, &fp.to_bytes());
        index.insert(fp.keys(), entry);
    }
}

/// Writes one poll's fingerprints as one row, and tells the index where.
pub(super) fn write_prints(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    prints: &wire::Batch,
) -> Result<()> {
    if let (false, Some(index)) = (prints.bytes.is_empty(), wire.as_mut()) {
        tx.prepare_cached("INSERT INTO wire_prints (at_max, prints) VALUES (?1, ?2)")?
            .execute(params![prints.at_max, prints.bytes])?;
        index.stored(tx.last_insert_rowid());
    }
    Ok(())
}

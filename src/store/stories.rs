//! Which story a new item belongs to (SPEC §4): the story its link names
//! (link identity always wins), else the story whose first item it copies
//! (wire copies), else a story of its own; and the stored fingerprints
//! that later copies are recognised by.
//!
//! A story's first item is its earliest published (first-seen when
//! undated), not the first one fetched: a backlog polled late, feed after
//! feed, clusters as it would have live. A copy that joins a story and was
//! published before its reference becomes the reference.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};

use super::{ItemRecord, PollRecord, Store};
use crate::domain::ids::{FeedId, ItemId, StoryId};
use crate::domain::model::Item;
use crate::domain::wire::{self as copy, Fingerprint, Joinable, Similarity, wire_date};
use crate::domain::wire_index::{self as wire, WireIndex};

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
        let feed_id: FeedId = self
            .conn
            .query_row("SELECT id FROM feeds WHERE name = ?1", [feed], |r| r.get(0))
            .optional()?
            .unwrap_or(FeedId(-1));
        let index = wire_index(&self.conn, &mut self.wire, now - keep, false)?;
        let at = wire_date(item, now);
        wire_matches(
            &self.conn,
            index,
            &Prints::default(),
            fp,
            at,
            window,
            feed_id,
        )
    }

    /// The stored story a normalised link names, if any (link identity).
    pub fn story_of_link(&self, link: &str) -> Result<Option<StoryId>> {
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
    pub(super) story_id: StoryId,
    /// It is its story's reference, which later copies are compared with:
    /// its fingerprint and the date the window counts from.
    reference: Option<(&'a Fingerprint, i64)>,
    /// The reference it takes over from.
    replaces: Option<wire::Candidate>,
    /// It joined a story as a wire copy, with this containment.
    pub(super) joined: Option<f64>,
}

/// Places a new item as `domain::wire::place` decides, with the lookups it
/// asks for, and writes what that changes: a copy's link now names its
/// story; a new story's row.
pub(super) fn place_new_item<'a>(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    prints: &Prints,
    poll: &PollRecord,
    r: &'a ItemRecord,
) -> Result<Placement<'a>> {
    let link = r.story_link.as_deref();
    let by_link = match link {
        Some(l) => story_of_link(tx, l)?,
        None => None,
    };
    let at = wire_date(&r.item, poll.now);
    let mut copied = None;
    let placed = copy::place(
        by_link,
        || -> Result<Option<Joinable>> {
            let Some(fp) = &r.wire else { return Ok(None) };
            let index = wire_index(tx, wire, poll.now - poll.wire_keep, true)?;
            let found = wire_matches(tx, index, prints, fp, at, poll.wire_window, poll.feed_id)?;
            copied = found.into_iter().find(WireMatch::joins);
            Ok(copied.as_ref().map(|m| Joinable {
                story: m.story_id,
                reference_at: m.reference.entry.at,
            }))
        },
        at,
    )?;
    write_placement(tx, placed, copied, r, at, poll.now)
}

/// Writes what a placement changes — a copy's link now names its story; a
/// new story gets its row — and says how the item is recorded.
fn write_placement<'a>(
    tx: &Connection,
    placed: copy::Placement,
    copied: Option<WireMatch>,
    r: &'a ItemRecord,
    at: i64,
    now: i64,
) -> Result<Placement<'a>> {
    let link = r.story_link.as_deref();
    Ok(match placed {
        copy::Placement::ByLink(story_id) => Placement {
            story_id,
            reference: None,
            replaces: None,
            joined: None,
        },
        copy::Placement::Copy {
            story,
            takes_reference,
        } => {
            let m = copied.expect("a copy comes from a match");
            if let Some(link) = link {
                tx.prepare_cached("INSERT INTO story_links (link, story_id) VALUES (?1, ?2)")?
                    .execute(params![link, story])?;
            }
            let fp = r.wire.as_ref().expect("a copy has a fingerprint");
            Placement {
                story_id: story,
                reference: takes_reference.then_some((fp, at)),
                replaces: takes_reference.then_some(m.reference),
                joined: Some(m.similarity.containment),
            }
        }
        copy::Placement::New => {
            tx.prepare_cached("INSERT INTO stories (link, first_seen) VALUES (?1, ?2)")?
                .execute(params![link, now])?;
            Placement {
                story_id: StoryId(tx.last_insert_rowid()),
                reference: r.wire.as_ref().map(|fp| (fp, at)),
                replaces: None,
                joined: None,
            }
        }
    })
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

/// A stored story an item was compared with.
#[derive(Debug, Clone)]
pub struct WireMatch {
    pub story_id: StoryId,
    /// The title of the story's first item.
    pub title: String,
    pub similarity: Similarity,
    /// The item's feed already carries the story: a feed's own items never
    /// join each other's stories.
    pub same_feed: bool,
    /// The story's reference in the index.
    reference: wire::Candidate,
}

impl WireMatch {
    pub fn joins(&self) -> bool {
        crate::domain::wire::joins(&self.similarity, self.same_feed)
    }

    /// The date the story's window counts from (its reference's).
    pub fn reference_at(&self) -> i64 {
        self.reference.entry.at
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
        // A story whose reference was taken over has several rows: its
        // earliest item is the one that counts.
        let mut loaded: Vec<(wire::Entry, Vec<u32>)> = Vec::new();
        let mut of_story: HashMap<StoryId, usize> = Default::default();
        let mut stmt =
            conn.prepare("SELECT id, prints FROM wire_prints WHERE at_max >= ?1 ORDER BY id")?;
        let mut rows = stmt.query([since])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let blob = row.get_ref(1)?.as_blob()?;
            for (entry, print) in wire::records(blob) {
                let (true, Some(fp)) = (entry.at >= since, Fingerprint::from_bytes(print)) else {
                    continue;
                };
                let entry = wire::Entry { row: id, ..entry };
                match of_story.get(&entry.story_id) {
                    Some(&i) if loaded[i].0.at <= entry.at => {}
                    Some(&i) => loaded[i] = (entry, fp.keys().to_vec()),
                    None => {
                        of_story.insert(entry.story_id, loaded.len());
                        loaded.push((entry, fp.keys().to_vec()));
                    }
                }
            }
        }
        let mut index = WireIndex::new(since);
        for (entry, keys) in loaded {
            index.insert(&keys, entry);
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

/// The fingerprints of the references a group of polls set, gathered
/// into one `wire_prints` row, written with the group.
#[derive(Default)]
pub(super) struct Prints<'a> {
    batch: wire::Batch,
    /// By item id: those the index names before the row is written.
    unwritten: HashMap<ItemId, &'a Fingerprint>,
}

/// The fingerprint of an index entry's item; `None` when its row is gone
/// (rolled back, or pruned).
fn stored_print<'a>(
    conn: &Connection,
    prints: &Prints<'a>,
    e: &wire::Entry,
) -> Result<Option<Cow<'a, Fingerprint>>> {
    if e.row == 0 {
        return Ok(prints
            .unwritten
            .get(&e.item_id)
            .map(|fp| Cow::Borrowed(*fp)));
    }
    let mut stmt = conn.prepare_cached("SELECT prints FROM wire_prints WHERE id = ?1")?;
    let mut rows = stmt.query([e.row])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let blob = row.get_ref(0)?.as_blob()?;
    Ok(wire::records(blob)
        .find(|(r, _)| r.item_id == e.item_id && r.story_id == e.story_id)
        .and_then(|(_, print)| Fingerprint::from_bytes(print))
        .map(Cow::Owned))
}

/// The stories whose first item shares index keys with `fp`, compared with
/// it, best first. The comparison reads the stored fingerprint, so an index
/// entry whose item was rolled back is simply not found.
fn wire_matches(
    conn: &Connection,
    index: &WireIndex,
    prints: &Prints,
    fp: &Fingerprint,
    at: i64,
    window: i64,
    feed_id: FeedId,
) -> Result<Vec<WireMatch>> {
    let mut found = Vec::new();
    for reference in index.candidates(fp.keys(), at, window) {
        let c = reference.entry;
        let Some(first) = stored_print(conn, prints, &c)? else {
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
            reference,
        });
    }
    found.sort_by(|a, b| {
        (b.joins(), b.similarity.containment)
            .partial_cmp(&(a.joins(), a.similarity.containment))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(found)
}

/// After a story's reference item is inserted: its fingerprint joins the
/// group's prints and the index (pending until the prints are written), in
/// place of the reference it takes over from.
pub(super) fn referenced<'a>(
    wire: &mut Option<WireIndex>,
    prints: &mut Prints<'a>,
    place: &Placement<'a>,
    item_id: ItemId,
) {
    if let (Some((fp, at)), Some(index)) = (place.reference, wire.as_mut()) {
        if let Some(old) = &place.replaces {
            index.retire(old);
        }
        let entry = wire::Entry {
            story_id: place.story_id,
            item_id,
            at,
            row: 0,
        };
        prints.batch.push(&entry, &fp.to_bytes());
        prints.unwritten.insert(item_id, fp);
        index.insert(fp.keys(), entry);
    }
}

/// Writes a group's fingerprints as one row, and tells the index where.
pub(super) fn write_prints(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    prints: &Prints,
) -> Result<()> {
    let batch = &prints.batch;
    if let (false, Some(index)) = (batch.bytes.is_empty(), wire.as_mut()) {
        tx.prepare_cached("INSERT INTO wire_prints (at_max, prints) VALUES (?1, ?2)")?
            .execute(params![batch.at_max, batch.bytes])?;
        index.stored(tx.last_insert_rowid());
    }
    Ok(())
}

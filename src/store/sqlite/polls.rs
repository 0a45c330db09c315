//! Recording polls decided by `domain::poll`: a poll's items, the alerts
//! they cause and the feed's new state, in one transaction (group commit
//! over several polls).

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AlertDraft, ItemRecord, KnownItem, RecordSummary, Sqlite, StoredHit, WireIndex, new_id,
    retention, stored, stories,
};
use crate::domain::identity::Identity;
use crate::domain::ids::{FeedId, ItemId, StoryId};
use crate::domain::poll::{FetchFailure, FetchRecord, PollRecord};
use crate::domain::wire::wire_date;

impl Sqlite {
    /// What is stored of the feed's items among `ids`, by item key, to
    /// tell new and changed items from the ones already recorded; an item
    /// whose key or link remains of a pruned one is `KnownItem::Pruned`.
    pub fn known_items(
        &self,
        feed_id: FeedId,
        ids: &[Identity],
    ) -> Result<HashMap<String, KnownItem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT content_hash, first_seen FROM items WHERE feed_id = ?1 AND item_key = ?2",
        )?;
        let mut known = HashMap::new();
        for id in ids {
            let key = id.item_key.as_str();
            let stored = stmt
                .query_row(params![feed_id, key], |r| {
                    Ok(KnownItem::Stored {
                        content_hash: r.get(0)?,
                        first_seen: r.get(1)?,
                    })
                })
                .optional()?;
            let k = match stored {
                Some(k) => k,
                None if retention::item_pruned(&self.conn, feed_id, key)? => KnownItem::Pruned,
                None => match &id.story_link {
                    Some(link) if retention::link_pruned(&self.conn, link)? => KnownItem::Pruned,
                    _ => continue,
                },
            };
            known.insert(key.to_owned(), k);
        }
        Ok(known)
    }

    /// Writes several polls in one transaction (group commit), their new
    /// items placed in publication order (SPEC §4: which story a copy
    /// joins does not depend on which outlet answered first). A poll is
    /// recorded whole or not at all, and one that fails does not undo the
    /// others: when the group fails, each poll is written again on its own,
    /// inside its own savepoint.
    pub fn record_polls(&mut self, polls: &[PollRecord]) -> Result<Vec<Result<RecordSummary>>> {
        let wire = &mut self.wire;
        let mut tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Err(e) = stories::before_write(&tx, wire, polls) {
            // Read whole again at the next write.
            *wire = None;
            return Err(e);
        }
        if polls.len() > 1 {
            let sp = tx.savepoint()?;
            if let Ok(summaries) = write_polls(&sp, wire, polls) {
                sp.commit()?;
                commit(tx, wire)?;
                return Ok(summaries.into_iter().map(Ok).collect());
            }
            forget_pending(wire);
        }
        let mut results = Vec::with_capacity(polls.len());
        for poll in polls {
            let sp = tx.savepoint()?;
            let result = write_polls(&sp, wire, std::slice::from_ref(poll));
            if result.is_ok() {
                sp.commit()?;
            } else {
                forget_pending(wire);
            }
            results.push(result.map(|mut s| s.remove(0)));
        }
        commit(tx, wire)?;
        Ok(results)
    }
}

/// Commits a write, telling the wire index whether its copies are stored
/// or gone.
fn commit(tx: rusqlite::Transaction, wire: &mut Option<WireIndex>) -> Result<()> {
    match tx.commit() {
        Ok(()) => {
            if let Some(index) = wire.as_mut() {
                index.committed();
            }
            Ok(())
        }
        Err(e) => {
            forget_pending(wire);
            Err(e.into())
        }
    }
}

fn forget_pending(wire: &mut Option<WireIndex>) {
    if let Some(index) = wire.as_mut() {
        index.forget_pending();
    }
}

/// Writes polls' items, earliest published first, then their feeds' state;
/// a summary per poll.
fn write_polls(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    polls: &[PollRecord],
) -> Result<Vec<RecordSummary>> {
    let mut order: Vec<(&PollRecord, &ItemRecord, usize)> = polls
        .iter()
        .enumerate()
        .flat_map(|(p, poll)| poll.items.iter().map(move |r| (poll, r, p)))
        .collect();
    order.sort_by_key(|(poll, r, _)| wire_date(&r.item, poll.now));
    let mut summaries = vec![RecordSummary::default(); polls.len()];
    for (poll, record, p) in order {
        let summary = &mut summaries[p];
        let (item_id, story_id, is_new) = upsert_item(tx, wire, poll, record)?;
        if is_new {
            summary.new_items += 1;
        } else {
            summary.changed_items += 1;
        }
        for alert in &record.alerts {
            if enqueue_alert(tx, story_id, item_id, poll.now, alert)? {
                summary.alerts += 1;
                summary.alerted.push(alert.channel.clone());
            }
        }
    }
    for poll in polls {
        update_feed(tx, poll)?;
    }
    Ok(summaries)
}

/// Inserts a new item (finding, joining or creating its story) or updates a
/// changed one. Returns (item id, story id, whether it was new). The
/// caller's `is_new` saves a lookup; the unique key still decides.
///
/// Summary and content are kept only for an item that causes an alert: they
/// are what messages quote. For the others, title, link, dates, categories and
/// the content hash are enough, and the database stays a fraction of the
/// size. An update that causes no alert leaves stored text alone, so a pending
/// alert still quotes what it matched.
fn upsert_item(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    poll: &PollRecord,
    r: &ItemRecord,
) -> Result<(ItemId, StoryId, bool)> {
    let columns = Columns::of(r)?;
    if r.is_new
        && let Some((item_id, story_id)) = insert_item(tx, wire, poll, r, &columns)?
    {
        return Ok((item_id, story_id, true));
    }
    let (item_id, story_id) = update_item(tx, poll, r, &columns)?;
    Ok((item_id, story_id, false))
}

/// An item's columns as stored; summary and content only when quoted.
struct Columns<'a> {
    categories: String,
    published: Option<i64>,
    updated: Option<i64>,
    /// The item causes an alert: its text is what messages quote.
    quoted: bool,
    summary: &'a str,
    content: &'a str,
}

impl<'a> Columns<'a> {
    fn of(r: &'a ItemRecord) -> Result<Columns<'a>> {
        let i = &r.item;
        let quoted = !r.alerts.is_empty();
        Ok(Columns {
            categories: serde_json::to_string(&i.categories)?,
            published: i.published.map(|d| d.timestamp()),
            updated: i.updated.map(|d| d.timestamp()),
            quoted,
            summary: if quoted { &i.summary } else { "" },
            content: if quoted { &i.content } else { "" },
        })
    }
}

/// Inserts a new item in the story it is placed in; `None` when the feed
/// already has an item under its key (another process recorded it).
fn insert_item(
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    poll: &PollRecord,
    r: &ItemRecord,
    c: &Columns,
) -> Result<Option<(ItemId, StoryId)>> {
    let place = stories::place_new_item(tx, wire, poll, r)?;
    let i = &r.item;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO items (feed_id, item_key, story_id, title, link, summary, content, categories,
                                published, updated, first_seen, changed_at, content_hash, joined)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)
             ON CONFLICT (feed_id, item_key) DO NOTHING",
        )?
        .execute(params![
            poll.feed_id,
            r.key,
            place.story_id,
            i.title,
            i.link,
            c.summary,
            c.content,
            c.categories,
            c.published,
            c.updated,
            poll.now,
            r.content_hash,
            place.joined
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let item_id = ItemId(tx.last_insert_rowid());
    stories::index_copy(tx, wire, poll, r, item_id, place.story_id)?;
    Ok(Some((item_id, place.story_id)))
}

/// Updates a changed item; its stored text only when it is quoted, so that
/// a pending alert still quotes what it matched. Returns (item, story).
fn update_item(
    tx: &Connection,
    poll: &PollRecord,
    r: &ItemRecord,
    c: &Columns,
) -> Result<(ItemId, StoryId)> {
    let (item_id, story_id): (ItemId, StoryId) = tx
        .prepare_cached("SELECT id, story_id FROM items WHERE feed_id = ?1 AND item_key = ?2")?
        .query_row(params![poll.feed_id, r.key], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let i = &r.item;
    tx.prepare_cached(
        "UPDATE items SET title = ?2, link = ?3, categories = ?6, published = ?7, updated = ?8,
             content_hash = ?9, changed_at = ?10,
             summary = CASE WHEN ?11 THEN ?4 ELSE summary END,
             content = CASE WHEN ?11 THEN ?5 ELSE content END
         WHERE id = ?1",
    )?
    .execute(params![
        item_id,
        i.title,
        i.link,
        c.summary,
        c.content,
        c.categories,
        c.published,
        c.updated,
        r.content_hash,
        poll.now,
        c.quoted
    ])?;
    Ok((item_id, story_id))
}

/// Creates the (story, channel) alert, or, when it exists and is still
/// pending, adds the new rules to it (`AlertDraft::merge_into`). Returns
/// whether an alert was created.
fn enqueue_alert(
    tx: &Connection,
    story_id: StoryId,
    item_id: ItemId,
    now: i64,
    a: &AlertDraft,
) -> Result<bool> {
    let id = new_id();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO alerts (id, story_id, channel, item_id, rules, hits, created, due)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (story_id, channel) DO NOTHING",
        )?
        .execute(params![
            id,
            story_id,
            a.channel,
            item_id,
            stored::encode(stored::RULES, &a.rules)?,
            stored::encode(stored::HITS, &a.hits)?,
            now,
            a.due
        ])?;
    if inserted == 1 {
        return Ok(true);
    }
    let pending: Option<(String, String, String)> = tx
        .prepare_cached("SELECT id, rules, hits FROM alerts WHERE story_id = ?1 AND channel = ?2 AND state = 'pending'")?
        .query_row(params![story_id, a.channel], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((id, rules, hits)) = pending {
        // A row that cannot be read back is left as it is: delivery marks
        // it failed; this poll is recorded all the same.
        let (Ok(mut rules), Ok(mut hits)) = (
            stored::decode::<Vec<String>>(stored::RULES, &rules),
            stored::decode::<Vec<StoredHit>>(stored::HITS, &hits),
        ) else {
            return Ok(false);
        };
        if !a.merge_into(&mut rules, &mut hits) {
            return Ok(false);
        }
        tx.prepare_cached("UPDATE alerts SET rules = ?2, hits = ?3 WHERE id = ?1")?
            .execute(params![
                id,
                stored::encode(stored::RULES, &rules)?,
                stored::encode(stored::HITS, &hits)?
            ])?;
    }
    Ok(false)
}

/// The feed's row after a poll. The run of failures is counted here, in
/// SQL, not written from what the poller read: two processes polling one
/// database (the daemon and a `run --once`) must not lose a failure. The
/// schedule (`next_poll`) comes from `domain::schedule::after_poll`.
fn update_feed(tx: &Connection, p: &PollRecord) -> Result<()> {
    if let Some(target) = &p.redirect_url {
        tx.execute(
            "UPDATE feeds SET redirect_url = ?2 WHERE id = ?1",
            params![p.feed_id, target],
        )?;
    }
    match &p.fetch {
        FetchRecord::Fetched { status, etag, last_modified, items, unread_items } => tx.prepare_cached(
            "UPDATE feeds SET etag = ?2, last_modified = ?3, last_status = ?4, last_fetch = ?5,
                 last_error = NULL, consecutive_failures = 0, failing_since = NULL, retry_after_until = NULL,
                 next_poll = ?6, first_success = COALESCE(first_success, ?5),
                 last_items = ?7, unread_items = ?8 WHERE id = ?1",
            )?
            .execute(params![p.feed_id, etag, last_modified, status, p.now, p.next_poll, items, unread_items])?,
        FetchRecord::NotModified => tx.prepare_cached(
            "UPDATE feeds SET last_status = 304, last_fetch = ?2, last_error = NULL, consecutive_failures = 0,
                 failing_since = NULL, retry_after_until = NULL, next_poll = ?3 WHERE id = ?1",
            )?
            .execute(params![p.feed_id, p.now, p.next_poll])?,
        FetchRecord::Failed(FetchFailure { status, error, gone, retry_after_until }) => tx.prepare_cached(
            "UPDATE feeds SET last_status = ?2, last_fetch = ?3, last_error = ?4,
                 consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, ?3),
                 gone = gone OR ?5, retry_after_until = ?6, next_poll = ?7 WHERE id = ?1",
            )?
            .execute(params![p.feed_id, status, p.now, error, gone, retry_after_until, p.next_poll])?,
    };
    Ok(())
}

//! Recording polls decided by `domain::poll`: a poll's items, the alerts
//! they cause and the feed's new state, written by the caller in one
//! transaction (group commit over several polls); and what is known of a
//! feed's items before.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::sql::{Db, ToValue, args, cast_values, insert_rows, many_rows};
use super::texts;
use super::{
    AlertDraft, ItemRecord, KnownItem, RecordSummary, StoredHit, WireIndex, new_id, retention,
    stored, stories,
};
use crate::domain::identity::Identity;
use crate::domain::ids::{FeedId, ItemId, StoryId};
use crate::domain::poll::{FetchFailure, FetchRecord, PollRecord};
use crate::domain::wire::wire_date;

/// What is stored of the feed's items among `ids`, by item key, to tell
/// new and changed items from the ones already recorded; an item whose key
/// or link remains of a pruned one is `KnownItem::Pruned`. One query
/// whatever the number of items (one round trip on PostgreSQL).
pub(super) fn known_items(
    db: &impl Db,
    feed_id: FeedId,
    ids: &[Identity],
) -> Result<HashMap<String, KnownItem>> {
    let mut known = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(known);
    }
    let keys: Vec<&str> = ids.iter().map(|i| i.item_key.as_str()).collect();
    let item_hashes: Vec<i64> = ids
        .iter()
        .map(|i| retention::item_key_hash(feed_id, &i.item_key))
        .collect();
    let link_hashes: Vec<Option<i64>> = ids
        .iter()
        .map(|i| i.story_link.as_deref().map(retention::link_hash))
        .collect();
    let links: Vec<i64> = link_hashes.iter().flatten().copied().collect();
    // (0, key, hash, first seen) of a stored item; (1 or 2, -, -, hash) of
    // a pruned item's key or link.
    let rows = db.rows(
        &format!(
            "SELECT 0, item_key, content_hash, first_seen FROM items
             WHERE feed_id = ?1 AND {}
             UNION ALL SELECT 1, NULL, NULL, key FROM pruned_items WHERE {}
             UNION ALL SELECT 2, NULL, NULL, key FROM pruned_links WHERE {}",
            db.in_list("item_key", 2),
            db.in_int_list("key", 3),
            db.in_int_list("key", 4)
        ),
        args![
            feed_id,
            serde_json::to_string(&keys)?,
            serde_json::to_string(&item_hashes)?,
            serde_json::to_string(&links)?
        ],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<Option<String>>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<i64>(3)?,
            ))
        },
    )?;
    let (mut items_pruned, mut links_pruned) = (HashSet::new(), HashSet::new());
    for (kind, key, content_hash, n) in rows {
        match (kind, key, content_hash) {
            (0, Some(key), Some(content_hash)) => {
                known.insert(
                    key,
                    KnownItem::Stored {
                        content_hash,
                        first_seen: n,
                    },
                );
            }
            (1, ..) => {
                items_pruned.insert(n);
            }
            (2, ..) => {
                links_pruned.insert(n);
            }
            _ => anyhow::bail!("a stored item without its key or content hash"),
        }
    }
    for ((id, item), link) in ids.iter().zip(&item_hashes).zip(&link_hashes) {
        if known.contains_key(&id.item_key) {
            continue;
        }
        if items_pruned.contains(item) || link.is_some_and(|l| links_pruned.contains(&l)) {
            known.insert(id.item_key.clone(), KnownItem::Pruned);
        }
    }
    Ok(known)
}

/// After a write committed: the copies it indexed are stored.
pub(super) fn committed(wire: &mut Option<WireIndex>) {
    if let Some(index) = wire.as_mut() {
        index.committed();
    }
}

/// After a write (or a part of one) rolled back: the copies it indexed are
/// gone.
pub(super) fn forget_pending(wire: &mut Option<WireIndex>) {
    if let Some(index) = wire.as_mut() {
        index.forget_pending();
    }
}

/// Writes polls' items, earliest published first, then their feeds' state;
/// a summary per poll.
pub(super) fn write_polls(
    tx: &impl Db,
    owner: &str,
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
    let mut placing = stories::Placing::of(tx, polls)?;
    let mut keeping = texts::Keeping::default();
    let mut alerts = NewAlerts::default();
    for (poll, record, p) in order {
        let summary = &mut summaries[p];
        let (item_id, story_id, is_new) = upsert_item(tx, wire, &mut placing, poll, record)?;
        if poll.keep_text {
            keeping.keep(item_id, poll.now, record);
        }
        if is_new {
            summary.new_items += 1;
        } else {
            summary.changed_items += 1;
        }
        for alert in &record.alerts {
            alerts.add(p, story_id, item_id, poll.now, alert);
        }
    }
    // An alert points to its item and story: they are in their tables
    // first.
    placing.store(tx)?;
    alerts.store(tx, &mut summaries)?;
    keeping.store(tx)?;
    update_feeds(tx, owner, polls)?;
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
fn upsert_item<'a>(
    tx: &impl Db,
    wire: &mut Option<WireIndex>,
    placing: &mut stories::Placing<'a>,
    poll: &PollRecord,
    r: &'a ItemRecord,
) -> Result<(ItemId, StoryId, bool)> {
    let columns = Columns::of(r)?;
    if r.is_new && placing.is_new(poll.feed_id, &r.key) {
        let (item_id, story_id) = insert_item(tx, wire, placing, poll, r, columns)?;
        return Ok((item_id, story_id, true));
    }
    placing.new.flush(tx)?;
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

/// Places a new item in its story and keeps its row to be inserted with
/// others (`stories::NewRows`).
fn insert_item<'a>(
    tx: &impl Db,
    wire: &mut Option<WireIndex>,
    placing: &mut stories::Placing<'a>,
    poll: &PollRecord,
    r: &'a ItemRecord,
    c: Columns<'a>,
) -> Result<(ItemId, StoryId)> {
    let place = stories::place_new_item(tx, wire, placing, poll, r)?;
    let item_id = placing.new_item(stories::NewItem {
        feed_id: poll.feed_id,
        key: &r.key,
        story_id: place.story_id,
        item: &r.item,
        summary: c.summary,
        content: c.content,
        categories: c.categories,
        published: c.published,
        updated: c.updated,
        now: poll.now,
        content_hash: &r.content_hash,
        joined: place.joined,
    })?;
    stories::index_copy(wire, placing, poll, r, item_id, place.story_id);
    if placing.new.full() {
        placing.new.flush(tx)?;
    }
    Ok((item_id, place.story_id))
}

/// Updates a changed item; its stored text only when it is quoted, so that
/// a pending alert still quotes what it matched. Returns (item, story).
fn update_item(
    tx: &impl Db,
    poll: &PollRecord,
    r: &ItemRecord,
    c: &Columns,
) -> Result<(ItemId, StoryId)> {
    let (item_id, story_id): (ItemId, StoryId) = tx.one(
        "SELECT id, story_id FROM items WHERE feed_id = ?1 AND item_key = ?2",
        args![poll.feed_id, r.key],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let i = &r.item;
    tx.exec(
        "UPDATE items SET title = ?2, link = ?3, categories = ?6, published = ?7, updated = ?8,
             content_hash = ?9, changed_at = ?10,
             summary = CASE WHEN ?11 = 1 THEN ?4 ELSE summary END,
             content = CASE WHEN ?11 = 1 THEN ?5 ELSE content END
         WHERE id = ?1",
        args![
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
        ],
    )?;
    Ok((item_id, story_id))
}

/// The alerts a write causes, inserted together at its end, many rows a
/// statement (one statement an alert was a round trip an alert on
/// PostgreSQL). Two drafts of one write for the same story and channel
/// make one alert, as they did one after the other: the later one's rules
/// are added to the earlier one's (`AlertDraft::merge_into`).
#[derive(Default)]
struct NewAlerts<'a> {
    alerts: Vec<NewAlert>,
    /// Where each (story, channel) is in `alerts`.
    at: HashMap<(StoryId, &'a str), usize>,
}

struct NewAlert {
    /// The poll whose summary counts it.
    poll: usize,
    story_id: StoryId,
    item_id: ItemId,
    now: i64,
    /// The first draft, with the rules of the later ones merged in.
    draft: AlertDraft,
}

impl<'a> NewAlerts<'a> {
    fn add(
        &mut self,
        poll: usize,
        story_id: StoryId,
        item_id: ItemId,
        now: i64,
        draft: &'a AlertDraft,
    ) {
        let key = (story_id, draft.channel.as_str());
        if let Some(&i) = self.at.get(&key) {
            let first = &mut self.alerts[i].draft;
            draft.merge_into(&mut first.rules, &mut first.hits);
            return;
        }
        self.at.insert(key, self.alerts.len());
        self.alerts.push(NewAlert {
            poll,
            story_id,
            item_id,
            now,
            draft: draft.clone(),
        });
    }

    /// Creates each (story, channel) alert, counted in its poll's summary;
    /// where one exists already (an earlier write's) and is still pending,
    /// adds the new rules to it instead.
    fn store(&self, tx: &impl Db, summaries: &mut [RecordSummary]) -> Result<()> {
        let mut rows = Vec::with_capacity(self.alerts.len());
        for a in &self.alerts {
            rows.push((
                new_id(),
                a,
                stored::encode(stored::RULES, &a.draft.rules)?,
                stored::encode(stored::HITS, &a.draft.hits)?,
            ));
        }
        let made: HashSet<String> = insert_rows(
            tx,
            (
                "INSERT INTO alerts (id, story_id, channel, item_id, rules, hits, created, due)",
                "ON CONFLICT (story_id, channel) DO NOTHING RETURNING id",
            ),
            8,
            &rows,
            |(id, a, rules, hits), args| {
                args.extend([
                    id.value(),
                    a.story_id.value(),
                    a.draft.channel.value(),
                    a.item_id.value(),
                    rules.value(),
                    hits.value(),
                    a.now.value(),
                    a.draft.due.value(),
                ]);
            },
            |r| r.get::<String>(0),
        )?
        .into_iter()
        .collect();
        for (id, a, _, _) in &rows {
            if made.contains(id) {
                let summary = &mut summaries[a.poll];
                summary.alerts += 1;
                summary.alerted.push(a.draft.channel.clone());
            } else {
                add_to_pending(tx, a.story_id, &a.draft)?;
            }
        }
        Ok(())
    }
}

/// Adds a draft's rules, with their hits, to the pending alert of the story
/// and its channel (`AlertDraft::merge_into`); an alert sent or given up is
/// left alone.
fn add_to_pending(tx: &impl Db, story_id: StoryId, draft: &AlertDraft) -> Result<()> {
    let pending: Option<(String, String, String)> = tx.row(
        "SELECT id, rules, hits FROM alerts WHERE story_id = ?1 AND channel = ?2 AND state = 'pending'",
        args![story_id, draft.channel],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let Some((id, rules, hits)) = pending else {
        return Ok(());
    };
    // A row that cannot be read back is left as it is: delivery marks it
    // failed; this poll is recorded all the same.
    let (Ok(mut rules), Ok(mut hits)) = (
        stored::decode::<Vec<String>>(stored::RULES, &rules),
        stored::decode::<Vec<StoredHit>>(stored::HITS, &hits),
    ) else {
        return Ok(());
    };
    if !draft.merge_into(&mut rules, &mut hits) {
        return Ok(());
    }
    // Still pending: a sender may have marked it sent since it was read.
    tx.exec(
        "UPDATE alerts SET rules = ?2, hits = ?3 WHERE id = ?1 AND state = 'pending'",
        args![
            id,
            stored::encode(stored::RULES, &rules)?,
            stored::encode(stored::HITS, &hits)?
        ],
    )?;
    Ok(())
}

/// The feeds' rows after their polls, many a statement (`update_feeds_of`),
/// then what only some polls change (pages fetched, a redirect). The run
/// of failures is counted here, in SQL, not written from what the poller
/// read: two processes polling one database (the daemon and a `run
/// --once`) must not lose a failure. The schedule (`next_poll`) comes from
/// `domain::schedule::after_poll`.
///
/// A poll made under a claim (SPEC §10) is recorded only while `owner`
/// still holds that claim, and ends it; when the claim ran out and another
/// process took the feed, the poll is refused whole: the feed is theirs.
fn update_feeds(tx: &impl Db, owner: &str, polls: &[PollRecord]) -> Result<()> {
    // A feed polled twice in one write is updated once a statement, in
    // the order of its polls: one statement's rows cannot meet.
    let mut rounds: Vec<Vec<&PollRecord>> = Vec::new();
    let mut seen: HashMap<FeedId, usize> = HashMap::new();
    for poll in polls {
        let round = seen.entry(poll.feed_id).or_insert(0);
        if rounds.len() == *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(poll);
        *round += 1;
    }
    for round in &rounds {
        for kind in [
            FeedUpdate::Fetched,
            FeedUpdate::NotModified,
            FeedUpdate::Failed,
        ] {
            let polls: Vec<&PollRecord> = round
                .iter()
                .copied()
                .filter(|p| FeedUpdate::of(&p.fetch) == kind)
                .collect();
            update_feeds_of(tx, owner, kind, &polls)?;
        }
    }
    for p in polls {
        update_pages_and_redirect(tx, p)?;
    }
    Ok(())
}

/// The three ways a poll leaves its feed's row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FeedUpdate {
    Fetched,
    NotModified,
    Failed,
}

impl FeedUpdate {
    fn of(fetch: &FetchRecord) -> FeedUpdate {
        match fetch {
            FetchRecord::Fetched { .. } => FeedUpdate::Fetched,
            FetchRecord::NotModified => FeedUpdate::NotModified,
            FetchRecord::Failed(_) => FeedUpdate::Failed,
        }
    }

    /// The columns each poll gives (after the five every kind has: feed,
    /// owner, epoch, at, next) with their types, and what they set.
    fn columns(
        self,
    ) -> (
        &'static [&'static str],
        &'static [&'static str],
        &'static str,
    ) {
        match self {
            FeedUpdate::Fetched => (
                &["status", "etag", "modified", "n_items", "n_unread"],
                &["BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT"],
                "etag = v.etag, last_modified = v.modified, last_status = v.status,
                 last_fetch = v.at, last_error = NULL, consecutive_failures = 0,
                 failing_since = NULL, retry_after_until = NULL, next_poll = v.next,
                 first_success = COALESCE(feeds.first_success, v.at),
                 last_items = v.n_items, unread_items = v.n_unread",
            ),
            FeedUpdate::NotModified => (
                &[],
                &[],
                "last_status = 304, last_fetch = v.at, last_error = NULL,
                 consecutive_failures = 0, failing_since = NULL, retry_after_until = NULL,
                 next_poll = v.next",
            ),
            FeedUpdate::Failed => (
                &["status", "error", "is_gone", "retry_until"],
                &["BIGINT", "TEXT", "BIGINT", "BIGINT"],
                "last_status = v.status, last_fetch = v.at, last_error = v.error,
                 consecutive_failures = feeds.consecutive_failures + 1,
                 failing_since = COALESCE(feeds.failing_since, v.at),
                 gone = CASE WHEN v.is_gone = 1 THEN 1 ELSE feeds.gone END,
                 retry_after_until = v.retry_until, next_poll = v.next",
            ),
        }
    }
}

/// Updates the rows of `polls`' feeds, all of one kind, each feed once.
/// A poll under a claim (`epoch` set) is checked against it and ends it;
/// one whose claim has passed on fails the write.
fn update_feeds_of(
    tx: &impl Db,
    owner: &str,
    kind: FeedUpdate,
    polls: &[&PollRecord],
) -> Result<()> {
    if polls.is_empty() {
        return Ok(());
    }
    let (names, types, set) = kind.columns();
    let names = [&["feed", "owner", "epoch", "at", "next"][..], names].concat();
    let types = [&["BIGINT", "TEXT", "BIGINT", "BIGINT", "BIGINT"][..], types].concat();
    let statement = |n| {
        format!(
            "WITH v ({}) AS (VALUES {})
             UPDATE feeds SET {set},
                 lease_owner = CASE WHEN v.epoch IS NULL THEN feeds.lease_owner END,
                 lease_until = CASE WHEN v.epoch IS NULL THEN feeds.lease_until END,
                 fetching = CASE WHEN v.epoch IS NULL THEN feeds.fetching ELSE 0 END
             FROM v
             WHERE feeds.id = v.feed
               AND (v.epoch IS NULL OR (feeds.lease_owner = v.owner AND feeds.lease_epoch = v.epoch))
             RETURNING feeds.id",
            names.join(", "),
            cast_values(n, &types)
        )
    };
    let updated: HashSet<FeedId> = many_rows(
        tx,
        statement,
        names.len(),
        polls,
        |p, args| {
            args.extend([
                p.feed_id.value(),
                owner.value(),
                p.lease.value(),
                p.now.value(),
                p.next_poll.value(),
            ]);
            match &p.fetch {
                FetchRecord::Fetched {
                    status,
                    etag,
                    last_modified,
                    items,
                    unread_items,
                } => {
                    args.extend([
                        status.value(),
                        etag.value(),
                        last_modified.value(),
                        items.value(),
                        unread_items.value(),
                    ]);
                }
                FetchRecord::NotModified => {}
                FetchRecord::Failed(FetchFailure {
                    status,
                    error,
                    gone,
                    retry_after_until,
                }) => {
                    args.extend([
                        status.value(),
                        error.value(),
                        gone.value(),
                        retry_after_until.value(),
                    ]);
                }
            }
        },
        |r| r.get::<FeedId>(0),
    )?
    .into_iter()
    .collect();
    if polls
        .iter()
        .any(|p| p.lease.is_some() && !updated.contains(&p.feed_id))
    {
        anyhow::bail!(
            "not recorded: the feed's claim ran out and another process took it (its poll counts)"
        );
    }
    Ok(())
}

/// What only some polls change: the tally of pages fetched for full text,
/// a permanent redirect.
fn update_pages_and_redirect(tx: &impl Db, p: &PollRecord) -> Result<()> {
    if !p.pages.is_empty() {
        let t = &p.pages;
        let failed_at = t.last_failure.as_ref().map(|_| p.now);
        tx.exec(
            "UPDATE feeds SET pages_ok = pages_ok + ?2, pages_failed = pages_failed + ?3,
                 pages_skipped = pages_skipped + ?4, page_failure = COALESCE(?5, page_failure),
                 page_failure_at = COALESCE(?6, page_failure_at) WHERE id = ?1",
            args![
                p.feed_id,
                t.ok,
                t.failed,
                t.skipped,
                t.last_failure,
                failed_at
            ],
        )?;
    }
    if let Some(target) = &p.redirect_url {
        tx.exec(
            "UPDATE feeds SET redirect_url = ?2 WHERE id = ?1",
            args![p.feed_id, target],
        )?;
    }
    Ok(())
}

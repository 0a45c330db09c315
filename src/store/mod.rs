//! SQLite, the only place with SQL.
//!
//! The schema comes from `migrations/`, embedded at build time and applied in
//! one transaction at open; a database from a newer veille is refused. The
//! face of this module is named by intent (`sync_feeds`, `known_items`,
//! `record_polls`, `due_alerts`, `mark_sent`, …) so that another store could
//! sit beside it without the daemon changing.
//!
//! Guarantees kept here:
//! - a poll's items, the alerts they cause and the feed's new validators are
//!   written in one transaction: a crash loses all of it or none;
//! - one alert per (story, channel), ever, by the `alerts` unique key;
//! - a new item's story (link, wire copy or its own: `stories`) is decided
//!   in the transaction that records it.

mod health;
mod outbox;
mod retention;
mod status;
pub mod stored;
mod stories;
mod wire;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::domain::identity::Identity;
use crate::domain::model::{Item, Outlet};
pub use crate::domain::triage::{AlertDraft, ItemRecord, KnownItem, StoredHit};
use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

pub use health::{FeedHealth, HealthChange};
pub use outbox::{Claimed, Damaged, DueDigest, DueHealth, Requeued, Target};
pub use retention::{Cursor, Pruned, Retained};
pub use status::{ChannelStatus, FeedStatus, LateCopies, Status};
pub use stories::WireMatch;
pub use wire::WireIndex;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        M::up(include_str!("../../migrations/0002_digests.sql")),
        M::up(include_str!("../../migrations/0003_wire.sql")),
        M::up(include_str!("../../migrations/0004_leases.sql")),
        M::up(include_str!("../../migrations/0005_unread.sql")),
        M::up(include_str!("../../migrations/0006_health.sql")),
        M::up(include_str!("../../migrations/0007_retention.sql")),
        M::up(include_str!("../../migrations/0008_prune_indexes.sql")),
    ])
}

const SCHEMA_VERSION: i64 = 8;

pub struct Store {
    conn: Connection,
    /// Who holds the leases this store takes (`outbox`): random, one per
    /// open store, so two processes (or two stores in one) never mistake
    /// each other's leases for their own.
    owner: String,
    /// Stories wire copies may join; read from the database when first
    /// needed (see `wire`).
    wire: Option<WireIndex>,
}

/// A feed's fetch state, as the poller needs it.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub redirect_url: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub gone: bool,
    pub retry_after_until: Option<i64>,
    pub next_poll: Option<i64>,
    pub consecutive_failures: u32,
    pub first_success: Option<i64>,
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
    Failed {
        status: Option<u16>,
        error: String,
        /// 410: stop polling until the URL changes.
        gone: bool,
        retry_after_until: Option<i64>,
    },
}

pub struct PollRecord {
    pub feed_id: i64,
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
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    pub new_items: usize,
    pub changed_items: usize,
    pub alerts: usize,
    /// The channel of each alert queued (`veille_alerts_total`).
    pub alerted: Vec<String>,
}

/// An alert due for delivery, with what a message about it needs.
#[derive(Debug, Clone)]
pub struct DueAlert {
    pub id: String,
    pub channel: String,
    pub attempts: u32,
    pub created: i64,
    /// Start of the current round of tries (24 h of them at least).
    pub queued: i64,
    pub rules: Vec<String>,
    pub hits: Vec<StoredHit>,
    pub item: Item,
    /// Every feed that carried the story with its own link, first seen
    /// first.
    pub outlets: Vec<Outlet>,
}

/// The columns every outbox query selects, in this order.
const ALERT_COLUMNS: &str = "a.id, a.channel, a.attempts, a.created, a.rules, a.hits, a.item_id, a.story_id, COALESCE(a.queued, a.created)";

struct AlertRow {
    id: String,
    channel: String,
    attempts: u32,
    created: i64,
    rules: String,
    hits: String,
    item_id: i64,
    story_id: i64,
    queued: i64,
}

impl AlertRow {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<AlertRow> {
        Ok(AlertRow {
            id: r.get(0)?,
            channel: r.get(1)?,
            attempts: r.get(2)?,
            created: r.get(3)?,
            rules: r.get(4)?,
            hits: r.get(5)?,
            item_id: r.get(6)?,
            story_id: r.get(7)?,
            queued: r.get(8)?,
        })
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        configure(&conn)?;
        // Only an empty database takes the setting; one made by an older
        // veille is converted after its migration (`reclaiming`).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        write_ahead_log(&conn)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        refuse_newer(&conn, path)?;
        migrate(&mut conn)
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
        reclaiming(&conn, path);
        Ok(Store::from_connection(conn))
    }

    fn from_connection(conn: Connection) -> Store {
        Store {
            conn,
            owner: new_id(),
            wire: None,
        }
    }

    /// Opens an existing database without creating or migrating it, for
    /// commands that only read (`status`). Says where it looked if absent.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            bail!(
                "no database at {} (it is created by `veille run`; under systemd, set STATE_DIRECTORY=/var/lib/veille)",
                path.display()
            );
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        configure(&conn)?;
        refuse_newer(&conn, path)?;
        let version = user_version(&conn)?;
        if version < SCHEMA_VERSION {
            bail!(
                "the database {} is from an older veille; run `veille run` once to migrate it",
                path.display()
            );
        }
        Ok(Store::from_connection(conn))
    }

    /// Makes the feeds table match the config: new names are added; a
    /// changed URL keeps the items and resets validators, redirect, 410 state
    /// and backoff (SPEC §4). Returns every configured feed's state.
    pub fn sync_feeds(&mut self, feeds: &[(String, String)]) -> Result<Vec<FeedState>> {
        let known: HashMap<String, String> = self
            .conn
            .prepare_cached("SELECT name, url FROM feeds")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // Only differences are written: with thousands of feeds, rewriting
        // every row each cycle cost more than polling them unchanged.
        let changes: Vec<&(String, String)> = feeds
            .iter()
            .filter(|(name, url)| known.get(name) != Some(url))
            .collect();
        if !changes.is_empty() {
            let tx = self.conn.transaction()?;
            for (name, url) in changes {
                tx.prepare_cached(
                    "INSERT INTO feeds (name, url) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![name, url])?;
                tx.prepare_cached(
                    "UPDATE feeds SET url = ?2, redirect_url = NULL, etag = NULL, last_modified = NULL,
                         gone = 0, retry_after_until = NULL, consecutive_failures = 0, next_poll = NULL
                     WHERE name = ?1 AND url <> ?2",
                )?
                .execute(params![name, url])?;
            }
            tx.commit()?;
        }
        let wanted: std::collections::HashSet<&str> =
            feeds.iter().map(|(name, _)| name.as_str()).collect();
        let mut all = self.feed_states()?;
        all.retain(|f| wanted.contains(f.name.as_str()));
        Ok(all)
    }

    pub fn feed_states(&self) -> Result<Vec<FeedState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, url, redirect_url, etag, last_modified, gone, retry_after_until,
                    next_poll, consecutive_failures, first_success FROM feeds ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FeedState {
                id: r.get(0)?,
                name: r.get(1)?,
                url: r.get(2)?,
                redirect_url: r.get(3)?,
                etag: r.get(4)?,
                last_modified: r.get(5)?,
                gone: r.get(6)?,
                retry_after_until: r.get(7)?,
                next_poll: r.get(8)?,
                consecutive_failures: r.get(9)?,
                first_success: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What is stored of the feed's items among `ids`, by item key, to
    /// tell new and changed items from the ones already recorded; an item
    /// whose key or link remains of a pruned one is `KnownItem::Pruned`.
    pub fn known_items(
        &self,
        feed_id: i64,
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
        let mut tx = self.conn.transaction()?;
        if polls.len() > 1 {
            let sp = tx.savepoint()?;
            if let Ok(summaries) = write_polls(&sp, &mut self.wire, polls) {
                sp.commit()?;
                tx.commit()?;
                return Ok(summaries.into_iter().map(Ok).collect());
            }
            if let Some(index) = self.wire.as_mut() {
                index.forget_pending();
            }
        }
        let mut results = Vec::with_capacity(polls.len());
        for poll in polls {
            let sp = tx.savepoint()?;
            let result = write_polls(&sp, &mut self.wire, std::slice::from_ref(poll));
            if result.is_ok() {
                sp.commit()?;
            } else if let Some(index) = self.wire.as_mut() {
                index.forget_pending();
            }
            results.push(result.map(|mut s| s.remove(0)));
        }
        tx.commit()?;
        Ok(results)
    }

    /// Writes the write-ahead log back into the database file and empties
    /// it (SQLite otherwise does so in steps, during later commits).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// An outbox row with the item and feeds a message about it needs.
    fn due_alert(&self, r: &AlertRow) -> Result<DueAlert> {
        Ok(DueAlert {
            rules: stored::decode(stored::RULES, &r.rules)?,
            hits: stored::decode(stored::HITS, &r.hits)?,
            item: self.item(r.item_id)?,
            outlets: self.story_outlets(r.story_id)?,
            id: r.id.clone(),
            channel: r.channel.clone(),
            attempts: r.attempts,
            created: r.created,
            queued: r.queued,
        })
    }

    fn item(&self, id: i64) -> Result<Item> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT title, link, summary, content, categories, published, updated FROM items WHERE id = ?1",
        )?;
        let item = stmt.query_row([id], |r| {
            let categories: String = r.get(4)?;
            Ok(Item {
                source_id: None,
                title: r.get(0)?,
                link: r.get(1)?,
                summary: r.get(2)?,
                content: r.get(3)?,
                categories: serde_json::from_str(&categories).unwrap_or_default(),
                published: r.get::<_, Option<i64>>(5)?.and_then(from_unix),
                updated: r.get::<_, Option<i64>>(6)?.and_then(from_unix),
            })
        });
        item.with_context(|| format!("its item {id} cannot be read"))
    }

    /// Each feed that carried the story, with the link of its first item
    /// of it (SQLite takes the bare column from the row of `MIN`).
    fn story_outlets(&self, story_id: i64) -> Result<Vec<Outlet>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.name, i.link, MIN(i.first_seen) FROM items i JOIN feeds f ON f.id = i.feed_id
             WHERE i.story_id = ?1 GROUP BY f.id ORDER BY MIN(i.first_seen), f.id",
        )?;
        let rows = stmt.query_map([story_id], |r| {
            Ok(Outlet {
                feed: r.get(0)?,
                link: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
    order.sort_by_key(|(poll, r, _)| stories::wire_date(&r.item, poll.now));
    let mut summaries = vec![RecordSummary::default(); polls.len()];
    let mut prints = stories::Prints::default();
    for (poll, record, p) in order {
        let summary = &mut summaries[p];
        let (item_id, story_id, is_new) = upsert_item(tx, wire, &mut prints, poll, record)?;
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
    stories::write_prints(tx, wire, &prints)?;
    for poll in polls {
        update_feed(tx, poll)?;
    }
    Ok(summaries)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Puts the database in WAL mode. Switching takes a lock that SQLite does
/// not wait for (no busy handler), so when another process is creating the
/// database at the same moment, this waits and tries again, up to the busy
/// timeout.
fn write_ahead_log(conn: &Connection) -> Result<()> {
    let mut waited = Duration::ZERO;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e) if is_busy(&e) && waited < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
                waited += Duration::from_millis(20);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// How long a statement waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Brings the schema up to date. Safe when several processes start at
/// once: each migration runs in a transaction that takes the write lock
/// first, and a process that finds the schema moved on while it waited (its
/// migration then fails: the tables exist) starts again from the version it
/// now reads. Errors are one line, without the migration's SQL.
fn migrate(conn: &mut Connection) -> Result<()> {
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    let mut result = Ok(());
    for _ in 0..3 {
        let before = user_version(conn)?;
        result = migrations().to_latest(conn);
        if result.is_ok() || user_version(conn)? == before {
            break;
        }
    }
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Deferred);
    result.map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => anyhow::Error::new(err),
        other => anyhow::Error::new(other),
    })
}

/// Makes the database give pruned pages back to the file system
/// (`Store::reclaim`): a database made before retention existed is
/// rewritten once with `auto_vacuum = INCREMENTAL`. When that fails (another
/// process reading, too little disk), freed pages are still reused for new
/// rows, so the file stops growing all the same; it is tried again at the
/// next start.
fn reclaiming(conn: &Connection, path: &Path) {
    let mode: rusqlite::Result<i64> = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0));
    if mode.is_ok_and(|m| m == 2) {
        return;
    }
    tracing::info!(database = %path.display(), "rewriting the database once so that pruning can shrink it");
    let converted = conn
        .pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .and_then(|()| conn.execute_batch("VACUUM"));
    if let Err(e) = converted {
        tracing::warn!(database = %path.display(), error = %e, "cannot rewrite the database; freed pages are reused but the file will not shrink");
    }
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

fn refuse_newer(conn: &Connection, path: &Path) -> Result<()> {
    let version = user_version(conn)?;
    if version > SCHEMA_VERSION {
        bail!(
            "the database {} was written by a newer veille (schema {version}; this veille knows up to {SCHEMA_VERSION}); upgrade veille",
            path.display()
        );
    }
    Ok(())
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
    tx: &Connection,
    wire: &mut Option<WireIndex>,
    prints: &mut stories::Prints<'a>,
    poll: &PollRecord,
    r: &'a ItemRecord,
) -> Result<(i64, i64, bool)> {
    let (feed_id, now) = (poll.feed_id, poll.now);
    let i = &r.item;
    let categories = serde_json::to_string(&i.categories)?;
    let published = i.published.map(|d| d.timestamp());
    let updated = i.updated.map(|d| d.timestamp());
    let quoted = !r.alerts.is_empty();
    let (summary, content) = if quoted {
        (i.summary.as_str(), i.content.as_str())
    } else {
        ("", "")
    };
    if r.is_new {
        let place = stories::place_new_item(tx, wire, prints, poll, r)?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO items (feed_id, item_key, story_id, title, link, summary, content, categories,
                                    published, updated, first_seen, changed_at, content_hash, joined)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)
                 ON CONFLICT (feed_id, item_key) DO NOTHING",
            )?
            .execute(params![
                feed_id,
                r.key,
                place.story_id,
                i.title,
                i.link,
                summary,
                content,
                categories,
                published,
                updated,
                now,
                r.content_hash,
                place.joined
            ])?;
        if inserted == 1 {
            let item_id = tx.last_insert_rowid();
            stories::referenced(wire, prints, &place, item_id);
            return Ok((item_id, place.story_id, true));
        }
    }
    let (item_id, story_id): (i64, i64) = tx
        .prepare_cached("SELECT id, story_id FROM items WHERE feed_id = ?1 AND item_key = ?2")?
        .query_row(params![feed_id, r.key], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
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
        summary,
        content,
        categories,
        published,
        updated,
        r.content_hash,
        now,
        quoted
    ])?;
    Ok((item_id, story_id, false))
}

/// Creates the (story, channel) alert, or, when it exists and is still
/// pending, adds the new rules and hits to it so that the one message names
/// them all. Returns whether an alert was created.
fn enqueue_alert(
    tx: &Connection,
    story_id: i64,
    item_id: i64,
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
        for r in &a.rules {
            if !rules.contains(r) {
                rules.push(r.clone());
                // These hits point into another item's text than the one the
                // message shows: keep the terms, drop the spans.
                let terms = a.hits.iter().filter(|h| &h.rule == r).map(|h| StoredHit {
                    start: 0,
                    end: 0,
                    ..h.clone()
                });
                hits.extend(terms);
            }
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
        FetchRecord::Failed { status, error, gone, retry_after_until } => tx.prepare_cached(
            "UPDATE feeds SET last_status = ?2, last_fetch = ?3, last_error = ?4,
                 consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, ?3),
                 gone = gone OR ?5, retry_after_until = ?6, next_poll = ?7 WHERE id = ?1",
            )?
            .execute(params![p.feed_id, status, p.now, error, gone, retry_after_until, p.next_poll])?,
    };
    Ok(())
}

/// A random 128-bit id, hex, for alerts and digests: unique across
/// databases, stable once stored.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    crate::domain::identity::hex(&bytes)
}

fn from_unix(secs: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::wire::Fingerprint;

    /// One poll through the production path, `record_polls`.
    pub(super) trait RecordOne {
        fn record_poll(&mut self, poll: &PollRecord) -> Result<RecordSummary>;
    }

    impl RecordOne for Store {
        fn record_poll(&mut self, poll: &PollRecord) -> Result<RecordSummary> {
            self.record_polls(std::slice::from_ref(poll))?.remove(0)
        }
    }

    /// Identities of link-less items with these keys.
    pub(super) fn ids(keys: &[&str]) -> Vec<Identity> {
        keys.iter()
            .map(|k| Identity {
                item_key: (*k).into(),
                story_link: None,
            })
            .collect()
    }

    /// A store with one feed, `A`, and that feed's id.
    pub(super) fn store_with_one_feed(dir: &tempfile::TempDir) -> (Store, i64) {
        let mut store = Store::open(&dir.path().join("v.db")).unwrap();
        let feeds = store
            .sync_feeds(&[("A".into(), "https://a/".into())])
            .unwrap();
        (store, feeds[0].id)
    }

    /// A store with feeds `A` and `B`, and their ids.
    pub(super) fn store_with_two_feeds(dir: &tempfile::TempDir) -> (Store, i64, i64) {
        let mut store = Store::open(&dir.path().join("v.db")).unwrap();
        let feeds = store
            .sync_feeds(&[
                ("A".into(), "https://a/".into()),
                ("B".into(), "https://b/".into()),
            ])
            .unwrap();
        let (a, b) = (feeds[0].id, feeds[1].id);
        (store, a, b)
    }

    /// A 304 poll at time 10 that records `items` (as a changed document
    /// would; the store does not care which).
    pub(super) fn quiet_poll(feed_id: i64, items: Vec<ItemRecord>) -> PollRecord {
        PollRecord {
            feed_id,
            now: 10,
            fetch: FetchRecord::NotModified,
            redirect_url: None,
            next_poll: 100,
            wire_window: 0,
            wire_keep: 0,
            items,
        }
    }

    const DISPATCH: &str = "La Chine imposera à partir du 10 avril des droits de douane supplémentaires de 34 % sur les produits importés des États-Unis, a annoncé vendredi le ministère chinois des Finances. Pékin a également ajouté onze entreprises américaines à sa liste des entités non fiables.";

    /// A new item with a fingerprint, dated `at`.
    fn wire_record(key: &str, text: &str, at: i64) -> ItemRecord {
        let item = Item {
            title: format!("Titre {key}"),
            link: Some(format!("https://{key}.fr/1")),
            summary: text.into(),
            published: from_unix(at),
            ..Item::default()
        };
        ItemRecord {
            key: key.into(),
            is_new: true,
            story_link: item.link.clone(),
            content_hash: key.into(),
            wire: Some(Fingerprint::of(&item)),
            item,
            alerts: vec![],
        }
    }

    fn wire_poll(feed_id: i64, now: i64, items: Vec<ItemRecord>) -> PollRecord {
        PollRecord {
            now,
            wire_window: 3600,
            wire_keep: 3600,
            ..quiet_poll(feed_id, items)
        }
    }

    #[test]
    fn a_copy_joins_the_story_and_old_fingerprints_go_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, b) = store_with_two_feeds(&dir);
        const T: i64 = 1_800_000_000;
        store
            .record_poll(&wire_poll(a, T, vec![wire_record("a", DISPATCH, T - 60)]))
            .unwrap();
        let other = "Un séisme de magnitude 6,1 a frappé mardi le large du Japon sans déclencher d'alerte au tsunami, a indiqué l'agence météorologique japonaise. La secousse a été ressentie jusqu'à Tokyo.";
        let copy = format!("PÉKIN (AFP) - {DISPATCH}");
        store
            .record_poll(&wire_poll(
                b,
                T + 60,
                vec![wire_record("b", &copy, T), wire_record("c", other, T)],
            ))
            .unwrap();
        let story = |key: &str| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT story_id FROM items WHERE item_key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(story("b"), story("a"), "the copy joined");
        assert_ne!(story("c"), story("a"));
        let prints = |s: &Store| -> i64 {
            s.conn
                .query_row("SELECT COUNT(*) FROM wire_prints", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(prints(&store), 2, "the openers a and c");
        drop(store);

        // Hours later, a fresh process: the first read of the index drops
        // what the window no longer covers.
        let mut store = Store::open(&dir.path().join("v.db")).unwrap();
        let later = T + 5 * 3600;
        store
            .record_poll(&wire_poll(a, later, vec![wire_record("d", other, later)]))
            .unwrap();
        assert_eq!(prints(&store), 1, "only d's");
    }

    #[test]
    fn alerts_of_other_channels_do_not_crowd_out_the_due_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let mut items: Vec<ItemRecord> = (0..30)
            .map(|i| record(&format!("e{i}"), &format!("https://x/e{i}"), "email", "r"))
            .collect();
        items.push(record("m", "https://x/m", "mail", "r"));
        store.record_poll(&quiet_poll(feed, items)).unwrap();
        let due = store
            .claim_alerts(10, 70, &["mail"], false, 5)
            .unwrap()
            .alerts;
        assert_eq!(
            due.iter().map(|a| a.channel.as_str()).collect::<Vec<_>>(),
            ["mail"]
        );
    }

    #[test]
    fn a_failing_poll_in_a_group_leaves_the_others_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let poll = |feed_id, key: &str| {
            quiet_poll(
                feed_id,
                vec![record(key, &format!("https://x/{key}"), "moi", "r")],
            )
        };
        // Feed 999 does not exist: its items break a foreign key.
        let results = store
            .record_polls(&[poll(feed, "a1"), poll(999, "z"), poll(feed, "a2")])
            .unwrap();
        assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
        let known = store.known_items(feed, &ids(&["a1", "a2"])).unwrap();
        assert_eq!(known.len(), 2);
        let stories: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM stories", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            stories, 2,
            "the failed poll's story was rolled back with it"
        );
    }

    #[test]
    fn an_alert_is_frozen_into_one_digest_only() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        let items = vec![
            record("a1", "https://x/1", "matin", "r"),
            record("a2", "https://x/2", "matin", "r"),
        ];
        store.record_poll(&quiet_poll(feed, items)).unwrap();
        let members: Vec<String> = store
            .digest_members("matin", 10)
            .unwrap()
            .alerts
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(members.len(), 2);
        assert!(
            store
                .create_digest("matin", "d1", &members, &[], "{}", 20)
                .unwrap()
        );
        // A second digest made from the same read (another process racing)
        // is refused whole.
        assert!(
            !store
                .create_digest("matin", "d2", &members, &[], "{}", 21)
                .unwrap()
        );
        let digests: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM digests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(digests, 1);
        assert!(
            store
                .digest_members("matin", 100)
                .unwrap()
                .alerts
                .is_empty()
        );
        // Sent: the digest's alerts are sent with it.
        store.mark_sent(Target::Digest, "d1", 30).unwrap();
        let sent: i64 = store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM alerts WHERE state = 'sent'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(sent, 2);
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer veille (schema 99"), "{err}");
    }

    pub(super) fn record(key: &str, link: &str, channel: &str, rule: &str) -> ItemRecord {
        ItemRecord {
            key: key.into(),
            is_new: true,
            wire: None,
            story_link: Some(link.into()),
            content_hash: format!("h-{key}"),
            item: Item {
                title: key.into(),
                link: Some(link.into()),
                ..Item::default()
            },
            alerts: vec![AlertDraft {
                channel: channel.into(),
                rules: vec![rule.into()],
                hits: vec![StoredHit {
                    rule: rule.into(),
                    field: "title".into(),
                    term: "t".into(),
                    start: 0,
                    end: 2,
                }],
                due: 0,
            }],
        }
    }

    #[test]
    fn one_alert_per_story_and_channel_naming_every_rule_and_feed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, a, b) = store_with_two_feeds(&dir);
        let poll = |feed_id, items| PollRecord {
            feed_id,
            now: 10,
            fetch: FetchRecord::Fetched {
                status: 200,
                etag: None,
                last_modified: None,
                items: 1,
                unread_items: 0,
            },
            redirect_url: None,
            next_poll: 100,
            wire_window: 0,
            wire_keep: 0,
            items,
        };
        let s = store
            .record_poll(&poll(a, vec![record("a1", "https://x/1", "moi", "r1")]))
            .unwrap();
        assert_eq!(
            s,
            RecordSummary {
                new_items: 1,
                changed_items: 0,
                alerts: 1,
                alerted: vec!["moi".into()],
            }
        );
        let s = store
            .record_poll(&poll(b, vec![record("b1", "https://x/1", "moi", "r2")]))
            .unwrap();
        assert_eq!(
            s,
            RecordSummary {
                new_items: 1,
                changed_items: 0,
                alerts: 0,
                alerted: Vec::new(),
            }
        );
        let due = store
            .claim_alerts(10, 70, &["moi"], false, 10)
            .unwrap()
            .alerts;
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].rules, ["r1", "r2"]);
        let spans: Vec<(&str, usize, usize)> = due[0]
            .hits
            .iter()
            .map(|h| (h.rule.as_str(), h.start, h.end))
            .collect();
        assert_eq!(
            spans,
            [("r1", 0, 2), ("r2", 0, 0)],
            "merged hits keep terms, not spans"
        );
        let outlets: Vec<(&str, Option<&str>)> = due[0]
            .outlets
            .iter()
            .map(|o| (o.feed.as_str(), o.link.as_deref()))
            .collect();
        assert_eq!(
            outlets,
            [("A", Some("https://x/1")), ("B", Some("https://x/1"))]
        );
        store.mark_sent(Target::Alert, &due[0].id, 11).unwrap();
        store
            .record_poll(&poll(a, vec![record("a1", "https://x/1", "moi", "r3")]))
            .unwrap();
        assert!(
            store
                .claim_alerts(1000, 1060, &["moi"], false, 10)
                .unwrap()
                .alerts
                .is_empty()
        );
    }

    #[test]
    fn a_changed_url_resets_fetch_state_and_keeps_items() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, feed) = store_with_one_feed(&dir);
        store
            .record_poll(&PollRecord {
                feed_id: feed,
                now: 10,
                fetch: FetchRecord::Failed {
                    status: Some(410),
                    error: "gone".into(),
                    gone: true,
                    retry_after_until: None,
                },
                redirect_url: Some("https://a2/".into()),
                next_poll: 100,
                wire_window: 0,
                wire_keep: 0,
                items: vec![record("a1", "https://x/1", "moi", "r1")],
            })
            .unwrap();
        let same = store
            .sync_feeds(&[("A".into(), "https://a/".into())])
            .unwrap();
        assert!(same[0].gone);
        assert_eq!(same[0].redirect_url.as_deref(), Some("https://a2/"));
        let moved = store
            .sync_feeds(&[("A".into(), "https://new/".into())])
            .unwrap();
        assert!(!moved[0].gone);
        assert_eq!(
            (
                moved[0].redirect_url.as_deref(),
                moved[0].consecutive_failures,
                moved[0].next_poll
            ),
            (None, 0, None)
        );
        assert_eq!(
            store.known_items(moved[0].id, &ids(&["a1"])).unwrap().len(),
            1
        );
    }
}

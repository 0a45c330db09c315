//! The delivery side of the outbox: what is due, digests frozen at their
//! tick, and the outcome of each attempt.
//!
//! Several processes may deliver from one database. Each takes what it
//! sends with a lease (`claim_alerts`, `claim_digests`: owner and expiry,
//! taken in one write transaction), renews it just before each send
//! (`renew`: false when another process has taken it meanwhile) and drops
//! it with the outcome. A process killed mid-send leaves its leases to
//! expire; then another takes them. This is the one place that knows.

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{
    ChannelFault, Claimed, Damaged, DueAlert, DueDigest, DueHealth, Requeued, Sqlite, Target,
    from_unix, stored,
};
use crate::domain::model::{Item, Outlet};
use crate::domain::render::FailingFeed;
use crate::domain::schedule::next_channel_attempt;

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

/// How the error of a row that cannot be read back begins.
pub(super) const DAMAGED: &str = "cannot be read back: ";

/// The columns health queries select, in `HealthRow`'s order.
const HEALTH_COLUMNS: &str = "id, channel, attempts, queued, notice";

struct HealthRow {
    id: String,
    channel: String,
    attempts: u32,
    queued: i64,
    notice: String,
}

impl HealthRow {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<HealthRow> {
        Ok(HealthRow {
            id: r.get(0)?,
            channel: r.get(1)?,
            attempts: r.get(2)?,
            queued: r.get(3)?,
            notice: r.get(4)?,
        })
    }
}

/// What an outcome does to a row's lease.
const UNLEASED: &str = "lease_owner = NULL, lease_until = NULL";

/// Gives `owner` the rows `ids` of `target` until `until`, inside the
/// transaction that chose them.
fn lease<'a>(
    tx: &rusqlite::Transaction,
    target: Target,
    ids: impl Iterator<Item = &'a str>,
    owner: &str,
    until: i64,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "UPDATE {} SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
        target.table()
    ))?;
    for id in ids {
        stmt.execute(params![id, owner, until])?;
    }
    Ok(())
}

impl Target {
    fn table(self) -> &'static str {
        match self {
            Target::Alert => "alerts",
            Target::Digest => "digests",
            Target::Health => "health_alerts",
        }
    }
}

impl Sqlite {
    /// The database answers a query (the watchdog's health check).
    pub fn health(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// The alerts a digest of `channel` made now would hold: pending, not in
    /// a digest yet, created up to `cutoff`. Damaged ones are marked failed
    /// and left out.
    pub fn digest_members(&mut self, channel: &str, cutoff: i64) -> Result<Claimed> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a
             WHERE a.channel = ?1 AND a.state = 'pending' AND a.digest_id IS NULL AND a.created <= ?2
             ORDER BY a.created"
        ))?;
        let rows = stmt
            .query_map(params![channel, cutoff], AlertRow::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        let mut claimed = self.read_back(&rows)?;
        let rows = self
            .conn
            .prepare_cached(&format!(
                "SELECT {HEALTH_COLUMNS} FROM health_alerts
                 WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL AND created <= ?2
                 ORDER BY created, feed_id, rowid"
            ))?
            .query_map(params![channel, cutoff], HealthRow::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        self.read_back_health(rows, &mut claimed)?;
        Ok(claimed)
    }

    /// Whether any feed-health alert waits to be sent.
    pub fn health_pending(&self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM health_alerts WHERE state = 'pending')",
            [],
            |r| r.get(0),
        )?)
    }

    /// Takes, until `until`, the feed-health alerts of `channels` whose
    /// time has come and that no other process holds.
    pub fn claim_health(&mut self, now: i64, until: i64, channels: &[&str]) -> Result<Claimed> {
        let channels = serde_json::to_string(channels)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = tx
            .prepare_cached(&format!(
                "SELECT {HEALTH_COLUMNS} FROM health_alerts
                 WHERE state = 'pending' AND due <= ?1 AND digest_id IS NULL
                   AND channel IN (SELECT value FROM json_each(?2))
                   AND (lease_until IS NULL OR lease_until <= ?1)
                 ORDER BY due, created, feed_id, rowid"
            ))?
            .query_map(params![now, channels], HealthRow::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        lease(
            &tx,
            Target::Health,
            rows.iter().map(|r| r.id.as_str()),
            &self.owner,
            until,
        )?;
        tx.commit()?;
        let mut claimed = Claimed::default();
        self.read_back_health(rows, &mut claimed)?;
        Ok(claimed)
    }

    /// The rows as health alerts; those that cannot be read are marked failed.
    fn read_back_health(&mut self, rows: Vec<HealthRow>, claimed: &mut Claimed) -> Result<()> {
        for r in rows {
            match stored::decode(stored::HEALTH_NOTICE, &r.notice) {
                Ok(notice) => claimed.health.push(DueHealth {
                    id: r.id,
                    channel: r.channel,
                    attempts: r.attempts,
                    queued: r.queued,
                    notice,
                }),
                Err(e) => {
                    let reason = format!("{e:#}");
                    self.mark_damaged(Target::Health, &r.id, &reason)?;
                    claimed.damaged.push(Damaged {
                        id: r.id,
                        channel: r.channel,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// Takes, until `until`, up to `limit` pending alerts of `channels`
    /// whose time has come and that no other process holds. With
    /// `ignore_hold`, alerts never tried yet are due whatever their hold.
    pub fn claim_alerts(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        ignore_hold: bool,
        limit: usize,
    ) -> Result<Claimed> {
        // The channel filter is in the query: alerts waiting for a channel
        // that is not delivered to must not fill the batch.
        let channels = serde_json::to_string(channels)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = tx
            .prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS}
                 FROM alerts a WHERE a.state = 'pending' AND (a.due <= ?1 OR (?3 AND a.attempts = 0))
                   AND a.digest_id IS NULL
                   AND a.channel IN (SELECT value FROM json_each(?4))
                   AND (a.lease_until IS NULL OR a.lease_until <= ?1)
                 ORDER BY a.due, a.created LIMIT ?2"
            ))?
            .query_map(
                params![now, limit as i64, ignore_hold, channels],
                AlertRow::read,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        lease(
            &tx,
            Target::Alert,
            rows.iter().map(|r| r.id.as_str()),
            &self.owner,
            until,
        )?;
        tx.commit()?;
        self.read_back(&rows)
    }

    /// The rows as alerts; those that cannot be read are marked failed.
    fn read_back(&mut self, rows: &[AlertRow]) -> Result<Claimed> {
        let mut claimed = Claimed::default();
        for r in rows {
            match self.due_alert(r) {
                Ok(alert) => claimed.alerts.push(alert),
                Err(e) => {
                    let reason = format!("{e:#}");
                    self.mark_damaged(Target::Alert, &r.id, &reason)?;
                    claimed.damaged.push(Damaged {
                        id: r.id.clone(),
                        channel: r.channel.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(claimed)
    }

    /// Marks a row that cannot be read back failed, with the reason
    /// (`veille status` shows it; `veille retry` queues it again, for
    /// after a fix).
    pub fn mark_damaged(&mut self, target: Target, id: &str, reason: &str) -> Result<()> {
        let error = format!("{DAMAGED}{reason}");
        self.mark_attempt_failed(target, id, &error, None)
    }

    /// Extends this store's lease on `id` to `until`, just before a send.
    /// `false`: another process holds it now (it expired meanwhile), or it
    /// is no longer pending; leave it to them.
    pub fn renew(&self, target: Target, id: &str, until: i64) -> Result<bool> {
        let n = self.conn.execute(
            &format!(
                "UPDATE {} SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                target.table()
            ),
            params![id, self.owner, until],
        )?;
        Ok(n == 1)
    }

    /// Gives back leases taken but not used (a channel paused mid-batch).
    pub fn release(&self, target: Target, ids: &[String]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "UPDATE {} SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2",
            target.table()
        ))?;
        for id in ids {
            stmt.execute(params![id, self.owner])?;
        }
        Ok(())
    }

    /// Freezes `members` into a new digest `id` with `body`, in one
    /// transaction. If another process (`veille digest` beside the daemon)
    /// froze one of them meanwhile, nothing is written and `false` says so:
    /// the body would name a story that another digest carries.
    pub fn create_digest(
        &mut self,
        channel: &str,
        id: &str,
        members: &[String],
        health: &[String],
        body: &str,
        now: i64,
    ) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO digests (id, channel, tick, body, stories, queued, due) VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?3)",
            params![id, channel, now, body, members.len() as i64],
        )?;
        let mut taken = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE alerts SET digest_id = ?1 WHERE id = ?2 AND digest_id IS NULL AND state = 'pending'",
            )?;
            for m in members {
                taken += stmt.execute(params![id, m])?;
            }
            let mut stmt = tx.prepare_cached(
                "UPDATE health_alerts SET digest_id = ?1 WHERE id = ?2 AND digest_id IS NULL AND state = 'pending'",
            )?;
            for m in health {
                taken += stmt.execute(params![id, m])?;
            }
        }
        if taken != members.len() + health.len() {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Takes, until `until`, the frozen digests of `channels` whose next
    /// attempt has come (all pending ones with `any_time`) and that no
    /// other process holds.
    pub fn claim_digests(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        any_time: bool,
    ) -> Result<Vec<DueDigest>> {
        let channels = serde_json::to_string(channels)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due = tx
            .prepare_cached(
                "SELECT id, channel, attempts, queued, stories, body FROM digests
                 WHERE state = 'pending' AND (due <= ?1 OR ?3)
                   AND channel IN (SELECT value FROM json_each(?2))
                   AND (lease_until IS NULL OR lease_until <= ?1)
                 ORDER BY due, tick",
            )?
            .query_map(params![now, channels, any_time], |r| {
                Ok(DueDigest {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    attempts: r.get(2)?,
                    queued: r.get(3)?,
                    stories: r.get(4)?,
                    body: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        lease(
            &tx,
            Target::Digest,
            due.iter().map(|d| d.id.as_str()),
            &self.owner,
            until,
        )?;
        tx.commit()?;
        Ok(due)
    }

    /// The last tick a digest channel handled; `None` the first time.
    pub fn last_tick(&self, channel: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_tick FROM digest_ticks WHERE channel = ?1",
                [channel],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_last_tick(&self, channel: &str, tick: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO digest_ticks (channel, last_tick) VALUES (?1, ?2)
             ON CONFLICT (channel) DO UPDATE SET last_tick = excluded.last_tick",
            params![channel, tick],
        )?;
        Ok(())
    }

    /// Delivered: never sent again. A digest's alerts are delivered with it.
    /// Returns when each item delivered was first seen (none for a health
    /// alert, or when it was no longer pending).
    pub fn mark_sent(&mut self, target: Target, id: &str, now: i64) -> Result<Vec<i64>> {
        let tx = self.conn.transaction()?;
        let marked = tx.execute(
            &format!(
                "UPDATE {} SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND state = 'pending'",
                target.table()
            ),
            params![id, now],
        )?;
        if marked > 0 {
            // The channel sends again: its pause, if any, is over.
            tx.execute(
                &format!(
                    "DELETE FROM channel_faults WHERE channel = (SELECT channel FROM {} WHERE id = ?1)",
                    target.table()
                ),
                [id],
            )?;
        }
        let newest = "(SELECT MAX(i.id) FROM items i WHERE i.story_id = alerts.story_id)";
        match target {
            Target::Alert => {
                tx.execute(
                    &format!("UPDATE alerts SET last_item = {newest} WHERE id = ?1"),
                    [id],
                )?;
            }
            Target::Digest => {
                tx.execute(
                    &format!(
                        "UPDATE alerts SET state = 'sent', sent_at = ?2, last_error = NULL, last_item = {newest}
                         WHERE digest_id = ?1"
                    ),
                    params![id, now],
                )?;
                tx.execute(
                    "UPDATE health_alerts SET state = 'sent', sent_at = ?2, last_error = NULL WHERE digest_id = ?1",
                    params![id, now],
                )?;
            }
            Target::Health => {}
        }
        let delivered = match target {
            _ if marked == 0 => Vec::new(),
            Target::Alert => first_seen(&tx, "a.id = ?1", id)?,
            Target::Digest => first_seen(&tx, "a.digest_id = ?1", id)?,
            Target::Health => Vec::new(),
        };
        tx.commit()?;
        Ok(delivered)
    }

    /// An attempt failed: try again at `retry_at`, or, with `None`, give up
    /// and keep it as failed (`veille retry` queues it again).
    pub fn mark_attempt_failed(
        &mut self,
        target: Target,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let table = target.table();
        match retry_at {
            Some(at) => tx.execute(
                &format!("UPDATE {table} SET attempts = attempts + 1, due = ?2, last_error = ?3, {UNLEASED} WHERE id = ?1 AND state = 'pending'"),
                params![id, at, error],
            )?,
            None => tx.execute(
                &format!("UPDATE {table} SET attempts = attempts + 1, state = 'failed', last_error = ?2, {UNLEASED} WHERE id = ?1 AND state = 'pending'"),
                params![id, error],
            )?,
        };
        if target == Target::Digest {
            let state = if retry_at.is_some() {
                "pending"
            } else {
                "failed"
            };
            for table in ["alerts", "health_alerts"] {
                tx.execute(
                    &format!("UPDATE {table} SET state = ?2, last_error = ?3 WHERE digest_id = ?1"),
                    params![id, state, error],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Puts the failed alerts and digests of `channel` back in the queue,
    /// due now, for another round of at least 24 h of tries.
    pub fn requeue_failed(&mut self, channel: &str, now: i64) -> Result<Requeued> {
        let tx = self.conn.transaction()?;
        let digests = tx.execute(
            "UPDATE digests SET state = 'pending', attempts = 0, queued = ?2, due = ?2
             WHERE channel = ?1 AND state = 'failed'",
            params![channel, now],
        )?;
        let mut alerts = 0;
        for table in ["alerts", "health_alerts"] {
            tx.execute(
                &format!(
                    "UPDATE {table} SET state = 'pending' WHERE channel = ?1 AND state = 'failed'
                       AND digest_id IN (SELECT id FROM digests WHERE channel = ?1 AND state = 'pending')"
                ),
                params![channel],
            )?;
            alerts += tx.execute(
                &format!(
                    "UPDATE {table} SET state = 'pending', attempts = 0, queued = ?2, due = ?2
                     WHERE channel = ?1 AND state = 'failed' AND digest_id IS NULL"
                ),
                params![channel, now],
            )?;
        }
        let mut hastened = 0;
        for table in ["alerts", "health_alerts", "digests"] {
            hastened += tx.execute(
                &format!(
                    "UPDATE {table} SET due = ?2 WHERE channel = ?1 AND state = 'pending' AND due > ?2"
                ),
                params![channel, now],
            )?;
        }
        let resumed = tx.execute("DELETE FROM channel_faults WHERE channel = ?1", [channel])? > 0;
        tx.commit()?;
        Ok(Requeued {
            alerts,
            digests,
            hastened,
            resumed,
        })
    }

    /// Pauses `channel` after a fault of its own, or keeps it paused one
    /// backoff step longer (`domain::schedule::next_channel_attempt`); the
    /// first fault's time and error are kept until it sends again, the
    /// error updated.
    pub fn pause_channel(
        &mut self,
        channel: &str,
        error: &str,
        now: i64,
        jitter: f64,
    ) -> Result<ChannelFault> {
        let tx = self.conn.transaction()?;
        let (since, attempts): (i64, u32) = tx
            .query_row(
                "SELECT since, attempts FROM channel_faults WHERE channel = ?1",
                [channel],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((now, 0));
        let fault = ChannelFault {
            error: error.to_owned(),
            since,
            attempts: attempts + 1,
            retry_at: next_channel_attempt(now, attempts + 1, jitter),
        };
        tx.execute(
            "INSERT INTO channel_faults (channel, error, since, attempts, retry_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (channel) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
                 retry_at = excluded.retry_at",
            params![channel, fault.error, fault.since, fault.attempts, fault.retry_at],
        )?;
        tx.commit()?;
        Ok(fault)
    }

    /// The channels paused at `now` (their next attempt still ahead).
    pub fn paused_channels(&self, now: i64) -> Result<Vec<(String, ChannelFault)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT channel, error, since, attempts, retry_at FROM channel_faults
             WHERE retry_at > ?1 ORDER BY channel",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok((
                r.get(0)?,
                ChannelFault {
                    error: r.get(1)?,
                    since: r.get(2)?,
                    attempts: r.get(3)?,
                    retry_at: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Feeds among `names` that are gone or have failed since before
    /// `failing_before`, for the end of a digest.
    pub fn failing_feeds(&self, names: &[&str], failing_before: i64) -> Result<Vec<FailingFeed>> {
        let names = serde_json::to_string(names)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, failing_since, gone, last_error FROM feeds
             WHERE name IN (SELECT value FROM json_each(?1))
               AND (gone OR failing_since <= ?2)
             ORDER BY name",
        )?;
        let rows = stmt.query_map(params![names, failing_before], |r| {
            Ok(FailingFeed {
                name: r.get(0)?,
                since: r
                    .get::<_, Option<i64>>(1)?
                    .and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
                gone: r.get(2)?,
                error: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// When the item of each alert `filter` selects was first seen.
fn first_seen(tx: &rusqlite::Transaction, filter: &str, id: &str) -> Result<Vec<i64>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT i.first_seen FROM alerts a JOIN items i ON i.id = a.item_id WHERE {filter}"
    ))?;
    Ok(stmt
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

impl Sqlite {
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

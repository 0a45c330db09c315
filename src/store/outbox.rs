//! The delivery side of the outbox: what is due, digests frozen at their
//! tick, and the outcome of each attempt.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::{ALERT_COLUMNS, AlertRow, DueAlert, Store};
use crate::domain::render::FailingFeed;

/// What an attempt was about: one alert, or one digest and its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Alert,
    Digest,
}

impl Target {
    fn table(self) -> &'static str {
        match self {
            Target::Alert => "alerts",
            Target::Digest => "digests",
        }
    }
}

/// A frozen digest waiting to be (re)sent.
#[derive(Debug, Clone)]
pub struct DueDigest {
    pub id: String,
    pub channel: String,
    pub attempts: u32,
    pub queued: i64,
    pub stories: i64,
    /// The message, JSON, exactly as frozen.
    pub body: String,
}

/// What `veille retry` queued again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requeued {
    pub alerts: usize,
    pub digests: usize,
}

impl Store {
    /// The database answers a query (the watchdog's health check).
    pub fn health(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// The alerts a digest of `channel` made now would hold: pending, not in
    /// a digest yet, created up to `cutoff`.
    pub fn digest_members(&self, channel: &str, cutoff: i64) -> Result<Vec<DueAlert>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a
             WHERE a.channel = ?1 AND a.state = 'pending' AND a.digest_id IS NULL AND a.created <= ?2
             ORDER BY a.created"
        ))?;
        let rows = stmt
            .query_map(params![channel, cutoff], AlertRow::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        rows.into_iter().map(|r| self.due_alert(r)).collect()
    }

    /// Freezes `members` into a new digest `id` with `body`, in one
    /// transaction. If another process (`veille digest` beside the daemon)
    /// froze one of them meanwhile, nothing is written and an error says so:
    /// the body would name a story that another digest carries.
    pub fn create_digest(
        &mut self,
        channel: &str,
        id: &str,
        members: &[String],
        body: &str,
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
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
        }
        if taken != members.len() {
            anyhow::bail!(
                "another digest of channel {channel} was made at the same time; this one is dropped and its alerts stay queued"
            );
        }
        tx.commit()?;
        Ok(())
    }

    /// Frozen digests of `channels` whose next attempt has come (all of
    /// them with `any_time`).
    pub fn due_digests(
        &self,
        now: i64,
        channels: &[&str],
        any_time: bool,
    ) -> Result<Vec<DueDigest>> {
        let channels = serde_json::to_string(channels)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, channel, attempts, queued, stories, body FROM digests
             WHERE state = 'pending' AND (due <= ?1 OR ?3)
               AND channel IN (SELECT value FROM json_each(?2))
             ORDER BY due, tick",
        )?;
        let rows = stmt.query_map(params![now, channels, any_time], |r| {
            Ok(DueDigest {
                id: r.get(0)?,
                channel: r.get(1)?,
                attempts: r.get(2)?,
                queued: r.get(3)?,
                stories: r.get(4)?,
                body: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
    pub fn mark_sent(&mut self, target: Target, id: &str, now: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            &format!(
                "UPDATE {} SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL
                 WHERE id = ?1 AND state = 'pending'",
                target.table()
            ),
            params![id, now],
        )?;
        let newest = "(SELECT MAX(i.id) FROM items i WHERE i.story_id = alerts.story_id)";
        match target {
            Target::Alert => tx.execute(
                &format!("UPDATE alerts SET last_item = {newest} WHERE id = ?1"),
                [id],
            )?,
            Target::Digest => tx.execute(
                &format!(
                    "UPDATE alerts SET state = 'sent', sent_at = ?2, last_error = NULL, last_item = {newest}
                     WHERE digest_id = ?1"
                ),
                params![id, now],
            )?,
        };
        tx.commit()?;
        Ok(())
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
                &format!("UPDATE {table} SET attempts = attempts + 1, due = ?2, last_error = ?3 WHERE id = ?1 AND state = 'pending'"),
                params![id, at, error],
            )?,
            None => tx.execute(
                &format!("UPDATE {table} SET attempts = attempts + 1, state = 'failed', last_error = ?2 WHERE id = ?1 AND state = 'pending'"),
                params![id, error],
            )?,
        };
        if target == Target::Digest {
            let state = if retry_at.is_some() {
                "pending"
            } else {
                "failed"
            };
            tx.execute(
                "UPDATE alerts SET state = ?2, last_error = ?3 WHERE digest_id = ?1",
                params![id, state, error],
            )?;
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
        tx.execute(
            "UPDATE alerts SET state = 'pending' WHERE channel = ?1 AND state = 'failed'
               AND digest_id IN (SELECT id FROM digests WHERE channel = ?1 AND state = 'pending')",
            params![channel],
        )?;
        let alerts = tx.execute(
            "UPDATE alerts SET state = 'pending', attempts = 0, queued = ?2, due = ?2
             WHERE channel = ?1 AND state = 'failed' AND digest_id IS NULL",
            params![channel, now],
        )?;
        tx.commit()?;
        Ok(Requeued { alerts, digests })
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

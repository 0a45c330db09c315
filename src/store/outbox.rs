//! The delivery side of the outbox: what is due, digests frozen at their
//! tick, and the outcome of each attempt.
//!
//! Several processes may deliver from one database. Each takes what it
//! sends with a lease (`claim_alerts`, `claim_digests`: owner and expiry),
//! in one statement that skips the rows another process is taking at that
//! moment (PostgreSQL's `FOR UPDATE SKIP LOCKED`; SQLite has one writer at
//! a time), renews it just before each send (`renew`: false when another
//! process has taken it meanwhile) and drops it with the outcome. A process
//! killed mid-send leaves its leases to expire; then another takes them.
//! This is the one place that knows.

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::sql::{Db, Row, ToValue, Value, args};
use super::{
    ChannelFault, Claimed, Damaged, DueAlert, DueDigest, DueHealth, Requeued, Target, stored,
};
use crate::domain::model::{Item, Outlet};
use crate::domain::render::FailingFeed;
use crate::domain::schedule::next_channel_attempt;

/// The columns every outbox query selects, in `AlertRow`'s order.
const ALERT_COLUMNS: &str = "id, channel, attempts, created, rules, hits, item_id, story_id, COALESCE(queued, created), due";

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
    due: i64,
}

impl AlertRow {
    fn read(r: &super::sql::Row) -> Result<AlertRow> {
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
            due: r.get(9)?,
        })
    }
}

/// How the error of a row that cannot be read back begins.
pub(super) const DAMAGED: &str = "cannot be read back: ";

/// The columns health queries select, in `HealthRow`'s order.
const HEALTH_COLUMNS: &str = "id, channel, attempts, queued, notice, due, created, feed_id";

struct HealthRow {
    id: String,
    channel: String,
    attempts: u32,
    queued: i64,
    notice: String,
    /// Its order: due, made, feed.
    order: (i64, i64, i64),
}

impl HealthRow {
    fn read(r: &super::sql::Row) -> Result<HealthRow> {
        Ok(HealthRow {
            id: r.get(0)?,
            channel: r.get(1)?,
            attempts: r.get(2)?,
            queued: r.get(3)?,
            notice: r.get(4)?,
            order: (r.get(5)?, r.get(6)?, r.get(7)?),
        })
    }
}

/// What an outcome does to a row's lease.
const UNLEASED: &str = "lease_owner = NULL, lease_until = NULL";

impl Target {
    fn table(self) -> &'static str {
        match self {
            Target::Alert => "alerts",
            Target::Digest => "digests",
            Target::Health => "health_alerts",
        }
    }
}

/// The database answers a query (the watchdog's health check).
pub(super) fn health(db: &impl Db) -> Result<()> {
    db.one("SELECT 1", &[], |_| Ok(()))
}

/// The alerts a digest of `channel` made now would hold: pending, not in a
/// digest yet, created up to `cutoff`. Damaged ones are marked failed and
/// left out.
pub(super) fn digest_members(db: &impl Db, channel: &str, cutoff: i64) -> Result<Claimed> {
    let rows = db.rows(
        &format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL AND created <= ?2
             ORDER BY created, item_id"
        ),
        args![channel, cutoff],
        AlertRow::read,
    )?;
    let mut claimed = read_back(db, &rows)?;
    let mut rows = db.rows(
        &format!(
            "SELECT {HEALTH_COLUMNS} FROM health_alerts
             WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL AND created <= ?2"
        ),
        args![channel, cutoff],
        HealthRow::read,
    )?;
    rows.sort_by_key(|r| (r.order.1, r.order.2, r.id.clone()));
    read_back_health(db, rows, &mut claimed)?;
    Ok(claimed)
}

/// Whether any feed-health alert waits to be sent.
pub(super) fn health_pending(db: &impl Db) -> Result<bool> {
    db.one(
        "SELECT EXISTS (SELECT 1 FROM health_alerts WHERE state = 'pending')",
        &[],
        |r| r.get(0),
    )
}

/// Takes for `owner`, until `until`, the feed-health alerts of `channels`
/// whose time has come and that no other process holds, in one statement.
pub(super) fn claim_health(
    db: &impl Db,
    owner: &str,
    now: i64,
    until: i64,
    channels: &[&str],
) -> Result<HealthRows> {
    let channels = serde_json::to_string(channels)?;
    let mut rows = db.rows(
        &format!(
            "UPDATE health_alerts SET lease_owner = ?3, lease_until = ?4
             WHERE id IN (SELECT id FROM health_alerts
                          WHERE state = 'pending' AND due <= ?1 AND digest_id IS NULL
                            AND {}
                            AND (lease_until IS NULL OR lease_until <= ?1){})
             RETURNING {HEALTH_COLUMNS}",
            db.in_list("channel", 2),
            db.skip_locked()
        ),
        args![now, channels, owner, until],
        HealthRow::read,
    )?;
    rows.sort_by_key(|r| (r.order, r.id.clone()));
    Ok(HealthRows(rows))
}

/// Health rows claimed, to read back after the claim's transaction.
pub(super) struct HealthRows(Vec<HealthRow>);

/// The claimed health rows as alerts; those that cannot be read are marked
/// failed.
pub(super) fn read_back_claimed_health(db: &impl Db, rows: HealthRows) -> Result<Claimed> {
    let mut claimed = Claimed::default();
    read_back_health(db, rows.0, &mut claimed)?;
    Ok(claimed)
}

fn read_back_health(db: &impl Db, rows: Vec<HealthRow>, claimed: &mut Claimed) -> Result<()> {
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
                mark_damaged(db, Target::Health, &r.id, &reason)?;
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

/// Alert rows claimed, to read back after the claim's transaction.
pub(super) struct AlertRows(Vec<AlertRow>);

/// Takes for `owner`, until `until`, up to `limit` pending alerts of
/// `channels` whose time has come and that no other process holds, in one
/// statement. With `ignore_hold`, alerts never tried yet are due whatever
/// their hold. The channel filter is in the query: alerts waiting for a
/// channel that is not delivered to must not fill the batch.
pub(super) fn claim_alerts(
    db: &impl Db,
    owner: &str,
    now: i64,
    until: i64,
    channels: &[&str],
    ignore_hold: bool,
    limit: usize,
) -> Result<AlertRows> {
    let channels = serde_json::to_string(channels)?;
    let mut rows = db.rows(
        &format!(
            "UPDATE alerts SET lease_owner = ?5, lease_until = ?6
             WHERE id IN (SELECT id FROM alerts
                            WHERE state = 'pending' AND (due <= ?1 OR (?3 = 1 AND attempts = 0))
                              AND digest_id IS NULL
                              AND {}
                              AND (lease_until IS NULL OR lease_until <= ?1)
                            ORDER BY due, created, item_id LIMIT ?2{})
             RETURNING {ALERT_COLUMNS}",
            db.in_list("channel", 4),
            db.skip_locked()
        ),
        args![now, limit, ignore_hold, channels, owner, until],
        AlertRow::read,
    )?;
    rows.sort_by_key(|r| (r.due, r.created, r.item_id));
    Ok(AlertRows(rows))
}

/// The claimed rows as alerts; those that cannot be read are marked
/// failed.
pub(super) fn read_back_claimed(db: &impl Db, rows: &AlertRows) -> Result<Claimed> {
    read_back(db, &rows.0)
}

fn read_back(db: &impl Db, rows: &[AlertRow]) -> Result<Claimed> {
    let mut claimed = Claimed::default();
    if rows.is_empty() {
        return Ok(claimed);
    }
    // Their items and stories' outlets in two queries, not two an alert.
    let items = items(db, rows.iter().map(|r| r.item_id))?;
    let outlets = outlets(db, rows.iter().map(|r| r.story_id))?;
    for r in rows {
        // (Alerts of one story on two channels share its item and outlets.)
        let item = match items.get(&r.item_id) {
            Some(item) => item.clone(),
            None => Err("no row where one was expected".into()),
        };
        let item = item
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| format!("its item {} cannot be read", r.item_id));
        let story = match outlets.get(&r.story_id) {
            Some(story) => story.clone().map_err(|e| anyhow::anyhow!(e)),
            None => Ok(Vec::new()),
        };
        match due_alert(r, item, story) {
            Ok(alert) => claimed.alerts.push(alert),
            Err(e) => {
                let reason = format!("{e:#}");
                mark_damaged(db, Target::Alert, &r.id, &reason)?;
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

/// Marks a row that cannot be read back failed, with the reason (`veille
/// status` shows it; `veille retry` queues it again, for after a fix).
pub(super) fn mark_damaged(db: &impl Db, target: Target, id: &str, reason: &str) -> Result<()> {
    let error = format!("{DAMAGED}{reason}");
    // Whoever holds it: a row nobody can read, nobody can send.
    mark_attempt_failed(db, None, target, id, &error, None)
}

/// Extends `owner`'s lease on `id` to `until`, just before a send.
/// `false`: another process holds it now (it expired meanwhile), or it is
/// no longer pending; leave it to them.
pub(super) fn renew(
    db: &impl Db,
    owner: &str,
    target: Target,
    id: &str,
    until: i64,
) -> Result<bool> {
    let n = db.exec(
        &format!(
            "UPDATE {} SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
            target.table()
        ),
        args![id, owner, until],
    )?;
    Ok(n == 1)
}

/// Gives back leases taken but not used (a channel paused mid-batch).
pub(super) fn release(db: &impl Db, owner: &str, target: Target, ids: &[String]) -> Result<()> {
    for id in ids {
        db.exec(
            &format!(
                "UPDATE {} SET {UNLEASED} WHERE id = ?1 AND lease_owner = ?2",
                target.table()
            ),
            args![id, owner],
        )?;
    }
    Ok(())
}

/// Freezes `members` into a new digest `id` with `body`; with `tick_from`,
/// as the digest of the channel's tick after `tick_from` (`take_tick`). If
/// another process (`veille digest` beside the daemon) froze one of them
/// meanwhile, or took that tick, `false` says so, and the caller rolls
/// back: the body would name a story that another digest carries.
#[allow(clippy::too_many_arguments)]
pub(super) fn create_digest(
    db: &impl Db,
    channel: &str,
    id: &str,
    members: &[String],
    health: &[String],
    body: &str,
    now: i64,
    tick_from: Option<i64>,
) -> Result<bool> {
    if let Some(from) = tick_from
        && !take_tick(db, channel, Some(from), now)?
    {
        return Ok(false);
    }
    db.exec(
        "INSERT INTO digests (id, channel, tick, body, stories, queued, due) VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?3)",
        args![id, channel, now, body, members.len()],
    )?;
    let mut taken = 0;
    for m in members {
        taken += db.exec(
            "UPDATE alerts SET digest_id = ?1 WHERE id = ?2 AND digest_id IS NULL AND state = 'pending'",
            args![id, m],
        )?;
    }
    for m in health {
        taken += db.exec(
            "UPDATE health_alerts SET digest_id = ?1 WHERE id = ?2 AND digest_id IS NULL AND state = 'pending'",
            args![id, m],
        )?;
    }
    Ok(taken == members.len() + health.len())
}

/// Takes for `owner`, until `until`, the frozen digests of `channels`
/// whose next attempt has come (all pending ones with `any_time`) and that
/// no other process holds, in one statement.
pub(super) fn claim_digests(
    db: &impl Db,
    owner: &str,
    now: i64,
    until: i64,
    channels: &[&str],
    any_time: bool,
) -> Result<Vec<DueDigest>> {
    let channels = serde_json::to_string(channels)?;
    let mut due = db.rows(
        &format!(
            "UPDATE digests SET lease_owner = ?4, lease_until = ?5
             WHERE id IN (SELECT id FROM digests
                          WHERE state = 'pending' AND (due <= ?1 OR ?3 = 1)
                            AND {}
                            AND (lease_until IS NULL OR lease_until <= ?1){})
             RETURNING id, channel, attempts, queued, stories, body, due, tick",
            db.in_list("channel", 2),
            db.skip_locked()
        ),
        args![now, channels, any_time, owner, until],
        |r| {
            Ok((
                (r.get::<i64>(6)?, r.get::<i64>(7)?),
                DueDigest {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    attempts: r.get(2)?,
                    queued: r.get(3)?,
                    stories: r.get(4)?,
                    body: r.get(5)?,
                },
            ))
        },
    )?;
    due.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    Ok(due.into_iter().map(|(_, d)| d).collect())
}

/// The last tick a digest channel handled; `None` the first time.
pub(super) fn last_tick(db: &impl Db, channel: &str) -> Result<Option<i64>> {
    db.row(
        "SELECT last_tick FROM digest_ticks WHERE channel = ?1",
        args![channel],
        |r| r.get(0),
    )
}

/// Moves a channel's last digest tick from `from` (`None`: the channel is
/// new) to `to`; `false` when another process moved it first: that one
/// handles this tick (SPEC §10: each tick once, however many processes).
pub(super) fn take_tick(db: &impl Db, channel: &str, from: Option<i64>, to: i64) -> Result<bool> {
    let moved = match from {
        None => db.exec(
            "INSERT INTO digest_ticks (channel, last_tick) VALUES (?1, ?2)
             ON CONFLICT (channel) DO NOTHING",
            args![channel, to],
        )?,
        Some(from) => db.exec(
            "UPDATE digest_ticks SET last_tick = ?3 WHERE channel = ?1 AND last_tick = ?2",
            args![channel, from, to],
        )?,
    };
    Ok(moved == 1)
}

/// Whose claim an outcome may be recorded under (SPEC §10, fencing): the
/// claim's holder's, or nobody's (the row was never claimed, or its claim
/// given back). A process whose lease ran out and passed to another records
/// nothing: the other sends again, under the same id. `n`: the owner's
/// parameter.
fn fenced(n: usize) -> String {
    format!("(lease_owner IS NULL OR lease_owner = ?{n})")
}

/// Says in the log that an outcome was refused because `owner`'s claim
/// on the row passed to another process.
fn warn_if_fenced(db: &impl Db, owner: &str, target: Target, id: &str) -> Result<()> {
    let holder: Option<Option<String>> = db.row(
        &format!(
            "SELECT lease_owner FROM {} WHERE id = ?1 AND state = 'pending'",
            target.table()
        ),
        args![id],
        |r| r.get(0),
    )?;
    if let Some(Some(holder)) = holder.filter(|h| h.as_deref() != Some(owner)) {
        tracing::warn!(alert_id = %id, holder = %holder,
            "this process's claim passed to another before its outcome was recorded; the other sends it again, under the same id");
    }
    Ok(())
}

/// The newest item of an alert's story, in an `UPDATE alerts`. `i.id + 0`:
/// read through the story's index. A bare MAX(i.id) lets PostgreSQL walk
/// the whole primary key backwards looking for the story's rows, a scan of
/// every item once the story is not recent.
const NEWEST_ITEM: &str = "(SELECT MAX(i.id + 0) FROM items i WHERE i.story_id = alerts.story_id)";

/// Delivered: never sent again. A digest's alerts are delivered with it;
/// the channel's pause, if any, is over. Returns when each item delivered
/// was first seen (none for a health alert, or when it was no longer
/// pending, or no longer `owner`'s). The caller makes it one transaction.
pub(super) fn mark_sent(
    db: &impl Db,
    owner: &str,
    target: Target,
    id: &str,
    now: i64,
) -> Result<Vec<i64>> {
    // An alert's newest item is noted by the same statement.
    let last_item = match target {
        Target::Alert => format!(", last_item = {NEWEST_ITEM}"),
        Target::Digest | Target::Health => String::new(),
    };
    let marked = db.exec(
        &format!(
            "UPDATE {} SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL,
                 {UNLEASED}{last_item}
             WHERE id = ?1 AND state = 'pending' AND {}",
            target.table(),
            fenced(3)
        ),
        args![id, now, owner],
    )?;
    if marked == 0 {
        warn_if_fenced(db, owner, target, id)?;
        return Ok(Vec::new());
    }
    db.exec(
        &format!(
            "DELETE FROM channel_faults WHERE channel = (SELECT channel FROM {} WHERE id = ?1)",
            target.table()
        ),
        args![id],
    )?;
    match target {
        Target::Alert | Target::Health => {}
        Target::Digest => {
            db.exec(
                &format!(
                    "UPDATE alerts SET state = 'sent', sent_at = ?2, last_error = NULL, last_item = {NEWEST_ITEM}
                     WHERE digest_id = ?1"
                ),
                args![id, now],
            )?;
            db.exec(
                "UPDATE health_alerts SET state = 'sent', sent_at = ?2, last_error = NULL WHERE digest_id = ?1",
                args![id, now],
            )?;
        }
    }
    match target {
        Target::Alert => first_seen(db, "a.id = ?1", id),
        Target::Digest => first_seen(db, "a.digest_id = ?1", id),
        Target::Health => Ok(Vec::new()),
    }
}

/// `mark_sent` of several alerts as one statement, in PostgreSQL's SQL
/// (SQLite cannot change rows inside WITH): one round trip where
/// `mark_sent` makes five with its transaction, for as many messages as
/// were delivered meanwhile. When each alert's item was first seen, one
/// list an alert, in the order of `ids` (empty for one no longer pending,
/// or no longer `owner`'s).
pub(super) fn mark_alerts_sent_at_once(
    db: &impl Db,
    owner: &str,
    ids: &[&str],
    now: i64,
) -> Result<Vec<Vec<i64>>> {
    let list = serde_json::to_string(ids)?;
    let marked: Vec<(String, i64)> = db.rows(
        &format!(
            "WITH sent AS (
                 UPDATE alerts SET state = 'sent', sent_at = ?2, attempts = attempts + 1,
                     last_error = NULL, {UNLEASED},
                     last_item = {NEWEST_ITEM}
                 WHERE {} AND state = 'pending' AND {}
                 RETURNING id, channel, item_id
             ),
             resumed AS (DELETE FROM channel_faults WHERE channel IN (SELECT channel FROM sent))
             SELECT sent.id, i.first_seen FROM sent JOIN items i ON i.id = sent.item_id",
            db.in_list("id", 1),
            fenced(3)
        ),
        args![list, now, owner],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut first_seen: std::collections::HashMap<String, Vec<i64>> =
        std::collections::HashMap::with_capacity(marked.len());
    for (id, seen) in marked {
        first_seen.entry(id).or_default().push(seen);
    }
    ids.iter()
        .map(|id| match first_seen.remove(*id) {
            Some(seen) => Ok(seen),
            None => warn_if_fenced(db, owner, Target::Alert, id).map(|()| Vec::new()),
        })
        .collect()
}

/// An attempt failed: try again at `retry_at`, or, with `None`, give up and
/// keep it as failed (`veille retry` queues it again). The caller makes it
/// one transaction.
pub(super) fn mark_attempt_failed(
    db: &impl Db,
    owner: Option<&str>,
    target: Target,
    id: &str,
    error: &str,
    retry_at: Option<i64>,
) -> Result<()> {
    let table = target.table();
    let mut values = vec![id.value(), error.value()];
    let then = match retry_at {
        Some(at) => {
            values.push(Value::Int(at));
            "due = ?3"
        }
        None => "state = 'failed'",
    };
    // Under `owner`'s claim, when given.
    let fence = match owner {
        Some(owner) => {
            values.push(owner.value());
            format!(" AND {}", fenced(values.len()))
        }
        None => String::new(),
    };
    let marked = db.exec(
        &format!(
            "UPDATE {table} SET attempts = attempts + 1, {then}, last_error = ?2, {UNLEASED}
             WHERE id = ?1 AND state = 'pending'{fence}"
        ),
        &values,
    )?;
    if marked == 0 {
        if let Some(owner) = owner {
            warn_if_fenced(db, owner, target, id)?;
        }
        return Ok(());
    }
    if target == Target::Digest {
        let state = if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        for table in ["alerts", "health_alerts"] {
            db.exec(
                &format!("UPDATE {table} SET state = ?2, last_error = ?3 WHERE digest_id = ?1"),
                args![id, state, error],
            )?;
        }
    }
    Ok(())
}

/// `veille retry`: puts the failed alerts and digests of `channel` back in
/// the queue, due now, for another round of at least 24 h of tries; makes
/// its pending ones due now; ends its pause. The caller makes it one
/// transaction.
pub(super) fn requeue_failed(db: &impl Db, channel: &str, now: i64) -> Result<Requeued> {
    let digests = db.exec(
        "UPDATE digests SET state = 'pending', attempts = 0, queued = ?2, due = ?2
         WHERE channel = ?1 AND state = 'failed'",
        args![channel, now],
    )?;
    let mut alerts = 0;
    for table in ["alerts", "health_alerts"] {
        db.exec(
            &format!(
                "UPDATE {table} SET state = 'pending' WHERE channel = ?1 AND state = 'failed'
                   AND digest_id IN (SELECT id FROM digests WHERE channel = ?1 AND state = 'pending')"
            ),
            args![channel],
        )?;
        alerts += db.exec(
            &format!(
                "UPDATE {table} SET state = 'pending', attempts = 0, queued = ?2, due = ?2
                 WHERE channel = ?1 AND state = 'failed' AND digest_id IS NULL"
            ),
            args![channel, now],
        )?;
    }
    let mut hastened = 0;
    for table in ["alerts", "health_alerts", "digests"] {
        hastened += db.exec(
            &format!(
                "UPDATE {table} SET due = ?2 WHERE channel = ?1 AND state = 'pending' AND due > ?2"
            ),
            args![channel, now],
        )?;
    }
    let resumed = db.exec(
        "DELETE FROM channel_faults WHERE channel = ?1",
        args![channel],
    )? > 0;
    Ok(Requeued {
        alerts,
        digests,
        hastened,
        resumed,
    })
}

/// Pauses `channel` after a fault of its own, or keeps it paused one
/// backoff step longer (`domain::schedule::next_channel_attempt`); the
/// first fault's time is kept until it sends again, the error updated.
pub(super) fn pause_channel(
    db: &impl Db,
    channel: &str,
    error: &str,
    now: i64,
    jitter: f64,
    not_before: i64,
) -> Result<ChannelFault> {
    let (since, attempts): (i64, u32) = db
        .row(
            "SELECT since, attempts FROM channel_faults WHERE channel = ?1",
            args![channel],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .unwrap_or((now, 0));
    let fault = ChannelFault {
        error: error.to_owned(),
        since,
        attempts: attempts + 1,
        retry_at: next_channel_attempt(now, attempts + 1, jitter).max(not_before),
    };
    db.exec(
        "INSERT INTO channel_faults (channel, error, since, attempts, retry_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (channel) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
             retry_at = excluded.retry_at",
        args![channel, fault.error, fault.since, fault.attempts, fault.retry_at],
    )?;
    Ok(fault)
}

/// Paused channels, by name; with `now`, only those still waiting for
/// their next attempt.
pub(super) fn channel_faults(
    db: &impl Db,
    now: Option<i64>,
) -> Result<Vec<(String, ChannelFault)>> {
    db.rows(
        "SELECT channel, error, since, attempts, retry_at FROM channel_faults
         WHERE CAST(?1 AS BIGINT) IS NULL OR retry_at > ?1 ORDER BY channel",
        args![now],
        |r| {
            Ok((
                r.get(0)?,
                ChannelFault {
                    error: r.get(1)?,
                    since: r.get(2)?,
                    attempts: r.get(3)?,
                    retry_at: r.get(4)?,
                },
            ))
        },
    )
}

/// Feeds among `names` that are gone or have failed since before
/// `failing_before`, for the end of a digest.
pub(super) fn failing_feeds(
    db: &impl Db,
    names: &[&str],
    failing_before: i64,
) -> Result<Vec<FailingFeed>> {
    let names = serde_json::to_string(names)?;
    db.rows(
        &format!(
            "SELECT name, failing_since, gone, last_error FROM feeds
             WHERE {}
               AND (gone = 1 OR failing_since <= ?2)
             ORDER BY name",
            db.in_list("name", 1)
        ),
        args![names, failing_before],
        |r| {
            Ok(FailingFeed {
                name: r.get(0)?,
                since: r
                    .get::<Option<i64>>(1)?
                    .and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
                gone: r.get(2)?,
                error: r.get(3)?,
            })
        },
    )
}

/// When the item of each alert `filter` selects was first seen.
fn first_seen(db: &impl Db, filter: &str, id: &str) -> Result<Vec<i64>> {
    db.rows(
        &format!(
            "SELECT i.first_seen FROM alerts a JOIN items i ON i.id = a.item_id WHERE {filter}"
        ),
        args![id],
        |r| r.get(0),
    )
}

/// An outbox row with the item and feeds a message about it needs.
fn due_alert(r: &AlertRow, item: Result<Item>, outlets: Result<Vec<Outlet>>) -> Result<DueAlert> {
    Ok(DueAlert {
        rules: stored::decode(stored::RULES, &r.rules)?,
        hits: stored::decode(stored::HITS, &r.hits)?,
        item: item?,
        outlets: outlets?,
        id: r.id.clone(),
        channel: r.channel.clone(),
        attempts: r.attempts,
        created: r.created,
        queued: r.queued,
    })
}

/// The items `ids` as messages quote them, each read apart: a row that
/// cannot be read is that alert's damage only.
fn items(
    db: &impl Db,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Result<Item, String>>> {
    let ids: Vec<i64> = ids.collect();
    let read = |r: &Row| -> Result<Item> {
        let categories: String = r.get(5)?;
        Ok(Item {
            source_id: None,
            title: r.get(1)?,
            link: r.get(2)?,
            summary: r.get(3)?,
            content: r.get(4)?,
            categories: serde_json::from_str(&categories).unwrap_or_default(),
            published: r.get::<Option<i64>>(6)?.and_then(from_unix),
            updated: r.get::<Option<i64>>(7)?.and_then(from_unix),
        })
    };
    let rows = db.rows(
        &format!(
            "SELECT id, title, link, summary, content, categories, published, updated FROM items WHERE {}",
            db.in_int_list("id", 1)
        ),
        args![serde_json::to_string(&ids)?],
        |r| Ok((r.get::<i64>(0)?, read(r).map_err(|e| format!("{e:#}")))),
    )?;
    Ok(rows.into_iter().collect())
}

fn from_unix(secs: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(secs, 0)
}

/// For each of `stories`, each feed that carried it, with the link of its
/// first item of it, the first to carry it first. A row that cannot be read
/// is its story's damage only.
fn outlets(
    db: &impl Db,
    stories: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Result<Vec<Outlet>, String>>> {
    let stories: Vec<i64> = stories.collect();
    let rows = db.rows(
        &format!(
            "SELECT i.story_id, f.id, f.name, i.link FROM items i JOIN feeds f ON f.id = i.feed_id
             WHERE {} ORDER BY i.story_id, i.first_seen, f.id, i.id",
            db.in_int_list("i.story_id", 1)
        ),
        args![serde_json::to_string(&stories)?],
        |r| {
            let outlet = (|| -> Result<(i64, String, Option<String>)> {
                Ok((r.get(1)?, r.get(2)?, r.get(3)?))
            })();
            Ok((r.get::<i64>(0)?, outlet))
        },
    )?;
    let mut out: HashMap<i64, Result<Vec<Outlet>, String>> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (story, outlet) in rows {
        let entry = out.entry(story).or_insert_with(|| Ok(Vec::new()));
        match (outlet, entry) {
            (Ok((feed_id, feed, link)), Ok(list)) => {
                if seen.insert((story, feed_id)) {
                    list.push(Outlet { feed, link });
                }
            }
            (Err(e), entry) => *entry = Err(format!("{e:#}")),
            (Ok(_), Err(_)) => {}
        }
    }
    Ok(out)
}

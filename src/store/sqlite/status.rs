//! What `veille status` reports, read in one snapshot.

use anyhow::Result;
use rusqlite::params;

use super::{
    ChannelFault, ChannelStatus, DamagedRow, FeedStatus, Identity, LateCopies, Sqlite, Status,
};
use crate::store::outbox::DAMAGED;

impl Sqlite {
    /// Opens the file at `path` afresh and reads from it (`/healthz`): a
    /// file removed, replaced or damaged under a running daemon fails here
    /// while the daemon's own connections may still answer from what they
    /// hold. `opened` is the file's identity when the daemon opened it.
    pub fn probe(path: &std::path::Path, opened: Option<Identity>) -> Result<()> {
        if opened.is_some() && Identity::of(path) != opened {
            anyhow::bail!(
                "the database file {} is not the one veille opened (removed, moved or replaced); restart veille",
                path.display()
            );
        }
        let answer = || -> Result<()> {
            Sqlite::open_existing(path)?
                .conn
                .query_row("SELECT COUNT(*) FROM feeds", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        };
        answer().map_err(|e| anyhow::anyhow!("the database does not answer: {e:#}"))
    }

    /// Alerts and feed-health alerts waiting to be sent, per channel
    /// (`veille_outbox_pending`).
    pub fn pending_by_channel(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT channel, COUNT(*) FROM (
                 SELECT channel FROM alerts WHERE state = 'pending'
                 UNION ALL SELECT channel FROM health_alerts WHERE state = 'pending')
             GROUP BY channel",
        )?;
        Ok(stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn status(&self) -> Result<Status> {
        // One snapshot for the three readings.
        let tx = self.conn.unchecked_transaction()?;
        Ok(Status {
            retained: self.retained()?,
            feeds: feed_rows(&tx)?,
            channels: channel_rows(&tx)?,
            late_copies: late_copies(&tx)?,
        })
    }
}

/// Every feed's row, as `status` shows it.
fn feed_rows(tx: &rusqlite::Transaction) -> Result<Vec<FeedStatus>> {
    let feeds = tx
        .prepare(
            "SELECT f.name, f.url, f.redirect_url, f.last_fetch, f.last_status, f.last_error,
                    (SELECT COUNT(*) FROM items i WHERE i.feed_id = f.id),
                    f.consecutive_failures, f.failing_since, f.next_poll, f.gone,
                    f.last_items, f.unread_items
             FROM feeds f ORDER BY f.id",
        )?
        .query_map([], |r| {
            Ok(FeedStatus {
                name: r.get(0)?,
                url: r.get(1)?,
                redirect_url: r.get(2)?,
                last_fetch: r.get(3)?,
                last_status: r.get(4)?,
                last_error: r.get(5)?,
                items: r.get(6)?,
                consecutive_failures: r.get(7)?,
                failing_since: r.get(8)?,
                next_poll: r.get(9)?,
                gone: r.get(10)?,
                last_items: r.get(11)?,
                unread_items: r.get(12)?,
                health: None,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(feeds)
}

/// Per channel: counts by state, the latest error, the next attempt and
/// the rows that cannot be read back.
fn channel_rows(tx: &rusqlite::Transaction) -> Result<Vec<ChannelStatus>> {
    let mut channels: Vec<ChannelStatus> = Vec::new();
    let mut stmt = tx.prepare(
        "WITH every AS (SELECT channel, state, due, last_error FROM alerts
                       UNION ALL SELECT channel, state, due, last_error FROM health_alerts)
         SELECT channel, state, COUNT(*),
                (SELECT last_error FROM every b WHERE b.channel = a.channel AND b.last_error IS NOT NULL
                 ORDER BY b.due DESC LIMIT 1)
         FROM every a GROUP BY channel, state ORDER BY channel",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (name, state, count, error) = row?;
        if channels.last().is_none_or(|c| c.name != name) {
            channels.push(ChannelStatus {
                name,
                last_error: error,
                ..ChannelStatus::default()
            });
        }
        let c = channels.last_mut().expect("pushed above");
        match state.as_str() {
            "pending" => c.pending = count,
            "sent" => c.sent = count,
            _ => c.failed = count,
        }
    }
    drop(stmt);
    let mut next = tx.prepare(
        "SELECT MIN(due) FROM (SELECT due FROM alerts WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL
                               UNION ALL SELECT due FROM health_alerts WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL
                               UNION ALL SELECT due FROM digests WHERE channel = ?1 AND state = 'pending')",
    )?;
    for c in &mut channels {
        c.next_attempt = next.query_row([&c.name], |r| r.get(0))?;
    }
    drop(next);
    let mut faults = tx.prepare(
        "SELECT channel, error, since, attempts, retry_at FROM channel_faults ORDER BY channel",
    )?;
    let faults = faults
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                ChannelFault {
                    error: r.get(1)?,
                    since: r.get(2)?,
                    attempts: r.get(3)?,
                    retry_at: r.get(4)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (name, fault) in faults {
        match channels.iter_mut().find(|c| c.name == name) {
            Some(c) => c.paused = Some(fault),
            None => channels.push(ChannelStatus {
                name,
                paused: Some(fault),
                ..ChannelStatus::default()
            }),
        }
    }
    damaged(tx, &mut channels)?;
    Ok(channels)
}

/// Stories that gained copies after their alert was sent (50 newest).
fn late_copies(tx: &rusqlite::Transaction) -> Result<Vec<LateCopies>> {
    Ok(tx
        .prepare(
            "SELECT (SELECT title FROM items WHERE story_id = s.id ORDER BY id LIMIT 1), s.link,
                    (SELECT COUNT(DISTINCT feed_id) FROM items WHERE story_id = s.id),
                    (SELECT COUNT(DISTINCT feed_id) FROM items i WHERE i.story_id = s.id AND i.id > sent.last_item)
             FROM stories s
             JOIN (SELECT story_id, MIN(last_item) AS last_item FROM alerts
                   WHERE state = 'sent' AND last_item IS NOT NULL GROUP BY story_id) sent
               ON sent.story_id = s.id
             WHERE EXISTS (SELECT 1 FROM items i WHERE i.story_id = s.id AND i.id > sent.last_item)
             ORDER BY s.first_seen DESC LIMIT ?1",
        )?
        .query_map(params![50], |r| Ok(LateCopies { title: r.get::<_, Option<String>>(0)?.unwrap_or_default(), link: r.get(1)?, feeds: r.get(2)?, after_alert: r.get(3)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Fills each channel's damaged rows (at most 100 in all are listed).
fn damaged(tx: &rusqlite::Transaction, channels: &mut [ChannelStatus]) -> Result<()> {
    let mut stmt = tx.prepare(
        "SELECT channel, id, 0, last_error FROM alerts
           WHERE state = 'failed' AND digest_id IS NULL AND substr(last_error, 1, length(?1)) = ?1
         UNION ALL
         SELECT channel, id, 1, last_error FROM digests
           WHERE state = 'failed' AND substr(last_error, 1, length(?1)) = ?1
         UNION ALL
         SELECT channel, id, 2, last_error FROM health_alerts
           WHERE state = 'failed' AND digest_id IS NULL AND substr(last_error, 1, length(?1)) = ?1
         ORDER BY 1, 2 LIMIT 100",
    )?;
    let rows = stmt.query_map([DAMAGED], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (channel, id, kind, error) = row?;
        if let Some(c) = channels.iter_mut().find(|c| c.name == channel) {
            c.damaged.push(DamagedRow {
                id,
                kind: ["alert", "digest", "health alert"][kind as usize],
                reason: error[DAMAGED.len()..].to_owned(),
            });
        }
    }
    Ok(())
}

//! What `veille status` and `/metrics` read; the backend reads `status` in
//! one snapshot.

use anyhow::Result;

use super::outbox::{self, DAMAGED};
use super::sql::{Db, args};
use super::{ChannelStatus, DamagedRow, FeedStatus, LateCopies, Pages, Status, retention};

/// Alerts and feed-health alerts waiting to be sent, per channel
/// (`veille_outbox_pending`).
pub(super) fn pending_by_channel(db: &impl Db) -> Result<Vec<(String, i64)>> {
    db.rows(
        "SELECT channel, COUNT(*) FROM (
             SELECT channel FROM alerts WHERE state = 'pending'
             UNION ALL SELECT channel FROM health_alerts WHERE state = 'pending') AS p
         GROUP BY channel",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// What `veille status` shows.
pub(super) fn status(db: &impl Db) -> Result<Status> {
    Ok(Status {
        retained: retention::retained(db)?,
        feeds: feed_rows(db)?,
        channels: channel_rows(db)?,
        late_copies: late_copies(db)?,
        processes: super::processes::listed(db)?,
    })
}

/// Every feed's row, as `status` shows it.
fn feed_rows(db: &impl Db) -> Result<Vec<FeedStatus>> {
    db.rows(
        "SELECT f.name, f.url, f.redirect_url, f.last_fetch, f.last_status, f.last_error,
                (SELECT COUNT(*) FROM items i WHERE i.feed_id = f.id),
                f.consecutive_failures, f.failing_since, f.next_poll, f.gone,
                f.last_items, f.unread_items,
                f.pages_ok, f.pages_failed, f.pages_skipped, f.page_failure, f.page_failure_at
         FROM feeds f ORDER BY f.id",
        &[],
        |r| {
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
                pages: Pages {
                    ok: r.get(13)?,
                    failed: r.get(14)?,
                    skipped: r.get(15)?,
                    last_failure: r.get(16)?,
                    last_failure_at: r.get(17)?,
                },
                health: None,
            })
        },
    )
}

/// Per channel: counts by state, the latest error, the next attempt, the
/// pause and the rows that cannot be read back.
fn channel_rows(db: &impl Db) -> Result<Vec<ChannelStatus>> {
    let mut channels: Vec<ChannelStatus> = Vec::new();
    let rows: Vec<(String, String, i64, Option<String>)> = db.rows(
        "WITH every AS (SELECT channel, state, due, last_error FROM alerts
                       UNION ALL SELECT channel, state, due, last_error FROM health_alerts)
         SELECT channel, state, COUNT(*),
                (SELECT last_error FROM every b WHERE b.channel = a.channel AND b.last_error IS NOT NULL
                 ORDER BY b.due DESC LIMIT 1)
         FROM every a GROUP BY channel, state ORDER BY channel",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (name, state, count, error) in rows {
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
    for c in &mut channels {
        c.next_attempt = db.one(
            "SELECT MIN(due) FROM (
                 SELECT due FROM alerts WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL
                 UNION ALL SELECT due FROM health_alerts WHERE channel = ?1 AND state = 'pending' AND digest_id IS NULL
                 UNION ALL SELECT due FROM digests WHERE channel = ?1 AND state = 'pending') AS d",
            args![c.name],
            |r| r.get(0),
        )?;
    }
    for (name, fault) in outbox::channel_faults(db, None)? {
        match channels.iter_mut().find(|c| c.name == name) {
            Some(c) => c.paused = Some(fault),
            None => channels.push(ChannelStatus {
                name,
                paused: Some(fault),
                ..ChannelStatus::default()
            }),
        }
    }
    damaged(db, &mut channels)?;
    Ok(channels)
}

/// Stories that gained copies after their alert was sent (50 newest).
fn late_copies(db: &impl Db) -> Result<Vec<LateCopies>> {
    db.rows(
        "SELECT (SELECT title FROM items WHERE story_id = s.id ORDER BY id LIMIT 1), s.link,
                (SELECT COUNT(DISTINCT feed_id) FROM items WHERE story_id = s.id),
                (SELECT COUNT(DISTINCT feed_id) FROM items i WHERE i.story_id = s.id AND i.id > sent.last_item)
         FROM stories s
         JOIN (SELECT story_id, MIN(last_item) AS last_item FROM alerts
               WHERE state = 'sent' AND last_item IS NOT NULL GROUP BY story_id) AS sent
           ON sent.story_id = s.id
         WHERE EXISTS (SELECT 1 FROM items i WHERE i.story_id = s.id AND i.id > sent.last_item)
         ORDER BY s.first_seen DESC LIMIT ?1",
        args![50],
        |r| {
            Ok(LateCopies {
                title: r.get::<Option<String>>(0)?.unwrap_or_default(),
                link: r.get(1)?,
                feeds: r.get(2)?,
                after_alert: r.get(3)?,
            })
        },
    )
}

/// Fills each channel's damaged rows (at most 100 in all are listed).
fn damaged(db: &impl Db, channels: &mut [ChannelStatus]) -> Result<()> {
    let rows: Vec<(String, String, i64, String)> = db.rows(
        "SELECT channel, id, 0, last_error FROM alerts
           WHERE state = 'failed' AND digest_id IS NULL AND last_error LIKE ?1
         UNION ALL
         SELECT channel, id, 1, last_error FROM digests
           WHERE state = 'failed' AND last_error LIKE ?1
         UNION ALL
         SELECT channel, id, 2, last_error FROM health_alerts
           WHERE state = 'failed' AND digest_id IS NULL AND last_error LIKE ?1
         ORDER BY 1, 2 LIMIT 100",
        args![format!("{DAMAGED}%")],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (channel, id, kind, error) in rows {
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

//! Feed health: the facts `domain::health` judges a feed on, and the
//! episodes and alerts its reviews decide. The alerts themselves are
//! delivered from the outbox (`Target::Health`).

use anyhow::Result;

use super::sql::{Db, args};
use super::{FeedHealth, HealthChange, new_id, stored};
use crate::domain::health::{Episode, Facts, GAPS, LEARN_AFTER, Open};

/// Every feed named in `names`, with its health facts.
pub(super) fn feed_health(db: &impl Db, names: &[&str]) -> Result<Vec<FeedHealth>> {
    let names = serde_json::to_string(names)?;
    let rows = db.rows(
        &format!(
            "SELECT id, name, failing_since, gone, last_error, first_success, health, health_since, last_fetch
             FROM feeds WHERE {} ORDER BY id",
            db.in_list("name", 1)
        ),
        args![names],
        |r| {
            let open = match (r.get::<Option<String>>(6)?, r.get::<Option<i64>>(7)?) {
                (Some(e), Some(since)) => Episode::parse(&e).map(|episode| Open { episode, since }),
                _ => None,
            };
            Ok(FeedHealth {
                feed_id: r.get(0)?,
                name: r.get(1)?,
                open,
                facts: Facts {
                    failing_since: r.get(2)?,
                    gone: r.get(3)?,
                    last_error: r.get(4)?,
                    first_success: r.get(5)?,
                    last_fetch: r.get(8)?,
                    ..Facts::default()
                },
            })
        },
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for mut f in rows {
        if let Some(first) = f.facts.first_success {
            let n: i64 = db.one(
                "SELECT COUNT(*) FROM (SELECT 1 FROM items WHERE feed_id = ?1 AND first_seen > ?2 LIMIT ?3) AS s",
                args![f.feed_id, first, LEARN_AFTER],
                |r| r.get(0),
            )?;
            f.facts.brought = n as usize;
        }
        f.facts.arrivals = db.rows(
            "SELECT DISTINCT first_seen FROM items WHERE feed_id = ?1 ORDER BY first_seen DESC LIMIT ?2",
            args![f.feed_id, GAPS + 1],
            |r| r.get(0),
        )?;
        out.push(f);
    }
    Ok(out)
}

/// Records `changes`: each feed's episode, and each notice as one health
/// alert per channel of `channels`, due at once (a digest channel's wait
/// for its digest). A change whose feed no longer has the episode it
/// started from is skipped (another process recorded it). Returns the
/// alerts made. The caller makes it one transaction.
pub(super) fn record_health(
    db: &impl Db,
    changes: &[HealthChange],
    channels: &[String],
    now: i64,
) -> Result<usize> {
    let mut made = 0;
    for c in changes {
        let part = |o: Option<Open>| (o.map(|o| o.episode.as_str()), o.map(|o| o.since));
        let (new, new_since) = part(c.open);
        let (old, old_since) = part(c.was);
        let moved = db.exec(
            "UPDATE feeds SET health = ?2, health_since = ?3
             WHERE id = ?1 AND health IS NOT DISTINCT FROM ?4 AND health_since IS NOT DISTINCT FROM ?5",
            args![c.feed_id, new, new_since, old, old_since],
        )?;
        if moved == 0 {
            continue;
        }
        for n in &c.notices {
            let notice = stored::encode(stored::HEALTH_NOTICE, n)?;
            for ch in channels {
                made += db.exec(
                    "INSERT INTO health_alerts (id, channel, feed_id, event, since, notice, created, queued, due)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)
                     ON CONFLICT (channel, feed_id, event, since) DO NOTHING",
                    args![new_id(), ch, c.feed_id, n.event.as_str(), n.since, notice, now],
                )?;
            }
        }
    }
    Ok(made)
}

//! Feed health: the facts `domain::health` judges a feed on, and the
//! episodes and alerts its reviews decide. The alerts themselves are
//! delivered from `outbox` (`Target::Health`).

use anyhow::Result;
use rusqlite::{TransactionBehavior, params};

use super::{FeedHealth, HealthChange, Sqlite, new_id, stored};
use crate::domain::health::{Episode, Facts, GAPS, LEARN_AFTER, Open};

impl Sqlite {
    /// Every feed named in `names`, with its health facts.
    pub fn feed_health(&self, names: &[&str]) -> Result<Vec<FeedHealth>> {
        let names = serde_json::to_string(names)?;
        let mut feeds = self.conn.prepare_cached(
            "SELECT id, name, failing_since, gone, last_error, first_success, health, health_since, last_fetch
             FROM feeds WHERE name IN (SELECT value FROM json_each(?1)) ORDER BY id",
        )?;
        let mut brought = self.conn.prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM items WHERE feed_id = ?1 AND first_seen > ?2 LIMIT ?3)",
        )?;
        let mut arrivals = self.conn.prepare_cached(
            "SELECT DISTINCT first_seen FROM items WHERE feed_id = ?1 ORDER BY first_seen DESC LIMIT ?2",
        )?;
        let rows = feeds
            .query_map([names], |r| {
                let open = match (r.get::<_, Option<String>>(6)?, r.get::<_, Option<i64>>(7)?) {
                    (Some(e), Some(since)) => {
                        Episode::parse(&e).map(|episode| Open { episode, since })
                    }
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
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for mut f in rows {
            if let Some(first) = f.facts.first_success {
                let n: i64 = brought
                    .query_row(params![f.feed_id, first, LEARN_AFTER as i64], |r| r.get(0))?;
                f.facts.brought = n as usize;
            }
            f.facts.arrivals = arrivals
                .query_map(params![f.feed_id, (GAPS + 1) as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            out.push(f);
        }
        Ok(out)
    }

    /// Records `changes` in one transaction: each feed's episode, and each
    /// notice as one health alert per channel of `channels`, due at once
    /// (a digest channel's wait for its digest). A change whose feed no
    /// longer has the episode it started from is skipped. Returns the
    /// alerts made.
    pub fn record_health(
        &mut self,
        changes: &[HealthChange],
        channels: &[String],
        now: i64,
    ) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut made = 0;
        {
            let mut episode = tx.prepare_cached(
                "UPDATE feeds SET health = ?2, health_since = ?3
                 WHERE id = ?1 AND health IS ?4 AND health_since IS ?5",
            )?;
            let mut alert = tx.prepare_cached(
                "INSERT INTO health_alerts (id, channel, feed_id, event, since, notice, created, queued, due)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)
                 ON CONFLICT (channel, feed_id, event, since) DO NOTHING",
            )?;
            for c in changes {
                let part = |o: Option<Open>| (o.map(|o| o.episode.as_str()), o.map(|o| o.since));
                let (new, new_since) = part(c.open);
                let (old, old_since) = part(c.was);
                if episode.execute(params![c.feed_id, new, new_since, old, old_since])? == 0 {
                    continue;
                }
                for n in &c.notices {
                    let notice = stored::encode(stored::HEALTH_NOTICE, n)?;
                    for ch in channels {
                        made += alert.execute(params![
                            new_id(),
                            ch,
                            c.feed_id,
                            n.event.as_str(),
                            n.since,
                            notice,
                            now
                        ])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(made)
    }
}

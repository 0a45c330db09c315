//! Retention (SPEC §4): prunes what is older than `retention`, in batches
//! that each hold the database for a moment only, so that the writer of
//! polls never waits long behind a run (`benches/retention.rs` measures
//! the longest batch).

use std::time::Duration;

use anyhow::Result;
use tracing::info;

use super::Shared;
use crate::store::{Cursor, Pruned};

/// Stories looked at in one batch: a median transaction of 3–7 ms, the
/// longest 0.2 s when a million items go at once (200 doubled the longest;
/// `benches/retention.rs`, figures in benches/README.md).
const BATCH: usize = 100;
/// Free space given back to the file system at a time.
const RECLAIM: u64 = 4 << 20;

/// How often the daemon prunes: a tenth of `retention`, between every ten
/// seconds (the tests' one-minute retention) and every hour.
pub fn prune_every(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(10), Duration::from_secs(3600))
}

/// What one run pruned, and how long it held the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneRun {
    pub pruned: Pruned,
    pub freed_kib: u64,
    pub took: Duration,
    /// The longest single transaction (a batch, or a step giving pages
    /// back): how long a poll may wait behind it.
    pub longest_batch: Duration,
    /// The median of those transactions.
    pub median_batch: Duration,
}

/// Prunes everything first seen before `now - retention`.
pub async fn prune_once(sh: &Shared, now: i64) -> Result<PruneRun> {
    let cutoff = now.saturating_sub(sh.config.daemon.retention.as_secs() as i64);
    let mut cursor = Cursor::default();
    let mut total = Pruned::default();
    let began = std::time::Instant::now();
    let mut steps = Vec::new();
    while !cursor.done {
        let batch = std::time::Instant::now();
        let (c, pruned) = sh
            .with_store(move |s| {
                let mut c = cursor;
                let pruned = s.prune_batch(&mut c, cutoff, BATCH)?;
                Ok((c, pruned))
            })
            .await?;
        steps.push(batch.elapsed());
        cursor = c;
        total.add(pruned);
    }
    let texts = prune_texts(sh, now).await?;
    if texts > 0 {
        info!(texts, "dropped the kept text of items older than keep_text");
    }
    if total.is_empty() {
        return Ok(PruneRun::default());
    }
    let mut freed = 0;
    loop {
        let step = std::time::Instant::now();
        let given = sh.with_store(|s| s.reclaim(RECLAIM)).await?;
        steps.push(step.elapsed());
        freed += given;
        if given < RECLAIM {
            break;
        }
    }
    steps.sort();
    let longest = steps.last().copied().unwrap_or_default();
    let median = steps[steps.len() / 2];
    info!(
        stories = total.stories,
        items = total.items,
        alerts = total.alerts,
        digests = total.digests,
        health_alerts = total.health_alerts,
        freed_kib = freed / 1024,
        took_ms = began.elapsed().as_millis() as u64,
        longest_batch_ms = longest.as_millis() as u64,
        median_batch_ms = median.as_millis() as u64,
        "pruned what is older than the retention"
    );
    Ok(PruneRun {
        pruned: total,
        freed_kib: freed / 1024,
        took: began.elapsed(),
        longest_batch: longest,
        median_batch: median,
    })
}

/// Texts dropped in one transaction.
const TEXT_BATCH: usize = 1000;

/// Drops the kept text of items first seen before `now - keep_text`
/// (SPEC §4), a batch at a time; how many went.
async fn prune_texts(sh: &Shared, now: i64) -> Result<usize> {
    let cutoff = now.saturating_sub(sh.config.daemon.keep_text.as_secs() as i64);
    let mut total = 0;
    loop {
        let n = sh
            .with_store(move |s| s.prune_texts(cutoff, TEXT_BATCH))
            .await?;
        total += n;
        if n < TEXT_BATCH {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_runs_at_least_hourly_and_often_for_a_short_retention() {
        let h = Duration::from_secs(3600);
        assert_eq!(prune_every(90 * 24 * h), h);
        assert_eq!(prune_every(5 * h), h / 2);
        assert_eq!(
            prune_every(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
    }
}

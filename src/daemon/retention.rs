//! Retention (SPEC §4): prunes what is older than `retention`, in batches
//! that each hold the database for a moment only, so that the writer of
//! polls never waits long behind a run (`benches/poll_cycle.rs` measures
//! the longest batch).

use std::time::Duration;

use anyhow::Result;
use tracing::info;

use super::Shared;
use crate::store::{Cursor, Pruned};

/// Stories looked at in one batch (see `longest_batch_ms` in the log line
/// and the figures in benches/README.md).
const BATCH: usize = 200;
/// Free pages given back to the file system at a time (4 MiB).
const RECLAIM: u32 = 1024;

/// How often the daemon prunes: a tenth of `retention`, between every ten
/// seconds (the tests' one-minute retention) and every hour.
pub fn prune_every(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(10), Duration::from_secs(3600))
}

/// Prunes everything first seen before `now - retention`; returns the sum.
pub async fn prune_once(sh: &Shared, now: i64) -> Result<Pruned> {
    let cutoff = now.saturating_sub(sh.config.daemon.retention.as_secs() as i64);
    let mut cursor = Cursor::default();
    let mut total = Pruned::default();
    let began = std::time::Instant::now();
    let mut longest = Duration::ZERO;
    while !cursor.done {
        let batch = std::time::Instant::now();
        let (c, pruned) = sh
            .with_store(move |s| {
                let mut c = cursor;
                let pruned = s.prune_batch(&mut c, cutoff, BATCH)?;
                Ok((c, pruned))
            })
            .await?;
        longest = longest.max(batch.elapsed());
        cursor = c;
        total.add(pruned);
    }
    if total.is_empty() {
        return Ok(total);
    }
    let mut pages = 0;
    loop {
        let given = sh.with_store(|s| s.reclaim(RECLAIM)).await?;
        pages += given;
        if given < u64::from(RECLAIM) {
            break;
        }
    }
    info!(
        stories = total.stories,
        items = total.items,
        alerts = total.alerts,
        digests = total.digests,
        health_alerts = total.health_alerts,
        freed_kib = pages * 4,
        took_ms = began.elapsed().as_millis() as u64,
        longest_batch_ms = longest.as_millis() as u64,
        "pruned what is older than the retention"
    );
    Ok(total)
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

//! `veille run`: the loop, and `run --once`.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shared, deliver_due_once, digests_due_once, flush_digest, poll_due_feeds, unix_now};

/// How often the loop looks for due feeds and alerts.
const TICK: Duration = Duration::from_secs(5);

/// Polls every feed once, then delivers every immediate alert (hold
/// ignored: every copy fetched in this run is already recorded); with
/// `flush_digests`, sends every digest channel's pending digest too.
pub async fn run_once(sh: &Shared, flush_digests: bool) -> Result<()> {
    let outcomes = poll_due_feeds(sh, unix_now(), true).await?;
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, super::PollOutcome::Failed { .. }))
        .count();
    let mut report = deliver_due_once(sh, unix_now(), true).await?;
    if flush_digests {
        for c in sh.config.channels.iter().filter(|c| c.digest.is_some()) {
            if let Some(r) = flush_digest(sh, &c.name, unix_now()).await? {
                report.sent += r.sent;
                report.retrying += r.retrying;
                report.failed += r.failed;
            }
        }
    }
    info!(
        feeds = outcomes.len(),
        failed_feeds = failed,
        sent = report.sent,
        retrying = report.retrying,
        failed_alerts = report.failed,
        "run complete"
    );
    Ok(())
}

/// Polls due feeds, delivers due alerts and makes digests on their ticks
/// until `shutdown` is cancelled. Polling and delivery run side by side, so
/// that a slow mail server never delays a poll, nor a slow feed a message.
///
/// Work in flight when it is cancelled is abandoned, which is safe: a poll is
/// recorded whole or not at all (and fetched again at the next start), and an
/// alert is marked sent only after its channel took it (a resend carries the
/// same id, and a Maildir resend replaces the same file).
pub async fn run(sh: &Shared, shutdown: CancellationToken) -> Result<()> {
    info!(
        feeds = sh.config.feeds.len(),
        rules = sh.config.rules.len(),
        channels = sh.config.channels.len(),
        "veille started"
    );
    tokio::join!(
        every(&shutdown, || async {
            if let Err(e) = poll_due_feeds(sh, unix_now(), false).await {
                warn!(error = %format!("{e:#}"), "poll cycle failed");
            }
        }),
        every(&shutdown, || async {
            if let Err(e) = deliver_due_once(sh, unix_now(), false).await {
                warn!(error = %format!("{e:#}"), "delivery cycle failed");
            }
            if let Err(e) = digests_due_once(sh, unix_now()).await {
                warn!(error = %format!("{e:#}"), "digest cycle failed");
            }
        }),
    );
    info!("veille stopped");
    Ok(())
}

/// Calls `pass` every `TICK` (after it ends) until `shutdown`.
async fn every<F, Fut>(shutdown: &CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = pass() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

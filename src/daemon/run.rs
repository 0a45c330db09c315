//! `veille run`: the loop, and `run --once`.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::deliver::warn_unsupported;
use super::{Shared, deliver_due_once, poll_due_feeds, unix_now};

/// How often the loop looks for due feeds and alerts.
const TICK: Duration = Duration::from_secs(5);

/// Polls every feed once, then delivers every immediate alert (hold
/// ignored: every copy fetched in this run is already recorded).
pub async fn run_once(sh: &Shared) -> Result<()> {
    warn_unsupported(sh);
    let outcomes = poll_due_feeds(sh, unix_now(), true).await?;
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, super::PollOutcome::Failed { .. }))
        .count();
    let report = deliver_due_once(sh, unix_now(), true).await?;
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

/// Polls due feeds and delivers due alerts until `shutdown` is cancelled.
///
/// Work in flight when it is cancelled is abandoned, which is safe: a poll is
/// recorded whole or not at all (and fetched again at the next start), and an
/// alert is marked sent only after its channel took it (a Maildir resend
/// replaces the same file).
pub async fn run(sh: &Shared, shutdown: CancellationToken) -> Result<()> {
    info!(
        feeds = sh.config.feeds.len(),
        rules = sh.config.rules.len(),
        channels = sh.config.channels.len(),
        "veille started"
    );
    warn_unsupported(sh);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = cycle(sh) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    info!("veille stopped");
    Ok(())
}

/// One pass: poll what is due, then deliver what is due.
async fn cycle(sh: &Shared) {
    if let Err(e) = poll_due_feeds(sh, unix_now(), false).await {
        warn!(error = %format!("{e:#}"), "poll cycle failed");
    }
    if let Err(e) = deliver_due_once(sh, unix_now(), false).await {
        warn!(error = %format!("{e:#}"), "delivery cycle failed");
    }
}

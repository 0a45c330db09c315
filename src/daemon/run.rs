//! `veille run`: the loop, and `run --once`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    Loop, Pass, Shared, deliver_due_once, digests_due_once, flush_digest, poll_due_feeds,
    prune_every, prune_once, retry_digests_once, review_health_once,
};
use crate::store::ProcessInfo;

/// How often the loop looks for due feeds and alerts.
const TICK: Duration = Duration::from_secs(5);
/// How long the lease of once-per-tick work lasts: a daemon that dies
/// leaves it to another within this (it renews it every `TICK`).
const LEAD: Duration = Duration::from_secs(30);
/// How often feed health is reviewed (a failure alerts within this of its
/// `failing_after`).
const HEALTH_EVERY: Duration = Duration::from_secs(60);

/// How long the poll or the delivery loop may go without progress before
/// `/healthz` calls it stalled: a tick, plus the longest a single fetch or
/// send may take twice over (each ends within `timeout`), at least a minute.
pub fn stall_limit(config: &crate::config::Config) -> Duration {
    TICK + (2 * config.daemon.timeout).max(Duration::from_secs(60))
}

/// Prunes what `retention` lets go, polls every feed once, then delivers every immediate alert (hold
/// ignored: every copy fetched in this run is already recorded) and the
/// digests already made whose retry is due; with `flush_digests`, makes and
/// sends every digest channel's pending digest too.
pub async fn run_once(sh: &Shared, flush_digests: bool) -> Result<()> {
    if let Err(e) = prune_once(sh, sh.clock.now()).await {
        warn!(error = %format!("{e:#}"), "pruning failed");
    }
    let outcomes = poll_due_feeds(sh, Pass::Once).await?;
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, super::PollOutcome::Failed { .. }))
        .count();
    review_health_once(sh, sh.clock.now()).await?;
    let mut report = deliver_due_once(sh, sh.clock.now(), true).await?;
    report.merge(retry_digests_once(sh, sh.clock.now()).await?);
    if flush_digests {
        for c in sh.config.channels.iter().filter(|c| c.digest.is_some()) {
            if let Some(r) = flush_digest(sh, &c.name, sh.clock.now()).await? {
                report.merge(r);
            }
        }
    }
    release_feeds(sh).await;
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
/// until `shutdown` or `reload` is cancelled. Polling and delivery run side
/// by side, so that a slow mail server never delays a poll, nor a slow feed
/// a message.
///
/// On `shutdown`, polls in flight are abandoned, which is safe: a poll is
/// recorded whole or not at all (and fetched again at the next start).
/// Delivery starts no new send, and records the sends under way for up to
/// `STOP_GRACE`; a send abandoned after that was not marked sent, so it
/// goes again, under the same id. On `reload`, polls in flight are
/// abandoned the same way but a delivery pass is finished first, so a
/// reload never causes a resend.
pub async fn run(
    sh: &Shared,
    shutdown: &CancellationToken,
    reload: &CancellationToken,
) -> Result<()> {
    let polled = tokio::sync::Notify::new();
    let first = std::cell::Cell::new(true);
    let pruned = std::cell::Cell::<Option<std::time::Instant>>::new(None);
    // Who leads is known before the first prune.
    heartbeat(sh).await;
    let stopping = || async {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = reload.cancelled() => {}
        }
    };
    tokio::join!(
        every(TICK, stopping, || async {
            let pass = match first.get() {
                true => Pass::First,
                false => Pass::Scheduled,
            };
            match poll_due_feeds(sh, pass).await {
                Ok(_) => {
                    // A first pass that failed (the database away at the
                    // start) is made again as a first pass.
                    first.set(false);
                    sh.metrics.progress(Loop::Poll, sh.clock.now());
                }
                Err(e) => sh.outage.failed("poll cycle failed", &e),
            }
            polled.notify_one();
        }),
        delivery(sh, shutdown, stopping),
        health_reviews(sh, &polled, stopping),
        every(TICK, stopping, || async {
            // Every `prune_every`, by whichever process leads then: one
            // that comes to lead late (after another's unclean stop)
            // prunes at once.
            let due = pruned
                .get()
                .is_none_or(|at| at.elapsed() >= prune_every(sh.config.daemon.retention));
            if !due || !leads(sh) {
                return;
            }
            pruned.set(Some(std::time::Instant::now()));
            if let Err(e) = prune_once(sh, sh.clock.now()).await {
                sh.outage.failed("pruning failed", &e);
            }
        }),
        every(TICK, stopping, || heartbeat(sh)),
        watchdog(sh, stopping),
    );
    // Polls in flight were abandoned: their feeds are free at once, for
    // this process after a reload or for the others.
    release_feeds(sh).await;
    Ok(())
}

/// Says this process lives and takes or renews the lease of once-per-tick
/// work (`Backend::heartbeat`); a failure counts as not leading.
async fn heartbeat(sh: &Shared) {
    let me = ProcessInfo {
        host: hostname(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        config_digest: sh.config.digest.clone(),
    };
    let now = sh.clock.now();
    let until = now + LEAD.as_secs() as i64;
    let (leads, answered) = match sh.with_store(move |s| s.heartbeat(&me, now, until)).await {
        Ok(leads) => {
            sh.outage.ended();
            (leads, true)
        }
        Err(e) => {
            sh.outage
                .failed("cannot tell the database this process lives", &e.into());
            (false, false)
        }
    };
    let before = sh
        .leading
        .swap(if leads { until } else { 0 }, Ordering::Relaxed)
        > 0;
    if leads != before {
        info!(
            leads,
            "{}",
            if leads {
                "this process now runs digest ticks, the health review and pruning"
            } else if answered {
                "another process runs digest ticks, the health review and pruning"
            } else {
                "this process stops running digest ticks, the health review and pruning until the database answers"
            }
        );
    }
}

fn leads(sh: &Shared) -> bool {
    // Not past the lease: a heartbeat held up longer than it has lost it.
    sh.clock.now() < sh.leading.load(Ordering::Relaxed)
}

/// The machine's name, as `status` shows it; read once.
fn hostname() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned())
    })
    .clone()
}

/// A stopping daemon leaves the list of processes and its lease
/// (`Backend::retire`), so that another takes the once-per-tick work at
/// once; a failure leaves them to run out.
pub async fn retire(sh: &Shared) {
    if let Err(e) = sh.with_store(|s| s.retire()).await {
        warn!(error = %format!("{e:#}"), "cannot take this process off the database's list");
    }
}

/// Ends this process's claims on feeds (`Backend::release_feeds`); a
/// failure leaves them to run out. It runs on the connection claims are
/// made on, and counts itself there (`Shared::releases`): a claim of a
/// poll abandoned before it, still waiting for that connection, then
/// takes nothing instead of holding its feeds for a whole lease.
pub async fn release_feeds(sh: &Shared) {
    let releases = Arc::clone(&sh.releases);
    let released = sh.with_claims(move |s| {
        releases.fetch_add(1, Ordering::SeqCst);
        s.release_feeds()
    });
    if let Err(e) = released.await {
        warn!(error = %format!("{e:#}"), "cannot give back the feeds this process held");
    }
}

/// How long a daemon told to stop waits for the sends under way and their
/// records.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Delivery passes, one a `TICK` or as soon as a poll recorded alerts.
/// A shutdown ends a pass once its sends under way are recorded (within
/// `STOP_GRACE`); a reload waits for the pass to end.
async fn delivery<S, SF>(sh: &Shared, shutdown: &CancellationToken, stopping: S)
where
    S: Fn() -> SF,
    SF: Future<Output = ()>,
{
    loop {
        let pass = delivery_pass(sh);
        tokio::pin!(pass);
        tokio::select! {
            _ = shutdown.cancelled() => {
                // Sends already made are recorded before the process ends
                // (a message sent and not recorded would go again at the
                // next start); no new one starts. A send that takes longer
                // than `STOP_GRACE` is abandoned, and goes again.
                if tokio::time::timeout(STOP_GRACE, pass).await.is_err() {
                    warn!("stopping: a send still under way is abandoned; it goes again at the next start, under its id");
                }
                return;
            }
            _ = &mut pass => {}
        }
        tokio::select! {
            _ = stopping() => return,
            _ = tokio::time::sleep(TICK) => {}
            // A poll that recorded alerts wakes delivery at once.
            _ = sh.alerts_recorded.notified() => {}
        }
    }
}

/// Sends what is due, then the digests made whose attempt is due. The
/// process that leads makes the digests whose tick came first: digest ticks
/// are once-per-tick work (a digest's key is its channel and tick, so two
/// processes that both believe they lead still make it once).
async fn delivery_pass(sh: &Shared) {
    let delivered = deliver_due_once(sh, sh.clock.now(), false).await;
    if let Err(e) = &delivered {
        sh.outage.failed("delivery cycle failed", e);
    }
    let digests = if leads(sh) {
        digests_due_once(sh, sh.clock.now()).await
    } else {
        retry_digests_once(sh, sh.clock.now()).await
    };
    if let Err(e) = &digests {
        sh.outage.failed("digest cycle failed", e);
    }
    // A pass that could not read or record the outbox is no progress for
    // `/healthz`.
    if delivered.is_ok() && digests.is_ok() {
        sh.metrics.progress(Loop::Delivery, sh.clock.now());
    }
}

/// Feed-health reviews, every `HEALTH_EVERY`. The first waits for the
/// first poll pass, so that the feeds due at start have been polled: a
/// failure fixed while veille was stopped is not reported.
async fn health_reviews<S, SF>(sh: &Shared, polled: &tokio::sync::Notify, stopping: S)
where
    S: Fn() -> SF,
    SF: Future<Output = ()>,
{
    tokio::select! {
        _ = stopping() => return,
        _ = polled.notified() => {}
    }
    every(HEALTH_EVERY, stopping, || async {
        if !leads(sh) {
            return;
        }
        if let Err(e) = review_health_once(sh, sh.clock.now()).await {
            sh.outage.failed("feed-health review failed", &e);
        }
    })
    .await
}

/// Calls `pass` every `period` (counted from the end of the previous pass,
/// so a slow pass delays the next instead of piling passes up) until `stop`
/// completes; a pass in progress is dropped when it does.
async fn every<S, SF, F, Fut>(period: Duration, stop: S, mut pass: F)
where
    S: Fn() -> SF,
    SF: Future<Output = ()>,
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = stop() => return,
            _ = pass() => {}
        }
        tokio::select! {
            _ = stop() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

/// With `WatchdogSec=` set, tells systemd every half period that veille is
/// alive, after checking that the database answers within that time: a
/// wedged store stops the pings and systemd restarts the service. A
/// database that answers with an error (a PostgreSQL server away) is not a
/// wedged process: the loops retry until it is back, and a restart would
/// only stop at once on the same error, so the pings go on.
async fn watchdog<S, SF>(sh: &Shared, stop: S)
where
    S: Fn() -> SF,
    SF: Future<Output = ()>,
{
    let Some(period) = sd_notify::watchdog_enabled() else {
        return stop().await;
    };
    let half = period / 2;
    every(half, stop, || async {
        let check = sh.with_store(|s| s.health());
        match tokio::time::timeout(half, check).await {
            Ok(answer) => {
                if let Err(e) = answer {
                    sh.outage.failed("the database check failed", &e.into());
                }
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            }
            Err(_) => warn!(
                waited_ms = half.as_millis() as u64,
                "the database did not answer; no watchdog ping"
            ),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_pass_delays_the_next_instead_of_bursting() {
        let starts = std::sync::Mutex::new(Vec::new());
        let begin = tokio::time::Instant::now();
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(98)).await;
            stopper.cancel();
        });
        // The first pass takes a minute (twelve ticks' worth), the others
        // no time at all.
        every(
            TICK,
            || stop.cancelled(),
            || async {
                let n = {
                    let mut s = starts.lock().unwrap();
                    s.push(begin.elapsed().as_secs());
                    s.len()
                };
                if n == 1 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            },
        )
        .await;
        // No catching up on the twelve missed ticks: one tick after the
        // slow pass, then one every tick.
        let starts = starts.into_inner().unwrap();
        assert_eq!(starts, [0, 65, 70, 75, 80, 85, 90, 95]);
    }
}

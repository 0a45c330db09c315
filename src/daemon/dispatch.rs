//! Delivery: read what is due from the outbox, send it through its channel,
//! record the outcome. Something is marked sent only after its channel took
//! it; a failure is retried with backoff (`domain::schedule`) or, when
//! retrying cannot help or has gone on for a day, marked failed.
//!
//! Channels are served side by side, each in order (a webhook channel up
//! to four posts at a time once its first of the pass succeeded); a channel
//! whose send failed and will be retried is left alone for the rest of the
//! pass, so that a stalled server costs one bounded attempt per pass, not
//! one per alert.
//!
//! A fault of the channel rather than of the message (`DeliveryError::
//! Channel`: a refused login, TLS or the connection failing) pauses the
//! channel as a whole (SPEC §5): the alert tried is given back untouched,
//! the channel is left alone until its next backoff step
//! (`Store::pause_channel`), and its first success ends the pause. A wrong
//! password costs one login per step, not one per queued alert.
//!
//! What is sent is first taken with a lease (`Store::claim_alerts`), so that
//! several processes on one database never send the same alert or digest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{Delivery, Loop, RETRY_PAUSES, Shared};
use crate::config::{Channel, ChannelKind, Config};
use crate::deliver::{DeliveryError, Outgoing, Pass};
use crate::domain::health::Notice;
use crate::domain::hook::{self, DigestJson, Hook};
use crate::domain::outgoing::{self, FrozenDigest};
use crate::domain::render::{self, DigestView, Rendered, StoryView};
use crate::domain::schedule::next_delivery_attempt;
use crate::store::{self, Claimed, Damaged, DueAlert, DueDigest, Store, Target, stored};

/// Alerts read from the outbox at once.
const BATCH: usize = 100;
/// A feed failing for longer than this is named at the end of a digest.
const FAILING_FOR: i64 = 24 * 3600;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl DeliveryReport {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Sent => self.sent += 1,
            Outcome::Retrying | Outcome::Paused => self.retrying += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    pub fn merge(&mut self, other: DeliveryReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retrying,
    Failed,
    /// The channel is at fault and paused; what was tried waits, untouched.
    Paused,
}

impl Outcome {
    /// Whether the channel sends nothing more in this pass.
    fn stops_channel(self) -> bool {
        matches!(self, Outcome::Retrying | Outcome::Paused)
    }
}

/// The channels paused at `now`, left alone until their next step.
async fn paused_channels(sh: &Shared, now: i64) -> Result<BTreeSet<String>> {
    let paused = sh.with_store(move |s| s.paused_channels(now)).await?;
    Ok(paused.into_iter().map(|(name, _)| name).collect())
}

/// Delivers every due alert of the channels that send one message per story
/// (digest channels wait for their tick). With `ignore_hold`, alerts still
/// inside their hold are due too (`run --once`). Only alerts no other
/// process holds are taken (`Store::claim_alerts`).
pub async fn deliver_due_once(sh: &Shared, now: i64, ignore_hold: bool) -> Result<DeliveryReport> {
    let mut open: BTreeSet<String> = sh
        .config
        .channels
        .iter()
        .filter(|c| c.digest.is_none())
        .map(|c| c.name.clone())
        .collect();
    for name in paused_channels(sh, now).await? {
        open.remove(&name);
    }
    let mut report = DeliveryReport::default();
    let mut tried = BTreeSet::new();
    // A daemon told to stop claims no more: what it gave back would be
    // claimed again and left leased.
    while !open.is_empty() && !stopping(sh) {
        let names: Vec<String> = open.iter().cloned().collect();
        let until = sh.clock.now() + lease(sh);
        let claimed = sh
            .with_store(move |s| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                s.claim_alerts(now, until, &names, ignore_hold, BATCH)
            })
            .await?;
        report.failed += log_damaged(&claimed.damaged);
        let mut by_channel: BTreeMap<String, Vec<DueAlert>> = BTreeMap::new();
        for alert in claimed.alerts {
            if tried.insert(alert.id.clone()) {
                by_channel
                    .entry(alert.channel.clone())
                    .or_default()
                    .push(alert);
            }
        }
        if by_channel.is_empty() && claimed.damaged.is_empty() {
            break;
        }
        let passes = by_channel.into_iter().map(|(name, alerts)| async move {
            let channel = sh
                .config
                .channel(&name)
                .expect("claim_alerts filters on configured channels");
            let pass = channel_pass(sh, channel, alerts, until).await;
            (name, pass)
        });
        for (name, pass) in join_all(passes).await {
            let (channel_report, paused) = pass?;
            report.merge(channel_report);
            if paused {
                open.remove(&name);
            }
        }
    }
    report.merge(deliver_health(sh, now, &open).await?);
    Ok(report)
}

/// Sends the due feed-health alerts of `channels` (those that send one
/// message per alert and have not paused in this pass), each channel in
/// order, pausing a channel at its first failure to be retried.
async fn deliver_health(
    sh: &Shared,
    now: i64,
    channels: &BTreeSet<String>,
) -> Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    if sh.config.health.is_none() && !has_health_alerts(sh).await? {
        return Ok(report);
    }
    let names: Vec<String> = channels.iter().cloned().collect();
    let until = sh.clock.now() + lease(sh);
    let claimed = sh
        .with_store(move |s| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            s.claim_health(now, until, &names)
        })
        .await?;
    report.failed += log_damaged(&claimed.damaged);
    let mut paused = BTreeSet::new();
    let mut left = Vec::new();
    for h in claimed.health {
        let channel = sh.config.channel(&h.channel);
        let (Some(channel), false) = (channel, paused.contains(&h.channel) || stopping(sh)) else {
            left.push(h.id);
            continue;
        };
        if !still_ours(sh, Target::Health, &h.id, until).await? {
            continue;
        }
        let zone = sh.config.daemon.timezone;
        let out = outgoing::health(channel.kind.medium(), &h.id, &h.notice, zone);
        let title = render::health_subject(&h.notice, zone);
        let pass = sh.sender.pass(channel);
        let outcome = attempt(
            sh,
            &pass,
            Target::Health,
            (h.attempts, h.queued),
            &title,
            &out,
        )
        .await;
        pass.close().await;
        let outcome = outcome?;
        if outcome.stops_channel() {
            paused.insert(h.channel.clone());
        }
        report.add(outcome);
    }
    if !left.is_empty() {
        sh.with_store(move |s| s.release(Target::Health, &left))
            .await?;
    }
    Ok(report)
}

/// Whether health alerts made under an earlier config still wait (the
/// `[health]` table may have been removed since).
async fn has_health_alerts(sh: &Shared) -> Result<bool> {
    Ok(sh.with_store(|s| s.health_pending()).await?)
}

/// How long a process holds what it is sending: two whole sends and some
/// margin, so that a lease never ends while its send is still running.
fn lease(sh: &Shared) -> i64 {
    2 * sh.config.daemon.timeout.as_secs() as i64 + 10
}

/// Damaged rows found on the way (now marked failed), logged; their count.
fn log_damaged(damaged: &[Damaged]) -> usize {
    for d in damaged {
        warn!(alert_id = %d.id, channel = %d.channel, reason = %d.reason,
            "an alert cannot be read back; marked failed, the others go on");
    }
    damaged.len()
}

/// Sends `alerts` through `channel` over one pass: a webhook's up to
/// `WEBHOOK_WIDTH` at a time, an email or Maildir channel's two at a time,
/// so that what one asks of the database overlaps the next's send (an
/// SMTP session still sends one message at a time, in order); a push
/// channel's in order. What went through is recorded beside the sends, in
/// groups (`Marks`), and the pass ends once all of it is. Returns the
/// report and whether the channel paused (a send will be retried): no new
/// send starts then, and the alerts not tried are given back for a later
/// pass.
async fn channel_pass(
    sh: &Shared,
    channel: &Channel,
    alerts: Vec<DueAlert>,
    until: i64,
) -> Result<(DeliveryReport, bool)> {
    let width = match channel.kind {
        ChannelKind::Webhook { .. } => WEBHOOK_WIDTH,
        ChannelKind::Email { .. } | ChannelKind::Maildir { .. } => 2,
        ChannelKind::Push(_) => 1,
    };
    let pass = sh.sender.pass(channel);
    let paused = AtomicBool::new(false);
    let (marks, recording) = Marks::new(sh, channel, &paused);
    let sending = async {
        // The first send goes alone: a server that is down costs one
        // attempt per pass, not one per alert in flight.
        let (first, rest) = alerts.split_at(alerts.len().min(1));
        let mut steps = send_alerts(sh, &pass, &paused, &marks, first, 1, until).await;
        steps.extend(send_alerts(sh, &pass, &paused, &marks, rest, width, until).await);
        drop(marks);
        steps
    };
    let (steps, ()) = tokio::join!(sending, recording);
    pass.close().await;
    let mut report = DeliveryReport::default();
    let mut left = Vec::new();
    let mut error = None;
    for (alert, step) in steps {
        match step {
            Ok(Step::Done(outcome)) => report.add(outcome),
            Ok(Step::Sent(mark)) => match mark.await.unwrap_or_else(|_| Err(marks_stopped())) {
                Ok(()) => report.add(Outcome::Sent),
                Err(e) => {
                    left.push(alert.id.clone());
                    error.get_or_insert(e.into());
                }
            },
            Ok(Step::NotTried) => left.push(alert.id.clone()),
            Ok(Step::Taken) => {}
            Err(e) => {
                left.push(alert.id.clone());
                error.get_or_insert(e);
            }
        }
    }
    if !left.is_empty() {
        sh.with_store(move |s| s.release(Target::Alert, &left))
            .await?;
    }
    match error {
        Some(e) => Err(e),
        None => Ok((report, paused.into_inner())),
    }
}

/// Sends `alerts`, `width` at a time, until one will be retried (or an
/// error): then `paused` is set and no new send starts.
async fn send_alerts<'a>(
    sh: &Shared,
    pass: &Pass<'_>,
    paused: &AtomicBool,
    marks: &Marks,
    alerts: &'a [DueAlert],
    width: usize,
    until: i64,
) -> Vec<(&'a DueAlert, Result<Step>)> {
    stream::iter(alerts)
        .map(|alert| async move {
            // A daemon told to stop starts no send: it records those made.
            if paused.load(Ordering::Relaxed) || stopping(sh) {
                return (alert, Ok(Step::NotTried));
            }
            let step = send_alert(sh, pass, marks, alert, until).await;
            if matches!(&step, Ok(Step::Done(o)) if o.stops_channel()) || step.is_err() {
                paused.store(true, Ordering::Relaxed);
            }
            (alert, step)
        })
        .buffer_unordered(width)
        .collect()
        .await
}

/// The daemon was told to stop: no new send starts (`run::delivery`).
fn stopping(sh: &Shared) -> bool {
    sh.shutdown.is_cancelled()
}

/// Webhook posts of one channel in flight at once.
const WEBHOOK_WIDTH: usize = 4;

/// What became of one alert in a pass.
enum Step {
    Done(Outcome),
    /// Sent; its record is on its way (`Marks`).
    Sent(oneshot::Receiver<store::Result<()>>),
    /// Another process holds it now.
    Taken,
    /// The channel paused first.
    NotTried,
}

/// Whether this process still holds `id`, leased until `until`, for one
/// more send. When the lease might end before the send has (a slow pass),
/// it is renewed first; `false` then means another process took it.
async fn still_ours(sh: &Shared, target: Target, id: &str, until: i64) -> Result<bool> {
    let now = sh.clock.now();
    // A send ends within `timeout` (a push channel's waits for a 429
    // besides); marking it takes seconds at most.
    let needed = (sh.config.daemon.timeout + crate::push::WAIT_IN_SEND).as_secs() as i64 + 5;
    if until - now >= needed {
        return Ok(true);
    }
    let (id, until) = (id.to_owned(), now + lease(sh));
    Ok(sh.with_store(move |s| s.renew(target, &id, until)).await?)
}

/// Sends `alert`, leased until `until`, and records the outcome: a send
/// that went through is handed to `marks`.
async fn send_alert(
    sh: &Shared,
    pass: &Pass<'_>,
    marks: &Marks,
    alert: &DueAlert,
    until: i64,
) -> Result<Step> {
    if !still_ours(sh, Target::Alert, &alert.id, until).await? {
        return Ok(Step::Taken);
    }
    let out = story_outgoing(&sh.config, pass.channel(), alert);
    let title = render::display_title(&alert.item);
    let tries = (alert.attempts, alert.queued);
    Ok(
        match send(sh, pass, Target::Alert, tries, &title, &out).await? {
            Sent::Now(now) => Step::Sent(marks.add(out.id, now)),
            Sent::Not(outcome) => Step::Done(outcome),
        },
    )
}

/// The message about one story, as `channel` sends it: the same on every
/// attempt but for the feeds, which are those known when it is sent.
fn story_outgoing(config: &Config, channel: &Channel, a: &DueAlert) -> Outgoing {
    let view = StoryView {
        rules: &a.rules,
        hits: &a.hits,
        item: &a.item,
        outlets: &a.outlets,
        zone: config.daemon.timezone,
    };
    outgoing::story(channel.kind.medium(), &a.id, a.created, &view)
}

/// Sends `out` once and records what happened. `tries` is (attempts so
/// far, when it was queued); `title` names it in the log (the story's
/// title, a digest's subject).
async fn attempt(
    sh: &Shared,
    pass: &Pass<'_>,
    target: Target,
    tries: (u32, i64),
    title: &str,
    out: &Outgoing,
) -> Result<Outcome> {
    match send(sh, pass, target, tries, title, out).await? {
        Sent::Now(now) => {
            let first_seen = again_if_passing(&out.id, || {
                let id = out.id.clone();
                sh.with_store(move |s| s.mark_sent(target, &id, now))
            })
            .await?;
            count_sent(sh, pass.channel(), &first_seen, now);
            Ok(Outcome::Sent)
        }
        Sent::Not(outcome) => Ok(outcome),
    }
}

/// Whether a send went through.
enum Sent {
    /// At this time, and it is still to be recorded as sent.
    Now(i64),
    /// It did not: what became of it, recorded.
    Not(Outcome),
}

/// A message sent, counted.
fn count_sent(sh: &Shared, channel: &Channel, first_seen: &[i64], now: i64) {
    sh.metrics
        .delivered(&channel.name, Delivery::Sent, first_seen, now);
    sh.metrics.progress(Loop::Delivery, now);
}

/// Sends `out` once; records what happened unless it went through (see
/// `attempt`).
async fn send(
    sh: &Shared,
    pass: &Pass<'_>,
    target: Target,
    (attempts, queued): (u32, i64),
    title: &str,
    out: &Outgoing,
) -> Result<Sent> {
    let id = out.id.clone();
    let attempt = attempts + 1;
    let channel = pass.channel();
    let result = pass.send(out, sh.clock.now()).await;
    let now = sh.clock.now();
    let what = match target {
        Target::Alert => "alert",
        Target::Digest => "digest",
        Target::Health => "health",
    };
    match result {
        // The channel's fault, or a server asking the whole channel to
        // wait (a 429 longer than a send waits): the channel pauses, once
        // for all its messages, which wait untouched.
        Err(DeliveryError::Channel(e)) => {
            let fault = pause(sh, channel, target, id, e, now).await?;
            warn!(channel = %channel.name, error = %fault.error, failures = fault.attempts,
                retry_in_s = fault.retry_at - now,
                "the channel cannot send: paused, its messages wait; `veille retry {}` after a fix tries again at once", channel.name);
            Ok(Sent::Not(Outcome::Paused))
        }
        Err(DeliveryError::Busy { message, wait }) => {
            let wait = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
            let fault = pause(sh, channel, target, id, message, now.saturating_add(wait)).await?;
            warn!(channel = %channel.name, error = %fault.error, retry_in_s = fault.retry_at - now,
                "the server asks the channel to wait: paused, its messages wait");
            Ok(Sent::Not(Outcome::Paused))
        }
        Ok(()) => {
            info!(alert_id = %id, channel = %channel.name, attempt, what, title, "delivered");
            Ok(Sent::Now(now))
        }
        Err(e) => {
            let retry_at = match &e {
                DeliveryError::Transient(_) => {
                    next_delivery_attempt(now, queued, attempt, rand::random())
                }
                // (`Channel` and `Busy` paused the channel above.)
                DeliveryError::Permanent(_)
                | DeliveryError::Channel(_)
                | DeliveryError::Busy { .. } => None,
            };
            let outcome = match retry_at {
                Some(at) => {
                    warn!(alert_id = %id, channel = %channel.name, attempt, what, error = %e, retry_in_s = at - now, "delivery failed; will retry");
                    Outcome::Retrying
                }
                None => {
                    warn!(alert_id = %id, channel = %channel.name, attempt, what, error = %e,
                        "delivery failed for good; `veille retry {}` queues it again", channel.name);
                    Outcome::Failed
                }
            };
            let error = e.to_string();
            sh.with_store(move |s| s.mark_attempt_failed(target, &id, &error, retry_at))
                .await?;
            let counted = match outcome {
                Outcome::Retrying => Delivery::Retry,
                _ => Delivery::Failed,
            };
            sh.metrics.delivered(&channel.name, counted, &[], now);
            sh.metrics.progress(Loop::Delivery, now);
            Ok(Sent::Not(outcome))
        }
    }
}

/// Makes `call`, a record of messages already out (`what` names them in
/// the log), and makes it again after each of `RETRY_PAUSES` (inside the
/// lease) while the database gives up for a passing reason, rather than
/// leave the messages to be sent twice.
async fn again_if_passing<T, F, Fut>(what: &str, mut call: F) -> store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = store::Result<T>>,
{
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        match call().await {
            Err(e) if e.is_retry() => {
                let Some(pause) = pauses.next() else {
                    return Err(e);
                };
                debug!(alert_id = %what, error = %format!("{e:#}"), "recording a sent message failed for a passing reason; recording again");
                tokio::time::sleep(*pause).await;
            }
            done => return done,
        }
    }
}

/// Alerts most recorded as sent by one statement.
const MARK_GROUP: usize = 128;

/// What a pass has sent, recorded in groups (`Backend::mark_alerts_sent`):
/// while one group is recorded, the alerts sent meanwhile gather for the
/// next. A channel sends at its own pace rather than one round trip to the
/// database after each message, and each message is recorded as soon as
/// the group before it is.
struct Marks(mpsc::UnboundedSender<(String, i64, Reply)>);

/// Where the record of one sent alert is told.
type Reply = oneshot::Sender<store::Result<()>>;

impl Marks {
    /// The marks of a pass through `channel`, and what records them (and
    /// counts each message recorded), to run beside its sends until the
    /// marks are dropped. A failed record pauses the pass (`paused`): no
    /// new send starts.
    fn new<'a>(
        sh: &'a Shared,
        channel: &'a Channel,
        paused: &'a AtomicBool,
    ) -> (Marks, impl std::future::Future<Output = ()> + 'a) {
        let (queue, mut sent) = mpsc::unbounded_channel::<(String, i64, Reply)>();
        let recording = async move {
            while let Some(first) = sent.recv().await {
                let mut group = vec![first];
                while group.len() < MARK_GROUP {
                    match sent.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                // One statement per time sent (seconds: nearly always one).
                for (now, group) in by_time(group) {
                    let ids: Vec<String> = group.iter().map(|(id, _)| id.clone()).collect();
                    let marked = again_if_passing(&ids.join(" "), || {
                        let ids = ids.clone();
                        sh.with_store(move |s| {
                            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                            s.mark_alerts_sent(&ids, now)
                        })
                    })
                    .await;
                    match marked {
                        Ok(first_seen) => {
                            for ((_, reply), first_seen) in group.into_iter().zip(first_seen) {
                                count_sent(sh, channel, &first_seen, now);
                                let _ = reply.send(Ok(()));
                            }
                        }
                        Err(e) => {
                            paused.store(true, Ordering::Relaxed);
                            let (kind, message) = (e.kind(), format!("{e:#}"));
                            for (_, reply) in group {
                                let _ =
                                    reply.send(Err(store::Error::new(kind, anyhow!("{message}"))));
                            }
                        }
                    }
                }
            }
        };
        (Marks(queue), recording)
    }

    /// `id`, sent at `now`, to record; the record's outcome, to come.
    fn add(&self, id: String, now: i64) -> oneshot::Receiver<store::Result<()>> {
        let (reply, outcome) = oneshot::channel();
        // The recorder runs until every `Marks` is dropped: it takes this.
        let _ = self.0.send((id, now, reply));
        outcome
    }
}

/// The marks of `group` in runs of one time sent, in order.
fn by_time(group: Vec<(String, i64, Reply)>) -> Vec<(i64, Vec<(String, Reply)>)> {
    let mut runs: Vec<(i64, Vec<(String, Reply)>)> = Vec::new();
    for (id, now, reply) in group {
        match runs.last_mut() {
            Some((at, run)) if *at == now => run.push((id, reply)),
            _ => runs.push((now, vec![(id, reply)])),
        }
    }
    runs
}

fn marks_stopped() -> store::Error {
    store::Error::new(
        store::Kind::Broken,
        anyhow!("the record of sent messages stopped"),
    )
}

/// Pauses `channel` (not before `not_before`) and gives `id` back to the
/// queue, untried; the pause.
async fn pause(
    sh: &Shared,
    channel: &Channel,
    target: Target,
    id: String,
    error: String,
    not_before: i64,
) -> Result<crate::store::ChannelFault> {
    let name = channel.name.clone();
    let now = sh.clock.now();
    let fault = sh
        .with_store(move |s| {
            let fault = s.pause_channel(&name, &error, now, rand::random(), not_before)?;
            s.release(target, &[id])?;
            Ok(fault)
        })
        .await?;
    sh.metrics
        .delivered(&channel.name, Delivery::Retry, &[], now);
    sh.metrics.progress(Loop::Delivery, now);
    Ok(fault)
}

/// Digest channels whose cron tick has passed since the last one get their
/// digest made now (one, however many ticks were missed while stopped);
/// then every frozen digest that is due is sent.
pub async fn digests_due_once(sh: &Shared, now: i64) -> Result<DeliveryReport> {
    let zone = sh.config.daemon.timezone;
    let mut names = Vec::new();
    for channel in sh.config.channels.iter() {
        let Some(cron) = &channel.digest else {
            continue;
        };
        names.push(channel.name.clone());
        let name = channel.name.clone();
        let last = sh.with_store(move |s| s.last_tick(&name)).await?;
        let Some(last) = last else {
            // First time this channel is seen: its first digest is at its
            // next tick, holding everything pending by then.
            let name = channel.name.clone();
            sh.with_store(move |s| s.take_tick(&name, None, now))
                .await?;
            continue;
        };
        let due = chrono::DateTime::from_timestamp(last, 0)
            .and_then(|last| cron.next_after(last, zone))
            .is_some_and(|tick| tick.timestamp() <= now);
        if due {
            freeze(sh, &channel.name, now, Some(last)).await?;
        }
    }
    send_digests(sh, now, &names, false).await
}

/// Sends the digests already made whose next attempt has come, without
/// making new ones (`run --once`: a digest that failed is retried by the
/// next run even when no tick falls in it).
pub async fn retry_digests_once(sh: &Shared, now: i64) -> Result<DeliveryReport> {
    let names: Vec<String> = sh
        .config
        .channels
        .iter()
        .filter(|c| c.digest.is_some())
        .map(|c| c.name.clone())
        .collect();
    send_digests(sh, now, &names, false).await
}

/// Makes a digest of `channel` now, whatever its schedule, and sends every
/// pending digest of it (`veille digest`, `run --once --flush-digests`).
/// `None` when there was nothing to send.
pub async fn flush_digest(sh: &Shared, channel: &str, now: i64) -> Result<Option<DeliveryReport>> {
    freeze(sh, channel, now, None).await?;
    let report = send_digests(sh, now, &[channel.to_owned()], true).await?;
    Ok((report != DeliveryReport::default()).then_some(report))
}

/// What a digest of `channel` made now would say, without making it.
pub async fn preview_digest(sh: &Shared, channel: &str, now: i64) -> Result<Option<Rendered>> {
    let config = sh.config.clone();
    let channel = channel.to_owned();
    Ok(sh
        .with_store(move |s| {
            let members = s.digest_members(&channel, now)?;
            log_damaged(&members.damaged);
            if members.alerts.is_empty() && members.health.is_empty() {
                return Ok(None);
            }
            Ok(Some(
                frozen_digest(&config, s, &channel, "preview", &members, now)?.mail,
            ))
        })
        .await?)
}

/// Freezes the pending alerts of `channel` into a digest, with the message
/// rendered once: every retry sends these very bytes under the same id.
/// With `tick_from`, this is the digest of the tick after that one: the
/// channel's last tick moves from it to `now` in the same transaction, and
/// a process that finds it moved already leaves the tick to the one that
/// moved it (SPEC §10: each tick once).
async fn freeze(sh: &Shared, channel: &str, now: i64, tick_from: Option<i64>) -> Result<()> {
    let config = sh.config.clone();
    let channel = channel.to_owned();
    Ok(sh.with_store(move |s| {
        let members = s.digest_members(&channel, now)?;
        log_damaged(&members.damaged);
        if !members.alerts.is_empty() || !members.health.is_empty() {
            let ids: Vec<String> = members.alerts.iter().map(|m| m.id.clone()).collect();
            let health: Vec<String> = members.health.iter().map(|m| m.id.clone()).collect();
            let id = crate::store::new_id();
            let out = frozen_digest(&config, s, &channel, &id, &members, now)?;
            let body = stored::encode(stored::DIGEST_BODY, &out)?;
            if s.create_digest(&channel, &id, &ids, &health, &body, now, tick_from)? {
                info!(channel = %channel, alert_id = %id, stories = ids.len(), health = health.len(), "digest made");
            } else {
                info!(channel = %channel, "another process made this digest at the same time; its alerts are in that one");
            }
        } else if let Some(from) = tick_from {
            s.take_tick(&channel, Some(from), now)?;
        }
        Ok(())
    })
    .await?)
}

/// A digest of `claimed`, rendered for both media (`FrozenDigest`).
fn frozen_digest(
    config: &Config,
    s: &Store,
    channel: &str,
    id: &str,
    claimed: &Claimed,
    now: i64,
) -> Result<FrozenDigest> {
    let members = &claimed.alerts;
    let notices: Vec<Notice> = claimed.health.iter().map(|h| h.notice.clone()).collect();
    let zone = config.daemon.timezone;
    let feeds: Vec<&str> = config.feeds.iter().map(|f| f.name.as_str()).collect();
    let failing = s.failing_feeds(&feeds, now - FAILING_FOR)?;
    let views: Vec<StoryView> = members
        .iter()
        .map(|a| StoryView {
            rules: &a.rules,
            hits: &a.hits,
            item: &a.item,
            outlets: &a.outlets,
            zone,
        })
        .collect();
    let mail = render::digest(&DigestView {
        channel,
        stories: &views,
        failing: &failing,
        health: &notices,
        zone,
    });
    let stories = members
        .iter()
        .zip(&views)
        .map(|(a, v)| hook::story(&a.id, v))
        .collect();
    Ok(FrozenDigest {
        id: id.to_owned(),
        date: now,
        mail,
        hook: Hook::Digest(DigestJson {
            id: id.to_owned(),
            channel: channel.to_owned(),
            stories,
            health: claimed
                .health
                .iter()
                .map(|h| hook::health(&h.id, &h.notice, zone))
                .collect(),
        }),
    })
}

async fn send_digests(
    sh: &Shared,
    now: i64,
    channels: &[String],
    any_time: bool,
) -> Result<DeliveryReport> {
    let mut names = channels.to_vec();
    if !any_time {
        let paused = paused_channels(sh, now).await?;
        names.retain(|n| !paused.contains(n));
    }
    let until = sh.clock.now() + lease(sh);
    let due = sh
        .with_store(move |s| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            s.claim_digests(now, until, &names, any_time)
        })
        .await?;
    let mut report = DeliveryReport::default();
    let mut paused = BTreeSet::new();
    let mut left: Vec<String> = Vec::new();
    for d in due {
        let channel = sh.config.channel(&d.channel);
        let (Some(channel), false) = (channel, paused.contains(&d.channel) || stopping(sh)) else {
            left.push(d.id);
            continue;
        };
        match send_digest(sh, channel, &d, until).await? {
            Some(outcome) if outcome.stops_channel() => {
                report.add(outcome);
                paused.insert(d.channel);
            }
            Some(outcome) => report.add(outcome),
            None => {}
        }
    }
    if !left.is_empty() {
        sh.with_store(move |s| s.release(Target::Digest, &left))
            .await?;
    }
    Ok(report)
}

/// Sends a frozen digest, leased until `until`, as frozen. A body that
/// cannot be read back is marked failed (`Failed`). `None`: another process
/// holds it now.
async fn send_digest(
    sh: &Shared,
    channel: &Channel,
    d: &DueDigest,
    until: i64,
) -> Result<Option<Outcome>> {
    if !still_ours(sh, Target::Digest, &d.id, until).await? {
        return Ok(None);
    }
    let frozen: FrozenDigest = match stored::decode(stored::DIGEST_BODY, &d.body) {
        Ok(frozen) => frozen,
        Err(e) => {
            let (id, reason) = (d.id.clone(), format!("{e:#}"));
            warn!(alert_id = %id, channel = %d.channel, reason = %reason,
                "a digest cannot be read back; marked failed, the others go on");
            sh.with_store(move |s| s.mark_damaged(Target::Digest, &id, &reason))
                .await?;
            return Ok(Some(Outcome::Failed));
        }
    };
    let subject = frozen.mail.subject.clone();
    let out = frozen.outgoing(channel.kind.medium());
    let pass = sh.sender.pass(channel);
    let outcome = attempt(
        sh,
        &pass,
        Target::Digest,
        (d.attempts, d.queued),
        &subject,
        &out,
    )
    .await;
    pass.close().await;
    outcome.map(Some)
}

#[cfg(test)]
mod tests {
    //! Digest ticks with the clock passed in: a real config file, a real
    //! database file and a real Maildir.

    use std::path::Path;

    use super::*;
    use crate::config::{self, Env};
    use crate::domain::model::Item;
    use crate::store::{AlertDraft, FetchRecord, ItemRecord, PollRecord, StoredHit};

    /// A digest pass at the UTC time `at`, the clock standing there too.
    async fn tick(sh: &Shared, at: &str) -> DeliveryReport {
        sh.clock.set(utc(at));
        digests_due_once(sh, utc(at)).await.unwrap()
    }

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn setup(dir: &Path) -> Shared {
        crate::fetch::install_crypto();
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            "[daemon]\ndatabase = \"v.db\"\ntimezone = \"Europe/Paris\"\n\n\
             [[feed]]\nname = \"AFP\"\nurl = \"feed.xml\"\n\n\
             [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"matin\"]\n\n\
             [channel.matin]\nkind = \"maildir\"\npath = \"mail\"\ndigest = \"0 8 * * *\"\n",
        )
        .unwrap();
        let config = config::load(&path, &Env::default()).unwrap();
        let mut store = Store::open(&config.daemon.database).unwrap();
        store
            .sync_feeds(&[("AFP".into(), "feed.xml".into())])
            .unwrap();
        Shared::new(config, store, crate::clock::Clock::manual(0)).unwrap()
    }

    /// Stories `keys` recorded at `now`, each alerting channel `matin`.
    async fn stories(sh: &Shared, now: i64, keys: &[&str]) {
        let items = keys
            .iter()
            .map(|k| ItemRecord {
                key: (*k).into(),
                is_new: true,
                wire: None,
                kept: None,
                story_link: Some(format!("https://x.fr/{k}")),
                content_hash: format!("h-{k}"),
                item: Item {
                    title: format!("Les puces {k}"),
                    link: Some(format!("https://x.fr/{k}")),
                    ..Item::default()
                },
                alerts: vec![AlertDraft {
                    channel: "matin".into(),
                    rules: vec!["puces".into()],
                    hits: vec![StoredHit {
                        rule: "puces".into(),
                        field: "title".into(),
                        term: "puces".into(),
                        start: 4,
                        end: 9,
                    }],
                    due: now,
                }],
                quiet: false,
            })
            .collect();
        let poll = PollRecord {
            feed_id: crate::domain::ids::FeedId(1),
            now,
            fetch: FetchRecord::NotModified,
            redirect_url: None,
            next_poll: now + 900,
            wire_window: 0,
            wire_keep: 0,
            lease: None,
            items,
            keep_text: false,
            pages: Default::default(),
        };
        let recorded = sh
            .with_store(move |s| s.record_polls(&[poll]))
            .await
            .unwrap();
        assert!(recorded[0].is_ok());
    }

    fn mails(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(dir.join("mail/new")) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<u8>)> = entries
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn header(raw: &[u8], name: &str) -> String {
        let m = mailparse::parse_mail(raw).unwrap();
        m.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    }

    fn text(raw: &[u8]) -> String {
        let m = mailparse::parse_mail(raw).unwrap();
        m.subparts[0].get_body().unwrap()
    }

    #[tokio::test]
    async fn a_digest_goes_out_at_its_tick_in_the_zone_once_and_not_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let sh = setup(dir.path());
        // 07:00 in Paris: the channel is seen for the first time.
        tick(&sh, "2026-11-24T06:00:00Z").await;
        stories(&sh, utc("2026-11-24T06:01:00Z"), &["a", "b", "c"]).await;
        // 07:59:30 in Paris: not yet.
        let r = tick(&sh, "2026-11-24T06:59:30Z").await;
        assert_eq!(r, DeliveryReport::default());
        assert!(mails(dir.path()).is_empty());
        // 08:00:05 in Paris (07:00:05 UTC): one digest with the three.
        let r = tick(&sh, "2026-11-24T07:00:05Z").await;
        assert_eq!(r.sent, 1);
        let got = mails(dir.path());
        assert_eq!(got.len(), 1);
        assert!(
            header(&got[0].1, "Subject").starts_with("[veille] matin: 3 articles"),
            "{}",
            header(&got[0].1, "Subject")
        );
        let body = text(&got[0].1);
        for k in ["Les puces a", "Les puces b", "Les puces c"] {
            assert!(body.contains(k), "{body}");
        }
        // Later the same morning: the tick is done, nothing more.
        let r = tick(&sh, "2026-11-24T07:00:10Z").await;
        assert_eq!(r, DeliveryReport::default());
        // The next morning, nothing pending: no message.
        let r = tick(&sh, "2026-11-25T07:00:05Z").await;
        assert_eq!(r, DeliveryReport::default());
        assert_eq!(mails(dir.path()).len(), 1);
        let status = sh.with_store(|s| s.status()).await.unwrap();
        assert_eq!(
            (status.channels[0].sent, status.channels[0].pending),
            (3, 0)
        );
    }

    #[tokio::test]
    async fn after_downtime_spanning_ticks_one_digest_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let sh = setup(dir.path());
        tick(&sh, "2026-11-20T06:00:00Z").await;
        stories(&sh, utc("2026-11-20T06:30:00Z"), &["a"]).await;
        stories(&sh, utc("2026-11-22T12:00:00Z"), &["b"]).await;
        // The feed has failed since the 21st: the digest ends naming it.
        let failed = PollRecord {
            feed_id: crate::domain::ids::FeedId(1),
            now: utc("2026-11-21T09:00:00Z"),
            fetch: FetchRecord::Failed(crate::domain::poll::FetchFailure {
                status: Some(500),
                error: "HTTP 500".into(),
                gone: false,
                retry_after_until: None,
            }),
            redirect_url: None,
            next_poll: utc("2026-11-21T10:00:00Z"),
            lease: None,
            wire_window: 0,
            wire_keep: 0,
            items: Vec::new(),
            keep_text: false,
            pages: Default::default(),
        };
        let recorded = sh.with_store(move |s| s.record_polls(&[failed])).await;
        recorded.unwrap().remove(0).unwrap();
        // Stopped from the 20th to the 24th: four ticks missed.
        let r = tick(&sh, "2026-11-24T10:00:00Z").await;
        assert_eq!(r.sent, 1);
        let got = mails(dir.path());
        assert_eq!(got.len(), 1);
        let body = text(&got[0].1).replace("\r\n", "\n");
        assert!(
            body.contains("Les puces a") && body.contains("Les puces b"),
            "{body}"
        );
        assert!(
            body.contains(
                "- AFP : en échec depuis le samedi 21 novembre 2026 à 10 h 00 : HTTP 500"
            ),
            "{body}"
        );
        let r = tick(&sh, "2026-11-24T10:00:05Z").await;
        assert_eq!(r, DeliveryReport::default());
    }

    #[tokio::test]
    async fn a_failed_digest_is_resent_unchanged_under_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let sh = setup(dir.path());
        tick(&sh, "2026-11-24T06:00:00Z").await;
        stories(&sh, utc("2026-11-24T06:10:00Z"), &["a", "b"]).await;
        // The Maildir cannot be written: a file stands where it should be.
        std::fs::write(dir.path().join("mail"), "not a folder").unwrap();
        let r = tick(&sh, "2026-11-24T07:00:05Z").await;
        assert_eq!(r.retrying, 1);
        // The digest as frozen, read by taking it a moment, then let go.
        let (id, body) = sh
            .with_store(|s| {
                let due = s.claim_digests(i64::MAX - 1, i64::MAX, &["matin"], true)?;
                let ids: Vec<String> = due.iter().map(|d| d.id.clone()).collect();
                s.release(Target::Digest, &ids)?;
                Ok((due[0].id.clone(), due[0].body.clone()))
            })
            .await
            .unwrap();
        // A story arriving meanwhile waits for the next digest.
        stories(&sh, utc("2026-11-24T07:05:00Z"), &["late"]).await;
        std::fs::remove_file(dir.path().join("mail")).unwrap();
        // Ten minutes on, the retry is due (the first one waits at most 30 s).
        let r = tick(&sh, "2026-11-24T07:10:00Z").await;
        assert_eq!(r.sent, 1);
        let got = mails(dir.path());
        assert_eq!(got.len(), 1);
        assert_eq!(header(&got[0].1, "Message-ID"), format!("<{id}@localhost>"));
        let frozen: FrozenDigest = stored::decode(stored::DIGEST_BODY, &body).unwrap();
        assert_eq!(
            text(&got[0].1).replace("\r\n", "\n").trim_end(),
            frozen.mail.text.trim_end()
        );
        assert!(!text(&got[0].1).contains("late"));
        let pending = sh
            .with_store(|s| s.digest_members("matin", i64::MAX))
            .await
            .unwrap();
        assert_eq!(
            pending.alerts.len(),
            1,
            "the late story waits for the next tick"
        );
    }
}

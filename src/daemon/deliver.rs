//! Delivery: read due alerts from the outbox, send each through its channel,
//! record the outcome. An alert is marked sent only after its channel took it.

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use tracing::{info, warn};

use super::Shared;
use crate::config::{Channel, ChannelKind};
use crate::deliver::{self, DEFAULT_FROM, DeliveryError, maildir};
use crate::domain::render::{self, StoryView};
use crate::domain::schedule::next_delivery_attempt;
use crate::store::DueAlert;

/// Alerts read from the outbox at once.
const BATCH: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Delivers every due alert of the channels that send one message per story
/// (digest channels wait for their tick). With `ignore_hold`, alerts still
/// inside their hold are due too (`run --once`).
pub async fn deliver_due_once(sh: &Shared, now: i64, ignore_hold: bool) -> Result<DeliveryReport> {
    let immediate: Vec<String> = sh
        .config
        .channels
        .iter()
        .filter(|c| c.digest.is_none() && supported(c))
        .map(|c| c.name.clone())
        .collect();
    let mut report = DeliveryReport::default();
    let mut tried = BTreeSet::new();
    loop {
        let names = immediate.clone();
        let batch = sh
            .with_store(move |s| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                s.due_alerts(now, &names, ignore_hold, BATCH)
            })
            .await?;
        let fresh: Vec<DueAlert> = batch
            .into_iter()
            .filter(|a| tried.insert(a.id.clone()))
            .collect();
        if fresh.is_empty() {
            return Ok(report);
        }
        for alert in fresh {
            let channel = sh
                .config
                .channel(&alert.channel)
                .expect("filtered on configured channels")
                .clone();
            deliver_one(sh, &channel, alert, &mut report).await?;
        }
    }
}

/// Channel kinds this build delivers to.
fn supported(c: &Channel) -> bool {
    matches!(c.kind, ChannelKind::Maildir { .. })
}

/// Says once, at start, which channels keep their alerts pending.
pub fn warn_unsupported(sh: &Shared) {
    for c in sh
        .config
        .channels
        .iter()
        .filter(|c| !supported(c) || c.digest.is_some())
    {
        warn!(channel = %c.name, kind = c.kind.name(), digest = c.digest.is_some(),
            "this build does not deliver to this channel yet; its alerts stay pending in the outbox");
    }
}

async fn deliver_one(
    sh: &Shared,
    channel: &Channel,
    alert: DueAlert,
    report: &mut DeliveryReport,
) -> Result<()> {
    let id = alert.id.clone();
    let attempt = alert.attempts + 1;
    let outcome = send(sh, channel, &alert).await;
    let now = super::unix_now();
    match outcome {
        Ok(()) => {
            info!(alert_id = %id, channel = %channel.name, attempt, "delivered");
            report.sent += 1;
            sh.with_store(move |s| s.mark_sent(&id, now)).await
        }
        Err(e) => {
            let retry_at = match &e {
                DeliveryError::Transient(_) => {
                    next_delivery_attempt(now, alert.created, attempt, rand::random())
                }
                DeliveryError::Permanent(_) => None,
            };
            match retry_at {
                Some(at) => {
                    warn!(alert_id = %id, channel = %channel.name, attempt, error = %e, retry_in_s = at - now, "delivery failed; will retry");
                    report.retrying += 1;
                }
                None => {
                    warn!(alert_id = %id, channel = %channel.name, attempt, error = %e, "delivery failed for good; `veille retry` queues it again");
                    report.failed += 1;
                }
            }
            let error = e.to_string();
            sh.with_store(move |s| s.mark_attempt_failed(&id, &error, retry_at))
                .await
        }
    }
}

async fn send(sh: &Shared, channel: &Channel, alert: &DueAlert) -> Result<(), DeliveryError> {
    let rendered = render::story(&StoryView {
        rules: &alert.rules,
        hits: &alert.hits,
        item: &alert.item,
        feeds: &alert.feeds,
        zone: sh.config.daemon.timezone,
    });
    match &channel.kind {
        ChannelKind::Maildir { path } => {
            let from = sh
                .config
                .smtp
                .as_ref()
                .map_or(DEFAULT_FROM, |s| s.from.as_str());
            let date = UNIX_EPOCH + Duration::from_secs(alert.created.max(0) as u64);
            let message = deliver::build_message(&alert.id, from, &[], &rendered, date)?;
            let (path, id, created) = (path.clone(), alert.id.clone(), alert.created);
            tokio::task::spawn_blocking(move || maildir::deliver(&path, &id, created, &message))
                .await
                .map_err(|e| DeliveryError::Transient(format!("delivery task failed: {e}")))?
                .map(|_| ())
        }
        other => Err(DeliveryError::Transient(format!(
            "{} delivery is not available in this build",
            other.name()
        ))),
    }
}

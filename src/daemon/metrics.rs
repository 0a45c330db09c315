//! What `/metrics` reports (SPEC §9) and what `/healthz` judges: counters
//! kept by the units of work as they go, gauges read from the database at
//! each scrape, and each loop's last sign of progress.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::PollOutcome;

/// Alert latency buckets, in seconds: from a message sent within seconds
/// of the poll to a digest sent the next morning.
const LATENCY_BUCKETS: [f64; 14] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0,
    86400.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The two loops `/healthz` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    Poll,
    Delivery,
}

/// What a delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Retry,
    Failed,
}

/// The process's metrics. Counters start at zero when veille starts, as
/// Prometheus expects; they survive a reload.
pub struct Metrics {
    registry: Registry,
    fetches: Family<ResultLabel, Counter>,
    pages: Family<ResultLabel, Counter>,
    items: Counter,
    alerts: Family<ChannelLabel, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    latency: Family<ChannelLabel, Histogram, fn() -> Histogram>,
    feeds: Family<StateLabel, Gauge>,
    pending: Family<ChannelLabel, Gauge>,
    /// Scrapes set the gauges and encode: one at a time.
    scrape: Mutex<()>,
    poll_progress: AtomicI64,
    delivery_progress: AtomicI64,
}

/// A feed's state as `veille_feeds` counts it.
pub const FEED_STATES: [&str; 4] = ["ok", "failing", "gone", "silent"];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// Fresh metrics; both loops count as having made progress at `now`.
    pub fn new(now: i64) -> Metrics {
        let mut registry = Registry::default();
        let fetches = Family::default();
        registry.register(
            "veille_fetches",
            "Feed fetches by result (ok, not_modified, error)",
            fetches.clone(),
        );
        let pages = Family::default();
        registry.register(
            "veille_pages",
            "Article pages fetched for full text, by result (ok, failed, skipped)",
            pages.clone(),
        );
        let items = Counter::default();
        registry.register("veille_items", "New items stored", items.clone());
        let alerts = Family::default();
        registry.register(
            "veille_alerts",
            "Alerts queued, by channel (one per story and channel)",
            alerts.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "veille_deliveries",
            "Delivery attempts by channel and result (sent, retry, failed)",
            deliveries.clone(),
        );
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "veille_alert_latency_seconds",
            "From an item's first sight to its alert's successful send, by channel",
            latency.clone(),
        );
        let feeds = Family::default();
        registry.register(
            "veille_feeds",
            "Configured feeds by state (ok, failing, gone, silent)",
            feeds.clone(),
        );
        let pending = Family::default();
        registry.register(
            "veille_outbox_pending",
            "Alerts and feed-health alerts waiting to be sent, by channel",
            pending.clone(),
        );
        Metrics {
            registry,
            fetches,
            pages,
            items,
            alerts,
            deliveries,
            latency,
            feeds,
            pending,
            scrape: Mutex::new(()),
            poll_progress: AtomicI64::new(now),
            delivery_progress: AtomicI64::new(now),
        }
    }

    /// Counts one poll once it is recorded (or failed).
    pub fn polled(&self, outcome: &PollOutcome) {
        let result = match outcome {
            PollOutcome::NotModified => "not_modified",
            PollOutcome::Fetched { summary, .. } => {
                self.items.inc_by(summary.new_items as u64);
                for channel in &summary.alerted {
                    self.alerts
                        .get_or_create(&ChannelLabel {
                            channel: channel.clone(),
                        })
                        .inc();
                }
                "ok"
            }
            PollOutcome::Failed { .. } => "error",
        };
        self.fetches.get_or_create(&ResultLabel { result }).inc();
    }

    /// Counts the pages a poll fetched for full text.
    pub fn pages(&self, tally: &crate::domain::poll::PageTally) {
        for (result, n) in [
            ("ok", tally.ok),
            ("failed", tally.failed),
            ("skipped", tally.skipped),
        ] {
            if n > 0 {
                self.pages
                    .get_or_create(&ResultLabel { result })
                    .inc_by(n.into());
            }
        }
    }

    /// Counts one delivery attempt on `channel`; `first_seen` holds, for a
    /// successful send, the first sight of each item it delivered.
    pub fn delivered(&self, channel: &str, outcome: Delivery, first_seen: &[i64], now: i64) {
        let result = match outcome {
            Delivery::Sent => "sent",
            Delivery::Retry => "retry",
            Delivery::Failed => "failed",
        };
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                result,
            })
            .inc();
        if first_seen.is_empty() {
            return;
        }
        let histogram = self.latency.get_or_create(&ChannelLabel {
            channel: channel.to_owned(),
        });
        for &seen in first_seen {
            histogram.observe((now - seen).max(0) as f64);
        }
    }

    /// The loop did something at `now` (a pass ended, a feed was polled, an
    /// attempt was made).
    pub fn progress(&self, which: Loop, now: i64) {
        self.cell(which).fetch_max(now, Ordering::Relaxed);
    }

    /// When the loop last made progress.
    pub fn last_progress(&self, which: Loop) -> i64 {
        self.cell(which).load(Ordering::Relaxed)
    }

    fn cell(&self, which: Loop) -> &AtomicI64 {
        match which {
            Loop::Poll => &self.poll_progress,
            Loop::Delivery => &self.delivery_progress,
        }
    }

    /// The exposition, with the gauges set from what the database holds
    /// now: feeds per state (every state named, zero included) and pending
    /// alerts per channel. Every channel of `pending` and every result is
    /// named, at zero until counted, so that a rate over them is defined
    /// from the first scrape.
    pub fn encode(&self, feeds: &[(&'static str, i64)], pending: &[(String, i64)]) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        for result in ["ok", "not_modified", "error"] {
            drop(self.fetches.get_or_create(&ResultLabel { result }));
        }
        for (channel, _) in pending {
            let label = ChannelLabel {
                channel: channel.clone(),
            };
            drop(self.alerts.get_or_create(&label));
            drop(self.latency.get_or_create(&label));
            for result in ["sent", "retry", "failed"] {
                drop(self.deliveries.get_or_create(&DeliveryLabels {
                    channel: channel.clone(),
                    result,
                }));
            }
        }
        self.feeds.clear();
        for &(state, n) in feeds {
            self.feeds.get_or_create(&StateLabel { state }).set(n);
        }
        self.pending.clear();
        for (channel, n) in pending {
            self.pending
                .get_or_create(&ChannelLabel {
                    channel: channel.clone(),
                })
                .set(*n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .expect("writing to a String");
        classic_counters(&out)
    }
}

/// prometheus-client writes OpenMetrics, where a counter's family is named
/// without the `_total` its samples carry. The classic Prometheus text
/// format (`text/plain; version=0.0.4`, which SPEC §9 names and most
/// parsers read) names the family as the samples are. This renames the
/// counters' `# HELP` and `# TYPE` lines; samples are the same in both.
/// Written here because the crate has no classic-format encoder.
fn classic_counters(open: &str) -> String {
    let counters: Vec<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len() + 16 * counters.len());
    for line in open.lines() {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecordSummary;

    #[test]
    fn counters_are_named_as_their_samples_and_gauges_name_every_state() {
        let m = Metrics::new(0);
        m.polled(&PollOutcome::Fetched {
            summary: RecordSummary {
                new_items: 3,
                changed_items: 1,
                alerts: 2,
                alerted: vec!["moi".into(), "equipe".into()],
            },
            dropped_items: 0,
            unread_items: 0,
        });
        m.polled(&PollOutcome::NotModified);
        m.polled(&PollOutcome::Failed { error: "x".into() });
        m.delivered("moi", Delivery::Sent, &[100, 40], 160);
        m.delivered("moi", Delivery::Retry, &[], 160);
        let feeds: Vec<(&str, i64)> = FEED_STATES.iter().map(|&s| (s, 0)).collect();
        let text = m.encode(&feeds, &[("moi".into(), 4)]);
        for line in [
            "# TYPE veille_fetches_total counter",
            "veille_fetches_total{result=\"ok\"} 1",
            "veille_fetches_total{result=\"error\"} 1",
            "# TYPE veille_items_total counter",
            "veille_items_total 3",
            "veille_alerts_total{channel=\"equipe\"} 1",
            "veille_deliveries_total{channel=\"moi\",result=\"retry\"} 1",
            "veille_deliveries_total{channel=\"moi\",result=\"failed\"} 0",
            "veille_fetches_total{result=\"not_modified\"} 1",
            "veille_alert_latency_seconds_bucket{le=\"60.0\",channel=\"moi\"} 1",
            "veille_alert_latency_seconds_bucket{le=\"120.0\",channel=\"moi\"} 2",
            "veille_alert_latency_seconds_sum{channel=\"moi\"} 180.0",
            "# TYPE veille_feeds gauge",
            "veille_feeds{state=\"silent\"} 0",
            "veille_outbox_pending{channel=\"moi\"} 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn progress_only_moves_forward() {
        let m = Metrics::new(10);
        m.progress(Loop::Poll, 50);
        m.progress(Loop::Poll, 30);
        assert_eq!(m.last_progress(Loop::Poll), 50);
        assert_eq!(m.last_progress(Loop::Delivery), 10);
    }
}

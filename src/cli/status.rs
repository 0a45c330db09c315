//! `veille status [--json]`: feeds, channels and late copies, from the
//! database, while the daemon runs or not.

use std::fmt::Write;

use super::{CliError, when};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::health::{self, Assessment, State};
use crate::domain::render;
use crate::store::{FeedStatus, Status, Store};

pub fn run(config: &Config, json: bool, clock: &Clock) -> Result<String, CliError> {
    let store = Store::open_existing(&config.daemon.database)?;
    let mut status = store.status()?;
    let now = clock.now();
    judge_health(config, &store, &mut status, now)?;
    if json {
        return Ok(serde_json::to_string_pretty(&status).map_err(anyhow::Error::from)? + "\n");
    }
    Ok(render(config, &status, now))
}

/// Each configured feed's health at `now`, by `[health]` or its defaults.
fn judge_health(config: &Config, store: &Store, st: &mut Status, now: i64) -> anyhow::Result<()> {
    let names: Vec<&str> = config.feeds.iter().map(|f| f.name.as_str()).collect();
    let policy = config.health_policy();
    for h in store.feed_health(&names)? {
        if let Some(f) = st.feeds.iter_mut().find(|f| f.name == h.name) {
            f.health = Some(health::assess(&h.facts, policy, now));
        }
    }
    Ok(())
}

/// The health line of a feed: its state and its usual gap.
fn health_line(config: &Config, a: &Assessment) -> String {
    let state = match a.state {
        State::Ok => "ok".to_owned(),
        State::Failing { since } => format!("failing since {}", when(config, Some(since))),
        State::Gone { since } => format!("gone since {}", when(config, Some(since))),
        State::Silent { since } => {
            format!("silent since {} (no new item)", when(config, Some(since)))
        }
    };
    let gap = match (a.usual_gap, a.silent_after) {
        (Some(g), Some(after)) => format!(
            "usual gap {} (silent after {})",
            render::span(g),
            render::span(after)
        ),
        _ => format!(
            "usual gap not learnt yet (after {} new items)",
            health::LEARN_AFTER
        ),
    };
    format!("health {state}  {gap}")
}

/// A time something is due at: "due now" once it has passed (a stopped
/// daemon, or one that has not got to it yet), never a time in the past.
fn due(config: &Config, at: Option<i64>, now: i64) -> String {
    match at {
        Some(t) if t <= now => "due now".to_owned(),
        _ => when(config, at),
    }
}

fn render(config: &Config, st: &Status, now: i64) -> String {
    let mut s = String::new();
    let configured = |name: &str| config.feeds.iter().any(|f| f.name == name);
    let _ = writeln!(s, "Feeds:");
    for f in st.feeds.iter().filter(|f| configured(&f.name)) {
        feed_lines(&mut s, config, f, now);
    }
    let _ = writeln!(s, "\nChannels:");
    let mut names: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
    for c in &st.channels {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    for name in names {
        channel_lines(&mut s, config, st, name, now);
    }
    let _ = writeln!(
        s,
        "\nDatabase: {} items kept, {} keys kept of pruned items (retention {})",
        st.retained.items,
        st.retained.pruned_keys,
        super::readable(config.daemon.retention)
    );
    processes(&mut s, config, st, now);
    if !st.late_copies.is_empty() {
        let _ = writeln!(s, "\nStories that gained copies after their alert:");
        for l in &st.late_copies {
            let _ = writeln!(
                s,
                "  {}: {} outlets, {} after the alert",
                l.title, l.feeds, l.after_alert
            );
        }
    }
    s
}

/// The daemons on the database, when any runs (SPEC §10), and a warning
/// when their configs differ.
fn processes(s: &mut String, config: &Config, st: &Status, now: i64) {
    if st.processes.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nProcesses:");
    for p in &st.processes {
        let _ = writeln!(
            s,
            "  {} pid {}  veille {}  config {}  last heard {}  feeds held {}{}",
            p.host,
            p.pid,
            p.version,
            p.config_digest,
            when(config, Some(p.heartbeat)),
            p.feeds_held,
            if p.leads && now - p.heartbeat <= 60 {
                "  (runs the health review and pruning)"
            } else {
                ""
            }
        );
        // A daemon says it lives every 5 s: a minute of silence is one
        // that was killed, hangs or lost the database.
        if now - p.heartbeat > 60 {
            let _ = writeln!(
                s,
                "    not heard from for {}: stopped without saying so, hung, or cut off",
                render::span(now - p.heartbeat)
            );
        }
    }
    let mut digests: Vec<&str> = st
        .processes
        .iter()
        .map(|p| p.config_digest.as_str())
        .collect();
    digests.sort_unstable();
    digests.dedup();
    if digests.len() > 1 {
        let _ = writeln!(
            s,
            "  warning: the processes run {} different configs; each polls only the feeds its own has",
            digests.len()
        );
    }
}

/// One feed's lines.
fn feed_lines(s: &mut String, config: &Config, f: &FeedStatus, now: i64) {
    let http = f.last_status.map_or("-".to_owned(), |c| c.to_string());
    let _ = writeln!(s, "  {}", f.name);
    let _ = writeln!(
        s,
        "    last fetch {}  status {http}  items {}  errors in a row {}  next poll {}",
        when(config, f.last_fetch),
        f.items,
        f.consecutive_failures,
        if f.gone {
            "never (410 Gone: change the url)".to_owned()
        } else {
            due(config, f.next_poll, now)
        }
    );
    if let Some(a) = &f.health {
        let _ = writeln!(s, "    {}", health_line(config, a));
    }
    if let Some(e) = &f.last_error {
        let _ = writeln!(s, "    error: {e}");
    }
    match (f.unread_items, f.last_items) {
        (Some(n), _) if n > 0 => {
            let _ = writeln!(
                s,
                "    warning: the last document held {n} item{} veille could not read",
                if n == 1 { "" } else { "s" }
            );
        }
        (_, Some(0)) => {
            let _ = writeln!(s, "    warning: the last document held no item");
        }
        _ => {}
    }
    let p = &f.pages;
    if p.ok + p.failed + p.skipped > 0 {
        let _ = writeln!(
            s,
            "    pages (full text): {} with text, {} failed, {} skipped by robots.txt",
            p.ok, p.failed, p.skipped
        );
        if let Some(why) = &p.last_failure {
            let _ = writeln!(
                s,
                "    last page not used {}: {why}",
                when(config, p.last_failure_at)
            );
        }
    }
    if let Some(r) = &f.redirect_url {
        let _ = writeln!(s, "    moved permanently to {r} (update the config)");
    }
}

/// One channel's lines.
fn channel_lines(s: &mut String, config: &Config, st: &Status, name: &str, now: i64) {
    let c = st
        .channels
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_default();
    let gone = if config.channel(name).is_none() {
        "  (no longer in the config: pending alerts stay unsent)"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "  {name}: {} pending, {} sent, {} failed{gone}",
        c.pending, c.sent, c.failed
    );
    if let Some(p) = &c.paused {
        let _ = writeln!(
            s,
            "    paused since {} after {} failed attempt(s): {}",
            when(config, Some(p.since)),
            p.attempts,
            p.error
        );
        let _ = writeln!(
            s,
            "    its messages wait; next try {}; after a fix, `veille retry {name}` tries at once",
            due(config, Some(p.retry_at), now)
        );
    } else if let Some(e) = c.last_error.as_ref().filter(|_| c.pending + c.failed > 0) {
        let _ = writeln!(s, "    last error: {e}");
    }
    let digest = config.channel(name).and_then(|ch| ch.digest.as_ref());
    if let Some(cron) = digest {
        let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let next = super::next_tick(cron, at, config.daemon.timezone);
        let _ = writeln!(s, "    digest on \"{}\", next tick {next}", cron.line());
    }
    if let (Some(at), true) = (c.next_attempt, c.pending > 0) {
        match digest {
            Some(_) => {
                let _ = writeln!(s, "    pending alerts wait for the digest");
                if c.last_error.is_some() {
                    let _ = writeln!(s, "    next digest attempt {}", due(config, Some(at), now));
                }
            }
            None => {
                let _ = writeln!(s, "    next attempt {}", due(config, Some(at), now));
            }
        }
    }
    for d in &c.damaged {
        let _ = writeln!(s, "    damaged {} {}: {}", d.kind, d.id, d.reason);
    }
    if c.failed > 0 {
        let _ = writeln!(s, "    `veille retry {name}` queues the failed ones again");
    }
}

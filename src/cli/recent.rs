//! `veille recent [--since DURATION] [--rule RULE] [--json]`: the stories
//! alerted lately, newest first, without opening a mailbox; from the
//! database, while the daemon runs or not.

use std::fmt::Write;

use serde::Serialize;

use super::{CliError, readable, when};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::link::without_tracking;
use crate::store::{RecentChannel, RecentStory, Store};

/// The `--since` of `veille recent` when none is given.
pub const DEFAULT_SINCE: &str = "1d";

/// One story, as `--json` prints it.
#[derive(Serialize)]
struct Shown<'a> {
    /// RFC 3339, in the configured zone.
    at: String,
    rules: &'a [String],
    title: &'a str,
    link: Option<String>,
    outlets: &'a [String],
    channels: &'a [RecentChannel],
}

pub fn run(
    config: &Config,
    since: &str,
    rule: Option<&str>,
    json: bool,
    clock: &Clock,
) -> Result<String, CliError> {
    let span = super::duration_arg("--since", since)?;
    let store = Store::open_existing(&config.daemon.database)?;
    let cutoff = clock
        .now()
        .saturating_sub(i64::try_from(span.as_secs()).unwrap_or(i64::MAX));
    let mut stories = store.recent(cutoff)?;
    if let Some(rule) = rule {
        stories.retain(|s| s.rules.iter().any(|r| r == rule));
    }
    if json {
        let shown: Vec<Shown> = stories.iter().map(|s| shown(config, s)).collect();
        return Ok(serde_json::to_string_pretty(&shown).map_err(anyhow::Error::from)? + "\n");
    }
    if stories.is_empty() {
        let known = rule.is_none_or(|r| config.rules.iter().any(|c| c.name == r));
        return Ok(format!(
            "no story alerted in the last {}{}\n",
            readable(span),
            match rule {
                Some(r) if known => format!(" for rule {r}"),
                Some(r) => format!(" for rule {r} (the config has no rule of that name)"),
                None => String::new(),
            }
        ));
    }
    let mut out = String::new();
    for s in &stories {
        let _ = writeln!(out, "{}  {}", when(config, Some(s.at)), s.rules.join(", "));
        let _ = writeln!(out, "  {}", s.title);
        let _ = writeln!(out, "  {}", s.outlets.join(", "));
        if let Some(link) = &s.link {
            let _ = writeln!(out, "  {}", without_tracking(link));
        }
        let channels: Vec<String> = s
            .channels
            .iter()
            .map(|c| format!("{} {}", c.name, c.state))
            .collect();
        let _ = writeln!(out, "  {}\n", channels.join(" · "));
    }
    let _ = writeln!(
        out,
        "{} stor{} alerted in the last {}",
        stories.len(),
        if stories.len() == 1 { "y" } else { "ies" },
        readable(span)
    );
    Ok(out)
}

fn shown<'a>(config: &Config, s: &'a RecentStory) -> Shown<'a> {
    Shown {
        at: super::rfc3339(config, s.at),
        rules: &s.rules,
        title: &s.title,
        link: s.link.as_deref().map(without_tracking),
        outlets: &s.outlets,
        channels: &s.channels,
    }
}

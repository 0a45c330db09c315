//! `veille test (RULE | --query Q) --history DURATION`: a back-test (SPEC
//! §1). The rule runs over the items of the last DURATION whose text is
//! kept (`keep_text`), through the same steps as a live poll
//! (`domain::backtest`), and the report says what it would have sent: a
//! count a day, the feeds, the titles, and for a rule of the config what
//! the tested version adds to and drops from what the rule in force
//! alerted. Reads one snapshot; stores and sends nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

use anyhow::anyhow;
use serde::Serialize;

use super::test::{config_rule, query_rule};
use super::{CliError, readable};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::backtest::{self, Found};
use crate::domain::ids::StoryId;
use crate::domain::link::without_tracking;
use crate::domain::rules::RuleSet;
use crate::store::Store;
use crate::store::texts::{self, Alerted, Reading};

/// What to test.
pub struct Ask<'a> {
    /// A rule of the config, or the name given to the query.
    pub rule: Option<&'a str>,
    pub query: Option<&'a str>,
    pub history: &'a str,
    /// Titles listed.
    pub limit: usize,
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    rule: String,
    /// The span tested, RFC 3339 in the configured zone.
    from: String,
    to: String,
    #[serde(skip)]
    span_seconds: i64,
    /// Kept item versions read.
    items: usize,
    stories: usize,
    per_day: Vec<Day>,
    feeds: Vec<FeedCount>,
    /// Newest first, at most `--limit`.
    found: Vec<Shown>,
    /// Compared with what the rule in force alerted (a rule of the config).
    compared: Option<Compared>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Day {
    day: String,
    stories: usize,
}

#[derive(Serialize)]
struct FeedCount {
    feed: String,
    stories: usize,
}

#[derive(Serialize, Clone)]
struct Shown {
    at: String,
    title: String,
    link: Option<String>,
    feed: String,
    terms: Vec<String>,
}

#[derive(Serialize)]
struct Compared {
    alerted: usize,
    added: Vec<Shown>,
    dropped: Vec<Shown>,
}

/// Runs the back-test; the report and whether the rule found anything.
pub fn run(config: &Config, ask: &Ask, clock: &Clock) -> Result<(String, bool), CliError> {
    let span = super::duration_arg("--history", ask.history)?;
    let in_config = ask
        .rule
        .filter(|name| config.rules.iter().any(|r| r.name == *name));
    let rule = match (ask.query, ask.rule) {
        (Some(q), name) => {
            let mut rule = query_rule(q, in_config.map(|n| config_rule(config, n)).transpose()?)?;
            if let (Some(name), None) = (name, in_config) {
                rule.name = name.to_owned();
            }
            rule
        }
        (None, Some(name)) => config_rule(config, name)?.clone(),
        (None, None) => {
            return Err(CliError::Usage(anyhow!(
                "--history tests one rule: name a RULE of the config, or give --query"
            )));
        }
    };
    let name = rule.name.clone();
    let rules = RuleSet::new(vec![rule]);
    let now = clock.now();
    let keep = config.daemon.keep_text;
    let tested = span.min(keep);
    let cutoff = now.saturating_sub(i64::try_from(tested.as_secs()).unwrap_or(i64::MAX));
    let store = Store::open_existing(&config.daemon.database)?;
    let tags: HashMap<&str, &[String]> = config
        .feeds
        .iter()
        .map(|f| (f.name.as_str(), f.tags.as_slice()))
        .collect();
    let tested = back_test(&store, cutoff, &rules, &tags)?;

    let mut notes = Vec::new();
    if span > keep {
        notes.push(format!(
            "text is kept for {} (keep_text): tested the last {}, not {}",
            readable(keep),
            readable(keep),
            readable(span)
        ));
    }
    let from = match tested.oldest {
        Some(oldest) if oldest > cutoff => {
            notes.push(format!(
                "the database holds text from {} on only: the span tested starts there",
                when(config, oldest)
            ));
            span_start(cutoff, tested.oldest)
        }
        None => {
            notes.push("no item's text is kept yet: nothing to test".to_owned());
            now
        }
        _ => span_start(cutoff, tested.oldest),
    };
    notes.push(
        "items first seen before the rule existed are included: that is what a back-test is for"
            .to_owned(),
    );
    let before = &tested.before;
    if !before.is_empty() {
        notes.insert(
            0,
            format!(
                "{} stor{} begun before the span left out: whether {} alerted then cannot be known",
                before.len(),
                if before.len() == 1 { "y" } else { "ies" },
                if before.len() == 1 { "it" } else { "they" }
            ),
        );
    }
    let found = &tested.found;
    let shown = |f: &Found| Shown {
        at: when(config, f.at),
        title: f.title.clone(),
        link: f.link.as_deref().map(without_tracking),
        feed: f.feed.clone(),
        terms: f.terms.clone(),
    };

    // What the rule in force alerted, as recorded with the alerts.
    let compared = in_config.map(|rule| {
        let alerted: HashSet<StoryId> = tested
            .alerted
            .iter()
            .filter(|(story, rules, created)| {
                *created >= from && !before.contains(story) && rules.iter().any(|r| r == rule)
            })
            .map(|(story, _, _)| *story)
            .collect();
        let found_ids: HashSet<StoryId> = found.iter().map(|f| f.story).collect();
        let added = found
            .iter()
            .filter(|f| !alerted.contains(&f.story))
            .map(shown)
            .collect();
        // A dropped story's title: its first kept item's.
        let mut first: HashMap<StoryId, &backtest::Kept> = HashMap::new();
        for k in &tested.kept {
            first.entry(k.story).or_insert(k);
        }
        let mut dropped: Vec<(i64, Shown)> = alerted
            .iter()
            .filter(|s| !found_ids.contains(s))
            .map(|s| match first.get(s) {
                Some(k) => (
                    k.seen,
                    Shown {
                        at: when(config, k.seen),
                        title: k.item.title.clone(),
                        link: k.item.link.as_deref().map(without_tracking),
                        feed: k.feed.clone(),
                        terms: Vec::new(),
                    },
                ),
                None => (
                    0,
                    Shown {
                        at: String::new(),
                        title: format!("story {s} (its text is no longer kept)"),
                        link: None,
                        feed: String::new(),
                        terms: Vec::new(),
                    },
                ),
            })
            .collect();
        dropped.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        Compared {
            alerted: alerted.len(),
            added,
            dropped: dropped.into_iter().map(|(_, s)| s).collect(),
        }
    });

    let report = Report {
        rule: name,
        from: super::rfc3339(config, from),
        to: super::rfc3339(config, now),
        span_seconds: now - from,
        items: tested.kept.len(),
        stories: found.len(),
        per_day: per_day(config, found, from, now),
        feeds: per_feed(found),
        found: found.iter().take(ask.limit).map(shown).collect(),
        compared,
        notes,
    };
    let text = if ask.json {
        serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)? + "\n"
    } else {
        render(&report, found.len(), ask.limit)
    };
    Ok((text, !found.is_empty()))
}

/// What a back-test read and found.
#[derive(Debug, Default)]
pub struct Tested {
    /// The stories the rule would have alerted, newest first.
    pub found: Vec<Found>,
    /// The item versions tested, in the order recorded, without their
    /// summary and content.
    pub kept: Vec<backtest::Kept>,
    /// When the oldest kept text was first seen.
    pub oldest: Option<i64>,
    /// The stories alerted since the cutoff, with their rules.
    pub alerted: Alerted,
    /// Stories begun before the span, left out: live they alert once, and
    /// whether their earlier items alerted cannot be known (their text is
    /// gone).
    pub before: HashSet<StoryId>,
}

/// One part of the history as read: its place, where the span tested
/// begins, the items and their packed texts.
type Part = (usize, i64, Vec<backtest::Kept>, Vec<Vec<u8>>);

/// A part tested.
struct Done {
    index: usize,
    kept: Vec<backtest::Kept>,
    found: Vec<Found>,
    before: HashSet<StoryId>,
}

/// Where the span tested begins: the cutoff, or the oldest kept text when
/// that is later.
fn span_start(cutoff: i64, oldest: Option<i64>) -> i64 {
    oldest.map_or(cutoff, |o| o.max(cutoff))
}

/// Hands each part read to a worker in turn.
struct Parts {
    cutoff: i64,
    oldest: Option<i64>,
    alerted: Alerted,
    workers: Vec<std::sync::mpsc::SyncSender<Part>>,
    next: usize,
}

impl Reading for Parts {
    fn begin(&mut self, oldest: Option<i64>, alerted: Alerted) -> anyhow::Result<()> {
        (self.oldest, self.alerted) = (oldest, alerted);
        Ok(())
    }

    fn part(&mut self, kept: Vec<backtest::Kept>, packed: Vec<Vec<u8>>) -> anyhow::Result<()> {
        let worker = &self.workers[self.next % self.workers.len()];
        worker
            .send((
                self.next,
                span_start(self.cutoff, self.oldest),
                kept,
                packed,
            ))
            .map_err(|_| anyhow!("a back-test worker stopped"))?;
        self.next += 1;
        Ok(())
    }
}

/// Runs `rules` (one rule) over the items first seen since `cutoff` whose
/// text `store` keeps. While one part of the history is read, the parts
/// before it are unpacked and matched by as many workers as there are
/// cores: a back-test is one user waiting, and its three costs (reading,
/// unpacking, matching) overlap.
pub fn back_test(
    store: &Store,
    cutoff: i64,
    rules: &RuleSet,
    tags: &HashMap<&str, &[String]>,
) -> anyhow::Result<Tested> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let none: &[String] = &[];
    std::thread::scope(|s| {
        let mut parts = Parts {
            cutoff,
            oldest: None,
            alerted: Vec::new(),
            workers: Vec::with_capacity(workers),
            next: 0,
        };
        let mut running = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (send, receive) = std::sync::mpsc::sync_channel::<Part>(2);
            parts.workers.push(send);
            running.push(s.spawn(move || -> anyhow::Result<Vec<Done>> {
                let mut done = Vec::new();
                let mut unpacker = texts::Unpacker::default();
                for (index, from, kept, packed) in receive {
                    let mut before = HashSet::new();
                    let mut tested = Vec::with_capacity(kept.len());
                    for (mut k, p) in kept.into_iter().zip(packed) {
                        if k.story_began < from {
                            before.insert(k.story);
                            continue;
                        }
                        unpacker.unpack(&mut k, &p)?;
                        tested.push(k);
                    }
                    let found = backtest::run(&tested, rules, |feed| {
                        tags.get(feed).copied().unwrap_or(none)
                    });
                    for k in &mut tested {
                        k.item.summary = String::new();
                        k.item.content = String::new();
                    }
                    done.push(Done {
                        index,
                        kept: tested,
                        found,
                        before,
                    });
                }
                Ok(done)
            }));
        }
        let read = store.history(cutoff, &mut parts);
        let Parts {
            oldest,
            alerted,
            workers,
            ..
        } = parts;
        drop(workers); // the workers' channels close: they finish
        let mut done = Vec::new();
        let mut failed = None;
        for r in running {
            match r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)) {
                Ok(d) => done.extend(d),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        // A worker's error first: the reading's is then only its echo.
        if let Some(e) = failed {
            return Err(e);
        }
        read?;
        done.sort_by_key(|d| d.index);
        let mut tested = Tested {
            oldest,
            alerted,
            ..Tested::default()
        };
        let mut found = Vec::with_capacity(done.len());
        for d in done {
            tested.kept.extend(d.kept);
            tested.before.extend(d.before);
            found.push(d.found);
        }
        tested.found = backtest::merge(found);
        Ok(tested)
    })
}

/// A time to the minute, as the report lists stories.
fn when(config: &Config, t: i64) -> String {
    super::at_format(config, Some(t), "%Y-%m-%d %H:%M").unwrap_or_default()
}

/// Stories a day, every calendar day of the span in the configured zone.
fn per_day(config: &Config, found: &[Found], from: i64, to: i64) -> Vec<Day> {
    let day = |t: i64| super::at_format(config, Some(t), "%Y-%m-%d").unwrap_or_default();
    let mut days: BTreeMap<String, usize> = BTreeMap::new();
    let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    if let (Some(mut d), Some(last)) = (parse(&day(from)), parse(&day(to))) {
        while d <= last {
            days.insert(d.format("%Y-%m-%d").to_string(), 0);
            let Some(next) = d.succ_opt() else { break };
            d = next;
        }
    }
    for f in found {
        *days.entry(day(f.at)).or_default() += 1;
    }
    days.into_iter()
        .map(|(day, stories)| Day { day, stories })
        .collect()
}

fn per_feed(found: &[Found]) -> Vec<FeedCount> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for f in found {
        *counts.entry(&f.feed).or_default() += 1;
    }
    let mut feeds: Vec<FeedCount> = counts
        .into_iter()
        .map(|(feed, stories)| FeedCount {
            feed: feed.to_owned(),
            stories,
        })
        .collect();
    feeds.sort_by(|a, b| b.stories.cmp(&a.stories).then_with(|| a.feed.cmp(&b.feed)));
    feeds
}

fn render(r: &Report, total: usize, limit: usize) -> String {
    let mut out = String::new();
    let days = (r.span_seconds as f64 / 86_400.0).max(1.0);
    let _ = writeln!(
        out,
        "rule {}: {} stor{} in {} kept items, from {} to {} ({:.1} a day)\n",
        r.rule,
        r.stories,
        if r.stories == 1 { "y" } else { "ies" },
        r.items,
        &r.from[..16].replace('T', " "),
        &r.to[..16].replace('T', " "),
        r.stories as f64 / days
    );
    let _ = writeln!(out, "day          stories");
    for d in &r.per_day {
        let _ = writeln!(out, "{}  {:>7}", d.day, d.stories);
    }
    if !r.feeds.is_empty() {
        let _ = writeln!(out, "\nfeeds (the first to carry each story)");
        for f in &r.feeds {
            let _ = writeln!(out, "  {:>5}  {}", f.stories, f.feed);
        }
    }
    if !r.found.is_empty() {
        let more = if total > limit {
            format!(", {} of {total}; --limit for more", r.found.len())
        } else {
            String::new()
        };
        let _ = writeln!(out, "\nstories, newest first{more}");
        for s in &r.found {
            let _ = writeln!(out, "  {}  {}", s.at, s.title);
            let _ = writeln!(
                out,
                "                    {} · {}",
                s.feed,
                s.terms.join(", ")
            );
        }
    }
    if let Some(c) = &r.compared {
        let _ = writeln!(
            out,
            "\ncompared with what the rule in force alerted ({} stor{}): {} added, {} dropped",
            c.alerted,
            if c.alerted == 1 { "y" } else { "ies" },
            c.added.len(),
            c.dropped.len()
        );
        for s in c.added.iter().take(limit) {
            let _ = writeln!(out, "  + {}  {}", s.at, s.title);
        }
        for s in c.dropped.iter().take(limit) {
            let _ = writeln!(out, "  - {}  {}", s.at, s.title);
        }
    }
    if !r.notes.is_empty() {
        out.push('\n');
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

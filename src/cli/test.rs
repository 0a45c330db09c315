//! `veille test [RULE] (--text TEXT | --feed URL_OR_PATH) [--json]`: which
//! items match which rules, and why, without storing or sending anything.
//! Exit status like grep: 0 something matched, 1 nothing did, 2 error.

use std::fmt::Write;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use serde::Serialize;

use super::CliError;
use crate::config::Config;
use crate::domain::discover;
use crate::domain::identity::{Identity, identify};
use crate::domain::ids::StoryId;
use crate::domain::model::Item;
use crate::domain::parse::{self, Document};
use crate::domain::rules::{
    Accents, Field, Hit, Rule, RuleMatch, RuleSet, Scope, field_text, query, why_not,
};
use crate::domain::text::plain_text;
use crate::domain::wire::{
    Evidence, MAX_NUMBERS_MISSING, Placement, Scratch, Similarity, fingerprint_new, place,
};
use crate::fetch::{FetchOutcome, Fetched, Fetcher};
use crate::store::{Store, WireMatch};

/// What to test against.
pub enum Source {
    /// One made-up item whose every text field holds this (HTML allowed).
    Text(String),
    /// Every item of a feed: an http(s) URL, a `file://` URL or a path;
    /// with `wire`, which stored story each item would join as a copy;
    /// with `full_text`, each item's page fetched and matched as content.
    Feed {
        location: String,
        wire: bool,
        full_text: bool,
    },
}

/// One match, as `--json` prints it.
#[derive(Serialize)]
struct JsonMatch<'a> {
    rule: &'a str,
    item: &'a str,
    field: &'static str,
    term: &'a str,
    matched: &'a str,
}

/// Which rules to try.
pub enum Which<'a> {
    /// The config's, or only the one named.
    Config(Option<&'a str>),
    /// A query written on the command line: as a new version of the
    /// config's rule named, else as a rule named `query`.
    Query(&'a str, Option<&'a str>),
}

/// Runs the test at `now` (what wire copies are compared with depends on
/// it); returns the report and whether anything matched.
pub async fn run(
    config: &Config,
    which: Which<'_>,
    source: Source,
    json: bool,
    now: i64,
) -> Result<(String, bool), CliError> {
    let (set, rule) = match which {
        Which::Config(rule) => (None, rule),
        Which::Query(q, rule) => {
            let base = match rule {
                Some(name) => Some(config_rule(config, name)?),
                None => None,
            };
            (Some(RuleSet::new(vec![query_rule(q, base)?])), None)
        }
    };
    let rules = set.as_ref().unwrap_or(&config.rules);
    report(config, rules, rule, source, json, now)
        .await
        .map_err(CliError::Usage)
}

/// The rule `veille test --query` tries: a new version of `base` (its
/// name, fields, feeds and channels kept, its terms replaced by the
/// query), else a rule named `query` over every field; accents ignored.
/// A query that does not parse is `query:COLUMN: message`.
pub(super) fn query_rule(q: &str, base: Option<&Rule>) -> Result<Rule, CliError> {
    let query = query::parse(q, Accents::Fold).map_err(|e| {
        let column = q[..e.at].chars().count() + 1;
        CliError::Usage(anyhow!("query:{column}: {}", e.message))
    })?;
    Ok(match base {
        Some(rule) => Rule {
            any: Vec::new(),
            all: Vec::new(),
            none: Vec::new(),
            query: Some(query),
            ..rule.clone()
        },
        None => Rule {
            name: "query".into(),
            any: Vec::new(),
            all: Vec::new(),
            none: Vec::new(),
            query: Some(query),
            fields: Field::ALL.to_vec(),
            scope: Scope::default(),
            notify: Vec::new(),
        },
    })
}

/// The config's rule named `name`, or a usage error listing the rules.
pub(super) fn config_rule<'c>(config: &'c Config, name: &str) -> Result<&'c Rule, CliError> {
    known_rule(config, Some(name)).map_err(CliError::Usage)?;
    Ok(config
        .rules
        .iter()
        .find(|r| r.name == name)
        .expect("known_rule found it"))
}

async fn report(
    config: &Config,
    rules: &RuleSet,
    rule: Option<&str>,
    source: Source,
    json: bool,
    now: i64,
) -> anyhow::Result<(String, bool)> {
    known_rule(config, rule)?;
    // A made-up item holds the text in every field: one hit per term says it all.
    let once_per_term = matches!(source, Source::Text(_));
    let wire = match &source {
        Source::Feed {
            location,
            wire: true,
            ..
        } => Some(location.clone()),
        _ => None,
    };
    let mut out = String::new();
    let items = match source {
        Source::Text(text) => vec![text_item(&text)],
        Source::Feed {
            location,
            full_text,
            ..
        } => {
            let mut items = feed_items(config, &location).await?;
            if full_text {
                with_pages(config, &location, &mut items, json, now, &mut out).await?;
            }
            items
        }
    };
    let color = !json && std::io::stdout().is_terminal();
    let mut matched = false;
    for item in &items {
        let label = label(item);
        // Scopes are ignored: the point is to see what the terms do.
        let matches = rules.evaluate(item, |r| rule.is_none_or(|name| r.name == name));
        // One rule tried, and not matched: why, when one thing says it.
        let alone = rule.or((rules.len() == 1).then(|| rules[0].name.as_str()));
        if let (Some(name), true, false) = (alone, matches.is_empty(), json)
            && let Some(r) = rules.iter().find(|r| r.name == name)
            && let Some(reason) = why_not(r, item)
        {
            let _ = writeln!(out, "{name} (no match): {label}\n  {reason}");
        }
        for RuleMatch { rule, mut hits } in matches {
            if once_per_term {
                let mut seen = std::collections::HashSet::new();
                hits.retain(|h| seen.insert(h.term.clone()));
            }
            matched = true;
            write_match(&mut out, &rule.name, &hits, item, &label, json, color)?;
        }
    }
    if !json && !matched {
        let _ = writeln!(
            out,
            "no match in {} item{}",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        );
    }
    if let (Some(location), false) = (wire, json) {
        wire_report(config, &location, &items, now, &mut out)?;
    }
    Ok((out, matched))
}

/// `--full-text`: each item's page fetched as `full_text = "always"`
/// would (robots.txt asked, kept in memory only), its text put in the
/// item's content; what was found, or why nothing was, is told per item.
async fn with_pages(
    config: &Config,
    location: &str,
    items: &mut [Item],
    json: bool,
    now: i64,
    out: &mut String,
) -> anyhow::Result<()> {
    let d = &config.daemon;
    let fetcher = Fetcher::new(&d.user_agent, d.timeout, d.max_body)?;
    let pages = crate::pages::Pages::new(fetcher, d, None, crate::clock::Clock::manual(now));
    let feed: Option<url::Url> = location
        .parse()
        .ok()
        .filter(|u: &url::Url| u.scheme().starts_with("http"));
    let links: Vec<(String, url::Url)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((i.to_string(), item.link.as_deref()?.parse().ok()?)))
        .collect();
    let mut found: Vec<(usize, crate::pages::Page)> = pages
        .fetch_all(feed.as_ref(), links)
        .await
        .into_iter()
        .filter_map(|(i, page)| Some((i.parse().ok()?, page)))
        .collect();
    found.sort_by_key(|(i, _)| *i);
    for (i, page) in found {
        let item = &mut items[i];
        if !json {
            let said = match &page {
                crate::pages::Page::Text { text, from } => format!(
                    "{} characters from {}: {}",
                    text.chars().count(),
                    match from {
                        crate::domain::fulltext::Source::JsonLd => "its JSON-LD articleBody",
                        crate::domain::fulltext::Source::MainContent => "its main content",
                    },
                    crate::domain::text::truncate_chars(text, 160)
                ),
                crate::pages::Page::Failed(why) => {
                    format!("no text ({why}); matched on the feed's text")
                }
                crate::pages::Page::Skipped(why) => {
                    format!("not fetched ({why}); matched on the feed's text")
                }
            };
            let _ = writeln!(out, "page of {}\n  {said}", label(item));
        }
        if let Some(text) = page.text() {
            item.content = text.to_owned();
        }
    }
    Ok(())
}

/// A usage error for a rule the config does not have.
fn known_rule(config: &Config, rule: Option<&str>) -> anyhow::Result<()> {
    match rule {
        Some(name) if !config.rules.iter().any(|r| r.name == name) => {
            let known: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
            Err(anyhow!(
                "no rule named {name:?} (rules: {})",
                known.join(", ")
            ))
        }
        _ => Ok(()),
    }
}

/// One rule's hits on one item: a JSON object each, or the rule and item
/// then a line per hit with its context.
fn write_match(
    out: &mut String,
    rule: &str,
    hits: &[Hit],
    item: &Item,
    label: &str,
    json: bool,
    color: bool,
) -> anyhow::Result<()> {
    if json {
        for h in hits {
            let m = JsonMatch {
                rule,
                item: label,
                field: h.field.name(),
                term: &h.term,
                matched: &field_text(item, h.field)[h.span.clone()],
            };
            out.push_str(&serde_json::to_string(&m)?);
            out.push('\n');
        }
        return Ok(());
    }
    let _ = writeln!(out, "{rule}: {label}");
    for h in hits {
        let _ = writeln!(
            out,
            "  {:<10} {:<20} {}",
            h.field.name(),
            h.term,
            context(item, h, color)
        );
    }
    Ok(())
}

/// Which stored story each item would join as a wire copy, were it new,
/// with the figures that decide it (SPEC §4 "Wire copies").
fn wire_report(
    config: &Config,
    location: &str,
    items: &[Item],
    now: i64,
    out: &mut String,
) -> anyhow::Result<()> {
    let d = &config.daemon;
    if !d.wire_copies {
        let _ = writeln!(
            out,
            "\nWire copies: not compared (`wire_copies = false` in [daemon])"
        );
        return Ok(());
    }
    // Before the first `veille run` there is nothing to compare with.
    if !Store::exists(&d.database) {
        let _ = writeln!(
            out,
            "\nWire copies: nothing to compare with yet ({} holds no stories before the first `veille run`)",
            d.database
        );
        return Ok(());
    }
    let _ = writeln!(
        out,
        "\nWire copies, against the stories stored in {}:",
        d.database
    );
    let mut store = match Store::open_existing(&d.database) {
        Ok(store) => store,
        Err(e) => {
            let _ = writeln!(out, "  not compared: {e:#}");
            return Ok(());
        }
    };
    // The configured feed at this location, if any: its own stories are
    // never joined.
    let feed = config
        .feeds
        .iter()
        .find(|f| f.url.to_string() == location)
        .map_or("", |f| f.name.as_str());
    let at = Comparison {
        feed,
        now,
        window: d.wire_window.as_secs() as i64,
        keep: config.wire_keep,
    };
    for (item, id) in items.iter().zip(identify(items)) {
        let _ = writeln!(out, "  {}", label(item));
        let _ = writeln!(out, "    {}", wire_line(&mut store, &at, item, &id)?);
    }
    Ok(())
}

/// What an item of the feed is compared with: the feed it would come from,
/// the time, the window and how long stories stay joinable.
struct Comparison<'a> {
    feed: &'a str,
    now: i64,
    window: i64,
    keep: i64,
}

/// Where one item would go, through the rule the daemon uses
/// (`domain::wire::place`), and why.
fn wire_line(
    store: &mut Store,
    at: &Comparison,
    item: &Item,
    id: &Identity,
) -> anyhow::Result<String> {
    let Comparison {
        feed,
        now,
        window,
        keep,
    } = *at;
    let by_link = match id.story_link.as_deref() {
        Some(l) => store.story_of_link(l)?,
        None => None,
    };
    // What the wire lookup found, when the precedence asked for it.
    let mut compared: Option<Option<WireMatch>> = None;
    let placed = place(by_link, || -> anyhow::Result<Option<StoryId>> {
        let Some(fp) = fingerprint_new(item, now, keep, &mut Scratch::default()) else {
            return Ok(None);
        };
        let best = store
            .wire_matches(&fp, item, now, window, keep, feed)?
            .into_iter()
            .next();
        let joins = best.as_ref().filter(|m| m.joins()).map(|m| m.story_id);
        compared = Some(best);
        Ok(joins)
    })?;
    let line = match (placed, compared) {
        (Placement::ByLink(story), _) => {
            format!("its link is already story {story}: link identity decides, not its text")
        }
        (_, None) => "too little text, or too old to alert: never joins".to_owned(),
        (_, Some(None)) => "no stored story shares its wording".to_owned(),
        (_, Some(Some(m))) => {
            let verdict = match (m.joins(), m.same_feed) {
                (true, _) => "joins",
                (false, true) => "same feed, so does not join",
                (false, false) => "does not join",
            };
            let how = match m.evidence {
                Evidence::Copy => "a copy of one of its items: ",
                Evidence::Start => "the start of the same dispatch (a text cut short): ",
                Evidence::None => "closest item: ",
            };
            format!(
                "{verdict} story {} \"{}\": {how}{}",
                m.story_id,
                m.title,
                describe(&m.similarity)
            )
        }
    };
    Ok(line)
}

fn describe(s: &Similarity) -> String {
    format!(
        "{:.0} % of the shorter text in the other ({} shingles), {} sentence{} in common, lead {}, leads {}, numbers {}",
        s.containment * 100.0,
        s.shared,
        s.sentences,
        if s.sentences == 1 { "" } else { "s" },
        if s.lead { "found" } else { "not found" },
        if s.leads_agree { "agree" } else { "differ" },
        if s.numbers_missing <= MAX_NUMBERS_MISSING {
            "agree"
        } else {
            "differ"
        },
    )
}

fn text_item(text: &str) -> Item {
    let plain = plain_text(text);
    Item {
        title: plain.clone(),
        summary: plain.clone(),
        content: plain.clone(),
        categories: vec![plain],
        ..Item::default()
    }
}

async fn feed_items(config: &Config, location: &str) -> anyhow::Result<Vec<Item>> {
    let d = &config.daemon;
    let fetcher = Fetcher::new(&d.user_agent, d.timeout, d.max_body)?;
    let (fetched, base) = fetch(&fetcher, location).await?;
    // A web page rather than a feed: read the feed it announces.
    let page = fetched
        .final_url
        .clone()
        .or(base.as_deref().and_then(|b| b.parse().ok()));
    if let Some(page) = page {
        let text = parse::decode(&fetched.body, fetched.charset.as_deref());
        if discover::looks_like_html(None, &text) {
            let links = discover::feed_links(&text, &page);
            let Some(first) = links.first() else {
                return Err(anyhow!(
                    "{location}: a web page that announces no feed (no <link rel=\"alternate\"> of type application/rss+xml, application/atom+xml or application/feed+json)"
                ));
            };
            for l in &links {
                let title = l
                    .title
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                eprintln!("{location} announces a feed ({}): {}{title}", l.kind, l.url);
            }
            eprintln!("reading {}", first.url);
            let (fetched, base) = fetch(&fetcher, &first.url).await?;
            return read_items(&fetched, base.as_deref(), &first.url, d.timezone);
        }
    }
    read_items(&fetched, base.as_deref(), location, d.timezone)
}

/// Fetches an http(s) URL, a file:// URL or a path; with the URL to resolve
/// the document's relative links against.
async fn fetch(fetcher: &Fetcher, location: &str) -> anyhow::Result<(Fetched, Option<String>)> {
    let lower = location.to_ascii_lowercase();
    let (outcome, base) = if lower.starts_with("http://") || lower.starts_with("https://") {
        let url: url::Url = location
            .parse()
            .with_context(|| format!("invalid URL {location:?}"))?;
        (
            fetcher.fetch_http(&url, &Default::default()).await,
            Some(url.to_string()),
        )
    } else {
        let path = match url::Url::parse(location) {
            Ok(u) if u.scheme() == "file" => u
                .to_file_path()
                .map_err(|_| anyhow!("a file:// URL needs an absolute path"))?,
            // `htps://…` is a mistyped URL, not a file named so.
            _ if let Some((scheme, _)) = location.split_once("://") => {
                return Err(anyhow!(
                    "{location}: unsupported scheme {scheme:?} (use http, https, file or a path)"
                ));
            }
            _ => PathBuf::from(location),
        };
        (fetcher.fetch_file(&path).await, None)
    };
    match outcome {
        FetchOutcome::Fetched(f) => Ok((f, base)),
        FetchOutcome::NotModified { .. } => Err(anyhow!(
            "{location}: the server answered 304 to an unconditional request"
        )),
        FetchOutcome::Failed(e) => Err(anyhow!("{location}: {e}")),
    }
}

/// The items of a fetched document, saying when it holds more.
fn read_items(
    fetched: &Fetched,
    base: Option<&str>,
    location: &str,
    zone: crate::domain::zone::Zone,
) -> anyhow::Result<Vec<Item>> {
    let doc = Document {
        bytes: &fetched.body,
        charset: fetched.charset.as_deref(),
        base_url: base,
    };
    let (feed, panic) = crate::panics::quietly(|| parse::parse(&doc, zone));
    let feed = feed.map_err(|e| match panic {
        Some(p) => anyhow!("{location}: {e} ({p})"),
        None => anyhow!("{location}: {e}"),
    })?;
    if feed.unread_items > 0 {
        eprintln!(
            "warning: {location}: the document holds {} more item{} than veille could read",
            feed.unread_items,
            if feed.unread_items == 1 { "" } else { "s" }
        );
    }
    Ok(feed.items)
}

fn label(item: &Item) -> String {
    match (&item.link, item.title.is_empty()) {
        (Some(link), false) => format!("{} <{link}>", item.title),
        (Some(link), true) => link.clone(),
        (None, _) if item.title.chars().count() > 60 => {
            format!("{}…", item.title.chars().take(60).collect::<String>())
        }
        (None, _) => item.title.clone(),
    }
}

/// The hit with up to 40 characters on each side, the match marked: bold in
/// a terminal, `[…]` otherwise.
fn context(item: &Item, hit: &Hit, color: bool) -> String {
    const AROUND: usize = 40;
    let text = field_text(item, hit.field);
    let before = &text[..hit.span.start];
    let start = before
        .char_indices()
        .rev()
        .nth(AROUND - 1)
        .map_or(0, |(i, _)| i);
    let after = &text[hit.span.end..];
    let end = hit.span.end
        + after
            .char_indices()
            .nth(AROUND)
            .map_or(after.len(), |(i, _)| i);
    let (open, close) = if color {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("[", "]")
    };
    format!(
        "{}{}{open}{}{close}{}{}",
        if start > 0 { "…" } else { "" },
        &text[start..hit.span.start],
        &text[hit.span.clone()],
        &text[hit.span.end..end],
        if end < text.len() { "…" } else { "" },
    )
}

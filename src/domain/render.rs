//! What a message about a story says: subject, plain text and HTML (SPEC §5).
//!
//! Feed text is untrusted: in HTML every feed string is escaped, links are
//! only made clickable for http(s); in the subject line breaks and other
//! control characters become spaces.

use std::fmt::Write;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as esc};

use super::health::{Episode, Event, Notice};
use super::model::{Item, Outlet};
use super::rules::{Field, field_text};
use super::text::{one_line, sentences, truncate_chars};
use super::triage::StoredHit;
use super::zone::Zone;

/// Sentences an excerpt holds: the one with the first hit and the next.
const EXCERPT_SENTENCES: usize = 2;
/// Longest excerpt, in characters; longer sentences are cut around the hit.
const EXCERPT_CHARS: usize = 400;
/// Longest title kept in a subject line.
const SUBJECT_TITLE_CHARS: usize = 180;

/// One story, as an alert about it shows it.
pub struct StoryView<'a> {
    pub rules: &'a [String],
    pub hits: &'a [StoredHit],
    pub item: &'a Item,
    /// Every feed that carried the story, first seen first.
    pub outlets: &'a [Outlet],
    pub zone: Zone,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn story(v: &StoryView) -> Rendered {
    let title = display_title(v.item);
    let subject = format!(
        "[veille] {}: {}",
        one_line(&v.rules.join(", ")),
        truncate_chars(&one_line(&title), SUBJECT_TITLE_CHARS)
    );
    let mut text = String::new();
    story_text(v, &mut text);
    let mut html = String::from(HTML_HEAD);
    story_html(v, "h2", &mut html);
    html.push_str(HTML_FOOT);
    Rendered {
        subject,
        text,
        html,
    }
}

const HTML_HEAD: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>\n";
const HTML_FOOT: &str = "</body></html>\n";

/// A story in plain text: title, sources, date, link, excerpt, rules.
fn story_text(v: &StoryView, text: &mut String) {
    let title = display_title(v.item);
    let _ = writeln!(text, "{title}\n");
    let _ = writeln!(
        text,
        "Source{} : {}",
        plural(v.outlets.len()),
        feed_names(v.outlets)
    );
    if let Some(date) = v.item.date() {
        let _ = writeln!(text, "Date : {}", date_line(v.zone, date));
    }
    if let Some(link) = &v.item.link {
        let _ = writeln!(text, "Lien : {}", clean(link));
    }
    // A story several outlets carried under their own links: each one's.
    let main = v.item.link.as_deref().map(clean);
    if v.outlets.len() > 1
        && v.outlets
            .iter()
            .any(|o| o.link.as_deref().map(clean) != main)
    {
        let _ = writeln!(text, "Liens des sources :");
        for o in v.outlets {
            let link = o.link.as_deref().map_or("(sans lien)".into(), clean);
            let _ = writeln!(text, "- {} : {link}", o.feed);
        }
    }
    if let Some(ex) = excerpt(v.item, v.hits) {
        let _ = writeln!(text, "\n{}", ex.plain());
    }
    let _ = writeln!(text);
    for (rule, words) in &words_by_rule(v.item, v.rules, v.hits) {
        let _ = writeln!(text, "Règle {rule} : {}", words.join(", "));
    }
}

/// The same in HTML, every feed string escaped, the title a `heading`.
fn story_html(v: &StoryView, heading: &str, html: &mut String) {
    let title = display_title(v.item);
    match v.item.link.as_deref().filter(|l| is_web_link(l)) {
        Some(link) => {
            let _ = writeln!(
                html,
                "<{heading}><a href=\"{}\">{}</a></{heading}>",
                attr(&clean(link)),
                esc(&title)
            );
        }
        None => {
            let _ = writeln!(html, "<{heading}>{}</{heading}>", esc(&title));
        }
    }
    // Each outlet's name links to its own copy.
    let names: Vec<String> = v
        .outlets
        .iter()
        .map(|o| match o.link.as_deref().filter(|l| is_web_link(l)) {
            Some(l) => format!("<a href=\"{}\">{}</a>", attr(&clean(l)), esc(&o.feed)),
            None => esc(&o.feed).into_owned(),
        })
        .collect();
    let _ = write!(
        html,
        "<p>Source{} : {}",
        plural(v.outlets.len()),
        names.join(", ")
    );
    if let Some(date) = v.item.date() {
        let _ = write!(html, "<br>Date : {}", esc(&date_line(v.zone, date)));
    }
    html.push_str("</p>\n");
    if let Some(ex) = excerpt(v.item, v.hits) {
        let _ = writeln!(html, "<blockquote>{}</blockquote>", ex.html());
    }
    html.push_str("<ul>\n");
    for (rule, words) in &words_by_rule(v.item, v.rules, v.hits) {
        let _ = writeln!(
            html,
            "<li>Règle <b>{}</b> : {}</li>",
            esc(rule),
            esc(&words.join(", "))
        );
    }
    html.push_str("</ul>\n");
}

/// Day and month names for dates in messages. Written here: chrono's
/// localised formatting sits behind its `unstable-locales` feature.
const DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `when` on the wall clock of `zone`, in French: the day
/// (`mardi 2 décembre 2026`, `lundi 1er juin 2026`) and the time (`01 h 36`).
fn french_date(zone: Zone, when: chrono::DateTime<chrono::Utc>) -> (String, String) {
    use chrono::{Datelike, Timelike};
    let t = zone.wall_clock(when);
    let day = match t.day() {
        1 => "1er".to_owned(),
        d => d.to_string(),
    };
    (
        format!(
            "{} {day} {} {}",
            DAYS[t.weekday().num_days_from_monday() as usize],
            MONTHS[t.month0() as usize],
            t.year()
        ),
        format!("{:02} h {:02}", t.hour(), t.minute()),
    )
}

/// A date on a line of its own: `mardi 2 décembre 2026, 01 h 36`.
pub fn date_line(zone: Zone, when: chrono::DateTime<chrono::Utc>) -> String {
    let (day, time) = french_date(zone, when);
    format!("{day}, {time}")
}

/// A date inside a sentence, after `le`: `mardi 2 décembre 2026 à 01 h 36`.
pub fn date_in_sentence(zone: Zone, when: chrono::DateTime<chrono::Utc>) -> String {
    let (day, time) = french_date(zone, when);
    format!("{day} à {time}")
}

/// The link as shown: tracking parameters dropped (as for identity), the
/// rest as the feed wrote it.
fn clean(link: &str) -> String {
    super::link::without_tracking(link)
}

/// A feed that a digest names at its end: failing for over a day, or gone.
#[derive(Debug, Clone, PartialEq)]
pub struct FailingFeed {
    pub name: String,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub gone: bool,
    pub error: Option<String>,
}

/// Everything one digest message holds.
pub struct DigestView<'a> {
    pub channel: &'a str,
    pub stories: &'a [StoryView<'a>],
    pub failing: &'a [FailingFeed],
    /// Feed-health alerts that waited for this digest.
    pub health: &'a [Notice],
    pub zone: Zone,
}

/// One digest: the list of its headlines, then the stories grouped by rule
/// (a story under the alphabetically first rule it matched, the others
/// named with it), groups in rule-name order, newest first in each; then
/// the feeds failing for over a day or gone. The subject names every rule
/// its stories matched.
pub fn digest(v: &DigestView) -> Rendered {
    let n = v.stories.len();
    let groups = by_rule(v.stories);
    let intro = match n {
        0 => "Aucun article depuis le dernier envoi.".to_owned(),
        n => format!("{n} article{} depuis le dernier envoi.", plural(n)),
    };
    let mut text = format!("{intro}\n");
    let mut html = String::from(HTML_HEAD);
    let _ = writeln!(html, "<p>{intro}</p>");
    headlines(&groups, &mut text, &mut html);
    for (rule, stories) in &groups {
        let _ = writeln!(text, "\n== {rule} ({}) ==\n", stories.len());
        let _ = writeln!(html, "<h2>{} ({})</h2>", esc(rule), stories.len());
        for s in stories {
            story_text(s, &mut text);
            text.push_str("\n---\n\n");
            story_html(s, "h3", &mut html);
            html.push_str("<hr>\n");
        }
    }
    health_part(v, &mut text, &mut html);
    failing_part(v, &mut text, &mut html);
    // One line break at the end, whatever part came last.
    text.truncate(text.trim_end().len());
    text.push('\n');
    html.push_str(HTML_FOOT);
    Rendered {
        subject: digest_subject(v),
        text,
        html,
    }
}

/// Stories by the alphabetically first rule each matched, newest first
/// in each group (undated last; ties keep their order).
fn by_rule<'a>(
    stories: &'a [StoryView<'a>],
) -> std::collections::BTreeMap<&'a str, Vec<&'a StoryView<'a>>> {
    let mut groups: std::collections::BTreeMap<&str, Vec<&StoryView>> = Default::default();
    for s in stories {
        let rule = s.rules.iter().min().map_or("", String::as_str);
        groups.entry(rule).or_default().push(s);
    }
    for stories in groups.values_mut() {
        stories.sort_by_key(|s| std::cmp::Reverse(s.item.date()));
    }
    groups
}

/// `[veille] CHANNEL: N articles (every rule, sorted)`, or the health
/// subject when it holds no story.
fn digest_subject(v: &DigestView) -> String {
    let n = v.stories.len();
    if n == 0 {
        return format!("[veille] {}: santé des flux", one_line(v.channel));
    }
    let rules: std::collections::BTreeSet<&str> = v
        .stories
        .iter()
        .flat_map(|s| s.rules.iter().map(String::as_str))
        .collect();
    let rules: Vec<&str> = rules.into_iter().collect();
    format!(
        "[veille] {}: {n} article{} ({})",
        one_line(v.channel),
        plural(n),
        one_line(&rules.join(", "))
    )
}

/// The feed-health alerts that waited for this digest.
fn health_part(v: &DigestView, text: &mut String, html: &mut String) {
    if v.health.is_empty() {
        return;
    }
    text.push_str("\nSanté des flux :\n");
    html.push_str("<h2>Santé des flux</h2>\n<ul>\n");
    for notice in v.health {
        let (_, sentence) = health_words(notice, v.zone);
        let _ = writeln!(text, "- {sentence}");
        let _ = writeln!(html, "<li>{}</li>", esc(&sentence));
    }
    html.push_str("</ul>\n");
}

/// The feeds failing for over a day or gone, but those whose failure the
/// health part already reports.
fn failing_part(v: &DigestView, text: &mut String, html: &mut String) {
    let told = |name: &str| {
        v.health
            .iter()
            .any(|h| h.feed == name && matches!(h.event, Event::Failing | Event::Gone))
    };
    let failing: Vec<&FailingFeed> = v.failing.iter().filter(|f| !told(&f.name)).collect();
    if failing.is_empty() {
        return;
    }
    text.push_str("\nFlux en échec depuis plus de 24 h ou disparus :\n");
    html.push_str("<h2>Flux en échec depuis plus de 24 h ou disparus</h2>\n<ul>\n");
    for f in failing {
        let state = if f.gone {
            "disparu (410)".to_owned()
        } else {
            let since = f
                .since
                .map(|d| format!("depuis le {}", date_in_sentence(v.zone, d)))
                .unwrap_or_default();
            let error = f.error.as_deref().map(one_line).unwrap_or_default();
            format!("en échec {since} : {error}")
        };
        let _ = writeln!(text, "- {} : {state}", f.name);
        let _ = writeln!(html, "<li>{} : {}</li>", esc(&f.name), esc(&state));
    }
    html.push_str("</ul>\n");
}

/// The digest's opening list: each story's title and sources, in the
/// order the stories follow.
fn headlines(
    groups: &std::collections::BTreeMap<&str, Vec<&StoryView>>,
    text: &mut String,
    html: &mut String,
) {
    if groups.is_empty() {
        return;
    }
    text.push('\n');
    html.push_str("<ul>\n");
    for s in groups.values().flatten() {
        let title = display_title(s.item);
        let sources = feed_names(s.outlets);
        let _ = writeln!(text, "- {title} ({sources})");
        let shown = match s.item.link.as_deref().filter(|l| is_web_link(l)) {
            Some(l) => format!("<a href=\"{}\">{}</a>", attr(&clean(l)), esc(&title)),
            None => esc(&title).into_owned(),
        };
        let _ = writeln!(html, "<li>{shown} ({})</li>", esc(&sources));
    }
    html.push_str("</ul>\n");
}

/// One feed-health alert (SPEC §7): a subject and one sentence.
/// A health alert's subject line, as its mail has it.
pub fn health_subject(n: &Notice, zone: Zone) -> String {
    format!("[veille] {}", health_words(n, zone).0)
}

pub fn health(n: &Notice, zone: Zone) -> Rendered {
    let (subject, sentence) = health_words(n, zone);
    Rendered {
        subject: format!("[veille] {subject}"),
        text: format!("{sentence}\n"),
        html: format!("{HTML_HEAD}<p>{}</p>\n{HTML_FOOT}", esc(&sentence)),
    }
}

/// What a health alert says: its subject (without `[veille]`) and its
/// sentence, which a digest lists.
fn health_words(n: &Notice, zone: Zone) -> (String, String) {
    let name = one_line(&n.feed);
    // The sentence names the address too: the name is the user's own
    // label, the address is what to open or correct.
    let feed = match n.url.as_deref() {
        Some(url) => format!("{name} ({})", one_line(url)),
        None => name.clone(),
    };
    let since = chrono::DateTime::from_timestamp(n.since, 0)
        .map(|d| date_in_sentence(zone, d))
        .unwrap_or_default();
    match (n.event, n.recovered_from) {
        (Event::Failing, _) => {
            let error = n
                .error
                .as_deref()
                .map(|e| format!(" (dernière erreur : {})", one_line(e)))
                .unwrap_or_default();
            (
                format!("flux en échec : {name}"),
                format!(
                    "Le flux {feed} est en échec depuis le {since}{error}. veille continue de l'interroger et écrira quand il répondra de nouveau."
                ),
            )
        }
        (Event::Gone, _) => (
            format!("flux disparu : {name}"),
            format!(
                "Le flux {feed} répond 410 Gone (en échec depuis le {since}) : veille ne l'interroge plus tant que son url ne change pas dans la configuration."
            ),
        ),
        (Event::Silent, _) => {
            let usual = n
                .usual_gap
                .map(|g| {
                    format!(
                        ", alors qu'il en apporte d'habitude un toutes les {}",
                        span(g)
                    )
                })
                .unwrap_or_default();
            (
                format!("flux silencieux : {name}"),
                format!(
                    "Le flux {feed} n'a apporté aucun nouvel article depuis le {since}{usual}."
                ),
            )
        }
        (Event::Recovered, Some(Episode::Silent)) => (
            format!("flux rétabli : {name}"),
            format!(
                "Le flux {feed} apporte de nouveau des articles (silencieux depuis le {since})."
            ),
        ),
        (Event::Recovered, _) => (
            format!("flux rétabli : {name}"),
            format!("Le flux {feed} répond de nouveau (en échec depuis le {since})."),
        ),
    }
}

/// A length of time in French words: `45 min`, `3 h`, `2 h 30`, `4 jours`.
pub fn span(secs: i64) -> String {
    let mins = (secs.max(0) + 30) / 60;
    match mins {
        0..60 => format!("{} min", mins.max(1)),
        60..600 if mins % 60 != 0 => format!("{} h {:02}", mins / 60, mins % 60),
        60..2880 => format!("{} h", (mins + 30) / 60),
        _ => format!("{} jours", (mins + 720) / 1440),
    }
}

/// The message `veille send-test` sends.
pub fn test_message(channel: &str, when: chrono::DateTime<chrono::Utc>, zone: Zone) -> Rendered {
    let channel = one_line(channel);
    let at = date_in_sentence(zone, when);
    Rendered {
        subject: format!("[veille] test: {channel}"),
        text: format!(
            "Message de test du canal {channel}, envoyé le {at}.\nSi vous le lisez, le canal fonctionne.\n"
        ),
        html: format!(
            "{HTML_HEAD}<p>Message de test du canal <b>{}</b>, envoyé le {}.</p><p>Si vous le lisez, le canal fonctionne.</p>\n{HTML_FOOT}",
            esc(&channel),
            esc(&at)
        ),
    }
}

/// The outlets' feed names, in order.
pub(super) fn feed_names(outlets: &[Outlet]) -> String {
    let names: Vec<&str> = outlets.iter().map(|o| o.feed.as_str()).collect();
    names.join(", ")
}

/// The title a message and the log show: the item's, or "(sans titre)".
pub fn display_title(item: &Item) -> String {
    if item.title.trim().is_empty() {
        "(sans titre)".to_owned()
    } else {
        item.title.clone()
    }
}

/// The French plural ending for `n` things.
pub fn plural(n: usize) -> &'static str {
    if n > 1 { "s" } else { "" }
}

/// Whether a link may be made clickable: http(s) only, never `javascript:`.
pub fn is_web_link(link: &str) -> bool {
    let lower = link.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Per rule, the words of the item that matched it, as the item wrote
/// them (`puces` for the pattern `puce*`), each once whatever its case;
/// a hit whose place cannot be read back shows its term.
fn words_by_rule(item: &Item, rules: &[String], hits: &[StoredHit]) -> Vec<(String, Vec<String>)> {
    let texts: Vec<(Field, std::borrow::Cow<str>)> = Field::ALL
        .iter()
        .map(|&f| (f, field_text(item, f)))
        .collect();
    let matched = |h: &StoredHit| -> String {
        texts
            .iter()
            .find(|(f, _)| f.name() == h.field)
            .and_then(|(_, t)| t.get(h.start..h.end))
            .map(one_line)
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| h.term.clone())
    };
    rules
        .iter()
        .map(|r| {
            let mut words: Vec<String> = Vec::new();
            for h in hits.iter().filter(|h| &h.rule == r) {
                let w = matched(h);
                if !words.iter().any(|x| x.to_lowercase() == w.to_lowercase()) {
                    words.push(w);
                }
            }
            (r.clone(), words)
        })
        .collect()
}

/// A window of one field's text around its hits, with the hits marked.
struct Excerpt {
    /// Pieces of text, `true` for a matched term.
    parts: Vec<(String, bool)>,
    cut_start: Cut,
    cut_end: Cut,
}

/// Where an excerpt leaves text out: nowhere, between sentences (`[…]`,
/// as a quotation marks an omission) or inside one (`…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    None,
    Sentence,
    Word,
}

impl Excerpt {
    fn plain(&self) -> String {
        let mut s = String::from("« ");
        s.push_str(self.opening());
        for (t, hit) in &self.parts {
            if *hit {
                let _ = write!(s, "*{t}*");
            } else {
                s.push_str(t);
            }
        }
        s.push_str(self.closing());
        s.push_str(" »");
        s
    }

    fn html(&self) -> String {
        let mut s = String::from(self.opening());
        for (t, hit) in &self.parts {
            if *hit {
                let _ = write!(s, "<b>{}</b>", esc(t));
            } else {
                s.push_str(&esc(t));
            }
        }
        s.push_str(self.closing());
        s
    }

    fn opening(&self) -> &'static str {
        match self.cut_start {
            Cut::None => "",
            Cut::Sentence => "[…] ",
            Cut::Word => "…",
        }
    }

    fn closing(&self) -> &'static str {
        match self.cut_end {
            Cut::None => "",
            Cut::Sentence => " […]",
            Cut::Word => "…",
        }
    }
}

/// The excerpt: the body field (summary, then content) holding a hit, else
/// the summary itself, else none; hits in it highlighted.
fn excerpt(item: &Item, hits: &[StoredHit]) -> Option<Excerpt> {
    let order = [
        Field::Summary,
        Field::Content,
        Field::Title,
        Field::Categories,
    ];
    let field = order
        .into_iter()
        .find(|f| hits.iter().any(|h| h.field == f.name()))
        .filter(|f| *f != Field::Title || item.summary.is_empty())
        .unwrap_or(Field::Summary);
    let text = field_text(item, field);
    if text.trim().is_empty() {
        return None;
    }
    let mut spans: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| h.field == field.name() && h.start < h.end && h.end <= text.len())
        .filter(|h| text.is_char_boundary(h.start) && text.is_char_boundary(h.end))
        .map(|h| (h.start, h.end))
        .collect();
    spans.sort_unstable();
    let all = sentences(&text);
    let (start, end) = window(&text, &all, spans.first().copied());
    let cut = |at: usize, edge: usize, ends: bool| match () {
        _ if at == edge => Cut::None,
        _ if all
            .iter()
            .any(|r| if ends { r.end == at } else { r.start == at }) =>
        {
            Cut::Sentence
        }
        _ => Cut::Word,
    };
    let mut parts = Vec::new();
    let mut at = start;
    for (s, e) in spans.into_iter().filter(|(s, e)| *s >= start && *e <= end) {
        if s < at {
            continue;
        }
        parts.push((text[at..s].to_owned(), false));
        parts.push((text[s..e].to_owned(), true));
        at = e;
    }
    parts.push((text[at..end].to_owned(), false));
    let first = all.first().map_or(0, |r| r.start);
    let last = all.last().map_or(0, |r| r.end);
    Some(Excerpt {
        parts,
        cut_start: cut(start, first, false),
        cut_end: cut(end, last, true),
    })
}

/// The part of `text` an excerpt shows: the sentence holding the first
/// hit and the next (or the one before, for the last sentence); over
/// `EXCERPT_CHARS`, a window of that many around the hit, cut between
/// words.
fn window(
    text: &str,
    all: &[std::ops::Range<usize>],
    hit: Option<(usize, usize)>,
) -> (usize, usize) {
    let Some(last) = all.len().checked_sub(1) else {
        return (0, 0);
    };
    let (anchor, anchor_end) = hit.unwrap_or((0, 0));
    let i = all.iter().position(|r| r.end > anchor).unwrap_or(last);
    let to = (i + EXCERPT_SENTENCES - 1).min(last);
    let from = (to + 1).saturating_sub(EXCERPT_SENTENCES).min(i);
    let (mut start, mut end) = (all[from].start, all[to].end);
    if text[start..end].chars().count() <= EXCERPT_CHARS {
        return (start, end);
    }
    // A third of the room before the hit, the rest after it.
    start = start.max(char_back(text, anchor, EXCERPT_CHARS / 3));
    end = end.min(char_forward(text, start, EXCERPT_CHARS));
    // Start at the next word, unless that passes the hit.
    if start > all[from].start
        && start < anchor
        && let Some(sp) = text[start..anchor].find(char::is_whitespace)
    {
        start += sp;
        start += text[start..].len() - text[start..].trim_start().len();
    }
    if end < all[to].end
        && end > anchor_end
        && let Some(sp) = text[anchor_end..end].rfind(char::is_whitespace)
    {
        end = anchor_end + sp;
    }
    (start, end.max(start))
}

fn char_back(text: &str, from: usize, chars: usize) -> usize {
    text[..from]
        .char_indices()
        .rev()
        .nth(chars.saturating_sub(1))
        .map_or(0, |(i, _)| i)
}

fn char_forward(text: &str, from: usize, chars: usize) -> usize {
    text[from..]
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn outlets(list: &[(&str, &str)]) -> Vec<Outlet> {
        list.iter()
            .map(|(feed, link)| Outlet {
                feed: (*feed).into(),
                link: Some((*link).into()),
            })
            .collect()
    }

    fn hit(rule: &str, field: &str, term: &str, text: &str, needle: &str) -> StoredHit {
        let start = text.find(needle).unwrap();
        StoredHit {
            rule: rule.into(),
            field: field.into(),
            term: term.into(),
            start,
            end: start + needle.len(),
        }
    }

    #[test]
    fn a_story_message_says_what_matched_and_escapes_feed_text() {
        let item = Item {
            title: "<script>alert(1)</script> Pékin\r\nBcc: x@y.fr".into(),
            link: Some("https://x.fr/a?b=1&c=2".into()),
            summary: "La Chine impose des droits de douane sur les puces.".into(),
            published: DateTime::from_timestamp(1_745_659_200, 0),
            ..Item::default()
        };
        let hits = [
            hit(
                "tarifs",
                "summary",
                "droits de douane",
                &item.summary,
                "droits de douane",
            ),
            hit("puces", "summary", "puce*", &item.summary, "puces"),
        ];
        let rules = ["tarifs".to_string(), "puces".to_string()];
        let feeds = outlets(&[
            ("Le Monde", "https://lemonde.fr/a"),
            ("AFP", "https://afp.com/b"),
        ]);
        let r = story(&StoryView {
            rules: &rules,
            hits: &hits,
            item: &item,
            outlets: &feeds,
            zone: Zone::Named(chrono_tz::Europe::Paris),
        });
        assert_eq!(
            r.subject,
            "[veille] tarifs, puces: <script>alert(1)</script> Pékin Bcc: x@y.fr"
        );
        assert!(!r.subject.contains(['\r', '\n']));
        assert!(r.text.contains("Sources : Le Monde, AFP"));
        assert!(
            r.text.contains(
                "Liens des sources :\n- Le Monde : https://lemonde.fr/a\n- AFP : https://afp.com/b\n"
            ),
            "{}",
            r.text
        );
        assert!(
            r.html.contains("Sources : <a href=\"https://lemonde.fr/a\">Le Monde</a>, <a href=\"https://afp.com/b\">AFP</a>"),
            "{}",
            r.html
        );
        assert!(r.text.contains("Date : samedi 26 avril 2025, 11 h 20"));
        assert!(
            r.text
                .contains("« La Chine impose des *droits de douane* sur les *puces*. »")
        );
        // The word that matched, not the pattern.
        assert!(r.text.contains("Règle puces : puces\n"), "{}", r.text);
        assert!(!r.text.contains("puce*") && !r.html.contains("puce*"));
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(r.html.contains("<b>droits de douane</b>"));
        assert!(r.html.contains("href=\"https://x.fr/a?b=1&amp;c=2\""));
    }

    #[test]
    fn long_texts_are_cut_around_the_first_hit() {
        let summary = format!("{} IA {}", "avant ".repeat(100), "après ".repeat(100));
        let item = Item {
            title: "t".into(),
            summary: summary.clone(),
            ..Item::default()
        };
        let hits = [hit("r", "summary", "IA", &summary, "IA")];
        let ex = excerpt(&item, &hits).unwrap();
        let plain = ex.plain();
        assert!(
            plain.starts_with("« …") && plain.ends_with("… »"),
            "{plain}"
        );
        assert!(plain.contains("*IA*"));
        assert!(plain.chars().count() <= EXCERPT_CHARS + 6, "{plain}");
        // Cut between words.
        assert!(plain.starts_with("« …avant ") && plain.ends_with(" après… »"));
    }

    #[test]
    fn every_hit_place_in_every_shape_of_text_gives_an_excerpt_holding_it() {
        let words = [
            "Les", "puces", "é", "M.", "fin.", "«", "»", "coût !", "x…", "  ", "\n",
        ];
        for n in [1, 5, 40, 150] {
            for seed in 0..20usize {
                let text: String = (0..n)
                    .map(|i| words[(i * 7 + seed * 3 + i * i) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ");
                let item = Item {
                    title: "t".into(),
                    summary: text.clone(),
                    ..Item::default()
                };
                for (at, _) in text.match_indices("puces") {
                    let h = StoredHit {
                        rule: "r".into(),
                        field: "summary".into(),
                        term: "puce*".into(),
                        start: at,
                        end: at + 5,
                    };
                    let ex = excerpt(&item, &[h]).unwrap();
                    assert!(
                        ex.plain().contains("*puces*"),
                        "{text:?} at {at}: {}",
                        ex.plain()
                    );
                    assert!(ex.plain().chars().count() <= EXCERPT_CHARS + 12);
                }
                let _ = excerpt(&item, &[]);
            }
        }
    }

    #[test]
    fn an_excerpt_is_the_sentence_of_the_first_hit_and_the_next() {
        let summary = "Le gouvernement a réuni les syndicats lundi. Les discussions ont porté sur les \
                       salaires et les puces électroniques. Un accord est attendu en fin de semaine. \
                       Les marchés restent prudents face à ces annonces.";
        let item = Item {
            title: "t".into(),
            summary: summary.into(),
            ..Item::default()
        };
        let plain = |needle: &str| {
            excerpt(&item, &[hit("r", "summary", "x", summary, needle)])
                .unwrap()
                .plain()
        };
        assert_eq!(
            plain("puces"),
            "« […] Les discussions ont porté sur les salaires et les *puces* électroniques. \
             Un accord est attendu en fin de semaine. […] »"
        );
        // In the last sentence: that one and the one before.
        assert_eq!(
            plain("prudents"),
            "« […] Un accord est attendu en fin de semaine. Les marchés restent *prudents* face à ces annonces. »"
        );
        assert_eq!(
            plain("gouvernement"),
            "« Le *gouvernement* a réuni les syndicats lundi. Les discussions ont porté sur les \
             salaires et les puces électroniques. […] »"
        );
    }

    #[test]
    fn javascript_links_are_not_made_clickable() {
        let item = Item {
            title: "t".into(),
            link: Some("javascript:alert(1)".into()),
            ..Item::default()
        };
        let r = story(&StoryView {
            rules: &[],
            hits: &[],
            item: &item,
            outlets: &[],
            zone: Zone::Local,
        });
        assert!(!r.html.contains("href"));
    }

    #[test]
    fn a_digest_groups_by_rule_newest_first_and_names_failing_feeds() {
        let at = |h: i64| DateTime::from_timestamp(1_764_000_000 + h * 3600, 0);
        let items: Vec<Item> = [
            ("Puces A", Some(1)),
            ("Tarifs B", Some(5)),
            ("Puces C", Some(3)),
            ("Sans date D", None),
            ("<i>Tarifs</i> E", Some(2)),
        ]
        .into_iter()
        .map(|(t, h)| Item {
            title: t.into(),
            published: h.and_then(at),
            ..Item::default()
        })
        .collect();
        let puces = ["puces-ia".to_string()];
        // In config order: grouped under the alphabetically first all the same.
        let both = ["tarifs".to_string(), "puces-ia".to_string()];
        let tarifs = ["tarifs".to_string()];
        let feeds = outlets(&[("AFP", "https://afp.com/x")]);
        let views: Vec<StoryView> = items
            .iter()
            .map(|item| StoryView {
                rules: match item.title.as_str() {
                    "Tarifs B" => &both,
                    t if t.contains("arifs") => &tarifs,
                    _ => &puces,
                },
                hits: &[],
                item,
                outlets: &feeds,
                zone: Zone::Named(chrono_tz::Europe::Paris),
            })
            .collect();
        let failing = [FailingFeed {
            name: "Le Monde".into(),
            since: at(-30),
            gone: false,
            error: Some("HTTP 500".into()),
        }];
        let r = digest(&DigestView {
            channel: "moi",
            stories: &views,
            failing: &failing,
            health: &[],
            zone: Zone::Named(chrono_tz::Europe::Paris),
        });
        assert_eq!(r.subject, "[veille] moi: 5 articles (puces-ia, tarifs)");
        // It opens with the headlines, in the order the stories follow.
        assert!(
            r.text.starts_with(
                "5 articles depuis le dernier envoi.\n\n- Tarifs B (AFP)\n- Puces C (AFP)\n\
                 - Puces A (AFP)\n- Sans date D (AFP)\n- <i>Tarifs</i> E (AFP)\n\n== puces-ia (4) ==\n"
            ),
            "{}",
            r.text
        );
        let body = &r.text[r.text.find("== puces-ia").unwrap()..];
        let order: Vec<usize> = [
            "== puces-ia (4)",
            "Tarifs B",
            "Puces C",
            "Puces A",
            "Sans date D",
            "== tarifs (1)",
            "<i>Tarifs</i> E",
            "Flux en échec",
            "Le Monde : en échec depuis le dimanche 23 novembre 2025",
        ]
        .iter()
        .map(|needle| {
            body.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {}", r.text))
        })
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{order:?}\n{}",
            r.text
        );
        assert!(r.html.contains("&lt;i&gt;Tarifs&lt;/i&gt; E"));
        assert!(!r.html.contains("<i>Tarifs"));
        assert!(r.text.contains("Règle tarifs"), "the other rule is named");
        assert!(
            r.html
                .contains("<li>&lt;i&gt;Tarifs&lt;/i&gt; E (AFP)</li>")
        );
    }

    fn notice(event: Event, from: Option<Episode>) -> Notice {
        Notice {
            feed: "Le Monde".into(),
            url: None,
            event,
            recovered_from: from,
            since: 1_764_000_000,
            at: 1_764_100_000,
            error: Some("HTTP 503\nService Unavailable".into()),
            usual_gap: Some(2 * 3600 + 1800),
        }
    }

    #[test]
    fn health_alerts_say_what_happened_in_one_sentence() {
        let paris = Zone::Named(chrono_tz::Europe::Paris);
        let cases = [
            (
                notice(Event::Failing, None),
                "[veille] flux en échec : Le Monde",
                "Le flux Le Monde est en échec depuis le lundi 24 novembre 2025 à 17 h 00 (dernière erreur : HTTP 503 Service Unavailable).",
            ),
            (
                notice(Event::Gone, None),
                "[veille] flux disparu : Le Monde",
                "Le flux Le Monde répond 410 Gone (en échec depuis le lundi 24 novembre 2025 à 17 h 00)",
            ),
            (
                notice(Event::Silent, None),
                "[veille] flux silencieux : Le Monde",
                "n'a apporté aucun nouvel article depuis le lundi 24 novembre 2025 à 17 h 00, alors qu'il en apporte d'habitude un toutes les 2 h 30.",
            ),
            (
                notice(Event::Recovered, Some(Episode::Failing)),
                "[veille] flux rétabli : Le Monde",
                "Le flux Le Monde répond de nouveau (en échec depuis le lundi 24 novembre 2025 à 17 h 00).",
            ),
            (
                notice(Event::Recovered, Some(Episode::Silent)),
                "[veille] flux rétabli : Le Monde",
                "apporte de nouveau des articles (silencieux depuis le lundi 24 novembre 2025 à 17 h 00).",
            ),
        ];
        for (n, subject, sentence) in cases {
            let r = health(&n, paris);
            assert_eq!(r.subject, subject);
            assert!(r.text.contains(sentence), "{}", r.text);
            assert_eq!(r.text.lines().count(), 1, "{}", r.text);
        }
        let mut addressed = notice(Event::Failing, None);
        addressed.url = Some("https://www.lemonde.fr/rss/une.xml".into());
        let r = health(&addressed, paris);
        assert_eq!(r.subject, "[veille] flux en échec : Le Monde");
        assert!(
            r.text
                .contains("Le flux Le Monde (https://www.lemonde.fr/rss/une.xml) est en échec"),
            "{}",
            r.text
        );
        let mut hostile = notice(Event::Failing, None);
        hostile.feed = "<b>Le Monde</b>".into();
        assert!(health(&hostile, paris).html.contains("&lt;b&gt;Le Monde"));
    }

    #[test]
    fn a_digest_of_health_alerts_alone_says_so_and_names_a_failure_once() {
        let failing = [
            FailingFeed {
                name: "Le Monde".into(),
                since: DateTime::from_timestamp(1_764_000_000, 0),
                gone: false,
                error: Some("HTTP 503".into()),
            },
            FailingFeed {
                name: "AFP".into(),
                since: None,
                gone: true,
                error: None,
            },
        ];
        let r = digest(&DigestView {
            channel: "matin",
            stories: &[],
            failing: &failing,
            health: &[notice(Event::Failing, None)],
            zone: Zone::Named(chrono_tz::Europe::Paris),
        });
        assert_eq!(r.subject, "[veille] matin: santé des flux");
        assert!(r.text.starts_with("Aucun article depuis le dernier envoi."));
        assert_eq!(r.text.matches("Le Monde").count(), 1, "{}", r.text);
        assert!(r.text.contains("- AFP : disparu (410)"), "{}", r.text);
    }

    #[test]
    fn spans_read_as_french_durations() {
        let cases = [
            (0, "1 min"),
            (45 * 60, "45 min"),
            (3600, "1 h"),
            (2 * 3600 + 1800, "2 h 30"),
            (26 * 3600, "26 h"),
            (5 * 86400, "5 jours"),
        ];
        for (secs, want) in cases {
            assert_eq!(span(secs), want, "{secs}");
        }
    }
}

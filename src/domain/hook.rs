//! What a webhook request carries (SPEC §5): the `json` shape, one object per
//! story or one digest object listing stories, and the Slack and Discord
//! message shapes made from it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::health::Notice;
use super::link::without_tracking;
use super::render::{self, StoryView, is_web_link, plural};
use super::rules::{Field, field_text};
use super::text::{cut, one_line, truncate_chars};
use super::zone::Zone;

/// Bytes of plain text kept in a story's `summary`.
const SUMMARY_BYTES: usize = 1000;
/// Discord refuses a message `content` longer than this many characters.
const DISCORD_CHARS: usize = 2000;
/// Slack truncates a message `text` beyond this many characters.
const SLACK_CHARS: usize = 39_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Slack,
    Discord,
}

/// One story, as the `json` format sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryJson {
    /// The alert id, equal to the `webhook-id` header of a per-story request.
    pub id: String,
    pub rules: Vec<String>,
    /// Matched terms as written in the config, first match first.
    pub terms: Vec<String>,
    pub title: String,
    pub link: Option<String>,
    /// RFC 3339.
    pub published: Option<String>,
    pub summary: String,
    pub feeds: Vec<String>,
    /// Each feed's own link to the story, in the order of `feeds` (wire
    /// copies have one per outlet). Absent from digests frozen before it.
    #[serde(default)]
    pub links: Vec<Option<String>>,
    /// `"test": true` on the message `veille send-test` sends; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestJson {
    pub id: String,
    pub channel: String,
    pub stories: Vec<StoryJson>,
    /// Feed-health alerts that waited for the digest. Absent from digests
    /// frozen before it, and left out when empty (the `json` format sends
    /// no `health` key then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthJson>,
}

/// One feed-health alert, as the `json` format sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthJson {
    /// The alert id, equal to the `webhook-id` header of its own request.
    pub id: String,
    pub feed: String,
    /// The feed's address as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `failing`, `gone`, `silent` or `recovered`.
    pub event: String,
    /// With `recovered`: `failing` or `silent`.
    pub recovered_from: Option<String>,
    /// When the failure or the silence began, RFC 3339.
    pub since: String,
    pub error: Option<String>,
    /// The feed's usual gap between new items (`silent`).
    pub usual_gap_seconds: Option<i64>,
    /// The alert in one French sentence, as the email says it.
    pub text: String,
}

/// What one webhook request is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Hook {
    Story(StoryJson),
    Digest(DigestJson),
    Health(HealthJson),
}

pub fn health(id: &str, n: &Notice, zone: Zone) -> HealthJson {
    HealthJson {
        id: id.to_owned(),
        feed: n.feed.clone(),
        url: n.url.clone(),
        event: n.event.as_str().to_owned(),
        recovered_from: n.recovered_from.map(|e| e.as_str().to_owned()),
        since: chrono::DateTime::from_timestamp(n.since, 0)
            .unwrap_or_default()
            .to_rfc3339(),
        error: n.error.clone(),
        usual_gap_seconds: n.usual_gap,
        text: render::health(n, zone).text.trim_end().to_owned(),
    }
}

pub fn story(id: &str, v: &StoryView) -> StoryJson {
    let mut terms: Vec<String> = Vec::new();
    for h in v.hits {
        if !terms.contains(&h.term) {
            terms.push(h.term.clone());
        }
    }
    let summary = [Field::Summary, Field::Content]
        .into_iter()
        .map(|f| field_text(v.item, f))
        .find(|t| !t.trim().is_empty())
        .map(|t| cut(t.trim(), SUMMARY_BYTES).to_owned())
        .unwrap_or_default();
    StoryJson {
        id: id.to_owned(),
        rules: v.rules.to_vec(),
        terms,
        title: v.item.title.clone(),
        link: v.item.link.as_deref().map(without_tracking),
        published: v.item.published.map(|d| d.to_rfc3339()),
        summary,
        feeds: v.outlets.iter().map(|o| o.feed.clone()).collect(),
        links: v
            .outlets
            .iter()
            .map(|o| o.link.as_deref().map(without_tracking))
            .collect(),
        test: false,
    }
}

/// The request body for `format`.
pub fn body(format: Format, hook: &Hook) -> Value {
    let stories: &[StoryJson] = match hook {
        Hook::Story(s) => std::slice::from_ref(s),
        Hook::Digest(d) => &d.stories,
        Hook::Health(_) => &[],
    };
    match format {
        Format::Json => match hook {
            Hook::Story(s) => json!(s),
            Hook::Digest(d) => json!(d),
            Hook::Health(h) => json!(h),
        },
        Format::Slack => {
            let text = chat_text(hook, stories, &SLACK);
            json!({ "text": truncate_chars(&text, SLACK_CHARS) })
        }
        Format::Discord => {
            let content = chat_text(hook, stories, &DISCORD);
            // Feed text must not ping anyone: no @everyone, no role mentions.
            json!({
                "content": truncate_chars(&content, DISCORD_CHARS),
                "allowed_mentions": { "parse": [] },
            })
        }
    }
}

/// How a chat service marks text up.
struct Markup {
    bold: &'static str,
    escape: fn(&str) -> String,
    /// A linked title from (escaped title, link).
    link: fn(&str, &str) -> String,
}

const SLACK: Markup = Markup {
    bold: "*",
    escape: slack_escape,
    // `|` and `>` would end a Slack link early.
    link: |title, l| format!("<{}|{title}>", l.replace('|', "%7C").replace('>', "%3E")),
};

const DISCORD: Markup = Markup {
    bold: "**",
    escape: discord_escape,
    // Angle brackets: a link without an embedded preview.
    link: |title, l| format!("[{title}](<{}>)", l.replace('>', "%3E")),
};

/// The message text of a chat service: for a digest a heading line, then
/// per story its title (linked), rules and feeds; a lone story's summary.
fn chat_text(hook: &Hook, stories: &[StoryJson], m: &Markup) -> String {
    let (b, esc) = (m.bold, m.escape);
    let mut text = String::new();
    let health: &[HealthJson] = match hook {
        Hook::Health(h) => std::slice::from_ref(h),
        Hook::Digest(d) => &d.health,
        Hook::Story(_) => &[],
    };
    if let Hook::Digest(d) = hook {
        text.push_str(&format!(
            "{b}[veille] {}{b} : {} article{}\n",
            esc(&d.channel),
            stories.len(),
            plural(stories.len())
        ));
    }
    for h in health {
        text.push_str(&format!("{b}[veille]{b} {}\n", esc(&h.text)));
    }
    for s in stories {
        let title = esc(&one_line(&s.title));
        let line = match s.link.as_deref().filter(|l| is_web_link(l)) {
            Some(l) => (m.link)(&title, l),
            None => title,
        };
        // Each outlet named with its own link when several carried it.
        let several = s.feeds.len() > 1;
        let outlets: Vec<String> = s
            .feeds
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let link = s.links.get(i).and_then(Option::as_deref);
                match link.filter(|l| several && is_web_link(l)) {
                    Some(l) => (m.link)(&esc(f), l),
                    None => esc(f),
                }
            })
            .collect();
        text.push_str(&format!(
            "{b}{line}{b}\n{} · {}\n",
            esc(&s.rules.join(", ")),
            outlets.join(", ")
        ));
        if matches!(hook, Hook::Story(_)) && !s.summary.is_empty() {
            text.push_str(&format!("> {}\n", esc(&one_line(&s.summary))));
        }
    }
    text
}

/// Slack's three control characters (its message formatting docs).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown characters Discord interprets, and `@` against mentions.
fn discord_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '@'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Item, Outlet};
    use crate::domain::triage::StoredHit;
    use crate::domain::zone::Zone;

    fn sample() -> StoryJson {
        let item = Item {
            title: "Les puces <b>&</b> l’IA @everyone".into(),
            link: Some("https://ex.fr/a?x=1|2&utm_source=rss".into()),
            summary: "Pékin répond.\nAvec l’IA.".into(),
            published: chrono::DateTime::from_timestamp(1_764_000_000, 0),
            ..Item::default()
        };
        let hits = [
            StoredHit {
                rule: "puces-ia".into(),
                field: "title".into(),
                term: "puces".into(),
                start: 4,
                end: 9,
            },
            StoredHit {
                rule: "puces-ia".into(),
                field: "summary".into(),
                term: "IA".into(),
                start: 0,
                end: 0,
            },
            StoredHit {
                rule: "puces-ia".into(),
                field: "title".into(),
                term: "IA".into(),
                start: 0,
                end: 0,
            },
        ];
        let view = StoryView {
            rules: &["puces-ia".to_owned()],
            hits: &hits,
            item: &item,
            outlets: &[
                Outlet {
                    feed: "Le Monde".into(),
                    link: Some("https://lemonde.fr/a#xtor=RSS-3-[lestitres]".into()),
                },
                Outlet {
                    feed: "AFP".into(),
                    link: None,
                },
            ],
            zone: Zone::Local,
        };
        story("a1", &view)
    }

    #[test]
    fn json_story_has_the_spec_fields() {
        let v = body(Format::Json, &Hook::Story(sample()));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "id",
            "rules",
            "terms",
            "title",
            "link",
            "published",
            "summary",
            "feeds",
            "links",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["terms"], json!(["puces", "IA"]));
        assert_eq!(v["feeds"], json!(["Le Monde", "AFP"]));
        // Links shown without their tracking parameters.
        assert_eq!(v["links"], json!(["https://lemonde.fr/a", null]));
        assert_eq!(v["link"], json!("https://ex.fr/a?x=1|2"));
        assert_eq!(v["published"], json!("2025-11-24T16:00:00+00:00"));
        assert_eq!(v["summary"], json!("Pékin répond.\nAvec l’IA."));
        let digest = Hook::Digest(DigestJson {
            id: "d1".into(),
            channel: "moi".into(),
            stories: vec![sample(), sample()],
            health: Vec::new(),
        });
        let v = body(Format::Json, &digest);
        assert_eq!(v["id"], json!("d1"));
        assert_eq!(v["stories"].as_array().unwrap().len(), 2);
        assert_eq!(v["stories"][0]["id"], json!("a1"));
    }

    #[test]
    fn slack_and_discord_escape_feed_text() {
        let s = body(Format::Slack, &Hook::Story(sample()));
        let text = s["text"].as_str().unwrap();
        assert!(text.contains("&lt;b&gt;&amp;&lt;/b&gt;"), "{text}");
        assert!(text.contains("<https://ex.fr/a?x=1%7C2|"), "{text}");
        let d = body(Format::Discord, &Hook::Story(sample()));
        let content = d["content"].as_str().unwrap();
        assert!(content.contains("\\@everyone"), "{content}");
        assert_eq!(d["allowed_mentions"], json!({"parse": []}));
        // Summary on one line after the quote marker.
        assert!(content.contains("> Pékin répond. Avec l’IA."), "{content}");
    }

    #[test]
    fn discord_content_fits_its_limit() {
        let many = Hook::Digest(DigestJson {
            id: "d".into(),
            channel: "c".into(),
            stories: vec![sample(); 200],
            health: Vec::new(),
        });
        let d = body(Format::Discord, &many);
        assert!(d["content"].as_str().unwrap().chars().count() <= DISCORD_CHARS);
    }

    #[test]
    fn a_health_alert_is_one_object_and_one_chat_line() {
        use crate::domain::health::{Episode, Event, Notice};
        let n = Notice {
            feed: "AFP".into(),
            url: Some("https://www.afp.com/fr/actus/afp_actualite/792,31,9,7,33/feed".into()),
            event: Event::Recovered,
            recovered_from: Some(Episode::Failing),
            since: 1_764_000_000,
            at: 1_764_100_000,
            error: None,
            usual_gap: None,
        };
        let h = health("h1", &n, Zone::Named(chrono_tz::Europe::Paris));
        let v = body(Format::Json, &Hook::Health(h.clone()));
        assert_eq!(v["id"], json!("h1"));
        assert_eq!(v["event"], json!("recovered"));
        assert_eq!(v["url"], json!(n.url));
        assert_eq!(v["recovered_from"], json!("failing"));
        assert_eq!(v["since"], json!("2025-11-24T16:00:00+00:00"));
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("Le flux AFP (https://www.afp.com/fr/actus/afp_actualite/792,31,9,7,33/feed) répond de nouveau")
        );
        let s = body(Format::Slack, &Hook::Health(h.clone()));
        assert_eq!(s["text"].as_str().unwrap().lines().count(), 1);
        let digest = Hook::Digest(DigestJson {
            id: "d".into(),
            channel: "matin".into(),
            stories: Vec::new(),
            health: vec![h],
        });
        assert_eq!(body(Format::Json, &digest)["health"][0]["id"], json!("h1"));
        let d = body(Format::Discord, &digest);
        assert!(d["content"].as_str().unwrap().contains("répond de nouveau"));
    }
}

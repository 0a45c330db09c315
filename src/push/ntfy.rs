//! ntfy (ntfy.sh or a server of one's own): a POST of the text to the
//! topic's URL, the rest in headers (`Title`, `Click`, `Tags`, `Priority`,
//! `Authorization`). A message stays under ntfy's 4,096 bytes, past which
//! it would become an attachment.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use url::Url;

use super::{Budget, Kind, PLAIN, Request, Settings, Table, Wrong, compose, web_url, wrong};
use crate::domain::hook::Hook;

pub const KIND: Kind = Kind {
    name: "ntfy",
    keys: &["url", "token_file", "priority", "tags"],
    needs_token: false,
    parse,
};

const BYTES: usize = 4096;

#[derive(Debug, Clone)]
pub struct Ntfy {
    /// The topic's URL.
    pub url: Url,
    /// 1 (min) to 5 (max); ntfy's default (3) when absent.
    pub priority: Option<i64>,
    /// Emoji short codes or words shown with the message.
    pub tags: Vec<String>,
}

fn parse(t: &dyn Table) -> Result<Settings, Wrong> {
    let Some(url) = t.string("url") else {
        return wrong(
            "url",
            "kind = \"ntfy\" needs `url`, the topic's URL (https://ntfy.sh/my-topic)",
        );
    };
    let url = web_url("url", url)?;
    if url.path().trim_matches('/').is_empty() {
        return wrong(
            "url",
            format!("{url}: name the topic in the URL (https://ntfy.sh/my-topic)"),
        );
    }
    let priority = t.integer("priority");
    if let Some(p) = priority.filter(|p| !(1..=5).contains(p)) {
        return wrong(
            "priority",
            format!("{p}: ntfy's priorities go from 1 (min) to 5 (max)"),
        );
    }
    let tags: Vec<String> = t
        .strings("tags")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(bad) = tags.iter().find(|t| t.contains(',') || t.trim().is_empty()) {
        return wrong(
            "tags",
            format!("{bad:?}: one tag per string, without commas"),
        );
    }
    Ok(Settings::Ntfy(Ntfy {
        url,
        priority,
        tags,
    }))
}

impl Ntfy {
    pub fn request(&self, hook: &Hook, token: Option<&str>) -> Request {
        let c = compose(hook, &PLAIN, Budget::Bytes(BYTES), false);
        let mut headers = vec![
            ("Content-Type", "text/plain; charset=utf-8".to_owned()),
            ("Title", header_text(&c.title)),
        ];
        if let Some(click) = c.click {
            headers.push(("Click", click));
        }
        if !self.tags.is_empty() {
            headers.push(("Tags", header_text(&self.tags.join(","))));
        }
        if let Some(p) = self.priority {
            headers.push(("Priority", p.to_string()));
        }
        if let Some(t) = token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        Request {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers,
            body: c.body.into_bytes(),
        }
    }
}

/// A header value: as is when it is plain ASCII, else an RFC 2047 encoded
/// word, which ntfy decodes (HTTP headers carry no UTF-8 of their own).
fn header_text(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.to_owned()
    } else {
        format!("=?UTF-8?B?{}?=", B64.encode(s.as_bytes()))
    }
}

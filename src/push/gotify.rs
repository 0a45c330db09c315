//! Gotify: a POST to `/message` with an application's token, the text as
//! Markdown, and the story's link as what a tap on the notification opens
//! (`client::notification`).

use url::Url;

use super::{
    Budget, Kind, Markup, Request, Settings, Table, Wrong, compose, endpoint, web_url, wrong,
};
use crate::domain::hook::Hook;

pub const KIND: Kind = Kind {
    name: "gotify",
    keys: &["url", "token_file", "priority"],
    needs_token: true,
    parse,
};

const CHARS: usize = 8000;

#[derive(Debug, Clone)]
pub struct Gotify {
    /// The server's address (not `/message`).
    pub url: Url,
    /// 0 to 10; the application's default when absent.
    pub priority: Option<i64>,
}

fn parse(t: &dyn Table) -> Result<Settings, Wrong> {
    let Some(url) = t.string("url") else {
        return wrong(
            "url",
            "kind = \"gotify\" needs `url`, the server's address (https://gotify.example.org)",
        );
    };
    let url = web_url("url", url)?;
    let priority = t.integer("priority");
    if let Some(p) = priority.filter(|p| !(0..=10).contains(p)) {
        return wrong(
            "priority",
            format!("{p}: Gotify's priorities go from 0 to 10"),
        );
    }
    Ok(Settings::Gotify(Gotify { url, priority }))
}

/// Markdown as Gotify's clients render it.
const MARKDOWN: Markup = Markup {
    escape: markdown_escape,
    bold: |s| format!("**{s}**"),
    link: |text, link| format!("[{text}](<{}>)", link.replace('>', "%3E")),
    link_line: false,
};

fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '|' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Gotify {
    pub fn request(&self, hook: &Hook, token: Option<&str>) -> Request {
        let c = compose(hook, &MARKDOWN, Budget::Chars(CHARS), false);
        let mut extras = serde_json::json!({
            "client::display": { "contentType": "text/markdown" },
        });
        if let Some(url) = &c.click {
            extras["client::notification"] = serde_json::json!({ "click": { "url": url } });
        }
        let mut body = serde_json::json!({
            "title": c.title,
            "message": c.body,
            "extras": extras,
        });
        if let Some(p) = self.priority {
            body["priority"] = p.into();
        }
        Request {
            method: reqwest::Method::POST,
            url: endpoint(&self.url, &["message"]),
            headers: vec![
                ("Content-Type", "application/json".to_owned()),
                ("X-Gotify-Key", token.unwrap_or_default().to_owned()),
            ],
            body: body.to_string().into_bytes(),
        }
    }
}

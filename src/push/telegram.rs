//! Telegram: a bot's `sendMessage` to a chat, in Telegram's HTML subset,
//! at most 4,096 characters; the story's link previewed. The token sits in
//! the URL's path (`/bot<token>/…`): requests are built here and never
//! logged, and errors name the host only.

use std::time::Duration;

use url::Url;

use super::{
    Budget, HTML, Kind, Request, Settings, Table, Wrong, compose, endpoint, web_url, wrong,
};
use crate::domain::hook::Hook;

pub const KIND: Kind = Kind {
    name: "telegram",
    keys: &["chat_id", "token_file", "api_url"],
    needs_token: true,
    parse,
};

const CHARS: usize = 4096;
const API: &str = "https://api.telegram.org";

#[derive(Debug, Clone)]
pub struct Telegram {
    pub api_url: Url,
    /// A chat's number (`-1001234567890`) or a public channel (`@name`).
    pub chat_id: String,
}

fn parse(t: &dyn Table) -> Result<Settings, Wrong> {
    let Some(chat_id) = t.string("chat_id") else {
        return wrong(
            "chat_id",
            "kind = \"telegram\" needs `chat_id`: the chat's number (\"-1001234567890\"; the bot's getUpdates shows it) or \"@channel\"",
        );
    };
    let chat_id = chat_id.trim();
    let number = chat_id.strip_prefix('-').unwrap_or(chat_id);
    let numeric = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    let public = chat_id
        .strip_prefix('@')
        .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if !numeric && !public {
        return wrong(
            "chat_id",
            format!(
                "{chat_id:?} is neither a chat's number (\"-1001234567890\") nor a public channel (\"@name\")"
            ),
        );
    }
    let api_url = web_url("api_url", t.string("api_url").unwrap_or(API))?;
    Ok(Settings::Telegram(Telegram {
        api_url,
        chat_id: chat_id.to_owned(),
    }))
}

impl Telegram {
    pub fn request(&self, hook: &Hook, token: Option<&str>) -> Request {
        let c = compose(hook, &HTML, Budget::Chars(CHARS), true);
        let preview = match &c.click {
            Some(url) => serde_json::json!({ "url": url, "prefer_small_media": true }),
            None => serde_json::json!({ "is_disabled": true }),
        };
        let body = serde_json::json!({
            "chat_id": self.chat_id,
            "text": c.body,
            "parse_mode": "HTML",
            "link_preview_options": preview,
        });
        let bot = format!("bot{}", token.unwrap_or_default());
        Request {
            method: reqwest::Method::POST,
            url: endpoint(&self.api_url, &[&bot, "sendMessage"]),
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// Telegram's `parameters.retry_after` on a 429, in seconds.
pub fn wait(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["parameters"]["retry_after"]
        .as_u64()
        .map(Duration::from_secs)
}

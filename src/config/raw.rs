//! The config file as written: serde structs that mirror SPEC §2 key for key.
//!
//! Every table denies unknown keys, and every value that a later check may
//! reject keeps its span so that the error can point at it. Nothing here has a
//! default or a meaning yet: `config::validate` turns these into `Config`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub daemon: Option<RawDaemon>,
    pub smtp: Option<S<RawSmtp>>,
    #[serde(default, rename = "feed")]
    pub feeds: Vec<S<RawFeed>>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<S<RawRule>>,
    #[serde(default, rename = "channel")]
    pub channels: BTreeMap<String, S<RawChannel>>,
    pub health: Option<S<RawHealth>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub notify: S<Vec<S<String>>>,
    pub failing_after: Option<S<String>>,
    pub silent_after: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub database: Option<S<String>>,
    pub interval: Option<S<String>>,
    pub concurrency: Option<S<i64>>,
    pub per_host: Option<S<i64>>,
    pub timeout: Option<S<String>>,
    pub max_body: Option<S<String>>,
    pub user_agent: Option<S<String>>,
    pub first_poll_window: Option<S<String>>,
    pub max_age: Option<S<String>>,
    pub timezone: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub keep_text: Option<S<String>>,
    pub wire_copies: Option<bool>,
    pub wire_window: Option<S<String>>,
    pub listen: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: S<String>,
    pub port: Option<S<i64>>,
    pub security: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub from: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    pub name: S<String>,
    pub url: S<String>,
    pub interval: Option<S<String>>,
    pub first_poll_window: Option<S<String>>,
    pub max_age: Option<S<String>>,
    #[serde(default)]
    pub tags: Vec<S<String>>,
    pub full_text: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: S<String>,
    #[serde(default)]
    pub any: Vec<S<String>>,
    #[serde(default)]
    pub all: Vec<S<String>>,
    #[serde(default)]
    pub none: Vec<S<String>>,
    pub query: Option<S<String>>,
    pub fields: Option<Vec<S<String>>>,
    pub feeds: Option<Vec<S<String>>>,
    pub notify: S<Vec<S<String>>>,
    pub accents: Option<S<String>>,
}

/// One table for every channel kind, so that an unknown key is caught by serde
/// with its span; which keys each kind accepts is checked in `validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub kind: S<String>,
    pub to: Option<S<Vec<S<String>>>>,
    pub digest: Option<S<String>>,
    pub hold: Option<S<String>>,
    pub url: Option<S<String>>,
    pub format: Option<S<String>>,
    pub secret_file: Option<S<String>>,
    pub path: Option<S<String>>,
    // Push kinds (`crate::push`): each reads the keys it lists.
    pub token_file: Option<S<String>>,
    pub chat_id: Option<S<String>>,
    pub api_url: Option<S<String>>,
    pub homeserver: Option<S<String>>,
    pub room: Option<S<String>>,
    pub priority: Option<S<i64>>,
    pub tags: Option<S<Vec<S<String>>>>,
}

impl RawChannel {
    /// Where key `key` is written, if it is.
    pub fn span_of(&self, key: &str) -> Option<std::ops::Range<usize>> {
        match key {
            "to" => self.to.as_ref().map(S::span),
            "tags" => self.tags.as_ref().map(S::span),
            "priority" => self.priority.as_ref().map(S::span),
            _ => self.string_of(key).map(S::span),
        }
    }

    fn string_of(&self, key: &str) -> Option<&S<String>> {
        match key {
            "url" => self.url.as_ref(),
            "format" => self.format.as_ref(),
            "secret_file" => self.secret_file.as_ref(),
            "path" => self.path.as_ref(),
            "token_file" => self.token_file.as_ref(),
            "chat_id" => self.chat_id.as_ref(),
            "api_url" => self.api_url.as_ref(),
            "homeserver" => self.homeserver.as_ref(),
            "room" => self.room.as_ref(),
            _ => None,
        }
    }

    /// Every key but `kind`, `digest` and `hold`, with where it is written.
    pub const KEYS: &'static [&'static str] = &[
        "to",
        "url",
        "format",
        "secret_file",
        "path",
        "token_file",
        "chat_id",
        "api_url",
        "homeserver",
        "room",
        "priority",
        "tags",
    ];
}

impl crate::push::Table for RawChannel {
    fn string(&self, key: &str) -> Option<&str> {
        self.string_of(key).map(|s| s.get_ref().as_str())
    }

    fn integer(&self, key: &str) -> Option<i64> {
        match key {
            "priority" => self.priority.as_ref().map(|p| *p.get_ref()),
            _ => None,
        }
    }

    fn strings(&self, key: &str) -> Option<Vec<&str>> {
        match key {
            "tags" => self
                .tags
                .as_ref()
                .map(|t| t.get_ref().iter().map(|s| s.get_ref().as_str()).collect()),
            _ => None,
        }
    }
}

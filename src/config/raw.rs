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
}

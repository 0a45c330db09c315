//! `RawConfig` → `Config`: defaults, units, paths, cross-references and
//! compiled rules, each failure pointing at the offending value.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::Glob;
use toml::Spanned;
use url::Url;

use super::raw::{RawChannel, RawConfig, RawDaemon, RawFeed, RawHealth, RawRule, RawSmtp, S};
use super::*;
use crate::domain::fulltext::Mode as FullText;
use crate::domain::health::{self, Policy};
use crate::domain::rules::query;
use crate::domain::rules::{Accents, Field, Rule, RuleSet, Scope, Term};
use crate::domain::rules::{Lint, control_message, lint_listed};
use crate::push;

pub struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
    env: &'a Env,
    /// The config file's folder: relative paths of what veille reads.
    dir: PathBuf,
}

type Result<T> = std::result::Result<T, ConfigError>;

impl<'a> Validator<'a> {
    pub fn new(path: &'a Path, source: &'a str, env: &'a Env) -> Self {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Validator {
            path,
            source,
            env,
            dir,
        }
    }

    pub fn run(&self) -> Result<Config> {
        let raw = self.deserialize()?;
        let daemon = self.daemon(raw.daemon.unwrap_or_default())?;
        let feeds = self.feeds(&raw.feeds, &daemon)?;
        let channels = self.channels(&raw.channels)?;
        let smtp = self.smtp(raw.smtp.as_ref(), &channels)?;
        let rules = RuleSet::new(self.rules(&raw.rules, &feeds, &channels)?);
        let health = match &raw.health {
            Some(h) => Some(self.health(h.get_ref(), &channels)?),
            None => None,
        };
        Ok(Config {
            wire_keep: wire_keep(&daemon, &feeds),
            digest: format!(
                "{:016x}",
                xxhash_rust::xxh3::xxh3_64(self.source.as_bytes())
            ),
            health,
            path: self.path.to_owned(),
            daemon,
            smtp,
            feeds,
            rules,
            channels,
        })
    }

    fn deserialize(&self) -> Result<RawConfig> {
        self.deserialize_as_written()
            .map_err(|e| self.single_bracket_list().unwrap_or(e))
    }

    /// `[feed]` where `[[feed]]` was meant: TOML then says "duplicate
    /// key" (or a map where a list is expected), which names neither the
    /// table nor the fix.
    fn single_bracket_list(&self) -> Option<ConfigError> {
        let mut offset = 0;
        for line in self.source.split_inclusive('\n') {
            let header = line.split('#').next().unwrap_or("").trim();
            let name = header
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .filter(|h| !h.starts_with('[') && !h.ends_with(']'))
                .map(str::trim);
            if let Some(name @ ("feed" | "rule")) = name {
                let at = offset + line.len() - line.trim_start().len();
                return Some(self.error(
                    Some(at..at + header.len()),
                    format!(
                        "`[{name}]` opens a single table, but each {name} is an entry of a list: write `[[{name}]]`, with two brackets"
                    ),
                ));
            }
            offset += line.len();
        }
        None
    }

    fn deserialize_as_written(&self) -> Result<RawConfig> {
        let de = toml::Deserializer::parse(self.source)
            .map_err(|e| self.error(e.span(), e.message().to_owned()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            // Spanned<T> shows up in the path as a private serde key.
            let path = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            // The document is valid TOML (only its shape is wrong): read
            // it untyped to name the `[[rule]]` or `[[feed]]` at fault.
            let doc = self.source.parse::<toml::Table>().ok();
            let message = explain_serde(&path, e.inner().message(), doc.as_ref());
            self.error(e.inner().span(), message)
        })
    }

    fn error(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        ConfigError {
            file: self.path.to_owned(),
            at: span.map(|s| self.line_col(s.start)),
            message,
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: String) -> ConfigError {
        self.error(Some(value.span()), message)
    }

    /// Where byte `offset` of the string value `v` sits in the file: after
    /// its opening quotes (and the newline a multi-line string trims), with
    /// the escapes of a basic string walked through.
    fn string_offset(&self, v: &S<String>, offset: usize) -> usize {
        let span = v.span();
        let raw = &self.source[span.clone()];
        let (open, literal) = match raw {
            _ if raw.starts_with("'''") => (3, true),
            _ if raw.starts_with("\"\"\"") => (3, false),
            _ if raw.starts_with('\'') => (1, true),
            _ => (1, false),
        };
        let mut i = span.start + open;
        if open == 3 {
            let rest = &self.source[i..];
            i += if rest.starts_with("\r\n") {
                2
            } else {
                usize::from(rest.starts_with('\n'))
            };
        }
        if literal {
            return i + offset;
        }
        let (src, value) = (self.source.as_bytes(), v.get_ref());
        let mut decoded = 0;
        while decoded < offset && i < span.end {
            if src[i] != b'\\' {
                let len = self.source[i..].chars().next().map_or(1, char::len_utf8);
                i += len;
                decoded += len;
                continue;
            }
            let one = value[decoded..].chars().next().map_or(1, char::len_utf8);
            match src.get(i + 1) {
                Some(b'x') => (i, decoded) = (i + 4, decoded + one),
                Some(b'u') => (i, decoded) = (i + 6, decoded + one),
                Some(b'U') => (i, decoded) = (i + 10, decoded + one),
                // A line-ending backslash: the white space after it is trimmed.
                Some(c) if c.is_ascii_whitespace() => {
                    i += 1;
                    while src.get(i).is_some_and(u8::is_ascii_whitespace) {
                        i += 1;
                    }
                }
                _ => (i, decoded) = (i + 2, decoded + one),
            }
        }
        i
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }

    // ---- [daemon] ----

    fn daemon(&self, d: RawDaemon) -> Result<Daemon> {
        let interval = self.duration_or(&d.interval, "daemon.interval", defaults::INTERVAL)?;
        self.at_least_a_minute(&d.interval, interval, "daemon.interval")?;
        let retention = self.duration_or(&d.retention, "daemon.retention", defaults::RETENTION)?;
        Ok(Daemon {
            database: match &d.database {
                Some(p) if Location::is_url(p.get_ref()) => Location::postgres(p.get_ref())
                    .map_err(|e| self.at(p, format!("daemon.database: {e}")))?,
                Some(p) => Location::File(self.written_path(p.get_ref())),
                None => Location::File(self.written_path(defaults::DATABASE)),
            },
            interval,
            concurrency: self.count(&d.concurrency, "daemon.concurrency", defaults::CONCURRENCY)?,
            per_host: self.count(&d.per_host, "daemon.per_host", defaults::PER_HOST)?,
            timeout: self.duration_or(&d.timeout, "daemon.timeout", defaults::TIMEOUT)?,
            max_body: match &d.max_body {
                Some(s) => parse_size(s.get_ref()).ok_or_else(|| {
                    self.at(s, format!("daemon.max_body: invalid size {:?} (write e.g. \"16MiB\", \"512KiB\")", s.get_ref()))
                })?,
                None => defaults::MAX_BODY,
            },
            user_agent: d.user_agent.map(|s| s.into_inner()).unwrap_or_else(defaults::user_agent),
            first_poll_window: self.duration_or(&d.first_poll_window, "daemon.first_poll_window", defaults::FIRST_POLL_WINDOW)?,
            max_age: self.duration_or(&d.max_age, "daemon.max_age", defaults::MAX_AGE)?,
            timezone: match &d.timezone {
                Some(tz) => Zone::Named(tz.get_ref().parse().map_err(|_| {
                    self.at(tz, format!("daemon.timezone: unknown time zone {:?} (write an IANA name such as \"Europe/Paris\")", tz.get_ref()))
                })?),
                None => Zone::Local,
            },
            retention,
            // Text never outlives its item: a shorter retention caps it.
            keep_text: self.duration_or(&d.keep_text, "daemon.keep_text", defaults::KEEP_TEXT)?.min(retention),
            wire_copies: d.wire_copies.unwrap_or(defaults::WIRE_COPIES),
            wire_window: self.duration_or(&d.wire_window, "daemon.wire_window", defaults::WIRE_WINDOW)?,
            listen: match &d.listen {
                Some(a) => Some(a.get_ref().trim().parse().map_err(|_| {
                    self.at(a, format!("daemon.listen: invalid address {:?} (write an IP address and a port, e.g. \"127.0.0.1:9187\" or \"[::1]:9187\")", a.get_ref()))
                })?),
                None => None,
            },
        })
    }

    fn duration_or(
        &self,
        value: &Option<S<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration> {
        match value {
            Some(v) => self.duration(v, key),
            None => Ok(default),
        }
    }

    fn duration(&self, v: &S<String>, key: &str) -> Result<Duration> {
        humantime::parse_duration(v.get_ref().trim()).map_err(|_| {
            self.at(
                v,
                format!(
                    "{key}: invalid duration {:?} (write e.g. \"90s\", \"15m\", \"2h\", \"7d\")",
                    v.get_ref()
                ),
            )
        })
    }

    fn at_least_a_minute(&self, v: &Option<S<String>>, d: Duration, key: &str) -> Result<()> {
        match v {
            Some(v) if d < defaults::MIN_INTERVAL => Err(self.at(
                v,
                format!(
                    "{key}: {:?} is too short: poll intervals are at least 1m",
                    v.get_ref()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn count(&self, v: &Option<S<i64>>, key: &str, default: usize) -> Result<usize> {
        match v {
            Some(n) if *n.get_ref() >= 1 => Ok(*n.get_ref() as usize),
            Some(n) => Err(self.at(n, format!("{key}: must be at least 1, not {}", n.get_ref()))),
            None => Ok(default),
        }
    }

    /// Where veille writes: under `$STATE_DIRECTORY` when set, else beside
    /// the config file.
    fn written_path(&self, p: &str) -> PathBuf {
        let base = self.env.state_directory.as_deref().unwrap_or(&self.dir);
        base.join(p)
    }

    // ---- [health] ----

    fn health(&self, h: &RawHealth, channels: &[Channel]) -> Result<Health> {
        let notify = h.notify.get_ref();
        if notify.is_empty() {
            return Err(self.at(
                &h.notify,
                "health.notify: names no channel; name the channels that receive feed-health alerts, or leave [health] out".into(),
            ));
        }
        for ch in notify {
            self.known_channel(ch, channels, "health.notify: notifies")?;
        }
        let failing_after = self.duration_or(
            &h.failing_after,
            "health.failing_after",
            Duration::from_secs(health::FAILING_AFTER as u64),
        )?;
        if failing_after < Duration::from_secs(60) {
            let v = h.failing_after.as_ref().expect("the default is a day");
            return Err(self.at(
                v,
                format!(
                    "health.failing_after: {:?} is too short: at least 1m",
                    v.get_ref()
                ),
            ));
        }
        let silent_after = match &h.silent_after {
            Some(n) if (1..=1000).contains(n.get_ref()) => *n.get_ref() as u32,
            Some(n) => {
                return Err(self.at(
                    n,
                    format!(
                        "health.silent_after: {} is not a number of usual gaps from 1 to 1000",
                        n.get_ref()
                    ),
                ));
            }
            None => health::SILENT_AFTER,
        };
        Ok(Health {
            notify: notify.iter().map(|c| c.get_ref().clone()).collect(),
            policy: Policy {
                failing_after: failing_after.as_secs() as i64,
                silent_after,
            },
        })
    }

    /// An error unless `ch` names one of `channels`; `what` begins it.
    fn known_channel(&self, ch: &S<String>, channels: &[Channel], what: &str) -> Result<()> {
        if channels.iter().any(|c| &c.name == ch.get_ref()) {
            return Ok(());
        }
        let known: BTreeSet<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        Err(self.at(
            ch,
            format!(
                "{what} unknown channel {:?} (channels: {})",
                ch.get_ref(),
                list_or_none(&known)
            ),
        ))
    }

    // ---- [[feed]] ----

    fn feeds(&self, raw: &[S<RawFeed>], d: &Daemon) -> Result<Vec<Feed>> {
        let mut seen = HashSet::new();
        raw.iter()
            .map(|f| {
                let f = f.get_ref();
                self.name(&f.name, "feed.name", &mut seen, "feed")?;
                let interval = self.duration_or(&f.interval, "feed.interval", d.interval)?;
                self.at_least_a_minute(&f.interval, interval, "feed.interval")?;
                Ok(Feed {
                    name: f.name.get_ref().clone(),
                    url: self.feed_url(f)?,
                    interval,
                    first_poll_window: self.duration_or(
                        &f.first_poll_window,
                        "feed.first_poll_window",
                        d.first_poll_window,
                    )?,
                    max_age: self.duration_or(&f.max_age, "feed.max_age", d.max_age)?,
                    tags: f.tags.iter().map(|t| t.get_ref().clone()).collect(),
                    full_text: self.full_text(f.full_text.as_ref())?,
                })
            })
            .collect()
    }

    fn full_text(&self, raw: Option<&S<String>>) -> Result<FullText> {
        let Some(v) = raw else {
            return Ok(FullText::Never);
        };
        match v.get_ref().as_str() {
            "never" => Ok(FullText::Never),
            "auto" => Ok(FullText::Auto),
            "always" => Ok(FullText::Always),
            other => Err(self.at(
                v,
                format!(
                    "feed.full_text: unknown value {other:?}; use \"never\", \"auto\" (fetch the page when the feed's text looks cut) or \"always\""
                ),
            )),
        }
    }

    fn name(
        &self,
        name: &S<String>,
        key: &str,
        seen: &mut HashSet<String>,
        what: &str,
    ) -> Result<()> {
        if name.get_ref().trim().is_empty() {
            return Err(self.at(name, format!("{key}: a {what} needs a name")));
        }
        if !seen.insert(name.get_ref().clone()) {
            return Err(self.at(
                name,
                format!(
                    "{key}: two {what}s are named {:?}; names must be unique",
                    name.get_ref()
                ),
            ));
        }
        Ok(())
    }

    fn feed_url(&self, f: &RawFeed) -> Result<FeedUrl> {
        let raw = f.url.get_ref().trim();
        let bad = |why: &str| {
            self.at(
                &f.url,
                format!("feed.url: {why} in feed {:?}", f.name.get_ref()),
            )
        };
        if raw.is_empty() {
            return Err(bad("empty URL"));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            let url = Url::parse(raw).map_err(|e| bad(&format!("invalid URL {raw:?} ({e})")))?;
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" => Ok(FeedUrl::Http(url)),
                "file" => url
                    .to_file_path()
                    .map(FeedUrl::File)
                    .map_err(|_| bad("a file:// URL needs an absolute path")),
                other => Err(bad(&format!(
                    "unsupported scheme {other:?} (use http, https, file or a path)"
                ))),
            };
        }
        let path = self.dir.join(raw);
        if looks_like_a_host(raw) && !path.exists() {
            return Err(bad(&format!(
                "{raw:?} reads as a file path, but it looks like a web address without its scheme: write \"https://{raw}\""
            )));
        }
        Ok(FeedUrl::File(path))
    }

    // ---- [channel.*] and [smtp] ----

    fn channels(
        &self,
        raw: &std::collections::BTreeMap<String, S<RawChannel>>,
    ) -> Result<Vec<Channel>> {
        raw.iter().map(|(name, c)| self.channel(name, c)).collect()
    }

    fn channel(&self, name: &str, spanned: &S<RawChannel>) -> Result<Channel> {
        let c = spanned.get_ref();
        let key = |k: &str| format!("channel.{name}.{k}");
        let kind = self.kind_of(&c.kind, &key("kind"))?;
        self.only_keys_of(kind, c, &key)?;
        let missing = |k: &str| {
            self.at(
                spanned,
                format!("channel.{name}: kind = {:?} needs `{k}`", kind.name()),
            )
        };
        let kind = match kind {
            Kind::Email => self.email(c.to.as_ref().ok_or_else(|| missing("to"))?, &key)?,
            Kind::Webhook => {
                self.webhook(c, c.url.as_ref().ok_or_else(|| missing("url"))?, &key)?
            }
            Kind::Maildir => ChannelKind::Maildir {
                path: self.written_path(c.path.as_ref().ok_or_else(|| missing("path"))?.get_ref()),
            },
            Kind::Push(push) => self.push(push, spanned, &key)?,
        };
        let digest = match &c.digest {
            Some(d) => Some(
                Crontab::parse(d.get_ref())
                    .map_err(|e| self.at(d, format!("{}: {e}", key("digest"))))?,
            ),
            None => None,
        };
        let hold = self.duration_or(&c.hold, &key("hold"), defaults::HOLD)?;
        if let (Some(h), Some(_)) = (&c.hold, &c.digest) {
            return Err(self.at(
                h,
                format!(
                    "{}: `hold` is for channels without `digest`; a digest already gathers copies",
                    key("hold")
                ),
            ));
        }
        Ok(Channel {
            name: name.to_owned(),
            kind,
            digest,
            hold,
        })
    }

    fn kind_of(&self, kind: &S<String>, key: &str) -> Result<Kind> {
        match kind.get_ref().as_str() {
            "email" => Ok(Kind::Email),
            "webhook" => Ok(Kind::Webhook),
            "maildir" => Ok(Kind::Maildir),
            other => match push::kind(other) {
                Some(push) => Ok(Kind::Push(push)),
                None => {
                    let kinds: Vec<String> = ["email", "webhook", "maildir"]
                        .into_iter()
                        .chain(push::KINDS.iter().map(|k| k.name))
                        .map(|k| format!("{k:?}"))
                        .collect();
                    Err(self.at(
                        kind,
                        format!("{key}: unknown kind {other:?}; use {}", kinds.join(", ")),
                    ))
                }
            },
        }
    }

    /// A push channel's settings, read by its kind; a wrong one points at
    /// its key (or at the table, for a key that is missing).
    fn push(
        &self,
        kind: &'static push::Kind,
        spanned: &S<RawChannel>,
        key: &dyn Fn(&str) -> String,
    ) -> Result<ChannelKind> {
        let c = spanned.get_ref();
        let settings = (kind.parse)(c).map_err(|w| {
            let span = c.span_of(w.key).unwrap_or_else(|| spanned.span());
            self.error(Some(span), format!("{}: {}", key(w.key), w.message))
        })?;
        Ok(ChannelKind::Push(push::Push {
            settings,
            token_file: c.token_file.as_ref().map(|p| self.dir.join(p.get_ref())),
        }))
    }

    /// Refuses a key that belongs to another kind of channel.
    fn only_keys_of(&self, kind: Kind, c: &RawChannel, key: &dyn Fn(&str) -> String) -> Result<()> {
        let allowed = kind.keys();
        match RawChannel::KEYS.iter().find_map(|k| {
            c.span_of(k)
                .filter(|_| !allowed.contains(k))
                .map(|s| (*k, s))
        }) {
            Some((k, span)) => Err(self.error(
                Some(span),
                format!(
                    "{}: not allowed for kind = {:?}; allowed here: {}",
                    key(k),
                    kind.name(),
                    ["kind"]
                        .iter()
                        .chain(allowed)
                        .chain(&["digest", "hold"])
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    fn email(&self, to: &S<Vec<S<String>>>, key: &dyn Fn(&str) -> String) -> Result<ChannelKind> {
        if to.get_ref().is_empty() {
            return Err(self.at(to, format!("{}: list at least one address", key("to"))));
        }
        if let Some(bad) = to
            .get_ref()
            .iter()
            .find(|a| !is_plausible_address(a.get_ref()))
        {
            return Err(self.at(
                bad,
                format!("{}: {:?} is not an email address", key("to"), bad.get_ref()),
            ));
        }
        Ok(ChannelKind::Email {
            to: to.get_ref().iter().map(|a| a.get_ref().clone()).collect(),
        })
    }

    fn webhook(
        &self,
        c: &RawChannel,
        url: &S<String>,
        key: &dyn Fn(&str) -> String,
    ) -> Result<ChannelKind> {
        let parsed = Url::parse(url.get_ref())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                self.at(
                    url,
                    format!("{}: {:?} is not an http(s) URL", key("url"), url.get_ref()),
                )
            })?;
        let format = match &c.format {
            None => WebhookFormat::Json,
            Some(f) => match f.get_ref().as_str() {
                "json" => WebhookFormat::Json,
                "slack" => WebhookFormat::Slack,
                "discord" => WebhookFormat::Discord,
                other => {
                    return Err(self.at(
                        f,
                        format!(
                            "{}: unknown format {other:?}; use \"json\", \"slack\" or \"discord\"",
                            key("format")
                        ),
                    ));
                }
            },
        };
        Ok(ChannelKind::Webhook {
            url: parsed,
            format,
            secret_file: c.secret_file.as_ref().map(|p| self.dir.join(p.get_ref())),
        })
    }

    fn smtp(&self, raw: Option<&S<RawSmtp>>, channels: &[Channel]) -> Result<Option<Smtp>> {
        let email = channels
            .iter()
            .find(|c| matches!(c.kind, ChannelKind::Email { .. }));
        let Some(spanned) = raw else {
            return match email {
                Some(c) => Err(ConfigError {
                    file: self.path.to_owned(),
                    at: None,
                    message: format!(
                        "channel {:?} sends email, so an [smtp] table is required",
                        c.name
                    ),
                }),
                None => Ok(None),
            };
        };
        let s = spanned.get_ref();
        let security = self.smtp_security(s)?;
        let port = self.smtp_port(s, security)?;
        self.smtp_host(s)?;
        if let (Some(pf), None) = (&s.password_file, &s.username) {
            return Err(self.at(
                pf,
                "smtp.password_file: a password needs a `username`; give both or neither".into(),
            ));
        }
        if !is_plausible_address(s.from.get_ref()) {
            return Err(self.at(
                &s.from,
                format!(
                    "smtp.from: {:?} is not an address such as \"Veille <veille@example.org>\"",
                    s.from.get_ref()
                ),
            ));
        }
        Ok(Some(Smtp {
            host: s.host.get_ref().clone(),
            port,
            security,
            username: s.username.as_ref().map(|u| u.get_ref().clone()),
            password_file: s.password_file.as_ref().map(|p| self.dir.join(p.get_ref())),
            from: s.from.get_ref().clone(),
        }))
    }

    fn smtp_security(&self, s: &RawSmtp) -> Result<Security> {
        Ok(match s.security.as_ref().map(|v| v.get_ref().as_str()) {
            None | Some("starttls") => Security::StartTls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(other) => {
                let v = s.security.as_ref().expect("present");
                let hint = match other.trim().to_ascii_lowercase().as_str() {
                    "ssl" | "smtps" | "ssl/tls" => {
                        "; did you mean \"tls\" (TLS from the first byte, port 465)?"
                    }
                    "start_tls" | "start-tls" | "tls1.2" => {
                        "; did you mean \"starttls\" (port 587)?"
                    }
                    _ => "",
                };
                return Err(self.at(v, format!("smtp.security: unknown value {other:?}; use \"starttls\", \"tls\" or \"none\"{hint}")));
            }
        })
    }

    /// The port given, else the usual one for the security chosen.
    fn smtp_port(&self, s: &RawSmtp, security: Security) -> Result<u16> {
        let Some(p) = &s.port else {
            return Ok(match security {
                Security::StartTls => 587,
                Security::Tls => 465,
                Security::None => 25,
            });
        };
        u16::try_from(*p.get_ref())
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                self.at(
                    p,
                    format!("smtp.port: {} is not a port number", p.get_ref()),
                )
            })
    }

    /// A host written with its port (`smtp.example.org:587`) is an error
    /// that says how to write it.
    fn smtp_host(&self, s: &RawSmtp) -> Result<()> {
        let host = s.host.get_ref();
        if host.parse::<std::net::Ipv6Addr>().is_err() && host.contains(':') {
            let (name, port) = host.rsplit_once(':').expect("holds a colon");
            return Err(self.at(
                &s.host,
                format!(
                    "smtp.host: {host:?} holds a port; write host = {name:?} and port = {port}"
                ),
            ));
        }
        Ok(())
    }

    // ---- [[rule]] ----

    fn rules(&self, raw: &[S<RawRule>], feeds: &[Feed], channels: &[Channel]) -> Result<Vec<Rule>> {
        let mut seen = HashSet::new();
        raw.iter()
            .map(|r| self.rule(r, feeds, channels, &mut seen))
            .collect()
    }

    fn rule(
        &self,
        spanned: &S<RawRule>,
        feeds: &[Feed],
        channels: &[Channel],
        seen: &mut HashSet<String>,
    ) -> Result<Rule> {
        let r = spanned.get_ref();
        self.name(&r.name, "rule.name", seen, "rule")?;
        let name = r.name.get_ref();
        self.rule_shape(spanned, name)?;
        let accents = self.accents(r, name)?;
        let fields = self.fields(spanned, name)?;
        let notify = self.notify(r, name, channels)?;
        let query = match &r.query {
            Some(q) => Some(query::parse(q.get_ref(), accents).map_err(|e| {
                let at = self.string_offset(q, e.at);
                self.error(
                    Some(at..at),
                    format!("rule.query: rule {name:?}: {}", e.message),
                )
            })?),
            None => None,
        };
        Ok(Rule {
            query,
            name: name.clone(),
            any: self.terms(&r.any, "any", name, accents)?,
            all: self.terms(&r.all, "all", name, accents)?,
            none: self.terms(&r.none, "none", name, accents)?,
            fields,
            scope: self.scope(r, feeds)?,
            notify,
        })
    }

    /// A rule is a query or lists of terms, never both, and says what it
    /// looks for (`any` or `all`, or a query).
    fn rule_shape(&self, spanned: &S<RawRule>, name: &str) -> Result<()> {
        let r = spanned.get_ref();
        let listed = !(r.any.is_empty() && r.all.is_empty() && r.none.is_empty());
        match (&r.query, listed) {
            (Some(q), true) => Err(self.at(
                q,
                format!("rule.query: rule {name:?} has a query and any/all/none: give one or the other (a query says it all: `a AND NOT b`)"),
            )),
            (None, _) if r.any.is_empty() && r.all.is_empty() => Err(self.at(
                spanned,
                format!("rule {name:?}: give at least one of `any` and `all`, or a `query`"),
            )),
            _ => Ok(()),
        }
    }

    fn accents(&self, r: &RawRule, name: &str) -> Result<Accents> {
        match &r.accents {
            None => Ok(Accents::Fold),
            Some(a) => match a.get_ref().as_str() {
                "ignore" => Ok(Accents::Fold),
                "exact" => Ok(Accents::Exact),
                other => Err(self.at(a, format!("rule.accents: unknown value {other:?} in rule {name:?}; use \"ignore\" (the default) or \"exact\""))),
            },
        }
    }

    /// The terms listed under `key`, linted then compiled.
    fn terms(
        &self,
        list: &[S<String>],
        key: &str,
        name: &str,
        accents: Accents,
    ) -> Result<Vec<Term>> {
        list.iter()
            .map(|t| {
                if let Err((at, lint)) = lint_listed(t.get_ref()) {
                    return Err(self.error(
                        Some(self.string_offset(t, at)..self.string_offset(t, at)),
                        format!(
                            "rule.{key}: term {:?} of rule {name:?} {}",
                            t.get_ref(),
                            listed_lint_message(lint, t.get_ref(), key)
                        ),
                    ));
                }
                Term::compile(t.get_ref(), accents).map_err(|e| {
                    self.at(
                        t,
                        format!("rule.{key}: term {:?} of rule {name:?}: {e}", t.get_ref()),
                    )
                })
            })
            .collect()
    }

    fn fields(&self, spanned: &S<RawRule>, name: &str) -> Result<Vec<Field>> {
        let fields = match &spanned.get_ref().fields {
            None => Field::ALL.to_vec(),
            Some(list) => list.iter().map(|f| Field::parse(f.get_ref()).ok_or_else(|| {
                self.at(f, format!("rule.fields: unknown field {:?} in rule {name:?}; use title, summary, content, categories", f.get_ref()))
            })).collect::<Result<Vec<_>>>()?,
        };
        if fields.is_empty() {
            return Err(self.at(spanned, format!("rule.fields: rule {name:?} looks at no field; leave `fields` out for all of them")));
        }
        Ok(fields)
    }

    fn notify(&self, r: &RawRule, name: &str, channels: &[Channel]) -> Result<Vec<String>> {
        let notify = r.notify.get_ref();
        if notify.is_empty() {
            return Err(self.at(
                &r.notify,
                format!("rule.notify: rule {name:?} notifies no channel"),
            ));
        }
        for ch in notify {
            self.known_channel(
                ch,
                channels,
                &format!("rule.notify: rule {name:?} notifies"),
            )?;
        }
        Ok(notify.iter().map(|c| c.get_ref().clone()).collect())
    }

    fn scope(&self, r: &RawRule, feeds: &[Feed]) -> Result<Scope> {
        let mut scope = Scope::default();
        let name = r.name.get_ref();
        for entry in r.feeds.iter().flatten() {
            let text = entry.get_ref();
            if let Some(tag) = text.strip_prefix("tag:") {
                if !feeds.iter().any(|f| f.tags.iter().any(|t| t == tag)) {
                    return Err(self.at(
                        entry,
                        format!("rule.feeds: rule {name:?} names tag {tag:?}, which no feed has"),
                    ));
                }
                scope.tags.push(tag.to_owned());
            } else {
                let glob = Glob::new(text)
                    .map_err(|e| {
                        self.at(
                            entry,
                            format!("rule.feeds: bad pattern {text:?} in rule {name:?}: {e}"),
                        )
                    })?
                    .compile_matcher();
                if !feeds.iter().any(|f| glob.is_match(&f.name)) {
                    return Err(self.at(
                        entry,
                        format!(
                            "rule.feeds: rule {name:?} names {text:?}, which matches no feed name"
                        ),
                    ));
                }
                scope.names.push(glob);
            }
        }
        Ok(scope)
    }
}

/// The end of the message for a listed term that cannot mean what it
/// looks like, with the fix.
fn listed_lint_message(lint: Lint, term: &str, key: &str) -> String {
    match lint {
        Lint::Control(c) => control_message(c),
        Lint::LeadingMinus => format!(
            "starts with `-`, which excludes nothing here: list {:?} in `none`",
            term.trim().trim_start_matches('-')
        ),
        Lint::InnerStar => {
            "has a `*` before its end: `*` ends a prefix term only (puce*)".to_owned()
        }
        Lint::Quote => format!(
            "holds a double quote: a term of `{key}` is already a phrase; write it without quotes"
        ),
        Lint::Operator(op) => format!(
            "holds {op} between words, which here is a word to find: write a `query`, or list the terms separately"
        ),
    }
}

fn list_or_none(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none defined".into()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// An address is checked for shape only here; the mail library parses it
/// when sending.
/// An address lettre will accept when sending, checked now rather than at
/// the first alert. Line breaks are refused first: lettre panics on them.
fn is_plausible_address(s: &str) -> bool {
    !s.contains(['\r', '\n']) && s.trim().parse::<lettre::message::Mailbox>().is_ok()
}

/// A channel's `kind`, read once: what decides its keys and its checks.
#[derive(Clone, Copy)]
enum Kind {
    Email,
    Webhook,
    Maildir,
    Push(&'static push::Kind),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Webhook => "webhook",
            Kind::Maildir => "maildir",
            Kind::Push(k) => k.name,
        }
    }

    /// The keys a channel of this kind may have, besides `kind`, `digest`
    /// and `hold`.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Email => &["to"],
            Kind::Webhook => &["url", "format", "secret_file"],
            Kind::Maildir => &["path"],
            Kind::Push(k) => k.keys,
        }
    }
}

/// Serde's words, reworded to speak of keys and to list what is allowed.
fn explain_serde(path: &str, message: &str, doc: Option<&toml::Table>) -> String {
    let path = &one_based(path, doc);
    if let Some(typed) = explain_type(path, message) {
        return format!("{path}: {typed}");
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once('`')
    {
        let table = match path.rsplit_once('.') {
            Some((parent, _)) => format!("in [{parent}]"),
            None => "at the top level".to_owned(),
        };
        let allowed = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .replace(" or ", ", ");
        return format!("unknown key `{key}` {table}; allowed here: {allowed}");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let message = format!("missing key `{rest}");
        return if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        };
    }
    if path.is_empty() || path == "." {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

/// `rule[2].any` → `rule #3 "c".any`: tables are counted from one, as a
/// person counts them in the file, and named when they have a name.
fn one_based(path: &str, doc: Option<&toml::Table>) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        match rest[open + 1..close].parse::<usize>() {
            Ok(n) => {
                let table = &rest[..open];
                out.push_str(table);
                out.push_str(&format!(" #{}", n + 1));
                let name = doc
                    .and_then(|d| d.get(table.trim_start_matches('.')))
                    .and_then(|list| list.get(n))
                    .and_then(|t| t.get("name"))
                    .and_then(|v| v.as_str());
                if let Some(name) = name {
                    out.push_str(&format!(" {name:?}"));
                }
            }
            Err(_) => out.push_str(&rest[..=close]),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Keys whose value is a duration string.
const DURATION_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "first_poll_window",
    "max_age",
    "retention",
    "keep_text",
    "wire_window",
    "hold",
];

/// "invalid type: integer `15`, expected a string" in the config's words,
/// with the fix when it is plain (a duration written as a number, a single
/// term where a list is wanted).
fn explain_type(path: &str, message: &str) -> Option<String> {
    let (got, expected) = message
        .strip_prefix("invalid type: ")?
        .split_once(", expected ")?;
    let key = path.rsplit('.').next().unwrap_or(path);
    let want = match expected {
        "a sequence" => "a list",
        "i64" | "u64" | "i32" | "u32" | "u16" | "usize" => "a whole number",
        "a boolean" => "true or false",
        other => other,
    };
    let hint = match (expected, got.strip_prefix("integer `")) {
        ("a string", Some(n)) if DURATION_KEYS.contains(&key) => {
            let n = n.trim_end_matches('`');
            format!(
                ": durations are strings with a unit, write \"{n}m\" (or \"{n}s\", \"{n}h\", \"{n}d\")"
            )
        }
        ("a sequence", _) => match got.strip_prefix("string ") {
            Some(term) => format!(": write [{term}]"),
            None => String::new(),
        },
        _ => String::new(),
    };
    Some(format!("{got} where {want} is expected{hint}"))
}

/// "16MiB", "512 KiB", "10MB", "2048B". Written by hand: a dozen lines, and
/// the size crates accept bare integers, which the config must not.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1000 * 1000,
        "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult).filter(|n| *n > 0)
}

/// A relative feed path whose first part is a dotted host name
/// (`www.lemonde.fr/rss.xml`, `lemonde.fr/une`): surely a URL missing its
/// `https://`.
fn looks_like_a_host(raw: &str) -> bool {
    let Some((first, rest)) = raw.split_once('/') else {
        return false;
    };
    !rest.is_empty()
        && first.contains('.')
        && !first.starts_with('.')
        && first.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && first
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_host_is_told_from_a_relative_path() {
        for host in [
            "www.lemonde.fr/rss/une.xml",
            "lemonde.fr/une",
            "feeds.example.org/a",
        ] {
            assert!(super::looks_like_a_host(host), "{host}");
        }
        for path in [
            "samples/actualites.xml",
            "une.xml",
            "./www.lemonde.fr/x",
            "../feeds/a.xml",
            "data.v2/feed.xml",
            "lemonde.fr/",
        ] {
            assert!(!super::looks_like_a_host(path), "{path}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("16MiB"), Some(16 << 20));
        assert_eq!(super::parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(super::parse_size("10MB"), Some(10_000_000));
        assert_eq!(super::parse_size("2048B"), Some(2048));
        for bad in ["16", "MiB", "16 mb", "0MiB", "-1MiB", ""] {
            assert_eq!(super::parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses() {
        for ok in [
            "a@b.fr",
            "Veille <veille@example.org>",
            "x@localhost",
            "\"Équipe Veille\" <v@exemple.fr>",
        ] {
            assert!(super::is_plausible_address(ok), "{ok}");
        }
        for bad in [
            "",
            "nobody",
            "a b@c.fr",
            "@b.fr",
            "a@b@c.fr",
            "a@b.fr\r\nBcc: x@y.fr",
        ] {
            assert!(!super::is_plausible_address(bad), "{bad}");
        }
    }
}

//! Push channels (SPEC §5 "Push"): ntfy, Telegram, Matrix and Gotify, one
//! module per kind, each holding what is particular to its service:
//!
//! - its settings and their checks (`parse`, from the channel's table);
//! - how a message looks there (`request`: the text fitted to the
//!   service's limits, with its markup), from the same medium-neutral
//!   story, digest and health data the `json` webhook sends (`Hook`), so
//!   that a frozen digest needs nothing new;
//! - how a refusal reads (`wait`: a server-given wait on a 429).
//!
//! This file holds what they share: the list of kinds, the token, sending
//! one request and classifying its answer, and composing the words. A new
//! kind is one new module and one line in `KINDS` and in `Settings`.

pub mod gotify;
pub mod matrix;
pub mod ntfy;
pub mod telegram;

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::deliver::{DeliveryError, error_text, read_secret};
use crate::domain::hook::{DigestJson, HealthJson, Hook, StoryJson};
use crate::domain::render::{is_web_link, plural};
use crate::domain::text::{one_line, truncate_chars};

/// The channel's table, as a kind reads its settings from it.
pub trait Table {
    fn string(&self, key: &str) -> Option<&str>;
    fn integer(&self, key: &str) -> Option<i64>;
    fn strings(&self, key: &str) -> Option<Vec<&str>>;
}

/// A setting that is wrong: the key to point at, and what to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrong {
    pub key: &'static str,
    pub message: String,
}

fn wrong<T>(key: &'static str, message: impl Into<String>) -> Result<T, Wrong> {
    Err(Wrong {
        key,
        message: message.into(),
    })
}

/// One kind of push channel.
pub struct Kind {
    pub name: &'static str,
    /// Its keys besides `kind`, `digest` and `hold`.
    pub keys: &'static [&'static str],
    /// Whether sending needs a token (ntfy's topics may be open).
    pub needs_token: bool,
    pub parse: fn(&dyn Table) -> Result<Settings, Wrong>,
}

/// Every push kind. A new kind: its module, and a line here.
pub const KINDS: &[Kind] = &[ntfy::KIND, telegram::KIND, matrix::KIND, gotify::KIND];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// A push channel's settings, by kind.
#[derive(Debug, Clone)]
pub enum Settings {
    Ntfy(ntfy::Ntfy),
    Telegram(telegram::Telegram),
    Matrix(matrix::Matrix),
    Gotify(gotify::Gotify),
}

impl Settings {
    pub fn kind(&self) -> &'static Kind {
        match self {
            Settings::Ntfy(_) => &ntfy::KIND,
            Settings::Telegram(_) => &telegram::KIND,
            Settings::Matrix(_) => &matrix::KIND,
            Settings::Gotify(_) => &gotify::KIND,
        }
    }

    fn request(&self, id: &str, hook: &Hook, token: Option<&str>) -> Request {
        match self {
            Settings::Ntfy(s) => s.request(hook, token),
            Settings::Telegram(s) => s.request(hook, token),
            Settings::Matrix(s) => s.request(id, hook, token),
            Settings::Gotify(s) => s.request(hook, token),
        }
    }

    /// A wait the service asked for in its answer's body (Telegram's
    /// `retry_after`), besides the `Retry-After` header every kind reads.
    fn wait(&self, body: &str) -> Option<Duration> {
        match self {
            Settings::Telegram(_) => telegram::wait(body),
            Settings::Matrix(_) => matrix::wait(body),
            _ => None,
        }
    }

    /// Whether an answer says the token itself is refused: the channel's
    /// fault. Telegram answers 404 to a token that is no bot's.
    fn token_refused(&self, status: u16) -> bool {
        matches!(status, 401 | 403) || matches!(self, Settings::Telegram(_)) && status == 404
    }

    /// Where requests go, token left out, for `check` and error messages.
    pub fn target(&self) -> String {
        match self {
            // Neither a password in the URL nor an `?auth=` token.
            Settings::Ntfy(s) => {
                format!("{}{}", s.url.origin().ascii_serialization(), s.url.path())
            }
            Settings::Telegram(s) => format!(
                "{} chat {}",
                s.api_url.origin().ascii_serialization(),
                s.chat_id
            ),
            Settings::Matrix(s) => format!(
                "{} room {}",
                s.homeserver.origin().ascii_serialization(),
                s.room
            ),
            Settings::Gotify(s) => s.url.origin().ascii_serialization(),
        }
    }
}

/// A configured push channel.
#[derive(Debug, Clone)]
pub struct Push {
    pub settings: Settings,
    pub token_file: Option<PathBuf>,
}

/// An `http(s)` URL, `http://` only to a loopback address: a token must not
/// cross a network in clear.
pub fn web_url(key: &'static str, text: &str) -> Result<Url, Wrong> {
    let Some(url) = Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
    else {
        return wrong(key, format!("{text:?} is not an http(s) URL"));
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return wrong(
            key,
            format!(
                "{text:?}: http:// only to this machine (127.0.0.1, ::1, localhost); write https://"
            ),
        );
    }
    Ok(url)
}

/// The environment variable holding a channel's token.
pub fn token_env(channel: &str) -> String {
    crate::deliver::channel_env("VEILLE_TOKEN_", channel)
}

/// The channel's token: `token_file`, else `VEILLE_TOKEN_<CHANNEL>`, else
/// the systemd credential `<channel>-token`. `None` when there is none.
pub fn token(channel: &str, file: Option<&Path>) -> Result<Option<String>, DeliveryError> {
    let read = |file: &Path| {
        read_secret(file, "token").map(|t| Some(t.trim().to_owned()).filter(|t| !t.is_empty()))
    };
    if let Some(file) = file {
        return read(file);
    }
    if let Some(t) = std::env::var(token_env(channel))
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(t));
    }
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => {
            let file = Path::new(&dir).join(format!("{channel}-token"));
            if file.exists() { read(&file) } else { Ok(None) }
        }
        None => Ok(None),
    }
}

/// `base` with `segments` added to its path, each percent-encoded as a
/// path segment needs (a Matrix room id, a transaction id).
pub fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// One HTTP request to a push service.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Waits of up to this long asked by a 429 are waited for inside the send;
/// a longer one is told to the queue (`DeliveryError::Busy`). A send lasts
/// at most this plus the request timeout.
pub const WAIT_IN_SEND: Duration = Duration::from_secs(30);

/// The longest wait a server's answer is taken at its word for.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Sends `hook` as alert `id` through a push channel; `limit` bounds each
/// request. The token never appears in what is returned: errors name the
/// service's host only.
pub async fn send(
    http: &reqwest::Client,
    channel: &str,
    push: &Push,
    id: &str,
    hook: &Hook,
    limit: Duration,
) -> Result<(), DeliveryError> {
    let kind = push.settings.kind();
    let token = token(channel, push.token_file.as_deref()).map_err(|e| match e {
        DeliveryError::Channel(m) | DeliveryError::Transient(m) | DeliveryError::Permanent(m) => {
            DeliveryError::Channel(m)
        }
        other => other,
    })?;
    if kind.needs_token && token.is_none() {
        return Err(DeliveryError::Channel(format!(
            "{} channel {channel}: no token (set token_file, or {}, or the credential {channel}-token)",
            kind.name,
            token_env(channel)
        )));
    }
    let request = push.settings.request(id, hook, token.as_deref());
    let attempts = async {
        let mut waited = Duration::ZERO;
        loop {
            match once(http, &push.settings, &request, limit).await {
                Err(DeliveryError::Busy { message, wait })
                    if waited.saturating_add(wait) <= WAIT_IN_SEND =>
                {
                    tracing::debug!(channel, wait_s = wait.as_secs(), "{message}; waiting");
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                other => return other,
            }
        }
    };
    // One deadline for the whole send, waits included: the alert's lease
    // counts on it (`dispatch::still_ours`).
    tokio::time::timeout(limit + WAIT_IN_SEND, attempts)
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::Transient(format!(
                "{} channel {channel}: no answer within {}s",
                kind.name,
                (limit + WAIT_IN_SEND).as_secs()
            )))
        })
}

/// One request and what its answer means: 2xx sent; 401 and 403 the
/// channel's fault (a token refused); 429 busy, with the wait asked; other
/// 4xx but 408 failed for good; the rest (5xx, 408, no answer) retried.
async fn once(
    http: &reqwest::Client,
    settings: &Settings,
    r: &Request,
    limit: Duration,
) -> Result<(), DeliveryError> {
    let host = r.url.host_str().unwrap_or("?").to_owned();
    let name = settings.kind().name;
    let mut request = http.request(r.method.clone(), r.url.clone()).timeout(limit);
    for (k, v) in &r.headers {
        request = request.header(*k, v);
    }
    let response = request.body(r.body.clone()).send().await.map_err(|e| {
        let connect = e.is_connect();
        // `without_url`: Telegram's token is in the path.
        let msg = format!("{name} {host}: {}", error_text(&e.without_url()));
        if connect {
            DeliveryError::Channel(msg)
        } else {
            DeliveryError::Transient(msg)
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let header_wait = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let said = one_line(&truncate_chars(&redact_tokens(&body), 200));
    let msg = if said.is_empty() {
        format!("{name} {host}: HTTP {status}")
    } else {
        format!("{name} {host}: HTTP {status}: {said}")
    };
    match status.as_u16() {
        s if settings.token_refused(s) => Err(DeliveryError::Channel(msg)),
        429 => Err(DeliveryError::Busy {
            message: msg,
            wait: settings
                .wait(&body)
                .or(header_wait)
                .unwrap_or(Duration::from_secs(5))
                .clamp(Duration::from_secs(1), MAX_WAIT),
        }),
        408 => Err(DeliveryError::Transient(msg)),
        s if (400..500).contains(&s) => Err(DeliveryError::Permanent(msg)),
        _ => Err(DeliveryError::Transient(msg)),
    }
}

/// A service's answer quoted in an error, with anything shaped like a bot
/// token (`123456:ABC…`) hidden.
fn redact_tokens(text: &str) -> String {
    static TOKEN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b\d{5,}:[A-Za-z0-9_-]{20,}").expect("a valid pattern")
    });
    TOKEN.replace_all(text, "***").into_owned()
}

// ---- composing the words ----

/// How a service counts a message's length.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Chars(usize),
    Bytes(usize),
}

impl Budget {
    fn size(self, s: &str) -> usize {
        match self {
            Budget::Chars(_) => s.chars().count(),
            Budget::Bytes(_) => s.len(),
        }
    }

    fn max(self) -> usize {
        match self {
            Budget::Chars(n) | Budget::Bytes(n) => n,
        }
    }

    /// `s` cut to at most `room` (an ellipsis ending what was cut).
    fn fit(self, s: &str, room: usize) -> String {
        if self.size(s) <= room {
            return s.to_owned();
        }
        match self {
            Budget::Chars(_) => truncate_chars(s, room),
            Budget::Bytes(_) => {
                let keep = room.saturating_sub('…'.len_utf8());
                let mut end = keep.min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}…", &s[..end])
            }
        }
    }
}

/// How a service marks text up: plain, HTML, Markdown.
pub struct Markup {
    pub escape: fn(&str) -> String,
    pub bold: fn(&str) -> String,
    /// A linked text from (escaped text, link).
    pub link: fn(&str, &str) -> String,
    /// Whether the story's link is written out (plain text has no links).
    pub link_line: bool,
}

pub const PLAIN: Markup = Markup {
    escape: |s| s.to_owned(),
    bold: |s| s.to_owned(),
    link: |text, _| text.to_owned(),
    link_line: true,
};

/// HTML as Telegram's subset and Matrix's `formatted_body` read it.
pub const HTML: Markup = Markup {
    escape: html_escape,
    bold: |s| format!("<b>{s}</b>"),
    link: |text, link| format!("<a href=\"{}\">{text}</a>", html_escape(link)),
    link_line: false,
};

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A message as a push service shows it: a title line, a body, and what a
/// tap opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    /// Plain text, one line.
    pub title: String,
    pub body: String,
    pub click: Option<String>,
}

/// The words of `hook` in `markup`, the body within `budget`. With
/// `title_in_body`, the body starts with the title (linked where the
/// markup can), for services without a title of their own.
pub fn compose(hook: &Hook, markup: &Markup, budget: Budget, title_in_body: bool) -> Composed {
    match hook {
        Hook::Story(s) => story(s, markup, budget, title_in_body),
        Hook::Digest(d) => digest(d, markup, budget, title_in_body),
        Hook::Health(h) => health(h, markup, budget, title_in_body),
    }
}

/// A link to show and to tap: a web link, not absurdly long (past that
/// it would crowd out the message).
fn web_link(link: Option<&str>) -> Option<String> {
    link.filter(|l| is_web_link(l) && l.len() <= MAX_LINK)
        .map(str::to_owned)
}

/// Bounds on what goes into a message before markup, so that the markup
/// itself is never cut: a title's characters, a link's bytes, a line of
/// text's characters.
const MAX_TITLE: usize = 300;
const MAX_LINK: usize = 1000;
const MAX_LINE: usize = 1500;

/// A story's title, bold, linked where the markup can.
fn heading(title: &str, link: Option<&str>, m: &Markup) -> String {
    (m.bold)(&linked(title, link, m))
}

fn story(s: &StoryJson, m: &Markup, budget: Budget, title_in_body: bool) -> Composed {
    let title = truncate_chars(&one_line(&s.title), MAX_TITLE);
    let click = web_link(s.link.as_deref());
    let mut head = Vec::new();
    if title_in_body {
        head.push(heading(&title, click.as_deref(), m));
    }
    let named = [s.rules.join(", "), s.feeds.join(", ")]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let named = truncate_chars(&named, MAX_LINE);
    if !named.is_empty() {
        head.push((m.escape)(&named));
    }
    let mut tail = Vec::new();
    if let (Some(l), true) = (&click, m.link_line) {
        tail.push(l.clone());
    }
    let summary = one_line(&s.summary);
    // The excerpt takes what the title, names and link leave.
    let fixed: usize = head.iter().chain(&tail).map(|l| budget.size(l) + 1).sum();
    let room = budget.max().saturating_sub(fixed);
    let mut lines = head;
    if !summary.is_empty() && room > 1 {
        lines.push(escape_fitted(&summary, m, budget, room));
    }
    lines.extend(tail);
    Composed {
        title,
        body: budget.fit(&lines.join("\n"), budget.max()),
        click,
    }
}

/// `text` escaped, its escaped form within `room`: cut before escaping, by
/// as much as the escaping adds.
fn escape_fitted(text: &str, m: &Markup, budget: Budget, room: usize) -> String {
    let mut cut = text.to_owned();
    loop {
        let escaped = (m.escape)(&cut);
        if budget.size(&escaped) <= room || cut.is_empty() {
            return escaped;
        }
        let over = budget.size(&escaped) - room;
        let keep = cut.chars().count().saturating_sub(over.max(1) + 1);
        cut = truncate_chars(&cut, keep.max(1));
        if keep <= 1 {
            return (m.escape)(&cut);
        }
    }
}

fn digest(d: &DigestJson, m: &Markup, budget: Budget, title_in_body: bool) -> Composed {
    let n = d.stories.len();
    let channel = truncate_chars(&one_line(&d.channel), MAX_TITLE);
    let title = if n == 0 {
        format!("[veille] {channel} : santé des flux")
    } else {
        format!("[veille] {} : {n} article{}", channel, plural(n))
    };
    let mut lines: Vec<String> = Vec::new();
    if title_in_body {
        lines.push((m.bold)(&(m.escape)(&title)));
    }
    for h in &d.health {
        lines.push((m.escape)(&truncate_chars(&one_line(&h.text), MAX_LINE)));
    }
    let mut used: usize = lines.iter().map(|l| budget.size(l) + 1).sum();
    let more = |left: usize| format!("… et {left} autre{}", plural(left));
    for (i, s) in d.stories.iter().enumerate() {
        let link = web_link(s.link.as_deref());
        let mut line = format!(
            "• {}",
            linked(
                &truncate_chars(&one_line(&s.title), MAX_TITLE),
                link.as_deref(),
                m
            )
        );
        if !s.feeds.is_empty() {
            line.push_str(&(m.escape)(&format!(" ({})", s.feeds.join(", "))));
        }
        if let (Some(l), true) = (&link, m.link_line) {
            line.push_str(&format!("\n  {l}"));
        }
        let left_after = n - i - 1;
        let reserve = if left_after > 0 {
            budget.size(&more(left_after)) + 1
        } else {
            0
        };
        if used + budget.size(&line) + 1 + reserve > budget.max() {
            lines.push(more(n - i));
            break;
        }
        used += budget.size(&line) + 1;
        lines.push(line);
    }
    Composed {
        title,
        body: budget.fit(&lines.join("\n"), budget.max()),
        click: None,
    }
}

/// A title, escaped, linked where the markup can.
fn linked(title: &str, link: Option<&str>, m: &Markup) -> String {
    let text = (m.escape)(title);
    match link {
        Some(l) if !m.link_line => (m.link)(&text, l),
        _ => text,
    }
}

fn health(h: &HealthJson, m: &Markup, budget: Budget, title_in_body: bool) -> Composed {
    let what = match h.event.as_str() {
        "failing" => "flux en échec",
        "gone" => "flux disparu",
        "silent" => "flux silencieux",
        _ => "flux rétabli",
    };
    let title = format!(
        "[veille] {what} : {}",
        truncate_chars(&one_line(&h.feed), MAX_TITLE)
    );
    let mut lines = Vec::new();
    if title_in_body {
        lines.push((m.bold)(&(m.escape)(&title)));
    }
    lines.push((m.escape)(&truncate_chars(&one_line(&h.text), MAX_LINE)));
    Composed {
        title,
        body: budget.fit(&lines.join("\n"), budget.max()),
        click: None,
    }
}

#[cfg(test)]
mod tests;

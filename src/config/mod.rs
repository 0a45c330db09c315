//! The config file (SPEC §2): read, checked, and turned into `Config`, whose
//! values cannot be invalid. Every error, syntax or meaning, is located:
//! `PATH:LINE:COLUMN: message`, naming the key.

mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::domain::crontab::Crontab;
use crate::domain::health::Policy;
use crate::domain::rules::RuleSet;
use crate::domain::zone::Zone;
pub use crate::store::Location;

/// Defaults, defined once; SPEC §2 shows the same values.
pub mod defaults {
    use std::time::Duration;
    pub const DATABASE: &str = "veille.db";
    pub const INTERVAL: Duration = Duration::from_secs(15 * 60);
    pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
    pub const CONCURRENCY: usize = 16;
    pub const PER_HOST: usize = 2;
    pub const TIMEOUT: Duration = Duration::from_secs(30);
    pub const MAX_BODY: u64 = 16 * 1024 * 1024;
    pub const FIRST_POLL_WINDOW: Duration = Duration::from_secs(24 * 3600);
    pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
    pub const KEEP_TEXT: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const WIRE_COPIES: bool = true;
    pub const WIRE_WINDOW: Duration = Duration::from_secs(48 * 3600);
    pub const HOLD: Duration = Duration::ZERO;
    pub fn user_agent() -> String {
        format!(
            "veille/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            env!("CARGO_PKG_HOMEPAGE")
        )
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub daemon: Daemon,
    pub smtp: Option<Smtp>,
    pub feeds: Vec<Feed>,
    /// Every rule, compiled together.
    pub rules: RuleSet,
    pub channels: Vec<Channel>,
    /// `[health]`: feed-health alerts; `None` sends none.
    pub health: Option<Health>,
    /// The config text's hash, in hex: processes sharing a database
    /// compare theirs (`veille status`).
    pub digest: String,
    /// How long stories stay joinable by wire copies, in seconds
    /// (`wire_keep`), worked out once at load: every poll needs it.
    pub wire_keep: i64,
}

impl Config {
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// What feed health is judged by: `[health]`'s, or the defaults
    /// (`veille status` shows the states either way).
    pub fn health_policy(&self) -> Policy {
        self.health.as_ref().map(|h| h.policy).unwrap_or_default()
    }
}

/// `[health]` (SPEC §7).
#[derive(Debug, Clone)]
pub struct Health {
    /// Channels that receive the alerts.
    pub notify: Vec<String>,
    pub policy: Policy,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    pub database: Location,
    pub interval: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub user_agent: String,
    pub first_poll_window: Duration,
    pub max_age: Duration,
    pub timezone: Zone,
    pub retention: Duration,
    /// How long every item's text is kept for `veille test --history`
    /// (SPEC §4); zero keeps none; never longer than `retention`.
    pub keep_text: Duration,
    pub wire_copies: bool,
    pub wire_window: Duration,
    /// Where `/metrics` and `/healthz` are served (SPEC §9); none by default.
    pub listen: Option<std::net::SocketAddr>,
}

/// How long stories stay joinable by wire copies, in seconds: long enough
/// for the oldest item any feed may still alert on.
pub fn wire_keep(d: &Daemon, feeds: &[Feed]) -> i64 {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let widest = |own: fn(&Feed) -> Duration, default: Duration| {
        feeds.iter().map(own).fold(default, Duration::max)
    };
    crate::domain::wire::keep_prints(
        secs(d.wire_window),
        secs(widest(|f| f.first_poll_window, d.first_poll_window)),
        secs(widest(|f| f.max_age, d.max_age)),
        secs(d.retention),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Tls,
    None,
}

#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// Where the password is read from at send time; never the password.
    pub password_file: Option<PathBuf>,
    pub from: String,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeedUrl {
    Http(Url),
    File(PathBuf),
}

impl fmt::Display for FeedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedUrl::Http(u) => write!(f, "{u}"),
            FeedUrl::File(p) => write!(f, "file://{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    pub url: FeedUrl,
    pub interval: Duration,
    /// `[daemon]`'s unless the feed sets its own.
    pub first_poll_window: Duration,
    pub max_age: Duration,
    pub tags: Vec<String>,
    /// When each new item's page is fetched for its text (SPEC §7).
    pub full_text: crate::domain::fulltext::Mode,
}

pub use crate::domain::hook::Format as WebhookFormat;

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Email {
        to: Vec<String>,
    },
    Webhook {
        url: Url,
        format: WebhookFormat,
        secret_file: Option<PathBuf>,
    },
    Maildir {
        path: PathBuf,
    },
    /// ntfy, Telegram, Matrix or Gotify (`crate::push`).
    Push(crate::push::Push),
}

impl ChannelKind {
    /// What the channel carries: a mail (email, Maildir) or a webhook body.
    pub fn medium(&self) -> crate::domain::outgoing::Medium {
        use crate::domain::outgoing::Medium;
        match self {
            ChannelKind::Email { .. } | ChannelKind::Maildir { .. } => Medium::Mail,
            ChannelKind::Webhook { format, .. } => Medium::Hook(*format),
            ChannelKind::Push(_) => Medium::Push,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Email { .. } => "email",
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Maildir { .. } => "maildir",
            ChannelKind::Push(p) => p.settings.kind().name,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    /// The digest schedule; `None` = one message per story.
    pub digest: Option<Crontab>,
    pub hold: Duration,
}

/// What the environment contributes to the config: where written files go.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `$STATE_DIRECTORY`, set by systemd's `StateDirectory=`.
    pub state_directory: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            state_directory: std::env::var_os("STATE_DIRECTORY")
                .filter(|v| !v.is_empty())
                // systemd may list several directories, separated by ':'.
                .map(|v| PathBuf::from(v.to_string_lossy().split(':').next().unwrap_or_default())),
        }
    }
}

/// A config error, located when it can be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigError> {
    // Absolute, so that paths resolved against its folder stay valid
    // whatever the working directory later.
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        at: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(path, &source, env)
}

/// Checks config text as if read from `path` (relative paths resolve
/// against its folder).
pub fn parse(path: &Path, source: &str, env: &Env) -> Result<Config, ConfigError> {
    validate::Validator::new(path, source, env).run()
}

#[cfg(test)]
mod tests;

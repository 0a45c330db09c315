//! `veille check`: validate the config and print a one-screen summary.

use crate::clock::Clock;
use std::collections::HashMap;
use std::fmt::Write;

use crate::config::{ChannelKind, Config, FeedUrl};
use crate::domain::rules::Term;

pub fn summary(c: &Config, clock: &Clock) -> String {
    let now = clock.now_utc();
    let mut s = String::new();
    let d = &c.daemon;
    let _ = writeln!(s, "{}: valid", c.path.display());
    let _ = writeln!(s, "database: {}", d.database);
    let _ = writeln!(
        s,
        "time zone: {}; default interval {}; {} fetches at once, {} per host",
        d.timezone,
        human(d.interval),
        d.concurrency,
        d.per_host
    );
    if let Some(addr) = d.listen {
        let exposed = if addr.ip().is_loopback() {
            ""
        } else {
            " (beyond loopback: no authentication)"
        };
        let _ = writeln!(s, "metrics: http://{addr}/metrics and /healthz{exposed}");
    }
    let _ = writeln!(s, "\nfeeds ({}):", c.feeds.len());
    for f in &c.feeds {
        let tags = if f.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", f.tags.join(", "))
        };
        use crate::domain::fulltext::Mode;
        let pages = match f.full_text {
            Mode::Never => "",
            Mode::Auto => "; full text when its text looks cut",
            Mode::Always => "; full text of every new item",
        };
        let _ = writeln!(
            s,
            "  {} — every {}{pages}{tags}\n    {}",
            f.name,
            human(f.interval),
            f.url
        );
    }
    let _ = writeln!(s, "\nrules ({}):", c.rules.len());
    for r in c.rules.iter() {
        let _ = writeln!(s, "  {}", rule_line(r));
    }
    let _ = writeln!(s, "\nchannels ({}):", c.channels.len());
    for ch in &c.channels {
        let _ = writeln!(s, "  {}", channel_line(c, ch, now));
    }
    if let Some(smtp) = &c.smtp {
        let _ = writeln!(s, "\nsmtp: {}:{} as {}", smtp.host, smtp.port, smtp.from);
    }
    let warnings = warnings(c, now);
    if !warnings.is_empty() {
        let _ = writeln!(s, "\nwarnings ({}):", warnings.len());
        for w in warnings {
            let _ = writeln!(s, "  - {w}");
        }
    }
    s
}

/// `name — query: …; all: …; any: …; none: … → channels`.
fn rule_line(r: &crate::domain::rules::Rule) -> String {
    let mut parts = Vec::new();
    if let Some(q) = &r.query {
        parts.push(format!("query: {}", q.text));
    }
    for (label, terms) in [("all", &r.all), ("any", &r.any), ("none", &r.none)] {
        if !terms.is_empty() {
            parts.push(format!(
                "{label}: {}",
                terms
                    .iter()
                    .map(|t: &Term| t.written.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    format!(
        "{} — {} → {}",
        r.name,
        parts.join("; "),
        r.notify.join(", ")
    )
}

/// `name — where it delivers; when` (a digest with its next tick).
fn channel_line(
    c: &Config,
    ch: &crate::config::Channel,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let target = match &ch.kind {
        ChannelKind::Email { to } => format!("email to {}", to.join(", ")),
        ChannelKind::Webhook { url, .. } => format!("webhook {url}"),
        ChannelKind::Maildir { path } => format!("maildir {}", path.display()),
        ChannelKind::Push(p) => format!("{} {}", p.settings.kind().name, p.settings.target()),
    };
    let when = match &ch.digest {
        Some(cron) => {
            let next = super::next_tick(cron, now, c.daemon.timezone);
            format!("digest on \"{}\" (next: {next})", cron.line())
        }
        None if ch.hold.is_zero() => "one message per story".to_owned(),
        None => format!("one message per story, held {}", human(ch.hold)),
    };
    format!("{} — {target}; {when}", ch.name)
}

/// What is valid but surely not meant, for `check`: nothing here stops
/// veille from running.
pub fn warnings(c: &Config, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    let mut out = unreadable_secrets(c);
    out.extend(tokenless(c));
    if c.feeds.is_empty() || c.rules.is_empty() {
        out.push("no feed or no rule: veille watches nothing".to_owned());
    }
    out.extend(address_warnings(c));
    out.extend(feed_warnings(c));
    out.extend(channel_warnings(c, now));
    out
}

/// Addresses whose domain has no dot (`moi@exemple`).
fn address_warnings(c: &Config) -> Vec<String> {
    let addresses = c
        .channels
        .iter()
        .filter_map(|ch| match &ch.kind {
            ChannelKind::Email { to } => Some(to.iter()),
            _ => None,
        })
        .flatten()
        .chain(c.smtp.iter().map(|s| &s.from));
    addresses
        .filter(|a| {
            let domain = a.trim_end_matches('>').rsplit('@').next().unwrap_or("");
            !domain.contains('.') && domain != "localhost"
        })
        .map(|a| format!("address {a:?} has a domain without a dot: is it complete?"))
        .collect()
}

/// Feeds fetched twice, and feeds no rule watches.
fn feed_warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut urls: HashMap<String, &str> = HashMap::new();
    for f in &c.feeds {
        if let Some(first) = urls.insert(f.url.to_string(), &f.name) {
            out.push(format!(
                "feeds {first:?} and {:?} have the same url {}: each item is fetched and stored twice",
                f.name, f.url
            ));
        }
        if let FeedUrl::File(path) = &f.url
            && !path.exists()
        {
            out.push(format!(
                "feed {:?}: the file {} does not exist (a relative path is read from the config file's folder): every poll fails until it does",
                f.name,
                path.display()
            ));
        }
        if !c.rules.iter().any(|r| r.scope.covers(&f.name, &f.tags)) {
            out.push(format!(
                "feed {:?} is watched by no rule (their `feeds` scopes leave it out): it is polled for nothing",
                f.name
            ));
        }
    }
    out
}

/// Channels that never send, digest schedules that never fire, an unused
/// `[smtp]`.
fn channel_warnings(c: &Config, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    let mut out = Vec::new();
    for ch in &c.channels {
        let health = c
            .health
            .as_ref()
            .is_some_and(|h| h.notify.contains(&ch.name));
        if !health && !c.rules.iter().any(|r| r.notify.contains(&ch.name)) {
            out.push(format!(
                "channel {:?} is notified by no rule nor by [health]: it never sends anything",
                ch.name
            ));
        }
        if let Some(cron) = &ch.digest
            && cron.next_after(now, c.daemon.timezone).is_none()
        {
            out.push(format!(
                "channel {:?}: the digest schedule \"{}\" never fires (no such date)",
                ch.name,
                cron.line()
            ));
        }
    }
    let email = c
        .channels
        .iter()
        .any(|ch| matches!(ch.kind, ChannelKind::Email { .. }));
    if c.smtp.is_some() && !email {
        out.push("[smtp] is set but no channel sends email: it is unused".to_owned());
    }
    out
}

/// Password and secret files named in the config that cannot be read now
/// (under systemd they may exist only for the service, so this is a
/// warning in `check` and an error in the log when `run` starts).
pub fn unreadable_secrets(c: &Config) -> Vec<String> {
    let smtp = c
        .smtp
        .as_ref()
        .and_then(|s| s.password_file.as_ref())
        .map(|p| ("smtp.password_file".to_owned(), p));
    let hooks = c.channels.iter().filter_map(|ch| match &ch.kind {
        ChannelKind::Webhook {
            secret_file: Some(p),
            ..
        } => Some((format!("channel {:?} secret_file", ch.name), p)),
        ChannelKind::Push(crate::push::Push {
            token_file: Some(p),
            ..
        }) => Some((format!("channel {:?} token_file", ch.name), p)),
        _ => None,
    });
    smtp.into_iter()
        .chain(hooks)
        .filter_map(|(what, path)| {
            std::fs::File::open(path).err().map(|e| {
                format!(
                    "{what} {} cannot be read ({e}): its sends fail until it can",
                    path.display()
                )
            })
        })
        .collect()
}

fn human(d: std::time::Duration) -> String {
    super::readable(d)
}

/// Push channels whose kind needs a token and that have none in sight: no
/// `token_file`, no environment variable (a systemd credential may still
/// bring one to the service).
fn tokenless(c: &Config) -> Vec<String> {
    c.channels
        .iter()
        .filter_map(|ch| match &ch.kind {
            ChannelKind::Push(p)
                if p.settings.kind().needs_token
                    && p.token_file.is_none()
                    && std::env::var_os(crate::push::token_env(&ch.name)).is_none()
                    && std::env::var_os("CREDENTIALS_DIRECTORY").is_none() =>
            {
                Some(format!(
                    "channel {:?} has no token: set token_file, or {}, or give the service the credential {}-token",
                    ch.name,
                    crate::push::token_env(&ch.name),
                    ch.name
                ))
            }
            _ => None,
        })
        .collect()
}

//! `veille check`: validate the config and print a one-screen summary.

use std::fmt::Write;

use crate::config::{ChannelKind, Config};
use crate::domain::rules::Term;

pub fn summary(c: &Config) -> String {
    let mut s = String::new();
    let d = &c.daemon;
    let _ = writeln!(s, "{}: valid", c.path.display());
    let _ = writeln!(s, "database: {}", d.database.display());
    let _ = writeln!(
        s,
        "time zone: {}; default interval {}; {} fetches at once, {} per host",
        d.timezone,
        human(d.interval),
        d.concurrency,
        d.per_host
    );
    let _ = writeln!(s, "\nfeeds ({}):", c.feeds.len());
    for f in &c.feeds {
        let tags = if f.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", f.tags.join(", "))
        };
        let _ = writeln!(
            s,
            "  {} — every {}{tags}\n    {}",
            f.name,
            human(f.interval),
            f.url
        );
    }
    let _ = writeln!(s, "\nrules ({}):", c.rules.len());
    for r in c.rules.iter() {
        let mut parts = Vec::new();
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
        let _ = writeln!(
            s,
            "  {} — {} → {}",
            r.name,
            parts.join("; "),
            r.notify.join(", ")
        );
    }
    let _ = writeln!(s, "\nchannels ({}):", c.channels.len());
    for ch in &c.channels {
        let target = match &ch.kind {
            ChannelKind::Email { to } => format!("email to {}", to.join(", ")),
            ChannelKind::Webhook { url, .. } => format!("webhook {url}"),
            ChannelKind::Maildir { path } => format!("maildir {}", path.display()),
        };
        let when = match &ch.digest {
            Some(cron) => {
                let next = cron
                    .next_after(crate::clock::Clock::system().now_utc(), c.daemon.timezone)
                    .map(|t| c.daemon.timezone.format(t, "%Y-%m-%d %H:%M %Z"))
                    .unwrap_or_else(|| "never".to_owned());
                format!("digest on \"{}\" (next: {next})", cron.line())
            }
            None if ch.hold.is_zero() => "one message per story".to_owned(),
            None => format!("one message per story, held {}", human(ch.hold)),
        };
        let _ = writeln!(s, "  {} — {target}; {when}", ch.name);
    }
    if let Some(smtp) = &c.smtp {
        let _ = writeln!(s, "\nsmtp: {}:{} as {}", smtp.host, smtp.port, smtp.from);
    }
    s
}

fn human(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

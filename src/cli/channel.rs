//! `veille send-test`, `veille retry` and `veille digest`: delivery by hand.

use anyhow::{Context, anyhow};

use super::CliError;
use crate::clock::Clock;
use crate::config::{Channel, Config};
use crate::daemon::{self, Shared};
use crate::deliver::{Body, Outgoing, Sender};
use crate::domain::hook::{self, Hook, StoryJson};
use crate::domain::outgoing::Medium;
use crate::domain::render;
use crate::store::Store;

/// The channel named on the command line, or a usage error listing them.
fn channel<'a>(config: &'a Config, name: &str) -> Result<&'a Channel, CliError> {
    config.channel(name).ok_or_else(|| {
        let names: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
        CliError::Usage(anyhow!(
            "no channel {name:?} in {}; channels: {}",
            config.path.display(),
            names.join(", ")
        ))
    })
}

/// Sends one test message now, outside the outbox.
pub async fn send_test(config: &Config, name: &str, clock: &Clock) -> Result<String, CliError> {
    let channel = channel(config, name)?;
    let sender = Sender::new(config)?;
    let now = clock.now_utc();
    let id = crate::store::new_id();
    let words = render::test_message(name, now, config.daemon.timezone);
    // The mail's words, so that every channel says the same.
    let story = || {
        Hook::Story(StoryJson {
            id: id.clone(),
            rules: vec![],
            terms: vec![],
            title: words.subject.clone(),
            link: None,
            published: Some(now.to_rfc3339()),
            summary: words.text.trim_end().to_owned(),
            feeds: vec![],
            links: vec![],
            test: true,
        })
    };
    let body = match channel.kind.medium() {
        Medium::Mail => Body::Mail(words.clone()),
        Medium::Hook(format) => Body::Hook(hook::body(format, &story())),
        Medium::Push => Body::Push(story()),
    };
    let out = Outgoing {
        id,
        date: now.timestamp(),
        body,
    };
    sender
        .send(channel, &out, now.timestamp())
        .await
        .with_context(|| format!("the test message to channel {name} was not delivered"))?;
    Ok(format!(
        "test message sent through channel {name} ({})\n",
        channel.kind.name()
    ))
}

/// Queues a channel's failed alerts and digests again, makes its pending
/// ones due now and ends its pause.
pub fn retry(config: &Config, name: &str, clock: &Clock) -> Result<String, CliError> {
    channel(config, name)?;
    let mut store = Store::open_existing(&config.daemon.database)?;
    let n = store.requeue_failed(name, clock.now())?;
    let mut said = Vec::new();
    if n.resumed {
        said.push("no longer paused".to_owned());
    }
    match (n.alerts, n.digests) {
        (0, 0) => {}
        (a, 0) => said.push(format!("{a} failed alert(s) queued again")),
        (a, d) => said.push(format!(
            "{a} failed alert(s) and {d} digest(s) queued again"
        )),
    }
    if n.hastened > 0 {
        said.push(format!("{} pending message(s) due now", n.hastened));
    }
    Ok(if said.is_empty() {
        format!("channel {name}: nothing failed or waiting\n")
    } else {
        format!(
            "channel {name}: {}; the daemon sends them at its next pass (or `veille run --once`)\n",
            said.join(", ")
        )
    })
}

/// Sends the channel's pending digest now, or prints it with `preview`.
pub async fn digest(
    config: Config,
    name: &str,
    preview: bool,
    clock: Clock,
) -> Result<String, CliError> {
    let ch = channel(&config, name)?;
    if ch.digest.is_none() {
        return Err(CliError::Usage(anyhow!(
            "channel {name:?} has no `digest` schedule: its alerts go out one by one"
        )));
    }
    let store = Store::open_existing(&config.daemon.database)?;
    let sh = Shared::new(config, store, clock)?;
    let now = sh.clock.now();
    if preview {
        return Ok(match daemon::preview_digest(&sh, name, now).await? {
            Some(m) => format!("Subject: {}\n\n{}", m.subject, m.text),
            None => format!("channel {name}: nothing pending\n"),
        });
    }
    match daemon::flush_digest(&sh, name, now).await? {
        None => Ok(format!("channel {name}: nothing pending\n")),
        Some(r) if r.sent > 0 && r.retrying == 0 && r.failed == 0 => {
            Ok(format!("channel {name}: digest sent\n"))
        }
        Some(_) => Err(CliError::Runtime(anyhow!(
            "channel {name}: the digest was not delivered (see the log above); it stays queued and `veille status` shows it"
        ))),
    }
}

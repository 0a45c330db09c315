//! Channels: a message rendered for the channel's medium
//! (`domain::outgoing`) made into bytes (a MIME message, JSON) and sent.
//! Each failure says whether trying again may help
//! (`DeliveryError::Transient`) or not, and whether it is the channel's
//! rather than the message's (`DeliveryError::Channel`).

pub mod maildir;
pub mod smtp;
pub mod webhook;

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart, header};

use crate::config::{Channel, ChannelKind, Config};
use crate::domain::render::Rendered;
use crate::domain::text::one_line;
use crate::domain::zone::Zone;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later (disk full, server down…).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help until someone changes something.
    #[error("{0}")]
    Permanent(String),
    /// The channel cannot send anything now, whatever the message: the
    /// server refused the login (SMTP 535, HTTP 401 or 403), TLS or the
    /// connection failed, its password or secret cannot be read. The
    /// channel pauses as a whole (SPEC §5).
    #[error("{0}")]
    Channel(String),
    /// The server asked to wait (a 429): tried again after `wait` at the
    /// soonest.
    #[error("{message}")]
    Busy { message: String, wait: Duration },
}

pub use crate::domain::outgoing::{Body, Outgoing};

/// Sends outgoing messages through channels. Built once per config.
pub struct Sender {
    http: reqwest::Client,
    mailer: Option<smtp::Mailer>,
    /// Bound on one whole send: connection, transfer and answer.
    limit: Duration,
    /// `[daemon] timezone`, for the messages' `Date`.
    zone: Zone,
}

/// Sends through one channel in a delivery pass: an email channel's
/// messages go over one SMTP connection, one at a time; webhooks may be
/// sent side by side (reqwest keeps their connections). `close` ends it.
pub struct Pass<'a> {
    sender: &'a Sender,
    channel: &'a Channel,
    smtp: tokio::sync::Mutex<Option<smtp::Session<'a>>>,
}

impl Sender {
    pub fn new(config: &Config) -> anyhow::Result<Sender> {
        let http = reqwest::Client::builder()
            .user_agent(config.daemon.user_agent.clone())
            // A webhook that redirects is a misconfigured webhook: a POST is
            // not replayed elsewhere; the 3xx is retried and shows in status.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.daemon.timeout)
            .build()?;
        let limit = config.daemon.timeout;
        Ok(Sender {
            http,
            mailer: config.smtp.as_ref().map(|s| smtp::Mailer::new(s, limit)),
            limit,
            zone: config.daemon.timezone,
        })
    }

    pub fn pass<'a>(&'a self, channel: &'a Channel) -> Pass<'a> {
        Pass {
            sender: self,
            channel,
            smtp: tokio::sync::Mutex::new(None),
        }
    }

    /// Delivers `out` through `channel` on a connection of its own.
    /// `Ok` means the channel took it. `now` (Unix seconds) is the webhook
    /// signature's timestamp.
    pub async fn send(
        &self,
        channel: &Channel,
        out: &Outgoing,
        now: i64,
    ) -> Result<(), DeliveryError> {
        let pass = self.pass(channel);
        let sent = pass.send(out, now).await;
        pass.close().await;
        sent
    }

    fn from(&self) -> &str {
        self.mailer
            .as_ref()
            .map_or(DEFAULT_FROM, smtp::Mailer::from)
    }
}

impl<'a> Pass<'a> {
    pub fn channel(&self) -> &'a Channel {
        self.channel
    }

    /// Delivers `out`. `Ok` means the channel took it. `now` (Unix seconds)
    /// is the webhook signature's timestamp.
    pub async fn send(&self, out: &Outgoing, now: i64) -> Result<(), DeliveryError> {
        let sender = self.sender;
        let date = Dated {
            at: chrono::DateTime::from_timestamp(out.date.max(0), 0).unwrap_or_default(),
            zone: sender.zone,
        };
        match (&self.channel.kind, &out.body) {
            (ChannelKind::Email { to }, Body::Mail(mail)) => {
                let mailer = sender.mailer.as_ref().ok_or_else(|| {
                    DeliveryError::Permanent("no [smtp] table in the config".into())
                })?;
                let message = build_message(&out.id, mailer.from(), to, mail, date)?;
                let mut session = self.smtp.lock().await;
                let session = session.get_or_insert_with(|| mailer.session());
                session.send(to, &message).await
            }
            (ChannelKind::Maildir { path }, Body::Mail(mail)) => {
                let message = build_message(&out.id, sender.from(), &[], mail, date)?;
                let (path, id, created) = (path.clone(), out.id.clone(), out.date);
                tokio::task::spawn_blocking(move || maildir::deliver(&path, &id, created, &message))
                    .await
                    .map_err(|e| DeliveryError::Transient(format!("delivery task failed: {e}")))?
                    .map(|_| ())
            }
            (
                ChannelKind::Webhook {
                    url, secret_file, ..
                },
                Body::Hook(body),
            ) => {
                let secret = match secret_file {
                    Some(file) => Some(read_secret(file, "webhook secret")?),
                    None => std::env::var(webhook::secret_env(&self.channel.name))
                        .ok()
                        .filter(|s| !s.trim().is_empty()),
                };
                let key = secret.as_deref().map(webhook::key);
                let body = serde_json::to_vec(body)
                    .map_err(|e| DeliveryError::Permanent(format!("cannot encode JSON: {e}")))?;
                webhook::post(
                    &sender.http,
                    url,
                    &out.id,
                    key.as_deref(),
                    body,
                    now,
                    sender.limit,
                )
                .await
            }
            (ChannelKind::Push(push), Body::Push(hook)) => {
                crate::push::send(
                    &sender.http,
                    &self.channel.name,
                    push,
                    &out.id,
                    hook,
                    sender.limit,
                )
                .await
            }
            (kind, _) => Err(DeliveryError::Permanent(format!(
                "a message rendered for another kind of channel than {}",
                kind.name()
            ))),
        }
    }

    /// Ends the pass (an SMTP session says goodbye).
    pub async fn close(self) {
        if let Some(session) = self.smtp.into_inner() {
            session.close().await;
        }
    }
}

/// A secret file's content without the line break editors add.
pub fn read_secret(file: &std::path::Path, what: &str) -> Result<String, DeliveryError> {
    std::fs::read_to_string(file)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| {
            DeliveryError::Channel(format!(
                "cannot read the {what} from {}: {e}",
                file.display()
            ))
        })
}

/// Sender used when no `[smtp] from` is configured (Maildir only).
/// An environment variable named for a channel: `prefix` and the channel's
/// name upper-cased, every character other than A–Z and 0–9 turned into
/// `_` (channel `equipe-2`: `…EQUIPE_2`).
pub fn channel_env(prefix: &str, channel: &str) -> String {
    let name: String = channel
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{name}")
}

/// An error with its sources, each said once: libraries often print their
/// source in their own text too (lettre: "Connection error: Connection
/// error: …"), and a chain of them would say each cause twice.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let said = inner.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = inner.source();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

pub const DEFAULT_FROM: &str = "veille <veille@localhost>";

/// When a message was made, and the zone its `Date` is written in.
#[derive(Clone, Copy)]
pub struct Dated {
    pub at: chrono::DateTime<chrono::Utc>,
    pub zone: Zone,
}

/// A complete RFC 5322 message: multipart/alternative, text then HTML,
/// `Message-ID` from the alert id at the domain of `from` so that a resend
/// carries the same one, `Date` in the configured zone, and
/// `Auto-Submitted: auto-generated` so that vacation replies stay quiet
/// (RFC 3834; SPEC §5).
pub fn build_message(
    alert_id: &str,
    from: &str,
    to: &[String],
    rendered: &Rendered,
    date: Dated,
) -> Result<Vec<u8>, DeliveryError> {
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| DeliveryError::Permanent(format!("bad address {a:?}: {e}")))
    };
    let sender = parse(from)?;
    let domain = sender.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(sender)
        .message_id(Some(format!("<{alert_id}@{domain}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        // Subject lines are built from feed text: never let a line break in.
        .subject(one_line(&rendered.subject));
    let recipients: Vec<String> = if to.is_empty() {
        vec![from.to_owned()]
    } else {
        to.to_vec()
    };
    for r in &recipients {
        builder = builder.to(parse(r)?);
    }
    let body = MultiPart::alternative()
        .singlepart(
            lettre::message::SinglePart::builder()
                .header(header::ContentType::TEXT_PLAIN)
                .body(rendered.text.clone()),
        )
        .singlepart(
            lettre::message::SinglePart::builder()
                .header(header::ContentType::TEXT_HTML)
                .body(rendered.html.clone()),
        );
    let mut message = builder
        .multipart(body)
        .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))?;
    // lettre writes `Date` in UTC only: the zone's offset replaces it.
    message.headers_mut().insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Date"),
        date.zone.format(date.at, "%a, %d %b %Y %H:%M:%S %z"),
    ));
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(raw: &[u8], name: &str) -> Vec<String> {
        let m = mailparse::parse_mail(raw).unwrap();
        m.headers
            .iter()
            .filter(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .collect()
    }

    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::other("received corrupt message");
        let wrapped = std::io::Error::other(io);
        assert_eq!(error_text(&wrapped), "received corrupt message");
        let lettre_like = std::io::Error::other("Connection error: Connection error: bad record");
        assert_eq!(error_text(&lettre_like), "Connection error: bad record");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let outer = Outer(std::io::Error::other("certificate expired"));
        assert_eq!(
            error_text(&outer),
            "client error (Connect): certificate expired"
        );
    }

    #[test]
    fn headers_say_where_when_and_that_no_one_typed_it() {
        let rendered = Rendered {
            subject: "[veille] puces".into(),
            text: "Texte".into(),
            html: "<p>Texte</p>".into(),
        };
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-15T07:30:00Z")
            .unwrap()
            .to_utc();
        let paris = Zone::Named("Europe/Paris".parse().unwrap());
        let made = |zone| {
            build_message(
                "a1b2",
                "Veille <alertes@redaction.example.fr>",
                &["moi@example.fr".to_owned()],
                &rendered,
                Dated { at, zone },
            )
            .unwrap()
        };
        let raw = made(paris);
        assert_eq!(headers(&raw, "Message-ID"), ["<a1b2@redaction.example.fr>"]);
        assert_eq!(headers(&raw, "Auto-Submitted"), ["auto-generated"]);
        assert_eq!(headers(&raw, "Date"), ["Thu, 15 Jan 2026 08:30:00 +0100"]);
        let summer = Dated {
            at: at + chrono::Duration::days(180),
            zone: paris,
        };
        let raw = build_message("a1b2", DEFAULT_FROM, &[], &rendered, summer).unwrap();
        assert_eq!(headers(&raw, "Date"), ["Tue, 14 Jul 2026 09:30:00 +0200"]);
        assert_eq!(headers(&raw, "Message-ID"), ["<a1b2@localhost>"]);
    }
}

//! Channels: a message rendered for the channel's medium
//! (`domain::outgoing`) made into bytes (a MIME message, JSON) and sent.
//! Each failure says whether trying again may help
//! (`DeliveryError::Transient`) or not, and whether it is the channel's
//! rather than the message's (`DeliveryError::Channel`).

pub mod maildir;
pub mod smtp;
pub mod webhook;

use std::time::{Duration, UNIX_EPOCH};

use lettre::message::{Mailbox, Message, MultiPart, header};

use crate::config::{Channel, ChannelKind, Config};
use crate::domain::render::Rendered;
use crate::domain::text::one_line;

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
}

pub use crate::domain::outgoing::{Body, Outgoing};

/// Sends outgoing messages through channels. Built once per config.
pub struct Sender {
    http: reqwest::Client,
    mailer: Option<smtp::Mailer>,
    /// Bound on one whole send: connection, transfer and answer.
    limit: Duration,
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
        let date = UNIX_EPOCH + Duration::from_secs(out.date.max(0) as u64);
        let sender = self.sender;
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
pub const DEFAULT_FROM: &str = "veille <veille@localhost>";

/// A complete RFC 5322 message: multipart/alternative, text then HTML,
/// `Message-ID` from the alert id so that a resend carries the same one.
pub fn build_message(
    alert_id: &str,
    from: &str,
    to: &[String],
    rendered: &Rendered,
    date: std::time::SystemTime,
) -> Result<Vec<u8>, DeliveryError> {
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| DeliveryError::Permanent(format!("bad address {a:?}: {e}")))
    };
    let mut builder = Message::builder()
        .from(parse(from)?)
        .message_id(Some(format!("<{alert_id}@veille>")))
        .date(date)
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
    let message = builder
        .multipart(body)
        .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))?;
    Ok(message.formatted())
}

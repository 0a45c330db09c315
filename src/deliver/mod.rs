//! Channels: turning a rendered message into a delivery. Each failure says
//! whether trying again may help (`DeliveryError::Transient`) or not.

pub mod maildir;

use lettre::message::{Mailbox, Message, MultiPart, header};

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

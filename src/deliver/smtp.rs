//! The email channel: one SMTP connection per message, over the tokio
//! runtime with rustls.
//!
//! lettre's own timeout covers connecting only: a server that stalls after
//! the final `.` or never greets would hold a send forever, so every send is
//! bounded as a whole here. When the outcome is unknown (the connection
//! dropped after the message was handed over, or the bound was hit), the
//! send is retried later with the same `Message-ID`: a receiver that got the
//! first copy can drop the second.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{DeliveryError, read_secret};
use crate::config::{Security, Smtp};

/// The environment variable a password may come from (SPEC §2).
pub const PASSWORD_ENV: &str = "VEILLE_SMTP_PASSWORD";
/// The file name under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub const PASSWORD_CREDENTIAL: &str = "smtp-password";

/// Sends `message` (a complete RFC 5322 message) to `to`, within `limit`.
pub async fn send(
    smtp: &Smtp,
    to: &[String],
    message: &[u8],
    limit: Duration,
) -> Result<(), DeliveryError> {
    let envelope = envelope(&smtp.from, to)?;
    let transport = transport(smtp, limit)?;
    let outcome = tokio::time::timeout(limit, transport.send_raw(&envelope, message)).await;
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(classify(smtp, &e)),
        Err(_) => Err(DeliveryError::Transient(format!(
            "SMTP {}:{}: no answer within {}s; outcome unknown, will resend with the same Message-ID",
            smtp.host,
            smtp.port,
            limit.as_secs()
        ))),
    }
}

/// 5xx answers will not change by themselves (a refused recipient, a wrong
/// password): failed at once, `veille retry` after the fix. Everything else
/// (4xx, connection refused or dropped, TLS trouble) is tried again.
fn classify(smtp: &Smtp, e: &lettre::transport::smtp::Error) -> DeliveryError {
    let msg = format!("SMTP {}:{}: {e}", smtp.host, smtp.port);
    if e.is_permanent() {
        DeliveryError::Permanent(msg)
    } else {
        DeliveryError::Transient(msg)
    }
}

fn envelope(from: &str, to: &[String]) -> Result<Envelope, DeliveryError> {
    let address = |a: &str| -> Result<Address, DeliveryError> {
        a.parse::<Mailbox>()
            .map(|m| m.email)
            .map_err(|e| DeliveryError::Permanent(format!("bad address {a:?}: {e}")))
    };
    let rcpt = to
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(address(from)?), rcpt)
        .map_err(|e| DeliveryError::Permanent(format!("bad envelope: {e}")))
}

fn transport(
    smtp: &Smtp,
    limit: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    let builder = match smtp.security {
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
    }
    .map_err(|e| DeliveryError::Permanent(format!("SMTP {}: {e}", smtp.host)))?;
    let mut builder = builder.port(smtp.port).timeout(Some(limit));
    if let Some(user) = &smtp.username {
        let password = password(smtp, &Sources::from_process())?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// Where a password may be found, first found wins (SPEC §2).
pub struct Sources {
    pub env: Option<String>,
    pub credentials_directory: Option<std::path::PathBuf>,
}

impl Sources {
    pub fn from_process() -> Sources {
        Sources {
            env: std::env::var(PASSWORD_ENV).ok().filter(|v| !v.is_empty()),
            credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(Into::into),
        }
    }
}

/// The SMTP password: `password_file`, else `VEILLE_SMTP_PASSWORD`, else
/// `$CREDENTIALS_DIRECTORY/smtp-password`. Missing or unreadable is worth
/// retrying: the file may be put back without touching the queue. Errors
/// name where the password was looked for, never the password.
pub fn password(smtp: &Smtp, sources: &Sources) -> Result<String, DeliveryError> {
    if let Some(file) = &smtp.password_file {
        return read_secret(file, "SMTP password");
    }
    if let Some(p) = &sources.env {
        return Ok(p.clone());
    }
    if let Some(dir) = &sources.credentials_directory {
        let file = dir.join(PASSWORD_CREDENTIAL);
        if file.exists() {
            return read_secret(&file, "SMTP password");
        }
    }
    Err(DeliveryError::Transient(format!(
        "smtp.username is set but no password was found: set smtp.password_file, {PASSWORD_ENV}, or a systemd credential named {PASSWORD_CREDENTIAL}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(password_file: Option<&std::path::Path>) -> Smtp {
        Smtp {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            username: Some("u".into()),
            password_file: password_file.map(Into::into),
            from: "v@localhost".into(),
        }
    }

    #[test]
    fn password_sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::write(dir.path().join(PASSWORD_CREDENTIAL), "from-cred").unwrap();
        let all = Sources {
            env: Some("from-env".into()),
            credentials_directory: Some(dir.path().into()),
        };
        let p = |s: &Smtp, src: &Sources| password(s, src).ok();
        assert_eq!(p(&smtp(Some(&file)), &all).as_deref(), Some("from-file"));
        assert_eq!(p(&smtp(None), &all).as_deref(), Some("from-env"));
        let cred_only = Sources {
            env: None,
            credentials_directory: Some(dir.path().into()),
        };
        assert_eq!(p(&smtp(None), &cred_only).as_deref(), Some("from-cred"));
        let none = Sources {
            env: None,
            credentials_directory: None,
        };
        let err = password(&smtp(None), &none).unwrap_err().to_string();
        assert!(err.contains(PASSWORD_ENV), "{err}");
        // A configured file that is missing is not silently skipped.
        let err = password(&smtp(Some(&dir.path().join("absent"))), &all)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent") && !err.contains("from-"), "{err}");
    }
}

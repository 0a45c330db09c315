//! The email channel: SMTP over the tokio runtime with rustls, one
//! connection reused for the consecutive messages of a delivery pass.
//!
//! veille opens the TCP connection itself and hands it to lettre's SMTP
//! client, for two things lettre's transport does not do:
//! - `TCP_NODELAY`: lettre writes the message and the final `.` as two
//!   writes; with Nagle on, the `.` waits for the server's delayed ACK of
//!   the message (about 40 ms a message on Linux);
//! - one TLS configuration (and one read of the certificate store) per
//!   process rather than per message.
//!
//! lettre's own timeout covers connecting only: a server that stalls after
//! the final `.` or never greets would hold a send forever, so every send is
//! bounded as a whole here. When the outcome is unknown (the connection
//! dropped after the message was handed over, or the bound was hit), the
//! send is retried later with the same `Message-ID`: a receiver that got the
//! first copy can drop the second.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use super::{DeliveryError, read_secret};
use crate::config::{Security, Smtp};

/// The environment variable a password may come from (SPEC §2).
pub const PASSWORD_ENV: &str = "VEILLE_SMTP_PASSWORD";
/// The file name under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub const PASSWORD_CREDENTIAL: &str = "smtp-password";

/// The configured server and what every connection to it shares, made once
/// per config.
pub struct Mailer {
    smtp: Smtp,
    /// For `tls` and `starttls`; an error here fails each send (and is
    /// retried), not the start.
    tls: Option<Result<TlsParameters, String>>,
    hello: ClientId,
    /// Bound on one whole send: connection, transfer and answer.
    limit: Duration,
}

impl Mailer {
    pub fn new(smtp: &Smtp, limit: Duration) -> Mailer {
        let tls = (smtp.security != Security::None).then(|| {
            TlsParameters::new(smtp.host.clone())
                .map_err(|e| format!("SMTP {}: TLS set-up: {e}", smtp.host))
        });
        Mailer {
            smtp: smtp.clone(),
            tls,
            hello: ClientId::default(),
            limit,
        }
    }

    /// `From` of every message.
    pub fn from(&self) -> &str {
        &self.smtp.from
    }

    pub fn session(&self) -> Session<'_> {
        Session {
            mailer: self,
            conn: None,
        }
    }

    fn tls(&self) -> Result<TlsParameters, DeliveryError> {
        match &self.tls {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(e)) => Err(DeliveryError::Transient(e.clone())),
            None => Err(DeliveryError::Permanent("no TLS configured".into())),
        }
    }

    /// A new connection: greeted, encrypted as configured, authenticated.
    /// Whatever fails here fails for every message: the channel's fault.
    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        self.open().await.map_err(|e| match e {
            DeliveryError::Transient(m) | DeliveryError::Permanent(m) => DeliveryError::Channel(m),
            channel => channel,
        })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let s = &self.smtp;
        let tcp = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| self.transient(&format!("cannot connect: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| self.transient(&format!("cannot set TCP_NODELAY: {e}")))?;
        let mut conn = match s.security {
            Security::None => self.greet(Box::new(tcp)).await?,
            Security::StartTls => {
                let mut conn = self.greet(Box::new(tcp)).await?;
                conn.starttls(self.tls()?, &self.hello)
                    .await
                    .map_err(|e| self.classify(&e))?;
                conn
            }
            Security::Tls => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                stream
                    .upgrade_tls(self.tls()?)
                    .await
                    .map_err(|e| self.classify(&e))?;
                self.greet(Box::new(Encrypted(stream.compat()))).await?
            }
        };
        if let Some(user) = &s.username {
            let password = password(s, &Sources::from_process())?;
            let credentials = Credentials::new(user.clone(), password);
            conn.auth(DEFAULT_MECHANISMS, &credentials)
                .await
                .map_err(|e| self.classify(&e))?;
        }
        Ok(conn)
    }

    async fn greet(
        &self,
        stream: Box<dyn AsyncTokioStream>,
    ) -> Result<AsyncSmtpConnection, DeliveryError> {
        AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| self.classify(&e))
    }

    /// 5xx answers will not change by themselves (a refused recipient, a
    /// wrong password): failed at once, `veille retry` after the fix.
    /// Everything else (4xx, connection refused or dropped, TLS trouble) is
    /// tried again.
    fn classify(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let text = super::error_text(e);
        let msg = format!(
            "SMTP {}:{}: {text}{}",
            self.smtp.host,
            self.smtp.port,
            hint(self.smtp.security, &text)
        );
        if e.is_permanent() {
            DeliveryError::Permanent(msg)
        } else {
            DeliveryError::Transient(msg)
        }
    }

    fn transient(&self, what: &str) -> DeliveryError {
        DeliveryError::Transient(format!(
            "SMTP {}:{}: {what}",
            self.smtp.host, self.smtp.port
        ))
    }
}

/// What to change, for the library errors a wrong `security`, port or
/// login gives (their own words name the protocol's insides).
fn hint(security: Security, error: &str) -> &'static str {
    let e = error.to_lowercase();
    if e.contains("no compatible authentication mechanism") {
        return match security {
            Security::None => {
                " (the server offers no login on a plain connection: most offer it only after STARTTLS, security = \"starttls\" on port 587; a relay that needs none takes no `username`)"
            }
            _ => {
                " (the server offers no login method veille knows, PLAIN or LOGIN: check `username`, or remove it for a relay that needs none)"
            }
        };
    }
    match security {
        Security::Tls if e.contains("corrupt message") || e.contains("invalidcontenttype") => {
            " (the server does not speak TLS from the first byte on this port: security = \"tls\" is for port 465; for port 587 or 25 use security = \"starttls\")"
        }
        Security::StartTls if e.contains("starttls") || e.contains("not supported") => {
            " (the server offers no STARTTLS here: security = \"tls\" on port 465, or security = \"none\" for a relay on this machine)"
        }
        _ => "",
    }
}

/// Messages sent one after the other over one connection, opened at the
/// first send and again after an error.
pub struct Session<'a> {
    mailer: &'a Mailer,
    conn: Option<AsyncSmtpConnection>,
}

impl Session<'_> {
    /// Sends `message` (a complete RFC 5322 message) to `to`, within the
    /// mailer's bound. When a reused connection fails before the message
    /// was handed over, other than by a 5xx (the server closed it while
    /// idle, or after its quota of messages), a new one is opened and the
    /// message tried once more, within the same bound: nothing can have
    /// been delivered twice.
    pub async fn send(&mut self, to: &[String], message: &[u8]) -> Result<(), DeliveryError> {
        let envelope = envelope(&self.mailer.smtp.from, to)?;
        let deadline = Instant::now() + self.mailer.limit;
        let reused = self.conn.is_some();
        let mut outcome = timeout_at(deadline, self.try_send(&envelope, message)).await;
        if let Ok(Err(failed)) = &outcome
            && reused
            && !failed.handed_over
            && matches!(failed.error, DeliveryError::Transient(_))
        {
            outcome = timeout_at(deadline, self.try_send(&envelope, message)).await;
        }
        match outcome {
            Ok(sent) => sent.map_err(|f| f.error),
            Err(_) => {
                self.conn = None;
                Err(self.mailer.transient(&format!(
                    "no answer within {}s; outcome unknown, will resend with the same Message-ID",
                    self.mailer.limit.as_secs()
                )))
            }
        }
    }

    /// One mail transaction; the connection is kept only if it succeeds.
    async fn try_send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<(), Failed> {
        let before = |error| Failed {
            error,
            handed_over: false,
        };
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.mailer.connect().await.map_err(before)?,
        };
        let classify = |e: lettre::transport::smtp::Error| self.mailer.classify(&e);
        let mut options = Vec::new();
        let non_ascii = |a: &Address| !AsRef::<str>::as_ref(a).is_ascii();
        if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
            options.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(|e| before(classify(e)))?;
        for rcpt in envelope.to() {
            conn.command(Rcpt::new(rcpt.clone(), Vec::new()))
                .await
                .map_err(|e| before(classify(e)))?;
        }
        conn.command(Data).await.map_err(|e| before(classify(e)))?;
        conn.message(message).await.map_err(|e| Failed {
            error: classify(e),
            handed_over: true,
        })?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Says goodbye to the server, within the bound.
    pub async fn close(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(self.mailer.limit, conn.quit()).await;
        }
    }
}

/// Why a mail transaction failed, and whether the server may have the
/// message (it was sent after `DATA` was accepted).
struct Failed {
    error: DeliveryError,
    handed_over: bool,
}

/// lettre's TLS stream (futures I/O) as the tokio stream its SMTP client
/// takes: the way to run lettre's own TLS over a socket opened here.
#[derive(Debug)]
#[allow(deprecated)]
struct Encrypted(Compat<AsyncNetworkStream>);

impl AsyncRead for Encrypted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Encrypted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Encrypted {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
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
    Err(DeliveryError::Channel(format!(
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

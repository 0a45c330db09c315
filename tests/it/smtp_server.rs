//! A real SMTP server on 127.0.0.1 for the tests: it speaks the protocol
//! (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! QUIT) over TCP, or TLS from the first byte, and keeps what it received. Written here rather than taken from a
//! crate because the tests need its failures on demand: a 4xx or 5xx answer,
//! a server that stalls or hangs up after the final dot, one that never
//! greets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Answer the message with this code (4xx or 5xx) and keep nothing.
    Refuse(u16),
    /// Keep the message, then never answer.
    StallAfterData,
    /// Keep the message, then hang up without answering.
    DropAfterData,
    /// Accept the connection and say nothing.
    NoGreeting,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// `user:password` from AUTH PLAIN.
    pub auth: Option<String>,
    /// The message came over TLS.
    pub tls: bool,
}

struct State {
    mode: Mode,
    received: Vec<Received>,
    /// Connections accepted so far.
    connections: usize,
    /// Hang up, silently, before the next command once a connection has
    /// carried this many messages (a provider's quota, an idle timeout).
    per_connection: Option<usize>,
    /// How long the server takes to answer a message (a slow relay).
    delay: std::time::Duration,
    /// `user:password` AUTH PLAIN must carry, when set: any other is
    /// refused with 535, as a provider refuses a wrong password.
    login: Option<String>,
    /// AUTH commands received, accepted or not.
    auth_attempts: usize,
}

pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// How the server uses TLS: a test certificate for 127.0.0.1, issued by a
/// test CA that clients are told to trust through `SSL_CERT_FILE`.
#[derive(Clone)]
pub enum Encryption {
    None,
    /// Offer STARTTLS, and refuse mail before it.
    StartTls(Arc<rustls::ServerConfig>),
    /// TLS from the first byte (port 465 style).
    Implicit(Arc<rustls::ServerConfig>),
}

/// A CA (PEM, to write to a file for `SSL_CERT_FILE`) and a server config
/// whose certificate it issued for 127.0.0.1 and localhost.
pub fn test_pki() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "veille test CA");
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let chain = vec![leaf.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    (issuer.pem(), Arc::new(config))
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn tls_wrap(stream: Box<dyn Stream>, config: &Arc<rustls::ServerConfig>) -> Box<dyn Stream> {
    let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
    Box::new(rustls::StreamOwned::new(conn, stream))
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(0)
    }

    /// A port nothing listens on (for "the server is down").
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    pub fn start_on(port: u16) -> SmtpServer {
        SmtpServer::start_with(port, Encryption::None)
    }

    pub fn start_with(port: u16, tls: Encryption) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind SMTP");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Accept,
            received: Vec::new(),
            connections: 0,
            per_connection: None,
            delay: std::time::Duration::ZERO,
            login: None,
            auth_attempts: 0,
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let state = Arc::clone(&shared);
                state.lock().unwrap().connections += 1;
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &tls, &state);
                });
            }
        });
        SmtpServer { port, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Hang up after `n` messages on each connection.
    pub fn set_per_connection(&self, n: usize) {
        self.state.lock().unwrap().per_connection = Some(n);
    }

    /// Take `delay` to answer each message.
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Accept only this `user:password` (535 for any other).
    pub fn set_login(&self, login: &str) {
        self.state.lock().unwrap().login = Some(login.to_owned());
    }

    /// How many times clients tried to log in.
    pub fn auth_attempts(&self) -> usize {
        self.state.lock().unwrap().auth_attempts
    }

    /// How many connections clients opened.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

fn session(tcp: TcpStream, tls: &Encryption, state: &Mutex<State>) -> std::io::Result<()> {
    let mode = state.lock().unwrap().mode;
    if mode == Mode::NoGreeting {
        // Hold the connection open, silent, until the client gives up.
        let mut sink = Vec::new();
        let _ = (&tcp).read_to_end(&mut sink);
        return Ok(());
    }
    let mut stream: Box<dyn Stream> = Box::new(tcp);
    let mut secure = false;
    if let Encryption::Implicit(config) = tls {
        stream = tls_wrap(stream, config);
        secure = true;
    }
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"220 localhost ESMTP veille-test\r\n")?;
    let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
    let mut line = String::new();
    let mut carried = 0;
    loop {
        if state.lock().unwrap().per_connection == Some(carried) {
            return Ok(());
        }
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let out = reader.get_mut();
        let must_start_tls = matches!(tls, Encryption::StartTls(_)) && !secure;
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let offer = if must_start_tls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            out.write_all(
                format!(
                    "250-localhost\r\n{offer}250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                )
                .as_bytes(),
            )?;
        } else if upper == "STARTTLS" && must_start_tls {
            out.write_all(b"220 2.0.0 go ahead\r\n")?;
            let Encryption::StartTls(config) = tls else {
                unreachable!()
            };
            let plain = reader.into_inner();
            reader = BufReader::new(tls_wrap(plain, config));
            secure = true;
        } else if must_start_tls && upper != "QUIT" && upper != "NOOP" && upper != "RSET" {
            out.write_all(b"530 5.7.0 must issue STARTTLS first\r\n")?;
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(cmd[cmd.len() - b64.len()..].trim())
                .unwrap_or_default();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let given = parts.get(1..3).map(|p| p.join(":"));
            let wanted = {
                let mut s = state.lock().unwrap();
                s.auth_attempts += 1;
                s.login.clone()
            };
            if wanted.is_none_or(|w| given.as_ref() == Some(&w)) {
                auth = given;
                out.write_all(b"235 2.7.0 authenticated\r\n")?;
            } else {
                out.write_all(b"535 5.7.8 authentication failed\r\n")?;
            }
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&cmd);
            to.clear();
            out.write_all(b"250 2.1.0 ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&cmd));
            out.write_all(b"250 2.1.5 ok\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 end with .\r\n")?;
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if reader.read_until(b'\n', &mut l)? == 0 {
                    return Ok(());
                }
                if l == b".\r\n" || l == b".\n" {
                    break;
                }
                let l = if l.starts_with(b"..") {
                    &l[1..]
                } else {
                    &l[..]
                };
                data.extend_from_slice(l);
            }
            let (mode, delay) = {
                let s = state.lock().unwrap();
                (s.mode, s.delay)
            };
            std::thread::sleep(delay);
            let message = Received {
                from: from.clone(),
                to: to.clone(),
                data,
                auth: auth.clone(),
                tls: secure,
            };
            let out = reader.get_mut();
            match mode {
                Mode::Accept | Mode::NoGreeting => {
                    state.lock().unwrap().received.push(message);
                    out.write_all(b"250 2.0.0 queued\r\n")?;
                    carried += 1;
                }
                Mode::Refuse(code) => {
                    out.write_all(format!("{code} refused by the test server\r\n").as_bytes())?;
                }
                Mode::StallAfterData => {
                    state.lock().unwrap().received.push(message);
                    let mut sink = Vec::new();
                    let _ = reader.read_to_end(&mut sink);
                    return Ok(());
                }
                Mode::DropAfterData => {
                    // Dropping the stream hangs up without an answer.
                    state.lock().unwrap().received.push(message);
                    return Ok(());
                }
            }
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            out.write_all(b"250 2.0.0 ok\r\n")?;
        } else {
            out.write_all(b"502 5.5.1 not implemented\r\n")?;
        }
    }
}

/// `MAIL FROM:<a@b> SIZE=…` → `a@b`.
fn address(cmd: &str) -> String {
    let start = cmd.find('<').map_or(0, |i| i + 1);
    let end = cmd[start..].find('>').map_or(cmd.len(), |i| start + i);
    cmd[start..end].to_owned()
}

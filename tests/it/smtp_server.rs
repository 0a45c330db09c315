//! A real SMTP server on 127.0.0.1 for the tests: it speaks the protocol
//! (EHLO, AUTH PLAIN, MAIL, RCPT, DATA with dot-unstuffing, RSET, QUIT) over
//! TCP and keeps what it received. Written here rather than taken from a
//! crate because the tests need its failures on demand: a 4xx or 5xx answer,
//! a server that stalls or hangs up after the final dot, one that never
//! greets.

use std::io::{BufRead, BufReader, Write};
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
}

struct State {
    mode: Mode,
    received: Vec<Received>,
}

pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
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
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind SMTP");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Accept,
            received: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = session(stream, &state);
                });
            }
        });
        SmtpServer { port, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

fn session(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mode = state.lock().unwrap().mode;
    let mut out = stream.try_clone()?;
    if mode == Mode::NoGreeting {
        // Hold the connection open, silent, until the client gives up.
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &stream, &mut sink);
        return Ok(());
    }
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 localhost ESMTP veille-test\r\n")?;
    let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            out.write_all(b"250-localhost\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(cmd[cmd.len() - b64.len()..].trim())
                .unwrap_or_default();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            auth = parts.get(1..3).map(|p| p.join(":"));
            out.write_all(b"235 2.7.0 authenticated\r\n")?;
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
            let mode = state.lock().unwrap().mode;
            let message = Received {
                from: from.clone(),
                to: to.clone(),
                data,
                auth: auth.clone(),
            };
            match mode {
                Mode::Accept | Mode::NoGreeting => {
                    state.lock().unwrap().received.push(message);
                    out.write_all(b"250 2.0.0 queued\r\n")?;
                }
                Mode::Refuse(code) => {
                    out.write_all(format!("{code} refused by the test server\r\n").as_bytes())?;
                }
                Mode::StallAfterData => {
                    state.lock().unwrap().received.push(message);
                    let mut sink = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
                    return Ok(());
                }
                Mode::DropAfterData => {
                    state.lock().unwrap().received.push(message);
                    return out.shutdown(std::net::Shutdown::Both);
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

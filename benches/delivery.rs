//! Delivery benchmark: the whole path a user takes. `veille run --once` (the
//! release binary) polls one feed of N stories that all match, over
//! loopback HTTP, from an empty database, and sends one message per story:
//! to a real SMTP server, to a webhook receiver, or to a Maildir (the
//! baseline: the poll and the bookkeeping without a network send). In the
//! same invocation, a Python `smtplib` client sends the very messages veille
//! sent to the same SMTP server, over one connection and over a new
//! connection each, for comparison.
//!
//! The SMTP server is the one the tests use (a thread per connection), the
//! webhook receiver wiremock; both run in this process, veille in its own.
//!
//! `cargo bench --bench delivery`; `DELIVERY_STORIES=1000 DELIVERY_RUNS=5`;
//! `DELIVERY_VEILLE=path/to/veille` times another build of veille;
//! `DELIVERY_PG=postgresql://user@host:port` runs it on PostgreSQL.

// Signals to child processes go through libc.
#![allow(unsafe_code)]

#[allow(dead_code)]
#[path = "../tests/it/smtp_server.rs"]
mod smtp_server;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use smtp_server::SmtpServer;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks what is in here.
    }
    let n: usize = env_or("DELIVERY_STORIES", 1000);
    let runs: usize = env_or("DELIVERY_RUNS", 5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let feed = rt.block_on(feed_server(n));
    let hook = rt.block_on(async {
        let hook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&hook)
            .await;
        hook
    });
    println!("delivery: {n} stories, {runs} runs, medians of wall seconds");
    let mut times: [Vec<f64>; 5] = Default::default();
    for _ in 0..runs {
        let smtp = SmtpServer::start();
        times[0].push(run_once(
            &feed,
            "kind = \"email\"\nto = [\"moi@localhost\"]\n",
            Some(smtp.port),
        ));
        let got = smtp.received();
        assert_eq!(got.len(), n, "every story sent by email");
        let sent_messages: Vec<Vec<u8>> = got.into_iter().map(|r| r.data).collect();
        let before = rt.block_on(hook.received_requests()).unwrap().len();
        times[1].push(run_once(
            &feed,
            &format!("kind = \"webhook\"\nurl = \"{}/h\"\n", hook.uri()),
            None,
        ));
        let after = rt.block_on(hook.received_requests()).unwrap().len();
        assert_eq!(after - before, n, "every story posted");
        times[2].push(run_once(
            &feed,
            "kind = \"maildir\"\npath = \"mail\"\n",
            None,
        ));
        let smtp = SmtpServer::start();
        times[3].push(python_smtplib(smtp.port, &sent_messages, true));
        times[4].push(python_smtplib(smtp.port, &sent_messages, false));
        assert_eq!(smtp.received().len(), 2 * n, "python sent every message");
    }
    let names = [
        "veille run --once → SMTP",
        "veille run --once → webhook",
        "veille run --once → Maildir (baseline)",
        "python smtplib, one connection",
        "python smtplib, a connection each",
    ];
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    for (name, m) in names.iter().zip(&medians) {
        println!("{name:<42} {m:>7.3} s");
    }
    println!(
        "veille SMTP / python one connection: {:.2}×; SMTP sends alone (minus the Maildir run): {:.3} s",
        medians[0] / medians[3],
        medians[0] - medians[2]
    );
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Stories per feed (veille reads at most 500 items of a document).
const PER_FEED: usize = 250;

/// Feeds of `PER_FEED` stories, `n` in all, every one matching rule
/// `puces`; their `[[feed]]` tables.
async fn feed_server(n: usize) -> String {
    let server = MockServer::start().await;
    let date = chrono::Utc::now().to_rfc2822();
    let mut tables = String::new();
    for f in 0..n.div_ceil(PER_FEED) {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>AFP</title><link>https://example.org/</link><description>d</description>\n",
        );
        for i in f * PER_FEED..((f + 1) * PER_FEED).min(n) {
            xml.push_str(&format!(
                "<item><guid isPermaLink=\"false\">b-{i}</guid><title>Les puces chinoises, épisode {i}</title>\
                 <link>https://news.example.org/b/{i}</link><description>Pékin accélère sur les puces : \
                 la dépêche {i} détaille les nouvelles usines et les droits de douane annoncés vendredi.</description>\
                 <pubDate>{date}</pubDate></item>\n"
            ));
        }
        xml.push_str("</channel></rss>\n");
        Mock::given(method("GET"))
            .and(path(format!("/f{f}.xml")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(xml, "application/rss+xml"))
            .mount(&server)
            .await;
        tables.push_str(&format!(
            "[[feed]]\nname = \"AFP {f}\"\nurl = \"{}/f{f}.xml\"\n\n",
            server.uri()
        ));
    }
    // The server lives as long as the bench.
    std::mem::forget(server);
    tables
}

/// `veille run --once` from an empty database; its wall time.
fn run_once(feeds: &str, channel: &str, smtp_port: Option<u16>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let smtp = smtp_port.map_or(String::new(), |p| {
        format!("[smtp]\nhost = \"127.0.0.1\"\nport = {p}\nsecurity = \"none\"\nfrom = \"v@localhost\"\n\n")
    });
    let config = format!(
        "[daemon]\ndatabase = \"{}\"\n\n{smtp}{feeds}\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n[channel.moi]\n{channel}",
        database()
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    // Each run starts with nothing left to write back from the one before:
    // otherwise the Maildir's fsyncs pay for the previous run's pages.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let start = Instant::now();
    let out = veille(dir.path()).output().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

/// `v.db` in the run's folder; with `DELIVERY_PG=postgresql://user@host:port`,
/// a database of that server made afresh for the run.
fn database() -> String {
    let Ok(server) = std::env::var("DELIVERY_PG") else {
        return "v.db".into();
    };
    let mut admin = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
        .expect("DELIVERY_PG: connect to its postgres database");
    for sql in [
        "DROP DATABASE IF EXISTS delivery_bench WITH (FORCE)",
        "CREATE DATABASE delivery_bench",
    ] {
        admin
            .batch_execute(sql)
            .expect("DELIVERY_PG: make the bench's database");
    }
    format!("{server}/delivery_bench")
}

/// The binary built with this bench, or `DELIVERY_VEILLE` (an earlier
/// build, for a before/after).
fn veille(dir: &Path) -> Command {
    let binary = std::env::var("DELIVERY_VEILLE").unwrap_or(env!("CARGO_BIN_EXE_veille").into());
    let mut cmd = Command::new(binary);
    cmd.args(["run", "--once", "--config"])
        .arg(dir.join("config.toml"))
        .current_dir(dir)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("RUST_LOG", "warn");
    cmd
}

/// Python's `smtplib` sending `messages` to 127.0.0.1:`port`; its wall
/// time, interpreter start excluded.
fn python_smtplib(port: u16, messages: &[Vec<u8>], one_connection: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:06}.eml")), m).unwrap();
    }
    let script = r#"
import os, smtplib, sys, time
port, folder, one = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
names = sorted(os.listdir(folder))
bodies = [open(os.path.join(folder, n), "rb").read() for n in names]
start = time.perf_counter()
conn = smtplib.SMTP("127.0.0.1", port) if one else None
for body in bodies:
    c = conn or smtplib.SMTP("127.0.0.1", port)
    c.sendmail("v@localhost", ["moi@localhost"], body)
    if not one:
        c.quit()
if conn:
    conn.quit()
print(time.perf_counter() - start)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(dir.path())
        .arg(if one_connection { "1" } else { "0" })
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

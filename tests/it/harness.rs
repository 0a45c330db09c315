//! Test environment: a temp folder with a config, the real `veille` binary,
//! real loopback HTTP servers and the Maildir it writes to.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    /// With `VEILLE_TEST_BACKEND=postgres`, the PostgreSQL database every
    /// config this test writes is pointed at (made at the first config).
    postgres: std::cell::OnceCell<String>,
    /// How far ahead of the real time the commands' clock runs, seconds
    /// (`VEILLE_CLOCK_SHIFT`): `advance` lets time pass between commands.
    shift: std::cell::Cell<i64>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: std::cell::OnceCell::new(),
            shift: std::cell::Cell::new(0),
        }
    }

    /// An RFC 2822 date `hours_ago` before the commands' clock.
    pub fn recent(&self, hours_ago: i64) -> String {
        let now = chrono::Utc::now() + chrono::Duration::seconds(self.shift.get());
        (now - chrono::Duration::hours(hours_ago)).to_rfc2822()
    }

    /// Lets `secs` pass for every command run from now on (a daemon
    /// already started keeps its clock).
    pub fn advance(&self, secs: i64) {
        self.shift.set(self.shift.get() + secs);
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes the config as it is, whatever the backend the suite runs on.
    pub fn write_config_as_is(&self, text: &str) {
        std::fs::write(self.path("config.toml"), text).expect("write config");
    }

    /// Points the configs this test writes (on PostgreSQL) at `url`, a
    /// database of a server of the test's own, instead of one of the
    /// shared server's.
    pub fn use_postgres(&self, url: String) {
        assert!(self.postgres.set(url).is_ok(), "before the first config");
    }

    /// Writes the config; with `VEILLE_TEST_BACKEND=postgres`, its
    /// `database` is this test's PostgreSQL database instead.
    pub fn write_config(&self, text: &str) {
        let text = match on_postgres() {
            true => with_database(text, self.postgres.get_or_init(crate::pg_server::database)),
            false => text.to_owned(),
        };
        std::fs::write(self.path("config.toml"), text).expect("write config");
    }

    /// `veille ARGS --config <dir>/config.toml`, waited for.
    pub fn veille(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run veille")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veille"));
        cmd.args(args)
            .arg("--config")
            .arg(self.path("config.toml"))
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("STATE_DIRECTORY")
            .env_remove("VEILLE_CONFIG")
            .env("VEILLE_CLOCK_SHIFT", format!("{}s", self.shift.get()))
            .env("NO_PROXY", "127.0.0.1,localhost,::1")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .stdin(Stdio::null());
        cmd
    }

    /// `veille ARGS`, asserting exit 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        succeed(&mut self.command(args))
    }

    /// `run --once`, asserting exit 0; returns stderr (the log).
    pub fn run_once(&self) -> String {
        String::from_utf8_lossy(&self.ok(&["run", "--once"]).stderr).into_owned()
    }

    pub fn status_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.ok(&["status", "--json"]).stdout).expect("status JSON")
    }

    /// Messages delivered to the Maildir at `rel`, parsed, oldest name first.
    pub fn mails(&self, rel: &str) -> Vec<Mail> {
        let new = self.path(rel).join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths.iter().map(|p| Mail::read(p)).collect()
    }

    /// The PostgreSQL database of this test, once a config is written on
    /// PostgreSQL; `None` on SQLite.
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres.get().map(String::as_str)
    }

    /// A responder that answers `answer` and, as it answers its first
    /// request, makes the database fail veille's next write for a passing
    /// reason: on SQLite another connection holds the write lock for 6 s
    /// (longer than veille waits on a busy file, 5 s); on PostgreSQL the
    /// server ends veille's connections. After a config is written.
    pub fn cut_database_on_first<R: Respond>(&self, answer: R) -> (CutDatabase<R>, Cut) {
        let cut = Cut::default();
        let responder = CutDatabase {
            answer,
            postgres: self.postgres_url().map(str::to_owned),
            file: self.path("veille.db"),
            cut: cut.clone(),
        };
        (responder, cut)
    }

    /// The SQLite file (for what only SQLite has: damaged rows, pragmas).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("veille.db")).expect("open db")
    }

    /// The rows a query answers, each value as text (`None` for NULL), on
    /// whichever database the test runs.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_rows(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The one number a query answers; `None` when it fails (no table
    /// yet).
    pub fn try_number(&self, sql: &str) -> Option<i64> {
        let rows = self.try_rows(sql).ok()?;
        rows.first()?.first()?.as_deref()?.parse().ok()
    }

    /// Runs `sql` on the PostgreSQL server's `postgres` database (what a
    /// database may not do to itself). Only on PostgreSQL.
    pub fn execute_on_server(&self, sql: &str) {
        let url = self.postgres.get().expect("the suite runs on PostgreSQL");
        let (server, _) = url.rsplit_once('/').unwrap();
        let admin = format!("{server}/postgres");
        std::thread::scope(|s| {
            s.spawn(|| {
                postgres::Client::connect(&admin, postgres::NoTls)
                    .and_then(|mut c| c.batch_execute(sql))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            });
        });
    }

    /// Runs statements that change rows (damaging them on purpose), on
    /// whichever database the test runs.
    pub fn execute(&self, sql: &str) {
        self.try_rows(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn try_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        if let Some(url) = self.postgres.get() {
            return pg_rows(url, sql);
        }
        let db = self.db();
        let mut stmt = db.prepare(sql).map_err(|e| e.to_string())?;
        let n = stmt.column_count();
        if n == 0 {
            stmt.execute([]).map_err(|e| e.to_string())?;
            return Ok(Vec::new());
        }
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => None,
                            rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                            rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Some(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                    })
                    .collect()
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// The one number a query on the database answers.
    pub fn number(&self, sql: &str) -> i64 {
        self.rows(sql)[0][0].as_deref().map_or(0, |v| {
            v.parse().unwrap_or_else(|e| panic!("{sql}: {v}: {e}"))
        })
    }
}

/// See `TestEnv::cut_database_on_first`.
pub struct CutDatabase<R> {
    answer: R,
    postgres: Option<String>,
    file: PathBuf,
    cut: Cut,
}

/// Whether a `CutDatabase` cut, and the lock's holder on SQLite.
#[derive(Clone, Default)]
pub struct Cut(std::sync::Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>);

impl Cut {
    /// Whether the database was cut; waits for the cut to end.
    pub fn ended(&self) -> bool {
        let holder = self.0.lock().unwrap().take();
        holder.map(|h| h.join().unwrap()).is_some()
    }
}

impl<R: Respond> Respond for CutDatabase<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut holder = self.cut.0.lock().unwrap();
        if holder.is_none() {
            *holder = Some(match &self.postgres {
                Some(url) => {
                    let ended = pg_rows(
                        url,
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    )
                    .unwrap();
                    assert_ne!(ended[0][0].as_deref(), Some("0"), "veille is connected");
                    std::thread::spawn(|| ())
                }
                None => {
                    let db = rusqlite::Connection::open(&self.file).unwrap();
                    db.execute_batch("BEGIN IMMEDIATE").unwrap();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(6));
                        db.execute_batch("COMMIT").unwrap();
                    })
                }
            });
        }
        self.answer.respond(request)
    }
}

/// The rows a query answers on the PostgreSQL database at `url`, each
/// value as text (`None` for NULL). On a thread of its own: the blocking
/// client runs a runtime, which may not start inside a test's.
pub fn pg_rows(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
            Ok(db
                .simple_query(sql)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    _ => None,
                })
                .collect())
        })
        .join()
        .unwrap()
    })
}

/// Whether the suite runs on PostgreSQL (`VEILLE_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("VEILLE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// `text` with `[daemon] database` set to `url`.
fn with_database(text: &str, url: &str) -> String {
    let line = format!("database = \"{url}\"");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("database ="))
        .collect();
    match kept.iter().position(|l| l.trim() == "[daemon]") {
        Some(at) => {
            let mut lines: Vec<String> = kept.iter().map(|l| (*l).to_owned()).collect();
            lines.insert(at + 1, line);
            lines.join("\n") + "\n"
        }
        None => format!("[daemon]\n{line}\n\n{}\n", kept.join("\n")),
    }
}

/// Runs `cmd` to its end, asserting exit 0 (the log in the message if not).
pub fn succeed(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run veille");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A delivered message, decoded.
#[derive(Debug)]
pub struct Mail {
    pub subject: String,
    pub to: String,
    pub from: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub content_type: String,
}

impl Mail {
    pub fn read(path: &Path) -> Mail {
        Mail::parse(&std::fs::read(path).expect("read mail"))
    }

    pub fn parse(raw: &[u8]) -> Mail {
        let parsed = mailparse::parse_mail(raw).expect("parse mail");
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case(name))
                .map(|h| h.get_value())
                .unwrap_or_default()
        };
        let part = |mime: &str| {
            parsed
                .subparts
                .iter()
                .find(|p| p.ctype.mimetype == mime)
                .map(|p| p.get_body().expect("body"))
                .unwrap_or_default()
        };
        Mail {
            subject: header("Subject"),
            to: header("To"),
            from: header("From"),
            message_id: header("Message-ID"),
            content_type: parsed.ctype.mimetype.clone(),
            text: part("text/plain"),
            html: part("text/html"),
        }
    }
}

/// Serves one feed document the way a careful server does: with an ETag and
/// a Last-Modified, answering 304 when the client's validators match.
#[derive(Clone)]
pub struct FeedDoc {
    pub body: Vec<u8>,
    pub content_type: String,
    pub etag: String,
    pub last_modified: String,
    pub delay: Duration,
}

impl FeedDoc {
    pub fn rss(body: &str) -> FeedDoc {
        let etag = format!(
            "\"{:x}\"",
            body.len() * 31 + body.bytes().map(|b| b as usize).sum::<usize>()
        );
        FeedDoc {
            body: body.as_bytes().to_vec(),
            content_type: "application/rss+xml; charset=utf-8".into(),
            etag,
            last_modified: "Sat, 26 Apr 2025 09:30:00 GMT".into(),
            delay: Duration::ZERO,
        }
    }
}

impl Respond for FeedDoc {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let fresh = match (header("if-none-match"), header("if-modified-since")) {
            (Some(tag), _) => tag.split(',').any(|t| t.trim() == self.etag),
            (None, Some(since)) => since == self.last_modified,
            _ => false,
        };
        let template = if fresh {
            ResponseTemplate::new(304).insert_header("ETag", self.etag.as_str())
        } else {
            ResponseTemplate::new(200)
                .insert_header("Content-Type", self.content_type.as_str())
                .insert_header("ETag", self.etag.as_str())
                .insert_header("Last-Modified", self.last_modified.as_str())
                .set_body_raw(self.body.clone(), &self.content_type)
        };
        template.set_delay(self.delay)
    }
}

/// Answers GET requests for `at` with `response`.
pub async fn serve(server: &MockServer, at: impl Into<String>, response: impl Respond + 'static) {
    Mock::given(method("GET"))
        .and(path(at.into()))
        .respond_with(response)
        .mount(server)
        .await;
}

/// An RSS 2.0 document from (guid, title, link, description, pubDate).
pub fn rss(title: &str, items: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title><link>https://example.org/</link><description>d</description>\n"
    );
    for (guid, title, link, description, date) in items {
        s.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title><link>{link}</link><description><![CDATA[{description}]]></description><pubDate>{date}</pubDate></item>\n"
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

/// A recent RFC 2822 date, so that items alert on a feed's first poll.
pub fn recent(hours_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc2822()
}

/// A server that sends headers, then one byte of body every `every`,
/// forever (or until the client goes away).
pub fn trickle_server(every: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000000\r\n\r\n<rss version=\"2.0\"><channel>");
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(60) {
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
            });
        }
    });
    format!("http://{addr}/slow.xml")
}

/// What `slow_receiver` saw: requests answered, and the most in flight at
/// once.
#[derive(Default)]
pub struct Receiving {
    /// The `webhook-id` of every request answered, in order.
    pub ids: std::sync::Mutex<Vec<String>>,
    pub answered: std::sync::atomic::AtomicUsize,
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub most_in_flight: std::sync::atomic::AtomicUsize,
}

/// An HTTP/1.1 receiver (keep-alive) that answers every POST `204` after
/// `delay`, counting how many requests it holds at once.
pub fn slow_receiver(delay: Duration) -> (String, std::sync::Arc<Receiving>) {
    use std::io::BufRead;
    use std::sync::atomic::Ordering::SeqCst;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let stats = std::sync::Arc::new(Receiving::default());
    let shared = std::sync::Arc::clone(&stats);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let stats = std::sync::Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                loop {
                    let mut length = 0;
                    let mut id = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if lower.starts_with("webhook-id:") {
                            id = line["webhook-id:".len()..].trim().to_owned();
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let now = stats.in_flight.fetch_add(1, SeqCst) + 1;
                    stats.most_in_flight.fetch_max(now, SeqCst);
                    std::thread::sleep(delay);
                    stats.in_flight.fetch_sub(1, SeqCst);
                    stats.ids.lock().unwrap().push(id);
                    stats.answered.fetch_add(1, SeqCst);
                    let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if reader.get_mut().write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), stats)
}

/// Waits for a child and returns (exit status, peak RSS in KiB).
///
/// The peak is the child's own `VmHWM`, read while it runs: `wait4`'s
/// `ru_maxrss` also counts the test process's memory at the fork (Linux
/// keeps the high-water mark of the image the child replaced at `exec`), so
/// it grew with whatever other tests held at the time.
pub fn wait_with_rusage(child: &mut std::process::Child) -> (i32, i64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(peak > 0, "the child's memory was never read");
            return (status.code().unwrap_or(-1), peak);
        }
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A child `veille` that is killed if the test ends before it does (a
/// failed assertion must not leave a daemon holding the test's output).
pub struct Running(pub std::process::Child);

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        Running(cmd.spawn().expect("spawn veille"))
    }
}

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a `feed_server` saw: fetches by path, how many ran at once, and
/// any path fetched twice at the same moment.
#[derive(Default)]
pub struct Fetches {
    pub by_path: std::collections::BTreeMap<String, usize>,
    /// When each fetch of a path began, in order.
    pub at: std::collections::BTreeMap<String, Vec<std::time::Instant>>,
    pub now: usize,
    pub most: usize,
    pub in_flight: std::collections::BTreeSet<String>,
    pub overlapping: Vec<String>,
}

/// Held by the tests that load the machine for minutes and assert on
/// timing (the retention soak, the fault test), so that they run one after
/// the other: on two cores, one's load would be the other's lag.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// A feed server on 127.0.0.1, a thread per connection (so that each
/// fetch is seen as it happens): every GET is answered, after `delay`, with
/// the RSS document `body` makes for its path. Returns its base URL and
/// what it saw.
pub fn feed_server(
    delay: Duration,
    body: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Fetches>>) {
    site_server(move |path| Reply {
        delay,
        ..Reply::ok("application/rss+xml", body(path))
    })
}

/// How a `site_server` answers one request.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// A `Location` header.
    pub location: Option<String>,
    pub body: String,
    /// Slept before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: String) -> Reply {
        Reply {
            status: 200,
            content_type,
            location: None,
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok("text/plain", String::new())
        }
    }
}

/// A web server on 127.0.0.1, a thread per connection: every GET is
/// answered as `reply` says for its path. Returns its base URL and what it
/// saw (fetches by path, how many ran at once).
pub fn site_server(
    reply: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Fetches>>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Fetches::default()));
    let (fetches, reply) = (Arc::clone(&seen), Arc::new(reply));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (fetches, reply) = (Arc::clone(&fetches), Arc::clone(&reply));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                // The headers, up to the blank line.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                {
                    let mut f = fetches.lock().unwrap();
                    f.now += 1;
                    f.most = f.most.max(f.now);
                    *f.by_path.entry(path.clone()).or_default() += 1;
                    f.at.entry(path.clone())
                        .or_default()
                        .push(std::time::Instant::now());
                    if !f.in_flight.insert(path.clone()) {
                        f.overlapping.push(path.clone());
                    }
                }
                let r = reply(&path);
                std::thread::sleep(r.delay);
                {
                    // Answered: over before the client can read the answer
                    // and send its next request, however late this thread
                    // runs again once it has written.
                    let mut f = fetches.lock().unwrap();
                    f.now -= 1;
                    f.in_flight.remove(&path);
                }
                let location = r
                    .location
                    .map(|l| format!("Location: {l}\r\n"))
                    .unwrap_or_default();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                    r.status,
                    r.content_type,
                    r.body.len(),
                    r.body
                );
            });
        }
    });
    (format!("http://{addr}"), seen)
}

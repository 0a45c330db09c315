//! SPEC §5: several veille processes on one database, and rows that cannot
//! be read back. Real processes, a real SMTP server and webhook receiver on
//! 127.0.0.1, one SQLite file.

use std::collections::BTreeMap;
use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{
    FeedDoc, Fetches, Mail, Running, TestEnv, feed_server, recent, rss, serve, succeed,
};
use crate::smtp_server::SmtpServer;

/// A feed of `n` stories matching rule `puces`.
async fn feed_of(n: usize) -> (MockServer, String) {
    let server = MockServer::start().await;
    let date = recent(1);
    let items: Vec<(String, String, String)> = (0..n)
        .map(|i| {
            (
                format!("g-{i}"),
                format!("Les puces, épisode {i}"),
                format!("https://news.example.org/p/{i}"),
            )
        })
        .collect();
    let rows: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(g, t, l)| (g.as_str(), t.as_str(), l.as_str(), "Texte.", date.as_str()))
        .collect();
    serve(&server, "/f.xml", FeedDoc::rss(&rss("AFP", &rows))).await;
    let url = format!("{}/f.xml", server.uri());
    (server, url)
}

/// One feed, rule `puces` → channel `moi` (`channel` is its table body).
fn config(feed: &str, smtp_port: Option<u16>, channel: &str) -> String {
    let smtp = smtp_port.map_or(String::new(), |p| {
        format!("[smtp]\nhost = \"127.0.0.1\"\nport = {p}\nsecurity = \"none\"\nfrom = \"v@localhost\"\n\n")
    });
    format!(
        "[daemon]\ndatabase = \"veille.db\"\ntimeout = \"1s\"\n\n{smtp}[[feed]]\nname = \"AFP\"\nurl = \"{feed}\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n[channel.moi]\n{channel}\n"
    )
}

const EMAIL: &str = "kind = \"email\"\nto = [\"moi@localhost\"]\n";

/// How many times each id arrived.
fn counts(ids: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for id in ids {
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

fn message_ids(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    counts(
        smtp.received()
            .iter()
            .map(|r| Mail::parse(&r.data).message_id),
    )
}

/// Two `run --once` started together.
fn two_runs_at_once(env: &TestEnv) {
    let start = || {
        env.command(&["run", "--once"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn two_processes_on_one_database_send_each_email_once() {
    let (_feed, url) = feed_of(200).await;
    let smtp = SmtpServer::start();
    // A slow relay: both processes are delivering at the same time.
    smtp.set_delay(Duration::from_millis(5));
    let env = TestEnv::new();
    env.write_config(&config(&url, Some(smtp.port), EMAIL));
    // The database exists first, so that both processes find the items.
    env.ok(&["check"]);
    two_runs_at_once(&env);

    let ids = message_ids(&smtp);
    assert_eq!(ids.len(), 200, "every alert sent");
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let sent = env.number("SELECT COUNT(*) FROM alerts WHERE state = 'sent'");
    assert_eq!(sent, 200);
}

#[tokio::test]
async fn a_daemon_and_a_run_once_on_one_database_send_each_email_once() {
    let (_feed, url) = feed_of(200).await;
    let smtp = SmtpServer::start();
    smtp.set_delay(Duration::from_millis(5));
    let env = TestEnv::new();
    env.write_config(&config(&url, Some(smtp.port), EMAIL));
    let mut daemon = Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));
    // A run typed by hand while the daemon delivers.
    while smtp.received().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    env.run_once();
    let waited = std::time::Instant::now();
    while smtp.received().len() < 200 && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
    let ids = message_ids(&smtp);
    assert_eq!(ids.len(), 200, "every alert sent");
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

#[tokio::test]
async fn two_processes_on_one_database_post_each_webhook_once() {
    let (_feed, url) = feed_of(200).await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_millis(5)))
        .mount(&hook)
        .await;
    let env = TestEnv::new();
    let channel = format!("kind = \"webhook\"\nurl = \"{}/h\"\n", hook.uri());
    env.write_config(&config(&url, None, &channel));
    env.ok(&["check"]);
    two_runs_at_once(&env);

    let requests = hook.received_requests().await.unwrap();
    let ids = counts(
        requests
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned()),
    );
    assert_eq!(ids.len(), 200, "every alert posted");
    assert!(ids.values().all(|n| *n == 1), "posted more than once");
}

#[tokio::test]
async fn a_sender_killed_mid_pass_leaves_its_alerts_to_the_next_process_after_its_lease() {
    let (_feed, url) = feed_of(20).await;
    let smtp = SmtpServer::start();
    smtp.set_delay(Duration::from_millis(300));
    let env = TestEnv::new();
    env.write_config(&config(&url, Some(smtp.port), EMAIL));
    let mut first = Running::spawn(
        env.command(&["run", "--once"])
            .stderr(std::process::Stdio::null()),
    );
    while smtp.received().len() < 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no chance to give anything back.
    first.kill().unwrap();
    first.wait().unwrap();
    // A message whose data was in when the sender died is counted once the
    // server's delay is over.
    std::thread::sleep(Duration::from_millis(500));
    let before = message_ids(&smtp);

    // Another process at once: the killed one's leases still hold.
    env.run_once();
    assert_eq!(
        message_ids(&smtp),
        before,
        "nothing taken from a live lease"
    );
    let pending = env.number("SELECT COUNT(*) FROM alerts WHERE state = 'pending'");
    assert!(pending >= 17, "{pending}");

    // Once the leases have ended, the next process sends the rest.
    let until = env.number("SELECT MAX(lease_until) FROM alerts");
    let wait = until + 1 - chrono::Utc::now().timestamp();
    assert!(wait <= 13, "a lease is a short while: {wait} s");
    std::thread::sleep(Duration::from_secs(wait.max(0) as u64));
    env.run_once();
    let ids = message_ids(&smtp);
    assert_eq!(ids.len(), 20, "every alert sent: {ids:?}");
    // Only the messages in flight at the kill arrive twice, each under its
    // one Message-ID: an email channel has two at a time (one being
    // recorded while the next is sent).
    assert!(ids.values().filter(|n| **n > 1).count() <= 2, "{ids:?}");
    assert!(ids.values().all(|n| *n <= 2), "{ids:?}");
}

#[test]
fn concurrent_first_starts_on_a_new_database_both_run_one_schema() {
    for round in 0..5 {
        let env = TestEnv::new();
        env.write_config(&config(
            "samples/none.xml",
            None,
            "kind = \"maildir\"\npath = \"mail\"\n",
        ));
        let children: Vec<_> = (0..3)
            .map(|_| {
                env.command(&["run", "--once"])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "round {round}: {log}");
            assert!(!log.contains("CREATE TABLE"), "round {round}: {log}");
        }
        let (version, folder, tables) = if crate::harness::on_postgres() {
            (
                "SELECT version FROM veille_schema",
                "/migrations/postgres",
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'alerts'",
            )
        } else {
            (
                "PRAGMA user_version",
                "/migrations/sqlite",
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'alerts'",
            )
        };
        let dir = format!("{}{folder}", env!("CARGO_MANIFEST_DIR"));
        let migrations = std::fs::read_dir(dir).unwrap().count() as i64;
        assert_eq!(env.number(version), migrations);
        assert_eq!(env.number(tables), 1);
    }
}

#[tokio::test]
async fn a_damaged_alert_or_digest_fails_alone_and_status_names_it() {
    let (_feed, url) = feed_of(6).await;
    let smtp = SmtpServer::start();
    let env = TestEnv::new();
    let cfg = config(&url, Some(smtp.port), EMAIL)
        .replace("notify = [\"moi\"]", "notify = [\"moi\", \"matin\"]")
        + "\n[channel.matin]\nkind = \"maildir\"\npath = \"mail\"\ndigest = \"0 8 * * *\"\n";
    env.write_config(&cfg);
    // Record the alerts without sending them: a server that is down.
    let port = smtp.port;
    env.write_config(&cfg.replace(
        &format!("port = {port}"),
        &format!("port = {}", SmtpServer::free_port()),
    ));
    env.run_once();
    env.write_config(&cfg);
    // An upgrade gone wrong: one alert's hits and a made digest's body in a
    // shape this veille cannot read.
    let damaged = env.rows("SELECT id FROM alerts WHERE channel = 'moi' ORDER BY id LIMIT 1")[0][0]
        .clone()
        .unwrap();
    env.execute(&format!(
        "UPDATE alerts SET hits = '{{\"v\":9,\"data\":{{}}}}' WHERE id = '{damaged}'"
    ));
    // An hour on, the retries are due.
    env.advance(3600);
    succeed(&mut env.command(&["digest", "matin"]));
    assert_eq!(env.mails("mail").len(), 1, "the digest itself went out");
    env.execute(
        "INSERT INTO digests (id, channel, tick, body, stories, queued, due) VALUES ('d-bad', 'matin', 0, '{broken', 0, 0, 0)",
    );

    env.run_once();
    let ids = message_ids(&smtp);
    assert_eq!(ids.len(), 5, "every other alert delivered: {ids:?}");
    assert!(!ids.keys().any(|id| id.contains(&damaged)));
    let state = |table: &str, id: &str| -> (String, String) {
        let row = &env.rows(&format!(
            "SELECT state, last_error FROM {table} WHERE id = '{id}'"
        ))[0];
        (row[0].clone().unwrap(), row[1].clone().unwrap())
    };
    let (s, e) = state("alerts", &damaged);
    assert_eq!(s, "failed");
    assert!(e.contains("version 9") && e.contains("newer veille"), "{e}");
    assert_eq!(state("digests", "d-bad").0, "failed");

    let human = String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned();
    assert!(
        human.contains(&format!("damaged alert {damaged}")),
        "{human}"
    );
    assert!(human.contains("damaged digest d-bad"), "{human}");
    // A second run leaves them be and sends nothing again.
    env.run_once();
    assert_eq!(message_ids(&smtp).len(), 5);
}

#[tokio::test]
async fn run_once_retries_a_made_digest_whose_retry_is_due() {
    let (_feed, url) = feed_of(3).await;
    let smtp = SmtpServer::start();
    smtp.set_mode(crate::smtp_server::Mode::Refuse(451));
    let env = TestEnv::new();
    let channel = "kind = \"email\"\nto = [\"moi@localhost\"]\ndigest = \"0 8 * * *\"\n";
    env.write_config(&config(&url, Some(smtp.port), channel));
    env.ok(&["run", "--once", "--flush-digests"]);
    assert!(smtp.received().is_empty());
    let row = &env.rows("SELECT attempts, state FROM digests")[0];
    let (attempts, state): (i64, String) = (
        row[0].as_deref().unwrap().parse().unwrap(),
        row[1].clone().unwrap(),
    );
    assert_eq!((attempts, state.as_str()), (1, "pending"));

    smtp.set_mode(crate::smtp_server::Mode::Accept);
    // Not due yet: the next run leaves it.
    env.run_once();
    assert!(smtp.received().is_empty());
    // Its retry has come (an hour on): a plain run sends it.
    env.advance(3600);
    env.run_once();
    assert_eq!(smtp.received().len(), 1);
    env.run_once();
    assert_eq!(smtp.received().len(), 1, "once");
}

#[tokio::test]
async fn a_burst_of_webhooks_goes_a_few_at_a_time_after_a_first_success() {
    let (_feed, url) = feed_of(24).await;
    let (hook, receiving) = crate::harness::slow_receiver(Duration::from_millis(50));
    let env = TestEnv::new();
    env.write_config(&config(
        &url,
        None,
        &format!("kind = \"webhook\"\nurl = \"{hook}\"\n"),
    ));
    env.run_once();
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(receiving.answered.load(SeqCst), 24);
    let most = receiving.most_in_flight.load(SeqCst);
    assert!(
        (2..=4).contains(&most),
        "at most 4 at once, and more than one: {most}"
    );
}

/// SIGTERM while webhooks are on their way: the messages the receiver took
/// are recorded sent before the daemon ends, so the next start sends each
/// of the others once and none twice.
#[tokio::test]
async fn a_daemon_told_to_stop_records_the_messages_under_way() {
    use std::sync::atomic::Ordering::SeqCst;
    let (_feed, url) = feed_of(12).await;
    let (hook, receiving) = crate::harness::slow_receiver(Duration::from_millis(600));
    let env = TestEnv::new();
    env.write_config(&config(
        &url,
        None,
        &format!("kind = \"webhook\"\nurl = \"{hook}\"\n"),
    ));
    let mut daemon = Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));
    // Told to stop while posts after the first are on their way.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while receiving.answered.load(SeqCst) == 0 || receiving.in_flight.load(SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "posts on their way");
        std::thread::sleep(Duration::from_millis(5));
    }
    let taken = receiving.answered.load(SeqCst) + receiving.in_flight.load(SeqCst);
    // SAFETY: a signal to a child this test started and still holds.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "stops");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    // The receiver ends whatever it still holds.
    std::thread::sleep(Duration::from_millis(800));
    let answered = receiving.answered.load(SeqCst);
    // No send starts after the stop (one may have started as the signal
    // went: four at most go at once).
    assert!(
        (2..=taken + 4).contains(&answered) && answered < 12,
        "{answered} taken, {taken} before the stop"
    );
    let answered = answered as i64;
    assert_eq!(
        env.number("SELECT COUNT(*) FROM alerts WHERE state = 'sent'"),
        answered,
        "every message the receiver took is recorded sent"
    );
    env.run_once();
    let ids = counts(receiving.ids.lock().unwrap().clone());
    assert_eq!(ids.len(), 12);
    assert!(ids.values().all(|&n| n == 1), "each once: {ids:?}");
}

/// Feeds `/f0.xml`… on 127.0.0.1, each one story matching `puces`,
/// each answered after `delay`; what the server saw.
fn counting_feeds(delay: Duration) -> (String, std::sync::Arc<std::sync::Mutex<Fetches>>) {
    let date = recent(1);
    feed_server(delay, move |path| {
        let n = path.trim_start_matches("/f").trim_end_matches(".xml");
        rss(
            &format!("F{n}"),
            &[(
                &format!("g-{n}"),
                &format!("Les puces, dépêche {n}"),
                &format!("https://news.example.org/d/{n}"),
                "Texte.",
                &date,
            )],
        )
    })
}

/// SPEC §10, feeds: three daemons on one database poll each feed once,
/// never one feed at the same moment, and the feeds' one host never sees
/// more than `per_host` fetches at once from the three together; every
/// story is mailed once. `status` lists the three, one of them leading.
#[test]
fn three_daemons_share_the_feeds_and_per_host_holds_for_all() {
    const FEEDS: usize = 30;
    let (base, seen) = counting_feeds(Duration::from_millis(150));
    let env = TestEnv::new();
    let mut config = String::from(
        "[daemon]\ndatabase = \"veille.db\"\ninterval = \"10m\"\nper_host = 2\nconcurrency = 8\n\n",
    );
    for n in 0..FEEDS {
        config.push_str(&format!(
            "[[feed]]\nname = \"F{n}\"\nurl = \"{base}/f{n}.xml\"\n\n"
        ));
    }
    config.push_str(
        "[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
         [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n",
    );
    env.write_config(&config);
    // The database made first, so that the three start polling together.
    env.ok(&["check"]);
    let daemons: Vec<Running> = (0..3)
        .map(|_| Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null())))
        .collect();
    let started = std::time::Instant::now();
    while env.mails("mail").len() < FEEDS && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Long enough for a second fetch of anything, were there one.
    std::thread::sleep(Duration::from_secs(6));
    // `status` lists the three, one of which runs the once-per-tick work.
    let status = env.status_json();
    let processes = status["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 3, "{processes:?}");
    let leaders = processes.iter().filter(|p| p["leads"] == true).count();
    assert_eq!(leaders, 1, "{processes:?}");
    drop(daemons);
    let s = seen.lock().unwrap();
    assert_eq!(s.by_path.len(), FEEDS, "every feed polled: {:?}", s.by_path);
    let twice: Vec<_> = s.by_path.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    assert!(s.overlapping.is_empty(), "at once: {:?}", s.overlapping);
    assert!(s.most <= 2, "{} fetches at once from one host", s.most);
    assert_eq!(s.most, 2, "the host's two slots were used");
    let mails = env.mails("mail");
    assert_eq!(mails.len(), FEEDS);
}

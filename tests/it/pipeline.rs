//! SPEC §4 and §5 through `run --once`: stories, dedup, the outbox.

use std::time::{Duration, Instant};

use wiremock::MockServer;

use crate::harness::{FeedDoc, Running, TestEnv, recent, rss, serve, succeed};

fn config(feeds: &[(&str, String)], extra_rules: &str) -> String {
    let mut c = String::from("[daemon]\ntimezone = \"Europe/Paris\"\n\n");
    for (name, url) in feeds {
        c.push_str(&format!("[[feed]]\nname = \"{name}\"\nurl = \"{url}\"\n\n"));
    }
    c.push_str(&format!(
        "[[rule]]\nname = \"puces\"\nany = [\"puces\", \"IA\"]\nnotify = [\"archive\"]\n\n{extra_rules}\n[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n"
    ));
    c
}

/// A feed of one matching story, published an hour ago.
fn one_story() -> String {
    rss(
        "Tech",
        &[(
            "g1",
            "Les puces de l’IA",
            "https://example.org/a",
            "texte",
            &recent(1),
        )],
    )
}

/// A poll whose reading or writing fails for a passing reason (the
/// database busy, the connection cut while the feed was fetched) is made
/// again, not lost: its alert goes out in the same run, and the feed is
/// not counted as failing.
#[tokio::test]
async fn a_poll_the_database_fails_for_a_passing_reason_is_written_again() {
    let server = MockServer::start().await;
    let doc = one_story();
    let env = TestEnv::new();
    env.write_config(&config(
        &[("Tech", format!("{}/feed.xml", server.uri()))],
        "",
    ));
    let (answer, cut) = env.cut_database_on_first(FeedDoc::rss(&doc));
    wiremock::Mock::given(wiremock::matchers::path("/feed.xml"))
        .respond_with(answer)
        .mount(&server)
        .await;

    let log = env.run_once();
    assert!(cut.ended(), "the feed was fetched");
    assert_eq!(env.mails("mail").len(), 1, "{log}");
    let status = env.status_json();
    assert_eq!(status["feeds"][0]["consecutive_failures"], 0, "{status}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_run_is_a_conditional_get_and_sends_nothing_new() {
    let server = MockServer::start().await;
    let doc = one_story();
    serve(&server, "/feed.xml", FeedDoc::rss(&doc)).await;
    let env = TestEnv::new();
    env.write_config(&config(
        &[("Tech", format!("{}/feed.xml", server.uri()))],
        "",
    ));

    let log = env.run_once();
    assert_eq!(env.mails("mail").len(), 1);
    let delivered = log.lines().find(|l| l.contains("delivered")).unwrap_or("");
    assert!(
        delivered.contains("channel=archive") && delivered.contains("Les puces de l’IA"),
        "the log names the story and the channel: {log}"
    );
    env.run_once();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let second = &requests[1];
    assert!(
        second.headers.get("if-none-match").is_some(),
        "ETag sent back"
    );
    assert!(
        second.headers.get("if-modified-since").is_some(),
        "Last-Modified sent back"
    );
    assert_eq!(env.mails("mail").len(), 1, "no new message");
    let text = String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned();
    let fetched = text
        .lines()
        .find(|l| l.contains("last fetch"))
        .unwrap_or("");
    assert!(
        fetched.contains(" CET ") || fetched.contains(" CEST "),
        "times in status carry their zone: {text}"
    );
    // A time already past (a daemon stopped for a day) reads "due now",
    // not a date.
    env.advance(86_400);
    let text = String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned();
    assert!(text.contains("next poll due now"), "{text}");
    let status = env.status_json();
    assert_eq!(status["feeds"][0]["last_status"], 304);
    assert_eq!(status["feeds"][0]["items"], 1);
}

#[tokio::test]
async fn one_story_in_two_feeds_is_one_message_naming_both_feeds_and_every_rule() {
    let server = MockServer::start().await;
    let a = rss(
        "A",
        &[(
            "a-1",
            "Droits de douane sur les puces",
            "https://news.example.org/story-1",
            "Pékin répond.",
            &recent(2),
        )],
    );
    let b = rss(
        "B",
        &[(
            "b-9",
            "Pékin et les droits de douane",
            "http://NEWS.example.org/story-1?utm_source=x&amp;xtor=RSS-3208",
            "Les puces visées.",
            &recent(1),
        )],
    );
    serve(&server, "/a.xml", FeedDoc::rss(&a)).await;
    serve(&server, "/b.xml", FeedDoc::rss(&b)).await;
    let env = TestEnv::new();
    let tarifs = "[[rule]]\nname = \"tarifs\"\nall = [\"droits de douane\"]\nany = [\"Pekin\"]\nnotify = [\"archive\"]\n";
    env.write_config(&config(
        &[
            ("Feed A", format!("{}/a.xml", server.uri())),
            ("Feed B", format!("{}/b.xml", server.uri())),
        ],
        tarifs,
    ));

    env.run_once();

    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert!(m.subject.starts_with("[veille] "), "{}", m.subject);
    assert!(
        m.subject.contains("puces") && m.subject.contains("tarifs"),
        "{}",
        m.subject
    );
    assert!(
        m.text.contains("Feed A") && m.text.contains("Feed B"),
        "{}",
        m.text
    );
    assert_eq!(m.content_type, "multipart/alternative");
    assert!(m.html.contains("Feed A") && m.html.contains("Feed B"));
    // A second run adds nothing.
    env.run_once();
    assert_eq!(env.mails("mail").len(), 1);
}

#[tokio::test]
async fn a_kill_after_storing_and_before_delivering_loses_and_repeats_nothing() {
    let server = MockServer::start().await;
    let items: Vec<(String, String, String)> = (0..5)
        .map(|i| {
            (
                format!("g{i}"),
                format!("Puces numéro {i}"),
                format!("https://example.org/{i}"),
            )
        })
        .collect();
    let date = recent(1);
    let rows: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(g, t, l)| (g.as_str(), t.as_str(), l.as_str(), "x", date.as_str()))
        .collect();
    serve(&server, "/fast.xml", FeedDoc::rss(&rss("Fast", &rows))).await;
    let env = TestEnv::new();
    // The daemon records the poll at once; `hold` keeps delivery back.
    let mut config = config(&[("Fast", format!("{}/fast.xml", server.uri()))], "");
    config.push_str("hold = \"1h\"\n");
    env.write_config(&config);

    let mut child = Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));
    let started = Instant::now();
    loop {
        let stored = env.try_number("SELECT COUNT(*) FROM alerts").unwrap_or(0);
        if stored == 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "alerts never stored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(env.mails("mail").is_empty(), "killed before delivery");
    let pending = env.number("SELECT COUNT(*) FROM alerts WHERE state = 'pending'");
    assert_eq!(pending, 5);

    server.reset().await;
    serve(&server, "/fast.xml", FeedDoc::rss(&rss("Fast", &rows))).await;
    // `run --once` ignores hold.
    env.run_once();
    env.run_once();
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 5);
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each alert exactly once");
}

#[tokio::test]
async fn the_first_poll_alerts_only_recent_items_and_later_polls_alert_new_ones() {
    let server = MockServer::start().await;
    let old = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc2822();
    let now = recent(1);
    let mut items = vec![
        (
            "old",
            "Les puces d'hier",
            "https://example.org/old",
            "x",
            old.as_str(),
        ),
        (
            "new",
            "Les puces du jour",
            "https://example.org/new",
            "x",
            now.as_str(),
        ),
    ];
    serve(&server, "/t.xml", FeedDoc::rss(&rss("T", &items))).await;
    let env = TestEnv::new();
    env.write_config(&config(&[("T", format!("{}/t.xml", server.uri()))], ""));
    env.run_once();
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains("Les puces du jour"));

    // Later: a new item three days old still alerts (within max_age), one
    // from last month does not.
    let month = (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc2822();
    items.extend([
        (
            "late",
            "Des puces retrouvées",
            "https://example.org/late",
            "x",
            old.as_str(),
        ),
        (
            "archive",
            "Puces d'archive",
            "https://example.org/archive",
            "x",
            month.as_str(),
        ),
    ]);
    let second = rss("T", &items);
    server.reset().await;
    serve(&server, "/t.xml", FeedDoc::rss(&second)).await;
    env.run_once();
    let subjects: Vec<String> = env.mails("mail").into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.iter().any(|s| s.contains("Des puces retrouvées")));
}

#[tokio::test]
async fn the_shipped_config_runs_offline_and_fills_the_maildir() {
    let env = TestEnv::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("config.toml"), env.path("config.toml")).unwrap();
    std::fs::create_dir_all(env.path("samples")).unwrap();
    std::fs::copy(
        root.join("samples/actualites.xml"),
        env.path("samples/actualites.xml"),
    )
    .unwrap();
    // The real news feeds cannot be reached here; that must not matter.
    succeed(
        env.command(&["run", "--once"])
            .env("HTTPS_PROXY", "http://127.0.0.1:9"),
    );
    let subjects: Vec<String> = env.mails("mail").into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("tarifs") && s.contains("Pékin"))
    );
    assert!(
        !subjects
            .iter()
            .any(|s| s.contains("jeu vidéo") || s.contains("via ferrata"))
    );
}

/// Feeds `Slow 0`… on `server`, each one story (published at `date`)
/// matching `puces`, answered after `delay`; their names and URLs.
async fn slow_feeds(
    server: &MockServer,
    n: usize,
    date: &str,
    delay: Duration,
) -> Vec<(String, String)> {
    server.reset().await;
    let mut feeds = Vec::new();
    for i in 0..n {
        let doc = rss(
            &format!("Slow {i}"),
            &[(
                &format!("s{i}"),
                &format!("Les puces lentes {i}"),
                &format!("https://example.org/s{i}"),
                "x",
                date,
            )],
        );
        let mut slow = FeedDoc::rss(&doc);
        slow.delay = delay;
        serve(server, format!("/slow{i}.xml"), slow).await;
        feeds.push((format!("Slow {i}"), format!("{}/slow{i}.xml", server.uri())));
    }
    feeds
}

/// Waits until `server` was asked for two feeds (`per_host` = 2).
async fn two_in_flight(server: &MockServer) {
    let started = Instant::now();
    while server.received_requests().await.unwrap().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn named(feeds: &[(String, String)]) -> Vec<(&str, String)> {
    feeds.iter().map(|(n, u)| (n.as_str(), u.clone())).collect()
}

#[tokio::test]
async fn sigterm_during_a_poll_of_many_slow_feeds_exits_0_and_the_next_start_loses_nothing() {
    let server = MockServer::start().await;
    let date = recent(1);
    let feeds = slow_feeds(&server, 6, &date, Duration::from_secs(25)).await;
    let env = TestEnv::new();
    env.write_config(&config(&named(&feeds), ""));
    let mut child = Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));
    // Wait until the first two (per_host = 2) are in flight, four queued.
    two_in_flight(&server).await;
    let sent = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "took {:?}",
        sent.elapsed()
    );

    // The next start, with the feeds answering at once: every story once.
    slow_feeds(&server, 6, &date, Duration::ZERO).await;
    env.run_once();
    env.run_once();
    assert_eq!(env.mails("mail").len(), feeds.len());
}

/// A `run --once` stopped by Ctrl-C gives back the feeds it was polling:
/// the next run, at once, polls them all (rather than waiting for its
/// claims to run out) and nothing is lost.
#[tokio::test]
async fn an_interrupted_run_once_frees_its_feeds_for_the_next_at_once() {
    let server = MockServer::start().await;
    let date = recent(1);
    let feeds = slow_feeds(&server, 4, &date, Duration::from_secs(20)).await;
    let env = TestEnv::new();
    env.write_config(&config(&named(&feeds), ""));
    let child = env
        .command(&["run", "--once"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    two_in_flight(&server).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    slow_feeds(&server, 4, &date, Duration::ZERO).await;
    env.run_once();
    assert_eq!(env.mails("mail").len(), feeds.len(), "every feed polled");
}

//! SPEC §10 through the real binary on a real PostgreSQL (`pg_server`):
//! the same pipeline as on SQLite, and several processes on one database
//! sending each story once.

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, recent, rss, serve};
use crate::pg_server;

/// Feeds named and at these URLs, rule `puces` to the Maildir `mail`, on
/// the database at `url`.
fn config(url: &str, feeds: &[(&str, String)]) -> String {
    let mut c = format!("[daemon]\ndatabase = \"{url}\"\ntimezone = \"Europe/Paris\"\n\n");
    for (name, feed) in feeds {
        c.push_str(&format!(
            "[[feed]]\nname = \"{name}\"\nurl = \"{feed}\"\n\n"
        ));
    }
    c.push_str(
        "[[rule]]\nname = \"puces\"\nany = [\"puces\", \"IA\"]\nnotify = [\"archive\"]\n\n\
         [channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n",
    );
    c
}

/// A feed of `n` matching stories, each with its own link.
fn stories(prefix: &str, n: usize) -> String {
    let items: Vec<(String, String, String, String, String)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}-{i}"),
                format!("Les puces, épisode {prefix} {i}"),
                format!("https://news.example.org/{prefix}/{i}"),
                format!("Pékin et l’IA, volet {i}."),
                recent(1 + i as i64 % 20),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect();
    rss(prefix, &refs)
}

#[tokio::test]
async fn the_pipeline_runs_on_postgresql_and_a_second_run_sends_nothing_new() {
    let server = MockServer::start().await;
    let a = rss(
        "A",
        &[
            (
                "a-1",
                "Les puces de Pékin",
                "https://news.example.org/s1",
                "IA.",
                &recent(2),
            ),
            (
                "a-2",
                "La météo",
                "https://news.example.org/s2",
                "Soleil.",
                &recent(3),
            ),
        ],
    );
    // The same story, its link written otherwise: one message for both.
    let b = rss(
        "B",
        &[(
            "b-1",
            "Pékin et les puces",
            "http://NEWS.example.org/s1?utm_source=x",
            "IA.",
            &recent(1),
        )],
    );
    serve(&server, "/a.xml", FeedDoc::rss(&a)).await;
    serve(&server, "/b.xml", FeedDoc::rss(&b)).await;
    let db = pg_server::database();
    // The test server trusts loopback: the password is there to be hidden.
    let url = db.replacen("postgresql://veille@", "postgresql://veille:s3cret@", 1);
    let env = TestEnv::new();
    env.write_config_as_is(&config(
        &url,
        &[
            ("Feed A", format!("{}/a.xml", server.uri())),
            ("Feed B", format!("{}/b.xml", server.uri())),
        ],
    ));

    let log = env.run_once();
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1, "{log}");
    assert!(
        mails[0].text.contains("Feed A") && mails[0].text.contains("Feed B"),
        "{}",
        mails[0].text
    );
    let status = env.status_json();
    assert_eq!(status["channels"][0]["sent"].as_i64(), Some(1), "{status}");
    let items: i64 = status["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["items"].as_i64().unwrap())
        .sum();
    assert_eq!(items, 3, "{status}");
    assert!(!env.path("veille.db").exists(), "no SQLite file made");

    env.run_once();
    assert_eq!(env.mails("mail").len(), 1, "nothing sent twice");

    let check = String::from_utf8_lossy(&env.ok(&["check"]).stdout).into_owned();
    assert!(
        check.contains("postgresql://veille:***@127.0.0.1") && !check.contains("s3cret"),
        "{check}"
    );
    for text in [
        log,
        String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned(),
    ] {
        assert!(!text.contains("s3cret"), "{text}");
    }
}

/// Three `run --once` at the same moment on one new database: one
/// migrates while the others wait, the stories are placed one write after
/// the other, and claims skip what another process is taking: each story
/// arrives once.
#[tokio::test]
async fn three_processes_on_one_postgresql_database_send_each_story_once() {
    three_processes_send_each_story_once(&pg_server::database()).await;
}

/// The same on a server whose transactions are SERIALIZABLE unless told
/// otherwise: veille's are READ COMMITTED all the same (a migration that
/// waited for another's saw the schema as it was before, and ran again).
#[tokio::test]
async fn processes_share_a_server_whose_transactions_are_serializable_by_default() {
    let url = pg_server::database();
    pg_rows(
        &url,
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L',
             current_database(), 'serializable'); END $$",
    );
    let level = pg_rows(&url, "SHOW default_transaction_isolation");
    assert_eq!(level, [[Some("serializable".to_owned())]]);
    three_processes_send_each_story_once(&url).await;
}

async fn three_processes_send_each_story_once(url: &str) {
    let server = MockServer::start().await;
    for feed in ["x", "y", "z"] {
        serve(
            &server,
            &format!("/{feed}.xml"),
            FeedDoc::rss(&stories(feed, 15)),
        )
        .await;
    }
    let env = TestEnv::new();
    env.write_config_as_is(&config(
        url,
        &[
            ("X", format!("{}/x.xml", server.uri())),
            ("Y", format!("{}/y.xml", server.uri())),
            ("Z", format!("{}/z.xml", server.uri())),
        ],
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
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mails = env.mails("mail");
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((mails.len(), ids.len()), (45, 45), "each story once");
    let status = env.status_json();
    assert_eq!(status["channels"][0]["sent"].as_i64(), Some(45), "{status}");
}

/// A URL the config cannot use is refused where it is written.
#[test]
fn a_bad_database_url_is_a_located_config_error() {
    let env = TestEnv::new();
    env.write_config_as_is(&config("postgresql://h/db?sslmode=ssl", &[]));
    let out = env.veille(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml:2:") && err.contains("unknown sslmode"),
        "{err}"
    );
}

/// The rows a query answers on the PostgreSQL database at `url`.
fn pg_rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    crate::harness::pg_rows(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The tables veille keeps, and what tells their rows apart.
const TABLES: &[(&str, &str)] = &[
    (
        "feeds",
        "id, name, url, etag, consecutive_failures, failing_since, health, pages_ok, page_failure",
    ),
    ("stories", "id, link, first_seen"),
    (
        "items",
        "id, feed_id, item_key, story_id, title, summary, published, content_hash",
    ),
    ("story_links", "link, story_id"),
    (
        "alerts",
        "id, story_id, channel, state, attempts, due, digest_id",
    ),
    ("digests", "id, channel, state, stories"),
    ("digest_ticks", "channel, last_tick"),
    ("health_alerts", "id, channel, feed_id, event, since, state"),
    ("pruned_items", "key"),
    ("pruned_links", "key"),
    ("wire_prints", "item_id, story_id, at"),
    ("channel_faults", "channel, attempts"),
    ("item_texts", "item_id, seen, quiet"),
    ("robots", "origin, fetched_at, status, body"),
];

/// Each table's rows on SQLite (`env`'s file) and PostgreSQL (`url`),
/// sorted, as text.
fn both(env: &TestEnv, url: &str, table: &str, columns: &str) -> [Vec<Vec<Option<String>>>; 2] {
    let sql = format!("SELECT {columns} FROM {table}");
    // The test's config names the SQLite file: `rows` reads it.
    let mut sqlite = env.rows(&sql);
    let mut copy = pg_rows(url, &sql);
    sqlite.sort();
    copy.sort();
    [sqlite, copy]
}

/// SPEC §1, §10: `copy-db` moves a single machine's history into
/// PostgreSQL: alerts sent and pending, a digest, keys of pruned items, a
/// health episode. veille run on the copy alerts nothing again and sends
/// what was pending, under the ids it had.
#[tokio::test]
async fn copy_db_moves_everything_and_the_copy_alerts_nothing_again() {
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};

    let feeds = MockServer::start().await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&hook)
        .await;
    let env = TestEnv::new();
    let config = |database: &str| {
        format!(
            "[daemon]\ndatabase = \"{database}\"\nretention = \"1h\"\ntimeout = \"2s\"\n\
             timezone = \"Europe/Paris\"\n\n\
             [[feed]]\nname = \"AFP\"\nurl = \"{f}/afp.xml\"\n\n\
             [[feed]]\nname = \"Cassé\"\nurl = \"{f}/broken.xml\"\n\n\
             [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\", \"hook\", \"matin\"]\n\n\
             [[rule]]\nname = \"meteo\"\nany = [\"météo\"]\nnotify = [\"moi\"]\n\n\
             [health]\nnotify = [\"moi\"]\nfailing_after = \"1h\"\n\n\
             [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n\n\
             [channel.hook]\nkind = \"webhook\"\nurl = \"{h}/h\"\n\n\
             [channel.matin]\nkind = \"maildir\"\npath = \"matin\"\ndigest = \"0 8 * * *\"\n",
            f = feeds.uri(),
            h = hook.uri(),
        )
    };
    let item = |key: &str, title: &str, hours_ago: i64| {
        (
            key.to_owned(),
            title.to_owned(),
            format!("https://afp.example/{key}"),
            // Long enough for a wire-copy fingerprint.
            format!(
                "{title}. Le ministère a présenté mardi {key} un plan de soutien à \
                 l'industrie, avec des aides aux usines de la région, des prêts aux \
                 entreprises sous-traitantes et un calendrier de travaux qui court \
                 jusqu'à la fin de l'année prochaine, selon le communiqué publié \
                 dans la soirée par les services du gouvernement à Paris."
            ),
            env.recent(hours_ago),
        )
    };
    let feed = |items: &[(String, String, String, String, String)]| {
        let refs: Vec<(&str, &str, &str, &str, &str)> = items
            .iter()
            .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
            .collect();
        rss("AFP", &refs)
    };
    serve(&feeds, "/broken.xml", ResponseTemplate::new(500)).await;
    let a1 = item("a1", "Les puces de Pékin", 1);
    let m1 = item("m1", "La météo", 1);
    serve(
        &feeds,
        "/afp.xml",
        FeedDoc::rss(&feed(&[a1.clone(), m1.clone()])),
    )
    .await;
    env.write_config_as_is(&config("veille.db"));
    env.run_once();

    // Two hours on: the weather story is pruned (its keys kept), the feed
    // failing since the start is reported, a second story comes, the
    // digest goes out; the webhook still answers 503.
    env.advance(2 * 3600);
    feeds.reset().await;
    serve(&feeds, "/broken.xml", ResponseTemplate::new(500)).await;
    let a2 = item("a2", "Encore des puces", 1);
    serve(
        &feeds,
        "/afp.xml",
        FeedDoc::rss(&feed(std::slice::from_ref(&a2))),
    )
    .await;
    env.ok(&["run", "--once", "--flush-digests"]);
    let mails = env.mails("mail").len();
    assert_eq!(mails, 4, "a1, m1, a2 and the failing feed");
    assert_eq!(env.mails("matin").len(), 1, "one digest");
    let pending =
        env.number("SELECT COUNT(*) FROM alerts WHERE channel = 'hook' AND state = 'pending'");
    assert_eq!(pending, 2, "the webhook's two alerts wait");
    for table in [
        "pruned_items",
        "pruned_links",
        "digests",
        "health_alerts",
        "wire_prints",
    ] {
        assert!(
            env.number(&format!("SELECT COUNT(*) FROM {table}")) > 0,
            "{table} has rows to copy"
        );
    }

    let url = pg_server::database();
    let out = env.ok(&["copy-db", "--to", &url]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        report.contains("copied ") && report.contains("alerts"),
        "{report}"
    );
    for (table, columns) in TABLES {
        let [sqlite, copy] = both(&env, &url, table, columns);
        assert_eq!(sqlite, copy, "{table} copied row for row");
    }
    let all: i64 = env.number(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    );
    // And the two of the running daemons, which stay empty.
    assert_eq!(all as usize, TABLES.len() + 2, "every table is compared");
    for table in ["processes", "leader"] {
        assert_eq!(pg_rows(&url, &format!("SELECT * FROM {table}")).len(), 0);
    }

    // A database that is not empty is refused, and left as it was.
    let again = env.veille(&["copy-db", "--to", &url]);
    assert_eq!(again.status.code(), Some(1));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("not empty"), "{said}");
    assert_eq!(
        pg_rows(&url, "SELECT COUNT(*) FROM items")[0][0],
        Some(env.number("SELECT COUNT(*) FROM items").to_string())
    );

    // veille on the copy: the feed sends everything again, pruned story
    // included; nothing alerts again, and the webhook now gets its two
    // alerts under the ids they had.
    let waiting: Vec<String> = pg_rows(
        &url,
        "SELECT id FROM alerts WHERE channel = 'hook' AND state = 'pending' ORDER BY id",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    hook.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    feeds.reset().await;
    serve(&feeds, "/broken.xml", ResponseTemplate::new(500)).await;
    let a3 = item("a3", "Toujours des puces", 1);
    serve(&feeds, "/afp.xml", FeedDoc::rss(&feed(&[a1, m1, a2, a3]))).await;
    env.advance(3 * 3600);
    env.write_config_as_is(&config(&url));
    let log = env.run_once();
    let mut ids: Vec<String> = hook
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let a3_id = pg_rows(
        &url,
        "SELECT a.id FROM alerts a JOIN items i ON i.id = a.item_id \
         WHERE a.channel = 'hook' AND i.item_key LIKE '%a3%'",
    );
    let mut expected = waiting.clone();
    expected.push(a3_id[0][0].clone().unwrap());
    expected.sort();
    assert_eq!(
        ids, expected,
        "the two waiting, under their ids, and the new one: {log}"
    );
    assert_eq!(env.mails("mail").len(), mails + 1, "only a3 is new: {log}");
    assert_eq!(env.mails("matin").len(), 1);
    assert!(
        env.path("veille.db").exists(),
        "the source is left in place"
    );
}

/// SPEC §10, faults: the daemon's connections are cut (the server's
/// administrator ends them, as a restart does); the daemon keeps running,
/// connects again by itself and records and sends what comes next.
#[tokio::test]
async fn a_daemon_whose_connections_are_cut_connects_again_by_itself() {
    use std::time::{Duration, Instant};

    let server = MockServer::start().await;
    for name in ["a", "b"] {
        let doc = rss(
            name,
            &[(
                &format!("{name}-1"),
                &format!("Les puces {name}"),
                &format!("https://news.example.org/{name}"),
                "IA.",
                &recent(1),
            )],
        );
        serve(&server, &format!("/{name}.xml"), FeedDoc::rss(&doc)).await;
    }
    let url = pg_server::database();
    let env = TestEnv::new();
    let a = ("Feed A", format!("{}/a.xml", server.uri()));
    let b = ("Feed B", format!("{}/b.xml", server.uri()));
    env.write_config_as_is(&config(&url, std::slice::from_ref(&a)));
    let mut daemon =
        crate::harness::Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::piped()));
    let stderr = daemon.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut { stderr }, &mut log).unwrap();
        log
    });
    let wait_for_mails = |n: usize| {
        let end = Instant::now() + Duration::from_secs(20);
        while env.mails("mail").len() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        env.mails("mail").len() >= n
    };
    if !wait_for_mails(1) {
        let _ = daemon.0.kill();
        let _ = daemon.0.wait();
        panic!("no message: {}", log.join().unwrap());
    }

    let ended = pg_rows(
        &url,
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'veille'",
    );
    assert_ne!(
        ended[0][0].as_deref(),
        Some("0"),
        "the daemon's connections were cut"
    );

    // A feed added: polled, recorded and sent over new connections.
    env.write_config_as_is(&config(&url, &[a, b]));
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGHUP) };
    let both = wait_for_mails(2);
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    let status = daemon.0.wait().unwrap();
    let log = log.join().unwrap();
    assert!(both, "fewer than 2 messages: {log}");
    assert!(status.success(), "{log}");
    assert!(log.contains("connected to the database again"), "{log}");
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 2, "{log}");
    // Both sent within one second are in no set order.
    for feed in ["Feed A", "Feed B"] {
        assert_eq!(
            mails.iter().filter(|m| m.text.contains(feed)).count(),
            1,
            "{feed}: {log}"
        );
    }
}

//! SPEC §4 "Retention": items first seen longer ago than `retention` are
//! pruned at start and then as veille runs; their keys stay, so a feed
//! re-sending them alerts nothing; `veille status` counts both. Real feed
//! server, real SQLite file, real Maildir, the real binary. The passing of
//! minutes is made by moving the commands' clock on (`TestEnv::advance`).

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, recent, rss, serve};

fn config(feed: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"veille.db\"\nretention = \"1m\"\ntimeout = \"2s\"\n\n\
         [[feed]]\nname = \"AFP\"\nurl = \"{feed}\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
         [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n"
    )
}

/// Lets `secs` pass: what is stored is that much older.
fn age(env: &TestEnv, secs: i64) {
    env.advance(secs);
}

#[tokio::test]
async fn pruned_items_are_gone_and_a_feed_resending_them_alerts_nothing() {
    let server = MockServer::start().await;
    let env = TestEnv::new();
    let url = format!("{}/afp.xml", server.uri());
    env.write_config(&config(&url));
    let first = rss(
        "AFP",
        &[
            (
                "a1",
                "Les puces",
                "https://afp.example/a1",
                "Les puces.",
                &recent(1),
            ),
            (
                "a2",
                "Des puces",
                "https://afp.example/a2",
                "Des puces.",
                &recent(2),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&first)).await;
    env.run_once();
    assert_eq!(env.mails("mail").len(), 2);
    let status = env.status_json();
    assert_eq!(status["retained"]["items"], 2);
    assert_eq!(status["retained"]["pruned_keys"], 0);

    // Two minutes later: both are pruned at start. The feed sends them
    // again, a1 changed, a2 under a new guid (same link), and one new item.
    age(&env, 120);
    server.reset().await;
    let again = rss(
        "AFP",
        &[
            (
                "a1",
                "Les puces, mise à jour",
                "https://afp.example/a1",
                "Les puces encore.",
                &recent(1),
            ),
            (
                "a2-v2",
                "Des puces",
                "https://afp.example/a2?xtor=RSS-1",
                "Des puces.",
                &recent(2),
            ),
            (
                "a3",
                "Trois puces",
                "https://afp.example/a3",
                "Trois puces.",
                &recent(0),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&again)).await;
    let log = env.run_once();
    assert!(log.contains("pruned"), "{log}");
    let subjects: Vec<String> = env.mails("mail").into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains("Trois puces")),
        "{subjects:?}"
    );
    assert_eq!(env.number("SELECT COUNT(*) FROM items"), 1);
    assert_eq!(
        env.number("SELECT COUNT(*) FROM alerts"),
        1,
        "the sent alerts went with their items"
    );
    let status = env.status_json();
    assert_eq!(status["retained"]["items"], 1);
    assert_eq!(status["retained"]["pruned_keys"], 2);
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(
        text.contains("Database: 1 items kept, 2 keys kept of pruned items (retention 1m)"),
        "{text}"
    );

    // And again, once a3 is old too: nothing alerts, a3 goes.
    age(&env, 120);
    env.run_once();
    assert_eq!(env.mails("mail").len(), 3);
    assert_eq!(env.number("SELECT COUNT(*) FROM items"), 0);
    assert_eq!(env.status_json()["retained"]["pruned_keys"], 3);
}

/// A server for `feeds` feeds, `/f{n}.xml`, each gaining an item every
/// `every` and carrying its newest `keep`; one in fifty items says
/// "puces". Answers with `Connection: close`.
fn growing_feeds(every: std::time::Duration, keep: u64) -> String {
    let start = std::time::Instant::now();
    let (base, _) = crate::harness::feed_server(std::time::Duration::ZERO, move |path| {
        let feed = path.trim_start_matches("/f").trim_end_matches(".xml");
        let newest = (start.elapsed().as_millis() / every.as_millis()) as u64;
        let mut body = format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>F{feed}</title><link>https://s.example/</link><description>d</description>"
        );
        for k in newest.saturating_sub(keep)..=newest {
            let word = if (k + feed.len() as u64).is_multiple_of(50) {
                "puces"
            } else {
                "nouvelles"
            };
            body.push_str(&format!(
                "<item><guid>f{feed}-{k}</guid><title>Dépêche {k} du flux {feed} : des {word}</title>\
                 <link>https://s.example/f{feed}/{k}?xtor=RSS-1</link>\
                 <description>{}, avec des {word}.</description></item>",
                own_text(feed, k)
            ));
        }
        body.push_str("</channel></rss>");
        body
    });
    base
}

/// Twelve words of its own for item `k` of `feed`: every item is its own
/// story. (Items that said the same in every feed would be wire copies of
/// one another, and a story is kept while any of its copies is recent: with
/// 200 feeds polled over a minute, each story would live a minute longer.)
fn own_text(feed: &str, k: u64) -> String {
    const WORDS: [&str; 24] = [
        "le",
        "conseil",
        "municipal",
        "a",
        "voté",
        "hier",
        "soir",
        "un",
        "budget",
        "pour",
        "les",
        "écoles",
        "du",
        "quartier",
        "après",
        "trois",
        "heures",
        "de",
        "débat",
        "sur",
        "la",
        "rénovation",
        "des",
        "gymnases",
    ];
    let mut state = feed.parse::<u64>().unwrap_or(0) * 1_000_003 + k * 7_919 + 1;
    (0..12)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            WORDS[(state >> 33) as usize % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn file_kib(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() / 1024)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The soak: a daemon polling 200 feeds that gain an item every two
/// seconds, with a one-minute retention, for three and a half minutes.
/// Once retention has passed, what is pruned makes room for what arrives:
/// no table but the pruned keys outgrows the items kept, and the database
/// file, its write-ahead log and the process's memory level off.
#[test]
fn soak_with_a_one_minute_retention_the_database_and_memory_level_off() {
    use std::time::{Duration, Instant};
    let _heavy = crate::harness::heavy();
    const FEEDS: usize = 200;
    let base = growing_feeds(Duration::from_secs(2), 40);
    let env = TestEnv::new();
    let mut config = String::from(
        "[daemon]\ndatabase = \"veille.db\"\nretention = \"1m\"\ninterval = \"1m\"\n\
         per_host = 16\ntimeout = \"5s\"\n\n",
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
    let mut daemon = crate::harness::Running::spawn(
        env.command(&["run"])
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null()),
    );
    let pid = daemon.id();
    let db = env.path("veille.db");
    let wal = env.path("veille.db-wal");
    let started = Instant::now();
    let run = Duration::from_secs(210);
    let mut samples: Vec<(u64, u64, u64, u64)> = Vec::new();
    while started.elapsed() < run {
        std::thread::sleep(Duration::from_secs(5));
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon stopped");
        samples.push((
            started.elapsed().as_secs(),
            file_kib(&db),
            file_kib(&wal),
            rss_kib(pid),
        ));
    }
    let _ = daemon.kill();
    let items = env.number("SELECT COUNT(*) FROM items");
    let pruned = env.number("SELECT COUNT(*) FROM pruned_items");
    let report: Vec<String> = samples
        .iter()
        .map(|(t, db, wal, rss)| format!("{t}s db {db} KiB wal {wal} KiB rss {rss} KiB"))
        .collect();
    let stories = env.number("SELECT COUNT(*) FROM stories");
    eprintln!(
        "{}\nitems {items} in {stories} stories, pruned keys {pruned}",
        report.join("\n")
    );
    assert!(
        pruned > 5_000 && items < pruned,
        "pruning ran: {items} items, {pruned} keys"
    );
    // What is kept of an item goes when it does: no table grows with what
    // was pruned but the keys.
    for table in ["stories", "story_links", "wire_prints", "alerts"] {
        let rows = env.number(&format!("SELECT COUNT(*) FROM {table}"));
        assert!(rows <= items, "{rows} rows in {table} for {items} items");
    }
    let third = run.as_secs() / 3;
    let max_in = |from: u64, to: u64, pick: fn(&(u64, u64, u64, u64)) -> u64| {
        samples
            .iter()
            .filter(|s| s.0 >= from && s.0 < to)
            .map(pick)
            .max()
            .unwrap()
    };
    let (db_mid, db_last) = (
        max_in(third, 2 * third, |s| s.1),
        max_in(2 * third, 999, |s| s.1),
    );
    let (rss_mid, rss_last) = (
        max_in(third, 2 * third, |s| s.3),
        max_in(2 * third, 999, |s| s.3),
    );
    // The file follows the items kept, which swing by a round of polls
    // (one to two minutes' worth, as pruning runs every ten seconds): half
    // again is that swing, not growth.
    assert!(
        db_last <= db_mid + db_mid / 2,
        "the database grew in the last third: {db_mid} → {db_last} KiB\n{}",
        report.join("\n")
    );
    // The log of recent writes: SQLite checkpoints it every 4 MiB, and it
    // is cut back to 8 MiB when reset; more means checkpoints stalled.
    let wal_most = max_in(0, 999, |s| s.2);
    assert!(
        wal_most <= 16 << 10,
        "the write-ahead log reached {wal_most} KiB\n{}",
        report.join("\n")
    );
    assert!(
        rss_last <= rss_mid + rss_mid / 4,
        "memory grew in the last third: {rss_mid} → {rss_last} KiB\n{}",
        report.join("\n")
    );
}

//! SPEC §10, faults: three daemons share one database while one of them
//! is killed with SIGKILL every few seconds and started again, one is
//! frozen (SIGSTOP) past its claims and thawed, and, on PostgreSQL, every
//! connection of theirs is cut. Real processes, a real mail server and a
//! feed server on 127.0.0.1 whose feeds gain items as the test runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Fetches, Mail, Running, TestEnv, feed_server, on_postgres, pg_rows, rss};
use crate::smtp_server::SmtpServer;

/// A new item in every feed this often; one in four matches `puces`.
const EVERY: Duration = Duration::from_secs(4);

/// Feeds `/f0.xml`… on 127.0.0.1 holding `items` items each; item `k` of
/// feed `n` is published at the test's start plus `k × EVERY`.
fn growing_feeds(items: Arc<AtomicUsize>) -> (String, Arc<Mutex<Fetches>>) {
    let start = chrono::Utc::now();
    feed_server(Duration::from_millis(30), move |path| {
        let n = path.trim_start_matches("/f").trim_end_matches(".xml");
        let rows: Vec<(String, String, String, String)> = (0..items.load(Ordering::Relaxed))
            .map(|k| {
                let word = if k % 4 == 0 { "puces" } else { "nouvelles" };
                let at = start + chrono::Duration::seconds((k as u64 * EVERY.as_secs()) as i64);
                (
                    format!("f{n}-{k}"),
                    format!("Dépêche {k} du flux {n} : des {word}"),
                    format!("https://news.example.org/f{n}/{k}"),
                    at.to_rfc2822(),
                )
            })
            .collect();
        let items: Vec<(&str, &str, &str, &str, &str)> = rows
            .iter()
            .map(|(g, t, l, d)| (g.as_str(), t.as_str(), l.as_str(), "Texte.", d.as_str()))
            .collect();
        rss(&format!("F{n}"), &items)
    })
}

fn spawn(env: &TestEnv) -> Running {
    Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()))
}

fn signal(daemon: &Running, signal: libc::c_int) {
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(daemon.id() as libc::pid_t, signal) };
}

/// Every matching story arrives; a story arrives twice only as a resend
/// under its one id, no more often than kills landed; no feed is fetched
/// by two processes at once, the host never sees more than `per_host`
/// fetches at once, and every feed is polled after the last fault.
#[test]
fn three_daemons_under_faults_lose_nothing_and_send_each_story_once() {
    const FEEDS: usize = 40;
    const ADDING: Duration = Duration::from_secs(60);
    let items = Arc::new(AtomicUsize::new(1));
    let (base, fetches) = growing_feeds(Arc::clone(&items));
    let smtp = SmtpServer::start();
    let env = TestEnv::new();
    let mut config = format!(
        "[daemon]\ndatabase = \"veille.db\"\ninterval = \"1m\"\ntimeout = \"5s\"\nper_host = 4\nconcurrency = 8\n\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"v@localhost\"\n\n",
        smtp.port
    );
    for n in 0..FEEDS {
        config.push_str(&format!(
            "[[feed]]\nname = \"F{n}\"\nurl = \"{base}/f{n}.xml\"\n\n"
        ));
    }
    config.push_str(
        "[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
         [channel.moi]\nkind = \"email\"\nto = [\"moi@localhost\"]\n",
    );
    env.write_config(&config);
    env.ok(&["check"]);
    let mut daemons: Vec<Running> = (0..3).map(|_| spawn(&env)).collect();

    let started = Instant::now();
    let mut kills = 0;
    let mut last_fault = Instant::now();
    let mut frozen: Option<(usize, Instant)> = None;
    let mut cut = false;
    let mut next_kill = Duration::from_secs(7);
    while started.elapsed() < ADDING {
        std::thread::sleep(Duration::from_millis(200));
        let elapsed = started.elapsed();
        items.store(
            1 + (elapsed.as_secs() / EVERY.as_secs()) as usize,
            Ordering::Relaxed,
        );
        if elapsed >= next_kill {
            // Each in turn, but not the frozen one: it is thawed as it is.
            let victim = (kills + 1..kills + 4)
                .map(|i| i % 3)
                .find(|i| frozen.is_none_or(|(f, _)| f != *i))
                .expect("one of three is not frozen");
            signal(&daemons[victim], libc::SIGKILL);
            let _ = daemons[victim].0.wait();
            daemons[victim] = spawn(&env);
            kills += 1;
            last_fault = Instant::now();
            next_kill += Duration::from_secs(9);
        }
        if frozen.is_none()
            && elapsed >= Duration::from_secs(15)
            && elapsed < Duration::from_secs(16)
        {
            // Past its claims (2 × timeout + 10 s) and its lead (30 s).
            signal(&daemons[0], libc::SIGSTOP);
            frozen = Some((0, Instant::now()));
        }
        if let Some((i, since)) = frozen
            && since.elapsed() >= Duration::from_secs(32)
        {
            signal(&daemons[i], libc::SIGCONT);
            frozen = None;
            last_fault = Instant::now();
        }
        if !cut && elapsed >= Duration::from_secs(30) {
            cut = true;
            if let Some(url) = env.postgres_url() {
                let ended = pg_rows(
                    url,
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = current_database() AND application_name = 'veille'",
                )
                .unwrap();
                assert_ne!(ended[0][0].as_deref(), Some("0"), "connections cut");
                last_fault = Instant::now();
            }
        }
    }
    if let Some((i, _)) = frozen {
        signal(&daemons[i], libc::SIGCONT);
        last_fault = Instant::now();
    }
    let items = items.load(Ordering::Relaxed);
    let expected: BTreeSet<String> = (0..FEEDS)
        .flat_map(|n| {
            (0..items)
                .filter(|k| k % 4 == 0)
                .map(move |k| format!("Dépêche {k} du flux {n} : des puces"))
        })
        .collect();
    let arrived = |smtp: &SmtpServer| -> Vec<Mail> {
        smtp.received()
            .iter()
            .map(|r| Mail::parse(&r.data))
            .collect()
    };
    // Each feed polled again within an interval (a minute, give or take
    // its jitter) plus the claims of a killed process running out (20 s),
    // and what it brings sent.
    let waited = Instant::now();
    loop {
        let got: BTreeSet<String> = arrived(&smtp).iter().map(|m| m.subject.clone()).collect();
        let missing = expected
            .iter()
            .filter(|t| !got.iter().any(|g| g.contains(*t)))
            .count();
        let settled = last_fault.elapsed() > Duration::from_secs(90);
        if (missing == 0 && settled) || waited.elapsed() > Duration::from_secs(150) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    drop(daemons);

    let mails = arrived(&smtp);
    let mut by_story: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &mails {
        let title = expected
            .iter()
            .find(|t| m.subject.contains(t.as_str()))
            .map_or(m.subject.as_str(), String::as_str);
        by_story.entry(title).or_default().push(&m.message_id);
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|t| !by_story.contains_key(t.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} never arrived: {missing:?}",
        missing.len(),
        expected.len()
    );
    let mut resends = 0;
    for (story, ids) in &by_story {
        let distinct: BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{story} sent twice under two ids: {ids:?}"
        );
        resends += ids.len() - 1;
    }
    assert!(resends <= kills, "{resends} resends for {kills} kills");
    let f = fetches.lock().unwrap();
    assert!(
        f.overlapping.is_empty(),
        "fetched twice at once: {:?}",
        f.overlapping
    );
    assert!(f.most <= 4, "{} fetches at once from one host", f.most);
    let stale: Vec<&String> = f
        .last
        .iter()
        .filter(|(_, at)| **at < last_fault)
        .map(|(path, _)| path)
        .collect();
    assert!(
        stale.is_empty(),
        "not polled since the last fault: {stale:?}"
    );
    assert!(kills >= 5 && (!on_postgres() || cut), "{kills} kills");
}

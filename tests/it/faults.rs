//! SPEC §10, faults: three daemons share one database while one of them
//! is killed with SIGKILL every few seconds and started again, one is
//! frozen (SIGSTOP) past its claims and thawed, and, on PostgreSQL, the
//! server is stopped for a while and started again. Real processes, a real
//! mail server, a webhook receiver and a feed server on 127.0.0.1 whose
//! feeds gain items as the test runs.
//!
//! `VEILLE_FAULTS_SECONDS` sets the length of the faulty stretch (two
//! minutes; `benches/faults.sh` runs ten), `VEILLE_FAULTS_FEEDS` the
//! number of feeds (200).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{
    Fetches, Mail, Running, TestEnv, feed_server, on_postgres, rss, slow_receiver,
};
use crate::pg_server;
use crate::smtp_server::SmtpServer;

/// A new item in every feed this often; one in four matches `puces`.
const EVERY: Duration = Duration::from_secs(4);

/// How soon after the last fault every feed is polled again: the interval
/// (1 min) and its jitter (10 %), plus 10 s for the pass that takes it
/// (a feed whose claim a killed process held is free after 20 s, sooner).
const REPOLLED_WITHIN: Duration = Duration::from_secs(76);

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

/// The titles of matching items `text` holds, in order (a set lookup
/// rather than a search for each expected title: a ten-minute run expects
/// thousands).
fn titles(text: &str) -> impl Iterator<Item = &str> {
    static TITLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"Dépêche \d+ du flux \d+ : des puces").unwrap()
    });
    TITLE.find_iter(text).map(|m| m.as_str())
}

/// A daemon, its log in `daemon-N.log` (`N` counts the starts).
fn spawn(env: &TestEnv, starts: &mut usize) -> Running {
    *starts += 1;
    let log = std::fs::File::create(env.path(&format!("daemon-{starts}.log"))).unwrap();
    Running::spawn(env.command(&["run"]).stderr(log))
}

/// The lines of every daemon's log that contain `what`, by log.
fn logged(env: &TestEnv, starts: usize, what: &str) -> Vec<usize> {
    (1..=starts)
        .map(|n| {
            std::fs::read_to_string(env.path(&format!("daemon-{n}.log")))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(what))
                .count()
        })
        .collect()
}

fn signal(daemon: &Running, signal: libc::c_int) {
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(daemon.id() as libc::pid_t, signal) };
}

/// Every matching story arrives by mail and by webhook; a story arrives
/// twice only as a resend under its one id, no more often than kills
/// landed; each digest tick is made once and sent; no feed is fetched by
/// two processes at once, the host never sees more than `per_host` fetches
/// at once, and every feed is polled after the last fault. A database
/// that goes away is told in each log once, not at every tick.
#[test]
fn three_daemons_under_faults_lose_nothing_and_send_each_story_once() {
    let _heavy = crate::harness::heavy();
    let setting = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let feeds = setting("VEILLE_FAULTS_FEEDS", 200) as usize;
    let adding = Duration::from_secs(setting("VEILLE_FAULTS_SECONDS", 120));
    let items = Arc::new(AtomicUsize::new(1));
    let (base, fetches) = growing_feeds(Arc::clone(&items));
    let smtp = SmtpServer::start();
    let (hook, posted) = slow_receiver(Duration::from_millis(20));
    let env = TestEnv::new();
    // On PostgreSQL, a server of the test's own, to stop and start.
    let server = on_postgres().then(pg_server::Private::start);
    if let Some(server) = &server {
        env.use_postgres(server.database());
    }
    let mut config = format!(
        "[daemon]\ndatabase = \"veille.db\"\ninterval = \"1m\"\ntimeout = \"5s\"\nper_host = 4\nconcurrency = 8\n\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"v@localhost\"\n\n",
        smtp.port
    );
    for n in 0..feeds {
        config.push_str(&format!(
            "[[feed]]\nname = \"F{n}\"\nurl = \"{base}/f{n}.xml\"\n\n"
        ));
    }
    config.push_str(&format!(
        "[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\", \"hook\", \"matin\"]\n\n\
         [channel.moi]\nkind = \"email\"\nto = [\"moi@localhost\"]\n\n\
         [channel.hook]\nkind = \"webhook\"\nurl = \"{hook}\"\n\n\
         [channel.matin]\nkind = \"email\"\nto = [\"matin@localhost\"]\ndigest = \"* * * * *\"\n",
    ));
    env.write_config(&config);
    env.ok(&["check"]);
    let mut starts = 0;
    let mut daemons: Vec<Running> = (0..3).map(|_| spawn(&env, &mut starts)).collect();

    let started = Instant::now();
    let mut kills = 0;
    let mut last_fault = Instant::now();
    let mut frozen: Option<(usize, Instant)> = None;
    // PostgreSQL stopped since; a stop at 30 s, for 12 s.
    let mut down: Option<Instant> = None;
    let mut restarted = false;
    let mut next_kill = Duration::from_secs(7);
    while started.elapsed() < adding {
        std::thread::sleep(Duration::from_millis(200));
        let elapsed = started.elapsed();
        items.store(
            1 + (elapsed.as_secs() / EVERY.as_secs()) as usize,
            Ordering::Relaxed,
        );
        // A daemon started while the database is away stops at once
        // (systemd starts it again): the kills wait for it to be back.
        if elapsed >= next_kill && down.is_none() {
            // Each in turn, but not the frozen one: it is thawed as it is.
            let victim = (kills + 1..kills + 4)
                .map(|i| i % 3)
                .find(|i| frozen.is_none_or(|(f, _)| f != *i))
                .expect("one of three is not frozen");
            signal(&daemons[victim], libc::SIGKILL);
            let _ = daemons[victim].0.wait();
            daemons[victim] = spawn(&env, &mut starts);
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
        if let Some(server) = &server {
            if !restarted && down.is_none() && elapsed >= Duration::from_secs(30) {
                server.stop();
                down = Some(Instant::now());
            }
            if let Some(since) = down
                && since.elapsed() >= Duration::from_secs(12)
            {
                server.start_again();
                down = None;
                restarted = true;
                last_fault = Instant::now();
                // The daemons that lived through it see it back before
                // the next kill.
                next_kill = next_kill.max(elapsed + Duration::from_secs(15));
            }
        }
    }
    if let Some((i, _)) = frozen {
        signal(&daemons[i], libc::SIGCONT);
        last_fault = Instant::now();
    }
    if let (Some(server), Some(_)) = (&server, down) {
        server.start_again();
        restarted = true;
        last_fault = Instant::now();
    }
    let items = items.load(Ordering::Relaxed);
    let expected: BTreeSet<String> = (0..feeds)
        .flat_map(|n| {
            (0..items)
                .filter(|k| k % 4 == 0)
                .map(move |k| format!("Dépêche {k} du flux {n} : des puces"))
        })
        .collect();
    // Alerts by mail; digests go to another address.
    let arrived = |smtp: &SmtpServer, digests: bool| -> Vec<Mail> {
        smtp.received()
            .iter()
            .map(|r| Mail::parse(&r.data))
            .filter(|m| m.to.contains("matin@") == digests)
            .collect()
    };
    let hooks = || -> BTreeMap<String, usize> {
        let mut n = BTreeMap::new();
        for id in posted.ids.lock().unwrap().iter() {
            *n.entry(id.clone()).or_default() += 1;
        }
        n
    };
    // The stories no digest sent so far lists.
    let undigested = |digests: &[Mail]| -> Vec<String> {
        let listed: BTreeSet<&str> = digests.iter().flat_map(|m| titles(&m.text)).collect();
        expected
            .iter()
            .filter(|t| !listed.contains(t.as_str()))
            .cloned()
            .collect()
    };
    // Each feed polled again within an interval (a minute, give or take
    // its jitter) plus the claims of a killed process running out (20 s),
    // and what it brings sent.
    let waited = Instant::now();
    let mut complete = None;
    loop {
        let mails = arrived(&smtp, false);
        let got: BTreeSet<&str> = mails.iter().flat_map(|m| titles(&m.subject)).collect();
        let missing = expected
            .iter()
            .filter(|t| !got.contains(t.as_str()))
            .count();
        let posted_all = hooks().len() >= expected.len();
        let digested = undigested(&arrived(&smtp, true)).is_empty();
        if missing == 0 && posted_all && digested && complete.is_none() {
            complete = Some(last_fault.elapsed());
        }
        let settled = last_fault.elapsed() > REPOLLED_WITHIN;
        if (missing == 0 && posted_all && digested && settled)
            || waited.elapsed() > Duration::from_secs(200)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    drop(daemons);

    let mails = arrived(&smtp, false);
    let mut by_story: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &mails {
        let title = titles(&m.subject).next().unwrap_or(&m.subject);
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

    // Each story posted once under its id, resends aside.
    let posts = hooks();
    assert_eq!(posts.len(), expected.len(), "every story posted");
    let reposted: usize = posts.values().map(|n| n - 1).sum();
    assert!(
        reposted <= kills,
        "{reposted} posted again for {kills} kills"
    );

    // Each digest tick made once (SPEC §10), and what was made was sent,
    // once under its id, resends aside.
    let ticks = env.rows("SELECT tick FROM digests WHERE channel = 'matin'");
    let minutes: BTreeSet<i64> = ticks
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse::<i64>().unwrap() / 60)
        .collect();
    assert_eq!(
        minutes.len(),
        ticks.len(),
        "two digests of one tick: {ticks:?}"
    );
    // How many ticks have a digest hangs on where the lead was when each
    // minute began; that no story is left out of them does not.
    let digests = arrived(&smtp, true);
    let left_out = undigested(&digests);
    assert!(
        left_out.is_empty(),
        "{} stories in no digest: {left_out:?}",
        left_out.len()
    );
    let ids: BTreeSet<&str> = digests.iter().map(|m| m.message_id.as_str()).collect();
    let sent =
        env.number("SELECT COUNT(*) FROM digests WHERE channel = 'matin' AND state = 'sent'");
    assert_eq!(ids.len() as i64, sent, "every digest made and sent arrived");
    let digests_again = digests.len() - ids.len();
    assert!(digests_again <= kills, "digests sent again");

    let f = fetches.lock().unwrap();
    assert!(
        f.overlapping.is_empty(),
        "fetched twice at once: {:?}",
        f.overlapping
    );
    assert!(f.most <= 4, "{} fetches at once from one host", f.most);
    // Each feed polled again within an interval of the last fault: a
    // minute and its jitter (10 %), or the claims of a process killed
    // while it fetched running out (2 × timeout + 10 s), and a few seconds
    // for the pass that takes it.
    let after: Vec<(&String, Option<Duration>)> =
        f.at.iter()
            .map(|(path, at)| {
                let first = at.iter().find(|t| **t >= last_fault);
                (path, first.map(|t| t.duration_since(last_fault)))
            })
            .collect();
    let late: Vec<_> = after
        .iter()
        .filter(|(_, a)| a.is_none_or(|a| a > REPOLLED_WITHIN))
        .collect();
    assert!(
        late.is_empty(),
        "not polled again within {REPOLLED_WITHIN:?} of the last fault: {late:?}"
    );
    let repolled = after
        .iter()
        .filter_map(|(_, a)| *a)
        .max()
        .unwrap_or_default();
    let landed = (adding.as_secs() / 15) as usize;
    assert!(
        kills >= landed && (!on_postgres() || restarted),
        "{kills} kills"
    );
    if on_postgres() {
        // The database's absence told once by each process that lived
        // through it (a second time if the frozen one woke to cut
        // connections), its return too: not at every tick of every loop.
        let told = logged(&env, starts, "retrying (told again once a minute");
        assert!(told.iter().all(|n| *n <= 2), "told by each log: {told:?}");
        let back = logged(&env, starts, "the database answers again");
        assert!(
            back.iter().sum::<usize>() >= 2,
            "return told: {back:?}; the first log:\n{}",
            std::fs::read_to_string(env.path("daemon-1.log")).unwrap_or_default()
        );
    }
    // The figures of the run, for benches/faults.sh.
    eprintln!(
        "faults: {} s of faults on {}, {feeds} feeds: {kills} kills, a freeze of 32 s{}; \
         {} stories alerting 3 channels, all in {:.0} s after the last fault; \
         sent again under the same id: {resends} mails, {reposted} posts, {digests_again} digests; \
         {} digests for as many ticks; {} fetches, at most {} at once; \
         every feed polled again within {:.0} s of the last fault",
        adding.as_secs(),
        if on_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        if restarted {
            ", PostgreSQL stopped for 12 s"
        } else {
            ""
        },
        expected.len(),
        complete.unwrap_or_default().as_secs_f64(),
        ticks.len(),
        f.by_path.values().sum::<usize>(),
        f.most,
        repolled.as_secs_f64(),
    );
}

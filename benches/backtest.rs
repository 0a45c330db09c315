//! Back-test benchmark (`veille test RULE --history 7d`): a week of news
//! at 20,000 items a day (1,000 feeds) recorded through the store as the
//! daemon records them, with and without `keep_text`, then:
//!
//! - the database's size per kept day (the file with kept text minus the
//!   file without, over the days kept);
//! - the back-test's read (one snapshot, every text unpacked) and its
//!   matching, for 1 rule and for 20 rules tried one after the other;
//! - the live matcher on the same items (the rule set evaluated per item,
//!   as a poll does): the back-test should stay within 2× of it.
//!
//! The texts are the French news of the wire corpora
//! (`tests/fixtures/wire/*.toml`: titles, summaries, some full articles),
//! each item taking one of them. Medians of `BACKTEST_RUNS` (3) runs.
//! `BACKTEST_DAYS` and `BACKTEST_PER_DAY` choose other sizes;
//! `BACKTEST_KEEP=DIR` leaves the databases and the command's config in
//! DIR (to profile the command alone).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use veille::cli::history::back_test;
use veille::config::Location;
use veille::domain::backtest;
use veille::domain::ids::FeedId;
use veille::domain::model::Item;
use veille::domain::rules::RuleSet;
use veille::store::texts::{History, Unpacker};
use veille::store::{FetchRecord, ItemRecord, PollRecord, Store};

const DAY: i64 = 86_400;
const FEEDS: usize = 1_000;
const START: i64 = 1_800_000_000;

/// Twenty rules of the kind analysts write, listed terms and queries.
const RULES: &str = r#"
[[rule]]
name = "tarifs"
query = '"droits de douane" AND (Chine OR Pékin OR "États-Unis" OR Washington)'
notify = ["m"]
[[rule]]
name = "greves"
any = ["grève", "grévistes", "préavis de grève"]
notify = ["m"]
[[rule]]
name = "tempetes"
any = ["tempête", "vigilance orange", "vigilance rouge"]
notify = ["m"]
[[rule]]
name = "bourse"
any = ["CAC 40", "Bourse de Paris"]
notify = ["m"]
[[rule]]
name = "cyber"
any = ["cyberattaque*", "rançongiciel*", "ransomware"]
notify = ["m"]
[[rule]]
name = "ia"
any = ["IA", "intelligence artificielle"]
notify = ["m"]
[[rule]]
name = "puces"
query = '(puces OR semi-conducteur*) NEAR/10 (Chine OR Taïwan OR Europe)'
notify = ["m"]
[[rule]]
name = "hopitaux"
all = ["hôpital"]
any = ["urgences", "grève", "cyberattaque"]
notify = ["m"]
[[rule]]
name = "climat"
any = ["climat", "réchauffement", "COP"]
notify = ["m"]
[[rule]]
name = "energie"
any = ["électricité", "nucléaire", "EDF"]
notify = ["m"]
[[rule]]
name = "rugby"
any = ["Six Nations", "XV de France"]
notify = ["m"]
[[rule]]
name = "immigration"
any = ["migrants", "naufrage", "Manche"]
none = ["Manche (département)"]
notify = ["m"]
[[rule]]
name = "education"
any = ["enseignants", "Éducation nationale", "lycées"]
notify = ["m"]
[[rule]]
name = "espace"
any = ["fusée", "lanceur", "Ariane"]
notify = ["m"]
[[rule]]
name = "conso"
any = ["rappel conso", "rappel de produits"]
notify = ["m"]
[[rule]]
name = "justice"
query = '(procès OR tribunal OR "cour d’appel") AND NOT sport'
notify = ["m"]
[[rule]]
name = "agriculture"
any = ["agriculteurs", "FNSEA", "PAC"]
notify = ["m"]
[[rule]]
name = "inflation"
any = ["inflation", "prix à la consommation", "Insee"]
notify = ["m"]
[[rule]]
name = "afrique"
any = ["Abidjan", "Dakar", "Sahel"]
notify = ["m"]
[[rule]]
name = "defense"
any = ["armée", "militaire*", "OTAN"]
notify = ["m"]
"#;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks what is in here.
    }
    let var = |name: &str, default: i64| -> i64 {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().expect(name))
            .unwrap_or(default)
    };
    let days = var("BACKTEST_DAYS", 7);
    let per_day = var("BACKTEST_PER_DAY", 20_000) as usize;
    let runs = var("BACKTEST_RUNS", 3) as usize;
    let texts = corpus();
    println!(
        "{} texts from the wire corpora; {days} days × {per_day} items over {FEEDS} feeds",
        texts.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("BACKTEST_KEEP") {
        Some(keep) => tempfile::Builder::new()
            .disable_cleanup(true)
            .tempdir_in(keep)
            .unwrap(),
        None => dir,
    };
    println!("databases in {}", dir.path().display());
    let (with, recorded) = fill(&dir.path().join("kept.db"), &texts, days, per_day, true);
    let (without, _) = fill(&dir.path().join("bare.db"), &texts, days, per_day, false);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "recorded {} items in {:.1} s with kept text; file {:.1} MiB, {:.1} MiB without: {:.1} MiB a kept day ({:.0} bytes an item)",
        days as usize * per_day,
        recorded.as_secs_f64(),
        mib(with),
        mib(without),
        mib(with.saturating_sub(without)) / days as f64,
        with.saturating_sub(without) as f64 / (days as usize * per_day) as f64
    );

    let store = Store::open_existing(&Location::File(dir.path().join("kept.db"))).unwrap();
    let all = rule_sets();
    let one = &all[0];
    let mut read = Vec::new();
    let mut unpack = Vec::new();
    let mut match_one = Vec::new();
    let mut match_twenty = Vec::new();
    let mut live_one = Vec::new();
    let mut live_twenty = Vec::new();
    let none: Vec<String> = Vec::new();
    let mut kept_items = 0;
    let tags = HashMap::new();
    for _ in 0..runs {
        // The command's own path: reading, unpacking and matching
        // overlapped (`cli::history::back_test`).
        let t = Instant::now();
        let tested = back_test(&store, START - DAY, &one.0, &tags).unwrap();
        match_one.push(t.elapsed());
        assert!(!tested.found.is_empty(), "the rule finds stories");
        kept_items = tested.kept.len();
        drop(tested);
        // Each part alone: the read (one snapshot, collected), then
        // unpacking on one thread.
        let t = Instant::now();
        let mut history = History::default();
        store.history(START - DAY, &mut history).unwrap();
        read.push(t.elapsed());
        let t = Instant::now();
        let mut unpacker = Unpacker::default();
        for (k, p) in history.kept.iter_mut().zip(&history.packed) {
            unpacker.unpack(k, p).unwrap();
        }
        unpack.push(t.elapsed());
        // Twenty rules, one after the other, on the unpacked texts.
        let t = Instant::now();
        for (set, _) in &all {
            std::hint::black_box(backtest::run(&history.kept, set, |_| &none));
        }
        match_twenty.push(t.elapsed());
        // The live matcher: each item evaluated once against the set.
        let t = Instant::now();
        for k in &history.kept {
            std::hint::black_box(one.0.evaluate(&k.item, |_| true));
        }
        live_one.push(t.elapsed());
        let every = &all_in_one();
        let t = Instant::now();
        for k in &history.kept {
            std::hint::black_box(every.evaluate(&k.item, |_| true));
        }
        live_twenty.push(t.elapsed());
    }
    let (read, unpack, m1, m20, l1, l20) = (
        median(read),
        median(unpack),
        median(match_one),
        median(match_twenty),
        median(live_one),
        median(live_twenty),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("back-test over {kept_items} kept items (medians of {runs}):");
    println!(
        "  alone: read (one snapshot) {:>7.0} ms, unpack (one thread) {:>7.0} ms",
        ms(read),
        ms(unpack)
    );
    println!(
        "  1 rule, the command's path (read, unpack and match overlapped, {} workers): {:>7.0} ms",
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        ms(m1),
    );
    println!(
        "  20 rules one after the other, one thread, texts unpacked: {:>7.0} ms",
        ms(m20)
    );
    println!(
        "  live matcher, one thread: 1 rule {:>6.0} ms ({:.0} items/s), 20 rules in one set {:>6.0} ms",
        ms(l1),
        kept_items as f64 / l1.as_secs_f64(),
        ms(l20)
    );
    println!(
        "  back-test of 1 rule / live matcher of 1 rule: {:.2}× the time",
        m1.as_secs_f64() / l1.as_secs_f64()
    );
    let user = command(dir.path(), days, runs);
    println!(
        "  `veille test tarifs --history {}d`, the binary end to end: {:>7.0} ms",
        days + 1,
        ms(user)
    );
}

/// The user's command, the binary end to end (start, config, open, read,
/// match, report), on the file with kept text; its clock moved to the end
/// of the simulated week. The median of `runs`.
fn command(dir: &Path, days: i64, runs: usize) -> Duration {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"{}\"\nkeep_text = \"30d\"\ntimezone = \"Europe/Paris\"\n\n[[feed]]\nname = \"feed 0\"\nurl = \"https://media0.example/rss.xml\"\n{RULES}\n[channel.m]\nkind = \"maildir\"\npath = \"m\"\n",
            dir.join("kept.db").display()
        ),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let shift = START + days * DAY + 60 - now;
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veille"))
            .args([
                "test",
                "tarifs",
                "--history",
                &format!("{days}d"),
                "--config",
            ])
            .arg(&config)
            .env("VEILLE_CLOCK_SHIFT", format!("{shift}s"))
            .output()
            .unwrap();
        times.push(t.elapsed());
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.contains(" kept items, from "),
            "{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    median(times)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// (title, summary, content) of every copy in the wire corpora.
fn corpus() -> Vec<(String, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let Some(events) = doc.get("event").and_then(|e| e.as_array()) else {
            continue;
        };
        for e in events {
            for c in e
                .get("copy")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
            {
                let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                out.push((s("title"), s("summary"), s("content")));
            }
        }
    }
    assert!(out.len() > 100, "{} texts", out.len());
    out
}

/// Records `days` of news into a new SQLite file; its size and the time.
fn fill(
    path: &Path,
    texts: &[(String, String, String)],
    days: i64,
    per_day: usize,
    keep_text: bool,
) -> (u64, Duration) {
    let mut store = Store::open(&Location::File(path.to_owned())).unwrap();
    let feeds: Vec<(String, String)> = (0..FEEDS)
        .map(|f| {
            (
                format!("feed {f}"),
                format!("https://media{f}.example/rss.xml"),
            )
        })
        .collect();
    let states = store.sync_feeds(&feeds).unwrap();
    let per_feed = per_day.div_ceil(FEEDS);
    let began = Instant::now();
    let mut n = 0usize;
    for day in 0..days {
        let now = START + day * DAY;
        let polls: Vec<PollRecord> = states
            .iter()
            .map(|s| {
                let items = (0..per_feed)
                    .map(|i| {
                        n += 1;
                        item(&texts[n % texts.len()], s.id, day, i, now)
                    })
                    .collect();
                poll(s.id, now, items, keep_text)
            })
            .collect();
        for group in polls.chunks(100) {
            for r in store.record_polls(group).unwrap() {
                r.unwrap();
            }
        }
    }
    let took = began.elapsed();
    store.checkpoint().unwrap();
    (std::fs::metadata(path).unwrap().len(), took)
}

fn poll(feed: FeedId, now: i64, items: Vec<ItemRecord>, keep_text: bool) -> PollRecord {
    PollRecord {
        feed_id: feed,
        now,
        fetch: FetchRecord::Fetched {
            status: 200,
            etag: None,
            last_modified: None,
            items: items.len() as u32,
            unread_items: 0,
        },
        redirect_url: None,
        next_poll: now + 900,
        lease: None,
        items,
        wire_window: 0,
        wire_keep: 0,
        keep_text,
        pages: Default::default(),
    }
}

fn item(text: &(String, String, String), feed: FeedId, day: i64, i: usize, now: i64) -> ItemRecord {
    let key = format!("https://media{}.example/{day}/{i}", feed.0);
    ItemRecord {
        key: key.clone(),
        is_new: true,
        story_link: Some(key.clone()),
        content_hash: format!(
            "{:016x}",
            (feed.0 as u64) << 32 ^ (day as u64) << 16 ^ i as u64
        ),
        item: Item {
            source_id: Some(key.clone()),
            link: Some(key),
            title: text.0.clone(),
            summary: text.1.clone(),
            content: text.2.clone(),
            categories: vec!["Actualité".into()],
            published: chrono::DateTime::from_timestamp(now - 600, 0),
            updated: None,
        },
        alerts: Vec::new(),
        quiet: false,
        wire: None,
        kept: None,
    }
}

/// Each of the twenty rules alone, with its name.
fn rule_sets() -> Vec<(RuleSet, String)> {
    let config = config(RULES);
    config
        .rules
        .iter()
        .map(|r| (RuleSet::new(vec![r.clone()]), r.name.clone()))
        .collect()
}

fn all_in_one() -> RuleSet {
    config(RULES).rules
}

fn config(rules: &str) -> veille::config::Config {
    let text = format!(
        "[[feed]]\nname = \"f\"\nurl = \"https://f.example/rss.xml\"\n{rules}\n[channel.m]\nkind = \"maildir\"\npath = \"m\"\n"
    );
    veille::config::parse(
        Path::new("/tmp/bench.toml"),
        &text,
        &veille::config::Env::default(),
    )
    .unwrap()
}

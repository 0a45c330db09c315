//! Retention benchmark (issue: months of running). Two phases, each on a
//! fresh SQLite file, with time simulated through the `now` every poll
//! record and every pruning run takes:
//!
//! 1. **Size over 90 days**: 1,000 feeds each bring 20 new items a day
//!    (5 % alerting, their alerts sent the same day), `retention = "30d"`,
//!    pruned once a simulated day as the daemon's hourly runs would. The
//!    file's size (after a WAL checkpoint) is printed every 10 days; day 90
//!    must stay within 1.5× of day 30.
//! 2. **Pruning a million items at once**: 50 days of the same without
//!    pruning, then one run: its time and its longest transaction (how long
//!    a poll could wait behind it).
//!
//! Items are recorded through `Store::record_polls` in groups of 100 polls
//! (the writer's group commit) and pruned by `daemon::prune_once`, the
//! daemon's own code. `RETENTION_FEEDS`, `RETENTION_DAYS` and
//! `RETENTION_MILLION_DAYS` choose other sizes (0 days skips a phase).

use std::path::Path;
use std::time::{Duration, Instant};

use veille::domain::model::Item;
use veille::store::{AlertDraft, FetchRecord, ItemRecord, PollRecord, StoredHit};

const DAY: i64 = 86_400;
const ITEMS_PER_DAY: usize = 20;
/// One item in twenty alerts (as in `poll_cycle`).
const ALERT_EVERY: usize = 20;
/// Polls per `record_polls` call, as the writer groups them.
const GROUP: usize = 100;
/// Day 0 of the simulated calendar (any fixed instant: nothing here reads
/// the real clock).
const START: i64 = 1_800_000_000;

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
    veille::fetch::install_crypto(); // Shared builds a fetcher.
    let feeds = var("RETENTION_FEEDS", 1_000) as usize;
    let days = var("RETENTION_DAYS", 90);
    let million_days = var("RETENTION_MILLION_DAYS", 50);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if days > 0 {
        size_over_time(&rt, feeds, days);
    }
    if million_days > 0 {
        prune_at_once(&rt, feeds, million_days);
    }
}

fn size_over_time(rt: &tokio::runtime::Runtime, feeds: usize, days: i64) {
    println!("retention: {feeds} feeds x {ITEMS_PER_DAY} items a day, retention 30d, pruned daily");
    println!(
        "{:>4} {:>9} {:>10} {:>9} {:>9} {:>12} {:>12}",
        "day", "items", "keys", "file MiB", "ratio", "prune ms", "longest ms"
    );
    let dir = tempfile::tempdir().unwrap();
    let (sh, ids) = open(dir.path(), feeds);
    let mut at_30 = None;
    let (mut worst_batch, mut worst_run) = (Duration::ZERO, Duration::ZERO);
    for day in 0..days {
        let took = record_day(&sh, &ids, day);
        let now = START + (day + 1) * DAY;
        let run = rt.block_on(veille::daemon::prune_once(&sh, now)).unwrap();
        worst_batch = worst_batch.max(run.longest_batch);
        worst_run = worst_run.max(run.took);
        if (day + 1) % 10 == 0 || day + 1 == days {
            let size = file_mib(&sh, dir.path());
            if day + 1 == 30 {
                at_30 = Some(size);
            }
            let kept = sh.store.lock().unwrap().retained().unwrap();
            let ratio = at_30.map_or(String::from("-"), |s| format!("{:.2}", size / s));
            println!(
                "{:>4} {:>9} {:>10} {:>9.1} {:>9} {:>12.0} {:>12.1}   (recording the day: {:.1} s)",
                day + 1,
                kept.items,
                kept.pruned_keys,
                size,
                ratio,
                run.took.as_secs_f64() * 1e3,
                run.longest_batch.as_secs_f64() * 1e3,
                took.as_secs_f64(),
            );
        }
    }
    println!(
        "longest daily run {:.0} ms, longest transaction {:.1} ms",
        worst_run.as_secs_f64() * 1e3,
        worst_batch.as_secs_f64() * 1e3
    );
}

fn prune_at_once(rt: &tokio::runtime::Runtime, feeds: usize, days: i64) {
    let dir = tempfile::tempdir().unwrap();
    let (sh, ids) = open(dir.path(), feeds);
    let began = Instant::now();
    for day in 0..days {
        record_day(&sh, &ids, day);
    }
    let before = file_mib(&sh, dir.path());
    let items = sh.store.lock().unwrap().retained().unwrap().items;
    println!(
        "prune at once: {items} items recorded in {:.0} s, file {before:.1} MiB",
        began.elapsed().as_secs_f64()
    );
    // Every item is older than the 30-day retention.
    let now = START + (days + 31) * DAY;
    let run = rt.block_on(veille::daemon::prune_once(&sh, now)).unwrap();
    let after = file_mib(&sh, dir.path());
    println!(
        "pruned {} items ({} stories, {} alerts) in {:.1} s, transactions: median {:.1} ms, \
         longest {:.1} ms; {:.0} MiB given back, file {after:.1} MiB",
        run.pruned.items,
        run.pruned.stories,
        run.pruned.alerts,
        run.took.as_secs_f64(),
        run.median_batch.as_secs_f64() * 1e3,
        run.longest_batch.as_secs_f64() * 1e3,
        run.freed_kib as f64 / 1024.0,
    );
}

fn open(dir: &Path, feeds: usize) -> (veille::daemon::Shared, Vec<i64>) {
    let mut c = String::from("[daemon]\nretention = \"30d\"\nwire_copies = false\n\n");
    for i in 0..feeds {
        c.push_str(&format!(
            "[[feed]]\nname = \"Feed {i}\"\nurl = \"https://media{i}.example/rss.xml\"\n\n"
        ));
    }
    c.push_str("[[rule]]\nname = \"puces-ia\"\nany = [\"puces\"]\nnotify = [\"archive\"]\n\n");
    c.push_str("[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n");
    let config = veille::config::parse(
        &dir.join("config.toml"),
        &c,
        &veille::config::Env::default(),
    )
    .unwrap();
    let mut store = veille::store::Store::open(&config.daemon.database).unwrap();
    let pairs: Vec<(String, String)> = config
        .feeds
        .iter()
        .map(|f| (f.name.clone(), f.url.to_string()))
        .collect();
    let ids = store
        .sync_feeds(&pairs)
        .unwrap()
        .iter()
        .map(|f| f.id.0)
        .collect();
    (
        veille::daemon::Shared::new(config, store, veille::clock::Clock::system()).unwrap(),
        ids,
    )
}

/// Every feed's poll of `day`, spread through the day; then the day's
/// alerts are marked sent, as delivery would.
fn record_day(sh: &veille::daemon::Shared, ids: &[i64], day: i64) -> Duration {
    let began = Instant::now();
    let step = DAY / ids.len() as i64;
    for (g, group) in ids.chunks(GROUP).enumerate() {
        let polls: Vec<PollRecord> = group
            .iter()
            .enumerate()
            .map(|(i, &feed)| {
                let now = START + day * DAY + (g * GROUP + i) as i64 * step;
                poll(feed, day, now)
            })
            .collect();
        let mut store = sh.store.lock().unwrap();
        for r in store.record_polls(&polls).unwrap() {
            r.unwrap();
        }
    }
    let end = START + (day + 1) * DAY;
    let veille::config::Location::File(path) = &sh.config.daemon.database else {
        panic!("this benchmark runs on SQLite");
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute(
        "UPDATE alerts SET state = 'sent', sent_at = ?1 WHERE state = 'pending'",
        [end],
    )
    .unwrap();
    began.elapsed()
}

fn poll(feed: i64, day: i64, now: i64) -> PollRecord {
    let items = (0..ITEMS_PER_DAY)
        .map(|n| item(feed, day, n, now))
        .collect();
    PollRecord {
        feed_id: veille::domain::ids::FeedId(feed),
        now,
        fetch: FetchRecord::Fetched {
            status: 200,
            etag: Some(format!("\"{feed}-{day}\"")),
            last_modified: None,
            items: ITEMS_PER_DAY as u32,
            unread_items: 0,
        },
        redirect_url: None,
        next_poll: now + 900,
        lease: None,
        items,
        wire_window: 0,
        wire_keep: 0,
        keep_text: false,
        pages: Default::default(),
    }
}

/// A news item of the usual shape: a guid, a link with a slug, a title of
/// ten words, a two-sentence summary, two categories.
fn item(feed: i64, day: i64, n: usize, now: i64) -> ItemRecord {
    let key = format!("https://media{feed}.example/actualite/{day}-{n}");
    let link = format!(
        "https://media{feed}.example/economie/article/2027/{day:03}/{n}/les-fabricants-de-puces-face-aux-nouveaux-droits-de-douane_{feed}{day}{n}.html"
    );
    let title = format!(
        "Les fabricants de puces européens face aux nouveaux droits de douane, épisode {day}-{n}"
    );
    let summary = "Bruxelles prépare une réponse aux mesures annoncées la semaine dernière, \
        qui frapperaient les semi-conducteurs importés à hauteur de 25 %. Les industriels \
        redoutent des hausses de prix et des retards de livraison dès le printemps."
        .to_owned();
    let alerts = if n % ALERT_EVERY == (feed as usize) % ALERT_EVERY {
        vec![AlertDraft {
            channel: "archive".into(),
            rules: vec!["puces-ia".into()],
            hits: vec![StoredHit {
                rule: "puces-ia".into(),
                field: "title".into(),
                term: "puces".into(),
                start: 20,
                end: 25,
            }],
            due: now,
        }]
    } else {
        Vec::new()
    };
    ItemRecord {
        key: key.clone(),
        is_new: true,
        story_link: Some(link.clone()),
        content_hash: format!(
            "{:016x}",
            (feed as u64) << 32 ^ (day as u64) << 8 ^ n as u64
        ),
        item: Item {
            source_id: Some(key),
            link: Some(link),
            title,
            summary,
            content: String::new(),
            categories: vec!["Économie".into(), "Technologies".into()],
            published: chrono::DateTime::from_timestamp(now - 600, 0),
            updated: None,
        },
        alerts,
        wire: None,
        quiet: false,
        kept: None,
    }
}

fn file_mib(sh: &veille::daemon::Shared, dir: &Path) -> f64 {
    sh.store.lock().unwrap().checkpoint().unwrap();
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().contains(".db") {
            bytes += e.metadata().unwrap().len();
        }
    }
    bytes as f64 / (1024.0 * 1024.0)
}

//! Poll-cycle benchmark: N feeds of 20 French news items (5 % carrying rule
//! terms) served over loopback HTTP with ETag / Last-Modified, polled with
//! veille's own units of work. Three phases per run, each on the same
//! database: cold (empty database), warm (nothing changed: all 304), changed
//! (10 % of feeds gained 3 items). Figures are medians over runs.
//!
//! The HTTP server runs in a child process (this binary, re-executed with
//! `POLL_CYCLE_SERVE` set) so that its CPU time is not counted.
//!
//! `cargo bench --bench poll_cycle` runs N = 1,000 and N = 10,000, wire
//! copies off and on; `POLL_CYCLE_FEEDS=1000 POLL_CYCLE_RUNS=5
//! POLL_CYCLE_WIRE=on` choose others. `POLL_CYCLE_FULL_TEXT=always` gives
//! every feed `full_text = "always"`: each item links an article page of
//! the server's (real news pages, from `tests/data/readability`), fetched
//! and extracted on the cold poll and the changed one.

// Signals to child processes go through libc.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ITEMS_PER_FEED: usize = 20;

fn main() {
    if let Ok(n) = std::env::var("POLL_CYCLE_SERVE") {
        serve(n.parse().expect("feed count"));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks what is in here.
    }
    veille::fetch::install_crypto();
    let sizes: Vec<usize> = match std::env::var("POLL_CYCLE_FEEDS") {
        Ok(v) => v
            .split(',')
            .map(|n| n.trim().parse().expect("POLL_CYCLE_FEEDS"))
            .collect(),
        Err(_) => vec![1_000, 10_000],
    };
    let runs: usize = std::env::var("POLL_CYCLE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!("poll_cycle: {runs} runs per size, medians; wall and CPU in seconds, peak RSS in MiB");
    if let Some(mode) = full_text() {
        println!("full_text = {mode:?} on every feed");
    }
    for n in sizes {
        bench_size(n, runs);
    }
}

#[derive(Default, Clone, Copy)]
struct Phase {
    wall: f64,
    cpu: f64,
}

fn bench_size(n: usize, runs: usize) {
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env("POLL_CYCLE_SERVE", n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Wire copies off and on, interleaved run by run, so that the machine's
    // drift falls on both alike.
    let mut phases: [Vec<[Phase; 5]>; 2] = [Vec::new(), Vec::new()];
    let mut alerts = [0; 2];
    let mut index = (0, 0);
    // POLL_CYCLE_WIRE=off or on measures one mode alone (for its peak RSS).
    let modes: Vec<bool> = match std::env::var("POLL_CYCLE_WIRE").as_deref() {
        Ok("off") => vec![false],
        Ok("on") => vec![true],
        _ => vec![false, true],
    };
    for _ in 0..runs {
        for &wire in &modes {
            let dir = tempfile::tempdir().unwrap();
            let config = config(n, &base, dir.path(), wire);
            let store = veille::store::Store::open(&config.daemon.database).unwrap();
            let sh =
                veille::daemon::Shared::new(config, store, veille::clock::Clock::system()).unwrap();
            rt.block_on(async {
                reqwest::get(format!("{base}/__reset")).await.unwrap();
            });
            let cold = measure_in(&sh, || rt.block_on(poll(&sh)));
            if full_text().is_some() {
                let st = sh.store.lock().unwrap().status().unwrap();
                let (ok, failed): (i64, i64) = st
                    .feeds
                    .iter()
                    .fold((0, 0), |(o, f), s| (o + s.pages.ok, f + s.pages.failed));
                println!(
                    "  cold poll: {ok} pages with text, {failed} failed, {:.2} ms of CPU a feed item",
                    cold.cpu * 1000.0 / (n * ITEMS_PER_FEED) as f64
                );
            }
            if wire {
                index = sh.store.lock().unwrap().wire_index_size();
            }
            let deliver = measure_in(&sh, || {
                alerts[wire as usize] = rt
                    .block_on(veille::daemon::deliver_due_once(&sh, i64::MAX / 2, true))
                    .unwrap()
                    .sent;
            });
            let warm = measure_in(&sh, || rt.block_on(poll(&sh)));
            // For profiling: POLL_CYCLE_WARM_REPEAT=K polls K more warm cycles.
            let repeat: usize = std::env::var("POLL_CYCLE_WARM_REPEAT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            for _ in 0..repeat {
                rt.block_on(poll(&sh));
            }
            rt.block_on(async {
                reqwest::get(format!("{base}/__bump")).await.unwrap();
            });
            let changed = measure_in(&sh, || rt.block_on(poll(&sh)));
            // A feed-health review of every feed, as the daemon runs each minute.
            let health = measure_in(&sh, || {
                rt.block_on(veille::daemon::review_health_once(&sh, sh.clock.now()))
                    .unwrap();
            });
            phases[wire as usize].push([cold, deliver, warm, changed, health]);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    for &wire in &modes {
        let median = |i: usize, f: fn(&Phase) -> f64| {
            let mut v: Vec<f64> = phases[wire as usize].iter().map(|p| f(&p[i])).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        println!(
            "N = {n} feeds ({} items), wire copies {}, {} alerts delivered to a Maildir per cold run",
            n * ITEMS_PER_FEED,
            if wire { "on" } else { "off" },
            alerts[wire as usize]
        );
        for (i, name) in [
            "cold poll",
            "deliver",
            "warm poll (304)",
            "10 % changed",
            "health review",
        ]
        .iter()
        .enumerate()
        {
            println!(
                "  {name:<16} wall {:>7.3}  cpu {:>7.3}",
                median(i, |p| p.wall),
                median(i, |p| p.cpu)
            );
        }
    }
    println!(
        "  wire index after a cold poll: {} stories, {:.1} MiB",
        index.0,
        index.1 as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  peak RSS {:.1} MiB (whole process, all runs)",
        peak_rss_kib() as f64 / 1024.0
    );
}

async fn poll(sh: &veille::daemon::Shared) {
    let outcomes = veille::daemon::poll_due_feeds(sh, veille::daemon::Pass::Once)
        .await
        .unwrap();
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, veille::daemon::PollOutcome::Failed { .. }))
        .count();
    assert_eq!(failed, 0, "feeds failed");
}

/// Times `f` and then a checkpoint of the database's write-ahead log, so
/// that each phase pays for writing back its own pages rather than leaving
/// them to the next phase's commits.
fn measure_in(sh: &veille::daemon::Shared, f: impl FnOnce()) -> Phase {
    measure(|| {
        f();
        sh.store.lock().unwrap().checkpoint().unwrap();
    })
}

fn measure(f: impl FnOnce()) -> Phase {
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    f();
    Phase {
        wall: wall0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu0,
    }
}

fn rusage() -> libc::rusage {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u
}

fn cpu_seconds() -> f64 {
    let u = rusage();
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn peak_rss_kib() -> i64 {
    rusage().ru_maxrss
}

fn config(n: usize, base: &str, dir: &Path, wire: bool) -> veille::config::Config {
    let mut c = format!(
        "[daemon]\nconcurrency = 16\nper_host = 16\ntimezone = \"Europe/Paris\"\nwire_copies = {wire}\n\n"
    );
    let pages = full_text()
        .map(|m| format!("full_text = {m:?}\n"))
        .unwrap_or_default();
    for i in 0..n {
        c.push_str(&format!(
            "[[feed]]\nname = \"Feed {i}\"\nurl = \"{base}/f{i}.xml\"\n{pages}\n"
        ));
    }
    c.push_str(RULES);
    c.push_str("[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n");
    c.push_str("\n[health]\nnotify = [\"archive\"]\n");
    veille::config::parse(
        &dir.join("config.toml"),
        &c,
        &veille::config::Env::default(),
    )
    .unwrap()
}

const RULES: &str = r#"
[[rule]]
name = "puces-ia"
any = ["puces", "semi-conducteurs", "IA", "intelligence artificielle"]
none = ["jeu vidéo"]
notify = ["archive"]

[[rule]]
name = "tarifs"
all = ["droits de douane"]
any = ["Chine", "Pékin", "États-Unis", "Washington"]
notify = ["archive"]

[[rule]]
name = "nvidia"
any = ["Nvidia", "TSMC", "ASML"]
notify = ["archive"]

[[rule]]
name = "energie"
any = ["nucléaire", "EDF", "hydrogène*"]
notify = ["archive"]

[[rule]]
name = "regex"
any = ['/(?i)\bH[12]00\b/']
notify = ["archive"]
"#;

/// `POLL_CYCLE_FULL_TEXT`: the feeds' `full_text`, when set.
fn full_text() -> Option<String> {
    std::env::var("POLL_CYCLE_FULL_TEXT")
        .ok()
        .filter(|m| !m.is_empty())
}

// ---- the server process ----

/// Feeds by path, with a version bumped by `/__bump`.
struct Feeds {
    n: usize,
    /// Feeds that gained items, and how many times.
    bumps: RwLock<HashMap<usize, usize>>,
    /// How long every feed takes to answer (`POLL_CYCLE_DELAY_MS`, for
    /// `benches/capacity.sh`: a cycle bound by the sites' latency).
    delay: Duration,
    /// With full text: the server's own address, which items link, and
    /// the article pages it serves.
    pages: Option<(String, Vec<String>)>,
}

impl Feeds {
    fn version(&self, i: usize) -> (usize, String) {
        let extra = self.bumps.read().unwrap().get(&i).copied().unwrap_or(0);
        (extra, format!("\"f{i}-v{extra}\""))
    }
}

struct Responder(Arc<Feeds>);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.answer(req).set_delay(self.0.delay)
    }
}

impl Responder {
    fn answer(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path();
        match path {
            "/__bump" => {
                let mut b = self.0.bumps.write().unwrap();
                for i in (0..self.0.n).step_by(10) {
                    *b.entry(i).or_insert(0) += 1;
                }
                return ResponseTemplate::new(200);
            }
            "/__reset" => {
                self.0.bumps.write().unwrap().clear();
                return ResponseTemplate::new(200);
            }
            _ => {}
        }
        if let Some((_, pages)) = &self.0.pages
            && let Some(id) = path
                .strip_prefix("/articles/")
                .and_then(|p| p.strip_suffix(".html"))
                .and_then(|p| p.parse::<usize>().ok())
        {
            return ResponseTemplate::new(200)
                .set_body_raw(pages[id % pages.len()].clone(), "text/html; charset=utf-8");
        }
        let Some(i) = path
            .strip_prefix("/f")
            .and_then(|p| p.strip_suffix(".xml"))
            .and_then(|p| p.parse::<usize>().ok())
        else {
            return ResponseTemplate::new(404);
        };
        let (extra, etag) = self.0.version(i);
        let matches = req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str());
        if matches {
            return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
        }
        let site = self.0.pages.as_ref().map(|(base, _)| base.as_str());
        let body = feed_xml(i, ITEMS_PER_FEED + 3 * extra, site);
        ResponseTemplate::new(200)
            .insert_header("ETag", etag.as_str())
            .insert_header("Last-Modified", "Sat, 26 Apr 2025 09:30:00 GMT")
            .set_body_raw(body, "application/rss+xml; charset=utf-8")
    }
}

fn serve(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let delay = std::env::var("POLL_CYCLE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        let pages = full_text().map(|_| (server.uri(), article_pages()));
        let feeds = Arc::new(Feeds {
            n,
            bumps: RwLock::new(HashMap::new()),
            delay,
            pages,
        });
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(feeds))
            .mount(&server)
            .await;
        println!("{}", server.uri());
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

const SUBJECTS: [&str; 12] = [
    "Le gouvernement présente son projet de loi de finances",
    "La réforme des retraites revient à l’Assemblée nationale",
    "Inondations dans le Sud-Ouest : les communes sinistrées attendent l’aide de l’État",
    "Le prix de l’électricité devrait baisser au printemps",
    "À Marseille, la rénovation des écoles prend du retard",
    "Football : le PSG s’impose face à Lyon",
    "Le Conseil constitutionnel valide l’essentiel de la loi immigration",
    "La grève des contrôleurs aériens perturbe les vols",
    "Festival de Cannes : la sélection officielle dévoilée",
    "Les agriculteurs manifestent devant les préfectures",
    "La Banque centrale européenne maintient ses taux",
    "Le télétravail s’installe durablement dans les entreprises",
];

const MATCHING: [&str; 4] = [
    "Les puces de Nvidia au cœur de la rivalité entre Pékin et Washington",
    "Droits de douane : la Chine riposte aux mesures des États-Unis",
    "L’IA générative bouscule les rédactions",
    "Semi-conducteurs : TSMC investit en Europe",
];

const LEAD: &str = "Selon les informations recueillies par notre rédaction, le dossier devrait être examiné dans les prochains jours. \
Plusieurs acteurs du secteur ont fait part de leurs inquiétudes, tandis que le ministère assure que « toutes les options restent sur la table ». \
Les syndicats, reçus mardi, dénoncent une concertation « de façade » et appellent à la mobilisation. \
Une nouvelle réunion est prévue la semaine prochaine, à l’issue de laquelle des annonces pourraient être faites.";

/// An opening paragraph of its own for each item (three sentences of
/// made-up words), so that items differ as real ones do and wire copies find
/// no false candidates by accident.
fn opening(id: usize) -> String {
    const SYLLABLES: [&str; 40] = [
        "ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru", "sa", "te", "vi", "zo", "cha",
        "tre", "pli", "gro", "mu", "ne", "ro", "si", "ta", "lu", "ve", "ga", "jo", "qui", "bri",
        "dra", "fle", "clo", "pru", "sto", "vra", "ma", "pe", "ri", "so", "tu",
    ];
    let mut state = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    let mut text = String::new();
    for _ in 0..3 {
        let words: Vec<String> = (0..14)
            .map(|_| {
                (0..2 + next(2))
                    .map(|_| SYLLABLES[next(SYLLABLES.len())])
                    .collect()
            })
            .collect();
        text.push_str(&words.join(" "));
        text.push_str(". ");
    }
    text
}

/// The news pages of `tests/data/readability`, unzipped.
fn article_pages() -> Vec<String> {
    use std::io::Read;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/readability");
    let mut pages = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        let mut page = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join("source.html.gz")).unwrap())
            .read_to_string(&mut page)
            .unwrap();
        pages.push(page);
    }
    pages
}

/// A feed's document; its items link `site`'s article pages when given.
fn feed_xml(feed: usize, items: usize, site: Option<&str>) -> String {
    let now = chrono::Utc::now();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>Feed {feed}</title><link>https://site{feed}.example.org/</link><description>Actualités</description>\n"
    );
    for j in 0..items {
        let id = feed * 1000 + j;
        // 1 item in 20 carries rule terms.
        let title = if id % 20 == 7 {
            MATCHING[id % MATCHING.len()]
        } else {
            SUBJECTS[id % SUBJECTS.len()]
        };
        let date = (now - chrono::Duration::minutes((j * 17) as i64)).to_rfc2822();
        let host = site.map_or(format!("https://site{feed}.example.org"), str::to_owned);
        s.push_str(&format!(
            "<item><title>{title}</title><link>{host}/articles/{id}.html?xtor=RSS-{feed}</link><guid isPermaLink=\"false\">site{feed}-{id}</guid><pubDate>{date}</pubDate><category>Actualité</category><description><![CDATA[<p>{}</p><p>{LEAD}</p><p>Article {id}, <b>mis à jour</b> à 12&nbsp;h.</p>]]></description></item>\n",
            opening(id)
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

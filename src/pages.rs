//! Fetching articles' pages for their text (full text, SPEC §7). Owns the
//! politeness a page fetch owes its site:
//!
//! - at most `per_host` pages of one site at once (in this process);
//! - the site's robots.txt, asked first and kept a day in the database for
//!   every process (RFC 9309: a 4xx means no rules, a 5xx or no answer
//!   means "not now", asked again after an hour);
//! - the feed fetcher's `timeout`, `max_body`, `user_agent` and redirects,
//!   with a stricter address check (`Fetcher::fetch_page`);
//! - one deadline for all the pages of a poll: an item waits for its page
//!   at most `timeout`, then is matched on the feed's text.
//!
//! A page that cannot be had is never an error of the poll: it is told
//! (`Page::Failed`, `Page::Skipped`) and counted on the feed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use url::Url;

use crate::clock::Clock;
use crate::domain::fulltext::{self, Article, Source};
use crate::domain::poll::PageTally;
use crate::fetch::{FetchOutcome, Fetcher};
use crate::store::{RobotsTxt, Store};

/// How long a robots.txt that answered is kept (RFC 9309 §2.4: a day).
const ROBOTS_KEPT: i64 = 86_400;
/// How long a robots.txt that did not answer (5xx, 429, no answer) keeps
/// the site's pages waiting before it is asked again.
const ROBOTS_RETRY: i64 = 3_600;
/// The longest robots.txt read (RFC 9309 §2.5: at least 500 KiB).
const ROBOTS_MAX: usize = 512 * 1024;

/// What an item's page gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The article's text.
    Text { text: String, from: Source },
    /// Fetched, or tried, and no text came: why.
    Failed(String),
    /// Not fetched: robots.txt, and why.
    Skipped(String),
}

impl Page {
    /// The text, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Page::Text { text, .. } => Some(text),
            _ => None,
        }
    }
}

pub struct Pages {
    fetcher: Fetcher,
    per_host: usize,
    /// The product token robots.txt groups are matched against.
    agent: String,
    timeout: Duration,
    /// Where robots.txt files are read and kept; `None` (`veille test`):
    /// in memory only.
    store: Option<Stores>,
    clock: Clock,
    /// Pages fetched at once in this process, whatever their site
    /// (`concurrency`): a feed of 500 items on 500 sites holds no more.
    all: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Each site's robots.txt as known here, behind a lock per site so
    /// that pages asked at once fetch it once.
    robots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Robots>>>>>,
}

/// The database connections robots.txt files go through: read on the
/// reader's, written on the writer's.
pub struct Stores {
    pub reader: Arc<Mutex<Store>>,
    pub writer: Arc<Mutex<Store>>,
}

/// A site's robots.txt, and its rules parsed once.
struct Robots {
    txt: RobotsTxt,
    rules: Option<Arc<texting_robots::Robot>>,
}

/// Sites whose robots.txt is kept in memory before stale ones are dropped.
const SITES_KEPT: usize = 1_024;

impl Pages {
    pub fn new(
        fetcher: Fetcher,
        config: &crate::config::Daemon,
        store: Option<Stores>,
        clock: Clock,
    ) -> Pages {
        let agent = config
            .user_agent
            .split(['/', ' '])
            .next()
            .filter(|a| !a.is_empty())
            .unwrap_or("veille")
            .to_owned();
        Pages {
            fetcher,
            per_host: config.per_host.max(1),
            agent,
            timeout: config.timeout,
            store,
            clock,
            all: Arc::new(Semaphore::new(config.concurrency.max(1))),
            hosts: Mutex::default(),
            robots: Mutex::default(),
        }
    }

    /// The pages of `links` (an item key and its link each), found in the
    /// feed at `feed`, all under one deadline of `timeout`: a page not had
    /// by then is told as failed, and its item matched on the feed's text.
    pub async fn fetch_all(
        &self,
        feed: Option<&Url>,
        links: Vec<(String, Url)>,
    ) -> Vec<(String, Page)> {
        let mut waiting: HashSet<String> = links.iter().map(|(k, _)| k.clone()).collect();
        let mut running: futures_util::stream::FuturesUnordered<_> = links
            .into_iter()
            .map(|(key, link)| async move { (key, self.page(&link, feed).await) })
            .collect();
        let mut out = Vec::new();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = running.next() => match next {
                    Some((key, page)) => {
                        waiting.remove(&key);
                        out.push((key, page));
                    }
                    None => break,
                },
                () = &mut deadline => break,
            }
        }
        let late = format!(
            "no page within {}",
            humantime::format_duration(self.timeout)
        );
        out.extend(waiting.into_iter().map(|k| (k, Page::Failed(late.clone()))));
        out
    }

    /// One page: the address, robots.txt, the fetch, the article.
    pub async fn page(&self, link: &Url, feed: Option<&Url>) -> Page {
        // Before anything is asked of the site, robots.txt included.
        if let Err(why) = crate::fetch::page_allowed(link, feed).await {
            return Page::Failed(why);
        }
        let slot = self.host_slot(link);
        let (Ok(_site), Ok(_any)) = (slot.acquire().await, self.all.acquire().await) else {
            return Page::Failed("shutting down".into());
        };
        if let Some(refused) = self.robots_refuse(link, feed).await {
            return Page::Skipped(refused);
        }
        let fetched = match self.fetcher.fetch_page(link, feed).await {
            FetchOutcome::Fetched(f) => f,
            FetchOutcome::Failed(e) => return Page::Failed(e.message),
            FetchOutcome::NotModified { .. } => return Page::Failed("HTTP 304".into()),
        };
        if let Some(t) = fetched.media_type.as_deref()
            && !t.is_empty()
            && !t.contains("html")
        {
            return Page::Failed(format!("not an HTML page ({t})"));
        }
        let url = fetched.final_url.as_ref().unwrap_or(link).to_string();
        let html = decode(&fetched.body, fetched.charset.as_deref());
        // A parser's panic is this page's problem only.
        let article = tokio::task::spawn_blocking(move || {
            crate::panics::quietly(|| std::panic::catch_unwind(|| fulltext::extract(&html, &url)))
        })
        .await;
        match article {
            Ok((Ok(Article::Text { text, from }), _)) => Page::Text { text, from },
            Ok((Ok(Article::None(missing)), _)) => Page::Failed(missing.to_string()),
            Ok((Err(_), panic)) => Page::Failed(format!(
                "the page could not be read ({})",
                panic.unwrap_or_default()
            )),
            Err(e) => Page::Failed(format!("the page could not be read: {e}")),
        }
    }

    fn host_slot(&self, link: &Url) -> Arc<Semaphore> {
        let host = link.host_str().unwrap_or("").to_owned();
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.len() > SITES_KEPT {
            // The sites with no page under way.
            hosts.retain(|_, slot| slot.available_permits() < self.per_host);
        }
        Arc::clone(
            hosts
                .entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host))),
        )
    }

    /// Why robots.txt keeps `link` from being fetched now, if it does.
    async fn robots_refuse(&self, link: &Url, feed: Option<&Url>) -> Option<String> {
        let origin = link.origin().ascii_serialization();
        let now = self.clock.now();
        let site = {
            let mut robots = self.robots.lock().unwrap_or_else(|p| p.into_inner());
            if robots.len() > SITES_KEPT {
                robots.retain(|_, r| {
                    r.try_lock()
                        .is_ok_and(|r| r.as_ref().is_some_and(|r| fresh(&r.txt, now)))
                });
            }
            Arc::clone(robots.entry(origin.clone()).or_default())
        };
        let mut known = site.lock().await;
        if known.as_ref().is_none_or(|r| !fresh(&r.txt, now)) {
            *known = self
                .kept_robots(&origin)
                .await
                .filter(|r| fresh(r, now))
                .map(parsed(&self.agent));
        }
        if known.is_none() {
            let fetched = self.fetch_robots(&origin, feed, now).await;
            self.keep_robots(&fetched).await;
            *known = Some(parsed(&self.agent)(fetched));
        }
        let robots = known.as_ref().expect("known now");
        verdict(&robots.txt, robots.rules.as_deref(), link.as_str())
    }

    async fn kept_robots(&self, origin: &str) -> Option<RobotsTxt> {
        let origin = origin.to_owned();
        let read = crate::store::read_on(&self.store.as_ref()?.reader, move |s| s.robots(&origin));
        read.await.unwrap_or_else(|e| {
            tracing::debug!(error = %format!("{e:#}"), "cannot read the robots.txt kept");
            None
        })
    }

    async fn keep_robots(&self, robots: &RobotsTxt) {
        let Some(store) = &self.store else {
            return;
        };
        let robots = robots.clone();
        if let Err(e) = crate::store::on(&store.writer, move |s| s.keep_robots(&robots)).await {
            tracing::debug!(error = %format!("{e:#}"), "cannot keep robots.txt");
        }
    }

    /// The site's robots.txt, fetched under the page's address rules. A
    /// fetch that fails without a 4xx or 5xx (no answer, a broken or
    /// oversized body) is "no answer": not now.
    async fn fetch_robots(&self, origin: &str, feed: Option<&Url>, now: i64) -> RobotsTxt {
        let mut robots = RobotsTxt {
            origin: origin.to_owned(),
            fetched_at: now,
            status: 0,
            body: String::new(),
        };
        let Ok(url) = Url::parse(&format!("{origin}/robots.txt")) else {
            return robots;
        };
        match self.fetcher.fetch_page(&url, feed).await {
            FetchOutcome::Fetched(f) => {
                robots.status = f.status;
                let body = &f.body[..f.body.len().min(ROBOTS_MAX)];
                // PostgreSQL's text holds no NUL.
                robots.body = String::from_utf8_lossy(body).replace('\0', "");
            }
            FetchOutcome::Failed(e) => robots.status = e.status.filter(|s| *s >= 400).unwrap_or(0),
            FetchOutcome::NotModified { .. } => {}
        }
        robots
    }
}

/// A robots.txt with its rules parsed, for the product token `agent`. A
/// file that cannot be read has no rules.
fn parsed(agent: &str) -> impl Fn(RobotsTxt) -> Robots + '_ {
    move |txt| {
        let rules = (200..300)
            .contains(&txt.status)
            .then(|| texting_robots::Robot::new(agent, txt.body.as_bytes()).ok())
            .flatten()
            .map(Arc::new);
        Robots { txt, rules }
    }
}

/// Whether a robots.txt kept at `fetched_at` still holds at `now`.
fn fresh(r: &RobotsTxt, now: i64) -> bool {
    let kept = match answered(r.status) {
        true => ROBOTS_KEPT,
        false => ROBOTS_RETRY,
    };
    now < r.fetched_at + kept
}

/// Whether the site answered (RFC 9309 §2.3.1): a 2xx (rules) or a 4xx
/// other than 429 (no rules).
fn answered(status: u16) -> bool {
    (200..300).contains(&status) || ((400..500).contains(&status) && status != 429)
}

/// Why `robots` (its `rules` parsed) keeps `url` from being fetched, if
/// it does.
fn verdict(robots: &RobotsTxt, rules: Option<&texting_robots::Robot>, url: &str) -> Option<String> {
    if !answered(robots.status) {
        let said = match robots.status {
            0 => "did not answer".to_owned(),
            s => format!("answered HTTP {s}"),
        };
        return Some(format!("robots.txt {said}: not now"));
    }
    (!rules?.allowed(url)).then(|| "robots.txt disallows it".to_owned())
}

/// A page's bytes as text: as a feed's (`parse::decode`: a BOM, the
/// charset of `Content-Type`), with a `<meta>` charset near the top in
/// place of the XML declaration.
fn decode(body: &[u8], charset: Option<&str>) -> String {
    let label = charset.map(str::to_owned).or_else(|| meta_charset(body));
    crate::domain::parse::decode(body, label.as_deref())
}

/// `<meta charset="…">` or `<meta http-equiv … content="…; charset=…">` in
/// the first 2 KiB (where the HTML standard says a parser looks).
fn meta_charset(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let value: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!value.is_empty()).then_some(value)
}

/// Adds a page's outcome to a poll's tally.
pub fn count(tally: &mut PageTally, page: &Page) {
    match page {
        Page::Text { .. } => tally.ok += 1,
        Page::Failed(why) => {
            tally.failed += 1;
            tally.last_failure = Some(why.clone());
        }
        Page::Skipped(why) => {
            tally.skipped += 1;
            tally.last_failure = Some(why.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robots(status: u16, body: &str) -> RobotsTxt {
        RobotsTxt {
            origin: "https://exemple.fr".into(),
            fetched_at: 1_000,
            status,
            body: body.into(),
        }
    }

    #[test]
    fn robots_txt_as_rfc_9309_reads_it() {
        let check = |r: RobotsTxt, path: &str| {
            let r = parsed("veille")(r);
            verdict(
                &r.txt,
                r.rules.as_deref(),
                &format!("https://exemple.fr{path}"),
            )
        };
        let rules = || {
            robots(
                200,
                "User-agent: *\nDisallow: /prive/\n\nUser-agent: veille\nDisallow: /abonnes/\n",
            )
        };
        assert_eq!(check(rules(), "/article"), None);
        assert!(check(rules(), "/abonnes/x").is_some());
        // Our group replaces `*`: /prive/ is not ours to avoid.
        assert_eq!(check(rules(), "/prive/x"), None);
        assert_eq!(check(robots(404, ""), "/abonnes/x"), None);
        for status in [500, 503, 429, 0] {
            assert!(check(robots(status, ""), "/a").is_some(), "{status}");
        }
        assert!(fresh(&robots(200, ""), 1_000 + ROBOTS_KEPT - 1));
        assert!(!fresh(&robots(200, ""), 1_000 + ROBOTS_KEPT));
        assert!(!fresh(&robots(503, ""), 1_000 + ROBOTS_RETRY));
    }

    #[test]
    fn pages_are_decoded_as_they_say() {
        let latin1 =
            b"<html><head><meta charset=\"iso-8859-1\"></head><body>\xe9t\xe9</body></html>";
        assert!(decode(latin1, None).contains("été"));
        assert!(decode("<p>été</p>".as_bytes(), None).contains("été"));
        let declared = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">\x93cit\xe9\x94";
        assert!(decode(declared, None).contains("\u{201c}cité\u{201d}"));
        assert!(decode(b"\xe9", Some("latin1")).contains('é'));
    }
}

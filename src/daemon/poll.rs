//! Polling: one feed (`poll_feed_once`) and every due feed (`poll_due_feeds`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::{Instrument, debug, info, info_span, warn};

use super::Shared;
use crate::config::{Config, Feed, FeedUrl};
use crate::domain::identity::identify;
use crate::domain::ids::FeedId;
use crate::domain::model::{Item, ParsedFeed};
use crate::domain::parse;
use crate::domain::poll::{self, Brought, Decision, Document, FetchFailure, PageTally, Settings};
use crate::fetch::{FetchOutcome, Validators};
use crate::pages::Page;
use crate::store::{FeedClaim, FeedState, FetchRecord, PollRecord, RecordSummary, texts};

#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    NotModified,
    Fetched {
        summary: RecordSummary,
        dropped_items: usize,
        /// Items of the document veille could not read (SPEC §7: never
        /// silent).
        unread_items: usize,
    },
    Failed {
        error: String,
    },
}

/// Which feeds a polling pass takes, and how it records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every feed whatever its schedule (`run --once`), recorded together
    /// when wire copies are on.
    Once,
    /// The feeds due, each recorded as soon as it is fetched (the daemon:
    /// a slow feed never delays another's alerts). Polls that reach the
    /// writer while it is busy are still recorded together.
    Scheduled,
    /// The daemon's first pass after it starts or reloads its config: the
    /// feeds due, recorded together when wire copies are on, as `Once`
    /// does. Their backlogs (every item on a first start, a day of every
    /// feed after a day down) cluster as they would have live, in
    /// publication order rather than in the order feeds answered; its
    /// alerts wait for the slowest feed of the pass.
    First,
}

/// Polls the feeds that `pass` takes, claimed a few at a time as slots
/// free up (SPEC §10): up to `concurrency` fetches at once, never more
/// than `per_host` from one host counting every process on the database,
/// and no feed that another process is polling. Feeds that are gone (410)
/// or inside a `Retry-After` wait are skipped either way.
///
/// Polls recorded together (`Once` and `First` with wire copies) are all
/// fetched first (`First`: up to `HELD` items), then written with their
/// items in publication order (SPEC §4): a backlog reaching days back
/// clusters into stories as it would have live, whichever outlet answered
/// first. Which copy meets which first decides: written in the order feeds
/// answered, corpus C's copy pairs merged fell from 97 to 76 % (stories
/// never merge, and two outlets' rewrites of one dispatch may resemble
/// each other too little until the agency's own copy joins them).
pub async fn poll_due_feeds(sh: &Shared, pass: Pass) -> Result<Vec<(String, PollOutcome)>> {
    // Without wire copies the order changes nothing: each poll is then
    // recorded as soon as it is fetched, while the others are fetched.
    let together = pass != Pass::Scheduled && sh.config.daemon.wire_copies;
    if !together {
        // Recorded inside each task, so that fetches go on meanwhile.
        return claimed(sh, pass, Ends::Recorded, |feed, state| async move {
            let fetched = fetch_feed(sh, feed, &state, sh.clock.now()).await;
            let (outcome, written) = record_alone(sh, fetched).await;
            report(sh, feed, &outcome);
            ((feed.name.clone(), outcome), written)
        })
        .await;
    }
    // `run --once` holds every poll, so that its backlog clusters exactly
    // as it would have live (SPEC §4); the daemon's first pass, which
    // wrote each poll as it came before, holds `HELD` items at most.
    let held = match pass {
        Pass::First => HELD,
        _ => Semaphore::MAX_PERMITS / 2,
    };
    let budget = Arc::new(Semaphore::new(2 * held));
    let (polls, arriving) = mpsc::unbounded_channel();
    let fetching = async move {
        let fetched = claimed(sh, pass, Ends::Fetched, move |feed, state| {
            let (polls, budget) = (polls.clone(), Arc::clone(&budget));
            async move {
                let fetched = fetch_feed(sh, feed, &state, sh.clock.now()).await;
                // Its share of the budget: its items, or one for a poll
                // that brought none.
                let weight = fetched
                    .as_ref()
                    .map_or(0, |(r, _)| r.items.len())
                    .clamp(1, held);
                let permit = budget
                    .acquire_many_owned(weight as u32)
                    .await
                    .expect("the budget is never closed");
                let _ = polls.send(Held {
                    feed,
                    id: state.id,
                    fetched,
                    weight,
                    permit,
                });
                ((), false)
            }
        })
        .await;
        fetched.map(drop)
    };
    let (fetched, (out, unwritten)) = tokio::join!(fetching, record_in_groups(sh, arriving, held));
    give_back(sh, unwritten, pass).await;
    fetched?;
    Ok(out)
}

/// Items the daemon's first pass holds at most before it writes them: a
/// first start over 10,000 feeds brings 200,000 items, 600 MiB held until
/// the end. Past this many, what is held is written (in publication
/// order) while the other feeds are fetched, and fetches wait while twice
/// as many are held. Across such groups the order is the order feeds
/// answered, which clusters worse (see `poll_due_feeds`), though better
/// than the daemon's scheduled passes: a pass under this many items,
/// 1,000 feeds of 20 items or a backlog of corpus size, is written in one
/// group. `run --once` holds everything. A poll waits for its group's write under its
/// claim: where other processes poll the same feeds, a pass slower than a
/// lease may find one of its feeds taken over, and that poll is then not
/// written (the other process's is).
const HELD: usize = 32_768;

/// A fetched poll waiting for its group's write, and its share of the
/// budget of items held.
struct Held<'a> {
    feed: &'a Feed,
    id: FeedId,
    fetched: Result<Fetched>,
    weight: usize,
    permit: OwnedSemaphorePermit,
}

/// Writes the polls as they arrive, a group at a time: one once `held`
/// items wait (weighed as `Held` is) and the last write is done, the rest
/// when the fetches are over. Each feed's outcome, and the feeds whose
/// poll was not written.
async fn record_in_groups<'a>(
    sh: &'a Shared,
    mut arriving: mpsc::UnboundedReceiver<Held<'a>>,
    held: usize,
) -> (Vec<(String, PollOutcome)>, Vec<FeedId>) {
    let (mut out, mut unwritten) = (Vec::new(), Vec::new());
    let (mut waiting, mut weight): (Vec<Held>, usize) = (Vec::new(), 0);
    let mut writing = None;
    let mut open = true;
    while open || !waiting.is_empty() || writing.is_some() {
        if writing.is_none() && (weight >= held || (!open && !waiting.is_empty())) {
            let group = std::mem::take(&mut waiting);
            weight = 0;
            writing = Some(Box::pin(async move {
                let (polls, permits): (Vec<_>, Vec<_>) = group
                    .into_iter()
                    .map(|h| ((h.feed, h.id, h.fetched), h.permit))
                    .unzip();
                let written = record_together(sh, polls).await;
                drop(permits);
                written
            }));
        }
        let written = async {
            match writing.as_mut() {
                Some(w) => w.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = arriving.recv(), if open => match got {
                Some(held) => {
                    weight += held.weight;
                    waiting.push(held);
                }
                None => open = false,
            },
            (done, not) = written => {
                out.extend(done);
                unwritten.extend(not);
                writing = None;
            }
        }
    }
    (out, unwritten)
}

/// Seconds a fetch must be able to end before its claim does, for the
/// clocks of machines that do not quite agree.
const SKEW: i64 = 5;

/// How long a poll may take: its fetch ends within `timeout`, and with
/// `full_text` its pages within `timeout` more.
fn poll_span(config: &Config) -> i64 {
    let pages = config
        .feeds
        .iter()
        .any(|f| f.full_text != crate::domain::fulltext::Mode::Never);
    (1 + i64::from(pages)) * config.daemon.timeout.as_secs() as i64
}

/// How long a claim on a feed lasts: a poll's span, and a process that
/// died with it leaves it to the others this long after its last word
/// (SPEC §10).
fn lease(config: &Config) -> i64 {
    poll_span(config) + config.daemon.timeout.as_secs() as i64 + 10
}

/// Where the task run on a claimed feed leaves its poll.
#[derive(Clone, Copy, PartialEq)]
enum Ends {
    /// Recorded as soon as fetched: the write ends the claim, and a poll
    /// that could not be written is told done at the next claim.
    Recorded,
    /// Fetched, to be recorded with others: the claim holds until then.
    Fetched,
}

/// Runs `poll` on each feed of the config that this process claims, as
/// long as there are feeds to claim, up to `concurrency` at once; the
/// results in the order they came. `poll` says besides whether it wrote
/// its poll, which ended the claim already: the next claim need not.
async fn claimed<'a, T, F, Fut>(sh: &'a Shared, pass: Pass, ends: Ends, poll: F) -> Result<Vec<T>>
where
    F: Fn(&'a Feed, FeedState) -> Fut,
    Fut: Future<Output = (T, bool)>,
{
    let (feeds, mut queue) = configured(sh, pass).await?;
    let width = sh.config.daemon.concurrency;
    let mut running = futures_util::stream::FuturesUnordered::new();
    // A claim under way, with the feeds it offered and those it reported
    // done with; fetches go on meanwhile.
    let mut claiming = None;
    // Feeds done with since the last claim, which it tells the store.
    let mut done: Vec<FeedId> = Vec::new();
    // Feeds offered since one was last taken or a fetch ended: once every
    // one has been, claiming waits for a fetch to end.
    let mut passed_over = 0;
    let mut out = Vec::new();
    loop {
        let free = width - running.len();
        // Claims go half a width at a time rather than one per finished
        // fetch, each offering a few feeds per slot from the front of the
        // queue: a cheap statement, whatever the number of feeds.
        if claiming.is_none()
            && passed_over < queue.len()
            && free > 0
            && (running.is_empty() || free >= width.div_ceil(2))
        {
            let offered: Vec<FeedId> = queue.iter().take(4 * free).copied().collect();
            let told = std::mem::take(&mut done);
            let asked = Box::pin(claim(sh, offered.clone(), told.clone(), ends, free, pass));
            claiming = Some((asked, offered, told));
        }
        let asking = claiming.is_some();
        let claimed = async {
            match claiming.as_mut() {
                Some((asked, _, _)) => asked.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = claimed, if asking => {
                let (_, offered, told) = claiming.take().expect("a claim was under way");
                match result {
                    Ok((until, taken)) => {
                        // A pass that writes its polls at its end (or at
                        // each `HELD` items) shows it goes on, and that the
                        // database takes its claims, to `/healthz` as it
                        // claims: a first start over many slow feeds is
                        // no stall.
                        if ends == Ends::Fetched {
                            sh.metrics.progress(super::Loop::Poll, sh.clock.now());
                        }
                        // Those not taken (held elsewhere, or their host
                        // busy) wait behind the others.
                        queue.drain(..offered.len());
                        queue.extend(
                            offered.iter().filter(|id| !taken.iter().any(|t| t.id == **id)),
                        );
                        // Fetches that ended during the claim still held
                        // their hosts' slots in it: offer the feeds again
                        // once they are told.
                        passed_over = match taken.is_empty() && done.is_empty() {
                            true => passed_over + offered.len(),
                            false => 0,
                        };
                        // A poll ends within its span: one that could not
                        // end before its claim does (less a margin for the
                        // clocks of other machines) is not begun, so a
                        // process frozen since it claimed leaves the feed to
                        // whoever holds it now.
                        let begin_by = until - poll_span(&sh.config) - SKEW;
                        for state in taken {
                            let feed = feeds[&state.id];
                            let id = state.id;
                            let polled = poll(feed, state);
                            let clock = sh.clock.clone();
                            running.push(async move {
                                if clock.now() >= begin_by {
                                    return (id, None);
                                }
                                (id, Some(polled.await))
                            });
                        }
                    }
                    Err(e) => {
                        // The feeds not taken wait for the next pass; those
                        // done with are told at the next claim.
                        sh.outage.failed("cannot take feeds to poll", &e);
                        done.extend(told);
                        queue.clear();
                    }
                }
            }
            next = running.next(), if !running.is_empty() => {
                if let Some((id, result)) = next {
                    let written = result.as_ref().is_some_and(|(_, written)| *written);
                    if ends == Ends::Fetched || !written {
                        done.push(id);
                    }
                    out.extend(result.map(|(polled, _)| polled));
                    passed_over = 0;
                }
            }
            else => break,
        }
    }
    if pass == Pass::Once && !queue.is_empty() {
        warn!(
            feeds = queue.len(),
            "feeds not polled: another process holds them, or held them when it stopped without giving them back (they are free again within {} s)",
            lease(&sh.config)
        );
    }
    if ends == Ends::Recorded {
        // The claims of polls that failed end now, not at the next pass.
        give_back(sh, done, pass).await;
    }
    Ok(out)
}

/// Ends this process's claims on `feeds`, whose polls were not written
/// (a written poll ended its own), rather than when their leases run out.
async fn give_back(sh: &Shared, feeds: Vec<FeedId>, pass: Pass) {
    if feeds.is_empty() {
        return;
    }
    if let Err(e) = claim(sh, Vec::new(), feeds, Ends::Recorded, 0, pass).await {
        warn!(error = %format!("{e:#}"), "cannot give back the feeds polled");
    }
}

/// Claims up to `limit` of `candidates` (`Backend::claim_feeds`), first
/// telling the store of the feeds `done` with, as `ends` says; the end of
/// the claims, and the feeds taken.
async fn claim(
    sh: &Shared,
    candidates: Vec<FeedId>,
    done: Vec<FeedId>,
    ends: Ends,
    limit: usize,
    pass: Pass,
) -> Result<(i64, Vec<FeedState>)> {
    let now = sh.clock.now();
    let (until, per_host) = (now + lease(&sh.config), sh.config.daemon.per_host);
    let releases = Arc::clone(&sh.releases);
    let asked = releases.load(Ordering::SeqCst);
    let taken = sh
        .with_claims(move |s| {
            if releases.load(Ordering::SeqCst) != asked {
                return Ok(Vec::new());
            }
            s.claim_feeds(&FeedClaim {
                candidates: &candidates,
                fetched: if ends == Ends::Fetched { &done } else { &[] },
                finished: if ends == Ends::Recorded { &done } else { &[] },
                now,
                until,
                limit,
                per_host,
                any_time: pass == Pass::Once,
            })
        })
        .await?;
    Ok((until, taken))
}

/// The configured feeds by id, the feeds table made to match the config
/// first; and those `pass` would poll as the table stood (due, not gone,
/// not inside a `Retry-After` wait), hosts taking turns, to offer to
/// claims in that order. The claim checks again.
async fn configured(sh: &Shared, pass: Pass) -> Result<(HashMap<FeedId, &Feed>, VecDeque<FeedId>)> {
    let specs: Vec<(String, String)> = sh
        .config
        .feeds
        .iter()
        .map(|f| (f.name.clone(), f.url.to_string()))
        .collect();
    let states = sh.with_store(move |s| s.sync_feeds(&specs)).await?;
    let now = sh.clock.now();
    let mut due: HashMap<String, FeedId> = HashMap::new();
    let mut ids: HashMap<FeedId, &Feed> = HashMap::new();
    let by_name: HashMap<&str, &Feed> = sh
        .config
        .feeds
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    for s in &states {
        let Some(feed) = by_name.get(s.name.as_str()) else {
            continue;
        };
        ids.insert(s.id, feed);
        let waiting = s.gone || s.retry_after_until.is_some_and(|t| t > now);
        let scheduled = pass == Pass::Once || s.next_poll.is_none_or(|t| t <= now);
        if !waiting && scheduled {
            due.insert(s.name.clone(), s.id);
        }
    }
    let order = sh
        .config
        .feeds
        .iter()
        .filter_map(|f| due.get(&f.name).map(|id| (host_of(f), *id)));
    Ok((ids, interleave_hosts(order)))
}

fn host_of(feed: &Feed) -> String {
    match &feed.url {
        FeedUrl::Http(u) => u.host_str().unwrap_or("").to_owned(),
        FeedUrl::File(_) => String::new(),
    }
}

/// Feeds reordered so that hosts take turns, so that the feeds offered to
/// a claim are not all of one host whose `per_host` slots are taken.
fn interleave_hosts(feeds: impl Iterator<Item = (String, FeedId)>) -> VecDeque<FeedId> {
    let mut by_host: Vec<(String, VecDeque<FeedId>)> = Vec::new();
    for (host, id) in feeds {
        match by_host.iter_mut().find(|(h, _)| *h == host) {
            Some((_, queue)) => queue.push_back(id),
            None => by_host.push((host, [id].into())),
        }
    }
    let mut out = VecDeque::new();
    while !by_host.is_empty() {
        for (_, queue) in &mut by_host {
            out.extend(queue.pop_front());
        }
        by_host.retain(|(_, queue)| !queue.is_empty());
    }
    out
}

/// Writes fetched polls in one group (publication order across them),
/// then reports each feed's outcome; the outcomes, and the feeds whose
/// poll was not written.
async fn record_together(
    sh: &Shared,
    fetched: Vec<(&Feed, FeedId, Result<Fetched>)>,
) -> (Vec<(String, PollOutcome)>, Vec<FeedId>) {
    // Each feed's outcome, `Ok` when its record is among those written.
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    for (feed, id, f) in fetched {
        match f {
            Ok((record, outcome)) => {
                records.push(record);
                outcomes.push((feed, id, Ok(outcome)));
            }
            Err(e) => outcomes.push((feed, id, Err(failed(&e)))),
        }
    }
    let (polls, began) = (records.len(), std::time::Instant::now());
    let mut written = sh.writer.record_all(records).await.into_iter();
    debug!(
        polls,
        took_ms = began.elapsed().as_millis() as u64,
        "polls written together"
    );
    let (mut out, mut unwritten) = (Vec::with_capacity(outcomes.len()), Vec::new());
    for (feed, id, outcome) in outcomes {
        let outcome = match outcome {
            Ok(o) => {
                let written = written.next().expect("one result a poll");
                if written.is_err() {
                    unwritten.push(id);
                }
                recorded(sh, o, written)
            }
            Err(failed) => {
                unwritten.push(id);
                failed
            }
        };
        report(sh, feed, &outcome);
        out.push((feed.name.clone(), outcome));
    }
    (out, unwritten)
}

/// A fetched, parsed and triaged poll, ready to be recorded, with what it
/// will be reported as (the summary filled in once it is recorded).
type Fetched = (PollRecord, PollOutcome);

/// Records one poll by itself; its outcome, and whether it was written
/// (which ends its claim).
async fn record_alone(sh: &Shared, fetched: Result<Fetched>) -> (PollOutcome, bool) {
    match fetched {
        Ok((record, outcome)) => {
            let written = sh.writer.record(record).await;
            let ok = written.is_ok();
            (recorded(sh, outcome, written), ok)
        }
        Err(e) => (failed(&e), false),
    }
}

/// The outcome of a poll once its record was written (or not). A poll that
/// recorded alerts wakes delivery.
fn recorded(sh: &Shared, outcome: PollOutcome, written: Result<RecordSummary>) -> PollOutcome {
    if let Ok(summary) = &written {
        // Progress for `/healthz` is a poll written, not one attempted: a
        // database that no longer takes writes stalls the loop.
        sh.metrics.progress(super::Loop::Poll, sh.clock.now());
        if summary.alerts > 0 {
            sh.alerts_recorded.notify_one();
        }
    }
    match (outcome, written) {
        (_, Err(e)) => failed(&e),
        (
            PollOutcome::Fetched {
                dropped_items,
                unread_items,
                ..
            },
            Ok(summary),
        ) => PollOutcome::Fetched {
            summary,
            dropped_items,
            unread_items,
        },
        (outcome, Ok(_)) => outcome,
    }
}

fn failed(e: &anyhow::Error) -> PollOutcome {
    PollOutcome::Failed {
        error: format!("{e:#}"),
    }
}

/// Fetches, parses, triages and records one feed. Every failure is this
/// feed's alone: it is recorded on the feed and returned, never raised.
pub async fn poll_feed_once(sh: &Shared, feed: &Feed, state: &FeedState, now: i64) -> PollOutcome {
    let (outcome, _) = record_alone(sh, fetch_feed(sh, feed, state, now).await).await;
    report(sh, feed, &outcome);
    outcome
}

/// Fetches, parses and triages one feed, within its log span.
async fn fetch_feed(sh: &Shared, feed: &Feed, state: &FeedState, now: i64) -> Result<Fetched> {
    let jitter = rand::random_range(-1.0..=1.0);
    poll_inner(sh, feed, state, now, jitter)
        .instrument(span(feed))
        .await
}

fn span(feed: &Feed) -> tracing::Span {
    info_span!("poll", feed = %feed.name, url = %feed.url)
}

/// Logs and counts a poll's outcome.
fn report(sh: &Shared, feed: &Feed, outcome: &PollOutcome) {
    log_outcome(feed, outcome);
    sh.metrics.polled(outcome);
}

/// One line per poll, in the feed's span. A quiet poll is a debug line: a
/// journal holds what changed.
fn log_outcome(feed: &Feed, outcome: &PollOutcome) {
    let _span = span(feed).entered();
    match outcome {
        PollOutcome::NotModified => debug!(status = 304, "not modified"),
        PollOutcome::Fetched {
            summary,
            dropped_items,
            unread_items,
        } => {
            if summary.new_items + summary.changed_items > 0 {
                info!(
                    new = summary.new_items,
                    changed = summary.changed_items,
                    // Alerts queued: one per story and channel.
                    queued = summary.alerts,
                    "polled"
                );
            } else {
                debug!(new = 0, changed = 0, queued = 0, "polled");
            }
            if *unread_items > 0 {
                warn!(
                    unread = unread_items,
                    "the document holds items veille could not read (see `veille test --feed`)"
                );
            }
            if *dropped_items > 0 {
                warn!(
                    dropped = dropped_items,
                    "document has more items than are considered; the rest were ignored"
                );
            }
        }
        PollOutcome::Failed { error } => warn!(error = %error, "poll failed"),
    }
}

async fn poll_inner(
    sh: &Shared,
    feed: &Feed,
    state: &FeedState,
    now: i64,
    jitter: f64,
) -> Result<Fetched> {
    let (outcome, base_url) = fetch(sh, feed, state).await;
    let redirect = remember_redirect(outcome.permanent_redirect());
    let brought = match outcome {
        FetchOutcome::NotModified { .. } => Brought::NotModified,
        FetchOutcome::Failed(e) => Brought::Failed(failure(e, now)),
        FetchOutcome::Fetched(fetched) => {
            let (status, validators) = (fetched.status, fetched.validators.clone());
            match read_document(sh, fetched, base_url).await? {
                Err(error) => Brought::Unreadable { status, error },
                Ok(doc) => {
                    let read = Read {
                        status,
                        validators,
                        doc,
                        redirect,
                    };
                    return decide_document(sh, feed, state, read, now, jitter).await;
                }
            }
        }
    };
    let decision = decide(&sh.config, feed, state, brought, redirect, now, jitter);
    Ok(pending(decision))
}

/// A failed fetch in the domain's terms (a `Retry-After` as the time it
/// ends); a 410 is said once, here.
fn failure(e: crate::fetch::FetchError, now: i64) -> FetchFailure {
    if e.gone {
        warn!(
            "410 Gone: this feed is no longer polled; change its url in the config to poll it again"
        );
    }
    FetchFailure {
        status: e.status,
        error: e.message,
        gone: e.gone,
        retry_after_until: e.retry_after.map(|r| r.until(now)),
    }
}

/// Fetches the feed (at its remembered redirect, with its validators);
/// also returns the URL asked, which relative links are read against.
async fn fetch(sh: &Shared, feed: &Feed, state: &FeedState) -> (FetchOutcome, Option<url::Url>) {
    match &feed.url {
        FeedUrl::File(path) => (sh.fetcher.fetch_file(path).await, None),
        FeedUrl::Http(url) => {
            let target = state
                .redirect_url
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| url.clone());
            let validators = Validators {
                etag: state.etag.clone(),
                last_modified: state.last_modified.clone(),
            };
            (
                sh.fetcher.fetch_http(&target, &validators).await,
                Some(target),
            )
        }
    }
}

/// Parses a fetched body on a blocking thread, a parser panic contained;
/// the inner error is the poll's error message.
async fn read_document(
    sh: &Shared,
    fetched: crate::fetch::Fetched,
    base_url: Option<url::Url>,
) -> Result<std::result::Result<ParsedFeed, String>> {
    let base = fetched
        .final_url
        .as_ref()
        .or(base_url.as_ref())
        .map(|u| u.to_string());
    let zone = sh.config.daemon.timezone;
    let (body, charset) = (fetched.body, fetched.charset);
    let (parsed, panic) = tokio::task::spawn_blocking(move || {
        crate::panics::quietly(|| {
            parse::parse(
                &parse::Document {
                    bytes: &body,
                    charset: charset.as_deref(),
                    base_url: base.as_deref(),
                },
                zone,
            )
        })
    })
    .await?;
    Ok(parsed.map_err(|e| match panic {
        Some(p) => format!("parse: {e} ({p})"),
        None => format!("parse: {e}"),
    }))
}

fn remember_redirect(target: Option<&url::Url>) -> Option<String> {
    let target = target?;
    warn!(to = %target, "the feed moved permanently; later polls go to the new address (update its url in the config)");
    Some(target.to_string())
}

/// A document read, ready to be looked up and decided.
struct Read {
    status: u16,
    validators: Validators,
    doc: ParsedFeed,
    redirect: Option<String>,
}

/// Looks up what is stored of the document's items, fetches the pages
/// `full_text` wants, and decides the poll, on a blocking thread (triage is
/// the costly part of a poll).
async fn decide_document(
    sh: &Shared,
    feed: &Feed,
    state: &FeedState,
    read: Read,
    now: i64,
    jitter: f64,
) -> Result<Fetched> {
    let store = Arc::clone(&sh.reader);
    let id = state.id;
    let (read, ids, known) = tokio::task::spawn_blocking(move || -> Result<_> {
        let ids = identify(&read.doc.items);
        // A read, made again if the database failed it for a passing
        // reason: else the poll is lost and its feed fetched again.
        let known = crate::store::blocking_thread(|| {
            super::retrying(|| {
                store
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .known_items(id, &ids)
            })
        })?;
        Ok((read, ids, known))
    })
    .await??;
    let wanted = poll::pages_wanted(
        &feed_at(feed, state),
        feed.full_text,
        &read.doc.items,
        &ids,
        &known,
        now,
    );
    let wanted = not_stored(sh, &ids, wanted).await;
    let (pages, tally) = fetch_pages(sh, feed, &read.doc.items, &ids, wanted).await;
    let config = Arc::clone(&sh.config);
    let (feed, state) = (feed.clone(), state.clone());
    let mut decision = tokio::task::spawn_blocking(move || {
        let brought = Brought::Document(Document {
            status: read.status,
            etag: read.validators.etag,
            last_modified: read.validators.last_modified,
            feed: read.doc,
            ids,
            known,
            pages,
        });
        decide(&config, &feed, &state, brought, read.redirect, now, jitter)
    })
    .await?;
    decision.record.pages = tally;
    Ok(pending(decision))
}

/// Those of `wanted` whose link names no stored story: an item that joins
/// a story by its link (another feed's copy of the same article) has its
/// page already (SPEC §7: not fetched for a story whose text is complete).
/// When the store cannot say, every page is fetched.
async fn not_stored(
    sh: &Shared,
    ids: &[crate::domain::identity::Identity],
    wanted: Vec<usize>,
) -> Vec<usize> {
    if wanted.is_empty() {
        return wanted;
    }
    let links: Vec<(usize, Option<String>)> = wanted
        .iter()
        .map(|&i| (i, ids[i].story_link.clone()))
        .collect();
    let looked_up = sh.with_reader(move |s| {
        let mut out = Vec::new();
        for (i, link) in links {
            if let Some(link) = link
                && s.story_of_link(&link)?.is_some()
            {
                continue;
            }
            out.push(i);
        }
        Ok(out)
    });
    looked_up.await.unwrap_or_else(|e| {
        debug!(error = %format!("{e:#}"), "cannot look up the stories of the pages to fetch; fetching them all");
        wanted
    })
}

/// The pages of the items at `wanted` (full text, SPEC §7), by item key,
/// and how their fetches went.
async fn fetch_pages(
    sh: &Shared,
    feed: &Feed,
    items: &[crate::domain::model::Item],
    ids: &[crate::domain::identity::Identity],
    wanted: Vec<usize>,
) -> (HashMap<String, String>, PageTally) {
    let mut tally = PageTally::default();
    let links: Vec<(String, url::Url)> = wanted
        .into_iter()
        .filter_map(|i| {
            let link = items[i].link.as_deref()?.parse().ok()?;
            Some((ids[i].item_key.clone(), link))
        })
        .collect();
    if links.is_empty() {
        return (HashMap::new(), tally);
    }
    let origin = match &feed.url {
        FeedUrl::Http(u) => Some(u),
        FeedUrl::File(_) => None,
    };
    let mut texts = HashMap::new();
    for (key, page) in sh.pages.fetch_all(origin, links).await {
        crate::pages::count(&mut tally, &page);
        match page {
            Page::Text { text, .. } => {
                texts.insert(key, text);
            }
            Page::Failed(why) | Page::Skipped(why) => {
                debug!(item = %key, why = %why, "no page text; the item is matched on the feed's text");
            }
        }
    }
    sh.metrics.pages(&tally);
    (texts, tally)
}

/// `domain::poll::decide` with the config's settings and the feed's state.
fn decide(
    config: &Config,
    feed: &Feed,
    state: &FeedState,
    brought: Brought,
    redirect: Option<String>,
    now: i64,
    jitter: f64,
) -> Decision {
    let holds: HashMap<String, Duration> = config
        .channels
        .iter()
        .map(|c| (c.name.clone(), c.hold))
        .collect();
    let d = &config.daemon;
    let pack = |item: &Item| match texts::encode(item) {
        Ok(packed) => Some(packed),
        Err(e) => {
            debug!(error = %e, "cannot pack an item's text now; it is packed when written");
            None
        }
    };
    let settings = Settings {
        rules: &config.rules,
        holds: &holds,
        wire_window: d.wire_copies.then_some(d.wire_window.as_secs() as i64),
        wire_keep: config.wire_keep,
        keep_text: (!d.keep_text.is_zero()).then_some(&pack),
    };
    let mut decision = poll::decide(
        &feed_at(feed, state),
        &settings,
        brought,
        redirect,
        now,
        jitter,
    );
    decision.record.lease = (state.lease > 0).then_some(state.lease);
    decision
}

/// The feed as the poll found it, in the domain's terms.
fn feed_at<'a>(feed: &'a Feed, state: &FeedState) -> poll::Feed<'a> {
    poll::Feed {
        id: state.id,
        name: &feed.name,
        tags: &feed.tags,
        interval: feed.interval,
        first_poll_window: feed.first_poll_window,
        max_age: feed.max_age,
        consecutive_failures: state.consecutive_failures,
        first_poll: state.first_success.is_none(),
    }
}

/// A decided poll and what it will be reported as (the summary filled in
/// once it is recorded).
fn pending(decision: Decision) -> Fetched {
    let outcome = match &decision.record.fetch {
        FetchRecord::NotModified => PollOutcome::NotModified,
        FetchRecord::Failed(f) => PollOutcome::Failed {
            error: f.error.clone(),
        },
        FetchRecord::Fetched { unread_items, .. } => PollOutcome::Fetched {
            summary: RecordSummary::default(),
            dropped_items: decision.dropped_items,
            unread_items: *unread_items as usize,
        },
    };
    (decision.record, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Env};
    use crate::store::Store;

    /// Monday 2026-11-23 00:00 UTC.
    const T0: i64 = 1_795_392_000;

    /// A first pass with wire copies writes its polls at its end: while a
    /// slow feed holds it, its claims are its progress for `/healthz`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_recorded_together_shows_progress_as_it_claims() {
        crate::fetch::install_crypto();
        // A feed that answers after two seconds.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request);
                    std::thread::sleep(Duration::from_secs(2));
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[daemon]\ndatabase = \"v.db\"\nwire_copies = true\n\n\
                 [[feed]]\nname = \"Lent\"\nurl = \"http://127.0.0.1:{port}/f.xml\"\n\n\
                 [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
                 [channel.moi]\nkind = \"maildir\"\npath = \"moi\"\n"
            ),
        )
        .unwrap();
        let config = config::load(&path, &Env::default()).unwrap();
        let store = Store::open(&config.daemon.database).unwrap();
        let clock = crate::clock::Clock::manual(T0);
        let sh = Shared::new(config, store, clock.clone()).unwrap();
        clock.advance(100);
        let pass = poll_due_feeds(&sh, Pass::First);
        tokio::pin!(pass);
        // Half a second in, the slow feed still holds the pass.
        let held = tokio::time::timeout(Duration::from_millis(500), &mut pass).await;
        assert!(held.is_err(), "the pass waits for its slow feed");
        assert_eq!(
            sh.metrics.last_progress(crate::daemon::Loop::Poll),
            T0 + 100
        );
        let outcomes = pass.await.unwrap();
        assert_eq!(outcomes.len(), 1);
    }

    #[test]
    fn hosts_take_turns() {
        let feeds = ["a", "a", "a", "b", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, host)| ((*host).to_owned(), FeedId(i as i64)));
        let order: Vec<i64> = interleave_hosts(feeds).iter().map(|f| f.0).collect();
        assert_eq!(order, [0, 3, 5, 1, 4, 2]);
    }
}

//! The PostgreSQL backend: one database for several veille processes
//! (SPEC §10). Each `Postgres` is one connection (the blocking client of
//! rust-postgres over tokio-postgres), its statements prepared once; the
//! store's logic is the same as on SQLite (`store::sql`), and only
//! transactions are this backend's:
//! - a write of polls takes a transaction-scoped advisory lock first, so
//!   that two processes place new items one after the other, as SQLite's
//!   write lock makes them: the wire index sees every copy recorded before
//!   (ids are given and committed in order), and a story is made once;
//! - claims are single statements that skip rows another process is taking
//!   (`FOR UPDATE SKIP LOCKED`);
//! - `status` reads in one repeatable-read snapshot.
//!
//! Every call runs the client's own small runtime, which may not start on
//! a thread of the daemon's: there, the call runs on a thread of its own.

mod open;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::bail;
use postgres::{Client, IsolationLevel, Statement};

use super::location::PgUrl;
use super::sql::{Db, Pg, args};
use super::{
    Backend, ChannelFault, Claimed, Cursor, DueDigest, FeedClaim, FeedHealth, FeedState,
    HealthChange, KnownItem, PollRecord, ProcessInfo, Pruned, RecentStory, RecordSummary, Requeued,
    Result, Retained, RobotsTxt, Status, Target, WireIndex, WireMatch, feeds, health, outbox,
    polls, processes, recent, retention, robots, status, stories, texts,
};
use crate::domain::identity::Identity;
use crate::domain::ids::{FeedId, StoryId};
use crate::domain::model::Item;
use crate::domain::render::FailingFeed;
use crate::domain::wire::{Fingerprint, wire_date};

pub struct Postgres {
    link: Link,
    /// Who holds the leases this store takes: random, one per connection.
    owner: String,
    /// Stories wire copies may join (`store::stories`).
    wire: Option<WireIndex>,
    /// `Link::connects` when `wire` was read (`wire_as_of`).
    wire_read_at: u64,
}

/// The connection, the statements prepared on it, and what it takes to
/// connect again when it is lost (the server restarted, the network cut):
/// the next call after the loss connects anew, at most once a second, so
/// that a process resumes by itself (SPEC §10) without hammering a server
/// that is down.
struct Link {
    /// The connection (a lock only to lend it to the thread of a call;
    /// `None` once dropped).
    client: Mutex<Option<Client>>,
    /// Statements prepared on this connection, by their text.
    statements: Mutex<HashMap<String, Statement>>,
    url: PgUrl,
    /// When connecting again last failed.
    failed_at: Mutex<Option<Instant>>,
    /// Whether the function claims call (`feeds::claim_function`) is
    /// made on this connection.
    claim_function: Mutex<bool>,
    /// How many times the connection was made again.
    connects: AtomicU64,
}

/// How long after a failed attempt to connect again the next one is made.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

impl Link {
    fn new(client: Client, url: &PgUrl) -> Link {
        Link {
            client: Mutex::new(Some(client)),
            statements: Mutex::default(),
            url: url.clone(),
            failed_at: Mutex::new(None),
            claim_function: Mutex::new(false),
            connects: AtomicU64::new(0),
        }
    }

    /// Makes the function claims call (`feeds::claim_function`) on the
    /// connection lent as `db`, unless made already.
    fn claim_function(&self, db: &Pg<Client>) -> anyhow::Result<()> {
        let mut made = self
            .claim_function
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !*made {
            db.exec(&feeds::claim_function(db, &locking(CLAIM_LOCK, false)), &[])?;
            *made = true;
        }
        Ok(())
    }

    /// The connection for one call, connected again first if it was lost.
    fn lend(&self) -> anyhow::Result<ClientGuard<'_>> {
        let mut guard = lock(&self.client);
        if guard.0.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(guard);
        }
        let mut failed_at = self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        if failed_at.is_some_and(|t| t.elapsed() < RECONNECT_PAUSE) {
            bail!(
                "the connection to the database {} is lost; connecting again",
                self.url
            );
        }
        match open::connect(&self.url) {
            Ok(client) => {
                self.statements
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                *self
                    .claim_function
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = false;
                self.connects.fetch_add(1, Ordering::Relaxed);
                *guard.0 = Some(client);
                *failed_at = None;
                tracing::info!(database = %self.url, "connected to the database again");
                Ok(guard)
            }
            Err(e) => {
                *failed_at = Some(Instant::now());
                Err(e.context("the connection to the database was lost"))
            }
        }
    }
}

/// The advisory lock writes of polls hold (any number, the same in every
/// veille): "vei-poll".
const POLL_LOCK: i64 = 0x7665_692d_706f_6c6c;

/// The statement that takes advisory lock `lock`, as a transaction's
/// opening (`Begun`); `durable: false` lets the transaction commit without
/// waiting for the disk, in the same statement.
fn locking(lock: i64, durable: bool) -> String {
    match durable {
        true => format!("SELECT pg_advisory_xact_lock({lock})"),
        false => format!(
            "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock({lock})"
        ),
    }
}

/// The advisory lock claims of feeds hold: "vei-feed".
const CLAIM_LOCK: i64 = 0x7665_692d_6665_6564;

/// Runs `f` where the client may block on its own runtime: on this thread
/// outside any runtime or on a blocking thread of one (`store::on`), else
/// on a thread of its own for the call (a runtime's threads that drive
/// tasks, even the one in `block_on`, may not start another).
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() || super::on_blocking_thread() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl Postgres {
    /// Runs `f` on the connection itself (`store::copy`).
    pub(in crate::store) fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> anyhow::Result<T> + Send,
    ) -> Result<T> {
        blocking(|| Ok(f(&mut *self.link.lend()?)?))
    }

    /// Runs `f` on the connection outside a transaction: each statement is
    /// its own (reads, and writes of one statement, such as a claim).
    fn read<T: Send>(&self, f: impl FnOnce(&Pg<Client>) -> anyhow::Result<T> + Send) -> Result<T> {
        blocking(|| {
            let mut client = self.link.lend()?;
            Ok(f(&Pg::new(&mut *client, &self.link.statements))?)
        })
    }

    /// Runs `f` on one read-only snapshot (several readings that agree).
    fn snapshot<T: Send>(
        &self,
        f: impl FnOnce(&Pg<postgres::Transaction>) -> anyhow::Result<T> + Send,
    ) -> Result<T> {
        blocking(|| {
            let mut client = self.link.lend()?;
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let out = f(&Pg::new(&mut tx, &self.link.statements))?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Runs `f` in one transaction.
    fn write<T: Send>(&self, f: impl FnOnce(&Pg<Client>) -> anyhow::Result<T> + Send) -> Result<T> {
        self.write_at(None, f)
    }

    /// Runs `f` in one transaction, after `opening` (`Begun`).
    fn write_at<T: Send>(
        &self,
        opening: Option<&str>,
        f: impl FnOnce(&Pg<Client>) -> anyhow::Result<T> + Send,
    ) -> Result<T> {
        blocking(|| {
            let mut client = self.link.lend()?;
            let mut tx = Begun::start(&mut client, opening)?;
            let out = f(&Pg::new(tx.client(), &self.link.statements))?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Writes polls: one transaction for the group; when it fails, each
    /// poll again in its own savepoint of a new transaction, which takes
    /// the poll lock again (another process may write in between). SQLite
    /// keeps one transaction and a savepoint around the group; here that
    /// savepoint would cost two round trips on every write. A poll alone
    /// is written without one: its failure is the whole write's.
    fn record(
        &mut self,
        polls: &[PollRecord],
    ) -> anyhow::Result<Vec<anyhow::Result<RecordSummary>>> {
        let recorded = self.record_in(polls);
        if recorded.is_err() {
            // Whatever failed (a savepoint's release too), the copies
            // indexed are not stored.
            polls::forget_pending(&mut self.wire);
        }
        recorded
    }

    fn record_in(
        &mut self,
        polls: &[PollRecord],
    ) -> anyhow::Result<Vec<anyhow::Result<RecordSummary>>> {
        let (wire, owner) = (&mut self.wire, self.owner.as_str());
        let statements = &self.link.statements;
        let mut client = self.link.lend()?;
        wire_as_of(wire, &mut self.wire_read_at, &self.link);
        let mut tx = begin_write(&mut client, statements, wire, polls)?;
        let written = polls::write_polls(&Pg::new(tx.client(), statements), owner, wire, polls);
        match written {
            Ok(summaries) => {
                return commit(tx, wire).map(|()| summaries.into_iter().map(anyhow::Ok).collect());
            }
            Err(e) if polls.len() == 1 => {
                // Alone, the poll's failure is the write's: no savepoint
                // (two round trips) to tell it from the others'.
                drop(tx);
                polls::forget_pending(wire);
                return Ok(vec![Err(e)]);
            }
            Err(_) => {
                drop(tx);
                polls::forget_pending(wire);
            }
        }
        let mut tx = begin_write(&mut client, statements, wire, polls)?;
        let mut results = Vec::with_capacity(polls.len());
        for poll in polls {
            tx.client().batch_execute("SAVEPOINT poll")?;
            let result = polls::write_polls(
                &Pg::new(tx.client(), statements),
                owner,
                wire,
                std::slice::from_ref(poll),
            );
            if result.is_ok() {
                tx.client().batch_execute("RELEASE SAVEPOINT poll")?;
            } else {
                tx.client().batch_execute("ROLLBACK TO SAVEPOINT poll")?;
                polls::forget_pending(wire);
            }
            results.push(result.map(|mut s| s.remove(0)));
        }
        commit(tx, wire)?;
        Ok(results)
    }
}

/// Drops the wire index if the connection was made again since it was
/// read (`read_at`): the server may have restarted and lost its last writes
/// of polls (committed without waiting for the disk, `begin_write`), whose
/// copies the index would still hold, and whose ids it would skip when
/// they are given again. It is read afresh at its next use.
fn wire_as_of(wire: &mut Option<WireIndex>, read_at: &mut u64, link: &Link) {
    let connects = link.connects.load(Ordering::Relaxed);
    if *read_at != connects {
        *wire = None;
        *read_at = connects;
    }
}

/// A write of polls begun: under the poll lock, with the wire index up to
/// date.
fn begin_write<'c>(
    client: &'c mut Client,
    statements: &Mutex<HashMap<String, Statement>>,
    wire: &mut Option<WireIndex>,
    polls: &[PollRecord],
) -> anyhow::Result<Begun<'c>> {
    // A write of polls lost with a crash of the server is no loss: its
    // feeds are polled again, and what they had is new again. What is
    // sent of it cannot be recorded before it is on disk: a message's
    // record waits for the disk (the default), and so for every earlier
    // commit. So its commit need not wait (as SQLite's need not, in WAL).
    let mut tx = Begun::start(client, Some(&locking(POLL_LOCK, false)))?;
    if let Err(e) = stories::before_write(&Pg::new(tx.client(), statements), wire, polls) {
        *wire = None;
        return Err(e);
    }
    Ok(tx)
}

/// A transaction on the client itself, begun together with its first
/// statement in one round trip (`START TRANSACTION; opening`, a simple
/// query, so `opening` takes no parameters): a write of polls or pruning
/// begins by taking its advisory lock, which the client's own
/// `Transaction` would send apart. Rolled back when dropped uncommitted
/// (an error, a panic).
struct Begun<'c> {
    client: &'c mut Client,
    open: bool,
}

impl<'c> Begun<'c> {
    /// At READ COMMITTED, as every transaction of veille's
    /// (`open::connect`).
    fn start(client: &'c mut Client, opening: Option<&str>) -> anyhow::Result<Begun<'c>> {
        let opening = opening.map_or(String::new(), |o| format!("; {o}"));
        // Begun first: an opening that fails leaves the transaction it
        // began, which the drop rolls back.
        let begun = Begun { client, open: true };
        begun
            .client
            .batch_execute(&format!("START TRANSACTION{opening}"))?;
        Ok(begun)
    }

    fn client(&mut self) -> &mut Client {
        self.client
    }

    fn commit(mut self) -> anyhow::Result<()> {
        self.open = false;
        Ok(self.client.batch_execute("COMMIT")?)
    }
}

impl Drop for Begun<'_> {
    fn drop(&mut self) {
        if self.open && !self.client.is_closed() {
            // (Where the opening failed before the transaction began,
            // ROLLBACK only warns.)
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

fn lock(m: &Mutex<Option<Client>>) -> ClientGuard<'_> {
    ClientGuard(m.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The connection, lent for one call.
struct ClientGuard<'a>(MutexGuard<'a, Option<Client>>);

impl std::ops::Deref for ClientGuard<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.0
            .as_ref()
            .expect("the connection lives as long as its store")
    }
}

impl std::ops::DerefMut for ClientGuard<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .expect("the connection lives as long as its store")
    }
}

/// Closing the connection runs the client's runtime too.
impl Drop for Postgres {
    fn drop(&mut self) {
        let client = self
            .link
            .client
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        blocking(move || drop(client));
    }
}

/// Commits a write, telling the wire index whether its copies are stored
/// or gone.
fn commit(tx: Begun, wire: &mut Option<WireIndex>) -> anyhow::Result<()> {
    match tx.commit() {
        Ok(()) => {
            polls::committed(wire);
            Ok(())
        }
        Err(e) => {
            polls::forget_pending(wire);
            Err(e)
        }
    }
}

impl Backend for Postgres {
    fn sync_feeds(&mut self, wanted: &[(String, String)]) -> Result<Vec<FeedState>> {
        let known = self.read(|db| feeds::known(db))?;
        let changes = feeds::changes(&known, wanted);
        if !changes.is_empty() {
            self.write(|db| feeds::write(db, &changes))?;
        }
        self.read(|db| feeds::states(db, Some(wanted)))
    }

    fn feed_states(&self) -> Result<Vec<FeedState>> {
        self.read(|db| feeds::states(db, None))
    }

    fn claim_feeds(&mut self, claim: &FeedClaim) -> Result<Vec<FeedState>> {
        let owner = &self.owner;
        // One call, its own transaction: one round trip where a
        // transaction around `feeds::claim` takes three. Its statements
        // each see what the claims before committed, and claims go one
        // after the other under `CLAIM_LOCK`, so that each counts the
        // hosts' fetches the one before took. A claim lost with a crash of
        // the server is no loss (the feed is free, as before it): its
        // commit need not wait for the disk.
        self.read(|db| {
            self.link.claim_function(db)?;
            feeds::claim_in_one(db, owner, claim)
        })
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    fn act_for(&mut self, owner: &str) {
        owner.clone_into(&mut self.owner);
    }

    fn release_feeds(&mut self) -> Result<usize> {
        let owner = &self.owner;
        self.read(|db| feeds::release(db, owner))
    }

    fn heartbeat(&mut self, me: &ProcessInfo, now: i64, lead_until: i64) -> Result<bool> {
        let owner = &self.owner;
        self.write(|db| processes::heartbeat(db, owner, me, now, lead_until))
    }

    fn retire(&mut self) -> Result<()> {
        let owner = &self.owner;
        self.write(|db| processes::retire(db, owner))
    }

    fn known_items(&self, feed_id: FeedId, ids: &[Identity]) -> Result<HashMap<String, KnownItem>> {
        self.read(|db| polls::known_items(db, feed_id, ids))
    }

    fn record_polls(&mut self, polls: &[PollRecord]) -> Result<Vec<Result<RecordSummary>>> {
        Ok(super::error::each(blocking(|| self.record(polls))?))
    }

    fn feed_health(&self, names: &[&str]) -> Result<Vec<FeedHealth>> {
        self.read(|db| health::feed_health(db, names))
    }

    fn record_health(
        &mut self,
        changes: &[HealthChange],
        channels: &[String],
        now: i64,
    ) -> Result<usize> {
        self.write(|db| health::record_health(db, changes, channels, now))
    }

    fn health(&self) -> Result<()> {
        self.read(|db| outbox::health(db))
    }

    fn digest_members(&mut self, channel: &str, cutoff: i64) -> Result<Claimed> {
        self.read(|db| outbox::digest_members(db, channel, cutoff))
    }

    fn health_pending(&self) -> Result<bool> {
        self.read(|db| outbox::health_pending(db))
    }

    fn claim_health(&mut self, now: i64, until: i64, channels: &[&str]) -> Result<Claimed> {
        let owner = &self.owner;
        self.read(|db| {
            let rows = outbox::claim_health(db, owner, now, until, channels)?;
            outbox::read_back_claimed_health(db, rows)
        })
    }

    fn claim_alerts(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        ignore_hold: bool,
        limit: usize,
    ) -> Result<Claimed> {
        let owner = &self.owner;
        self.read(|db| {
            let rows = outbox::claim_alerts(db, owner, now, until, channels, ignore_hold, limit)?;
            outbox::read_back_claimed(db, &rows)
        })
    }

    fn mark_damaged(&mut self, target: Target, id: &str, reason: &str) -> Result<()> {
        self.write(|db| outbox::mark_damaged(db, target, id, reason))
    }

    fn renew(&self, target: Target, id: &str, until: i64) -> Result<bool> {
        self.read(|db| outbox::renew(db, &self.owner, target, id, until))
    }

    fn release(&self, target: Target, ids: &[String]) -> Result<()> {
        self.read(|db| outbox::release(db, &self.owner, target, ids))
    }

    fn create_digest(
        &mut self,
        channel: &str,
        id: &str,
        members: &[String],
        health: &[String],
        body: &str,
        now: i64,
        tick_from: Option<i64>,
    ) -> Result<bool> {
        blocking(|| {
            let mut client = self.link.lend()?;
            let mut tx = client.transaction()?;
            let made = outbox::create_digest(
                &Pg::new(&mut tx, &self.link.statements),
                channel,
                id,
                members,
                health,
                body,
                now,
                tick_from,
            )?;
            if made {
                tx.commit()?;
            }
            Ok(made)
        })
    }

    fn claim_digests(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        any_time: bool,
    ) -> Result<Vec<DueDigest>> {
        self.read(|db| outbox::claim_digests(db, &self.owner, now, until, channels, any_time))
    }

    fn last_tick(&self, channel: &str) -> Result<Option<i64>> {
        self.read(|db| outbox::last_tick(db, channel))
    }

    fn take_tick(&self, channel: &str, from: Option<i64>, to: i64) -> Result<bool> {
        self.read(|db| outbox::take_tick(db, channel, from, to))
    }

    fn mark_sent(&mut self, target: Target, id: &str, now: i64) -> Result<Vec<i64>> {
        if target == Target::Alert {
            return Ok(self.mark_alerts_sent(&[id], now)?.pop().unwrap_or_default());
        }
        self.write(|db| outbox::mark_sent(db, &self.owner, target, id, now))
    }

    fn mark_alerts_sent(&mut self, ids: &[&str], now: i64) -> Result<Vec<Vec<i64>>> {
        // One statement, its own transaction: on the connection as it is.
        self.read(|db| outbox::mark_alerts_sent_at_once(db, &self.owner, ids, now))
    }

    fn mark_attempt_failed(
        &mut self,
        target: Target,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        self.write(|db| {
            outbox::mark_attempt_failed(db, Some(&self.owner), target, id, error, retry_at)
        })
    }

    fn requeue_failed(&mut self, channel: &str, now: i64) -> Result<Requeued> {
        self.write(|db| outbox::requeue_failed(db, channel, now))
    }

    fn pause_channel(
        &mut self,
        channel: &str,
        error: &str,
        now: i64,
        jitter: f64,
        not_before: i64,
    ) -> Result<ChannelFault> {
        self.write(|db| {
            // One pause at a time per channel, across processes.
            db.exec("SELECT pg_advisory_xact_lock(hashtext(?1))", args![channel])?;
            outbox::pause_channel(db, channel, error, now, jitter, not_before)
        })
    }

    fn paused_channels(&self, now: i64) -> Result<Vec<(String, ChannelFault)>> {
        self.read(|db| outbox::channel_faults(db, Some(now)))
    }

    fn failing_feeds(&self, names: &[&str], failing_before: i64) -> Result<Vec<FailingFeed>> {
        self.read(|db| outbox::failing_feeds(db, names, failing_before))
    }

    /// Under the lock writes of polls hold: a write places new items in
    /// stories it has looked up (`stories::Placing`), which pruning must
    /// not delete under it (SQLite's one write lock orders them alike).
    fn prune_batch(&mut self, cursor: &mut Cursor, cutoff: i64, stories: usize) -> Result<Pruned> {
        self.write_at(Some(&locking(POLL_LOCK, true)), |db| {
            retention::prune_batch(db, cursor, cutoff, stories)
        })
    }

    /// PostgreSQL's autovacuum makes the space of deleted rows reusable;
    /// nothing is given back by hand.
    fn reclaim(&mut self, _bytes: u64) -> Result<u64> {
        Ok(0)
    }

    fn retained(&self) -> Result<Retained> {
        self.read(|db| retention::retained(db))
    }

    /// Nothing is buffered outside the server.
    fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    fn pending_by_channel(&self) -> Result<Vec<(String, i64)>> {
        self.read(|db| status::pending_by_channel(db))
    }

    fn recent(&self, since: i64) -> Result<Vec<RecentStory>> {
        self.snapshot(|db| recent::recent(db, since))
    }

    fn history(&self, since: i64, reading: &mut dyn texts::Reading) -> Result<()> {
        self.snapshot(|db| texts::history(db, since, reading))
    }

    fn prune_texts(&mut self, cutoff: i64, limit: usize) -> Result<usize> {
        self.write_at(Some(&locking(POLL_LOCK, true)), |db| {
            texts::prune(db, cutoff, limit)
        })
    }

    fn status(&self) -> Result<Status> {
        self.snapshot(|db| status::status(db))
    }

    fn wire_matches(
        &mut self,
        fp: &Fingerprint,
        item: &Item,
        now: i64,
        window: i64,
        keep: i64,
        feed: &str,
    ) -> Result<Vec<WireMatch>> {
        let (wire, read_at) = (&mut self.wire, &mut self.wire_read_at);
        let link = &self.link;
        let statements = &link.statements;
        let matches = blocking(|| -> anyhow::Result<_> {
            let mut client = link.lend()?;
            wire_as_of(wire, read_at, link);
            let db = Pg::new(&mut *client, statements);
            let feed_id = Db::row(
                &db,
                "SELECT id FROM feeds WHERE name = ?1",
                args![feed],
                |r| r.get(0),
            )?
            .unwrap_or(FeedId(-1));
            let index = stories::fresh_index(&db, wire, now - keep, false)?;
            let candidates = index.candidates(fp.keys(), wire_date(item, now), window);
            stories::wire_matches(&db, candidates, &Default::default(), fp, feed_id)
        });
        Ok(matches?)
    }

    fn story_of_link(&self, link: &str) -> Result<Option<StoryId>> {
        self.read(|db| stories::story_of_link(db, link))
    }

    fn wire_index_size(&self) -> (usize, usize) {
        self.wire
            .as_ref()
            .map_or((0, 0), |w| (w.copies(), w.heap_bytes()))
    }

    fn robots(&self, origin: &str) -> Result<Option<RobotsTxt>> {
        self.read(|db| robots::get(db, origin))
    }

    fn keep_robots(&mut self, r: &RobotsTxt) -> Result<()> {
        self.write(|db| robots::put(db, r))
    }
}

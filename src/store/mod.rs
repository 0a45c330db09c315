//! The store: everything veille keeps, behind one face whatever the
//! backend. The daemon, the commands and the tests use `Store` and the
//! types of `model` only; which database lies behind (`Location`) is this
//! module's business. SQLite (`sqlite/`) is the embedded default.
//!
//! The face is named by intent (`sync_feeds`, `known_items`,
//! `record_polls`, `claim_alerts`, `mark_sent`, …) and is synchronous: each
//! `Store` is one connection, which callers run on a blocking thread
//! (`daemon::Shared::with_store`), and the SQLite writer thread keeps it for
//! its group commit.
//!
//! Guarantees every backend keeps:
//! - a poll's items, the alerts they cause and the feed's new validators are
//!   written in one transaction: a crash loses all of it or none;
//! - one alert per (story, channel), ever, by the `alerts` unique key;
//! - a new item's story (link, wire copy or its own) is decided in the
//!   transaction that records it, against every copy recorded before it,
//!   whoever recorded it;
//! - what is sent is taken with a lease, and only the lease's holder records
//!   its outcome.
//!
//! `stored` is the versioned JSON some columns hold; the wire-copy index
//! itself is pure and lives in `domain::wire_index`.

mod copy;
mod error;
mod feeds;
mod health;
mod location;
mod model;
mod outbox;
mod polls;
mod postgres;
mod processes;
mod recent;
mod retention;
mod robots;
mod sql;
mod sqlite;
mod status;
pub mod stored;
mod stories;
pub mod texts;

pub use robots::RobotsTxt;

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

pub use crate::domain::poll::{FetchRecord, PollRecord};
pub use crate::domain::triage::{AlertDraft, ItemRecord, KnownItem, StoredHit};
pub use crate::domain::wire_index::WireIndex;
pub use copy::{Copied, copy_database};
pub use error::{Error, Kind, Result};
pub use location::Location;
pub use model::{
    ChannelFault, ChannelStatus, Claimed, Cursor, Damaged, DamagedRow, DueAlert, DueDigest,
    DueHealth, FeedClaim, FeedHealth, FeedState, FeedStatus, HealthChange, LateCopies, Pages,
    ProcessInfo, ProcessStatus, Pruned, RecordSummary, Requeued, Retained, Status, Target,
    WireMatch,
};
pub use recent::{RecentChannel, RecentStory};

use crate::domain::identity::Identity;
use crate::domain::ids::{FeedId, StoryId};
use crate::domain::model::Item;
use crate::domain::render::FailingFeed;
use crate::domain::wire::Fingerprint;

/// A random 128-bit id, hex, for alerts and digests: unique across
/// databases, stable once stored.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    crate::domain::identity::hex(&bytes)
}

/// One connection to the database, whatever the backend; its methods are
/// those of `Backend`.
pub struct Store {
    backend: Box<dyn Backend>,
}

impl Store {
    /// Opens the database at `at`, creating and migrating it if needed
    /// (`veille run`).
    pub fn open(at: &Location) -> Result<Store> {
        match at {
            Location::File(path) => Ok(Store::new(sqlite::Sqlite::open(path)?)),
            Location::Postgres(url) => Ok(Store::new(postgres::Postgres::open(url)?)),
        }
    }

    /// Opens an existing, up-to-date database without creating or
    /// migrating it, for commands that read (`status`); says where it
    /// looked if there is none.
    pub fn open_existing(at: &Location) -> Result<Store> {
        match at {
            Location::File(path) => Ok(Store::new(sqlite::Sqlite::open_existing(path)?)),
            Location::Postgres(url) => Ok(Store::new(postgres::Postgres::open_existing(url)?)),
        }
    }

    /// Whether there is a database at `at` yet (before the first `veille
    /// run` there is none).
    pub fn exists(at: &Location) -> bool {
        match at {
            Location::File(path) => path.exists(),
            // A database `veille run` has set up.
            Location::Postgres(url) => postgres::Postgres::open_existing(url).is_ok(),
        }
    }

    fn new(backend: impl Backend + 'static) -> Store {
        Store {
            backend: Box::new(backend),
        }
    }
}

impl Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl DerefMut for Store {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.backend
    }
}

/// What `/healthz` checks of the database: that a fresh connection
/// answers, and, for a file, that it is still the file veille opened.
pub struct Probe {
    at: Location,
    opened: Option<sqlite::Identity>,
}

impl Probe {
    /// Notes what `at` is now, to tell it later from something put in its
    /// place.
    pub fn new(at: &Location) -> Probe {
        let opened = match at {
            Location::File(path) => sqlite::Identity::of(path),
            Location::Postgres(_) => None,
        };
        Probe {
            at: at.clone(),
            opened,
        }
    }

    /// `Ok` while the database answers a fresh connection and is the one
    /// veille opened; else why not.
    pub fn check(&self) -> Result<()> {
        match &self.at {
            Location::File(path) => Ok(sqlite::Sqlite::probe(path, self.opened)?),
            Location::Postgres(url) => Ok(postgres::Postgres::probe(url)?),
        }
    }
}

/// The store's operations; every backend has them all, with the same
/// meaning (the SQLite backend's methods say what each guarantees).
pub trait Backend: Send {
    /// Makes the feeds match the config; returns every configured feed's
    /// state.
    fn sync_feeds(&mut self, feeds: &[(String, String)]) -> Result<Vec<FeedState>>;
    /// Every feed's state, by id.
    fn feed_states(&self) -> Result<Vec<FeedState>>;
    /// Takes due feeds to poll, for this store until `claim.until`
    /// (SPEC §10): each is polled by one process at a time, and its poll
    /// is recorded only while the claim holds.
    fn claim_feeds(&mut self, claim: &FeedClaim) -> Result<Vec<FeedState>>;
    /// Whom this store's claims and leases are held for: random, one per
    /// store opened, unless it joined another (`act_for`).
    fn owner(&self) -> &str;
    /// Holds claims and leases for `owner` from now on: two connections of
    /// one process (the daemon claims feeds on one and records their polls
    /// on the other) are one holder.
    fn act_for(&mut self, owner: &str);
    /// Ends this store's claims on feeds; how many it held.
    fn release_feeds(&mut self) -> Result<usize>;
    /// Says this process lives (`veille status`), and takes or renews the
    /// lease of once-per-tick work until `lead_until`; whether it holds it.
    fn heartbeat(&mut self, me: &ProcessInfo, now: i64, lead_until: i64) -> Result<bool>;
    /// A stopping process: its row and its lease go, so that another
    /// takes the once-per-tick work at once.
    fn retire(&mut self) -> Result<()>;
    /// What is stored of the feed's items among `ids`, by item key.
    fn known_items(&self, feed_id: FeedId, ids: &[Identity]) -> Result<HashMap<String, KnownItem>>;
    /// Records polls together; one outcome per poll, in order.
    fn record_polls(&mut self, polls: &[PollRecord]) -> Result<Vec<Result<RecordSummary>>>;

    /// Every feed named in `names`, with its health facts.
    fn feed_health(&self, names: &[&str]) -> Result<Vec<FeedHealth>>;
    /// Records a health review's changes and queues their alerts.
    fn record_health(
        &mut self,
        changes: &[HealthChange],
        channels: &[String],
        now: i64,
    ) -> Result<usize>;

    /// The database answers a query.
    fn health(&self) -> Result<()>;
    /// The pending alerts of a digest channel up to `cutoff`.
    fn digest_members(&mut self, channel: &str, cutoff: i64) -> Result<Claimed>;
    /// Whether a feed-health alert is waiting.
    fn health_pending(&self) -> Result<bool>;
    /// Takes the due feed-health alerts of `channels` until `until`.
    fn claim_health(&mut self, now: i64, until: i64, channels: &[&str]) -> Result<Claimed>;
    /// Takes up to `limit` due alerts of `channels` until `until`.
    fn claim_alerts(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        ignore_hold: bool,
        limit: usize,
    ) -> Result<Claimed>;
    /// Marks a row that cannot be read back failed, with the reason.
    fn mark_damaged(&mut self, target: Target, id: &str, reason: &str) -> Result<()>;
    /// Extends this store's lease on a row; false when it is not ours any more.
    fn renew(&self, target: Target, id: &str, until: i64) -> Result<bool>;
    /// Gives up this store's leases on `ids`.
    fn release(&self, target: Target, ids: &[String]) -> Result<()>;
    /// Freezes a digest with its members, with `tick_from` as the digest of
    /// the tick after that one; false when a member is in another digest
    /// already or another process took the tick.
    #[allow(clippy::too_many_arguments)]
    fn create_digest(
        &mut self,
        channel: &str,
        id: &str,
        members: &[String],
        health: &[String],
        body: &str,
        now: i64,
        tick_from: Option<i64>,
    ) -> Result<bool>;
    /// Takes the due digests of `channels` until `until`.
    fn claim_digests(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        any_time: bool,
    ) -> Result<Vec<DueDigest>>;
    /// The last digest tick of a channel.
    fn last_tick(&self, channel: &str) -> Result<Option<i64>>;
    /// Moves a channel's digest tick from `from` to `to`; false when
    /// another process moved it first.
    fn take_tick(&self, channel: &str, from: Option<i64>, to: i64) -> Result<bool>;
    /// Records a send; returns when the alerts' items were first seen.
    fn mark_sent(&mut self, target: Target, id: &str, now: i64) -> Result<Vec<i64>>;
    /// `mark_sent` of several alerts sent at `now`, at once: for each, in
    /// the order of `ids`, when its items were first seen (none when it
    /// was no longer pending, or no longer this process's).
    fn mark_alerts_sent(&mut self, ids: &[&str], now: i64) -> Result<Vec<Vec<i64>>>;
    /// Records a failed attempt: retried at `retry_at`, or failed for good.
    fn mark_attempt_failed(
        &mut self,
        target: Target,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()>;
    /// `veille retry`: puts a channel's failed alerts and digests back in
    /// the queue, makes its pending ones due at `now` and ends its pause.
    fn requeue_failed(&mut self, channel: &str, now: i64) -> Result<Requeued>;
    /// Pauses `channel` after a fault of its own (`error`), or keeps it
    /// paused one backoff step longer, and never until before `not_before`
    /// (a wait the server asked for); returns the pause.
    fn pause_channel(
        &mut self,
        channel: &str,
        error: &str,
        now: i64,
        jitter: f64,
        not_before: i64,
    ) -> Result<ChannelFault>;
    /// The channels paused at `now`, by name.
    fn paused_channels(&self, now: i64) -> Result<Vec<(String, ChannelFault)>>;
    /// The feeds among `names` failing since before `failing_before`.
    fn failing_feeds(&self, names: &[&str], failing_before: i64) -> Result<Vec<FailingFeed>>;

    /// Prunes a batch of the stories older than `cutoff`.
    fn prune_batch(&mut self, cursor: &mut Cursor, cutoff: i64, stories: usize) -> Result<Pruned>;
    /// Gives up to `bytes` of freed space back to the system; returns how
    /// much it gave.
    fn reclaim(&mut self, bytes: u64) -> Result<u64>;
    /// Kept items, and keys kept of pruned ones.
    fn retained(&self) -> Result<Retained>;
    /// Writes what is buffered to the database proper (SQLite's WAL).
    fn checkpoint(&self) -> Result<()>;

    /// Alerts and feed-health alerts waiting, per channel.
    fn pending_by_channel(&self) -> Result<Vec<(String, i64)>>;
    /// What `veille status` shows, in one snapshot.
    fn status(&self) -> Result<Status>;

    /// The stories alerted at or after `since`, newest first (`veille recent`).
    fn recent(&self, since: i64) -> Result<Vec<RecentStory>>;

    /// The kept text of the items first seen since `since`, for
    /// `veille test --history`: one read, on one snapshot, handed to
    /// `reading` as it is read.
    fn history(&self, since: i64, reading: &mut dyn texts::Reading) -> Result<()>;

    /// Drops up to `limit` kept texts of items first seen before `cutoff`
    /// (`keep_text`); how many went.
    fn prune_texts(&mut self, cutoff: i64, limit: usize) -> Result<usize>;

    /// The stored stories `fp` would be compared with (`veille test`).
    #[allow(clippy::too_many_arguments)]
    fn wire_matches(
        &mut self,
        fp: &Fingerprint,
        item: &Item,
        now: i64,
        window: i64,
        keep: i64,
        feed: &str,
    ) -> Result<Vec<WireMatch>>;
    /// The stored story a normalised link names, if any.
    fn story_of_link(&self, link: &str) -> Result<Option<StoryId>>;
    /// Copies in the wire index and the bytes it holds.
    fn wire_index_size(&self) -> (usize, usize);
    /// A site's robots.txt as last fetched (full text, SPEC §7).
    fn robots(&self, origin: &str) -> Result<Option<RobotsTxt>>;
    /// Keeps a site's robots.txt, in place of the one before.
    fn keep_robots(&mut self, robots: &RobotsTxt) -> Result<()>;
}

/// Runs `f` on `store` from a blocking thread, its lock held (a poisoned
/// lock is taken as it is: a panic left no half-written state behind, the
/// transaction rolled back).
pub async fn on<T, F>(store: &std::sync::Arc<std::sync::Mutex<Store>>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T> + Send + 'static,
{
    let store = std::sync::Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        blocking_thread(|| f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
    })
    .await
    .map_err(|panicked| Error::new(Kind::Broken, panicked))?
}

thread_local! {
    /// This thread runs `blocking_thread`'s closure.
    static BLOCKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, called on one of the runtime's blocking threads
/// (`spawn_blocking`), saying so to the backends: a client that blocks on
/// a runtime of its own (PostgreSQL's) may do it on this thread, which
/// drives no task, instead of starting one for the call.
pub fn blocking_thread<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            BLOCKING.set(self.0);
        }
    }
    let _reset = Reset(BLOCKING.replace(true));
    f()
}

/// Whether this thread runs `blocking_thread`'s closure.
pub(crate) fn on_blocking_thread() -> bool {
    BLOCKING.get()
}

/// `on` for a reading connection.
pub async fn read_on<T, F>(store: &std::sync::Arc<std::sync::Mutex<Store>>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T> + Send + 'static,
{
    on(store, move |s| f(s)).await
}

//! The units of work and the loop that calls them.
//!
//! `poll_feed_once` fetches, reads, decides (`domain::poll`) and records
//! one feed; `poll_due_feeds` runs it for every due feed within the
//! `concurrency` and `per_host` limits; `deliver_due_once` renders what the
//! outbox holds for each channel's medium (`domain::outgoing`) and sends
//! it. `run --once` and the tests call them directly; `run` loops over them.

mod dispatch;
mod endpoint;
mod health;
mod metrics;
mod outage;
mod poll;
mod retention;
mod run;
mod writer;

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::deliver::Sender;
use crate::fetch::Fetcher;
use crate::store::{self, Store, on};

pub use dispatch::{
    DeliveryReport, deliver_due_once, digests_due_once, flush_digest, preview_digest,
    retry_digests_once,
};
pub use endpoint::{Endpoint, bind, serve};
pub use health::review_health_once;
pub use metrics::{Delivery, FEED_STATES, Loop, Metrics};
pub use outage::Outage;
pub use poll::{Pass, PollOutcome, poll_due_feeds, poll_feed_once};
pub use retention::{PruneRun, prune_every, prune_once};
pub use run::{release_feeds, retire, run, run_once};
pub use writer::Writer;

/// The pauses before a write the database gave up for a passing reason
/// (`store::Kind::Retry`: busy, a deadlock, a connection lost and made
/// again) is made again, where giving up would cost more than waiting: a
/// poll's items (its feed may drop them before its next turn) and the
/// record of a message sent (else sent again). A few seconds in all, well
/// inside a lease; then the error goes to the caller as before.
const RETRY_PAUSES: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(1_100),
    std::time::Duration::from_secs(3),
];

/// Makes `call` again after each of `RETRY_PAUSES` while it fails for a
/// passing reason, on a blocking thread: for reads, which are always safe
/// to make again.
fn retrying<T>(mut call: impl FnMut() -> store::Result<T>) -> store::Result<T> {
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        match call() {
            Err(e) if e.is_retry() => match pauses.next() {
                Some(pause) => std::thread::sleep(*pause),
                None => return Err(e),
            },
            done => return done,
        }
    }
}

/// What every unit of work needs.
///
/// The database, four ways, each for one use: polls are recorded through
/// `writer` (group commit on its own thread); reads that must not wait for
/// a commit go through `with_reader` (a second connection, WAL); feeds are
/// claimed and given back through `with_claims` (a third); every other
/// write — delivery outcomes, leases, digests, health, pruning — through
/// `with_store`, in short transactions on the writer's connection. Nothing
/// else opens the database while the daemon runs, but `/healthz`'s probe.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<Mutex<Store>>,
    /// A second connection for what pollers read (`known_items`): in WAL
    /// mode it reads while the writer writes, and on PostgreSQL neither
    /// waits for a group commit to end.
    pub reader: Arc<Mutex<Store>>,
    /// A third for claiming feeds and giving them back: claims are what
    /// starts every fetch, and would otherwise wait behind the pollers'
    /// reads (a round trip each on PostgreSQL).
    pub claims: Arc<Mutex<Store>>,
    pub fetcher: Fetcher,
    /// Articles' pages, for feeds with `full_text`.
    pub pages: Arc<crate::pages::Pages>,
    /// Where poll results go to be committed.
    pub writer: Writer,
    pub sender: Sender,
    /// Told when a poll records alerts, so that delivery need not wait for
    /// its next tick (nor for the rest of the poll cycle).
    pub alerts_recorded: Arc<Notify>,
    /// Where units of work that wait on the network read the time again;
    /// the loops read `now` from it too. Tests set a manual one.
    pub clock: Clock,
    /// Counters for `/metrics` and each loop's progress for `/healthz`.
    pub metrics: Arc<Metrics>,
    /// Until when this process holds the lease of once-per-tick work (the
    /// health review, pruning) among the daemons on its database; 0 when
    /// it does not.
    pub leading: Arc<AtomicI64>,
    /// The loops' failures on the database, told once a minute.
    pub outage: Arc<Outage>,
    /// How many times this process gave its feeds back. A claim reads it
    /// when it is asked for and again under the lock of `claims`, which a
    /// release holds too: one asked for before a release that ran after
    /// it (its poll abandoned) takes nothing, so no claim outlives the
    /// release that should have ended it.
    pub releases: Arc<AtomicU64>,
    /// Cancelled when the daemon is told to stop (`cli::run`): delivery
    /// then starts no new send and records those already made
    /// (`run::delivery`). The same token across reloads.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The daemon's parts on `store`, reading the time from `clock`.
    pub fn new(config: Config, store: Store, clock: Clock) -> Result<Shared> {
        let d = &config.daemon;
        let fetcher = Fetcher::new(&d.user_agent, d.timeout, d.max_body)?;
        let sender = Sender::new(&config)?;
        let reader = Arc::new(Mutex::new(Store::open_existing(&d.database)?));
        let mut claims = Store::open_existing(&d.database)?;
        // One holder for the process: feeds are claimed on one connection
        // and their polls recorded on the writer's.
        claims.act_for(store.owner());
        let claims = Arc::new(Mutex::new(claims));
        let store = Arc::new(Mutex::new(store));
        let pages = pages(&fetcher, &config, &reader, &store, &clock);
        let writer = Writer::start(Arc::clone(&store));
        Ok(Shared {
            config: Arc::new(config),
            store,
            reader,
            claims,
            fetcher,
            pages,
            writer,
            sender,
            alerts_recorded: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::new(clock.now())),
            clock,
            leading: Arc::new(AtomicI64::new(0)),
            outage: Arc::default(),
            releases: Arc::default(),
            shutdown: CancellationToken::new(),
        })
    }

    /// The same store and writer under a new config: new fetch settings,
    /// channels, rules and feeds; the state of every feed is in the store
    /// and stays (`sync_feeds` resets only feeds whose URL changed).
    pub fn reconfigured(&self, config: Config) -> Result<Shared> {
        let d = &config.daemon;
        let fetcher = Fetcher::new(&d.user_agent, d.timeout, d.max_body)?;
        Ok(Shared {
            pages: pages(&fetcher, &config, &self.reader, &self.store, &self.clock),
            fetcher,
            sender: Sender::new(&config)?,
            config: Arc::new(config),
            store: Arc::clone(&self.store),
            reader: Arc::clone(&self.reader),
            claims: Arc::clone(&self.claims),
            writer: self.writer.clone(),
            alerts_recorded: Arc::clone(&self.alerts_recorded),
            clock: self.clock.clone(),
            metrics: Arc::clone(&self.metrics),
            leading: Arc::clone(&self.leading),
            outage: Arc::clone(&self.outage),
            releases: Arc::clone(&self.releases),
            shutdown: self.shutdown.clone(),
        })
    }

    /// Runs `f` on the reading connection from a blocking thread (WAL: it
    /// reads while the writer writes).
    pub async fn with_reader<T, F>(&self, f: F) -> store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
    {
        crate::store::read_on(&self.reader, f).await
    }

    /// Runs `f` on the claims' connection from a blocking thread: claims
    /// of feeds wait for no group commit on the writer's connection, nor
    /// for the pollers' reads.
    pub async fn with_claims<T, F>(&self, f: F) -> store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> store::Result<T> + Send + 'static,
    {
        on(&self.claims, f).await
    }

    /// Runs `f` on the store from a blocking thread.
    pub async fn with_store<T, F>(&self, f: F) -> store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> store::Result<T> + Send + 'static,
    {
        on(&self.store, f).await
    }
}

/// The page fetcher of full text, keeping robots.txt through `reader`
/// (read) and `writer` (written).
fn pages(
    fetcher: &Fetcher,
    config: &Config,
    reader: &Arc<Mutex<Store>>,
    writer: &Arc<Mutex<Store>>,
    clock: &Clock,
) -> Arc<crate::pages::Pages> {
    let stores = crate::pages::Stores {
        reader: Arc::clone(reader),
        writer: Arc::clone(writer),
    };
    Arc::new(crate::pages::Pages::new(
        fetcher.clone(),
        &config.daemon,
        Some(stores),
        clock.clone(),
    ))
}

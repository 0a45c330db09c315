//! What the store's face speaks in: the rows it hands out and the outcomes
//! it reports, the same whatever the backend.

use serde::Serialize;

use crate::domain::health::{Assessment, Facts, Notice, Open};
use crate::domain::ids::{FeedId, StoryId};
use crate::domain::model::{Item, Outlet};
use crate::domain::triage::StoredHit;
use crate::domain::wire::{Evidence, Similarity};

/// A feed's fetch state, as the poller needs it.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    pub id: FeedId,
    pub name: String,
    pub url: String,
    pub redirect_url: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub gone: bool,
    pub retry_after_until: Option<i64>,
    pub next_poll: Option<i64>,
    pub consecutive_failures: u32,
    pub first_success: Option<i64>,
    /// The claim this process holds on the feed (`Backend::claim_feeds`),
    /// which its poll is recorded under; 0 when it holds none.
    pub lease: i64,
}

/// What a process asks for when it takes feeds to poll
/// (`Backend::claim_feeds`).
#[derive(Debug, Clone, Copy)]
pub struct FeedClaim<'a> {
    /// The feeds it may take: those of its own config not yet polled in
    /// this pass.
    pub candidates: &'a [FeedId],
    /// Feeds it finished fetching since its last claim, their polls still
    /// to be recorded: their hosts may be fetched from again.
    pub fetched: &'a [FeedId],
    /// Feeds whose polls ended since its last claim, recorded or failed:
    /// its claims on them end (a recorded poll ended its own).
    pub finished: &'a [FeedId],
    pub now: i64,
    /// Until when the feeds taken are held.
    pub until: i64,
    /// At most this many.
    pub limit: usize,
    /// Fetches from one host at once, by all processes together.
    pub per_host: usize,
    /// Whatever their schedule (`run --once`).
    pub any_time: bool,
}

/// A feed as a health review sees it.
#[derive(Debug, Clone)]
pub struct FeedHealth {
    pub feed_id: i64,
    pub name: String,
    /// The episode that has alerted and not ended.
    pub open: Option<Open>,
    pub facts: Facts,
}

/// A review's outcome for one feed, to record.
#[derive(Debug, Clone)]
pub struct HealthChange {
    pub feed_id: i64,
    /// The open episode the review started from: the change is recorded
    /// only if the feed still has it (another process may have recorded
    /// the same change meanwhile).
    pub was: Option<Open>,
    pub open: Option<Open>,
    pub notices: Vec<Notice>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    pub new_items: usize,
    pub changed_items: usize,
    pub alerts: usize,
    /// The channel of each alert queued (`veille_alerts_total`).
    pub alerted: Vec<String>,
}

/// Where a pruning run has got to: the stories up to `after` were looked
/// at. Start each run from `Cursor::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    pub(super) after: i64,
    pub done: bool,
}

/// What a batch (or a run, summed) deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub stories: u64,
    pub items: u64,
    pub alerts: u64,
    pub digests: u64,
    pub health_alerts: u64,
}

impl Pruned {
    pub fn add(&mut self, o: Pruned) {
        self.stories += o.stories;
        self.items += o.items;
        self.alerts += o.alerts;
        self.digests += o.digests;
        self.health_alerts += o.health_alerts;
    }

    pub fn is_empty(&self) -> bool {
        *self == Pruned::default()
    }
}

/// Kept items, and keys kept of pruned ones (`veille status`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Retained {
    pub items: i64,
    pub pruned_keys: i64,
}

/// An alert due for delivery, with what a message about it needs.
#[derive(Debug, Clone)]
pub struct DueAlert {
    pub id: String,
    pub channel: String,
    pub attempts: u32,
    pub created: i64,
    /// Start of the current round of tries (24 h of them at least).
    pub queued: i64,
    pub rules: Vec<String>,
    pub hits: Vec<StoredHit>,
    pub item: Item,
    /// Every feed that carried the story with its own link, first seen
    /// first.
    pub outlets: Vec<Outlet>,
}

/// What an attempt was about: one alert, or one digest and its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Alert,
    Digest,
    /// A feed-health alert (`Backend::record_health`).
    Health,
}

/// A frozen digest waiting to be (re)sent.
#[derive(Debug, Clone)]
pub struct DueDigest {
    pub id: String,
    pub channel: String,
    pub attempts: u32,
    pub queued: i64,
    pub stories: i64,
    /// The message, JSON, exactly as frozen.
    pub body: String,
}

/// A feed-health alert waiting to be (re)sent.
#[derive(Debug, Clone)]
pub struct DueHealth {
    pub id: String,
    pub channel: String,
    pub attempts: u32,
    pub queued: i64,
    pub notice: Notice,
}

/// Alerts taken for sending, and the rows found damaged on the way (now
/// failed, with the reason).
#[derive(Debug, Default)]
pub struct Claimed {
    pub alerts: Vec<DueAlert>,
    /// Feed-health alerts (only from `claim_health`, `digest_members`).
    pub health: Vec<DueHealth>,
    pub damaged: Vec<Damaged>,
}

/// A row that could not be read back, marked failed.
#[derive(Debug, Clone)]
pub struct Damaged {
    pub id: String,
    pub channel: String,
    pub reason: String,
}

/// What `veille retry` queued again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Failed alerts (and health alerts) pending again.
    pub alerts: usize,
    /// Failed digests pending again.
    pub digests: usize,
    /// Pending alerts and digests whose next attempt was brought to now.
    pub hastened: usize,
    /// The channel was paused and is not any more.
    pub resumed: bool,
}

/// What a daemon says of itself to the others on its database.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub config_digest: String,
}

/// A daemon on the database, as `veille status` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessStatus {
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub config_digest: String,
    pub started: i64,
    /// When it last said it lives.
    pub heartbeat: i64,
    /// Feeds it is polling.
    pub feeds_held: i64,
    /// It runs the once-per-tick work (the health review, pruning).
    pub leads: bool,
}

/// A feed's pages fetched for full text, since it was added: those that
/// gave the article's text, failed, or were skipped (robots.txt).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pages {
    pub ok: i64,
    pub failed: i64,
    pub skipped: i64,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedStatus {
    pub name: String,
    pub url: String,
    pub redirect_url: Option<String>,
    pub last_fetch: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub items: i64,
    pub consecutive_failures: u32,
    pub failing_since: Option<i64>,
    pub next_poll: Option<i64>,
    pub gone: bool,
    /// Items the last fetched document yielded (`None` before one).
    pub last_items: Option<u32>,
    /// Items that document held but veille could not read.
    pub unread_items: Option<u32>,
    /// Its items' pages fetched for full text (SPEC §7).
    pub pages: Pages,
    /// How the feed is doing (`domain::health`), judged by the caller.
    pub health: Option<Assessment>,
}

/// A channel paused as a whole: it cannot send anything (its server refused
/// the login, TLS or the connection failed). Its alerts wait, pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelFault {
    pub error: String,
    /// When the fault began.
    pub since: i64,
    /// Attempts that failed since.
    pub attempts: u32,
    /// The channel's next attempt.
    pub retry_at: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelStatus {
    pub name: String,
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    /// The latest error of a pending or failed alert.
    pub last_error: Option<String>,
    /// When the next pending alert or digest is tried (for a digest
    /// channel, alerts wait for the tick instead).
    pub next_attempt: Option<i64>,
    /// Alerts and digests that could not be read back (marked failed).
    pub damaged: Vec<DamagedRow>,
    /// Set while the channel is paused.
    pub paused: Option<ChannelFault>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DamagedRow {
    pub id: String,
    /// `alert`, `digest` or `health alert`.
    pub kind: &'static str,
    pub reason: String,
}

/// A story that gained copies from other feeds after its first message
/// (per story or digest) was sent: `after_alert` of its `feeds` came late.
#[derive(Debug, Clone, Serialize)]
pub struct LateCopies {
    pub title: String,
    pub link: Option<String>,
    pub feeds: i64,
    pub after_alert: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Items kept, and keys kept of pruned ones.
    pub retained: Retained,
    pub feeds: Vec<FeedStatus>,
    pub channels: Vec<ChannelStatus>,
    pub late_copies: Vec<LateCopies>,
    /// The daemons running on the database, newest heartbeat first.
    pub processes: Vec<ProcessStatus>,
}

/// A stored story an item was compared with.
#[derive(Debug, Clone)]
pub struct WireMatch {
    pub story_id: StoryId,
    /// The title of the copy that decided (or came closest).
    pub title: String,
    /// The comparison with that copy.
    pub similarity: Similarity,
    /// What the story's copies say, taken together (`domain::wire::judge`).
    pub evidence: Evidence,
    /// The item's feed already carries the story: a feed's own items never
    /// join each other's stories.
    pub same_feed: bool,
    /// Seconds between the item and the story's nearest copy.
    pub gap: i64,
}

impl WireMatch {
    pub fn joins(&self) -> bool {
        self.evidence > Evidence::None && !self.same_feed
    }
}

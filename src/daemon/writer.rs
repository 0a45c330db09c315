//! The one writer of poll results: pollers hand their `PollRecord`s to a
//! thread that commits whatever has queued up in one transaction (group
//! commit), each poll in its own savepoint. Under load this turns thousands
//! of small transactions, each with its file locking and WAL frame, into a
//! few dozen, without weakening anything: a poll is still recorded whole or
//! not at all, and its caller learns the outcome before going on.

use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::RETRY_PAUSES;
use crate::store::{self, PollRecord, RecordSummary, Store};

/// Polls committed together at most.
const MAX_GROUP: usize = 256;

/// Polls to write together, and where to send each one's outcome.
enum Job {
    One(PollRecord, oneshot::Sender<Result<RecordSummary>>),
    /// Written as one group whatever its size (`record_all`).
    All(Vec<PollRecord>, oneshot::Sender<Vec<Result<RecordSummary>>>),
}

/// A handle on the writer thread; clones share it. When the last one is
/// dropped, the queue closes, the thread writes what was queued and is
/// joined, so nothing handed to it is left unwritten at exit.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread; it ends when the last `Writer` is dropped,
    /// after writing what was queued, and that drop waits for it.
    pub fn start(store: Arc<Mutex<Store>>) -> Writer {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("veille-writer".into())
            .spawn(move || {
                while let Some(first) = jobs.blocking_recv() {
                    let mut group = match first {
                        Job::All(polls, reply) => {
                            let _ = reply.send(write(&store, polls));
                            continue;
                        }
                        Job::One(poll, reply) => vec![(poll, reply)],
                    };
                    let mut next = None;
                    while group.len() < MAX_GROUP && next.is_none() {
                        match jobs.try_recv() {
                            Ok(Job::One(poll, reply)) => group.push((poll, reply)),
                            Ok(all) => next = Some(all),
                            Err(_) => break,
                        }
                    }
                    write_group(&store, group);
                    if let Some(Job::All(polls, reply)) = next {
                        let _ = reply.send(write(&store, polls));
                    }
                }
            })
            .expect("spawn the writer thread");
        Writer {
            inner: Arc::new(Inner {
                queue: Some(queue),
                thread: Some(thread),
            }),
        }
    }

    fn queue(&self) -> &mpsc::UnboundedSender<Job> {
        self.inner.queue.as_ref().expect("only taken on drop")
    }

    /// Records one poll; returns once it is committed.
    pub async fn record(&self, poll: PollRecord) -> Result<RecordSummary> {
        let (reply, outcome) = oneshot::channel();
        self.queue()
            .send(Job::One(poll, reply))
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// Records polls together, in one group (see `Store::record_polls`);
    /// one outcome per poll, in order.
    pub async fn record_all(&self, polls: Vec<PollRecord>) -> Vec<Result<RecordSummary>> {
        let n = polls.len();
        let (reply, outcome) = oneshot::channel();
        if self.queue().send(Job::All(polls, reply)).is_err() {
            return (0..n).map(|_| Err(stopped())).collect();
        }
        outcome
            .await
            .unwrap_or_else(|_| (0..n).map(|_| Err(stopped())).collect())
    }
}

fn stopped() -> anyhow::Error {
    anyhow!("the database writer has stopped")
}

fn write_group(
    store: &Mutex<Store>,
    group: Vec<(PollRecord, oneshot::Sender<Result<RecordSummary>>)>,
) {
    let (polls, replies): (Vec<PollRecord>, Vec<_>) = group.into_iter().unzip();
    for (reply, result) in replies.into_iter().zip(write(store, polls)) {
        let _ = reply.send(result);
    }
}

/// One outcome per poll, in order: a transaction that fails as a whole
/// fails each. Polls whose write failed for a passing reason are written
/// again after each of `RETRY_PAUSES`: written again rather than fetched
/// again at the feed's next turn, a poll keeps the items its feed may have
/// dropped since.
fn write(store: &Mutex<Store>, polls: Vec<PollRecord>) -> Vec<Result<RecordSummary>> {
    let mut outcomes: Vec<Option<Result<RecordSummary>>> = polls.iter().map(|_| None).collect();
    // The polls still to write, and where each stands in `polls`.
    let (mut left, mut at): (Vec<PollRecord>, Vec<usize>) = (polls, (0..outcomes.len()).collect());
    let mut pauses = RETRY_PAUSES.iter();
    while !left.is_empty() {
        let results = store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record_polls(&left);
        let results: Vec<store::Result<RecordSummary>> = match results {
            Ok(results) => results,
            Err(e) => {
                let (kind, message) = (e.kind(), format!("{e:#}"));
                let failed =
                    || store::Error::new(kind, anyhow!("cannot record the poll: {message}"));
                left.iter().map(|_| Err(failed())).collect()
            }
        };
        let pause = pauses.next();
        let (mut again, mut again_at) = (Vec::new(), Vec::new());
        for ((poll, i), result) in left.into_iter().zip(at).zip(results) {
            match result {
                Err(e) if e.is_retry() && pause.is_some() => {
                    again.push(poll);
                    again_at.push(i);
                }
                done => outcomes[i] = Some(done.map_err(anyhow::Error::from)),
            }
        }
        (left, at) = (again, again_at);
        if let (Some(pause), false) = (pause, left.is_empty()) {
            debug!(
                polls = left.len(),
                pause_ms = pause.as_millis() as u64,
                "the write failed for a passing reason; writing again"
            );
            std::thread::sleep(*pause);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every poll has its outcome"))
        .collect()
}

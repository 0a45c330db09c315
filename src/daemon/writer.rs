//! The one writer of poll results: pollers hand their `PollRecord`s to a
//! thread that commits whatever has queued up in one transaction (group
//! commit), each poll in its own savepoint. Under load this turns thousands
//! of small transactions, each with its file locking and WAL frame, into a
//! few dozen, without weakening anything: a poll is still recorded whole or
//! not at all, and its caller learns the outcome before going on.

use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use tokio::sync::{mpsc, oneshot};

use crate::store::{PollRecord, RecordSummary, Store};

/// Polls committed together at most.
const MAX_GROUP: usize = 256;

type Job = (PollRecord, oneshot::Sender<Result<RecordSummary>>);

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer thread; it ends when the last `Writer` is dropped,
    /// after writing what was queued.
    pub fn start(store: Arc<Mutex<Store>>) -> Writer {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("veille-writer".into())
            .spawn(move || {
                while let Some(first) = jobs.blocking_recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match jobs.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    write_group(&store, group);
                }
            })
            .expect("spawn the writer thread");
        Writer { queue }
    }

    /// Records one poll; returns once it is committed.
    pub async fn record(&self, poll: PollRecord) -> Result<RecordSummary> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send((poll, reply))
            .map_err(|_| anyhow!("the database writer has stopped"))?;
        outcome
            .await
            .map_err(|_| anyhow!("the database writer has stopped"))?
    }
}

fn write_group(store: &Mutex<Store>, group: Vec<Job>) {
    let (polls, replies): (Vec<PollRecord>, Vec<_>) = group.into_iter().unzip();
    let results = store
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record_polls(&polls);
    match results {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let message = format!("{e:#}");
            for reply in replies {
                let _ = reply.send(Err(anyhow!("cannot record the poll: {message}")));
            }
        }
    }
}

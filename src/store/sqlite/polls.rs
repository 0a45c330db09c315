//! Recording polls (`store::polls`) on SQLite: one write transaction per
//! group, each poll in its own savepoint when the group fails.

use std::collections::HashMap;

use anyhow::Result;

use super::{KnownItem, RecordSummary, Sqlite, WireIndex};
use crate::domain::identity::Identity;
use crate::domain::ids::FeedId;
use crate::domain::poll::PollRecord;
use crate::store::polls::{self, forget_pending, write_polls};
use crate::store::stories;

impl Sqlite {
    /// What is stored of the feed's items among `ids`, by item key, to
    /// tell new and changed items from the ones already recorded; an item
    /// whose key or link remains of a pruned one is `KnownItem::Pruned`.
    pub fn known_items(
        &self,
        feed_id: FeedId,
        ids: &[Identity],
    ) -> Result<HashMap<String, KnownItem>> {
        polls::known_items(&self.conn, feed_id, ids)
    }

    /// Writes several polls in one transaction (group commit), their new
    /// items placed in publication order (SPEC §4: which story a copy
    /// joins does not depend on which outlet answered first). A poll is
    /// recorded whole or not at all, and one that fails does not undo the
    /// others: when the group fails, each poll is written again on its own,
    /// inside its own savepoint.
    pub fn record_polls(&mut self, polls: &[PollRecord]) -> Result<Vec<Result<RecordSummary>>> {
        let (wire, owner) = (&mut self.wire, self.owner.as_str());
        let recorded = record(&mut self.conn, owner, wire, polls);
        if recorded.is_err() {
            // Whatever failed (a savepoint's release too), the copies
            // indexed are not stored.
            forget_pending(wire);
        }
        recorded
    }
}

fn record(
    conn: &mut rusqlite::Connection,
    owner: &str,
    wire: &mut Option<WireIndex>,
    polls: &[PollRecord],
) -> Result<Vec<Result<RecordSummary>>> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Err(e) = stories::before_write(&*tx, wire, polls) {
        // Read whole again at the next write.
        *wire = None;
        return Err(e);
    }
    if polls.len() > 1 {
        let sp = tx.savepoint()?;
        if let Ok(summaries) = write_polls(&*sp, owner, wire, polls) {
            sp.commit()?;
            commit(tx, wire)?;
            return Ok(summaries.into_iter().map(Ok).collect());
        }
        forget_pending(wire);
    }
    let mut results = Vec::with_capacity(polls.len());
    for poll in polls {
        let sp = tx.savepoint()?;
        let result = write_polls(&*sp, owner, wire, std::slice::from_ref(poll));
        if result.is_ok() {
            sp.commit()?;
        } else {
            forget_pending(wire);
        }
        results.push(result.map(|mut s| s.remove(0)));
    }
    commit(tx, wire)?;
    Ok(results)
}

/// Commits a write, telling the wire index whether its copies are stored
/// or gone.
fn commit(tx: rusqlite::Transaction, wire: &mut Option<WireIndex>) -> Result<()> {
    match tx.commit() {
        Ok(()) => {
            polls::committed(wire);
            Ok(())
        }
        Err(e) => {
            forget_pending(wire);
            Err(e.into())
        }
    }
}

//! The configured feeds' rows (`store::feeds`) on SQLite.

use anyhow::Result;

use super::{FeedClaim, FeedState, Sqlite};
use crate::store::feeds;

impl Sqlite {
    /// Makes the feeds table match the config; returns every configured
    /// feed's state.
    pub fn sync_feeds(&mut self, wanted: &[(String, String)]) -> Result<Vec<FeedState>> {
        let known = feeds::known(&self.conn)?;
        let changes = feeds::changes(&known, wanted);
        if !changes.is_empty() {
            let tx = self.conn.transaction()?;
            feeds::write(&*tx, &changes)?;
            tx.commit()?;
        }
        feeds::states(&self.conn, Some(wanted))
    }

    pub fn feed_states(&self) -> Result<Vec<FeedState>> {
        feeds::states(&self.conn, None)
    }

    /// Takes due feeds (`store::feeds::claim`), under the write lock.
    pub fn claim_feeds(&mut self, claim: &FeedClaim) -> Result<Vec<FeedState>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let taken = feeds::claim(&*tx, &self.owner, claim)?;
        tx.commit()?;
        Ok(taken)
    }

    pub fn release_feeds(&mut self) -> Result<usize> {
        feeds::release(&self.conn, &self.owner)
    }
}

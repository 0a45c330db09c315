//! Feed health (`store::health`) on SQLite.

use anyhow::Result;
use rusqlite::TransactionBehavior;

use super::{FeedHealth, HealthChange, Sqlite};
use crate::store::health;

impl Sqlite {
    /// Every feed named in `names`, with its health facts.
    pub fn feed_health(&self, names: &[&str]) -> Result<Vec<FeedHealth>> {
        health::feed_health(&self.conn, names)
    }

    /// Records a review's `changes` in one transaction; returns the alerts
    /// made.
    pub fn record_health(
        &mut self,
        changes: &[HealthChange],
        channels: &[String],
        now: i64,
    ) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let made = health::record_health(&*tx, changes, channels, now)?;
        tx.commit()?;
        Ok(made)
    }
}

//! The configured feeds' rows (`store::feeds`) on SQLite.

use anyhow::Result;

use super::{FeedState, Sqlite};
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
}

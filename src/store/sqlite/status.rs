//! What `veille status` reports (`store::status`) on SQLite, read in one
//! snapshot; and the file's probe for `/healthz`.

use anyhow::Result;

use super::{Identity, Sqlite, Status};
use crate::store::{RecentStory, recent, status};

impl Sqlite {
    /// Opens the file at `path` afresh and reads from it (`/healthz`): a
    /// file removed, replaced or damaged under a running daemon fails here
    /// while the daemon's own connections may still answer from what they
    /// hold. `opened` is the file's identity when the daemon opened it.
    pub fn probe(path: &std::path::Path, opened: Option<Identity>) -> Result<()> {
        if opened.is_some() && Identity::of(path) != opened {
            anyhow::bail!(
                "the database file {} is not the one veille opened (removed, moved or replaced); restart veille",
                path.display()
            );
        }
        let answer = || -> Result<()> {
            Sqlite::open_existing(path)?
                .conn
                .query_row("SELECT COUNT(*) FROM feeds", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        };
        answer().map_err(|e| anyhow::anyhow!("the database does not answer: {e:#}"))
    }

    /// Alerts and feed-health alerts waiting to be sent, per channel
    /// (`veille_outbox_pending`).
    pub fn pending_by_channel(&self) -> Result<Vec<(String, i64)>> {
        status::pending_by_channel(&self.conn)
    }

    pub fn recent(&self, since: i64) -> Result<Vec<RecentStory>> {
        // One snapshot: the stories and their outlets agree.
        let tx = self.conn.unchecked_transaction()?;
        recent::recent(&*tx, since)
    }

    pub fn status(&self) -> Result<Status> {
        // One snapshot for the three readings.
        let tx = self.conn.unchecked_transaction()?;
        status::status(&*tx)
    }
}

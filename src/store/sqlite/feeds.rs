//! The configured feeds' rows: made to match the config, read back as the
//! poller needs them.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::params;

use super::{FeedState, Sqlite};

impl Sqlite {
    /// Makes the feeds table match the config: new names are added; a
    /// changed URL keeps the items and resets validators, redirect, 410 state
    /// and backoff (SPEC §4). Returns every configured feed's state.
    pub fn sync_feeds(&mut self, feeds: &[(String, String)]) -> Result<Vec<FeedState>> {
        let known: HashMap<String, String> = self
            .conn
            .prepare_cached("SELECT name, url FROM feeds")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // Only differences are written: with thousands of feeds, rewriting
        // every row each cycle cost more than polling them unchanged.
        let changes: Vec<&(String, String)> = feeds
            .iter()
            .filter(|(name, url)| known.get(name) != Some(url))
            .collect();
        if !changes.is_empty() {
            let tx = self.conn.transaction()?;
            for (name, url) in changes {
                tx.prepare_cached(
                    "INSERT INTO feeds (name, url) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![name, url])?;
                tx.prepare_cached(
                    "UPDATE feeds SET url = ?2, redirect_url = NULL, etag = NULL, last_modified = NULL,
                         gone = 0, retry_after_until = NULL, consecutive_failures = 0, next_poll = NULL
                     WHERE name = ?1 AND url <> ?2",
                )?
                .execute(params![name, url])?;
            }
            tx.commit()?;
        }
        let wanted: std::collections::HashSet<&str> =
            feeds.iter().map(|(name, _)| name.as_str()).collect();
        let mut all = self.feed_states()?;
        all.retain(|f| wanted.contains(f.name.as_str()));
        Ok(all)
    }

    pub fn feed_states(&self) -> Result<Vec<FeedState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, url, redirect_url, etag, last_modified, gone, retry_after_until,
                    next_poll, consecutive_failures, first_success FROM feeds ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FeedState {
                id: r.get(0)?,
                name: r.get(1)?,
                url: r.get(2)?,
                redirect_url: r.get(3)?,
                etag: r.get(4)?,
                last_modified: r.get(5)?,
                gone: r.get(6)?,
                retry_after_until: r.get(7)?,
                next_poll: r.get(8)?,
                consecutive_failures: r.get(9)?,
                first_success: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

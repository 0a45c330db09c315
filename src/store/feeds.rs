//! The configured feeds' rows: made to match the config, read back as the
//! poller needs them.

use std::collections::HashMap;

use anyhow::Result;

use super::FeedState;
use super::sql::{Db, args};

/// The feeds' names and URLs as stored.
pub(super) fn known(db: &impl Db) -> Result<HashMap<String, String>> {
    Ok(db
        .rows("SELECT name, url FROM feeds", &[], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .into_iter()
        .collect())
}

/// The configured feeds whose row is missing or has another URL: only
/// differences are written (with thousands of feeds, rewriting every row
/// each cycle cost more than polling them unchanged).
pub(super) fn changes<'a>(
    known: &HashMap<String, String>,
    feeds: &'a [(String, String)],
) -> Vec<&'a (String, String)> {
    feeds
        .iter()
        .filter(|(name, url)| known.get(name) != Some(url))
        .collect()
}

/// Adds the new feeds; a changed URL keeps the items and resets
/// validators, redirect, 410 state and backoff (SPEC §4).
pub(super) fn write(db: &impl Db, changes: &[&(String, String)]) -> Result<()> {
    for (name, url) in changes {
        db.exec(
            "INSERT INTO feeds (name, url) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            args![name, url],
        )?;
        db.exec(
            "UPDATE feeds SET url = ?2, redirect_url = NULL, etag = NULL, last_modified = NULL,
                 gone = 0, retry_after_until = NULL, consecutive_failures = 0, next_poll = NULL
             WHERE name = ?1 AND url <> ?2",
            args![name, url],
        )?;
    }
    Ok(())
}

/// Every feed's fetch state, by id; with `wanted`, only those feeds.
pub(super) fn states(db: &impl Db, wanted: Option<&[(String, String)]>) -> Result<Vec<FeedState>> {
    let mut all = db.rows(
        "SELECT id, name, url, redirect_url, etag, last_modified, gone, retry_after_until,
                next_poll, consecutive_failures, first_success FROM feeds ORDER BY id",
        &[],
        |r| {
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
        },
    )?;
    if let Some(feeds) = wanted {
        let wanted: std::collections::HashSet<&str> =
            feeds.iter().map(|(name, _)| name.as_str()).collect();
        all.retain(|f| wanted.contains(f.name.as_str()));
    }
    Ok(all)
}

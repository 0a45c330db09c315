//! Each site's robots.txt, kept for every process on the database (full
//! text, SPEC §7): a page's fetch asks it first, and it is fetched again
//! once it is a day old.

use anyhow::Result;

use super::sql::{Db, args};

/// A site's robots.txt as it was last fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotsTxt {
    /// `scheme://host:port`.
    pub origin: String,
    pub fetched_at: i64,
    /// The HTTP status; 0 when no answer came.
    pub status: u16,
    /// The file, for a 2xx.
    pub body: String,
}

pub(super) fn get(db: &impl Db, origin: &str) -> Result<Option<RobotsTxt>> {
    db.row(
        "SELECT origin, fetched_at, status, body FROM robots WHERE origin = ?1",
        args![origin],
        |r| {
            Ok(RobotsTxt {
                origin: r.get(0)?,
                fetched_at: r.get(1)?,
                status: r.get::<i64>(2)? as u16,
                body: r.get(3)?,
            })
        },
    )
}

/// Keeps `r`, and forgets the sites' files older than two days (each is
/// fetched again after one): the table holds the sites of the last day.
pub(super) fn put(db: &impl Db, r: &RobotsTxt) -> Result<()> {
    db.exec(
        "DELETE FROM robots WHERE fetched_at < ?1",
        args![r.fetched_at - 2 * 86_400],
    )?;
    db.exec(
        "INSERT INTO robots (origin, fetched_at, status, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (origin) DO UPDATE SET fetched_at = ?2, status = ?3, body = ?4",
        args![r.origin, r.fetched_at, r.status, r.body],
    )?;
    Ok(())
}

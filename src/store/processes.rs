//! The daemons sharing a database (SPEC §10): each says every few seconds
//! that it lives, and one of them holds the lease of once-per-tick work.

use anyhow::Result;

use super::sql::{Db, args};
use super::{ProcessInfo, ProcessStatus};

/// How long a process unheard of stays listed.
const FORGOTTEN_AFTER: i64 = 24 * 3600;

/// The lease's one row.
const LEAD: &str = "ticks";

/// Records that `owner` lives at `now`, and takes the lease of
/// once-per-tick work until `lead_until` when it is free or ran out, or
/// renews it when `owner` holds it; whether `owner` holds it now. The term
/// (holder, elected) changes only when the lease passes: a holder that
/// stalled past it and lost it cannot renew the new holder's.
pub(super) fn heartbeat(
    db: &impl Db,
    owner: &str,
    me: &ProcessInfo,
    now: i64,
    lead_until: i64,
) -> Result<bool> {
    db.exec(
        "INSERT INTO processes (id, host, pid, version, config_digest, started, heartbeat)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat,
             config_digest = excluded.config_digest",
        args![owner, me.host, me.pid, me.version, me.config_digest, now],
    )?;
    db.exec(
        "DELETE FROM processes WHERE heartbeat < ?1",
        args![now - FORGOTTEN_AFTER],
    )?;
    let holder: Option<String> = db.row(
        "INSERT INTO leader (name, holder, elected, until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET
             elected = CASE WHEN leader.holder = excluded.holder THEN leader.elected ELSE excluded.elected END,
             holder = excluded.holder, until = excluded.until
         WHERE leader.holder = excluded.holder OR leader.until <= ?3
         RETURNING holder",
        args![LEAD, owner, now, lead_until],
        |r| r.get(0),
    )?;
    Ok(holder.is_some())
}

/// A stopping process's row and lease go.
pub(super) fn retire(db: &impl Db, owner: &str) -> Result<()> {
    db.exec("DELETE FROM processes WHERE id = ?1", args![owner])?;
    db.exec(
        "DELETE FROM leader WHERE name = ?1 AND holder = ?2",
        args![LEAD, owner],
    )?;
    Ok(())
}

/// The processes listed, newest heartbeat first, with the feeds each holds
/// and whether it holds the lease.
pub(super) fn listed(db: &impl Db) -> Result<Vec<ProcessStatus>> {
    db.rows(
        "SELECT p.host, p.pid, p.version, p.config_digest, p.started, p.heartbeat,
                (SELECT COUNT(*) FROM feeds f WHERE f.lease_owner = p.id),
                (SELECT COUNT(*) FROM leader l WHERE l.holder = p.id AND l.until > p.heartbeat)
         FROM processes p ORDER BY p.heartbeat DESC, p.id",
        &[],
        |r| {
            Ok(ProcessStatus {
                host: r.get(0)?,
                pid: r.get(1)?,
                version: r.get(2)?,
                config_digest: r.get(3)?,
                started: r.get(4)?,
                heartbeat: r.get(5)?,
                feeds_held: r.get(6)?,
                leads: r.get::<i64>(7)? > 0,
            })
        },
    )
}

//! The configured feeds' rows: made to match the config, read back as the
//! poller needs them, and taken for a while by the process that polls them
//! (SPEC §10).

use std::collections::HashMap;

use anyhow::Result;

use super::sql::{Db, Row, ToValue, Value, args, insert_rows};
use super::{FeedClaim, FeedState};
use crate::domain::ids::FeedId;

/// The feeds' names, URLs and hosts as stored.
pub(super) fn known(db: &impl Db) -> Result<HashMap<String, (String, String)>> {
    Ok(db
        .rows("SELECT name, url, host FROM feeds", &[], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
        })?
        .into_iter()
        .collect())
}

/// The host a feed is fetched from, which `per_host` counts by; empty for
/// a file.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The configured feeds whose row is missing or has another URL (or no
/// host yet, as written before hosts were kept): only differences are
/// written (with thousands of feeds, rewriting every row each cycle cost
/// more than polling them unchanged).
pub(super) fn changes<'a>(
    known: &HashMap<String, (String, String)>,
    feeds: &'a [(String, String)],
) -> Vec<&'a (String, String)> {
    feeds
        .iter()
        .filter(|(name, url)| {
            known
                .get(name)
                .is_none_or(|(u, host)| u != url || *host != host_of(url))
        })
        .collect()
}

/// Adds the new feeds; a changed URL keeps the items and resets
/// validators, redirect, 410 state and backoff (SPEC §4).
pub(super) fn write(db: &impl Db, changes: &[&(String, String)]) -> Result<()> {
    // New feeds many a statement (a first run of thousands of feeds); the
    // others, changed, one by one.
    let hosts: Vec<String> = changes.iter().map(|(_, url)| host_of(url)).collect();
    let rows: Vec<_> = changes.iter().zip(&hosts).collect();
    let added: std::collections::HashSet<String> = insert_rows(
        db,
        (
            "INSERT INTO feeds (name, url, host)",
            "ON CONFLICT (name) DO NOTHING RETURNING name",
        ),
        3,
        &rows,
        |((name, url), host), args| args.extend([name.value(), url.value(), host.value()]),
        |r| r.get(0),
    )?
    .into_iter()
    .collect();
    for ((name, url), host) in rows {
        if added.contains(name) {
            continue;
        }
        db.exec(
            "UPDATE feeds SET url = ?2, redirect_url = NULL, etag = NULL, last_modified = NULL,
                 gone = 0, retry_after_until = NULL, consecutive_failures = 0, next_poll = NULL
             WHERE name = ?1 AND url <> ?2",
            args![name, url],
        )?;
        db.exec(
            "UPDATE feeds SET host = ?2 WHERE name = ?1 AND host <> ?2",
            args![name, host],
        )?;
    }
    Ok(())
}

/// A feed's state as `states` and `claim` read it.
const STATE: &str = "id, name, url, redirect_url, etag, last_modified, gone, retry_after_until,
                     next_poll, consecutive_failures, first_success";

fn state(r: &Row, lease: i64) -> Result<FeedState> {
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
        lease,
    })
}

/// Takes feeds for `owner` (SPEC §10): up to `limit` of the candidates
/// that are due, not gone, not waiting out a `Retry-After`, and held by no
/// process, most overdue first, hosts taking turns; never so many of one
/// host that more than `per_host` of its feeds would be fetched at once,
/// counting every process's fetches. Each feed taken counts one more claim
/// (its epoch), which its poll is recorded under. First, the fetch slots
/// of the feeds `owner` finished fetching go back, and its claims on the
/// feeds whose polls ended end.
///
/// The caller runs this in a transaction that no other claim runs beside
/// (SQLite's write lock; on PostgreSQL an advisory lock), so that the
/// hosts' counts it reads are still true when it writes; the conditions
/// are checked again on each row as it is updated, so that a row a poll
/// was recording meanwhile is left alone.
pub(super) fn claim(db: &impl Db, owner: &str, c: &FeedClaim) -> Result<Vec<FeedState>> {
    let [fetched, finished] = ending(db, [2, 2]);
    if !c.fetched.is_empty() {
        db.exec(&fetched, args![owner, ids(c.fetched)?])?;
    }
    if !c.finished.is_empty() {
        db.exec(&finished, args![owner, ids(c.finished)?])?;
    }
    if c.candidates.is_empty() || c.limit == 0 {
        return Ok(Vec::new());
    }
    let candidates = ids(c.candidates)?;
    db.rows(
        &taking(db, &format!("{STATE}, lease_epoch")),
        &taking_args(owner, c, &candidates),
        |r| state(r, r.get(11)?),
    )
}

/// The parameters of `taking` for claim `c`, its candidates listed as
/// `candidates`.
fn taking_args<'a>(owner: &'a str, c: &'a FeedClaim, candidates: &'a str) -> [Value<'a>; 7] {
    [
        owner.value(),
        c.until.value(),
        c.now.value(),
        candidates.value(),
        c.any_time.value(),
        c.per_host.value(),
        c.limit.value(),
    ]
}

/// A claim as one statement, its own transaction: a call of the function
/// `claim_function` made on this connection. PostgreSQL only (SQLite has
/// no functions in SQL), at READ COMMITTED, so that each statement of the
/// function sees what the claims before it committed.
pub(super) fn claim_in_one(db: &impl Db, owner: &str, c: &FeedClaim) -> Result<Vec<FeedState>> {
    db.rows(
        &format!(
            "SELECT {STATE}, lease_epoch FROM pg_temp.veille_claim(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        &[
            &taking_args(owner, c, &ids(c.candidates)?)[..],
            &[ids(c.fetched)?.value(), ids(c.finished)?.value()],
        ]
        .concat(),
        |r| state(r, r.get(11)?),
    )
}

/// `claim`'s statements as a function of this connection's (PostgreSQL,
/// `pg_temp`), after `opening`: one round trip where the transaction of
/// `claim` takes three. In PL/pgSQL, whose statements are parsed and
/// planned once per connection: planned at each call (a plain SQL
/// function, or forcing custom plans), a claim took 1.1 ms instead of
/// 0.7. The lists are read inside the statements (`in_int_list`), so no
/// plan is made for one list; a plan is made again when the table's
/// statistics change (autovacuum analyses `feeds` as claims update it).
pub(super) fn claim_function(db: &impl Db, opening: &str) -> String {
    let [fetched, finished] = ending(db, [8, 9]);
    let opening = opening.replacen("SELECT", "PERFORM", 1);
    format!(
        "CREATE OR REPLACE FUNCTION pg_temp.veille_claim(text, bigint, bigint, text, bigint,
             bigint, bigint, text, text) RETURNS SETOF feeds LANGUAGE plpgsql AS $claim$
         BEGIN
         {opening};
         {fetched};
         {finished};
         RETURN QUERY WITH taken AS ({}) SELECT * FROM taken;
         END
         $claim$",
        taking(db, "*")
    )
}

/// The statements that end `owner`'s (?1) fetches of the feeds listed in
/// parameter `lists[0]`, and its claims on those in `lists[1]`.
fn ending(db: &impl Db, [fetched, finished]: [usize; 2]) -> [String; 2] {
    [
        format!(
            "UPDATE feeds SET fetching = 0 WHERE lease_owner = ?1 AND {}",
            db.in_int_list("id", fetched)
        ),
        format!(
            "UPDATE feeds SET lease_owner = NULL, lease_until = NULL, fetching = 0
             WHERE lease_owner = ?1 AND {}",
            db.in_int_list("id", finished)
        ),
    ]
}

/// The statement that claims feeds, returning `returning` of each: for
/// owner ?1 until ?2 at ?3, of the candidates listed in ?4 (any time: ?5),
/// at most ?6 fetching per host and ?7 in all.
fn taking(db: &impl Db, returning: &str) -> String {
    let free = |f: &str| {
        format!(
            "{f}gone = 0 AND ({f}retry_after_until IS NULL OR {f}retry_after_until <= ?3)
             AND (?5 = 1 OR {f}next_poll IS NULL OR {f}next_poll <= ?3)
             AND ({f}lease_until IS NULL OR {f}lease_until <= ?3)"
        )
    };
    format!(
        "UPDATE feeds SET lease_owner = ?1, lease_until = ?2, lease_epoch = lease_epoch + 1, fetching = 1
         WHERE id IN (
             SELECT d.id FROM (
                 SELECT f.id, f.host, f.next_poll,
                        ROW_NUMBER() OVER (PARTITION BY f.host ORDER BY COALESCE(f.next_poll, 0), f.id) AS turn
                 FROM feeds f
                 WHERE {} AND {}
             ) d
             LEFT JOIN (SELECT host, COUNT(*) AS n FROM feeds
                        WHERE fetching = 1 AND lease_until > ?3 GROUP BY host) busy
               ON busy.host = d.host
             WHERE d.host = '' OR d.turn + COALESCE(busy.n, 0) <= ?6
             ORDER BY d.turn, COALESCE(d.next_poll, 0), d.id
             LIMIT ?7
         ) AND {}
         RETURNING {returning}",
        db.in_int_list("f.id", 4),
        free("f."),
        free(""),
    )
}

/// Ends every claim `owner` holds on feeds (a process stopping, or
/// reloading its config with polls in flight): the feeds are free for the
/// next claim, its own or another process's, rather than at the end of
/// their leases.
pub(super) fn release(db: &impl Db, owner: &str) -> Result<usize> {
    db.exec(
        "UPDATE feeds SET lease_owner = NULL, lease_until = NULL, fetching = 0 WHERE lease_owner = ?1",
        args![owner],
    )
}

fn ids(feeds: &[FeedId]) -> Result<String> {
    Ok(serde_json::to_string(
        &feeds.iter().map(|f| f.0).collect::<Vec<i64>>(),
    )?)
}

/// Every feed's fetch state, by id; with `wanted`, only those feeds.
pub(super) fn states(db: &impl Db, wanted: Option<&[(String, String)]>) -> Result<Vec<FeedState>> {
    let mut all = db.rows(
        &format!("SELECT {STATE} FROM feeds ORDER BY id"),
        &[],
        |r| state(r, 0),
    )?;
    if let Some(feeds) = wanted {
        let wanted: std::collections::HashSet<&str> =
            feeds.iter().map(|(name, _)| name.as_str()).collect();
        all.retain(|f| wanted.contains(f.name.as_str()));
    }
    Ok(all)
}

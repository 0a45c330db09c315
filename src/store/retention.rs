//! Retention (SPEC §4): stories whose every item was first seen before the
//! cutoff are deleted with their items, links and sent or failed alerts;
//! what remains of them is the hash of each dedup key (`pruned_items`,
//! `pruned_links`), which `known_items` reads as "known, pruned".
//!
//! Pruning goes in batches, each its own short transaction, so that the
//! writer of polls never waits long behind it; the caller loops over
//! `prune_batch` until it reports nothing left, then calls `reclaim`.

use std::collections::BTreeSet;

use anyhow::Result;
use xxhash_rust::xxh3::xxh3_64;

use super::sql::{Db, args};
use super::{Cursor, Pruned, Retained};
use crate::domain::ids::FeedId;

/// The hash a pruned item's (feed, key) is kept under.
pub(super) fn item_key_hash(feed_id: FeedId, item_key: &str) -> i64 {
    let mut bytes = Vec::with_capacity(item_key.len() + 10);
    bytes.push(b'i');
    bytes.extend_from_slice(&feed_id.0.to_le_bytes());
    bytes.push(0);
    bytes.extend_from_slice(item_key.as_bytes());
    xxh3_64(&bytes) as i64
}

/// The hash a pruned story's normalised link is kept under.
pub(super) fn link_hash(link: &str) -> i64 {
    let mut bytes = Vec::with_capacity(link.len() + 1);
    bytes.push(b'l');
    bytes.extend_from_slice(link.as_bytes());
    xxh3_64(&bytes) as i64
}

/// Prunes up to `stories` of the stories after the cursor whose items
/// were all first seen before `cutoff` and that no pending alert needs; on
/// the run's first batch, also the sent or failed health alerts made before
/// it. Stories are looked at in the order they were made, and the run ends
/// at the first one made after the cutoff: later ones have items too
/// recent. The caller makes it one transaction.
pub(super) fn prune_batch(
    tx: &impl Db,
    cursor: &mut Cursor,
    cutoff: i64,
    stories: usize,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    let mut digests = BTreeSet::new();
    if cursor.after == 0 {
        pruned.health_alerts = prune_health_alerts(tx, cutoff, &mut digests)?;
    }
    let candidates: Vec<(i64, i64, Option<String>)> = tx.rows(
        "SELECT id, first_seen, link FROM stories WHERE id > ?1 ORDER BY id LIMIT ?2",
        args![cursor.after, stories],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if candidates.len() < stories {
        cursor.done = true;
    }
    for (story_id, first_seen, link) in candidates {
        if first_seen >= cutoff {
            cursor.done = true;
            break;
        }
        cursor.after = story_id;
        if !prunable(tx, story_id, cutoff)? {
            continue;
        }
        pruned.items += prune_story(tx, story_id, link.as_deref(), &mut digests, &mut pruned)?;
        pruned.stories += 1;
    }
    pruned.digests = prune_digests(tx, &digests)?;
    Ok(pruned)
}

/// Kept items, and keys kept of pruned ones.
pub(super) fn retained(db: &impl Db) -> Result<Retained> {
    let count = |table: &str| -> Result<i64> {
        db.one(&format!("SELECT COUNT(*) FROM {table}"), &[], |r| r.get(0))
    };
    Ok(Retained {
        items: count("items")?,
        pruned_keys: count("pruned_items")?,
    })
}

/// Deletes the health alerts sent or failed before `cutoff`, noting the
/// digests they were in. Returns how many went.
fn prune_health_alerts(tx: &impl Db, cutoff: i64, digests: &mut BTreeSet<String>) -> Result<u64> {
    digests.extend(tx.rows(
        "SELECT digest_id FROM health_alerts
         WHERE state <> 'pending' AND created < ?1 AND digest_id IS NOT NULL",
        args![cutoff],
        |r| r.get::<String>(0),
    )?);
    Ok(tx.exec(
        "DELETE FROM health_alerts WHERE state <> 'pending' AND created < ?1",
        args![cutoff],
    )? as u64)
}

/// Deletes the sent or failed digests among `digests` that no alert is in
/// any more. Returns how many went.
fn prune_digests(tx: &impl Db, digests: &BTreeSet<String>) -> Result<u64> {
    let mut pruned = 0;
    for id in digests {
        pruned += tx.exec(
            "DELETE FROM digests WHERE id = ?1 AND state <> 'pending'
               AND NOT EXISTS (SELECT 1 FROM alerts WHERE digest_id = ?1)
               AND NOT EXISTS (SELECT 1 FROM health_alerts WHERE digest_id = ?1)",
            args![id],
        )? as u64;
    }
    Ok(pruned)
}

fn prunable(tx: &impl Db, story_id: i64, cutoff: i64) -> Result<bool> {
    tx.one(
        "SELECT NOT EXISTS (SELECT 1 FROM items WHERE story_id = ?1 AND first_seen >= ?2)
            AND NOT EXISTS (SELECT 1 FROM alerts WHERE story_id = ?1 AND state = 'pending')",
        args![story_id, cutoff],
        |r| r.get(0),
    )
}

/// Deletes one story with what refers to it, keeping its keys' hashes;
/// collects the digests its alerts were in. Returns its items' count.
fn prune_story(
    tx: &impl Db,
    story_id: i64,
    link: Option<&str>,
    digests: &mut BTreeSet<String>,
    pruned: &mut Pruned,
) -> Result<u64> {
    let keys: Vec<(i64, FeedId, String)> = tx.rows(
        "SELECT id, feed_id, item_key FROM items WHERE story_id = ?1",
        args![story_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (item_id, feed_id, key) in &keys {
        tx.exec(
            "INSERT INTO pruned_items (key) VALUES (?1) ON CONFLICT (key) DO NOTHING",
            args![item_key_hash(*feed_id, key)],
        )?;
        // The item's wire fingerprint goes with it, even when `wire_window`
        // is longer than `retention`: a later copy cannot join a story
        // that is gone (SPEC §4), and the table stays a retention's worth.
        tx.exec("DELETE FROM wire_prints WHERE item_id = ?1", args![item_id])?;
        tx.exec("DELETE FROM item_texts WHERE item_id = ?1", args![item_id])?;
    }
    let mut links: Vec<String> = tx.rows(
        "SELECT link FROM story_links WHERE story_id = ?1",
        args![story_id],
        |r| r.get(0),
    )?;
    links.extend(link.map(str::to_owned));
    for l in &links {
        tx.exec(
            "INSERT INTO pruned_links (key) VALUES (?1) ON CONFLICT (key) DO NOTHING",
            args![link_hash(l)],
        )?;
    }
    digests.extend(tx.rows(
        "SELECT digest_id FROM alerts WHERE story_id = ?1 AND digest_id IS NOT NULL",
        args![story_id],
        |r| r.get::<String>(0),
    )?);
    pruned.alerts += tx.exec("DELETE FROM alerts WHERE story_id = ?1", args![story_id])? as u64;
    tx.exec(
        "DELETE FROM story_links WHERE story_id = ?1",
        args![story_id],
    )?;
    let items = tx.exec("DELETE FROM items WHERE story_id = ?1", args![story_id])?;
    tx.exec("DELETE FROM stories WHERE id = ?1", args![story_id])?;
    Ok(items as u64)
}

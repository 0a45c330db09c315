//! Every item's text, kept for `keep_text` (SPEC §4) so that `veille test
//! RULE --history` can run a rule over last week's news: summary and
//! content (title and categories are in `items` already), as JSON,
//! deflated (news text shrinks to about a third), with whether the item
//! was recorded silently.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use super::sql::{Db, args};
use crate::domain::backtest::Kept;
use crate::domain::ids::{ItemId, StoryId};
use crate::domain::model::Item;

/// Summary and content as kept: the summary's length (4 bytes, little
/// endian), the summary, the content; deflated. (No JSON: a back-test
/// inflates every kept item, and parsing was a third of its time.)
pub fn encode(summary: &str, content: &str) -> Result<Vec<u8>> {
    let mut z = DeflateEncoder::new(
        Vec::with_capacity((summary.len() + content.len()) / 2 + 16),
        // Level 6 would save a few per cent more for twice the time.
        Compression::fast(),
    );
    z.write_all(&(summary.len() as u32).to_le_bytes())?;
    z.write_all(summary.as_bytes())?;
    z.write_all(content.as_bytes())?;
    Ok(z.finish()?)
}

/// (summary, content) from what `encode` made.
pub fn decode(bytes: &[u8]) -> Result<(String, String)> {
    let mut raw = Vec::with_capacity(bytes.len() * 3);
    DeflateDecoder::new(bytes)
        .read_to_end(&mut raw)
        .context("an item's kept text cannot be inflated")?;
    let damaged = || anyhow::anyhow!("an item's kept text is damaged");
    let (len, rest) = raw.split_at_checked(4).ok_or_else(damaged)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| damaged())?) as usize;
    let (summary, content) = rest.split_at_checked(len).ok_or_else(damaged)?;
    Ok((
        String::from_utf8(summary.to_vec()).map_err(|_| damaged())?,
        String::from_utf8(content.to_vec()).map_err(|_| damaged())?,
    ))
}

/// Fills in `kept`'s summary and content from `packed`.
pub fn unpack(kept: &mut Kept, packed: &[u8]) -> Result<()> {
    let (summary, content) = decode(packed)?;
    kept.item.summary = summary;
    kept.item.content = content;
    Ok(())
}

/// Keeps (or replaces, for a changed item) an item's text.
pub(super) fn keep(
    tx: &impl Db,
    item_id: ItemId,
    first_seen: i64,
    quiet: bool,
    item: &Item,
) -> Result<()> {
    let text = encode(&item.summary, &item.content)?;
    tx.exec(
        "INSERT INTO item_texts (item_id, first_seen, quiet, text) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (item_id) DO UPDATE SET quiet = excluded.quiet, text = excluded.text",
        args![item_id, first_seen, i64::from(quiet), text],
    )?;
    Ok(())
}

/// Drops up to `limit` texts of items first seen before `cutoff`; how many.
pub(super) fn prune(tx: &impl Db, cutoff: i64, limit: usize) -> Result<usize> {
    tx.exec(
        "DELETE FROM item_texts WHERE item_id IN
             (SELECT item_id FROM item_texts WHERE first_seen < ?1 ORDER BY first_seen LIMIT ?2)",
        args![cutoff, limit as i64],
    )
}

/// What `veille test --history` reads, in one snapshot.
#[derive(Debug, Default)]
pub struct History {
    /// The items first seen since the cutoff whose text is kept, in the
    /// order recorded, their summary and content still packed: in
    /// `packed`, one each (`unpack`), so that callers inflate them side by
    /// side.
    pub kept: Vec<Kept>,
    pub packed: Vec<Vec<u8>>,
    /// When the oldest kept text was first seen.
    pub oldest: Option<i64>,
    /// The stories alerted since the cutoff, with the rules of each alert.
    pub alerted: Vec<(StoryId, Vec<String>)>,
}

pub(super) fn history(db: &impl Db, since: i64) -> Result<History> {
    type Row = (
        String,
        i64,
        i64,
        i64,
        String,
        Option<String>,
        String,
        Option<i64>,
        Option<i64>,
        Vec<u8>,
    );
    let rows: Vec<Row> = db.rows(
        "SELECT f.name, i.story_id, t.first_seen, t.quiet, i.title, i.link, i.categories,
                i.published, i.updated, t.text
         FROM item_texts t JOIN items i ON i.id = t.item_id JOIN feeds f ON f.id = i.feed_id
         WHERE t.first_seen >= ?1 ORDER BY t.first_seen, t.item_id",
        args![since],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        },
    )?;
    let date = |t: Option<i64>| t.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let mut kept = Vec::with_capacity(rows.len());
    let mut packed = Vec::with_capacity(rows.len());
    for (feed, story, first_seen, quiet, title, link, categories, published, updated, text) in rows
    {
        packed.push(text);
        kept.push(Kept {
            feed,
            story: StoryId(story),
            first_seen,
            quiet: quiet != 0,
            item: Item {
                source_id: None,
                link,
                title,
                summary: String::new(),
                content: String::new(),
                categories: serde_json::from_str(&categories).unwrap_or_default(),
                published: date(published),
                updated: date(updated),
            },
        });
    }
    let oldest = db.one("SELECT MIN(first_seen) FROM item_texts", &[], |r| r.get(0))?;
    let alerted = db
        .rows(
            "SELECT story_id, rules FROM alerts WHERE created >= ?1",
            args![since],
            |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
        )?
        .into_iter()
        .map(|(story, rules)| {
            let rules = super::stored::decode(super::stored::RULES, &rules).unwrap_or_default();
            (StoryId(story), rules)
        })
        .collect();
    Ok(History {
        kept,
        packed,
        oldest,
        alerted,
    })
}

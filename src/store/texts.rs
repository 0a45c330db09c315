//! Every item's text, kept for `keep_text` (SPEC §4) so that `veille test
//! RULE --history` can run a rule over last week's news: each version's
//! title, summary, categories and content (`items` holds the latest
//! version only), deflated (news text shrinks to about a third), with
//! whether that version was recorded silently.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use super::sql::{Db, args};
use crate::domain::backtest::Kept;
use crate::domain::ids::{ItemId, StoryId};
use crate::domain::model::Item;

/// The separator of categories in a packed text (a unit separator, which
/// no feed's text keeps).
const UNIT: char = '\u{1f}';

/// An item version's text as kept: title, summary and categories each
/// after its length (4 bytes, little endian), then the content; deflated.
/// (No JSON: a back-test inflates every kept version, and parsing it was
/// a third of its time.)
pub fn encode(item: &Item) -> Result<Vec<u8>> {
    let categories = item.categories.join(&UNIT.to_string());
    let mut z = DeflateEncoder::new(
        Vec::with_capacity((item.summary.len() + item.content.len()) / 2 + 64),
        // zlib-rs's level 1 is a quicker, looser code (21.7 MiB a kept day
        // on the back-test bench against 17.0 with miniz_oxide's); level 2
        // keeps the size and most of the speed.
        Compression::new(2),
    );
    for field in [&item.title, &item.summary, &categories] {
        z.write_all(&(field.len() as u32).to_le_bytes())?;
        z.write_all(field.as_bytes())?;
    }
    z.write_all(item.content.as_bytes())?;
    Ok(z.finish()?)
}

/// Fills in `kept`'s title, summary, categories and content from what
/// `encode` made.
pub fn unpack(kept: &mut Kept, packed: &[u8]) -> Result<()> {
    let mut raw = Vec::with_capacity(packed.len() * 3);
    DeflateDecoder::new(packed)
        .read_to_end(&mut raw)
        .context("an item's kept text cannot be inflated")?;
    let damaged = || anyhow::anyhow!("an item's kept text is damaged");
    let mut rest = raw.as_slice();
    let mut field = || -> Result<String> {
        let (len, after) = rest.split_at_checked(4).ok_or_else(damaged)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| damaged())?) as usize;
        let (text, after) = after.split_at_checked(len).ok_or_else(damaged)?;
        rest = after;
        String::from_utf8(text.to_vec()).map_err(|_| damaged())
    };
    let (title, summary, categories) = (field()?, field()?, field()?);
    let item = &mut kept.item;
    item.title = title;
    item.summary = summary;
    item.categories = if categories.is_empty() {
        Vec::new()
    } else {
        categories.split(UNIT).map(str::to_owned).collect()
    };
    item.content = String::from_utf8(rest.to_vec()).map_err(|_| damaged())?;
    Ok(())
}

/// Keeps the text of an item's version seen at `seen` (a changed item
/// adds a version: live, it is matched again).
pub(super) fn keep(
    tx: &impl Db,
    item_id: ItemId,
    seen: i64,
    quiet: bool,
    item: &Item,
) -> Result<()> {
    let text = encode(item)?;
    tx.exec(
        "INSERT INTO item_texts (item_id, seen, quiet, text) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (item_id, seen) DO UPDATE SET quiet = excluded.quiet, text = excluded.text",
        args![item_id, seen, i64::from(quiet), text],
    )?;
    Ok(())
}

/// Drops up to `limit` texts of versions seen before `cutoff`; how many.
pub(super) fn prune(tx: &impl Db, cutoff: i64, limit: usize) -> Result<usize> {
    tx.exec(
        "DELETE FROM item_texts WHERE (item_id, seen) IN
             (SELECT item_id, seen FROM item_texts WHERE seen < ?1 ORDER BY seen LIMIT ?2)",
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
    /// The stories alerted since the cutoff: the rules of each alert, and
    /// when it was made.
    pub alerted: Vec<(StoryId, Vec<String>, i64)>,
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
        i64,
    );
    let rows: Vec<Row> = db.rows(
        "SELECT f.name, i.story_id, t.seen, t.quiet, i.title, i.link, i.categories,
                i.published, i.updated, t.text, s.first_seen
         FROM item_texts t JOIN items i ON i.id = t.item_id JOIN feeds f ON f.id = i.feed_id
              JOIN stories s ON s.id = i.story_id
         WHERE t.seen >= ?1 ORDER BY t.seen, t.item_id",
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
                r.get(10)?,
            ))
        },
    )?;
    let date = |t: Option<i64>| t.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let mut kept = Vec::with_capacity(rows.len());
    let mut packed = Vec::with_capacity(rows.len());
    for (feed, story, seen, quiet, title, link, categories, published, updated, text, began) in rows
    {
        packed.push(text);
        kept.push(Kept {
            feed,
            story: StoryId(story),
            story_began: began,
            seen,
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
    let oldest = db.one("SELECT MIN(seen) FROM item_texts", &[], |r| r.get(0))?;
    let alerted = db
        .rows(
            "SELECT story_id, rules, created FROM alerts WHERE created >= ?1",
            args![since],
            |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)),
        )?
        .into_iter()
        .map(|(story, rules, created)| {
            let rules = super::stored::decode(super::stored::RULES, &rules).unwrap_or_default();
            (StoryId(story), rules, created)
        })
        .collect();
    Ok(History {
        kept,
        packed,
        oldest,
        alerted,
    })
}

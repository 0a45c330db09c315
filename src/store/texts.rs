//! Every item's text, kept for `keep_text` (SPEC §4) so that `veille test
//! RULE --history` can run a rule over last week's news: each version's
//! title, summary, categories and content (`items` holds the latest
//! version only), compressed with zstd (news text shrinks to about half),
//! with whether that version was recorded silently.

use std::borrow::Cow;
use std::cell::RefCell;

use anyhow::{Result, anyhow};
use flate2::{Decompress, FlushDecompress, Status};

use super::sql::{Db, ToValue, args, insert_rows};
use crate::domain::backtest::Kept;
use crate::domain::ids::{ItemId, StoryId};
use crate::domain::model::Item;
use crate::domain::triage::ItemRecord;

/// The separator of categories in a packed text (a unit separator, which
/// no feed's text keeps).
const UNIT: char = '\u{1f}';

/// zstd's level: its quickest. On the back-test bench's French news, zstd
/// 1 keeps 51 % of the bytes and decodes 140,000 items in 0.58 s on one
/// core; deflate (zlib-rs) at level 2 kept 49 % and took 1.41 s, which was
/// most of a back-test's time; lz4 kept 70 %.
const LEVEL: i32 = 1;

/// What starts a zstd frame. Texts kept before zstd are raw deflate
/// streams, which cannot start so (a stored block's length and its
/// complement would disagree).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The most a kept text may unpack to (a damaged header must not ask for
/// more memory than any news item's text).
const MAX_TEXT: usize = 64 << 20;

thread_local! {
    /// One compression context a thread: a new one per item costs more
    /// than compressing a short text.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
}

/// An item version's text as kept: title, summary and categories each
/// after its length (4 bytes, little endian), then the content; one zstd
/// frame. (No JSON: a back-test unpacks every kept version, and parsing it
/// was a third of its time.)
pub fn encode(item: &Item) -> Result<Vec<u8>> {
    let categories = item.categories.join(&UNIT.to_string());
    let mut raw = Vec::with_capacity(
        12 + item.title.len() + item.summary.len() + categories.len() + item.content.len(),
    );
    for field in [&item.title, &item.summary, &categories] {
        raw.extend_from_slice(&(field.len() as u32).to_le_bytes());
        raw.extend_from_slice(field.as_bytes());
    }
    raw.extend_from_slice(item.content.as_bytes());
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let compressor = match &mut *c {
            Some(compressor) => compressor,
            none => none.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        // The buffer is made for the worst case (about the input's size);
        // news text packs to half of it, and a poll waiting to be written
        // holds it until then.
        let mut packed = compressor.compress(&raw)?;
        packed.shrink_to_fit();
        Ok(packed)
    })
}

/// Unpacks kept texts, one after another, with one decoder of each kind
/// and one buffer (a new decoder for each item costs more than decoding a
/// short text, and leaves the allocator pages of state to clear every
/// time).
pub struct Unpacker {
    zstd: zstd::bulk::Decompressor<'static>,
    inflate: Decompress,
    raw: Vec<u8>,
}

impl Default for Unpacker {
    fn default() -> Self {
        Unpacker {
            zstd: zstd::bulk::Decompressor::new().expect("a zstd context can be made"),
            inflate: Decompress::new(false),
            raw: Vec::new(),
        }
    }
}

impl Unpacker {
    /// Fills in `kept`'s title, summary, categories and content from what
    /// `encode` made.
    pub fn unpack(&mut self, kept: &mut Kept, packed: &[u8]) -> Result<()> {
        self.raw.clear();
        if packed.starts_with(&ZSTD_MAGIC) {
            self.decode(packed)?;
        } else {
            self.inflate(packed)?;
        }
        let damaged = || anyhow!("an item's kept text is damaged");
        let mut rest = self.raw.as_slice();
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

    fn decode(&mut self, packed: &[u8]) -> Result<()> {
        let cannot = || anyhow!("an item's kept text cannot be unpacked");
        let size = zstd::zstd_safe::get_frame_content_size(packed)
            .ok()
            .flatten()
            .filter(|&n| n as usize <= MAX_TEXT)
            .ok_or_else(cannot)?;
        self.raw.reserve(size as usize);
        self.zstd
            .decompress_to_buffer(packed, &mut self.raw)
            .map_err(|_| cannot())?;
        Ok(())
    }

    /// A text kept deflated, before zstd.
    fn inflate(&mut self, packed: &[u8]) -> Result<()> {
        let cannot = || anyhow!("an item's kept text cannot be unpacked");
        self.inflate.reset(false);
        self.raw.reserve(packed.len() * 4);
        loop {
            let read = self.inflate.total_in() as usize;
            let status = self
                .inflate
                .decompress_vec(&packed[read..], &mut self.raw, FlushDecompress::Finish)
                .map_err(|_| cannot())?;
            match status {
                Status::StreamEnd => return Ok(()),
                // Out of room: more, and on.
                _ if self.raw.len() == self.raw.capacity() && self.raw.len() < MAX_TEXT => {
                    self.raw.reserve(self.raw.len())
                }
                // Room left and nothing more to read: the text stops short.
                _ => return Err(cannot()),
            }
        }
    }
}

/// The texts of item versions to keep, gathered over a write and stored
/// at its end, many rows a statement (one statement an item was a round
/// trip an item to a database server).
#[derive(Default)]
pub(super) struct Keeping<'a> {
    /// (item, seen, quiet, packed text), in the order gathered; a text
    /// packed when its poll was decided is borrowed from it, not copied.
    rows: Vec<(ItemId, i64, bool, Cow<'a, [u8]>)>,
}

impl<'a> Keeping<'a> {
    /// Keeps the text of an item's version seen at `seen` (a changed item
    /// adds a version: live, it is matched again), as packed when its poll
    /// was decided.
    pub(super) fn keep(&mut self, item_id: ItemId, seen: i64, record: &'a ItemRecord) {
        let packed = match &record.kept {
            Some(packed) => Cow::Borrowed(packed.as_slice()),
            // A text that cannot be packed is not kept; the poll is
            // written all the same (a back-test is no reason to lose one).
            None => match encode(&record.item) {
                Ok(packed) => Cow::Owned(packed),
                Err(e) => {
                    tracing::warn!(item = item_id.0, error = %e, "cannot pack an item's text: not kept for back-tests");
                    return;
                }
            },
        };
        self.rows.push((item_id, seen, record.quiet, packed));
    }

    pub(super) fn store(&mut self, tx: &impl Db) -> Result<()> {
        // One statement may not touch a row twice: of one version gathered
        // twice, the last.
        let mut last = std::collections::HashMap::with_capacity(self.rows.len());
        for (n, (item, seen, _, _)) in self.rows.iter().enumerate() {
            last.insert((*item, *seen), n);
        }
        let rows: Vec<_> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(n, (item, seen, _, _))| last[&(*item, *seen)] == *n)
            .map(|(_, row)| row)
            .collect();
        insert_rows(
            tx,
            (
                "INSERT INTO item_texts (item_id, seen, quiet, text)",
                "ON CONFLICT (item_id, seen) DO UPDATE SET quiet = excluded.quiet, text = excluded.text",
            ),
            4,
            &rows,
            |(item, seen, quiet, text), args| {
                args.extend([item.value(), seen.value(), quiet.value(), text.value()]);
            },
            |_| Ok(()),
        )?;
        self.rows.clear();
        Ok(())
    }
}

/// Drops up to `limit` texts of versions seen before `cutoff`; how many.
pub(super) fn prune(tx: &impl Db, cutoff: i64, limit: usize) -> Result<usize> {
    tx.exec(
        "DELETE FROM item_texts WHERE (item_id, seen) IN
             (SELECT item_id, seen FROM item_texts WHERE seen < ?1 ORDER BY seen LIMIT ?2)",
        args![cutoff, limit as i64],
    )
}

/// The stories alerted since a cutoff: each alert's story, its rules, and
/// when it was made.
pub type Alerted = Vec<(StoryId, Vec<String>, i64)>;

/// Items read at a time for `veille test --history`, handed to the reader
/// while the next are read.
pub const PART: usize = 4096;

/// What `veille test --history` is given, in one snapshot, as it is read:
/// a back-test unpacks and matches one part while the next is read.
pub trait Reading: Send {
    /// First: when the oldest kept text was first seen, and the stories
    /// alerted since the cutoff.
    fn begin(&mut self, oldest: Option<i64>, alerted: Alerted) -> Result<()>;
    /// Then the items first seen since the cutoff whose text is kept, in
    /// the order recorded, `PART` at a time: their text is in `packed`,
    /// one each, still compressed (`Unpacker`), so that callers unpack them
    /// side by side.
    fn part(&mut self, kept: Vec<Kept>, packed: Vec<Vec<u8>>) -> Result<()>;
}

/// Everything a `Reading` is given, kept whole.
#[derive(Debug, Default)]
pub struct History {
    pub kept: Vec<Kept>,
    pub packed: Vec<Vec<u8>>,
    pub oldest: Option<i64>,
    pub alerted: Alerted,
}

impl Reading for History {
    fn begin(&mut self, oldest: Option<i64>, alerted: Alerted) -> Result<()> {
        (self.oldest, self.alerted) = (oldest, alerted);
        Ok(())
    }

    fn part(&mut self, kept: Vec<Kept>, packed: Vec<Vec<u8>>) -> Result<()> {
        self.kept.extend(kept);
        self.packed.extend(packed);
        Ok(())
    }
}

pub(super) fn history(db: &impl Db, since: i64, reading: &mut dyn Reading) -> Result<()> {
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
    reading.begin(oldest, alerted)?;

    let date = |t: Option<i64>| t.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let mut kept = Vec::with_capacity(PART);
    let mut packed = Vec::with_capacity(PART);
    // Title and categories are the version's own, in its packed text.
    db.rows(
        "SELECT f.name, i.story_id, t.seen, t.quiet, i.link, i.published, i.updated, t.text,
                s.first_seen
         FROM item_texts t JOIN items i ON i.id = t.item_id JOIN feeds f ON f.id = i.feed_id
              JOIN stories s ON s.id = i.story_id
         WHERE t.seen >= ?1 ORDER BY t.seen, t.item_id",
        args![since],
        |r| {
            packed.push(r.get::<Vec<u8>>(7)?);
            kept.push(Kept {
                feed: r.get(0)?,
                story: StoryId(r.get(1)?),
                story_began: r.get(8)?,
                seen: r.get(2)?,
                quiet: r.get::<i64>(3)? != 0,
                item: Item {
                    link: r.get(4)?,
                    published: date(r.get(5)?),
                    updated: date(r.get(6)?),
                    ..Item::default()
                },
            });
            if kept.len() == PART {
                let full = (
                    std::mem::replace(&mut kept, Vec::with_capacity(PART)),
                    std::mem::replace(&mut packed, Vec::with_capacity(PART)),
                );
                reading.part(full.0, full.1)?;
            }
            Ok(())
        },
    )?;
    if !kept.is_empty() {
        reading.part(kept, packed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> Kept {
        Kept {
            feed: "f".into(),
            story: StoryId(1),
            story_began: 0,
            seen: 0,
            quiet: false,
            item: Item::default(),
        }
    }

    #[test]
    fn texts_come_back_as_kept_one_after_another_and_damage_is_an_error() {
        let items: Vec<Item> = (0..3)
            .map(|n| Item {
                title: format!("Titre {n} : les puces"),
                summary: "Résumé court".into(),
                // Long enough to fill the buffer a few times over.
                content: "Le texte entier de l’article, qui se répète. ".repeat(200 * n + 1),
                categories: vec!["Économie".into(), "Asie".into()],
                ..Item::default()
            })
            .collect();
        let mut unpacker = Unpacker::default();
        for item in &items {
            let packed = encode(item).unwrap();
            let mut k = kept();
            unpacker.unpack(&mut k, &packed).unwrap();
            assert_eq!(
                (
                    &k.item.title,
                    &k.item.summary,
                    &k.item.content,
                    &k.item.categories
                ),
                (&item.title, &item.summary, &item.content, &item.categories)
            );
        }
        let packed = encode(&items[2]).unwrap();
        let mut k = kept();
        let cut = unpacker.unpack(&mut k, &packed[..packed.len() / 2]);
        assert!(cut.unwrap_err().to_string().contains("cannot be unpacked"));
        assert!(unpacker.unpack(&mut k, b"not compressed at all").is_err());
        // And the unpacker still works after an error.
        unpacker.unpack(&mut k, &packed).unwrap();
        assert_eq!(k.item.content, items[2].content);

        // A text kept deflated, before zstd, still reads; cut, it is an
        // error too.
        let mut raw = Vec::new();
        for field in [
            &items[1].title,
            &items[1].summary,
            &"Économie\u{1f}Asie".to_owned(),
        ] {
            raw.extend_from_slice(&(field.len() as u32).to_le_bytes());
            raw.extend_from_slice(field.as_bytes());
        }
        raw.extend_from_slice(items[1].content.as_bytes());
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(2));
        std::io::Write::write_all(&mut z, &raw).unwrap();
        let deflated = z.finish().unwrap();
        unpacker.unpack(&mut k, &deflated).unwrap();
        assert_eq!(
            (&k.item.title, &k.item.content, &k.item.categories),
            (&items[1].title, &items[1].content, &items[1].categories)
        );
        let cut = unpacker.unpack(&mut k, &deflated[..deflated.len() / 2]);
        assert!(cut.unwrap_err().to_string().contains("cannot be unpacked"));
    }
}

//! Which story a new item belongs to (`store::stories`), on SQLite.

use anyhow::Result;
use rusqlite::OptionalExtension;

use super::{Sqlite, WireMatch};
use crate::domain::ids::{FeedId, StoryId};
use crate::domain::model::Item;
use crate::domain::wire::{Fingerprint, wire_date};
use crate::store::stories::{fresh_index, story_of_link, wire_matches};

impl Sqlite {
    /// The stored stories `fp` would be compared with if its item were new
    /// in the feed named `feed` (for `veille test --feed`), best first.
    pub fn wire_matches(
        &mut self,
        fp: &Fingerprint,
        item: &Item,
        now: i64,
        window: i64,
        keep: i64,
        feed: &str,
    ) -> Result<Vec<WireMatch>> {
        let feed_id: FeedId = self
            .conn
            .query_row("SELECT id FROM feeds WHERE name = ?1", [feed], |r| r.get(0))
            .optional()?
            .unwrap_or(FeedId(-1));
        let index = fresh_index(&self.conn, &mut self.wire, now - keep, false)?;
        let candidates = index.candidates(fp.keys(), wire_date(item, now), window);
        wire_matches(&self.conn, candidates, &Default::default(), fp, feed_id)
    }

    /// The stored story a normalised link names, if any (link identity).
    pub fn story_of_link(&self, link: &str) -> Result<Option<StoryId>> {
        story_of_link(&self.conn, link)
    }

    /// Copies in the wire index and the bytes it holds (0, 0 before it is
    /// first needed), for the benchmark.
    pub fn wire_index_size(&self) -> (usize, usize) {
        self.wire
            .as_ref()
            .map_or((0, 0), |w| (w.copies(), w.heap_bytes()))
    }
}

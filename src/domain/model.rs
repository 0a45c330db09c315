//! Plain data shared by the pure core and the shell.

use chrono::{DateTime, Utc};

/// One feed entry, reduced to what veille reads: plain text fields (markup
/// already turned into text, see `domain::text`) and resolved links.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// The publisher's id (guid, Atom id); never one invented by the parser.
    pub source_id: Option<String>,
    /// Absolute link to the story, as published.
    pub link: Option<String>,
    pub title: String,
    pub summary: String,
    pub content: String,
    pub categories: Vec<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
}

impl Item {
    /// The date SPEC §4 reasons with: published, else updated.
    pub fn date(&self) -> Option<DateTime<Utc>> {
        self.published.or(self.updated)
    }
}

/// A feed that carried a story, with its own link to it (wire copies: each
/// outlet has one).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outlet {
    pub feed: String,
    pub link: Option<String>,
}

/// A parsed document: its title and its items, in document order.
#[derive(Debug, Clone, Default)]
pub struct ParsedFeed {
    pub title: String,
    pub items: Vec<Item>,
    /// Items beyond `parse::MAX_ITEMS` that were not considered.
    pub dropped_items: usize,
    /// `<item>` / `<entry>` elements (JSON Feed `items`) considered that
    /// yielded no item: the document holds more than veille could read.
    pub unread_items: usize,
}

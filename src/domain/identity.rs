//! Item and story identity (SPEC §4).
//!
//! Within a feed an item is known by its source id (RSS `guid`, Atom `id`,
//! JSON Feed `id`), else by its normalised link, else by a hash of its title
//! and date. feed-rs invents ids for items that have none; the parser is told
//! not to (`domain::parse`), so `source_id` is only ever the publisher's.
//!
//! A story is known by the normalised link. An item without a link is a story
//! of its own, keyed by its feed and item key. Collisions: two items of one
//! document with the same key are one item (the first wins, the store's unique
//! key enforces it); two items of one document whose links differ only by the
//! fragment (live blogs) keep the fragment in both keys.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::link::{self, NormalLink};
use super::model::Item;

/// The identity of one item of one feed, and of the story it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub item_key: String,
    /// `None` for an item without a link: its story is its own.
    pub story_link: Option<String>,
}

/// Identities for all items of one document, in order.
pub fn identify(items: &[Item]) -> Vec<Identity> {
    let links: Vec<Option<NormalLink>> = items
        .iter()
        .map(|i| i.link.as_deref().map(link::normalize))
        .collect();
    // Live blogs: links that share a base but differ by fragment keep it.
    let mut fragments: HashMap<&str, Vec<Option<&str>>> = HashMap::new();
    for l in links.iter().flatten() {
        fragments
            .entry(&l.base)
            .or_default()
            .push(l.fragment.as_deref());
    }
    let keeps_fragment = |l: &NormalLink| {
        fragments[l.base.as_str()]
            .iter()
            .any(|f| *f != l.fragment.as_deref())
    };
    items
        .iter()
        .zip(&links)
        .map(|(item, link)| {
            let story_link = link.as_ref().map(|l| {
                if keeps_fragment(l) {
                    l.with_fragment()
                } else {
                    l.base.clone()
                }
            });
            let item_key = match (&item.source_id, &story_link) {
                (Some(id), _) => format!("id:{id}"),
                (None, Some(link)) => format!("link:{link}"),
                (None, None) => format!("hash:{}", title_date_hash(item)),
            };
            Identity {
                item_key,
                story_link,
            }
        })
        .collect()
}

fn title_date_hash(item: &Item) -> String {
    let mut h = Sha256::new();
    h.update(item.title.as_bytes());
    h.update([0]);
    if let Some(date) = item.published.or(item.updated) {
        h.update(date.to_rfc3339().as_bytes());
    }
    hex(&h.finalize()[..16])
}

/// A digest of everything an item shows, to notice that it came back changed.
pub fn content_hash(item: &Item) -> String {
    let mut h = Sha256::new();
    for part in [&item.title, &item.summary, &item.content] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for c in &item.categories {
        h.update(c.as_bytes());
        h.update([1]);
    }
    h.update(item.link.as_deref().unwrap_or("").as_bytes());
    hex(&h.finalize()[..16])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn item(id: Option<&str>, link: Option<&str>, title: &str) -> Item {
        Item {
            source_id: id.map(str::to_owned),
            link: link.map(str::to_owned),
            title: title.to_owned(),
            ..Item::default()
        }
    }

    #[test]
    fn precedence_is_id_then_link_then_hash() {
        let items = [
            item(Some("urn:1"), Some("https://x.fr/a?utm_source=1"), "A"),
            item(None, Some("http://X.fr/b?xtor=RSS-1"), "B"),
            item(None, None, "C"),
        ];
        let ids = identify(&items);
        assert_eq!(ids[0].item_key, "id:urn:1");
        assert_eq!(ids[0].story_link.as_deref(), Some("https://x.fr/a"));
        assert_eq!(ids[1].item_key, "link:https://x.fr/b");
        assert!(ids[2].item_key.starts_with("hash:"));
        assert_eq!(ids[2].story_link, None);
    }

    #[test]
    fn the_hash_is_stable_and_depends_on_title_and_date() {
        let mut a = item(None, None, "Titre");
        let b = a.clone();
        assert_eq!(identify(&[a.clone()]), identify(&[b]));
        let before = identify(&[a.clone()])[0].item_key.clone();
        a.published = Some(Utc.with_ymd_and_hms(2025, 4, 26, 9, 0, 0).unwrap());
        assert_ne!(identify(&[a])[0].item_key, before);
    }

    #[test]
    fn live_blog_fragments_are_kept_only_when_they_tell_items_apart() {
        let items = [
            item(None, Some("https://x.fr/live#p1"), "1"),
            item(None, Some("https://x.fr/live#p2"), "2"),
            item(None, Some("https://x.fr/other#top"), "3"),
        ];
        let ids = identify(&items);
        assert_eq!(ids[0].story_link.as_deref(), Some("https://x.fr/live#p1"));
        assert_eq!(ids[1].story_link.as_deref(), Some("https://x.fr/live#p2"));
        assert_eq!(ids[2].story_link.as_deref(), Some("https://x.fr/other"));
    }
}

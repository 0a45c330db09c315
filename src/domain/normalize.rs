//! feed-rs entry → `Item`: plain-text fields, one chosen link, dates.

use feed_rs::model::{Entry, Feed, Text};

use super::model::{Item, ParsedFeed};
use super::text::{plain_text, untagged_text};

pub fn feed(feed: Feed) -> ParsedFeed {
    ParsedFeed {
        title: feed.title.as_ref().map(text).unwrap_or_default(),
        items: feed.entries.into_iter().map(item).collect(),
        dropped_items: 0,
        unread_items: 0,
    }
}

fn item(entry: Entry) -> Item {
    let link = entry
        .links
        .iter()
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or(entry.links.first())
        .map(|l| l.href.trim().to_owned())
        .filter(|l| !l.is_empty() && l != super::parse::NO_LINK);
    let content = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(plain_text)
        .unwrap_or_default();
    Item {
        source_id: Some(entry.id.trim().to_owned()).filter(|id| !id.is_empty()),
        link,
        title: entry.title.as_ref().map(text).unwrap_or_default(),
        summary: entry.summary.as_ref().map(text).unwrap_or_default(),
        content,
        categories: entry
            .categories
            .iter()
            .map(|c| plain_text(c.label.as_deref().unwrap_or(&c.term)))
            .filter(|c| !c.is_empty())
            .take(64)
            .collect(),
        published: entry.published,
        updated: entry.updated,
    }
}

/// Text constructs marked plain are only entity-decoded, so that a title
/// about `<script>` keeps the word; everything else is read as HTML.
fn text(t: &Text) -> String {
    if t.content_type.subty() == "plain" {
        untagged_text(&t.content)
    } else {
        plain_text(&t.content)
    }
}

//! What `veille recent` reads: the stories alerted since a time, newest
//! first, with the channels that have each and where it stands there.

use anyhow::Result;
use serde::Serialize;

use super::sql::{Db, args};
use super::stored;

/// One story alerted since the cutoff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentStory {
    /// When its first alert was made (Unix seconds).
    pub at: i64,
    /// The rules it matched, on any channel, in the order first met.
    pub rules: Vec<String>,
    pub title: String,
    pub link: Option<String>,
    /// The feeds that carry it, in the order they brought it.
    pub outlets: Vec<String>,
    pub channels: Vec<RecentChannel>,
}

/// A channel that has the story, and its alert's state there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentChannel {
    pub name: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
}

/// The stories with an alert made at or after `since`, newest first.
pub(super) fn recent(db: &impl Db, since: i64) -> Result<Vec<RecentStory>> {
    type Row = (i64, i64, String, String, String, String, Option<String>);
    let rows: Vec<Row> = db.rows(
        "SELECT a.story_id, a.created, a.channel, a.state, a.rules, i.title, COALESCE(i.link, s.link)
         FROM alerts a JOIN items i ON i.id = a.item_id JOIN stories s ON s.id = a.story_id
         WHERE a.story_id IN (SELECT story_id FROM alerts WHERE created >= ?1)
         ORDER BY a.story_id, a.created, a.channel",
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
            ))
        },
    )?;
    let outlets: Vec<(i64, String)> = db.rows(
        "SELECT i.story_id, f.name FROM items i JOIN feeds f ON f.id = i.feed_id
         WHERE i.story_id IN (SELECT story_id FROM alerts WHERE created >= ?1)
         ORDER BY i.story_id, i.first_seen, i.id",
        args![since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stories: Vec<(i64, RecentStory)> = Vec::new();
    for (story, created, channel, state, rules, title, link) in rows {
        if stories.last().is_none_or(|(id, _)| *id != story) {
            stories.push((
                story,
                RecentStory {
                    at: created,
                    rules: Vec::new(),
                    title,
                    link,
                    outlets: Vec::new(),
                    channels: Vec::new(),
                },
            ));
        }
        let s = &mut stories.last_mut().expect("pushed above").1;
        // A row that cannot be read back loses its rule names, not the story.
        let names: Vec<String> = stored::decode(stored::RULES, &rules).unwrap_or_default();
        for name in names {
            if !s.rules.contains(&name) {
                s.rules.push(name);
            }
        }
        s.channels.push(RecentChannel {
            name: channel,
            state,
        });
    }
    for (story, feed) in outlets {
        if let Ok(i) = stories.binary_search_by_key(&story, |(id, _)| *id) {
            let o = &mut stories[i].1.outlets;
            if !o.contains(&feed) {
                o.push(feed);
            }
        }
    }
    // Newest first; of stories alerted in the same second, the newer story.
    stories.sort_by_key(|(id, s)| std::cmp::Reverse((s.at, *id)));
    Ok(stories.into_iter().map(|(_, s)| s).collect())
}

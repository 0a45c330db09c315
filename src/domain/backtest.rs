//! A rule run over kept history (SPEC §1 `veille test --history`), through
//! the same steps a live poll takes: items recorded silently (a feed's
//! first poll, `max_age`) never alert, the rule's `feeds` scope applies,
//! and a story alerts once, at its first matching item, whatever copies
//! follow.

use std::collections::HashMap;

use super::ids::StoryId;
use super::model::Item;
use super::rules::RuleSet;

/// One kept version of an item, as recorded (a changed item has one a
/// change: live, it was matched again).
#[derive(Debug, Clone)]
pub struct Kept {
    pub feed: String,
    pub story: StoryId,
    /// When the story's first item was first seen.
    pub story_began: i64,
    /// When this version was seen.
    pub seen: i64,
    /// Recorded silently: it alerted nothing, whatever it matched.
    pub quiet: bool,
    pub item: Item,
}

/// A story the rule would have alerted.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub story: StoryId,
    /// When its first matching version was seen: when it would have
    /// alerted.
    pub at: i64,
    /// The feed of that item.
    pub feed: String,
    pub title: String,
    pub link: Option<String>,
    /// The matched terms as written, first match first.
    pub terms: Vec<String>,
}

/// The stories `rules` (one rule) would have alerted from `kept` (in the
/// order recorded), newest first. `tags` gives a feed's tags for the
/// rule's scope.
pub fn run<'a>(kept: &[Kept], rules: &RuleSet, tags: impl Fn(&str) -> &'a [String]) -> Vec<Found> {
    let mut found: HashMap<StoryId, Found> = HashMap::new();
    for k in kept {
        if k.quiet || found.contains_key(&k.story) {
            continue;
        }
        let feed_tags = tags(&k.feed);
        let Some(m) = rules
            .evaluate(&k.item, |r| r.scope.covers(&k.feed, feed_tags))
            .into_iter()
            .next()
        else {
            continue;
        };
        let mut terms: Vec<String> = Vec::new();
        for h in m.hits {
            if !terms.contains(&h.term) {
                terms.push(h.term);
            }
        }
        found.insert(
            k.story,
            Found {
                story: k.story,
                at: k.seen,
                feed: k.feed.clone(),
                title: k.item.title.clone(),
                link: k.item.link.clone(),
                terms,
            },
        );
    }
    let mut out: Vec<Found> = found.into_values().collect();
    out.sort_by_key(|f| std::cmp::Reverse((f.at, f.story)));
    out
}

/// The stories of consecutive parts of one history, each run alone (side
/// by side), as one run would have found them: a story found in several
/// parts keeps its earliest match.
pub fn merge(parts: Vec<Vec<Found>>) -> Vec<Found> {
    let mut found: HashMap<StoryId, Found> = HashMap::new();
    for part in parts {
        for f in part {
            match found.get(&f.story) {
                Some(seen) if seen.at <= f.at => {}
                _ => {
                    found.insert(f.story, f);
                }
            }
        }
    }
    let mut out: Vec<Found> = found.into_values().collect();
    out.sort_by_key(|f| std::cmp::Reverse((f.at, f.story)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{Accents, Field, Rule, Scope, Term};

    fn rules(any: &[&str], scope: Scope) -> RuleSet {
        RuleSet::new(vec![Rule {
            name: "r".into(),
            any: any
                .iter()
                .map(|t| Term::compile(t, Accents::Fold).unwrap())
                .collect(),
            all: vec![],
            none: vec![],
            query: None,
            fields: Field::ALL.to_vec(),
            scope,
            notify: vec!["m".into()],
        }])
    }

    fn kept(feed: &str, story: i64, at: i64, quiet: bool, title: &str) -> Kept {
        Kept {
            feed: feed.into(),
            story: StoryId(story),
            story_began: at,
            seen: at,
            quiet,
            item: Item {
                title: title.into(),
                ..Item::default()
            },
        }
    }

    #[test]
    fn a_story_alerts_once_at_its_first_match_and_quiet_items_never() {
        let history = [
            kept(
                "AFP",
                1,
                100,
                true,
                "Les puces (premier relevé, silencieux)",
            ),
            kept("Le Monde", 2, 200, false, "Rien à voir"),
            kept("Le Monde", 2, 300, false, "Les puces de Nvidia"),
            kept("AFP", 2, 400, false, "Les puces de Nvidia, copie"),
            kept("AFP", 3, 500, false, "Encore des puces"),
        ];
        let none: Vec<String> = Vec::new();
        let got = run(&history, &rules(&["puces"], Scope::default()), |_| &none);
        let stories: Vec<(i64, i64, &str)> = got
            .iter()
            .map(|f| (f.story.0, f.at, f.feed.as_str()))
            .collect();
        assert_eq!(stories, [(3, 500, "AFP"), (2, 300, "Le Monde")]);
        assert_eq!(got[1].terms, ["puces"]);
        // Split anywhere, run apart and merged: the same stories.
        for at in 0..=history.len() {
            let (a, b) = history.split_at(at);
            let rules = rules(&["puces"], Scope::default());
            let parts = vec![run(a, &rules, |_| &none), run(b, &rules, |_| &none)];
            assert_eq!(merge(parts), got, "split at {at}");
        }
    }
}

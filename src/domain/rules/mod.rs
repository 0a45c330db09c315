//! Rules: what a term matches (SPEC §3), which items a rule selects, and why.
//!
//! Rules and terms are compiled once, when the config loads, into a
//! `RuleSet`: one automaton per kind of normalised text holds every literal
//! term of every rule, so the cost of matching an item grows with its length
//! and its hits, not with the number of rules. Each match carries the rule,
//! the field, the term and the byte span in the field's plain text, so that
//! `veille test`, excerpts and highlights all show the same answer.

mod set;
mod term;

use std::borrow::Cow;
use std::ops::Range;

use globset::GlobMatcher;
use serde::Serialize;

pub use term::{Accents, Literal, Term, TermError, TermKind};

use super::model::Item;

/// The fields a rule may look at (SPEC §2 `fields`).
/// Ordered as `Field::ALL`: hits are reported in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title,
    Summary,
    Content,
    Categories,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Categories,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Categories => "categories",
        }
    }

    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Which feeds a rule looks at: name globs and `tag:` entries; empty = all.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub names: Vec<GlobMatcher>,
    pub tags: Vec<String>,
}

impl Scope {
    pub fn is_all(&self) -> bool {
        self.names.is_empty() && self.tags.is_empty()
    }

    pub fn covers(&self, feed: &str, tags: &[String]) -> bool {
        self.is_all()
            || self.names.iter().any(|g| g.is_match(feed))
            || self.tags.iter().any(|t| tags.contains(t))
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub any: Vec<Term>,
    pub all: Vec<Term>,
    pub none: Vec<Term>,
    pub fields: Vec<Field>,
    pub scope: Scope,
    pub notify: Vec<String>,
}

/// One term found in one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub field: Field,
    pub term: String,
    /// Byte range in the field's plain text (`field_text`).
    pub span: Range<usize>,
}

/// Categories are joined with a separator no phrase can cross.
const CATEGORY_SEPARATOR: &str = " | ";

/// The plain text of one field of an item, as rules see it and as hit
/// spans point into.
pub fn field_text(item: &Item, field: Field) -> Cow<'_, str> {
    match field {
        Field::Title => item.title.as_str().into(),
        Field::Summary => item.summary.as_str().into(),
        Field::Content => item.content.as_str().into(),
        Field::Categories => item.categories.join(CATEGORY_SEPARATOR).into(),
    }
}

/// A rule that matched an item, with the hits that made it match.
#[derive(Debug, Clone)]
pub struct RuleMatch<'a> {
    pub rule: &'a Rule,
    pub hits: Vec<Hit>,
}

pub use set::RuleSet;

#[cfg(test)]
mod tests;

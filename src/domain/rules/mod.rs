//! Rules: what a term matches (SPEC §3), which items a rule selects, and why.
//!
//! Rules and terms are compiled once, when the config loads, into a
//! `RuleSet`: one automaton per kind of normalised text holds every literal
//! term of every rule, so the cost of matching an item grows with its length
//! and its hits, not with the number of rules. Each match carries the rule,
//! the field, the term and the byte span in the field's plain text, so that
//! `veille test`, excerpts and highlights all show the same answer.

pub mod query;
mod set;
mod term;
mod why;

use std::borrow::Cow;
use std::ops::Range;

use globset::GlobMatcher;
use serde::Serialize;

pub use term::{Accents, Literal, Term, TermError, TermKind};
pub use why::why_not;

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
    /// A query instead of `any`/`all`/`none` (which are then empty).
    pub query: Option<query::Query>,
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

/// What makes a term unable to mean what it looks like (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lint {
    /// A control character: `"\b"` in a double-quoted TOML string is a
    /// backspace, not a word boundary.
    Control(char),
    /// `-jeu`: meant as an exclusion.
    LeadingMinus,
    /// `nucl*aire`: `*` is a prefix marker, at the end only.
    InnerStar,
    /// A double quote in a listed term (which is already a phrase).
    Quote,
    /// `OR`, `AND` or `NOT` between the words of a listed term.
    Operator(&'static str),
}

/// The first reason `term` cannot mean what it looks like, with its byte
/// offset in `term`; regexes are checked for control characters only.
/// Quotes and operator words are checked by `lint_listed`, for `any`,
/// `all` and `none` terms (in a query they are syntax).
pub fn lint(term: &str) -> Result<(), (usize, Lint)> {
    if let Some((at, c)) = term.char_indices().find(|(_, c)| c.is_control()) {
        return Err((at, Lint::Control(c)));
    }
    if is_regex(term) {
        return Ok(());
    }
    let t = term.trim();
    let lead = term.len() - term.trim_start().len();
    if t.starts_with('-') {
        return Err((lead, Lint::LeadingMinus));
    }
    if let Some(at) = t.trim_end_matches('*').find('*') {
        return Err((lead + at, Lint::InnerStar));
    }
    Ok(())
}

/// `lint`, and what a term of `any`, `all` or `none` cannot hold: a double
/// quote, or `OR` / `AND` / `NOT` between words.
pub fn lint_listed(term: &str) -> Result<(), (usize, Lint)> {
    lint(term)?;
    if is_regex(term) {
        return Ok(());
    }
    if let Some(at) = term.find('"') {
        return Err((at, Lint::Quote));
    }
    let words: Vec<(usize, &str)> = term
        .split(' ')
        .scan(0, |at, w| {
            let here = *at;
            *at += w.len() + 1;
            Some((here, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    if words.len() > 1 {
        for &(at, w) in &words {
            if let Some(op) = ["OR", "AND", "NOT"].into_iter().find(|op| *op == w) {
                return Err((at, Lint::Operator(op)));
            }
        }
    }
    Ok(())
}

/// A `/regex/` term, as `Term::compile` reads one.
fn is_regex(term: &str) -> bool {
    let t = term.trim();
    t.len() > 1 && t.starts_with('/') && t.ends_with('/')
}

/// The message for a control character in a term.
pub fn control_message(c: char) -> String {
    format!(
        "holds a control character (U+{:04X}): in a double-quoted TOML string \"\\b\" is a backspace; write regular expressions in single quotes, '/\\btarifs?\\b/'",
        c as u32
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod query_tests;

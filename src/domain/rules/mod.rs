//! Rules: what a term matches (SPEC §3), which items a rule selects, and why.
//!
//! Rules and terms are compiled once, when the config loads. An item's fields
//! are prepared once (`PreparedItem`), whatever the number of rules. Each
//! match carries the rule, the field, the term and the byte span in the
//! field's plain text, so that `veille test`, excerpts and highlights all show
//! the same answer.

mod term;

use std::ops::Range;

use globset::GlobMatcher;
use serde::Serialize;

pub use term::{Accents, Haystack, Term, TermError};

use super::model::Item;
use super::text::Folded;

/// The fields a rule may look at (SPEC §2 `fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    pub accents: Accents,
}

/// One term found in one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub field: Field,
    pub term: String,
    /// Byte range in the field's plain text (`PreparedItem::text`).
    pub span: Range<usize>,
}

/// An item's fields, prepared once for every rule.
#[derive(Debug, Clone)]
pub struct PreparedItem {
    fields: Vec<(Field, String, Folded)>,
}

/// Categories are joined with a separator no phrase can cross.
const CATEGORY_SEPARATOR: &str = " | ";

/// The plain text of one field of an item, as rules see it and as hit
/// spans point into.
pub fn field_text(item: &Item, field: Field) -> std::borrow::Cow<'_, str> {
    match field {
        Field::Title => item.title.as_str().into(),
        Field::Summary => item.summary.as_str().into(),
        Field::Content => item.content.as_str().into(),
        Field::Categories => item.categories.join(CATEGORY_SEPARATOR).into(),
    }
}

impl PreparedItem {
    pub fn new(item: &Item) -> PreparedItem {
        let fields = Field::ALL
            .into_iter()
            .map(|f| {
                let text = field_text(item, f).into_owned();
                let folded = Folded::new(&text);
                (f, text, folded)
            })
            .collect();
        PreparedItem { fields }
    }

    /// The plain text of a field, in which `Hit::span` points.
    pub fn text(&self, field: Field) -> &str {
        self.fields
            .iter()
            .find(|(f, ..)| *f == field)
            .map_or("", |(_, t, _)| t)
    }

    fn find(&self, term: &Term, field: Field) -> Option<Hit> {
        let (_, plain, folded) = self.fields.iter().find(|(f, ..)| *f == field)?;
        let span = match term.haystack() {
            Haystack::Plain => term.find(plain)?,
            Haystack::Folded => {
                let r = term.find(&folded.text)?;
                folded.original_span(r.start, r.end)
            }
        };
        Some(Hit {
            field,
            term: term.written.clone(),
            span,
        })
    }

    fn find_any_field(&self, term: &Term, fields: &[Field]) -> Option<Hit> {
        fields.iter().find_map(|f| self.find(term, *f))
    }

    /// The term's first hit in each of `fields` where it occurs.
    fn find_in_fields(&self, term: &Term, fields: &[Field]) -> Vec<Hit> {
        fields.iter().filter_map(|f| self.find(term, *f)).collect()
    }
}

impl Rule {
    /// The hits that make this rule match the item, or `None` when it does
    /// not: every `all` term, at least one `any` term (when there are any),
    /// and no `none` term, each in any of the rule's fields. A term found in
    /// several fields has a hit in each, so that every place is highlighted.
    pub fn evaluate(&self, item: &PreparedItem) -> Option<Vec<Hit>> {
        if self
            .none
            .iter()
            .any(|t| item.find_any_field(t, &self.fields).is_some())
        {
            return None;
        }
        let mut hits = Vec::new();
        for term in &self.all {
            let found = item.find_in_fields(term, &self.fields);
            if found.is_empty() {
                return None;
            }
            hits.extend(found);
        }
        let any: Vec<Hit> = self
            .any
            .iter()
            .flat_map(|t| item.find_in_fields(t, &self.fields))
            .collect();
        if !self.any.is_empty() && any.is_empty() {
            return None;
        }
        hits.extend(any);
        Some(hits)
    }
}

#[cfg(test)]
mod tests;

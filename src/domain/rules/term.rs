//! One term of a rule, compiled once (SPEC §3).
//!
//! A word, phrase or prefix term becomes a literal over normalised text
//! (`text::Normal`): spaces and hyphens, apostrophes, accents (unless
//! `accents = "exact"`) and, for an all-lower-case term, case are
//! normalised on both sides, so that every literal term of every rule can go
//! into one automaton (`RuleSet`). Word boundaries are checked around each
//! hit, since an automaton knows none. A `/regex/` term runs as written on
//! the plain text.

use regex::Regex;

use crate::domain::text::{Normal, is_word_char, normalize, normalize_into, one_line};

/// Whether accents are ignored (the default) or compared as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accents {
    Fold,
    Exact,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TermError {
    #[error("empty term")]
    Empty,
    #[error("a term needs at least one letter or digit before `*`")]
    LoneStar,
    #[error("invalid regular expression: {0}")]
    Regex(String),
}

#[derive(Debug, Clone)]
pub struct Term {
    /// As written in the config, shown to users.
    pub written: String,
    pub kind: TermKind,
}

#[derive(Debug, Clone)]
pub enum TermKind {
    Literal(Literal),
    Regex(Regex),
}

/// A normalised literal and where it may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// Searched for in text normalised lower-cased (with accents folded when
    /// `fold`): case-sensitive terms share the automaton and are checked
    /// against `cased` on each hit.
    pub pattern: String,
    pub fold: bool,
    /// For a term with a capital: the term normalised without lower-casing,
    /// which the hit's original text must equal, or equal written all in
    /// capitals (`shouted`: `Pékin` in `PÉKIN (AFP)`, SPEC §3.2).
    pub cased: Option<String>,
    pub shouted: Option<String>,
    /// The hit must not follow a word character (the term starts with one).
    pub bound_start: bool,
    /// The hit must not precede a word character (the term ends with one and
    /// is not a prefix).
    pub bound_end: bool,
    /// A `prefix*` term: its hit extends to the end of the word.
    pub prefix: bool,
}

impl Literal {
    /// Where a hit ending at `end` really ends: the end of the word for a
    /// prefix term.
    pub fn hit_end(&self, text: &str, end: usize) -> usize {
        if !self.prefix {
            return end;
        }
        end + text[end..]
            .find(|c: char| !is_word_char(c))
            .unwrap_or(text.len() - end)
    }

    /// Whether the original text of a hit has the term's case, or is the
    /// term written all in capitals (always true for an all-lower-case
    /// term). `scratch` is a reusable buffer.
    pub fn case_matches(&self, original: &str, scratch: &mut String) -> bool {
        match &self.cased {
            None => true,
            Some(cased) => {
                normalize_into(
                    original,
                    Normal {
                        fold: self.fold,
                        lower: false,
                    },
                    scratch,
                    None,
                );
                scratch == cased || self.shouted.as_deref() == Some(scratch.as_str())
            }
        }
    }

    /// Whether a hit at `start..end` of `text` sits on word boundaries.
    pub fn on_boundaries(&self, text: &str, start: usize, end: usize) -> bool {
        let before_ok =
            !self.bound_start || !text[..start].chars().next_back().is_some_and(is_word_char);
        let after_ok = !self.bound_end || !text[end..].chars().next().is_some_and(is_word_char);
        before_ok && after_ok
    }
}

impl Term {
    pub fn compile(written: &str, accents: Accents) -> Result<Term, TermError> {
        let trimmed = written.trim();
        if trimmed.is_empty() {
            return Err(TermError::Empty);
        }
        if let Some(body) = trimmed.strip_prefix('/').and_then(|r| r.strip_suffix('/'))
            && !body.is_empty()
        {
            let regex = Regex::new(body).map_err(|e| TermError::Regex(one_line(&e.to_string())))?;
            return Ok(Term {
                written: trimmed.to_owned(),
                kind: TermKind::Regex(regex),
            });
        }
        let (body, prefix) = match trimmed.strip_suffix('*') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        if !body.chars().any(is_word_char) {
            return Err(if prefix {
                TermError::LoneStar
            } else {
                TermError::Empty
            });
        }
        let fold = accents == Accents::Fold;
        let pattern = normalize(body, Normal { fold, lower: true });
        let cased = body
            .chars()
            .any(char::is_uppercase)
            .then(|| normalize(body, Normal { fold, lower: false }));
        let shouted = cased
            .as_ref()
            .map(|c| c.to_uppercase())
            .filter(|upper| Some(upper) != cased.as_ref());
        let literal = Literal {
            bound_start: pattern.chars().next().is_some_and(is_word_char),
            bound_end: !prefix && pattern.chars().last().is_some_and(is_word_char),
            prefix,
            pattern,
            cased,
            shouted,
            fold,
        };
        Ok(Term {
            written: trimmed.to_owned(),
            kind: TermKind::Literal(literal),
        })
    }
}

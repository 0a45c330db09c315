//! One term of a rule, compiled once (SPEC §3).
//!
//! A word or phrase term becomes a regex over folded (or, with
//! `accents = "exact"`, NFC) text; word boundaries are checked by hand around
//! each hit, because regex's `\b` counts `_` as a word character and SPEC §3
//! counts only letters and digits.

use regex::{Regex, RegexBuilder};
use unicode_normalization::UnicodeNormalization;

use crate::domain::text::{fold, is_word_char};

/// Whether accents are ignored (the default) or compared as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accents {
    Fold,
    Exact,
}

/// Which text a term runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Haystack {
    /// NFC plain text, as published.
    Plain,
    /// Accent-folded plain text.
    Folded,
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
    regex: Regex,
    haystack: Haystack,
    /// Check word boundaries before / after a hit (not for regexes, not after
    /// a prefix, not at an edge that is itself punctuation, like `C++`).
    bound_start: bool,
    bound_end: bool,
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
                written: written.to_owned(),
                regex,
                haystack: Haystack::Plain,
                bound_start: false,
                bound_end: false,
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
        let case_sensitive = body.chars().any(char::is_uppercase);
        let (text, haystack) = match accents {
            Accents::Fold => (fold(body), Haystack::Folded),
            Accents::Exact => (body.nfc().collect(), Haystack::Plain),
        };
        let regex = RegexBuilder::new(&pattern(&text))
            .case_insensitive(!case_sensitive)
            .build()
            .map_err(|e| TermError::Regex(one_line(&e.to_string())))?;
        Ok(Term {
            written: written.to_owned(),
            regex,
            haystack,
            bound_start: text.chars().next().is_some_and(is_word_char),
            bound_end: !prefix && text.chars().last().is_some_and(is_word_char),
        })
    }

    pub fn haystack(&self) -> Haystack {
        self.haystack
    }

    /// The first hit in `text` that sits on word boundaries, as a byte range.
    pub fn find(&self, text: &str) -> Option<std::ops::Range<usize>> {
        let mut from = 0;
        while from <= text.len() {
            let m = self.regex.find_at(text, from)?;
            if self.on_boundaries(text, m.start(), m.end()) {
                return Some(m.range());
            }
            // Try again one character further: hits may overlap.
            from = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
        }
        None
    }

    fn on_boundaries(&self, text: &str, start: usize, end: usize) -> bool {
        let before_ok =
            !self.bound_start || !text[..start].chars().next_back().is_some_and(is_word_char);
        let after_ok = !self.bound_end || !text[end..].chars().next().is_some_and(is_word_char);
        before_ok && after_ok
    }
}

/// Literal text with SPEC §3.4's flexible separators: a space or hyphen in a
/// term matches a run of white space or one hyphen; an apostrophe matches any
/// of `'` `’` `ʼ`.
fn pattern(term: &str) -> String {
    let mut out = String::new();
    let mut in_separator = false;
    for c in term.chars() {
        if c.is_whitespace() || is_hyphen(c) {
            if !in_separator {
                out.push_str(r"(?:\s+|[-\u{2010}\u{2011}])");
                in_separator = true;
            }
            continue;
        }
        in_separator = false;
        if is_apostrophe(c) {
            out.push_str("['\u{2019}\u{2bc}]");
        } else {
            out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        }
    }
    out
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}' | '\u{2011}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2bc}')
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

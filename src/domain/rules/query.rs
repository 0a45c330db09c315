//! Queries (SPEC §3 "Queries"): a boolean expression over terms, with field
//! scopes and `NEAR/n`, compiled once into terms (which join the rule set's
//! shared automata like `any` terms) and a tree judged on their hits.
//!
//! The parser is hand-written recursive descent: the grammar has five
//! productions, and this way every error carries the byte offset of the
//! character it is about, which the config maps to `PATH:LINE:COLUMN`.
//!
//! ```text
//! query   = or
//! or      = and { "OR" and }
//! and     = not { "AND" not }
//! not     = "NOT" not | near
//! near    = primary [ "NEAR/" n primary ]
//! primary = [ field ":" ] ( "(" or ")" | term )
//! term    = word | prefix* | "phrase" | /regex/
//! ```

use std::ops::Range;

use super::term::{Accents, Term};
use super::{Field, Lint, control_message, lint};
use crate::domain::text::is_word_char;

/// The largest `n` of `NEAR/n`.
pub const MAX_NEAR: usize = 50;

/// A query, compiled.
#[derive(Debug, Clone)]
pub struct Query {
    /// As written, white space collapsed (for `veille check`).
    pub text: String,
    /// Its terms, in the order written; `Node::Term` points into it.
    pub terms: Vec<QueryTerm>,
    pub root: Node,
}

#[derive(Debug, Clone)]
pub struct QueryTerm {
    /// `written` is the term without quotes or field scope.
    pub term: Term,
    /// A field scope (`title:`); `None`: the rule's `fields`.
    pub scope: Option<Field>,
    /// Under `NEAR`: every hit counts, not only the first in each field.
    pub near: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Term(usize),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// Only ever a child of an `And` with a positive sibling.
    Not(Box<Node>),
    /// Terms on each side (one, or several joined by `OR`).
    Near {
        n: usize,
        left: Vec<usize>,
        right: Vec<usize>,
    },
}

/// What went wrong, and where: a byte offset into the query text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub at: usize,
    pub message: String,
}

fn error<T>(at: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        at,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Or,
    And,
    Not,
    Near(usize),
    /// `title:` right before `(`.
    Scope(Field),
    Term {
        written: String,
        scope: Option<Field>,
    },
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let mut rest = text.char_indices().peekable();
    while let Some(&(at, c)) = rest.peek() {
        if c.is_whitespace() {
            rest.next();
            continue;
        }
        let tok = match c {
            '(' => {
                rest.next();
                Tok::Open
            }
            ')' => {
                rest.next();
                Tok::Close
            }
            '"' => {
                let (phrase, end) = phrase(text, at)?;
                skip_to(&mut rest, end);
                Tok::Term {
                    written: phrase.to_owned(),
                    scope: None,
                }
            }
            '/' => {
                let end = regex_end(text, at)?;
                skip_to(&mut rest, end);
                let written = &text[at..end];
                check(written, at)?;
                Tok::Term {
                    written: written.to_owned(),
                    scope: None,
                }
            }
            _ => {
                let end = text[at..].find(ends_word).map_or(text.len(), |i| at + i);
                let word = &text[at..end];
                skip_to(&mut rest, end);
                word_token(text, word, at, end, &mut rest)?
            }
        };
        out.push(Token { tok, at });
    }
    Ok(out)
}

fn skip_to(rest: &mut std::iter::Peekable<std::str::CharIndices>, end: usize) {
    while rest.peek().is_some_and(|&(i, _)| i < end) {
        rest.next();
    }
}

/// The phrase opened by the `"` at `at`, and where it ends.
fn phrase(text: &str, at: usize) -> Result<(&str, usize), QueryError> {
    let Some(len) = text[at + 1..].find('"') else {
        return error(at, "this phrase is not closed: add the closing `\"`");
    };
    let body = &text[at + 1..at + 1 + len];
    if !body.chars().any(is_word_char) {
        return error(
            at,
            "an empty phrase: write a word or more between the quotes",
        );
    }
    check(body, at + 1)?;
    Ok((body, at + len + 2))
}

/// Where the `/regex/` opened at `at` ends: at a `/` not escaped and
/// followed by a space, `)` or the end.
fn regex_end(text: &str, at: usize) -> Result<usize, QueryError> {
    let bytes = text.as_bytes();
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' if i > at + 1
                && text[i + 1..]
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_whitespace() || c == ')') =>
            {
                return Ok(i + 1);
            }
            _ => i += 1,
        }
    }
    error(
        at,
        "this regular expression is not closed: end it with `/` before a space, `)` or the end",
    )
}

fn word_token(
    text: &str,
    word: &str,
    at: usize,
    end: usize,
    rest: &mut std::iter::Peekable<std::str::CharIndices>,
) -> Result<Tok, QueryError> {
    match word {
        "OR" => return Ok(Tok::Or),
        "AND" => return Ok(Tok::And),
        "NOT" => return Ok(Tok::Not),
        "NEAR" => {
            return error(
                at,
                "write NEAR/n: at most n words between the two sides (1 to 50)",
            );
        }
        _ => {}
    }
    if let Some(n) = word.strip_prefix("NEAR/") {
        return match n.parse::<usize>() {
            Ok(n) if (1..=MAX_NEAR).contains(&n) => Ok(Tok::Near(n)),
            _ => error(
                at,
                format!("NEAR/{n}: n is a number of words from 1 to {MAX_NEAR}"),
            ),
        };
    }
    // A field scope: `title:word`, `title:"a phrase"`, `title:(…)`.
    if let Some((name, after)) = word.split_once(':')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphabetic())
    {
        return scoped_token(text, (name, after), at, end, rest);
    }
    check(word, at)?;
    Ok(Tok::Term {
        written: word.to_owned(),
        scope: None,
    })
}

/// What follows `name:` (`after` is the rest of the word): a term, a
/// regular expression, a phrase or a group, all in that field.
fn scoped_token(
    text: &str,
    (name, after): (&str, &str),
    at: usize,
    end: usize,
    rest: &mut std::iter::Peekable<std::str::CharIndices>,
) -> Result<Tok, QueryError> {
    let Some(field) = Field::parse(name) else {
        return error(
            at,
            format!(
                "unknown field `{name}:`; the scopes are title:, summary:, content: and categories: (quote a word holding `:`)"
            ),
        );
    };
    let term = |written: &str| Tok::Term {
        written: written.to_owned(),
        scope: Some(field),
    };
    if after.starts_with('/') {
        let start = at + name.len() + 1;
        let stop = regex_end(text, start)?;
        skip_to(rest, stop);
        check(&text[start..stop], start)?;
        return Ok(term(&text[start..stop]));
    }
    if !after.is_empty() {
        check(after, at + name.len() + 1)?;
        return Ok(term(after));
    }
    match text[end..].chars().next() {
        Some('(') => Ok(Tok::Scope(field)),
        Some('"') => {
            let (body, phrase_end) = phrase(text, end)?;
            skip_to(rest, phrase_end);
            Ok(term(body))
        }
        _ => error(
            end,
            format!("`{name}:` needs a term or a group right after it, without a space"),
        ),
    }
}

/// A term of the query that cannot mean what it looks like (`lint`).
fn check(term: &str, at: usize) -> Result<(), QueryError> {
    let Err((offset, what)) = lint(term) else {
        return Ok(());
    };
    let message = match what {
        Lint::Control(c) => control_message(c),
        Lint::LeadingMinus => format!(
            "`{term}`: a leading `-` excludes nothing; write AND NOT {}",
            term.trim_start_matches('-')
        ),
        Lint::InnerStar => format!("`{term}`: `*` ends a prefix term only (puce*)"),
        Lint::Quote | Lint::Operator(_) => format!("`{term}` cannot be a term"),
    };
    error(at + offset, message)
}

struct Parser<'a> {
    /// The query as written, to quote the user's words in errors.
    text: &'a str,
    tokens: &'a [Token],
    next: usize,
    /// Where the text ends (errors at the end point there).
    end: usize,
    accents: Accents,
    terms: Vec<QueryTerm>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.next).map(|t| &t.tok)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |t| t.at)
    }

    /// A plain word as written (not a phrase, a regex or a scoped term).
    fn word(&self, i: usize) -> Option<&str> {
        match &self.tokens.get(i)?.tok {
            Tok::Term {
                written,
                scope: None,
            } if !self.text[self.tokens[i].at..].starts_with(['"', '/']) => Some(written),
            _ => None,
        }
    }

    /// Two terms side by side (the next token follows a term): what was
    /// likely meant, in the user's own words.
    fn side_by_side(&self) -> String {
        const JOIN: &str =
            "two terms side by side: join them with AND or OR, or write a phrase in double quotes";
        let here = self.next;
        if let Some(op) = self.word(here).filter(|w| matches!(*w, "and" | "or")) {
            return format!(
                "two terms side by side: `{op}` in lower case is a word to find; to join terms write {} in capitals",
                op.to_uppercase()
            );
        }
        // The run of plain words around here: the phrase it may have been.
        let mut first = here;
        while first > 0 && self.word(first - 1).is_some() {
            first -= 1;
        }
        let mut last = here;
        while self.word(last + 1).is_some() {
            last += 1;
        }
        if first == here || self.word(here).is_none() {
            return format!("{JOIN} (\"droits de douane\")");
        }
        let words: Vec<&str> = (first..=last).filter_map(|i| self.word(i)).collect();
        // 'single quotes' around words: a phrase meant, not written.
        let opens = words.iter().rposition(|w| w.starts_with('\''));
        let closes = words.iter().position(|w| w.ends_with('\''));
        if let (Some(open), Some(close)) = (opens, closes)
            && open < close
        {
            let phrase = words[open..=close].join(" ");
            return format!(
                "single quotes do not make a phrase: write \"{}\" in double quotes",
                phrase.trim_matches('\'')
            );
        }
        format!("{JOIN} (\"{}\")", words.join(" "))
    }

    fn or(&mut self) -> Result<Node, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.next += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Node::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Node, QueryError> {
        let mut parts = vec![self.not()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.next += 1;
                    parts.push(self.not()?);
                }
                Some(Tok::Term { .. } | Tok::Scope(_) | Tok::Open) => {
                    return error(self.at(), self.side_by_side());
                }
                Some(Tok::Not) => {
                    return error(self.at(), "write AND NOT to exclude what follows");
                }
                _ => break,
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Node::And(parts)
        })
    }

    fn not(&mut self) -> Result<Node, QueryError> {
        if self.peek() == Some(&Tok::Not) {
            self.next += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.near()
    }

    fn near(&mut self) -> Result<Node, QueryError> {
        let left_at = self.at();
        let left = self.primary(None)?;
        let Some(&Tok::Near(n)) = self.peek() else {
            return Ok(left);
        };
        self.next += 1;
        let right_at = self.at();
        let right = self.primary(None)?;
        if let Some(Tok::Near(_)) = self.peek() {
            return error(
                self.at(),
                "one NEAR at a time: join two NEAR conditions with AND",
            );
        }
        let left = self.near_side(&left, left_at)?;
        let right = self.near_side(&right, right_at)?;
        Ok(Node::Near { n, left, right })
    }

    /// The terms of one side of `NEAR`: a term, or terms joined by `OR`.
    fn near_side(&mut self, node: &Node, at: usize) -> Result<Vec<usize>, QueryError> {
        let terms = match node {
            Node::Term(t) => vec![*t],
            Node::Or(parts) => parts
                .iter()
                .map(|p| match p {
                    Node::Term(t) => Some(*t),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if terms.is_empty() {
            return error(
                at,
                "each side of NEAR is a term or terms joined by OR, such as (puces OR semi-conducteur*)",
            );
        }
        for &t in &terms {
            self.terms[t].near = true;
        }
        Ok(terms)
    }

    fn primary(&mut self, scope: Option<Field>) -> Result<Node, QueryError> {
        let at = self.at();
        match self.peek().cloned() {
            Some(Tok::Scope(field)) => {
                self.next += 1;
                self.primary(Some(field))
            }
            Some(Tok::Open) => {
                self.next += 1;
                let first = self.terms.len();
                let inner = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return error(at, "this `(` is not closed: add `)`");
                }
                self.next += 1;
                // A scope before the group applies to the terms in it
                // that have none of their own.
                if let Some(field) = scope {
                    for t in &mut self.terms[first..] {
                        t.scope.get_or_insert(field);
                    }
                }
                Ok(inner)
            }
            Some(Tok::Term {
                written,
                scope: own,
            }) => {
                self.next += 1;
                let term = Term::compile(&written, self.accents).map_err(|e| QueryError {
                    at,
                    message: format!("term {written:?}: {e}"),
                })?;
                self.terms.push(QueryTerm {
                    term,
                    scope: own.or(scope),
                    near: false,
                });
                Ok(Node::Term(self.terms.len() - 1))
            }
            Some(Tok::Close) => error(at, "a `)` with no `(` before it, or an empty group"),
            Some(Tok::Near(_)) => error(at, "NEAR needs a term before it"),
            Some(Tok::Or | Tok::And) => error(at, "a term is expected here, before the operator"),
            Some(Tok::Not) => error(
                at,
                "NOT excludes: write it after AND, as in `puces AND NOT Bourse`",
            ),
            None => error(at, "the query ends where a term is expected"),
        }
    }
}

/// Parses `text`; terms are compiled with `accents`.
pub fn parse(text: &str, accents: Accents) -> Result<Query, QueryError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        text,
        tokens: &tokens,
        next: 0,
        end: text.trim_end().len(),
        accents,
        terms: Vec::new(),
    };
    if tokens.is_empty() {
        return error(0, "an empty query");
    }
    let root = p.or()?;
    if p.next < tokens.len() {
        let at = p.at();
        return match p.peek() {
            Some(Tok::Close) => error(at, "a `)` with no `(` before it"),
            _ => error(at, "unexpected here"),
        };
    }
    check_not(&root, &tokens, false)?;
    Ok(Query {
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        terms: p.terms,
        root,
    })
}

/// `NOT` only as a member of an `AND` that also looks for something.
fn check_not(node: &Node, tokens: &[Token], in_and: bool) -> Result<(), QueryError> {
    let not_at = || {
        tokens
            .iter()
            .find(|t| t.tok == Tok::Not)
            .map_or(0, |t| t.at)
    };
    match node {
        Node::Not(inner) => {
            if !in_and {
                return error(
                    not_at(),
                    "a query must be able to match something: NOT only excludes, as in `puces AND NOT Bourse`",
                );
            }
            check_not(inner, tokens, false)
        }
        Node::And(parts) => {
            if parts.iter().all(|p| matches!(p, Node::Not(_))) {
                return error(
                    not_at(),
                    "a query must be able to match something: NOT only excludes, as in `puces AND NOT Bourse`",
                );
            }
            parts.iter().try_for_each(|p| check_not(p, tokens, true))
        }
        Node::Or(parts) => parts.iter().try_for_each(|p| check_not(p, tokens, false)),
        Node::Term(_) | Node::Near { .. } => Ok(()),
    }
}

/// A hit of a query term: where, in which field.
pub type TermHit = (Field, Range<usize>);

/// Every hit of a query's terms, in one list sorted by term (one
/// allocation per rule judged, not one per term). Regex terms are searched
/// when the query first asks for them: most rules judged fail on their
/// literal terms, and a regex is the costly part.
pub struct Hits<'a> {
    list: &'a mut Vec<(usize, TermHit)>,
    /// Bit `t`: term `t` (below 128) has a hit, for `has` without a search.
    present: u128,
    /// Regex terms not searched yet.
    unsearched: Vec<usize>,
    search: &'a dyn Fn(usize) -> Vec<(usize, TermHit)>,
}

impl<'a> Hits<'a> {
    /// `list`: the literal hits, sorted by term; `regexes`: the regex
    /// terms, searched by `search` when needed.
    pub fn new(
        list: &'a mut Vec<(usize, TermHit)>,
        regexes: Vec<usize>,
        search: &'a dyn Fn(usize) -> Vec<(usize, TermHit)>,
    ) -> Hits<'a> {
        let present = list
            .iter()
            .filter(|h| h.0 < 128)
            .fold(0, |bits, h| bits | 1 << h.0);
        Hits {
            list,
            present,
            unsearched: regexes,
            search,
        }
    }

    /// Whether term `t` has a hit (searched already: `ready`).
    fn has(&self, t: usize) -> bool {
        if t < 128 {
            self.present & (1 << t) != 0
        } else {
            !self.of(t).is_empty()
        }
    }

    /// Searches term `t` if it is a regex not searched yet.
    fn ready(&mut self, t: usize) {
        if let Some(i) = self.unsearched.iter().position(|&u| u == t) {
            self.unsearched.swap_remove(i);
            let found = (self.search)(t);
            if t < 128 && !found.is_empty() {
                self.present |= 1 << t;
            }
            let at = self.list.partition_point(|h| h.0 < t);
            self.list.splice(at..at, found);
        }
    }

    /// The hits of term `t` (searched already: `ready`).
    fn of(&self, t: usize) -> &[(usize, TermHit)] {
        let lo = self.list.partition_point(|h| h.0 < t);
        let hi = lo + self.list[lo..].partition_point(|h| h.0 == t);
        &self.list[lo..hi]
    }
}

/// Word starts of each field's text, computed when a `NEAR` first needs them.
pub struct Words<'t> {
    texts: &'t [(Field, std::borrow::Cow<'t, str>)],
    starts: Vec<Option<Vec<usize>>>,
}

impl<'t> Words<'t> {
    pub fn new(texts: &'t [(Field, std::borrow::Cow<'t, str>)]) -> Words<'t> {
        Words {
            texts,
            starts: vec![None; texts.len()],
        }
    }

    /// How many words begin in `from..to` of `field`.
    fn between(&mut self, field: Field, from: usize, to: usize) -> usize {
        let Some(i) = self.texts.iter().position(|(f, _)| *f == field) else {
            return 0;
        };
        let text = &self.texts[i].1;
        let starts = self.starts[i].get_or_insert_with(|| {
            let mut out = Vec::new();
            let mut in_word = false;
            for (at, c) in text.char_indices() {
                let w = is_word_char(c);
                if w && !in_word {
                    out.push(at);
                }
                in_word = w;
            }
            out
        });
        let lo = starts.partition_point(|&s| s < from);
        let hi = starts.partition_point(|&s| s < to);
        // A second hit starting inside a word (a regex): that word is its
        // own, not one between.
        let inside = text[..to].chars().next_back().is_some_and(is_word_char)
            && text[to..].chars().next().is_some_and(is_word_char);
        hi.saturating_sub(lo).saturating_sub(usize::from(inside))
    }
}

/// Whether `node` matches, given each term's hits (in its fields only),
/// without gathering them: most rules judged fail, and this costs no
/// allocation.
pub fn holds(node: &Node, hits: &mut Hits, words: &mut Words) -> bool {
    match node {
        Node::Term(t) => {
            hits.ready(*t);
            hits.has(*t)
        }
        // What is looked for first, exclusions after: most rules fail on
        // the first, and an exclusion is often a regex.
        Node::And(parts) => {
            parts
                .iter()
                .filter(|p| !matches!(p, Node::Not(_)))
                .all(|p| holds(p, hits, words))
                && parts.iter().all(|p| match p {
                    Node::Not(inner) => !holds(inner, hits, words),
                    _ => true,
                })
        }
        Node::Or(parts) => parts.iter().any(|p| holds(p, hits, words)),
        Node::Not(inner) => !holds(inner, hits, words),
        Node::Near { n, left, right } => near_pair(*n, left, right, hits, words).is_some(),
    }
}

/// The first pair of hits, one of `left` and one of `right`, in one field
/// at two places with at most `n` words between them.
fn near_pair(
    n: usize,
    left: &[usize],
    right: &[usize],
    hits: &mut Hits,
    words: &mut Words,
) -> Option<[(usize, TermHit); 2]> {
    for &t in left.iter().chain(right) {
        hits.ready(t);
    }
    for &l in left {
        for (_, a) in hits.of(l) {
            for &r in right {
                for (_, b) in hits.of(r) {
                    if a.0 != b.0 || a.1.start < b.1.end && b.1.start < a.1.end {
                        continue;
                    }
                    let (first, second) = if a.1.start < b.1.start {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    if words.between(a.0, first.1.end, second.1.start) <= n {
                        return Some([(l, a.clone()), (r, b.clone())]);
                    }
                }
            }
        }
    }
    None
}

/// The hits that make `node` match, into `out`; `node` holds (`holds`).
/// `NOT` branches never give any; every branch of an `OR` that holds does.
pub fn gather(node: &Node, hits: &mut Hits, words: &mut Words, out: &mut Vec<(usize, TermHit)>) {
    match node {
        Node::Term(t) => out.extend_from_slice(hits.of(*t)),
        Node::And(parts) => parts
            .iter()
            .filter(|p| !matches!(p, Node::Not(_)))
            .for_each(|p| gather(p, hits, words, out)),
        Node::Or(parts) => {
            for p in parts {
                if holds(p, hits, words) {
                    gather(p, hits, words, out);
                }
            }
        }
        Node::Not(_) => {}
        Node::Near { n, left, right } => {
            out.extend(
                near_pair(*n, left, right, hits, words)
                    .into_iter()
                    .flatten(),
            );
        }
    }
}

/// Whether `node` matches, given each term's hits (in its fields only);
/// if so, the hits that made it.
pub fn eval(node: &Node, hits: &mut Hits, words: &mut Words) -> Option<Vec<(usize, TermHit)>> {
    if !holds(node, hits, words) {
        return None;
    }
    let mut out = Vec::new();
    gather(node, hits, words, &mut out);
    Some(out)
}

impl Query {
    /// The query without its exclusions (`AND NOT …` members removed), and
    /// what they excluded: to say why an item did not match.
    pub fn split_exclusions(&self) -> (Query, Vec<Query>) {
        fn strip(node: &Node, out: &mut Vec<Node>) -> Node {
            match node {
                Node::And(parts) => {
                    let mut kept: Vec<Node> = Vec::new();
                    for p in parts {
                        match p {
                            Node::Not(inner) => out.push((**inner).clone()),
                            _ => kept.push(strip(p, out)),
                        }
                    }
                    if kept.len() == 1 {
                        kept.pop().expect("one part")
                    } else {
                        Node::And(kept)
                    }
                }
                Node::Or(parts) => Node::Or(parts.iter().map(|p| strip(p, out)).collect()),
                other => other.clone(),
            }
        }
        let mut excluded = Vec::new();
        let root = strip(&self.root, &mut excluded);
        let with = |root: Node| Query {
            text: self.text.clone(),
            terms: self.terms.clone(),
            root,
        };
        (with(root), excluded.into_iter().map(with).collect())
    }
}

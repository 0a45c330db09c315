//! `RuleSet`: every rule, compiled into automata, evaluated on an item.
//!
//! Literal terms are grouped by accent mode (folded or exact); each group is
//! one Aho–Corasick automaton over lower-cased text, searched with overlaps,
//! since one word may be the start of another term. A hit counts when it sits
//! on word boundaries and, for a term with a capital, when the original text
//! has the term's case. Rules are then judged only if one of their terms hit,
//! or if they hold a regex, and `Hit`s are built only for rules that match.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::{Deref, Range};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::query::{self, Hits, Query, TermHit, Words};
use super::{Field, Hit, Literal, Rule, RuleMatch, Term, TermKind, field_text};
use crate::domain::model::Item;
use crate::domain::text::{Mapped, Normal};

/// Which list of its rule a term is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    All,
    Any,
    None,
    /// A term of the rule's `query`.
    Query,
}

/// Where a literal term sits: rule, list, position in the list.
#[derive(Debug, Clone, Copy)]
struct TermRef {
    rule: usize,
    role: Role,
    index: usize,
}

/// A literal term found in a field, before any rule is judged.
#[derive(Debug, Clone)]
struct Found {
    term: usize,
    field: Field,
    span: Range<usize>,
}

/// One automaton and the terms each of its patterns stands for.
#[derive(Debug, Clone)]
struct Scanner {
    normal: Normal,
    automaton: AhoCorasick,
    /// For each pattern, the literal terms (ids into `RuleSet::terms`).
    pattern_terms: Vec<Vec<usize>>,
}

#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    terms: Vec<TermRef>,
    /// Per term: every hit counts (a `NEAR` operand), not only the first
    /// in each field.
    every_hit: Vec<bool>,
    scanners: Vec<Scanner>,
    /// Rules holding a regex term: always evaluated.
    regex_rules: Vec<usize>,
}

impl Deref for RuleSet {
    type Target = [Rule];
    fn deref(&self) -> &[Rule] {
        &self.rules
    }
}

/// The automaton finding one accent mode's literal patterns, each pattern
/// with its terms.
fn scanner((fold, patterns): (bool, BTreeMap<String, Vec<usize>>)) -> Scanner {
    // A DFA: the fastest search, at a few MiB for thousands of terms. No
    // prefilter: on French news the "rare" bytes it would look for first
    // are common, and its stops cost more than the DFA's own walk (a
    // back-test of a five-term rule over a week: 2.5 → 2.0 s; the
    // generated `matching` bench: the same within its noise).
    let automaton = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .build(patterns.keys())
        .expect("literal patterns always build");
    Scanner {
        normal: Normal { fold, lower: true },
        automaton,
        pattern_terms: patterns.into_values().collect(),
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::new(Vec::new())
    }
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut terms = Vec::new();
        let mut every_hit = Vec::new();
        // Per accent mode: pattern text → its terms.
        let mut groups: BTreeMap<bool, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
        let mut regex_rules = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            for role in ROLES {
                for (index, term) in terms_of(rule, role).enumerate() {
                    match &term.kind {
                        TermKind::Literal(lit) => {
                            let id = terms.len();
                            terms.push(TermRef {
                                rule: r,
                                role,
                                index,
                            });
                            every_hit.push(
                                role == Role::Query
                                    && rule.query.as_ref().is_some_and(|q| q.terms[index].near),
                            );
                            groups
                                .entry(lit.fold)
                                .or_default()
                                .entry(lit.pattern.clone())
                                .or_default()
                                .push(id);
                        }
                        TermKind::Regex(_) => {
                            if regex_rules.last() != Some(&r) {
                                regex_rules.push(r);
                            }
                        }
                    }
                }
            }
        }
        let scanners = groups.into_iter().map(scanner).collect();
        RuleSet {
            rules,
            terms,
            every_hit,
            scanners,
            regex_rules,
        }
    }

    /// The rules that match `item` among those `in_scope` accepts, in
    /// config order, each with its hits: `all` terms first, then `any`
    /// terms, each term's hits in field order.
    pub fn evaluate(&self, item: &Item, in_scope: impl Fn(&Rule) -> bool) -> Vec<RuleMatch<'_>> {
        let texts: Vec<(Field, Cow<str>)> = Field::ALL
            .iter()
            .map(|f| (*f, field_text(item, *f)))
            .collect();
        let mut found = self.scan(&texts);
        // Grouped by rule, then term, then field: each rule reads its own run.
        found.sort_unstable_by_key(|f| {
            (
                self.terms[f.term].rule,
                self.terms[f.term].role,
                self.terms[f.term].index,
                f.field,
            )
        });
        let mut matches = Vec::new();
        // Word positions, for NEAR: computed once per item and field, when
        // first needed.
        let mut words = Words::new(&texts);
        // The hit list of each query rule judged, reused from one to the next.
        let mut scratch = Vec::new();
        let mut regex_rules = self.regex_rules.iter().peekable();
        let mut rest = found.as_slice();
        loop {
            // The next rule to judge: the lowest of the next literal hit's
            // rule and the next rule with a regex.
            let next_hit = rest.first().map(|f| self.terms[f.term].rule);
            let r = match (next_hit, regex_rules.peek()) {
                (None, None) => break,
                (Some(h), Some(&&x)) => h.min(x),
                (Some(h), None) => h,
                (None, Some(&&x)) => x,
            };
            if regex_rules.peek() == Some(&&r) {
                regex_rules.next();
            }
            let run = rest
                .iter()
                .take_while(|f| self.terms[f.term].rule == r)
                .count();
            let (own, tail) = rest.split_at(run);
            rest = tail;
            if in_scope(&self.rules[r])
                && let Some(hits) = self.judge(r, own, &texts, &mut words, &mut scratch)
            {
                matches.push(RuleMatch {
                    rule: &self.rules[r],
                    hits,
                });
            }
        }
        matches
    }

    /// Every literal term's first hit in each field.
    fn scan(&self, texts: &[(Field, Cow<str>)]) -> Vec<Found> {
        let mut found = Vec::new();
        // Bit `f` of `seen[t]`: term `t` already hit in field `f`.
        let mut seen = vec![0u8; self.terms.len()];
        // Hits kept of each `NEAR` operand term (at most `NEAR_HITS`).
        let mut kept = vec![0u8; self.terms.len()];
        let mut mapped = Mapped::default();
        let mut scratch = String::new();
        for (f, (field, text)) in texts.iter().enumerate() {
            if text.is_empty() {
                continue;
            }
            for scanner in &self.scanners {
                mapped.renormalize(text, scanner.normal);
                let normal = mapped.text.as_str();
                for m in scanner.automaton.find_overlapping_iter(normal) {
                    for &t in &scanner.pattern_terms[m.pattern().as_usize()] {
                        let literal = self.literal(t);
                        let again = seen[t] & (1 << f) != 0;
                        if (again && (!self.every_hit[t] || kept[t] >= NEAR_HITS))
                            || !literal.on_boundaries(normal, m.start(), m.end())
                        {
                            continue;
                        }
                        let term_span = mapped.original_span(m.start(), m.end());
                        if !literal.case_matches(&text[term_span], &mut scratch) {
                            continue;
                        }
                        seen[t] |= 1 << f;
                        kept[t] = kept[t].saturating_add(1);
                        let span =
                            mapped.original_span(m.start(), literal.hit_end(normal, m.end()));
                        found.push(Found {
                            term: t,
                            field: *field,
                            span,
                        });
                    }
                }
            }
        }
        found
    }

    fn term(&self, t: usize) -> &Term {
        let r = self.terms[t];
        let rule = &self.rules[r.rule];
        match (r.role, &rule.query) {
            (Role::Query, Some(q)) => &q.terms[r.index].term,
            _ => &list(rule, r.role)[r.index],
        }
    }

    fn literal(&self, t: usize) -> &Literal {
        match &self.term(t).kind {
            TermKind::Literal(lit) => lit,
            TermKind::Regex(_) => unreachable!("term ids are given to literals only"),
        }
    }

    /// Whether rule `r` matches, given its literal hits; its hits if so:
    /// every `all` term, at least one `any` term (when there are any) and no
    /// `none` term, each in one of the rule's fields.
    fn judge(
        &self,
        r: usize,
        own: &[Found],
        texts: &[(Field, Cow<str>)],
        words: &mut Words,
        scratch: &mut Vec<(usize, TermHit)>,
    ) -> Option<Vec<Hit>> {
        let rule = &self.rules[r];
        if let Some(q) = &rule.query {
            return self.judge_query(rule, q, own, texts, words, scratch);
        }
        // (role, index in its list, field, span): literal hits, then regex hits.
        let mut marks: Vec<(Role, usize, Field, Range<usize>)> = own
            .iter()
            .filter(|f| rule.fields.contains(&f.field))
            .map(|f| {
                (
                    self.terms[f.term].role,
                    self.terms[f.term].index,
                    f.field,
                    f.span.clone(),
                )
            })
            .collect();
        // Decide on literal hits first: regexes are the costly part, and
        // most rules judged here fail on their literals alone. A `none` hit,
        // a literal `all` term without a hit, or only literal `any` terms
        // and none hit: the rule fails whatever its regexes say.
        let literal_hit = |role: Role, i: usize| marks.iter().any(|m| m.0 == role && m.1 == i);
        let is_regex = |t: &Term| matches!(t.kind, TermKind::Regex(_));
        if marks.iter().any(|m| m.0 == Role::None)
            || rule
                .all
                .iter()
                .enumerate()
                .any(|(i, t)| !is_regex(t) && !literal_hit(Role::All, i))
            || (!rule.any.is_empty()
                && !rule.any.iter().any(is_regex)
                && !marks.iter().any(|m| m.0 == Role::Any))
        {
            return None;
        }
        // `none` regexes first: one hit ends the matter.
        for role in [Role::None, Role::All, Role::Any] {
            for (index, term) in list(rule, role).iter().enumerate() {
                let TermKind::Regex(re) = &term.kind else {
                    continue;
                };
                for (field, text) in texts.iter().filter(|(f, _)| rule.fields.contains(f)) {
                    if let Some(m) = re.find(text) {
                        if role == Role::None {
                            return None;
                        }
                        marks.push((role, index, *field, m.range()));
                    }
                }
            }
        }
        let has = |role: Role| marks.iter().any(|m| m.0 == role);
        let all_hit =
            (0..rule.all.len()).all(|i| marks.iter().any(|m| m.0 == Role::All && m.1 == i));
        if has(Role::None) || !all_hit || (!rule.any.is_empty() && !has(Role::Any)) {
            return None;
        }
        marks.sort_by_key(|m| (m.0, m.1, m.2));
        let hits = marks
            .into_iter()
            .map(|(role, index, field, span)| Hit {
                field,
                term: list(rule, role)[index].written.clone(),
                span,
            })
            .collect();
        Some(hits)
    }
}

impl RuleSet {
    /// Whether a query rule matches, given its literal hits: each term's
    /// hits in its fields (its scope, else the rule's), regexes searched
    /// now, then the query's tree judged on them.
    fn judge_query(
        &self,
        rule: &Rule,
        q: &Query,
        own: &[Found],
        texts: &[(Field, Cow<str>)],
        words: &mut Words,
        scratch: &mut Vec<(usize, TermHit)>,
    ) -> Option<Vec<Hit>> {
        let in_fields = |i: usize, f: Field| match q.terms[i].scope {
            Some(scope) => scope == f,
            None => rule.fields.contains(&f),
        };
        // `own` is sorted by term, then field: so is this.
        scratch.clear();
        scratch.extend(
            own.iter()
                .map(|f| (self.terms[f.term].index, (f.field, f.span.clone())))
                .filter(|(i, (field, _))| in_fields(*i, *field)),
        );
        let regexes = q
            .terms
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.term.kind, TermKind::Regex(_)))
            .map(|(i, _)| i)
            .collect();
        let search = |i: usize| {
            let qt = &q.terms[i];
            let TermKind::Regex(re) = &qt.term.kind else {
                return Vec::new();
            };
            let take = if qt.near { NEAR_HITS as usize } else { 1 };
            texts
                .iter()
                .filter(|(f, _)| in_fields(i, *f))
                .flat_map(|(field, text)| {
                    re.find_iter(text)
                        .take(take)
                        .map(|m| (i, (*field, m.range())))
                })
                .collect()
        };
        let mut hits = Hits::new(scratch, regexes, &search);
        let mut found = query::eval(&q.root, &mut hits, words)?;
        found.sort_by_key(|(t, (field, span))| (*t, *field, span.start));
        found.dedup();
        Some(
            found
                .into_iter()
                .map(|(t, (field, span))| Hit {
                    field,
                    term: q.terms[t].term.written.clone(),
                    span,
                })
                .collect(),
        )
    }
}

/// Hits kept of a `NEAR` operand term in one item: enough for any real
/// text, bounded for a hostile one.
const NEAR_HITS: u8 = 200;

const ROLES: [Role; 4] = [Role::All, Role::Any, Role::None, Role::Query];

/// A rule's list of terms for a role.
fn list(rule: &Rule, role: Role) -> &[Term] {
    match role {
        Role::All => &rule.all,
        Role::Any => &rule.any,
        Role::None => &rule.none,
        Role::Query => &[],
    }
}

/// A rule's terms for a role, the query's included.
fn terms_of(rule: &Rule, role: Role) -> Box<dyn Iterator<Item = &Term> + '_> {
    match (role, &rule.query) {
        (Role::Query, Some(q)) => Box::new(q.terms.iter().map(|t| &t.term)),
        _ => Box::new(list(rule, role).iter()),
    }
}

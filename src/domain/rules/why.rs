//! Why a rule did not match an item, when one thing explains it: what
//! `veille test` says under `RULE (no match)`. Each explanation is found
//! by changing the rule one way (a term made case-blind, a `NEAR` widened,
//! an exclusion dropped) and matching again, so it says what the matcher
//! itself would do.

use super::query::{self, MAX_NEAR, Node};
use super::{Hit, Rule, RuleSet, Term, TermKind, field_text};
use crate::domain::model::Item;

/// Why `rule` did not match `item`, when one thing explains it: a term
/// whose case differs from the text's, a `NEAR` whose terms are further
/// apart than it allows, a `none` or `NOT` term that excluded an item the
/// rule otherwise matches, or the `all` terms missing from an item where
/// its other terms were found.
/// `None` when the rule matches, or when nothing of it was found.
pub fn why_not(rule: &Rule, item: &Item) -> Option<String> {
    if hits_of(rule.clone(), item).is_some() {
        return None;
    }
    if let Some(reason) = case_miss(rule, item).or_else(|| near_miss(rule, item)) {
        return Some(reason);
    }
    if let Some(q) = &rule.query {
        return excluded_by_not(rule, q, item);
    }
    let without_none = Rule {
        none: Vec::new(),
        ..rule.clone()
    };
    if !rule.none.is_empty() && hits_of(without_none, item).is_some() {
        return hits_of(listed(rule, rule.none.clone()), item)
            .map(|h| format!("excluded by none term {}", named(item, &h)));
    }
    all_missing(rule, item)
}

/// The hits of `rule` alone on `item`, when it matches.
fn hits_of(rule: Rule, item: &Item) -> Option<Vec<Hit>> {
    RuleSet::new(vec![rule])
        .evaluate(item, |_| true)
        .into_iter()
        .next()
        .map(|m| m.hits)
}

/// The first hit, with what it matched: `` `IA` (title: "IA") ``.
fn named(item: &Item, hits: &[Hit]) -> String {
    let h = &hits[0];
    let text = field_text(item, h.field);
    format!(
        "`{}` ({}: \"{}\")",
        h.term,
        h.field.name(),
        &text[h.span.clone()]
    )
}

/// `rule` with only these terms, as `any` terms.
fn listed(rule: &Rule, any: Vec<Term>) -> Rule {
    Rule {
        any,
        all: Vec::new(),
        none: Vec::new(),
        ..rule.clone()
    }
}

/// A query that matches without its `NOT` parts: the part that excluded
/// the item.
fn excluded_by_not(rule: &Rule, q: &query::Query, item: &Item) -> Option<String> {
    let (positive, excluded) = q.split_exclusions();
    let with = |q: query::Query| Rule {
        query: Some(q),
        ..rule.clone()
    };
    hits_of(with(positive), item)?;
    excluded
        .into_iter()
        .find_map(|x| hits_of(with(x), item))
        .map(|h| format!("excluded by NOT {}", named(item, &h)))
}

/// The `all` terms missing where the rule's other terms were found (or no
/// `any` term where every `all` term was).
fn all_missing(rule: &Rule, item: &Item) -> Option<String> {
    let missing: Vec<&str> = rule
        .all
        .iter()
        .filter(|t| hits_of(listed(rule, vec![(*t).clone()]), item).is_none())
        .map(|t| t.written.as_str())
        .collect();
    let others: Vec<Term> = rule
        .any
        .iter()
        .chain(&rule.all)
        .filter(|t| !missing.contains(&t.written.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() && !rule.all.is_empty() && !rule.any.is_empty() {
        let any: Vec<&str> = rule.any.iter().map(|t| t.written.as_str()).collect();
        return Some(format!(
            "every `all` term found, but no `any` term: {}",
            any.join(", ")
        ));
    }
    if missing.is_empty() || others.is_empty() || hits_of(listed(rule, others), item).is_none() {
        return None;
    }
    Some(format!(
        "`all` term{} not found: {}",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", ")
    ))
}

/// `term` matching any case (as if written in lower case).
fn case_blind(term: &Term) -> Option<Term> {
    match &term.kind {
        TermKind::Literal(l) if l.cased.is_some() => {
            let mut blind = term.clone();
            if let TermKind::Literal(l) = &mut blind.kind {
                l.cased = None;
                l.shouted = None;
            }
            Some(blind)
        }
        _ => None,
    }
}

/// A term with a capital (case-sensitive) that the text has in another
/// case: `` `pékin` is in the text (title); the term `Pékin` is
/// case-sensitive ``.
fn case_miss(rule: &Rule, item: &Item) -> Option<String> {
    let positives = rule.any.len() + rule.all.len();
    let terms = rule.query.as_ref().map_or(positives, |q| q.terms.len());
    (0..terms).find_map(|i| {
        let mut relaxed = rule.clone();
        let term = match &mut relaxed.query {
            Some(q) => &mut q.terms[i].term,
            None if i < rule.any.len() => &mut relaxed.any[i],
            None => &mut relaxed.all[i - rule.any.len()],
        };
        let written = term.written.clone();
        *term = case_blind(term)?;
        let hits = hits_of(relaxed, item)?;
        let hit = hits.iter().find(|h| h.term == written)?;
        Some(format!(
            "`{}` is in the text ({}); the term `{written}` is case-sensitive (it has a capital): write it in lower case to match any case",
            &field_text(item, hit.field)[hit.span.clone()],
            hit.field.name(),
        ))
    })
}

/// The `NEAR/n` nodes of a query, in the order written.
fn nears(node: &Node, out: &mut Vec<usize>) {
    match node {
        Node::Near { n, .. } => out.push(*n),
        Node::And(parts) | Node::Or(parts) => parts.iter().for_each(|p| nears(p, out)),
        Node::Not(inner) => nears(inner, out),
        Node::Term(_) => {}
    }
}

/// `node` with its `k`-th `NEAR` (counting from `*seen`) made `NEAR/n`.
fn widened(node: &Node, k: usize, n: usize, seen: &mut usize) -> Node {
    match node {
        Node::Near { left, right, .. } if *seen == k => {
            *seen += 1;
            Node::Near {
                n,
                left: left.clone(),
                right: right.clone(),
            }
        }
        Node::Near { .. } => {
            *seen += 1;
            node.clone()
        }
        Node::And(parts) => Node::And(parts.iter().map(|p| widened(p, k, n, seen)).collect()),
        Node::Or(parts) => Node::Or(parts.iter().map(|p| widened(p, k, n, seen)).collect()),
        Node::Not(inner) => Node::Not(Box::new(widened(inner, k, n, seen))),
        Node::Term(_) => node.clone(),
    }
}

/// A `NEAR/n` whose terms are both found, but further apart: the query
/// would match with a wider `NEAR`, and the words between are counted.
fn near_miss(rule: &Rule, item: &Item) -> Option<String> {
    let q = rule.query.as_ref()?;
    let mut found = Vec::new();
    nears(&q.root, &mut found);
    found.iter().enumerate().find_map(|(k, &n)| {
        let with = |wider: usize| {
            let mut r = rule.clone();
            let query = r.query.as_mut().expect("a query rule");
            query.root = widened(&q.root, k, wider, &mut 0);
            hits_of(r, item)
        };
        let (apart, hits) = (n + 1..=MAX_NEAR).find_map(|w| with(w).map(|h| (w, h)))?;
        let (left, right) = near_terms(&q.root, k)?;
        let written = |side: &[usize]| -> Option<&Hit> {
            hits.iter()
                .find(|h| side.iter().any(|&t| q.terms[t].term.written == h.term))
        };
        let (a, b) = (written(&left)?, written(&right)?);
        Some(format!(
            "`{}` and `{}` are found with {apart} word{} between them ({}); NEAR/{n} allows {n}",
            a.term,
            b.term,
            if apart == 1 { "" } else { "s" },
            a.field.name(),
        ))
    })
}

/// The terms on each side of the `k`-th `NEAR`.
fn near_terms(root: &Node, k: usize) -> Option<(Vec<usize>, Vec<usize>)> {
    fn walk(node: &Node, k: usize, seen: &mut usize) -> Option<(Vec<usize>, Vec<usize>)> {
        match node {
            Node::Near { left, right, .. } => {
                *seen += 1;
                (*seen == k + 1).then(|| (left.clone(), right.clone()))
            }
            Node::And(parts) | Node::Or(parts) => parts.iter().find_map(|p| walk(p, k, seen)),
            Node::Not(inner) => walk(inner, k, seen),
            Node::Term(_) => None,
        }
    }
    walk(root, k, &mut 0)
}

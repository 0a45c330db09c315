//! Matching benchmark: ~10,000 generated French news items (title, summary,
//! content; 1–3 KB of text each) against 10, 100 and 1,000 rules mixing
//! words, capitalised names (case-sensitive), phrases, prefixes and a few
//! regexes. Throughput is item text matched per second, on one core. Text
//! preparation (HTML → plain text) is measured separately.
//!
//! `cargo bench --bench matching`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use veille::domain::model::Item;
use veille::domain::rules::{Accents, Field, Rule, RuleSet, Scope, Term};
use veille::domain::text::plain_text;

const ITEMS: usize = 10_000;

const WORDS: &[&str] = &[
    "gouvernement",
    "ministre",
    "réforme",
    "budget",
    "élection",
    "président",
    "député",
    "sénat",
    "assemblée",
    "loi",
    "projet",
    "mesure",
    "décision",
    "annonce",
    "accord",
    "négociation",
    "économie",
    "croissance",
    "inflation",
    "chômage",
    "entreprise",
    "salariés",
    "syndicats",
    "grève",
    "marché",
    "bourse",
    "investissement",
    "industrie",
    "énergie",
    "électricité",
    "nucléaire",
    "climat",
    "sécheresse",
    "inondations",
    "agriculteurs",
    "santé",
    "hôpital",
    "médecins",
    "école",
    "université",
    "étudiants",
    "justice",
    "tribunal",
    "procès",
    "police",
    "sécurité",
    "défense",
    "armée",
    "guerre",
    "diplomatie",
    "sommet",
    "frontière",
    "migrants",
    "région",
    "commune",
    "maire",
    "ville",
    "transport",
    "train",
    "aéroport",
    "logement",
    "loyers",
    "impôts",
    "retraites",
    "technologie",
    "numérique",
    "données",
    "réseau",
    "téléphone",
    "plateforme",
    "internet",
    "cyberattaque",
    "culture",
    "cinéma",
    "festival",
    "musée",
    "livre",
    "football",
    "match",
    "équipe",
    "semaine",
    "mardi",
    "jeudi",
    "hier",
    "demain",
    "cette",
    "année",
    "mois",
    "selon",
    "après",
    "avant",
    "pendant",
    "contre",
    "avec",
    "pour",
    "dans",
    "sur",
    "sous",
    "les",
    "des",
    "une",
    "qui",
    "que",
    "dont",
    "mais",
    "aussi",
    "plus",
    "moins",
    "très",
];

const NAMES: &[&str] = &[
    "Paris",
    "Lyon",
    "Marseille",
    "Bruxelles",
    "Berlin",
    "Pékin",
    "Washington",
    "Moscou",
    "Kiev",
    "Londres",
    "Rome",
    "Madrid",
    "Tokyo",
    "Séoul",
    "Taïwan",
    "Chine",
    "États-Unis",
    "Europe",
    "Macron",
    "Bayrou",
    "Trump",
    "Xi",
    "Nvidia",
    "TSMC",
    "ASML",
    "Airbus",
    "EDF",
    "Renault",
];

const SPECIAL: &[&str] = &[
    "droits de douane",
    "puces",
    "semi-conducteurs",
    "intelligence artificielle",
    "IA",
    "l’IA générative",
    "Maison-Blanche",
    "Côte d’Ivoire",
    "hydrogène vert",
    "taux d’intérêt",
];

/// ~30,000 made-up words of two to five French-looking syllables: the long
/// tail of a news vocabulary, where the terms of real rules live.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 20] = [
        "ba", "cal", "dé", "fi", "gou", "la", "ma", "né", "po", "ri", "sa", "tin", "ver", "zon",
        "ché", "pré", "tra", "lu", "mo", "con",
    ];
    let mut rng = StdRng::seed_from_u64(3);
    let mut words: Vec<String> = (0..32_000)
        .map(|_| {
            (0..rng.random_range(2..5))
                .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                .collect()
        })
        .collect();
    words.sort();
    words.dedup();
    words
}

/// A sentence of `min` to `min + spread - 1` words: common words, then the
/// long tail with a skewed (Zipf-like) frequency, then names.
fn sentence(rng: &mut StdRng, vocab: &[String], min: usize, spread: usize) -> String {
    let words = min + rng.random_range(0..spread);
    let mut s = String::new();
    for i in 0..words {
        let tail_index = |rng: &mut StdRng| {
            let u: f64 = rng.random();
            ((u * u * u) * vocab.len() as f64) as usize
        };
        let w = match rng.random_range(0..100) {
            0..=54 => WORDS[rng.random_range(0..WORDS.len())],
            55..=94 => vocab[tail_index(rng)].as_str(),
            95..=98 => NAMES[rng.random_range(0..NAMES.len())],
            _ => SPECIAL[rng.random_range(0..SPECIAL.len())],
        };
        if i > 0 {
            s.push(' ');
        }
        s.push_str(w);
    }
    s.push('.');
    s
}

fn corpus(vocab: &[String]) -> Vec<Item> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..ITEMS)
        .map(|_| {
            let paragraphs = rng.random_range(1..5);
            let content: Vec<String> = (0..paragraphs)
                .map(|_| sentence(&mut rng, vocab, 40, 40))
                .collect();
            Item {
                title: sentence(&mut rng, vocab, 8, 6),
                summary: sentence(&mut rng, vocab, 25, 25),
                content: content.join(" "),
                categories: vec![NAMES[rng.random_range(0..NAMES.len())].to_owned()],
                ..Item::default()
            }
        })
        .collect()
}

/// `n` rules, terms mostly from the long tail (words, capitalised words,
/// which are case-sensitive, phrases, prefixes), a few names and set
/// phrases that occur in most items, and a regex in one rule of fifty. With
/// 1,000 rules an item matches about as many rules as a busy watch list
/// sees (printed when the bench starts).
fn rules(n: usize, vocab: &[String]) -> RuleSet {
    let compile = |t: &String| Term::compile(t, Accents::Fold).unwrap();
    let rules = specs(n, vocab)
        .into_iter()
        .enumerate()
        .map(|(i, s)| Rule {
            name: format!("r{i}"),
            any: s.any.iter().map(compile).collect(),
            all: s.all.iter().map(compile).collect(),
            none: s.none.iter().map(compile).collect(),
            query: None,
            fields: Field::ALL.to_vec(),
            scope: Scope::default(),
            notify: vec!["c".into()],
        })
        .collect();
    RuleSet::new(rules)
}

/// The same rules written as queries: `(any…) AND all AND NOT none…`; with
/// `near`, one rule in three that has an `all` term says
/// `(any…) NEAR/10 all` instead.
fn query_rules(n: usize, vocab: &[String], near: bool) -> RuleSet {
    let quote = |t: &String| {
        if t.contains(' ') {
            format!("\"{t}\"")
        } else {
            t.clone()
        }
    };
    let rules = specs(n, vocab)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let any = format!(
                "({})",
                s.any.iter().map(quote).collect::<Vec<_>>().join(" OR ")
            );
            let mut q = match s.all.first() {
                Some(a) if near && !a.starts_with('/') => format!("{any} NEAR/10 {}", quote(a)),
                Some(a) => format!("{any} AND {}", quote(a)),
                None => any,
            };
            for x in &s.none {
                q.push_str(&format!(" AND NOT {}", quote(x)));
            }
            let query = veille::domain::rules::query::parse(&q, Accents::Fold)
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            Rule {
                name: format!("q{i}"),
                any: vec![],
                all: vec![],
                none: vec![],
                query: Some(query),
                fields: Field::ALL.to_vec(),
                scope: Scope::default(),
                notify: vec!["c".into()],
            }
        })
        .collect();
    RuleSet::new(rules)
}

/// One rule's terms, as written.
struct Spec {
    any: Vec<String>,
    all: Vec<String>,
    none: Vec<String>,
}

fn specs(n: usize, vocab: &[String]) -> Vec<Spec> {
    let mut rng = StdRng::seed_from_u64(11);
    let term = |rng: &mut StdRng| -> String {
        let tail = |rng: &mut StdRng| vocab[rng.random_range(0..vocab.len())].clone();
        match rng.random_range(0..100) {
            0..=44 => tail(rng),
            45..=59 => {
                let w = tail(rng);
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or(w)
            }
            60..=77 => format!("{} {}", tail(rng), WORDS[rng.random_range(0..WORDS.len())]),
            78..=94 => {
                // A stem: the word without its last letter, as in `semi-conduct*`.
                let w = tail(rng);
                let keep = w.chars().count().saturating_sub(1).max(4);
                format!("{}*", w.chars().take(keep).collect::<String>())
            }
            95..=98 => NAMES[rng.random_range(0..NAMES.len())].to_owned(),
            _ => SPECIAL[rng.random_range(0..SPECIAL.len())].to_owned(),
        }
    };
    (0..n)
        .map(|i| {
            let any: Vec<String> = (0..rng.random_range(1..5))
                .map(|_| term(&mut rng))
                .collect();
            let all = if i % 3 == 0 {
                vec![term(&mut rng)]
            } else {
                vec![]
            };
            let mut none = if i % 5 == 0 {
                vec![term(&mut rng)]
            } else {
                vec![]
            };
            if i % 50 == 0 {
                none.push(r"/(?i)\bH[12]00\b/".to_owned());
            }
            Spec { any, all, none }
        })
        .collect()
}

fn text_bytes(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|i| {
            (i.title.len()
                + i.summary.len()
                + i.content.len()
                + i.categories.iter().map(String::len).sum::<usize>()) as u64
        })
        .sum()
}

fn matching(c: &mut Criterion) {
    let vocab = vocabulary();
    let items = corpus(&vocab);
    let bytes = text_bytes(&items);
    let mut group = c.benchmark_group("match");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Bytes(bytes));
    for n in [10, 100, 1_000] {
        let set = rules(n, &vocab);
        let results: Vec<usize> = items
            .iter()
            .map(|i| set.evaluate(i, |_| true).len())
            .collect();
        let matched = results.iter().filter(|n| **n > 0).count();
        let per_item = results.iter().sum::<usize>() as f64 / items.len() as f64;
        eprintln!(
            "{n} rules: {matched} of {} items match, {per_item:.1} rules per item, {:.1} MB of text",
            items.len(),
            bytes as f64 / 1e6
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| {
                let mut count = 0;
                for item in &items {
                    count += set.evaluate(black_box(item), |_| true).len();
                }
                count
            })
        });
    }
    group.finish();
    // 1,000 rules written as queries: the same terms joined by AND / OR /
    // AND NOT, then with a third of them (those with an `all` term) as NEAR.
    let mut group = c.benchmark_group("match-query");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Bytes(bytes));
    for (name, near) in [("1000-boolean", false), ("1000-near", true)] {
        let set = query_rules(1_000, &vocab, near);
        let results: Vec<usize> = items
            .iter()
            .map(|i| set.evaluate(i, |_| true).len())
            .collect();
        let per_item = results.iter().sum::<usize>() as f64 / items.len() as f64;
        eprintln!("{name}: {per_item:.1} rules per item");
        group.bench_with_input(BenchmarkId::from_parameter(name), &set, |b, set| {
            b.iter(|| {
                let mut count = 0;
                for item in &items {
                    count += set.evaluate(black_box(item), |_| true).len();
                }
                count
            })
        });
    }
    group.finish();
}

fn preparation(c: &mut Criterion) {
    let items = corpus(&vocabulary());
    let html: Vec<String> = items
        .iter()
        .take(2_000)
        .map(|i| {
            format!(
                "<p>{}</p><p><b>{}</b> &amp; <a href=\"https://example.org/\">lien</a>&nbsp;!</p>",
                i.summary, i.content
            )
        })
        .collect();
    let bytes: u64 = html.iter().map(|h| h.len() as u64).sum();
    let mut group = c.benchmark_group("prepare");
    group.sample_size(10).throughput(Throughput::Bytes(bytes));
    group.bench_function("html_to_text", |b| {
        b.iter(|| {
            html.iter()
                .map(|h| plain_text(black_box(h)).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, matching, preparation);
criterion_main!(benches);

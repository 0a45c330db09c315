//! Tables of SPEC §3 "Queries" cases, in French news style.

use super::query::parse;
use super::*;
use crate::domain::text::plain_text;

fn rule(query: &str) -> Rule {
    Rule {
        name: "q".into(),
        any: vec![],
        all: vec![],
        none: vec![],
        query: Some(parse(query, Accents::Fold).unwrap_or_else(|e| panic!("{query}: {e:?}"))),
        fields: Field::ALL.to_vec(),
        scope: Scope::default(),
        notify: vec![],
    }
}

fn item(title: &str, summary: &str) -> Item {
    Item {
        title: plain_text(title),
        summary: plain_text(summary),
        categories: vec!["Économie".into(), "Asie".into()],
        ..Item::default()
    }
}

/// The hits of `query` on `it`: (term, field, matched text); `None` when
/// it does not match.
fn hits(query: &str, it: &Item) -> Option<Vec<(String, &'static str, String)>> {
    let set = RuleSet::new(vec![rule(query)]);
    let m = set.evaluate(it, |_| true).into_iter().next()?;
    Some(
        m.hits
            .iter()
            .map(|h| {
                let text = field_text(it, h.field);
                (
                    h.term.clone(),
                    h.field.name(),
                    text[h.span.clone()].to_owned(),
                )
            })
            .collect(),
    )
}

fn matches(query: &str, title: &str, summary: &str) -> bool {
    hits(query, &item(title, summary)).is_some()
}

#[test]
fn boolean_queries_match_as_written() {
    let t = "Les puces chinoises au cœur de la rivalité avec Washington";
    let s = "Pékin répond aux droits de douane américains sur les semi-conducteurs.";
    let cases: &[(&str, bool)] = &[
        ("puces", true),
        ("puces AND Pékin", true),
        ("puces AND Tokyo", false),
        ("puces OR Tokyo", true),
        ("Tokyo OR Séoul", false),
        ("puces AND NOT Bourse", true),
        ("puces AND NOT Washington", false),
        ("NOT Bourse AND puces", true),
        ("\"droits de douane\"", true),
        ("\"droits de la douane\"", false),
        ("\"droits de douane\" AND (Chine OR Pékin)", true),
        ("\"droits de douane\" AND (Chine OR Tokyo)", false),
        ("semi-conducteur*", true),
        ("semi-conduct*", true),
        ("conducteur*", true),
        ("/rivalit[ée]/", true),
        ("/(?i)RIVALITÉ/", true),
        ("/Rivalité/", false),
        ("IA", false),
        ("pekin", true),
        ("Pekin", true),
        ("PÉKIN", false),
        ("coeur", true),
        // Precedence: OR loosest, then AND, then NOT, then NEAR.
        ("Tokyo OR puces AND Pékin", true),
        ("Tokyo OR puces AND Séoul", false),
        ("(Tokyo OR puces) AND Séoul", false),
        ("puces AND Séoul OR Pékin", true),
        ("puces AND (Séoul OR Pékin)", true),
        ("puces AND NOT Séoul OR Tokyo", true),
        ("Tokyo OR puces AND NOT Pékin", false),
        ("puces AND NOT (Séoul OR Washington)", false),
        ("puces AND NOT (Séoul OR Tokyo)", true),
        ("puces AND NOT (Washington AND Tokyo)", true),
        ("puces AND NOT (Washington AND Pékin)", false),
        // Nested groups.
        ("((puces))", true),
        ("(puces AND (Pékin OR (Tokyo AND Séoul)))", true),
        ("(puces AND (Tokyo OR (Pékin AND Séoul)))", false),
        (
            "((puces OR Tokyo) AND (Séoul OR Washington)) AND NOT Bourse",
            true,
        ),
        // NOT inside a group.
        ("(puces AND NOT Bourse) OR Tokyo", true),
        ("(puces AND NOT Pékin) OR Tokyo", false),
        ("(Tokyo OR Séoul) OR (puces AND NOT Bourse)", true),
        // Field scopes on terms and on groups.
        ("title:puces", true),
        ("summary:puces", false),
        ("summary:Pékin", true),
        ("title:Pékin", false),
        ("title:\"droits de douane\"", false),
        ("summary:\"droits de douane\"", true),
        ("title:(Pékin OR Washington)", true),
        ("title:(Pékin OR Tokyo)", false),
        ("summary:(Pékin AND semi-conducteur*)", true),
        ("title:(puces AND semi-conducteur*)", false),
        ("title:(puces AND summary:semi-conducteur*)", true),
        ("categories:Asie", true),
        ("categories:Europe", false),
        ("content:puces", false),
        ("puces AND NOT title:Bourse", true),
        ("puces AND NOT summary:Pékin", false),
        ("puces AND NOT title:Pékin", true),
        ("title:/rivalit[ée] avec/", true),
        ("summary:/(a|b)rivalit/", false),
        // A `:` that is not a scope.
        ("\"re:publica\"", false),
    ];
    for (query, want) in cases {
        assert_eq!(matches(query, t, s), *want, "{query}");
    }
    assert!(cases.len() >= 55);
}

#[test]
fn near_counts_the_words_between_in_either_order_within_one_field() {
    let cases: &[(&str, &str, bool)] = &[
        // SPEC's own example: three words between.
        ("\"Xi\" NEAR/3 puces", "Xi Jinping et les puces", true),
        ("Xi NEAR/3 puces", "Xi Jinping et les puces", true),
        ("Xi NEAR/2 puces", "Xi Jinping et les puces", false),
        ("puces NEAR/3 Xi", "Xi Jinping et les puces", true),
        ("puces NEAR/1 Xi", "les puces de Xi", true),
        ("puces NEAR/1 Xi", "les puces et de Xi", false),
        ("puces NEAR/1 Chine", "puces Chine", true),
        ("puces NEAR/1 Chine", "Chine : puces", true),
        // n and n + 1 words between, at the boundary.
        (
            "Pékin NEAR/6 puces",
            "Pékin a encore une fois visé les puces",
            true,
        ),
        (
            "Pékin NEAR/5 puces",
            "Pékin a encore une fois visé les puces",
            false,
        ),
        (
            "Pékin NEAR/7 puces",
            "Pékin a encore une fois visé les puces",
            true,
        ),
        ("Pékin NEAR/50 puces", "Pékin puces", true),
        // Punctuation and apostrophes separate words; an elision is a word.
        ("Pékin NEAR/2 puces", "Pékin, l'an dernier… puces", false),
        ("Pékin NEAR/3 puces", "Pékin, l'an dernier… puces", true),
        // Phrases and prefixes on either side.
        (
            "\"droits de douane\" NEAR/2 Chine",
            "des droits de douane sur la Chine",
            true,
        ),
        (
            "\"droits de douane\" NEAR/1 Chine",
            "des droits de douane sur la Chine",
            false,
        ),
        (
            "Chine NEAR/2 \"droits de douane\"",
            "la Chine et des droits de douane",
            true,
        ),
        (
            "semi-conducteur* NEAR/3 Taïwan",
            "les semi-conducteurs produits à Taïwan",
            true,
        ),
        (
            "semi-conducteur* NEAR/1 Taïwan",
            "les semi-conducteurs produits à Taïwan",
            false,
        ),
        (
            "puce* NEAR/2 (Chine OR Pékin)",
            "la puce vendue à Pékin",
            true,
        ),
        (
            "(puces OR semi-conducteur*) NEAR/10 (Chine OR Pékin)",
            "Pékin riposte sur les semi-conducteurs",
            true,
        ),
        (
            "(puces OR semi-conducteur*) NEAR/1 (Chine OR Pékin)",
            "Pékin riposte encore sur les semi-conducteurs",
            false,
        ),
        // Regex operands.
        ("/H[12]00/ NEAR/2 Nvidia", "les H100 de Nvidia", true),
        (
            "/H[12]00/ NEAR/2 Nvidia",
            "les H100, selon la presse, de Nvidia",
            false,
        ),
        // A regex hit inside a word: that word is not one between.
        ("Pékin NEAR/1 /ine\\b/", "Pékin la Chine", true),
        ("Pékin NEAR/1 /ine\\b/", "Pékin et la Chine", false),
        // Two different places: one word is not near itself.
        ("puces NEAR/5 puces", "les puces", false),
        ("puces NEAR/5 puces", "les puces et les puces", true),
        ("puce* NEAR/3 puces", "les puces", false),
        // Any pair counts, not only the first hits.
        (
            "Pékin NEAR/1 puces",
            "Pékin hausse ses taxes ; puces : Pékin riposte",
            true,
        ),
        (
            "Pékin NEAR/1 puces",
            "Pékin hausse ses taxes sur les puces",
            false,
        ),
        // NEAR with other operators.
        (
            "Pékin NEAR/2 puces AND NOT Bourse",
            "Pékin vise les puces",
            true,
        ),
        (
            "Pékin NEAR/2 puces AND NOT Bourse",
            "Bourse : Pékin vise les puces",
            false,
        ),
        ("Tokyo OR Pékin NEAR/2 puces", "Pékin vise les puces", true),
        (
            "NOT Bourse AND Pékin NEAR/2 puces",
            "Pékin vise les puces",
            true,
        ),
        (
            "(Pékin NEAR/2 puces) AND Taïwan",
            "Pékin vise les puces de Taïwan",
            true,
        ),
        (
            "Pékin NEAR/2 puces AND Pékin NEAR/2 Taïwan",
            "Taïwan : Pékin vise les puces",
            true,
        ),
    ];
    for (query, title, want) in cases {
        assert_eq!(matches(query, title, ""), *want, "{query} ~ {title}");
    }
    // Across fields: never near.
    assert!(!matches(
        "Pékin NEAR/50 puces",
        "Pékin riposte",
        "Les puces"
    ));
    assert!(matches(
        "Pékin NEAR/50 puces",
        "Pékin riposte",
        "Pékin et les puces"
    ));
    // Scoped operands: in that field only.
    assert!(!matches(
        "title:Pékin NEAR/3 puces",
        "Chine",
        "Pékin et les puces"
    ));
    assert!(matches(
        "summary:Pékin NEAR/3 puces",
        "Chine",
        "Pékin et les puces"
    ));
    assert!(matches(
        "summary:(Pékin NEAR/3 puces)",
        "puces",
        "Pékin et les puces"
    ));
}

#[test]
fn lower_case_operators_are_words() {
    let cases: &[(&str, &str, bool)] = &[
        ("\"puces and IA\"", "puces and IA", true),
        ("\"puces and IA\"", "Puces and IA", false),
        ("\"Procter or Gamble\"", "Procter or Gamble", true),
        ("and", "Rock and roll", true),
        ("or AND noir", "l'or noir", true),
        ("not", "Note", false),
        ("near", "near the border", true),
        ("\"not\" AND Note", "not a Note", true),
    ];
    for (query, title, want) in cases {
        assert_eq!(matches(query, title, ""), *want, "{query} ~ {title}");
    }
}

#[test]
fn hits_name_the_terms_as_written_never_under_not() {
    let it = item(
        "Pékin vise les puces de Taïwan",
        "Les droits de douane sur les semi-conducteurs.",
    );
    let got = hits(
        "title:(puces OR Tokyo) AND \"droits de douane\" AND semi-conducteur* AND NOT Bourse AND NOT title:Séoul",
        &it,
    )
    .unwrap();
    assert_eq!(
        got,
        [
            ("puces".to_owned(), "title", "puces".to_owned()),
            (
                "droits de douane".to_owned(),
                "summary",
                "droits de douane".to_owned()
            ),
            (
                "semi-conducteur*".to_owned(),
                "summary",
                "semi-conducteurs".to_owned()
            ),
        ]
    );
    let got = hits("Pékin NEAR/2 puces", &it).unwrap();
    assert_eq!(
        got,
        [
            ("Pékin".to_owned(), "title", "Pékin".to_owned()),
            ("puces".to_owned(), "title", "puces".to_owned()),
        ]
    );
    // Every matched branch of an OR is named.
    let got = hits("Taïwan OR Pékin OR Tokyo", &it).unwrap();
    let terms: Vec<&str> = got.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(terms, ["Taïwan", "Pékin"]);
}

#[test]
fn query_rules_share_the_automaton_with_listed_rules() {
    let listed = Rule {
        any: vec![Term::compile("puces", Accents::Fold).unwrap()],
        query: None,
        ..rule("x")
    };
    let set = RuleSet::new(vec![listed, rule("puces AND Taïwan"), rule("Séoul")]);
    let it = item("Les puces de Taïwan", "");
    let names: Vec<usize> = set
        .evaluate(&it, |_| true)
        .iter()
        .map(|m| m.hits.len())
        .collect();
    assert_eq!(names, [1, 2]);
}

/// (query, column of the error counted in characters from 1, what it says)
#[test]
fn errors_point_at_the_character_and_say_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "droits de douane",
            8,
            "two terms side by side: join them with AND or OR, or write a phrase in double quotes (\"droits de douane\")",
        ),
        (
            "IA AND intelligence artificielle OR puces",
            21,
            "write a phrase in double quotes (\"intelligence artificielle\")",
        ),
        ("puces IA", 7, "two terms side by side"),
        (
            "puces and IA",
            7,
            "`and` in lower case is a word to find; to join terms write AND in capitals",
        ),
        (
            "puces or \"IA\"",
            7,
            "`or` in lower case is a word to find; to join terms write OR in capitals",
        ),
        (
            "'intelligence artificielle' OR IA",
            15,
            "single quotes do not make a phrase: write \"intelligence artificielle\" in double quotes",
        ),
        (
            "IA OR 'droits de douane'",
            15,
            "write \"droits de douane\" in double quotes",
        ),
        (
            "\"droits\" douane",
            10,
            "two terms side by side: join them with AND or OR, or write a phrase in double quotes (\"droits de douane\")",
        ),
        ("puces (IA)", 7, "two terms side by side"),
        ("puces title:IA", 7, "two terms side by side"),
        ("NOT puces", 1, "must be able to match something"),
        ("NOT puces AND NOT IA", 1, "must be able to match something"),
        ("puces OR NOT IA", 10, "must be able to match something"),
        ("(NOT IA)", 2, "must be able to match something"),
        ("puces NOT IA", 7, "AND NOT"),
        ("puces AND", 10, "ends where a term is expected"),
        ("puces OR", 9, "ends where a term is expected"),
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("AND puces", 1, "a term is expected"),
        ("puces AND OR IA", 11, "a term is expected"),
        ("(puces OR IA", 1, "not closed"),
        ("puces OR IA)", 12, "no `(`"),
        ("()", 2, "empty group"),
        ("\"droits de douane", 1, "phrase is not closed"),
        ("puces AND \"\"", 11, "empty phrase"),
        (
            "/puce[s/",
            1,
            "term \"/puce[s/\": invalid regular expression",
        ),
        ("/puces", 1, "not closed"),
        ("puces NEAR IA", 7, "NEAR/n"),
        ("puces NEAR/0 IA", 7, "from 1 to 50"),
        ("puces NEAR/51 IA", 7, "from 1 to 50"),
        ("puces NEAR/x IA", 7, "from 1 to 50"),
        ("NEAR/3 IA", 1, "NEAR needs a term"),
        ("puces NEAR/3", 13, "ends where a term is expected"),
        ("puces NEAR/3 IA NEAR/3 Chine", 17, "one NEAR at a time"),
        ("(puces AND IA) NEAR/3 Chine", 1, "each side of NEAR"),
        ("puces NEAR/3 (Chine AND Pékin)", 14, "each side of NEAR"),
        ("puces NEAR/3 NOT Chine", 14, "NOT excludes"),
        ("titre:puces", 1, "unknown field `titre:`"),
        ("title: puces", 7, "right after it"),
        ("-jeu AND puces", 1, "AND NOT jeu"),
        ("puces AND nucl*aire", 15, "`*` ends a prefix"),
        ("*", 1, "letter or digit before `*`"),
        ("puces AND /\u{8}tarifs/", 12, "control character"),
        ("puces AND \u{8}tarifs", 11, "control character"),
        ("Chine OR (puces AND (IA)", 10, "not closed"),
        ("IA AND \"puce* chinoise\"", 13, "`*` ends a prefix"),
        ("title:/(a|b/", 1, "invalid regular expression"),
    ];
    for (query, column, message) in cases {
        let e = parse(query, Accents::Fold).expect_err(query);
        let got = query[..e.at].chars().count() + 1;
        assert_eq!(got, *column, "{query}: {e:?}");
        assert!(e.message.contains(message), "{query}: {}", e.message);
    }
}

#[test]
fn listed_terms_that_cannot_mean_what_they_look_like_are_caught() {
    let cases: &[(&str, Option<(usize, Lint)>)] = &[
        ("puces", None),
        ("droits de douane", None),
        ("puce*", None),
        ("l'IA", None),
        ("semi-conducteurs", None),
        ("/\\bH[12]00\\b/", None),
        ("/a*b/", None),
        ("Procter and Gamble", None),
        ("OR", None),
        ("\"droits de douane\"", Some((0, Lint::Quote))),
        ("nucléaire OR atome", Some((11, Lint::Operator("OR")))),
        ("puces AND IA", Some((6, Lint::Operator("AND")))),
        ("NOT jeu", Some((0, Lint::Operator("NOT")))),
        ("-jeu", Some((0, Lint::LeadingMinus))),
        ("nucl*aire", Some((4, Lint::InnerStar))),
        ("*puces", Some((0, Lint::InnerStar))),
        ("/\u{8}tarifs?/", Some((1, Lint::Control('\u{8}')))),
        ("tab\there", Some((3, Lint::Control('\t')))),
    ];
    for (term, want) in cases {
        assert_eq!(lint_listed(term).err(), *want, "{term:?}");
    }
}

#[test]
fn a_rule_that_did_not_match_says_why_when_one_thing_explains_it() {
    let compile = |ts: &[&str]| -> Vec<Term> {
        ts.iter()
            .map(|t| Term::compile(t, Accents::Fold).unwrap())
            .collect()
    };
    let listed = |any: &[&str], all: &[&str], none: &[&str]| Rule {
        any: compile(any),
        all: compile(all),
        none: compile(none),
        query: None,
        ..rule("x")
    };
    let jeu = item("Un nouveau jeu vidéo mise sur l’IA", "");
    let tarifs = item("Pékin répond à Washington", "");
    let douane = item("Les droits de douane", "");
    let cases: Vec<(Rule, Item, Option<&str>)> = vec![
        (
            listed(&["IA"], &[], &["jeu vidéo"]),
            jeu.clone(),
            Some("excluded by none term `jeu vidéo` (title: \"jeu vidéo\")"),
        ),
        (
            rule("IA AND NOT \"jeu vidéo\""),
            jeu.clone(),
            Some("excluded by NOT `jeu vidéo` (title: \"jeu vidéo\")"),
        ),
        (
            rule("(IA OR puces) AND NOT (Bourse OR jeu*)"),
            jeu.clone(),
            Some("excluded by NOT `jeu*` (title: \"jeu\")"),
        ),
        (
            listed(&["Pékin", "Washington"], &["droits de douane"], &[]),
            tarifs.clone(),
            Some("`all` term not found: droits de douane"),
        ),
        (
            listed(&["Pékin", "Chine"], &["droits de douane"], &[]),
            douane.clone(),
            Some("every `all` term found, but no `any` term: Pékin, Chine"),
        ),
        // A capitalised term is case-sensitive: the text's case is shown.
        (
            listed(&["Pékin"], &[], &[]),
            item("Visite à pékin", ""),
            Some(
                "`pékin` is in the text (title); the term `Pékin` is case-sensitive (it has a capital): write it in lower case to match any case",
            ),
        ),
        (
            rule("\"droits de douane\" AND Chine"),
            item("Droits de douane : la chine répond", ""),
            Some(
                "`chine` is in the text (title); the term `Chine` is case-sensitive (it has a capital): write it in lower case to match any case",
            ),
        ),
        // Smart case: all in capitals is no miss.
        (listed(&["Pékin"], &[], &[]), item("PÉKIN (AFP)", ""), None),
        // A NEAR too narrow: the words between are counted.
        (
            rule("douane NEAR/3 Chine"),
            item(
                "",
                "Les droits de douane imposés par Washington depuis mars visent la Chine",
            ),
            Some(
                "`douane` and `Chine` are found with 7 words between them (summary); NEAR/3 allows 3",
            ),
        ),
        (
            rule("IA AND (puces NEAR/1 (Chine OR Taïwan))"),
            item("IA : les puces de la Chine", ""),
            Some(
                "`puces` and `Chine` are found with 2 words between them (title); NEAR/1 allows 1",
            ),
        ),
        // In two fields: no NEAR would do, and nothing else explains.
        (rule("douane NEAR/3 Chine"), item("douane", "Chine"), None),
        // Nothing of the rule found: nothing to say.
        (
            listed(&["Tokyo"], &["droits de douane"], &[]),
            jeu.clone(),
            None,
        ),
        (rule("Tokyo AND NOT IA"), jeu.clone(), None),
        // A rule that matches has nothing to explain.
        (listed(&["IA"], &[], &[]), jeu.clone(), None),
    ];
    for (r, it, want) in cases {
        assert_eq!(why_not(&r, &it).as_deref(), want, "{r:?}");
    }
}

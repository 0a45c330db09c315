//! Tables of SPEC §3 cases, in French news style.

use super::*;
use crate::domain::text::plain_text;

fn rule_with(
    any: &[&str],
    all: &[&str],
    none: &[&str],
    fields: &[Field],
    accents: Accents,
) -> Rule {
    let terms = |ts: &[&str]| {
        ts.iter()
            .map(|t| Term::compile(t, accents).unwrap())
            .collect()
    };
    Rule {
        name: "r".into(),
        any: terms(any),
        all: terms(all),
        none: terms(none),
        query: None,
        fields: fields.to_vec(),
        scope: Scope::default(),
        notify: vec![],
    }
}

fn rule(any: &[&str], all: &[&str], none: &[&str], fields: &[Field]) -> Rule {
    rule_with(any, all, none, fields, Accents::Fold)
}

fn title(text: &str) -> Item {
    Item {
        title: plain_text(text),
        ..Item::default()
    }
}

/// The matched text of `term` in `text` (a title), if it matches.
fn found_with(term: &str, text: &str, accents: Accents) -> Option<String> {
    let set = RuleSet::new(vec![rule_with(&[term], &[], &[], &[Field::Title], accents)]);
    let item = title(text);
    let m = set.evaluate(&item, |_| true).into_iter().next()?;
    Some(item.title[m.hits[0].span.clone()].to_owned())
}

fn matches(term: &str, text: &str) -> bool {
    found_with(term, text, Accents::Fold).is_some()
}

fn matches_with(term: &str, text: &str, accents: Accents) -> bool {
    found_with(term, text, accents).is_some()
}

#[test]
fn words_not_substrings() {
    let cases = [
        ("IA", "l'IA générative", true),
        ("IA", "d’IA", true),
        ("IA", "dʼIA", true),
        ("IA", "anti-IA", true),
        ("IA", "(IA)", true),
        ("IA", "«IA»", true),
        ("IA", "« IA »", true),
        ("IA", "IA, puces", true),
        ("IA", "IA.", true),
        ("IA", "via", false),
        ("IA", "VIA", false),
        ("IA", "IAEA", false),
        ("IA", "Asia", false),
        ("IA", "IA_2", true),
        ("puces", "des puces électroniques", true),
        ("puces", "épuces", false),
        ("puce", "puces", false),
        ("G7", "sommet du G7 à Rome", true),
        ("G7", "G70", false),
        ("2025", "en 2025,", true),
        ("Chine", "北京 Chine 北京", true),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
}

#[test]
fn smart_case() {
    let cases = [
        ("puces", "Puces", true),
        ("puces", "PUCES", true),
        ("IA", "ia", false),
        ("IA", "Ia", false),
        ("Chine", "chine", false),
        ("Chine", "Chine", true),
        ("chine", "CHINE", true),
        ("états-unis", "ÉTATS-UNIS", true),
        // A term with a capital also matches itself written all in
        // capitals, as in datelines and shouted headlines.
        ("Pékin", "PÉKIN (AFP) - Le ministre", true),
        ("Pékin", "pékin", false),
        ("Pékin", "PéKIN", false),
        ("Chine", "CHINE", true),
        ("Chine", "cHINE", false),
        ("États-Unis", "ÉTATS-UNIS", true),
        ("Etats-Unis", "ETATS UNIS", true),
        ("Banque centrale", "BANQUE CENTRALE EUROPÉENNE", true),
        ("Banque centrale", "Banque Centrale", false),
        ("IA", "IA", true),
        ("Nvidia*", "NVIDIA, la firme", true),
        ("Nvidia*", "nvidia", false),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
}

#[test]
fn accents_are_ignored_unless_exact() {
    let cases = [
        ("Pekin", "Pékin", true),
        ("Pékin", "Pekin", true),
        ("Etats-Unis", "États-Unis", true),
        ("securite", "sécurité", true),
        ("francais", "français", true),
        ("coeur", "cœur", true),
        ("cœur", "coeur", true),
        ("ex aequo", "ex æquo", true),
        ("éte", "ete", true),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
    let exact = [
        ("Pékin", "Pékin", true),
        ("Pekin", "Pékin", false),
        ("Pékin", "Pekin", false),
        ("cœur", "coeur", false),
        ("Pe\u{301}kin", "Pékin", true),
    ];
    for (term, text, want) in exact {
        assert_eq!(
            matches_with(term, text, Accents::Exact),
            want,
            "exact {term:?} in {text:?}"
        );
    }
}

#[test]
fn phrases_span_white_space_and_hyphens() {
    let cases = [
        ("droits de douane", "droits de douane", true),
        ("droits de douane", "droits  de\ndouane", true),
        ("droits de douane", "droits\u{a0}de douane", true),
        ("droits de douane", "droits\u{202f}de\tdouane", true),
        ("droits de douane", "<b>droits</b> de douane", true),
        ("droits de douane", "<p>droits</p><p>de douane</p>", true),
        ("droits de douane", "droits-de-douane", true),
        ("droits de douane", "droits, de douane", false),
        ("droits de douane", "droits de douanes", false),
        ("Maison Blanche", "Maison-Blanche", true),
        ("États-Unis", "Etats Unis", true),
        ("États-Unis", "Etats--Unis", false),
        ("Côte d'Ivoire", "Côte d’Ivoire", true),
        ("Côte d'Ivoire", "Cote dʼIvoire", true),
        ("semi-conducteurs", "semi-<em>conducteurs</em>", true),
        ("semi-conducteurs", "semi conducteurs", true),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
}

#[test]
fn prefixes() {
    let cases = [
        ("puce*", "puce", true),
        ("puce*", "puces", true),
        ("puce*", "Puces", true),
        ("puce*", "épuces", false),
        ("semi-conduct*", "semi-conducteurs", true),
        ("Nvid*", "nvidia", false),
        ("Nvid*", "Nvidia", true),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
}

#[test]
fn regexes_run_as_written() {
    let cases = [
        (r"/\bH20\b/", "puces H20 de Nvidia", true),
        (r"/(?i)nvidia/", "NVIDIA", true),
        (r"/nvidia/", "NVIDIA", false),
        (r"/pé?kin/", "pkin", true),
        (r"/Pékin/", "Pekin", false),
        (r"/ia/", "via", true),
        (r"/\d{2,} %/", "hausse de 25 %", true),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
}

#[test]
fn composed_and_decomposed_accents_are_the_same_letter() {
    assert!(matches("Pékin", "Pe\u{301}kin"));
    assert!(matches("Pe\u{301}kin", "Pékin"));
    assert!(matches_with(
        "sécurité",
        "se\u{301}curite\u{301}",
        Accents::Exact
    ));
}

#[test]
fn bad_terms_are_refused() {
    assert_eq!(
        Term::compile("", Accents::Fold).unwrap_err(),
        TermError::Empty
    );
    assert_eq!(
        Term::compile("  ", Accents::Fold).unwrap_err(),
        TermError::Empty
    );
    assert_eq!(
        Term::compile("*", Accents::Fold).unwrap_err(),
        TermError::LoneStar
    );
    assert!(matches!(
        Term::compile("/(unclosed/", Accents::Fold),
        Err(TermError::Regex(_))
    ));
}

#[test]
fn hits_point_into_the_original_text() {
    let cases = [
        ("pekin", "À Pékin, l’IA s’impose", "Pékin"),
        ("IA", "À Pékin, l’IA s’impose", "IA"),
        (
            "droits de douane",
            "Les droits\u{a0}de \n douane",
            "droits\u{a0}de douane",
        ),
        ("etats unis", "aux ÉTATS-UNIS hier", "ÉTATS-UNIS"),
        ("coeur", "au cœur du sujet", "cœur"),
        ("puce*", "des PUCES", "PUCES"),
        ("cote d'ivoire", "en Côte d’Ivoire", "Côte d’Ivoire"),
        ("/\\d+ %/", "hausse de 25 % des prix", "25 %"),
    ];
    for (term, text, want) in cases {
        assert_eq!(
            found_with(term, text, Accents::Fold).as_deref(),
            Some(want),
            "{term:?} in {text:?}"
        );
    }
}

#[test]
fn any_all_none_and_fields() {
    let item = Item {
        title: "Droits de douane : Pékin riposte".into(),
        summary: "La Chine annonce des mesures contre Washington.".into(),
        content: "Les puces électroniques sont visées. Un jeu vidéo aussi.".into(),
        categories: vec!["Économie".into(), "International".into()],
        ..Item::default()
    };
    let all = Field::ALL;
    let cases: [(Rule, bool); 17] = [
        (rule(&["puces", "IA"], &[], &[], &all), true),
        // Regexes beside literals, in every list: decided the same way
        // whichever is looked at first.
        (rule(&["puces"], &["/P.kin/"], &[], &all), true),
        (rule(&["puces"], &["/Bruxelles/"], &[], &all), false),
        (rule(&["IA", "/riposte/"], &[], &[], &all), true),
        (rule(&["IA", "/capitule/"], &[], &[], &all), false),
        (rule(&["puces"], &[], &["/(?i)jeu vid/"], &all), false),
        (rule(&["puces"], &[], &["/Bruxelles/"], &all), true),
        (rule(&["IA"], &["/P.kin/"], &["/Bruxelles/"], &all), false),
        (rule(&["IA"], &[], &[], &all), false),
        (rule(&["Chine"], &["droits de douane"], &[], &all), true),
        (
            rule(&["Chine"], &["droits de douane", "Bruxelles"], &[], &all),
            false,
        ),
        (rule(&["puces"], &[], &["jeu vidéo"], &all), false),
        (
            rule(&["puces"], &[], &["jeu video"], &[Field::Title]),
            false,
        ),
        (
            rule(&["puces"], &[], &[], &[Field::Title, Field::Summary]),
            false,
        ),
        (
            rule(
                &[],
                &["Pékin", "Washington"],
                &[],
                &[Field::Title, Field::Summary],
            ),
            true,
        ),
        (rule(&["economie"], &[], &[], &[Field::Categories]), true),
        (
            rule(&["economie international"], &[], &[], &[Field::Categories]),
            false,
        ),
    ];
    for (i, (rule, want)) in cases.iter().enumerate() {
        let set = RuleSet::new(vec![rule.clone()]);
        assert_eq!(!set.evaluate(&item, |_| true).is_empty(), *want, "case {i}");
    }
    let set = RuleSet::new(vec![rule(
        &["Chine", "Pékin"],
        &["droits de douane"],
        &[],
        &all,
    )]);
    let hits = set.evaluate(&item, |_| true).remove(0).hits;
    let found: Vec<(&str, Field)> = hits.iter().map(|h| (h.term.as_str(), h.field)).collect();
    assert_eq!(
        found,
        [
            ("droits de douane", Field::Title),
            ("Chine", Field::Summary),
            ("Pékin", Field::Title)
        ]
    );
    // Regex hits are listed with the literal ones, in term order.
    let set = RuleSet::new(vec![rule(&["Chine", "/riposte/"], &["/P.kin/"], &[], &all)]);
    let hits = set.evaluate(&item, |_| true).remove(0).hits;
    let found: Vec<(&str, Field)> = hits.iter().map(|h| (h.term.as_str(), h.field)).collect();
    assert_eq!(
        found,
        [
            ("/P.kin/", Field::Title),
            ("Chine", Field::Summary),
            ("/riposte/", Field::Title)
        ]
    );
}

#[test]
fn french_headlines() {
    // (term, headline, matches): the way a reader of French news expects.
    let cases = [
        ("IA", "L’IA générative bouscule les rédactions", true),
        (
            "IA",
            "Sommet sur l'IA à Paris : ce qu'il faut retenir",
            true,
        ),
        ("IA", "Les géants de l’« IA » lèvent des milliards", true),
        ("IA", "Un plan « anti-IA » dans les écoles", true),
        ("IA", "Via Rail suspend ses trains", false),
        ("IA", "L'AIEA s'inquiète du nucléaire iranien", false),
        ("IA", "Asia Argento témoigne", false),
        ("IA", "Media et ia : le débat", false),
        ("puces", "Taïwan, champion des puces électroniques", true),
        (
            "puces",
            "Marché aux Puces de Saint-Ouen : la fréquentation baisse",
            true,
        ),
        ("puces", "Les épuces du jardin", false),
        ("puce*", "Une puce implantée dans le cerveau", true),
        ("puce*", "Pucerons : les agriculteurs inquiets", true),
        (
            "semi-conducteurs",
            "Semi-conducteurs : l'Europe veut doubler sa part",
            true,
        ),
        (
            "semi-conducteurs",
            "Les semi conducteurs au cœur du plan",
            true,
        ),
        ("semi-conducteurs", "Les semiconducteurs chinois", false),
        (
            "droits de douane",
            "Droits de douane : la riposte européenne",
            true,
        ),
        (
            "droits de douane",
            "Les droits de douane\u{a0}: Trump menace",
            true,
        ),
        ("droits de douane", "Droits de l'homme et douane", false),
        ("Chine", "La Chine et Taïwan", true),
        ("Chine", "Une machine à laver", false),
        ("Chine", "La chine, porcelaine ancienne", false),
        ("Pekin", "Pékin dénonce « l’ingérence »", true),
        ("Washington", "WASHINGTON : le Congrès vote", true),
        ("Washington", "washington : le Congrès vote", false),
        ("washington", "WASHINGTON : le Congrès vote", true),
        (
            "États-Unis",
            "Aux Etats-Unis, la Fed maintient ses taux",
            true,
        ),
        ("États-Unis", "Les États‑Unis et l’Europe", true),
        (
            "Union européenne",
            "L'Union Européenne prépare sa réponse",
            false,
        ),
        (
            "union européenne",
            "L'Union Européenne prépare sa réponse",
            true,
        ),
        ("Maison Blanche", "La Maison-Blanche dément", true),
        (
            "Côte d'Ivoire",
            "En Côte d’Ivoire, la présidentielle approche",
            true,
        ),
        ("hydrogène*", "L'hydrogène vert, pari de l'industrie", true),
        ("nucléaire", "NUCLÉAIRE : EDF relance ses réacteurs", true),
        ("EDF", "edf relance ses réacteurs", false),
        ("taux d'intérêt", "La BCE relève ses taux d’intérêt", true),
        (
            "/(?i)\\bH[12]00\\b/",
            "Nvidia : les puces h100 interdites",
            true,
        ),
    ];
    for (term, text, want) in cases {
        assert_eq!(matches(term, text), want, "{term:?} in {text:?}");
    }
}

#[test]
fn a_term_is_shown_as_written_without_its_surrounding_spaces() {
    for (written, shown) in [(" puces ", "puces"), ("IA ", "IA"), (" /h100/ ", "/h100/")] {
        let t = Term::compile(written, Accents::Fold).unwrap();
        assert_eq!(t.written, shown);
    }
}

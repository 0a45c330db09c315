//! SPEC §1 `veille test` and §3 at the command line.

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, recent, rss, serve};

const CONFIG: &str = r#"
[[feed]]
name = "Tech"
url = "https://example.org/tech.xml"

[[feed]]
name = "Other"
url = "https://example.org/other.xml"

[[rule]]
name = "puces-ia"
any = ["puces", "IA"]
none = ["jeu vidéo"]
notify = ["archive"]

[[rule]]
name = "tarifs"
all = ["droits de douane"]
any = ["Pekin", "Washington"]
# Scoped to another feed: `veille test` ignores scopes.
feeds = ["Other"]
notify = ["archive"]

[channel.archive]
kind = "maildir"
path = "mail"
"#;

fn env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    env
}

#[test]
fn text_that_matches_exits_0_and_shows_each_term_in_context() {
    let env = env();
    let out = env.veille(&[
        "test",
        "--text",
        "Les <b>droits</b> de douane\u{a0}: Pékin répond à l’IA de Washington",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("puces-ia: "), "{text}");
    assert!(text.contains("l’[IA]"), "{text}");
    assert!(text.contains("[droits de douane]"), "{text}");
    assert!(
        text.contains("[Pékin]"),
        "accent-folded term shows the text as written: {text}"
    );
    assert!(!env.path("veille.db").exists(), "test stores nothing");
}

#[test]
fn text_that_does_not_match_exits_1() {
    let env = env();
    for text in [
        "La via ferrata rouvre",
        "Asia et IAEA",
        "un jeu vidéo sur les puces",
    ] {
        let out = env.veille(&["test", "--text", text]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{text}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn a_named_rule_is_tested_alone_and_an_unknown_one_exits_2() {
    let env = env();
    let out = env.veille(&["test", "tarifs", "--text", "l'IA"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.veille(&["test", "puces-ia", "--text", "l'IA", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["rule"], "puces-ia");
    assert_eq!(line["term"], "IA");
    assert_eq!(line["matched"], "IA");
    let out = env.veille(&["test", "nope", "--text", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rule named \"nope\""));
    let out = env.veille(&["test"]);
    assert_eq!(out.status.code(), Some(2), "--text or --feed is required");
}

#[tokio::test]
async fn a_feed_over_http_reports_one_json_object_per_match() {
    let server = MockServer::start().await;
    let doc = rss(
        "T",
        &[
            (
                "1",
                "Droits de douane : Pékin riposte",
                "https://example.org/1",
                "Washington répond.",
                &recent(1),
            ),
            (
                "2",
                "La via ferrata du Vercors",
                "https://example.org/2",
                "Rien à voir.",
                &recent(1),
            ),
            (
                "3",
                "Des puces pour un jeu vidéo",
                "https://example.org/3",
                "Exclu.",
                &recent(1),
            ),
        ],
    );
    serve(&server, "/t.xml", FeedDoc::rss(&doc)).await;
    let env = env();
    let out = env.veille(&[
        "test",
        "--feed",
        &format!("{}/t.xml", server.uri()),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let found: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["rule"].as_str().unwrap().into(),
                l["field"].as_str().unwrap().into(),
                l["matched"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("tarifs".into(), "title".into(), "Droits de douane".into()),
            ("tarifs".into(), "title".into(), "Pékin".into()),
            ("tarifs".into(), "summary".into(), "Washington".into()),
        ]
    );
    assert!(lines.iter().all(|l| {
        l["item"]
            .as_str()
            .unwrap()
            .contains("https://example.org/1")
    }));
}

#[test]
fn a_feed_file_that_does_not_parse_exits_2() {
    let env = env();
    std::fs::write(env.path("bad.xml"), "<rss><channel><item>").unwrap();
    let out = env.veille(&["test", "--feed", env.path("bad.xml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a feed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SPEC §3 "Queries" end to end: a config with queries through `check`,
/// `test` and `run --once` to a Maildir, and `test --query`.
#[tokio::test]
async fn queries_go_through_check_test_and_run_once() {
    let server = MockServer::start().await;
    let doc = rss(
        "AFP",
        &[
            (
                "1",
                "Pékin riposte sur les puces",
                "https://afp.example/1",
                "La Chine vise les semi-conducteurs américains.",
                &recent(1),
            ),
            (
                "2",
                "Bourse : les puces chinoises reculent",
                "https://afp.example/2",
                "Pékin a laissé filer ses valeurs technologiques.",
                &recent(2),
            ),
            (
                "3",
                "Les puces européennes",
                "https://afp.example/3",
                "Un article sur les puces électroniques en Europe, où la question des approvisionnements, longtemps négligée par les industriels, revient enfin au premier plan face à la Chine.",
                &recent(3),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&doc)).await;
    let env = TestEnv::new();
    env.write_config(&format!(
        "[daemon]\nfirst_poll_window = \"7d\"\n\n[[feed]]\nname = \"AFP\"\nurl = \"{}/afp.xml\"\n\n\
         [[rule]]\nname = \"puces-chine\"\n\
         query = '''\n(puces OR semi-conducteur*) NEAR/10 (Chine OR Pékin)\n  AND NOT title:Bourse\n'''\n\
         notify = [\"archive\"]\n\n[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n",
        server.uri()
    ));
    let check = String::from_utf8(env.ok(&["check"]).stdout).unwrap();
    assert!(
        check.contains("puces-chine — query: (puces OR semi-conducteur*) NEAR/10 (Chine OR Pékin) AND NOT title:Bourse"),
        "{check}"
    );
    let url = format!("{}/afp.xml", server.uri());
    let out = env.ok(&["test", "--feed", &url, "--json"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let items: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l["item"].as_str().unwrap()).collect();
    assert_eq!(items.len(), 1, "{lines:?}");
    assert!(
        items.iter().next().unwrap().contains("Pékin riposte"),
        "{items:?}"
    );
    let terms: Vec<&str> = lines.iter().map(|l| l["term"].as_str().unwrap()).collect();
    assert!(
        terms.contains(&"puces") && terms.contains(&"Pékin"),
        "{terms:?}"
    );
    assert!(!terms.contains(&"Bourse"), "{terms:?}");

    env.run_once();
    let mails = env.mails("mail");
    assert_eq!(
        mails.len(),
        1,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert_eq!(
        mails[0].subject,
        "[veille] puces-chine: Pékin riposte sur les puces"
    );

    // The same query from the command line, and its errors.
    let out = env.veille(&[
        "test",
        "--query",
        "puces NEAR/3 Pékin",
        "--text",
        "Pékin riposte sur les puces",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("query: "));
    let out = env.veille(&["test", "--query", "droits de douane", "--text", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("veille: query:8: two terms side by side"),
        "{err}"
    );
}

/// One rule tried, no match: `veille test` says why when a term's case or
/// a `NEAR` distance is what kept the item out.
#[test]
fn a_case_or_near_miss_is_explained() {
    let env = env();
    let out = env.veille(&[
        "test",
        "tarifs",
        "--text",
        "Droits de douane : pékin répond",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tarifs (no match): ")
            && text.contains("`pékin` is in the text (title); the term `Pekin` is case-sensitive"),
        "{text}"
    );
    let out = env.veille(&[
        "test",
        "--query",
        "douane NEAR/2 Chine",
        "--text",
        "Les droits de douane que Washington impose à la Chine",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "`douane` and `Chine` are found with 5 words between them (title); NEAR/2 allows 2"
        ),
        "{text}"
    );
}

//! SPEC §1 `veille test RULE --history`: a rule run over the kept news of
//! the last days gives the stories it would have alerted live. Two
//! databases take the same polls over a week (the clock moved between
//! them): on one the rule runs live, on the other it is added afterwards
//! and back-tested; their stories are the same.

use std::collections::BTreeSet;

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, rss, serve};

const DAY: i64 = 86_400;

const RULE: &str =
    "[[rule]]\nname = \"tarifs\"\nany = [\"droits de douane\"]\nnotify = [\"a\"]\n\n";

fn config(feeds: &str, rules: &str, keep_text: &str) -> String {
    format!(
        "[daemon]\ntimezone = \"Europe/Paris\"\nkeep_text = \"{keep_text}\"\n\n\
         [[feed]]\nname = \"AFP\"\nurl = \"{feeds}/afp.xml\"\n\n\
         [[feed]]\nname = \"Le Monde\"\nurl = \"{feeds}/lemonde.xml\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"a\"]\n\n{rules}\
         [channel.a]\nkind = \"maildir\"\npath = \"mail\"\n"
    )
}

/// Day `d`'s documents: each feed's stories of the day (tariffs, with or
/// without China, chips, other news), the same story on both feeds now
/// and then, and items dated long before: on the first day older than the
/// first-poll window, later older than `max_age`; both recorded silently.
async fn serve_day(server: &MockServer, env: &TestEnv, d: i64) {
    server.reset().await;
    let topics = [
        "Droits de douane : la Chine riposte",
        "Droits de douane sur l’acier européen",
        "Les puces de Nvidia",
        "La météo du week-end",
    ];
    let mut afp: Vec<(String, String, String, String, String)> = Vec::new();
    let mut lemonde = Vec::new();
    for (k, topic) in topics.iter().enumerate() {
        let title = format!("{topic}, jour {d}");
        let link = format!("https://news.example.org/{d}/{k}");
        let date = env.recent(1);
        afp.push((
            format!("a{d}-{k}"),
            title.clone(),
            link.clone(),
            format!("{title}."),
            date.clone(),
        ));
        // Le Monde carries the same link for the first two: one story.
        let own = if k < 2 {
            link
        } else {
            format!("https://lemonde.example.org/{d}/{k}")
        };
        lemonde.push((
            format!("m{d}-{k}"),
            title.clone(),
            own,
            format!("{title} (Le Monde)."),
            date,
        ));
    }
    let old = if d == 0 {
        env.recent(72)
    } else {
        env.recent(24 * 10)
    };
    afp.push((
        format!("old{d}"),
        format!("Droits de douane : archives du jour {d}"),
        format!("https://news.example.org/archives/{d}"),
        "Archives.".into(),
        old,
    ));
    let doc = |items: &[(String, String, String, String, String)]| {
        let items: Vec<(&str, &str, &str, &str, &str)> = items
            .iter()
            .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
            .collect();
        rss("f", &items)
    };
    serve(server, "/afp.xml", FeedDoc::rss(&doc(&afp))).await;
    serve(server, "/lemonde.xml", FeedDoc::rss(&doc(&lemonde))).await;
}

/// The `--json` report of `veille ARGS` (which must succeed).
fn json(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&env.ok(args).stdout).expect("a JSON report")
}

/// The sum of `key` over the objects of the list `list`.
fn total(v: &serde_json::Value, list: &str, key: &str) -> i64 {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[key].as_i64().unwrap())
        .sum()
}

fn titles(v: &serde_json::Value, key: &str) -> BTreeSet<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_back_test_finds_what_the_rule_alerted_live_and_says_what_an_edit_changes() {
    let server = MockServer::start().await;
    let live = TestEnv::new();
    let later = TestEnv::new();
    live.write_config(&config(&server.uri(), RULE, "30d"));
    later.write_config(&config(&server.uri(), "", "30d"));
    for d in 0..7 {
        serve_day(&server, &live, d).await;
        live.run_once();
        later.run_once();
        live.advance(DAY);
        later.advance(DAY);
    }
    let alerted: BTreeSet<String> = json(
        &live,
        &["recent", "--since", "8d", "--rule", "tarifs", "--json"],
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|s| s["title"].as_str().unwrap().to_owned())
    .collect();
    // Two stories a day (the China one, the steel one), none of the archives.
    assert_eq!(alerted.len(), 14, "{alerted:#?}");
    assert!(alerted.iter().all(|t| !t.contains("archives")));

    // The rule added afterwards, back-tested: the same stories.
    later.write_config(&config(&server.uri(), RULE, "30d"));
    let report: serde_json::Value = json(
        &later,
        &[
            "test",
            "tarifs",
            "--history",
            "8d",
            "--limit",
            "100",
            "--json",
        ],
    );
    assert_eq!(titles(&report, "found"), alerted);
    assert_eq!(report["stories"], 14);
    // Each story counted once, for the feed that brought it first (both
    // are polled in the same pass: either may be first).
    assert_eq!(total(&report, "feeds", "stories"), 14, "{report}");
    assert_eq!(total(&report, "per_day", "stories"), 14);
    // Nothing was alerted there by it: everything is added.
    assert_eq!(report["compared"]["added"].as_array().unwrap().len(), 14);

    // An edit tried on the live database: what it adds and drops.
    let narrower: serde_json::Value = json(
        &live,
        &[
            "test",
            "tarifs",
            "--query",
            "\"droits de douane\" AND Chine",
            "--history",
            "8d",
            "--limit",
            "100",
            "--json",
        ],
    );
    let c = &narrower["compared"];
    assert_eq!(c["alerted"], 14);
    assert_eq!(c["added"].as_array().unwrap().len(), 0, "{c}");
    let dropped = titles(c, "dropped");
    assert_eq!(dropped.len(), 7);
    assert!(dropped.iter().all(|t| t.contains("acier")), "{dropped:#?}");
    // The text report, as a person reads it.
    let text = String::from_utf8(
        live.ok(&["test", "tarifs", "--history", "8d", "--limit", "5"])
            .stdout,
    )
    .unwrap();
    assert!(text.starts_with("rule tarifs: 14 stories in "), "{text}");
    assert!(
        text.contains(
            "compared with what the rule in force alerted (14 stories): 0 added, 0 dropped"
        ),
        "{text}"
    );
    assert!(
        text.contains("newest first, 5 of 14; --limit for more"),
        "{text}"
    );
    assert!(
        text.contains("note: items first seen before the rule existed are included"),
        "{text}"
    );
    // A rule that finds nothing exits 1, like grep.
    let none = live.veille(&["test", "--query", "Groenland", "--history", "7d"]);
    assert_eq!(none.status.code(), Some(1));
}

#[tokio::test]
async fn text_older_than_keep_text_is_dropped_and_the_report_says_so() {
    let server = MockServer::start().await;
    let env = TestEnv::new();
    env.write_config(&config(&server.uri(), RULE, "2d"));
    for d in 0..5 {
        serve_day(&server, &env, d).await;
        env.run_once();
        env.advance(DAY);
    }
    // Pruning runs at the start of each run: texts of the last two days
    // (and this run's) remain, the items all stay (retention 90 days).
    env.run_once();
    let oldest: i64 = env.number("SELECT MIN(seen) FROM item_texts");
    let newest: i64 = env.number("SELECT MAX(seen) FROM item_texts");
    assert!(newest - oldest <= 2 * DAY, "{oldest}..{newest}");
    assert!(
        env.number("SELECT COUNT(*) FROM items") > env.number("SELECT COUNT(*) FROM item_texts")
    );
    let text = String::from_utf8(env.ok(&["test", "tarifs", "--history", "7d"]).stdout).unwrap();
    assert!(
        text.contains(
            "note: text is kept for 2 days (keep_text): tested the last 2 days, not 7 days"
        ),
        "{text}"
    );
    // keep_text = "0s" keeps none.
    env.write_config(&config(&server.uri(), RULE, "0s"));
    env.run_once();
    assert_eq!(env.number("SELECT COUNT(*) FROM item_texts"), 0);
}

/// A changed item is matched again live; each of its versions is kept, so
/// a version that matched is found even when a later one no longer does.
#[tokio::test]
async fn every_version_of_a_changed_item_is_back_tested() {
    let server = MockServer::start().await;
    let env = TestEnv::new();
    env.write_config(&config(&server.uri(), RULE, "7d"));
    let version = |title: &str| {
        rss(
            "f",
            &[(
                "v",
                title,
                "https://news.example.org/v",
                "Texte.",
                &env.recent(1),
            )],
        )
    };
    serve(
        &server,
        "/afp.xml",
        FeedDoc::rss(&version("Droits de douane : la Chine riposte")),
    )
    .await;
    serve(&server, "/lemonde.xml", FeedDoc::rss(&rss("f", &[]))).await;
    env.run_once();
    env.advance(3600);
    server.reset().await;
    serve(
        &server,
        "/afp.xml",
        FeedDoc::rss(&version("La Chine riposte")),
    )
    .await;
    serve(&server, "/lemonde.xml", FeedDoc::rss(&rss("f", &[]))).await;
    env.run_once();
    assert_eq!(
        env.number("SELECT COUNT(*) FROM item_texts"),
        2,
        "two versions kept"
    );
    let report: serde_json::Value = json(&env, &["test", "tarifs", "--history", "1d", "--json"]);
    assert_eq!(report["stories"], 1, "{report}");
    assert_eq!(
        report["found"][0]["title"], "Droits de douane : la Chine riposte",
        "the version that matched"
    );
    assert_eq!(
        report["compared"]["dropped"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );

    // A damaged text (cut short on disk) stops the back-test with an
    // error that says so, instead of a wrong report or a hang.
    env.execute(
        "UPDATE item_texts SET text = substr(text, 1, 3)
         WHERE seen = (SELECT MAX(seen) FROM item_texts)",
    );
    let out = env.veille(&["test", "tarifs", "--history", "1d"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("kept text cannot be unpacked"),
        "{stderr}"
    );
}

/// What a back-test is for: a rule added afterwards finds what nothing
/// alerted live, in every part of the text (the summary here, not the
/// title), with wire copies on (the default) and off.
#[tokio::test]
async fn a_back_test_reads_the_whole_text_of_items_that_alerted_nothing() {
    for wire in [true, false] {
        let server = MockServer::start().await;
        let env = TestEnv::new();
        let base = config(&server.uri(), "", "30d");
        let cfg = base.replacen(
            "[daemon]\n",
            &format!("[daemon]\nwire_copies = {wire}\n"),
            1,
        );
        env.write_config(&cfg);
        let date = env.recent(1);
        let items = [(
            "g1",
            "La météo du week-end",
            "https://news.example.org/meteo",
            "Un anticyclone centré sur le Groenland apporte du froid sec.",
            date.as_str(),
        )];
        serve(&server, "/afp.xml", FeedDoc::rss(&rss("f", &items))).await;
        serve(&server, "/lemonde.xml", FeedDoc::rss(&rss("f", &[]))).await;
        env.run_once();
        assert!(env.mails("mail").is_empty(), "nothing alerted live");
        let report = json(
            &env,
            &["test", "--query", "Groenland", "--history", "7d", "--json"],
        );
        assert_eq!(
            titles(&report, "found"),
            BTreeSet::from(["La météo du week-end".to_owned()]),
            "wire copies {wire}: {report}"
        );
    }
}

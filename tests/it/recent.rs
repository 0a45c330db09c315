//! SPEC §1 `veille recent`: the stories alerted lately, newest first,
//! with the channels that have each and where each stands.

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, recent, rss, serve};

const CONFIG: &str = r#"
[daemon]
timezone = "Europe/Paris"

[[feed]]
name = "Fil AFP"
url = "FEED/afp.xml"

[[feed]]
name = "Le Monde"
url = "FEED/lemonde.xml"

[[rule]]
name = "puces"
any = ["puces"]
notify = ["archive", "matin"]

[[rule]]
name = "tarifs"
all = ["droits de douane"]
notify = ["archive"]

[channel.archive]
kind = "maildir"
path = "mail"

[channel.matin]
kind = "maildir"
path = "digest"
digest = "0 7 * * *"
"#;

async fn feeds() -> MockServer {
    let server = MockServer::start().await;
    let afp = rss(
        "AFP",
        &[
            (
                "a-1",
                "Nvidia dévoile ses puces",
                "https://news.example.org/puces?utm_source=rss&amp;xtor=RSS-3",
                "Les puces arrivent.",
                &recent(3),
            ),
            (
                "a-2",
                "Droits de douane : Washington vise Pékin",
                "https://news.example.org/douane",
                "Nouveaux droits de douane.",
                &recent(1),
            ),
        ],
    );
    // The same story as a-1 at another outlet: one story, two outlets.
    let lemonde = rss(
        "Le Monde",
        &[(
            "m-1",
            "Nvidia dévoile ses puces",
            "https://news.example.org/puces",
            "Les puces arrivent.",
            &recent(2),
        )],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&afp)).await;
    serve(&server, "/lemonde.xml", FeedDoc::rss(&lemonde)).await;
    server
}

fn text(out: std::process::Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn recent_lists_the_stories_alerted_newest_first_with_their_channels() {
    let server = feeds().await;
    let env = TestEnv::new();
    env.write_config(&CONFIG.replace("FEED", &server.uri()));
    let log = env.run_once();
    assert_eq!(env.mails("mail").len(), 2, "{log}");

    let all = text(env.ok(&["recent"]));
    let puces = all.find("Nvidia dévoile ses puces").expect(&all);
    let douane = all.find("Droits de douane").expect(&all);
    // Both were alerted in the same pass: the newest alert first, and
    // each story once, with its rules, outlets, link and channels.
    assert_eq!(all.matches("Nvidia dévoile ses puces").count(), 1, "{all}");
    assert!(puces != douane);
    assert!(all.contains("  Fil AFP, Le Monde\n"), "{all}");
    assert!(
        all.contains("  https://news.example.org/puces\n"),
        "no tracking: {all}"
    );
    assert!(all.contains("  archive sent · matin pending\n"), "{all}");
    assert!(all.contains("  archive sent\n"), "{all}");
    assert!(
        all.ends_with("2 stories alerted in the last 1 day\n"),
        "{all}"
    );

    let only = text(env.ok(&["recent", "--rule", "tarifs"]));
    assert!(
        only.contains("Droits de douane") && !only.contains("Nvidia"),
        "{only}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&text(env.ok(&["recent", "--json"]))).unwrap();
    let stories = json.as_array().unwrap();
    assert_eq!(stories.len(), 2, "{json}");
    let p = stories
        .iter()
        .find(|s| s["rules"] == serde_json::json!(["puces"]))
        .unwrap();
    assert_eq!(p["outlets"], serde_json::json!(["Fil AFP", "Le Monde"]));
    assert_eq!(
        p["channels"],
        serde_json::json!([{"name": "archive", "state": "sent"}, {"name": "matin", "state": "pending"}])
    );
    assert!(
        p["at"].as_str().unwrap().ends_with("+01:00")
            || p["at"].as_str().unwrap().ends_with("+02:00")
    );

    // Two days on, the default day holds nothing; a week holds both.
    let later = |args: &[&str]| text(succeed_shifted(&env, args, "2d"));
    assert_eq!(later(&["recent"]), "no story alerted in the last 1 day\n");
    assert_eq!(
        later(&["recent", "--rule", "tarfis"]),
        "no story alerted in the last 1 day for rule tarfis (the config has no rule of that name)\n"
    );
    assert!(
        later(&["recent", "--since", "7d"]).ends_with("2 stories alerted in the last 7 days\n")
    );

    // The digest sent: the channel says so.
    env.ok(&["digest", "matin"]);
    let all = text(env.ok(&["recent"]));
    assert!(all.contains("  archive sent · matin sent\n"), "{all}");

    let bad = env.veille(&["recent", "--since", "hier"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since: invalid duration \"hier\""));
}

fn succeed_shifted(env: &TestEnv, args: &[&str], shift: &str) -> std::process::Output {
    crate::harness::succeed(env.command(args).env("VEILLE_CLOCK_SHIFT", shift))
}

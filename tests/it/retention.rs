//! SPEC §4 "Retention": items first seen longer ago than `retention` are
//! pruned at start and then as veille runs; their keys stay, so a feed
//! re-sending them alerts nothing; `veille status` counts both. Real feed
//! server, real SQLite file, real Maildir, the real binary. The passing of
//! a minute is made by moving first-seen times back in the SQLite file.

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, recent, rss, serve};

fn config(feed: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"veille.db\"\nretention = \"1m\"\ntimeout = \"2s\"\n\n\
         [[feed]]\nname = \"AFP\"\nurl = \"{feed}\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
         [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n"
    )
}

/// Moves every item and story `secs` into the past, and makes feeds due.
fn age(env: &TestEnv, secs: i64) {
    let db = env.db();
    db.execute("UPDATE items SET first_seen = first_seen - ?1", [secs])
        .unwrap();
    db.execute("UPDATE stories SET first_seen = first_seen - ?1", [secs])
        .unwrap();
    db.execute("UPDATE feeds SET next_poll = NULL", []).unwrap();
}

#[tokio::test]
async fn pruned_items_are_gone_and_a_feed_resending_them_alerts_nothing() {
    let server = MockServer::start().await;
    let env = TestEnv::new();
    let url = format!("{}/afp.xml", server.uri());
    env.write_config(&config(&url));
    let first = rss(
        "AFP",
        &[
            (
                "a1",
                "Les puces",
                "https://afp.example/a1",
                "Les puces.",
                &recent(1),
            ),
            (
                "a2",
                "Des puces",
                "https://afp.example/a2",
                "Des puces.",
                &recent(2),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&first)).await;
    env.run_once();
    assert_eq!(env.mails("mail").len(), 2);
    let status = env.status_json();
    assert_eq!(status["retained"]["items"], 2);
    assert_eq!(status["retained"]["pruned_keys"], 0);

    // Two minutes later: both are pruned at start. The feed sends them
    // again, a1 changed, a2 under a new guid (same link), and one new item.
    age(&env, 120);
    server.reset().await;
    let again = rss(
        "AFP",
        &[
            (
                "a1",
                "Les puces, mise à jour",
                "https://afp.example/a1",
                "Les puces encore.",
                &recent(1),
            ),
            (
                "a2-v2",
                "Des puces",
                "https://afp.example/a2?xtor=RSS-1",
                "Des puces.",
                &recent(2),
            ),
            (
                "a3",
                "Trois puces",
                "https://afp.example/a3",
                "Trois puces.",
                &recent(0),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&again)).await;
    let log = env.run_once();
    assert!(log.contains("pruned"), "{log}");
    let subjects: Vec<String> = env.mails("mail").into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains("Trois puces")),
        "{subjects:?}"
    );
    assert_eq!(env.number("SELECT COUNT(*) FROM items"), 1);
    assert_eq!(
        env.number("SELECT COUNT(*) FROM alerts"),
        1,
        "the sent alerts went with their items"
    );
    let status = env.status_json();
    assert_eq!(status["retained"]["items"], 1);
    assert_eq!(status["retained"]["pruned_keys"], 2);
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(
        text.contains("Database: 1 items kept, 2 keys kept of pruned items (retention 1m)"),
        "{text}"
    );

    // And again, once a3 is old too: nothing alerts, a3 goes.
    age(&env, 120);
    env.run_once();
    assert_eq!(env.mails("mail").len(), 3);
    assert_eq!(env.number("SELECT COUNT(*) FROM items"), 0);
    assert_eq!(env.status_json()["retained"]["pruned_keys"], 3);
}

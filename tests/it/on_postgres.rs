//! SPEC §10 through the real binary on a real PostgreSQL (`pg_server`):
//! the same pipeline as on SQLite, and several processes on one database
//! sending each story once.

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, recent, rss, serve};
use crate::pg_server;

/// Feeds named and at these URLs, rule `puces` to the Maildir `mail`, on
/// the database at `url`.
fn config(url: &str, feeds: &[(&str, String)]) -> String {
    let mut c = format!("[daemon]\ndatabase = \"{url}\"\ntimezone = \"Europe/Paris\"\n\n");
    for (name, feed) in feeds {
        c.push_str(&format!(
            "[[feed]]\nname = \"{name}\"\nurl = \"{feed}\"\n\n"
        ));
    }
    c.push_str(
        "[[rule]]\nname = \"puces\"\nany = [\"puces\", \"IA\"]\nnotify = [\"archive\"]\n\n\
         [channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n",
    );
    c
}

/// A feed of `n` matching stories, each with its own link.
fn stories(prefix: &str, n: usize) -> String {
    let items: Vec<(String, String, String, String, String)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}-{i}"),
                format!("Les puces, épisode {prefix} {i}"),
                format!("https://news.example.org/{prefix}/{i}"),
                format!("Pékin et l’IA, volet {i}."),
                recent(1 + i as i64 % 20),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect();
    rss(prefix, &refs)
}

#[tokio::test]
async fn the_pipeline_runs_on_postgresql_and_a_second_run_sends_nothing_new() {
    let server = MockServer::start().await;
    let a = rss(
        "A",
        &[
            (
                "a-1",
                "Les puces de Pékin",
                "https://news.example.org/s1",
                "IA.",
                &recent(2),
            ),
            (
                "a-2",
                "La météo",
                "https://news.example.org/s2",
                "Soleil.",
                &recent(3),
            ),
        ],
    );
    // The same story, its link written otherwise: one message for both.
    let b = rss(
        "B",
        &[(
            "b-1",
            "Pékin et les puces",
            "http://NEWS.example.org/s1?utm_source=x",
            "IA.",
            &recent(1),
        )],
    );
    serve(&server, "/a.xml", FeedDoc::rss(&a)).await;
    serve(&server, "/b.xml", FeedDoc::rss(&b)).await;
    let db = pg_server::database();
    // The test server trusts loopback: the password is there to be hidden.
    let url = db.replacen("postgresql://veille@", "postgresql://veille:s3cret@", 1);
    let env = TestEnv::new();
    env.write_config_as_is(&config(
        &url,
        &[
            ("Feed A", format!("{}/a.xml", server.uri())),
            ("Feed B", format!("{}/b.xml", server.uri())),
        ],
    ));

    let log = env.run_once();
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1, "{log}");
    assert!(
        mails[0].text.contains("Feed A") && mails[0].text.contains("Feed B"),
        "{}",
        mails[0].text
    );
    let status = env.status_json();
    assert_eq!(status["channels"][0]["sent"].as_i64(), Some(1), "{status}");
    let items: i64 = status["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["items"].as_i64().unwrap())
        .sum();
    assert_eq!(items, 3, "{status}");
    assert!(!env.path("veille.db").exists(), "no SQLite file made");

    env.run_once();
    assert_eq!(env.mails("mail").len(), 1, "nothing sent twice");

    let check = String::from_utf8_lossy(&env.ok(&["check"]).stdout).into_owned();
    assert!(
        check.contains("postgresql://veille:***@127.0.0.1") && !check.contains("s3cret"),
        "{check}"
    );
    for text in [
        log,
        String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned(),
    ] {
        assert!(!text.contains("s3cret"), "{text}");
    }
}

/// Three `run --once` at the same moment on one new database: one
/// migrates while the others wait, the stories are placed one write after
/// the other, and claims skip what another process is taking: each story
/// arrives once.
#[tokio::test]
async fn three_processes_on_one_postgresql_database_send_each_story_once() {
    let server = MockServer::start().await;
    for feed in ["x", "y", "z"] {
        serve(
            &server,
            &format!("/{feed}.xml"),
            FeedDoc::rss(&stories(feed, 15)),
        )
        .await;
    }
    let url = pg_server::database();
    let env = TestEnv::new();
    env.write_config_as_is(&config(
        &url,
        &[
            ("X", format!("{}/x.xml", server.uri())),
            ("Y", format!("{}/y.xml", server.uri())),
            ("Z", format!("{}/z.xml", server.uri())),
        ],
    ));
    let children: Vec<_> = (0..3)
        .map(|_| {
            env.command(&["run", "--once"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mails = env.mails("mail");
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((mails.len(), ids.len()), (45, 45), "each story once");
    let status = env.status_json();
    assert_eq!(status["channels"][0]["sent"].as_i64(), Some(45), "{status}");
}

/// A URL the config cannot use is refused where it is written.
#[test]
fn a_bad_database_url_is_a_located_config_error() {
    let env = TestEnv::new();
    env.write_config_as_is(&config("postgresql://h/db?sslmode=ssl", &[]));
    let out = env.veille(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml:2:") && err.contains("unknown sslmode"),
        "{err}"
    );
}

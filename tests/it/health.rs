//! SPEC §7 "Feed health": a feed failing for `failing_after` alerts once,
//! and once more when it recovers, through every channel `[health]`
//! notifies; `veille status` shows the states with or without `[health]`.
//! Real feed server, real webhook receiver, real Maildirs, real daemon.
//! The wait for `failing_after` is made by moving the commands' clock on
//! (`TestEnv::advance`), not by sleeping.

use std::time::{Duration, Instant};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{FeedDoc, Running, TestEnv, rss, serve};

const HEALTH: &str =
    "[health]\nnotify = [\"moi\", \"hook\", \"matin\"]\nfailing_after = \"1h\"\n\n";

fn config(feed: &str, hook: &str, health: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"veille.db\"\ntimeout = \"2s\"\ntimezone = \"Europe/Paris\"\n\n\
         [[feed]]\nname = \"AFP\"\nurl = \"{feed}\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n{health}\
         [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n\n\
         [channel.hook]\nkind = \"webhook\"\nurl = \"{hook}/h\"\n\n\
         [channel.matin]\nkind = \"maildir\"\npath = \"matin\"\ndigest = \"0 8 * * *\"\n"
    )
}

/// A feed server answering 500 until `heal`.
async fn broken_feed() -> MockServer {
    let server = MockServer::start().await;
    serve(&server, "/afp.xml", ResponseTemplate::new(500)).await;
    server
}

async fn heal(server: &MockServer, env: &TestEnv) {
    server.reset().await;
    let doc = rss(
        "AFP",
        &[(
            "a1",
            "Les puces",
            "https://afp.example/a1",
            "Les puces.",
            &env.recent(1),
        )],
    );
    serve(server, "/afp.xml", FeedDoc::rss(&doc)).await;
}

async fn receiver() -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    hook
}

/// Lets `hours` pass: the failure is that much older, and the feed due
/// again (its backoff is shorter).
fn age_failure(env: &TestEnv, hours: i64) {
    env.advance(hours * 3600);
}

/// The webhook bodies received, as JSON, and their `webhook-id` headers.
async fn posts(hook: &MockServer) -> Vec<(String, serde_json::Value)> {
    hook.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let id = r.headers["webhook-id"].to_str().unwrap().to_owned();
            (id, serde_json::from_slice(&r.body).unwrap())
        })
        .collect()
}

/// The subjects in the Maildir `rel`, in alphabetical order.
fn subjects(env: &TestEnv, rel: &str) -> Vec<String> {
    let mut s: Vec<String> = env.mails(rel).into_iter().map(|m| m.subject).collect();
    s.sort();
    s
}

#[tokio::test]
async fn a_failing_feed_alerts_once_and_its_recovery_once_in_every_channel() {
    let feed = broken_feed().await;
    let hook = receiver().await;
    let env = TestEnv::new();
    let url = format!("{}/afp.xml", feed.uri());
    // Without [health]: shown by status, never sent.
    env.write_config(&config(&url, &hook.uri(), ""));
    env.run_once();
    age_failure(&env, 2);
    env.run_once();
    let status = env.status_json();
    assert_eq!(status["feeds"][0]["health"]["state"], "failing", "{status}");
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(text.contains("health failing since "), "{text}");
    assert!(env.mails("mail").is_empty());
    assert!(posts(&hook).await.is_empty());

    env.write_config(&config(&url, &hook.uri(), HEALTH));
    env.run_once();
    assert_eq!(subjects(&env, "mail"), ["[veille] flux en échec : AFP"]);
    let got = posts(&hook).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (id, body) = &got[0];
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["feed"], "AFP");
    assert_eq!(body["url"], url.as_str());
    assert_eq!(body["event"], "failing");
    let mail = &env.mails("mail")[0];
    assert!(
        mail.text
            .contains(&format!("Le flux AFP ({url}) est en échec")),
        "{}",
        mail.text
    );
    assert_eq!(body["error"], "HTTP 500 Internal Server Error");
    // The digest channel waits for its digest.
    assert!(env.mails("matin").is_empty());

    // Still failing, reviewed again: nothing more.
    env.run_once();
    assert_eq!(env.mails("mail").len(), 1);
    assert_eq!(posts(&hook).await.len(), 1);

    heal(&feed, &env).await;
    env.run_once();
    env.run_once();
    assert_eq!(
        subjects(&env, "mail"),
        [
            "[veille] flux en échec : AFP",
            "[veille] flux rétabli : AFP",
            "[veille] puces: Les puces"
        ]
    );
    let got = posts(&hook).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].1["event"], "recovered");
    assert_eq!(got[1].1["recovered_from"], "failing");
    assert_eq!(got[1].1["since"], got[0].1["since"]);
    assert_ne!(got[0].0, got[1].0);
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(text.contains("health ok"), "{text}");

    // The digest lists both, in its health part.
    env.ok(&["digest", "matin"]);
    let digest = env.mails("matin");
    assert_eq!(digest.len(), 1);
    assert_eq!(digest[0].subject, "[veille] matin: santé des flux");
    assert!(
        digest[0].text.contains("Santé des flux :"),
        "{}",
        digest[0].text
    );
    assert!(
        digest[0]
            .text
            .contains(&format!("- Le flux AFP ({url}) est en échec depuis le "))
    );
    assert!(
        digest[0]
            .text
            .contains(&format!("- Le flux AFP ({url}) répond de nouveau"))
    );
}

/// Waits up to 20 s for `n` messages in the Maildir `rel`.
fn wait_for_mails(env: &TestEnv, rel: &str, n: usize) {
    let start = Instant::now();
    while env.mails(rel).len() < n && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A feed that answers 500, a webhook receiver, and a veille with
/// `[health]` that has polled the feed once (failing since now).
async fn failed_once() -> (MockServer, MockServer, TestEnv) {
    let feed = broken_feed().await;
    let hook = receiver().await;
    let env = TestEnv::new();
    let url = format!("{}/afp.xml", feed.uri());
    env.write_config(&config(&url, &hook.uri(), HEALTH));
    env.run_once();
    (feed, hook, env)
}

fn start(env: &TestEnv) -> Running {
    Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()))
}

fn stop(daemon: &mut Running) {
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
}

#[tokio::test]
async fn the_daemon_reports_a_failure_after_its_first_polls_and_a_recovery_once() {
    let (feed, hook, env) = failed_once().await;
    age_failure(&env, 2);
    let mut daemon = start(&env);
    wait_for_mails(&env, "mail", 1);
    // A little longer: nothing else comes.
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut daemon);
    assert_eq!(subjects(&env, "mail"), ["[veille] flux en échec : AFP"]);

    // Fixed while veille was stopped: the restarted daemon polls it first,
    // then reports the recovery (and the story the feed now carries).
    heal(&feed, &env).await;
    // Two hours on, the feed's backoff is over.
    age_failure(&env, 2);
    let mut daemon = start(&env);
    wait_for_mails(&env, "mail", 3);
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut daemon);
    let got = subjects(&env, "mail");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.contains(&"[veille] flux rétabli : AFP".to_owned()),
        "{got:?}"
    );
    assert!(
        got.contains(&"[veille] puces: Les puces".to_owned()),
        "{got:?}"
    );
    assert_eq!(posts(&hook).await.len(), 2);
}

#[tokio::test]
async fn a_failure_fixed_while_veille_was_stopped_is_not_reported() {
    let (feed, hook, env) = failed_once().await;
    age_failure(&env, 30);
    heal(&feed, &env).await;
    let mut daemon = start(&env);
    wait_for_mails(&env, "mail", 1);
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut daemon);
    assert_eq!(subjects(&env, "mail"), ["[veille] puces: Les puces"]);
    assert!(posts(&hook).await.is_empty());
}

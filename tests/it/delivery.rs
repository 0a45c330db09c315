//! SPEC §5 and §6 against real servers: an SMTP server and webhook
//! receivers on 127.0.0.1, the real binary, a real SQLite file.

use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{KeyInit, Mac};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{FeedDoc, Mail, TestEnv, recent, rss, serve, succeed};
use crate::smtp_server::{Encryption, Mode, SmtpServer};

/// A config with one feed, rule `puces` notifying channel `moi`, whose
/// table is `channel`; `[smtp]` on `smtp_port` when given.
fn config(feed_url: &str, channel: &str, smtp_port: Option<u16>) -> String {
    let smtp = smtp_port.map_or(String::new(), |p| {
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {p}\nsecurity = \"none\"\nfrom = \"Veille Tests <veille@localhost>\"\n\n"
        )
    });
    format!(
        "[daemon]\ndatabase = \"veille.db\"\ntimeout = \"2s\"\ntimezone = \"Europe/Paris\"\n\n{smtp}[[feed]]\nname = \"Fil AFP\"\nurl = \"{feed_url}\"\n\n[[rule]]\nname = \"puces\"\nany = [\"puces\", \"IA\"]\nnotify = [\"moi\"]\n\n[[rule]]\nname = \"tarifs\"\nall = [\"droits de douane\"]\nnotify = [\"moi\"]\n\n[channel.moi]\n{channel}\n"
    )
}

/// A webhook receiver on 127.0.0.1 that answers every POST with `status`.
async fn receiver_answering(status: u16) -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&hook)
        .await;
    hook
}

const EMAIL: &str =
    "kind = \"email\"\nto = [\"Équipe Veille <equipe@localhost>\", \"moi@localhost\"]\n";

/// Two matching stories: a title with markup-looking text and a line
/// break, and a plain one.
async fn two_stories() -> (MockServer, String) {
    let server = MockServer::start().await;
    let doc = rss(
        "AFP",
        &[
            (
                "s-1",
                "&lt;script&gt;alert(1)&lt;/script&gt; Les puces\nBcc: victime@example.org",
                "https://news.example.org/1",
                "Pékin mise sur l’IA générative.",
                &recent(2),
            ),
            (
                "s-2",
                "Droits de douane : Washington vise Pékin",
                "https://news.example.org/2",
                "Nouveaux droits de douane.",
                &recent(1),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&doc)).await;
    let url = format!("{}/afp.xml", server.uri());
    (server, url)
}

fn alert_rows(env: &TestEnv) -> Vec<(String, String, i64, Option<String>)> {
    env.rows("SELECT id, state, attempts, last_error FROM alerts ORDER BY created, id")
        .into_iter()
        .map(|r| {
            let text = |i: usize| r[i].clone().unwrap_or_default();
            (text(0), text(1), text(2).parse().unwrap(), r[3].clone())
        })
        .collect()
}

/// An hour passes (the longest wait between two attempts): every pending
/// alert's next attempt is due.
fn make_retries_due(env: &TestEnv) {
    env.advance(3600);
}

#[tokio::test]
async fn a_story_email_has_its_headers_both_parts_highlights_and_escaped_feed_text() {
    let (_feeds, url) = two_stories().await;
    let smtp = SmtpServer::start();
    let env = TestEnv::new();
    env.write_config(&config(&url, EMAIL, Some(smtp.port)));

    env.run_once();

    let got = smtp.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let ids: Vec<String> = alert_rows(&env).into_iter().map(|r| r.0).collect();
    for r in &got {
        assert_eq!(r.from, "veille@localhost");
        assert_eq!(r.to, ["equipe@localhost", "moi@localhost"]);
        let raw = String::from_utf8_lossy(&r.data);
        // No header line was injected from the feed's title.
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
    }
    let mails: Vec<Mail> = got.iter().map(|r| Mail::parse(&r.data)).collect();
    let scripted = mails
        .iter()
        .find(|m| m.subject.contains("puces"))
        .expect("the puces story");
    assert!(
        scripted.subject.starts_with(
            "[veille] puces: <script>alert(1)</script> Les puces Bcc: victime@example.org"
        ),
        "{}",
        scripted.subject
    );
    assert_eq!(scripted.content_type, "multipart/alternative");
    assert!(
        scripted.from.contains("Veille Tests") && scripted.from.contains("<veille@localhost>"),
        "{}",
        scripted.from
    );
    assert!(scripted.text.contains("Fil AFP"), "{}", scripted.text);
    assert!(scripted.text.contains("*IA*"), "{}", scripted.text);
    assert!(scripted.text.contains("https://news.example.org/1"));
    assert!(scripted.html.contains("<b>IA</b>"), "{}", scripted.html);
    assert!(!scripted.html.contains("<script>"), "{}", scripted.html);
    assert!(scripted.html.contains("&lt;script&gt;"));
    assert!(scripted.to.contains("equipe@localhost") && scripted.to.contains("moi@localhost"));
    // The Message-ID is the alert id.
    for m in &mails {
        let id = m
            .message_id
            .trim_matches(['<', '>'])
            .split('@')
            .next()
            .unwrap_or_default();
        assert!(
            ids.contains(&id.to_owned()),
            "{} not in {ids:?}",
            m.message_id
        );
    }
    // A non-ASCII subject goes encoded on the wire.
    let tarifs = got
        .iter()
        .find(|r| Mail::parse(&r.data).subject.contains("Washington"))
        .unwrap();
    let raw = String::from_utf8_lossy(&tarifs.data).replace("\r\n ", " ");
    let subject_line = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
    assert!(subject_line.contains("=?utf-8?"), "{subject_line}");
    assert!(!subject_line.contains("Pékin"), "{subject_line}");
    assert!(alert_rows(&env).iter().all(|r| r.1 == "sent"));
}

#[tokio::test]
async fn smtp_down_keeps_alerts_pending_and_the_next_due_attempt_delivers_each_once() {
    let (_feeds, url) = two_stories().await;
    let port = SmtpServer::free_port();
    let env = TestEnv::new();
    env.write_config(&config(&url, EMAIL, Some(port)));

    let before = chrono::Utc::now().timestamp();
    env.run_once();

    // A connection refused is the channel's fault (SPEC §5): one attempt,
    // then the whole channel waits; the alerts wait, nothing counted.
    let rows = alert_rows(&env);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.1 == "pending" && r.2 == 0),
        "{rows:?}"
    );
    let status = env.status_json();
    let moi = &status["channels"][0];
    assert_eq!(
        (moi["pending"].as_i64(), moi["sent"].as_i64()),
        (Some(2), Some(0)),
        "{status}"
    );
    let error = moi["paused"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("SMTP 127.0.0.1"), "{status}");
    // The channel's next step 15 to 30 s later (30 s with "equal jitter").
    let retry_at = moi["paused"]["retry_at"].as_i64().unwrap();
    assert!(
        (before + 14..=before + 40).contains(&retry_at),
        "{retry_at} vs {before}"
    );
    let human = String::from_utf8_lossy(&env.veille(&["status"]).stdout).into_owned();
    assert!(
        human.contains("paused since") && human.contains("SMTP"),
        "{human}"
    );

    let smtp = SmtpServer::start_on(port);
    make_retries_due(&env);
    env.run_once();
    env.run_once();
    assert_eq!(smtp.received().len(), 2, "each alert once");
    assert!(alert_rows(&env).iter().all(|r| r.1 == "sent"));
}

#[tokio::test]
async fn a_server_that_stalls_or_hangs_up_after_the_data_gets_the_same_message_id_again() {
    for mode in [Mode::StallAfterData, Mode::DropAfterData, Mode::NoGreeting] {
        let (_feeds, url) = two_stories().await;
        let smtp = SmtpServer::start();
        smtp.set_mode(mode);
        let env = TestEnv::new();
        env.write_config(&config(&url, EMAIL, Some(smtp.port)));

        let start = Instant::now();
        env.run_once();
        // One bounded attempt (2 s) per channel and pass, not one per alert.
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{mode:?}: {:?}",
            start.elapsed()
        );
        let first = smtp.received();
        let pending = alert_rows(&env);
        assert!(
            pending.iter().all(|r| r.1 == "pending"),
            "{mode:?}: {pending:?}"
        );
        assert_eq!(
            pending.iter().filter(|r| r.2 == 1).count(),
            1,
            "{mode:?}: {pending:?}"
        );

        smtp.set_mode(Mode::Accept);
        make_retries_due(&env);
        env.run_once();
        let all = smtp.received();
        assert!(alert_rows(&env).iter().all(|r| r.1 == "sent"), "{mode:?}");
        if mode != Mode::NoGreeting {
            // The server kept the first copy; the resend has its Message-ID.
            assert_eq!(first.len(), 1, "{mode:?}");
            let id = Mail::parse(&first[0].data).message_id;
            let same: Vec<_> = all
                .iter()
                .filter(|r| Mail::parse(&r.data).message_id == id)
                .collect();
            assert_eq!(same.len(), 2, "{mode:?}: resent with the same Message-ID");
        }
        assert_eq!(all.len(), first.len() + 2, "{mode:?}");
    }
}

/// A feed of `n` matching stories.
async fn many_stories(n: usize) -> (MockServer, String) {
    let server = MockServer::start().await;
    let items: Vec<(String, String, String)> = (0..n)
        .map(|i| {
            (
                format!("m-{i}"),
                format!("Les puces numéro {i}"),
                format!("https://news.example.org/m/{i}"),
            )
        })
        .collect();
    let date = recent(1);
    let rows: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(g, t, l)| (g.as_str(), t.as_str(), l.as_str(), "Texte.", date.as_str()))
        .collect();
    serve(&server, "/afp.xml", FeedDoc::rss(&rss("AFP", &rows))).await;
    let url = format!("{}/afp.xml", server.uri());
    (server, url)
}

#[tokio::test]
async fn consecutive_messages_share_a_connection_and_a_server_hang_up_costs_no_retry() {
    let (_feeds, url) = many_stories(25).await;
    let smtp = SmtpServer::start();
    // The server closes each connection, unannounced, after 10 messages.
    smtp.set_per_connection(10);
    let env = TestEnv::new();
    env.write_config(&config(&url, EMAIL, Some(smtp.port)));
    env.run_once();

    let got = smtp.received();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| Mail::parse(&r.data).message_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (25, 25), "each alert once");
    // 10 + 10 + 5: a connection is reused until the server drops it, and
    // the message that found it dropped went over a new one at once.
    assert_eq!(smtp.connections(), 3);
    let rows = alert_rows(&env);
    assert!(
        rows.iter()
            .all(|r| r.1 == "sent" && r.2 == 1 && r.3.is_none()),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_refusal_fails_at_once_and_retry_queues_it_again() {
    let (_feeds, url) = two_stories().await;
    let smtp = SmtpServer::start();
    smtp.set_mode(Mode::Refuse(550));
    let env = TestEnv::new();
    env.write_config(&config(&url, EMAIL, Some(smtp.port)));

    env.run_once();
    let rows = alert_rows(&env);
    assert!(rows.iter().all(|r| r.1 == "failed" && r.2 == 1), "{rows:?}");
    let status = env.status_json();
    assert_eq!(
        status["channels"][0]["failed"].as_i64(),
        Some(2),
        "{status}"
    );

    // A 4xx is temporary: not failed, retried.
    smtp.set_mode(Mode::Refuse(451));
    let out = env.ok(&["retry", "moi"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 failed alert(s) queued again"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    env.run_once();
    let rows = alert_rows(&env);
    assert_eq!(
        rows.iter().filter(|r| r.1 == "pending").count(),
        2,
        "{rows:?}"
    );

    smtp.set_mode(Mode::Accept);
    make_retries_due(&env);
    env.run_once();
    assert_eq!(smtp.received().len(), 2);
    assert!(alert_rows(&env).iter().all(|r| r.1 == "sent"));
    let out = env.veille(&["retry", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn send_test_reaches_the_server_or_says_why_not() {
    let smtp = SmtpServer::start();
    let env = TestEnv::new();
    env.write_config(&config("feed.xml", EMAIL, Some(smtp.port)));
    env.ok(&["send-test", "moi"]);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert!(Mail::parse(&got[0].data).subject.contains("test"));
    // No database was made.
    assert!(!env.path("veille.db").exists());

    env.write_config(&config("feed.xml", EMAIL, Some(SmtpServer::free_port())));
    let out = env.veille(&["send-test", "moi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not delivered") && err.contains("SMTP 127.0.0.1"),
        "{err}"
    );
}

/// A webhook's test message says what the mail says, in French, and is
/// marked as a test for a receiver that files stories.
#[tokio::test]
async fn a_webhook_test_message_is_french_and_marked_as_a_test() {
    let hook = receiver_answering(204).await;
    let env = TestEnv::new();
    let channel = format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\nformat = \"json\"\n",
        hook.uri()
    );
    env.write_config(&config("feed.xml", &channel, None));
    env.ok(&["send-test", "moi"]);
    let requests = hook.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["test"], serde_json::json!(true), "{body}");
    let summary = body["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("Message de test du canal moi") && summary.contains("le canal fonctionne"),
        "{body}"
    );
}

/// A wrong `security` for the port is the usual first mistake: the error
/// says what to change, not only what the library saw.
#[tokio::test]
async fn a_security_that_does_not_fit_the_server_says_what_to_change() {
    let smtp = SmtpServer::start(); // plain, no STARTTLS
    let env = TestEnv::new();
    let plain = config("feed.xml", EMAIL, Some(smtp.port));
    for (security, want) in [
        ("security = \"tls\"\n", "security = \"starttls\""),
        (
            "security = \"starttls\"\n",
            "security = \"tls\" on port 465",
        ),
    ] {
        env.write_config(&plain.replace("security = \"none\"\n", security));
        let out = env
            .command(&["send-test", "moi"])
            .env("VEILLE_SMTP_PASSWORD", "pw")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{security}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{security}: {err}");
        let parts: Vec<&str> = err.split(": ").collect();
        assert!(
            parts.windows(2).all(|w| w[0] != w[1]),
            "a cause said twice: {err}"
        );
    }
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn the_password_goes_to_the_server_and_nowhere_else() {
    let (_feeds, url) = two_stories().await;
    let smtp = SmtpServer::start();
    let env = TestEnv::new();
    std::fs::write(env.path("smtp-password"), "s3cr3t-pw\n").unwrap();
    let cfg = config(&url, EMAIL, Some(smtp.port)).replace(
        "security = \"none\"\n",
        "security = \"none\"\nusername = \"veille\"\npassword_file = \"smtp-password\"\n",
    );
    env.write_config(&cfg);
    let log = env.run_once();
    let got = smtp.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].auth.as_deref(), Some("veille:s3cr3t-pw"));
    let check = env.veille(&["check"]);
    for text in [
        log,
        String::from_utf8_lossy(&check.stdout).into_owned(),
        String::from_utf8_lossy(&check.stderr).into_owned(),
    ] {
        assert!(!text.contains("s3cr3t"), "{text}");
    }
    // From the environment when there is no file.
    let smtp2 = SmtpServer::start();
    let cfg = config("feed.xml", EMAIL, Some(smtp2.port)).replace(
        "security = \"none\"\n",
        "security = \"none\"\nusername = \"veille\"\n",
    );
    env.write_config(&cfg);
    succeed(
        env.command(&["send-test", "moi"])
            .env("VEILLE_SMTP_PASSWORD", "from-env"),
    );
    assert_eq!(smtp2.received()[0].auth.as_deref(), Some("veille:from-env"));
}

/// Standard Webhooks, computed here from SPEC §6, not with veille's code.
fn expected_signature(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim().strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn webhooks_are_signed_retried_after_a_500_and_failed_after_a_400() {
    let (_feeds, url) = two_stories().await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&hook)
        .await;
    let env = TestEnv::new();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    std::fs::write(env.path("hook-secret"), format!("{secret}\n")).unwrap();
    let channel = format!(
        "kind = \"webhook\"\nurl = \"{}/hook/T0KEN\"\nformat = \"json\"\nsecret_file = \"hook-secret\"\n",
        hook.uri()
    );
    env.write_config(&config(&url, &channel, None));

    let log = env.run_once();
    assert!(
        !log.contains("T0KEN"),
        "the URL's token stays out of the log: {log}"
    );
    // 500 on the first alert: the channel waits for its retry.
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);
    make_retries_due(&env);
    env.run_once(); // 500 again
    make_retries_due(&env);
    env.run_once();
    let requests = hook.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4, "2 failures, then one success per alert");
    let rows = alert_rows(&env);
    assert!(rows.iter().all(|r| r.1 == "sent"), "{rows:?}");
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut by_id: std::collections::HashMap<String, usize> = Default::default();
    for r in &requests {
        let header = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_owned();
        let (id, ts) = (header("webhook-id"), header("webhook-timestamp"));
        assert_eq!(
            header("webhook-signature"),
            expected_signature(secret, &id, &ts, &r.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["id"].as_str(),
            Some(id.as_str()),
            "webhook-id is the alert id"
        );
        assert!(ids.contains(&id));
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "feeds",
                "id",
                "link",
                "links",
                "published",
                "rules",
                "summary",
                "terms",
                "title"
            ]
        );
        assert_eq!(body["feeds"], serde_json::json!(["Fil AFP"]));
        *by_id.entry(id).or_default() += 1;
    }
    // Two alerts, the one due first tried first: the first fails, the
    // channel pauses; an hour on the second (due earlier) fails; an hour
    // on both go. Each twice, under its one id.
    let mut tries: Vec<usize> = by_id.values().copied().collect();
    tries.sort_unstable();
    assert_eq!(tries, [2, 2], "{by_id:?}");

    // A 400 is final: failed at once, never tried again by itself.
    let (_feeds2, url2) = two_stories().await;
    let hook400 = receiver_answering(400).await;
    let env = TestEnv::new();
    let channel = format!("kind = \"webhook\"\nurl = \"{}/h\"\n", hook400.uri());
    env.write_config(&config(&url2, &channel, None));
    env.run_once();
    make_retries_due(&env);
    env.run_once();
    assert_eq!(hook400.received_requests().await.unwrap().len(), 2);
    let rows = alert_rows(&env);
    assert!(rows.iter().all(|r| r.1 == "failed" && r.2 == 1), "{rows:?}");
    // Unsigned without a secret.
    let r = &hook400.received_requests().await.unwrap()[0];
    assert!(r.headers.get("webhook-signature").is_none());
    assert!(r.headers.get("webhook-id").is_some());
}

#[tokio::test]
async fn digests_group_by_rule_newest_first_and_are_sent_once() {
    let server = MockServer::start().await;
    let doc = rss(
        "AFP",
        &[
            (
                "1",
                "Les puces chinoises",
                "https://n.example.org/1",
                "Texte.",
                &recent(5),
            ),
            (
                "2",
                "Droits de douane sur l’acier",
                "https://n.example.org/2",
                "Texte.",
                &recent(4),
            ),
            (
                "3",
                "Une usine de puces",
                "https://n.example.org/3",
                "Texte.",
                &recent(3),
            ),
            (
                "4",
                "L’IA et l’emploi",
                "https://n.example.org/4",
                "Texte.",
                &recent(2),
            ),
            (
                "5",
                "Nouveaux droits de douane",
                "https://n.example.org/5",
                "Texte.",
                &recent(1),
            ),
            (
                "6",
                "Rien à voir",
                "https://n.example.org/6",
                "Texte.",
                &recent(1),
            ),
        ],
    );
    serve(&server, "/afp.xml", FeedDoc::rss(&doc)).await;
    let hook = receiver_answering(204).await;
    let env = TestEnv::new();
    let cfg = config(
        &format!("{}/afp.xml", server.uri()),
        "kind = \"maildir\"\npath = \"mail\"\ndigest = \"0 8 * * *\"\n",
        None,
    )
    .replace("notify = [\"moi\"]", "notify = [\"moi\", \"equipe\"]")
        + &format!(
            "\n[channel.equipe]\nkind = \"webhook\"\nurl = \"{}/h\"\ndigest = \"0 8 * * 1-5\"\n",
            hook.uri()
        );
    env.write_config(&cfg);

    // Without --flush-digests, digests wait for their tick.
    env.run_once();
    assert!(env.mails("mail").is_empty());
    assert!(hook.received_requests().await.unwrap().is_empty());

    let out = env.ok(&["digest", "moi", "--preview"]);
    let preview = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        preview.starts_with("Subject: [veille] moi: 5 articles"),
        "{preview}"
    );
    assert!(env.mails("mail").is_empty(), "a preview sends nothing");

    env.ok(&["run", "--once", "--flush-digests"]);
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1);
    let text = &mails[0].text;
    // The headlines first, then the stories by rule.
    assert!(text.contains("\n- Droits de douane sur l’acier"), "{text}");
    let text = &text[text.find("== ").unwrap()..];
    let order: Vec<usize> = [
        "== puces (3) ==",
        "L’IA et l’emploi",
        "Une usine de puces",
        "Les puces chinoises",
        "== tarifs (2) ==",
        "Nouveaux droits de douane",
        "Droits de douane sur l’acier",
    ]
    .iter()
    .map(|n| text.find(n).unwrap_or_else(|| panic!("{n} in {text}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("Rien à voir"));
    assert!(preview.contains("== tarifs (2) =="), "{preview}");

    let requests = hook.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let id = requests[0]
        .headers
        .get("webhook-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(body["id"].as_str(), Some(id));
    assert_eq!(body["channel"].as_str(), Some("equipe"));
    assert_eq!(body["stories"].as_array().unwrap().len(), 5);
    assert!(body["stories"][0]["rules"].is_array());

    // Nothing pending now: no second digest, and `digest` says so.
    env.ok(&["run", "--once", "--flush-digests"]);
    assert_eq!(env.mails("mail").len(), 1);
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);
    let out = env.ok(&["digest", "moi"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing pending"));
    let status = env.status_json();
    let sent: Vec<i64> = status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sent"].as_i64().unwrap())
        .collect();
    assert_eq!(sent, [5, 5], "{status}");
    // A channel without a schedule has no digest.
    let out = env.veille(&["digest", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn starttls_and_tls_carry_the_message_encrypted_and_check_the_certificate() {
    let (_feeds, url) = two_stories().await;
    let (ca_pem, server_config) = crate::smtp_server::test_pki();
    for (security, tls) in [
        ("starttls", Encryption::StartTls(server_config.clone())),
        ("tls", Encryption::Implicit(server_config.clone())),
    ] {
        let smtp = SmtpServer::start_with(0, tls);
        let env = TestEnv::new();
        std::fs::write(env.path("ca.pem"), &ca_pem).unwrap();
        std::fs::write(env.path("pw"), "tls-pw").unwrap();
        let cfg = config(&url, EMAIL, Some(smtp.port)).replace(
            "security = \"none\"\n",
            &format!("security = \"{security}\"\nusername = \"u\"\npassword_file = \"pw\"\n"),
        );
        env.write_config(&cfg);

        // Without the test CA, the certificate is not trusted: nothing sent.
        let out = env
            .command(&["send-test", "moi"])
            .env("SSL_CERT_FILE", env.path("absent.pem"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{security}");
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(err.contains("certificate"), "{security}: {err}");
        assert!(smtp.received().is_empty(), "{security}");

        let out = succeed(
            env.command(&["run", "--once"])
                .env("SSL_CERT_FILE", env.path("ca.pem")),
        );
        let got = smtp.received();
        assert_eq!(
            got.len(),
            2,
            "{security}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(got.iter().all(|r| r.tls), "{security}");
        assert_eq!(got[0].auth.as_deref(), Some("u:tls-pw"));
    }
}

/// `count` matching stories in one feed: as many alerts for `moi`.
async fn stories(count: usize) -> (MockServer, String) {
    let server = MockServer::start().await;
    let items: Vec<(String, String, String, String, String)> = (0..count)
        .map(|n| {
            (
                format!("p-{n}"),
                format!("Les puces, épisode {n}"),
                format!("https://news.example.org/p/{n}"),
                format!("Pékin et l’IA, volet {n}."),
                recent((count + 1 - n) as i64),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect();
    serve(&server, "/afp.xml", FeedDoc::rss(&rss("AFP", &refs))).await;
    let url = format!("{}/afp.xml", server.uri());
    (server, url)
}

/// SPEC §5: a wrong password is the channel's fault, not each alert's. One
/// login per backoff step for the whole channel, the alerts wait pending
/// with nothing counted against them, `status` says why, and once the
/// password is fixed, `retry` ends the pause and the next pass sends all.
#[tokio::test]
async fn a_wrong_password_pauses_the_channel_one_login_a_step_and_loses_nothing() {
    let (_feeds, url) = stories(9).await;
    let smtp = SmtpServer::start();
    smtp.set_login("veille:the-right-one");
    let env = TestEnv::new();
    std::fs::write(env.path("smtp-password"), "a-wrong-one\n").unwrap();
    env.write_config(&config(&url, EMAIL, Some(smtp.port)).replace(
        "security = \"none\"\n",
        "security = \"none\"\nusername = \"veille\"\npassword_file = \"smtp-password\"\n",
    ));

    let log = env.run_once();
    assert_eq!(smtp.auth_attempts(), 1, "one login for nine alerts: {log}");
    assert!(smtp.received().is_empty());
    let rows = alert_rows(&env);
    assert_eq!(rows.len(), 9);
    assert!(
        rows.iter().all(|r| r.1 == "pending" && r.2 == 0),
        "waiting, no attempt counted: {rows:?}"
    );
    let status = env.status_json();
    let paused = &status["channels"][0]["paused"];
    assert!(
        paused["error"].as_str().is_some_and(|e| e.contains("535")),
        "{status}"
    );
    assert_eq!(paused["attempts"].as_i64(), Some(1), "{status}");
    let text = String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned();
    assert!(
        text.contains("paused since") && text.contains("veille retry moi"),
        "{text}"
    );

    // The next pass, before the channel's next step: no login at all.
    env.run_once();
    assert_eq!(smtp.auth_attempts(), 1);
    // An hour on, one more step: one more login, still nothing lost.
    env.advance(3600);
    env.run_once();
    assert_eq!(smtp.auth_attempts(), 2);
    assert!(alert_rows(&env).iter().all(|r| r.1 == "pending"));

    // Fixed: `retry` ends the pause; the next pass logs in once, sends all.
    std::fs::write(env.path("smtp-password"), "the-right-one\n").unwrap();
    let out = env.ok(&["retry", "moi"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("no longer paused"), "{said}");
    env.run_once();
    assert_eq!(smtp.auth_attempts(), 3);
    assert_eq!(smtp.received().len(), 9);
    assert!(alert_rows(&env).iter().all(|r| r.1 == "sent"));
    let status = env.status_json();
    assert!(status["channels"][0]["paused"].is_null(), "{status}");
}

/// A webhook that refuses the credentials in its URL (401) pauses its
/// channel the same way: one request per step, the first success resumes.
#[tokio::test]
async fn a_webhook_refusing_its_credentials_pauses_the_channel() {
    let (_feeds, url) = stories(5).await;
    let hook = receiver_answering(401).await;
    let env = TestEnv::new();
    let channel = format!("kind = \"webhook\"\nurl = \"{}/h\"\n", hook.uri());
    env.write_config(&config(&url, &channel, None));
    env.run_once();
    env.run_once();
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);
    assert!(
        alert_rows(&env)
            .iter()
            .all(|r| r.1 == "pending" && r.2 == 0)
    );

    hook.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    env.advance(3600);
    env.run_once();
    assert_eq!(hook.received_requests().await.unwrap().len(), 5);
    assert!(alert_rows(&env).iter().all(|r| r.1 == "sent"));
    assert!(env.status_json()["channels"][0]["paused"].is_null());
}

/// A message is out but recording it fails for a passing reason (the
/// database busy, the connection cut): the record is made again, and the
/// message is not sent a second time (SPEC §5: each alert once).
#[tokio::test]
async fn a_sent_message_whose_record_fails_for_a_passing_reason_is_recorded_not_sent_again() {
    let (_feeds, url) = stories(1).await;
    let env = TestEnv::new();
    let hook = MockServer::start().await;
    let channel = format!("kind = \"webhook\"\nurl = \"{}/h\"\n", hook.uri());
    env.write_config(&config(&url, &channel, None));
    let (answer, cut) = env.cut_database_on_first(ResponseTemplate::new(204));
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&hook)
        .await;
    let log = env.run_once();
    assert!(cut.ended(), "a message was sent");
    assert_eq!(hook.received_requests().await.unwrap().len(), 1, "{log}");
    let rows = alert_rows(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "sent", "{log}");

    // Past any lease: nothing is sent again.
    env.advance(3600);
    env.run_once();
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);
}

/// `retry` also makes pending alerts due now: after a fix, what waits on
/// its backoff goes at the next pass instead of up to an hour later.
#[tokio::test]
async fn retry_makes_alerts_waiting_on_their_backoff_due_now() {
    let (_feeds, url) = two_stories().await;
    let smtp = SmtpServer::start();
    smtp.set_mode(Mode::Refuse(451));
    let env = TestEnv::new();
    env.write_config(&config(&url, EMAIL, Some(smtp.port)));
    // A 451 is the message's: the first pass tries one alert and waits,
    // the second tries the other.
    env.run_once();
    env.run_once();
    assert!(
        alert_rows(&env)
            .iter()
            .all(|r| r.1 == "pending" && r.2 == 1)
    );
    smtp.set_mode(Mode::Accept);
    env.run_once();
    assert!(smtp.received().is_empty(), "still on their backoff");
    let out = env.ok(&["retry", "moi"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 pending message(s) due now"), "{said}");
    env.run_once();
    assert_eq!(smtp.received().len(), 2);
}

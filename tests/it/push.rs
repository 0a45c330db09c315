//! SPEC §5 "Push": ntfy, Telegram, Matrix and Gotify end to end, each
//! against a receiver on loopback that speaks the service's API shape
//! (its routes, its answers, its 429) and keeps what arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::{FeedDoc, Running, TestEnv, recent, rss, serve};

const TOKEN: &str = "123456789:AAHk-SECRETsecretSECRETsecret0";

/// A title with what each markup must escape, and French quotes.
const TITLE_XML: &str = "Droits de douane : « riposte » &lt;immédiate&gt; &amp; ferme";
const TITLE: &str = "Droits de douane : « riposte » <immédiate> & ferme";

/// A feed of `n` stories about tariffs, the first with `TITLE` and a long
/// summary.
async fn feed(n: usize) -> (MockServer, String) {
    let server = MockServer::start().await;
    let long = "Les droits de douane frappent l’acier européen. ".repeat(300);
    let titles: Vec<String> = (0..n)
        .map(|i| match i {
            0 => TITLE_XML.to_owned(),
            _ => format!("Droits de douane : épisode {i} d’une longue série"),
        })
        .collect();
    let links: Vec<String> = (0..n)
        .map(|i| format!("https://news.example.org/{i}?utm_source=rss"))
        .collect();
    let summaries: Vec<String> = (0..n)
        .map(|i| {
            if i == 0 {
                long.clone()
            } else {
                format!("Épisode {i}.")
            }
        })
        .collect();
    let date = recent(1);
    let guids: Vec<String> = (0..n).map(|i| format!("g{i}")).collect();
    let items: Vec<(&str, &str, &str, &str, &str)> = (0..n)
        .map(|i| {
            (
                guids[i].as_str(),
                titles[i].as_str(),
                links[i].as_str(),
                summaries[i].as_str(),
                date.as_str(),
            )
        })
        .collect();
    serve(&server, "/afp.xml", FeedDoc::rss(&rss("AFP", &items))).await;
    let url = format!("{}/afp.xml", server.uri());
    (server, url)
}

/// A receiver: every request to `route` (method and path pattern) is kept
/// and answered by `answer`, which sees how many came before.
async fn receiver(
    verb: &str,
    route: &str,
    answer: impl Fn(&Request, usize) -> ResponseTemplate + Send + Sync + 'static,
) -> MockServer {
    let server = MockServer::start().await;
    let count = Arc::new(Mutex::new(0usize));
    Mock::given(method(verb))
        .and(path_regex(route))
        .respond_with(move |r: &Request| {
            let mut n = count.lock().unwrap();
            let reply = answer(r, *n);
            *n += 1;
            reply
        })
        .mount(&server)
        .await;
    server
}

fn ok_json() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true, "result": {}}))
}

async fn bodies(server: &MockServer) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
        .collect()
}

fn config(feed: &str, channels: &str, notify: &str) -> String {
    format!(
        "[daemon]\ntimeout = \"5s\"\ntimezone = \"Europe/Paris\"\n\n[[feed]]\nname = \"AFP\"\nurl = \"{feed}\"\n\n[[rule]]\nname = \"tarifs\"\nany = [\"droits de douane\"]\nnotify = [{notify}]\n\n{channels}"
    )
}

/// A Matrix homeserver's room: events by transaction id, a resend under an
/// id already seen answered with the same event and not shown again.
#[derive(Default)]
struct Room {
    events: Mutex<Vec<serde_json::Value>>,
    by_txn: Mutex<HashMap<String, usize>>,
}

async fn homeserver(room: Arc<Room>, fail_first: bool) -> MockServer {
    let server = MockServer::start().await;
    let calls = Arc::new(Mutex::new(0usize));
    Mock::given(method("PUT"))
        .and(path_regex(
            r"^/_matrix/client/v3/rooms/[^/]+/send/m\.room\.message/[^/]+$",
        ))
        .respond_with(move |r: &Request| {
            if r.headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some("Bearer syt_matrix_token")
            {
                return ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"errcode": "M_UNKNOWN_TOKEN"}));
            }
            let txn = r.url.path().rsplit('/').next().unwrap().to_owned();
            let mut by_txn = room.by_txn.lock().unwrap();
            let n = match by_txn.get(&txn) {
                Some(&n) => n,
                None => {
                    let mut events = room.events.lock().unwrap();
                    events.push(serde_json::from_slice(&r.body).unwrap());
                    by_txn.insert(txn, events.len() - 1);
                    events.len() - 1
                }
            };
            let mut c = calls.lock().unwrap();
            *c += 1;
            if fail_first && *c == 1 {
                // Stored, but the answer is lost: the client must resend.
                return ResponseTemplate::new(502);
            }
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"event_id": format!("$e{n}")}))
        })
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn every_kind_delivers_each_story_with_its_link_escaped_and_within_limits() {
    let (_feed, url) = feed(2).await;
    let ntfy = receiver("POST", "^/veille-equipe$", |_, _| {
        ResponseTemplate::new(200)
    })
    .await;
    let telegram = receiver("POST", r"^/bot[^/]+/sendMessage$", |_, _| ok_json()).await;
    let room = Arc::new(Room::default());
    let matrix = homeserver(room.clone(), false).await;
    let gotify = receiver("POST", "^/message$", |_, _| ResponseTemplate::new(200)).await;
    let env = TestEnv::new();
    std::fs::write(env.path("telegram-token"), format!("{TOKEN}\n")).unwrap();
    let channels = format!(
        "[channel.telephone]\nkind = \"ntfy\"\nurl = \"{}/veille-equipe\"\npriority = 4\ntags = [\"newspaper\"]\n\n\
         [channel.bureau]\nkind = \"telegram\"\nchat_id = \"-1001234567890\"\ntoken_file = \"telegram-token\"\napi_url = \"{}\"\n\n\
         [channel.salon]\nkind = \"matrix\"\nhomeserver = \"{}\"\nroom = \"!AbCdEf:example.org\"\n\n\
         [channel.serveur]\nkind = \"gotify\"\nurl = \"{}\"\n",
        ntfy.uri(),
        telegram.uri(),
        matrix.uri(),
        gotify.uri()
    );
    env.write_config(&config(
        &url,
        &channels,
        "\"telephone\", \"bureau\", \"salon\", \"serveur\"",
    ));
    let log = String::from_utf8(
        env.command(&["run", "--once", "--log-level", "trace"])
            .env("VEILLE_TOKEN_SALON", "syt_matrix_token")
            .env("VEILLE_TOKEN_SERVEUR", "A-gotify-app")
            .output()
            .unwrap()
            .stderr,
    )
    .unwrap();
    assert!(
        !log.contains("SECRETsecret")
            && !log.contains("syt_matrix_token")
            && !log.contains("A-gotify-app"),
        "a token in the log"
    );

    // ntfy: the text in the body, within 4,096 bytes; the rest in headers.
    let got = ntfy.received_requests().await.unwrap();
    assert_eq!(got.len(), 2, "{log}");
    let first = got
        .iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains("acier"))
        .unwrap();
    assert!(first.body.len() <= 4096, "{}", first.body.len());
    let text = String::from_utf8(first.body.clone()).unwrap();
    assert!(
        text.starts_with("tarifs · AFP\nLes droits de douane"),
        "{text}"
    );
    // The excerpt (the webhook's 1,000 bytes at most), then the link
    // without its tracking.
    assert!(text.ends_with("\nhttps://news.example.org/0"), "{text}");
    let header = |r: &Request, h: &str| r.headers.get(h).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        header(first, "click").as_deref(),
        Some("https://news.example.org/0")
    );
    assert_eq!(header(first, "priority").as_deref(), Some("4"));
    assert_eq!(header(first, "tags").as_deref(), Some("newspaper"));
    assert!(header(first, "authorization").is_none());
    let title = header(first, "title").unwrap();
    assert_eq!(decode_word(&title), TITLE);

    // Telegram: its HTML subset escaped, at most 4,096 characters.
    let sent = bodies(&telegram).await;
    assert_eq!(sent.len(), 2);
    let m = sent
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("acier"))
        .unwrap();
    let text = m["text"].as_str().unwrap();
    assert!(text.chars().count() <= 4096);
    assert!(
        text.starts_with("<b><a href=\"https://news.example.org/0\">Droits de douane : « riposte » &lt;immédiate&gt; &amp; ferme</a></b>\ntarifs · AFP\n"),
        "{text}"
    );
    assert_eq!(m["parse_mode"], "HTML");
    assert_eq!(m["chat_id"], "-1001234567890");
    let path = telegram.received_requests().await.unwrap()[0]
        .url
        .path()
        .to_owned();
    assert_eq!(path, format!("/bot{TOKEN}/sendMessage"));

    // Matrix: one event per story, under the alert's id.
    let events = room.events.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    let e = events
        .iter()
        .find(|e| e["body"].as_str().unwrap().contains("acier"))
        .unwrap();
    assert!(
        e["body"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{TITLE}\n"))
    );
    assert!(
        e["formatted_body"]
            .as_str()
            .unwrap()
            .contains("&lt;immédiate&gt; &amp; ferme</a>")
    );
    let txns: Vec<String> = matrix
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().rsplit('/').next().unwrap().to_owned())
        .collect();
    let ids: Vec<String> = env
        .rows("SELECT id FROM alerts WHERE channel = 'salon'")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    for t in &txns {
        assert!(
            ids.contains(t),
            "transaction id {t} is an alert id ({ids:?})"
        );
    }

    // Gotify: Markdown, and the link a tap opens.
    let sent = bodies(&gotify).await;
    assert_eq!(sent.len(), 2);
    let g = sent
        .iter()
        .find(|b| b["message"].as_str().unwrap().contains("acier"))
        .unwrap();
    assert_eq!(g["title"], TITLE);
    assert_eq!(
        g["extras"]["client::notification"]["click"]["url"],
        "https://news.example.org/0"
    );
    assert_eq!(
        gotify.received_requests().await.unwrap()[0]
            .headers
            .get("x-gotify-key")
            .unwrap(),
        "A-gotify-app"
    );

    // Every alert sent; nothing shows a token.
    let status = env.status_json();
    for c in status["channels"].as_array().unwrap() {
        assert_eq!(c["sent"], 2, "{c}");
    }
    let check = env.ok(&["check"]);
    let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), status);
    assert!(
        !said.contains("SECRET") && said.contains("telegram http://127.0.0.1"),
        "{said}"
    );
}

/// RFC 2047 `=?UTF-8?B?…?=` as ntfy reads it.
fn decode_word(v: &str) -> String {
    use base64::Engine;
    match v
        .strip_prefix("=?UTF-8?B?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b) => {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        }
        None => v.to_owned(),
    }
}

#[tokio::test]
async fn a_digest_is_one_message_and_says_how_many_more() {
    let (_feed, url) = feed(150).await;
    let ntfy = receiver("POST", "^/matin$", |_, _| ResponseTemplate::new(200)).await;
    let telegram = receiver("POST", r"^/bot[^/]+/sendMessage$", |_, _| ok_json()).await;
    let env = TestEnv::new();
    let channels = format!(
        "[channel.telephone]\nkind = \"ntfy\"\nurl = \"{}/matin\"\ndigest = \"0 7 * * *\"\n\n\
         [channel.bureau]\nkind = \"telegram\"\nchat_id = \"@veille_matin\"\napi_url = \"{}\"\ndigest = \"0 7 * * *\"\n",
        ntfy.uri(),
        telegram.uri()
    );
    env.write_config(&config(&url, &channels, "\"telephone\", \"bureau\""));
    crate::harness::succeed(
        env.command(&["run", "--once", "--flush-digests"])
            .env("VEILLE_TOKEN_BUREAU", TOKEN),
    );
    let got = ntfy.received_requests().await.unwrap();
    assert_eq!(got.len(), 1, "one message for the digest");
    let text = String::from_utf8(got[0].body.clone()).unwrap();
    assert!(got[0].body.len() <= 4096);
    let shown = text.matches("• ").count();
    assert!(shown > 10 && shown < 150, "{shown}");
    assert_eq!(
        text.lines().last().unwrap(),
        format!("… et {} autres", 150 - shown)
    );
    assert_eq!(
        decode_word(got[0].headers.get("title").unwrap().to_str().unwrap()),
        "[veille] telephone : 150 articles"
    );
    let sent = bodies(&telegram).await;
    assert_eq!(sent.len(), 1);
    let text = sent[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<b>[veille] bureau : 150 articles</b>\n• <a href=\"https://news.example.org/"
        ),
        "{text}"
    );
    assert!(
        text.chars().count() <= 4096 && text.contains("… et "),
        "{text}"
    );
}

#[tokio::test]
async fn a_429_is_waited_for_and_a_400_fails_without_retry() {
    let (_feed, url) = feed(1).await;
    // Telegram asks to wait a second, then takes it.
    let telegram = receiver("POST", r"^/bot[^/]+/sendMessage$", |_, n| match n {
        0 => ResponseTemplate::new(429).set_body_json(serde_json::json!({
            "ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}
        })),
        _ => ok_json(),
    })
    .await;
    // Gotify refuses the message itself.
    let gotify = receiver("POST", "^/message$", |_, _| {
        ResponseTemplate::new(400)
            .set_body_json(serde_json::json!({"error": "Bad Request", "errorCode": 400}))
    })
    .await;
    let env = TestEnv::new();
    let channels = format!(
        "[channel.bureau]\nkind = \"telegram\"\nchat_id = \"42\"\napi_url = \"{}\"\n\n[channel.serveur]\nkind = \"gotify\"\nurl = \"{}\"\n",
        telegram.uri(),
        gotify.uri()
    );
    env.write_config(&config(&url, &channels, "\"bureau\", \"serveur\""));
    let started = Instant::now();
    crate::harness::succeed(
        env.command(&["run", "--once"])
            .env("VEILLE_TOKEN_BUREAU", TOKEN)
            .env("VEILLE_TOKEN_SERVEUR", "A"),
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the wait was not waited"
    );
    assert_eq!(
        telegram.received_requests().await.unwrap().len(),
        2,
        "one 429, one send"
    );
    assert_eq!(
        gotify.received_requests().await.unwrap().len(),
        1,
        "a 400 is not retried"
    );
    let status = env.status_json();
    let channel = |n: &str| {
        status["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            channel("bureau")["sent"].as_i64(),
            channel("bureau")["failed"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(channel("serveur")["failed"], 1);
    assert!(
        channel("serveur")["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{}",
        channel("serveur")
    );

    // A long wait is the whole channel's: it pauses that long, its other
    // messages untried, none marked failed.
    let (_feed2, url2) = feed(2).await;
    let busy = receiver("POST", r"^/bot[^/]+/sendMessage$", |_, _| {
        ResponseTemplate::new(429)
            .set_body_json(serde_json::json!({"ok": false, "parameters": {"retry_after": 3600}}))
    })
    .await;
    let env = TestEnv::new();
    env.write_config(&config(
        &url2,
        &format!(
            "[channel.bureau]\nkind = \"telegram\"\nchat_id = \"42\"\napi_url = \"{}\"\n",
            busy.uri()
        ),
        "\"bureau\"",
    ));
    for _ in 0..2 {
        env.command(&["run", "--once"])
            .env("VEILLE_TOKEN_BUREAU", TOKEN)
            .output()
            .unwrap();
    }
    assert_eq!(
        busy.received_requests().await.unwrap().len(),
        1,
        "one try for the channel"
    );
    let status = env.status_json();
    let c = &status["channels"][0];
    assert_eq!(
        (c["pending"].as_i64(), c["failed"].as_i64()),
        (Some(2), Some(0)),
        "{c}"
    );
    let paused = &c["paused"];
    let wait = paused["retry_at"].as_i64().unwrap() - paused["since"].as_i64().unwrap();
    assert!(wait >= 3600, "paused {wait} s: {paused}");
    assert!(!paused["error"].as_str().unwrap().contains("SECRET"));
}

#[tokio::test]
async fn matrix_drops_a_resend_under_the_same_transaction_id() {
    let (_feed, url) = feed(1).await;
    let room = Arc::new(Room::default());
    let matrix = homeserver(room.clone(), true).await;
    let env = TestEnv::new();
    env.write_config(&config(
        &url,
        &format!("[channel.salon]\nkind = \"matrix\"\nhomeserver = \"{}\"\nroom = \"!AbCdEf:example.org\"\n", matrix.uri()),
        "\"salon\"",
    ));
    let run = |env: &TestEnv| {
        crate::harness::succeed(
            env.command(&["run", "--once"])
                .env("VEILLE_TOKEN_SALON", "syt_matrix_token"),
        )
    };
    run(&env);
    // The answer was lost: tried again later, under the same id.
    env.advance(3600);
    run(&env);
    let puts = matrix.received_requests().await.unwrap();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].url.path(), puts[1].url.path());
    assert_eq!(room.events.lock().unwrap().len(), 1, "shown once");
    assert_eq!(env.status_json()["channels"][0]["sent"], 1);
}

#[tokio::test]
async fn send_test_works_for_every_kind_and_a_refused_token_pauses_the_channel() {
    let ntfy = receiver("POST", "^/t$", |_, _| ResponseTemplate::new(200)).await;
    let telegram = receiver("POST", r"^/bot[^/]+/sendMessage$", |_, _| {
        ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        )
    })
    .await;
    let room = Arc::new(Room::default());
    let matrix = homeserver(room.clone(), false).await;
    let gotify = receiver("POST", "^/message$", |_, _| ResponseTemplate::new(200)).await;
    let env = TestEnv::new();
    let channels = format!(
        "[channel.telephone]\nkind = \"ntfy\"\nurl = \"{}/t\"\n\n[channel.bureau]\nkind = \"telegram\"\nchat_id = \"42\"\napi_url = \"{}\"\n\n\
         [channel.salon]\nkind = \"matrix\"\nhomeserver = \"{}\"\nroom = \"!a:example.org\"\n\n[channel.serveur]\nkind = \"gotify\"\nurl = \"{}\"\n",
        ntfy.uri(),
        telegram.uri(),
        matrix.uri(),
        gotify.uri()
    );
    env.write_config(&config(
        "feed.xml",
        &channels,
        "\"telephone\", \"bureau\", \"salon\", \"serveur\"",
    ));
    let test = |name: &str| {
        env.command(&["send-test", name])
            .env("VEILLE_TOKEN_BUREAU", TOKEN)
            .env("VEILLE_TOKEN_SALON", "syt_matrix_token")
            .env("VEILLE_TOKEN_SERVEUR", "A")
            .output()
            .unwrap()
    };
    for name in ["telephone", "salon", "serveur"] {
        let out = test(name);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        String::from_utf8_lossy(&ntfy.received_requests().await.unwrap()[0].body)
            .contains("Message de test du canal telephone")
    );
    assert!(
        room.events.lock().unwrap()[0]["body"]
            .as_str()
            .unwrap()
            .contains("Message de test du canal salon")
    );
    assert!(
        bodies(&gotify).await[0]["message"]
            .as_str()
            .unwrap()
            .contains("Message de test du canal serveur")
    );
    // Telegram refuses the token: said, without the token.
    let out = test("bureau");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 401") && err.contains("127.0.0.1") && !err.contains("SECRET"),
        "{err}"
    );
    // A channel without a token says where one goes.
    let out = env.command(&["send-test", "salon"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no token (set token_file, or VEILLE_TOKEN_SALON")
    );
}

#[test]
fn check_points_at_the_push_setting_that_cannot_work() {
    let env = TestEnv::new();
    let cases = [
        (
            "[channel.bureau]\nkind = \"telegram\"\ntoken_file = \"t\"\n",
            "channel.bureau.chat_id: kind = \"telegram\" needs `chat_id`",
        ),
        (
            "[channel.salon]\nkind = \"matrix\"\nhomeserver = \"https://m.example.org\"\nroom = \"#veille:example.org\"\n",
            "channel.salon.room: \"#veille:example.org\" is a room alias",
        ),
        (
            "[channel.t]\nkind = \"ntfy\"\nurl = \"http://ntfy.example.org/alertes\"\n",
            "channel.t.url: \"http://ntfy.example.org/alertes\": http:// only to this machine",
        ),
        (
            "[channel.t]\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/a\"\nchat_id = \"42\"\n",
            "channel.t.chat_id: not allowed for kind = \"ntfy\"; allowed here: kind, url, token_file, priority, tags, digest, hold",
        ),
        (
            "[channel.t]\nkind = \"pushover\"\n",
            "unknown kind \"pushover\"; use \"email\", \"webhook\", \"maildir\", \"ntfy\", \"telegram\", \"matrix\", \"gotify\"",
        ),
    ];
    for (table, want) in cases {
        env.write_config(&config(
            "feed.xml",
            table,
            &format!("\"{}\"", table.split(['.', ']']).nth(1).unwrap()),
        ));
        let out = env.veille(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{table}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}\nwant: {want}");
        assert!(
            err.contains("config.toml:")
                && err
                    .split(':')
                    .nth(2)
                    .is_some_and(|l| l.trim().parse::<u32>().is_ok()),
            "{err}"
        );
    }
    // Valid, but no token in sight: a warning that says where one goes.
    env.write_config(&config(
        "feed.xml",
        "[channel.salon]\nkind = \"matrix\"\nhomeserver = \"https://m.example.org\"\nroom = \"!a:example.org\"\n",
        "\"salon\"",
    ));
    let out = env.ok(&["check"]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("channel \"salon\" has no token: set token_file, or VEILLE_TOKEN_SALON"),
        "{said}"
    );
    let out = env
        .command(&["check"])
        .env("VEILLE_TOKEN_SALON", "syt")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("has no token"));
}

#[tokio::test]
async fn the_daemon_pushes_as_stories_arrive() {
    let (_feed, url) = feed(2).await;
    let ntfy = receiver("POST", "^/t$", |_, _| ResponseTemplate::new(200)).await;
    let env = TestEnv::new();
    env.write_config(&config(
        &url,
        &format!("[channel.t]\nkind = \"ntfy\"\nurl = \"{}/t\"\n", ntfy.uri()),
        "\"t\"",
    ));
    let mut daemon = Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));
    let start = Instant::now();
    while ntfy.received_requests().await.unwrap().len() < 2
        && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
    assert_eq!(ntfy.received_requests().await.unwrap().len(), 2);
    let _ = path("/t");
}

#[tokio::test]
async fn a_failing_feed_is_told_by_push_too() {
    let feed = MockServer::start().await;
    serve(&feed, "/afp.xml", ResponseTemplate::new(500)).await;
    let url = format!("{}/afp.xml", feed.uri());
    let ntfy = receiver("POST", "^/t$", |_, _| ResponseTemplate::new(200)).await;
    let env = TestEnv::new();
    let channels = format!(
        "[health]\nnotify = [\"t\"]\nfailing_after = \"1h\"\n\n[channel.t]\nkind = \"ntfy\"\nurl = \"{}/t\"\n",
        ntfy.uri()
    );
    env.write_config(&config(&url, &channels, "\"t\""));
    env.run_once();
    env.advance(2 * 3600);
    env.run_once();
    let got = ntfy.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        decode_word(got[0].headers.get("title").unwrap().to_str().unwrap()),
        "[veille] flux en échec : AFP"
    );
    let text = String::from_utf8(got[0].body.clone()).unwrap();
    assert!(
        text.starts_with(&format!("Le flux AFP ({url}) est en échec depuis le ")),
        "{text}"
    );
}

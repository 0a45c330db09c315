//! SPEC §7: a broken or hostile feed is that feed's problem only.

use std::io::Write;
use std::time::{Duration, Instant};

use wiremock::{MockServer, ResponseTemplate};

use crate::harness::{
    FeedDoc, Running, TestEnv, recent, rss, serve, trickle_server, wait_with_rusage,
};

/// A gzip body that inflates to `size` spaces, compressed in 1 MiB steps so
/// that this process never holds the inflated bytes (a child's peak RSS, as
/// `wait4` reports it, can include what the parent held when it forked).
fn gzip_bomb(size: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..size >> 20 {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap()
}

/// One feed's object in `status --json`.
fn status_feed(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap()
        .clone()
}

fn feed_table(name: &str, url: &str) -> String {
    format!("[[feed]]\nname = \"{name}\"\nurl = \"{url}\"\n\n")
}

const RULE_AND_CHANNEL: &str = "[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"archive\"]\n\n[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n";

#[tokio::test]
async fn hostile_and_broken_feeds_fail_alone_and_are_reported() {
    let server = MockServer::start().await;
    let good = rss(
        "Good",
        &[(
            "g1",
            "Les puces arrivent",
            "https://example.org/good",
            "x",
            &recent(1),
        )],
    );
    serve(&server, "/good.xml", FeedDoc::rss(&good)).await;
    serve(
        &server,
        "/invalid.xml",
        ResponseTemplate::new(200).set_body_raw(
            "<rss version=\"2.0\"><channel><item><title>puces",
            "application/rss+xml",
        ),
    )
    .await;
    serve(
        &server,
        "/html.xml",
        ResponseTemplate::new(200)
            .set_body_raw("<html><body>Not a feed</body></html>", "text/html"),
    )
    .await;
    serve(&server, "/missing.xml", ResponseTemplate::new(404)).await;
    serve(&server, "/gone.xml", ResponseTemplate::new(410)).await;
    let huge = format!(
        "<rss version=\"2.0\"><channel>{}</channel></rss>",
        "x".repeat(3 << 20)
    );
    serve(
        &server,
        "/huge.xml",
        ResponseTemplate::new(200).set_body_raw(huge, "application/rss+xml"),
    )
    .await;
    let bomb = gzip_bomb(256 << 20);
    serve(
        &server,
        "/bomb.xml",
        ResponseTemplate::new(200)
            .insert_header("Content-Encoding", "gzip")
            .set_body_raw(bomb, "application/rss+xml"),
    )
    .await;
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]><rss version=\"2.0\"><channel><title>&lol9;</title><item><guid>l</guid><title>puces &lol9;</title><link>https://example.org/lol</link></item></channel></rss>",
        (1..10)
            .map(|i| format!(
                "<!ENTITY lol{i} \"{}\">",
                format!(
                    "&lol{};",
                    if i == 1 {
                        String::new()
                    } else {
                        (i - 1).to_string()
                    }
                )
                .repeat(10)
            ))
            .collect::<String>()
    );
    serve(
        &server,
        "/laughs.xml",
        ResponseTemplate::new(200).set_body_raw(laughs, "application/rss+xml"),
    )
    .await;
    let slow = trickle_server(Duration::from_millis(200));

    let env = TestEnv::new();
    let base = server.uri();
    let mut cfg =
        String::from("[daemon]\ntimeout = \"2s\"\nmax_body = \"1MiB\"\nper_host = 16\n\n");
    for (name, p) in [
        ("good", "good"),
        ("invalid", "invalid"),
        ("html", "html"),
        ("missing", "missing"),
        ("gone", "gone"),
        ("huge", "huge"),
        ("bomb", "bomb"),
        ("laughs", "laughs"),
    ] {
        cfg.push_str(&feed_table(name, &format!("{base}/{p}.xml")));
    }
    cfg.push_str(&feed_table("slow", &slow));
    cfg.push_str(RULE_AND_CHANNEL);
    env.write_config(&cfg);

    let log = std::fs::File::create(env.path("log.txt")).unwrap();
    let started = Instant::now();
    let mut child = Running::spawn(env.command(&["run", "--once"]).stderr(log));
    let (code, max_rss_kib) = wait_with_rusage(&mut child);
    let elapsed = started.elapsed();
    let log = std::fs::read_to_string(env.path("log.txt")).unwrap();
    assert_eq!(code, 0, "{log}");
    assert!(
        elapsed < Duration::from_secs(8),
        "took {elapsed:?}: timeout not enforced\n{log}"
    );
    assert!(max_rss_kib < 200 * 1024, "peak RSS {max_rss_kib} KiB");

    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1, "only the good feed alerts: {mails:#?}");
    assert!(mails[0].subject.contains("Les puces arrivent"));

    let status = env.status_json();
    let feed = |name: &str| status_feed(&status, name);
    assert_eq!(feed("good")["consecutive_failures"], 0);
    let error = |name: &str| feed(name)["last_error"].as_str().unwrap_or("").to_owned();
    assert!(
        error("invalid").starts_with("parse:"),
        "{}",
        error("invalid")
    );
    assert!(
        error("html").contains("a web page (HTML), not a feed"),
        "{}",
        error("html")
    );
    assert_eq!(feed("missing")["last_status"], 404);
    assert_eq!(feed("gone")["gone"], true);
    assert!(error("huge").contains("max_body"), "{}", error("huge"));
    assert!(error("bomb").contains("max_body"), "{}", error("bomb"));
    assert!(error("slow").contains("timed out"), "{}", error("slow"));
    for name in ["invalid", "html", "missing", "gone", "huge", "bomb", "slow"] {
        assert_eq!(feed(name)["consecutive_failures"], 1, "{name}");
    }
    // Billion laughs: entities are never expanded, whatever the parser decides.
    let laughs_title: Option<String> = env
        .rows("SELECT title FROM items WHERE item_key = 'id:l'")
        .first()
        .and_then(|r| r[0].clone());
    if let Some(title) = laughs_title {
        assert!(title.len() < 1000, "entity expanded: {} bytes", title.len());
    }

    // The text report lists the failures too.
    let out = env.veille(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("410 Gone"), "{text}");
    assert!(text.contains("error: HTTP 404"), "{text}");
}

#[tokio::test]
async fn gone_feeds_and_retry_after_waits_are_not_polled_again() {
    let server = MockServer::start().await;
    serve(&server, "/gone.xml", ResponseTemplate::new(410)).await;
    serve(
        &server,
        "/busy.xml",
        ResponseTemplate::new(429).insert_header("Retry-After", "3600"),
    )
    .await;
    let env = TestEnv::new();
    let base = server.uri();
    env.write_config(&format!(
        "{}{}{RULE_AND_CHANNEL}",
        feed_table("gone", &format!("{base}/gone.xml")),
        feed_table("busy", &format!("{base}/busy.xml"))
    ));
    env.run_once();
    env.run_once();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        2,
        "each polled once: {:?}",
        requests
            .iter()
            .map(|r| r.url.path().to_owned())
            .collect::<Vec<_>>()
    );
    let status = env.status_json();
    let busy = status["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "busy")
        .unwrap()
        .clone();
    let wait = busy["next_poll"].as_i64().unwrap() - busy["last_fetch"].as_i64().unwrap();
    assert!(wait >= 3600, "next poll in {wait}s");

    // A new URL for the gone feed polls it again.
    env.write_config(&format!(
        "{}{}{RULE_AND_CHANNEL}",
        feed_table("gone", &format!("{base}/gone.xml?v=2")),
        feed_table("busy", &format!("{base}/busy.xml"))
    ));
    env.run_once();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_permanent_redirect_is_remembered_and_reported() {
    let server = MockServer::start().await;
    let doc = rss(
        "Moved",
        &[(
            "m1",
            "Les puces déménagent",
            "https://example.org/m1",
            "x",
            &recent(1),
        )],
    );
    serve(
        &server,
        "/old.xml",
        ResponseTemplate::new(301).insert_header("Location", "/new.xml"),
    )
    .await;
    serve(&server, "/new.xml", FeedDoc::rss(&doc)).await;
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}{RULE_AND_CHANNEL}",
        feed_table("moved", &format!("{}/old.xml", server.uri()))
    ));
    let log = env.run_once();
    assert!(log.contains("moved permanently"), "{log}");
    env.run_once();
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(paths, ["/old.xml", "/new.xml", "/new.xml"]);
    assert_eq!(env.mails("mail").len(), 1);
    let status = env.status_json();
    assert!(
        status["feeds"][0]["redirect_url"]
            .as_str()
            .unwrap()
            .ends_with("/new.xml")
    );
}

#[tokio::test]
async fn too_many_redirects_fail_the_feed() {
    let server = MockServer::start().await;
    for i in 0..8 {
        serve(
            &server,
            format!("/r{i}"),
            ResponseTemplate::new(302).insert_header("Location", format!("/r{}", i + 1).as_str()),
        )
        .await;
    }
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}{RULE_AND_CHANNEL}",
        feed_table("loop", &format!("{}/r0", server.uri()))
    ));
    env.run_once();
    let status = env.status_json();
    assert!(
        status["feeds"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("more than 5 redirects")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}

#[tokio::test]
async fn latin1_feeds_declared_by_http_or_prolog_read_right() {
    let server = MockServer::start().await;
    let prolog = b"\n\n<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel><title>t</title><item><guid>p</guid><title>Les puces de P\xe9kin</title><link>https://example.org/p</link></item></channel></rss>".to_vec();
    let header_only = b"<rss version=\"2.0\"><channel><title>t</title><item><guid>h</guid><title>Puces \xe0 S\xe9oul</title><link>https://example.org/h</link></item></channel></rss>".to_vec();
    serve(
        &server,
        "/prolog.xml",
        ResponseTemplate::new(200).set_body_raw(prolog, "application/rss+xml"),
    )
    .await;
    serve(
        &server,
        "/header.xml",
        ResponseTemplate::new(200)
            .set_body_raw(header_only, "application/rss+xml; charset=windows-1252"),
    )
    .await;
    let env = TestEnv::new();
    let base = server.uri();
    env.write_config(&format!(
        "[daemon]\nfirst_poll_window = \"3650d\"\n{}{}{RULE_AND_CHANNEL}",
        feed_table("prolog", &format!("{base}/prolog.xml")),
        feed_table("header", &format!("{base}/header.xml"))
    ));
    env.run_once();
    let titles: Vec<String> = env
        .rows("SELECT title FROM items ORDER BY title")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(titles, ["Les puces de Pékin", "Puces à Séoul"]);
}

#[tokio::test]
async fn a_document_of_480_000_tiny_items_costs_what_a_few_hundred_do() {
    let server = MockServer::start().await;
    let mut doc = String::from("<rss version=\"2.0\"><channel><title>t</title>");
    for i in 0..480_000 {
        doc.push_str(&format!("<item><guid>{i:x}</guid></item>"));
    }
    doc.push_str("</channel></rss>");
    assert!(doc.len() < 16 << 20, "inside the default max_body");
    serve(
        &server,
        "/many.xml",
        ResponseTemplate::new(200).set_body_raw(doc, "application/rss+xml"),
    )
    .await;
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}{RULE_AND_CHANNEL}",
        feed_table("many", &format!("{}/many.xml", server.uri()))
    ));
    let log = std::fs::File::create(env.path("log.txt")).unwrap();
    let mut child = Running::spawn(env.command(&["run", "--once"]).stderr(log));
    let (code, max_rss_kib) = wait_with_rusage(&mut child);
    assert_eq!(code, 0);
    assert!(max_rss_kib < 150 * 1024, "peak RSS {max_rss_kib} KiB");
    let items = env.number("SELECT COUNT(*) FROM items");
    assert_eq!(items, 500);
    assert!(
        std::fs::read_to_string(env.path("log.txt"))
            .unwrap()
            .contains("dropped=479500")
    );
}

#[tokio::test]
async fn a_document_with_items_veille_cannot_read_or_none_at_all_is_never_silent() {
    let server = MockServer::start().await;
    // One entry veille reads, and two `<item>` elements an Atom feed should
    // not hold: a lenient reader reads three.
    let odd = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>
        <entry><id>e1</id><title>Les puces</title><link href="https://example.org/e1"/><updated>2025-04-26T09:00:00Z</updated></entry>
        <item><title>Perdu un</title></item><item><title>Perdu deux</title></item></feed>"#;
    let empty = r#"<rss version="2.0"><channel><title>Rien</title><link>https://example.org/</link><description>d</description></channel></rss>"#;
    serve(
        &server,
        "/odd.xml",
        ResponseTemplate::new(200).set_body_raw(odd, "application/atom+xml"),
    )
    .await;
    serve(&server, "/empty.xml", FeedDoc::rss(empty)).await;
    let env = TestEnv::new();
    let base = server.uri();
    env.write_config(&format!(
        "[daemon]\nfirst_poll_window = \"36500d\"\n{}{}{RULE_AND_CHANNEL}",
        feed_table("odd", &format!("{base}/odd.xml")),
        feed_table("empty", &format!("{base}/empty.xml"))
    ));
    let log = env.run_once();
    assert!(
        log.contains("could not read") && log.contains("unread=2") && log.contains("odd"),
        "{log}"
    );
    let status = env.status_json();
    let feed = |name: &str| status_feed(&status, name);
    assert_eq!(feed("odd")["unread_items"], 2, "{status}");
    assert_eq!(feed("odd")["last_items"], 1, "{status}");
    assert_eq!(feed("empty")["last_items"], 0, "{status}");
    let human = String::from_utf8_lossy(&env.ok(&["status"]).stdout).into_owned();
    assert!(
        human.contains("warning: the last document held 2 items veille could not read"),
        "{human}"
    );
    assert!(
        human.contains("warning: the last document held no item"),
        "{human}"
    );
    // `veille test --feed` says it too.
    let out = env.veille(&["test", "--feed", &format!("{base}/odd.xml")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 more items than veille could read"), "{err}");
}

#[tokio::test]
async fn test_feed_on_a_web_page_reads_the_feed_it_announces() {
    let server = MockServer::start().await;
    let page = r#"<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Le Quotidien</title>
        <link rel="alternate" type="application/atom+xml" title="Atom" href="/atom.xml">
        <link rel="alternate" type="application/rss+xml" title="Économie" href="flux/eco.xml">
        </head><body><p>Bienvenue</p></body></html>"#;
    serve(
        &server,
        "/economie/",
        ResponseTemplate::new(200).set_body_raw(page, "text/html; charset=utf-8"),
    )
    .await;
    let doc = rss(
        "Économie",
        &[(
            "e-1",
            "Les puces de Pékin",
            "https://example.org/e-1",
            "Texte.",
            &recent(1),
        )],
    );
    serve(&server, "/economie/flux/eco.xml", FeedDoc::rss(&doc)).await;
    serve(
        &server,
        "/vide/",
        ResponseTemplate::new(200).set_body_raw("<html><body>rien</body></html>", "text/html"),
    )
    .await;
    let env = TestEnv::new();
    env.write_config(&format!(
        "{}{RULE_AND_CHANNEL}",
        feed_table("f", &format!("{}/economie/flux/eco.xml", server.uri()))
    ));
    let out = env.veille(&["test", "--feed", &format!("{}/economie/", server.uri())]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("Les puces de Pékin"), "{stdout}");
    let rss_url = format!("{}/economie/flux/eco.xml", server.uri());
    assert!(
        stderr.contains(&format!("announces a feed (RSS): {rss_url} (Économie)"))
            && stderr.contains(&format!(
                "announces a feed (Atom): {}/atom.xml",
                server.uri()
            ))
            && stderr.contains(&format!("reading {rss_url}")),
        "{stderr}"
    );
    let out = env.veille(&["test", "--feed", &format!("{}/vide/", server.uri())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("announces no feed"), "{stderr}");
}

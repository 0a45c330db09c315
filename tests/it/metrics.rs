//! SPEC §9: `[daemon] listen` serves `/metrics` (read back here by a real
//! Prometheus text parser) and `/healthz`. A real daemon polls a real feed
//! server (one feed good, one failing) and delivers to a Maildir and to a
//! webhook nobody listens on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use wiremock::{MockServer, ResponseTemplate};

use crate::harness::{FeedDoc, Running, TestEnv, recent, rss, serve};

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(listen: u16, feeds: &str, dead_hook: u16) -> String {
    format!(
        "[daemon]\ndatabase = \"veille.db\"\ntimeout = \"2s\"\nlisten = \"127.0.0.1:{listen}\"\n\n\
         [[feed]]\nname = \"AFP\"\nurl = \"{feeds}/afp.xml\"\nfull_text = \"always\"\n\n\
         [[feed]]\nname = \"Cassé\"\nurl = \"{feeds}/broken.xml\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\", \"hook\"]\n\n\
         [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n\n\
         [channel.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead_hook}/h\"\n"
    )
}

/// GET `path` from the daemon: status, body (`Err` while it does not
/// answer yet).
async fn try_get(port: u16, path: &str) -> Result<(u16, String), reqwest::Error> {
    veille::fetch::install_crypto();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await?;
    if path == "/metrics" {
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
    Ok((r.status().as_u16(), r.text().await?))
}

async fn get(port: u16, path: &str) -> (u16, String) {
    try_get(port, path).await.unwrap()
}

/// Each sample's value by metric name and labels (`name{a=x,b=y}`, labels
/// sorted), histograms by their count.
fn values(text: &str) -> HashMap<String, (f64, &'static str)> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let key = |s: &Sample| {
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        format!("{}{{{}}}", s.metric, labels.join(","))
    };
    scrape
        .samples
        .iter()
        .map(|s| {
            let v = match &s.value {
                Value::Counter(v) => (*v, "counter"),
                Value::Gauge(v) => (*v, "gauge"),
                Value::Histogram(h) => (h.iter().map(|b| b.count).fold(0.0, f64::max), "histogram"),
                Value::Untyped(v) => (*v, "untyped"),
                Value::Summary(_) => (f64::NAN, "summary"),
            };
            (key(s), v)
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_fetches_alerts_and_deliveries_and_healthz_sees_the_database_go() {
    let feeds = MockServer::start().await;
    // Each item's page is fetched (`full_text`): a1's has the article in
    // its JSON-LD, a2's and a3's are not found.
    let (a1, a2, a3) = (
        format!("{}/a1", feeds.uri()),
        format!("{}/a2", feeds.uri()),
        format!("{}/a3", feeds.uri()),
    );
    let body = "Les puces chinoises gagnent des parts de marché en Europe. ".repeat(12);
    let page = format!(
        r#"<html><head><script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{body}"}}</script></head><body></body></html>"#
    );
    serve(
        &feeds,
        "/a1",
        ResponseTemplate::new(200).set_body_raw(page, "text/html"),
    )
    .await;
    let doc = rss(
        "AFP",
        &[
            ("a1", "Les puces chinoises", &a1, "Puces.", &recent(1)),
            ("a2", "Des puces en Europe", &a2, "Puces.", &recent(2)),
            ("a3", "La météo", &a3, "Soleil.", &recent(3)),
        ],
    );
    serve(&feeds, "/afp.xml", FeedDoc::rss(&doc)).await;
    serve(&feeds, "/broken.xml", ResponseTemplate::new(500)).await;
    let env = TestEnv::new();
    let port = free_port();
    env.write_config(&config(port, &feeds.uri(), free_port()));
    let _daemon = Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));

    // Both alerts delivered to the Maildir; the webhook's connection is
    // refused: the channel's fault, one attempt, then the channel waits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if let Ok((200, r)) = try_get(port, "/metrics").await {
            let v = values(&r);
            let n = |k: &str| v.get(k).map_or(0.0, |x| x.0);
            if n("veille_deliveries_total{channel=moi,result=sent}") == 2.0
                && n("veille_deliveries_total{channel=hook,result=retry}") == 1.0
            {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "deliveries never counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expect = |key: &str, value: f64, kind: &str| {
        assert_eq!(metrics.get(key), Some(&(value, kind)), "{key}");
    };
    expect("veille_fetches_total{result=ok}", 1.0, "counter");
    expect("veille_fetches_total{result=error}", 1.0, "counter");
    expect("veille_fetches_total{result=not_modified}", 0.0, "counter");
    expect("veille_items_total{}", 3.0, "counter");
    expect("veille_pages_total{result=ok}", 1.0, "counter");
    expect("veille_pages_total{result=failed}", 2.0, "counter");
    expect("veille_alerts_total{channel=moi}", 2.0, "counter");
    expect("veille_alerts_total{channel=hook}", 2.0, "counter");
    expect(
        "veille_deliveries_total{channel=hook,result=sent}",
        0.0,
        "counter",
    );
    expect(
        "veille_deliveries_total{channel=moi,result=failed}",
        0.0,
        "counter",
    );
    expect("veille_feeds{state=ok}", 1.0, "gauge");
    expect("veille_feeds{state=failing}", 1.0, "gauge");
    expect("veille_feeds{state=gone}", 0.0, "gauge");
    expect("veille_outbox_pending{channel=hook}", 2.0, "gauge");
    expect("veille_outbox_pending{channel=moi}", 0.0, "gauge");
    // Both sends took less than a minute from first sight: the +Inf
    // bucket and the 60 s bucket hold both.
    expect(
        "veille_alert_latency_seconds{channel=moi}",
        2.0,
        "histogram",
    );
    assert_eq!(env.mails("mail").len(), 2);

    assert_eq!(get(port, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(get(port, "/nope").await.0, 404);

    if crate::harness::on_postgres() {
        // The database refusing new connections: the probe's fresh one
        // fails while the daemon's own still answer: unhealthy, and why.
        let name = env.rows("SELECT current_database()")[0][0].clone().unwrap();
        env.execute_on_server(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
        let (status, body) = get(port, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("the database does not answer"), "{body}");
        return;
    }
    // The database file replaced under the daemon by something that is
    // not one (its open connections still answer, from the old file):
    // unhealthy, and said why.
    let garbage = env.path("garbage");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    std::fs::rename(&garbage, env.path("veille.db")).unwrap();
    let (status, body) = get(port, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("is not the one veille opened"), "{body}");
    // Removed: the same.
    std::fs::remove_file(env.path("veille.db")).unwrap();
    let (status, body) = get(port, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
}

#[test]
fn a_taken_port_stops_the_start_with_the_address_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let env = TestEnv::new();
    env.write_config(&config(port, "http://127.0.0.1:9", 9));
    let out = env.veille(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (daemon.listen)"
        )),
        "{err}"
    );
}

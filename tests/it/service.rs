//! SPEC §8: the daemon under a service manager — readiness, watchdog,
//! reload on SIGHUP and stop on SIGTERM, seen from outside: the real binary,
//! a `NOTIFY_SOCKET` datagram socket owned by the test, loopback feeds.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use wiremock::MockServer;

use crate::harness::{FeedDoc, Running, TestEnv, recent, rss, serve};

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// Notifications received on `socket` until one contains `want`.
fn wait_for(socket: &UnixDatagram, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l == want);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want} within 10 s; got {seen:?}");
}

fn config(feeds: &[(&str, String)]) -> String {
    let mut s = String::from("[daemon]\ndatabase = \"veille.db\"\n\n");
    for (name, url) in feeds {
        s.push_str(&format!("[[feed]]\nname = \"{name}\"\nurl = \"{url}\"\n\n"));
    }
    s + "[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"archive\"]\n\n[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n"
}

async fn requests_to(server: &MockServer, path: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == path)
        .count()
}

/// Waits until the Maildir holds `n` messages: every poll before is recorded.
async fn wait_for_mails(env: &TestEnv, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while env.mails("mail").len() < n {
        assert!(Instant::now() < end, "fewer than {n} messages");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn feeds_server() -> MockServer {
    let server = MockServer::start().await;
    for name in ["a", "b", "c"] {
        let doc = rss(
            name,
            &[(
                &format!("{name}-1"),
                &format!("Les puces {name}"),
                &format!("https://example.org/{name}"),
                "x",
                &recent(1),
            )],
        );
        serve(&server, format!("/{name}.xml"), FeedDoc::rss(&doc)).await;
    }
    server
}

#[tokio::test]
async fn notify_socket_sees_ready_watchdog_reloading_and_stopping() {
    let server = feeds_server().await;
    let env = TestEnv::new();
    env.write_config(&config(&[("A", format!("{}/a.xml", server.uri()))]));
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Running::spawn(
        env.command(&["run"])
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .stderr(Stdio::null()),
    );

    let first = wait_for(&socket, "READY=1");
    assert!(
        first.last().unwrap().contains("STATUS=watching 1 feeds"),
        "{first:?}"
    );
    // The database exists and is migrated before READY.
    let migrated = match crate::harness::on_postgres() {
        true => env.number("SELECT version FROM veille_schema") > 0,
        false => env.path("veille.db").exists(),
    };
    assert!(migrated);
    // WatchdogSec=0.4s: a ping every 0.2 s.
    let start = Instant::now();
    wait_for(&socket, "WATCHDOG=1");
    wait_for(&socket, "WATCHDOG=1");
    assert!(start.elapsed() < Duration::from_secs(2));

    signal(&child, libc::SIGHUP);
    let reload = wait_for(&socket, "READY=1");
    assert!(
        reload.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")),
        "{reload:?}"
    );
    let reloading = reload.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");

    signal(&child, libc::SIGTERM);
    wait_for(&socket, "STOPPING=1");
    let stopped = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(stopped.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn sighup_adds_a_feed_without_restart_and_a_broken_config_keeps_the_old_one() {
    let server = feeds_server().await;
    let env = TestEnv::new();
    let a = ("A", format!("{}/a.xml", server.uri()));
    let b = ("B", format!("{}/b.xml", server.uri()));
    let c = ("C", format!("{}/c.xml", server.uri()));
    env.write_config(&config(std::slice::from_ref(&a)));
    let mut child = Running::spawn(env.command(&["run"]).stderr(Stdio::piped()));
    wait_for_mails(&env, 1).await;

    // A feed added: polled without a restart.
    env.write_config(&config(&[a.clone(), b.clone()]));
    signal(&child, libc::SIGHUP);
    wait_for_mails(&env, 2).await;

    // A broken config: logged with its location, the running one kept.
    std::fs::write(
        env.path("config.toml"),
        config(&[a.clone(), b.clone()]).replace("[[rule]]", "[[rule]]\nnom = 1"),
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // Fixed again, with C: polled; A and B keep their state (their next
    // poll is a quarter of an hour away, so they are not fetched again).
    env.write_config(&config(&[a, b, c]));
    signal(&child, libc::SIGHUP);
    wait_for_mails(&env, 3).await;
    assert_eq!(requests_to(&server, "/a.xml").await, 1);
    assert_eq!(requests_to(&server, "/b.xml").await, 1);

    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let config_path = env.path("config.toml");
    assert!(
        log.contains(&format!("{}:13:1:", config_path.display())) && log.contains("nom"),
        "{log}"
    );
    assert!(log.contains("keeping the running one"), "{log}");
    assert_eq!(env.mails("mail").len(), 3);
}

/// SPEC §8: under the shipped unit (`UMask=0027`, `StateDirectoryMode=0750`)
/// the Maildir is readable by the group the README tells readers to join:
/// veille creates its folders and messages with the modes the umask leaves,
/// never tighter, and the unit says so.
#[tokio::test]
async fn under_the_units_umask_the_maildir_is_readable_by_its_group() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let server = feeds_server().await;
    let env = TestEnv::new();
    env.write_config(&config(&[("AFP", format!("{}/a.xml", server.uri()))]));
    let mut cmd = env.command(&["run", "--once"]);
    // SAFETY: umask(2) is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o027);
            Ok(())
        });
    }
    crate::harness::succeed(&mut cmd);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let new = env.path("mail/new");
    assert_eq!(mode(&new), 0o750);
    assert_eq!(mode(&env.path("mail")), 0o750);
    let messages: Vec<_> = std::fs::read_dir(&new)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!messages.is_empty());
    for m in messages {
        assert_eq!(mode(&m), 0o640, "{}", m.display());
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/veille.service"
    ))
    .unwrap();
    for line in [
        "UMask=0027",
        "StateDirectoryMode=0750",
        "User=veille",
        "Group=veille",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
    let users = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/veille.sysusers"
    ))
    .unwrap();
    assert!(users.lines().any(|l| l.starts_with("u veille ")), "{users}");
}

//! A real PostgreSQL for the tests: one throwaway server per test binary,
//! started from the programs installed on the machine (`initdb`, `pg_ctl`,
//! Debian's `postgresql` package) in a temporary folder, on a free loopback
//! port; each test gets a database of its own. As root, the server runs as
//! the `postgres` user (PostgreSQL refuses root). A watcher stops the
//! server and removes its folder when the test binary exits, however it
//! exits.
//!
//! `VEILLE_TEST_POSTGRES_URL` (e.g. `postgresql://me:pw@127.0.0.1:5432/postgres`)
//! points the tests at an existing server instead: they create and drop
//! databases on it. No test is skipped: without a server, they fail and say
//! how to get one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server every PostgreSQL test of this binary uses: an admin URL
/// without a database name.
struct Server {
    /// `postgresql://user[:password]@127.0.0.1:port`
    base: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database on the test server; returns its URL.
pub fn database() -> String {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    };
    create_database(&server.base)
}

/// Creates a database of its own name on the server at `base`; its URL.
fn create_database(base: &str) -> String {
    let name = format!(
        "veille_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // On a thread of its own: the blocking client runs a runtime, which
    // may not start inside a test's.
    std::thread::scope(|s| {
        s.spawn(|| {
            let admin = format!("{base}/postgres");
            let mut admin = postgres::Client::connect(&admin, postgres::NoTls)
                .expect("connect to the test server");
            for sql in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                admin.batch_execute(&sql).expect("create a test database");
            }
        });
    });
    format!("{base}/{name}")
}

/// A server of one test's own, which that test may stop and start again
/// (a restart of PostgreSQL under running daemons) while the shared one
/// serves the other tests.
pub struct Private {
    base: String,
    pg: Launched,
}

impl Private {
    pub fn start() -> Private {
        let dir = std::env::temp_dir().join(format!(
            "veille-pg-{}-own-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match launch(&dir) {
            Ok(pg) => Private {
                base: format!("postgresql://veille@127.0.0.1:{}", pg.port),
                pg,
            },
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh database on this server; its URL.
    pub fn database(&self) -> String {
        create_database(&self.base)
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are cut).
    pub fn stop(&self) {
        run(
            self.pg.root,
            Command::new(self.pg.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.pg.dir.join("data"))
                .args(["-m", "fast", "-w", "stop"]),
        )
        .expect("stop the test's own PostgreSQL");
    }

    /// Starts it again, on the same port, with the same data.
    pub fn start_again(&self) {
        self.pg
            .start()
            .expect("start the test's own PostgreSQL again");
    }
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("VEILLE_TEST_POSTGRES_URL") {
        let base = url
            .rsplit_once('/')
            .filter(|(scheme, _)| !scheme.ends_with('/'))
            .map_or(url.clone(), |(base, _)| base.to_string());
        return Ok(Server { base });
    }
    let dir = std::env::temp_dir().join(format!("veille-pg-{}", std::process::id()));
    let pg = launch(&dir)?;
    Ok(Server {
        base: format!("postgresql://veille@127.0.0.1:{}", pg.port),
    })
}

/// A server running from `dir` (made afresh), stopped and removed once
/// this process is gone.
struct Launched {
    bin: PathBuf,
    dir: PathBuf,
    root: bool,
    port: u16,
}

impl Launched {
    fn start(&self) -> Result<(), String> {
        run(
            self.root,
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                    self.port,
                    self.dir.display()
                ))
                .args(["-w", "start"]),
        )
    }
}

fn launch(dir: &Path) -> Result<Launched, String> {
    let bin = programs().ok_or_else(|| {
        "the PostgreSQL tests need PostgreSQL's programs (initdb, pg_ctl): \
         install them with `apt-get install postgresql` (Debian), or set \
         VEILLE_TEST_POSTGRES_URL to a server the tests may create databases on"
            .to_string()
    })?;
    let root = unsafe { libc::geteuid() } == 0;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if root {
        chown_to_postgres(dir)?;
    }
    run(
        root,
        Command::new(bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "veille",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(dir.join("data")),
    )?;
    let pg = Launched {
        bin,
        dir: dir.to_owned(),
        root,
        port: free_port(),
    };
    pg.start()?;
    watch(root, &pg.bin, dir);
    Ok(pg)
}

/// The folder of `initdb` and `pg_ctl`: on the PATH, else Debian's
/// versioned folder (newest first).
fn programs() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file());
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

fn run(root: bool, cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = if root {
        let mut runuser = Command::new("runuser");
        runuser
            .args(["-u", "postgres", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        runuser.output()
    } else {
        cmd.output()
    }
    .map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let out = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cannot give {} to the postgres user (PostgreSQL does not run as root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Stops the server and removes its folder once this process is gone.
fn watch(root: bool, bin: &Path, dir: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {stop} {pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        stop = if root { "runuser -u postgres --" } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = dir.join("data").display(),
        dir = dir.display(),
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

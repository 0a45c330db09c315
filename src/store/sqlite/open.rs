//! Opening the database: the embedded migrations, WAL mode, the busy
//! timeout, refusing a newer schema, and giving freed pages back.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use super::{Sqlite, new_id};

pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../../migrations/sqlite/0001_init.sql")),
        M::up(include_str!("../../../migrations/sqlite/0002_digests.sql")),
        M::up(include_str!("../../../migrations/sqlite/0003_wire.sql")),
        M::up(include_str!("../../../migrations/sqlite/0004_leases.sql")),
        M::up(include_str!("../../../migrations/sqlite/0005_unread.sql")),
        M::up(include_str!("../../../migrations/sqlite/0006_health.sql")),
        M::up(include_str!(
            "../../../migrations/sqlite/0007_retention.sql"
        )),
        M::up(include_str!(
            "../../../migrations/sqlite/0008_prune_indexes.sql"
        )),
        M::up(include_str!(
            "../../../migrations/sqlite/0009_wire_copies.sql"
        )),
        M::up(include_str!(
            "../../../migrations/sqlite/0010_channel_faults.sql"
        )),
        M::up(include_str!(
            "../../../migrations/sqlite/0011_feed_leases.sql"
        )),
        M::up(include_str!(
            "../../../migrations/sqlite/0012_processes.sql"
        )),
        M::up(include_str!(
            "../../../migrations/sqlite/0013_item_texts.sql"
        )),
        M::up(include_str!("../../../migrations/sqlite/0014_pages.sql")),
    ])
}

const SCHEMA_VERSION: i64 = 14;

/// A file's (device, inode), to tell it from a file put in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity(u64, u64);

impl Identity {
    /// The identity of the file at `path` now; `None` (logged) when it
    /// cannot be read, and then a replaced file goes unnoticed.
    pub fn of(path: &Path) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        let identity = std::fs::metadata(path)
            .ok()
            .map(|m| Identity(m.dev(), m.ino()));
        if identity.is_none() {
            tracing::warn!(database = %path.display(),
                "cannot read the database file's identity: /healthz will not notice it being replaced");
        }
        identity
    }
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        configure(&conn)?;
        // Only an empty database takes the setting; one made by an older
        // veille is converted after its migration (`reclaiming`).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        write_ahead_log(&conn)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        refuse_newer(&conn, path)?;
        migrate(&mut conn)
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
        reclaiming(&conn, path);
        Ok(Sqlite::from_connection(conn))
    }

    fn from_connection(conn: Connection) -> Sqlite {
        Sqlite {
            conn,
            owner: new_id(),
            wire: None,
        }
    }

    /// Opens an existing database without creating or migrating it, for
    /// commands that only read (`status`). Says where it looked if absent.
    pub fn open_existing(path: &Path) -> Result<Sqlite> {
        if !path.exists() {
            bail!(
                "no database at {} (it is created by `veille run`; under systemd, set STATE_DIRECTORY=/var/lib/veille)",
                path.display()
            );
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        configure(&conn)?;
        refuse_newer(&conn, path)?;
        let version = user_version(&conn)?;
        if version < SCHEMA_VERSION {
            bail!(
                "the database {} is from an older veille; run `veille run` once to migrate it",
                path.display()
            );
        }
        Ok(Sqlite::from_connection(conn))
    }

    /// The connection, for what reads every table (`store::copy`).
    pub(in crate::store) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Writes the write-ahead log back into the database file and empties
    /// it (SQLite otherwise does so in steps, during later commits).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Statement journals (a statement with RETURNING or ON CONFLICT inside
    // a write may have to undo itself) and temporary tables stay in
    // memory: on disk, each was a file of its own written page by page,
    // ten page writes for every one to the database.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The write-ahead log is reused from its start after each checkpoint
    // but never shrinks by itself: one large write (a first prune of a
    // year of items) would leave it that size for good. Past this, it is
    // cut back when it is next reset.
    conn.pragma_update(None, "journal_size_limit", WAL_KEPT)?;
    Ok(())
}

/// The size the write-ahead log is cut back to: the 1,000 pages (4 MiB)
/// after which SQLite checkpoints, and room for a write beyond them.
const WAL_KEPT: i64 = 8 << 20;

/// Puts the database in WAL mode. Switching takes a lock that SQLite does
/// not wait for (no busy handler), so when another process is creating the
/// database at the same moment, this waits and tries again, up to the busy
/// timeout.
fn write_ahead_log(conn: &Connection) -> Result<()> {
    let mut waited = Duration::ZERO;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e) if is_busy(&e) && waited < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
                waited += Duration::from_millis(20);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// How long a statement waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Brings the schema up to date. Safe when several processes start at
/// once: each migration runs in a transaction that takes the write lock
/// first, and a process that finds the schema moved on while it waited (its
/// migration then fails: the tables exist) starts again from the version it
/// now reads. Errors are one line, without the migration's SQL.
fn migrate(conn: &mut Connection) -> Result<()> {
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    let mut result = Ok(());
    for _ in 0..3 {
        let before = user_version(conn)?;
        result = migrations().to_latest(conn);
        if result.is_ok() || user_version(conn)? == before {
            break;
        }
    }
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Deferred);
    result.map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => anyhow::Error::new(err),
        other => anyhow::Error::new(other),
    })
}

/// Makes the database give pruned pages back to the file system
/// (`Sqlite::reclaim`): a database made before retention existed is
/// rewritten once with `auto_vacuum = INCREMENTAL`. When that fails (another
/// process reading, too little disk), freed pages are still reused for new
/// rows, so the file stops growing all the same; it is tried again at the
/// next start.
fn reclaiming(conn: &Connection, path: &Path) {
    let mode: rusqlite::Result<i64> = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0));
    if mode.is_ok_and(|m| m == 2) {
        return;
    }
    tracing::info!(database = %path.display(), "rewriting the database once so that pruning can shrink it");
    let converted = conn
        .pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .and_then(|()| conn.execute_batch("VACUUM"));
    if let Err(e) = converted {
        tracing::warn!(database = %path.display(), error = %e, "cannot rewrite the database; freed pages are reused but the file will not shrink");
    }
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

fn refuse_newer(conn: &Connection, path: &Path) -> Result<()> {
    let version = user_version(conn)?;
    if version > SCHEMA_VERSION {
        bail!(
            "the database {} was written by a newer veille (schema {version}; this veille knows up to {SCHEMA_VERSION}); upgrade veille",
            path.display()
        );
    }
    Ok(())
}

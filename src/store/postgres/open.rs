//! Connecting (password sources, TLS) and migrating: the schema from
//! `migrations/postgres/`, embedded, applied at start by one process while
//! the others wait on an advisory lock; a database from a newer veille is
//! refused.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use postgres::{Client, NoTls};

use super::Postgres;
use crate::store::location::{PgUrl, Tls};
use crate::store::new_id;

/// The migrations, in order; the schema's version is their count.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_schema.sql"),
    include_str!("../../../migrations/postgres/0002_feed_leases.sql"),
    include_str!("../../../migrations/postgres/0003_processes.sql"),
    include_str!("../../../migrations/postgres/0004_item_texts.sql"),
    include_str!("../../../migrations/postgres/0005_pages.sql"),
];

const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock migrations hold (any number, the same in every
/// veille): "veille" in ASCII.
const MIGRATION_LOCK: i64 = 0x7665_696c_6c65;

/// How long connecting may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Postgres {
    /// Connects and brings the schema up to date.
    pub fn open(url: &PgUrl) -> Result<Postgres> {
        let client = super::blocking(|| -> Result<Client> {
            let mut client = connect(url)?;
            migrate(&mut client).with_context(|| format!("cannot migrate the database {url}"))?;
            Ok(client)
        })?;
        Ok(Postgres::from_client(client, url))
    }

    /// Connects to a database already migrated to this veille's schema.
    pub fn open_existing(url: &PgUrl) -> Result<Postgres> {
        let client = super::blocking(|| -> Result<Client> {
            let mut client = connect(url)?;
            let version = version(&mut client)?;
            refuse_newer(version, url)?;
            if version < SCHEMA_VERSION {
                bail!(
                    "the database {url} has no veille schema, or an older one; run `veille run` once to migrate it"
                );
            }
            Ok(client)
        })?;
        Ok(Postgres::from_client(client, url))
    }

    fn from_client(client: Client, url: &PgUrl) -> Postgres {
        Postgres {
            link: super::Link::new(client, url),
            owner: new_id(),
            wire: None,
            wire_read_at: 0,
        }
    }

    /// Connects afresh and reads (`/healthz`): a server that stopped
    /// answering fails here while the daemon's own connections wait.
    pub fn probe(url: &PgUrl) -> Result<()> {
        let answer = || -> Result<()> {
            let mut client = connect(url)?;
            client.query_one("SELECT COUNT(*) FROM feeds", &[])?;
            Ok(())
        };
        super::blocking(answer).map_err(|e| anyhow::anyhow!("the database does not answer: {e:#}"))
    }
}

/// A connection to `url` (called through `blocking`).
pub(super) fn connect(url: &PgUrl) -> Result<Client> {
    let mut config: postgres::Config = url
        .connect_url()
        .parse()
        .with_context(|| format!("cannot read the database URL {url}"))?;
    if !url.has_password()
        && let Some(password) = password()?
    {
        config.password(password);
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("veille");
    let tls = url.tls().map_err(anyhow::Error::msg)?;
    let client = match tls {
        Tls::Off => config.connect(NoTls),
        Tls::Verified => {
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()))
        }
    };
    let mut client = client.with_context(|| format!("cannot connect to the database {url}"))?;
    // veille's transactions count on each statement seeing what was
    // committed before it, after a lock (a migration, a claim, a write of
    // polls): READ COMMITTED, whatever the server's default.
    client
        .batch_execute("SET default_transaction_isolation = 'read committed'")
        .with_context(|| format!("cannot set up the connection to {url}"))?;
    Ok(client)
}

/// The password when the URL has none: `VEILLE_DATABASE_PASSWORD`, else
/// the systemd credential `database-password`.
fn password() -> Result<Option<String>> {
    if let Ok(password) = std::env::var("VEILLE_DATABASE_PASSWORD") {
        return Ok(Some(password));
    }
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
        return Ok(None);
    };
    let path = std::path::Path::new(&dir).join("database-password");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end_matches(['\n', '\r']).to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// TLS as everywhere in veille: rustls with ring, certificates checked
/// against the system's roots.
fn tls_config() -> rustls::ClientConfig {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_platform_verifier()
        .expect("the system's certificate verifier is available")
        .with_no_client_auth()
}

/// The schema's version: 0 for a database veille has not set up.
fn version(client: &mut Client) -> Result<i64> {
    let exists: bool = client
        .query_one("SELECT to_regclass('veille_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_opt("SELECT version FROM veille_schema", &[])?;
    Ok(row.map_or(0, |r| r.get(0)))
}

fn refuse_newer(version: i64, url: &PgUrl) -> Result<()> {
    if version > SCHEMA_VERSION {
        bail!(
            "the database {url} was written by a newer veille (schema {version}; this veille knows up to {SCHEMA_VERSION}); upgrade veille"
        );
    }
    Ok(())
}

/// Applies the migrations the database lacks, in one transaction that
/// first takes the migration lock: a second process starting at the same
/// moment waits, then finds the schema up to date.
fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let set_up: bool = tx
        .query_one("SELECT to_regclass('veille_schema') IS NOT NULL", &[])?
        .get(0);
    if !set_up {
        tx.batch_execute("CREATE TABLE veille_schema (version BIGINT NOT NULL)")?;
    }
    let version: i64 = tx
        .query_opt("SELECT version FROM veille_schema", &[])?
        .map_or(0, |r| r.get(0));
    if version > SCHEMA_VERSION {
        bail!(
            "written by a newer veille (schema {version}; this veille knows up to {SCHEMA_VERSION}); upgrade veille"
        );
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)
            .with_context(|| format!("migration {} failed", n + 1))?;
    }
    tx.execute("DELETE FROM veille_schema", &[])?;
    tx.execute(
        "INSERT INTO veille_schema (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

//! One thin function per subcommand. They return errors; `main` prints them
//! and picks the exit code.

pub mod channel;
pub mod check;
pub mod history;
pub mod recent;
pub mod run;
pub mod status;
pub mod test;

use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigError, Env};

/// Why a command failed, which decides the exit code (SPEC §1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or an invalid config: exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Anything that went wrong while running: exit 1.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
    /// A failure where the command's contract says 2 (`veille test`, which
    /// keeps 1 for "nothing matched").
    #[error(transparent)]
    Usage(anyhow::Error),
}

impl From<crate::store::Error> for CliError {
    fn from(e: crate::store::Error) -> CliError {
        CliError::Runtime(e.into())
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

/// `--config`, else `$VEILLE_CONFIG`, else `./config.toml`.
pub fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("VEILLE_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("config.toml"))
}

pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    config::load(path, &Env::from_process())
}

/// The config file, or, when there is none at `path`, every setting at its
/// default and no feeds, rules or channels (`veille test --query` needs
/// nothing of its own).
pub fn load_config_or_defaults(path: &Path) -> Result<Config, ConfigError> {
    if path.exists() {
        load_config(path)
    } else {
        config::parse(path, "", &Env::from_process())
    }
}

/// A Unix time as a wall-clock string in the configured zone, the zone
/// named (`CET`; an offset when the zone is the system's).
pub fn when(config: &Config, at: Option<i64>) -> String {
    at_format(config, at, "%Y-%m-%d %H:%M:%S %Z").unwrap_or_else(|| "-".to_owned())
}

/// A Unix time in the configured zone, as `format` writes it.
pub fn at_format(config: &Config, at: Option<i64>, format: &str) -> Option<String> {
    at.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| config.daemon.timezone.format(t, format))
}

/// A Unix time in the configured zone, RFC 3339 (what `--json` prints).
pub fn rfc3339(config: &Config, at: i64) -> String {
    at_format(config, Some(at), "%Y-%m-%dT%H:%M:%S%:z").unwrap_or_default()
}

/// A duration given to `flag` on the command line, or a usage error.
pub fn duration_arg(flag: &str, text: &str) -> Result<std::time::Duration, CliError> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        CliError::Usage(anyhow::anyhow!(
            "{flag}: invalid duration {text:?} (write e.g. \"6h\", \"1d\", \"7d\")"
        ))
    })
}

/// `veille import-opml FILE`: the file's feeds as `[[feed]]` tables.
pub fn import_opml(file: &Path) -> Result<String, CliError> {
    use anyhow::Context;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))?;
    let opml = crate::domain::opml::parse(text.trim_start_matches('\u{feff}'))
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if opml.feeds.is_empty() {
        return Err(anyhow::anyhow!("{}: no outline with an xmlUrl", file.display()).into());
    }
    Ok(crate::domain::opml::to_toml(&opml))
}

/// `veille copy-db --to URL`: the config's database file copied into an
/// empty PostgreSQL database; the source only read.
pub fn copy_db(config: &Config, to: &str) -> Result<String, CliError> {
    use crate::store::{Location, copy_database};
    if !Location::is_url(to) {
        return Err(CliError::Usage(anyhow::anyhow!(
            "--to takes a postgresql:// (or postgres://) URL"
        )));
    }
    let target = Location::postgres(to).map_err(|e| CliError::Usage(anyhow::anyhow!(e)))?;
    let copied = copy_database(&config.daemon.database, &target)?;
    let rows: u64 = copied.tables.iter().map(|(_, n)| n).sum();
    let mut report = format!(
        "copied {rows} rows from {} to {target}:\n",
        config.daemon.database
    );
    for (table, n) in &copied.tables {
        report.push_str(&format!("  {table:<16} {n}\n"));
    }
    report.push_str(&format!(
        "set `database = \"{target}\"` in the config (the password elsewhere: VEILLE_DATABASE_PASSWORD or the credential database-password), then start veille\n"
    ));
    Ok(report)
}

/// A digest schedule's next tick after `now`, in `zone` with the zone
/// named, or "never" (`check` and `status`).
pub fn next_tick(
    cron: &crate::domain::crontab::Crontab,
    now: chrono::DateTime<chrono::Utc>,
    zone: crate::domain::zone::Zone,
) -> String {
    cron.next_after(now, zone).map_or_else(
        || "never".to_owned(),
        |t| zone.format(t, "%Y-%m-%d %H:%M %Z"),
    )
}

/// A duration as a person writes it: whole days as days (`90 days`, where
/// humantime says `2months 29days 2h 52m 48s`, its months being 30.44
/// days), else humantime's `15m`, `1h 30m`.
pub fn readable(d: std::time::Duration) -> String {
    const DAY: u64 = 86_400;
    match d.as_secs() {
        DAY => "1 day".to_owned(),
        s if s > 0 && s % DAY == 0 && d.subsec_nanos() == 0 => format!("{} days", s / DAY),
        _ => humantime::format_duration(d).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_read_as_people_write_them() {
        let h = 3_600;
        for (secs, shown) in [
            (90 * 24 * h, "90 days"),
            (24 * h, "1 day"),
            (36 * h, "1day 12h"),
            (15 * 60, "15m"),
            (h, "1h"),
        ] {
            assert_eq!(super::readable(Duration::from_secs(secs)), shown);
        }
    }
}

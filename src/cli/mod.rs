//! One thin function per subcommand. They return errors; `main` prints them
//! and picks the exit code.

pub mod channel;
pub mod check;
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

/// A Unix time as a wall-clock string in the configured zone, the zone
/// named (`CET`; an offset when the zone is the system's).
pub fn when(config: &Config, at: Option<i64>) -> String {
    match at.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) {
        Some(t) => config.daemon.timezone.format(t, "%Y-%m-%d %H:%M:%S %Z"),
        None => "-".to_owned(),
    }
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

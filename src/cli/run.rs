//! `veille run [--once [--flush-digests]]`.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::config::Config;
use crate::daemon::{self, Shared};
use crate::store::Store;

pub async fn run(config: Config, once: bool, flush_digests: bool) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)?;
    let shared = Shared::new(config, store).context("cannot start")?;
    if once {
        daemon::run_once(&shared, flush_digests).await?;
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    daemon::run(&shared, shutdown).await?;
    Ok(())
}

/// SIGTERM or SIGINT cancels the token.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
}

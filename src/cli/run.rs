//! `veille run [--once [--flush-digests]]`: the daemon's life under systemd:
//! READY once the config is loaded and the database migrated, a reload on
//! SIGHUP (RELOADING, then READY), STOPPING on SIGTERM or SIGINT. Outside
//! systemd the notifications are no-ops.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::CliError;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::{self, Shared};
use crate::store::Store;

pub async fn run(
    config: Config,
    path: &Path,
    once: bool,
    flush_digests: bool,
    clock: Clock,
) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)?;
    let mut shared = Shared::new(config, store, clock).context("cannot start")?;
    if once {
        tokio::select! {
            done = daemon::run_once(&shared, flush_digests) => done?,
            () = interrupted() => {
                // What was recorded stays; the feeds this run held are
                // free for the next at once, not when their claims end.
                daemon::release_feeds(&shared).await;
                return Err(anyhow::anyhow!(
                    "interrupted; what was recorded stays, the rest is polled by the next run"
                )
                .into());
            }
        }
        return Ok(());
    }
    let shutdown = shared.shutdown.clone();
    let reload = Arc::new(Mutex::new(CancellationToken::new()));
    let endpoint = daemon::Endpoint::new(&shared);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = daemon::bind(&shared.config).await? {
        info!(addr = %listener.local_addr().context("listener")?, "serving /metrics and /healthz");
        tasks.spawn(daemon::serve(listener, endpoint.clone(), shutdown.clone()));
    }
    tasks.spawn(on_signals(shutdown.clone(), Arc::clone(&reload)));
    started(&shared.config, "veille started");
    loop {
        let this_reload = reload.lock().expect("not poisoned").clone();
        daemon::run(&shared, &shutdown, &this_reload).await?;
        if shutdown.is_cancelled() {
            break;
        }
        // A SIGHUP arriving from here on cancels the new token: another
        // reload follows at once.
        *reload.lock().expect("not poisoned") = CancellationToken::new();
        shared = reloaded(shared, path, &endpoint)?;
    }
    daemon::retire(&shared).await;
    // The endpoint and the signal listener end with `shutdown`.
    shutdown.cancel();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    info!("veille stopped");
    Ok(())
}

/// Reads the config again on SIGHUP (RELOADING, then READY): the daemon
/// goes on with the new one, or with the old one when the new one is
/// invalid. The database and the listening address change only at restart.
fn reloaded(shared: Shared, path: &Path, endpoint: &daemon::Endpoint) -> Result<Shared, CliError> {
    let mut reloading = vec![NotifyState::Reloading];
    reloading.extend(NotifyState::monotonic_usec_now().ok());
    let _ = sd_notify::notify(&reloading);
    let new = match super::load_config(path) {
        Ok(new) => new,
        Err(e) => {
            error!(error = %e, "the new config is invalid; keeping the running one");
            started(&shared.config, "config kept");
            return Ok(shared);
        }
    };
    if new.daemon.database != shared.config.daemon.database {
        warn!(
            database = %shared.config.daemon.database,
            "the database path changed; it takes effect at the next restart"
        );
    }
    if new.daemon.listen != shared.config.daemon.listen {
        warn!("daemon.listen changed; it takes effect at the next restart");
    }
    let shared = shared
        .reconfigured(new)
        .context("cannot apply the new config")?;
    endpoint.reconfigure(Arc::clone(&shared.config));
    started(&shared.config, "config reloaded");
    Ok(shared)
}

/// Logs and tells systemd that veille is ready, with a status line.
fn started(config: &Config, what: &str) {
    for problem in super::check::unreadable_secrets(config) {
        error!("{problem}");
    }
    info!(
        feeds = config.feeds.len(),
        rules = config.rules.len(),
        channels = config.channels.len(),
        "{what}"
    );
    let status = format!(
        "watching {} feeds with {} rules",
        config.feeds.len(),
        config.rules.len()
    );
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Completes at SIGTERM or SIGINT (never, when they cannot be listened to).
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// SIGTERM or SIGINT cancels `shutdown`; SIGHUP cancels the current
/// `reload` token.
async fn on_signals(shutdown: CancellationToken, reload: Arc<Mutex<CancellationToken>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("cannot listen to signals");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                info!("SIGHUP: reloading the config");
                reload.lock().expect("not poisoned").cancel();
            }
        }
    }
    info!("stopping");
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    shutdown.cancel();
}

//! `[daemon] listen` (SPEC §9): `/metrics` and `/healthz` over plain
//! HTTP/1, served by hyper on the daemon's runtime. Every other path is a
//! 404; only `GET` (and `HEAD`) are answered.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Result;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::metrics::{FEED_STATES, Loop, Metrics};
use super::{Shared, run};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::health::{State, assess};
use crate::store::{self, Probe, Store};

/// How long a client may take to send its request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `/healthz` waits for the database.
const DATABASE_WAIT: Duration = Duration::from_secs(5);
/// Feeds judged at once for `veille_feeds` (the reader is let go between).
const SLICE: usize = 100;

/// What the endpoint reads: the daemon's metrics and reading connection,
/// and the config in force (replaced on reload).
#[derive(Clone)]
pub struct Endpoint {
    metrics: Arc<Metrics>,
    reader: Arc<Mutex<Store>>,
    clock: Clock,
    config: Arc<RwLock<Arc<Config>>>,
    /// The database the daemon opened (a reload does not change it), as
    /// it was then: a file replaced under the daemon is not the one it
    /// writes to.
    database: Arc<Probe>,
    /// One database probe at a time: a hung one holds this, so that
    /// repeated `/healthz` calls wait and answer 503 instead of piling up
    /// blocked threads.
    probing: Arc<tokio::sync::Mutex<()>>,
}

impl Endpoint {
    pub fn new(sh: &Shared) -> Endpoint {
        Endpoint {
            metrics: Arc::clone(&sh.metrics),
            reader: Arc::clone(&sh.reader),
            clock: sh.clock.clone(),
            config: Arc::new(RwLock::new(Arc::clone(&sh.config))),
            database: Arc::new(Probe::new(&sh.config.daemon.database)),
            probing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// After a reload: channels, feeds and limits of the new config.
    pub fn reconfigure(&self, config: Arc<Config>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f` on the reading connection from a blocking thread.
    async fn read<T, F>(&self, f: F) -> store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
    {
        crate::store::read_on(&self.reader, f).await
    }

    async fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        }
        match req.uri().path() {
            "/metrics" => match self.metrics().await {
                Ok(text) => {
                    let mut r = plain(StatusCode::OK, text);
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "text/plain; version=0.0.4; charset=utf-8",
                        ),
                    );
                    r
                }
                Err(e) => plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot read the database: {e:#}\n"),
                ),
            },
            "/healthz" => match self.health().await {
                Ok(()) => plain(StatusCode::OK, "ok\n".into()),
                Err(reason) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
            },
            _ => plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /healthz\n".into(),
            ),
        }
    }

    /// The exposition, with feeds judged and the outbox counted now.
    async fn metrics(&self) -> Result<String> {
        let config = self.config();
        let now = self.clock.now();
        let policy = config.health_policy();
        let mut counts = [0i64; FEED_STATES.len()];
        for slice in config.feeds.chunks(SLICE) {
            let names: Vec<String> = slice.iter().map(|f| f.name.clone()).collect();
            let judged = self
                .read(move |s| {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    Ok(s.feed_health(&names)?
                        .iter()
                        .map(|h| assess(&h.facts, policy, now).state)
                        .collect::<Vec<_>>())
                })
                .await?;
            // A configured feed not polled yet has no row: it counts as ok.
            counts[0] += (slice.len() - judged.len()) as i64;
            for state in judged {
                counts[match state {
                    State::Ok => 0,
                    State::Failing { .. } => 1,
                    State::Gone { .. } => 2,
                    State::Silent { .. } => 3,
                }] += 1;
            }
        }
        let feeds: Vec<(&'static str, i64)> = FEED_STATES.iter().copied().zip(counts).collect();
        let mut pending = self.read(|s| s.pending_by_channel()).await?;
        for c in &config.channels {
            if !pending.iter().any(|(name, _)| *name == c.name) {
                pending.push((c.name.clone(), 0));
            }
        }
        pending.sort();
        Ok(self.metrics.encode(&feeds, &pending))
    }

    /// `Ok` while the database file is still the one opened, answers a
    /// fresh connection, and both loops made progress within their
    /// expected time; else the reason.
    async fn health(&self) -> Result<(), String> {
        let database = Arc::clone(&self.database);
        let probe = async {
            let guard = Arc::clone(&self.probing).lock_owned().await;
            tokio::task::spawn_blocking(move || {
                let _one = guard;
                database.check()
            })
            .await
        };
        match tokio::time::timeout(DATABASE_WAIT, probe).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(format!("{e:#}")),
            Ok(Err(e)) => return Err(format!("the database check failed: {e}")),
            Err(_) => {
                return Err(format!(
                    "the database did not answer within {} s",
                    DATABASE_WAIT.as_secs()
                ));
            }
        }
        let now = self.clock.now();
        let limit = run::stall_limit(&self.config()).as_secs() as i64;
        for (which, name) in [(Loop::Poll, "poll"), (Loop::Delivery, "delivery")] {
            let quiet = now - self.metrics.last_progress(which);
            if quiet > limit {
                return Err(format!(
                    "the {name} loop has made no progress for {quiet} s (expected within {limit} s)"
                ));
            }
        }
        Ok(())
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Binds `[daemon] listen`, warning when the address is not loopback (the
/// endpoint has no authentication). Done before the daemon says it is
/// ready, so a taken port stops the start with a clear error.
pub async fn bind(config: &Config) -> Result<Option<TcpListener>> {
    let Some(addr) = config.daemon.listen else {
        return Ok(None);
    };
    if !addr.ip().is_loopback() {
        warn!(%addr, "serving /metrics and /healthz beyond loopback: they have no authentication");
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (daemon.listen): {e}"))?;
    Ok(Some(listener))
}

/// Connections served at once; more wait to be accepted.
const CONNECTIONS: usize = 32;

/// Answers requests on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, endpoint: Endpoint, shutdown: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    warn!(error = %e, "metrics endpoint: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let endpoint = endpoint.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let endpoint = endpoint.clone();
                async move { Ok::<_, Infallible>(endpoint.answer(&req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = conn => if let Err(e) = r {
                    debug!(%peer, error = %e, "metrics endpoint: connection ended");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Env};

    #[tokio::test]
    async fn healthz_names_the_loop_that_made_no_progress_in_time() {
        crate::fetch::install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[daemon]\ndatabase = \"v.db\"\ntimeout = \"45s\"\n\n\
             [[feed]]\nname = \"AFP\"\nurl = \"feed.xml\"\n\n\
             [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
             [channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n",
        )
        .unwrap();
        let config = config::load(&path, &Env::default()).unwrap();
        let store = Store::open(&config.daemon.database).unwrap();
        let sh = Shared::new(config, store, crate::clock::Clock::system()).unwrap();
        let clock = Clock::manual(sh.metrics.last_progress(Loop::Poll));
        let mut ep = Endpoint::new(&sh);
        ep.clock = clock.clone();
        assert_eq!(ep.health().await, Ok(()));
        // Twice the 45 s timeout and a tick: 95 s without progress is fine.
        let limit = run::stall_limit(&sh.config).as_secs() as i64;
        assert_eq!(limit, 95);
        clock.advance(limit);
        assert_eq!(ep.health().await, Ok(()));
        sh.metrics.progress(Loop::Delivery, clock.now());
        clock.advance(1);
        let reason = ep.health().await.unwrap_err();
        assert_eq!(
            reason,
            "the poll loop has made no progress for 96 s (expected within 95 s)"
        );
        sh.metrics.progress(Loop::Poll, clock.now());
        assert_eq!(ep.health().await, Ok(()));
        clock.advance(limit + 1);
        assert!(ep.health().await.unwrap_err().starts_with("the poll loop"));
    }
}

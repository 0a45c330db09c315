//! What the loops say when their work on the database keeps failing (SPEC
//! §10: a process that cannot reach the database keeps retrying and says
//! so in its log). Every loop retries at its next tick; a spell of failures
//! is told at once, then once a minute while it lasts, and its end once,
//! instead of a warning from every loop at every tick.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::store;

/// How often a spell of failures is told again while it lasts.
pub const TELL_EVERY: Duration = Duration::from_secs(60);

/// The spell of failures in progress, if any.
#[derive(Default)]
pub struct Outage(Mutex<Option<Spell>>);

struct Spell {
    since: Instant,
    told: Instant,
    failures: u64,
}

impl Outage {
    /// `what` failed with `e`: warns when a spell begins and once every
    /// `TELL_EVERY` after, else only at debug level.
    pub fn failed(&self, what: &str, e: &anyhow::Error) {
        let now = Instant::now();
        let mut spell = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match spell.as_mut() {
            None => {
                *spell = Some(Spell {
                    since: now,
                    told: now,
                    failures: 1,
                });
                warn!(
                    error = %format!("{e:#}"),
                    "{what}{}; retrying (told again once a minute while it lasts)",
                    refused(e)
                );
            }
            Some(s) => {
                s.failures += 1;
                if now.duration_since(s.told) >= TELL_EVERY {
                    s.told = now;
                    warn!(
                        error = %format!("{e:#}"),
                        failures = s.failures,
                        for_s = now.duration_since(s.since).as_secs(),
                        "{what}{}; still failing, retrying",
                        refused(e)
                    );
                } else {
                    debug!(error = %format!("{e:#}"), "{what}");
                }
            }
        }
    }

    /// The database answered: a spell in progress ends, and is told.
    pub fn ended(&self) {
        let spell = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = spell {
            info!(
                failures = s.failures,
                after_s = s.since.elapsed().as_secs(),
                "the database answers again; work resumes"
            );
        }
    }
}

/// What to add when the store says the work cannot succeed as it is
/// (`store::Kind::Broken`): waiting alone will not mend it.
fn refused(e: &anyhow::Error) -> &'static str {
    match store::Error::kind_of(e) {
        Some(store::Kind::Broken) => " (not a passing fault: waiting alone will not mend it)",
        _ => "",
    }
}

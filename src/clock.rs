//! The one place veille reads the wall clock.
//!
//! Units of work never ask the time themselves: they take `now` from their
//! caller, or, when they need the time again after waiting on the network
//! (the moment a send ended decides between "retry" and "failed after a
//! day"), from the `Clock` their caller handed them. The daemon and the
//! commands use `Clock::system()`; tests use `Clock::manual`, which reads
//! what the test set, so no test depends on the day it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unix seconds, from the system or from a test.
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The real time.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A clock that stands at `start` until moved with `set` or `advance`;
    /// its clones move with it.
    pub fn manual(start: i64) -> Clock {
        Clock(Source::Manual(Arc::new(AtomicI64::new(start))))
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        match &self.0 {
            Source::System => chrono::Utc::now().timestamp(),
            Source::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    pub fn now_utc(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.now(), 0).unwrap_or_default()
    }

    /// Moves a manual clock to `t`; a system clock cannot be moved.
    pub fn set(&self, t: i64) {
        match &self.0 {
            Source::System => panic!("the system clock cannot be set"),
            Source::Manual(now) => now.store(t, Ordering::SeqCst),
        }
    }

    /// Moves a manual clock `secs` forward.
    pub fn advance(&self, secs: i64) {
        self.set(self.now() + secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_reads_what_was_set_and_its_clones_follow() {
        let c = Clock::manual(1_000);
        let other = c.clone();
        assert_eq!(c.now(), 1_000);
        other.advance(30);
        assert_eq!(c.now(), 1_030);
        c.set(5);
        assert_eq!(other.now_utc().timestamp(), 5);
    }
}

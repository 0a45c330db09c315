//! The one place veille reads the wall clock.
//!
//! Units of work never ask the time themselves: they take `now` from their
//! caller, or, when they need the time again after waiting on the network
//! (the moment a send ended decides between "retry" and "failed after a
//! day"), from the `Clock` their caller handed them. `main` makes one with
//! `Clock::from_env` and hands it to the command; unit tests use
//! `Clock::manual`, which reads what the test set, so no test depends on
//! the day it runs. `VEILLE_CLOCK_SHIFT` moves a whole process's clock:
//! the end-to-end tests use it to let hours pass between two commands, and
//! it lets anyone see what a later `run` or `status` would do.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unix seconds, from the system or from a test.
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    /// The real time, moved by this many seconds.
    System(i64),
    Manual(Arc<AtomicI64>),
}

/// The variable that moves the clock of a process (`Clock::from_env`).
pub const SHIFT_VAR: &str = "VEILLE_CLOCK_SHIFT";

impl Clock {
    /// The real time.
    pub fn system() -> Clock {
        Clock(Source::System(0))
    }

    /// The real time, moved by `VEILLE_CLOCK_SHIFT` when it is set: a
    /// duration such as `90m`, `2h`, `1d 6h`, ahead, or behind with a
    /// leading `-`.
    pub fn from_env() -> Result<Clock, String> {
        match std::env::var(SHIFT_VAR) {
            Err(_) => Ok(Clock::system()),
            Ok(text) => Ok(Clock(Source::System(shift_of(&text)?))),
        }
    }

    /// A clock that stands at `start` until moved with `set` or `advance`;
    /// its clones move with it.
    pub fn manual(start: i64) -> Clock {
        Clock(Source::Manual(Arc::new(AtomicI64::new(start))))
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        match &self.0 {
            Source::System(shift) => chrono::Utc::now().timestamp().saturating_add(*shift),
            Source::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    pub fn now_utc(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.now(), 0).unwrap_or_default()
    }

    /// Moves a manual clock to `t`; a system clock cannot be moved.
    pub fn set(&self, t: i64) {
        match &self.0 {
            Source::System(_) => panic!("the system clock cannot be set"),
            Source::Manual(now) => now.store(t, Ordering::SeqCst),
        }
    }

    /// Moves a manual clock `secs` forward.
    pub fn advance(&self, secs: i64) {
        self.set(self.now() + secs);
    }
}

/// Seconds from a `VEILLE_CLOCK_SHIFT` value.
fn shift_of(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (sign, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest.trim_start()),
        None => (1, text.strip_prefix('+').unwrap_or(text).trim_start()),
    };
    humantime::parse_duration(magnitude)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .map(|secs| sign * secs)
        .ok_or_else(|| {
            format!("{SHIFT_VAR}={text:?}: not a duration such as \"2h\", \"1d 6h\" or \"-30m\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_reads_as_a_signed_duration() {
        assert_eq!(shift_of("2h"), Ok(7200));
        assert_eq!(shift_of("+1d 6h"), Ok(108_000));
        assert_eq!(shift_of("-30m"), Ok(-1800));
        assert_eq!(shift_of(" 90s "), Ok(90));
        let e = shift_of("demain").unwrap_err();
        assert!(
            e.contains("VEILLE_CLOCK_SHIFT") && e.contains("demain"),
            "{e}"
        );
    }

    #[test]
    fn a_shifted_system_clock_reads_the_real_time_moved() {
        let real = Clock::system().now();
        let ahead = Clock(Source::System(7200)).now();
        assert!((ahead - real - 7200).abs() <= 1, "{}", ahead - real);
    }

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

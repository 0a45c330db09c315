//! When a feed is polled next and when a failed delivery is tried again.
//! Pure: `now` and the jitter sample are arguments.

use std::time::Duration;

/// The longest a failing feed waits between polls (SPEC §7).
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// Seconds until the next poll: the interval doubled per consecutive failure
/// (capped at 24 h), with ±10 % jitter from `jitter` in [-1, 1], and never
/// before a `Retry-After` floor.
pub fn next_poll(
    now: i64,
    interval: Duration,
    consecutive_failures: u32,
    retry_after_until: Option<i64>,
    jitter: f64,
) -> i64 {
    let base = interval.as_secs_f64() * 2f64.powi(consecutive_failures.min(20) as i32);
    let base = base.min(MAX_BACKOFF.as_secs_f64());
    let delay = base * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0));
    let at = now + delay.round() as i64;
    at.max(retry_after_until.unwrap_or(i64::MIN))
}

/// When a feed is polled next after a poll that `failed` or not, given
/// its failures in a row before it: each failure doubles the wait, a
/// success ends the run, a `Retry-After` wait is honoured. (The run itself
/// is counted by the store, in SQL: see `store::sqlite::polls::update_feed`.)
pub fn after_poll(
    failed: bool,
    failures_before: u32,
    now: i64,
    interval: Duration,
    retry_after_until: Option<i64>,
    jitter: f64,
) -> i64 {
    let failures = if failed {
        failures_before.saturating_add(1)
    } else {
        0
    };
    next_poll(now, interval, failures, retry_after_until, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lengthens_the_run_and_a_success_ends_it() {
        let m15 = Duration::from_secs(900);
        let after = |failed, before| after_poll(failed, before, 0, m15, None, 0.0);
        assert_eq!(after(true, 0), 1800, "one failure: twice the interval");
        assert_eq!(after(true, 2), 7200, "the third in a row: eight times");
        assert_eq!(after(false, 5), 900, "a success ends the run");
        let waited = after_poll(true, 0, 0, m15, Some(5000), 0.0);
        assert_eq!(waited, 5000);
    }

    #[test]
    fn poll_times() {
        let m15 = Duration::from_secs(900);
        let cases: [(u32, Option<i64>, f64, i64); 8] = [
            (0, None, 0.0, 900),
            (0, None, 1.0, 990),
            (0, None, -1.0, 810),
            (1, None, 0.0, 1800),
            (3, None, 0.0, 7200),
            (10, None, 0.0, 86_400),
            (40, None, 1.0, 86_400 + 8640),
            (0, Some(5000), 0.0, 5000),
        ];
        for (failures, retry_after, jitter, want) in cases {
            assert_eq!(
                next_poll(0, m15, failures, retry_after, jitter),
                want,
                "{failures} {retry_after:?} {jitter}"
            );
        }
        // A Retry-After in the past sets no floor.
        assert_eq!(next_poll(10_000, m15, 0, Some(5000), 0.0), 10_900);
    }
}

/// First retry of a failed delivery, then doubling (SPEC §5).
pub const RETRY_FIRST: Duration = Duration::from_secs(30);
/// Longest wait between two delivery attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(3600);
/// How long an alert is retried before it is marked failed.
pub const RETRY_GIVE_UP: Duration = Duration::from_secs(24 * 3600);

/// When a delivery that failed `attempts` times (≥ 1) is tried again:
/// 30 s doubling to at most 1 h, with "equal jitter" (half fixed, half drawn
/// from `jitter` in [0, 1]) so that alerts failing together spread out.
/// `None` once the alert has been tried for `RETRY_GIVE_UP` since `created`.
pub fn next_delivery_attempt(now: i64, created: i64, attempts: u32, jitter: f64) -> Option<i64> {
    if now - created >= RETRY_GIVE_UP.as_secs() as i64 {
        return None;
    }
    Some(backoff(now, attempts, jitter))
}

/// When a paused channel (SPEC §5: its server refused the login, TLS or
/// the connection failed) is tried again after `attempts` failures: the
/// same steps as a delivery, with no end; its alerts wait meanwhile.
pub fn next_channel_attempt(now: i64, attempts: u32, jitter: f64) -> i64 {
    backoff(now, attempts, jitter)
}

fn backoff(now: i64, attempts: u32, jitter: f64) -> i64 {
    let exp = RETRY_FIRST.as_secs_f64() * 2f64.powi(attempts.saturating_sub(1).min(20) as i32);
    let delay = exp.min(RETRY_MAX.as_secs_f64());
    let delay = delay / 2.0 + delay / 2.0 * jitter.clamp(0.0, 1.0);
    now + delay.round().max(1.0) as i64
}

#[cfg(test)]
mod delivery_tests {
    use super::*;

    #[test]
    fn delivery_retries_back_off_and_give_up() {
        let cases: [(i64, u32, f64, Option<i64>); 7] = [
            (0, 1, 1.0, Some(30)),
            (0, 1, 0.0, Some(15)),
            (0, 2, 1.0, Some(60)),
            (0, 5, 1.0, Some(480)),
            (0, 8, 1.0, Some(3600)),
            (0, 30, 0.5, Some(2700)),
            (86_400, 3, 1.0, None),
        ];
        for (now, attempts, jitter, want) in cases {
            assert_eq!(
                next_delivery_attempt(now, 0, attempts, jitter),
                want,
                "{attempts} {jitter}"
            );
        }
        // Retried for at least 24 h: with the largest waits, the last try
        // before giving up is less than an hour short of it.
        let (mut now, mut tries) = (0, 0);
        while let Some(next) = next_delivery_attempt(now, 0, tries + 1, 1.0) {
            now = next;
            tries += 1;
        }
        assert!((86_400 - 3600..86_400 + 3600).contains(&now), "{now}");
        assert!(tries > 20, "{tries}");
    }

    #[test]
    fn a_paused_channel_is_tried_on_the_same_steps_without_end() {
        // attempts, jitter → seconds until the next try
        for (attempts, jitter, want) in [(1, 1.0, 30), (1, 0.0, 15), (4, 1.0, 240), (9, 1.0, 3600)]
        {
            assert_eq!(
                next_channel_attempt(0, attempts, jitter),
                want,
                "{attempts}"
            );
        }
        // A week on, still once an hour at most.
        let late = 7 * 86_400;
        assert_eq!(next_channel_attempt(late, 400, 1.0), late + 3600);
    }
}

//! Feed health (SPEC §7): whether a feed is failing, gone or silent, the
//! usual gap between its new items, and which alerts a change of state
//! makes. The caller passes the facts and the time.
//!
//! A feed has at most one open *episode* (failing or silent), remembered
//! with the date it began. An episode alerts once when it opens and once
//! more when it ends (a recovery). Failing wins over silent: a silent feed
//! that then fails for `failing_after` has its silent episode dropped
//! without a recovery and a failing one opened.

use serde::{Deserialize, Serialize};

/// A feed failing this long alerts, by default (seconds).
pub const FAILING_AFTER: i64 = 24 * 3600;
/// A feed silent this many times its usual gap alerts, by default.
pub const SILENT_AFTER: u32 = 5;
/// Silence never alerts before this (seconds).
pub const MIN_SILENCE: i64 = 24 * 3600;
/// New items a feed must have brought after its first poll before its gap
/// is learnt.
pub const LEARN_AFTER: usize = 5;
/// How many of the most recent gaps the usual gap is the median of.
pub const GAPS: usize = 20;

/// `[health]`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub failing_after: i64,
    pub silent_after: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            failing_after: FAILING_AFTER,
            silent_after: SILENT_AFTER,
        }
    }
}

/// What the store knows about a feed that health depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The first failure since the last success.
    pub failing_since: Option<i64>,
    pub gone: bool,
    pub last_error: Option<String>,
    pub first_success: Option<i64>,
    /// The last poll that got an answer or an error: silence is judged
    /// as of then, so a veille that was stopped for days does not call
    /// its feeds silent before it has polled them again.
    pub last_fetch: Option<i64>,
    /// Items first seen after the feed's first successful poll (counting
    /// stops at `LEARN_AFTER`).
    pub brought: usize,
    /// The distinct times new items were first seen, newest first, at most
    /// `GAPS + 1` of them. The first poll's backlog is one arrival.
    pub arrivals: Vec<i64>,
}

/// How a feed is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Ok,
    /// Failing since then (every failure shows, however short).
    Failing {
        since: i64,
    },
    /// 410 Gone: not polled until its URL changes.
    Gone {
        since: i64,
    },
    /// No new item since then, for longer than its silence threshold.
    Silent {
        since: i64,
    },
}

/// A feed's state, with what it was judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Assessment {
    #[serde(flatten)]
    pub state: State,
    /// The median gap between new items, seconds; `None` while learning.
    pub usual_gap: Option<i64>,
    /// How long without a new item makes the feed silent, seconds.
    pub silent_after: Option<i64>,
}

/// The median of the most recent gaps between arrivals, once the feed has
/// brought `LEARN_AFTER` new items; `None` before.
pub fn usual_gap(f: &Facts) -> Option<i64> {
    if f.brought < LEARN_AFTER {
        return None;
    }
    let mut gaps: Vec<i64> = f
        .arrivals
        .windows(2)
        .take(GAPS)
        .map(|w| w[0] - w[1])
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let mid = gaps.len() / 2;
    Some(if gaps.len() % 2 == 1 {
        gaps[mid]
    } else {
        (gaps[mid - 1] + gaps[mid]) / 2
    })
}

pub fn assess(f: &Facts, p: Policy, now: i64) -> Assessment {
    let usual_gap = usual_gap(f);
    let silent_after =
        usual_gap.map(|g| (g.saturating_mul(p.silent_after as i64)).max(MIN_SILENCE));
    let state = match (f.failing_since, f.gone) {
        (since, true) => State::Gone {
            since: since.unwrap_or(now),
        },
        (Some(since), false) => State::Failing { since },
        (None, false) => {
            let seen = f.last_fetch.map_or(now, |t| t.min(now));
            match (silent_after, f.arrivals.first()) {
                (Some(after), Some(&last)) if seen - last >= after => State::Silent { since: last },
                _ => State::Ok,
            }
        }
    };
    Assessment {
        state,
        usual_gap,
        silent_after,
    }
}

/// What an episode is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Episode {
    Failing,
    Silent,
}

impl Episode {
    pub fn as_str(self) -> &'static str {
        match self {
            Episode::Failing => "failing",
            Episode::Silent => "silent",
        }
    }

    pub fn parse(s: &str) -> Option<Episode> {
        match s {
            "failing" => Some(Episode::Failing),
            "silent" => Some(Episode::Silent),
            _ => None,
        }
    }
}

/// An episode that has alerted and not ended yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    pub episode: Episode,
    pub since: i64,
}

/// What a review decided for one feed: the episode to remember from now on
/// and the notices to send (none when nothing changed).
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub open: Option<Open>,
    pub notices: Vec<Notice>,
}

/// What a health alert says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Failing,
    Gone,
    Silent,
    Recovered,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failing => "failing",
            Event::Gone => "gone",
            Event::Silent => "silent",
            Event::Recovered => "recovered",
        }
    }
}

/// One health alert, as stored and rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub feed: String,
    /// The feed's address as configured (alerts stored before it was
    /// recorded have none).
    #[serde(default)]
    pub url: Option<String>,
    pub event: Event,
    /// What ended (`Recovered` only).
    pub recovered_from: Option<Episode>,
    /// When the failure or the silence began.
    pub since: i64,
    /// When veille found the change.
    pub at: i64,
    /// The last error (`Failing`, `Gone`).
    pub error: Option<String>,
    /// The usual gap between new items, seconds (`Silent`).
    pub usual_gap: Option<i64>,
}

/// Compares the feed's open episode with how it is doing at `now`.
pub fn review(feed: &str, open: Option<Open>, f: &Facts, p: Policy, now: i64) -> Review {
    let a = assess(f, p, now);
    let notice = |event, since| Notice {
        feed: feed.to_owned(),
        url: None,
        event,
        recovered_from: None,
        since,
        at: now,
        error: None,
        usual_gap: None,
    };
    let mut notices = Vec::new();
    // Ends what no longer holds.
    let open = match open {
        Some(o) if has_ended(o, f) => {
            notices.push(Notice {
                recovered_from: Some(o.episode),
                ..notice(Event::Recovered, o.since)
            });
            None
        }
        open => open,
    };
    let (next, opened) = opens(open, &a, p, now);
    notices.extend(opened.map(|(episode, since)| match episode {
        Episode::Failing => Notice {
            error: f.last_error.clone(),
            ..notice(if f.gone { Event::Gone } else { Event::Failing }, since)
        },
        Episode::Silent => Notice {
            usual_gap: a.usual_gap,
            ..notice(Event::Silent, since)
        },
    }));
    Review {
        open: next,
        notices,
    }
}

/// The episode open after this review, and the one it opened (with when
/// it began), if any. Failing wins over silent; an open failure stays.
fn opens(
    open: Option<Open>,
    a: &Assessment,
    p: Policy,
    now: i64,
) -> (Option<Open>, Option<(Episode, i64)>) {
    let failing = match a.state {
        State::Failing { since } | State::Gone { since } if now - since >= p.failing_after => {
            Some(since)
        }
        _ => None,
    };
    let silent = match a.state {
        State::Silent { since } => Some(since),
        _ => None,
    };
    let new = |episode, since| (Some(Open { episode, since }), Some((episode, since)));
    match (open, failing, silent) {
        (Some(o), _, _) if o.episode == Episode::Failing => (Some(o), None),
        (_, Some(since), _) => new(Episode::Failing, since),
        (Some(o), None, _) => (Some(o), None),
        (None, None, Some(since)) => new(Episode::Silent, since),
        (None, None, None) => (None, None),
    }
}

/// Whether an open episode no longer holds: a success ends a failure, and
/// so does a new failure that began after it (a success came between two
/// reviews); a new item ends a silence.
fn has_ended(o: Open, f: &Facts) -> bool {
    match o.episode {
        Episode::Failing => !f.gone && f.failing_since != Some(o.since),
        Episode::Silent => f.arrivals.first().is_some_and(|&t| t > o.since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const NOW: i64 = 1_800_000_000;

    /// A feed polled fine whose new items came at `ago` hours before NOW
    /// (newest first), the first poll being the oldest.
    fn arrived(ago: &[i64]) -> Facts {
        let arrivals: Vec<i64> = ago.iter().map(|a| NOW - a * H).collect();
        Facts {
            first_success: arrivals.last().copied(),
            last_fetch: Some(NOW),
            brought: ago.len().saturating_sub(1).min(LEARN_AFTER),
            arrivals,
            ..Facts::default()
        }
    }

    #[test]
    fn the_usual_gap_is_the_median_of_recent_gaps_once_five_items_came() {
        let cases: &[(&[i64], Option<i64>)] = &[
            // Too few items brought after the first poll: still learning.
            (&[1, 2, 3], None),
            (&[0, 1, 2, 3, 4, 5], Some(H)),
            // A burst and a long pause: the median ignores the outlier.
            (&[0, 1, 2, 3, 4, 100], Some(H)),
            // An even count: the mean of the two middle gaps.
            (&[0, 1, 2, 3, 5, 7, 9], Some(3 * H / 2)),
        ];
        for (ago, want) in cases {
            assert_eq!(usual_gap(&arrived(ago)), *want, "{ago:?}");
        }
    }

    #[test]
    fn a_feed_is_silent_after_five_gaps_and_never_before_a_day() {
        let p = Policy::default();
        // Hourly items, the last 23 h ago: five gaps passed, but not a day.
        let f = arrived(&[23, 24, 25, 26, 27, 28]);
        assert_eq!(assess(&f, p, NOW).state, State::Ok);
        assert_eq!(assess(&f, p, NOW).silent_after, Some(MIN_SILENCE));
        let f = arrived(&[24, 25, 26, 27, 28, 29]);
        assert_eq!(
            assess(&f, p, NOW).state,
            State::Silent {
                since: NOW - 24 * H
            }
        );
        // Every ten hours: silent after fifty.
        let f = arrived(&[49, 59, 69, 79, 89, 99]);
        assert_eq!(assess(&f, p, NOW).state, State::Ok);
        let f = arrived(&[50, 60, 70, 80, 90, 100]);
        assert!(matches!(assess(&f, p, NOW).state, State::Silent { .. }));
        // Still learning: never silent.
        let f = arrived(&[500, 600]);
        assert_eq!(assess(&f, p, NOW).state, State::Ok);
        // Not polled since a day after its last item (veille was stopped):
        // not silent until a poll has looked.
        let f = Facts {
            last_fetch: Some(NOW - 20 * H),
            ..arrived(&[30, 31, 32, 33, 34, 35])
        };
        assert_eq!(assess(&f, p, NOW).state, State::Ok);
    }

    fn failing(since_h: i64) -> Facts {
        Facts {
            failing_since: Some(NOW - since_h * H),
            last_error: Some("HTTP 500".into()),
            ..arrived(&[100, 101, 102, 103, 104, 105])
        }
    }

    #[test]
    fn a_failing_feed_alerts_once_after_failing_after_and_once_on_recovery() {
        let p = Policy::default();
        // Failing for 23 h: shown, not alerted.
        let r = review("AFP", None, &failing(23), p, NOW);
        assert_eq!((r.open, r.notices.len()), (None, 0));
        assert_eq!(
            assess(&failing(23), p, NOW).state,
            State::Failing {
                since: NOW - 23 * H
            }
        );
        // 24 h: one alert, with the error and the date it began.
        let r = review("AFP", None, &failing(24), p, NOW);
        let open = Open {
            episode: Episode::Failing,
            since: NOW - 24 * H,
        };
        assert_eq!(r.open, Some(open));
        assert_eq!(r.notices.len(), 1);
        assert_eq!(r.notices[0].event, Event::Failing);
        assert_eq!(r.notices[0].since, NOW - 24 * H);
        assert_eq!(r.notices[0].error.as_deref(), Some("HTTP 500"));
        // Reviewed again while it still fails: nothing new.
        let r = review("AFP", Some(open), &failing(24), p, NOW + 6 * H);
        assert_eq!((r.open, r.notices.len()), (Some(open), 0));
        // A success: one recovery, naming what ended.
        let ok = Facts {
            arrivals: vec![NOW],
            ..arrived(&[100, 101, 102, 103, 104, 105])
        };
        let r = review("AFP", Some(open), &ok, p, NOW);
        assert_eq!(r.open, None);
        assert_eq!(r.notices.len(), 1);
        assert_eq!(r.notices[0].event, Event::Recovered);
        assert_eq!(r.notices[0].recovered_from, Some(Episode::Failing));
        assert_eq!(r.notices[0].since, NOW - 24 * H);
    }

    #[test]
    fn a_new_failure_after_an_unseen_success_is_a_recovery_then_a_new_episode() {
        let p = Policy::default();
        let open = Open {
            episode: Episode::Failing,
            since: NOW - 90 * H,
        };
        let r = review("AFP", Some(open), &failing(30), p, NOW);
        let events: Vec<Event> = r.notices.iter().map(|n| n.event).collect();
        assert_eq!(events, [Event::Recovered, Event::Failing]);
        assert_eq!(r.open.unwrap().since, NOW - 30 * H);
    }

    #[test]
    fn a_gone_feed_alerts_as_gone() {
        let f = Facts {
            gone: true,
            ..failing(25)
        };
        let r = review("AFP", None, &f, Policy::default(), NOW);
        assert_eq!(r.notices[0].event, Event::Gone);
        assert_eq!(
            assess(&f, Policy::default(), NOW).state,
            State::Gone {
                since: NOW - 25 * H
            }
        );
    }

    #[test]
    fn silence_alerts_once_and_a_new_item_ends_it() {
        let p = Policy::default();
        let f = arrived(&[30, 31, 32, 33, 34, 35]);
        let r = review("AFP", None, &f, p, NOW);
        assert_eq!(r.notices.len(), 1);
        assert_eq!(r.notices[0].event, Event::Silent);
        assert_eq!(r.notices[0].usual_gap, Some(H));
        let open = r.open.unwrap();
        assert_eq!(open.episode, Episode::Silent);
        assert!(review("AFP", Some(open), &f, p, NOW + H).notices.is_empty());
        let back = arrived(&[0, 30, 31, 32, 33, 34, 35]);
        let r = review("AFP", Some(open), &back, p, NOW);
        assert_eq!(r.open, None);
        assert_eq!(r.notices[0].event, Event::Recovered);
        assert_eq!(r.notices[0].recovered_from, Some(Episode::Silent));
    }

    #[test]
    fn failing_wins_over_silent_and_a_short_failure_keeps_the_silence() {
        let p = Policy::default();
        let open = Open {
            episode: Episode::Silent,
            since: NOW - 100 * H,
        };
        // Failing for an hour: still the same silence, nothing sent.
        let r = review("AFP", Some(open), &failing(1), p, NOW);
        assert_eq!((r.open, r.notices.len()), (Some(open), 0));
        // Failing for a day: the failure alerts; no recovery for the silence.
        let r = review("AFP", Some(open), &failing(24), p, NOW);
        let events: Vec<Event> = r.notices.iter().map(|n| n.event).collect();
        assert_eq!(events, [Event::Failing]);
        assert_eq!(r.open.unwrap().episode, Episode::Failing);
    }

    #[test]
    fn failing_after_and_silent_after_are_the_policy() {
        let p = Policy {
            failing_after: 60,
            silent_after: 2,
        };
        let f = Facts {
            failing_since: Some(NOW - 60),
            ..Facts::default()
        };
        assert_eq!(review("AFP", None, &f, p, NOW).notices.len(), 1);
        // Every 20 h, silent after 40 (two gaps).
        let f = arrived(&[40, 60, 80, 100, 120, 140]);
        assert!(matches!(assess(&f, p, NOW).state, State::Silent { .. }));
    }
}

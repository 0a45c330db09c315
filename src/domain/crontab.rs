//! Digest schedules: five-field crontab(5) lines read in the configured time
//! zone (SPEC §5).
//!
//! The `cron` crate does the calendar arithmetic, but it speaks Quartz: six
//! fields with seconds first, weekdays numbered from Sunday = 1, and a day of
//! month and a day of week that must *both* match. crontab(5) numbers
//! weekdays from Sunday = 0 (7 is Sunday too), and when both day fields are
//! restricted a day matching *either* fires. So a line is translated here:
//! the weekday field is expanded to a list of names (which both dialects
//! read alike), and a line restricting both day fields becomes two schedules
//! whose next ticks are merged.
//!
//! Daylight saving is handled here too, because the crate skips a tick that
//! falls into a gap and fires twice in a repeated hour: the schedule is run
//! on wall-clock time, and each wall-clock tick is placed in the zone, a gap
//! moving it to the first minute after the gap and a repeated hour keeping
//! its first occurrence only.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};

use super::zone::Zone;

/// A parsed five-field schedule.
#[derive(Debug, Clone)]
pub struct Crontab {
    line: String,
    /// One schedule, or two (day of month | day of week) whose union fires.
    schedules: Vec<cron::Schedule>,
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Every number of a crontab field (`5`, `1-5`, `*/15`, `0,30`) within
/// `lo..=hi`; names (`jan`) are left to the cron crate.
fn in_range(name: &str, field: &str, lo: u32, hi: u32) -> Result<(), String> {
    for item in field.split(',') {
        let (values, step) = match item.split_once('/') {
            Some((v, step)) => (v, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step
            && !step.parse::<u32>().is_ok_and(|n| n > 0)
        {
            return Err(format!("{name} step {step:?} is not a positive number"));
        }
        for bound in values.split('-').filter(|b| *b != "*") {
            if let Ok(n) = bound.parse::<u32>()
                && !(lo..=hi).contains(&n)
            {
                return Err(format!("{name} {n} is out of range {lo}–{hi}"));
            }
        }
    }
    Ok(())
}

impl Crontab {
    pub fn parse(line: &str) -> Result<Crontab, String> {
        if let Some(nickname) = line.trim().strip_prefix('@') {
            let written = match nickname {
                "daily" | "midnight" => Some("0 0 * * *"),
                "hourly" => Some("0 * * * *"),
                "weekly" => Some("0 0 * * 0"),
                "monthly" => Some("0 0 1 * *"),
                "yearly" | "annually" => Some("0 0 1 1 *"),
                _ => None,
            };
            return Err(match written {
                Some(fields) => format!(
                    "{line:?} is a crontab nickname, which veille does not read: write its five fields, \"{fields}\" (or the hour you want, e.g. \"0 8 * * *\" for 08:00 every day)"
                ),
                None => format!(
                    "{line:?} is not a schedule: write five fields (minute hour day-of-month month day-of-week), as in crontab(5), e.g. \"0 8 * * 1-5\""
                ),
            });
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(format!(
                "a schedule has five fields (minute hour day-of-month month day-of-week), as in crontab(5); {line:?} has {}",
                fields.len()
            ));
        };
        for (name, field, lo, hi) in [
            ("minute", minute, 0, 59),
            ("hour", hour, 0, 23),
            ("day of month", dom, 1, 31),
            ("month", month, 1, 12),
        ] {
            in_range(name, field, lo, hi).map_err(|e| format!("invalid schedule {line:?}: {e}"))?;
        }
        let days = weekdays(dow)?;
        let names = days
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(d, _)| DAY_NAMES[d])
            .collect::<Vec<_>>()
            .join(",");
        // crontab(5): a field is "restricted" unless it starts with '*'.
        let dom_restricted = !dom.starts_with('*');
        let dow_restricted = !dow.starts_with('*');
        let quartz = |dom: &str, dow: &str| {
            let six = format!("0 {minute} {hour} {dom} {month} {dow}");
            // The crate's own message shows the six-field form it was given.
            cron::Schedule::from_str(&six).map_err(|_| {
                format!("invalid schedule {line:?}: not a crontab(5) line (minute hour day-of-month month day-of-week)")
            })
        };
        let schedules = if dom_restricted && dow_restricted {
            vec![quartz(dom, "*")?, quartz("*", &names)?]
        } else {
            vec![quartz(dom, &names)?]
        };
        Ok(Crontab {
            line: line.to_owned(),
            schedules,
        })
    }

    pub fn line(&self) -> &str {
        &self.line
    }

    /// The first tick strictly after `after`, as an instant.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
        let mut wall = zone.wall_clock(after);
        // Each loop skips one wall-clock tick whose instant is not after
        // `after` (a repeated hour's second pass); a few suffice.
        for _ in 0..8 {
            let tick = self.next_wall_tick(wall)?;
            let at = place(tick, zone)?;
            if at > after {
                return Some(at);
            }
            wall = tick;
        }
        None
    }

    /// The next wall-clock time after `wall` that the line names.
    fn next_wall_tick(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        // Wall-clock arithmetic: run the schedules in UTC, which has no gaps.
        let from = wall.and_utc();
        self.schedules
            .iter()
            .filter_map(|s| s.after(&from).next())
            .min()
            .map(|d| d.naive_utc())
    }
}

/// A wall-clock tick as an instant: the first occurrence in a repeated
/// hour; in a gap, the first minute after the gap.
fn place(tick: NaiveDateTime, zone: Zone) -> Option<DateTime<Utc>> {
    let mut t = tick;
    // Gaps last an hour, rarely two; no zone has one of a day.
    for _ in 0..24 * 60 {
        if let Some(at) = zone.to_utc(t) {
            return Some(at);
        }
        t = (t + Duration::minutes(1)).with_second(0)?;
    }
    None
}

/// The days a crontab(5) day-of-week field names, Sunday first.
fn weekdays(field: &str) -> Result<[bool; 7], String> {
    let bad = |why: &str| Err(format!("invalid day of week {field:?}: {why}"));
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => match s.parse::<usize>() {
                Ok(s) if s > 0 => (r, s),
                _ => return bad("a step is a positive number"),
            },
            None => (part, 1),
        };
        let (first, last) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (weekday(a)?, weekday(b)?)
        } else {
            let d = weekday(range)?;
            // `5/2` (from a day, every other day) runs to the week's end.
            (d, if step > 1 { 7 } else { d })
        };
        if first > last {
            return bad("a range goes from the earlier day to the later one (0 or 7 is Sunday)");
        }
        for d in (first..=last).step_by(step) {
            days[d % 7] = true;
        }
    }
    Ok(days)
}

/// 0–7 (0 and 7 are Sunday) or a three-letter English name.
fn weekday(s: &str) -> Result<usize, String> {
    if let Ok(n) = s.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!(
                "invalid day of week {s:?}: days are 0–7 (0 and 7 are Sunday)"
            ))
        };
    }
    DAY_NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            format!("invalid day of week {s:?}: use 0–7 (0 and 7 are Sunday) or sun, mon, … sat")
        })
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Weekday};

    use super::*;

    const PARIS: Zone = Zone::Named(chrono_tz::Europe::Paris);

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// The next `n` ticks after `from`, as Paris wall-clock strings.
    fn ticks(line: &str, from: &str, n: usize) -> Vec<String> {
        let c = Crontab::parse(line).unwrap();
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = c.next_after(at, PARIS).unwrap();
                PARIS.format(at, "%a %Y-%m-%d %H:%M %Z")
            })
            .collect()
    }

    #[test]
    fn weekday_numbers_are_crontab_not_quartz() {
        // 2026-11-23 is a Monday.
        let cases: [(&str, [Weekday; 2]); 8] = [
            ("1-5", [Weekday::Mon, Weekday::Fri]),
            ("mon-fri", [Weekday::Mon, Weekday::Fri]),
            ("MON-FRI", [Weekday::Mon, Weekday::Fri]),
            ("0", [Weekday::Sun, Weekday::Sun]),
            ("7", [Weekday::Sun, Weekday::Sun]),
            ("5-7", [Weekday::Fri, Weekday::Sun]),
            ("6,0", [Weekday::Sat, Weekday::Sun]),
            ("1", [Weekday::Mon, Weekday::Mon]),
        ];
        for (dow, [first, last]) in cases {
            let c = Crontab::parse(&format!("0 8 * * {dow}")).unwrap();
            let mut at = utc("2026-11-22T12:00:00Z"); // a Sunday noon
            let mut seen = Vec::new();
            for _ in 0..14 {
                at = c.next_after(at, PARIS).unwrap();
                let local = at.with_timezone(&chrono_tz::Europe::Paris);
                assert_eq!((local.hour(), local.minute()), (8, 0), "{dow}");
                seen.push(local.weekday());
            }
            assert_eq!(seen.first(), Some(&first), "{dow}: first tick {seen:?}");
            assert!(seen.contains(&last), "{dow}: {seen:?}");
            let mut distinct = seen.clone();
            distinct.sort_by_key(|d| d.num_days_from_sunday());
            distinct.dedup();
            let want = match dow {
                "1-5" | "mon-fri" | "MON-FRI" => 5,
                "5-7" => 3,
                "6,0" => 2,
                _ => 1,
            };
            assert_eq!(distinct.len(), want, "{dow}: {distinct:?}");
        }
    }

    #[test]
    fn weekdays_only_skip_the_weekend() {
        assert_eq!(
            ticks("0 8 * * 1-5", "2026-11-20T12:00:00Z", 3),
            [
                "Mon 2026-11-23 08:00 CET",
                "Tue 2026-11-24 08:00 CET",
                "Wed 2026-11-25 08:00 CET"
            ]
        );
    }

    #[test]
    fn ticks_are_read_in_the_zone() {
        // 08:00 in Paris is 07:00 UTC in winter, 06:00 UTC in summer.
        let c = Crontab::parse("0 8 * * *").unwrap();
        assert_eq!(
            c.next_after(utc("2026-11-24T06:00:00Z"), PARIS),
            Some(utc("2026-11-24T07:00:00Z"))
        );
        assert_eq!(
            c.next_after(utc("2026-07-01T05:00:00Z"), PARIS),
            Some(utc("2026-07-01T06:00:00Z"))
        );
        // Strictly after: at the tick itself, the next day's.
        assert_eq!(
            c.next_after(utc("2026-11-24T07:00:00Z"), PARIS),
            Some(utc("2026-11-25T07:00:00Z"))
        );
    }

    #[test]
    fn restricted_day_of_month_and_week_fire_on_either() {
        // The 1st and 15th, and every Friday (crontab(5)).
        let got = ticks("0 9 1,15 * 5", "2026-04-30T12:00:00Z", 5);
        assert_eq!(
            got,
            [
                "Fri 2026-05-01 09:00 CEST",
                "Fri 2026-05-08 09:00 CEST",
                "Fri 2026-05-15 09:00 CEST",
                "Fri 2026-05-22 09:00 CEST",
                "Fri 2026-05-29 09:00 CEST",
            ]
        );
        let got = ticks("30 7 13 * mon", "2026-07-11T00:00:00Z", 3);
        assert_eq!(
            got,
            [
                "Mon 2026-07-13 07:30 CEST",
                "Mon 2026-07-20 07:30 CEST",
                "Mon 2026-07-27 07:30 CEST"
            ]
        );
        let got = ticks("30 7 14 * mon", "2026-07-11T00:00:00Z", 3);
        assert_eq!(
            got,
            [
                "Mon 2026-07-13 07:30 CEST",
                "Tue 2026-07-14 07:30 CEST",
                "Mon 2026-07-20 07:30 CEST"
            ]
        );
        // A star day of month keeps the day of week alone.
        let got = ticks("0 12 * * 0", "2026-07-11T00:00:00Z", 2);
        assert_eq!(
            got,
            ["Sun 2026-07-12 12:00 CEST", "Sun 2026-07-19 12:00 CEST"]
        );
    }

    #[test]
    fn a_tick_in_the_spring_gap_fires_after_the_gap() {
        // 2026-03-29: Paris goes from 02:00 CET straight to 03:00 CEST.
        assert_eq!(
            ticks("30 2 * * *", "2026-03-28T12:00:00Z", 3),
            [
                "Sun 2026-03-29 03:00 CEST",
                "Mon 2026-03-30 02:30 CEST",
                "Tue 2026-03-31 02:30 CEST"
            ]
        );
        // Every quarter hour of the gap collapses into one tick at 03:00.
        assert_eq!(
            ticks("*/15 2 * * *", "2026-03-29T00:50:00Z", 2),
            ["Sun 2026-03-29 03:00 CEST", "Mon 2026-03-30 02:00 CEST"]
        );
    }

    #[test]
    fn a_tick_in_the_repeated_hour_fires_once() {
        // 2026-10-25: Paris goes from 03:00 CEST back to 02:00 CET.
        assert_eq!(
            ticks("30 2 * * *", "2026-10-24T12:00:00Z", 2),
            ["Sun 2026-10-25 02:30 CEST", "Mon 2026-10-26 02:30 CET"]
        );
        // Asked from inside the second pass of the hour: no second firing.
        let c = Crontab::parse("30 2 * * *").unwrap();
        let second_pass = utc("2026-10-25T01:10:00Z"); // 02:10 CET
        assert_eq!(
            c.next_after(second_pass, PARIS),
            Some(utc("2026-10-26T01:30:00Z"))
        );
        // An hourly line skips the repeated 02:00.
        assert_eq!(
            ticks("0 * * * *", "2026-10-24T23:30:00Z", 3),
            [
                "Sun 2026-10-25 02:00 CEST",
                "Sun 2026-10-25 03:00 CET",
                "Sun 2026-10-25 04:00 CET"
            ]
        );
    }

    #[test]
    fn bad_lines_say_why() {
        let cases = [
            ("0 8 * *", "five fields"),
            ("0 0 8 * * *", "five fields"),
            ("0 8 * * 8", "0–7"),
            ("0 8 * * fri-mon", "earlier day"),
            ("0 8 * * xyz", "sun, mon"),
            ("0 8 * * */0", "positive"),
            ("61 8 * * *", "minute 61 is out of range 0–59"),
            ("0 25 * * *", "hour 25 is out of range 0–23"),
            ("0 8-25 * * *", "hour 25 is out of range 0–23"),
            ("0 8 32 * *", "day of month 32 is out of range 1–31"),
            ("0 8 0 * *", "day of month 0 is out of range 1–31"),
            ("0 8 * 13 *", "month 13 is out of range 1–12"),
            ("*/0 8 * * *", "minute step \"0\" is not a positive number"),
            ("0 8 * foo *", "not a crontab(5) line"),
        ];
        for (line, want) in cases {
            let err = Crontab::parse(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
            assert!(!err.contains("SUN,MON"), "no internal form: {err}");
        }
    }

    #[test]
    fn steps_and_names_elsewhere() {
        assert_eq!(
            ticks("*/20 9 * jan-mar *", "2026-11-24T12:00:00Z", 4),
            [
                "Fri 2027-01-01 09:00 CET",
                "Fri 2027-01-01 09:20 CET",
                "Fri 2027-01-01 09:40 CET",
                "Sat 2027-01-02 09:00 CET"
            ]
        );
    }

    #[test]
    fn nicknames_are_explained_with_their_five_fields() {
        let e = Crontab::parse("@daily").unwrap_err();
        assert!(e.contains("\"0 0 * * *\"") && e.contains("nickname"), "{e}");
        let e = Crontab::parse("@weekly").unwrap_err();
        assert!(e.contains("\"0 0 * * 0\""), "{e}");
        let e = Crontab::parse("@reboot").unwrap_err();
        assert!(
            e.contains("not a schedule") && e.contains("five fields"),
            "{e}"
        );
    }
}

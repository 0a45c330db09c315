//! The time zone that digest schedules, zone-less feed dates and the dates
//! shown in messages are read in (`[daemon] timezone`).

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// The system's local time (the default).
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// A wall-clock time in this zone; in a repeated hour the first
    /// occurrence, in a gap none.
    pub fn to_utc(self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let first = |r: LocalResult<DateTime<Utc>>| match r {
            LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Some(d),
            LocalResult::None => None,
        };
        match self {
            Zone::Local => first(
                chrono::Local
                    .from_local_datetime(&local)
                    .map(|d| d.to_utc()),
            ),
            Zone::Named(tz) => first(tz.from_local_datetime(&local).map(|d| d.to_utc())),
        }
    }

    /// `when` as the wall clock in this zone shows it.
    pub fn wall_clock(self, when: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Local => when.with_timezone(&chrono::Local).naive_local(),
            Zone::Named(tz) => when.with_timezone(&tz).naive_local(),
        }
    }

    /// `when` as a wall-clock string, for messages.
    pub fn format(self, when: DateTime<Utc>, fmt: &str) -> String {
        match self {
            Zone::Local => when.with_timezone(&chrono::Local).format(fmt).to_string(),
            Zone::Named(tz) => when.with_timezone(&tz).format(fmt).to_string(),
        }
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Local => f.write_str("system local time"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

//! Dates as French feeds write them.
//!
//! feed-rs reads RFC 3339 and RFC 2822 only; real feeds also carry `CEST` /
//! `CET` zones, French day and month names (`sam., 26 avr. 2025 11:20`) and
//! ISO dates without a zone. This parser is handed to feed-rs as its timestamp
//! parser, so every date field goes through it. Dates without a zone are read
//! in the configured time zone.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};

use super::zone::Zone;

pub fn parse_date(raw: &str, zone: Zone) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    let english = to_english(s);
    let with_offset = replace_zone_names(&english);
    if let Ok(d) = DateTime::parse_from_rfc2822(&with_offset) {
        return Some(d.with_timezone(&Utc));
    }
    parse_with_formats(&with_offset, zone)
}

/// French day and month names (full or abbreviated, with or without a dot)
/// become their English abbreviations; day names are dropped, since RFC 2822
/// only checks them.
fn to_english(s: &str) -> String {
    const MONTHS: [(&str, &str); 23] = [
        ("janvier", "Jan"),
        ("janv", "Jan"),
        ("février", "Feb"),
        ("fevrier", "Feb"),
        ("févr", "Feb"),
        ("fevr", "Feb"),
        ("mars", "Mar"),
        ("avril", "Apr"),
        ("avr", "Apr"),
        ("mai", "May"),
        ("juin", "Jun"),
        ("juillet", "Jul"),
        ("juil", "Jul"),
        ("août", "Aug"),
        ("aout", "Aug"),
        ("septembre", "Sep"),
        ("sept", "Sep"),
        ("octobre", "Oct"),
        ("oct", "Oct"),
        ("novembre", "Nov"),
        ("nov", "Nov"),
        ("décembre", "Dec"),
        ("déc", "Dec"),
    ];
    const DAYS: [&str; 14] = [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "lun", "mar",
        "mer", "jeu", "ven", "sam", "dim",
    ];
    let mut words: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        let bare = word.trim_end_matches([',', '.']).to_lowercase();
        if words.is_empty() && DAYS.contains(&bare.as_str()) {
            continue;
        }
        match MONTHS.iter().find(|(fr, _)| *fr == bare) {
            Some((_, en)) => words.push((*en).to_owned()),
            None if bare == "dec" || bare == "decembre" => words.push("Dec".to_owned()),
            None => words.push(word.trim_end_matches('.').to_owned()),
        }
    }
    // English day names ("Sat,") are dropped too: a wrong day name makes
    // chrono refuse an otherwise good date.
    if let Some(first) = words.first() {
        let day = first.trim_end_matches(',');
        if day.len() == 3 && day.parse::<chrono::Weekday>().is_ok() {
            words.remove(0);
        }
    }
    words.join(" ")
}

/// Zone abbreviations seen in feeds that chrono's RFC 2822 parser refuses.
fn replace_zone_names(s: &str) -> String {
    const ZONES: [(&str, &str); 6] = [
        ("CEST", "+0200"),
        ("CET", "+0100"),
        ("BST", "+0100"),
        ("IST", "+0530"),
        ("EEST", "+0300"),
        ("EET", "+0200"),
    ];
    match s.rsplit_once(' ') {
        Some((head, last)) => match ZONES.iter().find(|(name, _)| *name == last) {
            Some((_, offset)) => format!("{head} {offset}"),
            None => s.to_owned(),
        },
        None => s.to_owned(),
    }
}

fn parse_with_formats(s: &str, zone: Zone) -> Option<DateTime<Utc>> {
    const WITH_OFFSET: [&str; 4] = [
        "%d %b %Y %H:%M:%S %z",
        "%d %b %Y %H:%M %z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%dT%H:%M:%S%z",
    ];
    for f in WITH_OFFSET {
        if let Ok(d) = DateTime::<FixedOffset>::parse_from_str(s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    const LOCAL: [&str; 8] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d %b %Y %H:%M:%S",
        "%d %b %Y %H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ];
    for f in LOCAL {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return zone.to_utc(d);
        }
    }
    for f in ["%Y-%m-%d", "%d %b %Y", "%d/%m/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return zone.to_utc(d.and_hms_opt(0, 0, 0)?);
        }
    }
    // A trailing zone name that is not known (e.g. "PST") is dropped, reading
    // the time in the configured zone, rather than losing the date.
    let (head, tail) = s.rsplit_once(' ')?;
    if tail.chars().all(|c| c.is_ascii_uppercase()) && (2..=5).contains(&tail.len()) {
        return parse_with_formats(head, zone);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> Zone {
        Zone::Named(chrono_tz::Europe::Paris)
    }

    #[test]
    fn dates_french_feeds_carry_are_read() {
        let cases = [
            ("2025-04-26T11:20:00+02:00", "2025-04-26T09:20:00+00:00"),
            (
                "Sat, 26 Apr 2025 11:20:00 +0200",
                "2025-04-26T09:20:00+00:00",
            ),
            ("Sat, 26 Apr 2025 11:20:00 GMT", "2025-04-26T11:20:00+00:00"),
            (
                "Sat, 26 Apr 2025 11:20:00 CEST",
                "2025-04-26T09:20:00+00:00",
            ),
            ("Tue, 14 Jan 2025 08:00:00 CET", "2025-01-14T07:00:00+00:00"),
            ("sam., 26 avr. 2025 11:20", "2025-04-26T09:20:00+00:00"),
            ("samedi 26 avril 2025 11:20:00", "2025-04-26T09:20:00+00:00"),
            (
                "mar., 14 janv. 2025 08:00:00 +0100",
                "2025-01-14T07:00:00+00:00",
            ),
            ("14 août 2025 10:00", "2025-08-14T08:00:00+00:00"),
            ("3 déc. 2025 10:00", "2025-12-03T09:00:00+00:00"),
            ("2025-04-26T11:20:00", "2025-04-26T09:20:00+00:00"),
            ("2025-04-26 11:20:00", "2025-04-26T09:20:00+00:00"),
            ("2025-04-26", "2025-04-25T22:00:00+00:00"),
            (
                "Fri, 26 Apr 2025 11:20:00 +0200",
                "2025-04-26T09:20:00+00:00",
            ),
        ];
        for (raw, want) in cases {
            let got = parse_date(raw, paris()).map(|d| d.to_rfc3339());
            assert_eq!(got.as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn nonsense_is_no_date() {
        for raw in ["", "hier", "32 foo 2025", "tomorrow at noon"] {
            assert_eq!(parse_date(raw, paris()), None, "{raw}");
        }
    }
}

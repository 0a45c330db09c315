//! Where the database is: the config's `database`, parsed once. A
//! `postgresql://` (or `postgres://`) URL names a PostgreSQL database; any
//! other text is an SQLite file's path.

use std::fmt;
use std::path::PathBuf;

use url::Url;

/// The database the config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (the default).
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgUrl),
}

/// A PostgreSQL URL as written in the config (it may hold the password,
/// which is never shown).
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(Url);

/// How the connection is encrypted (`sslmode` in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// No TLS (`disable`, `allow`, `prefer`, or no `sslmode`).
    Off,
    /// TLS, the server's certificate checked against the system's roots
    /// and its name (`require`, `verify-ca`, `verify-full`).
    Verified,
}

impl Location {
    /// Reads the config's `database`: a URL, else a path (made absolute by
    /// the caller).
    pub fn is_url(text: &str) -> bool {
        text.starts_with("postgresql://") || text.starts_with("postgres://")
    }

    /// Parses a `postgresql://` URL; the error says what is wrong with it.
    pub fn postgres(text: &str) -> Result<Location, String> {
        let url = Url::parse(text).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the PostgreSQL URL names no host".into());
        }
        let url = PgUrl(url);
        url.tls()?;
        Ok(Location::Postgres(url))
    }
}

impl PgUrl {
    /// The URL to connect with: `sslmode` taken out (read by `tls`), the
    /// password as given.
    pub fn connect_url(&self) -> String {
        let mut url = self.0.clone();
        let kept: Vec<(String, String)> = self
            .0
            .query_pairs()
            .filter(|(k, _)| k != "sslmode")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        if url.scheme() == "postgres" {
            // `set_scheme` refuses no change between these two.
            let text = url.as_str().replacen("postgres://", "postgresql://", 1);
            return text;
        }
        url.to_string()
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        self.0.password().is_some()
    }

    /// The URL's `sslmode`.
    pub fn tls(&self) -> Result<Tls, String> {
        let mode = self
            .0
            .query_pairs()
            .find(|(k, _)| k == "sslmode")
            .map(|(_, v)| v.into_owned());
        match mode.as_deref() {
            None | Some("disable" | "allow" | "prefer") => Ok(Tls::Off),
            Some("require" | "verify-ca" | "verify-full") => Ok(Tls::Verified),
            Some(other) => Err(format!(
                "unknown sslmode {other:?} (write `require` or `verify-full` for TLS)"
            )),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// The URL without its password.
impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        write!(f, "{shown}")
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_read_and_its_password_never_shown() {
        let cases = [
            (
                "postgresql://veille:s3cret@db.example:5432/veille?sslmode=verify-full",
                "postgresql://veille:***@db.example:5432/veille?sslmode=verify-full",
                "postgresql://veille:s3cret@db.example:5432/veille",
                Tls::Verified,
            ),
            (
                "postgres://veille@127.0.0.1/veille",
                "postgres://veille@127.0.0.1/veille",
                "postgresql://veille@127.0.0.1/veille",
                Tls::Off,
            ),
            (
                "postgresql://h/db?sslmode=require&application_name=veille",
                "postgresql://h/db?sslmode=require&application_name=veille",
                "postgresql://h/db?application_name=veille",
                Tls::Verified,
            ),
        ];
        for (text, shown, connect, tls) in cases {
            let Location::Postgres(url) = Location::postgres(text).unwrap() else {
                panic!("{text}: not a PostgreSQL location");
            };
            assert_eq!(url.to_string(), shown);
            assert_eq!(url.connect_url(), connect);
            assert_eq!(url.tls().unwrap(), tls);
            assert!(!format!("{url:?}").contains("s3cret"));
        }
    }

    #[test]
    fn a_bad_url_says_what_is_wrong() {
        for (text, says) in [
            ("postgresql://h/db?sslmode=ssl", "unknown sslmode \"ssl\""),
            ("postgresql:///db", "names no host"),
            ("postgresql://h:99999/db", "not a valid PostgreSQL URL"),
        ] {
            let e = Location::postgres(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}

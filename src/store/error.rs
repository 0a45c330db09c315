//! What a call to the store returns when it fails: the error, and whether
//! the same call may succeed if made again (`Kind`). Callers act on the
//! kind: a sent message whose record failed for a passing reason is
//! recorded again while its lease holds, instead of being sent twice; a
//! group of polls whose write was given up for another's (a deadlock, a
//! lost connection) is written again instead of being fetched again.
//!
//! Each backend's own errors are sorted here, where their codes are known,
//! so that nothing outside the store names them.

use std::fmt;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The database could not do it now: busy or locked by another
    /// process, unreachable or restarting, short of room or memory, or it
    /// gave up this transaction for another's (a deadlock, a serialization
    /// failure). The same call, made again later, may succeed.
    Retry,
    /// The call cannot succeed as it is: data the database refuses, a
    /// database damaged or not veille's, a claim or lease that has passed
    /// on. Made again unchanged, it fails again.
    Broken,
}

/// A failed call to the store.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    inner: anyhow::Error,
}

/// What the store's face returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the same call may succeed if made again.
    pub fn is_retry(&self) -> bool {
        self.kind == Kind::Retry
    }

    /// An error of the given kind, whatever its causes say.
    pub fn new(kind: Kind, inner: impl Into<anyhow::Error>) -> Error {
        Error {
            kind,
            inner: inner.into(),
        }
    }

    /// The kind of any error that came from the store, even wrapped in
    /// context by its caller; `None` for one that did not.
    pub fn kind_of(e: &anyhow::Error) -> Option<Kind> {
        e.chain()
            .find_map(|c| c.downcast_ref::<Error>())
            .map(Error::kind)
    }
}

impl From<anyhow::Error> for Error {
    /// Sorts an error by the first of its causes whose kind is known.
    fn from(inner: anyhow::Error) -> Error {
        let kind = inner
            .chain()
            .find_map(kind_of_cause)
            .unwrap_or(Kind::Broken);
        Error { kind, inner }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::from(anyhow::Error::from(e))
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::from(anyhow::Error::from(e))
    }
}

impl fmt::Display for Error {
    /// The error's own message, and with `{:#}` its causes after it, as
    /// `anyhow` tells them; wrapped in an `anyhow::Error`, its causes are
    /// its `source`s, so that the chain is told once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.inner)
        } else {
            write!(f, "{}", self.inner)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// Several outcomes (one per poll of a write), each sorted.
pub(super) fn each<T>(outcomes: Vec<anyhow::Result<T>>) -> Vec<Result<T>> {
    outcomes
        .into_iter()
        .map(|o| o.map_err(Error::from))
        .collect()
}

/// A marker for a connection known lost: trying again reconnects.
#[derive(Debug)]
pub struct Lost;

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the connection to the database is lost")
    }
}

impl std::error::Error for Lost {}

/// The kind one cause tells, if it tells one.
fn kind_of_cause(cause: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    if let Some(e) = cause.downcast_ref::<Error>() {
        return Some(e.kind);
    }
    if cause.is::<Lost>() || cause.is::<std::io::Error>() {
        return Some(Kind::Retry);
    }
    if let Some(e) = cause.downcast_ref::<rusqlite::Error>() {
        return Some(sqlite_kind(e));
    }
    if let Some(e) = cause.downcast_ref::<postgres::Error>() {
        return postgres_kind(e);
    }
    None
}

fn sqlite_kind(e: &rusqlite::Error) -> Kind {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(
            DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen | OutOfMemory,
        ) => Kind::Retry,
        _ => Kind::Broken,
    }
}

/// By the server's SQLSTATE (PostgreSQL's appendix A) when it gave one;
/// else a closed connection is `Retry`, and for the rest (a value that
/// does not convert, a refused TLS certificate) the causes below decide.
fn postgres_kind(e: &postgres::Error) -> Option<Kind> {
    let Some(state) = e.code() else {
        return e.is_closed().then_some(Kind::Retry);
    };
    let code = state.code();
    let passing = [
        "08",    // connection exception
        "40",    // transaction rollback: serialization failure, deadlock
        "53",    // insufficient resources: disk full, out of memory, too many connections
        "57P",   // operator intervention: the server shutting down or starting
        "55P03", // lock not available
        "58",    // system error: I/O
    ];
    Some(if passing.iter().any(|p| code.starts_with(p)) {
        Kind::Retry
    } else {
        Kind::Broken
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{Context, anyhow};

    #[test]
    fn an_io_error_or_a_lost_connection_may_pass_and_a_plain_one_does_not() {
        let io = anyhow::Error::from(std::io::Error::other("reset")).context("reading");
        assert_eq!(Error::from(io).kind(), Kind::Retry);
        assert_eq!(Error::from(anyhow!(Lost)).kind(), Kind::Retry);
        assert_eq!(
            Error::from(anyhow!("a row that makes no sense")).kind(),
            Kind::Broken
        );
    }

    #[test]
    fn sqlite_busy_is_retry_and_a_constraint_is_broken() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let refused = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert_eq!(Error::from(refused).kind(), Kind::Broken);
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let wrapped = anyhow::Error::from(busy).context("recording polls");
        assert!(Error::from(wrapped).is_retry());
    }

    #[test]
    fn the_kind_survives_a_caller_s_context() {
        let e: anyhow::Result<()> = Err(Error::new(Kind::Retry, anyhow!("deadlock")).into());
        let e = e.context("cannot record the poll").unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(Kind::Retry));
        assert_eq!(format!("{e:#}"), "cannot record the poll: deadlock");
        let alone = Error::from(anyhow!("refused").context("writing"));
        assert_eq!(format!("{alone:#}"), "writing: refused");
        assert_eq!(format!("{alone}"), "writing");
        assert_eq!(Error::kind_of(&anyhow!("elsewhere")), None);
        // Sorted again, it keeps its kind rather than its causes'.
        let again = Error::from(anyhow::Error::from(Error::new(
            Kind::Broken,
            std::io::Error::other("x"),
        )));
        assert_eq!(again.kind(), Kind::Broken);
    }
}

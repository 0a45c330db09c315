//! Where the database is: the config's `database`, parsed once.

use std::fmt;
use std::path::PathBuf;

/// The database the config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (the default).
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}

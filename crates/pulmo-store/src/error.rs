//! The one error type of the store: every variant names what failed (path, UID, SQL step).
//! The network layer maps it to DIMSE statuses; `is_out_of_resources` tells it when to send A7xx.

use std::io;
use std::path::PathBuf;

use crate::uid::UidError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    InvalidUid(#[from] UidError),

    /// A spool-relative path (from the database) that is not `<uid>/<uid>/<uid>.dcm`.
    #[error("invalid spool path {path:?}")]
    InvalidSpoolPath { path: String },

    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("sqlite ({context}): {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer pulmo (or is not pulmo's): its schema version is one
    /// this build has no migrations for.
    #[error(
        "database schema version {found} is unknown to this build (supports up to {supported})"
    )]
    UnknownSchemaVersion { found: i64, supported: i64 },

    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    /// Findings that do not serialise, or stored findings this build cannot read.
    #[error("findings of study {study}: {source}")]
    Findings {
        study: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("path {path:?} is not valid UTF-8; the store keeps paths as text")]
    NonUtf8Path { path: PathBuf },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the failure is lack of disk space (the SCP answers "Out of Resources", A7xx),
    /// as opposed to bad input or a bug.
    pub fn is_out_of_resources(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || matches!(
                        rustix::io::Errno::from_io_error(source),
                        Some(rustix::io::Errno::NOSPC | rustix::io::Errno::DQUOT)
                    )
            }
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull)
            ),
            _ => false,
        }
    }
}

/// Attach the name of the SQL step to a rusqlite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_and_quota_are_out_of_resources() {
        let full = |errno: rustix::io::Errno| StoreError::io("write", "/x", errno.into());
        assert!(full(rustix::io::Errno::NOSPC).is_out_of_resources());
        assert!(full(rustix::io::Errno::DQUOT).is_out_of_resources());
        assert!(!full(rustix::io::Errno::ACCESS).is_out_of_resources());
        let uid = crate::Uid::parse("../x").unwrap_err();
        assert!(!StoreError::from(uid).is_out_of_resources());
    }
}

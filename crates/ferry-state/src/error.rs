use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

pub type StateResult<T> = Result<T, StateError>;

/// Why the state store could not do what was asked. Every variant that concerns the file
/// names it, so a user knows which file to move aside or restore.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state file {path} is corrupt or not a database ({message}); ferry will not reset it. Move it aside or restore a backup"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "state file {path} belongs to another application (application_id {found:#x}); refusing to use it"
    )]
    NotFerry { path: PathBuf, found: i32 },
    #[error(
        "state file {path} has schema version {found}, newer than this ferry supports ({supported}); upgrade ferry or use another state file"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("state file {path}: {what} could not be decoded: {message}")]
    Decode {
        path: PathBuf,
        what: String,
        message: String,
    },
    #[error("state file {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file: {0}")]
    Invalid(String),
    #[error("state store lock poisoned by a panic in another thread")]
    Poisoned,
}

impl StateError {
    pub(crate) fn from_sqlite(path: &Path, e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StateError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            },
            _ => StateError::Sqlite {
                path: path.to_path_buf(),
                source: e,
            },
        }
    }

    /// Whether the file itself is unusable (corrupt, foreign or too new), as opposed to a
    /// transient failure.
    pub fn is_fatal_file_error(&self) -> bool {
        matches!(
            self,
            StateError::Corrupt { .. } | StateError::NotFerry { .. } | StateError::TooNew { .. }
        )
    }
}

impl From<StateError> for ferry_core::Error {
    fn from(e: StateError) -> Self {
        ferry_core::Error::new(ferry_core::ErrorKind::Unexpected, e.to_string())
            .with_operation("state")
    }
}

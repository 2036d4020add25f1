//! ferry's state store: one embedded SQLite file.
//!
//! Everything the engine needs to remember between runs lives here: baselines and
//! checkpoints per (pair, provider instance, feature), tombstones, unresolved items, the
//! blackbox, per-instance health history, run history, restore points, the write journal
//! and a namespaced key-value table that backs [`ferry_core::KvStore`] (circuit-breaker
//! records, rotated tokens).
//!
//! Guarantees:
//! - WAL journal mode; every feature commit is one transaction ([`StateStore::commit_feature`]),
//!   so a process killed at any point leaves the previous committed state readable.
//! - The schema is versioned with `PRAGMA user_version` and migrated forward on open. A
//!   file written by a newer ferry, a file that is not a ferry state file, and a corrupt
//!   file are reported as a [`StateError`] naming the file; nothing is ever reset silently.
//! - The API is synchronous. Calls are local and short; the engine calls them directly.

mod baseline;
mod commit;
mod error;
mod journal;
mod kv;
mod owner_only;
mod restore;
mod runs;
mod schema;
mod tombstone;
mod unresolved;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

pub use baseline::{Baseline, BaselineInfo, BaselineWrite, decode_entries, encode_entries};
pub use commit::{FeatureCommit, UnresolvedWrite};
pub use error::{StateError, StateResult};
pub use journal::{JournalBatch, JournalRecord, JournalState};
pub use kv::{BREAKER_NAMESPACE, KvRecord};
pub use owner_only::{Tightened, create_owner_only, open_owner_only, sibling, tighten};
pub use restore::{RESTORE_POINTS_KEPT, RestorePoint, RestorePointInfo};
pub use runs::{InstanceHealth, RunRecord, RunStatus};
pub use schema::SCHEMA_VERSION;
pub use tombstone::{Tombstone, TombstoneWrite};
pub use unresolved::{BlackboxRecord, UnresolvedOp, UnresolvedRecord};

/// The application id stamped into every ferry state file (`FERY`).
pub const APPLICATION_ID: i32 = 0x4645_5259;

struct Inner {
    conn: Mutex<Connection>,
    /// `None` for an in-memory store.
    path: Option<PathBuf>,
    /// Files `open` found readable by other users and made owner-only.
    tightened: Mutex<Vec<Tightened>>,
}

/// A handle on the state database. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl StateStore {
    /// Opens (or creates) the state file at `path`, migrating it to [`SCHEMA_VERSION`].
    ///
    /// Errors: [`StateError::Corrupt`] when the file is not a readable SQLite database,
    /// [`StateError::NotFerry`] when it is some other application's database, and
    /// [`StateError::TooNew`] when it was written by a newer ferry.
    ///
    /// The file and its `-wal` and `-shm` companions are owner-only (`0600`): a new file is
    /// created so (SQLite gives its companions the database's mode), an existing one open
    /// to other users is tightened and listed in [`StateStore::tightened`].
    pub fn open(path: impl AsRef<Path>) -> StateResult<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut tightened = Vec::new();
        let companions = |p: &Path| [p.to_path_buf(), sibling(p, "-wal"), sibling(p, "-shm")];
        for f in companions(&path) {
            tightened.extend(tighten(&f).map_err(io)?);
        }
        create_owner_only(&path).map_err(io)?;
        let conn = Connection::open(&path).map_err(|e| StateError::from_sqlite(&path, e))?;
        let store = StateStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path: Some(path.clone()),
                tightened: Mutex::new(tightened),
            }),
        };
        store.init(true)?;
        // Companions SQLite created just now carry the database's mode; this only
        // catches a loose one that appeared between the check above and the open.
        for f in companions(&path) {
            if let Some(t) = tighten(&f).map_err(io)? {
                store
                    .inner
                    .tightened
                    .lock()
                    .map_err(|_| StateError::Poisoned)?
                    .push(t);
            }
        }
        Ok(store)
    }

    /// Files [`StateStore::open`] found readable by other users and made owner-only; the
    /// caller says so, naming each.
    pub fn tightened(&self) -> Vec<Tightened> {
        self.inner
            .tightened
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// An in-memory store (no WAL, nothing on disk), for tests and previews.
    pub fn open_in_memory() -> StateResult<Self> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| StateError::from_sqlite(&path, e))?;
        let store = StateStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path: None,
                tightened: Mutex::new(Vec::new()),
            }),
        };
        store.init(false)?;
        Ok(store)
    }

    /// The file this store lives in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    pub(crate) fn display_path(&self) -> PathBuf {
        self.inner
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(":memory:"))
    }

    fn init(&self, on_disk: bool) -> StateResult<()> {
        let path = self.display_path();
        let mut conn = self.conn()?;
        let err = |e| StateError::from_sqlite(&path, e);
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // Reading the header is where a non-database file fails.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if on_disk {
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    "state file {}: journal mode is {mode}, not WAL",
                    path.display()
                );
            }
            // NORMAL in WAL mode: a killed process loses nothing committed; a power cut
            // may lose the last transactions but never corrupts the file.
            conn.execute_batch("PRAGMA synchronous=NORMAL;")
                .map_err(err)?;
        }
        conn.execute_batch("PRAGMA foreign_keys=ON;").map_err(err)?;
        schema::migrate(&mut conn, &path, version)
    }

    pub(crate) fn conn(&self) -> StateResult<MutexGuard<'_, Connection>> {
        self.inner.conn.lock().map_err(|_| StateError::Poisoned)
    }

    /// The schema version of the open file (always [`SCHEMA_VERSION`] after `open`).
    pub fn schema_version(&self) -> StateResult<u32> {
        let c = self.conn()?;
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sql_err(e))?;
        Ok(v as u32)
    }

    /// Runs SQLite's full integrity check (reads every page; slow on large files). Returns
    /// the problems found, empty when the file is sound.
    pub fn check_integrity(&self) -> StateResult<Vec<String>> {
        let c = self.conn()?;
        let mut st = c
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(|e| self.sql_err(e))?;
            if r != "ok" {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub(crate) fn sql_err(&self, e: rusqlite::Error) -> StateError {
        StateError::from_sqlite(&self.display_path(), e)
    }

    pub(crate) fn json_err(&self, what: &str, e: serde_json::Error) -> StateError {
        StateError::Decode {
            path: self.display_path(),
            what: what.to_owned(),
            message: e.to_string(),
        }
    }
}

//! One ferry at a time per state file (overlapping cron and daemon runs double-reported
//! plays for other tools' users): an advisory lock on `<state>.lock`, taken with
//! `File::try_lock`. The kernel releases it when the holder exits, however it exits, so a
//! killed ferry never leaves a lock behind and nothing here guesses at staleness (a PID
//! check fails in a container, where a restarted ferry is PID 1 again).
//!
//! The file's content only says who holds it, for the refusal message; it is written
//! after the lock is taken and never decides anything.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ferry_core::Timestamp;
use serde::{Deserialize, Serialize};

/// Who holds the lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) since: Timestamp,
    /// The command it runs (`ferry daemon`).
    pub(crate) command: String,
}

/// Held while a command uses the state file; the kernel lock goes with the file handle.
#[derive(Debug)]
pub(crate) struct RunLock {
    file: File,
}

#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds the lock. `holder` is `None` when it has not yet said who
    /// it is (it writes that just after taking the lock).
    Busy {
        path: PathBuf,
        holder: Option<Holder>,
    },
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy {
                path,
                holder: Some(h),
            } => write!(
                f,
                "another ferry is using this state file: `{}` (pid {}) has held {} since {}; this one stops without touching it. Wait for that one to finish, or stop it",
                h.command,
                h.pid,
                path.display(),
                h.since
            ),
            LockError::Busy { path, holder: None } => write!(
                f,
                "another ferry is using this state file: it holds {} (it is just starting); this one stops without touching it",
                path.display()
            ),
            LockError::Io(m) => f.write_str(m),
        }
    }
}

impl RunLock {
    /// Takes the lock at `path` for `command` (shown to whoever is refused), or says who
    /// holds it. Never waits.
    pub(crate) fn acquire(path: &Path, command: &str) -> Result<RunLock, LockError> {
        let io = |what: &str, e: std::io::Error| {
            LockError::Io(format!(
                "cannot {what} the lock file {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LockError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut file = ferry_state::open_owner_only(path).map_err(|e| io("open", e))?;
        if let Some(t) = ferry_state::tighten(path).map_err(|e| io("tighten", e))? {
            tracing::warn!("{t}");
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    path: path.to_path_buf(),
                    holder: read_holder(&mut file),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
        let holder = Holder {
            pid: std::process::id(),
            since: Timestamp::now(),
            command: command.to_owned(),
        };
        let body = serde_json::to_vec(&holder).unwrap_or_default();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(&body))
            .and_then(|_| file.flush())
            .map_err(|e| io("write", e))?;
        Ok(RunLock { file })
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut body = Vec::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_end(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The file stays: removing it would let a second process lock a fresh file while
        // a third still holds the old one. Emptying it says nobody holds it.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.db.lock");
        let held = RunLock::acquire(&p, "ferry run").unwrap();
        let err = RunLock::acquire(&p, "ferry daemon").unwrap_err();
        match &err {
            LockError::Busy {
                holder: Some(h), ..
            } => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.command, "ferry run");
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("`ferry run`"), "{err}");
        drop(held);
        RunLock::acquire(&p, "ferry daemon").unwrap();
    }

    #[test]
    fn leftover_content_does_not_hold_the_lock() {
        // What a killed holder leaves: its record, but no lock.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.db.lock");
        let stale = Holder {
            pid: 1,
            since: Timestamp::now(),
            command: "ferry daemon".into(),
        };
        std::fs::write(&p, serde_json::to_vec(&stale).unwrap()).unwrap();
        let _l = RunLock::acquire(&p, "ferry run").unwrap();
        let now: Holder = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(now.pid, std::process::id());
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.db.lock");
        std::fs::write(&p, b"").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _l = RunLock::acquire(&p, "ferry run").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

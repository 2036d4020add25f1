//! The single-runner lock: at most one ferry run per state database at a time (overlapping
//! cron and daemon runs double-reported plays for other tools' users). A lock left behind
//! by a killed process is recovered: its process is gone, or it is older than the bound.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_core::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct LockRecord {
    pid: u32,
    started_at: Timestamp,
}

/// Held while a run is in progress; removes the lock file when dropped.
#[derive(Debug)]
pub(crate) struct RunLock {
    path: PathBuf,
}

#[derive(Debug)]
pub(crate) enum LockError {
    Busy {
        pid: u32,
        since: Timestamp,
        path: PathBuf,
    },
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy { pid, since, path } => write!(
                f,
                "another ferry run (pid {pid}) has held {} since {since}; wait for it, or remove the file if that process is gone",
                path.display()
            ),
            LockError::Io(m) => f.write_str(m),
        }
    }
}

fn process_alive(pid: u32) -> Option<bool> {
    // Linux: /proc tells us. Elsewhere we cannot tell without unsafe FFI, so only the age
    // bound recovers a stale lock.
    if Path::new("/proc/self").exists() {
        Some(Path::new(&format!("/proc/{pid}")).exists())
    } else {
        None
    }
}

impl RunLock {
    /// Takes the lock at `path`, recovering a stale one (dead process, or older than
    /// `max_age`).
    pub(crate) fn acquire(path: &Path, max_age: Duration) -> Result<RunLock, LockError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| LockError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let rec = LockRecord {
                        pid: std::process::id(),
                        started_at: Timestamp::now(),
                    };
                    let body = serde_json::to_vec(&rec).unwrap_or_default();
                    f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| {
                        let _ = fs::remove_file(path);
                        LockError::Io(format!("cannot write {}: {e}", path.display()))
                    })?;
                    return Ok(RunLock {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let rec: Option<LockRecord> = fs::read(path)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok());
                    let stale = match &rec {
                        // Unreadable: a crash while writing it. Stale.
                        None => true,
                        Some(r) => {
                            let age = Timestamp::now().unix().saturating_sub(r.started_at.unix());
                            process_alive(r.pid) == Some(false) || age as u64 > max_age.as_secs()
                        }
                    };
                    if !stale {
                        let r = rec.expect("a fresh lock has a record");
                        return Err(LockError::Busy {
                            pid: r.pid,
                            since: r.started_at,
                            path: path.to_path_buf(),
                        });
                    }
                    tracing::warn!("recovering a stale run lock at {}", path.display());
                    let _ = fs::remove_file(path);
                }
                Err(e) => {
                    return Err(LockError::Io(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Err(LockError::Io(format!(
            "could not take the run lock at {}",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_second_run_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.lock");
        let held = RunLock::acquire(&p, HOUR).unwrap();
        let err = RunLock::acquire(&p, HOUR).unwrap_err();
        assert!(
            matches!(err, LockError::Busy { pid, .. } if pid == std::process::id()),
            "{err}"
        );
        drop(held);
        assert!(!p.exists());
        RunLock::acquire(&p, HOUR).unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.lock");
        // A pid far above any real one on this machine.
        fs::write(
            &p,
            serde_json::to_vec(&LockRecord {
                pid: 4_000_000_000,
                started_at: Timestamp::now(),
            })
            .unwrap(),
        )
        .unwrap();
        let _l = RunLock::acquire(&p, HOUR).unwrap();
    }

    #[test]
    fn an_old_lock_is_recovered_even_if_its_pid_exists() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.lock");
        let old = Timestamp::from_unix(Timestamp::now().unix() - 7200);
        fs::write(
            &p,
            serde_json::to_vec(&LockRecord {
                pid: std::process::id(),
                started_at: old,
            })
            .unwrap(),
        )
        .unwrap();
        let _l = RunLock::acquire(&p, HOUR).unwrap();
    }

    #[test]
    fn a_torn_lock_file_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.lock");
        fs::write(&p, b"{\"pid\":").unwrap();
        let _l = RunLock::acquire(&p, HOUR).unwrap();
    }
}

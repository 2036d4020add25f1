//! One ferry per state file, held by a kernel lock: while one holds it (a daemon, or any
//! process with the lock file locked), `run`, `restore` and `auth` are refused with exit 5
//! naming the holder; a SIGKILLed holder leaves nothing behind. Also: the state files are
//! owner-only whatever the umask, and a loose one is tightened with a warning.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Setup, ferry, local_block, q};
use tokio::io::{AsyncBufReadExt, BufReader};

const BUSY: i32 = 5;

/// A hang guard for waiting on a daemon's first lines, not a timing assertion.
const READY_GUARD: Duration = Duration::from_secs(300);

fn config(s: &Setup) -> PathBuf {
    s.config(&format!(
        "{}{}[providers.tracker]\nkind = \"trakt\"\nbase_url = {}\nclient_id = \"id\"\nclient_secret = \"s\"\n\n\
         [[pairs]]\nname = \"a-to-b\"\nsource = \"a\"\ntarget = \"b\"\ninterval_minutes = 600\n",
        local_block("a", &s.path("a")),
        local_block("b", &s.path("b")),
        // Never contacted: `ferry auth` is refused before it signs in.
        q("http://127.0.0.1:9")
    ))
}

fn lock_file(s: &Setup) -> PathBuf {
    s.path("ferry.db.lock")
}

/// A running `ferry daemon`, its stdout read up to a given event.
struct Daemon {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Daemon {
    async fn start(config: &Path, umask: Option<&str>) -> Daemon {
        let bin = env!("CARGO_BIN_EXE_ferry");
        let mut cmd = match umask {
            Some(m) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c")
                    .arg(format!("umask {m} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
            None => tokio::process::Command::new(bin),
        };
        cmd.args(["--json", "daemon", "--config"])
            .arg(config)
            .env_remove("FERRY_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn ferry daemon");
        let stdout = child.stdout.take().expect("piped stdout");
        Daemon {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Reads events until one named `name` (the daemon holds the lock from before
    /// `daemon:start`).
    async fn wait_for(&mut self, name: &str) {
        let want = format!("\"event\":\"{name}\"");
        let found = tokio::time::timeout(READY_GUARD, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if line.contains(&want) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "the daemon never emitted {name}");
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("a running daemon has a pid")
    }

    async fn kill9(mut self) {
        // tokio's kill is SIGKILL on unix: no destructor, no cleanup runs.
        self.child.kill().await.expect("SIGKILL the daemon");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_daemon_holds_the_state_run_restore_and_auth_are_refused_naming_it() {
    let s = Setup::new();
    let cfg = config(&s);
    let mut daemon = Daemon::start(&cfg, None).await;
    daemon.wait_for("daemon:start").await;
    let pid = daemon.pid();

    for args in [
        &["run"][..],
        &["run", "--dry-run"],
        &["restore", "1"],
        &["auth", "trakt"],
        &["daemon"],
    ] {
        let r = ferry(Some(&cfg), args).await;
        r.expect_code(BUSY);
        assert!(
            r.stderr.contains(&format!("(pid {pid})")) && r.stderr.contains("`ferry daemon`"),
            "the refusal names the holder\n{}",
            r.show()
        );
    }
    // Reading commands do not need the lock.
    ferry(Some(&cfg), &["state"]).await.expect_code(0);

    daemon.kill9().await;
    ferry(Some(&cfg), &["run"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_another_process_refuses_the_run_until_it_is_released() {
    let s = Setup::new();
    let cfg = config(&s);
    ferry(Some(&cfg), &["run"]).await.expect_code(0);

    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock_file(&s))
        .expect("ferry left its lock file");
    held.try_lock().expect("nobody holds it after the run");
    let r = ferry(Some(&cfg), &["run"]).await;
    r.expect_code(BUSY);
    assert!(
        r.stderr.contains(&lock_file(&s).display().to_string()),
        "{}",
        r.show()
    );
    drop(held);
    ferry(Some(&cfg), &["run"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_holder_leaves_no_lock_behind() {
    let s = Setup::new();
    let cfg = config(&s);
    let mut daemon = Daemon::start(&cfg, None).await;
    daemon.wait_for("daemon:start").await;
    ferry(Some(&cfg), &["run"]).await.expect_code(BUSY);
    daemon.kill9().await;
    // The kernel dropped the lock with the process: the very next run proceeds, though
    // the file still names the dead holder.
    let r = ferry(Some(&cfg), &["--json", "run"]).await;
    r.expect_code(0);
    assert_eq!(r.named("summary").len(), 1, "{}", r.show());
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_files_are_owner_only_under_umask_022() {
    let s = Setup::new();
    let cfg = config(&s);
    let mut daemon = Daemon::start(&cfg, Some("022")).await;
    // After its first run the daemon still has the database open: the WAL and its index
    // exist now.
    daemon.wait_for("summary").await;
    for f in ["ferry.db", "ferry.db-wal", "ferry.db-shm", "ferry.db.lock"] {
        assert_eq!(mode(&s.path(f)), 0o600, "{f}");
    }
    daemon.kill9().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loose_state_file_is_tightened_with_a_warning_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let cfg = config(&s);
    ferry(Some(&cfg), &["run"]).await.expect_code(0);
    let db = s.path("ferry.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = ferry(Some(&cfg), &["run"]).await;
    r.expect_code(0);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("warning: ")
            && l.contains(&db.display().to_string())
            && l.contains("0644")),
        "{}",
        r.show()
    );
    assert_eq!(mode(&db), 0o600);
    // Once tight, nothing more is said.
    let r = ferry(Some(&cfg), &["run"]).await;
    assert!(!r.stderr.contains("owner-only"), "{}", r.show());
}

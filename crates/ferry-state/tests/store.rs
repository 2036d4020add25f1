//! ferry-state: schema, corruption handling, the feature commit and its bookkeeping.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use ferry_core::report::ItemOutcome;
use ferry_core::{
    Entry, Feature, HealthStatus, IdKind, Ids, Item, KvStore, MediaType, Outcome, Timestamp,
};
use ferry_state::{
    BaselineWrite, FeatureCommit, JournalBatch, JournalState, RunStatus, SCHEMA_VERSION,
    StateError, StateStore, TombstoneWrite, UnresolvedOp, UnresolvedWrite,
};

fn movie(n: u32) -> Item {
    Item::movie(
        format!("Movie {n}"),
        2000,
        Ids::new()
            .with(IdKind::Tmdb, &(1000 + n).to_string())
            .with(IdKind::Imdb, &format!("tt{:07}", n + 1)),
    )
}

fn wl(n: u32) -> Entry {
    Entry::watchlist(movie(n))
}

fn commit(pair: &str, feature: Feature) -> FeatureCommit {
    FeatureCommit {
        pair: pair.into(),
        feature: Some(feature),
        at: Some(Timestamp::from_unix(1_700_000_000)),
        blackbox_after: 3,
        ..FeatureCommit::default()
    }
}

#[test]
fn a_new_file_is_created_at_the_current_schema_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/state.db");
    let s = StateStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(path.exists());
    drop(s);
    // Reopening is idempotent.
    let s = StateStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(s.check_integrity().unwrap().is_empty());
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
}

#[test]
fn a_file_from_a_newer_ferry_is_a_clear_error_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(StateStore::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 5))
        .unwrap();
    drop(c);
    let err = StateStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StateError::TooNew { found, .. } if found == SCHEMA_VERSION + 5),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("state.db") && msg.contains("newer"), "{msg}");
    // Untouched: still at the newer version.
    let v: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, i64::from(SCHEMA_VERSION + 5));
}

#[test]
fn a_corrupt_file_is_a_clear_error_never_a_silent_reset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let garbage =
        b"this is not an sqlite database, it is a text file that got copied over it".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = StateStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(err.is_fatal_file_error());
    assert!(err.to_string().contains("state.db"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is not rewritten"
    );
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = StateStore::open(&path).unwrap_err();
    assert!(matches!(err, StateError::NotFerry { .. }), "{err}");
}

#[test]
fn a_corrupt_baseline_blob_names_the_file_and_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = StateStore::open(&path).unwrap();
    let mut fc = commit("p", Feature::Watchlist);
    fc.baselines
        .push(BaselineWrite::new("a", None, false, &[wl(1)]).unwrap());
    s.commit_feature(&fc).unwrap();
    drop(s);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE baselines SET data = x'7b7b7b'", [])
        .unwrap();
    let s = StateStore::open(&path).unwrap();
    let err = s.load_baseline("p", "a", Feature::Watchlist).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("state.db") && msg.contains("baseline p/a/watchlist"),
        "{msg}"
    );
}

#[test]
fn baselines_are_per_pair_instance_and_feature() {
    let s = StateStore::open_in_memory().unwrap();
    let mut fc = commit("p1", Feature::Watchlist);
    fc.baselines
        .push(BaselineWrite::new("plex", Some("cp1".into()), false, &[wl(1), wl(2)]).unwrap());
    s.commit_feature(&fc).unwrap();
    let mut fc = commit("p2", Feature::Watchlist);
    fc.baselines
        .push(BaselineWrite::new("plex", None, true, &[wl(3)]).unwrap());
    s.commit_feature(&fc).unwrap();

    let b1 = s
        .load_baseline("p1", "plex", Feature::Watchlist)
        .unwrap()
        .unwrap();
    assert_eq!(b1.entries, vec![wl(1), wl(2)]);
    assert_eq!(b1.checkpoint.as_deref(), Some("cp1"));
    assert!(!b1.pending);
    let b2 = s
        .load_baseline("p2", "plex", Feature::Watchlist)
        .unwrap()
        .unwrap();
    assert_eq!(b2.entries, vec![wl(3)]);
    assert!(b2.pending);
    assert!(
        s.load_baseline("p1", "plex", Feature::Ratings)
            .unwrap()
            .is_none()
    );
    let infos = s.baselines().unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].item_count, 2);
    assert_eq!(s.forget_pair("p1").unwrap(), 1);
    assert!(
        s.load_baseline("p1", "plex", Feature::Watchlist)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_100k_item_baseline_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let s = StateStore::open(dir.path().join("state.db")).unwrap();
    let entries: Vec<Entry> = (0..100_000).map(wl).collect();
    let mut fc = commit("p", Feature::Watchlist);
    fc.baselines
        .push(BaselineWrite::new("a", None, false, &entries).unwrap());
    s.commit_feature(&fc).unwrap();
    let b = s
        .load_baseline("p", "a", Feature::Watchlist)
        .unwrap()
        .unwrap();
    assert_eq!(b.entries.len(), 100_000);
    assert_eq!(b.entries[99_999], entries[99_999]);
}

#[test]
fn tombstones_keep_their_first_time_and_are_pruned_by_age() {
    let s = StateStore::open_in_memory().unwrap();
    let tw = TombstoneWrite {
        instance: "trakt".into(),
        media_type: MediaType::Movie,
        key: "tmdb:1001".into(),
        tokens: vec!["imdb:tt0000002".into(), "tmdb:1001".into()],
        event_at: None,
    };
    let mut fc = commit("p", Feature::Watchlist);
    fc.tombstones.push(tw.clone());
    s.commit_feature(&fc).unwrap();
    let mut fc2 = commit("p", Feature::Watchlist);
    fc2.at = Some(Timestamp::from_unix(1_800_000_000));
    fc2.tombstones.push(tw);
    s.commit_feature(&fc2).unwrap();

    let t = s
        .tombstones("p", Feature::Watchlist, Timestamp::from_unix(0))
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].tokens.len(), 2);
    assert_eq!(t[0].created_at, Timestamp::from_unix(1_700_000_000));
    assert!(
        s.tombstones("p", Feature::Ratings, Timestamp::from_unix(0))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.prune_tombstones(Timestamp::from_unix(1_700_000_001))
            .unwrap(),
        2
    );
    assert!(
        s.tombstones("p", Feature::Watchlist, Timestamp::from_unix(0))
            .unwrap()
            .is_empty()
    );
}

fn failed_add(key: &str, n: u32, counts: bool) -> UnresolvedWrite {
    UnresolvedWrite {
        instance: "trakt".into(),
        op: UnresolvedOp::Add,
        key: key.into(),
        entry: wl(n),
        reason: "not_found".into(),
        detail: None,
        counts_as_failure: counts,
    }
}

#[test]
fn an_add_failing_three_consecutive_runs_moves_to_the_blackbox() {
    let s = StateStore::open_in_memory().unwrap();
    for run in 1..=3 {
        let mut fc = commit("p", Feature::Ratings);
        fc.run_id = Some(run);
        fc.unresolved.push(failed_add("tmdb:1001", 1, true));
        // Outages do not count toward the blackbox.
        fc.unresolved.push(failed_add("tmdb:1002", 2, false));
        // Written twice in one run: counted once.
        fc.unresolved.push(failed_add("tmdb:1001", 1, true));
        let promoted = s.commit_feature(&fc).unwrap();
        if run < 3 {
            assert!(promoted.is_empty());
            let u = s.unresolved(Some("p"), None).unwrap();
            assert_eq!(u.len(), 2);
            assert_eq!(u[0].failures, run as u32);
        } else {
            assert_eq!(promoted, vec![("trakt".to_owned(), "tmdb:1001".to_owned())]);
        }
    }
    let u = s.unresolved(Some("p"), Some(Feature::Ratings)).unwrap();
    assert_eq!(u.len(), 1, "promoted items leave the unresolved list");
    assert_eq!(u[0].key, "tmdb:1002");
    assert_eq!(u[0].failures, 0);
    let bb = s.blackbox(Some("p")).unwrap();
    assert_eq!(bb.len(), 1);
    assert!(bb[0].reason.contains("3 consecutive"), "{}", bb[0].reason);

    // A success clears an unresolved record.
    let mut fc = commit("p", Feature::Ratings);
    fc.resolved
        .push(("trakt".into(), UnresolvedOp::Add, "tmdb:1002".into()));
    s.commit_feature(&fc).unwrap();
    assert!(s.unresolved(None, None).unwrap().is_empty());
    assert_eq!(
        s.prune_blackbox(Timestamp::from_unix(1_700_000_001))
            .unwrap(),
        1
    );
}

#[test]
fn journal_rows_survive_until_their_feature_commits() {
    let s = StateStore::open_in_memory().unwrap();
    let entries = vec![wl(1), wl(2)];
    let b = JournalBatch {
        run_id: 7,
        pair: "p",
        instance: "trakt",
        feature: Feature::History,
        op: UnresolvedOp::Add,
        batch: 0,
        entries: &entries,
        at: Timestamp::from_unix(5),
    };
    let id1 = s.journal_begin(&b).unwrap();
    let outcomes = vec![ItemOutcome {
        key: "tmdb:1001".into(),
        outcome: Outcome::Confirmed,
    }];
    s.journal_finish(
        id1,
        JournalState::Done,
        Some(&outcomes),
        Timestamp::from_unix(6),
    )
    .unwrap();
    let id2 = s
        .journal_begin(&JournalBatch {
            batch: 1,
            ..b.clone()
        })
        .unwrap();

    // Another run sees both rows; the run itself does not.
    let open = s.journal_open("p", Feature::History, Some(8)).unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].state, JournalState::Done);
    assert_eq!(
        open[0].outcomes.as_ref().unwrap()[0].outcome,
        Outcome::Confirmed
    );
    assert_eq!(open[1].id, id2);
    assert_eq!(open[1].state, JournalState::Pending);
    assert_eq!(open[1].entries, entries);
    assert!(
        s.journal_open("p", Feature::History, Some(7))
            .unwrap()
            .is_empty()
    );

    // Run 8 reconciles them in its commit.
    let mut fc = commit("p", Feature::History);
    fc.run_id = Some(8);
    fc.reconciled_journal = vec![id1, id2];
    s.commit_feature(&fc).unwrap();
    assert!(s.journal_all().unwrap().is_empty());
}

#[test]
fn runs_and_health_history_are_recorded() {
    let s = StateStore::open_in_memory().unwrap();
    let r1 = s.begin_run(Timestamp::from_unix(10)).unwrap();
    // A second run while the first is still "running": the first died.
    let r2 = s.begin_run(Timestamp::from_unix(20)).unwrap();
    s.finish_run(
        r2,
        RunStatus::Ok,
        Timestamp::from_unix(30),
        &serde_json::json!({"added": 1}),
    )
    .unwrap();
    let runs = s.runs(10).unwrap();
    assert_eq!(runs[0].id, r2);
    assert_eq!(runs[0].status, RunStatus::Ok);
    assert_eq!(runs[0].summary.as_ref().unwrap()["added"], 1);
    assert_eq!(runs[1].id, r1);
    assert_eq!(runs[1].status, RunStatus::Interrupted);

    assert!(s.last_health("plex").unwrap().is_none());
    s.record_health(
        "plex",
        HealthStatus::AuthFailed,
        Timestamp::from_unix(1),
        Some(r1),
    )
    .unwrap();
    s.record_health("plex", HealthStatus::Ok, Timestamp::from_unix(2), Some(r2))
        .unwrap();
    let h = s.last_health("plex").unwrap().unwrap();
    assert_eq!(h.status, HealthStatus::Ok);
    assert_eq!(s.instance_health().unwrap().len(), 1);
}

#[test]
fn restore_points_round_trip_and_are_capped() {
    let s = StateStore::open_in_memory().unwrap();
    let mut last = 0;
    for i in 0..(ferry_state::RESTORE_POINTS_KEPT + 2) {
        last = s
            .save_restore_point(
                Some(1),
                "p",
                "trakt",
                Feature::Watchlist,
                Timestamp::from_unix(i),
                &[wl(i as u32)],
            )
            .unwrap();
    }
    let list = s.restore_points().unwrap();
    assert_eq!(list.len() as i64, ferry_state::RESTORE_POINTS_KEPT);
    let rp = s.restore_point(last).unwrap().unwrap();
    assert_eq!(rp.info.instance, "trakt");
    assert_eq!(rp.entries.len(), 1);
    assert!(s.restore_point(-1).unwrap().is_none());
}

#[test]
fn kv_store_is_namespaced_and_lists_breaker_records() {
    let s = StateStore::open_in_memory().unwrap();
    s.put(
        ferry_state::BREAKER_NAMESPACE,
        "trakt-main",
        r#"{"state":"open"}"#,
    )
    .unwrap();
    s.put("trakt-main", "refresh_token", "r1").unwrap();
    s.put(
        ferry_state::BREAKER_NAMESPACE,
        "plex",
        r#"{"state":"closed"}"#,
    )
    .unwrap();
    assert_eq!(
        s.get("trakt-main", "refresh_token").unwrap().as_deref(),
        Some("r1")
    );
    assert_eq!(s.get("plex", "refresh_token").unwrap(), None);
    s.put("trakt-main", "refresh_token", "r2").unwrap();
    assert_eq!(
        s.get("trakt-main", "refresh_token").unwrap().as_deref(),
        Some("r2")
    );
    let b = s.breaker_records().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].key, "plex");
    s.delete("trakt-main", "refresh_token").unwrap();
    assert_eq!(s.get("trakt-main", "refresh_token").unwrap(), None);
}

const CHILD_ENV: &str = "FERRY_STATE_KILL_CHILD_DB";

/// Child half of `a_process_killed_mid_commit_leaves_a_readable_file`: when started by
/// that test (the environment variable names the file), commits baselines in a loop and
/// reports each commit on stdout until it is killed. Run normally, it only checks that
/// the variable is absent.
#[test]
fn kill_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        assert!(std::env::var_os(CHILD_ENV).is_none());
        return;
    };
    let s = StateStore::open(&path).unwrap();
    let mut out = std::io::stdout();
    for round in 0..100_000u32 {
        let n = 2_000 + round % 7;
        let entries: Vec<Entry> = (0..n).map(wl).collect();
        let mut fc = commit("p", Feature::Watchlist);
        fc.run_id = Some(i64::from(round));
        fc.baselines
            .push(BaselineWrite::new("a", Some(round.to_string()), false, &entries).unwrap());
        fc.unresolved.push(failed_add("tmdb:1", 1, true));
        s.commit_feature(&fc).unwrap();
        // The next round's commit settles this row.
        let _ = s.journal_begin(&JournalBatch {
            run_id: i64::from(round) + 1,
            pair: "p",
            instance: "a",
            feature: Feature::Watchlist,
            op: UnresolvedOp::Add,
            batch: 0,
            entries: &entries[..10],
            at: Timestamp::from_unix(1),
        });
        writeln!(out, "committed {round}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_process_killed_mid_commit_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(StateStore::open(&path).unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    for line in lines.by_ref() {
        if line.unwrap().starts_with("committed") {
            seen += 1;
            if seen == 25 {
                break;
            }
        }
    }
    assert_eq!(seen, 25, "the child kept committing");
    child.kill().unwrap();
    child.wait().unwrap();

    let s = StateStore::open(&path).unwrap();
    assert!(s.check_integrity().unwrap().is_empty());
    let b = s
        .load_baseline("p", "a", Feature::Watchlist)
        .unwrap()
        .unwrap();
    let round: u32 = b.checkpoint.as_deref().unwrap().parse().unwrap();
    assert!(round >= 24, "at least the reported commits are there");
    assert_eq!(
        b.entries.len() as u32,
        2_000 + round % 7,
        "a whole baseline, never a torn one"
    );
    assert_eq!(s.unresolved(None, None).unwrap().len(), 1);
    assert!(
        s.journal_all().unwrap().len() <= 1,
        "committed rounds cleared their journal"
    );
}

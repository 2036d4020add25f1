//! The state file holds tokens: it and its WAL companions are owner-only, and a loose
//! existing file is tightened and reported.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ferry_core::KvStore;
use ferry_state::{StateStore, sibling};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_new_state_file_and_its_wal_companions_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ferry.db");
    let store = StateStore::open(&db).unwrap();
    // A write makes SQLite create the WAL and its index.
    store.put("test", "k", "v").unwrap();
    assert!(store.tightened().is_empty(), "{:?}", store.tightened());
    for p in [db.clone(), sibling(&db, "-wal"), sibling(&db, "-shm")] {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn a_loose_existing_state_file_is_tightened_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ferry.db");
    drop(StateStore::open(&db).unwrap());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = StateStore::open(&db).unwrap();
    let t = store.tightened();
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].path, db);
    assert_eq!(t[0].was, 0o644);
    assert_eq!(mode(&db), 0o600);
    store.put("test", "k", "v").unwrap();
    assert_eq!(mode(&sibling(&db, "-wal")), 0o600);
}

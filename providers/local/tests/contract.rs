//! The local provider against the whole contract suite, plus its own durability rules.

use std::sync::Arc;

use ferry_core::harness::Harness;
use ferry_core::{Completeness, Context, ErrorKind, Feature, InventoryOps};
use ferry_testkit::contract::{Subject, fault_checks, run_contract_suite};
use ferry_testkit::samples;
use local::LocalProvider;

#[tokio::test]
async fn local_passes_the_contract_suite() {
    let dir = tempfile::tempdir().unwrap();
    let p = LocalProvider::open("backup", dir.path().join("backup"));
    // Through the harness the registry puts around every provider, as the binary runs it.
    let report = run_contract_suite(Subject::new(Harness::wrap(Arc::new(p)))).await;
    // A directory of files has no simulator to attack; its own faults (a corrupt, a
    // vanished or an undecodable file) are the tests below.
    report.assert_ran_all_but(&fault_checks());
}

#[tokio::test]
async fn a_row_that_does_not_decode_makes_the_read_partial_and_blocks_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = LocalProvider::open("b", dir.path());
    let cx = Context::default();
    let entries: Vec<_> = (1..=3)
        .map(|n| samples::entry(Feature::Watchlist, n))
        .collect();
    p.add(&cx, Feature::Watchlist, &entries).await.unwrap();
    let path = dir.path().join("watchlist.json");
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file["entries"][1] = serde_json::json!({"item": {"kind": 7}});
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let snap = p.build_index(&cx, Feature::Watchlist).await.unwrap();
    match snap.completeness() {
        Completeness::Partial { reason } => {
            assert!(reason.starts_with("undecodable_row"), "{reason}");
            assert!(reason.contains("watchlist.json"), "{reason}");
        }
        Completeness::Complete => panic!("a file with a bad row read as complete"),
    }
    assert_eq!(snap.len(), 2, "the other rows are kept");
    let err = p
        .add(
            &cx,
            Feature::Watchlist,
            &[samples::entry(Feature::Watchlist, 9)],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("will not rewrite"), "{err}");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(kept, file, "the file is left as it was");
}

#[tokio::test]
async fn a_corrupt_file_is_an_error_naming_it_not_an_empty_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = LocalProvider::open("b", dir.path());
    let cx = Context::default();
    p.add(
        &cx,
        Feature::Watchlist,
        &[samples::entry(Feature::Watchlist, 1)],
    )
    .await
    .unwrap();
    std::fs::write(
        dir.path().join("watchlist.json"),
        b"{\"format\":1,\"entries\":[{\"item\":",
    )
    .unwrap();
    let err = p.build_index(&cx, Feature::Watchlist).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert!(err.to_string().contains("watchlist.json"), "{err}");
    // A write must not paper over the corrupt file either.
    let err = p
        .add(
            &cx,
            Feature::Watchlist,
            &[samples::entry(Feature::Watchlist, 2)],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("watchlist.json"), "{err}");
}

#[tokio::test]
async fn a_vanished_file_is_an_error_not_an_empty_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = LocalProvider::open("b", dir.path());
    let cx = Context::default();
    p.add(
        &cx,
        Feature::Ratings,
        &[samples::entry(Feature::Ratings, 1)],
    )
    .await
    .unwrap();
    std::fs::remove_file(dir.path().join("ratings.json")).unwrap();
    let err = p.build_index(&cx, Feature::Ratings).await.unwrap_err();
    assert!(err.to_string().contains("ratings.json is missing"), "{err}");
    // A feature never written is legitimately empty.
    assert!(
        p.build_index(&cx, Feature::Progress)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn data_survives_reopening_and_no_temp_files_remain() {
    let dir = tempfile::tempdir().unwrap();
    let cx = Context::default();
    {
        let p = LocalProvider::open("b", dir.path());
        let entries: Vec<_> = (0..50)
            .map(|n| samples::entry(Feature::History, n))
            .collect();
        assert_eq!(
            p.add(&cx, Feature::History, &entries)
                .await
                .unwrap()
                .confirmed(),
            50
        );
    }
    let p = LocalProvider::open("b", dir.path());
    assert_eq!(
        p.build_index(&cx, Feature::History).await.unwrap().len(),
        50
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn an_unwritable_directory_reports_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let p = LocalProvider::open("b", file.join("sub"));
    let h = p.health(&Context::default()).await;
    assert_eq!(h.status, ferry_core::HealthStatus::Down, "{h:?}");
    assert!(h.details.unwrap_or_default().contains("not-a-dir"));
}

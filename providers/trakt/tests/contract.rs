//! The Trakt provider against the whole contract suite, on the Trakt simulator.

mod common;

use ferry_testkit::contract::{Subject, all_checks, run_contract_suite};

#[tokio::test]
async fn trakt_passes_the_contract_suite() {
    let sim = common::sim().await;
    let rig = common::rig(&sim);
    let secrets = [
        sim.client_id(),
        sim.client_secret(),
        sim.access_token(),
        sim.refresh_token(),
    ];
    let report = run_contract_suite(Subject::new(rig.provider.clone()).with_secrets(secrets)).await;
    report.assert_passed();
    assert_eq!(
        report.passed.len(),
        all_checks().len(),
        "{:?}",
        report.passed
    );
}

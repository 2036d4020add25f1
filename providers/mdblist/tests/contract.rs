//! The MDBList provider against the whole contract suite, on the MDBList simulator.

use std::sync::Arc;

use ferry_core::Secret;
use ferry_http::ManualClock;
use ferry_testkit::contract::{Subject, all_checks, run_contract_suite};
use ferry_testkit::sim::mdblist::MdblistSim;
use mdblist::{MdblistConfig, MdblistOptions, MdblistProvider};

fn provider(sim: &MdblistSim, page_size: Option<u32>) -> MdblistProvider {
    let config = MdblistConfig {
        api_key: Secret::new(sim.api_key()),
        base_url: Some(sim.uri()),
        page_size,
    };
    // The declared limits stay on; the manual clock records the waits instead of taking them.
    let options = MdblistOptions {
        clock: Some(Arc::new(ManualClock::new(1_750_000_000))),
        seed: Some(11),
        ..MdblistOptions::default()
    };
    MdblistProvider::new("mdblist-contract", config, options).expect("build")
}

#[tokio::test]
async fn mdblist_passes_the_contract_suite() {
    let sim = MdblistSim::start().await;
    let p = provider(&sim, None);
    let report = run_contract_suite(Subject::new(Arc::new(p)).with_secrets([sim.api_key()])).await;
    report.assert_passed();
    assert_eq!(report.passed.len(), all_checks().len());
}

#[tokio::test]
async fn mdblist_passes_the_contract_suite_with_tiny_pages() {
    let sim = MdblistSim::start().await;
    let p = provider(&sim, Some(3));
    let report = run_contract_suite(Subject::new(Arc::new(p)).with_secrets([sim.api_key()])).await;
    report.assert_passed();
    assert_eq!(report.passed.len(), all_checks().len());
}

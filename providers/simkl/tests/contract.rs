//! The SIMKL provider against the whole contract suite, on the SIMKL simulator.

use std::sync::Arc;

use ferry_core::{KvStore, MemoryKvStore, Secret};
use ferry_http::ManualClock;
use ferry_testkit::contract::{Subject, all_checks, run_contract_suite};
use ferry_testkit::sim::simkl::SimklSim;
use simkl::{ReadMode, SimklConfig, SimklOptions, SimklProvider};

fn provider(sim: &SimklSim, mode: ReadMode) -> SimklProvider {
    let config = SimklConfig {
        client_id: Secret::new(sim.client_id()),
        access_token: Some(Secret::new(sim.token())),
        base_url: Some(sim.uri()),
        read_mode: mode,
    };
    // The declared limits stay on; the manual clock records the waits instead of taking them.
    let options = SimklOptions {
        clock: Some(Arc::new(ManualClock::new(1_750_000_000))),
        store: Some(Arc::new(MemoryKvStore::new()) as Arc<dyn KvStore>),
        seed: Some(7),
        ..SimklOptions::default()
    };
    SimklProvider::new("simkl-contract", config, options).expect("build")
}

#[tokio::test]
async fn simkl_passes_the_contract_suite() {
    let sim = SimklSim::start().await;
    let p = provider(&sim, ReadMode::Full);
    let report =
        run_contract_suite(Subject::new(Arc::new(p)).with_secrets([sim.client_id(), sim.token()]))
            .await;
    report.assert_passed();
    assert_eq!(report.passed.len(), all_checks().len());
    assert_eq!(
        sim.requests_without_app_params(),
        0,
        "every request carries client_id, app-name and app-version"
    );
}

#[tokio::test]
async fn simkl_in_delta_mode_passes_the_contract_suite() {
    let sim = SimklSim::start().await;
    let p = provider(&sim, ReadMode::Delta);
    let report =
        run_contract_suite(Subject::new(Arc::new(p)).with_secrets([sim.client_id(), sim.token()]))
            .await;
    report.assert_passed();
    assert_eq!(report.passed.len(), all_checks().len());
}

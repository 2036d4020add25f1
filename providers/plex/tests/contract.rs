//! The contract suite against the Plex simulator (PMS + Discover).

use std::sync::Arc;
use std::time::Duration;

use ferry_core::Secret;
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::sim::plex::PlexSim;
use plex::{PlexConfig, PlexOptions, PlexProvider};

fn provider(sim: &PlexSim) -> PlexProvider {
    let config = PlexConfig {
        base_url: sim.uri(),
        token: Some(Secret::new(sim.token())),
        discover_url: sim.discover_uri(),
        plex_tv_url: sim.plex_tv_uri(),
        libraries: None,
    };
    let options = PlexOptions {
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        ..PlexOptions::default()
    };
    PlexProvider::new("plex-contract", config, options).expect("build")
}

#[tokio::test]
async fn plex_passes_the_contract_suite() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    let report = run_contract_suite(Subject::new(Arc::new(p)).with_secrets([sim.token()])).await;
    report.assert_passed();
    assert_eq!(
        report.passed.len(),
        ferry_testkit::contract::all_checks().len()
    );
}

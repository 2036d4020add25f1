//! The contract suite against the TMDB simulator, fault checks included.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::Secret;
use ferry_core::harness::Harness;
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::sim::kit::Simulator;
use tmdb::sim::{ACCOUNT_ID, TmdbSim};
use tmdb::{TmdbConfig, TmdbOptions, TmdbProvider};

/// How long the provider waits for one answer: far above any loopback answer, short
/// enough for the late-answer check to wait out.
const PATIENCE: Duration = Duration::from_secs(1);

fn provider(sim: &TmdbSim) -> TmdbProvider {
    let config = TmdbConfig {
        base_url: Some(sim.uri()),
        account_id: ACCOUNT_ID,
        access_token: Some(Secret::new(sim.token())),
        api_key: None,
        session_id: None,
    };
    let options = TmdbOptions {
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        attempt_timeout: Some(PATIENCE),
        ..TmdbOptions::default()
    };
    TmdbProvider::new("tmdb-contract", config, options).expect("build")
}

/// TMDB pages by 20; the simulator's seeded movie lists hold 22 titles, so every read
/// has a second page to attack.
#[tokio::test]
async fn tmdb_passes_the_contract_suite() {
    let sim = TmdbSim::start().await;
    // Through the harness the registry puts around every provider, as the binary runs it.
    let subject = Subject::new(Harness::wrap(Arc::new(provider(&sim))))
        .with_secrets([sim.token()])
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    report.assert_every_check_ran();
}

//! The contract suite against the Jellyfin simulator.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::Secret;
use ferry_core::harness::Harness;
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::sim::jellyfin::JellyfinSim;
use jellyfin::{JellyfinConfig, JellyfinProvider, ServerOptions};

/// How long the provider waits for one answer: far above any loopback answer, short
/// enough for the late-answer check to wait out.
const PATIENCE: Duration = Duration::from_secs(1);

fn provider(sim: &JellyfinSim) -> JellyfinProvider {
    let config = JellyfinConfig {
        base_url: sim.uri(),
        api_key: Secret::new(sim.token()),
        user_id: sim.user_id().to_owned(),
    };
    let options = ServerOptions {
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        // Smaller than the sample library, so reads have later pages to attack.
        page_size: Some(25),
        attempt_timeout: Some(PATIENCE),
        ..ServerOptions::default()
    };
    JellyfinProvider::new("jellyfin-contract", config, options).expect("build")
}

#[tokio::test]
async fn jellyfin_passes_the_contract_suite() {
    let sim = JellyfinSim::start().await;
    let p = provider(&sim);
    // Through the harness the registry puts around every provider, as the binary runs it.
    let subject = Subject::new(Harness::wrap(Arc::new(p)))
        .with_secrets([sim.token()])
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    report.assert_every_check_ran();
}

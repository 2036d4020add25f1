//! The contract suite against the Plex simulator (PMS + Discover), fault checks included.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::Secret;
use ferry_core::harness::Harness;
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::sim::plex::PlexSim;
use plex::{PlexConfig, PlexOptions, PlexProvider};

/// How long the provider waits for one answer: far above any loopback answer, short
/// enough for the late-answer check to wait out.
const PATIENCE: Duration = Duration::from_secs(1);

/// Rows per page: below the sample library and the seeded watchlist, so every read the
/// fault checks attack has a second page.
const PAGE_SIZE: usize = 10;

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
        page_size: Some(PAGE_SIZE),
        attempt_timeout: Some(PATIENCE),
        ..PlexOptions::default()
    };
    PlexProvider::new("plex-contract", config, options).expect("build")
}

#[tokio::test]
async fn plex_passes_the_contract_suite() {
    let sim = PlexSim::start().await;
    // Titles the checks never write (they use samples up to 41), so the Discover
    // watchlist read spans two pages.
    for n in 50..64 {
        sim.seed_watchlist(PlexSim::movie_key(n));
    }
    let p = provider(&sim);
    // Through the harness the registry puts around every provider, as the binary runs it.
    let subject = Subject::new(Harness::wrap(Arc::new(p)))
        .with_secrets([sim.token()])
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    report.assert_every_check_ran();
}

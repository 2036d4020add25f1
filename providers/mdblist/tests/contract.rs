//! The MDBList provider against the whole contract suite, fault checks included, on the
//! MDBList simulator.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::harness::Harness;
use ferry_core::{RateLimit, Secret, VerbClass};
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::samples;
use ferry_testkit::sim::mdblist::MdblistSim;
use mdblist::{MdblistConfig, MdblistOptions, MdblistProvider};

/// How long the provider waits for one answer: far above any loopback answer, short
/// enough for the late-answer check to wait out.
const PATIENCE: Duration = Duration::from_secs(1);

/// Rows per page: below the lists seeded, so every read has a second page to attack.
const PAGE_SIZE: u32 = 25;
/// Titles seeded into each list, numbered clear of the samples the suite writes.
const SEEDED: std::ops::Range<u32> = 100..140;

async fn sim() -> MdblistSim {
    let sim = MdblistSim::builder().movies(SEEDED.end).start().await;
    for n in SEEDED {
        let m = samples::movie(n);
        sim.seed_watchlist(&m);
        sim.seed_rating(&m, (n % 10 + 1) as u8);
        sim.seed_play(&m, samples::time(i64::from(n) * 3600));
    }
    sim
}

fn provider(sim: &MdblistSim, page_size: u32) -> MdblistProvider {
    let config = MdblistConfig {
        api_key: Secret::new(sim.api_key()),
        base_url: Some(sim.uri()),
        page_size: Some(page_size),
    };
    // The real clock, so a 429's Retry-After is really waited out; limits and backoff
    // short enough for a test.
    let fast = |class| RateLimit {
        class,
        requests: 1000,
        per: Duration::from_secs(1),
    };
    let options = MdblistOptions {
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        rate_limits: Some(vec![fast(VerbClass::Read), fast(VerbClass::Write)]),
        seed: Some(11),
        attempt_timeout: Some(PATIENCE),
        ..MdblistOptions::default()
    };
    MdblistProvider::new("mdblist-contract", config, options).expect("build")
}

async fn run(page_size: u32) {
    let sim = sim().await;
    let p = provider(&sim, page_size);
    // Through the harness the registry puts around every provider, as the binary runs it.
    let subject = Subject::new(Harness::wrap(Arc::new(p)))
        .with_secrets([sim.api_key()])
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    report.assert_every_check_ran();
}

#[tokio::test]
async fn mdblist_passes_the_contract_suite() {
    run(PAGE_SIZE).await;
}

#[tokio::test]
async fn mdblist_passes_the_contract_suite_with_tiny_pages() {
    run(3).await;
}

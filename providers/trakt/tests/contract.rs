//! The Trakt provider against the whole contract suite on the Trakt simulator, fault
//! checks included: every `/sync` list holds more than two pages, so page faults hit a
//! later page of a real read.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ferry_core::harness::Harness;
use ferry_core::{BuildEnv, MemoryKvStore, RateLimit, VerbClass};
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::TraktSim;
use trakt::{TraktOptions, TraktProvider};

/// Titles the suite's own samples never use.
const SEED: std::ops::Range<u32> = 1000..1064;

fn seed(sim: &TraktSim) {
    sim.seed_watchlist(&SEED.map(samples::movie).collect::<Vec<_>>());
    sim.seed_ratings(&SEED.map(|n| (samples::movie(n), 7)).collect::<Vec<_>>());
    sim.seed_history(
        &SEED
            .map(|n| (samples::movie(n), samples::time(i64::from(n) * 86_400)))
            .collect::<Vec<_>>(),
    );
    sim.seed_playback(&SEED.map(|n| (samples::movie(n), 40.0)).collect::<Vec<_>>());
}

/// How long the provider waits for one answer: far above any loopback answer, short
/// enough for the late-answer check to wait out.
const PATIENCE: Duration = Duration::from_secs(1);

#[tokio::test]
async fn trakt_passes_the_contract_suite() {
    let sim = common::sim().await;
    seed(&sim);
    let mut config = common::config(&sim);
    // Smaller than the seeded lists, so reads have later pages to attack.
    config.page_limit = Some(25);
    let env = BuildEnv::new(std::env::temp_dir(), Arc::new(MemoryKvStore::new()));
    let options = TraktOptions {
        // Real time, so a 429's Retry-After is really waited out; Trakt's one write per
        // second lifted (the simulator does not enforce it here) to keep the suite quick.
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        attempt_timeout: Some(PATIENCE),
        rate_limits: Some(vec![RateLimit {
            class: VerbClass::Write,
            requests: 1000,
            per: Duration::from_secs(1),
        }]),
        ..TraktOptions::default()
    };
    let p = TraktProvider::with_options("trakt-contract", config, &env, options).expect("build");
    let secrets = [
        sim.client_id(),
        sim.client_secret(),
        sim.access_token(),
        sim.refresh_token(),
    ];
    let subject = Subject::new(Harness::wrap(Arc::new(p)))
        .with_secrets(secrets)
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    report.assert_every_check_ran();
}

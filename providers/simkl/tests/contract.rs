//! The SIMKL provider against the whole contract suite, on the SIMKL simulator.

use std::sync::Arc;

use ferry_core::{KvStore, MemoryKvStore, Secret};
use ferry_http::ManualClock;
use ferry_testkit::contract::{Subject, fault_checks, run_contract_suite};
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
    report.assert_ran_all_but(&fault_checks());
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
    report.assert_ran_all_but(&fault_checks());
}

/// The fault checks, on a simulator whose lists hold titles in every catalog (so the
/// second request of a read, the shows catalog, has rows to damage).
///
/// SIMKL's lists are one document per catalog with no declared total, and an empty list
/// is its ordinary answer for "nothing here" (`ListShape::Documents`). So an emptied
/// catalog is caught against the count of the last complete read and SIMKL's
/// `/sync/activities` stamps (`ferry_core::Tally`), and the missing-total check has
/// nothing to attack.
/// How long the provider waits for one answer in the fault checks: far above any
/// loopback answer, short enough to wait out.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

#[tokio::test]
async fn simkl_passes_every_fault_check() {
    use std::time::Duration;

    use ferry_core::harness::Harness;
    use ferry_core::{RateLimit, VerbClass};
    use ferry_http::RetryPolicy;
    use ferry_testkit::samples;
    use ferry_testkit::sim::simkl::{ListStatus, anime_item};

    let sim = SimklSim::builder()
        .movies(120)
        .shows(16, 2, 5)
        .anime(4)
        .start()
        .await;
    for n in 100..104 {
        sim.seed_watchlist(&samples::movie(n));
        sim.seed_rating(&samples::movie(n + 4), 7);
        sim.seed_play(&samples::movie(n + 8), samples::time(i64::from(n) * 3600));
    }
    for n in 10..12 {
        sim.seed_watchlist(&samples::show(n));
        sim.seed_rating(&samples::show(n + 2), 8);
        sim.seed_status(&samples::show(n + 4), ListStatus::Watching);
        sim.seed_episode_play(&samples::show(n + 4), 1, 1, samples::time(7200));
    }
    sim.seed_watchlist(&anime_item(0));
    sim.seed_rating(&anime_item(1), 9);
    let config = SimklConfig {
        client_id: Secret::new(sim.client_id()),
        access_token: Some(Secret::new(sim.token())),
        base_url: Some(sim.uri()),
        read_mode: ReadMode::Full,
    };
    // The real clock, so a 429's Retry-After is really waited out.
    let fast = |class| RateLimit {
        class,
        requests: 1000,
        per: Duration::from_secs(1),
    };
    let options = SimklOptions {
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        rate_limits: Some(vec![fast(VerbClass::Read), fast(VerbClass::Write)]),
        store: Some(Arc::new(MemoryKvStore::new()) as Arc<dyn KvStore>),
        seed: Some(7),
        attempt_timeout: Some(PATIENCE),
        ..SimklOptions::default()
    };
    let p = SimklProvider::new("simkl-faults", config, options).expect("build");
    let subject = Subject::new(Harness::wrap(Arc::new(p)))
        .with_secrets([sim.client_id(), sim.token()])
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    // SIMKL's lists declare no count, so there is no total to take away or spoil.
    report.assert_ran_all_but(&["fault_missing_or_invalid_total_is_never_complete"]);
}

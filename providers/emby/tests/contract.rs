//! The contract suite against the simulator serving Emby's route table.

use std::sync::Arc;
use std::time::Duration;

use emby::{EmbyConfig, EmbyProvider};
use ferry_core::harness::Harness;
use ferry_core::{Context, Feature, InventoryOps, Secret};
use ferry_http::RetryPolicy;
use ferry_testkit::contract::{Subject, run_contract_suite};
use ferry_testkit::samples;
use ferry_testkit::sim::jellyfin::JellyfinSim;
use jellyfin::ServerOptions;

/// How long the provider waits for one answer: far above any loopback answer, short
/// enough for the late-answer check to wait out.
const PATIENCE: Duration = Duration::from_secs(1);

fn provider(sim: &JellyfinSim) -> EmbyProvider {
    let config = EmbyConfig {
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
    EmbyProvider::new("emby-contract", config, options).expect("build")
}

#[tokio::test]
async fn emby_passes_the_contract_suite() {
    let sim = JellyfinSim::start_emby().await;
    let p = provider(&sim);
    assert_eq!(p.provider(), "emby");
    // Through the harness the registry puts around every provider, as the binary runs it.
    let subject = Subject::new(Harness::wrap(Arc::new(p)))
        .with_secrets([sim.token()])
        .with_faults(Arc::new(sim.clone()))
        .with_patience(PATIENCE);
    let report = run_contract_suite(subject).await;
    report.assert_every_check_ran();
}

#[tokio::test]
async fn emby_uses_its_own_routes_and_date_format() {
    let sim = JellyfinSim::start_emby().await;
    let p = provider(&sim);
    let cx = Context::default();
    let e = samples::entry(Feature::History, 3);
    let r = p
        .add(&cx, Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.confirmed(), 1);
    let id = sim.item_id_of(&e.item).unwrap();
    assert!(
        id.bytes().all(|b| b.is_ascii_digit()),
        "Emby ids are numeric: {id}"
    );
    let played = sim.item(&id).unwrap().user;
    assert_eq!(played.last_played, Some(samples::time(3 * 3600).unix()));
    let user = sim.user_id();
    assert_eq!(
        sim.requests_to("POST", &format!("/Users/{user}/PlayedItems/{id}")),
        1
    );
    assert_eq!(sim.requests_under("/UserPlayedItems"), 0);
    // Emby item ids are key-ineligible but kept.
    let snap = p.build_index(&cx, Feature::History).await.unwrap();
    let got = snap.entries().next().unwrap();
    assert_eq!(
        got.item.ids.get(ferry_core::IdKind::Emby),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn emby_checkpoints_use_its_routes_and_move_with_changes() {
    let sim = JellyfinSim::start_emby().await;
    let p = provider(&sim);
    let cx = Context::default();
    assert!(p.features().activities);
    sim.reset_counts();
    let a = p.activities(&cx).await.unwrap();
    let user = sim.user_id();
    assert_eq!(
        sim.requests(&format!("/Users/{user}/Items")),
        4,
        "one request per feature"
    );
    assert_eq!(sim.requests_under("/Items"), 0, "no Jellyfin 10.9 routes");
    let history = a.get(Feature::History).unwrap().to_owned();
    sim.watch_now(&sim.movie_id(7));
    assert_ne!(
        p.activity(&cx, Feature::History).await.unwrap().as_deref(),
        Some(history.as_str())
    );
    let favourites = a.get(Feature::Watchlist).unwrap().to_owned();
    sim.seed_favorite(&sim.movie_id(7), true);
    assert_ne!(
        p.activity(&cx, Feature::Watchlist)
            .await
            .unwrap()
            .as_deref(),
        Some(favourites.as_str())
    );
    // History keeps one play per title on Emby too.
    assert_eq!(
        p.features().get(Feature::History).unwrap().plays_per_title,
        ferry_core::PlaysPerTitle::LatestOnly
    );
}

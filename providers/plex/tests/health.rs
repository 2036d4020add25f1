//! The health check reads the change checkpoints (they need the token; `/identity` does
//! not) and hands them to the engine, so an unchanged run costs nothing more.

mod common;

use ferry_core::{Context, Feature, HealthStatus, InventoryOps, Secret};
use ferry_testkit::sim::knobs::{Fault, FaultRule};
use ferry_testkit::sim::plex::{LIBRARY_IDENTIFIER, PlexSim};
use plex::PlexProvider;

fn provider(sim: &PlexSim) -> PlexProvider {
    common::provider_named(sim, "plex-health")
}

fn cx() -> Context {
    Context::default()
}

#[tokio::test]
async fn health_hands_over_the_checkpoints_activities_would_read() {
    let sim = PlexSim::start().await;
    sim.seed_play(PlexSim::movie_key(1), 1_700_000_000);
    sim.seed_rating(PlexSim::movie_key(2), Some(8.0));
    sim.seed_watchlist(PlexSim::movie_key(3));
    let p = provider(&sim);
    sim.reset_counts();
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Ok, "{h:?}");
    let from_health = h.activities.clone().expect("checkpoints with the health");
    // One request per list: the history list, watched movies and episodes, rated
    // movies, shows and episodes, and the Discover watchlist; no `/identity`.
    assert_eq!(sim.requests("/identity"), 0);
    assert_eq!(sim.requests("/status/sessions/history/all"), 1);
    assert_eq!(sim.requests("/library/all"), 5);
    assert_eq!(sim.total_requests(), 7, "{:?}", sim.routes());
    assert_eq!(
        sim.discover_routes()
            .get("GET /library/sections/watchlist/all"),
        Some(&1)
    );
    assert_eq!(from_health, p.activities(&cx()).await.unwrap());
    for f in [Feature::Watchlist, Feature::History, Feature::Ratings] {
        assert!(from_health.get(f).is_some(), "{f}");
    }
}

#[tokio::test]
async fn a_rejected_token_is_auth_failed_and_hands_over_nothing() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    sim.set_token("rotated");
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::AuthFailed, "{h:?}");
    assert!(h.activities.is_none());
    assert!(!format!("{h:?}").contains(&sim.account_token()));
}

#[tokio::test]
async fn a_discover_outage_degrades_and_leaves_the_server_checkpoints() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    sim.inject_discover(FaultRule::new(Fault::Status(503)).times(10));
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Degraded, "{h:?}");
    assert!(!h.feature_available(Feature::Watchlist));
    let a = h.activities.expect("server checkpoints");
    assert!(
        a.get(Feature::Watchlist).is_none(),
        "read in full, or not at all"
    );
    assert!(a.get(Feature::History).is_some() && a.get(Feature::Ratings).is_some());
}

#[tokio::test]
async fn a_failed_ratings_probe_leaves_ratings_without_a_checkpoint() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    // The history list answers; the first `/library/all` after the two watched lists
    // (the rated movies) fails once: a probe does not retry.
    sim.inject(
        FaultRule::new(Fault::Status(500))
            .on("/library/all")
            .after(2)
            .times(1),
    );
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Ok, "{h:?}");
    let a = h.activities.expect("checkpoints");
    assert!(a.get(Feature::Ratings).is_none(), "{a:?}");
    assert!(a.get(Feature::History).is_some());
    assert!(h.details.unwrap_or_default().contains("ratings"));
}

/// Marking one title played while unmarking another keeps the number of watched titles;
/// the newest `lastViewedAt` still moves the history checkpoint. `/:/scrobble` adds no
/// history row (Plex's documentation), so the history list alone would not see it.
#[tokio::test]
async fn mark_played_and_unplayed_in_one_interval_moves_the_history_checkpoint() {
    let sim = PlexSim::start().await;
    sim.seed_play(PlexSim::movie_key(1), 1_700_000_000);
    let p = provider(&sim);
    let before = p.health(&cx()).await.activities.unwrap();
    sim.mark_unwatched(PlexSim::movie_key(1));
    // Another client marks movie 2 played.
    let http = ferry_http::HttpClient::builder("plex", "other-client")
        .base_url(sim.uri())
        .secret_header("X-Plex-Token", &Secret::new(sim.token()))
        .build()
        .unwrap();
    http.put("PUT /:/scrobble", "/:/scrobble")
        .query("key", PlexSim::movie_key(2))
        .query("identifier", LIBRARY_IDENTIFIER)
        .send(&cx())
        .await
        .unwrap();
    let after = p.health(&cx()).await.activities.unwrap();
    assert_ne!(
        before.get(Feature::History),
        after.get(Feature::History),
        "{before:?}"
    );
    assert_eq!(before.get(Feature::Ratings), after.get(Feature::Ratings));
    assert_eq!(
        before.get(Feature::Watchlist),
        after.get(Feature::Watchlist)
    );
}

//! Reads: pagination and its checks, failures that must never look like an empty account,
//! activities and health.

mod common;

use std::time::Duration;

use ferry_core::{Completeness, ErrorKind, Feature, HealthStatus, InventoryOps, Snapshot};
use ferry_http::RetryPolicy;
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::{Fault, FaultRule, TraktSim};
use serde_json::json;

use common::{cx, rig, rig_on, rig_with, sim};

fn reason(s: &Snapshot) -> String {
    match s.completeness() {
        Completeness::Partial { reason } => reason.clone(),
        Completeness::Complete => String::new(),
    }
}

async fn seeded_watchlist(n: u32) -> TraktSim {
    let sim = sim().await;
    let items: Vec<_> = (0..n).map(samples::movie).collect();
    sim.seed_watchlist(&items);
    sim
}

#[tokio::test]
async fn a_watchlist_of_600_is_read_in_three_pages_of_250() {
    let sim = seeded_watchlist(600).await;
    let r = rig(&sim);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 600);
    for n in [0, 249, 250, 599] {
        assert!(snap.contains_key(&samples::movie(n).key()), "movie {n}");
    }
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 3);
}

#[tokio::test]
async fn a_smaller_configured_page_means_more_pages_and_the_same_result() {
    let sim = seeded_watchlist(600).await;
    let mut cfg = common::config(&sim);
    cfg.page_limit = Some(100);
    let r = rig_with(cfg);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.len(), 600);
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 6);
}

#[tokio::test]
async fn a_page_limit_above_250_is_clamped_to_trakts_maximum() {
    let sim = seeded_watchlist(600).await;
    let mut cfg = common::config(&sim);
    cfg.page_limit = Some(1000);
    let r = rig_with(cfg);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.len(), 600);
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 3);
}

#[tokio::test]
async fn a_truncated_first_page_is_partial_too() {
    let sim = seeded_watchlist(40).await;
    sim.truncate_next("/sync/watchlist");
    let r = rig(&sim);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(!snap.is_complete());
    assert_eq!(snap.len(), 20);
}

#[tokio::test]
async fn a_failed_later_page_is_partial_and_a_failed_first_page_is_an_error() {
    let sim = seeded_watchlist(600).await;
    sim.inject(
        FaultRule::new(Fault::Status(502))
            .on("/sync/watchlist")
            .after(2)
            .times(10),
    );
    let r = rig(&sim);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(!snap.is_complete());
    assert!(
        reason(&snap).contains("the page at offset 500 failed"),
        "{}",
        reason(&snap)
    );
    assert_eq!(snap.len(), 500);

    sim.clear_faults();
    sim.inject(
        FaultRule::new(Fault::Status(502))
            .on("/sync/watchlist")
            .times(10),
    );
    let err = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn a_temporary_failure_is_retried_and_the_read_stays_complete() {
    let sim = seeded_watchlist(300).await;
    sim.inject(
        FaultRule::new(Fault::Status(503))
            .on("/sync/watchlist")
            .after(1),
    );
    let r = rig(&sim);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 300);
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 3);
}

/// The contract suite attacks the four `/sync` lists; the personal lists here.
#[tokio::test]
async fn malformed_json_is_an_error_never_an_empty_snapshot() {
    let sim = seeded_watchlist(3).await;
    let r = rig(&sim);
    for (feature, path) in [(Feature::Playlists, "/users/me/lists")] {
        sim.malformed_next(path);
        let err = r.provider.build_index(&cx(), feature).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{feature}: {err}");
    }
}

#[tokio::test]
async fn empty_accounts_are_complete_and_empty() {
    let sim = sim().await;
    let r = rig(&sim);
    for f in Feature::ALL {
        let snap = r.provider.build_index(&cx(), f).await.unwrap();
        assert!(snap.is_complete(), "{f}: {:?}", snap.completeness());
        assert!(snap.is_empty(), "{f}");
    }
}

#[tokio::test]
async fn every_feature_reads_what_the_account_holds() {
    let sim = sim().await;
    sim.seed_ratings(&[(samples::movie(1), 8), (samples::episode(2, 1, 3), 6)]);
    sim.seed_history(&[
        (samples::movie(1), samples::time(0)),
        (samples::movie(1), samples::time(86_400)),
        (samples::episode(2, 1, 3), samples::time(60)),
    ]);
    sim.seed_playback(&[(samples::movie(4), 25.0)]);
    sim.seed_list("Friday", &[samples::movie(7), samples::show(3)]);
    let r = rig(&sim);

    let ratings = r
        .provider
        .build_index(&cx(), Feature::Ratings)
        .await
        .unwrap();
    assert_eq!(ratings.len(), 2);
    let ep = samples::episode(2, 1, 3);
    assert!(
        matches!(ratings.get(&ep.key()).map(|e| &e.payload), Some(ferry_core::Payload::Rating { rating, .. }) if rating.get() == 6)
    );

    let history = r
        .provider
        .build_index(&cx(), Feature::History)
        .await
        .unwrap();
    assert_eq!(history.len(), 3, "plays, not titles");

    let progress = r
        .provider
        .build_index(&cx(), Feature::Progress)
        .await
        .unwrap();
    match progress.get(&samples::movie(4).key()).map(|e| &e.payload) {
        Some(ferry_core::Payload::Progress {
            position_ms,
            duration_ms,
            ..
        }) => {
            assert_eq!(*duration_ms, Some(6_000_000));
            assert_eq!(*position_ms, 1_500_000);
        }
        other => panic!("{other:?}"),
    }

    let lists = r
        .provider
        .build_index(&cx(), Feature::Playlists)
        .await
        .unwrap();
    match lists.get("playlist:friday").map(|e| &e.payload) {
        Some(ferry_core::Payload::Playlist(p)) => {
            let keys: Vec<_> = p.items.iter().map(|i| i.key()).collect();
            assert_eq!(keys, [samples::movie(7).key(), samples::show(3).key()]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_list_makes_playlists_partial() {
    let sim = sim().await;
    let id = sim.seed_list("A", &[samples::movie(1)]);
    sim.seed_list("B", &[samples::movie(2)]);
    sim.inject(
        FaultRule::new(Fault::Status(500))
            .on(format!("/users/me/lists/{id}/items"))
            .times(10),
    );
    let r = rig(&sim);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Playlists)
        .await
        .unwrap();
    assert!(!snap.is_complete());
    assert!(reason(&snap).contains("\"A\""), "{}", reason(&snap));
    assert!(snap.contains_key("playlist:b"));
}

#[tokio::test]
async fn last_activities_map_to_per_feature_checkpoints() {
    let body = json!({
        "all": "2026-08-01T10:00:00.000Z",
        "movies": {"watched_at": "2026-08-01T09:00:00.000Z", "rated_at": "2026-07-01T00:00:00.000Z",
                   "watchlisted_at": "2026-07-02T00:00:00.000Z", "paused_at": "2026-07-03T00:00:00.000Z"},
        "episodes": {"watched_at": "2026-08-01T09:30:00.000Z", "rated_at": "2026-06-01T00:00:00.000Z",
                     "paused_at": "2026-07-04T00:00:00.000Z"},
        "shows": {"rated_at": "2026-07-05T00:00:00.000Z", "watchlisted_at": "2026-01-01T00:00:00.000Z"},
        "seasons": {"rated_at": "2026-01-01T00:00:00.000Z"},
        "watchlist": {"updated_at": "2026-07-02T00:00:00.123Z"},
        "lists": {"updated_at": "2026-05-05T05:05:05.000Z"}
    });
    let a = trakt::activities_from(&body);
    assert_eq!(a.get(Feature::History), Some("2026-08-01T09:30:00.000Z"));
    assert_eq!(a.get(Feature::Ratings), Some("2026-07-05T00:00:00.000Z"));
    assert_eq!(a.get(Feature::Watchlist), Some("2026-07-02T00:00:00.123Z"));
    assert_eq!(a.get(Feature::Progress), Some("2026-07-04T00:00:00.000Z"));
    assert_eq!(a.get(Feature::Playlists), Some("2026-05-05T05:05:05.000Z"));
    assert!(trakt::activities_from(&json!({})).checkpoints.is_empty());

    // Against the simulator: a write moves exactly its feature's checkpoint.
    let sim = sim().await;
    let r = rig(&sim);
    let before = r.provider.activities(&cx()).await.unwrap();
    r.provider
        .add(
            &cx(),
            Feature::Ratings,
            &[samples::entry(Feature::Ratings, 3)],
        )
        .await
        .unwrap();
    let after = r.provider.activities(&cx()).await.unwrap();
    assert_ne!(before.get(Feature::Ratings), after.get(Feature::Ratings));
    assert_eq!(before.get(Feature::History), after.get(Feature::History));
    assert_eq!(
        after.get(Feature::Ratings),
        sim.last_activities()["movies"]["rated_at"].as_str()
    );
}

#[tokio::test]
async fn health_reports_limits_rate_and_latency() {
    let sim = sim().await;
    let r = rig(&sim);
    let h = r.provider.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Ok, "{h:?}");
    assert!(h.latency_ms.is_some());
    assert_eq!(h.account_limits.get(&Feature::Watchlist), Some(&250));
    assert_eq!(h.account_limits.get(&Feature::Playlists), Some(&250));
    let rate = h.rate.expect("X-Ratelimit is read");
    assert_eq!(rate.limit, Some(1000));
    assert_eq!(h.features.len(), 5);
}

#[tokio::test]
async fn health_maps_failures_to_statuses() {
    let sim = sim().await;
    // A wrong API key: Trakt answers 403.
    let mut cfg = common::config(&sim);
    cfg.client_id = ferry_core::Secret::new("not-the-client-id");
    let h = rig_with(cfg).provider.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::AuthFailed, "{h:?}");

    // A locked account (423) needs the user, like bad credentials.
    let r = rig(&sim);
    sim.fail_next(423, 1);
    assert_eq!(
        r.provider.health(&cx()).await.status,
        HealthStatus::AuthFailed
    );

    // Rate limited on the probe.
    sim.rate_limit_next(30, 1);
    let h = r.provider.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::RateLimited, "{h:?}");
    assert_eq!(h.retry_after_secs, Some(30));

    // The settings answer but the activities probe fails: degraded.
    sim.inject(FaultRule::new(Fault::Status(500)).on("/sync/last_activities"));
    assert_eq!(
        r.provider.health(&cx()).await.status,
        HealthStatus::Degraded
    );

    sim.fail_next(503, 1);
    assert_eq!(r.provider.health(&cx()).await.status, HealthStatus::Down);
}

#[tokio::test]
async fn an_open_breaker_is_down_without_touching_the_network() {
    let sim = sim().await;
    let r = rig_on(
        common::config(&sim),
        std::sync::Arc::new(ferry_core::MemoryKvStore::new()),
        Some(RetryPolicy::none()),
    );
    sim.fail_next(503, 100);
    for _ in 0..5 {
        let err = r
            .provider
            .build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
    let seen = sim.total_requests();
    let h = r.provider.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Down, "{h:?}");
    assert!(h.details.unwrap_or_default().contains("breaker"));
    assert_eq!(sim.total_requests(), seen, "an open breaker fails fast");
    // The breaker's wait is on the manual clock.
    r.clock.advance(Duration::from_secs(61));
    sim.clear_faults();
    assert!(
        r.provider
            .build_index(&cx(), Feature::Watchlist)
            .await
            .is_ok()
    );
}

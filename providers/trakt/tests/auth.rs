//! OAuth: token refresh on 401 (single flight, persisted, replayed) and the device flow,
//! on a manual clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{ErrorKind, Feature, HealthStatus, InventoryOps, MemoryKvStore, Secret};
use ferry_http::{KvTokenStore, ManualClock};
use ferry_testkit::samples;
use trakt::DeviceFlow;

use common::{collecting, cx, rig, rig_on, rig_with, sim};

#[tokio::test]
async fn an_expired_token_is_refreshed_once_persisted_and_the_request_replayed() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1)]);
    let r = rig(&sim);
    let old = sim.access_token();
    sim.expire_access_token();
    let (cx, sink) = collecting();
    let snap = r
        .provider
        .build_index(&cx, Feature::Watchlist)
        .await
        .unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(sim.request_count("POST", "/oauth/token"), 1);
    assert_ne!(sim.access_token(), old, "the simulator rotated the token");
    // The rotated pair is persisted (Trakt refresh tokens are single-use)...
    let stored = KvTokenStore::new(r.kv.clone(), "trakt-test")
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(stored.access.expose(), sim.access_token());
    assert_eq!(
        stored.refresh.as_ref().map(Secret::expose),
        Some(sim.refresh_token().as_str())
    );
    // ...never printed...
    let dump = sink.dump();
    assert!(!dump.contains(&sim.access_token()) && !dump.contains(&sim.refresh_token()));
    assert!(
        r.provider
            .secrets()
            .iter()
            .any(|s| s.expose() == sim.access_token()),
        "rotated tokens are scrubbed too"
    );
    // ...and a provider built later on the same state starts from it.
    let again = rig_on(common::config(&sim), r.kv.clone(), None);
    again
        .provider
        .build_index(&cx, Feature::Watchlist)
        .await
        .unwrap();
    assert_eq!(sim.request_count("POST", "/oauth/token"), 1);
    // A second expiry refreshes with the rotated refresh token.
    sim.expire_access_token();
    again
        .provider
        .build_index(&cx, Feature::Watchlist)
        .await
        .unwrap();
    assert_eq!(sim.request_count("POST", "/oauth/token"), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_refresh() {
    let sim = sim().await;
    let r = rig(&sim);
    sim.expire_access_token();
    let p = r.provider.clone();
    let reads = Feature::ALL.map(|f| {
        let p = p.clone();
        tokio::spawn(async move { p.build_index(&ferry_core::Context::default(), f).await })
    });
    for h in reads {
        h.await.unwrap().unwrap();
    }
    assert_eq!(sim.request_count("POST", "/oauth/token"), 1);
}

#[tokio::test]
async fn without_a_refresh_token_an_expired_token_is_auth_failed() {
    let sim = sim().await;
    let mut cfg = common::config(&sim);
    cfg.refresh_token = None;
    let r = rig_with(cfg);
    sim.expire_access_token();
    let err = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(
        r.provider.health(&cx()).await.status,
        HealthStatus::AuthFailed
    );
    assert_eq!(sim.request_count("POST", "/oauth/token"), 0);
}

#[tokio::test]
async fn a_refused_refresh_is_auth_failed_not_an_empty_snapshot() {
    let sim = sim().await;
    let mut cfg = common::config(&sim);
    cfg.refresh_token = Some(Secret::new("a-refresh-token-trakt-forgot"));
    let r = rig_with(cfg);
    sim.expire_access_token();
    let err = r
        .provider
        .build_index(&cx(), Feature::History)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        !err.to_string().contains("a-refresh-token-trakt-forgot"),
        "{err}"
    );
}

#[tokio::test]
async fn reconfigured_tokens_win_over_older_rotated_ones() {
    let sim = sim().await;
    let kv: Arc<dyn ferry_core::KvStore> = Arc::new(MemoryKvStore::new());
    let r = rig_on(common::config(&sim), kv.clone(), None);
    sim.expire_access_token();
    r.provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    // The user re-authenticates (a new grant invalidates the rotated pair stored above)
    // and writes the new tokens into the config: they must win over the stored ones.
    sim.auto_approve_devices_after(1);
    let (f, _) = flow(&sim);
    let code = f.request_code(&cx()).await.unwrap();
    let grant = f.poll(&cx(), &code).await.unwrap();
    let mut fresh = common::config(&sim);
    fresh.access_token = Some(grant.access_token);
    fresh.refresh_token = Some(grant.refresh_token);
    let r2 = rig_on(fresh, kv.clone(), None);
    r2.provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert_eq!(
        sim.request_count("POST", "/oauth/token"),
        1,
        "no refresh needed"
    );
}

fn flow(sim: &ferry_testkit::sim::trakt::TraktSim) -> (DeviceFlow, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_750_000_000));
    let f = DeviceFlow::with_clock(
        &sim.uri(),
        Secret::new(sim.client_id()),
        Secret::new(sim.client_secret()),
        clock.clone(),
    )
    .unwrap();
    (f, clock)
}

#[tokio::test]
async fn the_device_flow_polls_at_the_interval_until_approved() {
    let sim = sim().await;
    sim.auto_approve_devices_after(3);
    let (f, clock) = flow(&sim);
    let code = f.request_code(&cx()).await.unwrap();
    assert_eq!(code.verification_url, "https://trakt.tv/activate");
    assert_eq!(code.interval, Duration::from_secs(5));
    let grant = f.poll(&cx(), &code).await.unwrap();
    assert_eq!(grant.access_token.expose(), sim.access_token());
    assert_eq!(grant.refresh_token.expose(), sim.refresh_token());
    assert!(grant.expires_at.is_some());
    assert_eq!(sim.device_polls(&code.user_code), 3);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(5); 3]);
    // The code is single-use.
    let err = f.poll(&cx(), &code).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // The tokens work.
    let mut cfg = common::config(&sim);
    cfg.access_token = Some(grant.access_token.clone());
    cfg.refresh_token = Some(grant.refresh_token.clone());
    assert_eq!(
        rig_with(cfg).provider.health(&cx()).await.status,
        HealthStatus::Ok
    );
}

#[tokio::test]
async fn the_device_flow_slows_down_when_asked() {
    let sim = sim().await;
    sim.slow_down_device_polls(1);
    sim.auto_approve_devices_after(1);
    let (f, clock) = flow(&sim);
    let code = f.request_code(&cx()).await.unwrap();
    f.poll(&cx(), &code).await.unwrap();
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(5), Duration::from_secs(10)]
    );
}

#[tokio::test]
async fn the_device_flow_reports_denial_expiry_and_timeout() {
    let sim = sim().await;
    let (f, clock) = flow(&sim);

    let code = f.request_code(&cx()).await.unwrap();
    assert!(sim.deny_device(&code.user_code));
    let err = f.poll(&cx(), &code).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("denied"), "{err}");

    let code = f.request_code(&cx()).await.unwrap();
    sim.expire_device_codes();
    let err = f.poll(&cx(), &code).await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // Never approved: the client gives up once `expires_in` has passed.
    clock.clear_sleeps();
    let code = f.request_code(&cx()).await.unwrap();
    let err = f.poll(&cx(), &code).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    let waited: Duration = clock.sleeps().iter().sum();
    assert!(waited > code.expires_in, "{waited:?}");
    assert_eq!(sim.device_polls(&code.user_code), 120);

    let bad = DeviceFlow::new(
        &sim.uri(),
        Secret::new("wrong-client-id"),
        Secret::new(sim.client_secret()),
    )
    .unwrap();
    assert!(bad.request_code(&cx()).await.is_err());
}

#[tokio::test]
async fn a_cancelled_device_flow_stops() {
    let sim = sim().await;
    let (f, _clock) = flow(&sim);
    let code = f.request_code(&cx()).await.unwrap();
    let cancel = ferry_core::CancelToken::new();
    cancel.cancel();
    let cx = ferry_core::Context::new(ferry_core::Emitter::silent(), cancel);
    let err = f.poll(&cx, &code).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
}

#[tokio::test]
async fn a_stored_token_about_to_expire_is_refreshed_before_the_first_request() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1)]);
    let kv: Arc<dyn ferry_core::KvStore> = Arc::new(MemoryKvStore::new());
    // What `ferry auth trakt` stored: a token that lapses 60 s after the rig's clock.
    ferry_http::TokenSink::persist(
        &KvTokenStore::new(kv.clone(), "trakt-test"),
        &ferry_http::Tokens::new(Secret::new(sim.access_token()))
            .with_refresh(Secret::new(sim.refresh_token()))
            .with_expiry(ferry_core::Timestamp::from_unix(1_750_000_000 + 60)),
    )
    .unwrap();
    let mut cfg = common::config(&sim);
    cfg.access_token = None;
    let r = rig_on(cfg, kv.clone(), None);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(sim.request_count("POST", "/oauth/token"), 1);
    // The list was asked for once, with the new token: no 401 and replay.
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 1);
    let stored = KvTokenStore::new(kv, "trakt-test").load().unwrap().unwrap();
    assert_eq!(stored.access.expose(), sim.access_token());
    assert!(
        stored.expires_at.map(|t| t.unix()) > Some(1_750_000_000 + 120),
        "the new expiry is kept"
    );
}

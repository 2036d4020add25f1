//! The circuit breaker end to end: counted failures, fail-fast, the full cycle, restarts.

mod common;

use std::time::Duration;

use common::{Rig, refused_base};
use ferry_core::ops::HealthStatus;
use ferry_core::{ErrorKind, ErrorStatus, KvStore};
use ferry_http::{BREAKER_NAMESPACE, BreakerState, HttpClient, RetryPolicy};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

async fn respond(server: &MockServer, status: u16) {
    server.reset().await;
    Mock::given(path("/sync/last_activities"))
        .respond_with(ResponseTemplate::new(status))
        .mount(server)
        .await;
}

fn client(rig: &Rig, base: &str) -> HttpClient {
    rig.builder(base)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn call(http: &HttpClient, rig: &Rig) -> Result<u16, ferry_core::Error> {
    http.get("GET /sync/last_activities", "/sync/last_activities")
        .send(&rig.cx)
        .await
        .map(|r| r.status())
}

async fn trip(http: &HttpClient, rig: &Rig) {
    for _ in 0..5 {
        let e = call(http, rig).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
    assert_eq!(http.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn full_cycle_closed_open_half_open_closed_and_half_open_reopens() {
    let server = MockServer::start().await;
    respond(&server, 503).await;
    let rig = Rig::new();
    let http = client(&rig, &server.uri());

    // CLOSED → OPEN after 5 consecutive 503s.
    for i in 0..4 {
        call(&http, &rig).await.unwrap_err();
        assert_eq!(
            http.breaker_state(),
            BreakerState::Closed,
            "after {}",
            i + 1
        );
    }
    call(&http, &rig).await.unwrap_err();
    assert_eq!(http.breaker_state(), BreakerState::Open);
    let open = &rig.sink.named("breaker:open")[0];
    assert_eq!(open.str("provider"), Some("trakt"));
    assert_eq!(open.str("instance"), Some("trakt-test"));
    assert_eq!(open.u64("failures"), Some(5));
    assert_eq!(open.str("opened_at"), Some("2023-11-14T22:13:20Z"));

    // OPEN: fail fast, no network, health says Down.
    let e = call(&http, &rig).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(requests(&server).await, 5);
    let h = http.breaker_health().unwrap();
    assert_eq!(h.status, HealthStatus::Down);
    assert_eq!(h.retry_after_secs, Some(60));

    // OPEN → HALF_OPEN after 60 s; a failed trial reopens it.
    rig.clock.advance(Duration::from_secs(59));
    assert_eq!(http.breaker_state(), BreakerState::Open);
    rig.clock.advance(Duration::from_secs(1));
    assert_eq!(http.breaker_state(), BreakerState::HalfOpen);
    assert!(http.breaker_health().is_none(), "a trial is allowed");
    call(&http, &rig).await.unwrap_err();
    assert_eq!(requests(&server).await, 6);
    assert_eq!(http.breaker_state(), BreakerState::Open);
    call(&http, &rig).await.unwrap_err();
    assert_eq!(requests(&server).await, 6, "reopened: fail fast again");

    // HALF_OPEN → CLOSED on one success.
    respond(&server, 200).await;
    rig.clock.advance(Duration::from_secs(60));
    assert_eq!(call(&http, &rig).await.unwrap(), 200);
    assert_eq!(http.breaker_state(), BreakerState::Closed);
    assert_eq!(call(&http, &rig).await.unwrap(), 200);

    let breaker_events: Vec<String> = rig
        .sink
        .names()
        .into_iter()
        .filter(|n| n.starts_with("breaker:"))
        .collect();
    assert_eq!(
        breaker_events,
        [
            "breaker:open",
            "breaker:half_open",
            "breaker:open",
            "breaker:half_open",
            "breaker:closed"
        ]
    );
    let reopened = &rig.sink.named("breaker:open")[1];
    assert_eq!(reopened.str("from"), Some("half_open"));
    assert_eq!(
        rig.sink.named("breaker:closed")[0].u64("open_ms"),
        Some(60_000)
    );
}

#[tokio::test]
async fn only_unavailability_counts() {
    let server = MockServer::start().await;
    let rig = Rig::new();
    let http = client(&rig, &server.uri());
    for status in [404, 400, 401, 403, 409, 420, 423, 429] {
        respond(&server, status).await;
        for _ in 0..6 {
            call(&http, &rig).await.unwrap_err();
        }
        assert_eq!(http.breaker_state(), BreakerState::Closed, "{status}");
    }
    // A success between failures breaks the streak.
    respond(&server, 503).await;
    for _ in 0..4 {
        call(&http, &rig).await.unwrap_err();
    }
    respond(&server, 404).await;
    call(&http, &rig).await.unwrap_err();
    respond(&server, 503).await;
    for _ in 0..4 {
        call(&http, &rig).await.unwrap_err();
    }
    assert_eq!(http.breaker_state(), BreakerState::Closed);
    assert_eq!(http.breaker().failures, 4);
    call(&http, &rig).await.unwrap_err();
    assert_eq!(http.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn connection_failures_and_timeouts_trip_the_breaker() {
    let rig = Rig::new();
    let http = client(&rig, &refused_base());
    trip(&http, &rig).await;

    let server = MockServer::start().await;
    Mock::given(path("/sync/last_activities"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .retry(RetryPolicy::none())
        .attempt_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    trip(&http, &rig).await;
}

#[tokio::test]
async fn retries_inside_one_call_count_once() {
    let server = MockServer::start().await;
    respond(&server, 500).await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .retry(RetryPolicy::default().with_max_attempts(3))
        .build()
        .unwrap();
    for _ in 0..4 {
        call(&http, &rig).await.unwrap_err();
    }
    assert_eq!(requests(&server).await, 12);
    assert_eq!(http.breaker().failures, 4);
    assert_eq!(http.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn an_open_breaker_survives_a_restart() {
    let server = MockServer::start().await;
    respond(&server, 503).await;
    let rig = Rig::new();
    let first = client(&rig, &server.uri());
    trip(&first, &rig).await;
    let record = rig
        .store
        .get(BREAKER_NAMESPACE, "trakt-test")
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(v["state"], "open");
    drop(first);

    // A new client on the same store (a restarted process) is still open.
    rig.clock.advance(Duration::from_secs(30));
    let second = client(&rig, &server.uri());
    assert_eq!(second.breaker_state(), BreakerState::Open);
    let e = call(&second, &rig).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(requests(&server).await, 5, "no request while open");

    // Its timeout still counts from the original opening.
    rig.clock.advance(Duration::from_secs(30));
    respond(&server, 200).await;
    assert_eq!(call(&second, &rig).await.unwrap(), 200);
    assert_eq!(second.breaker_state(), BreakerState::Closed);
    let third = client(&rig, &server.uri());
    assert_eq!(third.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_corrupt_record_reads_closed() {
    let server = MockServer::start().await;
    respond(&server, 200).await;
    let rig = Rig::new();
    rig.store
        .put(BREAKER_NAMESPACE, "trakt-test", "{\"state\":\"open\"")
        .unwrap();
    let http = client(&rig, &server.uri());
    assert_eq!(http.breaker_state(), BreakerState::Closed);
    assert_eq!(call(&http, &rig).await.unwrap(), 200);
}

#[tokio::test]
async fn reset_closes_an_open_breaker() {
    let server = MockServer::start().await;
    respond(&server, 503).await;
    let rig = Rig::new();
    let http = client(&rig, &server.uri());
    trip(&http, &rig).await;
    http.reset_breaker(&rig.cx);
    assert_eq!(http.breaker_state(), BreakerState::Closed);
    let closed = &rig.sink.named("breaker:closed")[0];
    assert_eq!(closed.get("reset"), Some(&serde_json::json!(true)));
}

#[tokio::test]
async fn a_trial_refused_locally_proves_nothing() {
    let server = MockServer::start().await;
    respond(&server, 503).await;
    let rig = Rig::new();
    let http = client(&rig, &server.uri());
    trip(&http, &rig).await;
    rig.clock.advance(Duration::from_secs(60));
    assert_eq!(http.breaker_state(), BreakerState::HalfOpen);

    // A probe (which bypasses the breaker) learns the service wants reads paused 15 min.
    server.reset().await;
    Mock::given(path("/probe"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "900"))
        .mount(&server)
        .await;
    Mock::given(path("/write"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    http.get("GET /probe", "/probe")
        .probe()
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(
        http.breaker_state(),
        BreakerState::HalfOpen,
        "probes never move it"
    );

    // The trial read is refused locally (pause > budget): no request, no verdict.
    let e = call(&http, &rig).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(requests(&server).await, 1);
    assert_eq!(http.breaker_state(), BreakerState::HalfOpen);

    // The trial slot was released: a write (another class) is the real trial and closes it.
    http.post("POST /write", "/write")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(http.breaker_state(), BreakerState::Closed);
}

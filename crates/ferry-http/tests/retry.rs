//! Retries, backoff, Retry-After, budgets, timeouts, connection failures and rate pacing.
//! Waits go through the rig's `ManualClock`, so nothing here sleeps on the wall clock
//! except the timeout test, which must wait for its (100 ms) timeout.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{Rig, START_UNIX, refused_base};
use ferry_core::ops::RateLimit;
use ferry_core::{ErrorKind, ErrorStatus, VerbClass};
use ferry_http::{HttpClient, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// Mounts `first` for the first `n` requests to `p`, then 200 `{"ok":true}`.
async fn script(server: &MockServer, p: &str, first: ResponseTemplate, n: u64) {
    Mock::given(path(p.to_owned()))
        .respond_with(first)
        .up_to_n_times(n)
        .mount(server)
        .await;
    Mock::given(path(p.to_owned()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn server_errors_then_success() {
    let server = MockServer::start().await;
    Mock::given(path("/sync/last_activities"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    script(
        &server,
        "/sync/last_activities",
        ResponseTemplate::new(502),
        1,
    )
    .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    let v: serde_json::Value = http
        .get_json(
            &rig.cx,
            "GET /sync/last_activities",
            "/sync/last_activities",
        )
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": true}));
    assert_eq!(requests(&server).await, 3);
    let hits: Vec<Option<u64>> = rig
        .sink
        .named("api:hit")
        .iter()
        .map(|h| h.u64("status"))
        .collect();
    assert_eq!(hits, [Some(503), Some(502), Some(200)]);
    assert_eq!(rig.count("api:retry"), 2);
    // Full jitter below the doubling ceilings (base 500 ms).
    let sleeps = rig.clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    assert!(sleeps[0] <= Duration::from_millis(500) && sleeps[1] <= Duration::from_secs(1));
}

#[tokio::test]
async fn backoff_is_deterministic_under_a_seed() {
    let run = |seed: u64| async move {
        let server = MockServer::start().await;
        script(&server, "/x", ResponseTemplate::new(500), 4).await;
        let rig = Rig::new();
        let http = rig.builder(&server.uri()).seed(seed).build().unwrap();
        http.get("GET /x", "/x").send(&rig.cx).await.unwrap();
        rig.clock.sleeps()
    };
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert_ne!(a, run(8).await);
    // Exactly uniform(0, min(cap, base·2^n)) drawn from the seeded RNG.
    let mut rng = fastrand::Rng::with_seed(7);
    let base = RetryPolicy::default().base;
    let expected: Vec<Duration> = (0..4)
        .map(|n| (base * (1 << n)).mul_f64(rng.f64()))
        .collect();
    assert_eq!(a, expected);
}

#[tokio::test]
async fn a_429_storm_waits_retry_after_then_gives_up_persistent() {
    let server = MockServer::start().await;
    Mock::given(path("/sync/watchlist"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .retry(RetryPolicy::default().with_max_attempts(4))
        .build()
        .unwrap();
    let e = http
        .get("GET /sync/watchlist", "/sync/watchlist")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(requests(&server).await, 4);
    let sleeps = rig.clock.sleeps();
    assert_eq!(sleeps.len(), 3);
    assert!(
        sleeps.iter().all(|d| *d >= Duration::from_secs(2)),
        "{sleeps:?}"
    );

    // A storm that ends: 3 × 429 then success, every wait at least Retry-After.
    let server = MockServer::start().await;
    script(
        &server,
        "/sync/ratings",
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        3,
    )
    .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    http.get("GET /sync/ratings", "/sync/ratings")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(requests(&server).await, 4);
    let sleeps = rig.clock.sleeps();
    assert_eq!(sleeps.len(), 3);
    assert!(
        sleeps.iter().all(|d| *d >= Duration::from_secs(1)),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = MockServer::start().await;
    let at = UNIX_EPOCH + Duration::from_secs(START_UNIX + 90);
    script(
        &server,
        "/sync/history",
        ResponseTemplate::new(429).insert_header("Retry-After", httpdate::fmt_http_date(at)),
        1,
    )
    .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    http.get("GET /sync/history", "/sync/history")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(rig.clock.sleeps(), [Duration::from_secs(90)]);
    let retry = &rig.sink.named("api:retry")[0];
    assert_eq!(retry.u64("delay_ms"), Some(90_000));
    assert_eq!(retry.str("kind"), Some("rate_limited"));
}

#[tokio::test]
async fn retry_after_beyond_the_budget_gives_up_at_once_and_defers_later_calls() {
    let server = MockServer::start().await;
    Mock::given(path("/sync/collection"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "600"))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri()); // budget 120 s
    let e = http
        .get("GET /sync/collection", "/sync/collection")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
    assert!(rig.clock.sleeps().is_empty(), "no wait was taken");
    assert_eq!(requests(&server).await, 1);

    // The server's pause also holds back the next read: it fails without a request.
    let e = http
        .get("GET /sync/collection", "/sync/collection")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert_eq!(requests(&server).await, 1);
    // ... until the pause is over.
    rig.clock.advance(Duration::from_secs(600));
    let _ = http
        .get("GET /sync/collection", "/sync/collection")
        .send(&rig.cx)
        .await;
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn the_total_budget_bounds_backoff() {
    let server = MockServer::start().await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "40"))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .retry(
            RetryPolicy::default()
                .with_max_attempts(100)
                .with_budget(Duration::from_secs(100)),
        )
        .build()
        .unwrap();
    let e = http.get("GET /x", "/x").send(&rig.cx).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    // 40 s + 40 s fit in 100 s; a third wait would not.
    assert_eq!(requests(&server).await, 3);
    assert_eq!(rig.clock.sleeps(), [Duration::from_secs(40); 2]);
}

#[tokio::test]
async fn timeouts_are_unavailable_and_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .attempt_timeout(Duration::from_millis(100))
        .retry(RetryPolicy::default().with_max_attempts(2))
        .build()
        .unwrap();
    let e = http
        .get("GET /slow", "/slow")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert!(e.message().contains("timed out"), "{e}");
    let hits = rig.sink.named("api:hit");
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.get("status") == Some(&json!(null))));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn connection_refused_is_unavailable_and_retried() {
    let rig = Rig::new();
    let http = rig
        .builder(&refused_base())
        .retry(RetryPolicy::default().with_max_attempts(3))
        .build()
        .unwrap();
    let e = http
        .get("GET /identity", "/identity")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), ErrorStatus::Persistent);
    assert!(e.message().contains("connect"), "{e}");
    assert_eq!(rig.count("api:hit"), 3);
    assert_eq!(rig.count("api:retry"), 2);
}

#[tokio::test]
async fn writes_are_not_retried_unless_marked_idempotent() {
    let server = MockServer::start().await;
    Mock::given(path("/sync/history/remove"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    for m in [
        ferry_http::Method::POST,
        ferry_http::Method::PUT,
        ferry_http::Method::DELETE,
    ] {
        let e = http
            .request(
                m.clone(),
                "WRITE /sync/history/remove",
                "/sync/history/remove",
            )
            .json(&json!({"movies": []}))
            .send(&rig.cx)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{m}");
        // Not retried, and left temporary: the caller decides whether to defer.
        assert_eq!(e.status(), ErrorStatus::Temporary, "{m}");
    }
    assert_eq!(requests(&server).await, 3);
    assert_eq!(rig.count("api:retry"), 0);

    // The same write marked idempotent is retried until it succeeds.
    let server = MockServer::start().await;
    script(&server, "/sync/watchlist", ResponseTemplate::new(503), 2).await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    let resp = http
        .post("POST /sync/watchlist", "/sync/watchlist")
        .json(&json!({"movies": []}))
        .idempotent()
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(requests(&server).await, 3);
    // The body is resent intact on every attempt.
    let bodies: Vec<Vec<u8>> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(bodies.iter().all(|b| b == br#"{"movies":[]}"#));
}

#[tokio::test]
async fn exhausted_rate_headers_pause_the_next_request() {
    let server = MockServer::start().await;
    Mock::given(path("/users/me/lists"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .insert_header("X-RateLimit-Limit", "1000")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "30"),
        )
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    http.get("GET /users/me/lists", "/users/me/lists")
        .send(&rig.cx)
        .await
        .unwrap();
    let info = http.rate_info().unwrap();
    assert_eq!(
        (info.limit, info.remaining, info.reset_secs),
        (Some(1000), Some(0), Some(30))
    );
    assert!(rig.clock.sleeps().is_empty());
    http.get("GET /users/me/lists", "/users/me/lists")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(rig.clock.sleeps(), [Duration::from_secs(30)]);
    // Writes are a separate class and were not held back.
    rig.clock.clear_sleeps();
    Mock::given(path("/w"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    http.post("POST /w", "/w").send(&rig.cx).await.unwrap();
    assert!(rig.clock.sleeps().is_empty());
}

#[tokio::test]
async fn published_write_limit_spaces_writes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http: HttpClient = rig
        .builder(&server.uri())
        .rate_limits(&[
            RateLimit {
                class: VerbClass::Read,
                requests: 1000,
                per: Duration::from_secs(300),
            },
            RateLimit {
                class: VerbClass::Write,
                requests: 1,
                per: Duration::from_secs(1),
            },
        ])
        .build()
        .unwrap();
    for _ in 0..3 {
        http.post("POST /sync/ratings", "/sync/ratings")
            .send(&rig.cx)
            .await
            .unwrap();
    }
    assert_eq!(rig.clock.sleeps(), [Duration::from_secs(1); 2]);
    // Reads have their own budget (a burst of 100) and do not wait.
    for _ in 0..5 {
        let _ = http.get("GET /x", "/x").send(&rig.cx).await;
    }
    assert_eq!(rig.clock.sleeps().len(), 2);
}

/// A 429 is answered before anything is applied, and a refused connection sent nothing:
/// a write is retried after either, unlike after a 5xx or a timeout (it may have landed).
#[tokio::test]
async fn a_write_refused_by_a_429_or_a_closed_port_is_retried() {
    let server = MockServer::start().await;
    script(
        &server,
        "/sync/history",
        ResponseTemplate::new(429).insert_header("Retry-After", "2"),
        2,
    )
    .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    let resp = http
        .post("POST /sync/history", "/sync/history")
        .json(&json!({"movies": []}))
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(requests(&server).await, 3);
    assert_eq!(rig.count("api:retry"), 2);
    assert!(
        rig.clock
            .sleeps()
            .iter()
            .filter(|d| **d >= Duration::from_secs(2))
            .count()
            >= 2,
        "each retry waited the Retry-After: {:?}",
        rig.clock.sleeps()
    );

    let rig = Rig::new();
    let http = rig
        .builder(&refused_base())
        .retry(RetryPolicy::default().with_max_attempts(3))
        .build()
        .unwrap();
    let e = http
        .post("POST /sync/history", "/sync/history")
        .json(&json!({"movies": []}))
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(rig.count("api:hit"), 3, "never sent, so tried again");
}

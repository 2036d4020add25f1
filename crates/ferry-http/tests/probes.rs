//! Active health probes while the breaker is OPEN.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Rig;
use ferry_core::{
    CancelToken, CollectingSink, Context, Emitter, ErrorKind, KvStore, MemoryKvStore,
};
use ferry_http::{
    BREAKER_NAMESPACE, BreakerState, HttpClient, ProbeSchedule, RetryPolicy, SystemClock,
    run_health_probes,
};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The seed's ceiling after `k` consecutive failures: min(60 s, 5 s·2^k).
fn ceiling(k: u32) -> Duration {
    (Duration::from_secs(5) * (1 << k.min(20))).min(Duration::from_secs(60))
}

#[tokio::test]
async fn probes_follow_the_seeded_schedule_and_never_touch_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(path("/sync/last_activities"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    // /identity: down for three probes, then up.
    Mock::given(path("/identity"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(path("/identity"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .retry(RetryPolicy::none())
        .seed(99)
        .build()
        .unwrap();
    for _ in 0..5 {
        http.get("GET /sync/last_activities", "/sync/last_activities")
            .send(&rig.cx)
            .await
            .unwrap_err();
    }
    assert_eq!(http.breaker_state(), BreakerState::Open);
    rig.clock.clear_sleeps();

    let states = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, cx, seen) = (http.clone(), rig.cx.clone(), states.clone());
    let stats = run_health_probes(&http, &rig.cx, ProbeSchedule::default(), move || {
        let (c, cx, seen) = (c.clone(), cx.clone(), seen.clone());
        async move {
            seen.lock().unwrap().push(c.breaker_state());
            // A probe request bypasses the open breaker; a normal one would fail fast.
            c.get("GET /identity", "/identity")
                .probe()
                .send(&cx)
                .await
                .map(|_| ())
        }
    })
    .await;

    // Replay the schedule: first after 5 s; after k failures uniform(0, ceiling(k));
    // after a success 5 s again. The loop ends once the breaker's 60 s have passed.
    let mut rng = fastrand::Rng::with_seed(99);
    let mut expected = vec![Duration::from_secs(5)];
    let mut failures = 0;
    let mut oks = Vec::new();
    let mut total = Duration::from_secs(5);
    while total < Duration::from_secs(60) {
        let ok = oks.len() >= 3;
        oks.push(ok);
        let next = if ok {
            failures = 0;
            Duration::from_secs(5)
        } else {
            failures += 1;
            ceiling(failures).mul_f64(rng.f64())
        };
        expected.push(next);
        total += next;
    }
    let sleeps = rig.clock.sleeps();
    assert_eq!(sleeps, expected);
    assert_eq!(stats.probes as usize, oks.len());
    assert_eq!(stats.failed, 3);
    assert_eq!(stats.ok as usize, oks.len() - 3);

    let probes = rig.sink.named("health:probe");
    assert_eq!(probes.len(), oks.len());
    for (i, p) in probes.iter().enumerate() {
        assert_eq!(p.str("provider"), Some("trakt"));
        assert_eq!(p.str("instance"), Some("trakt-test"));
        assert_eq!(p.get("ok"), Some(&serde_json::json!(oks[i])));
        assert_eq!(
            p.u64("next_in_ms"),
            Some(expected[i + 1].as_millis() as u64)
        );
        assert!(p.u64("ms").is_some());
    }
    // Informational only: every probe ran while OPEN, passing probes did not close it,
    // and the loop emitted no breaker transition.
    assert!(
        states
            .lock()
            .unwrap()
            .iter()
            .all(|s| *s == BreakerState::Open)
    );
    assert_eq!(
        rig.sink
            .names()
            .iter()
            .filter(|n| n.starts_with("breaker:"))
            .count(),
        1
    );
    assert_eq!(http.breaker_state(), BreakerState::HalfOpen);
    // The next real request is the trial.
    let e = http
        .get("GET /sync/last_activities", "/sync/last_activities")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(http.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn no_probes_while_closed() {
    let rig = Rig::new();
    let http = rig.client("http://127.0.0.1:9");
    let stats = run_health_probes(&http, &rig.cx, ProbeSchedule::default(), || async {
        panic!("must not probe a closed breaker")
    })
    .await;
    assert_eq!(stats.probes, 0);
    assert!(rig.clock.sleeps().is_empty());
}

/// Paused tokio time with the production clock: a hanging probe is cut at 5 s.
#[tokio::test(start_paused = true)]
async fn a_hanging_probe_times_out_after_five_seconds() {
    let store = Arc::new(MemoryKvStore::new());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    store
        .put(
            BREAKER_NAMESPACE,
            "plex-home",
            &format!(r#"{{"state":"open","failures":5,"opened_at_ms":{now_ms}}}"#),
        )
        .unwrap();
    let http = HttpClient::builder("plex", "plex-home")
        .base_url("http://127.0.0.1:9")
        .store(store as Arc<dyn KvStore>)
        .clock(Arc::new(SystemClock::new()))
        .seed(5)
        .build()
        .unwrap();
    assert_eq!(http.breaker_state(), BreakerState::Open);
    let sink = CollectingSink::new();
    let cx = Context::new(Emitter::to_sink(sink.clone()), CancelToken::new());
    let calls = Arc::new(AtomicU32::new(0));
    let (calls2, cancel) = (calls.clone(), cx.cancel.clone());
    let t0 = tokio::time::Instant::now();
    let stats = run_health_probes(&http, &cx, ProbeSchedule::default(), move || {
        let (calls, cancel) = (calls2.clone(), cancel.clone());
        async move {
            if calls.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                cancel.cancel();
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    })
    .await;
    assert_eq!(stats.probes, 3);
    assert_eq!(stats.failed, 3);
    let probes = sink.named("health:probe");
    assert!(
        probes.iter().all(|p| p.u64("ms") == Some(5000)),
        "{probes:?}"
    );
    // 5 s wait + 5 s timeout, twice a jittered wait + 5 s timeout; never the hour.
    let mut rng = fastrand::Rng::with_seed(5);
    let j1 = ceiling(1).mul_f64(rng.f64());
    let j2 = ceiling(2).mul_f64(rng.f64());
    let elapsed = tokio::time::Instant::now() - t0;
    let expected = Duration::from_secs(20) + j1 + j2;
    assert!(
        elapsed.abs_diff(expected) < Duration::from_millis(5),
        "{elapsed:?} vs {expected:?}"
    );
    assert_eq!(http.breaker_state(), BreakerState::Open);
}

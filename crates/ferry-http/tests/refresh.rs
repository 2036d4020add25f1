//! Token refresh on 401: single flight, persistence, replay once, failures.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::Rig;
use ferry_core::{Context, Error, ErrorKind, KvStore, Result, Secret};
use ferry_http::{HttpClient, KvTokenStore, TokenRefresher, Tokens};
use tokio::sync::Notify;
use wiremock::matchers::{header, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers 401 and counts, so a refresher can wait until every request was refused.
#[derive(Clone)]
struct Refuse {
    count: Arc<AtomicUsize>,
    notify: Arc<Notify>,
}

impl Respond for Refuse {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
        ResponseTemplate::new(401).set_body_string("invalid_token")
    }
}

#[derive(Debug)]
struct Refresher {
    calls: AtomicUsize,
    /// Waits until this many 401s were served before answering (0: answer at once).
    wait_for: usize,
    refused: Arc<AtomicUsize>,
    notify: Arc<Notify>,
    result: std::result::Result<&'static str, ErrorKind>,
}

impl Refresher {
    fn new(
        result: std::result::Result<&'static str, ErrorKind>,
        refuse: &Refuse,
        wait_for: usize,
    ) -> Arc<Self> {
        Arc::new(Refresher {
            calls: AtomicUsize::new(0),
            wait_for,
            refused: refuse.count.clone(),
            notify: refuse.notify.clone(),
            result,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenRefresher for Refresher {
    async fn refresh(&self, _cx: &Context) -> Result<Tokens> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let all_refused = async {
            loop {
                let n = self.notify.notified();
                if self.refused.load(Ordering::SeqCst) >= self.wait_for {
                    return;
                }
                n.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all_refused)
            .await
            .expect("every request should have been refused first");
        match self.result {
            Ok(token) => {
                Ok(Tokens::new(Secret::new(token))
                    .with_refresh(Secret::new("refresh-rotated-2222")))
            }
            Err(kind) => Err(Error::new(kind, "token endpoint down")),
        }
    }
}

async fn server_with_tokens(refuse: &Refuse) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/sync/watched"))
        .and(header("authorization", "Bearer access-old-1111"))
        .respond_with(refuse.clone())
        .mount(&server)
        .await;
    Mock::given(path("/sync/watched"))
        .and(header("authorization", "Bearer access-new-3333"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    server
}

fn refuse() -> Refuse {
    Refuse {
        count: Arc::new(AtomicUsize::new(0)),
        notify: Arc::new(Notify::new()),
    }
}

fn client(rig: &Rig, server: &MockServer, refresher: Arc<Refresher>) -> HttpClient {
    rig.builder(&server.uri())
        .bearer(&Secret::new("access-old-1111"))
        .refresher(refresher)
        .token_sink(Arc::new(KvTokenStore::new(
            rig.store.clone() as Arc<dyn KvStore>,
            "trakt-test",
        )))
        .build()
        .unwrap()
}

async fn concurrently(http: &HttpClient, rig: &Rig, n: usize) -> Vec<Result<u16>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (http, cx) = (http.clone(), rig.cx.clone());
        set.spawn(async move {
            http.get("GET /sync/watched", "/sync/watched")
                .send(&cx)
                .await
                .map(|r| r.status())
        });
    }
    set.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_401s_share_one_refresh() {
    let refuse = refuse();
    let server = server_with_tokens(&refuse).await;
    let rig = Rig::new();
    let refresher = Refresher::new(Ok("access-new-3333"), &refuse, 10);
    let http = client(&rig, &server, refresher.clone());

    let results = concurrently(&http, &rig, 10).await;
    assert!(results.iter().all(|r| matches!(r, Ok(200))), "{results:?}");
    assert_eq!(refresher.calls(), 1, "single flight");
    // 10 refused with the old token, 10 replayed with the new one.
    assert_eq!(server.received_requests().await.unwrap().len(), 20);
    // The rotated tokens were persisted.
    let stored = KvTokenStore::new(rig.store.clone() as Arc<dyn KvStore>, "trakt-test")
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(stored.access.expose(), "access-new-3333");
    assert_eq!(stored.refresh.unwrap().expose(), "refresh-rotated-2222");
    let refreshes = rig.sink.named("auth:refresh");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].get("ok"), Some(&serde_json::json!(true)));
    // Later requests use the new token directly.
    http.get("GET /sync/watched", "/sync/watched")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 21);
    // The rotated secrets are scrubbed like the configured ones.
    let known: Vec<String> = http
        .secrets()
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    assert!(known.contains(&"access-new-3333".to_owned()));
    assert!(known.contains(&"refresh-rotated-2222".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_is_an_auth_error_for_every_waiter() {
    let refuse = refuse();
    let server = server_with_tokens(&refuse).await;
    let rig = Rig::new();
    let refresher = Refresher::new(Err(ErrorKind::Unavailable), &refuse, 10);
    let http = client(&rig, &server, refresher.clone());

    let results = concurrently(&http, &rig, 10).await;
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert_eq!(e.provider(), Some("trakt"));
    }
    assert_eq!(refresher.calls(), 1, "the waiters share the failed refresh");
    assert_eq!(server.received_requests().await.unwrap().len(), 10);
    assert_eq!(http.breaker_state(), ferry_http::BreakerState::Closed);

    // A later 401 (a new wave) may try again.
    let e = http
        .get("GET /sync/watched", "/sync/watched")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(refresher.calls(), 2);
}

#[tokio::test]
async fn a_refused_replay_is_not_refreshed_again() {
    let server = MockServer::start().await;
    let refuse = refuse();
    Mock::given(path("/sync/watched"))
        .respond_with(refuse.clone())
        .mount(&server)
        .await;
    let rig = Rig::new();
    let refresher = Refresher::new(Ok("access-new-3333"), &refuse, 0);
    let http = client(&rig, &server, refresher.clone());
    let e = http
        .get("GET /sync/watched", "/sync/watched")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(refresher.calls(), 1);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "one replay"
    );
}

#[tokio::test]
async fn without_a_refresher_401_and_403_are_auth_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .bearer(&Secret::new("access-old-1111"))
        .build()
        .unwrap();
    for p in ["/a", "/b"] {
        let e = http.get("GET /x", p).send(&rig.cx).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    // 403 is "forbidden", not "expired": even with a refresher it is not refreshed.
    let refuse = refuse();
    let refresher = Refresher::new(Ok("access-new-3333"), &refuse, 0);
    let http = client(&rig, &server, refresher.clone());
    let e = http.get("GET /b", "/b").send(&rig.cx).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(refresher.calls(), 0);
}

#[tokio::test]
async fn without_auth_sends_no_token_and_never_refreshes() {
    let server = MockServer::start().await;
    let refuse = refuse();
    Mock::given(path("/oauth/token"))
        .respond_with(refuse.clone())
        .mount(&server)
        .await;
    let rig = Rig::new();
    let refresher = Refresher::new(Ok("access-new-3333"), &refuse, 0);
    let http = client(&rig, &server, refresher.clone());
    let e = http
        .post("POST /oauth/token", "/oauth/token")
        .without_auth()
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(refresher.calls(), 0);
    let reqs = server.received_requests().await.unwrap();
    assert!(reqs[0].headers.get("authorization").is_none());
}

/// Both tokens are accepted: what matters is which one each request carried.
async fn server_accepting_both() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/sync/watched"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    server
}

async fn bearers(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.headers.get("authorization"))
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn expiring_client(
    rig: &Rig,
    server: &MockServer,
    refresher: Arc<Refresher>,
    in_secs: u64,
) -> HttpClient {
    rig.builder(&server.uri())
        .bearer(&Secret::new("access-old-1111"))
        .refresher(refresher)
        .token_expiry(Some(ferry_core::Timestamp::from_unix(
            (common::START_UNIX + in_secs) as i64,
        )))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_the_request() {
    let refuse = refuse();
    let server = server_accepting_both().await;
    let rig = Rig::new();
    let refresher = Refresher::new(Ok("access-new-3333"), &refuse, 0);
    let http = expiring_client(&rig, &server, refresher.clone(), 60);
    for _ in 0..3 {
        http.get("GET /sync/watched", "/sync/watched")
            .send(&rig.cx)
            .await
            .unwrap();
    }
    assert_eq!(refresher.calls(), 1);
    assert_eq!(
        bearers(&server).await,
        vec!["Bearer access-new-3333"; 3],
        "the old token never went out"
    );
    assert_eq!(rig.count("auth:refresh"), 1);
}

#[tokio::test]
async fn a_token_is_refreshed_early_only_once_its_expiry_is_near() {
    let refuse = refuse();
    let server = server_accepting_both().await;
    let rig = Rig::new();
    let refresher = Refresher::new(Ok("access-new-3333"), &refuse, 0);
    let http = expiring_client(&rig, &server, refresher.clone(), 3_600);
    http.get("GET /sync/watched", "/sync/watched")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(refresher.calls(), 0, "an hour left: no refresh");
    rig.clock.advance(Duration::from_secs(3_600 - 119));
    http.get("GET /sync/watched", "/sync/watched")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(refresher.calls(), 1, "119 s left: refreshed first");
    assert_eq!(
        bearers(&server).await,
        vec!["Bearer access-old-1111", "Bearer access-new-3333"]
    );
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_the_token_and_asks_the_endpoint_once() {
    let refuse = refuse();
    let server = server_with_tokens(&refuse).await;
    let rig = Rig::new();
    let refresher = Refresher::new(Err(ErrorKind::Unavailable), &refuse, 0);
    let http = expiring_client(&rig, &server, refresher.clone(), 30);
    // The old token went out and was refused: an auth error, and no second refresh.
    let err = http
        .get("GET /sync/watched", "/sync/watched")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert_eq!(refresher.calls(), 1);
    assert_eq!(bearers(&server).await, vec!["Bearer access-old-1111"]);
}

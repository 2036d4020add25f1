//! Secret scan: drive every error path with a server that echoes credentials back, then
//! check that no configured or rotated secret appears in any event, error, `Debug` output
//! or log line. The emitter has no redactions of its own: this layer must be clean.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{Rig, refused_base};
use ferry_core::{Context, Result, Secret};
use ferry_http::{AuthScheme, RetryPolicy, TokenRefresher, Tokens};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ACCESS: &str = "tok-SECRET-access-1111";
const API_KEY: &str = "key-SECRET-client-2222";
const ROTATED: &str = "tok-SECRET-rotated-3333";
const REFRESH: &str = "ref-SECRET-refresh-4444";
const QUERY_KEY: &str = "qk-SECRET-query-5555";
const CLIENT_SECRET: &str = "cs-SECRET-client-6666";
const FIRST_REFRESH: &str = "ref-SECRET-initial-7777";
const ALL: [&str; 7] = [
    ACCESS,
    API_KEY,
    ROTATED,
    REFRESH,
    QUERY_KEY,
    CLIENT_SECRET,
    FIRST_REFRESH,
];

/// Echoes the URL, the credential headers and the body back; the status comes from the
/// path (`/s/<status>/...`). `/auth/...` refuses the original access token.
struct Echo;

impl Respond for Echo {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let h = |n: &str| {
            req.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let echo = format!(
            "url={} authorization={} api-key={} body={}",
            req.url,
            h("authorization"),
            h("trakt-api-key"),
            String::from_utf8_lossy(&req.body)
        );
        let segs: Vec<&str> = req.url.path().split('/').collect();
        let status = match segs.get(1) {
            Some(&"auth") if h("authorization") == format!("Bearer {ACCESS}") => 401,
            Some(&"s") => segs.get(2).and_then(|s| s.parse().ok()).unwrap_or(200),
            _ => 200,
        };
        let mut t = ResponseTemplate::new(status).set_body_string(echo);
        if status == 429 {
            t = t.insert_header("Retry-After", "900");
        }
        if segs.get(1) == Some(&"slow") {
            t = t.set_delay(Duration::from_secs(5));
        }
        t
    }
}

#[derive(Debug)]
struct Rotate;

#[async_trait]
impl TokenRefresher for Rotate {
    async fn refresh(&self, _: &Context) -> Result<Tokens> {
        Ok(Tokens::new(Secret::new(ROTATED)).with_refresh(Secret::new(REFRESH)))
    }
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_events_errors_debug_or_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(any()).respond_with(Echo).mount(&server).await;
    let rig = Rig::new();
    let trakt = rig
        .builder(&server.uri())
        .secret_header("trakt-api-key", &Secret::new(API_KEY))
        .bearer(&Secret::new(ACCESS))
        .secret(&Secret::new(CLIENT_SECRET))
        .secret(&Secret::new(FIRST_REFRESH))
        .refresher(Arc::new(Rotate))
        .retry(RetryPolicy::default().with_max_attempts(2))
        .build()
        .unwrap();
    let mdblist = |base: &str| {
        rig.builder(base)
            .auth(AuthScheme::Query("apikey".into()), &Secret::new(QUERY_KEY))
            .retry(RetryPolicy::default().with_max_attempts(2))
            .attempt_timeout(Duration::from_millis(100))
            .build()
            .unwrap()
    };
    let mdb = mdblist(&server.uri());
    let dead = mdblist(&refused_base());

    let mut errors = Vec::new();
    let mut debug = vec![format!("{trakt:?} {mdb:?} {dead:?}")];
    let mut run = |r: Result<ferry_http::Response>| match r {
        Ok(resp) => {
            debug.push(format!("{resp:?}"));
            if let Err(e) = resp.json::<Vec<u32>>() {
                errors.push(e);
            }
        }
        Err(e) => errors.push(e),
    };

    // Error statuses echoing the bearer token and API key, with a secret in the path.
    for status in [400, 404, 409, 420, 422, 500] {
        run(trakt
            .get("GET /s/{status}", format!("/s/{status}/users/{API_KEY}"))
            .send(&rig.cx)
            .await);
    }
    // A body carrying the client secret, echoed back in a 422 and a 200 that is not JSON.
    let oauth = |refresh: &str| serde_json::json!({"client_secret": CLIENT_SECRET, "refresh_token": refresh});
    for p in ["/s/422/oauth", "/s/200/oauth"] {
        run(trakt
            .post("POST /oauth/token", p)
            .json(&oauth(FIRST_REFRESH))
            .send(&rig.cx)
            .await);
    }
    // A 401 → refresh → replay with the rotated token, then errors echoing the new tokens.
    run(trakt.get("GET /auth/me", "/auth/me").send(&rig.cx).await);
    run(trakt.get("GET /s/404", "/s/404").send(&rig.cx).await);
    run(trakt.get("GET /s/429", "/s/429").send(&rig.cx).await);
    run(trakt
        .post("POST /oauth/token", "/s/401/oauth")
        .without_auth()
        .json(&oauth(REFRESH))
        .send(&rig.cx)
        .await);
    // Query-string credentials: echoed URLs, a timeout, a refused connection, then the
    // breaker opening and failing fast.
    run(mdb.get("GET /s/503", "/s/503").send(&rig.cx).await);
    run(mdb.get("GET /slow", "/slow").send(&rig.cx).await);
    run(mdb
        .get("GET /s/200", format!("/s/200?apikey={QUERY_KEY}"))
        .send(&rig.cx)
        .await);
    for _ in 0..6 {
        run(dead.get("GET /list", "/list").send(&rig.cx).await);
    }
    debug.push(format!(
        "{:?}",
        trakt
            .get("GET /x", format!("/x/{ACCESS}"))
            .query("k", QUERY_KEY)
    ));

    assert!(errors.len() >= 15, "{}", errors.len());
    let texts: Vec<String> = errors.iter().map(|e| format!("{e}\n{e:?}")).collect();
    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for line in [
        "circuit breaker opened",
        "access token refreshed",
        "retrying",
    ] {
        assert!(log_text.contains(line), "no {line:?} in the captured logs");
    }
    let haystack = format!(
        "{}\n{}\n{}\n{log_text}",
        texts.join("\n"),
        rig.sink.dump(),
        debug.join("\n"),
    );
    for s in ALL {
        assert!(!haystack.contains(s), "{s} leaked:\n{haystack}");
    }
    // The scenario did exercise the echoes (so the scan is not vacuous).
    assert!(texts.iter().filter(|t| t.contains("[redacted]")).count() >= 10);
    assert!(rig.sink.named("auth:refresh").len() == 1);
    assert!(rig.count("breaker:open") >= 1);
    let known: Vec<String> = trakt
        .secrets()
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    for s in [ACCESS, API_KEY, ROTATED, REFRESH, CLIENT_SECRET] {
        assert!(known.iter().any(|k| k == s), "{s} not tracked");
    }
}

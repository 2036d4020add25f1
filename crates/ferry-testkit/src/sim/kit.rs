//! The simulator kit: what every simulator shares, written once.
//!
//! A simulator is its state plus its routes ([`Routes`]); the kit's [`Host`] serves
//! them on a loopback port (wiremock) behind the shared fault knobs, so each request is
//! counted, offered to the scheduled [`FaultRule`]s (a status, a 429 with
//! `Retry-After`, an expired token, an empty, HTML or cut-off body answered by the
//! knobs; a truncated, empty or damaged page, a missing or invalid total handed to the
//! list route as a [`ListFault`]) and only then routed. [`Host`] implements
//! [`FaultControl`] and [`Simulator`] for any routes, so a new simulator writes its
//! state, its routes and its seed and nothing else:
//!
//! ```text
//! #[derive(Debug)]
//! struct MyRoutes { watchlist: Vec<u64>, token: String }
//! impl Routes for MyRoutes {
//!     fn seeded() -> Self { /* from kit::sample_catalog() */ }
//!     fn token(&self) -> String { self.token.clone() }
//!     fn list_path(&self, f: Feature) -> Option<String> { /* the paged list of f */ }
//!     fn route(&mut self, req: &Request, fault: &ListFault) -> ResponseTemplate { ... }
//! }
//! pub type MySim = Host<MyRoutes>;
//! let sim = MySim::start().await;
//! ```
//!
//! List routes page with [`numbered_window`] / [`offset_window`] and render the
//! declared total the fault decided ([`ListFault::shape`]).

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::{Feature, Item};
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
pub use crate::sim::knobs::{
    BadTotal, Fault, FaultControl, FaultRule, Knobs, ListFault, ListShape, RowDamage, TotalOut,
};

/// Sample shows every kit simulator's catalog holds (next to
/// [`SAMPLE_LIBRARY_SIZE`] sample movies).
pub const SAMPLE_SHOWS: u32 = 8;

/// A simulator the contract suite and `ferry simulate` can start and attack.
pub trait Simulator: FaultControl + Clone + 'static {
    /// Starts on a loopback port, seeded with the shared sample library.
    fn start() -> impl Future<Output = Self> + Send;
    /// The base URL a provider's `base_url` points at.
    fn uri(&self) -> String;
    /// The credential the simulator accepts (a secret the suite checks never leaks).
    fn token(&self) -> String;
}

/// A simulated service: its state and how it answers one request.
pub trait Routes: fmt::Debug + Send + 'static {
    /// The state seeded with the shared sample library ([`sample_catalog`]).
    fn seeded() -> Self;
    /// The credential the routes accept.
    fn token(&self) -> String;
    /// The path prefix the read of `feature` pages through (see
    /// [`FaultControl::list_path`]); `None` when it has no paged list.
    fn list_path(&self, feature: Feature) -> Option<String>;
    /// Answers a request the knobs let through; a list route shapes its page with
    /// `fault` ([`ListFault::shape`]).
    fn route(&mut self, req: &Request, fault: &ListFault) -> ResponseTemplate;
    /// Sees a fault the knobs answer in place of the routes (a simulator that accounts
    /// for its own answers, such as the 429s it sent, counts these too).
    fn faulted(&mut self, _fault: &Fault) {}
}

#[derive(Debug)]
struct Shared<R> {
    routes: R,
    knobs: Knobs,
}

/// Serves [`Routes`] on loopback behind the fault knobs.
#[derive(Debug)]
pub struct Host<R> {
    server: Arc<MockServer>,
    state: Arc<Mutex<Shared<R>>>,
}

impl<R> Clone for Host<R> {
    fn clone(&self) -> Self {
        Host {
            server: self.server.clone(),
            state: self.state.clone(),
        }
    }
}

struct Router<R>(Arc<Mutex<Shared<R>>>);

fn lock<R>(m: &Mutex<Shared<R>>) -> MutexGuard<'_, Shared<R>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<R: Routes> Respond for Router<R> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        let routes = &mut st.routes;
        if let Some(f) = &seen.fault {
            routes.faulted(f);
        }
        seen.answer_list(|_, _, fault| routes.route(req, fault))
    }
}

impl<R: Routes> Host<R> {
    /// Serves the routes seeded with the shared sample library.
    pub async fn start() -> Self {
        Host::serve(R::seeded()).await
    }

    /// Serves `routes` (already seeded as the test wants them).
    pub async fn serve(routes: R) -> Self {
        let server = super::server().await;
        let state = Arc::new(Mutex::new(Shared {
            routes,
            knobs: Knobs::default(),
        }));
        Mock::given(any())
            .respond_with(Router(state.clone()))
            .mount(&server)
            .await;
        Host {
            server: Arc::new(server),
            state,
        }
    }

    /// Reads or changes the simulated state (seed more, check what a write did).
    pub fn with<T>(&self, f: impl FnOnce(&mut R) -> T) -> T {
        f(&mut lock(&self.state).routes)
    }

    /// The knobs: request counts, latency, scheduled faults.
    pub fn knobs<T>(&self, f: impl FnOnce(&mut Knobs) -> T) -> T {
        f(&mut lock(&self.state).knobs)
    }
}

impl<R: Routes> FaultControl for Host<R> {
    fn inject(&self, rule: FaultRule) {
        self.knobs(|k| k.inject(rule));
    }

    fn clear_faults(&self) {
        self.knobs(Knobs::clear_faults);
    }

    fn faults_fired(&self) -> u64 {
        self.knobs(|k| k.fired())
    }

    fn list_path(&self, feature: Feature) -> Option<String> {
        self.with(|r| r.list_path(feature))
    }

    fn rate_limit_gap(&self) -> Option<Duration> {
        self.knobs(|k| k.rate_limit_gap())
    }
}

impl<R: Routes> Simulator for Host<R> {
    fn start() -> impl Future<Output = Self> + Send {
        Host::start()
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    fn token(&self) -> String {
        self.with(|r| r.token())
    }
}

/// The shared sample library: movies `0..SAMPLE_LIBRARY_SIZE`, then shows
/// `0..SAMPLE_SHOWS` (from [`crate::samples`]).
pub fn sample_catalog() -> Vec<Item> {
    let mut v = samples::library(SAMPLE_LIBRARY_SIZE);
    v.extend((0..SAMPLE_SHOWS).map(samples::show));
    v
}

/// The rows of page `page` (1-based) of `n` rows, `per_page` to a page, as the fault
/// wants them (a truncated page keeps half).
pub fn numbered_window(n: usize, page: usize, per_page: usize, fault: &ListFault) -> Range<usize> {
    let start = page.saturating_sub(1).saturating_mul(per_page);
    offset_window(n, start, Some(per_page), fault)
}

/// The rows from `start`, at most `limit` of them (all without one), as the fault wants.
pub fn offset_window(
    n: usize,
    start: usize,
    limit: Option<usize>,
    fault: &ListFault,
) -> Range<usize> {
    let (a, b) = super::knobs::window(n, start, limit, fault.truncates());
    a..b
}

/// Pages of `per_page` needed for `n` rows (TMDB, Trakt: at least one page).
pub fn page_count(n: usize, per_page: usize) -> usize {
    n.div_ceil(per_page.max(1)).max(1)
}

/// A query parameter of the request.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The request's JSON body (`None` when absent or not JSON).
pub fn body(req: &Request) -> Option<Value> {
    serde_json::from_slice(&req.body).ok()
}

/// A JSON answer.
pub fn json(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// The bearer token of the request, if any.
pub fn bearer(req: &Request) -> Option<String> {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::knobs::Fault;
    use serde_json::json;
    use std::time::Duration;

    /// A one-list service: `GET /list?page=` over a catalog, two rows a page.
    #[derive(Debug)]
    struct Tiny {
        rows: Vec<u32>,
    }

    impl Routes for Tiny {
        fn seeded() -> Self {
            Tiny {
                rows: (0..sample_catalog().len() as u32).take(5).collect(),
            }
        }
        fn token(&self) -> String {
            "tiny-token".into()
        }
        fn list_path(&self, f: Feature) -> Option<String> {
            (f == Feature::Watchlist).then(|| "/list".into())
        }
        fn route(&mut self, req: &Request, fault: &ListFault) -> ResponseTemplate {
            if bearer(req).as_deref() != Some("tiny-token") {
                return json(401, json!({"error": "no"}));
            }
            if req.method.as_str() == "POST" {
                let id = body(req).and_then(|b| b["id"].as_u64()).unwrap_or(0);
                self.rows.push(id as u32);
                return json(201, json!({"added": 1}));
            }
            let page: usize = query(req, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let w = numbered_window(self.rows.len(), page, 2, fault);
            let rows = self.rows[w].iter().map(|n| json!({"id": n})).collect();
            let (rows, total) = fault.shape(rows, self.rows.len());
            json(200, json!({"rows": rows, "total": total.json()}))
        }
    }

    #[tokio::test]
    async fn a_host_serves_its_routes_behind_the_knobs() {
        let sim = Host::<Tiny>::start().await;
        assert!(sim.uri().starts_with("http://127.0.0.1:"));
        assert_eq!(sim.token(), "tiny-token");
        assert_eq!(sim.list_path(Feature::Watchlist).as_deref(), Some("/list"));
        assert_eq!(sim.list_path(Feature::Ratings), None);
        sim.inject(FaultRule::new(Fault::Truncate).on("/list").after(1));
        assert_eq!(sim.knobs(|k| k.observe("GET", "/list")), None);
        assert_eq!(
            sim.knobs(|k| k.observe("GET", "/list")),
            Some(Fault::Truncate)
        );
        assert_eq!(sim.faults_fired(), 1);
        sim.clear_faults();
        assert_eq!(sim.with(|r| r.rows.len()), 5);
    }

    /// One HTTP/1.1 exchange on a fresh connection; `None` when no answer came within
    /// `wait` (the client gives up and hangs up).
    async fn exchange(uri: &str, head: &str, body: &str, wait: Duration) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = uri.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "{head} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer tiny-token\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(req.as_bytes()).await.expect("send");
        let mut out = Vec::new();
        match tokio::time::timeout(wait, conn.read_to_end(&mut out)).await {
            Ok(Ok(_)) => Some(String::from_utf8_lossy(&out).into_owned()),
            _ => None,
        }
    }

    async fn rows_listed(sim: &Host<Tiny>) -> usize {
        let mut n = 0;
        for page in 1..=10 {
            let got = exchange(&sim.uri(), &format!("GET /list?page={page}"), "", LONG)
                .await
                .expect("a read answers");
            let rows = got.matches("\"id\"").count();
            n += rows;
            if rows == 0 {
                break;
            }
        }
        n
    }

    /// Long enough for any answer the simulator gives; the latency faults are longer than
    /// the client's patience, never shorter than this.
    const LONG: Duration = Duration::from_secs(20);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_answer_comes_after_the_write_landed() {
        let sim = Host::<Tiny>::start().await;
        sim.inject(
            FaultRule::new(Fault::LatencyAfterApply(Duration::from_secs(30)))
                .on("/list")
                .method("POST"),
        );
        let answer = exchange(&sim.uri(), "POST /list", r#"{"id": 9}"#, PATIENCE).await;
        assert_eq!(answer, None, "the client gave up before the answer");
        assert_eq!(sim.faults_fired(), 1);
        // The write landed all the same, once.
        assert_eq!(sim.with(|r| r.rows.clone()), [0, 1, 2, 3, 4, 9]);
        assert_eq!(rows_listed(&sim).await, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_service_applies_the_write_after_the_client_gave_up() {
        let sim = Host::<Tiny>::start().await;
        sim.inject(
            FaultRule::new(Fault::LatencyBeforeApply(Duration::from_millis(600)))
                .on("/list")
                .method("POST"),
        );
        let answer = exchange(&sim.uri(), "POST /list", r#"{"id": 9}"#, PATIENCE).await;
        assert_eq!(answer, None, "the client gave up during the stall");
        // The next request waits out the stall, then sees the write applied once.
        assert_eq!(rows_listed(&sim).await, 6);
        assert_eq!(sim.with(|r| r.rows.clone()), [0, 1, 2, 3, 4, 9]);
        assert_eq!(sim.faults_fired(), 1);
    }

    /// How long the client waits for an answer before it gives up.
    const PATIENCE: Duration = Duration::from_millis(100);

    #[test]
    fn windows_page_and_truncate() {
        let none = ListFault::none();
        assert_eq!(numbered_window(45, 1, 20, &none), 0..20);
        assert_eq!(numbered_window(45, 3, 20, &none), 40..45);
        assert_eq!(numbered_window(45, 4, 20, &none), 45..45);
        assert_eq!(offset_window(45, 10, None, &none), 10..45);
        assert_eq!(page_count(0, 20), 1);
        assert_eq!(page_count(41, 20), 3);
        assert_eq!(
            sample_catalog().len() as u32,
            SAMPLE_LIBRARY_SIZE + SAMPLE_SHOWS
        );
    }
}

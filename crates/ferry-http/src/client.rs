//! [`HttpClient`]: one per provider instance, wrapping reqwest in the resilience layers.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::ops::{Health, RateInfo, RateLimit, VerbClass};
use ferry_core::secret::scrub;
use ferry_core::{Context, Error, ErrorKind, KvStore, MemoryKvStore, Result, Secret, Timestamp};
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::auth::{AuthScheme, AuthState, AuthTicket, SecretSet, TokenRefresher, TokenSink};
use crate::backoff::{RetryPolicy, full_jitter};
use crate::breaker::{BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, Verdict};
use crate::classify::{self, excerpt};
use crate::clock::{Clock, SystemClock};
use crate::probe::PROBE_TIMEOUT;
use crate::ratelimit::RateLimiter;

/// The user agent every request carries.
pub const USER_AGENT: &str = concat!("ferry/", env!("CARGO_PKG_VERSION"));

/// A resilient HTTP client for one provider instance. Cheap to clone (shared state).
///
/// See the crate docs for the layering. Build one with [`HttpClient::builder`].
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    provider: String,
    instance: String,
    base_url: String,
    http: reqwest::Client,
    auth: Option<AuthState>,
    secrets: SecretSet,
    limiter: RateLimiter,
    breaker: CircuitBreaker,
    retry: RetryPolicy,
    attempt_timeout: Duration,
    clock: Arc<dyn Clock>,
    rng: Mutex<fastrand::Rng>,
    rate: Mutex<Option<RateInfo>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("HttpClient")
            .field("provider", &i.provider)
            .field("instance", &i.instance)
            .field("base_url", &self.scrub(&i.base_url))
            .field("auth", &i.auth)
            .field("retry", &i.retry)
            .field("breaker", &i.breaker)
            .field("limiter", &i.limiter)
            .finish()
    }
}

/// Builds an [`HttpClient`].
pub struct HttpClientBuilder {
    provider: String,
    instance: String,
    base_url: Option<String>,
    headers: Vec<(String, String, bool)>,
    secrets: Vec<Secret>,
    auth: Option<(AuthScheme, Secret)>,
    refresher: Option<Arc<dyn TokenRefresher>>,
    sink: Option<Arc<dyn TokenSink>>,
    token_expiry: Option<Timestamp>,
    connect_timeout: Duration,
    read_timeout: Duration,
    attempt_timeout: Duration,
    rate_limits: Vec<RateLimit>,
    retry: RetryPolicy,
    breaker: BreakerConfig,
    store: Option<Arc<dyn KvStore>>,
    clock: Option<Arc<dyn Clock>>,
    seed: Option<u64>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("provider", &self.provider)
            .field("instance", &self.instance)
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field("auth", &self.auth)
            .field("rate_limits", &self.rate_limits)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl HttpClientBuilder {
    /// The service's base URL, e.g. `https://api.trakt.tv` or, behind a reverse proxy,
    /// `https://home.example/jellyfin`. Providers pass the configured override when there
    /// is one (simulators and proxies need it) and their default otherwise. Required.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// A header sent with every request (`trakt-api-version: 2`, `Accept`, ...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into(), false));
        self
    }

    /// A header with a secret value sent with every request (`trakt-api-key`, a static
    /// `X-Plex-Token`). The value is scrubbed from everything the client reports.
    pub fn secret_header(mut self, name: impl Into<String>, value: &Secret) -> Self {
        self.secrets.push(value.clone());
        self.headers
            .push((name.into(), value.expose().to_owned(), true));
        self
    }

    /// Another secret to scrub from errors (a client secret used in a body, a password).
    pub fn secret(mut self, value: &Secret) -> Self {
        self.secrets.push(value.clone());
        self
    }

    /// The access token and where it goes. An empty token means "none yet": the first
    /// 401 then triggers the refresher.
    pub fn auth(mut self, scheme: AuthScheme, token: &Secret) -> Self {
        self.secrets.push(token.clone());
        self.auth = Some((scheme, token.clone()));
        self
    }

    /// Shorthand for `auth(AuthScheme::Bearer, token)`.
    pub fn bearer(self, token: &Secret) -> Self {
        self.auth(AuthScheme::Bearer, token)
    }

    /// Runs on a 401 (single flight), then the request is replayed once.
    pub fn refresher(mut self, refresher: Arc<dyn TokenRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }

    /// Where rotated tokens are persisted.
    pub fn token_sink(mut self, sink: Arc<dyn TokenSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// When the access token expires. With a refresher, a request sent less than
    /// [`REFRESH_AHEAD`] before that refreshes first instead of waiting for a 401.
    pub fn token_expiry(mut self, at: Option<Timestamp>) -> Self {
        self.token_expiry = at;
        self
    }

    /// TCP/TLS connect timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Longest silence while reading a response (default 30 s).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// Total time for one attempt, connect to last body byte (default 60 s).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = d;
        self
    }

    /// The provider's published limits (`Capabilities::rate_limits`).
    pub fn rate_limits(mut self, limits: &[RateLimit]) -> Self {
        self.rate_limits.extend_from_slice(limits);
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Where the breaker record lives (the engine's state store). Without one the breaker
    /// state lasts as long as the client.
    pub fn store(mut self, store: Arc<dyn KvStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock for waits and breaker timestamps (tests pass a [`crate::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seeds the jitter RNG so backoff and probe schedules are reproducible.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub fn build(self) -> Result<HttpClient> {
        let invalid = |msg: &str| {
            Error::new(ErrorKind::InvalidInput, msg).with_provider(self.provider.clone())
        };
        let base = self
            .base_url
            .as_deref()
            .ok_or_else(|| invalid("no base URL configured"))?
            .trim()
            .trim_end_matches('/')
            .to_owned();
        match reqwest::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => return Err(invalid("the base URL is not an http(s) URL")),
        }

        let mut defaults = HeaderMap::new();
        defaults.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value, secret) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(&format!("invalid header name {name:?}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| invalid(&format!("invalid value for header {name}")))?;
            value.set_sensitive(*secret);
            defaults.insert(name, value);
        }

        // reqwest panics without a process-wide rustls provider; installing twice is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(defaults)
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .build()
            .map_err(|e| invalid("could not build the HTTP client").with_source(e.without_url()))?;

        let secrets = SecretSet::default();
        for s in &self.secrets {
            secrets.add(s);
        }
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let store: Arc<dyn KvStore> = self.store.unwrap_or_else(|| Arc::new(MemoryKvStore::new()));
        let auth = match (self.auth, &self.refresher) {
            (Some((scheme, token)), _) => Some(AuthState::new(
                scheme,
                (!token.is_empty()).then_some(token),
                self.refresher.clone(),
                self.sink.clone(),
                self.token_expiry,
            )),
            (None, Some(_)) => Some(AuthState::new(
                AuthScheme::Bearer,
                None,
                self.refresher.clone(),
                self.sink.clone(),
                self.token_expiry,
            )),
            (None, None) => None,
        };
        Ok(HttpClient {
            inner: Arc::new(Inner {
                breaker: CircuitBreaker::load(
                    &self.provider,
                    &self.instance,
                    self.breaker,
                    clock.clone(),
                    store,
                ),
                limiter: RateLimiter::new(clock.clone(), &self.rate_limits),
                rng: Mutex::new(match self.seed {
                    Some(s) => fastrand::Rng::with_seed(s),
                    None => fastrand::Rng::new(),
                }),
                provider: self.provider,
                instance: self.instance,
                base_url: base,
                http,
                auth,
                secrets,
                retry: self.retry,
                attempt_timeout: self.attempt_timeout,
                clock,
                rate: Mutex::new(None),
            }),
        })
    }
}

/// Pagination headers as Trakt (and others) send them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pagination {
    /// `X-Pagination-Page`
    pub page: Option<u64>,
    /// `X-Pagination-Limit`
    pub limit: Option<u64>,
    /// `X-Pagination-Page-Count`
    pub page_count: Option<u64>,
    /// `X-Pagination-Item-Count`
    pub item_count: Option<u64>,
}

impl Pagination {
    /// Whether a page after `page` exists (false when the count is unknown).
    pub fn has_next(&self) -> bool {
        matches!((self.page, self.page_count), (Some(p), Some(n)) if p < n)
    }
}

/// A successful (status < 400) response with its body read.
pub struct Response {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    op: String,
    client: HttpClient,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("op", &self.op)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header as an unsigned integer (counts, pages).
    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    pub fn pagination(&self) -> Pagination {
        Pagination {
            page: self.header_u64("x-pagination-page"),
            limit: self.header_u64("x-pagination-limit"),
            page_count: self.header_u64("x-pagination-page-count"),
            item_count: self.header_u64("x-pagination-item-count"),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decodes the body as JSON. An empty body decodes as `null` (so `()`/`Option<T>`
    /// work for 204s). Failure is `MalformedResponse` with a short scrubbed excerpt.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            let raw = self.client.inner.secrets.exposed();
            let refs: Vec<&str> = raw.iter().map(String::as_str).collect();
            Error::new(
                ErrorKind::MalformedResponse,
                format!("could not decode the response: {e}"),
            )
            .with_provider(self.client.inner.provider.clone())
            .with_operation(self.op.clone())
            .with_context("status", self.status.to_string())
            .with_context("body", excerpt(&self.body, &refs))
            .scrubbed(&refs)
        })
    }

    pub fn json_value(&self) -> Result<Value> {
        self.json()
    }

    /// A `MalformedResponse` error about this response (a body of the wrong shape),
    /// with the provider, operation, status and a scrubbed excerpt of the body.
    pub fn malformed(&self, message: impl Into<String>) -> Error {
        let raw = self.client.inner.secrets.exposed();
        let refs: Vec<&str> = raw.iter().map(String::as_str).collect();
        Error::new(ErrorKind::MalformedResponse, message)
            .with_provider(self.client.inner.provider.clone())
            .with_operation(self.op.clone())
            .with_context("status", self.status.to_string())
            .with_context("body", excerpt(&self.body, &refs))
            .scrubbed(&refs)
    }
}

/// One request being assembled; finish with [`RequestBuilder::send`] or a `send_*` helper.
pub struct RequestBuilder<'a> {
    client: &'a HttpClient,
    method: Method,
    op: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Vec<u8>, &'static str)>,
    idempotent: Option<bool>,
    class: Option<VerbClass>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    auth: bool,
    probe: bool,
    error: Option<Error>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("op", &self.op)
            .field("method", &self.method)
            .field(
                "query_keys",
                &self.query.iter().map(|q| &q.0).collect::<Vec<_>>(),
            )
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.as_ref().map(|b| b.0.len()))
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder<'_> {
    /// Adds a query parameter. Values holding secrets should be registered with the client
    /// ([`HttpClientBuilder::secret`]) or sent via [`AuthScheme::Query`].
    pub fn query(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }

    /// Adds a header to this request only.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => self.headers.push((n, v)),
            _ => {
                self.error.get_or_insert_with(|| {
                    Error::new(ErrorKind::InvalidInput, format!("invalid header {name:?}"))
                });
            }
        }
        self
    }

    /// A JSON body (sets `Content-Type: application/json`).
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => self.body = Some((b, "application/json")),
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("could not encode the body: {e}"),
                    )
                });
            }
        }
        self
    }

    /// A raw body with its content type.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: &'static str) -> Self {
        self.body = Some((bytes.into(), content_type));
        self
    }

    /// Marks a write as safe to repeat, so temporary failures are retried. Reads (GET,
    /// HEAD, OPTIONS) always are; other methods are sent at most once unless marked.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = Some(true);
        self
    }

    /// Overrides the rate-limit class (default: Read for GET/HEAD/OPTIONS, else Write).
    pub fn class(mut self, class: VerbClass) -> Self {
        self.class = Some(class);
        self
    }

    /// Overrides the per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Overrides the client's retry policy for this request.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sends no credentials and never refreshes (token endpoints, public endpoints).
    pub fn without_auth(mut self) -> Self {
        self.auth = false;
        self
    }

    /// A health probe: bypasses the circuit breaker (neither checked nor fed), one
    /// attempt, a 5 s timeout unless set. For [`crate::run_health_probes`] closures and
    /// `health()` implementations.
    pub fn probe(mut self) -> Self {
        self.probe = true;
        self
    }

    /// Sends the request through every layer.
    pub async fn send(self, cx: &Context) -> Result<Response> {
        let client = self.client;
        let req = self.prepare()?;
        client.execute(cx, req).await
    }

    /// Sends and decodes the JSON body into `T`.
    pub async fn send_json<T: DeserializeOwned>(self, cx: &Context) -> Result<T> {
        self.send(cx).await?.json()
    }

    fn prepare(self) -> Result<Prepared> {
        let client = self.client;
        if let Some(e) = self.error {
            return Err(client.finish_error(e, &self.op));
        }
        let read = matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let retry = match (self.retry, self.probe) {
            (Some(p), _) => p,
            (None, true) => RetryPolicy::none(),
            (None, false) => client.inner.retry,
        };
        Ok(Prepared {
            class: self.class.unwrap_or(if read {
                VerbClass::Read
            } else {
                VerbClass::Write
            }),
            repeatable: read || self.idempotent.unwrap_or(false),
            timeout: self.timeout.unwrap_or(if self.probe {
                PROBE_TIMEOUT
            } else {
                client.inner.attempt_timeout
            }),
            method: self.method,
            op: self.op,
            path: self.path,
            query: self.query,
            headers: self.headers,
            body: self.body,
            retry,
            auth: self.auth,
            probe: self.probe,
        })
    }
}

struct Prepared {
    method: Method,
    op: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Vec<u8>, &'static str)>,
    class: VerbClass,
    repeatable: bool,
    timeout: Duration,
    retry: RetryPolicy,
    auth: bool,
    probe: bool,
}

struct AttemptError {
    error: Error,
    status: Option<u16>,
    /// The service cannot have acted on the request: the connection was never made, or
    /// it answered 429 (it refused the request before processing it).
    not_applied: bool,
}

impl HttpClient {
    /// Starts a builder for `provider` (the provider id, `"trakt"`) and `instance` (the
    /// configured name, `"trakt-main"`; also the breaker's store key).
    pub fn builder(provider: impl Into<String>, instance: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            provider: provider.into(),
            instance: instance.into(),
            base_url: None,
            headers: Vec::new(),
            secrets: Vec::new(),
            auth: None,
            refresher: None,
            sink: None,
            token_expiry: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(60),
            rate_limits: Vec::new(),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            store: None,
            clock: None,
            seed: None,
        }
    }

    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// A request. `op` is a stable endpoint label for events and errors, such as
    /// `"GET /sync/watchlist"`: never a URL with query values. `path` is joined to the base
    /// URL (an absolute `http(s)://` URL is used as is).
    pub fn request(
        &self,
        method: Method,
        op: impl Into<String>,
        path: impl Into<String>,
    ) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method,
            op: op.into(),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            idempotent: None,
            class: None,
            timeout: None,
            retry: None,
            auth: true,
            probe: false,
            error: None,
        }
    }

    pub fn get(&self, op: impl Into<String>, path: impl Into<String>) -> RequestBuilder<'_> {
        self.request(Method::GET, op, path)
    }

    pub fn post(&self, op: impl Into<String>, path: impl Into<String>) -> RequestBuilder<'_> {
        self.request(Method::POST, op, path)
    }

    pub fn put(&self, op: impl Into<String>, path: impl Into<String>) -> RequestBuilder<'_> {
        self.request(Method::PUT, op, path)
    }

    pub fn delete(&self, op: impl Into<String>, path: impl Into<String>) -> RequestBuilder<'_> {
        self.request(Method::DELETE, op, path)
    }

    /// `GET` and decode JSON into `T` (use `serde_json::Value` for untyped).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
    ) -> Result<T> {
        self.get(op, path).send_json(cx).await
    }

    /// `POST` a JSON body and decode the JSON answer. Not retried on temporary failures
    /// (use [`HttpClient::post`] + [`RequestBuilder::idempotent`] when it is safe).
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.post(op, path).json(body).send_json(cx).await
    }

    /// `DELETE` and decode the JSON answer (an empty body decodes as `null`).
    pub async fn delete_json<T: DeserializeOwned>(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
    ) -> Result<T> {
        self.delete(op, path).send_json(cx).await
    }

    /// The breaker's effective state (OPEN past its timeout reads HALF_OPEN). No side
    /// effects.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.snapshot().state
    }

    /// The breaker's state with counts and timings, for `ferry health`.
    pub fn breaker(&self) -> BreakerSnapshot {
        self.inner.breaker.snapshot()
    }

    /// `Some(Health::down(..))` while the breaker is OPEN, so a provider's `health()` can
    /// start with `if let Some(h) = self.http.breaker_health() { return h; }`.
    pub fn breaker_health(&self) -> Option<Health> {
        let s = self.breaker();
        (s.state == BreakerState::Open).then(|| {
            let mut h = Health::down(format!(
                "circuit breaker open for {}s after {} failures; next trial in {}s",
                s.open_for.unwrap_or_default().as_secs(),
                s.failures,
                s.retry_in.unwrap_or_default().as_secs()
            ));
            h.retry_after_secs = s.retry_in.map(|d| d.as_secs().max(1));
            h
        })
    }

    /// Forces the breaker CLOSED (manual recovery).
    pub fn reset_breaker(&self, cx: &Context) {
        self.inner.breaker.reset(&cx.emitter);
    }

    /// The last rate-limit headers the service sent.
    pub fn rate_info(&self) -> Option<RateInfo> {
        self.inner.rate.lock().ok().and_then(|r| r.clone())
    }

    /// Every secret this client knows (configured and rotated), for
    /// `InventoryOps::secrets`.
    pub fn secrets(&self) -> Vec<Secret> {
        self.inner.secrets.all()
    }

    /// `text` with every known secret replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let raw = self.inner.secrets.exposed();
        let refs: Vec<&str> = raw.iter().map(String::as_str).collect();
        scrub(text, &refs)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn jitter(&self, n: u32, base: Duration, cap: Duration) -> Duration {
        let mut rng = self.inner.rng.lock().unwrap_or_else(|p| p.into_inner());
        full_jitter(&mut rng, n, base, cap)
    }

    fn finish_error(&self, e: Error, op: &str) -> Error {
        let raw = self.inner.secrets.exposed();
        let refs: Vec<&str> = raw.iter().map(String::as_str).collect();
        let e = if e.provider().is_none() {
            e.with_provider(self.inner.provider.clone())
        } else {
            e
        };
        let e = if e.operation().is_none() {
            e.with_operation(scrub(op, &refs))
        } else {
            e
        };
        e.scrubbed(&refs)
    }

    async fn execute(&self, cx: &Context, req: Prepared) -> Result<Response> {
        let span = tracing::debug_span!(
            "http",
            provider = %self.inner.provider,
            instance = %self.inner.instance,
            op = %self.scrub(&req.op),
        );
        let result = self.guarded(cx, &req).instrument(span).await;
        result.map_err(|e| self.finish_error(e, &req.op))
    }

    /// Breaker check, then the retry loop, then the verdict.
    async fn guarded(&self, cx: &Context, req: &Prepared) -> Result<Response> {
        cx.check_cancelled()?;
        let mut answered = false;
        if req.probe {
            return self.retry_loop(cx, req, &mut answered).await;
        }
        let permit = match self.inner.breaker.acquire(&cx.emitter) {
            Ok(p) => p,
            Err(refused) => {
                tracing::debug!("circuit breaker {}: failing fast", refused.state);
                let mut e = Error::new(
                    ErrorKind::Unavailable,
                    format!("circuit breaker {}; failing fast", refused.state),
                )
                .with_context("breaker", refused.state.as_str());
                if !refused.retry_in.is_zero() {
                    e = e.with_retry_after(refused.retry_in);
                }
                return Err(e.persist());
            }
        };
        let result = self.retry_loop(cx, req, &mut answered).await;
        permit.record(
            Verdict::of(result.as_ref().map(|_| ()).map_err(Error::kind), answered),
            &cx.emitter,
        );
        result
    }

    /// Sets `answered` to whether the last attempt got an HTTP response.
    async fn retry_loop(
        &self,
        cx: &Context,
        req: &Prepared,
        answered: &mut bool,
    ) -> Result<Response> {
        let inner = &self.inner;
        let policy = req.retry;
        let start = inner.clock.monotonic();
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        if req.auth
            && let Some(auth) = &inner.auth
            && let Some(ticket) = auth.early_refresh_ticket(inner.clock.unix_ms())
        {
            // A failure is not fatal here: the token may still be good for a while. The
            // request goes out with it, and its 401 (if any) does not ask again.
            if let Err(e) = auth
                .refresh(cx, ticket, &inner.secrets, &inner.provider, &inner.instance)
                .await
            {
                refreshed = true;
                tracing::warn!("refreshing the token ahead of its expiry failed: {e}");
            }
        }
        loop {
            cx.check_cancelled()?;
            if let Some(pause) = inner.limiter.pause_remaining(req.class) {
                let left = policy
                    .budget
                    .saturating_sub(inner.clock.monotonic().saturating_sub(start));
                if pause > left {
                    return Err(Error::new(
                        ErrorKind::RateLimited,
                        "the service asked for a pause longer than the retry budget",
                    )
                    .with_retry_after(pause)
                    .persist());
                }
            }
            inner.limiter.acquire(req.class, &cx.cancel).await?;
            attempt += 1;
            let (ticket, outcome) = self.attempt(cx, req, attempt).await;
            let failed = match outcome {
                Ok(resp) => {
                    *answered = true;
                    return Ok(resp);
                }
                Err(f) => f,
            };
            *answered = failed.status.is_some();

            if failed.status == Some(401)
                && !refreshed
                && let (Some(auth), Some(ticket)) = (&inner.auth, ticket)
                && auth.can_refresh()
            {
                refreshed = true;
                auth.refresh(cx, ticket, &inner.secrets, &inner.provider, &inner.instance)
                    .await?;
                attempt -= 1; // the replay is not a retry
                continue;
            }

            let err = failed.error;
            if !err.is_temporary() {
                return Err(err);
            }
            if !req.repeatable && !failed.not_applied {
                // A write that may have been applied: never repeated unless marked
                // idempotent. Left temporary: the caller decides (defer, re-read, ask).
                // A 429 or a refused connection left nothing applied: retried like a read.
                return Err(err);
            }
            if attempt >= policy.max_attempts {
                return Err(err.persist());
            }
            let mut delay = self.jitter(attempt - 1, policy.base, policy.cap);
            if let Some(ra) = err.retry_after() {
                delay = delay.max(ra);
            }
            let elapsed = inner.clock.monotonic().saturating_sub(start);
            if elapsed + delay > policy.budget {
                return Err(err.persist());
            }
            cx.emitter.emit(
                "api:retry",
                json!({
                    "provider": inner.provider,
                    "instance": inner.instance,
                    "op": self.scrub(&req.op),
                    "attempt": attempt,
                    "kind": err.kind().as_str(),
                    "delay_ms": delay.as_millis() as u64,
                }),
            );
            tracing::debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying: {}",
                self.finish_error(err, &req.op)
            );
            tokio::select! {
                _ = inner.clock.sleep(delay) => {}
                _ = cx.cancel.cancelled() => return Err(Error::cancelled()),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.inner.base_url)
        } else {
            format!("{}/{path}", self.inner.base_url)
        }
    }

    /// One HTTP exchange: emits `api:hit`, feeds the rate headers, classifies.
    async fn attempt(
        &self,
        cx: &Context,
        req: &Prepared,
        n: u32,
    ) -> (
        Option<AuthTicket>,
        std::result::Result<Response, AttemptError>,
    ) {
        let inner = &self.inner;
        let mut rb = inner
            .http
            .request(req.method.clone(), self.url(&req.path))
            .timeout(req.timeout);
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        let mut ticket = None;
        if req.auth
            && let Some(auth) = &inner.auth
        {
            let (token, t) = auth.ticket();
            ticket = Some(t);
            if let Some(token) = token {
                rb = match &auth.scheme {
                    AuthScheme::Bearer => rb.header(
                        header::AUTHORIZATION,
                        sensitive(&format!("Bearer {}", token.expose())),
                    ),
                    AuthScheme::Header(name) => rb.header(name, sensitive(token.expose())),
                    AuthScheme::Query(key) => rb.query(&[(key.as_str(), token.expose())]),
                };
            }
        }
        if let Some((bytes, ctype)) = &req.body {
            rb = rb.header(header::CONTENT_TYPE, *ctype).body(bytes.clone());
        }

        let started = tokio::time::Instant::now();
        let result = async {
            let resp = rb.send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        let ms = started.elapsed().as_millis() as u64;
        let path = self.scrub(req.path.split('?').next().unwrap_or_default());
        let hit = |status: Option<u16>, ok: bool| {
            cx.emitter.emit(
                "api:hit",
                json!({
                    "provider": inner.provider,
                    "instance": inner.instance,
                    "op": self.scrub(&req.op),
                    "method": req.method.as_str(),
                    "status": status,
                    "ms": ms,
                    "ok": ok,
                    "attempt": n,
                }),
            );
        };

        let outcome = match result {
            Ok((status, headers, body)) => {
                hit(Some(status), status < 400);
                self.observe(req.class, status, &headers);
                let raw = inner.secrets.exposed();
                let refs: Vec<&str> = raw.iter().map(String::as_str).collect();
                match classify::status_error(status, &headers, &body, inner.clock.unix_ms(), &refs)
                {
                    Some(error) => Err(AttemptError {
                        error: error.with_context("path", path),
                        status: Some(status),
                        not_applied: status == 429,
                    }),
                    None => Ok(Response {
                        status,
                        headers,
                        body: Vec::from(body),
                        op: self.scrub(&req.op),
                        client: self.clone(),
                    }),
                }
            }
            Err(e) => {
                hit(None, false);
                let not_applied = e.is_connect();
                Err(AttemptError {
                    error: classify::transport_error(e).with_context("path", path),
                    status: None,
                    not_applied,
                })
            }
        };
        (ticket, outcome)
    }

    /// Feeds rate headers and server-requested pauses to the limiter.
    fn observe(&self, class: VerbClass, status: u16, headers: &HeaderMap) {
        let inner = &self.inner;
        let now = inner.clock.unix_ms();
        if let Some(info) = classify::rate_info(headers, now) {
            if info.remaining == Some(0)
                && let Some(reset) = info.reset_secs
            {
                inner.limiter.pause(class, Duration::from_secs(reset));
            }
            if let Ok(mut r) = inner.rate.lock() {
                *r = Some(info);
            }
        }
        if matches!(status, 429 | 503)
            && let Some(ra) = classify::retry_after(headers, now)
        {
            inner.limiter.pause(class, ra);
        }
    }
}

fn sensitive(v: &str) -> HeaderValue {
    let mut h = HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.set_sensitive(true);
    h
}

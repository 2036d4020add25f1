//! ferry's resilient HTTP layer: the one way HTTP providers (Trakt, SIMKL, MDBList, Plex,
//! Jellyfin, Emby) talk to their services.
//!
//! One [`HttpClient`] per provider instance. Every request goes through these layers,
//! outermost first (object_store's and OpenDAL's order):
//!
//! 1. **span**: a `tracing` span with provider, instance and op.
//! 2. **circuit breaker** ([`BreakerState`]): while OPEN the call fails fast with
//!    `Unavailable` (persistent, `retry_after` = time to the trial) and touches no socket.
//!    Only `Unavailable` outcomes (5xx, 408, timeouts, connect errors) count; five in a row
//!    open it, 60 s later one trial call decides. The state is persisted in the engine's
//!    [`ferry_core::KvStore`] and survives restarts.
//! 3. **retry** ([`RetryPolicy`]): temporary errors only, full-jitter exponential backoff
//!    `uniform(0, min(cap, base·2^n))`, bounded by attempts *and* a total time budget,
//!    `Retry-After` honoured (a wait past the budget gives up at once, error persistent so
//!    the caller defers). Writes are repeated only when marked
//!    [`RequestBuilder::idempotent`]. A 401 runs the provider's [`TokenRefresher`] once for
//!    all concurrent requests (single flight), persists the rotated token through a
//!    [`TokenSink`] and replays the request once.
//! 4. **rate limiter**, per attempt: the provider's published limits per
//!    [`ferry_core::VerbClass`] (GCRA), plus pauses the server asks for (`Retry-After`,
//!    `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`). It sits *inside* the retry
//!    loop so every retry also takes a slot: a 429 storm cannot push us over the
//!    published limit. A server pause longer than the retry budget fails the call at
//!    once (`RateLimited`, persistent, `retry_after` set) instead of blocking.
//! 5. **per-attempt timeout**: connect, read-idle and total-attempt timeouts.
//! 6. **HTTP**: reqwest on rustls (ring), user agent [`USER_AGENT`]; every exchange emits
//!    `api:hit {provider, instance, op, method, status, ms, ok, attempt}`.
//!
//! Responses of 400 and above become [`ferry_core::Error`]s with a core
//! [`ferry_core::ErrorKind`] (see [`classify_status`]), the provider and the op label, a
//! scrubbed path and a short scrubbed body excerpt. Every configured or rotated secret is
//! scrubbed from errors; events carry only labels and numbers.
//!
//! While the breaker is OPEN the daemon can run [`run_health_probes`]: informational
//! probes (5 s timeout, first after 5 s, jittered backoff capped at 60 s) that emit
//! `health:probe` and never change the breaker.
//!
//! All waits and breaker timestamps go through a [`Clock`]; tests inject a
//! [`ManualClock`] (or use tokio's paused time with the default [`SystemClock`]).
//!
//! ```no_run
//! # async fn f(cx: ferry_core::Context, store: std::sync::Arc<dyn ferry_core::KvStore>) -> ferry_core::Result<()> {
//! use std::time::Duration;
//! use ferry_core::{Secret, VerbClass, ops::RateLimit};
//! use ferry_http::HttpClient;
//!
//! let http = HttpClient::builder("trakt", "trakt-main")
//!     .base_url("https://api.trakt.tv")
//!     .header("trakt-api-version", "2")
//!     .secret_header("trakt-api-key", &Secret::new("client-id"))
//!     .bearer(&Secret::new("access-token"))
//!     .rate_limits(&[
//!         RateLimit { class: VerbClass::Read, requests: 1000, per: Duration::from_secs(300) },
//!         RateLimit { class: VerbClass::Write, requests: 1, per: Duration::from_secs(1) },
//!     ])
//!     .store(store)
//!     .build()?;
//! let page = http
//!     .get("GET /sync/watchlist", "/sync/watchlist")
//!     .query("page", 1)
//!     .send(&cx)
//!     .await?;
//! let items: serde_json::Value = page.json()?;
//! let more = page.pagination().has_next();
//! # let _ = (items, more); Ok(()) }
//! ```

mod auth;
mod backoff;
mod breaker;
mod classify;
mod client;
mod clock;
pub mod health;
pub mod page;
mod probe;
mod ratelimit;
mod seams;

pub use auth::{
    AuthScheme, KvTokenStore, REFRESH_AHEAD, TOKENS_NAMESPACE, TokenRefresher, TokenSink, Tokens,
};
pub use backoff::RetryPolicy;
pub use breaker::{BREAKER_NAMESPACE, BreakerConfig, BreakerSnapshot, BreakerState};
pub use classify::{EXCERPT_MAX_CHARS, classify_status, parse_retry_after};
pub use client::{HttpClient, HttpClientBuilder, Pagination, RequestBuilder, Response, USER_AGENT};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use health::service_health;
pub use probe::{PROBE_TIMEOUT, ProbeSchedule, ProbeStats, run_health_probes};
pub use seams::Seams;

pub use reqwest::Method;
pub use reqwest::header;

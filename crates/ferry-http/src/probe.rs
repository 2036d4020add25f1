//! Active health probes while the breaker is OPEN (`docs/http.md`).
//!
//! Probes are informational: a passing probe says "recovery is possible" and nothing more.
//! The breaker still waits out its own timeout and closes only through a real HALF_OPEN
//! trial, so there is exactly one writer of breaker state.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use ferry_core::{Context, Result};
use serde_json::json;

use crate::breaker::BreakerState;
use crate::client::HttpClient;

/// The probe timeout (not the normal read timeout: probes must stay responsive).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Probe timings. The defaults are the seed's: 5 s timeout, first probe after 5 s, then
/// full-jitter backoff `uniform(0, min(60 s, 5 s·2^k))` after `k` consecutive failures,
/// back to 5 s after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSchedule {
    pub timeout: Duration,
    pub first_after: Duration,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for ProbeSchedule {
    fn default() -> Self {
        ProbeSchedule {
            timeout: PROBE_TIMEOUT,
            first_after: Duration::from_secs(5),
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
        }
    }
}

/// What a probe loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeStats {
    pub probes: u32,
    pub ok: u32,
    pub failed: u32,
}

/// Probes the service while `client`'s breaker is OPEN; returns when it no longer is
/// (its timeout passed: the next real request is the HALF_OPEN trial) or the run is
/// cancelled. Each probe emits `health:probe {provider, instance, ok, ms, next_in_ms}`.
///
/// `probe` is the provider's deep check (Plex `GET /identity`, Trakt
/// `GET /sync/last_activities`); requests in it should use [`crate::RequestBuilder::probe`]
/// so they bypass the open breaker. The daemon runs this as a task next to its work:
///
/// ```no_run
/// # async fn f(client: ferry_http::HttpClient, cx: ferry_core::Context) {
/// let c = client.clone();
/// let stats = ferry_http::run_health_probes(&client, &cx, Default::default(), || {
///     let (c, cx) = (c.clone(), cx.clone());
///     async move { c.get("GET /identity", "/identity").probe().send(&cx).await.map(|_| ()) }
/// })
/// .await;
/// # }
/// ```
pub async fn run_health_probes<F, Fut>(
    client: &HttpClient,
    cx: &Context,
    schedule: ProbeSchedule,
    mut probe: F,
) -> ProbeStats
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<()>> + Send,
{
    let mut stats = ProbeStats::default();
    let mut interval = schedule.first_after;
    let mut failures: u32 = 0;
    loop {
        if cx.cancel.is_cancelled() || client.breaker_state() != BreakerState::Open {
            return stats;
        }
        tokio::select! {
            _ = client.clock().sleep(interval) => {}
            _ = cx.cancel.cancelled() => return stats,
        }
        if client.breaker_state() != BreakerState::Open {
            return stats;
        }
        let started = Instant::now();
        let outcome = tokio::time::timeout(schedule.timeout, probe()).await;
        let ms = started.elapsed().as_millis() as u64;
        let ok = matches!(outcome, Ok(Ok(())));
        stats.probes += 1;
        if ok {
            stats.ok += 1;
            failures = 0;
            interval = schedule.first_after;
            tracing::info!(
                provider = client.provider(),
                instance = client.instance(),
                ms,
                "health probe passed; recovery possible"
            );
        } else {
            stats.failed += 1;
            failures += 1;
            interval = client.jitter(failures, schedule.base, schedule.cap);
            let why = match &outcome {
                Ok(Err(e)) => client.scrub(&e.to_string()),
                _ => format!("timed out after {}s", schedule.timeout.as_secs()),
            };
            tracing::debug!(
                provider = client.provider(),
                instance = client.instance(),
                attempt = failures,
                "health probe failed: {why}; next in {}ms",
                interval.as_millis()
            );
        }
        cx.emitter.emit(
            "health:probe",
            json!({
                "provider": client.provider(),
                "instance": client.instance(),
                "ok": ok,
                "ms": ms,
                "next_in_ms": interval.as_millis() as u64,
            }),
        );
    }
}

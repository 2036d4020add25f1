//! `InventoryOps::health` for an HTTP provider, written once: the breaker's verdict while
//! it is open, else one probe request's, with its latency and the rate-limit headers
//! last seen.

use std::future::Future;
use std::time::Instant;

use ferry_core::{Capabilities, Health, Result};

use crate::client::HttpClient;

/// The health `probe` (one request the provider chooses, sent with
/// [`crate::RequestBuilder::probe`]) shows: `ok` with every declared feature available,
/// or what its error means.
pub async fn service_health(
    http: &HttpClient,
    caps: &Capabilities,
    probe: impl Future<Output = Result<()>>,
) -> Health {
    if let Some(h) = http.breaker_health() {
        return h;
    }
    let started = Instant::now();
    let mut h = match probe.await {
        Ok(()) => Health::ok().with_features(caps, true),
        Err(e) => Health::from_error(&e),
    };
    h.latency_ms = Some(started.elapsed().as_millis() as u64);
    h.rate = http.rate_info();
    h
}

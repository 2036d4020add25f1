//! What the Plex test binaries share: a provider on the simulator with fast retries.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{KvStore, MemoryKvStore, Secret};
use ferry_http::RetryPolicy;
use ferry_testkit::sim::plex::PlexSim;
use plex::{PlexConfig, PlexOptions, PlexProvider};

/// Three attempts, millisecond backoff: failure paths stay fast.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// The config pointing at all three of the simulator's hosts.
pub(crate) fn config(sim: &PlexSim) -> PlexConfig {
    PlexConfig {
        base_url: sim.uri(),
        token: Some(Secret::new(sim.token())),
        discover_url: sim.discover_uri(),
        plex_tv_url: sim.plex_tv_uri(),
        libraries: None,
    }
}

/// A provider named `instance`, reading `page_size` rows per page, keeping its state in `kv`.
pub(crate) fn provider_on(
    sim: &PlexSim,
    instance: &str,
    page_size: usize,
    kv: Arc<dyn KvStore>,
) -> PlexProvider {
    PlexProvider::new(
        instance,
        config(sim),
        PlexOptions {
            page_size: Some(page_size),
            retry: fast_retry(),
            store: Some(kv),
            ..PlexOptions::default()
        },
    )
    .expect("build")
}

/// A provider named `instance` with default pages and a fresh in-memory store.
pub(crate) fn provider_named(sim: &PlexSim, instance: &str) -> PlexProvider {
    provider_on(
        sim,
        instance,
        plex::DEFAULT_PAGE_SIZE,
        Arc::new(MemoryKvStore::new()),
    )
}

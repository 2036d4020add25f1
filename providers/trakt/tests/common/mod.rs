//! Building a Trakt provider against the simulator.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use ferry_core::{BuildEnv, CollectingSink, Context, Emitter, KvStore, MemoryKvStore, Secret};
use ferry_http::{ManualClock, RetryPolicy};
use ferry_testkit::sim::trakt::TraktSim;
use trakt::{TraktConfig, TraktOptions, TraktProvider};

/// The configuration a user would write for the simulator's account.
pub fn config(sim: &TraktSim) -> TraktConfig {
    TraktConfig {
        client_id: Secret::new(sim.client_id()),
        client_secret: Some(Secret::new(sim.client_secret())),
        access_token: Some(Secret::new(sim.access_token())),
        refresh_token: Some(Secret::new(sim.refresh_token())),
        base_url: sim.uri(),
        page_limit: None,
    }
}

/// A provider on a manual clock (every wait is recorded, none is real).
pub struct Rig {
    pub provider: Arc<TraktProvider>,
    pub clock: Arc<ManualClock>,
    pub kv: Arc<dyn KvStore>,
}

pub fn rig_with(config: TraktConfig) -> Rig {
    rig_on(config, Arc::new(MemoryKvStore::new()), None)
}

/// A provider sharing a state store (tokens, breaker) with earlier ones.
pub fn rig_on(config: TraktConfig, kv: Arc<dyn KvStore>, retry: Option<RetryPolicy>) -> Rig {
    let clock = Arc::new(ManualClock::new(1_750_000_000));
    let env = BuildEnv::new(std::env::temp_dir(), kv.clone());
    let provider = TraktProvider::with_options(
        "trakt-test",
        config,
        &env,
        TraktOptions {
            clock: Some(clock.clone()),
            retry: retry.unwrap_or_default(),
            seed: Some(7),
            ..TraktOptions::default()
        },
    )
    .expect("provider builds");
    Rig {
        provider: Arc::new(provider),
        clock,
        kv,
    }
}

pub fn rig(sim: &TraktSim) -> Rig {
    rig_with(config(sim))
}

/// A simulator that does not enforce Trakt's rate limits in real time (the provider's
/// own limiter runs on the manual clock).
pub async fn sim() -> TraktSim {
    let sim = TraktSim::start().await;
    sim.enforce_rate_limits(false);
    sim
}

pub fn cx() -> Context {
    Context::default()
}

pub fn collecting() -> (Context, Arc<CollectingSink>) {
    let sink = CollectingSink::new();
    (
        Context::new(Emitter::to_sink(sink.clone()), Default::default()),
        sink,
    )
}

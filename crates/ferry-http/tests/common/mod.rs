//! Shared test rig: a manual clock, an event sink, an in-memory store.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{CancelToken, CollectingSink, Context, Emitter, KvStore, MemoryKvStore};
use ferry_http::{HttpClient, HttpClientBuilder, ManualClock, RetryPolicy};

/// 2023-11-14T22:13:20Z: a whole second, so HTTP dates line up exactly.
pub(crate) const START_UNIX: u64 = 1_700_000_000;

pub(crate) struct Rig {
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) sink: Arc<CollectingSink>,
    pub(crate) store: Arc<MemoryKvStore>,
    pub(crate) cx: Context,
}

impl Rig {
    pub(crate) fn new() -> Self {
        let sink = CollectingSink::new();
        Rig {
            clock: Arc::new(ManualClock::new(START_UNIX)),
            cx: Context::new(Emitter::to_sink(sink.clone()), CancelToken::new()),
            sink,
            store: Arc::new(MemoryKvStore::new()),
        }
    }

    /// A Trakt-like client on `base` with a manual clock, a fixed seed and the rig's store.
    pub(crate) fn builder(&self, base: &str) -> HttpClientBuilder {
        HttpClient::builder("trakt", "trakt-test")
            .base_url(base)
            .clock(self.clock.clone())
            .store(self.store.clone() as Arc<dyn KvStore>)
            .seed(42)
            .retry(RetryPolicy::default())
            .attempt_timeout(Duration::from_secs(10))
    }

    pub(crate) fn client(&self, base: &str) -> HttpClient {
        self.builder(base).build().unwrap()
    }

    pub(crate) fn count(&self, event: &str) -> usize {
        self.sink.named(event).len()
    }
}

/// A loopback port nothing listens on: bind, read the port, drop the listener.
pub(crate) fn refused_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

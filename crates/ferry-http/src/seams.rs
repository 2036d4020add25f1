//! The knobs of an HTTP provider that are not user configuration, written once: retries,
//! the clock, the state store, the jitter seed and the limits. Tests set them;
//! `ProviderKind::build` passes the state store.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{BuildEnv, KvStore, RateLimit};

use crate::backoff::RetryPolicy;
use crate::client::HttpClientBuilder;
use crate::clock::Clock;

/// A provider's test seams (its `…Options`).
#[derive(Debug, Clone, Default)]
pub struct Seams {
    pub retry: RetryPolicy,
    /// Waits and breaker timestamps (tests pass a `ManualClock`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Where the breaker record (and the provider's own state) lives.
    pub store: Option<Arc<dyn KvStore>>,
    /// Seeds the retry jitter.
    pub seed: Option<u64>,
    /// Replaces the provider's declared limits.
    pub rate_limits: Option<Vec<RateLimit>>,
    /// Rows per page a paged read asks for (the provider's default when `None`; tests
    /// use pages smaller than the library, so every read has a second page to attack).
    pub page_size: Option<usize>,
    /// How long one attempt may take before the client gives up on it (the client's
    /// default when `None`; tests that stall a simulator shorten it).
    pub attempt_timeout: Option<Duration>,
}

impl Seams {
    /// The seams of a provider the registry builds: the run's state store, every other
    /// knob at its default.
    pub fn from_env(env: &BuildEnv) -> Self {
        Seams {
            store: Some(env.kv.clone()),
            ..Seams::default()
        }
    }

    /// The page size: the seam's, else the provider's `default`.
    pub fn page_size_or(&self, default: usize) -> usize {
        self.page_size.unwrap_or(default).max(1)
    }
}

impl HttpClientBuilder {
    /// Applies `seams`; `declared` are the limits unless the seams replace them.
    pub fn seams(self, seams: &Seams, declared: &[RateLimit]) -> Self {
        let limits = seams.rate_limits.as_deref().unwrap_or(declared);
        let mut b = self.rate_limits(limits).retry(seams.retry);
        if let Some(s) = &seams.store {
            b = b.store(s.clone());
        }
        if let Some(c) = &seams.clock {
            b = b.clock(c.clone());
        }
        if let Some(seed) = seams.seed {
            b = b.seed(seed);
        }
        if let Some(t) = seams.attempt_timeout {
            b = b.attempt_timeout(t);
        }
        b
    }
}

//! Health gating (ferry's rules; `docs/engine.md`).
//!
//! | condition | effect |
//! |---|---|
//! | either side `auth_failed` | the pair is skipped (`pair:skip reason=auth_failed`) |
//! | `health.features[f] == false` or no read capability | `feature:unsupported` |
//! | one-way source `down` | feature skipped: no snapshot, no plan, no baseline change |
//! | target `down` | planned against its last baseline; its writes are recorded unresolved (`writes:skipped`) |
//! | two-way side `down` | that side proposes nothing, its writes are unresolved, deletions off for both sides |
//! | `unknown` health | may add; its absences never count as deletions |
//! | first usable run after `down`/`auth_failed` | add-only for that side: yields no deletions, receives no removals |
//! | `rate_limited` with a wait past the budget | writes deferred as unresolved (`rate_limited`) |

use ferry_core::{Context, Feature, Health, HealthStatus, InventoryOps};
use serde::{Deserialize, Serialize};

/// One provider instance's health for this run, with what it means for gating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceGate {
    pub instance: String,
    pub health: Health,
    /// The status recorded by the previous real run, if any.
    pub previous: Option<HealthStatus>,
    /// First usable run after `down` or `auth_failed`: add-only.
    pub recovering: bool,
    /// Set during the run when writes to this instance failed as unavailable: later
    /// features treat it as down.
    pub failed_this_run: bool,
}

impl InstanceGate {
    pub fn new(
        instance: impl Into<String>,
        health: Health,
        previous: Option<HealthStatus>,
    ) -> Self {
        let recovering = is_recovering(previous, health.status);
        InstanceGate {
            instance: instance.into(),
            health,
            previous,
            recovering,
            failed_this_run: false,
        }
    }

    pub fn status(&self) -> HealthStatus {
        self.health.status
    }

    pub fn auth_failed(&self) -> bool {
        self.health.status == HealthStatus::AuthFailed
    }

    /// Not readable or writable this run.
    pub fn down(&self) -> bool {
        !self.health.status.is_usable() || self.failed_this_run
    }

    /// Whether this instance's absences may count as deletions, as far as health goes.
    pub fn trusted_for_deletions(&self) -> bool {
        self.healthy() && !self.recovering
    }

    /// Known healthy this run (an add-only, recovering run included): what it reads
    /// is what it holds.
    pub fn healthy(&self) -> bool {
        matches!(
            self.health.status,
            HealthStatus::Ok | HealthStatus::Degraded | HealthStatus::RateLimited
        ) && !self.failed_this_run
    }

    pub fn feature_available(&self, f: Feature) -> bool {
        self.health.feature_available(f)
    }

    /// Seconds to wait before writing, when rate limited.
    pub fn rate_limit_wait(&self) -> Option<u64> {
        (self.health.status == HealthStatus::RateLimited)
            .then(|| self.health.retry_after_secs.unwrap_or(0))
    }
}

/// Asks `provider` for its health, again while it answers `down` and the budget lasts
/// (first retry after 250 ms, then doubling): a blip is not an outage. `auth_failed`
/// and every usable status are final at once. Returns the last answer and the number of
/// probes made.
pub async fn probe(
    provider: &dyn InventoryOps,
    cx: &Context,
    budget: std::time::Duration,
) -> (Health, u32) {
    let started = tokio::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(250);
    let mut probes = 0;
    loop {
        probes += 1;
        let h = provider.health(cx).await;
        if h.status != HealthStatus::Down || cx.cancel.is_cancelled() {
            return (h, probes);
        }
        if started.elapsed() + delay > budget {
            return (h, probes);
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

/// ferry's rule: the first usable run after `down` or `auth_failed` is add-only.
pub fn is_recovering(previous: Option<HealthStatus>, now: HealthStatus) -> bool {
    matches!(
        previous,
        Some(HealthStatus::Down | HealthStatus::AuthFailed)
    ) && now.is_usable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_the_first_usable_run_after_an_outage() {
        use HealthStatus::*;
        assert!(is_recovering(Some(AuthFailed), Ok));
        assert!(is_recovering(Some(Down), Degraded));
        assert!(is_recovering(Some(Down), Unknown));
        assert!(!is_recovering(Some(Down), Down));
        assert!(!is_recovering(Some(Ok), Ok));
        assert!(!is_recovering(None, Ok));
    }

    #[test]
    fn unknown_and_recovering_health_never_yield_deletions() {
        let g = InstanceGate::new("x", Health::unknown(), None);
        assert!(!g.trusted_for_deletions() && !g.down());
        let g = InstanceGate::new("x", Health::ok(), Some(HealthStatus::AuthFailed));
        assert!(g.recovering && !g.trusted_for_deletions());
        let g = InstanceGate::new("x", Health::ok(), Some(HealthStatus::Ok));
        assert!(g.trusted_for_deletions());
        let g = InstanceGate::new("x", Health::down("boom"), None);
        assert!(g.down() && !g.trusted_for_deletions());
    }
}

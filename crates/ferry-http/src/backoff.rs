//! Full-jitter exponential backoff and the retry policy.

use std::time::Duration;

/// How a request is retried. Only temporary errors are retried, and writes only when the
/// request is marked idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The backoff base: retry `n` (0-based) waits `uniform(0, min(cap, base·2^n))`.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
    /// The total time one call may spend waiting and retrying. A wait that would end past
    /// the budget (a long `Retry-After`, say) is not taken: the call gives up at once with
    /// the error marked persistent.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            budget: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.base = base;
        self.cap = cap;
        self
    }
}

/// The ceiling `min(cap, base·2^n)`, saturating.
pub(crate) fn ceiling(n: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// Full jitter: `uniform(0, min(cap, base·2^n))`.
pub(crate) fn full_jitter(
    rng: &mut fastrand::Rng,
    n: u32,
    base: Duration,
    cap: Duration,
) -> Duration {
    ceiling(n, base, cap).mul_f64(rng.f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_then_cap() {
        let (b, c) = (Duration::from_secs(5), Duration::from_secs(60));
        let got: Vec<u64> = (0..6).map(|n| ceiling(n, b, c).as_secs()).collect();
        assert_eq!(got, [5, 10, 20, 40, 60, 60]);
        assert_eq!(ceiling(200, b, c), c);
        assert_eq!(ceiling(40, Duration::from_secs(u64::MAX / 2), c), c);
    }

    #[test]
    fn jitter_stays_in_range_and_is_seed_deterministic() {
        let (b, c) = (Duration::from_secs(5), Duration::from_secs(60));
        let mut r1 = fastrand::Rng::with_seed(7);
        let mut r2 = fastrand::Rng::with_seed(7);
        for n in 0..10 {
            let d1 = full_jitter(&mut r1, n, b, c);
            let d2 = full_jitter(&mut r2, n, b, c);
            assert_eq!(d1, d2);
            assert!(d1 <= ceiling(n, b, c), "{n}: {d1:?}");
        }
        let spread: Vec<Duration> = (0..50).map(|_| full_jitter(&mut r1, 3, b, c)).collect();
        assert!(spread.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(spread.iter().any(|d| *d > Duration::from_secs(30)));
    }
}

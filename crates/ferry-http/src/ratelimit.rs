//! A client-side rate limiter per provider instance and [`VerbClass`]: GCRA (a token
//! bucket in "theoretical arrival time" form) for the published limits, plus pauses the
//! server asks for (`Retry-After`, an exhausted `X-RateLimit-Remaining`).
//!
//! A published limit of `N` requests per `W` gets a burst of `B = max(1, N/10)` and an
//! emission interval `T = W / (N − B + 1)`, so that no window of length `W` ever holds more
//! than `N` requests (a burst of `B` plus one request per `T`). Trakt's 1 write per second
//! becomes strict one-second spacing; its 1000 GETs per 300 s become a burst of 100, then one
//! GET every 333 ms.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::ops::{RateLimit, VerbClass};
use ferry_core::{CancelToken, Error, Result};

use crate::clock::Clock;

#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next request, on the clock's monotonic scale.
    tat: Duration,
}

impl Gcra {
    fn new(limit: &RateLimit) -> Option<Self> {
        if limit.requests == 0 || limit.per.is_zero() {
            return None;
        }
        let burst = (limit.requests / 10).max(1);
        let interval = limit.per / (limit.requests - burst + 1);
        Some(Gcra {
            interval,
            tolerance: interval * (burst - 1),
            tat: Duration::ZERO,
        })
    }

    fn allow_at(&self, now: Duration) -> Duration {
        self.tat.max(now).saturating_sub(self.tolerance)
    }
}

#[derive(Debug, Default)]
struct ClassState {
    limits: Vec<Gcra>,
    paused_until: Option<Duration>,
}

/// Per-class limiter state. Cheap to share; all waits go through the clock.
pub(crate) struct RateLimiter {
    clock: Arc<dyn Clock>,
    read: Mutex<ClassState>,
    write: Mutex<ClassState>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |m: &Mutex<ClassState>| m.lock().map(|s| s.limits.len()).unwrap_or(0);
        f.debug_struct("RateLimiter")
            .field("read_limits", &n(&self.read))
            .field("write_limits", &n(&self.write))
            .finish()
    }
}

impl RateLimiter {
    pub(crate) fn new(clock: Arc<dyn Clock>, limits: &[RateLimit]) -> Self {
        let mut read = ClassState::default();
        let mut write = ClassState::default();
        for l in limits {
            if let Some(g) = Gcra::new(l) {
                match l.class {
                    VerbClass::Read => read.limits.push(g),
                    VerbClass::Write => write.limits.push(g),
                }
            }
        }
        RateLimiter {
            clock,
            read: Mutex::new(read),
            write: Mutex::new(write),
        }
    }

    fn with_class<R>(&self, class: VerbClass, f: impl FnOnce(&mut ClassState) -> R) -> R {
        let m = match class {
            VerbClass::Read => &self.read,
            VerbClass::Write => &self.write,
        };
        let mut guard = m.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Holds every request of `class` back for at least `d` from now (server-driven).
    pub(crate) fn pause(&self, class: VerbClass, d: Duration) {
        let until = self.clock.monotonic() + d;
        self.with_class(class, |s| {
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        });
    }

    /// How long the server-driven pause for `class` still lasts.
    pub(crate) fn pause_remaining(&self, class: VerbClass) -> Option<Duration> {
        let now = self.clock.monotonic();
        self.with_class(class, |s| s.paused_until)
            .filter(|u| *u > now)
            .map(|u| u - now)
    }

    /// Reserves the next slot for `class` and returns how long to wait for it.
    pub(crate) fn reserve(&self, class: VerbClass) -> Duration {
        let now = self.clock.monotonic();
        self.with_class(class, |s| {
            let mut at = now;
            if let Some(p) = s.paused_until {
                at = at.max(p);
            }
            for g in &s.limits {
                at = at.max(g.allow_at(now));
            }
            for g in &mut s.limits {
                g.tat = g.tat.max(at) + g.interval;
            }
            at - now
        })
    }

    /// Waits for a slot of `class`; returns `Cancelled` if the run is cancelled meanwhile.
    pub(crate) async fn acquire(&self, class: VerbClass, cancel: &CancelToken) -> Result<()> {
        let wait = self.reserve(class);
        if wait.is_zero() {
            return Ok(());
        }
        tracing::debug!(
            ?class,
            wait_ms = wait.as_millis() as u64,
            "rate limiter wait"
        );
        tokio::select! {
            _ = self.clock.sleep(wait) => Ok(()),
            _ = cancel.cancelled() => Err(Error::cancelled()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use tokio::time::Instant;

    fn trakt() -> Vec<RateLimit> {
        vec![
            RateLimit {
                class: VerbClass::Read,
                requests: 1000,
                per: Duration::from_secs(300),
            },
            RateLimit {
                class: VerbClass::Write,
                requests: 1,
                per: Duration::from_secs(1),
            },
        ]
    }

    fn limiter() -> Arc<RateLimiter> {
        Arc::new(RateLimiter::new(Arc::new(SystemClock::new()), &trakt()))
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_spaced_one_second_apart() {
        let rl = limiter();
        let cancel = CancelToken::new();
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            rl.acquire(VerbClass::Write, &cancel).await.unwrap();
            at.push(Instant::now() - t0);
        }
        let secs: Vec<u64> = at.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 3, 4]);
        assert!(at.iter().all(|d| d.subsec_nanos() == 0), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reads_burst_then_pace_and_never_exceed_the_window() {
        let rl = limiter();
        let cancel = CancelToken::new();
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..1200 {
            rl.acquire(VerbClass::Read, &cancel).await.unwrap();
            at.push(Instant::now() - t0);
        }
        // The burst of 100 goes out at once, the 101st waits one interval (300 s / 901;
        // tokio timers round up to the millisecond).
        assert!(at[..100].iter().all(|d| d.is_zero()));
        let interval = Duration::from_secs(300) / 901;
        assert!(at[100] >= interval && at[100] - interval < Duration::from_millis(1));
        // Sliding-window check: never more than 1000 requests in any 300 s.
        let window = Duration::from_secs(300);
        let mut lo = 0;
        for hi in 0..at.len() {
            while at[hi] - at[lo] >= window {
                lo += 1;
            }
            assert!(hi - lo < 1000, "{} requests in one window", hi - lo + 1);
        }
        // Reads never waited on writes.
        let before = Instant::now();
        rl.acquire(VerbClass::Write, &cancel).await.unwrap();
        assert_eq!(Instant::now(), before);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_writers_queue_behind_each_other() {
        let rl = limiter();
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let rl = rl.clone();
            set.spawn(async move {
                rl.acquire(VerbClass::Write, &CancelToken::new())
                    .await
                    .unwrap();
                (Instant::now() - t0).as_secs()
            });
        }
        let mut got = set.join_all().await;
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn server_pauses_hold_back_only_their_class() {
        let rl = limiter();
        let cancel = CancelToken::new();
        let t0 = Instant::now();
        rl.pause(VerbClass::Read, Duration::from_secs(30));
        assert_eq!(
            rl.pause_remaining(VerbClass::Read),
            Some(Duration::from_secs(30))
        );
        assert_eq!(rl.pause_remaining(VerbClass::Write), None);
        rl.acquire(VerbClass::Write, &cancel).await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::ZERO);
        rl.acquire(VerbClass::Read, &cancel).await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::from_secs(30));
        assert_eq!(rl.pause_remaining(VerbClass::Read), None);
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_classes_never_wait_and_cancel_interrupts_a_wait() {
        let rl = Arc::new(RateLimiter::new(Arc::new(SystemClock::new()), &[]));
        let cancel = CancelToken::new();
        for _ in 0..100 {
            assert!(rl.reserve(VerbClass::Read).is_zero());
        }
        rl.pause(VerbClass::Read, Duration::from_secs(600));
        let c2 = cancel.clone();
        let rl2 = rl.clone();
        let h = tokio::spawn(async move { rl2.acquire(VerbClass::Read, &c2).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
        let err = h.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ferry_core::ErrorKind::Cancelled);
    }
}

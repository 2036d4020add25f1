//! Time, injectable: every wait and every timestamp in this crate goes through a [`Clock`],
//! so tests decide how time passes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A boxed `sleep` future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The time source for scheduling (backoff, rate limiting, probe intervals) and for the
/// circuit breaker's persisted timestamps.
///
/// Per-attempt network timeouts are *not* driven by the clock: they are real tokio timers
/// inside reqwest, because they bound real sockets.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic time since an arbitrary origin; only differences are meaningful.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time in milliseconds since the Unix epoch (breaker records, HTTP dates).
    fn unix_ms(&self) -> u64;
    /// Waits for `d`.
    fn sleep(&self, d: Duration) -> Sleep;
}

/// The production clock: tokio's monotonic time (so `tokio::time::pause()` controls it) and
/// the system wall clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that only moves when told to, for tests. `sleep` returns at once after advancing
/// the clock by the requested duration and recording it, so a test can assert the exact
/// waits a client chose without waiting for them.
#[derive(Debug)]
pub struct ManualClock {
    elapsed_ms: AtomicU64,
    start_unix_ms: u64,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    /// A clock whose wall time starts at `start_unix_secs`.
    pub fn new(start_unix_secs: u64) -> Self {
        ManualClock {
            elapsed_ms: AtomicU64::new(0),
            start_unix_ms: start_unix_secs * 1000,
            sleeps: Mutex::new(Vec::new()),
        }
    }

    /// Moves time forward without recording a sleep.
    pub fn advance(&self, d: Duration) {
        self.elapsed_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every duration passed to [`Clock::sleep`] so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Forgets the recorded sleeps.
    pub fn clear_sleeps(&self) {
        if let Ok(mut s) = self.sleeps.lock() {
            s.clear();
        }
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms.load(Ordering::SeqCst))
    }

    fn unix_ms(&self) -> u64 {
        self.start_unix_ms + self.elapsed_ms.load(Ordering::SeqCst)
    }

    fn sleep(&self, d: Duration) -> Sleep {
        if let Ok(mut s) = self.sleeps.lock() {
            s.push(d);
        }
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_records_and_advances() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.unix_ms(), 1_000_000);
        c.sleep(Duration::from_millis(1500)).await;
        c.advance(Duration::from_secs(1));
        assert_eq!(c.monotonic(), Duration::from_millis(2500));
        assert_eq!(c.unix_ms(), 1_002_500);
        assert_eq!(c.sleeps(), vec![Duration::from_millis(1500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn system_clock_follows_paused_tokio_time() {
        let c = SystemClock::new();
        c.sleep(Duration::from_secs(30)).await;
        assert_eq!(c.monotonic(), Duration::from_secs(30));
    }
}

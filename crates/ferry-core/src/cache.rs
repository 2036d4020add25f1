//! The last read of a list, kept for the writes that follow it.
//!
//! The engine reads a feature, then writes it in batches of the declared batch size. A
//! provider that re-read the list before (or after) every batch would cost a list read
//! per batch: quadratic in the library on a first sync. Instead the read is kept here,
//! writes plan against it and update it with what they confirmed, and it is read again
//! once it is older than its time to live (so a change made on the service by someone
//! else is seen within that window; the engine also reads a feature whose checkpoint
//! moved before writing to it, which refreshes the copy).

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One list's last read and when it was made.
#[derive(Debug)]
pub struct ListCache<T> {
    ttl: Duration,
    slot: Mutex<Option<(Instant, T)>>,
}

impl<T> ListCache<T> {
    pub fn new(ttl: Duration) -> Self {
        ListCache {
            ttl,
            slot: Mutex::new(None),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<(Instant, T)>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a read made now.
    pub fn store(&self, value: T) {
        self.store_at(Instant::now(), value);
    }

    /// Keeps a read that started at `at` (its age counts from when the service was
    /// asked, not from when the last page came in).
    pub fn store_at(&self, at: Instant, value: T) {
        *self.slot() = Some((at, value));
    }

    /// Takes the copy out if it is younger than the time to live (a write holds it while
    /// it runs and puts it back with [`ListCache::put_back`]).
    pub fn take_fresh(&self) -> Option<(Instant, T)> {
        match self.slot().take() {
            Some((at, v)) if at.elapsed() < self.ttl => Some((at, v)),
            _ => None,
        }
    }

    /// Puts back a copy read at `at`, unless a newer read replaced it meanwhile.
    pub fn put_back(&self, at: Instant, value: T) {
        let mut slot = self.slot();
        if slot.as_ref().is_none_or(|(t, _)| *t < at) {
            *slot = Some((at, value));
        }
    }

    /// Forgets the copy (the next write reads the list again).
    pub fn clear(&self) {
        *self.slot() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_taken_while_fresh_and_a_newer_read_wins_over_a_put_back() {
        let c = ListCache::new(Duration::from_secs(60));
        assert!(c.take_fresh().is_none());
        c.store(1);
        let (at, v) = c.take_fresh().unwrap();
        assert_eq!(v, 1);
        assert!(c.take_fresh().is_none(), "taken out while a write holds it");
        c.store(2);
        c.put_back(at, 1);
        assert_eq!(c.take_fresh().map(|(_, v)| v), Some(2));
        let stale = ListCache::new(Duration::ZERO);
        stale.store(3);
        assert!(stale.take_fresh().is_none());
    }
}

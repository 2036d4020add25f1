//! The circuit breaker per provider instance (`docs/http.md`).
//!
//! CLOSED → OPEN after `failure_threshold` consecutive counted failures (only
//! [`ErrorKind::Unavailable`]: timeouts, 5xx, connect errors). OPEN → HALF_OPEN lazily, on
//! the first look after `open_for`. In HALF_OPEN exactly one trial call runs at a time; its
//! success closes the breaker, its failure reopens it. Any answer from the server that is
//! not a counted failure (a 404, a 401, a 429...) proves the service is up and counts as a
//! success; local outcomes (cancellation, a request we could not build) count as nothing.
//!
//! The state is persisted through [`KvStore`] as JSON under namespace [`BREAKER_NAMESPACE`],
//! key = instance, on every change, so a restarted process keeps an open breaker open. A
//! corrupt record (bad JSON, a missing key, an unknown state) reads as CLOSED with a warning.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::{Emitter, ErrorKind, KvStore, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::Clock;

/// The [`KvStore`] namespace breaker records live in.
pub const BREAKER_NAMESPACE: &str = "breaker";

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Breaker thresholds. The defaults: 5 failures, 60 s open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(60),
        }
    }
}

/// A read-only view of the breaker for health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// The effective state: an OPEN breaker whose `open_for` has passed reads HALF_OPEN.
    pub state: BreakerState,
    /// Consecutive counted failures so far (CLOSED), or at the time it opened.
    pub failures: u32,
    /// When the breaker last opened (wall clock), while it is not CLOSED.
    pub opened_at: Option<Timestamp>,
    /// How long it has been open, while it is not CLOSED.
    pub open_for: Option<Duration>,
    /// How long until a trial call is allowed, while OPEN.
    pub retry_in: Option<Duration>,
}

/// The persisted record. Every field is required: a missing key is a corrupt record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    state: BreakerState,
    failures: u32,
    opened_at_ms: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    rec: Record,
    /// Bumped on every state change; permits from an older epoch are ignored.
    epoch: u64,
    trial_in_flight: bool,
}

/// What one call's result means to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Neutral,
}

impl Verdict {
    /// `answered`: whether the service sent an HTTP response on the last attempt. An error
    /// that is not a counted failure proves the service is up only if it answered; one
    /// raised locally (a pause longer than the budget, a cancelled wait) proves nothing.
    pub(crate) fn of(result: Result<(), ErrorKind>, answered: bool) -> Self {
        match result {
            Ok(()) => Verdict::Success,
            Err(k) if k.counts_for_breaker() => Verdict::Failure,
            Err(ErrorKind::Cancelled | ErrorKind::Unexpected | ErrorKind::Unsupported) => {
                Verdict::Neutral
            }
            Err(_) if answered => Verdict::Success,
            Err(_) => Verdict::Neutral,
        }
    }
}

pub(crate) struct CircuitBreaker {
    provider: String,
    instance: String,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    store: Arc<dyn KvStore>,
    inner: Mutex<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("instance", &self.instance)
            .field("config", &self.config)
            .field("state", &self.snapshot().state)
            .finish()
    }
}

/// Permission to make one call; report its outcome with [`Permit::record`]. Dropping a
/// permit unrecorded (a cancelled call) releases a HALF_OPEN trial slot and changes nothing.
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    epoch: u64,
    trial: bool,
    done: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("epoch", &self.epoch)
            .field("trial", &self.trial)
            .finish()
    }
}

impl Permit<'_> {
    pub(crate) fn record(mut self, verdict: Verdict, emitter: &Emitter) {
        self.done = true;
        self.breaker
            .record(self.epoch, self.trial, verdict, emitter);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.trial {
            let mut g = self.breaker.lock();
            if g.epoch == self.epoch {
                g.trial_in_flight = false;
            }
        }
    }
}

/// Why a call was refused without touching the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refused {
    pub(crate) state: BreakerState,
    pub(crate) retry_in: Duration,
}

impl CircuitBreaker {
    /// Loads the persisted record (or starts CLOSED).
    pub(crate) fn load(
        provider: &str,
        instance: &str,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
        store: Arc<dyn KvStore>,
    ) -> Self {
        let closed = Record {
            state: BreakerState::Closed,
            failures: 0,
            opened_at_ms: None,
        };
        let rec = match store.get(BREAKER_NAMESPACE, instance) {
            Ok(None) => {
                tracing::debug!(instance, "no circuit breaker record; starting closed");
                closed
            }
            Ok(Some(text)) => match serde_json::from_str::<Record>(&text) {
                Ok(r) if r.state != BreakerState::Closed && r.opened_at_ms.is_none() => {
                    tracing::warn!(
                        instance,
                        "circuit breaker record is {} without opened_at; treating it as closed",
                        r.state
                    );
                    closed
                }
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(
                        instance,
                        "circuit breaker record is corrupt ({e}); treating it as closed"
                    );
                    closed
                }
            },
            Err(e) => {
                tracing::warn!(
                    instance,
                    "circuit breaker record could not be read ({e}); treating it as closed"
                );
                closed
            }
        };
        CircuitBreaker {
            provider: provider.to_owned(),
            instance: instance.to_owned(),
            config,
            clock,
            store,
            inner: Mutex::new(Inner {
                rec,
                epoch: 0,
                trial_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, rec: &Record) {
        let text = match serde_json::to_string(rec) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(instance = %self.instance, "circuit breaker record not serializable: {e}");
                return;
            }
        };
        if let Err(e) = self.store.put(BREAKER_NAMESPACE, &self.instance, &text) {
            tracing::warn!(instance = %self.instance, "circuit breaker record not saved: {e}");
        }
    }

    fn open_elapsed(&self, rec: &Record) -> Duration {
        let opened = rec.opened_at_ms.unwrap_or(0);
        Duration::from_millis(self.clock.unix_ms().saturating_sub(opened))
    }

    fn base_fields(&self, rec: &Record) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("provider".into(), json!(self.provider));
        m.insert("instance".into(), json!(self.instance));
        m.insert("failures".into(), json!(rec.failures));
        if let Some(ms) = rec.opened_at_ms {
            m.insert(
                "opened_at".into(),
                json!(Timestamp::from_unix((ms / 1000) as i64).to_rfc3339()),
            );
        }
        m
    }

    /// Moves OPEN to HALF_OPEN once `open_for` has passed. Returns the event to emit.
    fn maybe_half_open(&self, g: &mut Inner) -> Option<serde_json::Value> {
        if g.rec.state != BreakerState::Open {
            return None;
        }
        let elapsed = self.open_elapsed(&g.rec);
        if elapsed < self.config.open_for {
            return None;
        }
        g.rec.state = BreakerState::HalfOpen;
        g.epoch += 1;
        g.trial_in_flight = false;
        self.persist(&g.rec);
        let mut f = self.base_fields(&g.rec);
        f.insert("open_ms".into(), json!(elapsed.as_millis() as u64));
        Some(serde_json::Value::Object(f))
    }

    /// Asks to make a call: `Err` while OPEN (or while a HALF_OPEN trial is in flight).
    pub(crate) fn acquire(&self, emitter: &Emitter) -> Result<Permit<'_>, Refused> {
        let (result, event) = {
            let mut g = self.lock();
            let event = self.maybe_half_open(&mut g);
            let result = match g.rec.state {
                BreakerState::Closed => Ok((g.epoch, false)),
                BreakerState::HalfOpen if !g.trial_in_flight => {
                    g.trial_in_flight = true;
                    Ok((g.epoch, true))
                }
                BreakerState::HalfOpen => Err(Refused {
                    state: BreakerState::HalfOpen,
                    retry_in: Duration::ZERO,
                }),
                BreakerState::Open => Err(Refused {
                    state: BreakerState::Open,
                    retry_in: self
                        .config
                        .open_for
                        .saturating_sub(self.open_elapsed(&g.rec)),
                }),
            };
            (result, event)
        };
        if let Some(e) = event {
            emitter.emit("breaker:half_open", e);
        }
        result.map(|(epoch, trial)| Permit {
            breaker: self,
            epoch,
            trial,
            done: false,
        })
    }

    fn record(&self, epoch: u64, trial: bool, verdict: Verdict, emitter: &Emitter) {
        let event = {
            let mut g = self.lock();
            if g.epoch != epoch {
                // The breaker moved on while this call ran; its outcome is stale.
                return;
            }
            if trial {
                g.trial_in_flight = false;
            }
            match (g.rec.state, verdict) {
                (_, Verdict::Neutral) => None,
                (BreakerState::Closed, Verdict::Success) => {
                    if g.rec.failures > 0 {
                        g.rec.failures = 0;
                        self.persist(&g.rec);
                    }
                    None
                }
                (BreakerState::Closed, Verdict::Failure) => {
                    g.rec.failures += 1;
                    if g.rec.failures >= self.config.failure_threshold {
                        Some(self.open(&mut g, BreakerState::Closed))
                    } else {
                        self.persist(&g.rec);
                        None
                    }
                }
                (BreakerState::HalfOpen, Verdict::Success) if trial => {
                    let open_ms = self.open_elapsed(&g.rec).as_millis() as u64;
                    let mut f = self.base_fields(&g.rec);
                    f.insert("open_ms".into(), json!(open_ms));
                    g.rec = Record {
                        state: BreakerState::Closed,
                        failures: 0,
                        opened_at_ms: None,
                    };
                    g.epoch += 1;
                    self.persist(&g.rec);
                    Some(("breaker:closed", serde_json::Value::Object(f)))
                }
                (BreakerState::HalfOpen, Verdict::Failure) if trial => {
                    Some(self.open(&mut g, BreakerState::HalfOpen))
                }
                _ => None,
            }
        };
        if let Some((name, fields)) = event {
            if name == "breaker:open" {
                tracing::warn!(provider = %self.provider, instance = %self.instance, "circuit breaker opened");
            } else {
                tracing::info!(provider = %self.provider, instance = %self.instance, "circuit breaker closed");
            }
            emitter.emit(name, fields);
        }
    }

    fn open(&self, g: &mut Inner, from: BreakerState) -> (&'static str, serde_json::Value) {
        if from == BreakerState::HalfOpen {
            g.rec.failures += 1;
        }
        g.rec.state = BreakerState::Open;
        g.rec.opened_at_ms = Some(self.clock.unix_ms());
        g.epoch += 1;
        g.trial_in_flight = false;
        self.persist(&g.rec);
        let mut f = self.base_fields(&g.rec);
        f.insert("from".into(), json!(from.as_str()));
        f.insert(
            "retry_in_ms".into(),
            json!(self.config.open_for.as_millis() as u64),
        );
        ("breaker:open", serde_json::Value::Object(f))
    }

    /// The effective state without side effects.
    pub(crate) fn snapshot(&self) -> BreakerSnapshot {
        let g = self.lock();
        let rec = g.rec;
        drop(g);
        if rec.state == BreakerState::Closed {
            return BreakerSnapshot {
                state: BreakerState::Closed,
                failures: rec.failures,
                opened_at: None,
                open_for: None,
                retry_in: None,
            };
        }
        let elapsed = self.open_elapsed(&rec);
        let state = if rec.state == BreakerState::Open && elapsed >= self.config.open_for {
            BreakerState::HalfOpen
        } else {
            rec.state
        };
        BreakerSnapshot {
            state,
            failures: rec.failures,
            opened_at: rec
                .opened_at_ms
                .map(|ms| Timestamp::from_unix((ms / 1000) as i64)),
            open_for: Some(elapsed),
            retry_in: (state == BreakerState::Open)
                .then(|| self.config.open_for.saturating_sub(elapsed)),
        }
    }

    /// Forces CLOSED (the `ferry health --reset` escape hatch).
    pub(crate) fn reset(&self, emitter: &Emitter) {
        let fields = {
            let mut g = self.lock();
            if g.rec.state == BreakerState::Closed && g.rec.failures == 0 {
                return;
            }
            let was_closed = g.rec.state == BreakerState::Closed;
            let f = self.base_fields(&g.rec);
            g.rec = Record {
                state: BreakerState::Closed,
                failures: 0,
                opened_at_ms: None,
            };
            g.epoch += 1;
            g.trial_in_flight = false;
            self.persist(&g.rec);
            (!was_closed).then_some(f)
        };
        if let Some(mut f) = fields {
            f.insert("reset".into(), json!(true));
            emitter.emit("breaker:closed", serde_json::Value::Object(f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use ferry_core::{CollectingSink, MemoryKvStore};

    struct Rig {
        clock: Arc<ManualClock>,
        store: Arc<MemoryKvStore>,
        sink: Arc<CollectingSink>,
        em: Emitter,
    }

    impl Rig {
        fn new() -> Self {
            let sink = CollectingSink::new();
            Rig {
                clock: Arc::new(ManualClock::new(1_700_000_000)),
                store: Arc::new(MemoryKvStore::new()),
                em: Emitter::to_sink(sink.clone()),
                sink,
            }
        }
        fn breaker(&self) -> CircuitBreaker {
            CircuitBreaker::load(
                "trakt",
                "trakt-main",
                BreakerConfig::default(),
                self.clock.clone(),
                self.store.clone(),
            )
        }
        fn call(&self, b: &CircuitBreaker, v: Verdict) -> bool {
            match b.acquire(&self.em) {
                Ok(p) => {
                    p.record(v, &self.em);
                    true
                }
                Err(_) => false,
            }
        }
    }

    #[test]
    fn verdicts_follow_error_kinds() {
        use ErrorKind as K;
        assert_eq!(Verdict::of(Ok(()), true), Verdict::Success);
        assert_eq!(Verdict::of(Err(K::Unavailable), true), Verdict::Failure);
        assert_eq!(Verdict::of(Err(K::Unavailable), false), Verdict::Failure);
        for k in [
            K::NotFound,
            K::InvalidInput,
            K::AccountLimit,
            K::Auth,
            K::RateLimited,
        ] {
            assert_eq!(Verdict::of(Err(k), true), Verdict::Success, "{k}");
            assert_eq!(Verdict::of(Err(k), false), Verdict::Neutral, "{k}");
        }
        assert_eq!(Verdict::of(Err(K::Cancelled), true), Verdict::Neutral);
    }

    #[test]
    fn opens_after_five_consecutive_failures_only() {
        let r = Rig::new();
        let b = r.breaker();
        for _ in 0..4 {
            assert!(r.call(&b, Verdict::Failure));
        }
        assert!(r.call(&b, Verdict::Success)); // resets the streak
        for _ in 0..4 {
            assert!(r.call(&b, Verdict::Failure));
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        assert_eq!(b.snapshot().failures, 4);
        assert!(r.call(&b, Verdict::Failure));
        let s = b.snapshot();
        assert_eq!(s.state, BreakerState::Open);
        assert_eq!(s.retry_in, Some(Duration::from_secs(60)));
        assert!(!r.call(&b, Verdict::Success), "open refuses calls");
        assert_eq!(r.sink.names(), ["breaker:open"]);
        let ev = &r.sink.named("breaker:open")[0];
        assert_eq!(ev.u64("failures"), Some(5));
        assert_eq!(ev.str("instance"), Some("trakt-main"));
        assert_eq!(ev.str("opened_at"), Some("2023-11-14T22:13:20Z"));
    }

    #[test]
    fn half_open_admits_one_trial_at_a_time() {
        let r = Rig::new();
        let b = r.breaker();
        for _ in 0..5 {
            r.call(&b, Verdict::Failure);
        }
        r.clock.advance(Duration::from_secs(59));
        assert!(b.acquire(&r.em).is_err());
        r.clock.advance(Duration::from_secs(1));
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        let trial = b.acquire(&r.em).unwrap();
        let second = b.acquire(&r.em);
        assert!(second.is_err(), "only one trial in half-open");
        drop(trial); // a cancelled trial frees the slot without a verdict
        let trial = b.acquire(&r.em).unwrap();
        trial.record(Verdict::Success, &r.em);
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        assert_eq!(
            r.sink.names(),
            ["breaker:open", "breaker:half_open", "breaker:closed"]
        );
        assert_eq!(
            r.sink.named("breaker:closed")[0].u64("open_ms"),
            Some(60_000)
        );
    }

    #[test]
    fn stale_outcomes_from_before_a_transition_are_ignored() {
        let r = Rig::new();
        let b = r.breaker();
        let slow = b.acquire(&r.em).unwrap(); // started while closed
        for _ in 0..5 {
            r.call(&b, Verdict::Failure);
        }
        slow.record(Verdict::Success, &r.em); // lands while open: ignored
        assert_eq!(b.snapshot().state, BreakerState::Open);
    }

    #[test]
    fn records_persist_and_corrupt_ones_read_closed() {
        let r = Rig::new();
        let b = r.breaker();
        for _ in 0..5 {
            r.call(&b, Verdict::Failure);
        }
        let text = r
            .store
            .get(BREAKER_NAMESPACE, "trakt-main")
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["state"], "open");
        assert_eq!(v["failures"], 5);
        assert_eq!(r.breaker().snapshot().state, BreakerState::Open);

        for bad in [
            "not json",
            r#"{"state":"open","failures":5}"#,
            r#"{"state":"ajar","failures":1,"opened_at_ms":1}"#,
            r#"{"state":"open","failures":5,"opened_at_ms":null}"#,
        ] {
            r.store.put(BREAKER_NAMESPACE, "trakt-main", bad).unwrap();
            assert_eq!(r.breaker().snapshot().state, BreakerState::Closed, "{bad}");
        }
    }

    #[test]
    fn reset_forces_closed() {
        let r = Rig::new();
        let b = r.breaker();
        for _ in 0..5 {
            r.call(&b, Verdict::Failure);
        }
        b.reset(&r.em);
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        assert!(r.call(&b, Verdict::Success));
    }
}

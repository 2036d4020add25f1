//! An in-memory provider whose health, failures and lies are scripted, for the
//! orchestrator's scenario tests. Every hazard in the incident list is a fake that
//! misbehaves in one specific way.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use ferry_core::{
    Activities, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps, Health,
    InventoryOps, MediaType, MemoryInventory, Result, Snapshot, WriteReport,
};

/// The operations a fake can be scripted to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeOp {
    Health,
    BuildIndex,
    Add,
    Remove,
    Activities,
}

#[derive(Debug)]
struct State {
    inv: MemoryInventory,
    health: Option<Health>,
    caps: Capabilities,
    activities_on: bool,
    health_reads_activities: bool,
    /// A write to the first feature also moves the second one's checkpoint.
    side_effect: Option<(Feature, Feature)>,
    failures: HashMap<FakeOp, Vec<ErrorKind>>,
    truncate: HashMap<Feature, usize>,
    lie_empty: HashMap<Feature, bool>,
    calls: HashMap<FakeOp, usize>,
    checkpoints: BTreeMap<Feature, u64>,
    crash_after_writes: Option<usize>,
    writes: usize,
}

/// A scripted in-memory provider. Cheap to clone: clones share state, so a test keeps one
/// handle to inspect what the engine did through another.
#[derive(Debug, Clone)]
pub struct FakeProvider {
    instance: String,
    state: Arc<Mutex<State>>,
}

const ALL_TYPES: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];

/// Full capabilities for all five features, batches of 100, activities on.
pub fn full_caps() -> Capabilities {
    let mut caps = Capabilities::new().with_activities(true);
    for f in Feature::ALL {
        caps = caps.with(f, FeatureCaps::full(100, &ALL_TYPES));
    }
    caps
}

impl FakeProvider {
    pub fn new(instance: impl Into<String>) -> Self {
        FakeProvider {
            instance: instance.into(),
            state: Arc::new(Mutex::new(State {
                inv: MemoryInventory::new(),
                health: Some(Health::ok()),
                caps: full_caps(),
                activities_on: true,
                health_reads_activities: false,
                side_effect: None,
                failures: HashMap::new(),
                truncate: HashMap::new(),
                lie_empty: HashMap::new(),
                calls: HashMap::new(),
                checkpoints: BTreeMap::new(),
                crash_after_writes: None,
                writes: 0,
            })),
        }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// As an `Arc<dyn InventoryOps>` for the engine.
    pub fn ops(&self) -> Arc<dyn InventoryOps> {
        Arc::new(self.clone())
    }

    /// Replaces a feature's inventory (without advancing its checkpoint: seeding is not
    /// a user action the test wants to see).
    pub fn seed(&self, feature: Feature, entries: impl IntoIterator<Item = Entry>) -> &Self {
        self.st().inv.replace(feature, entries);
        self
    }

    /// Simulates the user changing the inventory directly on the service: replaces the
    /// feature's entries and advances its checkpoint.
    pub fn user_edit(&self, feature: Feature, f: impl FnOnce(&mut Vec<Entry>)) -> &Self {
        let mut st = self.st();
        let mut entries: Vec<Entry> = st.inv.entries(feature).cloned().collect();
        f(&mut entries);
        st.inv.replace(feature, entries);
        *st.checkpoints.entry(feature).or_insert(0) += 1;
        self
    }

    pub fn set_health(&self, health: Health) -> &Self {
        self.st().health = Some(health);
        self
    }

    /// Health becomes `Unknown`: the provider has no health check.
    pub fn without_health(&self) -> &Self {
        self.st().health = None;
        self
    }

    /// `health()` reads the checkpoints and hands them to the engine
    /// ([`Health::with_activities`]), as the Plex provider does.
    pub fn health_reads_activities(&self) -> &Self {
        self.st().health_reads_activities = true;
        self
    }

    /// A confirmed write to `written` also moves `moved`'s checkpoint, as a play added
    /// to Trakt takes the title off its watchlist.
    pub fn writes_also_move(&self, written: Feature, moved: Feature) -> &Self {
        self.st().side_effect = Some((written, moved));
        self
    }

    /// `activities()` returns no checkpoints.
    pub fn without_activities(&self) -> &Self {
        let mut st = self.st();
        st.activities_on = false;
        st.caps.activities = false;
        self
    }

    pub fn with_caps(&self, caps: Capabilities) -> &Self {
        self.st().caps = caps;
        self
    }

    /// The next `n` calls of `op` fail with `kind`.
    pub fn fail_next(&self, op: FakeOp, kind: ErrorKind, n: usize) -> &Self {
        self.st()
            .failures
            .entry(op)
            .or_default()
            .extend(std::iter::repeat_n(kind, n));
        self
    }

    /// The next health request fails once with a transient error, as one 5xx on the
    /// probe endpoint: a probe that asks again gets the scripted health.
    pub fn health_blip(&self) -> &Self {
        self.fail_next(FakeOp::Health, ErrorKind::Unavailable, 1)
    }

    /// Forgets every scripted fault that has not fired yet (failures, truncated and empty
    /// reads, a pending crash), so a fault meant for one run cannot leak into the next: a
    /// feature the engine skipped never consumed the read fault scripted for it.
    pub fn clear_faults(&self) -> &Self {
        let mut st = self.st();
        st.failures.clear();
        st.truncate.clear();
        st.lie_empty.clear();
        st.crash_after_writes = None;
        drop(st);
        self
    }

    /// The next read of `feature` drops `drop_n` items and says so: a `Partial` snapshot.
    pub fn truncate_next_read(&self, feature: Feature, drop_n: usize) -> &Self {
        self.st().truncate.insert(feature, drop_n);
        self
    }

    /// The next read of `feature` returns an empty snapshot that claims to be complete:
    /// a provider that lies after a silent failure.
    pub fn lie_empty_next_read(&self, feature: Feature) -> &Self {
        self.st().lie_empty.insert(feature, true);
        self
    }

    /// After `n` more successful write calls, the next write call applies its entries and
    /// then panics, as if the process were killed after the request reached the service
    /// but before the outcome was recorded.
    pub fn crash_after_writes(&self, n: usize) -> &Self {
        let mut st = self.st();
        st.crash_after_writes = Some(st.writes + n);
        self
    }

    pub fn set_checkpoint(&self, feature: Feature, value: u64) -> &Self {
        self.st().checkpoints.insert(feature, value);
        self
    }

    pub fn entries(&self, feature: Feature) -> Vec<Entry> {
        self.st().inv.entries(feature).cloned().collect()
    }

    pub fn keys(&self, feature: Feature) -> Vec<String> {
        self.st().inv.entries(feature).map(Entry::key).collect()
    }

    pub fn calls(&self, op: FakeOp) -> usize {
        self.st().calls.get(&op).copied().unwrap_or(0)
    }

    pub fn reset_calls(&self) {
        self.st().calls.clear();
    }

    fn begin(&self, op: FakeOp) -> Result<()> {
        let mut st = self.st();
        *st.calls.entry(op).or_insert(0) += 1;
        let failure = st
            .failures
            .get_mut(&op)
            .and_then(|q| (!q.is_empty()).then(|| q.remove(0)));
        match failure {
            Some(kind) => Err(Error::new(kind, format!("scripted {op:?} failure"))
                .with_provider("fake")
                .with_operation(format!("{op:?}"))),
            None => Ok(()),
        }
    }

    fn write(
        &self,
        cx: &Context,
        op: FakeOp,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        cx.check_cancelled()?;
        self.begin(op)?;
        let mut st = self.st();
        if !st
            .caps
            .get(feature)
            .is_some_and(|c| if op == FakeOp::Add { c.add } else { c.remove })
        {
            return Err(Error::unsupported(format!("{feature} {op:?}")).with_provider("fake"));
        }
        let report = if op == FakeOp::Add {
            st.inv.add(feature, entries)
        } else {
            st.inv.remove(feature, entries)
        };
        if report.confirmed() > 0 {
            *st.checkpoints.entry(feature).or_insert(0) += 1;
            if let Some((written, moved)) = st.side_effect
                && written == feature
            {
                *st.checkpoints.entry(moved).or_insert(0) += 1;
            }
        }
        st.writes += 1;
        if st.crash_after_writes.is_some_and(|n| st.writes > n) {
            st.crash_after_writes = None;
            drop(st);
            panic!(
                "fake provider {}: simulated crash after a write reached the service",
                self.instance
            );
        }
        Ok(report)
    }
}

#[async_trait]
impl InventoryOps for FakeProvider {
    fn provider(&self) -> &'static str {
        "fake"
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn features(&self) -> Capabilities {
        self.st().caps.clone()
    }

    async fn health(&self, _cx: &Context) -> Health {
        if let Err(e) = self.begin(FakeOp::Health) {
            return Health::from_error(&e);
        }
        let st = self.st();
        match &st.health {
            Some(h) => {
                let mut h = h.clone();
                h.latency_ms.get_or_insert(1);
                if st.health_reads_activities && st.activities_on {
                    h = h.with_activities(current_activities(&st));
                }
                h
            }
            None => Health::unknown(),
        }
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        cx.check_cancelled()?;
        self.begin(FakeOp::BuildIndex)?;
        let mut st = self.st();
        if !st.caps.supports(feature) {
            return Err(
                Error::unsupported(format!("{feature} is not supported")).with_provider("fake")
            );
        }
        if st.lie_empty.remove(&feature).is_some() {
            return Ok(ferry_core::MemoryInventory::new().snapshot(feature));
        }
        let mut snap = st.inv.snapshot(feature);
        if let Some(semantics) = st.caps.get(feature).map(|c| c.semantics) {
            snap = snap.with_semantics(semantics);
        }
        if let Some(drop_n) = st.truncate.remove(&feature) {
            let total = snap.len();
            let keys: Vec<String> = snap.keys().rev().take(drop_n).map(str::to_owned).collect();
            for k in keys {
                snap.remove(&k);
            }
            snap.mark_partial(format!(
                "page truncated: got {} of {total}",
                total.saturating_sub(drop_n)
            ));
        }
        Ok(snap)
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.write(cx, FakeOp::Add, feature, entries)
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        self.write(cx, FakeOp::Remove, feature, entries)
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        cx.check_cancelled()?;
        self.begin(FakeOp::Activities)?;
        let st = self.st();
        if !st.activities_on {
            return Ok(Activities::new());
        }
        Ok(current_activities(&st))
    }
}

fn current_activities(st: &State) -> Activities {
    let mut a = Activities::new();
    for f in st.caps.features.keys() {
        let n = st.checkpoints.get(f).copied().unwrap_or(0);
        // RFC 3339 checkpoints, so "advanced" can be judged as time moving forward.
        a = a.with(
            *f,
            ferry_core::Timestamp::from_unix(1_600_000_000 + n as i64).to_rfc3339(),
        );
    }
    a
}

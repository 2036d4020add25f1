//! The provider contract suite.
//!
//! Every check is a plain public async function taking a [`Subject`]; it panics with a
//! message that names the provider, the feature and what was expected. A provider's test
//! calls [`run_contract_suite`] to run every check its declared features make applicable:
//!
//! ```text
//! #[tokio::test]
//! async fn contract() {
//!     let sim = MySim::start().await;
//!     let subject = Subject::new(provider_against(&sim)).with_faults(Arc::new(sim.clone()));
//!     ferry_testkit::contract::run_contract_suite(subject).await.assert_every_check_ran();
//! }
//! ```
//!
//! Checks add and remove sample titles from [`crate::samples`]; media-server simulators
//! must hold `samples::library(SAMPLE_LIBRARY_SIZE)`. Each check removes what it added.
//!
//! **Fault checks** (`fault_*`) attack the provider through its simulator's knobs
//! ([`Subject::with_faults`]): a truncated, empty or undecodable page, a missing or
//! invalid declared total, a 5xx on a later page, an empty, HTML or cut-off body must
//! never give a `Complete` snapshot (an error or a `Partial` one is right); a 429's
//! `Retry-After` is honoured; an expired token is `auth`; a malformed write answer is
//! never `Confirmed`. Page faults hit the *second* page of a read, so the provider must
//! be built with a page size smaller than the sample library (say 25); a list the
//! simulator serves as one document (`FaultControl::shape`) gets only the faults a
//! reader can see in one document. A fault that never fires fails the check: the attack
//! did not happen. A check with nothing to attack (no fault knobs, as for `local`; no list
//! that declares a total; no declared patience) is not counted as passed: the report
//! files it under [`SuiteReport::not_applicable`] with the reason, and
//! [`SuiteReport::assert_every_check_ran`] refuses it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::time::Duration;

use ferry_core::identity::{AliasIndex, split_event_key};
use ferry_core::{
    CancelToken, CollectingSink, Context, Emitter, Entry, ErrorKind, Feature, HealthStatus,
    InventoryOps, MediaType, Outcome, Payload, Snapshot, WriteReport,
};

use crate::samples;
use crate::sim::knobs::{BadTotal, Fault, FaultRule, ListShape, RowDamage};

pub use crate::sim::knobs::FaultControl;

/// How many sample movies a media-server simulator must hold for the suite.
pub const SAMPLE_LIBRARY_SIZE: u32 = 64;

/// Builds sample entry `n` of a feature, for providers that need particular titles.
pub type Sampler = Arc<dyn Fn(Feature, u32) -> Entry + Send + Sync>;

/// The provider under test.
#[derive(Clone)]
pub struct Subject {
    pub ops: Arc<dyn InventoryOps>,
    /// Every secret configured for this instance; none may appear in any output.
    pub secrets: Vec<String>,
    pub sampler: Sampler,
    /// The simulator's fault knobs, for the fault checks (`None`: they are not applicable).
    pub faults: Option<Arc<dyn FaultControl>>,
    /// How long the provider waits for one answer before it gives up (its
    /// `Seams::attempt_timeout`), for the late-answer check (`None`: it is not run).
    pub patience: Option<Duration>,
    /// Why the running check found nothing to attack, if it did not (first reason wins).
    idle: Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("ops", &self.ops)
            .field("secrets", &self.secrets.len())
            .field("faults", &self.faults.is_some())
            .field("patience", &self.patience)
            .finish()
    }
}

impl Subject {
    pub fn new(ops: Arc<dyn InventoryOps>) -> Self {
        let caps = ops.features();
        let sampler: Sampler = Arc::new(move |f, n| {
            let types = caps
                .get(f)
                .map(|c| c.media_types.clone())
                .unwrap_or_default();
            let kind = [MediaType::Movie, MediaType::Episode, MediaType::Show]
                .into_iter()
                .find(|t| types.contains(t))
                .unwrap_or(MediaType::Movie);
            samples::entry_of_type(f, kind, n)
        });
        Subject {
            ops,
            secrets: Vec::new(),
            sampler,
            faults: None,
            patience: None,
            idle: Arc::default(),
        }
    }

    /// Lets the fault checks reach the simulator behind the provider.
    pub fn with_faults(mut self, faults: Arc<dyn FaultControl>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Declares how long the provider waits for an answer (build it with that
    /// `attempt_timeout`), so the suite can answer a write later than that.
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = Some(patience);
        self
    }

    /// Files the running check as not applicable, with the reason (the first reason a
    /// check gives is kept: it is the most general one).
    fn nothing_to_attack(&self, why: &str) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.get_or_insert_with(|| why.to_owned());
    }

    fn take_idle(&self) -> Option<String> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn with_secrets<S: Into<String>>(mut self, secrets: impl IntoIterator<Item = S>) -> Self {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    fn name(&self) -> String {
        format!("{}/{}", self.ops.provider(), self.ops.instance())
    }

    fn sample(&self, f: Feature, n: u32) -> Entry {
        (self.sampler)(f, n)
    }

    fn readable(&self) -> Vec<Feature> {
        let caps = self.ops.features();
        Feature::ALL
            .into_iter()
            .filter(|f| caps.supports(*f))
            .collect()
    }

    /// Features that can be both added to and removed from.
    fn writable(&self) -> Vec<Feature> {
        let caps = self.ops.features();
        Feature::ALL
            .into_iter()
            .filter(|f| caps.get(*f).is_some_and(|c| c.read && c.add && c.remove))
            .collect()
    }
}

fn cx() -> Context {
    Context::default()
}

async fn index(s: &Subject, f: Feature) -> Snapshot {
    match s.ops.build_index(&cx(), f).await {
        Ok(snap) => snap,
        Err(e) => panic!("{}: build_index({f}) failed: {e}", s.name()),
    }
}

async fn add(s: &Subject, f: Feature, entries: &[Entry]) -> WriteReport {
    match s.ops.add(&cx(), f, entries).await {
        Ok(r) => r,
        Err(e) => panic!("{}: add({f}) failed: {e}", s.name()),
    }
}

async fn remove(s: &Subject, f: Feature, entries: &[Entry]) -> WriteReport {
    match s.ops.remove(&cx(), f, entries).await {
        Ok(r) => r,
        Err(e) => panic!("{}: remove({f}) failed: {e}", s.name()),
    }
}

/// Finds the entry in `snap` that is the same title (and, for history, the same play).
fn find<'a>(snap: &'a Snapshot, e: &Entry) -> Option<&'a Entry> {
    if let Payload::Watch { watched_at } = e.payload {
        let base = e.item.key();
        let idx = AliasIndex::build(
            snap.iter()
                .map(|(k, v)| (split_event_key(k).map_or(k, |(b, _)| b), &v.item)),
        );
        let want = idx.find(&base, &e.item)?.to_owned();
        // Among that title's plays, the one closest to the requested time.
        return snap
            .iter()
            .filter(|(k, _)| split_event_key(k).is_some_and(|(b, _)| b == want))
            .min_by_key(|(_, v)| match v.payload {
                Payload::Watch { watched_at: t } => t.abs_diff(watched_at),
                _ => u64::MAX,
            })
            .map(|(_, v)| v);
    }
    if let Payload::Playlist(_) = e.payload {
        return snap.get(&e.key());
    }
    let idx = AliasIndex::build(snap.iter().map(|(k, v)| (k, &v.item)));
    idx.find(&e.key(), &e.item).and_then(|k| snap.get(k))
}

fn plays_of(snap: &Snapshot, e: &Entry) -> usize {
    let idx = AliasIndex::build(
        snap.iter()
            .map(|(k, v)| (split_event_key(k).map_or(k, |(b, _)| b), &v.item)),
    );
    let Some(base) = idx.find(&e.item.key(), &e.item).map(str::to_owned) else {
        return 0;
    };
    snap.keys()
        .filter(|k| split_event_key(k).is_some_and(|(b, _)| b == base))
        .count()
}

async fn ensure_absent(s: &Subject, f: Feature, entries: &[Entry]) {
    let r = remove(s, f, entries).await;
    for i in &r.items {
        assert!(
            i.outcome.is_settled(),
            "{}: cleaning up {f} item {} before a check failed: {:?}",
            s.name(),
            i.key,
            i.outcome
        );
    }
}

fn assert_report_matches(s: &Subject, op: &str, f: Feature, entries: &[Entry], r: &WriteReport) {
    assert_eq!(
        r.len(),
        entries.len(),
        "{}: {op}({f}) must report exactly one outcome per entry sent (sent {}, got {})",
        s.name(),
        entries.len(),
        r.len()
    );
    for (e, i) in entries.iter().zip(&r.items) {
        assert_eq!(
            i.key,
            e.key(),
            "{}: {op}({f}) outcomes must be in the order sent, keyed by Entry::key",
            s.name()
        );
    }
}

fn same_payload(f: Feature, want: &Payload, got: &Payload) -> Result<(), String> {
    match (want, got) {
        (Payload::Watchlist { .. }, Payload::Watchlist { .. }) => Ok(()),
        (Payload::Rating { rating: a, .. }, Payload::Rating { rating: b, .. }) if a == b => Ok(()),
        (Payload::Watch { .. }, Payload::Watch { .. }) => Ok(()),
        (Payload::Progress { position_ms: a, .. }, Payload::Progress { position_ms: b, .. })
            if a.abs_diff(*b) <= 1000 =>
        {
            Ok(())
        }
        (Payload::Playlist(a), Payload::Playlist(b)) => {
            let ka: Vec<_> = a.items.iter().map(|i| i.key()).collect();
            let kb: Vec<_> = b.items.iter().map(|i| i.key()).collect();
            if ka == kb {
                Ok(())
            } else {
                Err(format!("playlist order {kb:?}, expected {ka:?}"))
            }
        }
        _ => Err(format!("{f} payload {got:?}, expected {want:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// `health()` returns a usable status with a latency, and only names declared features.
pub async fn health_reports_status_and_latency(s: &Subject) {
    let h = s.ops.health(&cx()).await;
    assert!(
        h.status.is_usable(),
        "{}: a healthy service must not report {} ({:?})",
        s.name(),
        h.status,
        h.details
    );
    if h.status != HealthStatus::Unknown {
        assert!(
            h.latency_ms.is_some(),
            "{}: health must report its latency",
            s.name()
        );
    }
    let caps = s.ops.features();
    for f in h.features.keys() {
        assert!(
            caps.get(*f).is_some(),
            "{}: health names feature {f} that features() does not declare",
            s.name()
        );
    }
}

/// Every declared readable feature can be read, and every entry is filed under its key
/// with a payload of that feature.
pub async fn declared_features_are_readable(s: &Subject) {
    for f in s.readable() {
        let snap = index(s, f).await;
        assert_eq!(
            snap.feature(),
            f,
            "{}: build_index({f}) returned a {} snapshot",
            s.name(),
            snap.feature()
        );
        for (k, e) in snap.iter() {
            assert_eq!(
                e.feature(),
                f,
                "{}: {f} snapshot holds a {} entry",
                s.name(),
                e.feature()
            );
            assert_eq!(
                k,
                e.key(),
                "{}: {f} entry filed under {k} but its key is {}",
                s.name(),
                e.key()
            );
        }
    }
}

/// A read of a healthy service reports itself complete.
pub async fn reads_report_completeness(s: &Subject) {
    for f in s.readable() {
        let snap = index(s, f).await;
        assert!(
            snap.is_complete(),
            "{}: a healthy, untruncated {f} read must be Complete, got {:?}",
            s.name(),
            snap.completeness()
        );
    }
}

/// A feature that is not declared is refused, never read as empty (an empty read is
/// exactly what the guardrails fear).
pub async fn undeclared_features_are_refused(s: &Subject) {
    let caps = s.ops.features();
    for f in Feature::ALL.into_iter().filter(|f| !caps.supports(*f)) {
        match s.ops.build_index(&cx(), f).await {
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::Unsupported,
                "{}: reading undeclared {f}: {e}",
                s.name()
            ),
            Ok(snap) => panic!(
                "{}: undeclared feature {f} returned a snapshot of {} items instead of Unsupported",
                s.name(),
                snap.len()
            ),
        }
    }
}

/// `add` reports one outcome per entry, in order, and confirms new items.
pub async fn add_confirms_each_item(s: &Subject) {
    for f in s.writable() {
        let entries: Vec<Entry> = (1..=3).map(|n| s.sample(f, n)).collect();
        ensure_absent(s, f, &entries).await;
        let r = add(s, f, &entries).await;
        assert_report_matches(s, "add", f, &entries, &r);
        for i in &r.items {
            assert_eq!(
                i.outcome,
                Outcome::Confirmed,
                "{}: adding new {f} item {} must be Confirmed",
                s.name(),
                i.key
            );
        }
        ensure_absent(s, f, &entries).await;
    }
}

/// After `add`, `build_index` shows the item with its payload.
pub async fn add_then_index_shows_item(s: &Subject) {
    for f in s.writable() {
        let e = s.sample(f, 4);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        add(s, f, std::slice::from_ref(&e)).await;
        let snap = index(s, f).await;
        let got = find(&snap, &e)
            .unwrap_or_else(|| panic!("{}: {f} item {} missing after add", s.name(), e.key()));
        if let Err(msg) = same_payload(f, &e.payload, &got.payload) {
            panic!("{}: {msg}", s.name());
        }
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
    }
}

/// Adding an item twice reports "already present" and never duplicates it.
pub async fn add_twice_is_already_present(s: &Subject) {
    for f in s.writable() {
        let e = s.sample(f, 5);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        add(s, f, std::slice::from_ref(&e)).await;
        let r = add(s, f, std::slice::from_ref(&e)).await;
        assert_eq!(
            r.items[0].outcome,
            Outcome::AlreadyPresent,
            "{}: adding {f} item {} again must be AlreadyPresent",
            s.name(),
            e.key()
        );
        let snap = index(s, f).await;
        let n = if f == Feature::History {
            plays_of(&snap, &e)
        } else {
            usize::from(find(&snap, &e).is_some())
        };
        assert_eq!(
            n,
            1,
            "{}: {f} item {} must be present exactly once, found {n}",
            s.name(),
            e.key()
        );
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
    }
}

/// Removing an item that is not there is harmless and reported as such.
pub async fn remove_absent_is_harmless(s: &Subject) {
    for f in s.writable() {
        let e = s.sample(f, 6);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        let before = index(s, f).await.len();
        let r = remove(s, f, std::slice::from_ref(&e)).await;
        assert_report_matches(s, "remove", f, std::slice::from_ref(&e), &r);
        assert_eq!(
            r.items[0].outcome,
            Outcome::AlreadyAbsent,
            "{}: removing absent {f} item {} must be AlreadyAbsent",
            s.name(),
            e.key()
        );
        assert_eq!(
            index(s, f).await.len(),
            before,
            "{}: removing an absent {f} item changed the index",
            s.name()
        );
    }
}

/// After `remove`, `build_index` no longer shows the item.
pub async fn remove_then_index_drops_item(s: &Subject) {
    for f in s.writable() {
        let e = s.sample(f, 7);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        add(s, f, std::slice::from_ref(&e)).await;
        let r = remove(s, f, std::slice::from_ref(&e)).await;
        assert_eq!(
            r.items[0].outcome,
            Outcome::Confirmed,
            "{}: removing present {f} item must be Confirmed",
            s.name()
        );
        let snap = index(s, f).await;
        assert!(
            find(&snap, &e).is_none(),
            "{}: {f} item {} still present after remove",
            s.name(),
            e.key()
        );
    }
}

/// A batch reports each item, and a mixed batch (new and existing) is told apart.
pub async fn batch_reports_each_item(s: &Subject) {
    for f in s.writable() {
        let batch_size = s
            .ops
            .features()
            .get(f)
            .map_or(1, |c| c.batch_size)
            .clamp(2, 10);
        let entries: Vec<Entry> = (10..10 + batch_size as u32)
            .map(|n| s.sample(f, n))
            .collect();
        ensure_absent(s, f, &entries).await;
        add(s, f, &entries[..1]).await;
        let r = add(s, f, &entries).await;
        assert_report_matches(s, "add", f, &entries, &r);
        assert_eq!(
            r.items[0].outcome,
            Outcome::AlreadyPresent,
            "{}: {f} batch: first item was already there",
            s.name()
        );
        assert_eq!(
            r.confirmed(),
            entries.len() - 1,
            "{}: {f} batch: the rest must be confirmed",
            s.name()
        );
        ensure_absent(s, f, &entries).await;
    }
}

/// When the provider declares activities, a confirmed write advances the feature's
/// checkpoint (this is what lets an unchanged run skip reads entirely). A feature the
/// provider gives no checkpoint (it has no reliable cheap one; the engine then reads that
/// feature every run) is not checked, but at least one writable feature must have one.
pub async fn activities_advance_after_write(s: &Subject) {
    if !s.ops.features().activities {
        return;
    }
    let mut checked = 0;
    for f in s.writable() {
        let e = s.sample(f, 8);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        let before = s
            .ops
            .activities(&cx())
            .await
            .unwrap_or_else(|e| panic!("{}: activities: {e}", s.name()));
        if before.get(f).is_none() {
            continue;
        }
        add(s, f, std::slice::from_ref(&e)).await;
        let after = s
            .ops
            .activities(&cx())
            .await
            .unwrap_or_else(|e| panic!("{}: activities: {e}", s.name()));
        assert!(
            after.get(f).is_some(),
            "{}: the {f} checkpoint vanished after a write",
            s.name()
        );
        assert_ne!(
            before.get(f),
            after.get(f),
            "{}: {f} checkpoint did not advance after a confirmed add",
            s.name()
        );
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        checked += 1;
    }
    assert!(
        checked > 0 || s.writable().is_empty(),
        "{}: activities declared but no writable feature has a checkpoint",
        s.name()
    );
}

/// A cancelled context stops reads and writes, and a cancelled write changes nothing.
pub async fn cancellation_is_respected(s: &Subject) {
    let cancel = CancelToken::new();
    cancel.cancel();
    let ccx = Context::new(Emitter::silent(), cancel);
    for f in s.readable() {
        match s.ops.build_index(&ccx, f).await {
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::Cancelled,
                "{}: cancelled {f} read: {e}",
                s.name()
            ),
            Ok(_) => panic!("{}: build_index({f}) ignored a cancelled context", s.name()),
        }
    }
    for f in s.writable() {
        let e = s.sample(f, 9);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        match s.ops.add(&ccx, f, std::slice::from_ref(&e)).await {
            Err(err) => assert_eq!(
                err.kind(),
                ErrorKind::Cancelled,
                "{}: cancelled {f} add: {err}",
                s.name()
            ),
            Ok(_) => panic!("{}: add({f}) ignored a cancelled context", s.name()),
        }
        assert!(
            find(&index(s, f).await, &e).is_none(),
            "{}: a cancelled {f} add wrote anyway",
            s.name()
        );
    }
}

/// Ratings: a changed value is an update, confirmed and visible.
pub async fn rating_change_is_an_update(s: &Subject) {
    if !s.writable().contains(&Feature::Ratings) {
        return;
    }
    let f = Feature::Ratings;
    let mut e = s.sample(f, 20);
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
    e.payload = Payload::Rating {
        rating: ferry_core::Rating::new(4).expect("4"),
        rated_at: Some(samples::time(10)),
    };
    add(s, f, std::slice::from_ref(&e)).await;
    e.payload = Payload::Rating {
        rating: ferry_core::Rating::new(9).expect("9"),
        rated_at: Some(samples::time(20)),
    };
    let r = add(s, f, std::slice::from_ref(&e)).await;
    assert_eq!(
        r.items[0].outcome,
        Outcome::Confirmed,
        "{}: changing a rating must be Confirmed",
        s.name()
    );
    let snap = index(s, f).await;
    match find(&snap, &e).map(|x| &x.payload) {
        Some(Payload::Rating { rating, .. }) => {
            assert_eq!(rating.get(), 9, "{}: rating not updated", s.name())
        }
        other => panic!("{}: rating missing after update: {other:?}", s.name()),
    }
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
}

/// History: the same play sent again within the tolerance is not a second play.
pub async fn same_play_is_never_duplicated(s: &Subject) {
    if !s.writable().contains(&Feature::History) {
        return;
    }
    let f = Feature::History;
    let e = s.sample(f, 21);
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
    add(s, f, std::slice::from_ref(&e)).await;
    let mut again = e.clone();
    if let Payload::Watch { watched_at } = e.payload {
        again.payload = Payload::Watch {
            watched_at: ferry_core::Timestamp::from_unix(watched_at.unix() + 30),
        };
    }
    let r = add(s, f, std::slice::from_ref(&again)).await;
    assert_eq!(
        r.items[0].outcome,
        Outcome::AlreadyPresent,
        "{}: a play 30 s from an existing one is the same play",
        s.name()
    );
    assert_eq!(
        plays_of(&index(s, f).await, &e),
        1,
        "{}: duplicate play recorded",
        s.name()
    );
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
}

/// Progress: a new position replaces the old one.
pub async fn progress_moves_forward(s: &Subject) {
    if !s.writable().contains(&Feature::Progress) {
        return;
    }
    let f = Feature::Progress;
    let mut e = s.sample(f, 22);
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
    add(s, f, std::slice::from_ref(&e)).await;
    e.payload = Payload::Progress {
        position_ms: 1_800_000,
        duration_ms: Some(6_000_000),
        progress_at: Some(samples::time(600)),
    };
    let r = add(s, f, std::slice::from_ref(&e)).await;
    assert_eq!(
        r.items[0].outcome,
        Outcome::Confirmed,
        "{}: moving progress must be Confirmed",
        s.name()
    );
    match find(&index(s, f).await, &e).map(|x| &x.payload) {
        Some(Payload::Progress { position_ms, .. }) => {
            assert!(
                position_ms.abs_diff(1_800_000) <= 1000,
                "{}: progress at {position_ms} ms, expected 1800000",
                s.name()
            )
        }
        other => panic!("{}: progress missing after update: {other:?}", s.name()),
    }
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
}

/// Playlists: entries keep the user's order.
pub async fn playlist_order_is_kept(s: &Subject) {
    if !s.writable().contains(&Feature::Playlists) {
        return;
    }
    let f = Feature::Playlists;
    let mut e = s.sample(f, 23);
    if let Payload::Playlist(p) = &mut e.payload {
        p.items.reverse();
    }
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
    add(s, f, std::slice::from_ref(&e)).await;
    let snap = index(s, f).await;
    let got = find(&snap, &e).unwrap_or_else(|| panic!("{}: playlist missing after add", s.name()));
    if let Err(msg) = same_payload(f, &e.payload, &got.payload) {
        panic!("{}: {msg}", s.name());
    }
    ensure_absent(s, f, std::slice::from_ref(&e)).await;
}

/// No configured secret appears in any event, error or `Debug` output.
pub async fn secrets_never_leak(s: &Subject) {
    let sink = CollectingSink::new();
    let cx = Context::new(Emitter::to_sink(sink.clone()), CancelToken::new());
    let mut text = format!("{:?}\n", s.ops);
    let h = s.ops.health(&cx).await;
    text.push_str(&format!("{h:?}\n"));
    for f in Feature::ALL {
        match s.ops.build_index(&cx, f).await {
            Ok(snap) => text.push_str(&format!("{} items\n", snap.len())),
            Err(e) => text.push_str(&format!("{e} {e:?}\n")),
        }
    }
    for f in s.writable() {
        let e = s.sample(f, 24);
        for r in [
            s.ops.add(&cx, f, std::slice::from_ref(&e)).await,
            s.ops.remove(&cx, f, std::slice::from_ref(&e)).await,
        ] {
            match r {
                Ok(r) => text.push_str(&format!("{r:?}\n")),
                Err(e) => text.push_str(&format!("{e} {e:?}\n")),
            }
        }
    }
    // An error path: a write to a feature the provider does not declare, if any.
    let undeclared = Feature::ALL
        .into_iter()
        .find(|f| !s.ops.features().supports(*f));
    if let Some(f) = undeclared
        && let Err(e) = s.ops.add(&cx, f, &[s.sample(f, 25)]).await
    {
        text.push_str(&format!("{e} {e:?}\n"));
    }
    text.push_str(&sink.dump());
    for secret in s.secrets.iter().filter(|x| x.len() >= 4) {
        assert!(
            !text.contains(secret.as_str()),
            "{}: a configured secret appeared in output",
            s.name()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Fault checks.

/// The features whose reads go through a list the simulator can attack.
fn attackable(s: &Subject) -> Vec<(Feature, String, &Arc<dyn FaultControl>)> {
    let Some(fc) = s.faults.as_ref() else {
        s.nothing_to_attack("no simulator fault knobs (Subject::with_faults)");
        return Vec::new();
    };
    let found: Vec<_> = (s.readable().into_iter())
        .filter_map(|f| Some((f, fc.list_path(f)?, fc)))
        .collect();
    if found.is_empty() {
        s.nothing_to_attack("no readable feature has a list the simulator can attack");
    }
    found
}

/// The attackable features whose reads take more than one request (pages, or a document
/// per catalog): faults aimed at a later request apply.
fn paged(s: &Subject) -> Vec<(Feature, String, &Arc<dyn FaultControl>)> {
    let found: Vec<_> = (attackable(s).into_iter())
        .filter(|(f, _, fc)| fc.shape(*f) != ListShape::Document)
        .collect();
    if found.is_empty() {
        s.nothing_to_attack("every attackable list is read in one request");
    }
    found
}

/// The attackable features whose lists declare a total or page count.
fn counted(s: &Subject) -> Vec<(Feature, String, &Arc<dyn FaultControl>)> {
    let found: Vec<_> = (attackable(s).into_iter())
        .filter(|(f, _, fc)| fc.shape(*f) == ListShape::Paged)
        .collect();
    if found.is_empty() {
        s.nothing_to_attack("no attackable list declares a total or a page count");
    }
    found
}

/// Requests to let through before a page fault: the second page (or document) of a
/// read, the only one of a single document.
fn page_two(fc: &Arc<dyn FaultControl>, f: Feature) -> u32 {
    u32::from(fc.shape(f) != ListShape::Document)
}

/// Reads `f` with `rule` aimed at its list (reads only); the read must fail or be
/// partial, and the fault must have fired.
async fn never_complete(
    s: &Subject,
    f: Feature,
    path: &str,
    fc: &Arc<dyn FaultControl>,
    rule: FaultRule,
    what: &str,
) {
    let before = fc.faults_fired();
    fc.inject(rule.on(path).method("GET"));
    let r = s.ops.build_index(&cx(), f).await;
    fc.clear_faults();
    assert!(
        fc.faults_fired() > before,
        "{}: {what}: the fault never fired on {path} (does the {f} read have a second \
         page? build the provider with a page size smaller than the library)",
        s.name()
    );
    if let Ok(snap) = r {
        assert!(
            !snap.is_complete(),
            "{}: {what}: a damaged {f} read came back Complete ({} entries)",
            s.name(),
            snap.len()
        );
    }
}

/// A page cut to half its rows (the total unchanged) is never a complete read.
pub async fn fault_truncated_page_is_never_complete(s: &Subject) {
    for (f, path, fc) in paged(s) {
        let rule = FaultRule::new(Fault::Truncate).after(1);
        never_complete(s, f, &path, fc, rule, "a truncated second page").await;
    }
}

/// A page without rows before the declared end is never a complete read. The list is
/// read whole first: a list without a declared count can only show an emptied document
/// against what its last complete read held.
pub async fn fault_empty_page_is_never_complete(s: &Subject) {
    for (f, path, fc) in paged(s) {
        let whole = index(s, f).await;
        let documents = fc.shape(f) == ListShape::Documents;
        assert!(
            whole.is_complete() && !(documents && whole.is_empty()),
            "{}: the {f} read before the fault should be complete (and, for a list without \
             a count, hold rows): {:?}, {} entries",
            s.name(),
            whole.completeness(),
            whole.len()
        );
        let rule = FaultRule::new(Fault::EmptyList).after(1);
        never_complete(s, f, &path, fc, rule, "an empty second page").await;
    }
}

/// A page without its declared total, or with one that is not a count (null, a string,
/// negative), is never part of a complete read.
pub async fn fault_missing_or_invalid_total_is_never_complete(s: &Subject) {
    for (f, path, fc) in counted(s) {
        let rule = FaultRule::new(Fault::MissingTotal);
        never_complete(s, f, &path, fc, rule, "a page without its total").await;
        for bad in BadTotal::ALL {
            let rule = FaultRule::new(Fault::InvalidTotal(bad));
            never_complete(s, f, &path, fc, rule, &format!("a {bad:?} total")).await;
        }
    }
}

/// A row that does not decode (`null`) makes the read partial, never silently shorter.
pub async fn fault_undecodable_row_is_never_complete(s: &Subject) {
    for (f, path, fc) in attackable(s) {
        let rule = FaultRule::new(Fault::UndecodableRow(RowDamage::Null)).after(page_two(fc, f));
        never_complete(s, f, &path, fc, rule, "a null row").await;
    }
}

/// A second page that keeps failing (503, past every retry) is never a complete read.
pub async fn fault_later_page_error_is_never_complete(s: &Subject) {
    for (f, path, fc) in paged(s) {
        let rule = FaultRule::new(Fault::Status(503)).after(1).times(20);
        never_complete(s, f, &path, fc, rule, "a 503 on the second page").await;
    }
}

/// An empty, HTML or cut-off body, on the first page or a later one, is never a
/// complete read.
pub async fn fault_bad_body_is_never_complete(s: &Subject) {
    for (f, path, fc) in attackable(s) {
        for fault in [Fault::EmptyBody, Fault::Html, Fault::Malformed] {
            for skip in 0..=page_two(fc, f) {
                let what = format!("{fault:?} on page {}", skip + 1);
                let rule = FaultRule::new(fault.clone()).after(skip).times(20);
                never_complete(s, f, &path, fc, rule, &what).await;
            }
        }
    }
}

/// A `429` with `Retry-After: 1` is waited out (the read then completes), or surfaces
/// as `rate_limited` carrying the delay; never retried sooner.
pub async fn fault_retry_after_is_honoured(s: &Subject) {
    let Some((f, path, fc)) = attackable(s).into_iter().next() else {
        return;
    };
    fc.inject(
        FaultRule::new(Fault::RateLimited {
            retry_after_secs: 1,
        })
        .on(&path)
        .method("GET"),
    );
    let r = s.ops.build_index(&cx(), f).await;
    fc.clear_faults();
    match r {
        Ok(snap) => {
            assert!(
                snap.is_complete(),
                "{}: after a waited-out 429 the {f} read should complete: {:?}",
                s.name(),
                snap.completeness()
            );
            let gap = fc.rate_limit_gap();
            assert!(
                gap.is_some_and(|g| g >= Duration::from_millis(950)),
                "{}: the request after a 429 with Retry-After: 1 came {gap:?} later",
                s.name()
            );
        }
        Err(e) => assert!(
            e.kind() == ErrorKind::RateLimited
                && e.retry_after().is_some_and(|d| d >= Duration::from_secs(1)),
            "{}: a 429 must be waited out or surface as rate_limited with its delay: {e}",
            s.name()
        ),
    }
}

/// A token the service refuses (401 on every request) is an `auth` error.
pub async fn fault_expired_token_is_auth(s: &Subject) {
    let Some((f, _, fc)) = attackable(s).into_iter().next() else {
        return;
    };
    fc.inject(FaultRule::new(Fault::Unauthorized).times(50));
    let r = s.ops.build_index(&cx(), f).await;
    fc.clear_faults();
    match r {
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::Auth,
            "{}: an expired token must be an auth error: {e}",
            s.name()
        ),
        Ok(_) => panic!("{}: a read with an expired token succeeded", s.name()),
    }
}

/// A write whose answer is cut off mid-JSON is never reported `Confirmed` unless a
/// re-read shows it.
pub async fn fault_malformed_write_is_never_confirmed(s: &Subject) {
    let Some(fc) = writes_to_attack(s) else {
        return;
    };
    for f in s.writable() {
        let e = s.sample(f, 41);
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
        let before = fc.faults_fired();
        fc.inject(FaultRule::new(Fault::Malformed).writes().times(50));
        let r = s.ops.add(&cx(), f, std::slice::from_ref(&e)).await;
        fc.clear_faults();
        assert!(
            fc.faults_fired() > before,
            "{}: {f}: the malformed-answer fault never fired on the write",
            s.name()
        );
        if let Ok(r) = &r
            && r.items
                .first()
                .is_some_and(|i| i.outcome == Outcome::Confirmed)
        {
            let snap = index(s, f).await;
            assert!(
                find(&snap, &e).is_some(),
                "{}: {f}: a write whose answer was malformed was reported Confirmed, and \
                 the service does not hold it",
                s.name()
            );
        }
        ensure_absent(s, f, std::slice::from_ref(&e)).await;
    }
}

/// A write that lands but whose answer comes after the provider gave up on it (a hung
/// proxy, a slow backend) is never doubled: the call may not know what happened, but the
/// same write sent again, as the next run sends it, finds it there, and a play is
/// recorded once. Runs when the subject declares its patience
/// ([`Subject::with_patience`]).
pub async fn fault_late_write_answer_is_never_doubled(s: &Subject) {
    let Some(fc) = writes_to_attack(s) else {
        return;
    };
    let Some(patience) = s.patience else {
        return s.nothing_to_attack("the subject declares no patience (Subject::with_patience)");
    };
    for f in s.writable() {
        let e = s.sample(f, 43);
        let one = std::slice::from_ref(&e);
        ensure_absent(s, f, one).await;
        let before = fc.faults_fired();
        fc.inject(
            FaultRule::new(Fault::LatencyAfterApply(patience * 4))
                .writes()
                .times(1),
        );
        let first = s.ops.add(&cx(), f, one).await;
        fc.clear_faults();
        assert!(
            fc.faults_fired() > before,
            "{}: {f}: the late-answer fault never fired on the write",
            s.name()
        );
        let again = add(s, f, one).await;
        assert!(
            matches!(
                again.items[0].outcome,
                Outcome::AlreadyPresent | Outcome::Confirmed
            ),
            "{}: {f}: the write sent again after a late answer ({first:?}) did not land: {:?}",
            s.name(),
            again.items[0].outcome
        );
        let snap = index(s, f).await;
        assert!(
            find(&snap, &e).is_some(),
            "{}: {f}: the written entry is missing after a late answer",
            s.name()
        );
        if f == Feature::History {
            assert_eq!(
                plays_of(&snap, &e),
                1,
                "{}: a play whose answer came late was recorded twice when sent again",
                s.name()
            );
        }
        ensure_absent(s, f, one).await;
    }
}

/// The fault knobs, when the subject has them and a feature to write.
fn writes_to_attack(s: &Subject) -> Option<&Arc<dyn FaultControl>> {
    let Some(fc) = s.faults.as_ref() else {
        s.nothing_to_attack("no simulator fault knobs (Subject::with_faults)");
        return None;
    };
    if s.writable().is_empty() {
        s.nothing_to_attack("no writable feature");
        return None;
    }
    Some(fc)
}

// ---------------------------------------------------------------------------------------
// The runner.

type CheckFn = for<'a> fn(&'a Subject) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, by name, in the order the suite runs them.
        pub fn all_checks() -> Vec<(&'static str, CheckFn)> {
            vec![$((stringify!($name), (|s| Box::pin($name(s))) as CheckFn)),*]
        }
    };
}

checks!(
    health_reports_status_and_latency,
    declared_features_are_readable,
    reads_report_completeness,
    undeclared_features_are_refused,
    add_confirms_each_item,
    add_then_index_shows_item,
    add_twice_is_already_present,
    remove_absent_is_harmless,
    remove_then_index_drops_item,
    batch_reports_each_item,
    activities_advance_after_write,
    cancellation_is_respected,
    rating_change_is_an_update,
    same_play_is_never_duplicated,
    progress_moves_forward,
    playlist_order_is_kept,
    secrets_never_leak,
    fault_truncated_page_is_never_complete,
    fault_empty_page_is_never_complete,
    fault_missing_or_invalid_total_is_never_complete,
    fault_undecodable_row_is_never_complete,
    fault_later_page_error_is_never_complete,
    fault_bad_body_is_never_complete,
    fault_retry_after_is_honoured,
    fault_expired_token_is_auth,
    fault_malformed_write_is_never_confirmed,
    fault_late_write_answer_is_never_doubled,
);

/// The names of the fault checks: what a subject without fault knobs cannot run.
pub fn fault_checks() -> Vec<&'static str> {
    (all_checks().into_iter())
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("fault_"))
        .collect()
}

/// What the suite found.
#[derive(Debug, Default)]
pub struct SuiteReport {
    pub provider: String,
    pub passed: Vec<&'static str>,
    pub failed: Vec<(&'static str, String)>,
    /// Checks that found nothing to attack, with the reason: neither passed nor failed.
    pub not_applicable: Vec<(&'static str, String)>,
}

impl SuiteReport {
    /// Panics listing every failed check.
    pub fn assert_passed(&self) {
        if !self.failed.is_empty() {
            panic!(
                "contract suite for {}: {} of {} checks failed:\n{}",
                self.provider,
                self.failed.len(),
                self.failed.len() + self.passed.len() + self.not_applicable.len(),
                bullets(&self.failed)
            );
        }
    }

    /// Panics unless every check ran and passed: none failed and none found nothing to
    /// attack. The bar for a provider with a simulator.
    pub fn assert_every_check_ran(&self) {
        self.assert_ran_all_but(&[]);
    }

    /// Panics unless every check passed except exactly `idle`, which found nothing to
    /// attack (say, [`fault_checks`] for a provider without a simulator).
    pub fn assert_ran_all_but(&self, idle: &[&str]) {
        self.assert_passed();
        let mut found = self.not_applicable_names();
        let mut expected = idle.to_vec();
        found.sort_unstable();
        expected.sort_unstable();
        if found != expected {
            panic!(
                "contract suite for {}: {} checks had nothing to attack (expected {:?}):\n{}",
                self.provider,
                self.not_applicable.len(),
                idle,
                bullets(&self.not_applicable)
            );
        }
        assert_eq!(
            self.passed.len() + idle.len(),
            all_checks().len(),
            "{}: {:?}",
            self.provider,
            self.passed
        );
    }

    /// The names of the checks that found nothing to attack.
    pub fn not_applicable_names(&self) -> Vec<&'static str> {
        self.not_applicable.iter().map(|(n, _)| *n).collect()
    }
}

/// `  - check: why` lines.
fn bullets(checks: &[(&'static str, String)]) -> String {
    let lines: Vec<String> = (checks.iter())
        .map(|(n, why)| format!("  - {n}: {why}"))
        .collect();
    lines.join("\n")
}

/// Runs every check against the subject, one after another (they share the provider's
/// state), and collects the failures instead of stopping at the first.
pub async fn run_contract_suite(subject: Subject) -> SuiteReport {
    let subject = Arc::new(subject);
    let mut report = SuiteReport {
        provider: subject.name(),
        ..SuiteReport::default()
    };
    for (name, check) in all_checks() {
        let s = subject.clone();
        let outcome = tokio::spawn(async move { check(&s).await }).await;
        let idle = subject.take_idle();
        match outcome {
            Ok(()) => match idle {
                Some(why) => report.not_applicable.push((name, why)),
                None => report.passed.push(name),
            },
            Err(e) => {
                let msg = match e.try_into_panic() {
                    Ok(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "panicked".into()),
                    Err(e) => e.to_string(),
                };
                report.failed.push((name, msg));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeProvider;

    #[tokio::test]
    async fn the_fake_passes_the_whole_suite() {
        let report = run_contract_suite(Subject::new(FakeProvider::new("fake-1").ops())).await;
        report.assert_passed();
        // The fake has no simulator: every fault check, and only they, attack nothing.
        report.assert_ran_all_but(&fault_checks());
        assert!(report.passed.len() >= 12);
    }

    #[tokio::test]
    async fn a_suite_that_attacked_nothing_is_not_a_suite_that_passed() {
        let report = run_contract_suite(Subject::new(FakeProvider::new("fake-2").ops())).await;
        let refused = std::panic::catch_unwind(|| report.assert_every_check_ran());
        let msg = refused.expect_err("no fault knobs, yet every check ran");
        let msg = (msg.downcast_ref::<String>()).map_or("", String::as_str);
        assert!(
            msg.contains("nothing to attack") && msg.contains("with_faults"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_provider_that_confirms_nothing_fails_the_suite() {
        #[derive(Debug)]
        struct Liar(FakeProvider);
        #[async_trait::async_trait]
        impl InventoryOps for Liar {
            fn provider(&self) -> &'static str {
                "liar"
            }
            fn instance(&self) -> &str {
                "l"
            }
            fn features(&self) -> ferry_core::Capabilities {
                self.0.features()
            }
            async fn build_index(&self, cx: &Context, f: Feature) -> ferry_core::Result<Snapshot> {
                self.0.build_index(cx, f).await
            }
            async fn add(
                &self,
                _cx: &Context,
                _f: Feature,
                entries: &[Entry],
            ) -> ferry_core::Result<WriteReport> {
                // Claims success without writing anything.
                Ok(WriteReport::all(entries, Outcome::Confirmed))
            }
            async fn remove(
                &self,
                cx: &Context,
                f: Feature,
                entries: &[Entry],
            ) -> ferry_core::Result<WriteReport> {
                self.0.remove(cx, f, entries).await
            }
        }
        let report = run_contract_suite(Subject::new(Arc::new(Liar(FakeProvider::new("x"))))).await;
        let failed: Vec<_> = report.failed.iter().map(|(n, _)| *n).collect();
        assert!(failed.contains(&"add_then_index_shows_item"), "{failed:?}");
        assert!(
            failed.contains(&"add_twice_is_already_present"),
            "{failed:?}"
        );
        assert!(failed.contains(&"cancellation_is_respected"), "{failed:?}");
    }

    /// Knobs whose every fault "fires" and whose reads are never damaged: a provider
    /// that reports its reads complete regardless must fail the fault checks.
    #[derive(Debug, Default)]
    struct Stub(std::sync::atomic::AtomicU64);

    impl FaultControl for Stub {
        fn inject(&self, _rule: FaultRule) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        fn clear_faults(&self) {}
        fn faults_fired(&self) -> u64 {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn list_path(&self, _f: Feature) -> Option<String> {
            Some("/list".into())
        }
        fn rate_limit_gap(&self) -> Option<Duration> {
            Some(Duration::ZERO)
        }
    }

    #[tokio::test]
    async fn a_provider_blind_to_faults_fails_the_fault_checks() {
        let s =
            Subject::new(FakeProvider::new("blind").ops()).with_faults(Arc::new(Stub::default()));
        let report = run_contract_suite(s).await;
        let failed: Vec<_> = report.failed.iter().map(|(n, _)| *n).collect();
        for check in [
            "fault_truncated_page_is_never_complete",
            "fault_empty_page_is_never_complete",
            "fault_missing_or_invalid_total_is_never_complete",
            "fault_undecodable_row_is_never_complete",
            "fault_later_page_error_is_never_complete",
            "fault_bad_body_is_never_complete",
            "fault_retry_after_is_honoured",
            "fault_expired_token_is_auth",
        ] {
            assert!(failed.contains(&check), "{check}: {failed:?}");
        }
    }

    #[tokio::test]
    async fn a_leaky_provider_fails_the_secret_check() {
        #[derive(Debug)]
        struct Leaky(FakeProvider, String);
        #[async_trait::async_trait]
        impl InventoryOps for Leaky {
            fn provider(&self) -> &'static str {
                "leaky"
            }
            fn instance(&self) -> &str {
                "l"
            }
            fn features(&self) -> ferry_core::Capabilities {
                self.0.features()
            }
            async fn build_index(&self, cx: &Context, f: Feature) -> ferry_core::Result<Snapshot> {
                cx.emitter.emit(
                    "api:hit",
                    serde_json::json!({"op": format!("GET /x?token={}", self.1)}),
                );
                self.0.build_index(cx, f).await
            }
            async fn add(
                &self,
                cx: &Context,
                f: Feature,
                e: &[Entry],
            ) -> ferry_core::Result<WriteReport> {
                self.0.add(cx, f, e).await
            }
            async fn remove(
                &self,
                cx: &Context,
                f: Feature,
                e: &[Entry],
            ) -> ferry_core::Result<WriteReport> {
                self.0.remove(cx, f, e).await
            }
        }
        let leaky = Leaky(FakeProvider::new("x"), "tok-123456".into());
        let s = Subject::new(Arc::new(leaky)).with_secrets(["tok-123456"]);
        let report = run_contract_suite(s).await;
        assert!(
            report
                .failed
                .iter()
                .any(|(n, _)| *n == "secrets_never_leak"),
            "{:?}",
            report.failed
        );
    }
}

//! The events the engine emits, as types: one struct per event (the `apply:<op>:*`
//! events share one struct per phase), all variants of the serde-tagged [`EngineEvent`],
//! and one way out, [`emit`]. The same declarations give [`CATALOGUE`], from which
//! `docs/events.md` is generated (`UPDATE_EXPECT=1 cargo test -p ferry-engine --test
//! events` rewrites it; the test fails when the file drifts from the types).

mod doc;

pub use doc::{GENERATED, generated};

use std::collections::BTreeMap;

use ferry_core::{Emitter, Entry, Feature, HealthStatus};
use serde::Serialize;
use serde_json::{Value, json};

use crate::outcome::WriteKind;
use crate::plan::Evidence;
use crate::summary::FeatureStatus;

/// How many items a plan preview lists.
pub const PREVIEW_ITEMS: usize = 10;

/// How many unresolved items an `apply:unresolved` event lists.
pub const UNRESOLVED_PREVIEW: usize = 25;

/// A small description of an entry for previews: key, type, label.
pub fn preview(e: &Entry) -> Value {
    json!({
        "key": e.key(),
        "type": e.item.kind.as_str(),
        "title": e.item.label(),
    })
}

/// The first [`PREVIEW_ITEMS`] entries, as previews.
pub fn previews<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Value> {
    entries
        .into_iter()
        .take(PREVIEW_ITEMS)
        .map(preview)
        .collect()
}

/// A removal's preview: the entry's, plus the evidence behind the removal.
pub fn removal_preview(entry: &Entry, evidence: &Evidence) -> Value {
    let mut v = preview(entry);
    if let Some(m) = v.as_object_mut() {
        m.insert("evidence".into(), json!(evidence));
    }
    v
}

/// Emits one engine event. Debug events (`dbg`) only when debug is on.
pub fn emit(em: &Emitter, event: impl Into<EngineEvent>) {
    let event = event.into();
    if matches!(event, EngineEvent::Dbg(_)) && !em.debug_enabled() {
        return;
    }
    match serde_json::to_value(&event) {
        Ok(Value::Object(mut fields)) => {
            fields.shift_remove("event");
            em.emit(event.name(), Value::Object(fields));
        }
        Ok(_) => tracing::warn!("event {} is not an object", event.name()),
        Err(e) => tracing::warn!("event {} could not be serialized: {e}", event.name()),
    }
}

/// Documentation of one event, from its declaration.
#[derive(Debug, Clone, Copy)]
pub struct EventDoc {
    /// The names it is emitted under (the `apply:<op>:*` events: one per op).
    pub names: &'static [&'static str],
    /// The type that carries its fields.
    pub ty: &'static str,
    pub doc: &'static str,
    pub fields: &'static [FieldDoc],
    /// `dbg` events: the name is the `msg` of a `dbg` event, emitted only when debug is on.
    pub debug: bool,
}

/// Documentation of one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    pub name: &'static str,
    pub ty: &'static str,
    pub doc: &'static str,
    /// The field's serde attributes (`flatten`, `rename`, `skip_serializing_if`).
    pub serde: &'static str,
}

macro_rules! event_structs {
    ($(#[doc = $doc:literal])* $ty:ident { $(
        $(#[doc = $fdoc:literal])*
        $(#[serde($($sattr:tt)*)])*
        $field:ident : $fty:ty
    ),* $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct $ty {
            $(
                $(#[doc = $fdoc])*
                $(#[serde($($sattr)*)])*
                pub $field: $fty,
            )*
        }
    };
}

/// `From` for the structs of events emitted under one name.
macro_rules! event_from {
    ($ty:ident $var:ident) => {
        impl From<$ty> for EngineEvent {
            fn from(e: $ty) -> EngineEvent {
                EngineEvent::$var(e)
            }
        }
    };
    ($ty:ident $($var:ident)+) => {};
}

macro_rules! field_docs {
    ($(
        $(#[doc = $fdoc:literal])*
        $(#[serde($($sattr:tt)*)])*
        $field:ident : $fty:ty
    ),* $(,)?) => {
        &[$(FieldDoc {
            name: stringify!($field),
            ty: stringify!($fty),
            doc: concat!($($fdoc, "\n",)* ""),
            serde: concat!($(stringify!($($sattr)*), " ",)* ""),
        }),*]
    };
}

macro_rules! events {
    (
        events { $(
            $(#[doc = $doc:literal])*
            $ty:ident : $($name:literal as $var:ident),+ { $($body:tt)* }
        )* }
        debug { $(
            $(#[doc = $ddoc:literal])*
            $dty:ident : $dname:literal as $dvar:ident { $($dbody:tt)* }
        )* }
    ) => {
        $(
            event_structs! { $(#[doc = $doc])* $ty { $($body)* } }
            event_from!($ty $($var)+);
        )*
        $(event_structs! { $(#[doc = $ddoc])* $dty { $($dbody)* } })*

        /// Every event the engine emits, tagged with its name.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "event")]
        pub enum EngineEvent {
            $($(
                #[serde(rename = $name)]
                $var($ty),
            )+)*
            /// Debug events, only emitted when debug is on.
            #[serde(rename = "dbg")]
            Dbg(DebugEvent),
        }

        /// Debug events: `{"event": "dbg", "msg": name, ...}`.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "msg")]
        pub enum DebugEvent {
            $(
                #[serde(rename = $dname)]
                $dvar($dty),
            )*
        }

        $(
            impl From<$dty> for EngineEvent {
                fn from(e: $dty) -> EngineEvent {
                    EngineEvent::Dbg(DebugEvent::$dvar(e))
                }
            }
        )*

        impl EngineEvent {
            /// The event's name (`event` field).
            pub fn name(&self) -> &'static str {
                match self {
                    $($(EngineEvent::$var(_) => $name,)+)*
                    EngineEvent::Dbg(_) => "dbg",
                }
            }
        }

        /// Every engine event's documentation, in declaration order.
        pub const CATALOGUE: &[EventDoc] = &[
            $(EventDoc {
                names: &[$($name),+],
                ty: stringify!($ty),
                doc: concat!($($doc, "\n",)* ""),
                fields: field_docs!($($body)*),
                debug: false,
            },)*
            $(EventDoc {
                names: &[$dname],
                ty: stringify!($dty),
                doc: concat!($($ddoc, "\n",)* ""),
                fields: field_docs!($($dbody)*),
                debug: true,
            },)*
        ];
    };
}

macro_rules! nested {
    ($(
        $(#[doc = $doc:literal])*
        $ty:ident { $($body:tt)* }
    )*) => {
        $(event_structs! { $(#[doc = $doc])* $ty { $($body)* } })*

        /// The objects events nest, documented like the events.
        pub const NESTED: &[EventDoc] = &[
            $(EventDoc {
                names: &[],
                ty: stringify!($ty),
                doc: concat!($($doc, "\n",)* ""),
                fields: field_docs!($($body)*),
                debug: false,
            },)*
        ];
    };
}

nested! {
    /// The pair context most pair/feature events carry, flattened into them. One-way:
    /// `src` is the source and `dst` the target; two-way: `src` is side A and `dst` side B.
    Scope {
        pair: String,
        src: String,
        dst: String,
        feature: Feature,
        /// `one-way` or `two-way`.
        mode: String,
    }

    /// A guard's figures in `snapshot:suspect`, flattened into it.
    GuardFigures {
        /// Titles in the previous baseline.
        prev_count: usize,
        /// Titles in this read.
        cur_count: usize,
        /// The drop guard's limit (0 for the empty-read guard).
        shrink_limit: usize,
        prev_checkpoint: Option<String>,
        now_checkpoint: Option<String>,
    }

    /// `one:plan`'s previews (at most 10 each).
    OnePlanPreview {
        adds: Vec<Value>,
        /// Each with the `evidence` of the removal.
        removes: Vec<Value>,
    }

    /// `two:plan`'s previews (at most 10 each; removals with their `evidence`).
    TwoPlanPreview {
        #[serde(rename = "add_to_A")]
        add_to_a: Vec<Value>,
        #[serde(rename = "add_to_B")]
        add_to_b: Vec<Value>,
        #[serde(rename = "rem_from_A")]
        rem_from_a: Vec<Value>,
        #[serde(rename = "rem_from_B")]
        rem_from_b: Vec<Value>,
    }

    /// `api:totals`' body.
    TotalsBody {
        /// Requests in the run.
        total: u64,
        /// Per provider instance.
        providers: BTreeMap<String, EndpointTotals>,
    }

    /// One provider instance's requests in `api:totals`.
    EndpointTotals {
        total: u64,
        /// Per `op` (`GET /sync/watchlist`).
        by_endpoint: BTreeMap<String, u64>,
        by_feature: BTreeMap<String, u64>,
        by_method: BTreeMap<String, u64>,
        /// Per status code and per class (`5xx`).
        by_status: BTreeMap<String, u64>,
        latency_ms_avg: Option<u64>,
        latency_ms_samples: u64,
    }

    /// One provider instance's line in `http:overview`.
    OverviewLine {
        requests: u64,
        ok: u64,
        errors: u64,
        latency_ms_avg: Option<u64>,
        latency_ms_max: u64,
    }
}

impl Scope {
    /// The same context with `dst` naming another instance (a two-way target).
    pub fn to(&self, dst: &str) -> Scope {
        Scope {
            dst: dst.to_owned(),
            ..self.clone()
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

events! {
events {
    /// A health probe was repeated before its answer was taken (a `down` answer is asked
    /// again within the probe budget). Before `health`.
    HealthRetried: "health:retried" as HealthRetried {
        instance: String,
        /// Probes made, the first included.
        probes: u32,
        /// The status finally taken.
        status: HealthStatus,
    }

    /// Once per provider instance used by a selected pair, before `run:start`.
    HealthEvent: "health" as Health {
        /// The provider kind's id.
        provider: String,
        instance: String,
        /// `ok`, `degraded`, `rate_limited`, `down`, `auth_failed` or `unknown`.
        status: HealthStatus,
        /// Reads and writes may proceed.
        ok: bool,
        latency_ms: Option<u64>,
        details: Option<String>,
        /// Per feature, whether it is available now.
        features: BTreeMap<Feature, bool>,
        retry_after_secs: Option<u64>,
        /// The first usable run after `down`/`auth_failed`: this instance's deletions are
        /// held and it receives no removals.
        add_only: bool,
        /// The status recorded by the last real run.
        previous: Option<HealthStatus>,
    }

    /// After health.
    RunStart: "run:start" as RunStart {
        /// Null in a dry run.
        run_id: Option<i64>,
        dry_run: bool,
        /// Selected pairs.
        pairs: usize,
        /// The event schema version (`EVENT_SCHEMA_VERSION`).
        schema: u32,
        /// Epoch seconds.
        started_at: i64,
    }

    /// Each selected pair.
    RunPair: "run:pair" as RunPair {
        i: usize,
        n: usize,
        pair: String,
        src: String,
        dst: String,
        /// `one-way` or `two-way`.
        mode: String,
        /// Feature names, in run order.
        features: Vec<String>,
    }

    /// A pair cannot run.
    PairSkip: "pair:skip" as PairSkip {
        pair: String,
        src: String,
        dst: String,
        /// `auth_failed`, `missing_provider` or `same_instance`.
        reason: String,
        /// Not with `auth_failed`: the instances that are not configured.
        #[serde(skip_serializing_if = "Option::is_none")]
        missing: Option<Vec<String>>,
        /// With `auth_failed`.
        #[serde(skip_serializing_if = "Option::is_none")]
        src_status: Option<HealthStatus>,
        /// With `auth_failed`.
        #[serde(skip_serializing_if = "Option::is_none")]
        dst_status: Option<HealthStatus>,
    }

    /// Each enabled feature of a pair that runs.
    FeatureStart: "feature:start" as FeatureStart {
        #[serde(flatten)]
        scope: Scope,
    }

    /// A side cannot read the feature, or its health marks it unavailable.
    FeatureUnsupported: "feature:unsupported" as FeatureUnsupported {
        #[serde(flatten)]
        scope: Scope,
        src_supported: bool,
        dst_supported: bool,
    }

    /// Writes did not happen: (a) the one-way source is down (two-way: both sides), so
    /// nothing was read, planned or committed; (b) writes to a target that is down,
    /// rate limited past the budget, refusing credentials, or the run was cancelled.
    WritesSkipped: "writes:skipped" as WritesSkipped {
        pair: String,
        /// (a) only.
        #[serde(skip_serializing_if = "Option::is_none")]
        src: Option<String>,
        /// The target (a: side B).
        dst: String,
        feature: Feature,
        /// (a) only.
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        /// (a) `source_down`; (b) `provider_down`, `rate_limited`, `auth_failed`,
        /// `cancelled`.
        reason: String,
        /// (a) only: the source's status.
        #[serde(skip_serializing_if = "Option::is_none")]
        src_status: Option<HealthStatus>,
        /// (b) only: `add`, `update` or `remove`.
        #[serde(skip_serializing_if = "Option::is_none")]
        op: Option<WriteKind>,
        /// (b) only: items not written.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<usize>,
    }

    /// Both sides' activity checkpoints equal the committed ones (or, for a one-way
    /// watchlist/history target, moved only through ferry's own adds from other pairs),
    /// both were read in full within `full_read_hours`, and nothing is pending: skipped
    /// with zero list requests.
    FeatureUnchanged: "feature:unchanged" as FeatureUnchanged {
        #[serde(flatten)]
        scope: Scope,
        /// `checkpoints_unchanged` or `target_gained_own_adds_only`.
        reason: String,
        src_checkpoint: Option<String>,
        dst_checkpoint: Option<String>,
    }

    /// The shortcut did not apply and both sides are read: the first reason why.
    FeatureRead: "feature:read" as FeatureRead {
        #[serde(flatten)]
        scope: Scope,
        /// `a_side_down`, `no_checkpoint`, `first_sync`, `baseline_pending`,
        /// `journal_open`, `unresolved_items`, `mass_delete_allowed`, `recovering`,
        /// `src_changed`, `dst_changed` or `full_read_due`.
        reason: String,
        src_checkpoint: Option<String>,
        src_committed: Option<String>,
        dst_checkpoint: Option<String>,
        dst_committed: Option<String>,
    }

    /// A read failed; the feature then ends with `feature:error`.
    SnapshotFailed: "snapshot:failed" as SnapshotFailed {
        #[serde(flatten)]
        scope: Scope,
        /// The instance.
        provider: String,
        error: String,
        /// The error kind.
        kind: String,
    }

    /// Writes of a run that died before its commit were folded in.
    JournalReconciled: "journal:reconciled" as JournalReconciled {
        #[serde(flatten)]
        scope: Scope,
        batches: usize,
        /// Items with a recorded outcome.
        settled: usize,
        /// Plays whose outcome was unknown.
        in_doubt: usize,
    }

    /// A side's absences are not trusted because of its read: a guard fired, or the read
    /// was partial.
    SnapshotSuspect: "snapshot:suspect" as SnapshotSuspect {
        #[serde(flatten)]
        scope: Scope,
        /// The instance.
        provider: String,
        /// Guards only: `prev_count`, `cur_count`, `shrink_limit`, `prev_checkpoint`,
        /// `now_checkpoint`.
        #[serde(flatten)]
        figures: Option<GuardFigures>,
        /// `empty`, `collapsed` (the empty-read guard: the read lost every title of a
        /// non-empty baseline), `shrunk+no-progress`, `shrunk+no-checkpoint` (the drop
        /// guard), `partial`, or `playlist_emptied` (playlists read empty whose baseline
        /// copy held titles: kept as they were until a second read confirms; the rest of
        /// the read is trusted).
        reason: String,
        /// `partial`: why the read was partial; `playlist_emptied`: the playlists' keys.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    }

    /// Removals for one target exceed `max(floor, ratio × baseline)`: all of them are
    /// held.
    MassDeleteBlocked: "mass_delete:blocked" as MassDeleteBlocked {
        /// `dst` is the target instance.
        #[serde(flatten)]
        scope: Scope,
        attempted: usize,
        baseline: usize,
        threshold: usize,
    }

    /// The one-way plan (after the guards).
    OnePlan: "one:plan" as OnePlan {
        #[serde(flatten)]
        scope: Scope,
        adds: usize,
        updates: usize,
        removes: usize,
        /// Writes held back (see `blocked:counts`).
        held: usize,
        src_count: usize,
        dst_count: usize,
        /// `{adds, removes}`; removal previews carry their `evidence`.
        preview: OnePlanPreview,
    }

    /// The two-way plan (after the guards).
    TwoPlan: "two:plan" as TwoPlan {
        #[serde(flatten)]
        scope: Scope,
        a: String,
        b: String,
        #[serde(rename = "add_to_A")]
        add_to_a: usize,
        #[serde(rename = "add_to_B")]
        add_to_b: usize,
        #[serde(rename = "upd_to_A")]
        upd_to_a: usize,
        #[serde(rename = "upd_to_B")]
        upd_to_b: usize,
        #[serde(rename = "rem_from_A")]
        rem_from_a: usize,
        #[serde(rename = "rem_from_B")]
        rem_from_b: usize,
        held: usize,
        a_count: usize,
        b_count: usize,
        /// `{add_to_A, add_to_B, rem_from_A, rem_from_B}`.
        preview: TwoPlanPreview,
    }

    /// Some wanted writes are held (schema 1: `blocked.counts`).
    BlockedCounts: "blocked:counts" as BlockedCounts {
        #[serde(flatten)]
        scope: Scope,
        blocked_total: usize,
        /// Per reason: `mass_delete`, `removals_disabled`, `add_only`, `tombstone`,
        /// `blackbox`, `recovering`, ...
        reasons: BTreeMap<String, usize>,
        preview: Vec<Value>,
    }

    /// A restore point was saved, before the first removal to a target.
    RestoreSaved: "restore:saved" as RestoreSaved {
        #[serde(flatten)]
        scope: Scope,
        instance: String,
        id: i64,
        count: usize,
    }

    /// Before the first batch of an op to one target.
    ApplyStart: "apply:add:start" as ApplyAddStart,
        "apply:update:start" as ApplyUpdateStart,
        "apply:remove:start" as ApplyRemoveStart {
        pair: String,
        dst: String,
        feature: Feature,
        count: usize,
        dry_run: bool,
    }

    /// After each batch (a dry run: as if sent).
    ApplyProgress: "apply:add:progress" as ApplyAddProgress,
        "apply:update:progress" as ApplyUpdateProgress,
        "apply:remove:progress" as ApplyRemoveProgress {
        pair: String,
        dst: String,
        feature: Feature,
        done: usize,
        total: usize,
        /// Every item of the batch settled.
        ok: bool,
        /// Only in a dry run (`true`).
        #[serde(skip_serializing_if = "is_false")]
        dry_run: bool,
    }

    /// Cancellation seen between batches.
    ApplyCancelled: "apply:add:cancelled" as ApplyAddCancelled,
        "apply:update:cancelled" as ApplyUpdateCancelled,
        "apply:remove:cancelled" as ApplyRemoveCancelled {
        pair: String,
        dst: String,
        feature: Feature,
        done: usize,
        total: usize,
    }

    /// After the last batch of an op.
    ApplyDone: "apply:add:done" as ApplyAddDone,
        "apply:update:done" as ApplyUpdateDone,
        "apply:remove:done" as ApplyRemoveDone {
        pair: String,
        dst: String,
        feature: Feature,
        /// Confirmed.
        count: usize,
        attempted: usize,
        /// `add` only: confirmed.
        #[serde(skip_serializing_if = "Option::is_none")]
        added: Option<usize>,
        /// `update` only: confirmed.
        #[serde(skip_serializing_if = "Option::is_none")]
        updated: Option<usize>,
        /// `remove` only: confirmed.
        #[serde(skip_serializing_if = "Option::is_none")]
        removed: Option<usize>,
        /// Already in the requested state.
        skipped: usize,
        unresolved: usize,
        errors: usize,
        dry_run: bool,
    }

    /// Some items of an op did not settle.
    ApplyUnresolved: "apply:unresolved" as ApplyUnresolved {
        pair: String,
        /// The instance written to.
        provider: String,
        feature: Feature,
        op: WriteKind,
        count: usize,
        total: usize,
        shown: usize,
        omitted: usize,
        /// At most 25 previews, each with its `reason`.
        items: Vec<Value>,
        reason_counts: BTreeMap<String, usize>,
    }

    /// Items moved to the blackbox by this commit (3 consecutive failed runs).
    BlackboxAdded: "blackbox:added" as BlackboxAdded {
        #[serde(flatten)]
        scope: Scope,
        count: usize,
        /// At most 10.
        keys: Vec<String>,
    }

    /// A read, the state store or the commit failed: nothing is committed for this
    /// feature; the run goes on.
    FeatureError: "feature:error" as FeatureError {
        #[serde(flatten)]
        scope: Scope,
        error: String,
        /// The error kind (`state` for the state store).
        kind: String,
    }

    /// The run was cancelled during this feature.
    FeatureCancelled: "feature:cancelled" as FeatureCancelled {
        pair: String,
        src: String,
        dst: String,
        feature: Feature,
    }

    /// The end of every feature that started.
    FeatureDone: "feature:done" as FeatureDone {
        pair: String,
        src: String,
        dst: String,
        feature: Feature,
        status: FeatureStatus,
        /// Effective (confirmed).
        added: usize,
        updated: usize,
        removed: usize,
        unresolved: usize,
        blocked: usize,
        /// Provider calls the engine made.
        calls: u64,
        dry_run: bool,
        ms: u64,
    }

    /// End of run: requests per provider instance.
    ApiTotalsEvent: "api:totals" as ApiTotals {
        totals: TotalsBody,
    }

    /// End of run: one line per provider instance.
    HttpOverview: "http:overview" as HttpOverview {
        /// `run`.
        window: String,
        requests: u64,
        providers: BTreeMap<String, OverviewLine>,
    }

    /// End of run.
    RunDone: "run:done" as RunDone {
        run_id: Option<i64>,
        dry_run: bool,
        added: usize,
        updated: usize,
        removed: usize,
        unresolved: usize,
        blocked: usize,
        /// Features that ended in error.
        errors: usize,
        pairs: usize,
        cancelled: bool,
        ms: u64,
    }

    /// After `run:done` when the run was cancelled.
    RunCancelled: "run:cancelled" as RunCancelled {
        pairs: usize,
        added: usize,
        removed: usize,
        updated: usize,
    }

    /// A restore (`ferry restore`, outside runs) starts; the `apply:add:*` events follow.
    RestoreStart: "restore:start" as RestoreStart {
        id: i64,
        instance: String,
        feature: Feature,
        /// Entries in the restore point.
        count: usize,
    }

    /// A restore ended.
    RestoreDone: "restore:done" as RestoreDone {
        id: i64,
        instance: String,
        feature: Feature,
        /// Entries in the restore point.
        saved: usize,
        /// Of those, missing from the target before the restore.
        missing: usize,
        /// Confirmed re-added.
        restored: usize,
        /// Not re-added, by reason.
        unresolved: BTreeMap<String, usize>,
    }
}
debug {
    /// Why a side's absences were not taken as deletions (schema 1:
    /// `deletions.untrusted`).
    DeletionsUntrusted: "deletions:untrusted" as DeletionsUntrusted {
        #[serde(flatten)]
        scope: Scope,
        /// The instance.
        provider: String,
        /// `partial: …`, `delta`, `suspect: …`, `recovering`, `health unknown`,
        /// `deletions not observable`, `other side down`, `down`.
        why: Vec<String>,
    }
}
}

/// The `apply:<op>:*` events of one op.
macro_rules! per_op {
    ($($ty:ident => $add:ident, $update:ident, $remove:ident;)*) => {
        $(impl $ty {
            /// This event for `op`.
            pub fn of(self, op: WriteKind) -> EngineEvent {
                match op {
                    WriteKind::Add => EngineEvent::$add(self),
                    WriteKind::Update => EngineEvent::$update(self),
                    WriteKind::Remove => EngineEvent::$remove(self),
                }
            }
        })*
    };
}

per_op! {
    ApplyStart => ApplyAddStart, ApplyUpdateStart, ApplyRemoveStart;
    ApplyProgress => ApplyAddProgress, ApplyUpdateProgress, ApplyRemoveProgress;
    ApplyCancelled => ApplyAddCancelled, ApplyUpdateCancelled, ApplyRemoveCancelled;
    ApplyDone => ApplyAddDone, ApplyUpdateDone, ApplyRemoveDone;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::CollectingSink;

    fn scope() -> Scope {
        Scope {
            pair: "p".into(),
            src: "a".into(),
            dst: "b".into(),
            feature: Feature::Watchlist,
            mode: "one-way".into(),
        }
    }

    #[test]
    fn events_are_tagged_with_their_name_and_flatten_the_pair_context() {
        let sink = CollectingSink::new();
        let em = Emitter::to_sink(sink.clone());
        emit(
            &em,
            FeatureError {
                scope: scope(),
                error: "boom".into(),
                kind: "state".into(),
            },
        );
        emit(
            &em,
            ApplyStart {
                pair: "p".into(),
                dst: "b".into(),
                feature: Feature::History,
                count: 2,
                dry_run: false,
            }
            .of(WriteKind::Remove),
        );
        assert_eq!(
            sink.dump(),
            concat!(
                r#"{"event":"feature:error","pair":"p","src":"a","dst":"b","feature":"watchlist","mode":"one-way","error":"boom","kind":"state"}"#,
                "\n",
                r#"{"event":"apply:remove:start","pair":"p","dst":"b","feature":"history","count":2,"dry_run":false}"#
            )
        );
    }

    #[test]
    fn debug_events_only_when_debug_is_on() {
        let ev = || DeletionsUntrusted {
            scope: scope(),
            provider: "a".into(),
            why: vec!["delta".into()],
        };
        let sink = CollectingSink::new();
        emit(&Emitter::to_sink(sink.clone()), ev());
        assert!(sink.events().is_empty());
        let em = Emitter::builder().sink(sink.clone()).debug(true).build();
        emit(&em, ev());
        let e = &sink.named("dbg")[0];
        assert_eq!(
            (e.str("msg"), e.str("provider")),
            (Some("deletions:untrusted"), Some("a"))
        );
    }

    #[test]
    fn the_catalogue_names_every_variant_once() {
        let names: Vec<&str> = CATALOGUE
            .iter()
            .flat_map(|d| d.names.iter().copied())
            .collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len());
        assert!(names.contains(&"blocked:counts") && names.contains(&"apply:update:done"));
        assert!(CATALOGUE.iter().all(|d| !d.doc.trim().is_empty()));
    }
}

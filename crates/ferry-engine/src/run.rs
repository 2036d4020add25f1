//! The run lifecycle: health once per instance → per pair the gates → per feature the
//! activities shortcut → snapshots → journal reconciliation → guard verdicts → plan →
//! guardrails → apply → commit (one transaction per feature).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_core::identity::id_tokens;
use ferry_core::{
    Activities, CancelToken, Context, Emitter, Entry, Feature, InventoryOps, Outcome, Payload,
    Snapshot, Timestamp,
};
use ferry_state::{
    BaselineWrite, FeatureCommit, StateError, StateStore, TombstoneWrite, UnresolvedOp,
    UnresolvedWrite,
};
use serde_json::json;

use crate::apply::{ApplyCx, Stop, Target, apply_op};
use crate::commit::{next_baseline, retained_evidence};
use crate::config::{FeatureSwitch, Mode, PairConfig, RunConfig};
use crate::events::previews;
use crate::gate::InstanceGate;
use crate::guard::{SideVerdict, VerdictInput, mass_delete, verdict};
use crate::metrics::{ApiTotals, counting_emitter};
use crate::outcome::{OpResult, WriteKind, counts_as_failure, detail_of, reason_of};
use crate::own::{OwnWrites, checkpoint_now};
use crate::plan::{Plan, PlanInput, PlanOptions, Side, SideInput, TombstoneIndex, plan};
use crate::reconcile::{Reconciled, overlay};
use crate::summary::{
    FeatureStatus, FeatureSummary, PairSummary, PlannedFeature, RunSummary, Totals,
};

/// Provider instances by name.
pub type Providers = BTreeMap<String, Arc<dyn InventoryOps>>;

/// Why a run could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Invalid(String),
}

type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The orchestrator. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) state: StateStore,
    pub(crate) emitter: Emitter,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("state", &self.state)
            .field("emitter", &self.emitter)
            .finish()
    }
}

/// Mutable state of one run.
struct RunCx<'a> {
    cfg: &'a RunConfig,
    providers: &'a Providers,
    em: Emitter,
    totals: Arc<Mutex<ApiTotals>>,
    run_id: Option<i64>,
    now: Timestamp,
    cancel: CancelToken,
    gates: HashMap<String, InstanceGate>,
    activities: HashMap<String, Option<Activities>>,
    /// Per instance, the features whose cached checkpoint may be stale because ferry
    /// wrote another feature there this run (a play can take a title off a watchlist).
    stale: HashMap<String, BTreeSet<Feature>>,
    waited: HashSet<String>,
    plans: Option<Vec<PlannedFeature>>,
}

impl Engine {
    pub fn new(state: StateStore, emitter: Emitter) -> Self {
        Engine {
            state,
            emitter,
            clock: Arc::new(Timestamp::now),
        }
    }

    /// Replaces the wall clock (tests: tombstone and blackbox expiry).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// Runs every enabled pair once.
    pub async fn run(
        &self,
        providers: &Providers,
        cfg: &RunConfig,
        cancel: CancelToken,
    ) -> Result<RunSummary, EngineError> {
        Ok(self.execute(providers, cfg, cancel, false).await?.0)
    }

    /// A dry run that also returns every plan, with the evidence behind each removal.
    pub async fn plan(
        &self,
        providers: &Providers,
        cfg: &RunConfig,
        cancel: CancelToken,
    ) -> Result<crate::summary::PlanReport, EngineError> {
        let cfg = RunConfig {
            dry_run: true,
            ..cfg.clone()
        };
        let (summary, plans) = self.execute(providers, &cfg, cancel, true).await?;
        Ok(crate::summary::PlanReport { summary, plans })
    }

    async fn execute(
        &self,
        providers: &Providers,
        cfg: &RunConfig,
        cancel: CancelToken,
        collect: bool,
    ) -> Result<(RunSummary, Vec<PlannedFeature>), EngineError> {
        let now = (self.clock)();
        let started = Instant::now();
        let dry = cfg.dry_run;
        let run_id = if dry {
            None
        } else {
            Some(self.state.begin_run(now)?)
        };
        let (em, totals) = counting_emitter(&self.emitter, cfg.debug);
        let g = &cfg.guardrails;
        if !dry {
            let day = 86_400;
            self.state.prune_tombstones(Timestamp::from_unix(
                now.unix() - i64::from(g.tombstone_ttl_days) * day,
            ))?;
            self.state.prune_blackbox(Timestamp::from_unix(
                now.unix() - i64::from(g.blackbox_days) * day,
            ))?;
        }
        let pairs: Vec<&PairConfig> = cfg
            .pairs
            .iter()
            .filter(|p| cfg.only_pair.as_ref().is_none_or(|o| *o == p.name))
            .collect();
        if let Some(o) = &cfg.only_pair
            && pairs.is_empty()
        {
            return Err(EngineError::Invalid(format!("no pair named `{o}`")));
        }
        let mut rc = RunCx {
            cfg,
            providers,
            em,
            totals,
            run_id,
            now,
            cancel,
            gates: HashMap::new(),
            activities: HashMap::new(),
            stale: HashMap::new(),
            waited: HashSet::new(),
            plans: collect.then(Vec::new),
        };

        // Health, once per instance used by a selected pair.
        let instances: std::collections::BTreeSet<&str> = pairs
            .iter()
            .flat_map(|p| [p.source.as_str(), p.target.as_str()])
            .filter(|i| providers.contains_key(*i))
            .collect();
        for inst in instances {
            let p = &providers[inst];
            let cx = Context::new(
                rc.em
                    .with_redactions(p.secrets().iter().map(|s| s.expose().to_owned())),
                rc.cancel.clone(),
            );
            let budget = std::time::Duration::from_millis(cfg.guardrails.health_retry_ms);
            let (health, probes) = crate::gate::probe(p.as_ref(), &cx, budget).await;
            if probes > 1 {
                rc.em.emit(
                    "health:retried",
                    json!({"instance": inst, "probes": probes, "status": health.status.as_str()}),
                );
            }
            let previous = self.state.last_health(inst)?.map(|h| h.status);
            let gate = InstanceGate::new(inst, health, previous);
            rc.em.emit(
                "health",
                json!({
                    "provider": p.provider(),
                    "instance": inst,
                    "status": gate.status().as_str(),
                    "ok": gate.status().is_usable(),
                    "latency_ms": gate.health.latency_ms,
                    "details": gate.health.details,
                    "features": gate.health.features,
                    "retry_after_secs": gate.health.retry_after_secs,
                    "add_only": gate.recovering,
                    "previous": gate.previous.map(|s| s.as_str()),
                }),
            );
            if !dry {
                self.state.record_health(inst, gate.status(), now, run_id)?;
            }
            rc.gates.insert(inst.to_owned(), gate);
        }

        rc.em.emit(
            "run:start",
            json!({
                "run_id": run_id,
                "dry_run": dry,
                "pairs": pairs.len(),
                "schema": ferry_core::event::EVENT_SCHEMA_VERSION,
                "started_at": now.unix(),
            }),
        );

        // Feature by feature across all pairs (history everywhere, then the watchlists,
        // ...), not pair by pair: a feature's writes can move another feature on the same
        // service (Trakt takes a watched title off its watchlist), so every pair's
        // watchlist is compared, and its checkpoint committed, after every pair's plays
        // landed. Within a feature, pairs run in config order.
        let mut summaries = Vec::new();
        let mut active = Vec::new();
        for (i, pair) in pairs.iter().enumerate() {
            let (s, features) = self.open_pair(&mut rc, pair, i + 1, pairs.len());
            if let Some(features) = features {
                active.push((i, features));
            }
            summaries.push(s);
        }
        let mut cancelled = false;
        'features: for feature in Feature::ALL {
            for (i, features) in &active {
                let Some((_, switch)) = features.iter().find(|(f, _)| *f == feature) else {
                    continue;
                };
                if rc.cancel.is_cancelled() {
                    cancelled = true;
                    break 'features;
                }
                let fs = self.feature(&mut rc, pairs[*i], feature, *switch).await;
                cancelled |= fs.status == FeatureStatus::Cancelled;
                summaries[*i].features.push(fs);
            }
        }
        cancelled |= rc.cancel.is_cancelled();

        let api = rc.totals.lock().map(|t| t.clone()).unwrap_or_default();
        rc.em.emit("api:totals", api.totals_event());
        rc.em.emit("http:overview", api.overview_event());
        let mut summary = RunSummary {
            run_id,
            dry_run: dry,
            started_at: now,
            finished_at: Timestamp::from_unix(now.unix() + started.elapsed().as_secs() as i64),
            cancelled,
            pairs: summaries,
            totals: Totals::default(),
            api,
        };
        summary.compute_totals();
        let t = &summary.totals;
        rc.em.emit(
            "run:done",
            json!({
                "run_id": run_id,
                "dry_run": dry,
                "added": t.added,
                "updated": t.updated,
                "removed": t.removed,
                "unresolved": t.unresolved,
                "blocked": t.blocked,
                "errors": t.errors,
                "pairs": summary.pairs.len(),
                "cancelled": cancelled,
                "ms": started.elapsed().as_millis() as u64,
            }),
        );
        if cancelled {
            rc.em.emit(
                "run:cancelled",
                json!({"pairs": summary.pairs.len(), "added": t.added, "removed": t.removed, "updated": t.updated}),
            );
        }
        if let Some(id) = run_id {
            let status = if cancelled {
                ferry_state::RunStatus::Cancelled
            } else if t.errors > 0 {
                ferry_state::RunStatus::Failed
            } else {
                ferry_state::RunStatus::Ok
            };
            let json = serde_json::to_value(&summary).unwrap_or_default();
            self.state
                .finish_run(id, status, summary.finished_at, &json)?;
        }
        Ok((summary, rc.plans.unwrap_or_default()))
    }

    /// Announces a pair (`run:pair`) and decides whether it runs: its summary, and the
    /// features to run unless the pair is skipped (a missing or same instance, a side
    /// whose credentials were refused).
    fn open_pair(
        &self,
        rc: &mut RunCx<'_>,
        pair: &PairConfig,
        i: usize,
        n: usize,
    ) -> (PairSummary, Option<Vec<(Feature, FeatureSwitch)>>) {
        let features: Vec<(Feature, FeatureSwitch)> = pair_features(pair)
            .into_iter()
            .filter(|(f, _)| rc.cfg.only_feature.is_none_or(|only| only == *f))
            .collect();
        let mut out = PairSummary {
            name: pair.name.clone(),
            source: pair.source.clone(),
            target: pair.target.clone(),
            mode: pair.mode,
            skipped: None,
            features: Vec::new(),
        };
        rc.em.emit(
            "run:pair",
            json!({
                "i": i, "n": n, "pair": pair.name, "src": pair.source, "dst": pair.target,
                "mode": pair.mode.as_str(),
                "features": pair_features(pair).iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            }),
        );
        let missing: Vec<&str> = [pair.source.as_str(), pair.target.as_str()]
            .into_iter()
            .filter(|i| !rc.providers.contains_key(*i))
            .collect();
        if !missing.is_empty() || pair.source == pair.target {
            let reason = if missing.is_empty() {
                "same_instance"
            } else {
                "missing_provider"
            };
            rc.em.emit(
                "pair:skip",
                json!({"pair": pair.name, "src": pair.source, "dst": pair.target, "reason": reason, "missing": missing}),
            );
            out.skipped = Some(reason.into());
            return (out, None);
        }
        let (sa, sb) = (
            rc.gates[&pair.source].status(),
            rc.gates[&pair.target].status(),
        );
        if rc.gates[&pair.source].auth_failed() || rc.gates[&pair.target].auth_failed() {
            rc.em.emit(
                "pair:skip",
                json!({"pair": pair.name, "src": pair.source, "dst": pair.target, "reason": "auth_failed",
                       "src_status": sa.as_str(), "dst_status": sb.as_str()}),
            );
            out.skipped = Some("auth_failed".into());
            return (out, None);
        }
        (out, Some(features))
    }

    /// Runs one feature of one pair and reports it (`feature:done`).
    async fn feature(
        &self,
        rc: &mut RunCx<'_>,
        pair: &PairConfig,
        feature: Feature,
        switch: FeatureSwitch,
    ) -> FeatureSummary {
        let started = Instant::now();
        let fs = self.run_feature(rc, pair, feature, switch).await;
        if fs.status == FeatureStatus::Cancelled {
            rc.em.emit(
                "feature:cancelled",
                json!({"pair": pair.name, "src": pair.source, "dst": pair.target, "feature": feature.as_str()}),
            );
        }
        rc.em.emit(
            "feature:done",
            json!({
                "pair": pair.name, "src": pair.source, "dst": pair.target,
                "feature": feature.as_str(),
                "status": fs.status,
                "added": fs.added(), "updated": fs.updated(), "removed": fs.removed(),
                "unresolved": fs.unresolved(),
                "blocked": fs.blocked.values().sum::<usize>(),
                "calls": fs.calls,
                "dry_run": rc.cfg.dry_run,
                "ms": started.elapsed().as_millis() as u64,
            }),
        );
        fs
    }

    /// One feature's checkpoint on `inst` at the start of a feature: the run's cached
    /// one, unless ferry wrote another feature there since it was read, then asked
    /// afresh (one `activity` call) so a side effect of that write is not mistaken for
    /// someone else's change after this feature's own writes.
    async fn checkpoint_of(
        &self,
        rc: &mut RunCx<'_>,
        inst: &str,
        feature: Feature,
        calls: &mut u64,
    ) -> Option<String> {
        let cached = self
            .activities_of(rc, inst, calls)
            .await
            .and_then(|a| a.get(feature).map(str::to_owned));
        let stale = rc.stale.get_mut(inst).is_some_and(|s| s.remove(&feature));
        if !stale || cached.is_none() {
            return cached;
        }
        *calls += 1;
        let p = rc.providers[inst].clone();
        let fresh = checkpoint_now(p.as_ref(), &rc.em, &rc.cancel, feature).await;
        if let Some(Some(a)) = rc.activities.get_mut(inst) {
            match &fresh {
                Some(cp) => {
                    a.checkpoints.insert(feature, cp.clone());
                }
                None => {
                    a.checkpoints.remove(&feature);
                }
            }
        }
        fresh
    }

    async fn activities_of(
        &self,
        rc: &mut RunCx<'_>,
        inst: &str,
        calls: &mut u64,
    ) -> Option<Activities> {
        if let Some(a) = rc.activities.get(inst) {
            return a.clone();
        }
        let p = rc.providers[inst].clone();
        // Checkpoints the health probe read at the start of this run are as good as a
        // fresh `activities()` call at the instance's first feature: every feature reads
        // both sides' checkpoints before it writes, so nothing was written in between.
        // Taken, not copied: once the cache is dropped (someone else moved a checkpoint,
        // see the commit below), they are stale and `activities()` is asked afresh.
        let from_health = rc
            .gates
            .get_mut(inst)
            .and_then(|g| g.health.activities.take());
        let a = if let Some(a) = from_health.filter(|_| p.features().activities) {
            Some(a)
        } else if p.features().activities {
            *calls += 1;
            let cx = Context::new(rc.em.clone(), rc.cancel.clone());
            match p.activities(&cx).await {
                Ok(a) => Some(a),
                Err(e) => {
                    rc.em.warn(&format!("{inst}: activities failed: {e}"));
                    None
                }
            }
        } else {
            None
        };
        rc.activities.insert(inst.to_owned(), a.clone());
        a
    }

    async fn run_feature(
        &self,
        rc: &mut RunCx<'_>,
        pair: &PairConfig,
        feature: Feature,
        switch: FeatureSwitch,
    ) -> FeatureSummary {
        let mut fs = FeatureSummary::new(feature, FeatureStatus::Done);
        let (ia, ib) = (pair.source.as_str(), pair.target.as_str());
        let ctx = json!({"pair": pair.name, "src": ia, "dst": ib, "feature": feature.as_str(), "mode": pair.mode.as_str()});
        let ev = |extra: serde_json::Value| merge(&ctx, extra);
        rc.em.emit("feature:start", ctx.clone());
        let (pa, pb) = (rc.providers[ia].clone(), rc.providers[ib].clone());
        let (caps_a, caps_b) = (pa.features(), pb.features());
        let (ca, cb) = (caps_a.get(feature).cloned(), caps_b.get(feature).cloned());
        let a_ok = ca.as_ref().is_some_and(|c| c.read) && rc.gates[ia].feature_available(feature);
        let b_ok = cb.as_ref().is_some_and(|c| c.read) && rc.gates[ib].feature_available(feature);
        if !a_ok || !b_ok {
            rc.em.emit(
                "feature:unsupported",
                ev(json!({"src_supported": a_ok, "dst_supported": b_ok})),
            );
            fs.status = FeatureStatus::Unsupported;
            return fs;
        }
        let two_way = pair.mode == Mode::TwoWay;
        let (down_a, down_b) = (rc.gates[ia].down(), rc.gates[ib].down());
        if down_a && (!two_way || down_b) {
            rc.em.emit(
                "writes:skipped",
                ev(json!({"reason": "source_down", "src_status": rc.gates[ia].status().as_str()})),
            );
            fs.status = FeatureStatus::SourceDown;
            return fs;
        }
        let hits_before = hits(rc, ia) + hits(rc, ib);
        let mut calls = 0u64;

        // Checkpoints (read before the snapshots: a change after this is seen next run).
        let cp_a = if down_a {
            None
        } else {
            self.checkpoint_of(rc, ia, feature, &mut calls).await
        };
        let cp_b = if down_b {
            None
        } else {
            self.checkpoint_of(rc, ib, feature, &mut calls).await
        };

        let load = |inst: &str| self.state.load_baseline(&pair.name, inst, feature);
        let (stored_a, stored_b) = match (load(ia), load(ib)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                return self.feature_error(rc, fs, &ctx, &e.to_string(), "state");
            }
        };
        let journal = match self.state.journal_open(&pair.name, feature, rc.run_id) {
            Ok(j) => j,
            Err(e) => return self.feature_error(rc, fs, &ctx, &e.to_string(), "state"),
        };
        let unresolved = match self.state.unresolved(Some(&pair.name), Some(feature)) {
            Ok(u) => u,
            Err(e) => return self.feature_error(rc, fs, &ctx, &e.to_string(), "state"),
        };

        // The activities shortcut: nothing changed on either side since the commit, and
        // nothing is pending. Zero list requests.
        let unchanged = |cp: &Option<String>, stored: &Option<ferry_state::Baseline>| {
            cp.is_some()
                && stored
                    .as_ref()
                    .is_some_and(|b| !b.pending && b.checkpoint.as_ref() == cp.as_ref())
        };
        // A baseline is committed only after both sides were read in full, so its age
        // is the age of the last full read.
        let max_age = i64::from(rc.cfg.guardrails.full_read_hours) * 3_600;
        let read_recently = |stored: &Option<ferry_state::Baseline>| {
            stored
                .as_ref()
                .is_some_and(|b| rc.now.unix() - b.updated_at.unix() < max_age)
        };
        let fresh = read_recently(&stored_a) && read_recently(&stored_b);
        // A one-way target whose checkpoint moved only through ferry's own adds (other
        // pairs writing to it) gives this pair nothing to do (see `own`).
        let target_only_gained = || {
            crate::own::target_indifferent_to_adds(pair, feature)
                && stored_b.as_ref().is_some_and(|b| !b.pending)
                && match (
                    stored_b.as_ref().and_then(|b| b.checkpoint.as_deref()),
                    cp_b.as_deref(),
                ) {
                    (Some(from), Some(to)) => crate::own::explained_by_own_adds(
                        &crate::own::load(&self.state, ib, feature),
                        from,
                        to,
                    ),
                    _ => false,
                }
        };
        let b_same = unchanged(&cp_b, &stored_b);
        if !down_a
            && !down_b
            && unchanged(&cp_a, &stored_a)
            && (b_same || target_only_gained())
            && fresh
            && journal.is_empty()
            && unresolved.is_empty()
            && !rc.cfg.allow_mass_delete
            && !rc.gates[ia].recovering
            && !rc.gates[ib].recovering
        {
            rc.em.emit(
                "feature:unchanged",
                ev(json!({
                    "reason": if b_same { "checkpoints_unchanged" } else { "target_gained_own_adds_only" },
                    "src_checkpoint": cp_a, "dst_checkpoint": cp_b,
                })),
            );
            fs.status = FeatureStatus::Unchanged;
            fs.calls = calls;
            return fs;
        }
        // Why the shortcut did not apply: the first reason, for `--json` users asking
        // "why did it read everything?".
        let stored_cp =
            |b: &Option<ferry_state::Baseline>| b.as_ref().and_then(|b| b.checkpoint.clone());
        let why = if down_a || down_b {
            "a_side_down"
        } else if cp_a.is_none() || cp_b.is_none() {
            "no_checkpoint"
        } else if stored_a.is_none() || stored_b.is_none() {
            "first_sync"
        } else if stored_a.as_ref().is_some_and(|b| b.pending)
            || stored_b.as_ref().is_some_and(|b| b.pending)
        {
            "baseline_pending"
        } else if !journal.is_empty() {
            "journal_open"
        } else if !unresolved.is_empty() {
            "unresolved_items"
        } else if rc.cfg.allow_mass_delete {
            "mass_delete_allowed"
        } else if rc.gates[ia].recovering || rc.gates[ib].recovering {
            "recovering"
        } else if !unchanged(&cp_a, &stored_a) {
            "src_changed"
        } else if !(b_same || target_only_gained()) {
            "dst_changed"
        } else {
            "full_read_due"
        };
        rc.em.emit(
            "feature:read",
            ev(json!({
                "reason": why,
                "src_checkpoint": cp_a, "src_committed": stored_cp(&stored_a),
                "dst_checkpoint": cp_b, "dst_committed": stored_cp(&stored_b),
            })),
        );

        // Snapshots.
        let mut snaps: [Option<Snapshot>; 2] = [None, None];
        for (k, (inst, p, down)) in [(ia, &pa, down_a), (ib, &pb, down_b)]
            .into_iter()
            .enumerate()
        {
            if down {
                continue;
            }
            if rc.cancel.is_cancelled() {
                fs.status = FeatureStatus::Cancelled;
                return fs;
            }
            calls += 1;
            let cx = Context::new(
                rc.em
                    .with_redactions(p.secrets().iter().map(|s| s.expose().to_owned())),
                rc.cancel.clone(),
            );
            match p.build_index(&cx, feature).await {
                Ok(mut s) if s.feature() == feature => {
                    if let Some(c) = ca
                        .as_ref()
                        .filter(|_| k == 0)
                        .or(cb.as_ref().filter(|_| k == 1))
                        && c.semantics == ferry_core::IndexSemantics::Delta
                    {
                        s = s.with_semantics(ferry_core::IndexSemantics::Delta);
                    }
                    snaps[k] = Some(s);
                }
                Ok(s) => {
                    let msg = format!("{inst} returned a {} snapshot for {feature}", s.feature());
                    fs.calls = calls;
                    return self.feature_error(rc, fs, &ctx, &msg, "malformed_response");
                }
                Err(e) if e.kind() == ferry_core::ErrorKind::Cancelled => {
                    fs.status = FeatureStatus::Cancelled;
                    fs.calls = calls;
                    return fs;
                }
                Err(e) => {
                    rc.em.emit("snapshot:failed", ev(json!({"provider": inst, "error": e.to_string(), "kind": e.kind().as_str()})));
                    fs.calls = calls;
                    return self.feature_error(
                        rc,
                        fs,
                        &ctx,
                        &format!("{inst}: {e}"),
                        e.kind().as_str(),
                    );
                }
            }
        }
        let [snap_a, snap_b] = snaps;
        let mut snap_a = snap_a;
        let mut snap_b = snap_b;
        let prev_cp_a = stored_a.as_ref().and_then(|b| b.checkpoint.clone());
        let prev_cp_b = stored_b.as_ref().and_then(|b| b.checkpoint.clone());
        let mut base_a = stored_a.map(|b| Snapshot::committed_baseline(feature, b.entries));
        let mut base_b = stored_b.map(|b| Snapshot::committed_baseline(feature, b.entries));

        // Journal reconciliation: fold in the writes of a run that died before committing.
        let g = &rc.cfg.guardrails;
        let tol = g.history_tolerance_secs;
        let rec = Reconciled::from_records(journal);
        if !rec.is_empty() {
            overlay(
                &rec,
                ib,
                feature,
                snap_b.as_mut(),
                &mut base_b,
                &mut base_a,
                tol,
            );
            overlay(
                &rec,
                ia,
                feature,
                snap_a.as_mut(),
                &mut base_a,
                &mut base_b,
                tol,
            );
            rc.em.emit(
                "journal:reconciled",
                ev(json!({"batches": rec.batches, "settled": rec.settled_count(), "in_doubt": rec.in_doubt_count()})),
            );
        }

        // Verdicts.
        let gate_a = rc.gates[ia].clone();
        let gate_b = rc.gates[ib].clone();
        let confirmed = |inst: &str| {
            rc.cfg.allow_mass_delete
                || crate::collapse::seen_before(&self.state, &pair.name, inst, feature, rc.run_id)
        };
        let (conf_a, conf_b) = (confirmed(ia), confirmed(ib));
        let va = verdict(
            VerdictInput {
                gate: &gate_a,
                feature,
                caps: ca.as_ref(),
                baseline: base_a.as_ref(),
                prev_checkpoint: prev_cp_a.as_deref(),
                now_checkpoint: cp_a.as_deref(),
                other_down: two_way && down_b,
                collapse_confirmed: conf_a,
            },
            snap_a,
            g,
        );
        let vb = verdict(
            VerdictInput {
                gate: &gate_b,
                feature,
                caps: cb.as_ref(),
                baseline: base_b.as_ref(),
                prev_checkpoint: prev_cp_b.as_deref(),
                now_checkpoint: cp_b.as_deref(),
                other_down: two_way && down_a,
                collapse_confirmed: conf_b,
            },
            snap_b,
            g,
        );
        for (inst, v) in [(ia, &va), (ib, &vb)] {
            if let Some(s) = &v.suspect {
                rc.em.emit(
                    "snapshot:suspect",
                    ev(json!({
                        "provider": inst, "prev_count": s.prev_count, "cur_count": s.cur_count,
                        "shrink_limit": s.shrink_limit, "prev_checkpoint": s.prev_checkpoint,
                        "now_checkpoint": s.now_checkpoint, "reason": s.reason,
                    })),
                );
                fs.suspect.push((inst.to_owned(), s.clone()));
            } else if v.read && v.untrusted.iter().any(|u| u.starts_with("partial")) {
                rc.em.emit(
                    "snapshot:suspect",
                    ev(json!({"provider": inst, "reason": "partial", "detail": v.untrusted.join("; ")})),
                );
            }
            if !v.untrusted.is_empty() {
                rc.em.dbg(
                    "deletions.untrusted",
                    ev(json!({"provider": inst, "why": v.untrusted})),
                );
            }
        }

        let tombs = match self.state.tombstones(
            &pair.name,
            feature,
            Timestamp::from_unix(rc.now.unix() - i64::from(g.tombstone_ttl_days) * 86_400),
        ) {
            Ok(t) => TombstoneIndex::from_state(&t),
            Err(e) => return self.feature_error(rc, fs, &ctx, &e.to_string(), "state"),
        };
        let (bb_a, bb_b) = match self.state.blackbox(Some(&pair.name)) {
            Ok(bb) => {
                let set = |inst: &str| -> HashSet<String> {
                    bb.iter()
                        .filter(|r| r.instance == inst && r.feature == feature)
                        .map(|r| r.key.clone())
                        .collect()
                };
                (set(ia), set(ib))
            }
            Err(e) => return self.feature_error(rc, fs, &ctx, &e.to_string(), "state"),
        };

        let input = PlanInput {
            feature,
            mode: pair.mode,
            remove_mode: pair.remove_mode,
            switch,
            a: side_input(ia, &va, base_a.as_ref(), ca.as_ref(), &gate_a, &bb_a),
            b: side_input(ib, &vb, base_b.as_ref(), cb.as_ref(), &gate_b, &bb_b),
            tombstones: Some(&tombs),
            options: PlanOptions {
                history_tolerance_secs: tol,
                progress_tolerance_ms: g.progress_tolerance_ms,
                truth: if pair.a_is_truth() { Side::A } else { Side::B },
            },
        };
        let mut plan: Plan = plan(&input);

        // Mass-delete guard, per target.
        for (s, v, base) in [
            (Side::A, &va, base_a.as_ref()),
            (Side::B, &vb, base_b.as_ref()),
        ] {
            let size = base.map_or(v.view.len(), |b| b.len().min(v.view.len()));
            if let Some(m) = mass_delete(&mut plan, s, size, g, rc.cfg.allow_mass_delete) {
                rc.em.emit(
                    "mass_delete:blocked",
                    ev(json!({"dst": if s == Side::A { ia } else { ib }, "attempted": m.attempted, "baseline": m.baseline, "threshold": m.threshold})),
                );
                fs.mass_delete.push(m);
            }
        }

        // Plan events.
        for (s, counts) in [(Side::A, &mut fs.to_a), (Side::B, &mut fs.to_b)] {
            let sp = plan.side(s);
            counts.planned_adds = sp.adds.len();
            counts.planned_updates = sp.updates.len();
            counts.planned_removes = sp.removes.len();
        }
        for h in &plan.held {
            *fs.blocked.entry(h.reason.as_str().to_owned()).or_default() += 1;
        }
        let removal_preview = |s: Side| -> Vec<serde_json::Value> {
            plan.side(s)
                .removes
                .iter()
                .take(crate::events::PREVIEW_ITEMS)
                .map(|r| {
                    let mut v = crate::events::preview(&r.entry);
                    if let Some(m) = v.as_object_mut() {
                        m.insert("evidence".into(), json!(r.evidence));
                    }
                    v
                })
                .collect()
        };
        if two_way {
            rc.em.emit(
                "two:plan",
                ev(json!({
                    "a": ia, "b": ib,
                    "add_to_A": plan.to_a.adds.len(), "add_to_B": plan.to_b.adds.len(),
                    "upd_to_A": plan.to_a.updates.len(), "upd_to_B": plan.to_b.updates.len(),
                    "rem_from_A": plan.to_a.removes.len(), "rem_from_B": plan.to_b.removes.len(),
                    "held": plan.held.len(),
                    "a_count": va.view.len(), "b_count": vb.view.len(),
                    "preview": {
                        "add_to_A": previews(plan.to_a.adds.iter().map(|w| &w.entry)),
                        "add_to_B": previews(plan.to_b.adds.iter().map(|w| &w.entry)),
                        "rem_from_A": removal_preview(Side::A),
                        "rem_from_B": removal_preview(Side::B),
                    },
                })),
            );
        } else {
            rc.em.emit(
                "one:plan",
                ev(json!({
                    "adds": plan.to_b.adds.len(), "updates": plan.to_b.updates.len(),
                    "removes": plan.to_b.removes.len(), "held": plan.held.len(),
                    "src_count": va.view.len(), "dst_count": vb.view.len(),
                    "preview": {
                        "adds": previews(plan.to_b.adds.iter().map(|w| &w.entry)),
                        "removes": removal_preview(Side::B),
                    },
                })),
            );
        }
        if !plan.held.is_empty() {
            rc.em.emit(
                "blocked.counts",
                ev(json!({
                    "blocked_total": plan.held.len(),
                    "reasons": fs.blocked,
                    "preview": previews(plan.held.iter().map(|h| &h.entry)),
                })),
            );
        }
        if let Some(plans) = rc.plans.as_mut() {
            plans.push(PlannedFeature {
                pair: pair.name.clone(),
                a: ia.to_owned(),
                b: ib.to_owned(),
                plan: plan.clone(),
                a_untrusted: va.untrusted.clone(),
                b_untrusted: vb.untrusted.clone(),
            });
        }

        // Apply.
        let order: &[(Side, WriteKind)] = if two_way {
            &[
                (Side::A, WriteKind::Remove),
                (Side::B, WriteKind::Remove),
                (Side::A, WriteKind::Update),
                (Side::B, WriteKind::Update),
                (Side::A, WriteKind::Add),
                (Side::B, WriteKind::Add),
            ]
        } else {
            &[
                (Side::B, WriteKind::Update),
                (Side::B, WriteKind::Add),
                (Side::B, WriteKind::Remove),
            ]
        };
        let acx = ApplyCx {
            em: &rc.em,
            state: &self.state,
            run_id: rc.run_id,
            dry_run: rc.cfg.dry_run,
            pair: &pair.name,
            feature,
            cancel: &rc.cancel,
            now: rc.now,
        };
        let mut targets = [
            Target {
                provider: pa.as_ref(),
                instance: ia,
                batch_size: ca.as_ref().map_or(1, |c| c.batch_size),
                stop: initial_stop(&gate_a, g),
                calls: 0,
            },
            Target {
                provider: pb.as_ref(),
                instance: ib,
                batch_size: cb.as_ref().map_or(1, |c| c.batch_size),
                stop: initial_stop(&gate_b, g),
                calls: 0,
            },
        ];
        let mut results: Vec<(Side, WriteKind, OpResult)> = Vec::new();
        let mut restore_saved = [false, false];
        // Checkpoints moved by this feature's own writes (see `OwnWrites`).
        let mut own = [
            OwnWrites::new(cp_a.clone(), caps_a.activities && !rc.cfg.dry_run),
            OwnWrites::new(cp_b.clone(), caps_b.activities && !rc.cfg.dry_run),
        ];
        for (s, kind) in order {
            let sp = plan.side(*s);
            let entries: Vec<Entry> = match kind {
                WriteKind::Add => sp.adds.iter().map(|w| w.entry.clone()).collect(),
                WriteKind::Update => sp.updates.iter().map(|w| w.entry.clone()).collect(),
                WriteKind::Remove => sp.removes.iter().map(|r| r.entry.clone()).collect(),
            };
            if entries.is_empty() {
                continue;
            }
            let k = if *s == Side::A { 0 } else { 1 };
            let view = if *s == Side::A { &va.view } else { &vb.view };
            let inst = targets[k].instance;
            // Wait out a short rate limit once per instance.
            if !rc.cfg.dry_run
                && targets[k].stop.is_none()
                && let Some(w) = rc.gates[inst].rate_limit_wait().filter(|w| *w > 0)
                && rc.waited.insert(inst.to_owned())
            {
                tokio::time::sleep(std::time::Duration::from_secs(w)).await;
            }
            if *kind == WriteKind::Remove
                && !rc.cfg.dry_run
                && g.restore_points
                && !restore_saved[k]
                && targets[k].stop.is_none()
            {
                match self.state.save_restore_point(
                    rc.run_id,
                    &pair.name,
                    inst,
                    feature,
                    rc.now,
                    view.entries(),
                ) {
                    Ok(id) => {
                        restore_saved[k] = true;
                        rc.em.emit(
                            "restore:saved",
                            ev(json!({"instance": inst, "id": id, "count": view.len()})),
                        );
                    }
                    Err(e) => {
                        // No restore point, no removal.
                        rc.em.err(&format!(
                            "restore point for {inst} not saved, removals skipped: {e}"
                        ));
                        let (reason, detail) = (
                            ferry_core::UnresolvedReason::Unconfirmed,
                            "restore point could not be saved",
                        );
                        results.push((
                            *s,
                            *kind,
                            OpResult {
                                items: entries
                                    .into_iter()
                                    .map(|e| {
                                        (
                                            e,
                                            Outcome::Unresolved {
                                                reason,
                                                detail: Some(detail.into()),
                                            },
                                        )
                                    })
                                    .collect(),
                            },
                        ));
                        continue;
                    }
                }
            }
            let sends = targets[k].stop.is_none() && !rc.cfg.dry_run;
            let provider = targets[k].provider;
            if sends && own[k].tracking() {
                calls += 1;
                let pre = checkpoint_now(provider, &rc.em, &rc.cancel, feature).await;
                own[k].before(pre);
            }
            let r = apply_op(&acx, &mut targets[k], *kind, entries).await;
            results.push((*s, *kind, r));
            if sends {
                own[k].sent(*kind == WriteKind::Add);
                if own[k].tracking() {
                    calls += 1;
                    let post = checkpoint_now(provider, &rc.em, &rc.cancel, feature).await;
                    own[k].after(post);
                }
            }
        }
        // The checkpoint each side commits: after our own writes when nothing else moved
        // it, else the one read before the snapshots. Later features and pairs see it too.
        let mut committed = [cp_a.clone(), cp_b.clone()];
        for (k, o) in own.iter().enumerate() {
            if !o.sent {
                continue;
            }
            let inst = if k == 0 { ia } else { ib };
            rc.stale
                .entry(inst.to_owned())
                .or_default()
                .extend(Feature::ALL.into_iter().filter(|f| *f != feature));
            match o.settled() {
                Some(cp) => {
                    if let Some(Some(a)) = rc.activities.get_mut(inst) {
                        a.checkpoints.insert(feature, cp.clone());
                    }
                    if let Some(t) = o.adds_transition()
                        && matches!(feature, Feature::Watchlist | Feature::History)
                        && let Err(e) = crate::own::record(&self.state, inst, feature, t)
                    {
                        // Only costs a read: other pairs see a move they cannot explain.
                        rc.em.warn(&format!("{inst}: own writes not logged: {e}"));
                    }
                    committed[k] = Some(cp);
                }
                // Something else moved it: later features read the checkpoints afresh.
                None if o.declared => {
                    rc.activities.remove(inst);
                }
                None => {}
            }
        }
        let [cp_a, cp_b] = committed;
        for (k, t) in targets.iter().enumerate() {
            calls += t.calls;
            if t.stop == Some(Stop::Down)
                && let Some(gate) = rc.gates.get_mut(if k == 0 { ia } else { ib })
                && !gate.down()
            {
                // Later features treat it as down for the rest of the run.
                gate.failed_this_run = true;
            }
        }
        let was_cancelled = targets.iter().any(|t| t.stop == Some(Stop::Cancelled));

        // Effective counts, from per-item outcomes only.
        for (s, kind, r) in &results {
            let c = if *s == Side::A {
                &mut fs.to_a
            } else {
                &mut fs.to_b
            };
            match kind {
                WriteKind::Add => c.added += r.confirmed(),
                WriteKind::Update => c.updated += r.confirmed(),
                WriteKind::Remove => c.removed += r.confirmed(),
            }
            c.unchanged += r.unchanged();
            for (reason, n) in r.unresolved_by_reason() {
                *c.unresolved.entry(reason).or_default() += n;
            }
        }
        fs.calls = calls;
        fs.api_hits = (hits(rc, ia) + hits(rc, ib)).saturating_sub(hits_before);
        if was_cancelled {
            fs.status = FeatureStatus::Cancelled;
        }
        if rc.cfg.dry_run {
            return fs;
        }

        // Commit.
        let commit = build_commit(CommitInput {
            run_id: rc.run_id,
            now: rc.now,
            pair: &pair.name,
            feature,
            plan: &plan,
            results: &results,
            sides: [
                (ia, &va, base_a.as_ref(), cp_a),
                (ib, &vb, base_b.as_ref(), cp_b),
            ],
            rec: &rec,
            existing_unresolved: &unresolved,
            blackbox_after: g.blackbox_after,
            mirror_deferred: mirror_deferred(pair, switch, &vb, base_b.as_ref()),
        });
        match commit.and_then(|fc| self.state.commit_feature(&fc)) {
            Ok(promoted) => {
                for (inst, v) in [(ia, &va), (ib, &vb)] {
                    let sighting = match v.collapsed {
                        _ if !v.read => continue,
                        Some(false) => continue,
                        Some(true) => rc.run_id,
                        None => None,
                    };
                    if let Err(e) =
                        crate::collapse::record(&self.state, &pair.name, inst, feature, sighting)
                    {
                        // Only delays a confirmation by a run.
                        rc.em
                            .warn(&format!("{inst}: collapse marker not saved: {e}"));
                    }
                }
                fs.blackboxed = promoted.len();
                if !promoted.is_empty() {
                    rc.em.emit(
                        "blackbox:added",
                        ev(json!({"count": promoted.len(), "keys": promoted.iter().take(crate::events::PREVIEW_ITEMS).map(|(_, k)| k).collect::<Vec<_>>()})),
                    );
                }
            }
            Err(e) => {
                return self.feature_error(rc, fs, &ctx, &format!("commit failed: {e}"), "state");
            }
        }
        fs
    }

    fn feature_error(
        &self,
        rc: &RunCx<'_>,
        mut fs: FeatureSummary,
        ctx: &serde_json::Value,
        error: &str,
        kind: &str,
    ) -> FeatureSummary {
        rc.em.emit(
            "feature:error",
            merge(ctx, json!({"error": error, "kind": kind})),
        );
        rc.em
            .err(&format!("{} {}: {error}", ctx["pair"], ctx["feature"]));
        fs.status = FeatureStatus::Error;
        fs.detail = Some(error.to_owned());
        fs
    }
}

fn side_input<'x>(
    instance: &'x str,
    v: &'x SideVerdict,
    baseline: Option<&'x Snapshot>,
    caps: Option<&ferry_core::FeatureCaps>,
    gate: &InstanceGate,
    blackbox: &'x HashSet<String>,
) -> SideInput<'x> {
    SideInput {
        instance,
        view: &v.view,
        baseline,
        yields_deletions: v.yields_deletions,
        holds_deletions: v.holds_deletions,
        accepts_removals: caps.is_some_and(|c| c.remove) && !gate.recovering,
        accepts_adds: caps.is_some_and(|c| c.add),
        read: v.read,
        blackbox: Some(blackbox),
        plays: caps.map(|c| c.plays_per_title).unwrap_or_default(),
    }
}

fn hits(rc: &RunCx<'_>, inst: &str) -> u64 {
    rc.totals.lock().map(|t| t.hits_for(inst)).unwrap_or(0)
}

fn merge(base: &serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    let mut m = base.as_object().cloned().unwrap_or_default();
    if let serde_json::Value::Object(e) = extra {
        m.extend(e);
    }
    serde_json::Value::Object(m)
}

fn initial_stop(gate: &InstanceGate, g: &crate::config::Guardrails) -> Option<Stop> {
    if gate.down() {
        return Some(Stop::Down);
    }
    match gate.rate_limit_wait() {
        Some(w) if w > g.max_rate_limit_wait_secs => Some(Stop::RateLimited),
        _ => None,
    }
}

/// The features a pair runs, in run order, with their switches.
fn pair_features(pair: &PairConfig) -> Vec<(Feature, FeatureSwitch)> {
    Feature::ALL
        .into_iter()
        .filter_map(|f| {
            if pair.features.is_empty() {
                Some((f, FeatureSwitch::default()))
            } else {
                pair.features.get(&f).map(|s| (f, *s))
            }
        })
        .filter(|(_, s)| s.enable)
        .collect()
}

struct CommitInput<'a> {
    run_id: Option<i64>,
    now: Timestamp,
    pair: &'a str,
    feature: Feature,
    plan: &'a Plan,
    results: &'a [(Side, WriteKind, OpResult)],
    sides: [(
        &'a str,
        &'a SideVerdict,
        Option<&'a Snapshot>,
        Option<String>,
    ); 2],
    rec: &'a Reconciled,
    existing_unresolved: &'a [ferry_state::UnresolvedRecord],
    blackbox_after: u32,
    /// Mirror spared target titles its baseline had not seen: they are judged next run,
    /// which must read even if no checkpoint moves.
    mirror_deferred: bool,
}

/// Whether a one-way mirror pair holds target titles its previous baseline did not have
/// (mirror spares them this run and removes them next run if the source still lacks them).
fn mirror_deferred(
    pair: &PairConfig,
    switch: FeatureSwitch,
    target: &SideVerdict,
    baseline: Option<&Snapshot>,
) -> bool {
    pair.mode == Mode::OneWay
        && pair.remove_mode == crate::config::RemoveMode::Mirror
        && switch.remove
        && target.read
        && target
            .view
            .keys()
            .any(|k| baseline.is_none_or(|b| !b.contains_key(k)))
}

fn tombstone_for(instance: &str, e: &Entry) -> TombstoneWrite {
    TombstoneWrite {
        instance: instance.to_owned(),
        media_type: e.item.kind,
        key: e.key(),
        tokens: id_tokens(&e.item),
        event_at: match e.payload {
            Payload::Watch { watched_at } => Some(watched_at),
            _ => None,
        },
    }
}

fn build_commit(ci: CommitInput<'_>) -> Result<FeatureCommit, StateError> {
    let mut fc = FeatureCommit {
        run_id: ci.run_id,
        pair: ci.pair.to_owned(),
        feature: Some(ci.feature),
        at: Some(ci.now),
        blackbox_after: ci.blackbox_after,
        reconciled_journal: ci.rec.ids.clone(),
        ..FeatureCommit::default()
    };
    // Removals planned but not settled keep their evidence.
    let mut not_done = Vec::new();
    for (s, kind, r) in ci.results {
        if *kind != WriteKind::Remove {
            continue;
        }
        let removes = &ci.plan.side(*s).removes;
        for (e, o) in &r.items {
            if !o.is_settled()
                && let Some(rm) = removes.iter().find(|rm| &rm.entry == e)
            {
                not_done.push((&rm.evidence, &rm.entry));
            }
        }
    }
    let mut wanted: HashSet<(String, UnresolvedOp, String)> = HashSet::new();
    let mut any_pending = !ci.plan.held.is_empty() || !not_done.is_empty();
    for (s, kind, r) in ci.results {
        let inst = ci.sides[if *s == Side::A { 0 } else { 1 }].0;
        for (e, o) in &r.items {
            let key = e.key();
            wanted.insert((inst.to_owned(), kind.unresolved_op(), key.clone()));
            if o.is_settled() {
                fc.resolved
                    .push((inst.to_owned(), kind.unresolved_op(), key));
                match kind {
                    WriteKind::Remove => fc.tombstones.push(tombstone_for(inst, e)),
                    WriteKind::Add if matches!(o, Outcome::Confirmed) => {
                        fc.clear_tombstones
                            .extend(id_tokens(&e.item).into_iter().map(|t| (e.item.kind, t)));
                    }
                    _ => {}
                }
            } else {
                any_pending = true;
                fc.unresolved.push(UnresolvedWrite {
                    instance: inst.to_owned(),
                    op: kind.unresolved_op(),
                    key,
                    entry: e.clone(),
                    reason: reason_of(o).unwrap_or_default(),
                    detail: detail_of(o),
                    counts_as_failure: *kind != WriteKind::Remove && counts_as_failure(o),
                });
            }
        }
    }
    for (inst, removed) in &ci.rec.removed {
        for e in removed {
            fc.tombstones.push(tombstone_for(inst, e));
        }
    }
    for u in ci.existing_unresolved {
        let id = (u.instance.clone(), u.op, u.key.clone());
        let ours = ci.sides.iter().any(|(i, ..)| *i == u.instance);
        if ours && !wanted.contains(&id) {
            fc.obsolete.push(id);
        }
    }
    for (k, (inst, v, base, cp)) in ci.sides.iter().enumerate() {
        let side = if k == 0 { Side::A } else { Side::B };
        let settled: Vec<(WriteKind, &Entry)> = ci
            .results
            .iter()
            .filter(|(s, ..)| *s == side)
            .flat_map(|(_, kind, r)| r.settled().map(move |e| (*kind, e)))
            .collect();
        let retain = retained_evidence(ci.plan, side, *base, not_done.iter().copied());
        // A side this run could not fully judge must be read again next run even if its
        // checkpoint does not move.
        let unsure = ci
            .sides
            .iter()
            .any(|(_, v, ..)| v.policy != crate::guard::BaselinePolicy::Replace);
        let pending = any_pending || unsure || !retain.is_empty() || ci.mirror_deferred;
        if let Some(next) = next_baseline(&v.view, *base, v.policy, settled, retain) {
            fc.baselines.push(BaselineWrite::new(
                *inst,
                cp.clone(),
                pending,
                next.entries(),
            )?);
        }
    }
    Ok(fc)
}

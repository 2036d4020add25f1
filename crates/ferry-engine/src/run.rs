//! The run lifecycle: health once per instance → per pair the gates → feature by feature
//! across all pairs, each pair's feature through the stages of [`crate::stage`] (gate →
//! checkpoints → read → reconcile → judge → plan → guard → write → commit, one
//! transaction per feature) → the run's totals.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_core::{Activities, CancelToken, Context, Emitter, Feature, InventoryOps, Timestamp};
use ferry_state::{StateError, StateStore};

use crate::config::{FeatureSwitch, PairConfig, RunConfig};
use crate::events::{
    FeatureCancelled, FeatureDone, HealthEvent, HealthRetried, PairSkip, RunCancelled, RunDone,
    RunPair, RunStart, emit,
};
use crate::gate::InstanceGate;
use crate::metrics::{ApiTotals, counting_emitter};
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

/// Mutable state of one run, shared by its features' stages.
pub(crate) struct RunCx<'a> {
    pub(crate) cfg: &'a RunConfig,
    pub(crate) providers: &'a Providers,
    pub(crate) em: Emitter,
    pub(crate) totals: Arc<Mutex<ApiTotals>>,
    pub(crate) run_id: Option<i64>,
    pub(crate) now: Timestamp,
    pub(crate) cancel: CancelToken,
    pub(crate) gates: HashMap<String, InstanceGate>,
    /// Per instance, the change checkpoints read this run (`None`: none available).
    pub(crate) activities: HashMap<String, Option<Activities>>,
    /// Per instance, the features whose cached checkpoint may be stale because ferry
    /// wrote another feature there this run (a play can take a title off a watchlist).
    pub(crate) stale: HashMap<String, BTreeSet<Feature>>,
    /// Instances whose short rate limit was already waited out this run.
    pub(crate) waited: HashSet<String>,
    /// Every plan, when the caller asked for them (`Engine::plan`).
    pub(crate) plans: Option<Vec<PlannedFeature>>,
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
        if !dry {
            self.prune(cfg, now)?;
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
        self.health(&mut rc, &pairs).await?;
        emit(
            &rc.em,
            RunStart {
                run_id,
                dry_run: dry,
                pairs: pairs.len(),
                schema: ferry_core::event::EVENT_SCHEMA_VERSION,
                started_at: now.unix(),
            },
        );
        let (summaries, cancelled) = self.features(&mut rc, &pairs).await;
        let summary = self.finish(&rc, summaries, cancelled, started)?;
        Ok((summary, rc.plans.unwrap_or_default()))
    }

    /// Drops expired tombstones and blackbox entries.
    fn prune(&self, cfg: &RunConfig, now: Timestamp) -> Result<(), EngineError> {
        let g = &cfg.guardrails;
        let day = 86_400;
        self.state.prune_tombstones(Timestamp::from_unix(
            now.unix() - i64::from(g.tombstone_ttl_days) * day,
        ))?;
        self.state.prune_blackbox(Timestamp::from_unix(
            now.unix() - i64::from(g.blackbox_days) * day,
        ))?;
        Ok(())
    }

    /// Health, once per instance used by a selected pair (`health`), recorded per
    /// instance in a real run.
    async fn health(&self, rc: &mut RunCx<'_>, pairs: &[&PairConfig]) -> Result<(), EngineError> {
        let instances: BTreeSet<&str> = pairs
            .iter()
            .flat_map(|p| [p.source.as_str(), p.target.as_str()])
            .filter(|i| rc.providers.contains_key(*i))
            .collect();
        for inst in instances {
            let p = &rc.providers[inst];
            let cx = Context::new(
                rc.em
                    .with_redactions(p.secrets().iter().map(|s| s.expose().to_owned())),
                rc.cancel.clone(),
            );
            let budget = std::time::Duration::from_millis(rc.cfg.guardrails.health_retry_ms);
            let (health, probes) = crate::gate::probe(p.as_ref(), &cx, budget).await;
            if probes > 1 {
                emit(
                    &rc.em,
                    HealthRetried {
                        instance: inst.to_owned(),
                        probes,
                        status: health.status,
                    },
                );
            }
            let previous = self.state.last_health(inst)?.map(|h| h.status);
            let gate = InstanceGate::new(inst, health, previous);
            emit(
                &rc.em,
                HealthEvent {
                    provider: p.provider().to_owned(),
                    instance: inst.to_owned(),
                    status: gate.status(),
                    ok: gate.status().is_usable(),
                    latency_ms: gate.health.latency_ms,
                    details: gate.health.details.clone(),
                    features: gate.health.features.clone(),
                    retry_after_secs: gate.health.retry_after_secs,
                    add_only: gate.recovering,
                    previous: gate.previous,
                },
            );
            if !rc.cfg.dry_run {
                self.state
                    .record_health(inst, gate.status(), rc.now, rc.run_id)?;
            }
            rc.gates.insert(inst.to_owned(), gate);
        }
        Ok(())
    }

    /// Every pair's features, and whether the run was cancelled.
    ///
    /// Feature by feature across all pairs (history everywhere, then the watchlists, ...),
    /// not pair by pair: a feature's writes can move another feature on the same service
    /// (Trakt takes a watched title off its watchlist), so every pair's watchlist is
    /// compared, and its checkpoint committed, after every pair's plays landed. Within a
    /// feature, pairs run in config order.
    async fn features(
        &self,
        rc: &mut RunCx<'_>,
        pairs: &[&PairConfig],
    ) -> (Vec<PairSummary>, bool) {
        let mut summaries = Vec::new();
        let mut active = Vec::new();
        for (i, pair) in pairs.iter().enumerate() {
            let (s, features) = self.open_pair(rc, pair, i + 1, pairs.len());
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
                let fs = self.feature(rc, pairs[*i], feature, *switch).await;
                cancelled |= fs.status == FeatureStatus::Cancelled;
                summaries[*i].features.push(fs);
            }
        }
        (summaries, cancelled || rc.cancel.is_cancelled())
    }

    /// The run's totals (`api:totals`, `http:overview`, `run:done`, `run:cancelled`) and
    /// its record in the run history.
    fn finish(
        &self,
        rc: &RunCx<'_>,
        pairs: Vec<PairSummary>,
        cancelled: bool,
        started: Instant,
    ) -> Result<RunSummary, EngineError> {
        let api = rc.totals.lock().map(|t| t.clone()).unwrap_or_default();
        emit(&rc.em, api.totals_event());
        emit(&rc.em, api.overview_event());
        let now = rc.now;
        let mut summary = RunSummary {
            run_id: rc.run_id,
            dry_run: rc.cfg.dry_run,
            started_at: now,
            finished_at: Timestamp::from_unix(now.unix() + started.elapsed().as_secs() as i64),
            cancelled,
            pairs,
            totals: Totals::default(),
            api,
        };
        summary.compute_totals();
        let t = &summary.totals;
        emit(
            &rc.em,
            RunDone {
                run_id: rc.run_id,
                dry_run: rc.cfg.dry_run,
                added: t.added,
                updated: t.updated,
                removed: t.removed,
                unresolved: t.unresolved,
                blocked: t.blocked,
                errors: t.errors,
                pairs: summary.pairs.len(),
                cancelled,
                ms: started.elapsed().as_millis() as u64,
            },
        );
        if cancelled {
            emit(
                &rc.em,
                RunCancelled {
                    pairs: summary.pairs.len(),
                    added: t.added,
                    removed: t.removed,
                    updated: t.updated,
                },
            );
        }
        if let Some(id) = rc.run_id {
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
        Ok(summary)
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
        emit(
            &rc.em,
            RunPair {
                i,
                n,
                pair: pair.name.clone(),
                src: pair.source.clone(),
                dst: pair.target.clone(),
                mode: pair.mode.as_str().to_owned(),
                features: pair_features(pair)
                    .iter()
                    .map(|(f, _)| f.as_str().to_owned())
                    .collect(),
            },
        );
        let skip = |reason: &str| PairSkip {
            pair: pair.name.clone(),
            src: pair.source.clone(),
            dst: pair.target.clone(),
            reason: reason.to_owned(),
            missing: None,
            src_status: None,
            dst_status: None,
        };
        let missing: Vec<String> = [&pair.source, &pair.target]
            .into_iter()
            .filter(|i| !rc.providers.contains_key(i.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() || pair.source == pair.target {
            let reason = if missing.is_empty() {
                "same_instance"
            } else {
                "missing_provider"
            };
            emit(
                &rc.em,
                PairSkip {
                    missing: Some(missing),
                    ..skip(reason)
                },
            );
            out.skipped = Some(reason.into());
            return (out, None);
        }
        let (ga, gb) = (&rc.gates[&pair.source], &rc.gates[&pair.target]);
        if ga.auth_failed() || gb.auth_failed() {
            emit(
                &rc.em,
                PairSkip {
                    src_status: Some(ga.status()),
                    dst_status: Some(gb.status()),
                    ..skip("auth_failed")
                },
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
            emit(
                &rc.em,
                FeatureCancelled {
                    pair: pair.name.clone(),
                    src: pair.source.clone(),
                    dst: pair.target.clone(),
                    feature,
                },
            );
        }
        emit(
            &rc.em,
            FeatureDone {
                pair: pair.name.clone(),
                src: pair.source.clone(),
                dst: pair.target.clone(),
                feature,
                status: fs.status,
                added: fs.added(),
                updated: fs.updated(),
                removed: fs.removed(),
                unresolved: fs.unresolved(),
                blocked: fs.blocked.values().sum::<usize>(),
                calls: fs.calls,
                dry_run: rc.cfg.dry_run,
                ms: started.elapsed().as_millis() as u64,
            },
        );
        fs
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

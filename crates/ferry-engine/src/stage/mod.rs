//! One pair and feature as a pipeline of typed stages:
//!
//! ```text
//! gate → checkpoints → read → reconcile → judge → plan → guard → write → commit
//! ```
//!
//! Each stage is a module with a typed input and output; a stage that ends the feature
//! early (unsupported, source down, unchanged, cancelled, an error) returns [`End`].
//! Both sides travel together as [`Sides`]. The rule that holds a deletion an add-only
//! side may not act on lives in the judge (`guard::verdict` sets
//! `SideVerdict::holds_deletions`) and the planner it feeds (`plan`, `Absence`).

mod checkpoints;
mod commit;
mod gate;
mod guard;
mod judge;
mod plan;
mod read;
mod reconcile;
mod write;

use std::sync::Arc;

use ferry_core::{Feature, FeatureCaps, InventoryOps};

use crate::config::{FeatureSwitch, Mode, PairConfig};
use crate::events::{FeatureError, FeatureStart, Scope, emit};
use crate::run::{Engine, RunCx};
use crate::sides::Sides;
use crate::summary::{FeatureStatus, FeatureSummary};

/// How a feature ended before its commit.
#[derive(Debug)]
pub(crate) enum End {
    Unsupported,
    SourceDown,
    Unchanged,
    Cancelled,
    /// A read, the state store or the commit failed: nothing is committed.
    Error {
        error: String,
        kind: String,
    },
}

impl End {
    pub(crate) fn state(e: impl std::fmt::Display) -> End {
        End::Error {
            error: e.to_string(),
            kind: "state".into(),
        }
    }
}

/// What does not change while one pair's feature runs.
pub(crate) struct FeatureCx<'p> {
    pub(crate) pair: &'p PairConfig,
    pub(crate) feature: Feature,
    pub(crate) switch: FeatureSwitch,
    pub(crate) two_way: bool,
    pub(crate) instance: Sides<&'p str>,
    pub(crate) provider: Sides<Arc<dyn InventoryOps>>,
    /// The feature's capabilities on each side (`None`: not declared).
    pub(crate) caps: Sides<Option<FeatureCaps>>,
    /// Whether each side declares change checkpoints (`activities`).
    pub(crate) checkpoints: Sides<bool>,
    pub(crate) scope: Scope,
}

impl<'p> FeatureCx<'p> {
    fn new(rc: &RunCx<'_>, pair: &'p PairConfig, feature: Feature, switch: FeatureSwitch) -> Self {
        let instance = Sides::new(pair.source.as_str(), pair.target.as_str());
        let provider = instance.map(|i| rc.providers[i].clone());
        let all_caps = provider.as_ref().map(|p| p.features());
        FeatureCx {
            pair,
            feature,
            switch,
            two_way: pair.mode == Mode::TwoWay,
            instance,
            caps: all_caps.as_ref().map(|c| c.get(feature).cloned()),
            checkpoints: all_caps.map(|c| c.activities),
            provider,
            scope: Scope {
                pair: pair.name.clone(),
                src: pair.source.clone(),
                dst: pair.target.clone(),
                feature,
                mode: pair.mode.as_str().to_owned(),
            },
        }
    }
}

impl Engine {
    /// Runs one feature of one pair through the stages.
    pub(crate) async fn run_feature(
        &self,
        rc: &mut RunCx<'_>,
        pair: &PairConfig,
        feature: Feature,
        switch: FeatureSwitch,
    ) -> FeatureSummary {
        let fx = FeatureCx::new(rc, pair, feature, switch);
        emit(
            &rc.em,
            FeatureStart {
                scope: fx.scope.clone(),
            },
        );
        let mut fs = FeatureSummary::new(feature, FeatureStatus::Done);
        let mut calls = 0u64;
        let end = self.pipeline(rc, &fx, &mut fs, &mut calls).await;
        fs.calls = calls;
        match end {
            Ok(()) => {}
            Err(End::Error { error, kind }) => {
                emit(
                    &rc.em,
                    FeatureError {
                        scope: fx.scope.clone(),
                        error: error.clone(),
                        kind,
                    },
                );
                rc.em.err(&format!("{} {feature}: {error}", pair.name));
                fs.status = FeatureStatus::Error;
                fs.detail = Some(error);
            }
            Err(End::Unsupported) => fs.status = FeatureStatus::Unsupported,
            Err(End::SourceDown) => fs.status = FeatureStatus::SourceDown,
            Err(End::Unchanged) => fs.status = FeatureStatus::Unchanged,
            Err(End::Cancelled) => fs.status = FeatureStatus::Cancelled,
        }
        fs
    }

    async fn pipeline(
        &self,
        rc: &mut RunCx<'_>,
        fx: &FeatureCx<'_>,
        fs: &mut FeatureSummary,
        calls: &mut u64,
    ) -> Result<(), End> {
        let down = gate::gate(rc, fx)?;
        let hits_before = hits(rc, fx);
        let cps = checkpoints::checkpoints(self, rc, fx, down, calls).await?;
        let snaps = read::read(rc, fx, down, calls).await?;
        let (inputs, snaps) =
            reconcile::reconcile(rc, fx, cps.stored, cps.journal, snaps, &cps.now);
        let judged = judge::judge(self, rc, fx, &inputs, snaps, &cps.now, down, fs);
        let mut plan = plan::plan(self, rc, fx, &judged, &inputs.bases)?;
        guard::guard(rc, fx, &mut plan, &judged, &inputs.bases, fs);
        let written = write::write(self, rc, fx, &plan, &judged, &cps.now, calls).await;
        written.count(fs);
        fs.api_hits = hits(rc, fx).saturating_sub(hits_before);
        if written.cancelled {
            fs.status = FeatureStatus::Cancelled;
        }
        if rc.cfg.dry_run {
            return Ok(());
        }
        commit::commit(
            self,
            rc,
            fx,
            commit::CommitIn {
                plan: &plan,
                judged: &judged,
                inputs: &inputs,
                written: &written,
                unresolved: &cps.unresolved,
            },
            fs,
        )
    }
}

/// `api:hit` events counted for both sides' instances so far.
fn hits(rc: &RunCx<'_>, fx: &FeatureCx<'_>) -> u64 {
    let t = rc.totals.lock();
    t.map(|t| t.hits_for(fx.instance.a) + t.hits_for(fx.instance.b))
        .unwrap_or(0)
}

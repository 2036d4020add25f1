//! Stage 6, plan: the pure planner (`crate::plan`) over both sides' verdicts, the
//! baselines, live tombstones and the blackbox. The planner acts on the judge's verdicts:
//! a deletion is removed from the other side (`Absence::Deleted`), held
//! (`Absence::HeldDeletion`: neither removed nor added back, its evidence kept), or the
//! title is added back (`Absence::Unknown`). In: [`Judged`] and the baselines. Out: the
//! [`Plan`].

use std::collections::HashSet;

use ferry_core::{Snapshot, Timestamp};

use super::judge::Judged;
use super::{End, FeatureCx};
use crate::gate::InstanceGate;
use crate::guard::SideVerdict;
use crate::plan::{Plan, PlanInput, PlanOptions, Side, SideInput, TombstoneIndex};
use crate::run::{Engine, RunCx};
use crate::sides::Sides;

pub(super) fn plan(
    engine: &Engine,
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    judged: &Judged,
    bases: &Sides<Option<Snapshot>>,
) -> Result<Plan, End> {
    let g = &rc.cfg.guardrails;
    let since = Timestamp::from_unix(rc.now.unix() - i64::from(g.tombstone_ttl_days) * 86_400);
    let tombs = engine
        .state
        .tombstones(&fx.pair.name, fx.feature, since)
        .map(|t| TombstoneIndex::from_state(&t))
        .map_err(End::state)?;
    let bb = engine
        .state
        .blackbox(Some(&fx.pair.name))
        .map_err(End::state)?;
    let blackbox: Sides<HashSet<String>> = fx.instance.map(|inst| {
        bb.iter()
            .filter(|r| r.instance == inst && r.feature == fx.feature)
            .map(|r| r.key.clone())
            .collect()
    });
    let side = |s: Side| {
        side_input(
            fx.instance.get(s),
            judged.verdicts.get(s),
            bases.get(s).as_ref(),
            fx.caps.get(s).as_ref(),
            judged.gates.get(s),
            blackbox.get(s),
        )
    };
    let input = PlanInput {
        feature: fx.feature,
        mode: fx.pair.mode,
        remove_mode: fx.pair.remove_mode,
        switch: fx.switch,
        a: side(Side::A),
        b: side(Side::B),
        tombstones: Some(&tombs),
        options: PlanOptions {
            history_tolerance_secs: g.history_tolerance_secs,
            progress_tolerance_ms: g.progress_tolerance_ms,
            truth: if fx.pair.a_is_truth() {
                Side::A
            } else {
                Side::B
            },
        },
    };
    Ok(crate::plan::plan(&input))
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
        filled: Some(&v.filled),
        accepts_removals: caps.is_some_and(|c| c.remove) && !gate.recovering,
        accepts_adds: caps.is_some_and(|c| c.add),
        read: v.read,
        blackbox: Some(blackbox),
        plays: caps.map(|c| c.plays_per_title).unwrap_or_default(),
    }
}

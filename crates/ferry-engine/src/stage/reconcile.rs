//! Stage 4, reconcile: the committed baselines as snapshots, with the writes of a run
//! that died before its commit folded in (`journal:reconciled`, see `crate::reconcile`).
//! In: the stored baselines, the open journal rows and the snapshots. Out: [`Inputs`] and
//! the snapshots, plus what the journal says landed on each side.

use ferry_core::Snapshot;
use ferry_state::{Baseline, JournalRecord};

use super::FeatureCx;
use crate::events::{JournalReconciled, emit};
use crate::reconcile::{Reconciled, overlay};
use crate::run::RunCx;
use crate::sides::Sides;

/// What the judge and the planner start from.
pub(super) struct Inputs {
    /// The previous baselines (plus what the journal says landed).
    pub(super) bases: Sides<Option<Snapshot>>,
    /// The checkpoints committed with the previous baselines.
    pub(super) prev_checkpoint: Sides<Option<String>>,
    /// The reads as the providers answered them, when the journal changed them: the
    /// collapse and empty-read rules judge what the side said, not what the journal
    /// added to it.
    pub(super) raw_reads: Sides<Option<Snapshot>>,
    /// Sides whose baseline the journal added titles to: those titles were never
    /// committed with the stored checkpoint, so it anchors no collapse of them
    /// (`crate::collapse`).
    pub(super) unanchored: Sides<bool>,
    pub(super) rec: Reconciled,
}

pub(super) fn reconcile(
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    stored: Sides<Option<Baseline>>,
    journal: Vec<JournalRecord>,
    mut snaps: Sides<Option<Snapshot>>,
    now_checkpoint: &Sides<Option<String>>,
) -> (Inputs, Sides<Option<Snapshot>>) {
    let prev_checkpoint = stored
        .as_ref()
        .map(|b| b.as_ref().and_then(|b| b.checkpoint.clone()));
    let mut bases = stored.map(|b| b.map(|b| Snapshot::committed_baseline(fx.feature, b.entries)));
    let mut rec = Reconciled::from_records(journal);
    let raw_reads = if rec.is_empty() {
        Sides::new(None, None)
    } else {
        snaps.clone()
    };
    let sizes = bases.as_ref().map(|b| b.as_ref().map_or(0, Snapshot::len));
    if !rec.is_empty() {
        let tol = rc.cfg.guardrails.history_tolerance_secs;
        let Sides {
            a: base_a,
            b: base_b,
        } = &mut bases;
        overlay(
            &rec,
            fx.instance.b,
            fx.feature,
            snaps.b.as_mut(),
            base_b,
            base_a,
            tol,
        );
        overlay(
            &rec,
            fx.instance.a,
            fx.feature,
            snaps.a.as_mut(),
            base_a,
            base_b,
            tol,
        );
        for (side, inst) in fx.instance {
            // Decided by a whole read, unless it is an empty one nothing confirms yet
            // (no baseline, or the checkpoint moved: see `guard::verdict`).
            let settled_empty = || {
                bases.get(side).is_some() && prev_checkpoint.get(side) == now_checkpoint.get(side)
            };
            let whole = raw_reads
                .get(side)
                .as_ref()
                .is_some_and(|s| s.is_complete() && (!s.is_empty() || settled_empty()));
            rec.keep_undecided(inst, whole);
        }
        emit(
            &rc.em,
            JournalReconciled {
                scope: fx.scope.clone(),
                batches: rec.batches,
                settled: rec.settled_count(),
                in_doubt: rec.in_doubt_count(),
            },
        );
    }
    let unanchored = bases
        .as_ref()
        .zip(sizes)
        .map(|(b, n)| b.as_ref().map_or(0, Snapshot::len) > n);
    let inputs = Inputs {
        unanchored,
        bases,
        prev_checkpoint,
        raw_reads,
        rec,
    };
    (inputs, snaps)
}

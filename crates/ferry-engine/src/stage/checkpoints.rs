//! Stage 2, checkpoints: each side's change checkpoint (read before the snapshots: a
//! change after it is seen next run), the committed baselines, open journal rows and
//! unresolved items, and the activities shortcut. In: which sides are down. Out:
//! [`Checkpoints`], or the end of the feature when nothing changed (`feature:unchanged`;
//! otherwise `feature:read` says why it reads).

use ferry_core::{Activities, Context, Feature};
use ferry_state::{Baseline, JournalRecord, UnresolvedRecord};

use super::{End, FeatureCx};
use crate::events::{FeatureRead, FeatureUnchanged, emit};
use crate::own::checkpoint_now;
use crate::run::{Engine, RunCx};
use crate::sides::Sides;

/// What the feature starts from.
pub(super) struct Checkpoints {
    /// Each side's checkpoint now (`None`: down, or not declared).
    pub(super) now: Sides<Option<String>>,
    /// Each side's committed baseline for this pair.
    pub(super) stored: Sides<Option<Baseline>>,
    /// Journal rows of runs that died before their commit.
    pub(super) journal: Vec<JournalRecord>,
    pub(super) unresolved: Vec<UnresolvedRecord>,
}

pub(super) async fn checkpoints(
    engine: &Engine,
    rc: &mut RunCx<'_>,
    fx: &FeatureCx<'_>,
    down: Sides<bool>,
    calls: &mut u64,
) -> Result<Checkpoints, End> {
    let mut now = Sides::<Option<String>>::default();
    for (side, inst) in fx.instance {
        if !*down.get(side) {
            *now.get_mut(side) = checkpoint_of(rc, inst, fx.feature, calls).await;
        }
    }
    let state = &engine.state;
    let cps = Checkpoints {
        now,
        stored: fx
            .instance
            .map(|i| state.load_baseline(&fx.pair.name, i, fx.feature))
            .transpose()
            .map_err(End::state)?,
        journal: state
            .journal_open(&fx.pair.name, fx.feature, rc.run_id)
            .map_err(End::state)?,
        unresolved: state
            .unresolved(Some(&fx.pair.name), Some(fx.feature))
            .map_err(End::state)?,
    };
    shortcut(engine, rc, fx, down, &cps)?;
    Ok(cps)
}

/// The activities shortcut: nothing changed on either side since the commit, and nothing
/// is pending. Zero list requests.
fn shortcut(
    engine: &Engine,
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    down: Sides<bool>,
    cps: &Checkpoints,
) -> Result<(), End> {
    let unchanged = cps
        .now
        .as_ref()
        .zip(cps.stored.as_ref())
        .map(|(cp, stored)| {
            cp.is_some()
                && stored
                    .as_ref()
                    .is_some_and(|b| !b.pending && b.checkpoint.as_ref() == cp.as_ref())
        });
    // A baseline is committed only after both sides were read in full, so its age is the
    // age of the last full read.
    let max_age = i64::from(rc.cfg.guardrails.full_read_hours) * 3_600;
    let fresh = cps.stored.all(|s| {
        s.as_ref()
            .is_some_and(|b| rc.now.unix() - b.updated_at.unix() < max_age)
    });
    // A one-way target whose checkpoint moved only through ferry's own adds (other pairs
    // writing to it) gives this pair nothing to do (see `own`).
    let target_only_gained = || {
        crate::own::target_indifferent_to_adds(fx.pair, fx.feature)
            && cps.stored.b.as_ref().is_some_and(|b| !b.pending)
            && match (
                cps.stored.b.as_ref().and_then(|b| b.checkpoint.as_deref()),
                cps.now.b.as_deref(),
            ) {
                (Some(from), Some(to)) => crate::own::explained_by_own_adds(
                    &crate::own::load(&engine.state, fx.instance.b, fx.feature),
                    from,
                    to,
                ),
                _ => false,
            }
    };
    let recovering = fx.instance.any(|i| rc.gates[*i].recovering);
    if !down.any(|d| *d)
        && unchanged.a
        && (unchanged.b || target_only_gained())
        && fresh
        && cps.journal.is_empty()
        && cps.unresolved.is_empty()
        && !rc.cfg.allow_mass_delete
        && !recovering
    {
        emit(
            &rc.em,
            FeatureUnchanged {
                scope: fx.scope.clone(),
                reason: if unchanged.b {
                    "checkpoints_unchanged"
                } else {
                    "target_gained_own_adds_only"
                }
                .into(),
                src_checkpoint: cps.now.a.clone(),
                dst_checkpoint: cps.now.b.clone(),
            },
        );
        return Err(End::Unchanged);
    }
    // Why the shortcut did not apply: the first reason, for `--json` users asking "why
    // did it read everything?".
    let why = if down.any(|d| *d) {
        "a_side_down"
    } else if cps.now.any(Option::is_none) {
        "no_checkpoint"
    } else if cps.stored.any(Option::is_none) {
        "first_sync"
    } else if cps.stored.any(|b| b.as_ref().is_some_and(|b| b.pending)) {
        "baseline_pending"
    } else if !cps.journal.is_empty() {
        "journal_open"
    } else if !cps.unresolved.is_empty() {
        "unresolved_items"
    } else if rc.cfg.allow_mass_delete {
        "mass_delete_allowed"
    } else if recovering {
        "recovering"
    } else if !unchanged.a {
        "src_changed"
    } else if !(unchanged.b || target_only_gained()) {
        "dst_changed"
    } else {
        "full_read_due"
    };
    let committed = cps
        .stored
        .as_ref()
        .map(|b| b.as_ref().and_then(|b| b.checkpoint.clone()));
    emit(
        &rc.em,
        FeatureRead {
            scope: fx.scope.clone(),
            reason: why.into(),
            src_checkpoint: cps.now.a.clone(),
            src_committed: committed.a,
            dst_checkpoint: cps.now.b.clone(),
            dst_committed: committed.b,
        },
    );
    Ok(())
}

/// One feature's checkpoint on `inst` at the start of a feature: the run's cached one,
/// unless ferry wrote another feature there since it was read, then asked afresh (one
/// `activity` call) so a side effect of that write is not mistaken for someone else's
/// change after this feature's own writes.
async fn checkpoint_of(
    rc: &mut RunCx<'_>,
    inst: &str,
    feature: Feature,
    calls: &mut u64,
) -> Option<String> {
    let cached = activities_of(rc, inst, calls)
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

async fn activities_of(rc: &mut RunCx<'_>, inst: &str, calls: &mut u64) -> Option<Activities> {
    if let Some(a) = rc.activities.get(inst) {
        return a.clone();
    }
    let p = rc.providers[inst].clone();
    // Checkpoints the health probe read at the start of this run are as good as a fresh
    // `activities()` call at the instance's first feature: every feature reads both
    // sides' checkpoints before it writes, so nothing was written in between. Taken, not
    // copied: once the cache is dropped (someone else moved a checkpoint, see the commit
    // stage), they are stale and `activities()` is asked afresh.
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

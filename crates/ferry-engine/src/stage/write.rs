//! Stage 8, write: the plan's ops in apply order (one-way: updates, adds, removes;
//! two-way: removes, updates, adds), each through `apply::apply_op` (batches, the
//! journal, `apply:*` events), a restore point before the first removal to a target, and
//! the chain of checkpoints around each op (`own`). In: the guarded plan, the verdicts
//! and the checkpoints read before the snapshots. Out: [`Written`]: per-op outcomes and
//! the checkpoint each side commits.

use ferry_core::{Entry, Feature, Outcome, Snapshot, UnresolvedReason};

use super::FeatureCx;
use super::judge::Judged;
use crate::apply::{ApplyCx, Stop, Target, apply_op};
use crate::config::Guardrails;
use crate::events::{RestoreSaved, emit};
use crate::gate::InstanceGate;
use crate::outcome::{OpResult, WriteKind};
use crate::own::{OwnWrites, checkpoint_now};
use crate::plan::{Plan, Side};
use crate::run::{Engine, RunCx};
use crate::sides::Sides;
use crate::summary::FeatureSummary;

/// What the writes did.
pub(super) struct Written {
    pub(super) results: Vec<(Side, WriteKind, OpResult)>,
    /// The checkpoint each side commits: after our own writes when nothing else moved
    /// it, else the one read before the snapshots.
    pub(super) checkpoint: Sides<Option<String>>,
    pub(super) cancelled: bool,
}

impl Written {
    /// Effective counts, from per-item outcomes only.
    pub(super) fn count(&self, fs: &mut FeatureSummary) {
        for (s, kind, r) in &self.results {
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
    }
}

fn order(two_way: bool) -> &'static [(Side, WriteKind)] {
    if two_way {
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
    }
}

fn entries_of(plan: &Plan, side: Side, kind: WriteKind) -> Vec<Entry> {
    let sp = plan.side(side);
    match kind {
        WriteKind::Add => sp.adds.iter().map(|w| w.entry.clone()).collect(),
        WriteKind::Update => sp.updates.iter().map(|w| w.entry.clone()).collect(),
        WriteKind::Remove => sp.removes.iter().map(|r| r.entry.clone()).collect(),
    }
}

fn initial_stop(gate: &InstanceGate, g: &Guardrails) -> Option<Stop> {
    if gate.down() {
        return Some(Stop::Down);
    }
    match gate.rate_limit_wait() {
        Some(w) if w > g.max_rate_limit_wait_secs => Some(Stop::RateLimited),
        _ => None,
    }
}

pub(super) async fn write(
    engine: &Engine,
    rc: &mut RunCx<'_>,
    fx: &FeatureCx<'_>,
    plan: &Plan,
    judged: &Judged,
    now_checkpoint: &Sides<Option<String>>,
    calls: &mut u64,
) -> Written {
    let dry = rc.cfg.dry_run;
    let mut targets = fx.instance.map_sides(|s, instance| Target {
        provider: fx.provider.get(s).as_ref(),
        instance,
        batch_size: fx.caps.get(s).as_ref().map_or(1, |c| c.batch_size),
        stop: initial_stop(judged.gates.get(s), &rc.cfg.guardrails),
        calls: 0,
    });
    // Checkpoints moved by this feature's own writes (see `OwnWrites`).
    let mut own = now_checkpoint
        .clone()
        .zip(fx.checkpoints)
        .map(|(cp, declared)| OwnWrites::new(cp, declared && !dry));
    let mut restore_saved = Sides::both(false);
    let mut results = Vec::new();
    let acx = ApplyCx {
        em: &rc.em,
        state: &engine.state,
        run_id: rc.run_id,
        dry_run: dry,
        pair: &fx.pair.name,
        feature: fx.feature,
        cancel: &rc.cancel,
        now: rc.now,
    };
    for &(side, kind) in order(fx.two_way) {
        let mut entries = entries_of(plan, side, kind);
        if entries.is_empty() {
            continue;
        }
        let target = targets.get_mut(side);
        let inst = target.instance;
        // Wait out a short rate limit once per instance.
        if !dry
            && target.stop.is_none()
            && let Some(w) = rc.gates[inst].rate_limit_wait().filter(|w| *w > 0)
            && rc.waited.insert(inst.to_owned())
        {
            tokio::time::sleep(std::time::Duration::from_secs(w)).await;
        }
        if kind == WriteKind::Remove
            && !dry
            && rc.cfg.guardrails.restore_points
            && !restore_saved.get(side)
            && target.stop.is_none()
        {
            let view = &judged.verdicts.get(side).view;
            match restore_point(engine, rc, fx, inst, view, entries) {
                Ok(back) => {
                    entries = back;
                    *restore_saved.get_mut(side) = true;
                }
                Err(not_sent) => {
                    results.push((side, kind, not_sent));
                    continue;
                }
            }
        }
        let sends = target.stop.is_none() && !dry;
        let provider = target.provider;
        let own = own.get_mut(side);
        if sends && own.tracking() {
            *calls += 1;
            own.before(checkpoint_now(provider, &rc.em, &rc.cancel, fx.feature).await);
        }
        let r = apply_op(&acx, target, kind, entries).await;
        results.push((side, kind, r));
        if sends {
            own.sent(kind == WriteKind::Add);
            if own.tracking() {
                *calls += 1;
                own.after(checkpoint_now(provider, &rc.em, &rc.cancel, fx.feature).await);
            }
        }
    }
    let checkpoint = settle_checkpoints(engine, rc, fx, &own, now_checkpoint);
    for (side, t) in targets.iter() {
        *calls += t.calls;
        if t.stop == Some(Stop::Down)
            && let Some(gate) = rc.gates.get_mut(*fx.instance.get(side))
            && !gate.down()
        {
            // Later features treat it as down for the rest of the run.
            gate.failed_this_run = true;
        }
    }
    Written {
        results,
        checkpoint,
        cancelled: targets.any(|t| t.stop == Some(Stop::Cancelled)),
    }
}

/// Saves the target's current view before its first removal. No restore point, no
/// removal: `Err` holds the removals, unresolved.
fn restore_point(
    engine: &Engine,
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    inst: &str,
    view: &Snapshot,
    entries: Vec<Entry>,
) -> Result<Vec<Entry>, OpResult> {
    let saved = engine.state.save_restore_point(
        rc.run_id,
        &fx.pair.name,
        inst,
        fx.feature,
        rc.now,
        view.entries(),
    );
    match saved {
        Ok(id) => {
            emit(
                &rc.em,
                RestoreSaved {
                    scope: fx.scope.clone(),
                    instance: inst.to_owned(),
                    id,
                    count: view.len(),
                },
            );
            Ok(entries)
        }
        Err(e) => {
            rc.em.err(&format!(
                "restore point for {inst} not saved, removals skipped: {e}"
            ));
            let outcome = Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                detail: Some("restore point could not be saved".into()),
            };
            Err(OpResult {
                items: entries.into_iter().map(|e| (e, outcome.clone())).collect(),
            })
        }
    }
}

/// The checkpoint each side commits, and the run's checkpoint cache after this feature's
/// writes: later features and pairs see the checkpoint after our writes, or read afresh
/// when something else moved it.
fn settle_checkpoints(
    engine: &Engine,
    rc: &mut RunCx<'_>,
    fx: &FeatureCx<'_>,
    own: &Sides<OwnWrites>,
    now_checkpoint: &Sides<Option<String>>,
) -> Sides<Option<String>> {
    let mut committed = now_checkpoint.clone();
    for (side, o) in own.iter() {
        if !o.sent {
            continue;
        }
        let inst = *fx.instance.get(side);
        rc.stale
            .entry(inst.to_owned())
            .or_default()
            .extend(Feature::ALL.into_iter().filter(|f| *f != fx.feature));
        match o.settled() {
            Some(cp) => {
                if let Some(Some(a)) = rc.activities.get_mut(inst) {
                    a.checkpoints.insert(fx.feature, cp.clone());
                }
                if let Some(t) = o.adds_transition()
                    && matches!(fx.feature, Feature::Watchlist | Feature::History)
                    && let Err(e) = crate::own::record(&engine.state, inst, fx.feature, t)
                {
                    // Only costs a read: other pairs see a move they cannot explain.
                    rc.em.warn(&format!("{inst}: own writes not logged: {e}"));
                }
                *committed.get_mut(side) = Some(cp);
            }
            // Something else moved it: later features read the checkpoints afresh.
            None if o.declared => {
                rc.activities.remove(inst);
            }
            None => {}
        }
    }
    committed
}

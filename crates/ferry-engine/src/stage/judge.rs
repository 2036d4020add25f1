//! Stage 5, judge: what each side's read is worth this run (`guard::verdict`):
//! completeness, semantics, the empty-read and drop guards, health. This is where the
//! held-evidence rule starts: a trusted read of an add-only side (recovering from an
//! outage) gets `holds_deletions`, which the planner turns into held deletions. In: the
//! snapshots, baselines and checkpoints. Out: [`Judged`] (`snapshot:suspect`,
//! `dbg deletions:untrusted`).

use ferry_core::Snapshot;

use super::FeatureCx;
use super::reconcile::Inputs;
use crate::events::{DeletionsUntrusted, GuardFigures, SnapshotSuspect, emit};
use crate::gate::InstanceGate;
use crate::guard::{SideVerdict, VerdictInput, verdict};
use crate::run::{Engine, RunCx};
use crate::sides::Sides;
use crate::summary::FeatureSummary;

/// Both sides judged, with the health gates they were judged by.
pub(super) struct Judged {
    pub(super) verdicts: Sides<SideVerdict>,
    pub(super) gates: Sides<InstanceGate>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn judge(
    engine: &Engine,
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    inputs: &Inputs,
    snaps: Sides<Option<Snapshot>>,
    now_checkpoint: &Sides<Option<String>>,
    down: Sides<bool>,
    fs: &mut FeatureSummary,
) -> Judged {
    let gates = fx.instance.map(|i| rc.gates[i].clone());
    let verdicts = snaps.map_sides(|side, snap| {
        let inst = *fx.instance.get(side);
        let collapse_confirmed = rc.cfg.allow_mass_delete
            || crate::collapse::confirmed(
                &engine.state,
                &fx.pair.name,
                inst,
                fx.feature,
                rc.run_id,
                now_checkpoint.get(side).as_deref(),
                inputs.raw_reads.get(side).as_ref().or(snap.as_ref()),
            );
        let held = crate::collapse::evidence(&engine.state, &fx.pair.name, inst, fx.feature);
        let emptied_held = emptied_held(
            engine,
            rc,
            fx,
            inst,
            inputs,
            snap.as_ref(),
            now_checkpoint.get(side).as_deref(),
            side,
        );
        let input = VerdictInput {
            emptied_held: &emptied_held,
            held_evidence: &held,
            gate: gates.get(side),
            feature: fx.feature,
            caps: fx.caps.get(side).as_ref(),
            baseline: inputs.bases.get(side).as_ref(),
            prev_checkpoint: inputs.prev_checkpoint.get(side).as_deref(),
            raw_read: inputs.raw_reads.get(side).as_ref(),
            now_checkpoint: now_checkpoint.get(side).as_deref(),
            other_down: fx.two_way && *down.get(side.other()),
            collapse_confirmed,
        };
        verdict(input, snap, &rc.cfg.guardrails)
    });
    for (side, v) in verdicts.iter() {
        report(rc, fx, fx.instance.get(side), v, fs);
    }
    Judged { verdicts, gates }
}

/// The playlists a whole read of this side shows empty while its baseline copy held
/// titles, less those an earlier run's sighting confirms (`crate::emptied`); none when
/// the user allowed mass deletes.
#[allow(clippy::too_many_arguments)]
fn emptied_held(
    engine: &Engine,
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    inst: &str,
    inputs: &Inputs,
    snap: Option<&Snapshot>,
    now_checkpoint: Option<&str>,
    side: crate::plan::Side,
) -> std::collections::HashSet<String> {
    let Some(snap) = snap else {
        return Default::default();
    };
    if fx.feature != ferry_core::Feature::Playlists || rc.cfg.allow_mass_delete {
        return Default::default();
    }
    let read = inputs.raw_reads.get(side).as_ref().unwrap_or(snap);
    let keys = crate::emptied::emptied(inputs.bases.get(side).as_ref(), read);
    let confirmed = crate::emptied::confirmed(
        &engine.state,
        &fx.pair.name,
        inst,
        rc.run_id,
        now_checkpoint,
        &keys,
    );
    keys.into_iter()
        .filter(|k| !confirmed.contains(k))
        .collect()
}

/// The events of one side's verdict.
fn report(
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    inst: &str,
    v: &SideVerdict,
    fs: &mut FeatureSummary,
) {
    if let Some(s) = &v.suspect {
        emit(
            &rc.em,
            SnapshotSuspect {
                scope: fx.scope.clone(),
                provider: inst.to_owned(),
                reason: s.reason.clone(),
                figures: Some(GuardFigures {
                    prev_count: s.prev_count,
                    cur_count: s.cur_count,
                    shrink_limit: s.shrink_limit,
                    prev_checkpoint: s.prev_checkpoint.clone(),
                    now_checkpoint: s.now_checkpoint.clone(),
                }),
                detail: None,
            },
        );
        fs.suspect.push((inst.to_owned(), s.clone()));
    } else if !v.emptied.is_empty() {
        emit(
            &rc.em,
            SnapshotSuspect {
                scope: fx.scope.clone(),
                provider: inst.to_owned(),
                reason: "playlist_emptied".into(),
                figures: None,
                detail: Some(v.emptied.join(", ")),
            },
        );
    } else if v.read && v.untrusted.iter().any(|u| u.starts_with("partial")) {
        emit(
            &rc.em,
            SnapshotSuspect {
                scope: fx.scope.clone(),
                provider: inst.to_owned(),
                reason: "partial".into(),
                figures: None,
                detail: Some(v.untrusted.join("; ")),
            },
        );
    }
    if !v.untrusted.is_empty() {
        emit(
            &rc.em,
            DeletionsUntrusted {
                scope: fx.scope.clone(),
                provider: inst.to_owned(),
                why: v.untrusted.clone(),
            },
        );
    }
}

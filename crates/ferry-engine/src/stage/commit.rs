//! Stage 9, commit: one transaction per feature (`StateStore::commit_feature`): each
//! side's next baseline (`crate::commit::next_baseline`, with the evidence that was not
//! acted on retained), checkpoints, tombstones, unresolved items, the blackbox and the
//! reconciled journal rows; then the collapse markers (`crate::collapse`) and
//! `blackbox:added`. Not in a dry run. In: the plan, verdicts, baselines and what the
//! writes did. Out: nothing, or the end of the feature when the commit fails.

use std::collections::HashSet;

use ferry_core::identity::id_tokens;
use ferry_core::{Entry, Outcome, Payload, Snapshot};
use ferry_state::{
    BaselineWrite, FeatureCommit, StateError, TombstoneWrite, UnresolvedOp, UnresolvedRecord,
    UnresolvedWrite,
};

use super::judge::Judged;
use super::reconcile::Inputs;
use super::write::Written;
use super::{End, FeatureCx};
use crate::commit::{next_baseline, retained_evidence};
use crate::config::{Mode, RemoveMode};
use crate::events::{BlackboxAdded, PREVIEW_ITEMS, emit};
use crate::guard::{BaselinePolicy, SideVerdict};
use crate::outcome::{WriteKind, counts_as_failure, detail_of, reason_of};
use crate::plan::{Evidence, Plan};
use crate::run::{Engine, RunCx};
use crate::sides::Sides;
use crate::summary::FeatureSummary;

/// What the commit is built from.
pub(super) struct CommitIn<'a> {
    pub(super) plan: &'a Plan,
    pub(super) judged: &'a Judged,
    pub(super) inputs: &'a Inputs,
    pub(super) written: &'a Written,
    /// The unresolved items this pair and feature had before the run.
    pub(super) unresolved: &'a [UnresolvedRecord],
}

pub(super) fn commit(
    engine: &Engine,
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    ci: CommitIn<'_>,
    fs: &mut FeatureSummary,
) -> Result<(), End> {
    let earlier = fx
        .instance
        .map(|i| crate::collapse::evidence(&engine.state, &fx.pair.name, i, fx.feature));
    let (fc, evidence) = build_commit(rc, fx, &ci, &earlier)
        .map_err(|e| End::state(format!("commit failed: {e}")))?;
    let promoted = engine
        .state
        .commit_feature(&fc)
        .map_err(|e| End::state(format!("commit failed: {e}")))?;
    for (side, keys) in evidence.iter() {
        let Some(keys) = keys else { continue };
        let inst = fx.instance.get(side);
        if let Err(e) =
            crate::collapse::record_evidence(&engine.state, &fx.pair.name, inst, fx.feature, keys)
        {
            // Only makes a later empty read of this side look like a collapse.
            rc.em
                .warn(&format!("{inst}: held evidence keys not saved: {e}"));
        }
    }
    if fx.feature == ferry_core::Feature::Playlists {
        record_emptied(engine, rc, fx, &ci);
    }
    for (side, v) in ci.judged.verdicts.iter() {
        let inst = fx.instance.get(side);
        let sighting = match v.collapsed {
            _ if !v.read => continue,
            Some(false) => continue,
            // A partial or suspect read says nothing about a collapse either way: the
            // marker (perhaps already confirmed, its removal held) stays.
            None if v.not_taken => continue,
            Some(true) => rc.run_id.map(|run| {
                let (at, read) = after_writes(&ci, side, v);
                crate::collapse::Sighting {
                    run,
                    before: if *ci.inputs.unanchored.get(side) {
                        None
                    } else {
                        ci.inputs.prev_checkpoint.get(side).clone()
                    },
                    at,
                    read,
                }
            }),
            None => None,
        };
        if let Err(e) =
            crate::collapse::record(&engine.state, &fx.pair.name, inst, fx.feature, sighting)
        {
            // Only delays a confirmation by a run.
            rc.em
                .warn(&format!("{inst}: collapse marker not saved: {e}"));
        }
    }
    fs.blackboxed = promoted.len();
    if !promoted.is_empty() {
        emit(
            &rc.em,
            BlackboxAdded {
                scope: fx.scope.clone(),
                count: promoted.len(),
                keys: promoted
                    .iter()
                    .take(PREVIEW_ITEMS)
                    .map(|(_, k)| k.clone())
                    .collect(),
            },
        );
    }
    Ok(())
}

/// The sightings of playlists read empty (`crate::emptied`), per side that was read
/// whole and taken.
fn record_emptied(engine: &Engine, rc: &RunCx<'_>, fx: &FeatureCx<'_>, ci: &CommitIn<'_>) {
    let Some(run) = rc.run_id else { return };
    for (side, v) in ci.judged.verdicts.iter() {
        if !v.read || v.not_taken {
            continue;
        }
        let inst = fx.instance.get(side);
        let before = if *ci.inputs.unanchored.get(side) {
            None
        } else {
            ci.inputs.prev_checkpoint.get(side).clone()
        };
        let sightings = v
            .emptied
            .iter()
            .map(|k| {
                let s = crate::collapse::Sighting {
                    run,
                    before: before.clone(),
                    at: v.read_checkpoint.clone(),
                    read: 0,
                };
                (k.clone(), s)
            })
            .collect();
        if let Err(e) = crate::emptied::record(&engine.state, &fx.pair.name, inst, sightings) {
            // Only delays a confirmation by a run.
            rc.em
                .warn(&format!("{inst}: emptied-playlist markers not saved: {e}"));
        }
    }
}

/// A collapse sighting's checkpoint and read once this run's writes to the side landed:
/// the list they left, at the checkpoint after them. Otherwise a later read at that
/// checkpoint lacking what ferry just wrote (an empty lie) would look like the collapse
/// seen again, and its checkpoint move (ferry's own) like the user's. When the
/// checkpoint after the writes is not known (something else moved it, or it cannot be
/// read), the sighting has none and confirms nothing; the next read replaces it.
fn after_writes(
    ci: &CommitIn<'_>,
    side: crate::plan::Side,
    v: &SideVerdict,
) -> (Option<String>, u64) {
    let mut landed = ci
        .written
        .results
        .iter()
        .filter(|(s, ..)| *s == side)
        .flat_map(|(_, kind, r)| r.settled().map(move |e| (*kind, e)))
        .peekable();
    if landed.peek().is_none() {
        return (v.read_checkpoint.clone(), v.read_fingerprint);
    }
    let mut keys: std::collections::BTreeSet<String> = v.collapsed_keys.iter().cloned().collect();
    for (kind, e) in landed {
        match kind {
            WriteKind::Add | WriteKind::Update => keys.insert(e.key()),
            WriteKind::Remove => keys.remove(&e.key()),
        };
    }
    let read = crate::collapse::fingerprint_keys(keys.iter().map(String::as_str));
    let after = ci.written.checkpoint.get(side);
    let at = (after != &v.read_checkpoint)
        .then(|| after.clone())
        .flatten();
    (at, read)
}

/// Whether a one-way mirror pair holds target titles its previous baseline did not have
/// (mirror spares them this run and removes them next run if the source still lacks them).
fn mirror_deferred(fx: &FeatureCx<'_>, target: &SideVerdict, baseline: Option<&Snapshot>) -> bool {
    fx.pair.mode == Mode::OneWay
        && fx.pair.remove_mode == RemoveMode::Mirror
        && fx.switch.remove
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

/// Removals planned but not settled: they keep their evidence.
fn removals_not_done<'a>(plan: &'a Plan, written: &'a Written) -> Vec<(&'a Evidence, &'a Entry)> {
    let mut not_done = Vec::new();
    for (s, kind, r) in &written.results {
        if *kind != WriteKind::Remove {
            continue;
        }
        let removes = &plan.side(*s).removes;
        for (e, o) in &r.items {
            if !o.is_settled()
                && let Some(rm) = removes.iter().find(|rm| &rm.entry == e)
            {
                not_done.push((&rm.evidence, &rm.entry));
            }
        }
    }
    not_done
}

/// Playlist updates that did not land: the other side's changes they carried (titles its
/// user dropped among them) are kept as that side's baseline playlist, as for a removal
/// not done, so the next run still sees them and never writes a dropped title back.
fn playlist_updates_not_done(written: &Written) -> Vec<(Evidence, &Entry)> {
    let mut out = Vec::new();
    for (s, kind, r) in &written.results {
        if *kind != WriteKind::Update {
            continue;
        }
        for (e, o) in &r.items {
            if !o.is_settled() && matches!(e.payload, Payload::Playlist(_)) {
                let evidence = Evidence {
                    kind: crate::plan::EvidenceKind::Baseline,
                    side: s.other(),
                    key: e.key(),
                    since: None,
                };
                out.push((evidence, e));
            }
        }
    }
    out
}

/// Tombstones, unresolved and resolved items from the writes' outcomes; whether any write
/// is left pending.
fn record_writes(
    fc: &mut FeatureCommit,
    fx: &FeatureCx<'_>,
    ci: &CommitIn<'_>,
) -> HashSet<(String, UnresolvedOp, String)> {
    let mut wanted = HashSet::new();
    for (s, kind, r) in &ci.written.results {
        let inst = *fx.instance.get(*s);
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
    wanted
}

/// Per side whose baseline the commit writes, the keys of the entries kept in it only as
/// evidence of a deletion not yet acted on.
type EvidenceKeys = Sides<Option<Vec<String>>>;

/// The commit, with its [`EvidenceKeys`].
fn build_commit(
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    ci: &CommitIn<'_>,
    earlier: &Sides<std::collections::HashSet<String>>,
) -> Result<(FeatureCommit, EvidenceKeys), StateError> {
    let mut evidence: EvidenceKeys = Sides::new(None, None);
    let mut fc = FeatureCommit {
        run_id: rc.run_id,
        pair: fx.pair.name.clone(),
        feature: Some(fx.feature),
        at: Some(rc.now),
        blackbox_after: rc.cfg.guardrails.blackbox_after,
        reconciled_journal: ci.inputs.rec.ids.clone(),
        ..FeatureCommit::default()
    };
    let updates_not_done = playlist_updates_not_done(ci.written);
    let mut not_done = removals_not_done(ci.plan, ci.written);
    not_done.extend(updates_not_done.iter().map(|(ev, e)| (ev, *e)));
    let wanted = record_writes(&mut fc, fx, ci);
    let any_pending = !ci.plan.held.is_empty() || !not_done.is_empty() || !fc.unresolved.is_empty();
    for (inst, removed) in &ci.inputs.rec.removed {
        for e in removed {
            fc.tombstones.push(tombstone_for(inst, e));
        }
    }
    for u in ci.unresolved {
        let id = (u.instance.clone(), u.op, u.key.clone());
        let ours = fx.instance.any(|i| *i == u.instance);
        if ours && !wanted.contains(&id) {
            fc.obsolete.push(id);
        }
    }
    // A side this run could not fully judge must be read again next run even if its
    // checkpoint does not move.
    let unsure = ci
        .judged
        .verdicts
        .any(|v| v.policy != BaselinePolicy::Replace);
    let deferred = mirror_deferred(fx, &ci.judged.verdicts.b, ci.inputs.bases.b.as_ref());
    for (side, v) in ci.judged.verdicts.iter() {
        let base = ci.inputs.bases.get(side).as_ref();
        let settled: Vec<(WriteKind, &Entry)> = ci
            .written
            .results
            .iter()
            .filter(|(s, ..)| *s == side)
            .flat_map(|(_, kind, r)| r.settled().map(move |e| (*kind, e)))
            .collect();
        let retain = retained_evidence(ci.plan, side, base, not_done.iter().copied());
        let retained_keys: Vec<String> = retain.iter().map(Entry::key).collect();
        // A playlist read empty waits for a second read, whatever the checkpoints say.
        let pending =
            any_pending || unsure || !retain.is_empty() || deferred || !v.emptied.is_empty();
        // A side that was not read keeps its baseline, unless the journal of a killed
        // run added what landed on it: that is evidence, and is kept.
        let journal_only = (v.policy == BaselinePolicy::Keep && *ci.inputs.unanchored.get(side))
            .then(|| base.cloned())
            .flatten();
        if let Some(next) = next_baseline(&v.view, base, v.policy, settled, retain).or(journal_only)
        {
            // An inconclusive empty read is read again next run (see `guard::verdict`)
            // when the side is still empty, and even when this run's writes filled it
            // unless its own titles matter to nothing: a one-way `source_deletes`
            // target (two-way, what a lie hid would never reach the other side; mirror
            // would never remove a hidden extra).
            let settles = !fx.two_way && fx.pair.remove_mode == RemoveMode::SourceDeletes;
            let pending = pending || (v.recheck_if_empty && (!settles || next.is_empty()));
            // Evidence kept earlier stays evidence while a baseline that could not be
            // replaced by a whole read still holds it.
            let mut keys = retained_keys;
            if v.policy != BaselinePolicy::Replace {
                let kept = earlier
                    .get(side)
                    .iter()
                    .filter(|k| next.contains_key(k) && !keys.contains(k))
                    .cloned()
                    .collect::<Vec<_>>();
                keys.extend(kept);
            }
            *evidence.get_mut(side) = Some(keys);
            fc.baselines.push(BaselineWrite::new(
                *fx.instance.get(side),
                // A partial or suspect read was not taken: its side keeps the
                // checkpoint of the last read that was, so a collapse can later be
                // told from a lie (`crate::collapse`).
                // A checkpoint that could not be read this run leaves the last known
                // one in place: it stays the anchor a collapse is judged against, and a
                // change since it still differs from it next run.
                if v.not_taken {
                    ci.inputs.prev_checkpoint.get(side).clone()
                } else {
                    ci.written
                        .checkpoint
                        .get(side)
                        .clone()
                        .or_else(|| ci.inputs.prev_checkpoint.get(side).clone())
                },
                pending,
                next.entries(),
            )?);
        }
    }
    Ok((fc, evidence))
}

//! Journal reconciliation. Journal rows found at the start of a feature belong to a run
//! that died (or failed to commit) after sending writes and before its feature commit.
//! They are folded into this run as if that commit had happened:
//!
//! - a batch with recorded outcomes: settled adds/updates count as present on the target
//!   (in its view and in both sides' baselines), settled removals as gone from it (and
//!   get their tombstones). A play the provider confirmed but does not list yet is
//!   therefore never sent again;
//! - an add batch without outcomes (the process died while the call was in flight): its
//!   entries are looked for on the target. Found ones count as written, in both sides'
//!   baselines (so a user deleting the title afterwards, on either side, is a deletion).
//!   When the target's read is not complete, plays not found are held back this run
//!   rather than risk a duplicate play; against a complete read they are simply planned
//!   again. Other entries are idempotent and planned again;
//! - a removal batch without outcomes: an entry the target's complete read no longer
//!   holds was removed by ferry, so it leaves the target's baseline (its absence is not
//!   the target user's deletion);
//! - nothing is replayed blindly: the plan is recomputed from the intact evidence (the
//!   dead run committed no baseline), so every intended write that is still wanted is
//!   planned again and nothing is lost.

use std::collections::HashMap;

use ferry_core::identity::split_event_key;
use ferry_core::{Entry, Feature, Payload, Snapshot};
use ferry_state::{JournalRecord, JournalState, UnresolvedOp};

/// What the journal says about one side's target.
#[derive(Debug, Default)]
pub(crate) struct Reconciled {
    pub(crate) ids: Vec<i64>,
    pub(crate) batches: usize,
    /// Per instance: entries known to be on it / known to be gone from it.
    pub(crate) written: HashMap<String, Vec<Entry>>,
    pub(crate) removed: HashMap<String, Vec<Entry>>,
    /// Per instance: adds whose outcome is unknown.
    pub(crate) in_doubt: HashMap<String, Vec<Entry>>,
    /// Per instance: removals whose outcome is unknown.
    pub(crate) in_doubt_removed: HashMap<String, Vec<Entry>>,
    /// Per instance: the rows without outcomes (see [`Reconciled::keep_undecided`]).
    pending_rows: HashMap<String, Vec<i64>>,
}

impl Reconciled {
    pub(crate) fn from_records(records: Vec<JournalRecord>) -> Self {
        let mut r = Reconciled::default();
        for rec in records {
            r.ids.push(rec.id);
            r.batches += 1;
            if rec.state == JournalState::Pending {
                r.pending_rows
                    .entry(rec.instance.clone())
                    .or_default()
                    .push(rec.id);
            }
            match (rec.state, rec.outcomes) {
                (JournalState::Done, Some(outs)) => {
                    for (e, o) in rec.entries.into_iter().zip(outs) {
                        if !o.outcome.is_settled() {
                            continue;
                        }
                        let to = match rec.op {
                            UnresolvedOp::Add | UnresolvedOp::Update => &mut r.written,
                            UnresolvedOp::Remove => &mut r.removed,
                        };
                        to.entry(rec.instance.clone()).or_default().push(e);
                    }
                }
                (JournalState::Pending, _) if rec.op == UnresolvedOp::Add => {
                    r.in_doubt
                        .entry(rec.instance.clone())
                        .or_default()
                        .extend(rec.entries);
                }
                (JournalState::Pending, _) if rec.op == UnresolvedOp::Remove => {
                    r.in_doubt_removed
                        .entry(rec.instance.clone())
                        .or_default()
                        .extend(rec.entries);
                }
                _ => {}
            }
        }
        r
    }

    /// Keeps the outcome-less rows of `instance` open when this run could not decide
    /// them (its read of `instance` is missing or partial): whether those writes landed
    /// is evidence the next whole read settles, and must not be forgotten meanwhile.
    pub(crate) fn keep_undecided(&mut self, instance: &str, decided: bool) {
        if decided {
            return;
        }
        if let Some(rows) = self.pending_rows.get(instance) {
            self.ids.retain(|id| !rows.contains(id));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Settled entries (written + removed) for counting.
    pub(crate) fn settled_count(&self) -> usize {
        self.written.values().map(Vec::len).sum::<usize>()
            + self.removed.values().map(Vec::len).sum::<usize>()
    }

    pub(crate) fn in_doubt_count(&self) -> usize {
        self.in_doubt.values().map(Vec::len).sum::<usize>()
            + self.in_doubt_removed.values().map(Vec::len).sum::<usize>()
    }
}

/// Whether `snap` has a play of `e`'s title within `tol` seconds (same base key).
fn has_play(snap: &Snapshot, plays: &HashMap<String, Vec<i64>>, e: &Entry, tol: u64) -> bool {
    let Payload::Watch { watched_at } = e.payload else {
        return snap.contains_key(&e.key());
    };
    plays
        .get(&e.item.key())
        .is_some_and(|ts| ts.iter().any(|t| t.abs_diff(watched_at.unix()) <= tol))
}

fn play_index(snap: &Snapshot) -> HashMap<String, Vec<i64>> {
    let mut m: HashMap<String, Vec<i64>> = HashMap::new();
    for k in snap.keys() {
        if let Some((b, t)) = split_event_key(k) {
            m.entry(b.to_owned()).or_default().push(t.unix());
        }
    }
    m
}

fn insert_absent(snap: &mut Snapshot, e: &Entry) {
    if !snap.contains_key(&e.key()) {
        snap.insert(e.clone());
    }
}

/// Folds the journal into one target side's snapshot and baseline, and the other side's
/// baseline. `complete` is whether the target's read is whole.
#[allow(clippy::too_many_arguments)]
pub(crate) fn overlay(
    rec: &Reconciled,
    instance: &str,
    feature: Feature,
    snapshot: Option<&mut Snapshot>,
    baseline: &mut Option<Snapshot>,
    other_baseline: &mut Option<Snapshot>,
    tol: u64,
) {
    let written = rec.written.get(instance).map(Vec::as_slice).unwrap_or(&[]);
    let removed = rec.removed.get(instance).map(Vec::as_slice).unwrap_or(&[]);
    let doubt = rec.in_doubt.get(instance).map(Vec::as_slice).unwrap_or(&[]);
    let ensure = |b: &mut Option<Snapshot>| {
        b.get_or_insert_with(|| Snapshot::committed_baseline(feature, []));
    };
    if !written.is_empty() {
        ensure(baseline);
        ensure(other_baseline);
    }
    for e in written {
        for b in [baseline.as_mut(), other_baseline.as_mut()]
            .into_iter()
            .flatten()
        {
            insert_absent(b, e);
        }
    }
    for e in removed {
        if let Some(b) = baseline.as_mut() {
            b.remove(&e.key());
        }
    }
    let Some(snap) = snapshot else { return };
    let complete = snap.is_complete();
    let gone = rec
        .in_doubt_removed
        .get(instance)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let plays = play_index(snap);
    for e in gone {
        // A removal that landed before the run died: the target's absence of it is
        // ferry's doing, not its user's deletion, so it leaves the target's baseline.
        if complete
            && !has_play(snap, &plays, e, tol)
            && let Some(b) = baseline.as_mut()
        {
            b.remove(&e.key());
        }
    }
    for e in written {
        if !has_play(snap, &plays, e, tol) {
            insert_absent(snap, e);
        }
    }
    for e in removed {
        snap.remove(&e.key());
    }
    for e in doubt {
        if has_play(snap, &plays, e, tol) {
            // It landed: as good as confirmed. In both baselines, so a deletion by
            // either user afterwards is seen as one (not as the target's new title,
            // nor lost because the source's baseline never had it), even when the dead
            // run was the pair's first.
            for b in [&mut *baseline, &mut *other_baseline] {
                insert_absent(
                    b.get_or_insert_with(|| Snapshot::committed_baseline(feature, [])),
                    e,
                );
            }
        } else if !complete && matches!(e.payload, Payload::Watch { .. }) {
            // Cannot tell: hold it back this run rather than risk a duplicate play.
            // (Any other add is idempotent and simply planned again.)
            insert_absent(snap, e);
        }
    }
}

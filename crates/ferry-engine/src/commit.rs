//! What a run commits: each side's next baseline, computed purely from its view, the
//! settled writes and the deletion evidence that was not acted on.
//!
//! Invariant: evidence is never consumed without acting on it. A trusted deletion whose
//! removal was held, blocked, failed, skipped or cancelled keeps its title in the
//! evidence side's baseline, so the next run sees the same deletion again.

use std::collections::HashMap;

use crate::guard::{BaselinePolicy, union};
use crate::plan::{EvidenceKind, Plan, Side};
use ferry_core::{Entry, Snapshot};

pub use crate::outcome::WriteKind;

/// A side's next baseline: `None` when the policy keeps the previous one.
pub fn next_baseline<'a>(
    view: &Snapshot,
    previous: Option<&Snapshot>,
    policy: BaselinePolicy,
    settled: impl IntoIterator<Item = (WriteKind, &'a Entry)>,
    retain: impl IntoIterator<Item = Entry>,
) -> Option<Snapshot> {
    let mut next = match policy {
        BaselinePolicy::Keep => return None,
        BaselinePolicy::Replace => view.clone(),
        BaselinePolicy::Union => union(view, previous),
    };
    // Identity first (on the entries as read), then the writes, then the merged ids:
    // a provider that stops reporting one of a title's ids keeps its identity.
    let extras = id_extras(&next, previous);
    apply_writes(&mut next, settled);
    merge_extras(&mut next, extras);
    for e in retain {
        let k = e.key();
        // A playlist's evidence is its older version (the titles dropped from it since);
        // every other kind of evidence is a title the view lacks.
        if matches!(e.payload, ferry_core::Payload::Playlist(_)) {
            next.remove(&k);
        }
        if !next.contains_key(&k) {
            next.insert(e);
        }
    }
    Some(next)
}

/// The ids each entry of `next` should carry besides its own: those of the other plays
/// of its title (history) and those its previous baseline entry knew it by. Keyed by the
/// entry's current key.
fn id_extras(
    next: &Snapshot,
    previous: Option<&Snapshot>,
) -> HashMap<String, (ferry_core::Ids, ferry_core::Ids)> {
    let cur = crate::plan::Prepared::new(next);
    let prev = previous.map(crate::plan::Prepared::new);
    let mut out = HashMap::new();
    for i in 0..cur.len() {
        let (k, e) = cur.entries[i];
        let mut ids = ferry_core::Ids::new();
        let mut show_ids = ferry_core::Ids::new();
        for m in cur.unit_members(cur.unit_of(i)) {
            let it = &cur.entries[m].1.item;
            ids.merge_missing(&it.ids);
            show_ids.merge_missing(&it.show_ids);
        }
        if let Some(p) = &prev
            && let Some(u) = p.find_unit_of(&cur, i)
        {
            for m in p.unit_members(u) {
                let it = &p.entries[m].1.item;
                ids.merge_missing(&it.ids);
                show_ids.merge_missing(&it.show_ids);
            }
        }
        let adds = ids.iter().any(|(kind, _)| e.item.ids.get(kind).is_none())
            || show_ids
                .iter()
                .any(|(kind, _)| e.item.show_ids.get(kind).is_none());
        if adds {
            out.insert(k.to_owned(), (ids, show_ids));
        }
    }
    out
}

fn merge_extras(next: &mut Snapshot, extras: HashMap<String, (ferry_core::Ids, ferry_core::Ids)>) {
    for (k, (ids, show_ids)) in extras {
        if let Some(mut e) = next.remove(&k) {
            e.item.ids.merge_missing(&ids);
            e.item.show_ids.merge_missing(&show_ids);
            next.insert(e);
        }
    }
}

/// Applies settled writes to a snapshot: adds and updates replace the entry under its
/// key, removals drop it.
pub fn apply_writes<'a>(
    snap: &mut Snapshot,
    settled: impl IntoIterator<Item = (WriteKind, &'a Entry)>,
) {
    for (kind, e) in settled {
        let k = e.key();
        match kind {
            WriteKind::Add | WriteKind::Update => {
                snap.remove(&k);
                snap.insert(e.clone());
            }
            WriteKind::Remove => {
                snap.remove(&k);
            }
        }
    }
}

/// The baseline entries of `side` that must be kept because a deletion they evidence was
/// not acted on: held removals, plus the removals in `not_done` (planned but not settled).
/// Each kept entry also takes the ids of the title it was matched with, so the match still
/// holds next run whichever ids either side reports then.
pub fn retained_evidence<'a>(
    plan: &'a Plan,
    side: Side,
    baseline: Option<&'a Snapshot>,
    not_done: impl IntoIterator<Item = (&'a crate::plan::Evidence, &'a Entry)>,
) -> Vec<Entry> {
    let Some(base) = baseline else {
        return Vec::new();
    };
    plan.held
        .iter()
        .filter_map(|h| h.evidence.as_ref().map(|ev| (ev, &h.entry)))
        .chain(not_done)
        .filter(|(ev, _)| ev.kind == EvidenceKind::Baseline && ev.side == side)
        .filter_map(|(ev, other)| {
            let mut e = base.get(&ev.key)?.clone();
            e.item.ids.merge_missing(&other.item.ids);
            e.item.show_ids.merge_missing(&other.item.show_ids);
            Some(e)
        })
        .collect()
}

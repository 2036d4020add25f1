//! Guardrails (`docs/engine.md`): completeness, the drop guard, the mass-delete block, and what a
//! side's read is worth (its effective view, whether its absences are deletions, and how
//! its baseline is committed).

use std::collections::HashSet;

use ferry_core::{FeatureCaps, IndexSemantics, Snapshot, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::Guardrails;
use crate::gate::InstanceGate;
use crate::plan::{Held, HoldReason, Plan, Side};

/// How a side's baseline is committed after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselinePolicy {
    /// The trusted view (plus confirmed writes, plus held evidence).
    Replace,
    /// The view joined with the previous baseline: nothing the side had is forgotten,
    /// because this run could not tell what it deleted.
    Union,
    /// Untouched: the side was not read.
    Keep,
}

/// Why a snapshot was judged suspect by the drop guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspect {
    pub prev_count: usize,
    pub cur_count: usize,
    pub shrink_limit: usize,
    pub prev_checkpoint: Option<String>,
    pub now_checkpoint: Option<String>,
    pub reason: String,
}

/// Whether an activity checkpoint moved forward. ferry's rule: a missing checkpoint on
/// either side is *not* progress.
pub fn checkpoint_advanced(prev: Option<&str>, now: Option<&str>) -> bool {
    let (Some(p), Some(n)) = (prev, now) else {
        return false;
    };
    if p.is_empty() || n.is_empty() {
        return false;
    }
    match (Timestamp::parse(p), Timestamp::parse(n)) {
        (Some(a), Some(b)) => b > a,
        _ => p != n,
    }
}

/// The drop guard: a baseline of at least `drop_min_prev` items shrank to at most
/// `max(1, prev × drop_ratio)` (or to nothing) and the checkpoint did not advance.
pub fn drop_guard(
    prev: Option<&Snapshot>,
    cur: &Snapshot,
    prev_checkpoint: Option<&str>,
    now_checkpoint: Option<&str>,
    g: &Guardrails,
) -> Option<Suspect> {
    let prev = prev?;
    if !g.drop_guard || prev.len() < g.drop_min_prev {
        return None;
    }
    let limit = ((prev.len() as f64 * g.drop_ratio) as usize).max(1);
    let shrunk = cur.is_empty() || cur.len() <= limit;
    if !shrunk || checkpoint_advanced(prev_checkpoint, now_checkpoint) {
        return None;
    }
    let reason = if prev_checkpoint.is_none() || now_checkpoint.is_none() {
        "shrunk+no-checkpoint"
    } else {
        "shrunk+no-progress"
    };
    Some(Suspect {
        prev_count: prev.len(),
        cur_count: cur.len(),
        shrink_limit: limit,
        prev_checkpoint: prev_checkpoint.map(str::to_owned),
        now_checkpoint: now_checkpoint.map(str::to_owned),
        reason: reason.into(),
    })
}

/// ferry's rule (empty reads): a read that is empty, or holds none of the titles of a
/// non-empty baseline, is suspect whatever the checkpoints say, until a trusted read in a
/// later run shows the same collapse (`confirmed`) or the user allows mass deletes.
/// `None` when the read did not collapse.
pub fn collapse_guard(prev: Option<&Snapshot>, cur: &Snapshot, confirmed: bool) -> Option<Suspect> {
    let prev = prev.filter(|p| !p.is_empty())?;
    if !is_collapse(Some(prev), cur) || confirmed {
        return None;
    }
    Some(Suspect {
        prev_count: prev.len(),
        cur_count: cur.len(),
        shrink_limit: 0,
        prev_checkpoint: None,
        now_checkpoint: None,
        reason: if cur.is_empty() { "empty" } else { "collapsed" }.into(),
    })
}

/// Whether a read dropped every title of a non-empty baseline (see [`collapse_guard`]).
/// Titles, not keys: a history whose plays all changed still holds its titles.
pub fn is_collapse(prev: Option<&Snapshot>, cur: &Snapshot) -> bool {
    let Some(p) = prev.filter(|p| !p.is_empty()) else {
        return false;
    };
    let title = |k: &str| -> String {
        ferry_core::identity::split_event_key(k)
            .map_or(k, |(base, _)| base)
            .to_owned()
    };
    let held: HashSet<String> = cur.keys().map(title).collect();
    p.keys().all(|k| !held.contains(&title(k)))
}

/// `current` joined with `baseline`: current entries win, baseline entries fill in.
pub fn union(current: &Snapshot, baseline: Option<&Snapshot>) -> Snapshot {
    let mut out = current.clone();
    if let Some(b) = baseline {
        for (k, e) in b.iter() {
            if !out.contains_key(k) {
                out.insert(e.clone());
            }
        }
    }
    out
}

/// What one side's read is worth this run.
#[derive(Debug, Clone)]
pub struct SideVerdict {
    /// The effective inventory the planner sees.
    pub view: Snapshot,
    pub read: bool,
    pub yields_deletions: bool,
    /// The read is trusted but the side is add-only this run: its deletions are held
    /// (see [`crate::plan::SideInput::holds_deletions`]).
    pub holds_deletions: bool,
    /// The read (complete, `present`) dropped every title of a non-empty baseline:
    /// `Some(trusted)`, where `trusted` says the side's health lets this sighting count
    /// (the engine remembers it so a later run can confirm it).
    pub collapsed: Option<bool>,
    /// The side's checkpoint read before its snapshot (what a collapse sighting records).
    pub read_checkpoint: Option<String>,
    /// The fingerprint of the read itself (`crate::collapse::fingerprint`).
    pub read_fingerprint: u64,
    /// A collapsed read's keys (empty otherwise): when this run's writes land on the
    /// side, its collapse sighting describes the list they left (`stage::commit`).
    pub collapsed_keys: Vec<String>,
    /// The read was partial or suspect: it was not taken as the side's inventory, so
    /// the side keeps the checkpoint committed with the last read that was.
    pub not_taken: bool,
    /// The view's keys that the baseline filled in (partial or suspect read): never
    /// proposed to the other side (see [`crate::plan::SideInput::filled`]).
    pub filled: HashSet<String>,
    /// The read was empty, of a list that was empty or never read, and its checkpoint
    /// moved: not conclusive (a lie looks the same). Its baseline is committed `pending`
    /// so the next run reads it again whatever the checkpoints say (one list request),
    /// unless it is a one-way target this run's writes filled (`stage::commit`).
    pub recheck_if_empty: bool,
    /// Playlists read empty that the baseline's copy stands in for this run (see
    /// [`VerdictInput::emptied_held`]): the commit records them as sightings.
    pub emptied: Vec<String>,
    /// Why the side's absences are not deletions (empty when they are).
    pub untrusted: Vec<String>,
    pub suspect: Option<Suspect>,
    pub policy: BaselinePolicy,
}

/// Everything [`verdict`] looks at for one side.
#[derive(Debug, Clone, Copy)]
pub struct VerdictInput<'a> {
    pub gate: &'a InstanceGate,
    pub feature: ferry_core::Feature,
    pub caps: Option<&'a FeatureCaps>,
    pub baseline: Option<&'a Snapshot>,
    pub prev_checkpoint: Option<&'a str>,
    pub now_checkpoint: Option<&'a str>,
    /// The read as the provider answered it, when the journal added to it (else the
    /// snapshot itself): what the collapse and empty-read rules judge.
    pub raw_read: Option<&'a Snapshot>,
    /// Baseline keys kept only as evidence of the side's own deletion (see
    /// `crate::collapse::evidence`): a read lacking them is no collapse.
    pub held_evidence: &'a HashSet<String>,
    /// Two-way: the other side is down, so observed deletions are off for both.
    pub other_down: bool,
    /// A trusted read in an earlier run already saw this side collapse (see
    /// [`collapse_guard`]), or the user allowed mass deletes for this run.
    pub collapse_confirmed: bool,
    /// Playlists this whole read shows empty whose baseline copy held titles, not (yet)
    /// confirmed by a later read (`crate::emptied`): the baseline's copy stands in.
    pub emptied_held: &'a HashSet<String>,
}

/// Judges one side: completeness, semantics, the drop guard, health and capabilities.
/// `snapshot` is `None` when the side was not read (down).
pub fn verdict(v: VerdictInput<'_>, snapshot: Option<Snapshot>, g: &Guardrails) -> SideVerdict {
    let Some(snap) = snapshot else {
        return SideVerdict {
            view: v
                .baseline
                .cloned()
                .unwrap_or_else(|| Snapshot::committed_baseline(v.feature, [])),
            read: false,
            yields_deletions: false,
            holds_deletions: false,
            collapsed: None,
            read_checkpoint: v.now_checkpoint.map(str::to_owned),
            read_fingerprint: 0,
            collapsed_keys: Vec::new(),
            not_taken: false,
            recheck_if_empty: false,
            filled: HashSet::new(),
            emptied: Vec::new(),
            untrusted: vec!["down".into()],
            suspect: None,
            policy: BaselinePolicy::Keep,
        };
    };
    let mut untrusted = Vec::new();
    let complete = snap.is_complete();
    if let ferry_core::Completeness::Partial { reason } = snap.completeness() {
        untrusted.push(format!("partial: {reason}"));
    }
    let delta = snap.semantics() == IndexSemantics::Delta
        || v.caps.is_some_and(|c| c.semantics == IndexSemantics::Delta);
    if delta {
        untrusted.push("delta".into());
    }
    let raw = v.raw_read.unwrap_or(&snap);
    // What the side held at its last taken read: its baseline less the evidence of its
    // own deletions that was kept for a later run.
    let held_base = match v.baseline {
        Some(b) if !v.held_evidence.is_empty() => {
            Some(std::borrow::Cow::Owned(Snapshot::committed_baseline(
                b.feature(),
                b.entries()
                    .filter(|e| !v.held_evidence.contains(&e.key()))
                    .cloned(),
            )))
        }
        other => other.map(std::borrow::Cow::Borrowed),
    };
    let held_base = held_base.as_deref();
    let suspect = if complete && !delta {
        collapse_guard(held_base, raw, v.collapse_confirmed)
            .or_else(|| drop_guard(v.baseline, &snap, v.prev_checkpoint, v.now_checkpoint, g))
    } else {
        None
    };
    if let Some(s) = &suspect {
        untrusted.push(format!("suspect: {}", s.reason));
    }
    let observable = v.caps.is_none_or(|c| c.observed_deletes);
    // Whether the read itself proves what the side lacks; health decides below whether
    // this run may act on it.
    let read_proves = complete && !delta && suspect.is_none() && observable;
    let mut add_only = false;
    if v.gate.recovering {
        untrusted.push("recovering".into());
        add_only = true;
    } else if !v.gate.trusted_for_deletions() {
        untrusted.push(format!("health {}", v.gate.status()));
        add_only = true;
    }
    if !observable {
        untrusted.push("deletions not observable".into());
    }
    if v.other_down {
        untrusted.push("other side down".into());
    }
    // A recovering side's read counts as a sighting: it is whole, only acting on it
    // waits for a normal run.
    let collapsed = (complete && !delta && is_collapse(held_base, raw)).then(|| v.gate.healthy());
    let read_fingerprint = crate::collapse::fingerprint(raw);
    let collapsed_keys = if collapsed.is_some() {
        raw.keys().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    // An empty read of a list that was empty or never read, whose checkpoint moved: not
    // conclusive (a lie looks the same): see `recheck_if_empty`. A partial or suspect
    // read never advances the committed checkpoint, so an empty read after one still
    // counts as moved.
    let inconclusive_empty = complete
        && !delta
        && raw.is_empty()
        && v.baseline.is_none_or(|b| b.is_empty())
        && (v.baseline.is_none() || v.prev_checkpoint != v.now_checkpoint);
    // Also re-read when all its baseline held was evidence of its own deletions: what
    // the moved checkpoint stands for may be a title this empty answer hid.
    let recheck_if_empty = inconclusive_empty
        || (complete
            && !delta
            && raw.is_empty()
            && held_base.is_some_and(|b| b.is_empty())
            && v.prev_checkpoint != v.now_checkpoint);
    if inconclusive_empty {
        // Nothing it lacks is a deletion before a second read agrees (mirror would
        // otherwise empty the other side on one lie).
        untrusted.push("inconclusive empty read".into());
    }
    let unsure_read = !complete || delta || suspect.is_some();
    // A delta read's baseline entries are the side's known inventory; a partial or
    // suspect read's are only what it held before.
    let mut filled: HashSet<String> = match v.baseline {
        Some(b) if !complete || suspect.is_some() => b
            .keys()
            .filter(|k| !snap.contains_key(k))
            .map(str::to_owned)
            .collect(),
        _ => HashSet::new(),
    };
    let mut view = if unsure_read {
        union(&snap, v.baseline)
    } else {
        snap
    };
    let emptied = playlist_fills(&v, complete, unsure_read, &mut view, &mut filled);
    let policy = if unsure_read || v.other_down {
        BaselinePolicy::Union
    } else {
        BaselinePolicy::Replace
    };
    let yields_deletions = untrusted.is_empty();
    SideVerdict {
        view,
        read: true,
        yields_deletions,
        holds_deletions: !yields_deletions && read_proves && add_only && !v.other_down,
        collapsed,
        read_checkpoint: v.now_checkpoint.map(str::to_owned),
        read_fingerprint,
        collapsed_keys,
        not_taken: !complete || suspect.is_some(),
        recheck_if_empty,
        filled,
        emptied,
        untrusted,
        suspect,
        policy,
    }
}

/// The playlist form of the mass-delete block: the titles `side`'s playlist updates
/// would drop from its copies (`view`) count against the same budget, taken of the titles
/// its playlists hold (`baseline_titles`). Over it, every such drop is blocked: the
/// titles stay where they are in the update (an update left equal to the side's copy is
/// dropped from the plan) and each playlist is held with the other side's evidence.
pub fn playlist_mass_delete(
    plan: &mut Plan,
    side: Side,
    view: &Snapshot,
    baseline_titles: usize,
    g: &Guardrails,
    allow: bool,
) -> Option<MassDelete> {
    if !g.mass_delete || allow {
        return None;
    }
    let current = |key: &str| view.get(key).and_then(crate::plan::playlist_of);
    let dropped = |w: &crate::plan::Write| -> HashSet<String> {
        let (Some(now), Some(new)) = (current(&w.entry.key()), crate::plan::playlist_of(&w.entry))
        else {
            return HashSet::new();
        };
        let kept: HashSet<String> = new.items.iter().map(ferry_core::Item::key).collect();
        now.items
            .iter()
            .map(ferry_core::Item::key)
            .filter(|k| !kept.contains(k))
            .collect()
    };
    let n: usize = plan
        .side(side)
        .updates
        .iter()
        .map(|w| dropped(w).len())
        .sum();
    let threshold = mass_delete_threshold(baseline_titles, g);
    if n <= threshold {
        return None;
    }
    let updates = std::mem::take(&mut plan.side_mut(side).updates);
    for mut w in updates {
        let gone = dropped(&w);
        if gone.is_empty() {
            plan.side_mut(side).updates.push(w);
            continue;
        }
        let key = w.entry.key();
        let Some(now) = current(&key) else { continue };
        if let ferry_core::Payload::Playlist(p) = &mut w.entry.payload {
            crate::plan::keep_in_place(p, now, &gone);
        }
        plan.held.push(Held {
            target: side,
            reason: HoldReason::MassDelete,
            removal: true,
            entry: w.entry.clone(),
            evidence: Some(crate::plan::Evidence {
                kind: crate::plan::EvidenceKind::Baseline,
                side: side.other(),
                key: w.from_key.clone(),
                since: None,
            }),
        });
        let unchanged =
            crate::plan::playlist_of(&w.entry).is_some_and(|p| crate::plan::same_playlist(p, now));
        if !unchanged {
            plan.side_mut(side).updates.push(w);
        }
    }
    Some(MassDelete {
        side,
        attempted: n,
        baseline: baseline_titles,
        threshold,
    })
}

/// What playlists add to a read's fills; returns the playlists read empty that the
/// baseline's copy stands in for.
fn playlist_fills(
    v: &VerdictInput<'_>,
    complete: bool,
    unsure_read: bool,
    view: &mut Snapshot,
    filled: &mut HashSet<String>,
) -> Vec<String> {
    if !complete && v.feature == ferry_core::Feature::Playlists {
        // A partial read of playlists may have cut any playlist short: none of them is
        // what the side holds, and a playlist is written whole (an update to it from
        // such a copy would take off the titles the read missed).
        filled.extend(view.keys().map(str::to_owned));
    }
    match v.baseline {
        Some(b) if !unsure_read => stand_in_for_emptied(view, filled, b, v.emptied_held),
        _ => Vec::new(),
    }
}

/// Playlists read empty, not yet confirmed (`crate::emptied`): the baseline's copy
/// stands in for each, filled (never proposed to the other side). Returns their keys.
fn stand_in_for_emptied(
    view: &mut Snapshot,
    filled: &mut HashSet<String>,
    baseline: &Snapshot,
    held: &HashSet<String>,
) -> Vec<String> {
    let mut emptied = Vec::new();
    for k in held {
        if let Some(e) = baseline.get(k) {
            view.remove(k);
            view.insert(e.clone());
            filled.insert(k.clone());
            emptied.push(k.clone());
        }
    }
    emptied.sort();
    emptied
}

/// A mass-delete block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassDelete {
    pub side: Side,
    pub attempted: usize,
    pub baseline: usize,
    pub threshold: usize,
}

/// The removal budget for one target: `max(floor, ratio × baseline)`.
pub fn mass_delete_threshold(baseline: usize, g: &Guardrails) -> usize {
    ((baseline as f64 * g.mass_delete_ratio) as usize).max(g.mass_delete_floor)
}

/// Blocks every removal for a side whose removals exceed the budget (moved to `held`).
/// `baseline` is the size the budget is taken of.
pub fn mass_delete(
    plan: &mut Plan,
    side: Side,
    baseline: usize,
    g: &Guardrails,
    allow: bool,
) -> Option<MassDelete> {
    if !g.mass_delete || allow {
        return None;
    }
    let threshold = mass_delete_threshold(baseline, g);
    let n = plan.side(side).removes.len();
    if n <= threshold {
        return None;
    }
    let removes = std::mem::take(&mut plan.side_mut(side).removes);
    plan.held.extend(removes.into_iter().map(|r| Held {
        target: side,
        reason: HoldReason::MassDelete,
        removal: true,
        entry: r.entry,
        evidence: Some(r.evidence),
    }));
    Some(MassDelete {
        side,
        attempted: n,
        baseline,
        threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{Entry, Feature, Health, IdKind, Ids, Item};

    fn snap(n: u32) -> Snapshot {
        ferry_testkit::snap(
            Feature::Watchlist,
            (0..n).map(|i| {
                Entry::watchlist(Item::movie(
                    "M",
                    2000,
                    Ids::new().with(IdKind::Tmdb, &(i + 1).to_string()),
                ))
            }),
        )
    }

    #[test]
    fn checkpoints_missing_never_count_as_progress() {
        assert!(!checkpoint_advanced(None, Some("2024-01-01T00:00:00Z")));
        assert!(!checkpoint_advanced(Some("2024-01-01T00:00:00Z"), None));
        assert!(!checkpoint_advanced(
            Some("2024-01-02T00:00:00Z"),
            Some("2024-01-01T00:00:00Z")
        ));
        assert!(checkpoint_advanced(
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-02T00:00:00Z")
        ));
        assert!(checkpoint_advanced(Some("etag-1"), Some("etag-2")));
        assert!(!checkpoint_advanced(Some("etag-1"), Some("etag-1")));
    }

    #[test]
    fn drop_guard_flags_a_collapse_without_checkpoint_progress() {
        let g = Guardrails::default();
        let prev = snap(30);
        let s = drop_guard(Some(&prev), &snap(0), None, None, &g).unwrap();
        assert_eq!((s.prev_count, s.cur_count, s.shrink_limit), (30, 0, 3));
        assert!(drop_guard(Some(&prev), &snap(3), Some("1"), Some("1"), &g).is_some());
        assert!(
            drop_guard(Some(&prev), &snap(4), None, None, &g).is_none(),
            "not shrunk enough"
        );
        assert!(
            drop_guard(Some(&snap(19)), &snap(0), None, None, &g).is_none(),
            "tiny baseline"
        );
        assert!(
            drop_guard(
                Some(&prev),
                &snap(0),
                Some("2024-01-01"),
                Some("2024-02-01"),
                &g
            )
            .is_none(),
            "checkpoint advanced"
        );
    }

    #[test]
    fn a_partial_read_is_joined_with_the_baseline_and_yields_no_deletions() {
        let gate = InstanceGate::new("x", Health::ok(), None);
        let base = snap(10);
        let mut cur = snap(4);
        cur.mark_partial("page 2 failed");
        let v = verdict(
            VerdictInput {
                gate: &gate,
                feature: Feature::Watchlist,
                caps: None,
                baseline: Some(&base),
                prev_checkpoint: None,
                raw_read: None,
                held_evidence: &HashSet::new(),
                now_checkpoint: None,
                other_down: false,
                collapse_confirmed: false,
                emptied_held: &HashSet::new(),
            },
            Some(cur),
            &Guardrails::default(),
        );
        assert!(!v.yields_deletions);
        assert_eq!(v.view.len(), 10);
        assert_eq!(v.policy, BaselinePolicy::Union);
    }

    #[test]
    fn mass_delete_budget_is_max_of_floor_and_ratio() {
        let g = Guardrails::default();
        assert_eq!(mass_delete_threshold(10, &g), 5);
        assert_eq!(mass_delete_threshold(1000, &g), 100);
    }
}

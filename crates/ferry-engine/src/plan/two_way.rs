//! Two-way planning. For a title on one side (P) and missing on the other (Q):
//! - Q's baseline had it and Q's absences are trusted → Q deleted it: remove it from P
//!   (or hold it when removals are off or P is add-only; the commit keeps the evidence);
//! - Q's baseline had it, Q's read is trusted but Q is add-only this run (recovering,
//!   health unknown) → hold it: neither removed from P nor added back to Q, Q's evidence
//!   kept for the next normal run;
//! - Q's baseline had it but Q's deletions cannot be observed → add it back to Q;
//! - a live tombstone says ferry removed it from P and it came back → remove it from P
//!   again when allowed, otherwise hold it (never re-add it to Q);
//! - otherwise → add it to Q.
//!
//! Titles on both sides go through the per-feature conflict rules. The rules only look at
//! sides, never at which one is called A, so swapping A and B (and the side of truth)
//! swaps the plan.

use std::collections::HashSet;

use ferry_core::Feature;

use super::blocks::newer_than;
use super::rules::{
    dropped_since, keep_in_place, merge_playlists, playlist_of, progress_winner, rating_winner,
    same_playlist, update_entry,
};
use super::{
    Absence, Evidence, EvidenceKind, Held, HoldReason, Plan, PlanInput, Prepared, Removal, Side,
    SideInput, Write,
};

const NONE: u32 = u32::MAX;

struct Ctx<'p, 'a> {
    input: &'p PlanInput<'a>,
    a: Prepared<'a>,
    b: Prepared<'a>,
    a_base: Option<Prepared<'a>>,
    b_base: Option<Prepared<'a>>,
    tol: u64,
}

impl<'p, 'a> Ctx<'p, 'a> {
    fn side(&self, s: Side) -> &SideInput<'a> {
        match s {
            Side::A => &self.input.a,
            Side::B => &self.input.b,
        }
    }
    fn prep(&self, s: Side) -> &Prepared<'a> {
        match s {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
    fn base(&self, s: Side) -> Option<&Prepared<'a>> {
        match s {
            Side::A => self.a_base.as_ref(),
            Side::B => self.b_base.as_ref(),
        }
    }
}

pub(super) fn plan(input: &PlanInput<'_>) -> Plan {
    let a_base = input.a.baseline.map(Prepared::new);
    let b_base = input.b.baseline.map(Prepared::new);
    let cx = Ctx {
        input,
        a: Prepared::build(input.a.view, a_base.as_ref()),
        b: Prepared::build(input.b.view, b_base.as_ref()),
        a_base,
        b_base,
        tol: input.options.history_tolerance_secs,
    };
    let mut plan = Plan::empty(input.feature, input.mode);
    let history = cx.a.is_history();
    if history && (input.a.latest_only() || input.b.latest_only()) {
        latest_only_history(&cx, &mut plan);
        return plan;
    }
    // Features without conflict rules only need to know *whether* a B entry is present on
    // A; for them a B entry an A entry matched needs no second lookup.
    let rules = matches!(
        input.feature,
        Feature::Ratings | Feature::Progress | Feature::Playlists
    );
    let mut a_match = vec![NONE; if history { 0 } else { cx.a.len() }];
    let mut b_seen = vec![false; if history || rules { 0 } else { cx.b.len() }];
    #[allow(clippy::needless_range_loop)] // `a_match` is filled as `i` goes
    for i in 0..cx.a.len() {
        match cx.b.find_match(&cx.a, i, cx.tol) {
            Some(j) => {
                if !history {
                    a_match[i] = j as u32;
                    if let Some(seen) = b_seen.get_mut(j) {
                        *seen = true;
                    }
                    both(&cx, &mut plan, i, j);
                }
            }
            None => missing(&cx, &mut plan, Side::A, i),
        }
    }
    for j in 0..cx.b.len() {
        if b_seen.get(j).copied().unwrap_or(false) {
            // Present on A (they share a token, so A's index finds it), no rules to run.
            continue;
        }
        match cx.a.find_match(&cx.b, j, cx.tol) {
            Some(i) => {
                if !history && a_match[i] != j as u32 {
                    both(&cx, &mut plan, i, j);
                }
            }
            None => missing(&cx, &mut plan, Side::B, j),
        }
    }
    plan
}

/// Entry `idx` of side `p` has no match on the other side.
fn missing(cx: &Ctx<'_, '_>, plan: &mut Plan, p: Side, idx: usize) {
    let q = p.other();
    let (ps, qs) = (cx.side(p), cx.side(q));
    if !ps.read {
        // A side that was not read this run (down) proposes nothing.
        return;
    }
    let pp = cx.prep(p);
    let (pkey, pe) = pp.entries[idx];
    // Not read on P this run (a baseline fill-in): neither a title to give Q nor one to
    // remove from P; a deletion Q made is held, its evidence kept.
    let filled = ps.is_filled(pkey);
    let sw = cx.input.switch;
    let hold = |plan: &mut Plan, reason, evidence| {
        plan.held.push(Held {
            target: p,
            reason,
            removal: true,
            entry: pe.clone(),
            evidence,
        });
    };
    let in_q_base = cx.base(q).and_then(|qb| {
        qb.find_match(pp, idx, cx.tol)
            .filter(|k| qb.shares_token(*k, pp, idx))
    });
    if let Some(k) = in_q_base {
        if let Some(qb) = cx.base(q)
            && cx.prep(q).find_match(qb, k, cx.tol).is_some()
        {
            // Q still holds the baseline's title, under ids that no longer link it to this
            // entry: not a deletion, and adding would duplicate it. Leave both alone.
            return;
        }
        let evidence = Evidence {
            kind: EvidenceKind::Baseline,
            side: q,
            key: cx.base(q).map_or("", |b| b.entries[k].0).to_owned(),
            since: None,
        };
        if filled && qs.absence() != Absence::Unknown {
            hold(plan, HoldReason::PartialRead, Some(evidence));
            return;
        }
        if qs.absence() == Absence::HeldDeletion {
            // Q deleted it, but Q is add-only this run: neither removed from P nor added
            // back to Q; the commit keeps Q's evidence for the next normal run.
            hold(plan, HoldReason::Recovering, Some(evidence));
            return;
        }
        if qs.yields_deletions {
            if !sw.remove {
                hold(plan, HoldReason::RemovalsDisabled, Some(evidence));
            } else if !ps.accepts_removals {
                hold(plan, HoldReason::NoRemovals, Some(evidence));
            } else {
                plan.side_mut(p).removes.push(Removal {
                    entry: pe.clone(),
                    evidence,
                });
            }
            return;
        }
        // Q's deletions cannot be observed: the title is added back (below).
    } else if let Some(t) = cx
        .input
        .tombstones
        .and_then(|t| t.find(pe, ps.instance, cx.tol))
        .filter(|t| !newer_than(pe, t.created_at))
    {
        // ferry removed this from P because Q deleted it, and it is back on P.
        if qs.yields_deletions && sw.remove && ps.accepts_removals && !filled {
            plan.side_mut(p).removes.push(Removal {
                entry: pe.clone(),
                evidence: Evidence {
                    kind: EvidenceKind::Tombstone,
                    side: q,
                    key: t.key.clone(),
                    since: Some(t.created_at),
                },
            });
        } else {
            plan.held.push(Held {
                target: q,
                reason: HoldReason::Tombstone,
                removal: false,
                entry: pe.clone(),
                evidence: None,
            });
        }
        return;
    }
    if filled || !sw.add || !qs.accepts_adds {
        return;
    }
    if qs.blackbox.is_some_and(|b| b.contains(pkey)) {
        plan.held.push(Held {
            target: q,
            reason: HoldReason::Blackbox,
            removal: false,
            entry: pe.clone(),
            evidence: None,
        });
        return;
    }
    plan.side_mut(q).adds.push(Write {
        entry: pe.clone(),
        from_key: pkey.to_owned(),
    });
}

/// Entry `i` of A and entry `j` of B are the same title.
fn both(cx: &Ctx<'_, '_>, plan: &mut Plan, i: usize, j: usize) {
    let (sa, sb) = (&cx.input.a, &cx.input.b);
    if !sa.read || !sb.read || !cx.input.switch.add {
        return;
    }
    let (akey, ae) = cx.a.entries[i];
    let (bkey, be) = cx.b.entries[j];
    if sa.is_filled(akey) || sb.is_filled(bkey) {
        // A value not read this run may be stale: no conflict is judged on it.
        return;
    }
    let opts = cx.input.options;
    let playlist = if cx.input.feature == Feature::Playlists {
        playlist_writes(cx, plan, (akey, ae), (bkey, be))
    } else {
        None
    };
    let mut write = |to: Side, entry| {
        let (accepts, from_key) = match to {
            Side::A => (sa.accepts_adds, bkey),
            Side::B => (sb.accepts_adds, akey),
        };
        if accepts {
            plan.side_mut(to).updates.push(Write {
                entry,
                from_key: from_key.to_owned(),
            });
        }
    };
    match cx.input.feature {
        Feature::Ratings => match rating_winner(&ae.payload, &be.payload, opts.truth) {
            Some(Side::A) => write(Side::B, update_entry(ae, be)),
            Some(Side::B) => write(Side::A, update_entry(be, ae)),
            None => {}
        },
        Feature::Progress => {
            match progress_winner(&ae.payload, &be.payload, opts.progress_tolerance_ms) {
                Some(Side::A) => write(Side::B, update_entry(ae, be)),
                Some(Side::B) => write(Side::A, update_entry(be, ae)),
                None => {}
            }
        }
        Feature::Playlists => {
            for (to, entry) in playlist.into_iter().flatten() {
                write(to, entry);
            }
        }
        Feature::Watchlist | Feature::History => {}
    }
}

/// Two-way playlists: the merged playlist for each side that differs from it. A title a
/// side's user dropped (its read trusted) leaves the other side's copy when removals are
/// on and that side takes them; otherwise the drop is held, its evidence (the side's
/// baseline playlist) kept, and the title is never written back to the side that dropped
/// it. `None`: the whole playlist is held this run.
fn playlist_writes(
    cx: &Ctx<'_, '_>,
    plan: &mut Plan,
    (akey, ae): (&str, &ferry_core::Entry),
    (bkey, be): (&str, &ferry_core::Entry),
) -> Option<Vec<(Side, ferry_core::Entry)>> {
    let (pa, pb) = (playlist_of(ae)?, playlist_of(be)?);
    let sw = cx.input.switch;
    let base_of = |s: Side, key: &str| {
        cx.base(s)
            .and_then(|b| b.entries.iter().find(|(k, _)| *k == key))
            .and_then(|(_, e)| playlist_of(e))
    };
    let held = |s: Side, reason| Held {
        target: s.other(),
        reason,
        removal: true,
        entry: if s == Side::A { be.clone() } else { ae.clone() },
        evidence: Some(Evidence {
            kind: EvidenceKind::Baseline,
            side: s,
            key: if s == Side::A { akey } else { bkey }.to_owned(),
            since: None,
        }),
    };
    let sides = [(Side::A, pa, akey), (Side::B, pb, bkey)];
    // A side that is add-only this run and dropped titles from the playlist since its
    // baseline: merging would put them back. Hold the playlist as it is on both sides;
    // the commit keeps that side's baseline playlist as evidence.
    let mut recovering = false;
    for (s, now, key) in sides {
        if cx.side(s).absence() == Absence::HeldDeletion
            && !dropped_since(now, base_of(s, key)).is_empty()
        {
            plan.held.push(held(s, HoldReason::Recovering));
            recovering = true;
        }
    }
    if recovering {
        return None;
    }
    // Each side's trusted drops, and whether the other side may act on them.
    let trusted = |s: Side, now, key: &str| -> HashSet<String> {
        if cx.side(s).yields_deletions {
            dropped_since(now, base_of(s, key))
        } else {
            HashSet::new()
        }
    };
    let (ta, tb) = (trusted(Side::A, pa, akey), trusted(Side::B, pb, bkey));
    let acts = |s: Side| {
        let other = cx.side(s.other());
        sw.remove && other.accepts_removals && other.accepts_adds
    };
    // The playlist both sides converge on, every trusted drop taken out...
    let merged = match cx.input.options.truth {
        Side::A => merge_playlists(pa, pb, &ta, &tb),
        Side::B => merge_playlists(pb, pa, &tb, &ta),
    };
    let mut out = Vec::new();
    for (s, now, e) in [(Side::A, pa, ae), (Side::B, pb, be)] {
        // ...except on a side that may not lose the titles the other side dropped: it
        // keeps those it holds, where it holds them (so the next run finds it unchanged).
        let (other_drops, other) = if s == Side::A {
            (&tb, Side::B)
        } else {
            (&ta, Side::A)
        };
        let mut mine = merged.clone();
        if !other_drops.is_empty() && !acts(other) {
            keep_in_place(&mut mine, now, other_drops);
        }
        if !same_playlist(&mine, now) {
            out.push((
                s,
                ferry_core::Entry::new(e.item.clone(), ferry_core::Payload::Playlist(mine)),
            ));
        }
    }
    for (s, t) in [(Side::A, &ta), (Side::B, &tb)] {
        if !t.is_empty() && !acts(s) {
            let reason = if sw.remove {
                HoldReason::NoRemovals
            } else {
                HoldReason::RemovalsDisabled
            };
            plan.held.push(held(s, reason));
        }
    }
    Some(out)
}

/// Two-way history when a side keeps only the latest play of each title (see the module
/// notes of `plan`). First every unmatched play is judged against the other side as read;
/// then the plays that were only *covered* by a play this plan removes are judged again
/// without it: when the other side deleted the play a media server shows, the title counts
/// as unplayed there and the latest remaining play is written in the same plan (two-way
/// applies removals before adds). Both passes look at sides, never at which one is A, so
/// the plan stays symmetric.
fn latest_only_history(cx: &Ctx<'_, '_>, plan: &mut Plan) {
    let mut removed: [Vec<bool>; 2] = [vec![false; cx.a.len()], vec![false; cx.b.len()]];
    let mut covered: Vec<(Side, usize)> = Vec::new();
    for p in [Side::A, Side::B] {
        let q = p.other();
        for (idx, gone) in removed[slot(p)].iter_mut().enumerate() {
            if cx.prep(q).find_match(cx.prep(p), idx, cx.tol).is_some() {
                continue;
            }
            match latest_missing(cx, plan, p, idx, &[]) {
                Judged::Removed => *gone = true,
                Judged::Covered => covered.push((p, idx)),
                Judged::Other => {}
            }
        }
    }
    for (p, idx) in covered {
        let q_removed = &removed[slot(p.other())];
        if q_removed.iter().any(|r| *r) {
            latest_missing(cx, plan, p, idx, q_removed);
        }
    }
}

fn slot(s: Side) -> usize {
    match s {
        Side::A => 0,
        Side::B => 1,
    }
}

/// What became of an unmatched play.
enum Judged {
    /// The other side keeps one play per title and shows this title at or after it.
    Covered,
    /// Planned for removal from its side.
    Removed,
    /// Added, held, or left alone.
    Other,
}

/// Play `idx` of side `p` has no play within the tolerance on the other side `q`; at least
/// one side keeps only its latest play per title. `q_removed` marks `q`'s plays this plan
/// removes (not counted as covering).
fn latest_missing(
    cx: &Ctx<'_, '_>,
    plan: &mut Plan,
    p: Side,
    idx: usize,
    q_removed: &[bool],
) -> Judged {
    let q = p.other();
    let (ps, qs) = (cx.side(p), cx.side(q));
    if !ps.read {
        return Judged::Other;
    }
    let (pp, qp) = (cx.prep(p), cx.prep(q));
    let (pkey, pe) = pp.entries[idx];
    let filled = ps.is_filled(pkey);
    let at = pp.play_time(idx).unwrap_or(i64::MIN);
    let tol = cx.tol as i64;
    let sw = cx.input.switch;
    let hold = |plan: &mut Plan, reason, evidence| {
        plan.held.push(Held {
            target: p,
            reason,
            removal: true,
            entry: pe.clone(),
            evidence,
        });
    };
    // Deletion evidence from q, as `(q's baseline entry, what q's absence proves)`.
    let evidence: Option<(usize, Absence)> = if qs.latest_only() {
        // Covered by q's one play of the title (not counting plays removed this plan).
        if qp
            .latest_play_of(pp, idx, |j| q_removed.get(j).copied().unwrap_or(false))
            .is_some_and(|(t, _)| t.saturating_add(tol) >= at)
        {
            return Judged::Covered;
        }
        // q deleted it when its baseline's play of the title covered this play and q no
        // longer holds any play of the title (a changed date is not a deletion).
        cx.base(q).and_then(|qb| {
            let (tb, k) = qb.latest_play_of(pp, idx, |_| false)?;
            let gone = qb.shares_token(k, pp, idx)
                && tb.saturating_add(tol) >= at
                && qp.latest_play_of(pp, idx, |_| false).is_none()
                && qp.latest_play_of(qb, k, |_| false).is_none();
            gone.then_some((k, qs.absence()))
        })
    } else {
        // q keeps every play: its baseline had this play and it no longer holds it.
        match cx.base(q).and_then(|qb| {
            qb.find_match(pp, idx, cx.tol)
                .filter(|k| qb.shares_token(*k, pp, idx))
        }) {
            Some(k) => {
                if let Some(qb) = cx.base(q)
                    && qp.find_match(qb, k, cx.tol).is_some()
                {
                    // Still there under ids that no longer link it to this play.
                    return Judged::Other;
                }
                Some((k, qs.absence()))
            }
            None => None,
        }
    };
    match evidence {
        Some((k, absence @ (Absence::Deleted | Absence::HeldDeletion))) => {
            let evidence = Evidence {
                kind: EvidenceKind::Baseline,
                side: q,
                key: cx.base(q).map_or("", |b| b.entries[k].0).to_owned(),
                since: None,
            };
            if filled {
                hold(plan, HoldReason::PartialRead, Some(evidence));
            } else if absence == Absence::HeldDeletion {
                hold(plan, HoldReason::Recovering, Some(evidence));
            } else if !sw.remove {
                hold(plan, HoldReason::RemovalsDisabled, Some(evidence));
            } else if !ps.accepts_removals {
                hold(plan, HoldReason::NoRemovals, Some(evidence));
            } else {
                plan.side_mut(p).removes.push(Removal {
                    entry: pe.clone(),
                    evidence,
                });
                return Judged::Removed;
            }
            return Judged::Other;
        }
        // q's deletions cannot be observed: the play is written back (below).
        Some((_, Absence::Unknown)) => {}
        None => {
            if let Some(t) = cx
                .input
                .tombstones
                .and_then(|t| t.find(pe, ps.instance, cx.tol))
                .filter(|t| !newer_than(pe, t.created_at))
            {
                // ferry removed this from P because Q deleted it, and it is back on P.
                if qs.yields_deletions && sw.remove && ps.accepts_removals && !filled {
                    plan.side_mut(p).removes.push(Removal {
                        entry: pe.clone(),
                        evidence: Evidence {
                            kind: EvidenceKind::Tombstone,
                            side: q,
                            key: t.key.clone(),
                            since: Some(t.created_at),
                        },
                    });
                    return Judged::Removed;
                }
                plan.held.push(Held {
                    target: q,
                    reason: HoldReason::Tombstone,
                    removal: false,
                    entry: pe.clone(),
                    evidence: None,
                });
                return Judged::Other;
            }
        }
    }
    if filled || !sw.add || !qs.accepts_adds {
        return Judged::Other;
    }
    // Written to a side that keeps one play per title: only the title's latest play.
    if qs.latest_only() && !pp.is_latest_in_unit(idx) {
        return Judged::Other;
    }
    if qs.blackbox.is_some_and(|b| b.contains(pkey)) {
        plan.held.push(Held {
            target: q,
            reason: HoldReason::Blackbox,
            removal: false,
            entry: pe.clone(),
            evidence: None,
        });
        return Judged::Other;
    }
    plan.side_mut(q).adds.push(Write {
        entry: pe.clone(),
        from_key: pkey.to_owned(),
    });
    Judged::Other
}

//! One-way planning: the source's titles flow to the target; removals only in
//! `source_deletes` (what vanished from the source's baseline) or `mirror` (what the
//! trusted source lacks and the target's baseline had) mode.

use ferry_core::Feature;

use super::blocks::newer_than;
use super::rules::{
    dropped_since, merge_playlists, playlist_of, progress_winner, rating_winner, same_playlist,
    update_entry,
};
use super::{
    Absence, Evidence, EvidenceKind, Held, HoldReason, Plan, PlanInput, Prepared, Removal, Side,
    Write,
};
use crate::config::RemoveMode;

pub(super) fn plan(input: &PlanInput<'_>) -> Plan {
    let mut plan = Plan::empty(input.feature, input.mode);
    let (src, dst) = (&input.a, &input.b);
    if !src.read {
        // A source that was not read gives nothing to do.
        return plan;
    }
    let tol = input.options.history_tolerance_secs;
    let s_base = src.baseline.map(Prepared::new);
    let d_base = dst.baseline.map(Prepared::new);
    let s = Prepared::build(src.view, s_base.as_ref());
    let d = Prepared::build(dst.view, d_base.as_ref());
    let may_add = input.switch.add && dst.accepts_adds;
    // History with a side that keeps only each title's latest play (see the module notes).
    let dst_latest = input.feature == Feature::History && dst.latest_only();

    // Adds and updates.
    for i in 0..s.len() {
        let (skey, se) = s.entries[i];
        if src.is_filled(skey) {
            // Not read this run: it only keeps the target's copy from looking deleted.
            continue;
        }
        match d.find_match(&s, i, tol) {
            Some(j) => {
                if !may_add || !dst.read {
                    continue;
                }
                let (dkey, de) = d.entries[j];
                if input.feature == Feature::Playlists && dst.is_filled(dkey) {
                    // Not what the target holds (a partial read): a playlist is written
                    // whole, so an update from this copy could take titles off it.
                    continue;
                }
                let write = match input.feature {
                    Feature::Ratings => rating_winner(&se.payload, &de.payload, Side::A)
                        .filter(|w| *w == Side::A)
                        .map(|_| update_entry(se, de)),
                    Feature::Progress => progress_winner(
                        &se.payload,
                        &de.payload,
                        input.options.progress_tolerance_ms,
                    )
                    .filter(|w| *w == Side::A)
                    .map(|_| update_entry(se, de)),
                    Feature::Playlists => {
                        if let Some(h) = held_playlist_drops(input, &s_base, se, de) {
                            plan.held.push(h);
                        }
                        playlist_update(input, &s_base, &d_base, se, de)
                    }
                    Feature::Watchlist | Feature::History => None,
                };
                if let Some(entry) = write {
                    plan.to_b.updates.push(Write {
                        entry,
                        from_key: skey.to_owned(),
                    });
                }
            }
            None => {
                if !may_add {
                    continue;
                }
                if dst_latest {
                    // Only the source's latest play of a title matters, and only when the
                    // target does not already show the title played at or after it.
                    if !s.is_latest_in_unit(i) {
                        continue;
                    }
                    let at = s.play_time(i).unwrap_or(i64::MIN);
                    if d.latest_play_of(&s, i, |_| false)
                        .is_some_and(|(t, _)| t.saturating_add(tol as i64) >= at)
                    {
                        continue;
                    }
                }
                if input.feature == Feature::History
                    && let Some(t) = input.tombstones.and_then(|t| t.find(se, dst.instance, tol))
                    && !newer_than(se, t.created_at)
                {
                    plan.held.push(Held {
                        target: Side::B,
                        reason: HoldReason::Tombstone,
                        removal: false,
                        entry: se.clone(),
                        evidence: None,
                    });
                    continue;
                }
                if dst.blackbox.is_some_and(|b| b.contains(skey)) {
                    plan.held.push(Held {
                        target: Side::B,
                        reason: HoldReason::Blackbox,
                        removal: false,
                        entry: se.clone(),
                        evidence: None,
                    });
                    continue;
                }
                plan.to_b.adds.push(Write {
                    entry: se.clone(),
                    from_key: skey.to_owned(),
                });
            }
        }
    }

    removals(input, &mut plan, &s, &d, s_base.as_ref(), d_base.as_ref());
    plan
}

/// The removals of a one-way plan, or the holds that replace them.
fn removals(
    input: &PlanInput<'_>,
    plan: &mut Plan,
    s: &Prepared<'_>,
    d: &Prepared<'_>,
    s_base: Option<&Prepared<'_>>,
    d_base: Option<&Prepared<'_>>,
) {
    let (src, dst) = (&input.a, &input.b);
    let tol = input.options.history_tolerance_secs;
    let history = input.feature == Feature::History;
    let (src_latest, dst_latest) = (history && src.latest_only(), history && dst.latest_only());
    // Removals. A source that is add-only this run (recovering, health unknown) holds
    // its deletions: they are found as usual, held, and their evidence kept.
    if !input.switch.remove {
        return;
    }
    let held_by_src = match src.absence() {
        Absence::Deleted => false,
        Absence::HeldDeletion => true,
        Absence::Unknown => return,
    };
    let remove = |plan: &mut Plan, j: usize, evidence: Evidence| {
        let entry = d.entries[j].1.clone();
        if held_by_src {
            plan.held.push(Held {
                target: Side::B,
                reason: HoldReason::Recovering,
                removal: true,
                entry,
                evidence: Some(evidence),
            });
        } else if dst.accepts_removals {
            plan.to_b.removes.push(Removal { entry, evidence });
        } else {
            plan.held.push(Held {
                target: Side::B,
                reason: HoldReason::NoRemovals,
                removal: true,
                entry,
                evidence: Some(evidence),
            });
        }
    };
    match input.remove_mode {
        RemoveMode::SourceDeletes => {
            let Some(sb) = s_base else { return };
            for k in 0..sb.len() {
                if s.find_match(sb, k, tol).is_some() {
                    continue;
                }
                // A source that keeps one play per title deleted it only if the title is
                // no longer played at all (a moved date is not a deletion).
                if src_latest && s.latest_play_of(sb, k, |_| false).is_some() {
                    continue;
                }
                // Vanished from the source; remove it where the target still has it,
                // unless the source still holds the target's title under other ids. A
                // target that keeps one play per title keeps it while the source still
                // holds any play of the title (its date cannot be moved back).
                let title_held = |j: usize| {
                    s.latest_play_of(d, j, |_| false).is_some()
                        || s.latest_play_of(sb, k, |_| false).is_some()
                };
                if let Some(j) = d.find_match(sb, k, tol)
                    && d.shares_token(j, sb, k)
                    && s.find_match(d, j, tol).is_none()
                    && !((src_latest || dst_latest) && title_held(j))
                {
                    let evidence = Evidence {
                        kind: EvidenceKind::Baseline,
                        side: Side::A,
                        key: sb.entries[k].0.to_owned(),
                        since: None,
                    };
                    remove(plan, j, evidence);
                }
            }
        }
        RemoveMode::Mirror => {
            let Some(db) = d_base else { return };
            if !dst.read {
                return;
            }
            for j in 0..d.len() {
                let in_base = db
                    .find_match(d, j, tol)
                    .is_some_and(|k| db.shares_token(k, d, j));
                if s.find_match(d, j, tol).is_some() || !in_base {
                    continue;
                }
                if dst_latest && s.latest_play_of(d, j, |_| false).is_some() {
                    // The source still holds the title: the target keeps it played.
                    continue;
                }
                if src_latest
                    && let Some(at) = d.play_time(j)
                    && s.latest_play_of(d, j, |_| false)
                        .is_some_and(|(t, _)| t.saturating_add(tol as i64) >= at)
                {
                    // Covered by the source's one (later) play of the title.
                    continue;
                }
                let evidence = Evidence {
                    kind: EvidenceKind::Mirror,
                    side: Side::A,
                    key: d.entries[j].0.to_owned(),
                    since: None,
                };
                remove(plan, j, evidence);
            }
        }
    }
}

/// A source that is add-only this run and dropped titles from a playlist since its
/// baseline: the drops are held (the target keeps them, the commit keeps the source's
/// baseline playlist as evidence for the next normal run).
fn held_playlist_drops(
    input: &PlanInput<'_>,
    s_base: &Option<Prepared<'_>>,
    se: &ferry_core::Entry,
    de: &ferry_core::Entry,
) -> Option<Held> {
    // The source's drops wait for a normal run (it is add-only now), or for a target
    // that takes removals; either way their evidence is kept (as for other titles).
    let reason = match input.a.absence() {
        Absence::HeldDeletion => HoldReason::Recovering,
        Absence::Deleted if !input.b.accepts_removals => HoldReason::NoRemovals,
        _ => return None,
    };
    if !input.switch.remove {
        return None;
    }
    let key = se.key();
    let base = s_base
        .as_ref()
        .and_then(|p| p.entries.iter().find(|(k, _)| *k == key))
        .and_then(|(_, e)| playlist_of(e));
    if dropped_since(playlist_of(se)?, base).is_empty() {
        return None;
    }
    Some(Held {
        target: Side::B,
        reason,
        removal: true,
        entry: de.clone(),
        evidence: Some(Evidence {
            kind: EvidenceKind::Baseline,
            side: Side::A,
            key,
            since: None,
        }),
    })
}

/// One-way playlists: the source's order, the target's extra titles kept, titles the
/// source dropped since its baseline dropped too when removals are allowed.
fn playlist_update<'a>(
    input: &PlanInput<'a>,
    s_base: &Option<Prepared<'a>>,
    d_base: &Option<Prepared<'a>>,
    se: &ferry_core::Entry,
    de: &ferry_core::Entry,
) -> Option<ferry_core::Entry> {
    let (sp, dp) = (playlist_of(se)?, playlist_of(de)?);
    let removals = input.switch.remove && input.a.yields_deletions && input.b.accepts_removals;
    fn base_of<'a>(b: &Option<Prepared<'a>>, key: &str) -> Option<&'a ferry_core::Playlist> {
        b.as_ref()
            .and_then(|p| p.entries.iter().find(|(k, _)| *k == key))
            .and_then(|(_, e)| playlist_of(e))
    }
    let dropped_by_src = if removals {
        dropped_since(sp, base_of(s_base, &se.key()))
    } else {
        Default::default()
    };
    let mut merged = merge_playlists(sp, dp, &Default::default(), &Default::default());
    merged
        .items
        .retain(|it| !dropped_by_src.contains(&it.key()));
    if input.remove_mode == RemoveMode::Mirror && removals {
        // Mirror: the target's own extras go too, when its baseline had them.
        let d_had = base_of(d_base, &de.key())
            .map(|p| {
                p.items
                    .iter()
                    .map(ferry_core::Item::key)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let src_keys: Vec<String> = sp.items.iter().map(ferry_core::Item::key).collect();
        merged
            .items
            .retain(|it| src_keys.contains(&it.key()) || !d_had.contains(&it.key()));
    }
    if same_playlist(&merged, dp) {
        return None;
    }
    Some(ferry_core::Entry::new(
        de.item.clone(),
        ferry_core::Payload::Playlist(merged),
    ))
}

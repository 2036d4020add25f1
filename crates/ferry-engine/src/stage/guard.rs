//! Stage 7, guard: the mass-delete block per target (`guard::mass_delete`), then the
//! guarded plan announced (`one:plan`/`two:plan`, `blocked:counts`) and counted in the
//! summary. In: the plan, verdicts and baselines. Out: the plan, with blocked removals
//! moved to `held`.

use ferry_core::Snapshot;

use super::FeatureCx;
use super::judge::Judged;
use crate::events::{
    BlockedCounts, MassDeleteBlocked, OnePlan, OnePlanPreview, PREVIEW_ITEMS, TwoPlan,
    TwoPlanPreview, emit, previews, removal_preview,
};
use crate::guard::{mass_delete, playlist_mass_delete};
use crate::plan::{Plan, Side};
use crate::run::RunCx;
use crate::sides::Sides;
use crate::summary::{FeatureSummary, PlannedFeature};

pub(super) fn guard(
    rc: &mut RunCx<'_>,
    fx: &FeatureCx<'_>,
    plan: &mut Plan,
    judged: &Judged,
    bases: &Sides<Option<Snapshot>>,
    fs: &mut FeatureSummary,
) {
    for (side, v) in judged.verdicts.iter() {
        let size = bases
            .get(side)
            .as_ref()
            .map_or(v.view.len(), |b| b.len().min(v.view.len()));
        let g = &rc.cfg.guardrails;
        let allow = rc.cfg.allow_mass_delete;
        let blocked = mass_delete(plan, side, size, g, allow);
        let titles = |s: &Snapshot| -> usize {
            s.entries()
                .filter_map(crate::plan::playlist_of)
                .map(|p| p.items.len())
                .sum()
        };
        let playlist_titles = bases
            .get(side)
            .as_ref()
            .map_or(titles(&v.view), |b| titles(b).min(titles(&v.view)));
        let blocked_drops = (fx.feature == ferry_core::Feature::Playlists)
            .then(|| playlist_mass_delete(plan, side, &v.view, playlist_titles, g, allow))
            .flatten();
        for m in blocked.into_iter().chain(blocked_drops) {
            emit(
                &rc.em,
                MassDeleteBlocked {
                    scope: fx.scope.to(fx.instance.get(side)),
                    attempted: m.attempted,
                    baseline: m.baseline,
                    threshold: m.threshold,
                },
            );
            fs.mass_delete.push(m);
        }
    }
    for (s, counts) in [(Side::A, &mut fs.to_a), (Side::B, &mut fs.to_b)] {
        let sp = plan.side(s);
        counts.planned_adds = sp.adds.len();
        counts.planned_updates = sp.updates.len();
        counts.planned_removes = sp.removes.len();
    }
    for h in &plan.held {
        *fs.blocked.entry(h.reason.as_str().to_owned()).or_default() += 1;
    }
    announce(rc, fx, plan, judged, fs);
    if let Some(plans) = rc.plans.as_mut() {
        plans.push(PlannedFeature {
            pair: fx.pair.name.clone(),
            a: fx.instance.a.to_owned(),
            b: fx.instance.b.to_owned(),
            plan: plan.clone(),
            a_untrusted: judged.verdicts.a.untrusted.clone(),
            b_untrusted: judged.verdicts.b.untrusted.clone(),
        });
    }
}

/// `one:plan` or `two:plan`, and `blocked:counts` when anything is held.
fn announce(rc: &RunCx<'_>, fx: &FeatureCx<'_>, plan: &Plan, judged: &Judged, fs: &FeatureSummary) {
    let removals = |s: Side| -> Vec<serde_json::Value> {
        plan.side(s)
            .removes
            .iter()
            .take(PREVIEW_ITEMS)
            .map(|r| removal_preview(&r.entry, &r.evidence))
            .collect()
    };
    let adds = |s: Side| previews(plan.side(s).adds.iter().map(|w| &w.entry));
    let count = judged.verdicts.as_ref().map(|v| v.view.len());
    if fx.two_way {
        emit(
            &rc.em,
            TwoPlan {
                scope: fx.scope.clone(),
                a: fx.instance.a.to_owned(),
                b: fx.instance.b.to_owned(),
                add_to_a: plan.to_a.adds.len(),
                add_to_b: plan.to_b.adds.len(),
                upd_to_a: plan.to_a.updates.len(),
                upd_to_b: plan.to_b.updates.len(),
                rem_from_a: plan.to_a.removes.len(),
                rem_from_b: plan.to_b.removes.len(),
                held: plan.held.len(),
                a_count: count.a,
                b_count: count.b,
                preview: TwoPlanPreview {
                    add_to_a: adds(Side::A),
                    add_to_b: adds(Side::B),
                    rem_from_a: removals(Side::A),
                    rem_from_b: removals(Side::B),
                },
            },
        );
    } else {
        emit(
            &rc.em,
            OnePlan {
                scope: fx.scope.clone(),
                adds: plan.to_b.adds.len(),
                updates: plan.to_b.updates.len(),
                removes: plan.to_b.removes.len(),
                held: plan.held.len(),
                src_count: count.a,
                dst_count: count.b,
                preview: OnePlanPreview {
                    adds: adds(Side::B),
                    removes: removals(Side::B),
                },
            },
        );
    }
    if !plan.held.is_empty() {
        emit(
            &rc.em,
            BlockedCounts {
                scope: fx.scope.clone(),
                blocked_total: plan.held.len(),
                reasons: fs.blocked.clone(),
                preview: previews(plan.held.iter().map(|h| &h.entry)),
            },
        );
    }
}

//! Human renderings of run summaries, plans and state, and the exit code a summary means.

use ferry_engine::plan::{EvidenceKind, Side};
use ferry_engine::{FeatureStatus, FeatureSummary, PairSummary, PlanReport, RunSummary};

use crate::degraded::{self, Degraded};

/// Exit codes (the README's table). When several apply, the most urgent wins:
/// 2 > 1 > 4 > 3 > 0, and 5 stands alone (nothing was done).
pub(crate) const EXIT_OK: u8 = 0;
/// A run or command failed (a read, the state store, a commit), or was cancelled.
pub(crate) const EXIT_ERRORS: u8 = 1;
/// The config file or the command line is wrong; nothing ran.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Finished, with unresolved items (retried next run) or blocked removals.
pub(crate) const EXIT_UNRESOLVED: u8 = 3;
/// Finished, but a provider instance was down or refused its credentials, so a pair,
/// a feature or writes were skipped: a person has to look.
pub(crate) const EXIT_DEGRADED: u8 = 4;
/// Another ferry holds this state file; this one did nothing.
pub(crate) const EXIT_BUSY: u8 = 5;

/// The exit code a run's summary means (see the constants for precedence).
pub(crate) fn exit_code(s: &RunSummary, degraded: &[Degraded]) -> u8 {
    let blocked_removals =
        s.pairs.iter().flat_map(|p| &p.features).any(|f| {
            !f.mass_delete.is_empty() || f.blocked.get("mass_delete").is_some_and(|n| *n > 0)
        });
    if s.totals.errors > 0 || s.cancelled {
        EXIT_ERRORS
    } else if !degraded.is_empty() {
        EXIT_DEGRADED
    } else if s.totals.unresolved > 0 || blocked_removals {
        EXIT_UNRESOLVED
    } else {
        EXIT_OK
    }
}

/// Worse of two exit codes by the precedence above (the daemon's overall code).
pub(crate) fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EXIT_USAGE => 5,
        EXIT_ERRORS => 4,
        EXIT_DEGRADED => 3,
        EXIT_UNRESOLVED => 2,
        EXIT_OK => 0,
        _ => 1,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn status(f: &FeatureSummary, dry_run: bool) -> &'static str {
    match f.status {
        FeatureStatus::Done if dry_run => "planned",
        FeatureStatus::Done => "synced",
        FeatureStatus::Unchanged => "unchanged",
        FeatureStatus::Unsupported => "unsupported",
        FeatureStatus::SourceDown => "source down",
        FeatureStatus::Error => "ERROR",
        FeatureStatus::Cancelled => "cancelled",
    }
}

fn reasons(map: &std::collections::BTreeMap<String, usize>) -> String {
    map.iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closing summary: one line per pair and feature, then the reasons behind anything
/// not done.
pub(crate) fn summary_lines(s: &RunSummary, degraded: &[Degraded]) -> Vec<String> {
    let mut out = Vec::new();
    let head = if s.dry_run {
        "dry run (nothing written, nothing committed)"
    } else {
        "run"
    };
    let secs = s.finished_at.unix().saturating_sub(s.started_at.unix());
    out.push(format!(
        "{head}{} finished in {secs} s",
        s.run_id.map(|i| format!(" #{i}")).unwrap_or_default()
    ));
    // A dry run confirms nothing, so its effective counts are all zero: it reports what
    // the real run would write instead, as `ferry plan` does.
    let (added, updated, removed) = if s.dry_run {
        ("adds", "updates", "removes")
    } else {
        ("added", "updated", "removed")
    };
    out.push(format!(
        "{:<22} {:<10} {:<12} {:>6} {:>7} {:>7} {:>10} {:>7} {:>8}",
        "pair", "feature", "status", added, updated, removed, "unresolved", "blocked", "requests"
    ));
    let mut shown = (0, 0, 0);
    for p in &s.pairs {
        if let Some(why) = &p.skipped {
            out.push(format!("{:<22} {:<10} skipped: {why}", p.name, "-"));
            continue;
        }
        for f in &p.features {
            let (a, u, r) = if s.dry_run {
                (
                    f.to_a.planned_adds + f.to_b.planned_adds,
                    f.to_a.planned_updates + f.to_b.planned_updates,
                    f.to_a.planned_removes + f.to_b.planned_removes,
                )
            } else {
                (f.added(), f.updated(), f.removed())
            };
            shown = (shown.0 + a, shown.1 + u, shown.2 + r);
            out.push(format!(
                "{:<22} {:<10} {:<12} {:>6} {:>7} {:>7} {:>10} {:>7} {:>8}",
                p.name,
                f.feature.as_str(),
                status(f, s.dry_run),
                a,
                u,
                r,
                f.unresolved(),
                f.blocked.values().sum::<usize>(),
                f.api_hits
            ));
        }
    }
    for p in &s.pairs {
        for f in &p.features {
            detail_lines(p, f, &mut out);
        }
    }
    let t = &s.totals;
    let writes = if s.dry_run {
        format!(
            "{} to add, {} to update, {} to remove",
            shown.0, shown.1, shown.2
        )
    } else {
        format!(
            "{} added, {} updated, {} removed",
            t.added, t.updated, t.removed
        )
    };
    out.push(format!(
        "total: {writes}, {} unresolved, {} blocked, {} errors; {} requests",
        t.unresolved, t.blocked, t.errors, s.api.total
    ));
    if !degraded.is_empty() {
        out.push(format!(
            "attention: {} provider instance(s) could not be synced:",
            degraded.len()
        ));
        out.extend(degraded::lines(degraded));
    }
    out
}

fn detail_lines(p: &PairSummary, f: &FeatureSummary, out: &mut Vec<String>) {
    let name = format!("{} {}", p.name, f.feature);
    for (side, w) in [(&p.source, &f.to_a), (&p.target, &f.to_b)] {
        let r = reasons(&w.unresolved);
        if !r.is_empty() {
            out.push(format!(
                "  {name}: unresolved on {side}: {r} (kept, retried next run)"
            ));
        }
    }
    let b = reasons(&f.blocked);
    if !b.is_empty() {
        out.push(format!("  {name}: blocked: {b}"));
    }
    for m in &f.mass_delete {
        let side = if m.side == Side::A {
            &p.source
        } else {
            &p.target
        };
        out.push(format!(
            "  {name}: {} removals from {side} blocked (limit {} of {}); review with `ferry plan`, then --allow-mass-delete",
            m.attempted, m.threshold, m.baseline
        ));
    }
    for (who, s) in &f.suspect {
        out.push(format!("  {name}: {who}'s read looks wrong ({}, {} of {} items); nothing on it counts as deleted", s.reason, s.cur_count, s.prev_count));
    }
    if let Some(d) = &f.detail
        && f.status != FeatureStatus::Done
        && f.status != FeatureStatus::Unchanged
    {
        out.push(format!("  {name}: {d}"));
    }
}

const PREVIEW: usize = 20;

/// `ferry plan`: the table of adds, updates and removes, then every removal's evidence.
pub(crate) fn plan_lines(r: &PlanReport) -> Vec<String> {
    let mut out = vec![format!(
        "{:<22} {:<10} {:<16} {:>6} {:>7} {:>7} {:>5}",
        "pair", "feature", "writes to", "adds", "updates", "removes", "held"
    )];
    for pf in &r.plans {
        for (side, sp, who) in [
            (Side::A, &pf.plan.to_a, &pf.a),
            (Side::B, &pf.plan.to_b, &pf.b),
        ] {
            let held = pf.plan.held.iter().filter(|h| h.target == side).count();
            if sp.is_empty() && held == 0 {
                continue;
            }
            out.push(format!(
                "{:<22} {:<10} {:<16} {:>6} {:>7} {:>7} {:>5}",
                pf.pair,
                pf.plan.feature.as_str(),
                who,
                sp.adds.len(),
                sp.updates.len(),
                sp.removes.len(),
                held
            ));
        }
    }
    if out.len() == 1 {
        out.push("nothing to do: every pair is in agreement".into());
    }
    for pf in &r.plans {
        for (sp, who, other) in [(&pf.plan.to_a, &pf.a, &pf.b), (&pf.plan.to_b, &pf.b, &pf.a)] {
            if sp.removes.is_empty() {
                continue;
            }
            out.push(format!(
                "removals from {who} ({} {}), with their evidence:",
                pf.pair, pf.plan.feature
            ));
            for rm in sp.removes.iter().take(PREVIEW) {
                let evidence_side = if rm.evidence.side == Side::A {
                    &pf.a
                } else {
                    &pf.b
                };
                let why = match rm.evidence.kind {
                    EvidenceKind::Baseline => format!(
                        "was on {evidence_side} at the last sync and is gone from its complete read"
                    ),
                    EvidenceKind::Tombstone => format!(
                        "ferry removed it after {other} deleted it{}",
                        rm.evidence
                            .since
                            .map(|t| format!(" on {t}"))
                            .unwrap_or_default()
                    ),
                    EvidenceKind::Mirror => format!("mirror mode: not on {evidence_side}"),
                };
                out.push(format!("  - {}: {why}", rm.entry.item.label()));
            }
            if sp.removes.len() > PREVIEW {
                out.push(format!(
                    "  ... and {} more (use --json for all)",
                    sp.removes.len() - PREVIEW
                ));
            }
        }
        for (label, untrusted) in [(&pf.a, &pf.a_untrusted), (&pf.b, &pf.b_untrusted)] {
            if !untrusted.is_empty() {
                out.push(format!(
                    "  {} {}: absences on {label} are not taken as deletions: {}",
                    pf.pair,
                    pf.plan.feature,
                    untrusted.join("; ")
                ));
            }
        }
    }
    out
}

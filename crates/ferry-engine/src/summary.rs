//! What a run reports back: per pair and feature, what was planned, what took effect
//! (from confirmed per-item outcomes only), what was left unresolved and why, and what a
//! guardrail blocked.

use std::collections::BTreeMap;

use ferry_core::{Feature, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::guard::{MassDelete, Suspect};
use crate::metrics::ApiTotals;
use crate::plan::Plan;

/// How a feature run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStatus {
    /// Planned and applied (or, in a dry run, planned).
    Done,
    /// Skipped: both sides' checkpoints unchanged since the baseline, nothing pending.
    Unchanged,
    /// A side cannot read this feature, or health says it is unavailable.
    Unsupported,
    /// One-way source (or both two-way sides) down: nothing read, nothing committed.
    SourceDown,
    /// A read or the commit failed; nothing committed.
    Error,
    /// The run was cancelled during this feature.
    Cancelled,
}

/// Counts for one side written to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCounts {
    pub planned_adds: usize,
    pub planned_updates: usize,
    pub planned_removes: usize,
    /// Effective: confirmed by the provider.
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// Already in the requested state.
    pub unchanged: usize,
    /// Not written, by reason (`not_found`, `provider_down`, `failed:unavailable`, ...).
    pub unresolved: BTreeMap<String, usize>,
}

impl WriteCounts {
    pub fn unresolved_total(&self) -> usize {
        self.unresolved.values().sum()
    }
}

/// One pair and feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    pub feature: Feature,
    pub status: FeatureStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Writes to side A (two-way only) and to side B (the target).
    pub to_a: WriteCounts,
    pub to_b: WriteCounts,
    /// Items not written because of a guardrail or a hold, by reason
    /// (`mass_delete`, `removals_disabled`, `add_only`, `tombstone`, `blackbox`).
    pub blocked: BTreeMap<String, usize>,
    /// Sides judged suspect by the drop guard.
    pub suspect: Vec<(String, Suspect)>,
    pub mass_delete: Vec<MassDelete>,
    /// Provider calls the engine made for this feature (list reads, writes, restore
    /// points excluded) and `api:hit` events providers reported meanwhile.
    pub calls: u64,
    pub api_hits: u64,
    /// Items promoted to the blackbox by this run.
    pub blackboxed: usize,
}

impl FeatureSummary {
    pub(crate) fn new(feature: Feature, status: FeatureStatus) -> Self {
        FeatureSummary {
            feature,
            status,
            detail: None,
            to_a: WriteCounts::default(),
            to_b: WriteCounts::default(),
            blocked: BTreeMap::new(),
            suspect: Vec::new(),
            mass_delete: Vec::new(),
            calls: 0,
            api_hits: 0,
            blackboxed: 0,
        }
    }

    pub fn added(&self) -> usize {
        self.to_a.added + self.to_b.added
    }
    pub fn updated(&self) -> usize {
        self.to_a.updated + self.to_b.updated
    }
    pub fn removed(&self) -> usize {
        self.to_a.removed + self.to_b.removed
    }
    pub fn unresolved(&self) -> usize {
        self.to_a.unresolved_total() + self.to_b.unresolved_total()
    }
}

/// One pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSummary {
    pub name: String,
    pub source: String,
    pub target: String,
    pub mode: Mode,
    /// Why the whole pair was skipped (`auth_failed`, `missing_provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub features: Vec<FeatureSummary>,
}

/// Run totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unresolved: usize,
    pub blocked: usize,
    pub errors: usize,
}

/// What [`crate::Engine::run`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's id in the state's run history (`None` for a dry run, which records nothing).
    pub run_id: Option<i64>,
    pub dry_run: bool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub cancelled: bool,
    pub pairs: Vec<PairSummary>,
    pub totals: Totals,
    pub api: ApiTotals,
}

impl RunSummary {
    /// The summary of one pair and feature.
    pub fn feature(&self, pair: &str, feature: Feature) -> Option<&FeatureSummary> {
        self.pairs
            .iter()
            .find(|p| p.name == pair)?
            .features
            .iter()
            .find(|f| f.feature == feature)
    }

    pub(crate) fn compute_totals(&mut self) {
        let mut t = Totals::default();
        for p in &self.pairs {
            for f in &p.features {
                t.added += f.added();
                t.updated += f.updated();
                t.removed += f.removed();
                t.unresolved += f.unresolved();
                t.blocked += f.blocked.values().sum::<usize>();
                t.errors += usize::from(f.status == FeatureStatus::Error);
            }
        }
        self.totals = t;
    }
}

/// One pair/feature plan in a preview, with the guard verdicts behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFeature {
    pub pair: String,
    pub a: String,
    pub b: String,
    pub plan: Plan,
    /// Why each side's absences were not taken as deletions (empty: they were).
    pub a_untrusted: Vec<String>,
    pub b_untrusted: Vec<String>,
}

/// What [`crate::Engine::plan`] returns: the dry run's summary and every plan, with the
/// evidence behind each removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    pub summary: RunSummary,
    pub plans: Vec<PlannedFeature>,
}

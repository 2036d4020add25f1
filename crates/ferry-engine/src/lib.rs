//! ferry's orchestrator: it keeps watch state in agreement across providers and never
//! loses user data. Removals happen only on positive evidence; a failed, partial,
//! truncated or empty read is never "the user deleted everything".
//!
//! ```text
//! Engine::new(StateStore, Emitter)
//!   .run(&providers, &RunConfig, CancelToken)  -> RunSummary     (real run, or dry run)
//!   .plan(&providers, &RunConfig, CancelToken) -> PlanReport     (dry run + every plan)
//!   .restore(&providers, restore_point_id, CancelToken) -> RestoreReport
//!   .state_report(n_runs)                      -> StateReport    (for `ferry state`)
//! ```
//!
//! A run: health once per instance ([`gate`]) → per pair and feature the activities
//! shortcut → snapshots → journal reconciliation → guard verdicts ([`guard`]) → the pure
//! planner ([`plan`]) → the mass-delete block → batched apply with a write journal
//! ([`apply`]) → one commit per feature ([`commit`], `ferry_state::StateStore::commit_feature`).
//! Events are catalogued in `docs/events.md`; the design in `docs/engine.md`.

pub mod apply;
mod collapse;
pub mod commit;
pub mod config;
mod emptied;
pub mod events;
pub mod gate;
pub mod guard;
mod inspect;
pub mod metrics;
mod outcome;
mod own;
pub mod plan;
mod reconcile;
mod restore;
mod run;
pub mod sides;
mod stage;
pub mod summary;
#[cfg(test)]
mod tidy;

pub use config::{FeatureSwitch, Guardrails, Mode, PairConfig, RemoveMode, RunConfig};
pub use inspect::StateReport;
pub use restore::RestoreReport;
pub use run::{Engine, EngineError, Providers};
pub use summary::{
    FeatureStatus, FeatureSummary, PairSummary, PlanReport, PlannedFeature, RunSummary, Totals,
    WriteCounts,
};

//! State inspection for `ferry state`: what the engine remembers, in one serde-friendly
//! report. Secrets never appear: key-value rows other than breaker records are counted,
//! not shown.

use ferry_state::{
    BaselineInfo, BlackboxRecord, InstanceHealth, KvRecord, RestorePointInfo, RunRecord,
    UnresolvedRecord,
};
use serde::{Deserialize, Serialize};

use crate::run::{Engine, EngineError};

/// Everything `ferry state` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateReport {
    pub path: Option<String>,
    pub schema_version: u32,
    pub baselines: Vec<BaselineInfo>,
    pub unresolved: Vec<UnresolvedRecord>,
    pub blackbox: Vec<BlackboxRecord>,
    pub breakers: Vec<KvRecord>,
    pub health: Vec<InstanceHealth>,
    pub runs: Vec<RunRecord>,
    pub restore_points: Vec<RestorePointInfo>,
    pub tombstones: u64,
    /// Write batches of a run that died before committing (reconciled next run).
    pub pending_journal_batches: usize,
}

impl Engine {
    /// A snapshot of the state database, with the last `runs` runs.
    pub fn state_report(&self, runs: usize) -> Result<StateReport, EngineError> {
        let s = &self.state;
        Ok(StateReport {
            path: s.path().map(|p| p.display().to_string()),
            schema_version: s.schema_version()?,
            baselines: s.baselines()?,
            unresolved: s.unresolved(None, None)?,
            blackbox: s.blackbox(None)?,
            breakers: s.breaker_records()?,
            health: s.instance_health()?,
            runs: s.runs(runs)?,
            restore_points: s.restore_points()?,
            tombstones: s.tombstone_count()?,
            pending_journal_batches: s.journal_all()?.len(),
        })
    }
}

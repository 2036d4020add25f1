//! Restore points: putting a target's saved snapshot back. Add-only: a restore re-adds
//! what the restore point holds and the target lacks, and never removes anything.

use std::collections::BTreeMap;

use ferry_core::{CancelToken, Entry, Feature, Snapshot};
use serde::{Deserialize, Serialize};

use crate::apply::{ApplyCx, Target, apply_op};
use crate::events::{RestoreDone, RestoreStart, emit};
use crate::metrics::counting_emitter;
use crate::outcome::WriteKind;
use crate::plan::Prepared;
use crate::run::{Engine, EngineError, Providers};

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    pub id: i64,
    pub instance: String,
    pub feature: Feature,
    /// Entries in the restore point.
    pub saved: usize,
    /// Of those, missing from the target before the restore.
    pub missing: usize,
    /// Confirmed re-added.
    pub restored: usize,
    pub unresolved: BTreeMap<String, usize>,
}

impl Engine {
    /// Re-adds the entries of restore point `id` that its instance no longer holds.
    pub async fn restore(
        &self,
        providers: &Providers,
        id: i64,
        cancel: CancelToken,
    ) -> Result<RestoreReport, EngineError> {
        let rp = self
            .state
            .restore_point(id)?
            .ok_or_else(|| EngineError::Invalid(format!("no restore point {id}")))?;
        let inst = rp.info.instance.as_str();
        let feature = rp.info.feature;
        let provider = providers.get(inst).ok_or_else(|| {
            EngineError::Invalid(format!(
                "restore point {id} is for `{inst}`, which is not configured"
            ))
        })?;
        let (em, _) = counting_emitter(&self.emitter, false);
        emit(
            &em,
            RestoreStart {
                id,
                instance: inst.to_owned(),
                feature,
                count: rp.entries.len(),
            },
        );
        let cx = ferry_core::Context::new(em.clone(), cancel.clone());
        let current = provider
            .build_index(&cx, feature)
            .await
            .map_err(|e| EngineError::Invalid(format!("{inst}: could not read {feature}: {e}")))?;
        let saved = Snapshot::committed_baseline(feature, rp.entries.iter().cloned());
        let (cur, sv) = (Prepared::new(&current), Prepared::new(&saved));
        let tol = ferry_core::HISTORY_TOLERANCE_SECS;
        let missing: Vec<Entry> = (0..sv.len())
            .filter(|i| cur.find_match(&sv, *i, tol).is_none())
            .map(|i| sv.entries[i].1.clone())
            .collect();
        let n_missing = missing.len();
        let acx = ApplyCx {
            em: &em,
            state: &self.state,
            run_id: None,
            dry_run: false,
            pair: &rp.info.pair,
            feature,
            cancel: &cancel,
            now: (self.clock)(),
        };
        let caps = provider.features();
        let mut target = Target {
            provider: provider.as_ref(),
            instance: inst,
            batch_size: caps.get(feature).map_or(1, |c| c.batch_size),
            stop: None,
            calls: 0,
        };
        let r = apply_op(&acx, &mut target, WriteKind::Add, missing).await;
        let report = RestoreReport {
            id,
            instance: inst.to_owned(),
            feature,
            saved: rp.entries.len(),
            missing: n_missing,
            restored: r.confirmed(),
            unresolved: r.unresolved_by_reason(),
        };
        emit(
            &em,
            RestoreDone {
                id,
                instance: report.instance.clone(),
                feature,
                saved: report.saved,
                missing: report.missing,
                restored: report.restored,
                unresolved: report.unresolved.clone(),
            },
        );
        Ok(report)
    }
}

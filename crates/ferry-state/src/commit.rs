//! The feature commit: everything one pair/feature run changes, in one transaction.

use ferry_core::{Entry, Feature, MediaType, Timestamp};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::baseline::BaselineWrite;
use crate::error::{StateError, StateResult};
use crate::tombstone::TombstoneWrite;
use crate::unresolved::UnresolvedOp;

/// A write that did not take in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnresolvedWrite {
    pub instance: String,
    pub op: UnresolvedOp,
    pub key: String,
    pub entry: Entry,
    pub reason: String,
    pub detail: Option<String>,
    /// Whether this failure counts toward the blackbox (an item problem, not an outage).
    pub counts_as_failure: bool,
}

/// Everything a pair/feature run commits. Applied by [`StateStore::commit_feature`] in one
/// transaction: either all of it is visible afterwards or none of it.
#[derive(Debug, Clone, Default)]
pub struct FeatureCommit {
    pub run_id: Option<i64>,
    pub pair: String,
    pub feature: Option<Feature>,
    pub at: Option<Timestamp>,
    /// Replaces the baseline of each named instance for this pair and feature.
    pub baselines: Vec<BaselineWrite>,
    pub tombstones: Vec<TombstoneWrite>,
    /// Tombstone tokens to clear, any instance (a matching item was added again on purpose).
    pub clear_tombstones: Vec<(MediaType, String)>,
    pub unresolved: Vec<UnresolvedWrite>,
    /// `(instance, op, key)` of writes that succeeded: their unresolved records go.
    pub resolved: Vec<(String, UnresolvedOp, String)>,
    /// Unresolved records to drop because the write is no longer wanted.
    pub obsolete: Vec<(String, UnresolvedOp, String)>,
    /// Failed-run count at which an add is moved to the blackbox (0 turns it off).
    pub blackbox_after: u32,
    /// Journal rows of earlier runs that this commit reconciled.
    pub reconciled_journal: Vec<i64>,
}

impl StateStore {
    /// Applies a [`FeatureCommit`] in one transaction. Also deletes this run's journal
    /// rows for the pair and feature (they are settled by this commit).
    pub fn commit_feature(&self, fc: &FeatureCommit) -> StateResult<Vec<(String, String)>> {
        let feature = fc
            .feature
            .ok_or_else(|| StateError::Invalid("feature commit without a feature".into()))?;
        let at = fc.at.unwrap_or_else(Timestamp::now).unix();
        let f = feature.as_str();
        let pair = fc.pair.as_str();
        let mut c = self.conn()?;
        let e = |err| self.sql_err(err);
        let tx = c.transaction().map_err(e)?;
        for b in &fc.baselines {
            tx.execute(
                "INSERT INTO baselines (pair, instance, feature, checkpoint, item_count, pending,
                                        run_id, updated_at, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (pair, instance, feature) DO UPDATE SET
                    checkpoint = excluded.checkpoint, item_count = excluded.item_count,
                    pending = excluded.pending, run_id = excluded.run_id,
                    updated_at = excluded.updated_at, data = excluded.data",
                params![
                    pair,
                    b.instance,
                    f,
                    b.checkpoint,
                    b.item_count as i64,
                    b.pending as i64,
                    fc.run_id,
                    at,
                    b.data
                ],
            )
            .map_err(e)?;
        }
        {
            let mut clear = tx
                .prepare_cached(
                    "DELETE FROM tombstones WHERE pair = ?1 AND feature = ?2 AND media_type = ?3
                     AND token = ?4",
                )
                .map_err(e)?;
            for (mt, token) in &fc.clear_tombstones {
                clear
                    .execute(params![pair, f, mt.as_str(), token])
                    .map_err(e)?;
            }
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO tombstones (pair, feature, instance, media_type, token,
                                                     event_at, key, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            for t in &fc.tombstones {
                for token in &t.tokens {
                    ins.execute(params![
                        pair,
                        f,
                        t.instance,
                        t.media_type.as_str(),
                        token,
                        t.event_at.map(Timestamp::unix),
                        t.key,
                        at
                    ])
                    .map_err(e)?;
                }
            }
        }
        {
            let mut del = tx
                .prepare_cached(
                    "DELETE FROM unresolved WHERE pair = ?1 AND instance = ?2 AND feature = ?3
                     AND op = ?4 AND key = ?5",
                )
                .map_err(e)?;
            for (inst, op, key) in fc.resolved.iter().chain(&fc.obsolete) {
                del.execute(params![pair, inst, f, op.as_str(), key])
                    .map_err(e)?;
            }
        }
        let mut promoted = Vec::new();
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO unresolved (pair, instance, feature, op, key, entry, reason, detail,
                                             first_seen, last_seen, failures, last_run)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)
                     ON CONFLICT (pair, instance, feature, op, key) DO UPDATE SET
                        entry = excluded.entry, reason = excluded.reason, detail = excluded.detail,
                        last_seen = excluded.last_seen,
                        failures = CASE
                            WHEN unresolved.last_run IS excluded.last_run THEN unresolved.failures
                            ELSE unresolved.failures + excluded.failures END,
                        last_run = excluded.last_run
                     RETURNING failures",
                )
                .map_err(e)?;
            let mut bb = tx
                .prepare_cached(
                    "INSERT INTO blackbox (pair, instance, feature, key, entry, reason, since)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (pair, instance, feature, key) DO NOTHING",
                )
                .map_err(e)?;
            let mut del = tx
                .prepare_cached(
                    "DELETE FROM unresolved WHERE pair = ?1 AND instance = ?2 AND feature = ?3
                     AND op = ?4 AND key = ?5",
                )
                .map_err(e)?;
            let mut done = std::collections::HashSet::new();
            for u in &fc.unresolved {
                if done.contains(&(u.instance.as_str(), u.key.as_str())) {
                    continue;
                }
                let entry = serde_json::to_string(&u.entry)
                    .map_err(|err| StateError::Invalid(format!("unresolved entry: {err}")))?;
                let failures: i64 = up
                    .query_row(
                        params![
                            pair,
                            u.instance,
                            f,
                            u.op.as_str(),
                            u.key,
                            entry,
                            u.reason,
                            u.detail,
                            at,
                            u.counts_as_failure as i64,
                            fc.run_id
                        ],
                        |r| r.get(0),
                    )
                    .map_err(e)?;
                let promote = fc.blackbox_after > 0
                    && u.op != UnresolvedOp::Remove
                    && failures >= i64::from(fc.blackbox_after);
                if promote {
                    bb.execute(params![
                        pair,
                        u.instance,
                        f,
                        u.key,
                        entry,
                        format!("failed {failures} consecutive runs: {}", u.reason),
                        at
                    ])
                    .map_err(e)?;
                    del.execute(params![pair, u.instance, f, u.op.as_str(), u.key])
                        .map_err(e)?;
                    promoted.push((u.instance.clone(), u.key.clone()));
                    done.insert((u.instance.as_str(), u.key.as_str()));
                }
            }
        }
        {
            let mut del = tx
                .prepare_cached("DELETE FROM journal WHERE id = ?1")
                .map_err(e)?;
            for id in &fc.reconciled_journal {
                del.execute(params![id]).map_err(e)?;
            }
            if let Some(run) = fc.run_id {
                tx.execute(
                    "DELETE FROM journal WHERE pair = ?1 AND feature = ?2 AND run_id = ?3",
                    params![pair, f, run],
                )
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(promoted)
    }
}

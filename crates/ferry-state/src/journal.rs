//! The write journal: every write batch is recorded (committed) before it is sent and its
//! per-item outcomes after. A feature commit deletes its run's rows in the same
//! transaction as the baselines, so rows found by a later run are exactly the batches of a
//! run that died (or failed to commit) before its feature commit.

use std::fmt;

use ferry_core::report::ItemOutcome;
use ferry_core::{Entry, Feature, Timestamp};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::baseline::feature_from;
use crate::error::{StateError, StateResult};
use crate::unresolved::UnresolvedOp;

/// Where a batch got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalState {
    /// Recorded, then (maybe) sent; no answer recorded. Its outcome is unknown.
    Pending,
    /// The provider answered; outcomes recorded.
    Done,
    /// The call returned an error; nothing is known to have been written.
    Failed,
}

impl JournalState {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalState::Pending => "pending",
            JournalState::Done => "done",
            JournalState::Failed => "failed",
        }
    }
}

impl fmt::Display for JournalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalBatch<'a> {
    pub run_id: i64,
    pub pair: &'a str,
    pub instance: &'a str,
    pub feature: Feature,
    pub op: UnresolvedOp,
    pub batch: u32,
    pub entries: &'a [Entry],
    pub at: Timestamp,
}

/// A journal row read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub id: i64,
    pub run_id: i64,
    pub pair: String,
    pub instance: String,
    pub feature: Feature,
    pub op: UnresolvedOp,
    pub batch: u32,
    pub state: JournalState,
    pub entries: Vec<Entry>,
    pub outcomes: Option<Vec<ItemOutcome>>,
    pub created_at: Timestamp,
}

impl StateStore {
    /// Records a batch as pending (committed immediately); returns its id.
    pub fn journal_begin(&self, b: &JournalBatch<'_>) -> StateResult<i64> {
        let entries = serde_json::to_vec(b.entries)
            .map_err(|e| StateError::Invalid(format!("journal entries: {e}")))?;
        let c = self.conn()?;
        c.execute(
            "INSERT INTO journal (run_id, pair, instance, feature, op, batch, state, entries,
                                  created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?8)",
            params![
                b.run_id,
                b.pair,
                b.instance,
                b.feature.as_str(),
                b.op.as_str(),
                b.batch,
                entries,
                b.at.unix()
            ],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(c.last_insert_rowid())
    }

    /// Records a batch's answer: its outcomes (`Done`), or that the call failed (`Failed`).
    pub fn journal_finish(
        &self,
        id: i64,
        state: JournalState,
        outcomes: Option<&[ItemOutcome]>,
        at: Timestamp,
    ) -> StateResult<()> {
        let outcomes = outcomes
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| StateError::Invalid(format!("journal outcomes: {e}")))?;
        let c = self.conn()?;
        c.execute(
            "UPDATE journal SET state = ?2, outcomes = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, state.as_str(), outcomes, at.unix()],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Journal rows of one pair and feature left by runs other than `current_run`: the
    /// batches of a run that never reached its feature commit.
    pub fn journal_open(
        &self,
        pair: &str,
        feature: Feature,
        current_run: Option<i64>,
    ) -> StateResult<Vec<JournalRecord>> {
        self.journal_query(Some(pair), Some(feature), current_run)
    }

    /// Every uncommitted journal row, for `ferry state`.
    pub fn journal_all(&self) -> StateResult<Vec<JournalRecord>> {
        self.journal_query(None, None, None)
    }

    fn journal_query(
        &self,
        pair: Option<&str>,
        feature: Option<Feature>,
        current_run: Option<i64>,
    ) -> StateResult<Vec<JournalRecord>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT id, run_id, pair, instance, feature, op, batch, state, entries, outcomes,
                        created_at
                 FROM journal
                 WHERE (?1 IS NULL OR pair = ?1) AND (?2 IS NULL OR feature = ?2)
                   AND (?3 IS NULL OR run_id <> ?3)
                 ORDER BY id",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(
                params![pair, feature.map(Feature::as_str), current_run],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, Vec<u8>>(8)?,
                        r.get::<_, Option<Vec<u8>>>(9)?,
                        r.get::<_, i64>(10)?,
                    ))
                },
            )
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, run_id, pair, instance, feature, op, batch, state, entries, outcomes, at) =
                r.map_err(|e| self.sql_err(e))?;
            let state = match state.as_str() {
                "pending" => JournalState::Pending,
                "done" => JournalState::Done,
                "failed" => JournalState::Failed,
                s => return Err(StateError::Invalid(format!("journal {id}: state `{s}`"))),
            };
            let entries: Vec<Entry> = serde_json::from_slice(&entries)
                .map_err(|e| self.json_err(&format!("journal {id} entries"), e))?;
            let outcomes: Option<Vec<ItemOutcome>> = outcomes
                .map(|o| serde_json::from_slice(&o))
                .transpose()
                .map_err(|e| self.json_err(&format!("journal {id} outcomes"), e))?;
            out.push(JournalRecord {
                id,
                run_id,
                pair,
                instance,
                feature: feature_from(&feature).map_err(StateError::Invalid)?,
                op: op.parse()?,
                batch: batch as u32,
                state,
                entries,
                outcomes,
                created_at: Timestamp::from_unix(at),
            });
        }
        Ok(out)
    }
}

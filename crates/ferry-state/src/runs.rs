//! Run history and per-instance health history (for the "first healthy run after an
//! outage is add-only" rule).

use std::fmt;
use std::str::FromStr;

use ferry_core::{HealthStatus, Timestamp};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::error::{StateError, StateResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Ok,
    Failed,
    Cancelled,
    /// The process died while the run was going (found `running` by a later run).
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = StateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "running" => RunStatus::Running,
            "ok" => RunStatus::Ok,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "interrupted" => RunStatus::Interrupted,
            _ => return Err(StateError::Invalid(format!("unknown run status `{s}`"))),
        })
    }
}

/// One past run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: i64,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: RunStatus,
    /// The engine's run summary, as JSON.
    pub summary: Option<serde_json::Value>,
}

/// The last health status recorded for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub instance: String,
    pub status: HealthStatus,
    pub checked_at: Timestamp,
    pub run_id: Option<i64>,
}

fn health_from(s: &str) -> Result<HealthStatus, StateError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StateError::Invalid(format!("unknown health status `{s}`")))
}

impl StateStore {
    /// Records the start of a run; returns its id. Any run still marked `running` is
    /// marked `interrupted` first (its process died).
    pub fn begin_run(&self, started_at: Timestamp) -> StateResult<i64> {
        let c = self.conn()?;
        c.execute(
            "UPDATE runs SET status = 'interrupted' WHERE status = 'running'",
            [],
        )
        .map_err(|e| self.sql_err(e))?;
        c.execute(
            "INSERT INTO runs (started_at, status) VALUES (?1, 'running')",
            params![started_at.unix()],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(c.last_insert_rowid())
    }

    pub fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        finished_at: Timestamp,
        summary: &serde_json::Value,
    ) -> StateResult<()> {
        let c = self.conn()?;
        c.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, summary = ?4 WHERE id = ?1",
            params![id, status.as_str(), finished_at.unix(), summary.to_string()],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> StateResult<Vec<RunRecord>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT id, started_at, finished_at, status, summary FROM runs
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(params![limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, started, finished, status, summary) = r.map_err(|e| self.sql_err(e))?;
            let summary = match summary {
                Some(s) => Some(
                    serde_json::from_str(&s)
                        .map_err(|e| self.json_err(&format!("run {id} summary"), e))?,
                ),
                None => None,
            };
            out.push(RunRecord {
                id,
                started_at: Timestamp::from_unix(started),
                finished_at: finished.map(Timestamp::from_unix),
                status: status.parse()?,
                summary,
            });
        }
        Ok(out)
    }

    /// The last recorded health of an instance.
    pub fn last_health(&self, instance: &str) -> StateResult<Option<InstanceHealth>> {
        let c = self.conn()?;
        let row = c
            .query_row(
                "SELECT status, checked_at, run_id FROM instances WHERE instance = ?1",
                params![instance],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        row.map(|(s, at, run_id)| {
            Ok(InstanceHealth {
                instance: instance.to_owned(),
                status: health_from(&s)?,
                checked_at: Timestamp::from_unix(at),
                run_id,
            })
        })
        .transpose()
    }

    /// Every instance's last recorded health.
    pub fn instance_health(&self) -> StateResult<Vec<InstanceHealth>> {
        let c = self.conn()?;
        let mut st = c
            .prepare("SELECT instance, status, checked_at, run_id FROM instances ORDER BY instance")
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (instance, s, at, run_id) = r.map_err(|e| self.sql_err(e))?;
            out.push(InstanceHealth {
                instance,
                status: health_from(&s)?,
                checked_at: Timestamp::from_unix(at),
                run_id,
            });
        }
        Ok(out)
    }

    pub fn record_health(
        &self,
        instance: &str,
        status: HealthStatus,
        at: Timestamp,
        run_id: Option<i64>,
    ) -> StateResult<()> {
        let c = self.conn()?;
        c.execute(
            "INSERT INTO instances (instance, status, checked_at, run_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance) DO UPDATE SET status = excluded.status,
                 checked_at = excluded.checked_at, run_id = excluded.run_id",
            params![instance, status.as_str(), at.unix(), run_id],
        )
        .map_err(|e| self.sql_err(e))?;
        Ok(())
    }
}

//! Unresolved writes (kept with their reason and retried every run) and the blackbox
//! (items whose add failed in consecutive runs, blocked for a cooldown).

use std::fmt;
use std::str::FromStr;

use ferry_core::{Entry, Feature, Timestamp};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::baseline::feature_from;
use crate::error::{StateError, StateResult};

/// The kind of write an unresolved record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnresolvedOp {
    Add,
    Update,
    Remove,
}

impl UnresolvedOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnresolvedOp::Add => "add",
            UnresolvedOp::Update => "update",
            UnresolvedOp::Remove => "remove",
        }
    }
}

impl fmt::Display for UnresolvedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnresolvedOp {
    type Err = StateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "add" => Ok(UnresolvedOp::Add),
            "update" => Ok(UnresolvedOp::Update),
            "remove" => Ok(UnresolvedOp::Remove),
            _ => Err(StateError::Invalid(format!("unknown write op `{s}`"))),
        }
    }
}

/// A write that did not take, kept until it succeeds or stops being wanted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnresolvedRecord {
    pub pair: String,
    /// The instance the write was for.
    pub instance: String,
    pub feature: Feature,
    pub op: UnresolvedOp,
    pub key: String,
    pub entry: Entry,
    /// `not_found`, `account_limit`, `provider_down`, `failed:unavailable`, ...
    pub reason: String,
    pub detail: Option<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Consecutive runs in which this write failed in a way that counts toward the
    /// blackbox (not provider outages or rate limits).
    pub failures: u32,
}

/// An item blocked from being added to an instance until `since + cooldown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlackboxRecord {
    pub pair: String,
    pub instance: String,
    pub feature: Feature,
    pub key: String,
    pub entry: Entry,
    pub reason: String,
    pub since: Timestamp,
}

impl StateStore {
    /// Unresolved records, optionally for one pair and/or feature.
    pub fn unresolved(
        &self,
        pair: Option<&str>,
        feature: Option<Feature>,
    ) -> StateResult<Vec<UnresolvedRecord>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT pair, instance, feature, op, key, entry, reason, detail, first_seen,
                        last_seen, failures
                 FROM unresolved
                 WHERE (?1 IS NULL OR pair = ?1) AND (?2 IS NULL OR feature = ?2)
                 ORDER BY pair, instance, feature, op, key",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(params![pair, feature.map(Feature::as_str)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (pair, instance, feature, op, key, entry, reason, detail, first, last, failures) =
                r.map_err(|e| self.sql_err(e))?;
            let entry: Entry = serde_json::from_str(&entry)
                .map_err(|e| self.json_err(&format!("unresolved {pair}/{key}"), e))?;
            out.push(UnresolvedRecord {
                feature: feature_from(&feature).map_err(StateError::Invalid)?,
                op: op.parse()?,
                pair,
                instance,
                key,
                entry,
                reason,
                detail,
                first_seen: Timestamp::from_unix(first),
                last_seen: Timestamp::from_unix(last),
                failures: failures as u32,
            });
        }
        Ok(out)
    }

    /// Blackbox records, optionally for one pair.
    pub fn blackbox(&self, pair: Option<&str>) -> StateResult<Vec<BlackboxRecord>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT pair, instance, feature, key, entry, reason, since FROM blackbox
                 WHERE (?1 IS NULL OR pair = ?1) ORDER BY pair, instance, feature, key",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(params![pair], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (pair, instance, feature, key, entry, reason, since) =
                r.map_err(|e| self.sql_err(e))?;
            let entry: Entry = serde_json::from_str(&entry)
                .map_err(|e| self.json_err(&format!("blackbox {pair}/{key}"), e))?;
            out.push(BlackboxRecord {
                feature: feature_from(&feature).map_err(StateError::Invalid)?,
                pair,
                instance,
                key,
                entry,
                reason,
                since: Timestamp::from_unix(since),
            });
        }
        Ok(out)
    }

    /// Lifts the blackbox for one item (or, with `key = None`, for a whole pair).
    pub fn clear_blackbox(&self, pair: &str, key: Option<&str>) -> StateResult<usize> {
        let c = self.conn()?;
        c.execute(
            "DELETE FROM blackbox WHERE pair = ?1 AND (?2 IS NULL OR key = ?2)",
            params![pair, key],
        )
        .map_err(|e| self.sql_err(e))
    }

    /// Drops blackbox entries older than `before`.
    pub fn prune_blackbox(&self, before: Timestamp) -> StateResult<usize> {
        let c = self.conn()?;
        c.execute(
            "DELETE FROM blackbox WHERE since < ?1",
            params![before.unix()],
        )
        .map_err(|e| self.sql_err(e))
    }
}

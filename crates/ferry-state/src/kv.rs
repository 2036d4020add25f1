//! The namespaced key-value table behind [`ferry_core::KvStore`]. Providers keep state
//! they own here (circuit-breaker records, rotated tokens). ferry-http keeps breaker
//! records under namespace [`BREAKER_NAMESPACE`] with the instance as key.

use ferry_core::{KvStore, Timestamp};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::error::StateResult;

/// The namespace circuit-breaker records are stored under (key = instance), as
/// `ferry_http::breaker::BREAKER_NAMESPACE` writes them.
pub const BREAKER_NAMESPACE: &str = "breaker";

/// One key-value row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub namespace: String,
    pub key: String,
    pub value: String,
    pub updated_at: Timestamp,
}

impl StateStore {
    /// Rows of the key-value table, optionally of one namespace. Values may be secrets
    /// (tokens): callers must not print them unless they know the namespace.
    pub fn kv_records(&self, namespace: Option<&str>) -> StateResult<Vec<KvRecord>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT namespace, key, value, updated_at FROM kv
                 WHERE (?1 IS NULL OR namespace = ?1) ORDER BY namespace, key",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(params![namespace], |r| {
                Ok(KvRecord {
                    namespace: r.get(0)?,
                    key: r.get(1)?,
                    value: r.get(2)?,
                    updated_at: Timestamp::from_unix(r.get(3)?),
                })
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))
    }

    /// Circuit-breaker records of every instance (`key` = instance, raw JSON value).
    pub fn breaker_records(&self) -> StateResult<Vec<KvRecord>> {
        self.kv_records(Some(BREAKER_NAMESPACE))
    }
}

impl KvStore for StateStore {
    fn get(&self, namespace: &str, key: &str) -> ferry_core::Result<Option<String>> {
        let c = self.conn()?;
        c.query_row(
            "SELECT value FROM kv WHERE namespace = ?1 AND key = ?2",
            params![namespace, key],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.sql_err(e).into())
    }

    fn put(&self, namespace: &str, key: &str, value: &str) -> ferry_core::Result<()> {
        let c = self.conn()?;
        c.execute(
            "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
                 updated_at = excluded.updated_at",
            params![namespace, key, value, Timestamp::now().unix()],
        )
        .map_err(|e| ferry_core::Error::from(self.sql_err(e)))?;
        Ok(())
    }

    fn delete(&self, namespace: &str, key: &str) -> ferry_core::Result<()> {
        let c = self.conn()?;
        c.execute(
            "DELETE FROM kv WHERE namespace = ?1 AND key = ?2",
            params![namespace, key],
        )
        .map_err(|e| ferry_core::Error::from(self.sql_err(e)))?;
        Ok(())
    }
}

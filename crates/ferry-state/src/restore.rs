//! Restore points: a target's snapshot of one feature, saved before any removal is sent.

use ferry_core::{Entry, Feature, Timestamp};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::baseline::{decode_entries, encode_entries, feature_from};
use crate::error::{StateError, StateResult};

/// A restore point's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePointInfo {
    pub id: i64,
    pub run_id: Option<i64>,
    pub pair: String,
    pub instance: String,
    pub feature: Feature,
    pub created_at: Timestamp,
    pub item_count: u64,
}

/// A restore point with its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub info: RestorePointInfo,
    pub entries: Vec<Entry>,
}

/// How many restore points are kept per (instance, feature).
pub const RESTORE_POINTS_KEPT: i64 = 10;

impl StateStore {
    /// Saves a restore point (its own transaction, committed before any removal is sent)
    /// and keeps only the newest [`RESTORE_POINTS_KEPT`] per (instance, feature).
    pub fn save_restore_point<'a>(
        &self,
        run_id: Option<i64>,
        pair: &str,
        instance: &str,
        feature: Feature,
        created_at: Timestamp,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> StateResult<i64> {
        let (data, n) = encode_entries(entries)?;
        let mut c = self.conn()?;
        let tx = c.transaction().map_err(|e| self.sql_err(e))?;
        tx.execute(
            "INSERT INTO restore_points (run_id, pair, instance, feature, created_at, item_count, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![run_id, pair, instance, feature.as_str(), created_at.unix(), n as i64, data],
        )
        .map_err(|e| self.sql_err(e))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "DELETE FROM restore_points WHERE instance = ?1 AND feature = ?2 AND id NOT IN
               (SELECT id FROM restore_points WHERE instance = ?1 AND feature = ?2
                ORDER BY id DESC LIMIT ?3)",
            params![instance, feature.as_str(), RESTORE_POINTS_KEPT],
        )
        .map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))?;
        Ok(id)
    }

    pub fn restore_points(&self) -> StateResult<Vec<RestorePointInfo>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT id, run_id, pair, instance, feature, created_at, item_count
                 FROM restore_points ORDER BY id DESC",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st.query_map([], row_info).map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(info_from(r.map_err(|e| self.sql_err(e))?)?);
        }
        Ok(out)
    }

    pub fn restore_point(&self, id: i64) -> StateResult<Option<RestorePoint>> {
        let c = self.conn()?;
        let row = c
            .query_row(
                "SELECT id, run_id, pair, instance, feature, created_at, item_count, data
                 FROM restore_points WHERE id = ?1",
                params![id],
                |r| Ok((row_info(r)?, r.get::<_, Vec<u8>>(7)?)),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        drop(c);
        let Some((raw, data)) = row else {
            return Ok(None);
        };
        let info = info_from(raw)?;
        let entries =
            decode_entries(&data).map_err(|e| self.json_err(&format!("restore point {id}"), e))?;
        Ok(Some(RestorePoint { info, entries }))
    }
}

type RawInfo = (i64, Option<i64>, String, String, String, i64, i64);

fn row_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawInfo> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn info_from(
    (id, run_id, pair, instance, feature, at, n): RawInfo,
) -> StateResult<RestorePointInfo> {
    Ok(RestorePointInfo {
        id,
        run_id,
        pair,
        instance,
        feature: feature_from(&feature).map_err(StateError::Invalid)?,
        created_at: Timestamp::from_unix(at),
        item_count: n as u64,
    })
}

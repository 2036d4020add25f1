//! Baselines: the entries believed in sync at the end of the last committed run, per
//! (pair, provider instance, feature), with the activity checkpoint read in that run.
//!
//! Keying by pair matters: two pairs that share an instance each judge deletions against
//! their own last view of it, so one pair's commit never consumes the other's evidence.

use ferry_core::{Entry, Feature, Timestamp};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::error::StateResult;

/// A committed baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub pair: String,
    pub instance: String,
    pub feature: Feature,
    pub checkpoint: Option<String>,
    /// The commit left work behind (retained deletion evidence, unresolved writes): the
    /// activities shortcut must not skip this feature next run.
    pub pending: bool,
    pub updated_at: Timestamp,
    pub run_id: Option<i64>,
    pub entries: Vec<Entry>,
}

/// A baseline's metadata without its entries, for `ferry state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineInfo {
    pub pair: String,
    pub instance: String,
    pub feature: Feature,
    pub checkpoint: Option<String>,
    pub pending: bool,
    pub item_count: u64,
    pub updated_at: Timestamp,
    pub run_id: Option<i64>,
}

/// One baseline to write in a [`crate::FeatureCommit`]; the entries are encoded up front.
#[derive(Debug, Clone)]
pub struct BaselineWrite {
    pub instance: String,
    pub checkpoint: Option<String>,
    pub pending: bool,
    pub(crate) item_count: u64,
    pub(crate) data: Vec<u8>,
}

impl BaselineWrite {
    pub fn new<'a>(
        instance: impl Into<String>,
        checkpoint: Option<String>,
        pending: bool,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> StateResult<Self> {
        let (data, n) = encode_entries(entries)?;
        Ok(BaselineWrite {
            instance: instance.into(),
            checkpoint,
            pending,
            item_count: n,
            data,
        })
    }

    pub fn item_count(&self) -> u64 {
        self.item_count
    }
}

/// Encodes entries as one compact JSON array; returns the bytes and the count.
pub fn encode_entries<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
) -> StateResult<(Vec<u8>, u64)> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    let mut n = 0u64;
    for e in entries {
        if n > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, e).map_err(|e| {
            crate::StateError::Invalid(format!("an entry could not be encoded: {e}"))
        })?;
        n += 1;
    }
    out.push(b']');
    Ok((out, n))
}

/// Decodes what [`encode_entries`] wrote.
pub fn decode_entries(data: &[u8]) -> Result<Vec<Entry>, serde_json::Error> {
    serde_json::from_slice(data)
}

pub(crate) fn feature_from(s: &str) -> Result<Feature, String> {
    s.parse::<Feature>().map_err(|e| e.to_string())
}

impl StateStore {
    /// The committed baseline of one instance's feature as seen by one pair.
    pub fn load_baseline(
        &self,
        pair: &str,
        instance: &str,
        feature: Feature,
    ) -> StateResult<Option<Baseline>> {
        let c = self.conn()?;
        let row = c
            .query_row(
                "SELECT checkpoint, pending, updated_at, run_id, data FROM baselines
                 WHERE pair = ?1 AND instance = ?2 AND feature = ?3",
                params![pair, instance, feature.as_str()],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        drop(c);
        let Some((checkpoint, pending, updated_at, run_id, data)) = row else {
            return Ok(None);
        };
        let entries = decode_entries(&data)
            .map_err(|e| self.json_err(&format!("baseline {pair}/{instance}/{feature}"), e))?;
        Ok(Some(Baseline {
            pair: pair.to_owned(),
            instance: instance.to_owned(),
            feature,
            checkpoint,
            pending: pending != 0,
            updated_at: Timestamp::from_unix(updated_at),
            run_id,
            entries,
        }))
    }

    /// Every baseline's metadata.
    pub fn baselines(&self) -> StateResult<Vec<BaselineInfo>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT pair, instance, feature, checkpoint, pending, item_count, updated_at, run_id
                 FROM baselines ORDER BY pair, instance, feature",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (pair, instance, feature, checkpoint, pending, n, at, run_id) =
                r.map_err(|e| self.sql_err(e))?;
            let feature = feature_from(&feature)
                .map_err(|m| crate::StateError::Invalid(format!("baselines: {m}")))?;
            out.push(BaselineInfo {
                pair,
                instance,
                feature,
                checkpoint,
                pending: pending != 0,
                item_count: n as u64,
                updated_at: Timestamp::from_unix(at),
                run_id,
            });
        }
        Ok(out)
    }

    /// Deletes every baseline of a pair (the next run of that pair is a bootstrap run,
    /// which never removes anything).
    pub fn forget_pair(&self, pair: &str) -> StateResult<usize> {
        let c = self.conn()?;
        c.execute("DELETE FROM baselines WHERE pair = ?1", params![pair])
            .map_err(|e| self.sql_err(e))
    }
}

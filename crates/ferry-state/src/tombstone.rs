//! Tombstones: "this title was removed within this pair and feature", keyed by the set of
//! id tokens ([`ferry_core::identity::id_tokens`]) so the deletion is recognised whichever
//! id the other side files the title under. History tombstones also carry the play's time.

use ferry_core::{Feature, MediaType, Timestamp};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::StateStore;
use crate::error::{StateError, StateResult};

/// One tombstone: all the tokens of one removed title (or play).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub pair: String,
    pub feature: Feature,
    /// The instance the title was removed from.
    pub instance: String,
    pub media_type: MediaType,
    /// The entry key the removal was made under.
    pub key: String,
    pub tokens: Vec<String>,
    /// For history: the removed play's time.
    pub event_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A tombstone to write (the first timestamp of an existing token is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TombstoneWrite {
    /// The instance the title was removed from.
    pub instance: String,
    pub media_type: MediaType,
    pub key: String,
    pub tokens: Vec<String>,
    pub event_at: Option<Timestamp>,
}

pub(crate) fn media_type_from(s: &str) -> Result<MediaType, StateError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StateError::Invalid(format!("unknown media type `{s}`")))
}

impl StateStore {
    /// Live tombstones of one pair and feature, created at or after `since`.
    pub fn tombstones(
        &self,
        pair: &str,
        feature: Feature,
        since: Timestamp,
    ) -> StateResult<Vec<Tombstone>> {
        let c = self.conn()?;
        let mut st = c
            .prepare(
                "SELECT media_type, key, token, event_at, created_at, instance FROM tombstones
                 WHERE pair = ?1 AND feature = ?2 AND created_at >= ?3
                 ORDER BY instance, key, media_type, coalesce(event_at, -1), token",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = st
            .query_map(params![pair, feature.as_str(), since.unix()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out: Vec<Tombstone> = Vec::new();
        for r in rows {
            let (mt, key, token, ev, created, instance) = r.map_err(|e| self.sql_err(e))?;
            let media_type = media_type_from(&mt)?;
            let event_at = ev.map(Timestamp::from_unix);
            match out.last_mut() {
                Some(t)
                    if t.key == key
                        && t.instance == instance
                        && t.media_type == media_type
                        && t.event_at == event_at =>
                {
                    t.tokens.push(token);
                    t.created_at = t.created_at.min(Timestamp::from_unix(created));
                }
                _ => out.push(Tombstone {
                    pair: pair.to_owned(),
                    feature,
                    instance,
                    media_type,
                    key,
                    tokens: vec![token],
                    event_at,
                    created_at: Timestamp::from_unix(created),
                }),
            }
        }
        Ok(out)
    }

    /// Every live tombstone (all pairs), for `ferry state`.
    pub fn tombstone_count(&self) -> StateResult<u64> {
        let c = self.conn()?;
        c.query_row("SELECT count(DISTINCT pair || '|' || feature || '|' || instance || '|' || key || '|' || coalesce(event_at, -1)) FROM tombstones", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| self.sql_err(e))
    }

    /// Drops tombstones created before `before`; returns how many token rows went.
    pub fn prune_tombstones(&self, before: Timestamp) -> StateResult<usize> {
        let c = self.conn()?;
        c.execute(
            "DELETE FROM tombstones WHERE created_at < ?1",
            params![before.unix()],
        )
        .map_err(|e| self.sql_err(e))
    }
}

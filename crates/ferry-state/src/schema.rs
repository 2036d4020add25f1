//! The versioned schema. `MIGRATIONS[i]` takes the file from version `i` to `i + 1`; each
//! runs in one transaction together with its `user_version` bump, so a killed migration
//! leaves the file at the previous version.

use std::path::Path;

use rusqlite::Connection;

use crate::APPLICATION_ID;
use crate::error::{StateError, StateResult};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const V1: &str = r#"
CREATE TABLE baselines (
    id         INTEGER PRIMARY KEY,
    pair       TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    checkpoint TEXT,
    item_count INTEGER NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 0,
    run_id     INTEGER,
    updated_at INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    UNIQUE (pair, instance, feature)
);

CREATE TABLE tombstones (
    id         INTEGER PRIMARY KEY,
    pair       TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    media_type TEXT    NOT NULL,
    token      TEXT    NOT NULL,
    event_at   INTEGER,
    key        TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX tombstones_token
    ON tombstones (pair, feature, instance, media_type, token, coalesce(event_at, -1));
CREATE INDEX tombstones_created ON tombstones (created_at);

CREATE TABLE unresolved (
    pair       TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    op         TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    entry      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    detail     TEXT,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0,
    last_run   INTEGER,
    PRIMARY KEY (pair, instance, feature, op, key)
);

CREATE TABLE blackbox (
    pair       TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    entry      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (pair, instance, feature, key)
);

CREATE TABLE instances (
    instance   TEXT    PRIMARY KEY,
    status     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    run_id     INTEGER
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT    NOT NULL,
    summary     TEXT
);

CREATE TABLE restore_points (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER,
    pair       TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    item_count INTEGER NOT NULL,
    data       BLOB    NOT NULL
);
CREATE INDEX restore_points_by_target ON restore_points (instance, feature, id);

CREATE TABLE journal (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL,
    pair       TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    op         TEXT    NOT NULL,
    batch      INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    entries    BLOB    NOT NULL,
    outcomes   BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX journal_by_feature ON journal (pair, feature, run_id);

CREATE TABLE kv (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);
"#;

const MIGRATIONS: &[&str] = &[V1];

pub(crate) fn migrate(conn: &mut Connection, path: &Path, version: i64) -> StateResult<()> {
    let err = |e| StateError::from_sqlite(path, e);
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(err)?;
    let version = u32::try_from(version).map_err(|_| StateError::Corrupt {
        path: path.to_path_buf(),
        message: format!("negative schema version {version}"),
    })?;
    if version == 0 {
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if tables > 0 && app_id != APPLICATION_ID {
            return Err(StateError::NotFerry {
                path: path.to_path_buf(),
                found: app_id,
            });
        }
    } else if app_id != APPLICATION_ID {
        return Err(StateError::NotFerry {
            path: path.to_path_buf(),
            found: app_id,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = i as u32 + 1;
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {to};"
        ))
        .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::debug!("state file {}: migrated to schema {to}", path.display());
    }
    Ok(())
}

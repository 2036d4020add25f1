//! Per-feature change checkpoints (`activities`): one request per feature, never a read of
//! the library index.
//!
//! Neither server has a "last changed" endpoint, and user data (played, favourite, resume
//! point) carries no modification date, so each checkpoint is built from a query whose
//! answer changes whenever the feature does:
//!
//! | feature | query (`/Items`, recursive) | checkpoint |
//! |---|---|---|
//! | watchlist | favourite movies and series (`Filters=IsFavorite`), ids only | count + a hash of the sorted ids |
//! | history | played movies and episodes (`Filters=IsPlayed`), `SortBy=DatePlayed` descending, `Limit=1` | `TotalRecordCount` + the newest item's id and `LastPlayedDate` |
//! | progress | resumable movies and episodes (`Filters=IsResumable`: position > 0) | count + a hash of (id, position, last played) |
//! | playlists | the user's playlists with `Fields=Etag` | count + a hash of (id, name, `Etag`, `ChildCount`) |
//!
//! The server's `Etag` is a hash of the item's `DateLastSaved`, which the server stamps on
//! every save; adding, removing and moving playlist entries save the playlist.
//!
//! Every checkpoint also carries a counter of this instance's own writes to the feature
//! (in the key-value store), so a write ferry makes through one pair moves the checkpoint
//! other pairs compare with even where the server's answer would not show it.
//!
//! The one change the history checkpoint cannot see: another program that, between two
//! runs, moves an already played title's date to a time older than the newest play, or
//! unmarks one title while marking another played at an older date. The server's own
//! clients stamp the current time, which always shows. See `docs/providers/jellyfin.md`.

use ferry_core::{Activities, Context, ErrorKind, Feature, Result};
use serde::Deserialize;
#[cfg(test)]
use serde_json::Value;

use crate::api::{MediaServer, Method};

/// Rows a fingerprint query may return; a larger set gets no checkpoint (read every run).
const FINGERPRINT_CAP: usize = 10_000;

/// FNV-1a, 64 bits: a stable hash for fingerprints (the same on every run and build).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn part(mut self, s: &str) -> Self {
        for b in s.bytes().chain(std::iter::once(0x1f)) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// One row of a checkpoint query: only what fingerprints cover.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckpointRow {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    child_count: Option<u64>,
    #[serde(default)]
    user_data: Option<CheckpointUserData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckpointUserData {
    #[serde(default)]
    last_played_date: Option<String>,
    #[serde(default)]
    playback_position_ticks: Option<u64>,
}

/// A checkpoint query's answer: the rows and the total (required: without it the answer
/// cannot show that it holds every row).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckpointPage {
    items: Vec<CheckpointRow>,
    total_record_count: u64,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

impl CheckpointRow {
    fn last_played(&self) -> String {
        self.user_data
            .as_ref()
            .map(|u| opt(&u.last_played_date))
            .unwrap_or_default()
    }

    fn position(&self) -> String {
        self.user_data
            .as_ref()
            .map(|u| opt(&u.playback_position_ticks))
            .unwrap_or_default()
    }
}

/// The parts of one row that a fingerprint covers.
type Parts = fn(&CheckpointRow) -> Vec<String>;

/// A fingerprint over rows: sorted so the server's order does not matter.
fn fingerprint<T>(rows: &[T], parts: impl Fn(&T) -> Vec<String>) -> String {
    let mut keys: Vec<String> = rows
        .iter()
        .map(|r| {
            parts(r)
                .iter()
                .fold(Fnv::new(), |h, p| h.part(p))
                .finish()
                .to_string()
        })
        .collect();
    keys.sort_unstable();
    let h = keys.iter().fold(Fnv::new(), |h, k| h.part(k));
    format!("{:016x}", h.finish())
}

impl MediaServer {
    /// One page of `/Items` (recursive) with these parameters: the rows and the total.
    async fn items_page(
        &self,
        cx: &Context,
        query: &[(&'static str, String)],
        limit: usize,
    ) -> Result<(Vec<CheckpointRow>, usize)> {
        let route = self.flavor.items(&self.user_id);
        let mut req = self
            .call(Method::Get, &route)
            .query(self.p("recursive", "Recursive"), "true")
            .query(self.p("startIndex", "StartIndex"), 0)
            .query(self.p("limit", "Limit"), limit)
            .query(
                self.p("enableTotalRecordCount", "EnableTotalRecordCount"),
                "true",
            )
            .query(self.p("enableImages", "EnableImages"), "false");
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let page: CheckpointPage = req.send(cx).await?.json()?;
        Ok((page.items, page.total_record_count as usize))
    }

    /// The server's side of one feature's checkpoint; `None` when it cannot be had cheaply
    /// and reliably (a fingerprint set larger than the cap).
    async fn server_checkpoint(&self, cx: &Context, feature: Feature) -> Result<Option<String>> {
        let types = self.p("includeItemTypes", "IncludeItemTypes");
        let filters = self.p("filters", "Filters");
        let user_data = self.p("enableUserData", "EnableUserData");
        let fields = self.p("fields", "Fields");
        // Emby leaves `LastPlayedDate` out of `UserData` unless `Fields` names it.
        let ud_fields: Vec<(&'static str, String)> = self
            .flavor
            .user_data_fields()
            .map(|f| (fields, f.to_owned()))
            .into_iter()
            .collect();
        let (prefix, rows, total, parts): (&str, Vec<CheckpointRow>, usize, Parts) = match feature {
            Feature::Watchlist => {
                let (rows, total) = self
                    .items_page(
                        cx,
                        &[
                            (types, "Movie,Series".to_owned()),
                            (filters, "IsFavorite".to_owned()),
                            (user_data, "false".to_owned()),
                        ],
                        FINGERPRINT_CAP,
                    )
                    .await?;
                ("fav", rows, total, |r| vec![r.id.clone()])
            }
            Feature::History => {
                let (rows, total) = self
                    .items_page(
                        cx,
                        &[
                            &[
                                (types, "Movie,Episode".to_owned()),
                                (filters, "IsPlayed".to_owned()),
                                (self.p("sortBy", "SortBy"), "DatePlayed".to_owned()),
                                (self.p("sortOrder", "SortOrder"), "Descending".to_owned()),
                                (user_data, "true".to_owned()),
                            ][..],
                            &ud_fields,
                        ]
                        .concat(),
                        1,
                    )
                    .await?;
                let newest = rows
                    .first()
                    .map_or_else(String::new, |r| format!("{}@{}", r.id, r.last_played()));
                return Ok(Some(format!("played:{total}:{newest}")));
            }
            Feature::Progress => {
                let (rows, total) = self
                    .items_page(
                        cx,
                        &[
                            &[
                                (types, "Movie,Episode".to_owned()),
                                (filters, "IsResumable".to_owned()),
                                (user_data, "true".to_owned()),
                            ][..],
                            &ud_fields,
                        ]
                        .concat(),
                        FINGERPRINT_CAP,
                    )
                    .await?;
                ("resume", rows, total, |r| {
                    vec![r.id.clone(), r.position(), r.last_played()]
                })
            }
            Feature::Playlists => {
                let (rows, total) = self
                    .items_page(
                        cx,
                        &[
                            (types, "Playlist".to_owned()),
                            (fields, "Etag,ChildCount".to_owned()),
                            (user_data, "false".to_owned()),
                        ],
                        FINGERPRINT_CAP,
                    )
                    .await?;
                ("playlists", rows, total, |r| {
                    vec![
                        r.id.clone(),
                        opt(&r.name),
                        opt(&r.etag),
                        opt(&r.child_count),
                    ]
                })
            }
            Feature::Ratings => return Ok(None),
        };
        if rows.len() != total {
            // A set too large for one request (or an answer that lies about its size):
            // no checkpoint, the feature is read every run.
            return Ok(None);
        }
        if feature == Feature::Playlists && rows.iter().any(|r| r.etag.is_none()) {
            // A server that does not send Etags cannot show entry changes.
            return Ok(None);
        }
        Ok(Some(format!(
            "{prefix}:{total}:{}",
            fingerprint(&rows, parts)
        )))
    }

    /// One feature's checkpoint: the server's answer plus this instance's write counter.
    pub(crate) async fn checkpoint(
        &self,
        cx: &Context,
        feature: Feature,
    ) -> Result<Option<String>> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Ok(None);
        }
        Ok(self
            .server_checkpoint(cx, feature)
            .await?
            .map(|s| self.ledger.stamp(feature, &s)))
    }

    /// Every feature's checkpoint. A feature whose query fails has none this time; when
    /// every query fails, the first error is returned.
    pub(crate) async fn all_checkpoints(&self, cx: &Context) -> Result<Activities> {
        let mut out = Activities::new();
        let mut first_err = None;
        let mut any_ok = false;
        for f in Feature::ALL {
            if !Self::capabilities().supports(f) {
                continue;
            }
            match self.checkpoint(cx, f).await {
                Ok(Some(cp)) => {
                    any_ok = true;
                    out = out.with(f, cp);
                }
                Ok(None) => any_ok = true,
                Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if !any_ok => Err(e),
            _ => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_order_and_see_every_part() {
        let a = json!({"Id": "1", "Etag": "x"});
        let b = json!({"Id": "2", "Etag": "y"});
        let parts = |r: &Value| vec![text(r.get("Id")), text(r.get("Etag"))];
        assert_eq!(
            fingerprint(&[a.clone(), b.clone()], parts),
            fingerprint(&[b.clone(), a.clone()], parts)
        );
        let b2 = json!({"Id": "2", "Etag": "z"});
        assert_ne!(
            fingerprint(&[a.clone(), b], parts),
            fingerprint(&[a, b2], parts)
        );
        // Parts are separated: ("12", "") is not ("1", "2").
        let p = |r: &Value| vec![text(r.get("A")), text(r.get("B"))];
        assert_ne!(
            fingerprint(&[json!({"A": "12", "B": ""})], p),
            fingerprint(&[json!({"A": "1", "B": "2"})], p)
        );
    }
}

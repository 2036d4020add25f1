//! Per-feature change checkpoints (`activities`) from count-and-newest queries: never a
//! read of a list, one one-row request per list.
//!
//! Plex has no "last changed" endpoint. A list sorted newest first, asked for one row
//! (`X-Plex-Container-Size=1`), answers with its `totalSize` and its newest row; any
//! change to the list changes one of them, given that what is added is added *now* (Plex
//! stamps its own clock on plays, on `/:/scrobble`, on ratings made in a client and on
//! watchlist adds). ferry's own rating writes carry their real time (`ratedAt`) and may
//! not be the newest row; the write counter below moves the checkpoint for them. Another
//! program that re-rates a title with a past `ratedAt` can go unseen until the next
//! change, the one gap of this scheme:
//!
//! | feature | requests | checkpoint |
//! |---|---|---|
//! | watchlist | Discover `/library/sections/watchlist/all?sort=watchlistedAt:desc` | count + newest (key, `watchlistedAt`) |
//! | history | `/status/sessions/history/all?sort=viewedAt:desc`; watched movies and watched episodes (`/library/all?type=1\|4&viewCount>>=0&sort=lastViewedAt:desc`) | per list: count + newest (id or key, time, `viewCount`) |
//! | ratings | rated movies, shows, episodes (`/library/all?type=1\|2\|4&userRating>>=0&sort=lastRatedAt:desc`) | per type: count + newest (key, `lastRatedAt`, rating) |
//!
//! Why three history lists: Plex documents that `/:/scrobble` (mark played) "does not
//! create any view history", so a title marked played shows only in its `viewCount` and
//! `lastViewedAt`, and unmarking changes no history row; a deleted history row changes
//! nothing else. Why one request per type: Plex's media queries take one result `type`
//! per request ("A `type` parameter must be included to specify the result type"; OR
//! works across filter values, not types). `/library/all` spans every section, so a
//! change in a section ferry does not read moves a checkpoint too (one extra read, never
//! a missed change).
//!
//! The health check reads these same requests (they need the token, unlike `/identity`)
//! and hands them to the engine ([`ferry_core::Health::with_activities`]), so an
//! unchanged run costs the checkpoint requests and nothing else.
//!
//! Progress and playlists have no checkpoint: whether Plex stamps `lastViewedAt` when a
//! resume point is cleared, and `updatedAt` on a playlist when its entries are only
//! reordered, is not documented, so those features are read every run.
//!
//! Every checkpoint also carries a counter of this instance's own write calls for the
//! feature (key-value store), so ferry's writes through one pair move the checkpoint the
//! other pairs compare with.

use ferry_core::{Activities, Context, ErrorKind, Feature, Result};
use serde_json::Value;

use crate::PlexProvider;
use crate::paging::{media_container, str_field};

/// The key-value namespace of the write counters.
pub(crate) const WRITES_NAMESPACE: &str = "plex.writes";

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl PlexProvider {
    fn writes_key(&self, feature: Feature) -> String {
        format!("{}/{}", self.instance, feature.as_str())
    }

    fn writes_of(&self, feature: Feature) -> u64 {
        self.kv
            .get(WRITES_NAMESPACE, &self.writes_key(feature))
            .ok()
            .flatten()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Counts a write call that may have changed `feature` (best effort).
    pub(crate) fn note_write(&self, cx: &Context, feature: Feature) {
        let n = self.writes_of(feature).wrapping_add(1);
        if let Err(e) = self
            .kv
            .put(WRITES_NAMESPACE, &self.writes_key(feature), &n.to_string())
        {
            cx.emitter.warn(&format!(
                "{}: could not record a write for the {feature} checkpoint: {e}",
                self.instance
            ));
        }
    }

    /// `totalSize` and the first row of a list. `probe`: as part of the health check (one
    /// attempt, short timeout, breaker neither checked nor fed).
    async fn head(
        &self,
        cx: &Context,
        discover: bool,
        op: &str,
        path: &str,
        query: &[(&str, &str)],
        probe: bool,
    ) -> Result<(u64, Option<Value>)> {
        let http = if discover { &self.discover } else { &self.pms };
        let mut req = http
            .get(op, path)
            .header("X-Plex-Container-Start", "0")
            .header("X-Plex-Container-Size", "1");
        if probe {
            req = req.probe();
        }
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let body: Value = req.send(cx).await?.json()?;
        let mut mc = media_container(body, path)?;
        let total = mc
            .get("totalSize")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .ok_or_else(|| {
                ferry_core::Error::new(
                    ErrorKind::MalformedResponse,
                    format!("{path}: no totalSize in the answer"),
                )
                .with_provider("plex")
            })?;
        let first = match mc.remove("Metadata") {
            Some(Value::Array(mut rows)) if !rows.is_empty() => Some(rows.swap_remove(0)),
            _ => None,
        };
        Ok((total, first))
    }

    async fn server_checkpoint(
        &self,
        cx: &Context,
        feature: Feature,
        probe: bool,
    ) -> Result<Option<String>> {
        match feature {
            Feature::Watchlist => {
                let (n, top) = self
                    .head(
                        cx,
                        true,
                        "GET /library/sections/watchlist/all",
                        "/library/sections/watchlist/all",
                        &[("sort", "watchlistedAt:desc")],
                        probe,
                    )
                    .await?;
                let top = top.map_or_else(String::new, |r| {
                    format!(
                        "{}@{}",
                        str_field(&r, "ratingKey").unwrap_or_default(),
                        text(r.get("watchlistedAt"))
                    )
                });
                Ok(Some(format!("wl:{n}:{top}")))
            }
            Feature::History => {
                let (n, top) = self
                    .head(
                        cx,
                        false,
                        "GET /status/sessions/history/all",
                        "/status/sessions/history/all",
                        &[("sort", "viewedAt:desc")],
                        probe,
                    )
                    .await?;
                let top = top.map_or_else(String::new, |r| {
                    format!(
                        "{}@{}",
                        str_field(&r, "historyKey").unwrap_or_default(),
                        text(r.get("viewedAt"))
                    )
                });
                let mut watched = Vec::new();
                for ty in ["1", "4"] {
                    let (count, top) = self
                        .head(
                            cx,
                            false,
                            "GET /library/all",
                            "/library/all",
                            &[
                                ("type", ty),
                                ("viewCount>>", "0"),
                                ("sort", "lastViewedAt:desc"),
                            ],
                            probe,
                        )
                        .await?;
                    let top = top.map_or_else(String::new, |r| {
                        format!(
                            "{}@{}x{}",
                            str_field(&r, "ratingKey").unwrap_or_default(),
                            text(r.get("lastViewedAt")),
                            text(r.get("viewCount"))
                        )
                    });
                    watched.push(format!("{count}:{top}"));
                }
                Ok(Some(format!("h:{n}:{top}|watched:{}", watched.join(","))))
            }
            Feature::Ratings => {
                let mut parts = Vec::new();
                for ty in ["1", "2", "4"] {
                    let (count, top) = self
                        .head(
                            cx,
                            false,
                            "GET /library/all",
                            "/library/all",
                            &[
                                ("type", ty),
                                ("userRating>>", "0"),
                                ("sort", "lastRatedAt:desc"),
                            ],
                            probe,
                        )
                        .await?;
                    let top = top.map_or_else(String::new, |r| {
                        format!(
                            "{}@{}={}",
                            str_field(&r, "ratingKey").unwrap_or_default(),
                            text(r.get("lastRatedAt")),
                            text(r.get("userRating"))
                        )
                    });
                    parts.push(format!("{ty}:{count}:{top}"));
                }
                Ok(Some(format!("r:{}", parts.join(","))))
            }
            Feature::Progress | Feature::Playlists => Ok(None),
        }
    }

    /// One feature's checkpoint: the server's answer plus this instance's write counter.
    pub(crate) async fn checkpoint(
        &self,
        cx: &Context,
        feature: Feature,
    ) -> Result<Option<String>> {
        self.checkpoint_with(cx, feature, false).await
    }

    /// [`Self::checkpoint`], as a health probe when `probe`.
    pub(crate) async fn checkpoint_with(
        &self,
        cx: &Context,
        feature: Feature,
        probe: bool,
    ) -> Result<Option<String>> {
        cx.check_cancelled()?;
        Ok(self
            .server_checkpoint(cx, feature, probe)
            .await?
            .map(|s| format!("{s}|w{}", self.writes_of(feature))))
    }

    /// Every feature's checkpoint. A feature whose requests fail has none this time (a
    /// Discover outage leaves the library's checkpoints); when all fail, the first error
    /// is returned.
    pub(crate) async fn all_checkpoints(&self, cx: &Context) -> Result<Activities> {
        let mut out = Activities::new();
        let mut first_err = None;
        let mut any_ok = false;
        for f in [Feature::Watchlist, Feature::History, Feature::Ratings] {
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

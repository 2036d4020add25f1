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
//! feature: the shared [`ferry_core::WriteLedger`] (namespace `plex.writes`, key
//! `<instance>/<feature>`, the layout the Plex counter always had), so ferry's writes
//! through one pair move the checkpoint the other pairs compare with.

use std::time::Instant;

use ferry_core::read::decode;
use ferry_core::{
    Activities, Context, Declared, Error, ErrorKind, Feature, Health, HealthStatus, ProviderKind,
    Result,
};

use crate::api::{Host, ListCall, PlexProvider, container};
use crate::model::{HeadRow, ListPage, Scalar};

fn text(v: &Option<Scalar>) -> String {
    v.as_ref().map(Scalar::text).unwrap_or_default()
}

impl PlexProvider {
    /// `totalSize` and the newest row of a list. `probe`: as part of the health check
    /// (one attempt, short timeout, breaker neither checked nor fed).
    async fn head(&self, cx: &Context, call: &ListCall, probe: bool) -> Result<(u64, HeadRow)> {
        let mut req = self.list_request(call, 0, 1);
        if probe {
            req = req.probe();
        }
        let resp = req.send(cx).await?;
        let page: ListPage = container(&resp)?;
        let total = Declared::from_json(page.total.as_ref())
            .valid()
            .ok_or_else(|| {
                resp.malformed(format!("{}: no valid totalSize in the answer", call.path))
            })?;
        let top = match page.rows.unwrap_or_default().into_iter().next() {
            Some(raw) => decode::<HeadRow>(&raw)
                .map_err(|e| resp.malformed(format!("{}: the newest row: {e}", call.path)))?,
            None => HeadRow::default(),
        };
        Ok((total, top))
    }

    async fn server_checkpoint(
        &self,
        cx: &Context,
        feature: Feature,
        probe: bool,
    ) -> Result<Option<String>> {
        let library_all = |ty: &str, filter: &'static str, sort: &str| {
            ListCall::pms("GET /library/all", "/library/all")
                .with("type", ty)
                .with(filter, "0")
                .with("sort", sort)
        };
        match feature {
            Feature::Watchlist => {
                let call = ListCall::discover(
                    "GET /library/sections/watchlist/all",
                    "/library/sections/watchlist/all",
                )
                .with("sort", "watchlistedAt:desc");
                let (n, top) = self.head(cx, &call, probe).await?;
                let top = if top.rating_key.is_some() {
                    format!("{}@{}", text(&top.rating_key), text(&top.watchlisted_at))
                } else {
                    String::new()
                };
                Ok(Some(format!("wl:{n}:{top}")))
            }
            Feature::History => {
                let call = ListCall::pms(
                    "GET /status/sessions/history/all",
                    "/status/sessions/history/all",
                )
                .with("sort", "viewedAt:desc");
                let (n, top) = self.head(cx, &call, probe).await?;
                let top = if top.history_key.is_some() || top.viewed_at.is_some() {
                    format!("{}@{}", text(&top.history_key), text(&top.viewed_at))
                } else {
                    String::new()
                };
                let mut watched = Vec::new();
                for ty in ["1", "4"] {
                    let call = library_all(ty, "viewCount>>", "lastViewedAt:desc");
                    let (count, top) = self.head(cx, &call, probe).await?;
                    let top = if top.rating_key.is_some() {
                        format!(
                            "{}@{}x{}",
                            text(&top.rating_key),
                            text(&top.last_viewed_at),
                            text(&top.view_count)
                        )
                    } else {
                        String::new()
                    };
                    watched.push(format!("{count}:{top}"));
                }
                Ok(Some(format!("h:{n}:{top}|watched:{}", watched.join(","))))
            }
            Feature::Ratings => {
                let mut parts = Vec::new();
                for ty in ["1", "2", "4"] {
                    let call = library_all(ty, "userRating>>", "lastRatedAt:desc");
                    let (count, top) = self.head(cx, &call, probe).await?;
                    let top = if top.rating_key.is_some() {
                        format!(
                            "{}@{}={}",
                            text(&top.rating_key),
                            text(&top.last_rated_at),
                            text(&top.user_rating)
                        )
                    } else {
                        String::new()
                    };
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
    async fn checkpoint_with(
        &self,
        cx: &Context,
        feature: Feature,
        probe: bool,
    ) -> Result<Option<String>> {
        cx.check_cancelled()?;
        Ok(self
            .server_checkpoint(cx, feature, probe)
            .await?
            .map(|s| self.ledger.stamp(feature, &s)))
    }

    /// Every feature's checkpoint. A feature whose requests fail has none this time (a
    /// Discover outage leaves the library's checkpoints); when all fail, the first error
    /// is returned.
    pub(crate) async fn all_checkpoints(&self, cx: &Context) -> Result<Activities> {
        let mut out = Activities::new();
        let mut first_err: Option<Error> = None;
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

    /// The server's checkpoints are the probe: the history list needs the token (a bad
    /// one is `auth_failed`, an unreachable server `down`), then ratings; Discover's
    /// watchlist checkpoint proves the account on the cloud side (failing, the watchlist
    /// alone is off: `degraded`). What they read goes to the engine with the health, so
    /// an unchanged run makes no other request. `/identity` is not asked: it answers
    /// without a token, so it proves nothing about the account.
    pub(crate) async fn probe_health(&self, cx: &Context) -> Health {
        if let Some(h) = self.http(Host::Pms).breaker_health() {
            return h;
        }
        let started = Instant::now();
        let caps = Self::capabilities();
        let mut acts = Activities::new();
        match self.checkpoint_with(cx, Feature::History, true).await {
            Ok(Some(cp)) => acts = acts.with(Feature::History, cp),
            Ok(None) => {}
            Err(e) => return Health::from_error(&e).with_latency(started.elapsed()),
        }
        let mut h = Health::ok().with_features(&caps, true);
        let mut notes = Vec::new();
        // A checkpoint the probe could not read is simply absent: that feature is read
        // in full this run.
        match self.checkpoint_with(cx, Feature::Ratings, true).await {
            Ok(Some(cp)) => acts = acts.with(Feature::Ratings, cp),
            Ok(None) => {}
            Err(e) => notes.push(format!("ratings checkpoint unavailable: {e}")),
        }
        match self.checkpoint_with(cx, Feature::Watchlist, true).await {
            Ok(Some(cp)) => acts = acts.with(Feature::Watchlist, cp),
            Ok(None) => {}
            Err(e) => {
                h.status = HealthStatus::Degraded;
                h.features.insert(Feature::Watchlist, false);
                h.retry_after_secs = e.retry_after().map(|d| d.as_secs());
                notes.push(format!("Discover (watchlist) is unavailable: {e}"));
            }
        }
        if !notes.is_empty() {
            h.details = Some(notes.join("; "));
        }
        h.with_activities(acts).with_latency(started.elapsed())
    }
}

//! ferry's Trakt provider.
//!
//! All five features over Trakt's API (`https://api.trakt.tv`), every request through
//! `ferry-http` (retries, Trakt's published rate limits, single-flight token refresh,
//! circuit breaker), every read and write through the provider kit:
//!
//! - **watchlist** (`/sync/watchlist`), **ratings** (`/sync/ratings`), **history**
//!   (`/sync/history`, one entry per play), **progress** (`/sync/playback`, written with
//!   `/scrobble/pause`) and **playlists** (personal lists, `/users/me/lists`).
//! - Every list read goes through the kit's pager (`limit` ≤ 250, judged by the
//!   `X-Pagination-*` headers) with typed rows decoded one at a time: a missing or
//!   invalid header, a short or failed later page, or a row that does not decode makes
//!   the snapshot `Partial`. A first page that fails is an error, never an empty
//!   snapshot (`read.rs`).
//! - Writes go through the kit's batch writer and report per item from Trakt's
//!   `added`/`existing`/`deleted`/`not_found` (`write.rs`). What Trakt already holds is
//!   resolved against one read of the list, kept for the writes that follow, so a first
//!   sync of N titles costs N / 250 reads plus N / 100 writes. No play is ever sent twice
//!   (Trakt does not deduplicate history, `history.rs`) and an equal rating is never
//!   rewritten. Account limits come from `/users/settings`; exactly the items past a
//!   limit are `Unresolved(AccountLimit)`.
//! - Trakt takes watched titles off the watchlist. A title it removed only because ferry
//!   wrote a play of it stays in the watchlist snapshot (records in the state store, no
//!   extra requests; see `memo.rs`), so ferry never passes on a removal it caused.
//! - [`DeviceFlow`] / [`device_flow`]: the OAuth device flow for `ferry auth trakt`.
//!
//! See `docs/providers/trakt.md` for configuration and quirks.

mod api;
mod auth;
mod config;
mod convert;
mod history;
mod memo;
mod model;
mod playlists;
mod progress;
mod read;
mod record_log;
mod sign_in;
#[cfg(feature = "sim")]
mod simulator;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    Health, HealthStatus, InventoryOps, MediaType, ProviderKind, Result, Secret, Snapshot,
    Timestamp, VerbClass, WriteReport,
};
use ferry_http::{HttpClient, KvTokenStore};
use serde_json::Value;

pub use auth::{DeviceCode, DeviceFlow, OOB_REDIRECT, TokenGrant, device_flow};
pub use config::{DEFAULT_BASE_URL, TraktConfig, TraktOptions};

use crate::api::Api;
use crate::memo::WatchlistMemo;
use crate::model::{ActivitiesWire, SettingsWire};
use crate::read::{Caches, Kept, ListTarget, Listing, read_list, read_playback, read_ratings};
use crate::write::{certain, list_add, list_remove, ratings_add, ratings_remove, screen, writer};

/// One configured Trakt account.
#[derive(Debug)]
pub struct TraktProvider {
    instance: String,
    api: Api,
    /// False when neither the config nor `ferry auth trakt` gave an access token.
    signed_in: bool,
    /// Which watchlist removals ferry caused itself by writing plays.
    memo: WatchlistMemo,
    /// The last complete reads writes resolve against.
    known: Caches,
}

const ALL_KINDS: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];

impl TraktProvider {
    pub fn new(instance: &str, config: TraktConfig, env: &BuildEnv) -> Result<Self> {
        Self::with_options(instance, config, env, TraktOptions::default())
    }

    pub fn with_options(
        instance: &str,
        config: TraktConfig,
        env: &BuildEnv,
        opts: TraktOptions,
    ) -> Result<Self> {
        if config.client_id.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "client_id is empty")
                .with_provider(Self::ID)
                .with_context("instance", instance.to_owned()));
        }
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        let (access, refresh, expiry) = config::starting_tokens(instance, &config, &env.kv);
        let mut b = HttpClient::builder(Self::ID, instance)
            .base_url(&base)
            .header("trakt-api-version", "2")
            .secret_header("trakt-api-key", &config.client_id)
            .bearer(&access)
            .token_expiry(expiry)
            .seams(&opts, &Self::capabilities().rate_limits)
            .store(env.kv.clone())
            .token_sink(Arc::new(KvTokenStore::new(env.kv.clone(), instance)));
        if let Some(s) = &config.client_secret {
            b = b.secret(s);
        }
        if let Some(r) = &refresh {
            b = b.secret(r);
        }
        if let (Some(secret), Some(refresh)) = (&config.client_secret, &refresh)
            && !secret.is_empty()
            && !refresh.is_empty()
        {
            b = b.refresher(Arc::new(auth::Refresher::new(
                &base,
                instance,
                config.client_id.clone(),
                secret.clone(),
                refresh.clone(),
                opts.clock.clone(),
            )?));
        }
        let memo = WatchlistMemo::new(env.kv.clone(), instance, opts.clock.clone());
        let http = b.build()?;
        Ok(TraktProvider {
            instance: instance.to_owned(),
            api: Api::new(http, config.page_limit()),
            signed_in: !access.expose().trim().is_empty(),
            memo,
            known: Caches::default(),
        })
    }

    /// The watchlist a write resolves against: the kept copy while fresh, else a read.
    async fn watchlist_now(&self, cx: &Context) -> Result<(u64, Listing)> {
        let now = self.memo.now_ms();
        Ok(match self.known.watchlist.take_fresh(now) {
            Some(kept) => (kept.at, Listing::known(kept)),
            None => (now, read_list(&self.api, cx, &ListTarget::Watchlist).await?),
        })
    }

    async fn watchlist_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let pre = screen(entries, Feature::Watchlist, &ALL_KINDS);
        if pre.iter().all(Option::is_some) {
            return Ok(writer(cx, entries, pre).finish());
        }
        let (at, mut current) = self.watchlist_now(cx).await?;
        let target = ListTarget::Watchlist;
        let report = if add {
            list_add(&self.api, cx, &target, entries, pre, &mut current).await?
        } else {
            list_remove(&self.api, cx, &target, entries, pre, &mut current).await?
        };
        if current.is_complete() && certain(&report) {
            self.known.watchlist.put_back(current.into_kept(at));
        }
        let done: Vec<(&Entry, &ferry_core::Outcome)> = entries
            .iter()
            .zip(&report.items)
            .filter(|(e, _)| e.feature() == Feature::Watchlist)
            .map(|(e, o)| (e, &o.outcome))
            .collect();
        self.memo.after_write(cx, &done, add);
        Ok(report)
    }

    async fn ratings_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let pre = screen(entries, Feature::Ratings, &ALL_KINDS);
        if pre.iter().all(Option::is_some) {
            return Ok(writer(cx, entries, pre).finish());
        }
        let now = self.memo.now_ms();
        let (mut current, partial) = match self.known.ratings.take_fresh(now) {
            Some(kept) => (kept, Vec::new()),
            None => {
                let (rows, proof) = read_ratings(&self.api, cx).await?.into_parts();
                let read = Kept {
                    at: now,
                    rows,
                    index: None,
                };
                (read, proof.reasons().to_vec())
            }
        };
        let report = if add {
            ratings_add(&self.api, cx, entries, pre, &mut current).await?
        } else {
            ratings_remove(&self.api, cx, entries, pre, &mut current, &partial).await?
        };
        if partial.is_empty() && certain(&report) {
            self.known.ratings.put_back(current);
        }
        Ok(report)
    }

    async fn progress_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let pre = screen(entries, Feature::Progress, &progress::KINDS);
        if pre.iter().all(Option::is_some) {
            return Ok(writer(cx, entries, pre).finish());
        }
        let now = self.memo.now_ms();
        let kept = self
            .known
            .playback
            .take_fresh(now)
            .filter(|k| add || !progress::ids_needed(entries, &k.rows));
        let (at, mut current, partial) = match kept {
            // Progress writes build their own (small) index per batch.
            Some(k) => (k.at, k.rows, Vec::new()),
            None => {
                let (rows, proof) = read_playback(&self.api, cx).await?.into_parts();
                (now, rows, proof.reasons().to_vec())
            }
        };
        let report = if add {
            progress::add(&self.api, cx, entries, &mut current).await?
        } else {
            progress::remove(&self.api, cx, entries, &mut current, &partial).await?
        };
        if partial.is_empty() && certain(&report) {
            self.known.playback.put_back(Kept {
                at,
                rows: current,
                index: None,
            });
        }
        Ok(report)
    }

    async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let r = history::add(&self.api, &self.memo, cx, entries).await;
        // Trakt takes what was played off the watchlist and out of playback.
        self.known.watchlist.forget();
        self.known.playback.forget();
        r
    }
}

impl ProviderKind for TraktProvider {
    const ID: &'static str = "trakt";
    const LABEL: &'static str = "Trakt";
    type Config = TraktConfig;
    const SIGN_IN: Option<ferry_core::SignIn> = Some(sign_in::FLOW);
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(simulator::SIMULATOR);

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .with_activities(true)
            .with(Feature::Watchlist, FeatureCaps::full(100, &ALL_KINDS))
            .with(Feature::Ratings, FeatureCaps::full(100, &ALL_KINDS))
            .with(Feature::History, FeatureCaps::full(100, &history::KINDS))
            .with(Feature::Progress, FeatureCaps::full(20, &progress::KINDS))
            .with(Feature::Playlists, FeatureCaps::full(1, &ALL_KINDS))
            .with_rate_limit(VerbClass::Read, 1000, Duration::from_secs(300))
            .with_rate_limit(VerbClass::Write, 1, Duration::from_secs(1))
    }

    fn build(instance: &str, config: TraktConfig, env: &BuildEnv) -> Result<Self> {
        TraktProvider::new(instance, config, env)
    }
}

ferry_core::register_provider!(TraktProvider);

#[async_trait]
impl InventoryOps for TraktProvider {
    fn provider(&self) -> &'static str {
        Self::ID
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn features(&self) -> Capabilities {
        Self::capabilities()
    }

    fn secrets(&self) -> Vec<Secret> {
        self.api.http.secrets()
    }

    /// `GET /users/settings` (account limits), then `GET /sync/last_activities`. Both
    /// answering is `ok`; settings but not activities is `degraded`. The activities go
    /// to the engine with the health, so the run does not ask for them again.
    async fn health(&self, cx: &Context) -> Health {
        if !self.signed_in {
            return Health::auth_failed(format!(
                "no access token for `{}`: run `ferry auth trakt` (or set access_token)",
                self.instance
            ));
        }
        if let Some(h) = self.api.http.breaker_health() {
            return h;
        }
        let started = Instant::now();
        let caps = Self::capabilities();
        let settings = self
            .api
            .http
            .get("GET /users/settings", "/users/settings")
            .probe()
            .send(cx)
            .await;
        let resp = match settings {
            Ok(r) => r,
            Err(e) => {
                let mut h = Health::from_error(&e);
                if e.kind() == ErrorKind::Locked {
                    h.status = HealthStatus::AuthFailed;
                }
                return h.with_latency(started.elapsed());
            }
        };
        let mut h = Health::ok().with_features(&caps, true);
        h.rate = api::rate_info(&resp);
        match resp.json::<SettingsWire>() {
            Ok(w) => {
                let s = self.api.remember_settings(w).await;
                if let Some(n) = s.watchlist_items {
                    h.account_limits.insert(Feature::Watchlist, n);
                }
                if let Some(n) = s.list_items {
                    h.account_limits.insert(Feature::Playlists, n);
                }
                if let Some(n) = s.lists {
                    h.details = Some(format!("up to {n} personal lists"));
                }
            }
            Err(e) => {
                h.status = HealthStatus::Degraded;
                h.details = Some(format!("settings unreadable: {e}"));
            }
        }
        let activities = self
            .api
            .http
            .get("GET /sync/last_activities", "/sync/last_activities")
            .probe()
            .send(cx)
            .await;
        match activities.and_then(|r| r.json::<ActivitiesWire>()) {
            // The run uses these checkpoints instead of asking again.
            Ok(a) => h = h.with_activities(checkpoints(&a)),
            Err(e) => {
                h.status = match e.kind() {
                    ErrorKind::RateLimited => HealthStatus::RateLimited,
                    _ => HealthStatus::Degraded,
                };
                h.retry_after_secs = e.retry_after().map(|d| d.as_secs());
                h.details = Some(format!("last_activities: {e}"));
            }
        }
        h.with_latency(started.elapsed())
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        let (api, known) = (&self.api, &self.known);
        let at = self.memo.now_ms();
        match feature {
            Feature::Watchlist => read::watchlist_index(api, &self.memo, known, cx).await,
            Feature::Ratings => read::ratings_index(api, known, at, cx).await,
            Feature::History => read::history_index(api, cx).await,
            Feature::Progress => read::progress_index(api, known, at, cx).await,
            Feature::Playlists => playlists::index(api, cx).await,
        }
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, true).await,
            Feature::Ratings => self.ratings_write(cx, entries, true).await,
            Feature::History => self.history_add(cx, entries).await,
            Feature::Progress => self.progress_write(cx, entries, true).await,
            Feature::Playlists => playlists::add(&self.api, cx, entries).await,
        }
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, false).await,
            Feature::Ratings => self.ratings_write(cx, entries, false).await,
            Feature::History => history::remove(&self.api, cx, entries).await,
            Feature::Progress => self.progress_write(cx, entries, false).await,
            Feature::Playlists => playlists::remove(&self.api, cx, entries).await,
        }
    }

    /// Per-feature checkpoints from `/sync/last_activities`: watchlist `watchlist.updated_at`,
    /// ratings the latest `rated_at`, history the latest `watched_at`, progress the latest
    /// `paused_at`, playlists `lists.updated_at`.
    async fn activities(&self, cx: &Context) -> Result<Activities> {
        let a: ActivitiesWire = self
            .api
            .http
            .get("GET /sync/last_activities", "/sync/last_activities")
            .send_json(cx)
            .await?;
        Ok(checkpoints(&a))
    }
}

/// The latest of several `last_activities` timestamps (raw strings, so a checkpoint keeps
/// Trakt's milliseconds; compared as timestamps first).
fn latest(a: &ActivitiesWire, fields: &[(&str, &str)]) -> Option<String> {
    fields
        .iter()
        .filter_map(|(g, f)| a.get(*g)?.stamp(f))
        .filter_map(|s| Timestamp::parse(s).map(|t| (t, s)))
        .max()
        .map(|(_, s)| s.to_owned())
}

fn checkpoints(a: &ActivitiesWire) -> Activities {
    let mut out = Activities::new();
    let pick: [(Feature, &[(&str, &str)]); 5] = [
        (
            Feature::Watchlist,
            &[
                ("watchlist", "updated_at"),
                ("movies", "watchlisted_at"),
                ("shows", "watchlisted_at"),
                ("seasons", "watchlisted_at"),
                ("episodes", "watchlisted_at"),
            ],
        ),
        (
            Feature::Ratings,
            &[
                ("movies", "rated_at"),
                ("shows", "rated_at"),
                ("seasons", "rated_at"),
                ("episodes", "rated_at"),
            ],
        ),
        (
            Feature::History,
            &[("movies", "watched_at"), ("episodes", "watched_at")],
        ),
        (
            Feature::Progress,
            &[("movies", "paused_at"), ("episodes", "paused_at")],
        ),
        (Feature::Playlists, &[("lists", "updated_at")]),
    ];
    for (f, fields) in pick {
        if let Some(s) = latest(a, fields) {
            out = out.with(f, s);
        }
    }
    out
}

/// Maps a `/sync/last_activities` body to ferry's checkpoints (an undecodable body has
/// none).
pub fn activities_from(v: &Value) -> Activities {
    serde_json::from_value::<ActivitiesWire>(v.clone())
        .map(|a| checkpoints(&a))
        .unwrap_or_default()
}

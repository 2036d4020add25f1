//! ferry's Trakt provider.
//!
//! All five features over Trakt's API (`https://api.trakt.tv`), every request through
//! `ferry-http` (retries, Trakt's published rate limits, single-flight token refresh,
//! circuit breaker):
//!
//! - **watchlist** (`/sync/watchlist`), **ratings** (`/sync/ratings`), **history**
//!   (`/sync/history`, one entry per play), **progress** (`/sync/playback`, written with
//!   `/scrobble/pause`) and **playlists** (personal lists, `/users/me/lists`).
//! - Every list read is paged (`limit` ≤ 250) and checked against `X-Pagination-*`: a
//!   failed or short page, or a total that disagrees with `X-Pagination-Item-Count`,
//!   makes the snapshot `Partial`. A first page that fails is an error, never an empty
//!   snapshot.
//! - Writes report per item from Trakt's `added`/`existing`/`deleted`/`not_found`. Items
//!   already in the requested state are detected by reading first, so no play is ever
//!   sent twice (Trakt does not deduplicate history) and an equal rating is never
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
mod common;
mod convert;
mod history;
mod lists;
mod memo;
mod playlists;
mod progress;
mod ratings;
mod watchlist;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    Health, HealthStatus, InventoryOps, KvStore, MediaType, ProviderKind, Result, Secret, Snapshot,
    Timestamp, VerbClass, WriteReport,
};
use ferry_http::{Clock, HttpClient, KvTokenStore, RetryPolicy, TOKENS_NAMESPACE};
use serde::Deserialize;
use serde_json::Value;

pub use auth::{DeviceCode, DeviceFlow, OOB_REDIRECT, TokenGrant, device_flow};

use crate::api::Api;
use crate::memo::WatchlistMemo;

/// Trakt's API.
pub const DEFAULT_BASE_URL: &str = "https://api.trakt.tv";

/// `[providers.<instance>]` keys for `kind = "trakt"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraktConfig {
    /// The API app's client id (sent as `trakt-api-key`).
    pub client_id: Secret,
    /// The app's client secret; with `refresh_token`, lets an expired token be renewed.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Optional: `ferry auth trakt` stores tokens in the state database instead.
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Items per page for list reads (1-250, default 250).
    #[serde(default)]
    pub page_limit: Option<u32>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

/// Test and embedding hooks: the clock behind every wait, the retry policy, the jitter
/// seed.
#[derive(Debug, Clone, Default)]
pub struct TraktOptions {
    pub clock: Option<Arc<dyn Clock>>,
    pub retry: Option<RetryPolicy>,
    pub seed: Option<u64>,
}

/// One configured Trakt account.
#[derive(Debug)]
pub struct TraktProvider {
    instance: String,
    api: Api,
    /// False when neither the config nor `ferry auth trakt` gave an access token.
    signed_in: bool,
    /// Which watchlist removals ferry caused itself by writing plays.
    memo: WatchlistMemo,
}

const ALL_KINDS: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];
const PLAYS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];

/// Where this provider remembers which configured tokens the persisted (rotated) ones
/// descend from.
const CONFIG_NAMESPACE: &str = "trakt";

fn fingerprint(config: &TraktConfig) -> String {
    let mut h = DefaultHasher::new();
    config
        .access_token
        .as_ref()
        .map(Secret::expose)
        .hash(&mut h);
    config
        .refresh_token
        .as_ref()
        .map(Secret::expose)
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The tokens to start with: the rotated ones persisted after a refresh, unless the
/// configured tokens changed since (the user re-authenticated); with the access token's
/// expiry when it is known (stored tokens), so it is refreshed before it lapses.
fn starting_tokens(
    instance: &str,
    config: &TraktConfig,
    kv: &Arc<dyn KvStore>,
) -> (Secret, Option<Secret>, Option<Timestamp>) {
    let stored = || match KvTokenStore::new(kv.clone(), instance).load() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(instance, "stored Trakt tokens unreadable: {e}");
            None
        }
    };
    let Some(access) = config.access_token.clone() else {
        // No token in the config: the ones `ferry auth trakt` stored, else none at all
        // (every request then fails as auth_failed, and health says to run the auth).
        return match stored() {
            Some(t) => (
                t.access,
                t.refresh.or_else(|| config.refresh_token.clone()),
                t.expires_at,
            ),
            None => (Secret::new(""), config.refresh_token.clone(), None),
        };
    };
    let configured = (access, config.refresh_token.clone(), None);
    let fp = fingerprint(config);
    let key = format!("{instance}:configured");
    let same_config = kv
        .get(CONFIG_NAMESPACE, &key)
        .ok()
        .flatten()
        .is_some_and(|v| v == fp);
    if !same_config {
        let _ = kv.put(CONFIG_NAMESPACE, &key, &fp);
        let _ = kv.delete(TOKENS_NAMESPACE, instance);
        return configured;
    }
    match KvTokenStore::new(kv.clone(), instance).load() {
        Ok(Some(t)) => (t.access, t.refresh.or(configured.1), t.expires_at),
        Ok(None) => configured,
        Err(e) => {
            tracing::warn!(
                instance,
                "stored Trakt tokens unreadable, using the configured ones: {e}"
            );
            configured
        }
    }
}

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
        let invalid = |msg: &str| {
            Error::new(ErrorKind::InvalidInput, msg.to_owned())
                .with_provider(Self::ID)
                .with_context("instance", instance.to_owned())
        };
        if config.client_id.is_empty() {
            return Err(invalid("client_id is empty"));
        }
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        let (access, refresh, expiry) = starting_tokens(instance, &config, &env.kv);
        let mut b = HttpClient::builder(Self::ID, instance)
            .base_url(&base)
            .header("trakt-api-version", "2")
            .secret_header("trakt-api-key", &config.client_id)
            .bearer(&access)
            .token_expiry(expiry)
            .rate_limits(&Self::capabilities().rate_limits)
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
        if let Some(c) = opts.clock {
            b = b.clock(c);
        }
        if let Some(r) = opts.retry {
            b = b.retry(r);
        }
        if let Some(s) = opts.seed {
            b = b.seed(s);
        }
        let http = b.build()?;
        Ok(TraktProvider {
            instance: instance.to_owned(),
            api: Api::new(http, config.page_limit),
            signed_in: !access.expose().trim().is_empty(),
            memo,
        })
    }

    fn refuse(feature: Feature) -> Error {
        Error::unsupported(format!("trakt does not hold {feature}")).with_provider(Self::ID)
    }
}

impl ProviderKind for TraktProvider {
    const ID: &'static str = "trakt";
    const LABEL: &'static str = "Trakt";
    type Config = TraktConfig;

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .with_activities(true)
            .with(Feature::Watchlist, FeatureCaps::full(100, &ALL_KINDS))
            .with(Feature::Ratings, FeatureCaps::full(100, &ALL_KINDS))
            .with(Feature::History, FeatureCaps::full(100, &PLAYS))
            .with(Feature::Progress, FeatureCaps::full(20, &PLAYS))
            .with(Feature::Playlists, FeatureCaps::full(1, &ALL_KINDS))
            .with_rate_limit(VerbClass::Read, 1000, Duration::from_secs(300))
            .with_rate_limit(VerbClass::Write, 1, Duration::from_secs(1))
    }

    fn build(instance: &str, config: TraktConfig, env: &BuildEnv) -> Result<Self> {
        TraktProvider::new(instance, config, env)
    }
}

ferry_core::register_provider!(TraktProvider);

/// The latest of several `last_activities` timestamps (raw strings, so a checkpoint keeps
/// Trakt's milliseconds; compared as timestamps first).
fn latest(v: &Value, fields: &[(&str, &str)]) -> Option<String> {
    fields
        .iter()
        .filter_map(|(g, f)| v.get(*g)?.get(*f)?.as_str())
        .filter_map(|s| Timestamp::parse(s).map(|t| (t, s)))
        .max()
        .map(|(_, s)| s.to_owned())
}

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
        match resp.json::<Value>() {
            Ok(v) => {
                let s = self.api.remember_settings(&v).await;
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
        match activities.and_then(|r| r.json::<Value>()) {
            // The run uses these checkpoints instead of asking again.
            Ok(v) => h = h.with_activities(activities_from(&v)),
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
        cx.check_cancelled()?;
        let api = &self.api;
        match feature {
            Feature::Watchlist => watchlist::build_index(api, &self.memo, cx).await,
            Feature::Ratings => ratings::build_index(api, cx).await,
            Feature::History => history::build_index(api, cx).await,
            Feature::Progress => progress::build_index(api, cx).await,
            Feature::Playlists => playlists::build_index(api, cx).await,
        }
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Self::refuse(feature));
        }
        let api = &self.api;
        match feature {
            Feature::Watchlist => watchlist::write(api, &self.memo, cx, entries, true).await,
            Feature::Ratings => ratings::add(api, cx, entries).await,
            Feature::History => history::add(api, &self.memo, cx, entries).await,
            Feature::Progress => progress::add(api, cx, entries).await,
            Feature::Playlists => playlists::add(api, cx, entries).await,
        }
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Self::refuse(feature));
        }
        let api = &self.api;
        match feature {
            Feature::Watchlist => watchlist::write(api, &self.memo, cx, entries, false).await,
            Feature::Ratings => ratings::remove(api, cx, entries).await,
            Feature::History => history::remove(api, cx, entries).await,
            Feature::Progress => progress::remove(api, cx, entries).await,
            Feature::Playlists => playlists::remove(api, cx, entries).await,
        }
    }

    /// Per-feature checkpoints from `/sync/last_activities`: watchlist `watchlist.updated_at`,
    /// ratings the latest `rated_at`, history the latest `watched_at`, progress the latest
    /// `paused_at`, playlists `lists.updated_at`.
    async fn activities(&self, cx: &Context) -> Result<Activities> {
        cx.check_cancelled()?;
        let v: Value = self
            .api
            .http
            .get("GET /sync/last_activities", "/sync/last_activities")
            .send_json(cx)
            .await?;
        Ok(activities_from(&v))
    }
}

/// Maps a `/sync/last_activities` body to ferry's checkpoints.
pub fn activities_from(v: &Value) -> Activities {
    let mut a = Activities::new();
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
        if let Some(s) = latest(v, fields) {
            a = a.with(f, s);
        }
    }
    a
}

//! ferry provider for Plex.
//!
//! History, ratings, progress and playlists live on the user's Plex Media Server (PMS,
//! `base_url`); the watchlist lives on Plex's cloud Discover service (`discover_url`).
//! Every request goes through [`ferry_http`]. See `docs/providers/plex.md` for features,
//! configuration, limits and quirks.
//!
//! Reads page with `X-Plex-Container-Start`/`-Size` and check the count against
//! `totalSize` (see [`paging`]); every write first resolves the entry to a library item
//! through one library scan (GUIDs parsed with [`ferry_core::identity::ids_from_guid`]).

mod activity;
mod history;
mod library;
mod outcome;
mod paging;
pub mod pin;
mod playlists;
mod progress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    Health, HealthStatus, IdKind, InventoryOps, Item, KvStore, MediaType, Outcome, Payload,
    ProviderKind, Rating, Result, Secret, Snapshot, Timestamp, UnresolvedReason, WriteReport,
};
use ferry_http::{HttpClient, RetryPolicy};
use serde::Deserialize;
use serde_json::Value;

use crate::library::{Library, ids_of, title_item};
use crate::outcome::{Outcomes, unmatched, wrong_payload};
use crate::paging::{fetch_all, media_container, str_field};

/// Plex's cloud service that holds the account watchlist.
pub const DEFAULT_DISCOVER_URL: &str = "https://discover.provider.plex.tv";
/// Rows per page of every list read.
pub const DEFAULT_PAGE_SIZE: usize = 200;
/// The `identifier` of the library media provider, sent with every library write.
pub const LIBRARY_IDENTIFIER: &str = "com.plexapp.plugins.library";

fn default_discover_url() -> String {
    DEFAULT_DISCOVER_URL.to_owned()
}

fn default_plex_tv_url() -> String {
    pin::DEFAULT_PLEX_TV_URL.to_owned()
}

/// `[providers.<instance>]` keys for `kind = "plex"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlexConfig {
    /// The Plex Media Server, e.g. `http://192.168.1.10:32400`.
    pub base_url: String,
    /// The account token (`X-Plex-Token`); used for the server and for Discover.
    /// Optional: `ferry auth plex` signs in with a PIN and keeps the token in the state
    /// database instead.
    #[serde(default)]
    pub token: Option<Secret>,
    /// plex.tv, for `ferry auth plex`; override only for a proxy or a simulator.
    #[serde(default = "default_plex_tv_url")]
    pub plex_tv_url: String,
    /// Discover's base URL; override only for a proxy or a simulator.
    #[serde(default = "default_discover_url")]
    pub discover_url: String,
    /// Library sections to read, by title or key; all movie and show sections when unset.
    #[serde(default)]
    pub libraries: Option<Vec<String>>,
}

/// Tuning that is not user configuration (tests use small pages and fast retries).
#[derive(Debug, Clone)]
pub struct PlexOptions {
    pub page_size: usize,
    pub retry: RetryPolicy,
    /// Where the watch-time ledger and breaker records live.
    pub kv: Option<Arc<dyn KvStore>>,
}

impl Default for PlexOptions {
    fn default() -> Self {
        PlexOptions {
            page_size: DEFAULT_PAGE_SIZE,
            retry: RetryPolicy::default(),
            kv: None,
        }
    }
}

/// The Plex provider.
#[derive(Debug)]
pub struct PlexProvider {
    instance: String,
    pms: HttpClient,
    discover: HttpClient,
    token: Secret,
    libraries: Option<Vec<String>>,
    kv: Arc<dyn KvStore>,
    page_size: usize,
    machine_id: tokio::sync::Mutex<Option<String>>,
    // Writes are serialized: history writes read the server before and after, and keep a
    // ledger that must not be updated by two writers at once.
    write_lock: tokio::sync::Mutex<()>,
}

const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
const PLAYABLE: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
const RATEABLE: [MediaType; 3] = [MediaType::Movie, MediaType::Show, MediaType::Episode];

impl PlexProvider {
    pub fn new(instance: &str, config: PlexConfig, options: PlexOptions) -> Result<Self> {
        let kv = options
            .kv
            .clone()
            .unwrap_or_else(|| Arc::new(ferry_core::MemoryKvStore::new()));
        let invalid = |msg: String| Error::new(ErrorKind::InvalidInput, msg).with_provider("plex");
        let token = match &config.token {
            Some(t) if t.expose().trim().is_empty() => {
                return Err(invalid(format!(
                    "providers.{instance}.token is empty; remove it and run `ferry auth plex`, or paste the token"
                )));
            }
            Some(t) => t.clone(),
            None => match ferry_http::KvTokenStore::new(kv.clone(), instance).load() {
                Ok(Some(t)) => t.access,
                Ok(None) => {
                    return Err(invalid(format!(
                        "providers.{instance}: no token in the config and none stored; run `ferry auth plex`"
                    )));
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "providers.{instance}: no token in the config, and the stored one cannot be read ({e}); run `ferry auth plex`"
                    )));
                }
            },
        };
        let client = |name: String, url: &str| {
            HttpClient::builder("plex", name)
                .base_url(url)
                .secret_header("X-Plex-Token", &token)
                .header("X-Plex-Product", "ferry")
                .header("X-Plex-Version", env!("CARGO_PKG_VERSION"))
                .header("X-Plex-Client-Identifier", pin::client_identifier(instance))
                .header("X-Plex-Platform", "ferry")
                .retry(options.retry)
                .store(kv.clone())
                .build()
        };
        let pms = client(instance.to_owned(), &config.base_url)?;
        let discover = client(format!("{instance}/discover"), &config.discover_url)?;
        Ok(PlexProvider {
            instance: instance.to_owned(),
            pms,
            discover,
            token,
            libraries: config.libraries,
            kv,
            page_size: options.page_size.max(1),
            machine_id: tokio::sync::Mutex::new(None),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The server's `machineIdentifier` (needed for playlist URIs), fetched once.
    pub(crate) async fn machine_id(&self, cx: &Context) -> Result<String> {
        let mut cached = self.machine_id.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let body: Value = self
            .pms
            .get("GET /identity", "/identity")
            .send_json(cx)
            .await?;
        let mc = media_container(body, "identity")?;
        let id = mc
            .get("machineIdentifier")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MalformedResponse,
                    "identity: no machineIdentifier",
                )
                .with_provider("plex")
            })?
            .to_owned();
        *cached = Some(id.clone());
        Ok(id)
    }

    fn unsupported(feature: Feature) -> Error {
        Error::unsupported(format!("plex does not hold {feature}")).with_provider("plex")
    }

    // -----------------------------------------------------------------------------------
    // Watchlist (Discover).

    async fn watchlist_rows(&self, cx: &Context) -> Result<(Vec<(String, Item)>, Vec<String>)> {
        let paged = fetch_all(
            cx,
            &self.discover,
            "GET /library/sections/watchlist/all",
            "/library/sections/watchlist/all",
            &[
                ("includeCollections", "1".to_owned()),
                ("includeExternalMedia", "1".to_owned()),
                ("includeGuids", "1".to_owned()),
            ],
            self.page_size,
            "Discover watchlist",
        )
        .await?;
        let rows = paged
            .rows
            .iter()
            .filter_map(|row| Some((str_field(row, "ratingKey")?, title_item(row)?)))
            .collect();
        Ok((rows, paged.partial))
    }

    async fn watchlist_index(&self, cx: &Context) -> Result<Snapshot> {
        let (rows, partial) = self.watchlist_rows(cx).await?;
        // Discover rows may lack external ids; the library knows them by plex guid.
        let needs_library = rows
            .iter()
            .any(|(_, it)| !IdKind::STRONG.iter().any(|k| it.ids.get(*k).is_some()));
        let lib = if needs_library {
            Some(self.library(cx).await?)
        } else {
            None
        };
        let mut snap = Snapshot::unproven_legacy(Feature::Watchlist);
        for (_, mut item) in rows {
            if let Some(li) = lib
                .as_ref()
                .and_then(|l| item.ids.get(IdKind::Guid).and_then(|g| l.by_plex_guid(g)))
            {
                item.ids.merge_missing(&li.item.ids);
            }
            snap.insert(Entry::new(item, Payload::Watchlist { listed_at: None }));
        }
        for p in partial {
            snap.mark_partial(p);
        }
        Ok(snap)
    }

    async fn watchlist_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (rows, list_partial) = self.watchlist_rows(cx).await?;
        let on_list = ferry_core::identity::AliasIndex::build(
            rows.iter().map(|(k, item)| (k.as_str(), item)),
        );
        let mut lib: Option<Library> = None;
        let mut out = Outcomes::new(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) {
                out.set(i, wrong_payload(e, Feature::Watchlist));
                continue;
            }
            if !TITLES.contains(&e.item.kind) {
                out.set(
                    i,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unsupported,
                        detail: Some(format!("the Plex watchlist holds no {}", e.item.kind)),
                    },
                );
                continue;
            }
            let listed = on_list.find(&e.item.key(), &e.item).map(str::to_owned);
            let key = if add {
                if listed.is_some() {
                    out.set(i, Outcome::AlreadyPresent);
                    continue;
                }
                // The Discover key is the hex id of the title's plex:// guid.
                let guid = match e.item.ids.get(IdKind::Guid) {
                    Some(g) if g.starts_with("plex://") => Some(g.to_owned()),
                    _ => {
                        if lib.is_none() {
                            lib = Some(self.library(cx).await?);
                        }
                        lib.as_ref()
                            .and_then(|l| l.resolve(&e.item))
                            .and_then(|li| li.plex_guid.clone())
                    }
                };
                match guid.and_then(|g| g.rsplit('/').next().map(str::to_owned)) {
                    Some(k) if !k.is_empty() => k,
                    _ => {
                        let partial = lib.as_ref().map(|l| l.partial.as_slice()).unwrap_or(&[]);
                        out.set(
                            i,
                            if partial.is_empty() {
                                Outcome::Unresolved {
                                    reason: UnresolvedReason::NotFound,
                                    detail: Some(
                                        "ferry finds Discover titles through the library's plex:// guids; this title is not in the library".into(),
                                    ),
                                }
                            } else {
                                unmatched(partial, true)
                            },
                        );
                        continue;
                    }
                }
            } else {
                match listed {
                    Some(k) => k,
                    None => {
                        out.set(i, unmatched(&list_partial, false));
                        continue;
                    }
                }
            };
            cx.check_cancelled()?;
            let (op, path) = if add {
                ("PUT /actions/addToWatchlist", "/actions/addToWatchlist")
            } else {
                (
                    "PUT /actions/removeFromWatchlist",
                    "/actions/removeFromWatchlist",
                )
            };
            let r = self
                .discover
                .put(op, path)
                .query("ratingKey", &key)
                .idempotent()
                .send(cx)
                .await;
            match r {
                Ok(_) => out.set(i, Outcome::Confirmed),
                Err(err) if add && err.kind() == ErrorKind::Conflict => {
                    out.set(i, Outcome::AlreadyPresent)
                }
                Err(err) if !add && err.kind() == ErrorKind::NotFound => {
                    out.set(i, Outcome::AlreadyAbsent)
                }
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        Ok(out.report(entries))
    }

    // -----------------------------------------------------------------------------------
    // Ratings (library state); progress is in [`progress`].

    fn rating_of(li: &library::LibItem) -> Option<Rating> {
        li.user_rating.and_then(Rating::normalize)
    }

    async fn ratings_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.library(cx).await?;
        let mut snap = Snapshot::unproven_legacy(Feature::Ratings);
        for li in &lib.items {
            if let Some(r) = Self::rating_of(li) {
                snap.insert(Entry::rating(
                    li.item.clone(),
                    r,
                    li.last_rated_at.map(Timestamp::from_unix),
                ));
            }
        }
        for p in lib.partial {
            snap.mark_partial(p);
        }
        Ok(snap)
    }

    /// Ratings: one library scan, then one `PUT /:/rate` per changed item.
    async fn ratings_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let lib = self.library(cx).await?;
        let mut out = Outcomes::new(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let Payload::Rating { rating, rated_at } = &e.payload else {
                out.set(i, wrong_payload(e, Feature::Ratings));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                out.set(i, unmatched(&lib.partial, add));
                continue;
            };
            let (value, at) = if add {
                if Self::rating_of(li) == Some(*rating) {
                    out.set(i, Outcome::AlreadyPresent);
                    continue;
                }
                // A time ahead of our clock is not sent (Plex refuses one in its future).
                let now = Timestamp::now().unix();
                let at = rated_at
                    .map(Timestamp::unix)
                    .filter(|t| *t > 0 && *t <= now);
                (i32::from(rating.get()), at)
            } else {
                if Self::rating_of(li).is_none() {
                    out.set(i, Outcome::AlreadyAbsent);
                    continue;
                }
                // Plex clears a rating with -1 (python-plexapi's reset; the Rate API
                // documents only 0-10).
                (-1, None)
            };
            cx.check_cancelled()?;
            match self.rate(cx, &li.rating_key, value, at).await {
                Ok(()) => out.set(i, Outcome::Confirmed),
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        Ok(out.report(entries))
    }

    /// `PUT /:/rate`, with `ratedAt` (epoch seconds) when the rating's time is known:
    /// Plex reads "The time when the rating occurred. If not present, interpreted as now"
    /// and refuses a `ratedAt` in its future with `400`. A server whose clock is behind
    /// ours may do that for a rating made moments ago: the rating is then sent once more
    /// without `ratedAt` and stamped with the server's clock.
    async fn rate(&self, cx: &Context, rk: &str, rating: i32, rated_at: Option<i64>) -> Result<()> {
        let request = |at: Option<i64>| {
            let mut r = self
                .pms
                .put("PUT /:/rate", "/:/rate")
                .query("key", rk)
                .query("identifier", LIBRARY_IDENTIFIER)
                .query("rating", rating);
            if let Some(t) = at {
                r = r.query("ratedAt", t);
            }
            r.idempotent()
        };
        match request(rated_at).send(cx).await {
            Ok(_) => Ok(()),
            Err(err) if rated_at.is_some() && err.kind() == ErrorKind::InvalidInput => {
                cx.emitter.warn(&format!(
                    "{}: Plex refused ratedAt for item {rk} ({err}); sending the rating without its time",
                    self.instance
                ));
                request(None).send(cx).await.map(|_| ())
            }
            Err(err) => Err(err),
        }
    }

    /// The server's checkpoints are the probe: the history list needs the token (a bad
    /// one is `auth_failed`, an unreachable server `down`), then ratings; Discover's
    /// watchlist checkpoint proves the account on the cloud side (failing, the watchlist
    /// alone is off: `degraded`). What they read goes to the engine with the health, so
    /// an unchanged run makes no other request. `/identity` is not asked: it answers
    /// without a token, so it proves nothing about the account.
    async fn probe_health(&self, cx: &Context) -> Health {
        if let Some(h) = self.pms.breaker_health() {
            return h;
        }
        let started = Instant::now();
        let caps = Self::capabilities();
        let mut acts = Activities::new();
        match self.checkpoint_with(cx, Feature::History, true).await {
            Ok(cp) => {
                if let Some(cp) = cp {
                    acts = acts.with(Feature::History, cp);
                }
            }
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

impl ProviderKind for PlexProvider {
    const ID: &'static str = "plex";
    const LABEL: &'static str = "Plex";
    type Config = PlexConfig;

    /// Every feature; change checkpoints for watchlist, history and ratings (see
    /// [`activity`]).
    fn capabilities() -> Capabilities {
        Capabilities::new()
            .with(Feature::Watchlist, FeatureCaps::full(100, &TITLES))
            .with(Feature::History, FeatureCaps::full(100, &PLAYABLE))
            .with(Feature::Ratings, FeatureCaps::full(100, &RATEABLE))
            .with(Feature::Progress, FeatureCaps::full(100, &PLAYABLE))
            .with(Feature::Playlists, FeatureCaps::full(20, &PLAYABLE))
            .with_activities(true)
    }

    fn build(instance: &str, config: PlexConfig, env: &BuildEnv) -> Result<Self> {
        PlexProvider::new(
            instance,
            config,
            PlexOptions {
                kv: Some(env.kv.clone()),
                ..PlexOptions::default()
            },
        )
    }
}

ferry_core::register_provider!(PlexProvider);

#[async_trait]
impl InventoryOps for PlexProvider {
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
        vec![self.token.clone()]
    }

    async fn health(&self, cx: &Context) -> Health {
        let h = tokio::time::timeout(Duration::from_secs(30), self.probe_health(cx)).await;
        h.unwrap_or_else(|_| Health::down("plex: the health check timed out"))
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        cx.check_cancelled()?;
        match feature {
            Feature::Watchlist => self.watchlist_index(cx).await,
            Feature::History => self.history_index(cx).await,
            Feature::Ratings => self.ratings_index(cx).await,
            Feature::Progress => self.progress_index(cx).await,
            Feature::Playlists => self.playlists_index(cx).await,
        }
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Self::unsupported(feature));
        }
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, true).await,
            Feature::History => self.history_add(cx, entries).await,
            Feature::Ratings => self.ratings_write(cx, entries, true).await,
            Feature::Progress => self.progress_write(cx, entries, true).await,
            Feature::Playlists => self.playlists_add(cx, entries).await,
        };
        self.count_write(cx, feature, &r);
        r
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Self::unsupported(feature));
        }
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, false).await,
            Feature::History => self.history_remove(cx, entries).await,
            Feature::Ratings => self.ratings_write(cx, entries, false).await,
            Feature::Progress => self.progress_write(cx, entries, false).await,
            Feature::Playlists => self.playlists_remove(cx, entries).await,
        };
        self.count_write(cx, feature, &r);
        r
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        self.all_checkpoints(cx).await
    }

    async fn activity(&self, cx: &Context, feature: Feature) -> Result<Option<String>> {
        self.checkpoint(cx, feature).await
    }
}

impl PlexProvider {
    /// Counts a write call that may have changed the server (anything but "nothing to
    /// do"), for the feature's checkpoint.
    fn count_write(&self, cx: &Context, feature: Feature, r: &Result<WriteReport>) {
        let touched = match r {
            Err(e) => e.kind() != ErrorKind::Cancelled,
            Ok(rep) => rep.items.iter().any(|i| {
                matches!(
                    i.outcome,
                    Outcome::Confirmed
                        | Outcome::Failed { .. }
                        | Outcome::Unresolved {
                            reason: UnresolvedReason::Unconfirmed,
                            ..
                        }
                )
            }),
        };
        if touched {
            self.note_write(cx, feature);
        }
    }
}

/// Parses a Plex row's ids; public for tests and tools.
pub fn row_ids(row: &Value, episode: bool) -> ferry_core::Ids {
    ids_of(row, episode)
}

/// Maps Plex's 0-10 `userRating` onto ferry's 1-10 scale (half rounds up, 0 is no rating).
pub fn rating_from_plex(user_rating: f64) -> Option<Rating> {
    Rating::normalize(user_rating)
}

//! One implementation for the Jellyfin family: [`MediaServer`] speaks to Jellyfin 10.9+
//! or to Emby, chosen by a [`Flavor`] that holds the route table and the wire details
//! (auth header, date format, parameter casing, id shape).
//!
//! | what | Jellyfin 10.9+ | Emby |
//! |---|---|---|
//! | list items | `GET /Items?userId=` | `GET /Users/{userId}/Items` |
//! | favourite | `POST\|DELETE /UserFavoriteItems/{id}?userId=` | `POST\|DELETE /Users/{userId}/FavoriteItems/{id}` |
//! | played | `POST\|DELETE /UserPlayedItems/{id}?userId=&datePlayed=<ISO 8601>` | `POST\|DELETE /Users/{userId}/PlayedItems/{id}?DatePlayed=yyyyMMddHHmmss` |
//! | user data | `POST /UserItems/{id}/UserData?userId=` | `POST /Users/{userId}/Items/{id}/UserData` |
//! | create playlist | `POST /Playlists` (JSON body) | `POST /Playlists?Name=&Ids=&UserId=` |
//! | auth | `Authorization: MediaBrowser …, Token="…"` | `X-Emby-Token` |
//! | user data in list reads | always | only the `Fields` named in [`Flavor::user_data_fields`] |
//! | user data write body | the changed fields (`UpdateUserItemDataDto`, all optional) | the whole `UserItemDataDto`, read first (read-modify-write) |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    HISTORY_TOLERANCE_SECS, Health, HealthStatus, IdKind, InventoryOps, KvStore, MediaType,
    Outcome, Payload, Result, Secret, Snapshot, Timestamp, UnresolvedReason, WriteReport,
};
use ferry_http::{HttpClient, RequestBuilder, RetryPolicy};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::library::{TICKS_PER_MS, UserState};
use crate::outcome::{Outcomes, named, unmatched, wrong_payload};

/// Rows per page of every list read.
pub const DEFAULT_PAGE_SIZE: usize = 200;

/// Which server family, and so which route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    Jellyfin,
    Emby,
}

/// A route: the path, and whether the user goes in the query (`userId=`) rather than
/// the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) path: String,
    pub(crate) user_query: Option<String>,
    /// The stable label for events and errors (`GET /Items`).
    pub(crate) label: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

impl Flavor {
    /// The provider id this flavour registers as.
    pub fn provider_id(self) -> &'static str {
        match self {
            Flavor::Jellyfin => "jellyfin",
            Flavor::Emby => "emby",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Flavor::Jellyfin => "Jellyfin",
            Flavor::Emby => "Emby",
        }
    }

    /// The id kind of the server's own item ids.
    pub fn local_id_kind(self) -> IdKind {
        match self {
            Flavor::Jellyfin => IdKind::Jellyfin,
            Flavor::Emby => IdKind::Emby,
        }
    }

    fn user_route(
        self,
        user: &str,
        jf: (&'static str, String),
        emby: (&'static str, String),
    ) -> Route {
        match self {
            Flavor::Jellyfin => Route {
                label: jf.0,
                path: jf.1,
                user_query: Some(user.to_owned()),
            },
            Flavor::Emby => Route {
                label: emby.0,
                path: emby.1,
                user_query: None,
            },
        }
    }

    pub(crate) fn items(self, user: &str) -> Route {
        self.user_route(
            user,
            ("/Items", "/Items".to_owned()),
            ("/Users/{userId}/Items", format!("/Users/{user}/Items")),
        )
    }

    pub(crate) fn favorite(self, user: &str, id: &str) -> Route {
        self.user_route(
            user,
            (
                "/UserFavoriteItems/{id}",
                format!("/UserFavoriteItems/{id}"),
            ),
            (
                "/Users/{userId}/FavoriteItems/{id}",
                format!("/Users/{user}/FavoriteItems/{id}"),
            ),
        )
    }

    pub(crate) fn played(self, user: &str, id: &str) -> Route {
        self.user_route(
            user,
            ("/UserPlayedItems/{id}", format!("/UserPlayedItems/{id}")),
            (
                "/Users/{userId}/PlayedItems/{id}",
                format!("/Users/{user}/PlayedItems/{id}"),
            ),
        )
    }

    pub(crate) fn user_data(self, user: &str, id: &str) -> Route {
        self.user_route(
            user,
            (
                "/UserItems/{id}/UserData",
                format!("/UserItems/{id}/UserData"),
            ),
            (
                "/Users/{userId}/Items/{id}/UserData",
                format!("/Users/{user}/Items/{id}/UserData"),
            ),
        )
    }

    /// The `Fields` a list read must name for `UserData` to carry the last played date
    /// and the play count: none on Jellyfin (always sent); on Emby
    /// `UserDataLastPlayedDate,UserDataPlayCount` — without them Emby answers
    /// `{"PlaybackPositionTicks":0,"PlayCount":0,"IsFavorite":false,"Played":true}` for a
    /// played item (Emby forum topic 119268).
    pub(crate) fn user_data_fields(self) -> Option<&'static str> {
        match self {
            Flavor::Jellyfin => None,
            Flavor::Emby => Some("UserDataLastPlayedDate,UserDataPlayCount"),
        }
    }

    /// `ProviderIds` plus what [`Flavor::user_data_fields`] asks for.
    pub(crate) fn library_fields(self) -> String {
        match self.user_data_fields() {
            Some(f) => format!("ProviderIds,{f}"),
            None => "ProviderIds".to_owned(),
        }
    }

    /// One item, with the user's data (Emby's single-item route).
    pub(crate) fn item(self, user: &str, id: &str) -> Route {
        self.user_route(
            user,
            ("/Items/{id}", format!("/Items/{id}")),
            (
                "/Users/{userId}/Items/{id}",
                format!("/Users/{user}/Items/{id}"),
            ),
        )
    }

    /// The `datePlayed` parameter: ISO 8601 on Jellyfin, `yyyyMMddHHmmss` (UTC) on Emby.
    pub(crate) fn date_played(self, t: Timestamp) -> (&'static str, String) {
        match self {
            Flavor::Jellyfin => ("datePlayed", t.to_rfc3339()),
            Flavor::Emby => {
                let s = t.to_rfc3339();
                let compact: String = s.chars().filter(char::is_ascii_digit).collect();
                ("DatePlayed", compact)
            }
        }
    }
}

/// `[providers.<instance>]` keys for `kind = "jellyfin"` and `kind = "emby"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server, e.g. `http://192.168.1.10:8096` (may include a reverse-proxy path).
    pub base_url: String,
    /// An API key or a user access token (`token` is accepted as an alias).
    #[serde(alias = "token")]
    pub api_key: Secret,
    /// The id of the user whose state ferry reads and writes.
    pub user_id: String,
}

/// Tuning that is not user configuration.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub page_size: usize,
    pub retry: RetryPolicy,
    pub kv: Option<Arc<dyn KvStore>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            page_size: DEFAULT_PAGE_SIZE,
            retry: RetryPolicy::default(),
            kv: None,
        }
    }
}

impl ServerOptions {
    pub fn from_env(env: &BuildEnv) -> Self {
        ServerOptions {
            kv: Some(env.kv.clone()),
            ..ServerOptions::default()
        }
    }
}

/// A Jellyfin or Emby server, as a ferry provider.
#[derive(Debug)]
pub struct MediaServer {
    pub(crate) flavor: Flavor,
    instance: String,
    pub(crate) http: HttpClient,
    token: Secret,
    pub(crate) user_id: String,
    pub(crate) page_size: usize,
    /// Provider-owned state: the write counters of the activity checkpoints.
    pub(crate) kv: Arc<dyn KvStore>,
    write_lock: tokio::sync::Mutex<()>,
    /// Jellyfin: the user the token belongs to (`GET /Users/Me`; `None` for an API key),
    /// learnt once.
    pub(crate) token_user: tokio::sync::OnceCell<Option<String>>,
    /// Jellyfin: whether the configured user owns a playlist (by id), learnt once each.
    pub(crate) owned: Mutex<HashMap<String, bool>>,
}

const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
const PLAYABLE: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];

impl MediaServer {
    pub fn new(
        flavor: Flavor,
        instance: &str,
        config: ServerConfig,
        options: ServerOptions,
    ) -> Result<Self> {
        let id = flavor.provider_id();
        let invalid = |m: &str| Error::new(ErrorKind::InvalidInput, m.to_owned()).with_provider(id);
        if config.api_key.is_empty() {
            return Err(invalid("the api_key is empty"));
        }
        let user_id = config.user_id.trim().to_owned();
        if user_id.is_empty()
            || !user_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid(
                "user_id must be the user's id (letters, digits and dashes)",
            ));
        }
        let mut b = HttpClient::builder(id, instance)
            .base_url(&config.base_url)
            .retry(options.retry)
            .secret(&config.api_key);
        let kv: Arc<dyn KvStore> = options
            .kv
            .clone()
            .unwrap_or_else(|| Arc::new(ferry_core::MemoryKvStore::new()));
        b = b.store(kv.clone());
        let client_info = format!(
            "MediaBrowser Client=\"ferry\", Device=\"ferry\", DeviceId=\"ferry-{instance}\", Version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        );
        b = match flavor {
            Flavor::Jellyfin => b.secret_header(
                "Authorization",
                &Secret::new(format!(
                    "{client_info}, Token=\"{}\"",
                    config.api_key.expose()
                )),
            ),
            Flavor::Emby => b
                .header("X-Emby-Authorization", client_info)
                .secret_header("X-Emby-Token", &config.api_key),
        };
        Ok(MediaServer {
            flavor,
            instance: instance.to_owned(),
            http: b.build()?,
            token: config.api_key,
            user_id,
            page_size: options.page_size.max(1),
            kv,
            write_lock: tokio::sync::Mutex::new(()),
            token_user: tokio::sync::OnceCell::new(),
            owned: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn instance_name(&self) -> &str {
        &self.instance
    }

    /// What either flavour can do. Ratings are not offered: neither server has a
    /// personal 1-10 rating its own clients show. History keeps one play per title (the
    /// played flag and its last played date). Every feature has a change checkpoint (see
    /// [`crate::activity`]).
    pub fn capabilities() -> Capabilities {
        Capabilities::new()
            .with(Feature::Watchlist, FeatureCaps::full(100, &TITLES))
            .with(
                Feature::History,
                FeatureCaps::full(100, &PLAYABLE).latest_play_only(),
            )
            .with(Feature::Progress, FeatureCaps::full(100, &PLAYABLE))
            .with(Feature::Playlists, FeatureCaps::full(20, &PLAYABLE))
            .with_activities(true)
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The documented spelling of a query parameter for this flavour (both servers bind
    /// parameters case-insensitively).
    pub(crate) fn p(&self, jellyfin: &'static str, emby: &'static str) -> &'static str {
        match self.flavor {
            Flavor::Jellyfin => jellyfin,
            Flavor::Emby => emby,
        }
    }

    pub(crate) fn call(&self, method: Method, route: &Route) -> RequestBuilder<'_> {
        let path = route.path.clone();
        let r = match method {
            Method::Get => self.http.get(format!("GET {}", route.label), path),
            Method::Post => self.http.post(format!("POST {}", route.label), path),
            Method::Delete => self.http.delete(format!("DELETE {}", route.label), path),
        };
        match &route.user_query {
            Some(u) => r.query("userId", u),
            None => r,
        }
    }

    fn unsupported(&self, feature: Feature) -> Error {
        Error::unsupported(format!(
            "{} does not hold {feature}",
            self.flavor.provider_id()
        ))
        .with_provider(self.flavor.provider_id())
    }

    async fn probe_health(&self, cx: &Context) -> Health {
        if let Some(h) = self.http.breaker_health() {
            return h;
        }
        let started = Instant::now();
        let info = self
            .http
            .get("GET /System/Info", "/System/Info")
            .probe()
            .send(cx)
            .await
            .and_then(|r| r.json::<Value>());
        let info = match info {
            Ok(v) => v,
            Err(e) => return Health::from_error(&e).with_latency(started.elapsed()),
        };
        let user = self
            .http
            .get("GET /Users/{userId}", format!("/Users/{}", self.user_id))
            .probe()
            .send(cx)
            .await;
        match user {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Health::down(format!(
                    "{}: user {} does not exist on the server",
                    self.flavor.label(),
                    self.user_id
                ))
                .with_latency(started.elapsed());
            }
            Err(e) => return Health::from_error(&e).with_latency(started.elapsed()),
        }
        let caps = Self::capabilities();
        let version = info.get("Version").and_then(Value::as_str).unwrap_or("");
        let too_old = self.flavor == Flavor::Jellyfin && !version_at_least(version, 10, 9);
        if too_old {
            let mut h = Health::ok().with_features(&caps, false);
            h.status = HealthStatus::Degraded;
            h.details = Some(format!(
                "Jellyfin {version} is older than 10.9, whose user routes ferry uses"
            ));
            return h.with_latency(started.elapsed());
        }
        Health::ok()
            .with_features(&caps, true)
            .with_latency(started.elapsed())
    }

    // -----------------------------------------------------------------------------------
    // Reads.

    async fn index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        if feature == Feature::Playlists {
            return self.playlists_index(cx).await;
        }
        let lib = self.library(cx).await?;
        let mut snap = Snapshot::new(feature);
        let mut undated: Vec<String> = Vec::new();
        for li in &lib.items {
            let u = &li.user;
            let entry = match feature {
                Feature::Watchlist if u.favorite && TITLES.contains(&li.item.kind) => {
                    Entry::watchlist(li.item.clone())
                }
                Feature::History if PLAYABLE.contains(&li.item.kind) && u.played => {
                    // A played item without a date has no event to report, and leaving
                    // it out of a complete snapshot would read as "unplayed" (see below).
                    let Some(at) = u.last_played else {
                        undated.push(li.item.label());
                        continue;
                    };
                    Entry::watch(li.item.clone(), Timestamp::from_unix(at))
                }
                Feature::Progress if PLAYABLE.contains(&li.item.kind) && u.position_ms > 0 => {
                    Entry::progress(
                        li.item.clone(),
                        u.position_ms,
                        li.runtime_ms,
                        u.last_played.map(Timestamp::from_unix),
                    )
                }
                _ => continue,
            };
            snap.insert(entry);
        }
        for p in lib.partial {
            snap.mark_partial(p);
        }
        if !undated.is_empty() {
            // The server says these titles are played but not when: they cannot be
            // reported as plays, and their absence is no evidence that a play is gone.
            // The read is partial, so nothing is removed on it, and the titles are named.
            let reason = undated_reason(&undated);
            cx.emitter
                .warn(&format!("{}: {}", self.instance, self.http.scrub(&reason)));
            snap.mark_partial(reason);
        }
        Ok(snap)
    }

    // -----------------------------------------------------------------------------------
    // Writes.

    /// Sends one user-data write and returns the user data the server answered with
    /// (`None` when it answered with an empty body, as Emby's UserData route does).
    async fn send_user_write(
        &self,
        cx: &Context,
        req: RequestBuilder<'_>,
    ) -> Result<Option<UserState>> {
        let resp = req.send(cx).await?;
        if resp.bytes().iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        Ok(Some(UserState::from_json(Some(&v))))
    }

    fn user_data_post(&self, id: &str, body: Value) -> RequestBuilder<'_> {
        self.call(Method::Post, &self.flavor.user_data(&self.user_id, id))
            .json(&body)
            .idempotent()
    }

    /// The body of a user-data write that changes `changes` and nothing else.
    ///
    /// Jellyfin's `UpdateUserItemDataDto` is all optional: the changed fields alone.
    /// Emby's route takes the whole `UserItemDataDto` (`PlaybackPositionTicks`,
    /// `IsFavorite`, `Played`, `PlayCount` are not optional) and does not document what
    /// becomes of a field left out, so the item's current record is read first and sent
    /// back whole with the changes applied: nothing is reset whichever way Emby behaves.
    async fn user_data_body(
        &self,
        cx: &Context,
        id: &str,
        changes: &[(&str, Value)],
    ) -> Result<Value> {
        let mut record = match self.flavor {
            Flavor::Jellyfin => Map::new(),
            Flavor::Emby => self.current_user_data(cx, id).await?,
        };
        // Derived by the server from the position and the runtime, never stored.
        record.remove("PlayedPercentage");
        for (k, v) in changes {
            record.insert((*k).to_owned(), v.clone());
        }
        Ok(Value::Object(record))
    }

    /// The item's whole `UserData` record as the server holds it now (one request).
    async fn current_user_data(&self, cx: &Context, id: &str) -> Result<Map<String, Value>> {
        let mut req = self.call(Method::Get, &self.flavor.item(&self.user_id, id));
        if let Some(f) = self.flavor.user_data_fields() {
            req = req.query(self.p("fields", "Fields"), f);
        }
        let v: Value = req.send(cx).await?.json()?;
        match v.get("UserData") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(Error::new(
                ErrorKind::MalformedResponse,
                "the item came without its user data, which a write must send back whole",
            )
            .with_provider(self.flavor.provider_id())),
        }
    }

    async fn state_write(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let mut lib = self.library(cx).await?;
        let mut out = Outcomes::new(entries.len());
        let mut wrote = false;
        for (i, e) in entries.iter().enumerate() {
            if e.feature() != feature {
                out.set(i, wrong_payload(e, feature));
                continue;
            }
            let types: &[MediaType] = if feature == Feature::Watchlist {
                &TITLES
            } else {
                &PLAYABLE
            };
            if !types.contains(&e.item.kind) {
                out.set(
                    i,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unsupported,
                        detail: Some(format!("{feature} holds no {}", e.item.kind)),
                    },
                );
                continue;
            }
            let Some(li) = lib.resolve(&e.item) else {
                out.set(i, unmatched(&lib.partial, add));
                continue;
            };
            let id = li.id.clone();
            let u = li.user.clone();
            if let Err(err) = cx.check_cancelled() {
                if !wrote {
                    return Err(err);
                }
                out.fill(&Outcome::failed(&err));
                break;
            }
            let result = match (&e.payload, add) {
                (Payload::Watchlist { .. }, _) => self.favorite(cx, &id, &u, add).await,
                (Payload::Watch { watched_at }, true) => {
                    self.mark_played(cx, &id, &u, *watched_at).await
                }
                (Payload::Watch { watched_at }, false) => {
                    self.mark_unplayed(cx, &id, &u, *watched_at).await
                }
                (Payload::Progress { position_ms, .. }, true) => {
                    self.set_position(cx, &id, &u, *position_ms).await
                }
                (Payload::Progress { .. }, false) => self.set_position(cx, &id, &u, 0).await,
                _ => Ok((wrong_payload(e, feature), None)),
            };
            match result {
                Ok((o, state)) => {
                    wrote |= o == Outcome::Confirmed;
                    if let (Some(s), Some(li)) = (state, lib.get_mut(&id)) {
                        li.user = s;
                    }
                    out.set(i, o);
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

    async fn favorite(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        on: bool,
    ) -> Result<(Outcome, Option<UserState>)> {
        if u.favorite == on {
            return Ok((
                if on {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::AlreadyAbsent
                },
                None,
            ));
        }
        let route = self.flavor.favorite(&self.user_id, id);
        let method = if on { Method::Post } else { Method::Delete };
        let answer = self
            .send_user_write(cx, self.call(method, &route).idempotent())
            .await?;
        let mut next = u.clone();
        next.favorite = on;
        Ok(match answer {
            Some(s) if s.favorite != on => {
                (unconfirmed("the server did not change the favourite"), None)
            }
            Some(s) => (Outcome::Confirmed, Some(s)),
            None => (Outcome::Confirmed, Some(next)),
        })
    }

    async fn mark_played(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        at: Timestamp,
    ) -> Result<(Outcome, Option<UserState>)> {
        let close =
            |t: Option<i64>| t.is_some_and(|t| t.abs_diff(at.unix()) <= HISTORY_TOLERANCE_SECS);
        if u.played {
            match u.last_played {
                // The server keeps one play per title, the latest: a play at or before the
                // one it shows is already covered by it.
                Some(t) if close(Some(t)) || at.unix() < t => {
                    return Ok((Outcome::AlreadyPresent, None));
                }
                // A later play moves the title's date forward (below), as watching it
                // again would.
                Some(_) => {}
                // Played without a date: give the play its date.
                None => return self.set_last_played(cx, id, u, at).await,
            }
        }
        let (param, value) = self.flavor.date_played(at);
        let route = self.flavor.played(&self.user_id, id);
        let answer = self
            .send_user_write(
                cx,
                self.call(Method::Post, &route)
                    .query(param, value)
                    .idempotent(),
            )
            .await?;
        let mut next = u.clone();
        next.played = true;
        next.last_played = Some(at.unix());
        next.position_ms = 0;
        match answer {
            Some(s) if !s.played => {
                Ok((unconfirmed("the server did not mark the item played"), None))
            }
            // Some servers stamp their own clock; set the date explicitly.
            Some(s) if !close(s.last_played) => self.set_last_played(cx, id, &s, at).await,
            Some(s) => Ok((Outcome::Confirmed, Some(s))),
            None => Ok((Outcome::Confirmed, Some(next))),
        }
    }

    async fn set_last_played(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        at: Timestamp,
    ) -> Result<(Outcome, Option<UserState>)> {
        let body = self
            .user_data_body(
                cx,
                id,
                &[
                    ("Played", json!(true)),
                    ("LastPlayedDate", json!(at.to_rfc3339())),
                ],
            )
            .await?;
        let answer = self
            .send_user_write(cx, self.user_data_post(id, body))
            .await?;
        let mut next = u.clone();
        next.played = true;
        next.last_played = Some(at.unix());
        Ok(match answer {
            Some(s)
                if s.last_played
                    .is_some_and(|t| t.abs_diff(at.unix()) <= HISTORY_TOLERANCE_SECS) =>
            {
                (Outcome::Confirmed, Some(s))
            }
            Some(_) => (unconfirmed("the server did not keep the play's date"), None),
            None => (Outcome::Confirmed, Some(next)),
        })
    }

    async fn mark_unplayed(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        at: Timestamp,
    ) -> Result<(Outcome, Option<UserState>)> {
        let matches = u.played
            && u.last_played
                .is_some_and(|t| t.abs_diff(at.unix()) <= HISTORY_TOLERANCE_SECS);
        if !matches {
            return Ok((Outcome::AlreadyAbsent, None));
        }
        let route = self.flavor.played(&self.user_id, id);
        let answer = self
            .send_user_write(cx, self.call(Method::Delete, &route).idempotent())
            .await?;
        let mut next = u.clone();
        next.played = false;
        next.last_played = None;
        Ok(match answer {
            Some(s) if s.played => (unconfirmed("the server kept the item played"), None),
            Some(s) => (Outcome::Confirmed, Some(s)),
            None => (Outcome::Confirmed, Some(next)),
        })
    }

    async fn set_position(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        position_ms: u64,
    ) -> Result<(Outcome, Option<UserState>)> {
        if position_ms == 0 && u.position_ms == 0 {
            return Ok((Outcome::AlreadyAbsent, None));
        }
        if position_ms > 0 && u.position_ms.abs_diff(position_ms) < 1000 {
            return Ok((Outcome::AlreadyPresent, None));
        }
        // Only the position: touching LastPlayedDate would move the item's history play
        // (Emby gets its own record back with the position changed).
        let body = self
            .user_data_body(
                cx,
                id,
                &[("PlaybackPositionTicks", json!(position_ms * TICKS_PER_MS))],
            )
            .await?;
        let answer = self
            .send_user_write(cx, self.user_data_post(id, body))
            .await?;
        let mut next = u.clone();
        next.position_ms = position_ms;
        Ok(match answer {
            Some(s) if s.position_ms.abs_diff(position_ms) >= 1000 => {
                (unconfirmed("the server did not keep the position"), None)
            }
            Some(s) => (Outcome::Confirmed, Some(s)),
            None => (Outcome::Confirmed, Some(next)),
        })
    }
}

/// The reason a history read is partial: played titles without a last played date.
fn undated_reason(labels: &[String]) -> String {
    format!(
        "history: {} played title(s) without a last played date, so their plays cannot be \
         read and nothing is removed on this read: {}",
        labels.len(),
        named(labels)
    )
}

fn unconfirmed(detail: &str) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(detail.to_owned()),
    }
}

/// `"10.10.3"` ≥ 10.9?
fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[async_trait]
impl InventoryOps for MediaServer {
    fn provider(&self) -> &'static str {
        self.flavor.provider_id()
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
        h.unwrap_or_else(|_| Health::down("the health check timed out"))
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(self.unsupported(feature));
        }
        self.index(cx, feature).await
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(self.unsupported(feature));
        }
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Playlists => self.playlists_add(cx, entries).await,
            _ => self.state_write(cx, feature, entries, true).await,
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
            return Err(self.unsupported(feature));
        }
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Playlists => self.playlists_remove(cx, entries).await,
            _ => self.state_write(cx, feature, entries, false).await,
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

impl MediaServer {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_tables_differ_only_where_the_servers_do() {
        let jf = Flavor::Jellyfin.played("u1", "i9");
        assert_eq!(jf.path, "/UserPlayedItems/i9");
        assert_eq!(jf.user_query.as_deref(), Some("u1"));
        let emby = Flavor::Emby.played("u1", "i9");
        assert_eq!(emby.path, "/Users/u1/PlayedItems/i9");
        assert_eq!(emby.user_query, None);
        assert_eq!(Flavor::Emby.items("u1").path, "/Users/u1/Items");
        assert_eq!(
            Flavor::Jellyfin.favorite("u", "x").path,
            "/UserFavoriteItems/x"
        );
        assert_eq!(
            Flavor::Emby.user_data("u", "x").path,
            "/Users/u/Items/x/UserData"
        );
    }

    #[test]
    fn dates_played_in_each_format() {
        let t = Timestamp::from_unix(1_709_294_400);
        assert_eq!(
            Flavor::Jellyfin.date_played(t),
            ("datePlayed", "2024-03-01T12:00:00Z".to_owned())
        );
        assert_eq!(
            Flavor::Emby.date_played(t),
            ("DatePlayed", "20240301120000".to_owned())
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("10.10.3", 10, 9));
        assert!(version_at_least("10.9.0", 10, 9));
        assert!(!version_at_least("10.8.13", 10, 9));
        assert!(!version_at_least("", 10, 9));
    }
}

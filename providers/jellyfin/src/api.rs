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
use std::time::Instant;

use ferry_core::{
    Capabilities, Context, Error, ErrorKind, Feature, FeatureCaps, Health, HealthStatus, IdKind,
    KvStore, ListCache, MediaType, Page, PageRequest, Result, Secret, Timestamp, WriteLedger,
};
use ferry_http::{HttpClient, RequestBuilder};

use crate::config::{DEFAULT_PAGE_SIZE, ServerConfig, ServerOptions};
use crate::model::{Library, SystemInfo};
use crate::read::LIBRARY_TTL;

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

/// A Jellyfin or Emby server, as a ferry provider.
#[derive(Debug)]
pub struct MediaServer {
    pub(crate) flavor: Flavor,
    pub(crate) instance: String,
    pub(crate) http: HttpClient,
    pub(crate) token: Secret,
    pub(crate) user_id: String,
    pub(crate) page_size: usize,
    /// This instance's write counters, appended to the activity checkpoints.
    pub(crate) ledger: WriteLedger,
    pub(crate) write_lock: tokio::sync::Mutex<()>,
    /// The last library read, which writes resolve against (see [`crate::read`]).
    pub(crate) library: ListCache<Library>,
    /// Jellyfin: the user the token belongs to (`GET /Users/Me`; `None` for an API key),
    /// learnt once.
    pub(crate) token_user: tokio::sync::OnceCell<Option<String>>,
    /// Jellyfin: whether the configured user owns a playlist (by id), learnt once each.
    pub(crate) owned: Mutex<HashMap<String, bool>>,
}

pub(crate) const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
pub(crate) const PLAYABLE: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];

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
            .seams(&options, &[])
            .secret(&config.api_key);
        let kv: Arc<dyn KvStore> = options
            .store
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
            page_size: options.page_size_or(DEFAULT_PAGE_SIZE),
            ledger: WriteLedger::new(kv, flavor.provider_id(), instance),
            library: ListCache::new(LIBRARY_TTL),
            write_lock: tokio::sync::Mutex::new(()),
            token_user: tokio::sync::OnceCell::new(),
            owned: Mutex::new(HashMap::new()),
        })
    }

    /// One page of a `QueryResult` list (`Items` + `TotalRecordCount`), paged with
    /// `StartIndex`/`Limit`: what the pager asks for.
    pub(crate) async fn query_page(
        &self,
        cx: &Context,
        route: &Route,
        query: &[(&'static str, String)],
        req: PageRequest,
    ) -> Result<Page> {
        let mut r = self
            .call(Method::Get, route)
            .query(self.p("startIndex", "StartIndex"), req.offset)
            .query(self.p("limit", "Limit"), req.limit)
            .query(
                self.p("enableTotalRecordCount", "EnableTotalRecordCount"),
                "true",
            );
        for (k, v) in query {
            r = r.query(*k, v);
        }
        let resp = r.send(cx).await?;
        ferry_http::page::offset_page(&resp, "Items", "TotalRecordCount")
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

    pub(crate) fn unsupported(&self, feature: Feature) -> Error {
        Error::unsupported(format!(
            "{} does not hold {feature}",
            self.flavor.provider_id()
        ))
        .with_provider(self.flavor.provider_id())
    }

    pub(crate) async fn probe_health(&self, cx: &Context) -> Health {
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
            .and_then(|r| r.json::<SystemInfo>());
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
        let version = info.version.as_deref().unwrap_or("");
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
}

/// `"10.10.3"` ≥ 10.9?
pub(crate) fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
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

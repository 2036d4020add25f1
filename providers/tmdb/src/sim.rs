//! A simulator of TMDB's API v3 account routes on the simulator kit (feature `sim`),
//! written from TMDB's published reference and status-code table:
//!
//! - **Auth**: `Authorization: Bearer <token>` (a user access token), or the `api_key`
//!   parameter with the user's `session_id`. Neither: `401` `{"status_code": 7,
//!   "status_message": "Invalid API key: You must be granted a valid key.", "success":
//!   false}`; an API key without the user's valid session: `401` `status_code` 3 (every
//!   route simulated here is the user's). Every error has that `{status_code, status_message, success}` shape.
//! - **Lists**: `GET /3/account/{account_id}/watchlist/movies|tv` and
//!   `/rated/movies|tv`, `page` from 1 (outside 1..=500: `400`, `status_code` 22),
//!   `sort_by=created_at.asc|desc` (default ascending), 20 rows a page:
//!   `{page, results, total_pages, total_results}`. Movie rows carry `title`,
//!   `original_title`, `release_date`; TV rows `name`, `original_name`,
//!   `first_air_date`; rated rows add `rating`.
//! - **States**: `GET /3/movie|tv/{id}/account_states` answers `{id, favorite, rated:
//!   false | {value}, watchlist}`.
//! - **Writes**: `POST /3/account/{account_id}/watchlist` `{media_type, media_id,
//!   watchlist}` answers `201` `status_code` 1 (added) or 12 (already there), `200`
//!   `status_code` 13 when removed; `POST /3/movie|tv/{id}/rating` `{value}` (0.5 to 10
//!   in steps of 0.5, else `400` `status_code` 18) answers `201` `status_code` 1 or 12;
//!   `DELETE` the same route answers `200` `status_code` 13. An id TMDB does not know:
//!   `404` `status_code` 34.
//!
//! The kit adds the fault knobs; the list routes shape their page (rows, and both
//! `total_pages` and `total_results`) with the fault they are handed. [`SIMULATOR`] is
//! the hook `ferry simulate tmdb` starts it through.

use ferry_core::{Feature, IdKind, Item, MediaType, Scenario, SimHandle, SimStart, Simulator};
use ferry_testkit::samples;
use ferry_testkit::sim::kit::{
    self, Host, ListFault, Routes, SAMPLE_SHOWS, Simulator as _, TotalOut,
};
use serde_json::{Map, Value, json};
use wiremock::{Request, ResponseTemplate};

/// The body of `POST /account/{id}/watchlist` (TMDB's reference: `media_type`, `media_id`,
/// `watchlist`); a field missing or of another type is a 422, as on TMDB.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WatchlistBody {
    media_type: Option<String>,
    media_id: Option<u64>,
    watchlist: Option<bool>,
}

/// The body of `POST /{type}/{id}/rating`.
#[derive(Debug, serde::Deserialize)]
struct RateBody {
    value: Option<f64>,
}

/// The user access token the simulator accepts as `Bearer`.
pub const TOKEN: &str = "tmdb-sim-user-access-token-0123456789";
/// The v3 API key and session the simulator accepts instead.
pub const API_KEY: &str = "tmdb-sim-api-key-0123456789abcdef";
pub const SESSION_ID: &str = "tmdb-sim-session-0123456789abcdef";
/// The simulated account.
pub const ACCOUNT_ID: u64 = 548;
/// Rows per page (TMDB's fixed page size).
pub const PER_PAGE: usize = 20;

/// The simulator: `TmdbSim::start().await` (see `ferry_testkit::sim::kit::Simulator`).
pub type TmdbSim = Host<TmdbRoutes>;

/// A title in TMDB's two id spaces: (`movie` or `tv`, id).
pub type Key = (&'static str, u64);

/// The simulated account and catalog.
#[derive(Debug)]
pub struct TmdbRoutes {
    /// Every title TMDB knows here.
    pub catalog: Vec<Item>,
    /// The watchlist, oldest first.
    pub watchlist: Vec<Key>,
    /// The ratings, oldest first, as TMDB holds them (0.5 to 10).
    pub ratings: Vec<(Key, f64)>,
}

fn key_of(it: &Item) -> Option<Key> {
    let id = it.ids.get(IdKind::Tmdb)?.parse().ok()?;
    Some((
        if it.kind == MediaType::Show {
            "tv"
        } else {
            "movie"
        },
        id,
    ))
}

fn status(http: u16, code: u16, message: &str) -> ResponseTemplate {
    let ok = http < 400;
    kit::json(
        http,
        json!({"status_code": code, "status_message": message, "success": ok}),
    )
}

fn not_found() -> ResponseTemplate {
    status(404, 34, "The resource you requested could not be found.")
}

impl TmdbRoutes {
    fn title(&self, key: Key) -> Option<&Item> {
        self.catalog.iter().find(|it| key_of(it) == Some(key))
    }

    fn row(&self, key: Key, rating: Option<f64>) -> Value {
        let it = self.title(key);
        let title = it.and_then(|i| i.title.clone());
        let date = it.and_then(|i| i.year).map(|y| format!("{y}-06-01"));
        let mut row = match key.0 {
            "tv" => json!({"id": key.1, "name": title, "original_name": title,
                "first_air_date": date, "origin_country": ["US"]}),
            _ => json!({"id": key.1, "title": title, "original_title": title,
                "release_date": date, "video": false}),
        };
        row["adult"] = json!(false);
        row["original_language"] = json!("en");
        if let Some(r) = rating {
            row["rating"] = json!(r);
        }
        row
    }

    /// One page of a list of `keys` (with their ratings on rated lists).
    fn list(
        &self,
        req: &Request,
        mut keys: Vec<(Key, Option<f64>)>,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let page = match kit::query(req, "page").map(|p| p.parse::<usize>()) {
            None => 1,
            Some(Ok(p)) if (1..=500).contains(&p) => p,
            Some(_) => {
                return status(
                    400,
                    22,
                    "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer.",
                );
            }
        };
        if kit::query(req, "sort_by").as_deref() == Some("created_at.desc") {
            keys.reverse();
        }
        let n = keys.len();
        let rows = keys[kit::numbered_window(n, page, PER_PAGE, fault)]
            .iter()
            .map(|(k, r)| self.row(*k, *r))
            .collect();
        let (rows, total) = fault.shape(rows, n);
        let pages = match total {
            TotalOut::Exact(_) => Some(json!(kit::page_count(n, PER_PAGE))),
            _ => total.json(),
        };
        let mut body = json!({"page": page, "results": rows});
        for (field, v) in [("total_pages", pages), ("total_results", total.json())] {
            if let Some(v) = v {
                body[field] = v;
            }
        }
        kit::json(200, body)
    }

    fn lists(&self, req: &Request, rest: &str, fault: &ListFault) -> ResponseTemplate {
        let (section, kind) = rest.split_once('/').unwrap_or((rest, ""));
        let kind = match kind {
            "movies" => "movie",
            "tv" => "tv",
            _ => return not_found(),
        };
        let keys = match section {
            "watchlist" => self
                .watchlist
                .iter()
                .filter(|k| k.0 == kind)
                .map(|k| (*k, None))
                .collect(),
            "rated" => self
                .ratings
                .iter()
                .filter(|(k, _)| k.0 == kind)
                .map(|(k, r)| (*k, Some(*r)))
                .collect(),
            _ => return not_found(),
        };
        self.list(req, keys, fault)
    }

    fn set_watchlist(&mut self, body: &Value) -> ResponseTemplate {
        let body: WatchlistBody = serde_json::from_value(body.clone()).unwrap_or_default();
        let kind = match body.media_type.as_deref() {
            Some("movie") => "movie",
            Some("tv") => "tv",
            _ => {
                return status(
                    422,
                    5,
                    "Invalid parameters: Your request parameters are incorrect.",
                );
            }
        };
        let (Some(id), Some(on)) = (body.media_id, body.watchlist) else {
            return status(
                422,
                5,
                "Invalid parameters: Your request parameters are incorrect.",
            );
        };
        let key = (kind, id);
        if self.title(key).is_none() {
            return not_found();
        }
        let held = self.watchlist.contains(&key);
        match (on, held) {
            (true, true) => status(201, 12, "The item/record was updated successfully."),
            (true, false) => {
                self.watchlist.push(key);
                status(201, 1, "Success.")
            }
            (false, _) => {
                self.watchlist.retain(|k| *k != key);
                status(200, 13, "The item/record was deleted successfully.")
            }
        }
    }

    fn rate(&mut self, method: &str, key: Key, body: &Value) -> ResponseTemplate {
        if self.title(key).is_none() {
            return not_found();
        }
        let held = self.ratings.iter().position(|(k, _)| *k == key);
        if method == "DELETE" {
            self.ratings.retain(|(k, _)| *k != key);
            return status(200, 13, "The item/record was deleted successfully.");
        }
        let value = serde_json::from_value::<RateBody>(body.clone())
            .ok()
            .and_then(|b| b.value)
            .filter(|v| (0.5..=10.0).contains(v) && (v * 2.0).fract() == 0.0);
        let Some(value) = value else {
            return status(400, 18, "Value invalid: Values must be a multiple of 0.50.");
        };
        match held {
            Some(i) => {
                self.ratings[i].1 = value;
                status(201, 12, "The item/record was updated successfully.")
            }
            None => {
                self.ratings.push((key, value));
                status(201, 1, "Success.")
            }
        }
    }

    fn states(&self, key: Key) -> ResponseTemplate {
        if self.title(key).is_none() {
            return not_found();
        }
        let rated = match self.ratings.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => json!({"value": v}),
            None => json!(false),
        };
        kit::json(
            200,
            json!({"id": key.1, "favorite": false, "rated": rated,
            "watchlist": self.watchlist.contains(&key)}),
        )
    }

    /// `/3/movie|tv/{id}/account_states|rating`.
    fn title_route(&mut self, method: &str, path: &str, body: &Value) -> ResponseTemplate {
        let mut parts = path.split('/');
        let (Some(kind), Some(id), Some(what)) = (parts.next(), parts.next(), parts.next()) else {
            return not_found();
        };
        let kind = if kind == "tv" { "tv" } else { "movie" };
        let Ok(id) = id.parse::<u64>() else {
            return not_found();
        };
        match (method, what) {
            ("GET", "account_states") => self.states((kind, id)),
            ("POST" | "DELETE", "rating") => self.rate(method, (kind, id), body),
            _ => not_found(),
        }
    }
}

impl Routes for TmdbRoutes {
    /// The shared sample catalog. On the account: the last 22 sample movies and shows
    /// 4 to 7 on the watchlist, the same titles rated (movie 42 at 7.5, a half step), so
    /// each movie list spans two pages and the contract suite's own samples start absent.
    fn seeded() -> Self {
        let catalog = kit::sample_catalog();
        let on: Vec<Key> = catalog
            .iter()
            .filter_map(key_of)
            .filter(|(kind, id)| match *kind {
                "tv" => (800_004..800_008).contains(id),
                _ => *id >= 900_042,
            })
            .collect();
        let ratings = on
            .iter()
            .map(|k| {
                (
                    *k,
                    if k.1 == 900_042 {
                        7.5
                    } else {
                        f64::from((k.1 % 10) as u8 + 1)
                    },
                )
            })
            .collect();
        TmdbRoutes {
            catalog,
            watchlist: on,
            ratings,
        }
    }

    fn token(&self) -> String {
        TOKEN.to_owned()
    }

    fn list_path(&self, feature: Feature) -> Option<String> {
        match feature {
            Feature::Watchlist => Some(format!("/3/account/{ACCOUNT_ID}/watchlist/")),
            Feature::Ratings => Some(format!("/3/account/{ACCOUNT_ID}/rated/")),
            _ => None,
        }
    }

    fn route(&mut self, req: &Request, fault: &ListFault) -> ResponseTemplate {
        let bearer = kit::bearer(req);
        let key = kit::query(req, "api_key");
        let session_ok = kit::query(req, "session_id").as_deref() == Some(SESSION_ID);
        if bearer.as_deref() != Some(TOKEN) && key.as_deref() != Some(API_KEY) {
            return status(401, 7, "Invalid API key: You must be granted a valid key.");
        }
        // Every route here is the user's: an API key needs the user's session.
        if bearer.as_deref() != Some(TOKEN) && !session_ok {
            return status(
                401,
                3,
                "Authentication failed: You do not have permissions to access the service.",
            );
        }
        let path = req.url.path().to_owned();
        let method = req.method.as_str();
        let body = kit::body(req).unwrap_or(Value::Null);
        if let Some(rest) = path.strip_prefix(&format!("/3/account/{ACCOUNT_ID}")) {
            return match (method, rest) {
                ("GET", "") => kit::json(
                    200,
                    json!({"id": ACCOUNT_ID, "username": "ferry-sim",
                    "name": "", "include_adult": false, "iso_639_1": "en", "iso_3166_1": "US"}),
                ),
                ("POST", "/watchlist") => self.set_watchlist(&body),
                ("GET", r) if r.starts_with('/') => self.lists(req, &r[1..], fault),
                _ => not_found(),
            };
        }
        match path.strip_prefix("/3/") {
            Some(rest) if rest.starts_with("movie/") || rest.starts_with("tv/") => {
                self.title_route(method, rest, &body)
            }
            _ => not_found(),
        }
    }
}

/// `ferry simulate tmdb` and `ferry demo`: this simulator, declared in the provider's
/// descriptor (`ProviderKind::SIMULATOR`).
pub(crate) const SIMULATOR: Simulator = Simulator {
    ports: 1,
    start,
    demo: None,
};

struct Handle(TmdbSim);

impl SimHandle for Handle {
    fn base_url(&self) -> String {
        self.0.uri()
    }

    /// What a `[providers.<instance>]` table needs to use this simulator.
    fn config(&self) -> Map<String, Value> {
        let v = json!({"base_url": self.0.uri(), "account_id": ACCOUNT_ID,
            "access_token": TOKEN});
        v.as_object().cloned().unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.0.knobs(|k| k.total())
    }
}

/// An account over `items` sample films (and the sample shows): every film on the
/// watchlist, every third rated.
fn account(items: u32) -> TmdbRoutes {
    let movies = samples::library(items);
    let watchlist: Vec<Key> = movies.iter().filter_map(key_of).collect();
    let ratings = watchlist
        .iter()
        .step_by(3)
        .map(|k| (*k, f64::from((k.1 % 10) as u8 + 1)))
        .collect();
    let mut catalog = movies;
    catalog.extend((0..SAMPLE_SHOWS).map(samples::show));
    TmdbRoutes {
        catalog,
        watchlist,
        ratings,
    }
}

fn start(scenario: Scenario) -> SimStart {
    Box::pin(async move {
        let items = match scenario {
            Scenario::Library { items } => items,
            Scenario::Demo { movies, .. } => movies,
        };
        let sim = TmdbSim::serve(account(items)).await;
        Ok(Box::new(Handle(sim)) as Box<dyn SimHandle>)
    })
}

//! A stateful simulator of MDBList's API (`https://api.mdblist.com`).
//!
//! One [`MockServer`] with a custom [`Respond`] over shared in-memory state, so writes
//! change later reads. What it models:
//!
//! - **Auth**: the `apikey` query parameter on every request (or, when
//!   [`MdblistSim::set_bearer`] is set, `Authorization: Bearer`); otherwise `401`
//!   `{"error":"Invalid API key"}`. Every answered request counts against a daily quota
//!   reported in `X-RateLimit-Limit/Remaining/Reset`; past the quota: `429` with
//!   `Retry-After`.
//! - **Watchlist**: `GET /watchlist/items?limit&offset&unified=true` pages over movies and
//!   shows together (`{movies, shows, pagination{offset, limit, has_more, total_movies,
//!   total_shows}}`, flat ids: `id` = TMDB, `imdb_id`, `tvdb_id`);
//!   `POST /watchlist/items/add|remove` take *flat* id objects (`{imdb, tmdb}`). Every
//!   paged read declares its totals per group (`total_movies`, `total_shows`,
//!   `total_episodes`) next to `has_more`.
//! - **Ratings**: `GET /sync/ratings?offset&limit&since`, `POST /sync/ratings` and
//!   `/sync/ratings/remove` (Trakt-like nested `ids`).
//! - **History**: `GET /sync/watched?offset&limit&since[&plays=all]` (one row per play with
//!   its `play_id` under `plays=all`), `POST /sync/watched`, `/sync/watched/remove` (every
//!   play of a title) and `/sync/watched/plays/remove {play_ids}`.
//! - **Change tracking**: `GET /sync/last_activities` (stamps that move strictly forward:
//!   the server clock starts at [`START_TIME`] and advances one second per write request)
//!   and `GET /sync/journal?limit&since|cursor`.
//!
//! Faults: the shared knobs ([`FaultControl`]): whole-answer faults (a status, `429`, an
//! expired key, empty, HTML or cut-off bodies) and list faults, which shape a page the
//! same way for every simulator (`Truncate` keeps half the page while `has_more` and the
//! totals still describe the full list; an empty page, a `null` row, the `total_*` counts
//! left out or not counts); plus `has_more` lies and added latency.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::{IdKind, Item, MediaType, Timestamp};
use serde_json::{Map, Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::{self, Fault, FaultControl, FaultRule, Knobs, ListFault, TotalOut};

/// The API key the simulator accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "mdblist-sim-key-0123456789abcdef";
/// The server clock at start (2025-06-01T00:00:00Z).
pub const START_TIME: i64 = 1_748_736_000;
/// Requests per day before `429` (what `X-RateLimit-Limit` reports).
pub const DEFAULT_DAILY_QUOTA: u64 = 100_000;
/// The largest `limit` a page honours.
pub const MAX_PAGE_LIMIT: usize = 1000;
const DEFAULT_PAGE_LIMIT: usize = 100;

/// Movie or show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MdbKind {
    Movie,
    Show,
}

impl MdbKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MdbKind::Movie => "movie",
            MdbKind::Show => "show",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            MdbKind::Movie => "movies",
            MdbKind::Show => "shows",
        }
    }
}

/// One catalog title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdbTitle {
    pub kind: MdbKind,
    pub title: String,
    pub year: Option<u16>,
    pub tmdb: u64,
    pub imdb: String,
    pub tvdb: Option<u64>,
    pub trakt: Option<u64>,
    /// Episodes per season, season 1 first (shows).
    pub seasons: Vec<u32>,
    /// The sample show number, for episode ids.
    show_n: Option<u32>,
}

impl MdbTitle {
    fn ids_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("imdb".into(), json!(self.imdb));
        m.insert("tmdb".into(), json!(self.tmdb));
        if let Some(t) = self.tvdb {
            m.insert("tvdb".into(), json!(t));
        }
        if let Some(t) = self.trakt {
            m.insert("trakt".into(), json!(t));
        }
        m.insert("mdblist".into(), json!(self.imdb));
        Value::Object(m)
    }

    fn object_json(&self) -> Value {
        json!({"title": self.title, "year": self.year, "ids": self.ids_json()})
    }

    fn has_episode(&self, s: u32, e: u32) -> bool {
        s >= 1 && e >= 1 && self.seasons.get(s as usize - 1).is_some_and(|n| e <= *n)
    }

    /// The episode's own TVDB id (as in [`samples::episode`]).
    fn episode_tvdb(&self, s: u32, e: u32) -> Option<u64> {
        self.show_n
            .map(|n| 10_000_000 + u64::from(n) * 10_000 + u64::from(s) * 100 + u64::from(e))
    }
}

/// One play in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub play_id: u64,
    /// Index into the catalog.
    pub title: usize,
    /// `(season, episode)` for episode plays.
    pub episode: Option<(u32, u32)>,
    pub watched_at: i64,
    /// Server time the play was recorded (what `since` filters on).
    pub recorded_at: i64,
}

/// `(is an episode, catalog index, episode)`: one movie or episode of the history.
type PlayKey = (bool, usize, Option<(u32, u32)>);

/// Faults the shared [`Fault`] enum does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// The page says `has_more: false` although rows remain.
    HasMoreLies,
}

#[derive(Debug, Clone)]
struct ExtraRule {
    extra: Extra,
    prefix: String,
    times: u32,
}

#[derive(Debug)]
struct MdbState {
    api_key: String,
    bearer: Option<String>,
    catalog: Vec<MdbTitle>,
    /// `(catalog index, watchlisted at)`, oldest first.
    watchlist: Vec<(usize, i64)>,
    /// catalog index → (rating, rated at, changed at).
    ratings: BTreeMap<usize, (u8, i64, i64)>,
    plays: Vec<Play>,
    journal: Vec<Value>,
    stamps: BTreeMap<&'static str, i64>,
    next_play: u64,
    now: i64,
    quota: u64,
    used: u64,
    knobs: Knobs,
    extra: Vec<ExtraRule>,
    declare_totals: bool,
    show_inside_episode: bool,
}

fn lock(m: &Mutex<MdbState>) -> MutexGuard<'_, MdbState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds an [`MdblistSim`] with a chosen catalog.
#[derive(Debug, Clone)]
pub struct MdblistSimBuilder {
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    api_key: String,
    quota: u64,
}

impl Default for MdblistSimBuilder {
    fn default() -> Self {
        MdblistSimBuilder {
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 4,
            seasons: 2,
            episodes: 5,
            api_key: DEFAULT_API_KEY.to_owned(),
            quota: DEFAULT_DAILY_QUOTA,
        }
    }
}

impl MdblistSimBuilder {
    /// Sample movies `0..n` in the catalog.
    pub fn movies(mut self, n: u32) -> Self {
        self.movies = n;
        self
    }

    /// Sample shows `0..n`, each with `seasons` × `episodes` episodes.
    pub fn shows(mut self, n: u32, seasons: u32, episodes: u32) -> Self {
        self.shows = n;
        self.seasons = seasons;
        self.episodes = episodes;
        self
    }

    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Requests per day before `429`.
    pub fn daily_quota(mut self, n: u64) -> Self {
        self.quota = n;
        self
    }

    pub async fn start(self) -> MdblistSim {
        let mut catalog = Vec::new();
        for n in 0..self.movies {
            let m = samples::movie(n);
            catalog.push(title_from(&m, MdbKind::Movie, Vec::new(), None));
        }
        for n in 0..self.shows {
            let s = samples::show(n);
            catalog.push(title_from(
                &s,
                MdbKind::Show,
                vec![self.episodes; self.seasons as usize],
                Some(n),
            ));
        }
        let state = Arc::new(Mutex::new(MdbState {
            api_key: self.api_key,
            bearer: None,
            catalog,
            watchlist: Vec::new(),
            ratings: BTreeMap::new(),
            plays: Vec::new(),
            journal: Vec::new(),
            stamps: BTreeMap::new(),
            next_play: 31_337,
            now: START_TIME,
            quota: self.quota,
            used: 0,
            knobs: Knobs::default(),
            extra: Vec::new(),
            declare_totals: true,
            show_inside_episode: false,
        }));
        let server = super::server().await;
        Mock::given(any())
            .respond_with(MdbRouter(state.clone()))
            .mount(&server)
            .await;
        MdblistSim {
            server: Arc::new(server),
            state,
        }
    }
}

fn title_from(item: &Item, kind: MdbKind, seasons: Vec<u32>, show_n: Option<u32>) -> MdbTitle {
    let num = |k: IdKind| item.ids.get(k).and_then(|v| v.parse::<u64>().ok());
    MdbTitle {
        kind,
        title: item.title.clone().unwrap_or_default(),
        year: item.year,
        tmdb: num(IdKind::Tmdb).unwrap_or_default(),
        imdb: item.ids.get(IdKind::Imdb).unwrap_or_default().to_owned(),
        tvdb: num(IdKind::Tvdb),
        trakt: num(IdKind::Trakt),
        seasons,
        show_n,
    }
}

/// A running MDBList simulator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MdblistSim {
    server: Arc<MockServer>,
    state: Arc<Mutex<MdbState>>,
}

impl MdblistSim {
    /// A simulator whose catalog holds [`SAMPLE_LIBRARY_SIZE`] sample movies and four sample
    /// shows (2 × 5 episodes), with an empty watchlist, no ratings and no history.
    pub async fn start() -> MdblistSim {
        MdblistSimBuilder::default().start().await
    }

    pub fn builder() -> MdblistSimBuilder {
        MdblistSimBuilder::default()
    }

    /// The base URL (what `https://api.mdblist.com` would be).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn st(&self) -> MutexGuard<'_, MdbState> {
        lock(&self.state)
    }

    pub fn api_key(&self) -> String {
        self.st().api_key.clone()
    }

    /// Replaces the accepted key: requests with the old one get `401` (a revoked key).
    pub fn set_api_key(&self, key: impl Into<String>) {
        self.st().api_key = key.into();
    }

    /// Also accepts `Authorization: Bearer <token>` (the device-flow login).
    pub fn set_bearer(&self, token: Option<String>) {
        self.st().bearer = token;
    }

    pub fn now(&self) -> i64 {
        self.st().now
    }

    pub fn advance(&self, secs: i64) {
        self.st().now += secs;
    }

    /// Requests counted against today's quota so far.
    pub fn quota_used(&self) -> u64 {
        self.st().used
    }

    /// Sets the daily quota and how much of it is used.
    pub fn set_quota(&self, quota: u64, used: u64) {
        let mut st = self.st();
        st.quota = quota;
        st.used = used;
    }

    // -- state ----------------------------------------------------------------------------

    /// The catalog title `item` (or, for an episode, its show) resolves to.
    pub fn title_of(&self, item: &Item) -> Option<MdbTitle> {
        let st = self.st();
        st.resolve_item(item).map(|i| st.catalog[i].clone())
    }

    /// Watchlisted titles (TMDB ids), oldest first.
    pub fn watchlist(&self) -> Vec<u64> {
        let st = self.st();
        st.watchlist
            .iter()
            .map(|(i, _)| st.catalog[*i].tmdb)
            .collect()
    }

    /// Rated titles: TMDB id → rating.
    pub fn ratings(&self) -> BTreeMap<u64, u8> {
        let st = self.st();
        st.ratings
            .iter()
            .map(|(i, (r, _, _))| (st.catalog[*i].tmdb, *r))
            .collect()
    }

    pub fn plays(&self) -> Vec<Play> {
        self.st().plays.clone()
    }

    /// Plays of the title (or episode) `item` names.
    pub fn plays_of(&self, item: &Item) -> Vec<Play> {
        let st = self.st();
        let Some(i) = st.resolve_item(item) else {
            return Vec::new();
        };
        let ep = (item.kind == MediaType::Episode)
            .then(|| item.season.zip(item.episode))
            .flatten();
        st.plays
            .iter()
            .filter(|p| p.title == i && p.episode == ep)
            .cloned()
            .collect()
    }

    /// What `GET /sync/last_activities` would answer now.
    pub fn last_activities(&self) -> Value {
        self.st().activities_json()
    }

    /// Every journal row so far, oldest first.
    pub fn journal(&self) -> Vec<Value> {
        self.st().journal.clone()
    }

    // -- seeding --------------------------------------------------------------------------

    /// Puts a catalog title on the watchlist. `false` if no catalog title matches.
    pub fn seed_watchlist(&self, item: &Item) -> bool {
        let mut st = self.st();
        let Some(i) = st.resolve_item(item) else {
            return false;
        };
        let now = st.tick();
        if !st.watchlist.iter().any(|(x, _)| *x == i) {
            st.watchlist.push((i, now));
            st.record("watchlist", "added", i, None, None);
        }
        true
    }

    pub fn seed_rating(&self, item: &Item, rating: u8) -> bool {
        let mut st = self.st();
        let Some(i) = st.resolve_item(item) else {
            return false;
        };
        let now = st.tick();
        st.ratings.insert(i, (rating, now, now));
        st.record("rated", "added", i, None, Some(rating));
        true
    }

    /// Records a play of a movie, or of an episode when `item` is one.
    pub fn seed_play(&self, item: &Item, at: Timestamp) -> bool {
        let mut st = self.st();
        let Some(i) = st.resolve_item(item) else {
            return false;
        };
        let ep = (item.kind == MediaType::Episode)
            .then(|| item.season.zip(item.episode))
            .flatten();
        st.tick();
        st.add_play(i, ep, at.unix());
        true
    }

    // -- faults ---------------------------------------------------------------------------

    pub fn inject(&self, rule: FaultRule) {
        self.st().knobs.inject(rule);
    }

    /// The next `n` requests answer `status`.
    pub fn fail_next(&self, status: u16, n: u32) {
        self.inject(FaultRule::new(Fault::Status(status)).times(n));
    }

    /// The next `n` requests answer `429` with `Retry-After: secs`.
    pub fn rate_limit_next(&self, retry_after_secs: u64, n: u32) {
        self.inject(FaultRule::new(Fault::RateLimited { retry_after_secs }).times(n));
    }

    /// The next request under `path_prefix` answers `200` with broken JSON.
    pub fn malformed_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Malformed).on(path_prefix));
    }

    /// The next page under `path_prefix` holds half its rows; its pagination block still
    /// describes the full page.
    pub fn truncate_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Truncate).on(path_prefix));
    }

    /// The next `n` pages under `path_prefix` say `has_more: false` although rows remain.
    pub fn lie_has_more_next(&self, path_prefix: &str, n: u32) {
        self.push_extra(Extra::HasMoreLies, path_prefix, n);
    }

    /// The next `n` requests under `path_prefix` answer `200` with an empty body.
    pub fn empty_body_next(&self, path_prefix: &str, n: u32) {
        self.inject(FaultRule::new(Fault::EmptyBody).on(path_prefix).times(n));
    }

    fn push_extra(&self, extra: Extra, prefix: &str, times: u32) {
        self.st().extra.push(ExtraRule {
            extra,
            prefix: prefix.to_owned(),
            times,
        });
    }

    pub fn set_latency(&self, d: Duration) {
        self.st().knobs.set_latency(d);
    }

    /// Whether pagination blocks declare `total_*` counts (default `true`); without them
    /// only `has_more` tells where a read ends (the shape CrossWatch documents for the
    /// `/sync` reads).
    pub fn set_declare_totals(&self, on: bool) {
        self.st().declare_totals = on;
    }

    /// Episode plays carry their show inside `episode` (CrossWatch's reading of the
    /// API) instead of beside it (default `false`); which the live service sends is
    /// unverified, so the provider must read both.
    pub fn set_show_inside_episode(&self, on: bool) {
        self.st().show_inside_episode = on;
    }

    pub fn clear_faults(&self) {
        let mut st = self.st();
        st.knobs.clear_faults();
        st.extra.clear();
    }

    // -- request accounting ---------------------------------------------------------------

    pub fn requests(&self, path: &str) -> u64 {
        self.st().knobs.requests(path)
    }

    pub fn requests_under(&self, prefix: &str) -> u64 {
        self.st().knobs.requests_under(prefix)
    }

    pub fn requests_to(&self, method: &str, path: &str) -> u64 {
        self.st().knobs.requests_to(method, path)
    }

    pub fn total_requests(&self) -> u64 {
        self.st().knobs.total()
    }

    pub fn routes(&self) -> BTreeMap<String, u64> {
        self.st().knobs.routes()
    }

    pub fn reset_counts(&self) {
        self.st().knobs.reset_counts();
    }
}

impl FaultControl for MdblistSim {
    fn inject(&self, rule: FaultRule) {
        self.st().knobs.inject(rule);
    }

    fn clear_faults(&self) {
        MdblistSim::clear_faults(self);
    }

    fn faults_fired(&self) -> u64 {
        self.st().knobs.fired()
    }

    fn list_path(&self, feature: ferry_core::Feature) -> Option<String> {
        use ferry_core::Feature as F;
        match feature {
            F::Watchlist => Some("/watchlist/items".into()),
            F::Ratings => Some("/sync/ratings".into()),
            F::History => Some("/sync/watched".into()),
            F::Progress | F::Playlists => None,
        }
    }

    fn rate_limit_gap(&self) -> Option<Duration> {
        self.st().knobs.rate_limit_gap()
    }
}

// ---------------------------------------------------------------------------------------

struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Self {
        Reply {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    fn error(status: u16, msg: &str) -> Self {
        Reply::json(status, &json!({"error": msg}))
    }

    fn template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status);
        if !self.body.is_empty() {
            t = t.set_body_raw(self.body, "application/json");
        }
        for (k, v) in &self.headers {
            t = t.insert_header(*k, v.as_str());
        }
        t
    }
}

struct MdbRouter(Arc<Mutex<MdbState>>);

impl Respond for MdbRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        let lie = st.take_extra(&seen.path) == Some(Extra::HasMoreLies);
        seen.answer_list(|method, path, fault| st.route(req, method, path, fault, lie).template())
    }
}

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(Timestamp::from_unix(t).to_rfc3339()))
}

fn parse_ts(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str)
        .and_then(Timestamp::parse)
        .map(Timestamp::unix)
}

fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn arr<'v>(body: &'v Value, key: &str) -> &'v [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `limit` and `offset` from the query.
fn window(q: &HashMap<String, String>) -> (usize, usize) {
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT);
    let offset = q
        .get("offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    (limit, offset)
}

/// A whole list as rows tagged with the list (`movies`, `shows`, …) they are sent in;
/// [`Listing::answer`] cuts one page of it.
struct Listing {
    rows: Vec<(&'static str, Value)>,
    lists: &'static [&'static str],
    /// Lists the answer always carries, empty.
    empty: &'static [&'static str],
    totals: bool,
}

impl Listing {
    fn new(lists: &'static [&'static str], empty: &'static [&'static str], totals: bool) -> Self {
        Listing {
            rows: Vec::new(),
            lists,
            empty,
            totals,
        }
    }

    fn push(&mut self, list: &'static str, row: Value) {
        self.rows.push((list, row));
    }

    /// The page `[offset, offset+limit)`: its rows by list and a pagination block with
    /// `has_more` and a `total_<list>` per list, shaped by the request's list fault (the
    /// total of a damaged page is rendered on every `total_*`).
    fn answer(self, q: &HashMap<String, String>, fault: &ListFault, lie: bool) -> Reply {
        let (limit, offset) = window(q);
        let n = self.rows.len();
        let has_more = offset.saturating_add(limit) < n;
        let (start, end) = knobs::window(n, offset, Some(limit), fault.truncates());
        let mut totals: BTreeMap<&str, usize> = self.lists.iter().map(|l| (*l, 0)).collect();
        for (l, _) in &self.rows {
            *totals.entry(l).or_default() += 1;
        }
        let page: Vec<(&str, Value)> = self
            .rows
            .into_iter()
            .skip(start)
            .take(end - start)
            .collect();
        let (lists, values): (Vec<&str>, Vec<Value>) = page.into_iter().unzip();
        let (values, total) = fault.shape(values, n);
        let mut body = Map::new();
        for l in self.lists.iter().chain(self.empty) {
            body.insert((*l).to_owned(), json!([]));
        }
        for (l, v) in lists.into_iter().zip(values) {
            if let Some(Value::Array(a)) = body.get_mut(l) {
                a.push(v);
            }
        }
        let mut p = Map::new();
        p.insert("offset".into(), json!(offset));
        p.insert("limit".into(), json!(limit));
        p.insert("has_more".into(), json!(has_more && !lie));
        if self.totals {
            for (l, count) in totals {
                let v = match &total {
                    TotalOut::Exact(_) => Some(json!(count)),
                    other => other.json(),
                };
                if let Some(v) = v {
                    p.insert(format!("total_{l}"), v);
                }
            }
        }
        // The pagination block is what declares the list's extent (`has_more` and the
        // totals): a page whose declaration is missing has none.
        if total != TotalOut::Missing {
            body.insert("pagination".into(), Value::Object(p));
        }
        Reply::json(200, &Value::Object(body))
    }
}

impl MdbState {
    fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    fn stamp(&mut self, field: &'static str) {
        let now = self.now;
        self.stamps.insert(field, now);
        self.stamps.insert("updated_at", now);
        self.stamps.insert("journal_at", now);
    }

    fn take_extra(&mut self, path: &str) -> Option<Extra> {
        let i = self
            .extra
            .iter()
            .position(|r| r.times > 0 && path.starts_with(&r.prefix))?;
        self.extra[i].times -= 1;
        let e = self.extra[i].extra;
        self.extra.retain(|r| r.times > 0);
        Some(e)
    }

    fn record(
        &mut self,
        category: &str,
        action: &str,
        title: usize,
        episode: Option<(u32, u32)>,
        rating: Option<u8>,
    ) {
        let t = &self.catalog[title];
        let mut row = json!({
            "category": category,
            "action": action,
            "action_at": ts(Some(self.now)),
            "mediatype": if episode.is_some() { "episode" } else { t.kind.as_str() },
            "ids": t.ids_json(),
        });
        if let Some((s, e)) = episode {
            row["season"] = json!(s);
            row["episode"] = json!(e);
        }
        if let Some(r) = rating {
            row["rating"] = json!(r);
        }
        self.journal.push(row);
        let field = match category {
            "watchlist" => "watchlisted_at",
            "rated" => "rated_at",
            _ if episode.is_some() => "episode_watched_at",
            _ => "watched_at",
        };
        self.stamp(field);
    }

    fn add_play(&mut self, title: usize, episode: Option<(u32, u32)>, at: i64) -> (u64, bool) {
        if let Some(p) = self
            .plays
            .iter()
            .find(|p| p.title == title && p.episode == episode && p.watched_at == at)
        {
            return (p.play_id, false);
        }
        let id = self.next_play;
        self.next_play += 1;
        self.plays.push(Play {
            play_id: id,
            title,
            episode,
            watched_at: at,
            recorded_at: self.now,
        });
        self.record("watched", "added", title, episode, None);
        (id, true)
    }

    fn activities_json(&self) -> Value {
        let s = |f: &str| ts(self.stamps.get(f).copied());
        json!({
            "watchlisted_at": s("watchlisted_at"),
            "rated_at": s("rated_at"),
            "watched_at": s("watched_at"),
            "episode_watched_at": s("episode_watched_at"),
            "season_watched_at": s("season_watched_at"),
            "collected_at": s("collected_at"),
            "dropped_at": s("dropped_at"),
            "journal_at": s("journal_at"),
            "updated_at": s("updated_at"),
        })
    }

    fn resolve_item(&self, item: &Item) -> Option<usize> {
        let source = if item.kind == MediaType::Episode {
            &item.show_ids
        } else {
            &item.ids
        };
        let mut m = Map::new();
        for (k, v) in source.iter() {
            m.insert(k.as_str().to_owned(), json!(v));
        }
        let kind = if item.kind == MediaType::Movie {
            MdbKind::Movie
        } else {
            MdbKind::Show
        };
        self.resolve(&Value::Object(m), kind)
    }

    /// The catalog index an id object (`{imdb, tmdb, tvdb, trakt, mdblist}`) resolves to.
    fn resolve(&self, ids: &Value, kind: MdbKind) -> Option<usize> {
        let ids = ids.as_object()?;
        self.catalog.iter().position(|t| {
            t.kind == kind
                && ids.iter().any(|(k, v)| {
                    let Some(v) = id_str(v) else { return false };
                    match k.as_str() {
                        "imdb" | "mdblist" => t.imdb.eq_ignore_ascii_case(&v),
                        "tmdb" => t.tmdb.to_string() == v,
                        "tvdb" => t.tvdb.is_some_and(|x| x.to_string() == v),
                        "trakt" => t.trakt.is_some_and(|x| x.to_string() == v),
                        _ => false,
                    }
                })
        })
    }

    /// Flat watchlist ids: `{imdb, tmdb, tvdb, mdblist}` at the top of the object.
    fn resolve_flat(&self, it: &Value, kind: MdbKind) -> Option<usize> {
        let mut m = Map::new();
        for k in ["imdb", "tmdb", "tvdb", "mdblist"] {
            if let Some(v) = it.get(k) {
                m.insert(k.to_owned(), v.clone());
            }
        }
        self.resolve(&Value::Object(m), kind)
    }

    fn rate_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("X-RateLimit-Limit", self.quota.to_string()),
            (
                "X-RateLimit-Remaining",
                self.quota.saturating_sub(self.used).to_string(),
            ),
            (
                "X-RateLimit-Reset",
                (86_400 - self.now.rem_euclid(86_400)).to_string(),
            ),
        ]
    }

    fn route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
        lie: bool,
    ) -> Reply {
        let q = query(req);
        let key_ok = q.get("apikey").is_some_and(|k| *k == self.api_key);
        let bearer_ok = self.bearer.as_deref().is_some_and(|b| {
            req.headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                == Some(b)
        });
        if !key_ok && !bearer_ok {
            return Reply::error(401, "Invalid API key");
        }
        if self.used >= self.quota {
            let mut r = Reply::error(429, "API request limit reached");
            let reset = 86_400 - self.now.rem_euclid(86_400);
            r.headers.push(("Retry-After", reset.to_string()));
            r.headers.extend(self.rate_headers());
            return r;
        }
        self.used += 1;
        let body: Option<Value> = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .filter(Value::is_object);
        let mut reply = match (method, path.trim_end_matches('/')) {
            ("GET", "/user") => Reply::json(
                200,
                &json!({
                    "user_id": 1,
                    "username": "ferry-sim",
                    "patron_status": "former",
                    "api_requests": self.quota,
                    "api_requests_count": self.used,
                }),
            ),
            ("GET", "/sync/last_activities") => Reply::json(200, &self.activities_json()),
            ("GET", "/sync/journal") => self.journal_page(&q),
            ("GET", "/watchlist/items") => self.watchlist_page(&q).answer(&q, fault, lie),
            ("GET", "/sync/ratings") => self.ratings_page(&q).answer(&q, fault, lie),
            ("GET", "/sync/watched") => self.watched_page(&q).answer(&q, fault, lie),
            ("POST", p) => match body {
                None => Reply::error(400, "Invalid JSON body"),
                Some(b) => match p {
                    "/watchlist/items/add" => self.watchlist_write(&b, true),
                    "/watchlist/items/remove" => self.watchlist_write(&b, false),
                    "/sync/ratings" => self.ratings_add(&b),
                    "/sync/ratings/remove" => self.ratings_remove(&b),
                    "/sync/watched" => self.watched_add(&b),
                    "/sync/watched/remove" => self.watched_remove(&b),
                    "/sync/watched/plays/remove" => self.plays_remove(&b),
                    _ => Reply::error(404, "Not found"),
                },
            },
            _ => Reply::error(404, "Not found"),
        };
        reply.headers.extend(self.rate_headers());
        reply
    }

    fn watchlist_page(&self, _q: &HashMap<String, String>) -> Listing {
        let mut l = Listing::new(&["movies", "shows"], &[], self.declare_totals);
        for (i, at) in &self.watchlist {
            let t = &self.catalog[*i];
            l.push(
                t.kind.plural(),
                json!({
                    "id": t.tmdb,
                    "title": t.title,
                    "imdb_id": t.imdb,
                    "tvdb_id": t.tvdb,
                    "trakt_id": t.trakt,
                    "mediatype": t.kind.as_str(),
                    "release_year": t.year,
                    "watchlisted_at": ts(Some(*at)),
                }),
            );
        }
        l
    }

    fn since(q: &HashMap<String, String>) -> Option<i64> {
        q.get("since")
            .and_then(|s| Timestamp::parse(s))
            .map(Timestamp::unix)
    }

    fn ratings_page(&self, q: &HashMap<String, String>) -> Listing {
        let since = Self::since(q);
        let mut l = Listing::new(
            &["movies", "shows"],
            &["seasons", "episodes"],
            self.declare_totals,
        );
        for (i, (r, at, changed)) in &self.ratings {
            if since.is_some_and(|s| *changed < s) {
                continue;
            }
            let t = &self.catalog[*i];
            match t.kind {
                MdbKind::Movie => l.push(
                    "movies",
                    json!({"rating": r, "rated_at": ts(Some(*at)), "movie": t.object_json()}),
                ),
                MdbKind::Show => l.push(
                    "shows",
                    json!({
                        "rating": r, "rated_at": ts(Some(*at)), "show": t.object_json(), "seasons": [],
                    }),
                ),
            }
        }
        l
    }

    fn watched_page(&self, q: &HashMap<String, String>) -> Listing {
        let since = Self::since(q);
        let all_plays = q.get("plays").is_some_and(|v| v == "all");
        let mut plays: Vec<&Play> = self
            .plays
            .iter()
            .filter(|p| since.is_none_or(|s| p.recorded_at >= s))
            .collect();
        plays.sort_by_key(|p| (p.episode.is_some(), p.play_id));
        // Without `plays=all`: one row per movie or episode, with its last play.
        let rows: Vec<(Play, usize)> = if all_plays {
            plays.into_iter().map(|p| (p.clone(), 1)).collect()
        } else {
            let mut agg: BTreeMap<PlayKey, (Play, usize)> = BTreeMap::new();
            for p in plays {
                let e = agg
                    .entry((p.episode.is_some(), p.title, p.episode))
                    .or_insert_with(|| (p.clone(), 0));
                e.1 += 1;
                if p.watched_at > e.0.watched_at {
                    e.0 = p.clone();
                }
            }
            agg.into_values().collect()
        };
        let mut l = Listing::new(
            &["movies", "episodes"],
            &["shows", "seasons"],
            self.declare_totals,
        );
        for (play, n) in rows {
            let t = &self.catalog[play.title];
            let mut row = Map::new();
            row.insert("watched_at".into(), ts(Some(play.watched_at)));
            row.insert("last_watched_at".into(), ts(Some(play.watched_at)));
            row.insert("plays".into(), json!(n));
            if all_plays {
                row.insert("play_id".into(), json!(play.play_id));
            }
            match play.episode {
                None => {
                    row.insert("movie".into(), t.object_json());
                    l.push("movies", Value::Object(row));
                }
                Some((s, e)) => {
                    let mut ep =
                        json!({"season": s, "number": e, "ids": {"tvdb": t.episode_tvdb(s, e)}});
                    if self.show_inside_episode {
                        ep["show"] = t.object_json();
                    } else {
                        row.insert("show".into(), t.object_json());
                    }
                    row.insert("episode".into(), ep);
                    l.push("episodes", Value::Object(row));
                }
            }
        }
        l
    }

    fn journal_page(&self, q: &HashMap<String, String>) -> Reply {
        let limit = q
            .get("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_PAGE_LIMIT)
            .clamp(1, MAX_PAGE_LIMIT);
        let since = Self::since(q);
        let start = q
            .get("cursor")
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or_else(|| {
                self.journal
                    .iter()
                    .position(|r| {
                        since.is_none_or(|s| parse_ts(r.get("action_at")).is_some_and(|a| a >= s))
                    })
                    .unwrap_or(self.journal.len())
            })
            .min(self.journal.len());
        let end = (start + limit).min(self.journal.len());
        let has_more = end < self.journal.len();
        Reply::json(
            200,
            &json!({
                "journal": self.journal[start..end].to_vec(),
                "pagination": {"has_more": has_more, "next_cursor": has_more.then(|| end.to_string())},
                "journal_oldest_at": self.journal.first().and_then(|r| r.get("action_at")).cloned(),
            }),
        )
    }

    fn watchlist_write(&mut self, body: &Value, add: bool) -> Reply {
        self.tick();
        let mut done: BTreeMap<&str, u64> = BTreeMap::new();
        let mut existing: BTreeMap<&str, u64> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for kind in [MdbKind::Movie, MdbKind::Show] {
            let key = kind.plural();
            for it in arr(body, key) {
                let Some(i) = self.resolve_flat(it, kind) else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                let pos = self.watchlist.iter().position(|(x, _)| *x == i);
                match (add, pos) {
                    (true, None) => {
                        let now = self.now;
                        self.watchlist.push((i, now));
                        self.record("watchlist", "added", i, None, None);
                        *done.entry(key).or_default() += 1;
                    }
                    (true, Some(_)) => *existing.entry(key).or_default() += 1,
                    (false, Some(p)) => {
                        self.watchlist.remove(p);
                        self.record("watchlist", "removed", i, None, None);
                        *done.entry(key).or_default() += 1;
                    }
                    (false, None) => {}
                }
            }
        }
        let counts = |m: &BTreeMap<&str, u64>| json!({"movies": m.get("movies").copied().unwrap_or(0), "shows": m.get("shows").copied().unwrap_or(0)});
        let nf = json!({
            "movies": not_found.get("movies").cloned().unwrap_or_default(),
            "shows": not_found.get("shows").cloned().unwrap_or_default(),
        });
        let v = if add {
            json!({"added": counts(&done), "existing": counts(&existing), "not_found": nf})
        } else {
            json!({"deleted": counts(&done), "not_found": nf})
        };
        Reply::json(200, &v)
    }

    fn ratings_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let mut added: BTreeMap<&str, u64> = BTreeMap::new();
        let mut updated: BTreeMap<&str, u64> = BTreeMap::new();
        let mut existing: BTreeMap<&str, u64> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for kind in [MdbKind::Movie, MdbKind::Show] {
            let key = kind.plural();
            for it in arr(body, key) {
                let Some(i) = it.get("ids").and_then(|ids| self.resolve(ids, kind)) else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                let Some(r) = it
                    .get("rating")
                    .and_then(Value::as_u64)
                    .filter(|r| (1..=10).contains(r))
                else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                let at = parse_ts(it.get("rated_at")).unwrap_or(now);
                match self.ratings.get(&i) {
                    Some((old, _, _)) if u64::from(*old) == r => {
                        *existing.entry(key).or_default() += 1;
                    }
                    Some(_) => {
                        self.ratings.insert(i, (r as u8, at, now));
                        self.record("rated", "updated", i, None, Some(r as u8));
                        *updated.entry(key).or_default() += 1;
                    }
                    None => {
                        self.ratings.insert(i, (r as u8, at, now));
                        self.record("rated", "added", i, None, Some(r as u8));
                        *added.entry(key).or_default() += 1;
                    }
                }
            }
        }
        let counts = |m: &BTreeMap<&str, u64>| json!({"movies": m.get("movies").copied().unwrap_or(0), "shows": m.get("shows").copied().unwrap_or(0), "seasons": 0, "episodes": 0});
        Reply::json(
            200,
            &json!({
                "added": counts(&added), "updated": counts(&updated), "existing": counts(&existing),
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                    "seasons": [], "episodes": [],
                },
            }),
        )
    }

    fn ratings_remove(&mut self, body: &Value) -> Reply {
        self.tick();
        let mut removed: BTreeMap<&str, u64> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for kind in [MdbKind::Movie, MdbKind::Show] {
            let key = kind.plural();
            for it in arr(body, key) {
                let Some(i) = it.get("ids").and_then(|ids| self.resolve(ids, kind)) else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                if self.ratings.remove(&i).is_some() {
                    self.record("rated", "removed", i, None, None);
                    *removed.entry(key).or_default() += 1;
                }
            }
        }
        Reply::json(
            200,
            &json!({
                "removed": {"movies": removed.get("movies").copied().unwrap_or(0), "shows": removed.get("shows").copied().unwrap_or(0), "seasons": 0, "episodes": 0},
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                },
            }),
        )
    }

    fn watched_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let mut plays = Vec::new();
        let (mut movies, mut episodes) = (0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for it in arr(body, "movies") {
            let Some(i) = it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Movie))
            else {
                not_found.entry("movies").or_default().push(it.clone());
                continue;
            };
            let at = parse_ts(it.get("watched_at")).unwrap_or(now);
            let (id, added) = self.add_play(i, None, at);
            movies += u64::from(added);
            plays.push(json!({"play_id": id, "added": added, "mediatype": "movie", "ids": self.catalog[i].ids_json(), "watched_at": ts(Some(at))}));
        }
        for it in arr(body, "shows") {
            let Some(i) = it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Show))
            else {
                not_found.entry("shows").or_default().push(it.clone());
                continue;
            };
            let show_at = parse_ts(it.get("watched_at")).unwrap_or(now);
            let mut marks = Vec::new();
            for s in arr(it, "seasons") {
                let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                    continue;
                };
                let s_at = parse_ts(s.get("watched_at")).unwrap_or(show_at);
                for e in arr(s, "episodes") {
                    if let Some(en) = e.get("number").and_then(Value::as_u64) {
                        marks.push((
                            sn as u32,
                            en as u32,
                            parse_ts(e.get("watched_at")).unwrap_or(s_at),
                        ));
                    }
                }
            }
            for (s, e, at) in marks {
                if !self.catalog[i].has_episode(s, e) {
                    not_found
                        .entry("episodes")
                        .or_default()
                        .push(json!({"season": s, "number": e}));
                    continue;
                }
                let (id, added) = self.add_play(i, Some((s, e)), at);
                episodes += u64::from(added);
                plays.push(json!({"play_id": id, "added": added, "mediatype": "episode", "season": s, "episode": e, "watched_at": ts(Some(at))}));
            }
        }
        Reply::json(
            200,
            &json!({
                "added": {"movies": movies, "episodes": episodes},
                "plays": plays,
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                    "episodes": not_found.get("episodes").cloned().unwrap_or_default(),
                },
            }),
        )
    }

    fn drop_plays(&mut self, keep: impl Fn(&Play) -> bool) -> u64 {
        let before = self.plays.len();
        let gone: Vec<Play> = self.plays.iter().filter(|p| !keep(p)).cloned().collect();
        self.plays.retain(|p| keep(p));
        for p in &gone {
            self.record("watched", "removed", p.title, p.episode, None);
        }
        (before - self.plays.len()) as u64
    }

    fn watched_remove(&mut self, body: &Value) -> Reply {
        self.tick();
        let (mut movies, mut episodes) = (0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for it in arr(body, "movies") {
            match it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Movie))
            {
                Some(i) => movies += self.drop_plays(|p| !(p.title == i && p.episode.is_none())),
                None => not_found.entry("movies").or_default().push(it.clone()),
            }
        }
        for it in arr(body, "shows") {
            let Some(i) = it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Show))
            else {
                not_found.entry("shows").or_default().push(it.clone());
                continue;
            };
            let seasons = arr(it, "seasons");
            if seasons.is_empty() {
                episodes += self.drop_plays(|p| p.title != i);
                continue;
            }
            for s in seasons {
                let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                    continue;
                };
                let eps: Vec<u32> = arr(s, "episodes")
                    .iter()
                    .filter_map(|e| e.get("number").and_then(Value::as_u64))
                    .map(|e| e as u32)
                    .collect();
                episodes += self.drop_plays(|p| {
                    !(p.title == i
                        && p.episode.is_some_and(|(ps, pe)| {
                            ps == sn as u32 && (eps.is_empty() || eps.contains(&pe))
                        }))
                });
            }
        }
        Reply::json(
            200,
            &json!({
                "removed": {"movies": movies, "episodes": episodes},
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                },
            }),
        )
    }

    fn plays_remove(&mut self, body: &Value) -> Reply {
        self.tick();
        let ids: Vec<u64> = arr(body, "play_ids")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let mut missing = Vec::new();
        let mut removed = 0u64;
        for id in ids {
            if self.plays.iter().any(|p| p.play_id == id) {
                removed += self.drop_plays(|p| p.play_id != id);
            } else {
                missing.push(id);
            }
        }
        Reply::json(
            200,
            &json!({"removed": {"plays": removed}, "not_found": {"play_ids": missing}}),
        )
    }
}

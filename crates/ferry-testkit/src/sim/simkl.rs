//! A stateful simulator of SIMKL's API (`https://api.simkl.com`).
//!
//! One [`MockServer`] with a custom [`Respond`] over shared in-memory state, so writes
//! change later reads. What it models, after SIMKL's documentation (api.simkl.org):
//!
//! - **Auth**: every request carries the app's `client_id` (query parameter, or the
//!   `simkl-api-key` header); user endpoints (`/sync/*`, `/users/*`) also need
//!   `Authorization: Bearer <token>`. Otherwise `401` with SIMKL's error body
//!   (`client_id_failed`, `user_token_failed`). `/oauth/pin` runs the PIN flow.
//! - **The library**: every title the user tracks sits in exactly one status bucket
//!   (`watching`, `plantowatch`, `hold`, `dropped`, `completed`; movies never in
//!   `watching`/`hold`). The watchlist is `plantowatch`. `POST /sync/add-to-list` *moves*
//!   a title between buckets; `POST /sync/history/remove` with a bare title removes it from
//!   the whole library (its watches, its bucket and its rating); with seasons/episodes it
//!   only unmarks those episodes. Rating a title that is not in the library files it
//!   (movies → `completed`, shows → `watching`). Without rewatches a title holds one watch
//!   (movies: `last_watched_at`; episodes: one `watched_at` each).
//! - **Reads**: `GET /sync/all-items[/{type}[/{status}]]` with `date_from` (items changed
//!   since, inclusive), `extended=full|ids_only|simkl_ids_only`, `episode_watched_at=yes`,
//!   `include_all_episodes=yes` (without it, completed and dropped shows carry no
//!   `seasons[]`, only `watched_episodes_count`, as third-party clients observed on SIMKL);
//!   `GET /sync/ratings/{type}[/{ratings}]`. An empty result is the literal JSON `null`.
//! - **Activities**: `GET /sync/activities` with per-bucket stamps (`null` until the first
//!   event). The server clock starts at [`START_TIME`] and advances one second on every
//!   write request, so stamps move strictly forward on every change.
//! - **Writes** answer `201` with SIMKL's `added`/`deleted`/`not_found` bodies (or, with
//!   [`SimklSim::set_empty_write_bodies`], an empty body).
//!
//! Faults: the shared [`FaultRule`]s (`Status`, `RateLimited`, `Unauthorized`,
//! `Malformed`, and `Truncate`, which cuts a JSON body in half), plus an empty `200` body,
//! removals that answer success but change nothing, added latency, and an optional
//! server-side rate limit (`429` + `Retry-After`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferry_core::{IdKind, Item, MediaType, Timestamp};
use serde_json::{Map, Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::{Fault, FaultControl, FaultRule, Knobs, ListFault};

/// The app `client_id` the simulator accepts unless told otherwise.
pub const DEFAULT_CLIENT_ID: &str = "simkl-sim-client-0123456789abcdef";
/// The user access token the simulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "simkl-sim-token-fedcba9876543210";
/// The server clock at start (2025-06-01T00:00:00Z).
pub const START_TIME: i64 = 1_748_736_000;
/// Sample movie `n` has SIMKL id `MOVIE_ID_BASE + n`.
pub const MOVIE_ID_BASE: u64 = 100_000;
/// Sample show `n` has SIMKL id `SHOW_ID_BASE + n`.
pub const SHOW_ID_BASE: u64 = 200_000;
/// Sample anime `n` has SIMKL id `ANIME_ID_BASE + n`.
pub const ANIME_ID_BASE: u64 = 300_000;

/// SIMKL's three catalogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimklType {
    Movies,
    Shows,
    Anime,
}

impl SimklType {
    pub const ALL: [SimklType; 3] = [SimklType::Movies, SimklType::Shows, SimklType::Anime];

    /// The path segment and response key: `movies`, `shows`, `anime`.
    pub fn as_str(self) -> &'static str {
        match self {
            SimklType::Movies => "movies",
            SimklType::Shows => "shows",
            SimklType::Anime => "anime",
        }
    }

    /// The block name in `/sync/activities`.
    fn activity_key(self) -> &'static str {
        match self {
            SimklType::Movies => "movies",
            SimklType::Shows => "tv_shows",
            SimklType::Anime => "anime",
        }
    }

    /// The key of the title object in a row: `movie` or `show` (anime rows use `show`).
    fn item_key(self) -> &'static str {
        match self {
            SimklType::Movies => "movie",
            _ => "show",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "movies" | "movie" => Some(SimklType::Movies),
            "shows" | "show" | "tv" => Some(SimklType::Shows),
            "anime" => Some(SimklType::Anime),
            _ => None,
        }
    }

    fn statuses(self) -> &'static [ListStatus] {
        match self {
            SimklType::Movies => &[
                ListStatus::PlanToWatch,
                ListStatus::Completed,
                ListStatus::Dropped,
            ],
            _ => &ListStatus::ALL,
        }
    }
}

/// The bucket a library title sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListStatus {
    Watching,
    PlanToWatch,
    Hold,
    Dropped,
    Completed,
}

impl ListStatus {
    pub const ALL: [ListStatus; 5] = [
        ListStatus::Watching,
        ListStatus::PlanToWatch,
        ListStatus::Hold,
        ListStatus::Dropped,
        ListStatus::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ListStatus::Watching => "watching",
            ListStatus::PlanToWatch => "plantowatch",
            ListStatus::Hold => "hold",
            ListStatus::Dropped => "dropped",
            ListStatus::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ListStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One catalog title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimklTitle {
    pub simkl_id: u64,
    pub kind: SimklType,
    pub title: String,
    pub year: Option<u16>,
    /// External ids as SIMKL prints them (`imdb`, `tmdb`, `tvdb`, `slug`, `mal`, ...).
    pub ids: BTreeMap<String, String>,
    /// Episodes per season, season 1 first (shows and anime).
    pub seasons: Vec<u32>,
}

impl SimklTitle {
    fn has_episode(&self, s: u32, e: u32) -> bool {
        s >= 1 && e >= 1 && self.seasons.get(s as usize - 1).is_some_and(|n| e <= *n)
    }

    fn total_episodes(&self) -> usize {
        self.seasons.iter().map(|n| *n as usize).sum()
    }

    fn all_episodes(&self) -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        for (i, n) in self.seasons.iter().enumerate() {
            for e in 1..=*n {
                v.push((i as u32 + 1, e));
            }
        }
        v
    }
}

/// The user's state for one title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryEntry {
    pub status: ListStatus,
    pub added_at: i64,
    /// Server time of the last change (what `date_from` filters on).
    pub updated_at: i64,
    pub last_watched_at: Option<i64>,
    pub rating: Option<u8>,
    pub rated_at: Option<i64>,
    /// Watched episodes: `(season, episode) → watched_at`.
    pub episodes: BTreeMap<(u32, u32), i64>,
}

impl LibraryEntry {
    fn new(status: ListStatus, now: i64) -> Self {
        LibraryEntry {
            status,
            added_at: now,
            updated_at: now,
            last_watched_at: None,
            rating: None,
            rated_at: None,
            episodes: BTreeMap::new(),
        }
    }
}

/// A server-side rate limit: at most `gets` GETs and `posts` other requests per `window`.
#[derive(Debug, Clone)]
struct SimRateLimit {
    gets: u32,
    posts: u32,
    window: Duration,
    retry_after_secs: u64,
    started: Instant,
    seen_gets: u32,
    seen_posts: u32,
}

/// Faults the shared [`Fault`] enum does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// `200` with an empty body.
    EmptyBody,
    /// The first row of a list answer loses its title's `ids`.
    BadRow,
}

#[derive(Debug, Clone)]
struct ExtraRule {
    extra: Extra,
    prefix: String,
    times: u32,
}

#[derive(Debug, Clone)]
struct Pin {
    user_code: String,
    approved: bool,
}

#[derive(Debug)]
struct SimklState {
    client_id: String,
    token: String,
    catalog: Vec<SimklTitle>,
    by_id: HashMap<u64, usize>,
    library: BTreeMap<u64, LibraryEntry>,
    /// `(block, field) → stamp`; block `""` is the top-level `all`.
    stamps: BTreeMap<(&'static str, &'static str), i64>,
    now: i64,
    knobs: Knobs,
    extra: Vec<ExtraRule>,
    ignore_removals: u32,
    empty_write_bodies: bool,
    limit: Option<SimRateLimit>,
    pins: Vec<Pin>,
    /// Seconds the PIN flow asks clients to wait between polls (SIMKL: 5).
    pin_interval: u64,
    missing_app_params: u64,
    /// List reads (`/sync/all-items…`, `/sync/ratings…`) without `date_from`.
    full_list_reads: u64,
    /// Leave `seasons[]` out of completed and dropped shows even with
    /// `include_all_episodes=yes`.
    ignore_include_all_episodes: bool,
    /// `date_from` compares watch and rating dates instead of the time of the change.
    date_from_on_event_dates: bool,
}

fn lock(m: &Mutex<SimklState>) -> MutexGuard<'_, SimklState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds a [`SimklSim`] with a chosen catalog.
#[derive(Debug, Clone)]
pub struct SimklSimBuilder {
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    anime: u32,
    client_id: String,
    token: String,
}

impl Default for SimklSimBuilder {
    fn default() -> Self {
        SimklSimBuilder {
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 4,
            seasons: 2,
            episodes: 5,
            anime: 2,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            token: DEFAULT_TOKEN.to_owned(),
        }
    }
}

impl SimklSimBuilder {
    /// Sample movies `0..n` in the catalog (default [`SAMPLE_LIBRARY_SIZE`]).
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

    /// Sample anime `0..n` (one season of 12 episodes each).
    pub fn anime(mut self, n: u32) -> Self {
        self.anime = n;
        self
    }

    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    pub async fn start(self) -> SimklSim {
        let mut catalog = Vec::new();
        for n in 0..self.movies {
            catalog.push(movie_title(n));
        }
        for n in 0..self.shows {
            catalog.push(show_title(n, self.seasons, self.episodes));
        }
        for n in 0..self.anime {
            catalog.push(anime_title(n));
        }
        let by_id = catalog
            .iter()
            .enumerate()
            .map(|(i, t)| (t.simkl_id, i))
            .collect();
        let state = Arc::new(Mutex::new(SimklState {
            client_id: self.client_id,
            token: self.token,
            catalog,
            by_id,
            library: BTreeMap::new(),
            stamps: BTreeMap::new(),
            now: START_TIME,
            knobs: Knobs::default(),
            extra: Vec::new(),
            ignore_removals: 0,
            empty_write_bodies: false,
            limit: None,
            pins: Vec::new(),
            pin_interval: 5,
            missing_app_params: 0,
            full_list_reads: 0,
            ignore_include_all_episodes: false,
            date_from_on_event_dates: false,
        }));
        let server = super::server().await;
        Mock::given(any())
            .respond_with(SimklRouter(state.clone()))
            .mount(&server)
            .await;
        SimklSim {
            server: Arc::new(server),
            state,
        }
    }
}

fn ids_of(item: &Item, kinds: &[(IdKind, &str)]) -> BTreeMap<String, String> {
    kinds
        .iter()
        .filter_map(|(k, name)| item.ids.get(*k).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect()
}

fn movie_title(n: u32) -> SimklTitle {
    let m = samples::movie(n);
    SimklTitle {
        simkl_id: MOVIE_ID_BASE + u64::from(n),
        kind: SimklType::Movies,
        title: m.title.clone().unwrap_or_default(),
        year: m.year,
        ids: ids_of(
            &m,
            &[
                (IdKind::Imdb, "imdb"),
                (IdKind::Tmdb, "tmdb"),
                (IdKind::Slug, "slug"),
            ],
        ),
        seasons: Vec::new(),
    }
}

fn show_title(n: u32, seasons: u32, episodes: u32) -> SimklTitle {
    let s = samples::show(n);
    let mut ids = ids_of(
        &s,
        &[
            (IdKind::Imdb, "imdb"),
            (IdKind::Tmdb, "tmdb"),
            (IdKind::Tvdb, "tvdb"),
        ],
    );
    ids.insert("slug".into(), format!("sample-show-{n}"));
    SimklTitle {
        simkl_id: SHOW_ID_BASE + u64::from(n),
        kind: SimklType::Shows,
        title: s.title.clone().unwrap_or_default(),
        year: s.year,
        ids,
        seasons: vec![episodes; seasons as usize],
    }
}

/// Sample anime `n`: only anime ids (`mal`, `anilist`), as SIMKL prints them.
pub fn anime_item(n: u32) -> Item {
    let ids = ferry_core::Ids::new()
        .with(IdKind::Mal, &(52_000 + n).to_string())
        .with(IdKind::Anilist, &(154_000 + n).to_string())
        .with(IdKind::Simkl, &(ANIME_ID_BASE + u64::from(n)).to_string());
    Item::show(format!("Sample Anime {n}"), 2020 + (n % 5) as u16, ids)
}

fn anime_title(n: u32) -> SimklTitle {
    let a = anime_item(n);
    let mut ids = ids_of(&a, &[(IdKind::Mal, "mal"), (IdKind::Anilist, "anilist")]);
    ids.insert("slug".into(), format!("sample-anime-{n}"));
    SimklTitle {
        simkl_id: ANIME_ID_BASE + u64::from(n),
        kind: SimklType::Anime,
        title: a.title.clone().unwrap_or_default(),
        year: a.year,
        ids,
        seasons: vec![12],
    }
}

/// A running SIMKL simulator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimklSim {
    server: Arc<MockServer>,
    state: Arc<Mutex<SimklState>>,
}

impl SimklSim {
    /// A simulator whose catalog holds [`SAMPLE_LIBRARY_SIZE`] sample movies, four sample
    /// shows (2 × 5 episodes) and two anime, with an empty user library.
    pub async fn start() -> SimklSim {
        SimklSimBuilder::default().start().await
    }

    pub fn builder() -> SimklSimBuilder {
        SimklSimBuilder::default()
    }

    /// The base URL (what `https://api.simkl.com` would be).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn st(&self) -> MutexGuard<'_, SimklState> {
        lock(&self.state)
    }

    pub fn client_id(&self) -> String {
        self.st().client_id.clone()
    }

    pub fn token(&self) -> String {
        self.st().token.clone()
    }

    /// Replaces the accepted token: requests with the old one get `401`.
    pub fn set_token(&self, token: impl Into<String>) {
        self.st().token = token.into();
    }

    /// Expires the current token (SIMKL tokens do not refresh: the user must sign in again).
    pub fn expire_token(&self) {
        let mut st = self.st();
        st.token = format!("{}-expired-{}", st.token, st.now);
    }

    /// The server clock (epoch seconds).
    pub fn now(&self) -> i64 {
        self.st().now
    }

    pub fn advance(&self, secs: i64) {
        self.st().now += secs;
    }

    // -- catalog and state ----------------------------------------------------------------

    /// The catalog title one of `item`'s ids resolves to.
    pub fn title_of(&self, item: &Item) -> Option<SimklTitle> {
        let st = self.st();
        st.resolve_item(item).map(|i| st.catalog[i].clone())
    }

    /// Adds a title to the catalog (for tests that need one outside the samples).
    pub fn add_catalog_title(&self, title: SimklTitle) {
        let mut st = self.st();
        let i = st.catalog.len();
        st.by_id.insert(title.simkl_id, i);
        st.catalog.push(title);
    }

    /// The user's state for the title `item` resolves to.
    pub fn entry(&self, item: &Item) -> Option<LibraryEntry> {
        let st = self.st();
        let i = st.resolve_item(item)?;
        st.library.get(&st.catalog[i].simkl_id).cloned()
    }

    /// The whole library, by SIMKL id.
    pub fn library(&self) -> BTreeMap<u64, LibraryEntry> {
        self.st().library.clone()
    }

    /// SIMKL ids in the `plantowatch` bucket.
    pub fn watchlist(&self) -> Vec<u64> {
        self.st()
            .library
            .iter()
            .filter(|(_, e)| e.status == ListStatus::PlanToWatch)
            .map(|(id, _)| *id)
            .collect()
    }

    /// What `GET /sync/activities` would answer now.
    pub fn activities(&self) -> Value {
        self.st().activities_json()
    }

    // -- seeding --------------------------------------------------------------------------

    fn seed(&self, item: &Item, f: impl FnOnce(&SimklTitle, &mut LibraryEntry, i64)) -> bool {
        let mut st = self.st();
        let Some(i) = st.resolve_item(item) else {
            return false;
        };
        let now = st.tick();
        let title = st.catalog[i].clone();
        let old = st.library.get(&title.simkl_id).map(|e| e.status);
        let default_status = if title.kind == SimklType::Movies {
            ListStatus::Completed
        } else {
            ListStatus::Watching
        };
        let entry = st
            .library
            .entry(title.simkl_id)
            .or_insert_with(|| LibraryEntry::new(default_status, now));
        let rating_before = entry.rating;
        f(&title, entry, now);
        entry.updated_at = now;
        let (new, rating_after) = (entry.status, entry.rating);
        st.touch_status(title.kind, old, Some(new));
        if rating_before != rating_after {
            st.touch(title.kind, "rated_at");
        }
        true
    }

    /// Puts a catalog title in `plantowatch`. `false` if no catalog title matches.
    pub fn seed_watchlist(&self, item: &Item) -> bool {
        self.seed_status(item, ListStatus::PlanToWatch)
    }

    /// Puts a catalog title in a bucket.
    pub fn seed_status(&self, item: &Item, status: ListStatus) -> bool {
        self.seed(item, |_, e, _| e.status = status)
    }

    /// Rates a title (filing it like SIMKL does when it is not in the library yet).
    pub fn seed_rating(&self, item: &Item, rating: u8) -> bool {
        self.seed(item, |_, e, now| {
            e.rating = Some(rating);
            e.rated_at = Some(now);
        })
    }

    /// Marks a movie watched at `at` (status `completed`).
    pub fn seed_play(&self, item: &Item, at: Timestamp) -> bool {
        self.seed(item, |_, e, _| {
            e.status = ListStatus::Completed;
            e.last_watched_at = Some(at.unix());
        })
    }

    /// Marks an episode of a show (or anime) watched at `at`.
    pub fn seed_episode_play(&self, show: &Item, season: u32, episode: u32, at: Timestamp) -> bool {
        self.seed(show, |t, e, _| {
            if t.has_episode(season, episode) {
                e.episodes.insert((season, episode), at.unix());
                refresh_show(t, e);
            }
        })
    }

    /// Removes a title from the library, as the user clicking "Remove from list" would.
    pub fn remove_from_library(&self, item: &Item) -> bool {
        let mut st = self.st();
        let Some(i) = st.resolve_item(item) else {
            return false;
        };
        let t = st.catalog[i].clone();
        st.tick();
        match st.library.remove(&t.simkl_id) {
            Some(e) => {
                st.touch(t.kind, e.status.as_str());
                st.touch(t.kind, "removed_from_list");
                true
            }
            None => false,
        }
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

    /// The next request under `path_prefix` has its JSON body cut in half.
    pub fn truncate_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Truncate).on(path_prefix));
    }

    /// The next `n` requests under `path_prefix` answer `200` with an empty body.
    pub fn empty_body_next(&self, path_prefix: &str, n: u32) {
        self.st().extra.push(ExtraRule {
            extra: Extra::EmptyBody,
            prefix: path_prefix.to_owned(),
            times: n,
        });
    }

    /// The next list answer under `path_prefix` carries one row SIMKL would never send: its
    /// title has no `ids`.
    pub fn bad_row_next(&self, path_prefix: &str) {
        self.st().extra.push(ExtraRule {
            extra: Extra::BadRow,
            prefix: path_prefix.to_owned(),
            times: 1,
        });
    }

    /// The next `n` `POST /sync/history/remove` answer success but change nothing.
    pub fn ignore_next_removals(&self, n: u32) {
        self.st().ignore_removals = n;
    }

    /// Completed and dropped shows come back without `seasons[]` even when the read asks
    /// for `include_all_episodes=yes` (only `watched_episodes_count` tells that episodes
    /// were watched): what SIMKL answers to a client that does not send the flag.
    pub fn ignore_include_all_episodes(&self, on: bool) {
        self.st().ignore_include_all_episodes = on;
    }

    /// `date_from` filters on the event's own date — a title's newest watch
    /// (`/sync/all-items`, titles without a watch by their last change) and a rating's
    /// `rated_at` (`/sync/ratings`) — rather than on when it changed, as one third-party
    /// client reports for SIMKL's history. A back-dated write then never shows in a delta.
    pub fn date_from_on_event_dates(&self, on: bool) {
        self.st().date_from_on_event_dates = on;
    }

    /// Writes answer `201` with an empty body (as SIMKL sometimes does).
    pub fn set_empty_write_bodies(&self, on: bool) {
        self.st().empty_write_bodies = on;
    }

    /// Delays every answer.
    pub fn set_latency(&self, d: Duration) {
        self.st().knobs.set_latency(d);
    }

    /// Enforces a server-side limit: at most `gets` GETs and `posts` other requests per
    /// `window` (real time); the excess gets `429` with `Retry-After: retry_after_secs`.
    pub fn enforce_rate_limit(
        &self,
        gets: u32,
        posts: u32,
        window: Duration,
        retry_after_secs: u64,
    ) {
        self.st().limit = Some(SimRateLimit {
            gets,
            posts,
            window,
            retry_after_secs,
            started: Instant::now(),
            seen_gets: 0,
            seen_posts: 0,
        });
    }

    pub fn clear_faults(&self) {
        let mut st = self.st();
        st.knobs.clear_faults();
        st.extra.clear();
        st.ignore_removals = 0;
        st.limit = None;
    }

    // -- PIN flow -------------------------------------------------------------------------

    /// The poll interval new PINs ask for (SIMKL says 5 s; tests shorten it).
    pub fn set_pin_interval(&self, secs: u64) {
        self.st().pin_interval = secs;
    }

    /// User codes handed out by `GET /oauth/pin`, oldest first.
    pub fn pin_codes(&self) -> Vec<String> {
        self.st().pins.iter().map(|p| p.user_code.clone()).collect()
    }

    /// The user approves a PIN: the next poll for it gets the access token.
    pub fn approve_pin(&self, user_code: &str) -> bool {
        let mut st = self.st();
        match st.pins.iter_mut().find(|p| p.user_code == user_code) {
            Some(p) => {
                p.approved = true;
                true
            }
            None => false,
        }
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

    /// Every `METHOD /path` seen, with counts.
    pub fn routes(&self) -> BTreeMap<String, u64> {
        self.st().knobs.routes()
    }

    /// Requests that lacked `client_id`, `app-name` or `app-version` in the query.
    pub fn requests_without_app_params(&self) -> u64 {
        self.st().missing_app_params
    }

    /// List reads (`GET /sync/all-items…`, `GET /sync/ratings…`) without `date_from`:
    /// full reads, one per catalog.
    pub fn full_list_reads(&self) -> u64 {
        self.st().full_list_reads
    }

    pub fn reset_counts(&self) {
        let mut st = self.st();
        st.knobs.reset_counts();
        st.missing_app_params = 0;
        st.full_list_reads = 0;
    }
}

// ---------------------------------------------------------------------------------------
// Replies.

enum Body {
    Json(Value),
    Empty,
}

struct Reply {
    status: u16,
    body: Body,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: Value) -> Self {
        Reply {
            status,
            body: Body::Json(v),
            headers: Vec::new(),
        }
    }

    fn error(status: u16, error: &str, message: &str) -> Self {
        Reply::json(
            status,
            json!({"error": error, "code": status, "message": message}),
        )
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::Empty => Vec::new(),
        }
    }
}

fn template(status: u16, body: Vec<u8>, headers: &[(&'static str, String)]) -> ResponseTemplate {
    let mut t = ResponseTemplate::new(status);
    if !body.is_empty() {
        t = t.set_body_raw(body, "application/json");
    }
    for (k, v) in headers {
        t = t.insert_header(*k, v.as_str());
    }
    t
}

impl FaultControl for SimklSim {
    fn inject(&self, rule: FaultRule) {
        SimklSim::inject(self, rule);
    }

    fn clear_faults(&self) {
        SimklSim::clear_faults(self);
    }

    fn faults_fired(&self) -> u64 {
        self.st().knobs.fired()
    }

    /// Each feature's read is one document per catalog (movies, shows, anime): the
    /// second request of a read is the shows catalog.
    fn list_path(&self, feature: ferry_core::Feature) -> Option<String> {
        use ferry_core::Feature as F;
        match feature {
            F::Watchlist | F::History => Some("/sync/all-items/".into()),
            F::Ratings => Some("/sync/ratings/".into()),
            F::Progress | F::Playlists => None,
        }
    }

    fn rate_limit_gap(&self) -> Option<Duration> {
        self.st().knobs.rate_limit_gap()
    }
}

struct SimklRouter(Arc<Mutex<SimklState>>);

impl Respond for SimklRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        let extra = st.take_extra(&seen.path);
        st.note_app_params(req);
        if let Some(r) = st.over_limit(&seen.method) {
            return template(r.status, r.bytes(), &r.headers);
        }
        seen.answer_list(|method, path, fault| {
            let mut r = st.route(req, method, path);
            if fault.truncates() {
                // A list read is one document, not a page: what a truncated answer means
                // for it is a body cut off mid-way.
                let mut b = r.bytes();
                b.truncate(b.len() / 2);
                return template(r.status, b, &r.headers);
            }
            if let Body::Json(v) = &mut r.body {
                shape_list(v, fault);
            }
            match extra {
                Some(Extra::EmptyBody) => template(200, Vec::new(), &[]),
                Some(Extra::BadRow) => {
                    if let Body::Json(Value::Object(m)) = &mut r.body
                        && let Some(row) = m
                            .values_mut()
                            .filter_map(Value::as_array_mut)
                            .find_map(|rows| rows.first_mut())
                    {
                        for k in ["movie", "show"] {
                            if let Some(t) = row.get_mut(k).and_then(Value::as_object_mut) {
                                t.remove("ids");
                            }
                        }
                    }
                    template(r.status, r.bytes(), &r.headers)
                }
                None => template(r.status, r.bytes(), &r.headers),
            }
        })
    }
}

/// Applies a list fault to a list answer's rows (the first list in the answer). SIMKL
/// declares no totals, so a missing or invalid total changes nothing on the wire.
fn shape_list(v: &mut Value, fault: &ListFault) {
    let rows = match v {
        Value::Array(rows) => rows,
        Value::Object(m) => match m.values_mut().find_map(Value::as_array_mut) {
            Some(rows) => rows,
            None => return,
        },
        _ => return,
    };
    let n = rows.len();
    let (shaped, _) = fault.shape(std::mem::take(rows), n);
    *rows = shaped;
}

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(Timestamp::from_unix(t).to_rfc3339()))
}

fn parse_ts(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str)
        .and_then(Timestamp::parse)
        .map(Timestamp::unix)
}

/// Recomputes a show's status and last watch from its watched episodes.
fn refresh_show(t: &SimklTitle, e: &mut LibraryEntry) {
    e.last_watched_at = e.episodes.values().copied().max();
    if !e.episodes.is_empty() {
        e.status = if e.episodes.len() >= t.total_episodes() {
            ListStatus::Completed
        } else {
            ListStatus::Watching
        };
    } else if e.status == ListStatus::Completed {
        e.status = ListStatus::Watching;
    }
}

/// The `/sync/all-items` flags that shape a row.
#[derive(Debug, Clone, Copy, Default)]
struct RowFlags {
    /// `episode_watched_at=yes`: each episode carries its `watched_at`.
    episode_watched_at: bool,
    /// `include_all_episodes=yes`: completed and dropped shows list their episodes too.
    include_all_episodes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extended {
    Full,
    IdsOnly,
    SimklIdsOnly,
}

impl SimklState {
    fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    fn touch(&mut self, kind: SimklType, field: &'static str) {
        let now = self.now;
        self.stamps.insert((kind.activity_key(), field), now);
        self.stamps.insert((kind.activity_key(), "all"), now);
        self.stamps.insert(("", "all"), now);
    }

    fn touch_status(&mut self, kind: SimklType, old: Option<ListStatus>, new: Option<ListStatus>) {
        if old == new {
            // Episode changes inside one bucket still move that bucket.
            if let Some(s) = new {
                self.touch(kind, s.as_str());
            }
            return;
        }
        for s in [old, new].into_iter().flatten() {
            self.touch(kind, s.as_str());
        }
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

    fn note_app_params(&mut self, req: &Request) {
        let q = query(req);
        if !["client_id", "app-name", "app-version"]
            .iter()
            .all(|k| q.contains_key(*k))
        {
            self.missing_app_params += 1;
        }
    }

    fn over_limit(&mut self, method: &str) -> Option<Reply> {
        let l = self.limit.as_mut()?;
        if l.started.elapsed() >= l.window {
            l.started = Instant::now();
            l.seen_gets = 0;
            l.seen_posts = 0;
        }
        let over = if method == "GET" {
            l.seen_gets += 1;
            l.seen_gets > l.gets
        } else {
            l.seen_posts += 1;
            l.seen_posts > l.posts
        };
        over.then(|| {
            let mut r = Reply::error(429, "too_many_requests", "slow down");
            r.headers
                .push(("Retry-After", l.retry_after_secs.to_string()));
            r
        })
    }

    fn resolve_item(&self, item: &Item) -> Option<usize> {
        let mut ids = Map::new();
        let source = if item.kind == MediaType::Episode {
            &item.show_ids
        } else {
            &item.ids
        };
        for (k, v) in source.iter() {
            ids.insert(k.as_str().to_owned(), json!(v));
        }
        let kinds: &[SimklType] = match item.kind {
            MediaType::Movie => &[SimklType::Movies],
            _ => &[SimklType::Shows, SimklType::Anime],
        };
        self.resolve(&Value::Object(ids), kinds)
    }

    /// The catalog index an `ids` object resolves to.
    fn resolve(&self, ids: &Value, kinds: &[SimklType]) -> Option<usize> {
        let ids = ids.as_object()?;
        if let Some(id) = ids.get("simkl").and_then(id_str)
            && let Ok(n) = id.parse::<u64>()
            && let Some(i) = self.by_id.get(&n)
            && kinds.contains(&self.catalog[*i].kind)
        {
            return Some(*i);
        }
        for (k, v) in ids {
            if k == "simkl" || k == "slug" {
                continue;
            }
            let Some(v) = id_str(v) else { continue };
            if let Some(i) = self.catalog.iter().position(|t| {
                kinds.contains(&t.kind) && t.ids.get(k).is_some_and(|x| x.to_ascii_lowercase() == v)
            }) {
                return Some(i);
            }
        }
        None
    }

    fn title_json(&self, t: &SimklTitle, ext: Extended) -> Value {
        let mut ids = Map::new();
        ids.insert("simkl".into(), json!(t.simkl_id));
        if ext != Extended::SimklIdsOnly {
            for (k, v) in &t.ids {
                ids.insert(k.clone(), json!(v));
            }
        }
        let mut m = Map::new();
        if ext == Extended::Full {
            m.insert("title".into(), json!(t.title));
            if let Some(y) = t.year {
                m.insert("year".into(), json!(y));
            }
        }
        m.insert("ids".into(), Value::Object(ids));
        Value::Object(m)
    }

    fn row_json(&self, t: &SimklTitle, e: &LibraryEntry, ext: Extended, flags: RowFlags) -> Value {
        let mut m = Map::new();
        if ext == Extended::Full {
            m.insert("added_to_watchlist_at".into(), ts(Some(e.added_at)));
            m.insert("last_watched_at".into(), ts(e.last_watched_at));
            m.insert("user_rated_at".into(), ts(e.rated_at));
            m.insert(
                "user_rating".into(),
                e.rating.map_or(Value::Null, |r| json!(r)),
            );
        }
        m.insert("status".into(), json!(e.status.as_str()));
        m.insert(t.kind.item_key().into(), self.title_json(t, ext));
        if t.kind != SimklType::Movies {
            if t.kind == SimklType::Anime {
                m.insert("anime_type".into(), json!("tv"));
            }
            if ext == Extended::Full {
                let last = e
                    .episodes
                    .iter()
                    .max_by_key(|(_, at)| **at)
                    .map(|((s, ep), _)| format!("S{s:02}E{ep:02}"));
                m.insert(
                    "last_watched".into(),
                    last.map_or(Value::Null, |l| json!(l)),
                );
                m.insert("watched_episodes_count".into(), json!(e.episodes.len()));
                m.insert("total_episodes_count".into(), json!(t.total_episodes()));
                m.insert("not_aired_episodes_count".into(), json!(0));
                // SIMKL lists the episodes of a finished (completed or dropped) show only
                // when asked with `include_all_episodes=yes`.
                let finished = matches!(e.status, ListStatus::Completed | ListStatus::Dropped);
                let listed = !finished || flags.include_all_episodes;
                if listed && !e.episodes.is_empty() {
                    let mut seasons: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
                    for ((s, ep), at) in &e.episodes {
                        let mut em = Map::new();
                        em.insert("number".into(), json!(ep));
                        if flags.episode_watched_at {
                            em.insert("watched_at".into(), ts(Some(*at)));
                        }
                        em.insert("tvdb".into(), json!({"season": s, "episode": ep}));
                        seasons.entry(*s).or_default().push(Value::Object(em));
                    }
                    let seasons: Vec<Value> = seasons
                        .into_iter()
                        .map(|(n, eps)| json!({"number": n, "episodes": eps}))
                        .collect();
                    m.insert("seasons".into(), Value::Array(seasons));
                }
            }
        }
        Value::Object(m)
    }

    fn activities_json(&self) -> Value {
        let s = |block: &'static str, field: &'static str| {
            ts(self.stamps.get(&(block, field)).copied())
        };
        let block = |kind: SimklType| {
            let b = kind.activity_key();
            let mut m = Map::new();
            m.insert("all".into(), s(b, "all"));
            m.insert("rated_at".into(), s(b, "rated_at"));
            m.insert("playback".into(), s(b, "playback"));
            for st in kind.statuses() {
                m.insert(st.as_str().into(), s(b, st.as_str()));
            }
            m.insert("removed_from_list".into(), s(b, "removed_from_list"));
            Value::Object(m)
        };
        json!({
            "all": s("", "all"),
            "settings": {"all": s("settings", "all")},
            "tv_shows": block(SimklType::Shows),
            "anime": block(SimklType::Anime),
            "movies": block(SimklType::Movies),
        })
    }

    // -- routing --------------------------------------------------------------------------

    fn route(&mut self, req: &Request, method: &str, path: &str) -> Reply {
        let q = query(req);
        let cid = q
            .get("client_id")
            .map(String::as_str)
            .or_else(|| header(req, "simkl-api-key"));
        if cid != Some(self.client_id.as_str()) {
            return Reply::error(401, "client_id_failed", "client_id missing or unknown");
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segs.as_slice()) {
            ("GET", ["oauth", "pin"]) => return self.pin_new(),
            ("GET", ["oauth", "pin", code]) => return self.pin_poll(code),
            _ => {}
        }
        let bearer = header(req, "authorization").and_then(|h| h.strip_prefix("Bearer "));
        if bearer != Some(self.token.as_str()) {
            return Reply::error(
                401,
                "user_token_failed",
                "the access token is missing or revoked",
            );
        }
        let body = || -> Option<Value> {
            serde_json::from_slice::<Value>(&req.body)
                .ok()
                .filter(Value::is_object)
        };
        let bad = || Reply::error(400, "bad_request", "the body is not a JSON object");
        if method == "GET"
            && matches!(
                segs.as_slice(),
                ["sync", "all-items", ..] | ["sync", "ratings", ..]
            )
            && !q.contains_key("date_from")
        {
            self.full_list_reads += 1;
        }
        match (method, segs.as_slice()) {
            ("GET", ["sync", "activities"]) => Reply::json(200, self.activities_json()),
            ("GET", ["sync", "all-items"]) => self.all_items(None, None, &q),
            ("GET", ["sync", "all-items", t]) => match SimklType::parse(t) {
                Some(t) => self.all_items(Some(t), None, &q),
                None => Reply::error(404, "url_failed", "unknown type"),
            },
            ("GET", ["sync", "all-items", t, s]) => {
                match (SimklType::parse(t), ListStatus::parse(s), *s == "all") {
                    (Some(t), Some(s), _) => self.all_items(Some(t), Some(s), &q),
                    (Some(t), None, true) => self.all_items(Some(t), None, &q),
                    _ => Reply::error(404, "url_failed", "unknown type or status"),
                }
            }
            ("GET", ["sync", "ratings", t]) => match SimklType::parse(t) {
                Some(t) => self.ratings(t, None, &q),
                None => Reply::error(404, "url_failed", "unknown type"),
            },
            ("GET", ["sync", "ratings", t, r]) => match SimklType::parse(t) {
                Some(t) => self.ratings(t, Some(r), &q),
                None => Reply::error(404, "url_failed", "unknown type"),
            },
            ("POST", ["sync", "add-to-list"]) => match body() {
                Some(b) => self.add_to_list(&b),
                None => bad(),
            },
            ("POST", ["sync", "history"]) => match body() {
                Some(b) => self.history_add(&b),
                None => bad(),
            },
            ("POST", ["sync", "history", "remove"]) => match body() {
                Some(b) => self.history_remove(&b),
                None => bad(),
            },
            ("POST", ["sync", "ratings"]) => match body() {
                Some(b) => self.ratings_add(&b),
                None => bad(),
            },
            ("POST", ["sync", "ratings", "remove"]) => match body() {
                Some(b) => self.ratings_remove(&b),
                None => bad(),
            },
            ("POST", ["users", "settings"]) => Reply::json(
                200,
                json!({
                    "user": {"name": "ferry-sim", "joined_at": ts(Some(START_TIME - 86_400))},
                    "account": {"id": 1, "timezone": "UTC", "type": "free"},
                }),
            ),
            _ => Reply::error(404, "url_failed", "no such endpoint"),
        }
    }

    fn pin_new(&mut self) -> Reply {
        let code = format!("SIM{:02}", self.pins.len() + 1);
        self.pins.push(Pin {
            user_code: code.clone(),
            approved: false,
        });
        Reply::json(
            200,
            json!({
                "result": "OK",
                "device_code": "DEVICE_CODE",
                "user_code": code,
                "verification_url": "https://simkl.com/pin",
                "expires_in": 900,
                "interval": self.pin_interval,
            }),
        )
    }

    fn pin_poll(&mut self, code: &str) -> Reply {
        match self.pins.iter().find(|p| p.user_code == code) {
            Some(p) if p.approved => {
                Reply::json(200, json!({"result": "OK", "access_token": self.token}))
            }
            Some(_) => Reply::json(
                200,
                json!({"result": "KO", "message": "Authorization pending"}),
            ),
            None => Reply::json(200, json!({"result": "KO", "message": "Code not found"})),
        }
    }

    fn since(q: &HashMap<String, String>) -> Option<i64> {
        q.get("date_from")
            .and_then(|d| Timestamp::parse(d))
            .map(Timestamp::unix)
    }

    fn extended(q: &HashMap<String, String>) -> Extended {
        match q.get("extended").map(String::as_str) {
            Some("ids_only") => Extended::IdsOnly,
            Some("simkl_ids_only") => Extended::SimklIdsOnly,
            _ => Extended::Full,
        }
    }

    /// `{type: rows}` for every type with rows, or `null` when there are none at all.
    fn bucketed(rows: BTreeMap<SimklType, Vec<Value>>) -> Value {
        let mut m = Map::new();
        for (t, r) in rows {
            if !r.is_empty() {
                m.insert(t.as_str().into(), Value::Array(r));
            }
        }
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    }

    fn all_items(
        &self,
        kind: Option<SimklType>,
        status: Option<ListStatus>,
        q: &HashMap<String, String>,
    ) -> Reply {
        let since = Self::since(q);
        let ext = Self::extended(q);
        let yes = |k: &str| q.get(k).is_some_and(|v| v == "yes");
        let flags = RowFlags {
            episode_watched_at: yes("episode_watched_at"),
            include_all_episodes: yes("include_all_episodes") && !self.ignore_include_all_episodes,
        };
        let mut rows: BTreeMap<SimklType, Vec<Value>> = BTreeMap::new();
        for (id, e) in &self.library {
            let t = &self.catalog[self.by_id[id]];
            let when = if self.date_from_on_event_dates {
                e.episodes
                    .values()
                    .copied()
                    .chain(e.last_watched_at)
                    .max()
                    .unwrap_or(e.updated_at)
            } else {
                e.updated_at
            };
            if kind.is_some_and(|k| k != t.kind)
                || status.is_some_and(|s| s != e.status)
                || since.is_some_and(|d| when < d)
            {
                continue;
            }
            rows.entry(t.kind)
                .or_default()
                .push(self.row_json(t, e, ext, flags));
        }
        Reply::json(200, Self::bucketed(rows))
    }

    fn ratings(&self, kind: SimklType, wanted: Option<&str>, q: &HashMap<String, String>) -> Reply {
        let since = Self::since(q);
        let wanted: BTreeSet<u8> = match wanted {
            Some(w) => w.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
            None => (1..=10).collect(),
        };
        let mut rows = Vec::new();
        for (id, e) in &self.library {
            let t = &self.catalog[self.by_id[id]];
            let Some(r) = e.rating else { continue };
            let when = if self.date_from_on_event_dates {
                e.rated_at.unwrap_or(e.updated_at)
            } else {
                e.updated_at
            };
            if t.kind != kind || !wanted.contains(&r) || since.is_some_and(|d| when < d) {
                continue;
            }
            let mut m = Map::new();
            m.insert("last_watched_at".into(), ts(e.last_watched_at));
            m.insert("user_rated_at".into(), ts(e.rated_at));
            m.insert("user_rating".into(), json!(r));
            m.insert("status".into(), json!(e.status.as_str()));
            m.insert(t.kind.item_key().into(), self.title_json(t, Extended::Full));
            rows.push(Value::Object(m));
        }
        let mut m = BTreeMap::new();
        m.insert(kind, rows);
        Reply::json(200, Self::bucketed(m))
    }

    /// The request's items per catalog: `(array key, kinds it may hold, items)`.
    fn groups(body: &Value) -> Vec<(&'static str, &'static [SimklType], Vec<Value>)> {
        const MOVIES: &[SimklType] = &[SimklType::Movies];
        const SHOWS: &[SimklType] = &[SimklType::Shows, SimklType::Anime];
        let arr = |k: &str| {
            body.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        vec![
            ("movies", MOVIES, arr("movies")),
            ("shows", SHOWS, arr("shows")),
            ("anime", SHOWS, arr("anime")),
        ]
    }

    fn write_reply(&self, v: Value) -> Reply {
        if self.empty_write_bodies {
            Reply {
                status: 201,
                body: Body::Empty,
                headers: Vec::new(),
            }
        } else {
            Reply::json(201, v)
        }
    }

    /// Sets a title's bucket, creating the library entry if needed.
    fn set_status(&mut self, idx: usize, status: ListStatus, now: i64) {
        let t = self.catalog[idx].clone();
        let old = self.library.get(&t.simkl_id).map(|e| e.status);
        if old == Some(status) {
            return;
        }
        let e = self
            .library
            .entry(t.simkl_id)
            .or_insert_with(|| LibraryEntry::new(status, now));
        e.status = status;
        e.updated_at = now;
        if status == ListStatus::Completed
            && t.kind == SimklType::Movies
            && e.last_watched_at.is_none()
        {
            e.last_watched_at = Some(now);
        }
        self.touch_status(t.kind, old, Some(status));
    }

    fn add_to_list(&mut self, body: &Value) -> Reply {
        if body.get("to").is_some()
            && Self::groups(body)
                .iter()
                .all(|g| g.2.iter().all(|i| i.get("to").is_none()))
        {
            return Reply::error(400, "empty_field", "Missed \"to\" parameter");
        }
        let now = self.tick();
        let mut added: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(to) = it.get("to").and_then(Value::as_str) else {
                    return Reply::error(400, "empty_field", "Missed \"to\" parameter");
                };
                let Some(mut status) = ListStatus::parse(to) else {
                    return Reply::error(400, "wrong_parameter", "unknown status");
                };
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let kind = self.catalog[idx].kind;
                if kind == SimklType::Movies {
                    match status {
                        ListStatus::Watching => status = ListStatus::Completed,
                        ListStatus::Hold => {
                            not_found.entry(out_key).or_default().push(it.clone());
                            continue;
                        }
                        _ => {}
                    }
                }
                self.set_status(idx, status, now);
                added.entry(out_key).or_default().push(json!({
                    "to": status.as_str(),
                    "ids": {"simkl": self.catalog[idx].simkl_id},
                    "type": kind.item_key(),
                }));
            }
        }
        let mut added = added;
        let mut not_found = not_found;
        self.write_reply(json!({
            "added": {
                "movies": added.remove("movies").unwrap_or_default(),
                "shows": added.remove("shows").unwrap_or_default(),
            },
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }

    fn history_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let (mut movies, mut shows, mut episodes) = (0u64, 0u64, 0u64);
        let mut statuses = Vec::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let t = self.catalog[idx].clone();
                let at = parse_ts(it.get("watched_at")).unwrap_or(now);
                let old = self.library.get(&t.simkl_id).map(|e| e.status);
                let entry = self
                    .library
                    .entry(t.simkl_id)
                    .or_insert_with(|| LibraryEntry::new(ListStatus::Completed, now));
                if t.kind == SimklType::Movies {
                    entry.status = ListStatus::Completed;
                    entry.last_watched_at = Some(at);
                    movies += 1;
                } else {
                    let mut marks: Vec<(u32, u32, i64)> = Vec::new();
                    let seasons = it.get("seasons").and_then(Value::as_array);
                    let flat = it.get("episodes").and_then(Value::as_array);
                    if let Some(seasons) = seasons {
                        for s in seasons {
                            let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                                continue;
                            };
                            let s_at = parse_ts(s.get("watched_at")).unwrap_or(at);
                            match s.get("episodes").and_then(Value::as_array) {
                                Some(eps) => {
                                    for e in eps {
                                        if let Some(en) = e.get("number").and_then(Value::as_u64) {
                                            let e_at =
                                                parse_ts(e.get("watched_at")).unwrap_or(s_at);
                                            marks.push((sn as u32, en as u32, e_at));
                                        }
                                    }
                                }
                                None => {
                                    for (s2, e2) in t.all_episodes() {
                                        if s2 == sn as u32 {
                                            marks.push((s2, e2, s_at));
                                        }
                                    }
                                }
                            }
                        }
                    } else if let Some(eps) = flat {
                        for e in eps {
                            if let Some(en) = e.get("number").and_then(Value::as_u64) {
                                let e_at = parse_ts(e.get("watched_at")).unwrap_or(at);
                                marks.push((1, en as u32, e_at));
                            }
                        }
                    } else if it.get("status").and_then(Value::as_str) == Some("completed") {
                        marks.extend(t.all_episodes().into_iter().map(|(s, e)| (s, e, at)));
                    }
                    for (s, e, a) in marks {
                        if t.has_episode(s, e) {
                            entry.episodes.insert((s, e), a);
                            episodes += 1;
                        }
                    }
                    if entry.episodes.is_empty() && old.is_none() {
                        entry.status = ListStatus::Watching;
                    }
                    refresh_show(&t, entry);
                    shows += 1;
                }
                entry.updated_at = now;
                let new = entry.status;
                statuses.push(json!({
                    "request": it,
                    "response": {"status": new.as_str(), "simkl_type": if t.kind == SimklType::Movies {"movie"} else {"tv"}},
                }));
                self.touch_status(t.kind, old, Some(new));
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "added": {"movies": movies, "shows": shows, "episodes": episodes, "statuses": statuses},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
                "episodes": [],
            },
        }))
    }

    fn history_remove(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let ignore = self.ignore_removals > 0;
        if ignore {
            self.ignore_removals -= 1;
        }
        let (mut movies, mut shows, mut episodes) = (0u64, 0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let t = self.catalog[idx].clone();
                let Some(entry) = self.library.get(&t.simkl_id).cloned() else {
                    continue;
                };
                let seasons = it.get("seasons").and_then(Value::as_array);
                let flat = it.get("episodes").and_then(Value::as_array);
                if t.kind == SimklType::Movies || (seasons.is_none() && flat.is_none()) {
                    if t.kind == SimklType::Movies {
                        movies += 1;
                    } else {
                        shows += 1;
                    }
                    if !ignore {
                        self.library.remove(&t.simkl_id);
                        self.touch(t.kind, entry.status.as_str());
                        self.touch(t.kind, "removed_from_list");
                        if entry.rating.is_some() {
                            self.touch(t.kind, "rated_at");
                        }
                    }
                    continue;
                }
                let mut drop: Vec<(u32, u32)> = Vec::new();
                if let Some(seasons) = seasons {
                    for s in seasons {
                        let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                            continue;
                        };
                        match s.get("episodes").and_then(Value::as_array) {
                            Some(eps) => drop.extend(
                                eps.iter()
                                    .filter_map(|e| e.get("number").and_then(Value::as_u64))
                                    .map(|en| (sn as u32, en as u32)),
                            ),
                            None => drop.extend(
                                entry
                                    .episodes
                                    .keys()
                                    .filter(|(s2, _)| *s2 == sn as u32)
                                    .copied(),
                            ),
                        }
                    }
                } else if let Some(eps) = flat {
                    drop.extend(
                        eps.iter()
                            .filter_map(|e| e.get("number").and_then(Value::as_u64))
                            .map(|en| (1, en as u32)),
                    );
                }
                let hits = drop
                    .iter()
                    .filter(|k| entry.episodes.contains_key(k))
                    .count();
                episodes += hits as u64;
                if !ignore
                    && hits > 0
                    && let Some(e) = self.library.get_mut(&t.simkl_id)
                {
                    for k in &drop {
                        e.episodes.remove(k);
                    }
                    refresh_show(&t, e);
                    e.updated_at = now;
                    let new = e.status;
                    self.touch_status(t.kind, Some(entry.status), Some(new));
                }
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "deleted": {"movies": movies, "shows": shows, "episodes": episodes},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }

    fn ratings_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let (mut movies, mut shows) = (0u64, 0u64);
        let mut statuses = Vec::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                // Out-of-range ratings are silently ignored, as on SIMKL.
                let Some(rating) = it
                    .get("rating")
                    .and_then(Value::as_u64)
                    .filter(|r| (1..=10).contains(r))
                else {
                    continue;
                };
                let t = self.catalog[idx].clone();
                let at = parse_ts(it.get("rated_at")).unwrap_or(now);
                let old = self.library.get(&t.simkl_id).map(|e| e.status);
                let filed = if t.kind == SimklType::Movies {
                    ListStatus::Completed
                } else {
                    ListStatus::Watching
                };
                let e = self
                    .library
                    .entry(t.simkl_id)
                    .or_insert_with(|| LibraryEntry::new(filed, now));
                e.rating = Some(rating as u8);
                e.rated_at = Some(at);
                e.updated_at = now;
                let new = e.status;
                if old.is_none() {
                    self.touch_status(t.kind, None, Some(new));
                }
                self.touch(t.kind, "rated_at");
                if t.kind == SimklType::Movies {
                    movies += 1;
                } else {
                    shows += 1;
                }
                statuses.push(json!({"request": it, "response": {"status": new.as_str()}}));
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "added": {"movies": movies, "shows": shows, "statuses": statuses},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }

    fn ratings_remove(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let (mut movies, mut shows) = (0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let t = self.catalog[idx].clone();
                // `deleted` counts matched items, not items that had a rating.
                if t.kind == SimklType::Movies {
                    movies += 1;
                } else {
                    shows += 1;
                }
                if let Some(e) = self.library.get_mut(&t.simkl_id)
                    && e.rating.is_some()
                {
                    e.rating = None;
                    e.rated_at = None;
                    e.updated_at = now;
                    self.touch(t.kind, "rated_at");
                }
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "deleted": {"movies": movies, "shows": shows},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }
}

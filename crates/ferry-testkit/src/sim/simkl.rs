//! A stateful simulator of SIMKL's API (`https://api.simkl.com`).
//!
//! One [`MockServer`] with a custom [`Respond`](wiremock::Respond) over shared in-memory state, so writes
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
//! Faults come only from the shared knobs ([`FaultRule`]: `Status`, `RateLimited`,
//! `Unauthorized`, `Malformed`, an empty or HTML body, and the list faults; `Truncate`
//! cuts a list answer's JSON body in half, since a SIMKL read is one document, not a
//! page). Beside them the service's own rules: removals that answer success but change
//! nothing, and an optional server-side rate limit whose excess gets the knobs' `429`.
//!
//! Layout: this module (the public handle and its controls), `state` (the service's data
//! and rules), `seed` (the sample catalog), `routes` (how each request is answered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferry_core::{Item, Timestamp};
use serde_json::Value;
use wiremock::MockServer;

use crate::sim::kit::Simulator;
use crate::sim::knobs::{Fault, FaultControl, FaultRule, ListShape, RowDamage};

mod routes;
mod seed;
mod state;

pub use seed::{SimklSimBuilder, anime_item};
pub use state::{LibraryEntry, ListStatus, SimklTitle, SimklType};
use state::{SimRateLimit, SimklState, lock, refresh_show};

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
        self.inject(FaultRule::new(Fault::EmptyBody).on(path_prefix).times(n));
    }

    /// The next list answer under `path_prefix` carries one row SIMKL would never send
    /// (`null`).
    pub fn bad_row_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::UndecodableRow(RowDamage::Null)).on(path_prefix));
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

    /// One whole document per catalog, with no total or count (SIMKL's API reference
    /// declares none for these lists).
    fn shape(&self, _feature: ferry_core::Feature) -> ListShape {
        ListShape::Documents
    }
}

impl Simulator for SimklSim {
    async fn start() -> Self {
        SimklSim::start().await
    }

    fn uri(&self) -> String {
        SimklSim::uri(self)
    }

    fn token(&self) -> String {
        SimklSim::token(self)
    }
}

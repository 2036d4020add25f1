//! A stateful simulator of MDBList's API (`https://api.mdblist.com`).
//!
//! One [`MockServer`] with a custom [`Respond`](wiremock::Respond) over shared in-memory state, so writes
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
//! left out or not counts); plus `has_more` lies and added latency. The daily quota is
//! the service's own rule; past it the knobs' `429` answers, with the quota headers.
//!
//! Layout: this module (the public handle and its controls), `state` (the service's data
//! and rules), `seed` (the sample catalog), `routes` (how each request is answered; list
//! pages shaped by the shared fault knobs).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::{Item, MediaType, Timestamp};
use serde_json::Value;
use wiremock::MockServer;

use crate::sim::kit::Simulator;
use crate::sim::knobs::{Fault, FaultControl, FaultRule};

mod routes;
mod seed;
mod state;

pub use seed::MdblistSimBuilder;
use state::{Extra, ExtraRule, MdbState, lock};
pub use state::{MdbKind, MdbTitle, Play};

/// The API key the simulator accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "mdblist-sim-key-0123456789abcdef";
/// The server clock at start (2025-06-01T00:00:00Z).
pub const START_TIME: i64 = 1_748_736_000;
/// Requests per day before `429` (what `X-RateLimit-Limit` reports).
pub const DEFAULT_DAILY_QUOTA: u64 = 100_000;
/// The largest `limit` a page honours.
pub const MAX_PAGE_LIMIT: usize = 1000;
const DEFAULT_PAGE_LIMIT: usize = 100;

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

impl Simulator for MdblistSim {
    async fn start() -> Self {
        MdblistSim::start().await
    }

    fn uri(&self) -> String {
        MdblistSim::uri(self)
    }

    fn token(&self) -> String {
        self.api_key()
    }
}

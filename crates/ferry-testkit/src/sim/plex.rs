//! A stateful simulator of Plex Media Server (PMS) and of Plex's cloud Discover service,
//! which holds the account watchlist.
//!
//! Three [`MockServer`]s share one state, so a write on either host changes later reads:
//!
//! - **PMS** (`uri()`): `X-Plex-Token` (header or query) on every request except
//!   `/identity`; JSON answers; `X-Plex-Container-Start`/`-Size` paging (header or query)
//!   with `totalSize` in the `MediaContainer`; library sections (1 = Movies, 2 = TV Shows),
//!   `Guid` arrays with `includeGuids=1`; watched state (`viewCount`, `lastViewedAt`),
//!   history rows with `viewedAt`, `userRating` (0-10), `viewOffset`, and video playlists.
//!   As documented for the real server, `/:/scrobble` only marks the item played
//!   (`viewCount + 1`, `lastViewedAt` = the server's *current* time; no parameter for the
//!   time of the play) and creates no history row; `/:/unscrobble` marks it unplayed and
//!   leaves its rows. Rows come from plays in a client ([`PlexSim::seed_play`],
//!   [`PlexSim::watch_now`]) and go with `DELETE /status/sessions/history/{id}`.
//!   `/library/all` (every section) and
//!   `/library/sections/{id}/all` take Plex's filters (`field=v`, `field>>=v` greater
//!   than, `field<<=v` less than, on `userRating`, `viewCount`, `lastViewedAt`,
//!   `lastRatedAt`, `viewOffset`) and `sort=field:dir,…`; `X-Plex-Container-Size=0`
//!   answers the count alone. `/library/metadata/{ids}` takes one rating key or several,
//!   comma-separated (the spec's `ids` path parameter), and answers the items it has.
//!   `PUT /:/rate` follows the Rate API: `rating` is 0-10 (0 is stored as a rating of 0),
//!   `ratedAt` (epoch seconds, optional) becomes `lastRatedAt` ("if not present,
//!   interpreted as now"; one in the future is `400`); `rating=-1`, outside the documented
//!   range but what python-plexapi sends to reset, clears the rating; other values are
//!   `400`. `GET /:/prefs` answers `MediaContainer.Setting[]` with
//!   `LibraryVideoPlayedThreshold` (percent, default 90) and
//!   `LibraryVideoPlayedAtBehaviour` (default `"3"`, "earliest between threshold percent
//!   and first credits marker"); a `/:/timeline` report at or past the played point
//!   (the threshold, or the item's credits marker as that setting says) counts a play
//!   instead of storing a resume point. `/playlists` lists playlists and playlist folders
//!   (`type=15`: playlists only, `type=16`: folders only); playlists may be `readOnly`
//!   (edits and deletion answer `403`) or carry a `specialPlaylistType`.
//! - **plex.tv** (`plex_tv_uri()`): the PIN sign-in and `/api/v2/user`
//!   ([`tv`]); the PIN hands out the account token (the Discover token).
//! - **Discover** (`discover_uri()`): `/library/sections/watchlist/all` (paged),
//!   `PUT /actions/addToWatchlist?ratingKey=` and `/actions/removeFromWatchlist`, keyed by
//!   the hex id of the title's `plex://` guid; newest first, or `sort=watchlistedAt:asc`
//!   / `titleSort`.
//!
//! The server clock starts at [`START_TIME`] and moves one second per write, so runs are
//! deterministic. Faults are scheduled per host with [`FaultRule`]s; every paged list
//! (library sections, `/library/all`, history, playlists and their items, the Discover
//! watchlist) takes the shared list faults ([`ListFault::shape`](crate::sim::knobs::ListFault::shape): truncated, empty,
//! an undecodable row, `totalSize` missing or not a count), and [`FaultControl`]
//! schedules one rule on both hosts for the contract suite's fault checks.
//!
//! Layout: this module (the public handle, its controls and the hosts it serves),
//! `state` (the account's data and its rules), `seed` (the sample library), `routes`
//! (how the server and Discover answer each request; list pages shaped by the shared
//! fault knobs), `tv` (the plex.tv sign-in host).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::Item;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

use crate::sim::kit::Simulator;
use crate::sim::knobs::{Fault, FaultControl, FaultRule};

mod routes;
mod seed;
mod state;
mod tv;

use routes::{DiscoverRouter, PmsRouter};
pub use seed::PlexSimBuilder;
use seed::ids_guids;
pub use state::{HistoryRow, PlexItem, PlexKind, SimPlaylist};
use state::{PlexState, lock};
pub use tv::PIN_LIFETIME_SECS;
use tv::{PlexTvRouter, TvState};

/// The token the simulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "plex-sim-token-0123456789";
/// The server's `machineIdentifier`.
pub const MACHINE_ID: &str = "ferry-sim-machine-0001";
/// The server clock at start (2025-06-15T14:40:00Z).
pub const START_TIME: i64 = 1_750_000_000;
/// The `identifier` every library write must carry.
pub const LIBRARY_IDENTIFIER: &str = "com.plexapp.plugins.library";
/// Sample movie `n` has rating key `MOVIE_KEY_BASE + n`.
pub const MOVIE_KEY_BASE: u64 = 100_000;
const SHOW_KEY_BASE: u64 = 5_000_000;
const EPISODE_KEY_BASE: u64 = 6_000_000;

/// A running Plex simulator (PMS, Discover and plex.tv). Cheap to clone.
#[derive(Debug, Clone)]
pub struct PlexSim {
    pms: Arc<MockServer>,
    discover: Arc<MockServer>,
    plex_tv: Arc<MockServer>,
    state: Arc<Mutex<PlexState>>,
    tv: Arc<Mutex<TvState>>,
}

impl PlexSim {
    /// A simulator holding [`SAMPLE_LIBRARY_SIZE`] sample movies and two sample shows.
    pub async fn start() -> PlexSim {
        PlexSimBuilder::default().start().await
    }

    /// Serves `state` on the server and Discover hosts and `tv` on the plex.tv host.
    async fn serve(state: PlexState, tv: TvState) -> PlexSim {
        let state = Arc::new(Mutex::new(state));
        let tv = Arc::new(Mutex::new(tv));
        let pms = super::server().await;
        Mock::given(any())
            .respond_with(PmsRouter(state.clone()))
            .mount(&pms)
            .await;
        let discover = super::server().await;
        Mock::given(any())
            .respond_with(DiscoverRouter(state.clone()))
            .mount(&discover)
            .await;
        let plex_tv = super::server().await;
        Mock::given(any())
            .respond_with(PlexTvRouter(tv.clone()))
            .mount(&plex_tv)
            .await;
        PlexSim {
            pms: Arc::new(pms),
            discover: Arc::new(discover),
            plex_tv: Arc::new(plex_tv),
            state,
            tv,
        }
    }

    pub fn builder() -> PlexSimBuilder {
        PlexSimBuilder::default()
    }

    /// The PMS base URL.
    pub fn uri(&self) -> String {
        self.pms.uri()
    }

    /// The Discover base URL.
    pub fn discover_uri(&self) -> String {
        self.discover.uri()
    }

    /// The plex.tv base URL (PIN sign-in, account lookup).
    pub fn plex_tv_uri(&self) -> String {
        self.plex_tv.uri()
    }

    fn st(&self) -> MutexGuard<'_, PlexState> {
        lock(&self.state)
    }

    fn tv(&self) -> MutexGuard<'_, TvState> {
        self.tv.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account token: what Discover accepts and what a linked PIN hands out.
    pub fn account_token(&self) -> String {
        self.st().discover_token.clone()
    }

    /// The user enters `code` at plex.tv/link: the PIN with that code hands out the
    /// account token from now on. False when no live PIN has that code.
    pub fn approve_pin(&self, code: &str) -> bool {
        let now = self.now();
        let mut tv = self.tv();
        tv.now = now;
        tv.link(code)
    }

    /// Every PIN made so far expires now (as if 15 minutes had passed).
    pub fn expire_pins(&self) {
        self.tv().expire_all();
    }

    /// How many PINs were asked for.
    pub fn pins_created(&self) -> usize {
        self.tv().pin_count()
    }

    /// Every `METHOD /path` the plex.tv host saw, with counts.
    pub fn plex_tv_routes(&self) -> std::collections::BTreeMap<String, u64> {
        self.tv().knobs.routes()
    }

    pub fn token(&self) -> String {
        self.st().token.clone()
    }

    /// Replaces the accepted server token: requests with the old one now get 401, as
    /// after a token was revoked or expired.
    pub fn set_token(&self, token: impl Into<String>) {
        self.st().token = token.into();
    }

    /// Replaces the account token (Discover, plex.tv, and what PINs hand out).
    pub fn set_discover_token(&self, token: impl Into<String>) {
        let token = token.into();
        self.tv().account_token = token.clone();
        self.st().discover_token = token;
    }

    /// The server clock (epoch seconds).
    pub fn now(&self) -> i64 {
        self.st().now
    }

    pub fn advance(&self, secs: i64) {
        self.st().now += secs;
    }

    /// The rating key of sample movie `n`.
    pub fn movie_key(n: u32) -> u64 {
        MOVIE_KEY_BASE + u64::from(n)
    }

    /// The rating key of episode `e` of season `s` of sample show `n` (see
    /// [`PlexSimBuilder::shows`]).
    pub fn episode_key(n: u32, s: u32, e: u32) -> u64 {
        EPISODE_KEY_BASE + u64::from(n) * 10_000 + u64::from(s) * 100 + u64::from(e)
    }

    /// The rating key of the library item with one of these external ids.
    pub fn rating_key_of(&self, item: &Item) -> Option<u64> {
        let want = ids_guids(item);
        let st = self.st();
        st.items
            .iter()
            .find(|i| i.external.iter().any(|g| want.contains(g)))
            .map(|i| i.rating_key)
    }

    pub fn item(&self, rating_key: u64) -> Option<PlexItem> {
        let st = self.st();
        st.by_key.get(&rating_key).map(|i| st.items[*i].clone())
    }

    pub fn items(&self) -> Vec<PlexItem> {
        self.st().items.clone()
    }

    pub fn history(&self) -> Vec<HistoryRow> {
        self.st().history.clone()
    }

    /// The Discover watchlist as hex keys, oldest first.
    pub fn watchlist(&self) -> Vec<String> {
        self.st().watchlist.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn playlists(&self) -> Vec<SimPlaylist> {
        self.st().playlists.clone()
    }

    /// Records a play at `viewed_at`, as if the user had watched it then.
    pub fn seed_play(&self, rating_key: u64, viewed_at: i64) {
        let mut st = self.st();
        st.play(rating_key, viewed_at);
    }

    /// Records many plays under one lock, each as [`PlexSim::seed_play`] does: for seeding
    /// large histories (benchmarks).
    pub fn seed_plays(&self, plays: &[(u64, i64)]) {
        let mut st = self.st();
        st.history.reserve(plays.len());
        for &(rating_key, viewed_at) in plays {
            st.play(rating_key, viewed_at);
        }
    }

    pub fn seed_rating(&self, rating_key: u64, rating: Option<f64>) {
        let mut st = self.st();
        let now = st.now;
        if let Some(i) = st.by_key.get(&rating_key).copied() {
            st.items[i].user_rating = rating;
            st.items[i].last_rated_at = rating.map(|_| now);
        }
    }

    pub fn seed_view_offset(&self, rating_key: u64, offset_ms: Option<u64>) {
        let mut st = self.st();
        if let Some(i) = st.by_key.get(&rating_key).copied() {
            st.items[i].view_offset = offset_ms;
        }
    }

    /// Puts a library title on the Discover watchlist.
    pub fn seed_watchlist(&self, rating_key: u64) {
        let mut st = self.st();
        let now = st.now;
        if let Some(i) = st.by_key.get(&rating_key).copied() {
            let key = st.items[i].discover_key().to_owned();
            if !st.watchlist.iter().any(|(k, _)| *k == key) {
                st.watchlist.push((key, now));
            }
        }
    }

    /// The user watches an item to the end in a client: a play at the server's clock.
    pub fn watch_now(&self, rating_key: u64) -> i64 {
        let mut st = self.st();
        let now = st.tick();
        st.play(rating_key, now);
        now
    }

    /// The user marks an item unwatched in a client: the watched state and resume point
    /// go, the history rows stay (as with `/:/unscrobble`).
    pub fn mark_unwatched(&self, rating_key: u64) {
        let mut st = self.st();
        st.tick();
        if let Some(item) = st.item_mut(rating_key) {
            item.view_count = 0;
            item.last_viewed_at = None;
            item.view_offset = None;
        }
    }

    /// The user deletes one row of the viewing history.
    pub fn delete_history_row(&self, id: u64) {
        let mut st = self.st();
        st.tick();
        st.history.retain(|r| r.id != id);
    }

    /// The user rates (or, with `None`, unrates) an item in a client, now.
    pub fn rate_now(&self, rating_key: u64, rating: Option<f64>) {
        let mut st = self.st();
        let now = st.tick();
        if let Some(item) = st.item_mut(rating_key) {
            item.user_rating = rating;
            item.last_rated_at = rating.map(|_| now);
        }
    }

    /// The user adds a library title to the watchlist, now.
    pub fn watchlist_now(&self, rating_key: u64) {
        self.st().tick();
        self.seed_watchlist(rating_key);
    }

    /// The user takes a title off the watchlist.
    pub fn unwatchlist(&self, rating_key: u64) {
        let mut st = self.st();
        st.tick();
        if let Some(key) = st.item(rating_key).map(|i| i.discover_key().to_owned()) {
            st.watchlist.retain(|(k, _)| *k != key);
        }
    }

    /// Creates a video playlist holding these rating keys; returns its id.
    pub fn seed_playlist(&self, title: &str, keys: &[u64]) -> u64 {
        self.seed_playlist_with(title, keys, |_| {})
    }

    /// Creates a `readOnly` video playlist (edits and deletion answer `403`).
    pub fn seed_read_only_playlist(&self, title: &str, keys: &[u64]) -> u64 {
        self.seed_playlist_with(title, keys, |p| p.read_only = true)
    }

    /// Creates a special video playlist (`specialPlaylistType`, e.g. `favorites`); the
    /// server does not flag it `readOnly`.
    pub fn seed_special_playlist(&self, title: &str, special: &str, keys: &[u64]) -> u64 {
        self.seed_playlist_with(title, keys, |p| p.special = Some(special.to_owned()))
    }

    /// Creates a playlist folder; returns its id.
    pub fn seed_playlist_folder(&self, title: &str) -> u64 {
        self.seed_playlist_with(title, &[], |p| p.folder = true)
    }

    fn seed_playlist_with(
        &self,
        title: &str,
        keys: &[u64],
        shape: impl FnOnce(&mut SimPlaylist),
    ) -> u64 {
        let mut st = self.st();
        let id = st.next_id;
        st.next_id += 1;
        let mut pl = SimPlaylist::new(id, title);
        for k in keys {
            pl.items.push((st.next_id, *k));
            st.next_id += 1;
        }
        shape(&mut pl);
        st.playlists.push(pl);
        id
    }

    /// Sets the server's `LibraryVideoPlayedThreshold` (percent).
    pub fn set_played_threshold(&self, percent: u32) {
        self.st().played_threshold = percent;
    }

    /// Sets the server's `LibraryVideoPlayedAtBehaviour`: `0` at the threshold, `1` at the
    /// final credits marker, `2` at the first credits marker, `3` (default) at the earlier
    /// of the threshold and the first credits marker; the threshold without a marker.
    pub fn set_played_at_behaviour(&self, behaviour: &str) {
        self.st().played_at_behaviour = behaviour.to_owned();
    }

    /// Gives an item a credits marker starting at `at_ms` (or takes it away).
    pub fn set_credits_marker(&self, rating_key: u64, at_ms: Option<u64>) {
        if let Some(item) = self.st().item_mut(rating_key) {
            item.credits_at = at_ms;
        }
    }

    /// With `true`, `/:/timeline` answers 200 and stores nothing (a server that does not
    /// keep a resume point from a report outside a playback session).
    pub fn set_timeline_ignored(&self, ignored: bool) {
        self.st().timeline_ignored = ignored;
    }

    /// Schedules a fault on the PMS host.
    pub fn inject(&self, rule: FaultRule) {
        self.st().pms.inject(rule);
    }

    /// Schedules a fault on the Discover host.
    pub fn inject_discover(&self, rule: FaultRule) {
        self.st().discover.inject(rule);
    }

    /// The next `n` PMS requests answer `status`.
    pub fn fail_next(&self, status: u16, n: u32) {
        self.inject(FaultRule::new(Fault::Status(status)).times(n));
    }

    /// The next `n` PMS requests answer 429 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, retry_after_secs: u64, n: u32) {
        self.inject(FaultRule::new(Fault::RateLimited { retry_after_secs }).times(n));
    }

    /// The next PMS request under `path_prefix` answers with broken JSON.
    pub fn malformed_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Malformed).on(path_prefix));
    }

    /// The next list page under `path_prefix` holds half its rows.
    pub fn truncate_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Truncate).on(path_prefix));
    }

    /// Delays every answer on both hosts.
    pub fn set_latency(&self, d: Duration) {
        let mut st = self.st();
        st.pms.set_latency(d);
        st.discover.set_latency(d);
    }

    pub fn clear_faults(&self) {
        let mut st = self.st();
        st.pms.clear_faults();
        st.discover.clear_faults();
    }

    /// PMS requests to exactly `path`, any method.
    pub fn requests(&self, path: &str) -> u64 {
        self.st().pms.requests(path)
    }

    pub fn requests_under(&self, prefix: &str) -> u64 {
        self.st().pms.requests_under(prefix)
    }

    pub fn requests_to(&self, method: &str, path: &str) -> u64 {
        self.st().pms.requests_to(method, path)
    }

    pub fn discover_requests(&self, path: &str) -> u64 {
        self.st().discover.requests(path)
    }

    pub fn total_requests(&self) -> u64 {
        let st = self.st();
        st.pms.total() + st.discover.total()
    }

    /// Every `METHOD /path` the PMS host saw, with counts.
    pub fn routes(&self) -> std::collections::BTreeMap<String, u64> {
        self.st().pms.routes()
    }

    /// Every `METHOD /path` the Discover host saw, with counts.
    pub fn discover_routes(&self) -> std::collections::BTreeMap<String, u64> {
        self.st().discover.routes()
    }

    /// Sends `method path_and_query` to the PMS with the token and no body, and returns the
    /// status: a minimal blocking HTTP/1.1 client, for tests that probe what the simulated
    /// endpoints accept (the server runs on its own thread).
    pub fn raw_status(&self, method: &str, path_and_query: &str) -> u16 {
        use std::io::{Read, Write};
        let addr = self.uri().trim_start_matches("http://").to_owned();
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            return 0;
        };
        let req = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             X-Plex-Token: {}\r\nContent-Length: 0\r\n\r\n",
            self.token()
        );
        let mut raw = Vec::new();
        if s.write_all(req.as_bytes()).is_err() || s.read_to_end(&mut raw).is_err() {
            return 0;
        }
        String::from_utf8_lossy(&raw)
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    pub fn reset_counts(&self) {
        let mut st = self.st();
        st.pms.reset_counts();
        st.discover.reset_counts();
        self.tv().knobs.reset_counts();
    }
}

/// One set of fault rules for both hosts: each rule is scheduled on the server and on
/// Discover, and its path prefix decides which host it can fire on (Discover serves only
/// `/library/sections/watchlist/all` and `/actions/…`; the server's sections are
/// `/library/sections/{id}/all`).
impl FaultControl for PlexSim {
    fn inject(&self, rule: FaultRule) {
        let mut st = self.st();
        st.pms.inject(rule.clone());
        st.discover.inject(rule);
    }

    fn clear_faults(&self) {
        PlexSim::clear_faults(self);
    }

    fn faults_fired(&self) -> u64 {
        let st = self.st();
        st.pms.fired() + st.discover.fired()
    }

    /// The watchlist pages through Discover's list; history, ratings, progress and
    /// playlists all read the library, whose movie section (the sample library) spans
    /// pages.
    fn list_path(&self, feature: ferry_core::Feature) -> Option<String> {
        use ferry_core::Feature as F;
        Some(match feature {
            F::Watchlist => "/library/sections/watchlist/all".to_owned(),
            F::History | F::Ratings | F::Progress | F::Playlists => {
                "/library/sections/1/all".to_owned()
            }
        })
    }

    fn rate_limit_gap(&self) -> Option<Duration> {
        let st = self.st();
        st.pms.rate_limit_gap().or(st.discover.rate_limit_gap())
    }
}

impl Simulator for PlexSim {
    async fn start() -> Self {
        PlexSim::start().await
    }

    /// The server's URL (Discover and plex.tv have their own, [`PlexSim::discover_uri`]
    /// and [`PlexSim::plex_tv_uri`]).
    fn uri(&self) -> String {
        PlexSim::uri(self)
    }

    fn token(&self) -> String {
        PlexSim::token(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scrobble_marks_played_without_a_history_row() {
        let sim = PlexSim::start().await;
        let rk = PlexSim::movie_key(2);
        sim.seed_play(rk, START_TIME - 86_400);
        let rows = sim.history();
        assert_eq!(rows.len(), 1);
        let before = sim.now();
        let q = format!("key={rk}&identifier={LIBRARY_IDENTIFIER}");
        assert_eq!(sim.raw_status("PUT", &format!("/:/scrobble?{q}")), 200);
        assert_eq!(sim.history(), rows, "a scrobble creates no history row");
        let it = sim.item(rk).unwrap();
        assert_eq!(it.view_count, 2);
        assert_eq!(sim.now(), before + 1, "a write ticks the clock");
        assert_eq!(it.last_viewed_at, Some(sim.now()));
        // An unplayed item becomes played, still without a row.
        let other = PlexSim::movie_key(3);
        assert_eq!(
            sim.raw_status(
                "PUT",
                &format!("/:/scrobble?key={other}&identifier={LIBRARY_IDENTIFIER}")
            ),
            200
        );
        assert_eq!(sim.item(other).unwrap().view_count, 1);
        assert_eq!(sim.history(), rows);
        // Unscrobble marks it unplayed and leaves the rows.
        assert_eq!(sim.raw_status("PUT", &format!("/:/unscrobble?{q}")), 200);
        let it = sim.item(rk).unwrap();
        assert_eq!((it.view_count, it.last_viewed_at), (0, None));
        assert_eq!(sim.history(), rows);
        // Unknown items and a missing identifier.
        assert_eq!(
            sim.raw_status(
                "PUT",
                &format!("/:/scrobble?key=999&identifier={LIBRARY_IDENTIFIER}")
            ),
            404
        );
        assert_eq!(sim.raw_status("PUT", &format!("/:/scrobble?key={rk}")), 400);
    }

    #[tokio::test]
    async fn the_kit_sees_the_server_and_one_rule_reaches_both_hosts() {
        let sim = PlexSim::start().await;
        assert_eq!(Simulator::uri(&sim), sim.uri());
        assert_ne!(sim.uri(), sim.discover_uri());
        assert_eq!(Simulator::token(&sim), DEFAULT_TOKEN);
        FaultControl::inject(&sim, FaultRule::new(Fault::Status(503)).times(2));
        let key = PlexSim::movie_key(1);
        let q = format!("key={key}&identifier={LIBRARY_IDENTIFIER}");
        assert_eq!(sim.raw_status("PUT", &format!("/:/scrobble?{q}")), 503);
        assert_eq!(
            sim.faults_fired(),
            1,
            "the Discover copy is still scheduled"
        );
        FaultControl::clear_faults(&sim);
        assert_eq!(sim.raw_status("PUT", &format!("/:/scrobble?{q}")), 200);
    }

    #[tokio::test]
    async fn plays_in_a_client_create_rows_and_mark_played() {
        let sim = PlexSim::start().await;
        let rk = PlexSim::movie_key(4);
        let at = sim.watch_now(rk);
        let rows = sim.history();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].rating_key, rows[0].viewed_at), (rk, at));
        let it = sim.item(rk).unwrap();
        assert_eq!((it.view_count, it.last_viewed_at), (1, Some(at)));
    }
}

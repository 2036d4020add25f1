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
//!   ([`super::plex_tv`]); the PIN hands out the account token (the Discover token).
//! - **Discover** (`discover_uri()`): `/library/sections/watchlist/all` (paged),
//!   `PUT /actions/addToWatchlist?ratingKey=` and `/actions/removeFromWatchlist`, keyed by
//!   the hex id of the title's `plex://` guid; newest first, or `sort=watchlistedAt:asc`
//!   / `titleSort`.
//!
//! The server clock starts at [`START_TIME`] and moves one second per write, so runs are
//! deterministic. Faults are scheduled per host with [`FaultRule`]s; every paged list
//! (library sections, `/library/all`, history, playlists and their items, the Discover
//! watchlist) takes the shared list faults ([`ListFault::shape`]: truncated, empty,
//! an undecodable row, `totalSize` missing or not a count), and [`FaultControl`]
//! schedules one rule on both hosts for the contract suite's fault checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::{IdKind, Item};
use serde_json::{Map, Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::{Fault, FaultControl, FaultRule, Knobs, ListFault, window};
use crate::sim::plex_tv::{PlexTvRouter, TvState};

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

/// The kind of a library item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlexKind {
    Movie,
    Show,
    Episode,
}

impl PlexKind {
    fn as_str(self) -> &'static str {
        match self {
            PlexKind::Movie => "movie",
            PlexKind::Show => "show",
            PlexKind::Episode => "episode",
        }
    }

    /// Plex's numeric type (`type=1` movies, `2` shows, `4` episodes).
    fn number(self) -> u32 {
        match self {
            PlexKind::Movie => 1,
            PlexKind::Show => 2,
            PlexKind::Episode => 4,
        }
    }
}

/// One library item with the account's state for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlexItem {
    pub rating_key: u64,
    pub kind: PlexKind,
    pub title: String,
    pub year: Option<u16>,
    /// `plex://movie/<24 hex>`: the id Discover knows the title by.
    pub guid: String,
    /// External guids: `imdb://…`, `tmdb://…`, `tvdb://…`.
    pub external: Vec<String>,
    pub section: u32,
    pub duration_ms: u64,
    /// Episodes: the show's rating key, season and episode numbers.
    pub show_key: Option<u64>,
    pub season: Option<u32>,
    pub index: Option<u32>,
    pub view_count: u32,
    pub last_viewed_at: Option<i64>,
    pub view_offset: Option<u64>,
    pub user_rating: Option<f64>,
    pub last_rated_at: Option<i64>,
    /// Where the item's credits marker starts (ms), if it has one; sample items have none.
    pub credits_at: Option<u64>,
}

impl PlexItem {
    /// The hex id Discover uses (the last segment of the `plex://` guid).
    pub fn discover_key(&self) -> &str {
        self.guid.rsplit('/').next().unwrap_or_default()
    }
}

/// One row of `/status/sessions/history/all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: u64,
    pub rating_key: u64,
    pub viewed_at: i64,
}

/// A video playlist: `(playlistItemID, rating key)` entries in order; or, with `folder`,
/// a playlist folder (no entries, no `playlistType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPlaylist {
    pub id: u64,
    pub title: String,
    pub summary: String,
    pub smart: bool,
    pub items: Vec<(u64, u64)>,
    /// `readOnly`: the playlist "cannot be altered or deleted directly by the client".
    pub read_only: bool,
    /// `specialPlaylistType` ("If this is a special playlist, this returns its type (e.g.
    /// favorites)").
    pub special: Option<String>,
    pub folder: bool,
}

impl SimPlaylist {
    fn new(id: u64, title: &str) -> Self {
        SimPlaylist {
            id,
            title: title.to_owned(),
            summary: String::new(),
            smart: false,
            items: Vec::new(),
            read_only: false,
            special: None,
            folder: false,
        }
    }
}

#[derive(Debug)]
struct PlexState {
    token: String,
    discover_token: String,
    items: Vec<PlexItem>,
    by_key: HashMap<u64, usize>,
    history: Vec<HistoryRow>,
    playlists: Vec<SimPlaylist>,
    /// Discover watchlist: (hex key, watchlisted at), oldest first.
    watchlist: Vec<(String, i64)>,
    next_id: u64,
    now: i64,
    /// `LibraryVideoPlayedThreshold` (percent).
    played_threshold: u32,
    /// `LibraryVideoPlayedAtBehaviour` (`0`-`3`).
    played_at_behaviour: String,
    /// `/:/timeline` answers 200 and stores nothing.
    timeline_ignored: bool,
    pms: Knobs,
    discover: Knobs,
}

fn lock(m: &Mutex<PlexState>) -> MutexGuard<'_, PlexState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds a [`PlexSim`] with a chosen library.
#[derive(Debug, Clone)]
pub struct PlexSimBuilder {
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    token: String,
    discover_token: Option<String>,
}

impl Default for PlexSimBuilder {
    fn default() -> Self {
        PlexSimBuilder {
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 2,
            seasons: 1,
            episodes: 4,
            token: DEFAULT_TOKEN.to_owned(),
            discover_token: None,
        }
    }
}

impl PlexSimBuilder {
    /// Sample movies `0..n` in section 1 (default [`SAMPLE_LIBRARY_SIZE`]).
    pub fn movies(mut self, n: u32) -> Self {
        self.movies = n;
        self
    }

    /// Sample shows `0..n` in section 2, each with `seasons` × `episodes` episodes.
    pub fn shows(mut self, n: u32, seasons: u32, episodes: u32) -> Self {
        self.shows = n;
        self.seasons = seasons;
        self.episodes = episodes;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// A separate account token for Discover (default: the server token).
    pub fn discover_token(mut self, token: impl Into<String>) -> Self {
        self.discover_token = Some(token.into());
        self
    }

    pub async fn start(self) -> PlexSim {
        let mut items = Vec::with_capacity(self.movies as usize);
        for n in 0..self.movies {
            items.push(movie_item(n));
        }
        for n in 0..self.shows {
            let show = show_item(n);
            let show_key = show.rating_key;
            items.push(show);
            for s in 1..=self.seasons {
                for e in 1..=self.episodes {
                    items.push(episode_item(n, s, e, show_key));
                }
            }
        }
        let by_key = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.rating_key, i))
            .collect();
        let account_token = self.discover_token.unwrap_or_else(|| self.token.clone());
        let tv = Arc::new(Mutex::new(TvState::new(account_token.clone(), START_TIME)));
        let state = Arc::new(Mutex::new(PlexState {
            discover_token: account_token,
            token: self.token,
            items,
            by_key,
            history: Vec::new(),
            playlists: Vec::new(),
            watchlist: Vec::new(),
            next_id: 1,
            now: START_TIME,
            played_threshold: 90,
            played_at_behaviour: "3".to_owned(),
            timeline_ignored: false,
            pms: Knobs::default(),
            discover: Knobs::default(),
        }));
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
}

fn ids_guids(item: &Item) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = item.ids.get(IdKind::Imdb) {
        out.push(format!("imdb://{v}"));
    }
    if let Some(v) = item.ids.get(IdKind::Tmdb) {
        out.push(format!("tmdb://{v}"));
    }
    if let Some(v) = item.ids.get(IdKind::Tvdb) {
        out.push(format!("tvdb://{v}"));
    }
    out
}

fn movie_item(n: u32) -> PlexItem {
    let m = samples::movie(n);
    let mut external = ids_guids(&m);
    // Plex's movie agent also knows a TVDB id for most films.
    external.push(format!("tvdb://{}", 2_000_000 + n));
    PlexItem {
        rating_key: MOVIE_KEY_BASE + u64::from(n),
        kind: PlexKind::Movie,
        title: m.title.clone().unwrap_or_default(),
        year: m.year,
        guid: format!("plex://movie/5d7768{:018x}", n),
        external,
        section: 1,
        duration_ms: 6_000_000,
        show_key: None,
        season: None,
        index: None,
        view_count: 0,
        last_viewed_at: None,
        view_offset: None,
        user_rating: None,
        last_rated_at: None,
        credits_at: None,
    }
}

fn show_item(n: u32) -> PlexItem {
    let s = samples::show(n);
    PlexItem {
        rating_key: SHOW_KEY_BASE + u64::from(n),
        kind: PlexKind::Show,
        title: s.title.clone().unwrap_or_default(),
        year: s.year,
        guid: format!("plex://show/5d9c08{:018x}", n),
        external: ids_guids(&s),
        section: 2,
        duration_ms: 2_400_000,
        ..movie_item(0)
    }
}

fn episode_item(n: u32, s: u32, e: u32, show_key: u64) -> PlexItem {
    let ep = samples::episode(n, s, e);
    let serial = u64::from(n) * 10_000 + u64::from(s) * 100 + u64::from(e);
    PlexItem {
        rating_key: EPISODE_KEY_BASE + serial,
        kind: PlexKind::Episode,
        title: format!("Episode {e}"),
        year: None,
        guid: format!("plex://episode/5d9c09{serial:018x}"),
        external: ids_guids(&ep),
        section: 2,
        duration_ms: 2_400_000,
        show_key: Some(show_key),
        season: Some(s),
        index: Some(e),
        ..movie_item(0)
    }
}

/// A running Plex simulator (PMS + Discover). Cheap to clone.
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

// ---------------------------------------------------------------------------------------
// Request plumbing.

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn plex_token(req: &Request, q: &HashMap<String, String>) -> Option<String> {
    header(req, "X-Plex-Token")
        .map(str::to_owned)
        .or_else(|| q.get("X-Plex-Token").cloned())
}

fn paging(req: &Request, q: &HashMap<String, String>) -> (usize, Option<usize>) {
    let get = |name: &str| {
        header(req, name)
            .map(str::to_owned)
            .or_else(|| q.get(name).cloned())
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    (
        get("X-Plex-Container-Start").unwrap_or(0),
        get("X-Plex-Container-Size"),
    )
}

fn html(status: u16, title: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        format!(
            "<html><head><title>{title}</title></head><body><h1>{status} {title}</h1></body></html>"
        ),
        "text/html",
    )
}

fn unauthorized() -> ResponseTemplate {
    html(401, "Unauthorized")
}

fn not_found() -> ResponseTemplate {
    html(404, "Not Found")
}

fn bad_request() -> ResponseTemplate {
    html(400, "Bad Request")
}

fn ok_empty() -> ResponseTemplate {
    ResponseTemplate::new(200)
}

fn container(fields: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "MediaContainer": fields }))
}

/// A paged `MediaContainer` over `rows`.
fn paged(
    rows: Vec<Value>,
    start: usize,
    size: Option<usize>,
    fault: &ListFault,
    extra: Value,
) -> ResponseTemplate {
    paged_with(rows, start, size, fault, extra, |v| v)
}

/// A paged `MediaContainer` over `rows`, rendering only the rows on the page (large
/// libraries would otherwise render every row for every page). A list fault shapes the
/// page and its `totalSize` ([`ListFault::shape`]).
fn paged_with<T>(
    rows: Vec<T>,
    start: usize,
    size: Option<usize>,
    fault: &ListFault,
    extra: Value,
    render: impl FnMut(T) -> Value,
) -> ResponseTemplate {
    let total = rows.len();
    let (from, to) = window(total, start, size, fault.truncates());
    let page: Vec<Value> = rows
        .into_iter()
        .skip(from)
        .take(to - from)
        .map(render)
        .collect();
    let (page, declared) = fault.shape(page, total);
    let mut mc = Map::new();
    mc.insert("size".into(), json!(page.len()));
    if size.is_some() {
        if let Some(t) = declared.json() {
            mc.insert("totalSize".into(), t);
        }
        mc.insert("offset".into(), json!(from));
    }
    if let Value::Object(extra) = extra {
        mc.extend(extra);
    }
    mc.insert("Metadata".into(), Value::Array(page));
    container(Value::Object(mc))
}

/// `key=/library/metadata/123`, `key=123` or `ratingKey=123`.
fn key_param(q: &HashMap<String, String>) -> Option<u64> {
    q.get("ratingKey")
        .or_else(|| q.get("key"))
        .and_then(|k| k.rsplit('/').next())
        .and_then(|k| k.parse().ok())
}

/// The rating keys in `server://<machine>/com.plexapp.plugins.library/library/metadata/1,2`.
fn uri_keys(uri: &str) -> Option<Vec<u64>> {
    let rest = uri.strip_prefix("server://")?;
    let (machine, path) = rest.split_once('/')?;
    if machine != MACHINE_ID {
        return None;
    }
    let list = path.strip_prefix("com.plexapp.plugins.library/library/metadata/")?;
    list.split(',').map(|k| k.trim().parse().ok()).collect()
}

// ---------------------------------------------------------------------------------------
// PMS.

#[derive(Debug)]
struct PmsRouter(Arc<Mutex<PlexState>>);

impl Respond for PmsRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.pms.begin(req);
        seen.answer_list(|method, path, fault| st.pms_route(req, method, path, fault))
    }
}

impl PlexState {
    fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    fn item_mut(&mut self, key: u64) -> Option<&mut PlexItem> {
        let i = *self.by_key.get(&key)?;
        Some(&mut self.items[i])
    }

    fn item(&self, key: u64) -> Option<&PlexItem> {
        self.by_key.get(&key).map(|i| &self.items[*i])
    }

    fn play(&mut self, key: u64, at: i64) -> bool {
        let id = self.next_id;
        let Some(item) = self.item_mut(key) else {
            return false;
        };
        item.view_count += 1;
        item.last_viewed_at = Some(item.last_viewed_at.map_or(at, |t| t.max(at)));
        item.view_offset = None;
        self.next_id += 1;
        self.history.push(HistoryRow {
            id,
            rating_key: key,
            viewed_at: at,
        });
        true
    }

    /// `/:/scrobble`: the item reads played now; no history row (Plex's documented
    /// behaviour: "this does not create any view history of this item").
    fn mark_played(&mut self, key: u64) -> bool {
        if self.item(key).is_none() {
            return false;
        }
        let now = self.tick();
        let Some(item) = self.item_mut(key) else {
            return false;
        };
        item.view_count += 1;
        item.last_viewed_at = Some(now);
        item.view_offset = None;
        true
    }

    fn item_json(&self, item: &PlexItem, guids: bool) -> Value {
        let mut m = Map::new();
        m.insert("ratingKey".into(), json!(item.rating_key.to_string()));
        m.insert(
            "key".into(),
            json!(format!("/library/metadata/{}", item.rating_key)),
        );
        m.insert("guid".into(), json!(item.guid));
        m.insert("type".into(), json!(item.kind.as_str()));
        m.insert("title".into(), json!(item.title));
        if let Some(y) = item.year {
            m.insert("year".into(), json!(y));
        }
        m.insert("librarySectionID".into(), json!(item.section));
        m.insert("duration".into(), json!(item.duration_ms));
        m.insert("addedAt".into(), json!(START_TIME - 86_400));
        if item.view_count > 0 {
            m.insert("viewCount".into(), json!(item.view_count));
        }
        if let Some(t) = item.last_viewed_at {
            m.insert("lastViewedAt".into(), json!(t));
        }
        if let Some(o) = item.view_offset {
            m.insert("viewOffset".into(), json!(o));
        }
        if let Some(r) = item.user_rating {
            m.insert("userRating".into(), json!(r));
        }
        if let Some(t) = item.last_rated_at {
            m.insert("lastRatedAt".into(), json!(t));
        }
        if let (Some(show_key), Some(show)) =
            (item.show_key, item.show_key.and_then(|k| self.item(k)))
        {
            m.insert("grandparentRatingKey".into(), json!(show_key.to_string()));
            m.insert(
                "grandparentKey".into(),
                json!(format!("/library/metadata/{show_key}")),
            );
            m.insert("grandparentGuid".into(), json!(show.guid));
            m.insert("grandparentTitle".into(), json!(show.title));
            m.insert("parentIndex".into(), json!(item.season));
            m.insert("index".into(), json!(item.index));
            m.insert(
                "parentTitle".into(),
                json!(format!("Season {}", item.season.unwrap_or(0))),
            );
        }
        if item.kind == PlexKind::Show {
            let eps: Vec<&PlexItem> = self
                .items
                .iter()
                .filter(|e| e.show_key == Some(item.rating_key))
                .collect();
            m.insert("leafCount".into(), json!(eps.len()));
            m.insert(
                "viewedLeafCount".into(),
                json!(eps.iter().filter(|e| e.view_count > 0).count()),
            );
        }
        if guids {
            let g: Vec<Value> = item.external.iter().map(|id| json!({ "id": id })).collect();
            m.insert("Guid".into(), Value::Array(g));
        }
        Value::Object(m)
    }

    /// Library items of a section (or all) and type, with Plex's filters (`field=v`,
    /// `field>>=v` greater than, `field<<=v` less than, on the numeric user-state fields;
    /// a missing value counts as 0) and `sort=field:dir,…`.
    fn search(
        &self,
        q: &HashMap<String, String>,
        section: Option<u32>,
        ty: Option<u32>,
    ) -> Vec<&PlexItem> {
        fn field(i: &PlexItem, name: &str) -> Option<f64> {
            match name {
                "userRating" => i.user_rating,
                "viewCount" => Some(f64::from(i.view_count)).filter(|v| *v > 0.0),
                "lastViewedAt" => i.last_viewed_at.map(|t| t as f64),
                "lastRatedAt" => i.last_rated_at.map(|t| t as f64),
                "viewOffset" => i.view_offset.map(|o| o as f64),
                "addedAt" => Some((START_TIME - 86_400) as f64),
                "ratingKey" => Some(i.rating_key as f64),
                _ => None,
            }
        }
        const FIELDS: [&str; 5] = [
            "userRating",
            "viewCount",
            "lastViewedAt",
            "lastRatedAt",
            "viewOffset",
        ];
        let mut filters: Vec<(&str, &str, f64)> = Vec::new();
        for (k, v) in q {
            let Ok(v) = v.parse::<f64>() else { continue };
            let (name, op) = if let Some(n) = k.strip_suffix(">>") {
                (n, ">")
            } else if let Some(n) = k.strip_suffix("<<") {
                (n, "<")
            } else {
                (k.as_str(), "=")
            };
            if let Some(f) = FIELDS.iter().find(|f| **f == name) {
                filters.push((f, op, v));
            }
        }
        let mut rows: Vec<&PlexItem> = self
            .items
            .iter()
            .filter(|i| section.is_none_or(|s| i.section == s))
            .filter(|i| ty.is_none_or(|t| i.kind.number() == t))
            .filter(|i| {
                filters.iter().all(|(f, op, v)| {
                    let x = field(i, f).unwrap_or(0.0);
                    match *op {
                        ">" => x > *v,
                        "<" => x < *v,
                        _ => x == *v,
                    }
                })
            })
            .collect();
        if let Some(sort) = q.get("sort") {
            let keys: Vec<(String, bool)> = sort
                .split(',')
                .map(|s| {
                    let (f, dir) = s.split_once(':').unwrap_or((s, "asc"));
                    (f.trim().to_owned(), dir.trim() == "desc")
                })
                .collect();
            rows.sort_by(|a, b| {
                for (f, desc) in &keys {
                    let ord = if f == "titleSort" || f == "title" {
                        a.title.cmp(&b.title)
                    } else {
                        let (x, y) = (field(a, f), field(b, f));
                        x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                    };
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                a.rating_key.cmp(&b.rating_key)
            });
        }
        rows
    }

    fn pms_route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let q = query(req);
        if method == "GET" && path == "/identity" {
            return container(json!({
                "size": 0, "claimed": true, "machineIdentifier": MACHINE_ID, "version": "1.41.3.9314"
            }));
        }
        if plex_token(req, &q).as_deref() != Some(self.token.as_str()) {
            return unauthorized();
        }
        let (start, size) = paging(req, &q);
        let guids = q.get("includeGuids").is_some_and(|v| v == "1");
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segs.as_slice()) {
            ("GET", ["library", "sections"]) => container(json!({
                "size": 2,
                "Directory": [
                    {"key": "1", "type": "movie", "title": "Movies", "agent": "tv.plex.agents.movie", "uuid": "sim-section-movies"},
                    {"key": "2", "type": "show", "title": "TV Shows", "agent": "tv.plex.agents.series", "uuid": "sim-section-shows"},
                ],
            })),
            ("GET", ["library", "sections", id, "all"]) => {
                let Ok(section) = id.parse::<u32>() else {
                    return not_found();
                };
                if !(1..=2).contains(&section) {
                    return not_found();
                }
                let default_type = if section == 1 { 1 } else { 2 };
                let ty = q
                    .get("type")
                    .and_then(|t| t.parse::<u32>().ok())
                    .unwrap_or(default_type);
                paged_with(
                    self.search(&q, Some(section), Some(ty)),
                    start,
                    size,
                    fault,
                    json!({"librarySectionID": section}),
                    |i| self.item_json(i, guids),
                )
            }
            // Every section at once (`Library.search` in python-plexapi).
            ("GET", ["library", "all"]) => {
                let ty = q.get("type").and_then(|t| t.parse::<u32>().ok());
                paged_with(
                    self.search(&q, None, ty),
                    start,
                    size,
                    fault,
                    json!({}),
                    |i| self.item_json(i, guids),
                )
            }
            // One rating key or several, comma-separated: the items found, in order.
            ("GET", ["library", "metadata", keys]) => {
                let rows: Vec<Value> = keys
                    .split(',')
                    .filter_map(|k| k.trim().parse::<u64>().ok())
                    .filter_map(|k| self.item(k))
                    .map(|item| self.item_json(item, guids))
                    .collect();
                if rows.is_empty() {
                    return not_found();
                }
                container(json!({"size": rows.len(), "Metadata": rows}))
            }
            ("GET", [":", "prefs"]) => container(json!({
                "size": 3,
                "Setting": [
                    {"id": "FriendlyName", "label": "Friendly name", "type": "text",
                     "default": "", "value": "ferry-sim", "hidden": false, "advanced": false,
                     "group": "general"},
                    {"id": "LibraryVideoPlayedThreshold", "label": "Video played threshold",
                     "type": "int", "default": 90, "value": self.played_threshold,
                     "hidden": false, "advanced": false, "group": "library"},
                    {"id": "LibraryVideoPlayedAtBehaviour",
                     "label": "Video play completion behaviour", "type": "text",
                     "default": "3", "value": self.played_at_behaviour, "hidden": false,
                     "advanced": true, "group": "library",
                     "enumValues": "0:at selected threshold percentage|1:at final credits marker position|2:at first credits marker position|3:earliest between threshold percent and first credits marker"},
                ],
            })),
            ("GET", ["status", "sessions", "history", "all"]) => {
                let mut rows: Vec<&HistoryRow> = self.history.iter().collect();
                if let Some(k) = q.get("metadataItemID").and_then(|k| k.parse::<u64>().ok()) {
                    rows.retain(|r| r.rating_key == k);
                }
                if let Some(s) = q
                    .get("librarySectionID")
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    rows.retain(|r| self.item(r.rating_key).is_some_and(|i| i.section == s));
                }
                if q.get("sort").is_some_and(|s| s == "viewedAt:desc") {
                    rows.sort_by(|a, b| b.viewed_at.cmp(&a.viewed_at).then(b.id.cmp(&a.id)));
                } else {
                    rows.sort_by(|a, b| a.viewed_at.cmp(&b.viewed_at).then(a.id.cmp(&b.id)));
                }
                rows.retain(|r| self.item(r.rating_key).is_some());
                paged_with(rows, start, size, fault, json!({}), |r| {
                    let Some(item) = self.item(r.rating_key) else {
                        return Value::Null;
                    };
                    let mut v = json!({
                        "historyKey": format!("/status/sessions/history/{}", r.id),
                        "key": format!("/library/metadata/{}", r.rating_key),
                        "ratingKey": r.rating_key.to_string(),
                        "librarySectionID": item.section.to_string(),
                        "title": item.title,
                        "type": item.kind.as_str(),
                        "viewedAt": r.viewed_at,
                        "accountID": 1,
                        "deviceID": 1,
                    });
                    if let (Some(show), Value::Object(m)) =
                        (item.show_key.and_then(|k| self.item(k)), &mut v)
                    {
                        m.insert("grandparentTitle".into(), json!(show.title));
                        m.insert(
                            "grandparentKey".into(),
                            json!(format!("/library/metadata/{}", show.rating_key)),
                        );
                        m.insert("parentIndex".into(), json!(item.season));
                        m.insert("index".into(), json!(item.index));
                    }
                    v
                })
            }
            ("DELETE", ["status", "sessions", "history", id]) => {
                let Ok(id) = id.parse::<u64>() else {
                    return not_found();
                };
                let before = self.history.len();
                self.history.retain(|r| r.id != id);
                if self.history.len() == before {
                    not_found()
                } else {
                    self.tick();
                    ok_empty()
                }
            }
            ("GET" | "PUT", [":", "scrobble"]) => {
                if q.get("identifier").map(String::as_str) != Some(LIBRARY_IDENTIFIER) {
                    return bad_request();
                }
                let Some(key) = key_param(&q) else {
                    return bad_request();
                };
                if self.mark_played(key) {
                    ok_empty()
                } else {
                    not_found()
                }
            }
            ("GET" | "PUT", [":", "unscrobble"]) => {
                if q.get("identifier").map(String::as_str) != Some(LIBRARY_IDENTIFIER) {
                    return bad_request();
                }
                let Some(key) = key_param(&q) else {
                    return bad_request();
                };
                self.tick();
                match self.item_mut(key) {
                    Some(item) => {
                        item.view_count = 0;
                        item.last_viewed_at = None;
                        item.view_offset = None;
                        ok_empty()
                    }
                    None => not_found(),
                }
            }
            ("GET" | "PUT", [":", "rate"]) => {
                if q.get("identifier").map(String::as_str) != Some(LIBRARY_IDENTIFIER) {
                    return bad_request();
                }
                let (Some(key), Some(rating)) = (
                    key_param(&q),
                    q.get("rating").and_then(|r| r.parse::<f64>().ok()),
                ) else {
                    return bad_request();
                };
                // The spec: 0 to 10. -1 (python-plexapi's reset) clears.
                let clear = rating == -1.0;
                if !clear && !(0.0..=10.0).contains(&rating) {
                    return bad_request();
                }
                let rated_at = match q.get("ratedAt").map(|t| t.trim().parse::<i64>()) {
                    None => None,
                    Some(Ok(t)) if t <= self.now => Some(t),
                    // Not a number, or "in the future".
                    Some(_) => return bad_request(),
                };
                if self.item(key).is_none() {
                    return not_found();
                }
                let now = self.tick();
                if let Some(item) = self.item_mut(key) {
                    if clear {
                        item.user_rating = None;
                        item.last_rated_at = None;
                    } else {
                        item.user_rating = Some(rating);
                        item.last_rated_at = Some(rated_at.unwrap_or(now));
                    }
                }
                ok_empty()
            }
            ("GET" | "POST" | "PUT", [":", "timeline"] | [":", "progress"]) => {
                let (Some(key), Some(time)) = (
                    key_param(&q),
                    q.get("time").and_then(|t| t.parse::<u64>().ok()),
                ) else {
                    return bad_request();
                };
                let now = self.tick();
                let threshold = u64::from(self.played_threshold);
                let behaviour = self.played_at_behaviour.clone();
                let ignored = self.timeline_ignored;
                let Some(item) = self.item_mut(key) else {
                    return not_found();
                };
                if ignored {
                    return ok_empty();
                }
                let duration = q
                    .get("duration")
                    .and_then(|d| d.parse::<u64>().ok())
                    .filter(|d| *d > 0)
                    .unwrap_or(item.duration_ms);
                // Where the server counts a play: the threshold, or the credits marker as
                // `LibraryVideoPlayedAtBehaviour` says (the threshold without a marker).
                let at_threshold = duration * threshold / 100;
                let played_at = match (behaviour.as_str(), item.credits_at) {
                    ("1" | "2", Some(c)) => c,
                    ("3", Some(c)) => c.min(at_threshold),
                    _ => at_threshold,
                };
                if time == 0 {
                    item.view_offset = None;
                } else if time >= played_at {
                    self.play(key, now);
                } else {
                    item.view_offset = Some(time);
                }
                ok_empty()
            }
            // Playlists and playlist folders; `type=15` playlists only, `type=16` folders
            // only. `playlistType` limits playlists (folders have none and stay).
            ("GET", ["playlists"]) => {
                let ty = q.get("type").map(String::as_str);
                let rows: Vec<Value> = self
                    .playlists
                    .iter()
                    .filter(|p| match ty {
                        None => true,
                        Some("15") => !p.folder,
                        Some("16") => p.folder,
                        Some(_) => false,
                    })
                    .filter(|p| p.folder || q.get("playlistType").is_none_or(|t| t == "video"))
                    .map(playlist_json)
                    .collect();
                paged(rows, start, size, fault, json!({}))
            }
            ("POST", ["playlists"]) => {
                let title = q.get("title").map(|t| t.trim()).unwrap_or_default();
                if title.is_empty() || q.get("type").is_some_and(|t| t != "video") {
                    return bad_request();
                }
                let keys = match q.get("uri") {
                    Some(uri) => match uri_keys(uri) {
                        Some(k) if k.iter().all(|k| self.by_key.contains_key(k)) => k,
                        _ => return bad_request(),
                    },
                    None => Vec::new(),
                };
                let id = self.next_id;
                self.next_id += 1;
                let mut pl = SimPlaylist::new(id, title);
                pl.smart = q.get("smart").is_some_and(|s| s == "1");
                for k in keys {
                    pl.items.push((self.next_id, k));
                    self.next_id += 1;
                }
                self.tick();
                let v = playlist_json(&pl);
                self.playlists.push(pl);
                container(json!({"size": 1, "Metadata": [v]}))
            }
            (m, ["playlists", id, rest @ ..]) => {
                let Some(pi) = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.playlists.iter().position(|p| p.id == id))
                else {
                    return not_found();
                };
                self.playlist_route(pi, m, rest, &q, start, size, fault, guids)
            }
            _ => not_found(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn playlist_route(
        &mut self,
        pi: usize,
        method: &str,
        rest: &[&str],
        q: &HashMap<String, String>,
        start: usize,
        size: Option<usize>,
        fault: &ListFault,
        guids: bool,
    ) -> ResponseTemplate {
        let pl = &self.playlists[pi];
        if pl.read_only && method != "GET" {
            // "cannot be altered or deleted directly by the client"
            return html(403, "Forbidden");
        }
        if pl.folder && method != "GET" && !(method == "DELETE" && rest.is_empty()) {
            return bad_request();
        }
        match (method, rest) {
            ("GET", []) => {
                container(json!({"size": 1, "Metadata": [playlist_json(&self.playlists[pi])]}))
            }
            ("PUT", []) => {
                if let Some(t) = q.get("title") {
                    self.playlists[pi].title = t.clone();
                }
                if let Some(s) = q.get("summary") {
                    self.playlists[pi].summary = s.clone();
                }
                self.tick();
                ok_empty()
            }
            ("DELETE", []) => {
                self.playlists.remove(pi);
                self.tick();
                ok_empty()
            }
            ("GET", ["items"]) => {
                let rows: Vec<Value> = self.playlists[pi]
                    .items
                    .iter()
                    .filter_map(|(pid, k)| {
                        let mut v = self.item_json(self.item(*k)?, guids);
                        if let Value::Object(m) = &mut v {
                            m.insert("playlistItemID".into(), json!(pid));
                        }
                        Some(v)
                    })
                    .collect();
                let title = self.playlists[pi].title.clone();
                paged(
                    rows,
                    start,
                    size,
                    fault,
                    json!({"title": title, "playlistType": "video"}),
                )
            }
            ("PUT", ["items"]) => {
                if self.playlists[pi].smart {
                    return bad_request();
                }
                let Some(keys) = q.get("uri").and_then(|u| uri_keys(u)) else {
                    return bad_request();
                };
                if !keys.iter().all(|k| self.by_key.contains_key(k)) {
                    return bad_request();
                }
                let added = keys.len();
                for k in keys {
                    let pid = self.next_id;
                    self.next_id += 1;
                    self.playlists[pi].items.push((pid, k));
                }
                self.tick();
                container(json!({"size": 1, "leafCountAdded": added, "leafCountRequested": added}))
            }
            ("DELETE", ["items", pid]) => {
                let Ok(pid) = pid.parse::<u64>() else {
                    return not_found();
                };
                let items = &mut self.playlists[pi].items;
                let before = items.len();
                items.retain(|(p, _)| *p != pid);
                if items.len() == before {
                    return not_found();
                }
                self.tick();
                ok_empty()
            }
            ("PUT", ["items", pid, "move"]) => {
                let items = &mut self.playlists[pi].items;
                let Some(from) = pid
                    .parse::<u64>()
                    .ok()
                    .and_then(|pid| items.iter().position(|(p, _)| *p == pid))
                else {
                    return not_found();
                };
                let entry = items.remove(from);
                match q.get("after").and_then(|a| a.parse::<u64>().ok()) {
                    Some(after) => match items.iter().position(|(p, _)| *p == after) {
                        Some(i) => items.insert(i + 1, entry),
                        None => {
                            items.insert(from, entry);
                            return bad_request();
                        }
                    },
                    None => items.insert(0, entry),
                }
                self.tick();
                ok_empty()
            }
            _ => not_found(),
        }
    }
}

fn playlist_json(p: &SimPlaylist) -> Value {
    if p.folder {
        // Metadata type 16 (the spec documents only that `type=15` leaves them out).
        return json!({
            "ratingKey": p.id.to_string(),
            "key": format!("/playlists/{}/items", p.id),
            "type": "playlistFolder",
            "title": p.title,
        });
    }
    let mut v = json!({
        "ratingKey": p.id.to_string(),
        "key": format!("/playlists/{}/items", p.id),
        "guid": format!("com.plexapp.agents.none://sim-playlist-{}", p.id),
        "type": "playlist",
        "title": p.title,
        "summary": p.summary,
        "smart": p.smart,
        "playlistType": "video",
        "leafCount": p.items.len(),
    });
    if let Value::Object(m) = &mut v {
        if p.read_only {
            m.insert("readOnly".into(), json!(true));
        }
        if let Some(special) = &p.special {
            m.insert("specialPlaylistType".into(), json!(special));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Discover.

#[derive(Debug)]
struct DiscoverRouter(Arc<Mutex<PlexState>>);

impl Respond for DiscoverRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.discover.begin(req);
        seen.answer_list(|method, path, fault| st.discover_route(req, method, path, fault))
    }
}

impl PlexState {
    fn by_discover_key(&self, key: &str) -> Option<&PlexItem> {
        self.items
            .iter()
            .find(|i| i.kind != PlexKind::Episode && i.discover_key() == key)
    }

    fn discover_route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let q = query(req);
        if plex_token(req, &q).as_deref() != Some(self.discover_token.as_str()) {
            return unauthorized();
        }
        let (start, size) = paging(req, &q);
        let guids = q.get("includeGuids").is_some_and(|v| v == "1");
        match (method, path) {
            ("GET", "/library/sections/watchlist/all") => {
                // Newest first unless `sort` says otherwise (watchlistedAt or titleSort).
                let mut listed: Vec<&(String, i64)> = self.watchlist.iter().rev().collect();
                match q.get("sort").map(String::as_str) {
                    Some("watchlistedAt:asc" | "watchlistedAt") => listed.reverse(),
                    Some(s) if s.starts_with("titleSort") => {
                        listed
                            .sort_by_key(|(k, _)| self.by_discover_key(k).map(|i| i.title.clone()));
                        if s.ends_with(":desc") {
                            listed.reverse();
                        }
                    }
                    _ => {}
                }
                let rows: Vec<Value> = listed
                    .into_iter()
                    .filter_map(|(k, at)| {
                        let item = self.by_discover_key(k)?;
                        let mut v = json!({
                            "ratingKey": k,
                            "key": format!("/library/metadata/{k}"),
                            "guid": item.guid,
                            "type": item.kind.as_str(),
                            "title": item.title,
                            "year": item.year,
                            "watchlistedAt": at,
                        });
                        if guids && let Value::Object(m) = &mut v {
                            let g: Vec<Value> =
                                item.external.iter().map(|id| json!({ "id": id })).collect();
                            m.insert("Guid".into(), Value::Array(g));
                        }
                        Some(v)
                    })
                    .collect();
                paged(
                    rows,
                    start,
                    size,
                    fault,
                    json!({"librarySectionID": "watchlist", "identifier": "tv.plex.provider.discover"}),
                )
            }
            ("PUT", "/actions/addToWatchlist") => {
                let Some(key) = q.get("ratingKey").cloned() else {
                    return bad_request();
                };
                if self.by_discover_key(&key).is_none() {
                    return not_found();
                }
                if self.watchlist.iter().any(|(k, _)| *k == key) {
                    return ResponseTemplate::new(409)
                        .set_body_json(json!({"error": "This item is already on the watchlist"}));
                }
                let now = self.tick();
                self.watchlist.push((key, now));
                ok_empty()
            }
            ("PUT", "/actions/removeFromWatchlist") => {
                let Some(key) = q.get("ratingKey").cloned() else {
                    return bad_request();
                };
                let before = self.watchlist.len();
                self.watchlist.retain(|(k, _)| *k != key);
                if self.watchlist.len() == before {
                    return not_found();
                }
                self.tick();
                ok_empty()
            }
            _ => not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_rating_keys_on_this_machine() {
        assert_eq!(
            uri_keys(&format!(
                "server://{MACHINE_ID}/com.plexapp.plugins.library/library/metadata/1,22"
            )),
            Some(vec![1, 22])
        );
        assert_eq!(
            uri_keys("server://other/com.plexapp.plugins.library/library/metadata/1"),
            None
        );
    }

    #[test]
    fn library_items_carry_plex_and_external_guids() {
        let m = movie_item(3);
        assert_eq!(m.rating_key, PlexSim::movie_key(3));
        assert_eq!(m.discover_key().len(), 24);
        assert!(m.external.contains(&"tmdb://900003".to_owned()));
        let e = episode_item(1, 1, 2, 7);
        assert_eq!(e.rating_key, PlexSim::episode_key(1, 1, 2));
        assert_eq!(e.external, vec!["tvdb://10010102".to_owned()]);
    }

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

//! A stateful simulator of a Jellyfin (10.9+) server, with an Emby route table.
//!
//! One user, a library of sample titles with `ProviderIds` {Tmdb, Imdb, Tvdb}, and that
//! user's `UserData` per item (played, last played date, play count, resume position,
//! favourite), plus playlists. Writes change later reads.
//!
//! Route tables ([`Flavor`]):
//! - **Jellyfin** (the 10.9+ OpenAPI): `GET /Items?userId=`, `GET /Items/{id}?userId=`,
//!   `POST|DELETE /UserFavoriteItems/{id}?userId=`, `POST|DELETE
//!   /UserPlayedItems/{id}?userId=&datePlayed=<ISO 8601>`, `GET|POST
//!   /UserItems/{id}/UserData?userId=`, `POST /Playlists` with a JSON body. The legacy
//!   `/Users/{userId}/…` item routes answer 404. Auth: `Authorization` (or
//!   `X-Emby-Authorization`) `MediaBrowser …, Token="…"`, `X-Emby-Token`,
//!   `X-MediaBrowser-Token` or `api_key`.
//! - **Emby**: `GET /Users/{userId}/Items`, `POST|DELETE /Users/{userId}/FavoriteItems/{id}`,
//!   `POST|DELETE /Users/{userId}/PlayedItems/{id}?DatePlayed=yyyyMMddHHmmss`, `POST
//!   /Users/{userId}/Items/{id}/UserData`, `POST /Playlists?Name=&Ids=&UserId=`; numeric
//!   item ids.
//!
//! Shared: `/System/Info[/Public]`, `/Users/{userId}`, `/Playlists/{id}/Items` (add with
//! `Ids`, remove with `EntryIds`, move), `DELETE /Items/{id}`. Query parameter names are
//! case-insensitive, as on the real servers. `ProviderIds` are only returned when `Fields`
//! asks for them; paging is `StartIndex`/`Limit` with `TotalRecordCount`. `Filters`
//! (`IsFavorite`, `IsPlayed`, `IsUnplayed`, `IsResumable`: a position, played or not),
//! `SortBy=DatePlayed|SortName` and `SortOrder` follow the server; a playlist's `Etag`
//! (`Fields=Etag`) is a hash of its `DateLastSaved`, which every save moves (created,
//! entries added, removed or moved).
//!
//! Where the servers differ in ways that can lose data, the simulator takes the published
//! (or the pessimistic) reading:
//! - **Emby list reads** (`/Users/{userId}/Items`, `/Playlists/{id}/Items`) leave
//!   `LastPlayedDate` out of `UserData` and report `PlayCount` as 0 unless `Fields`
//!   names `UserDataLastPlayedDate` / `UserDataPlayCount` (Emby forum topic 119268); the
//!   single-item read `GET /Users/{userId}/Items/{id}` carries the whole record.
//! - **Emby's `POST …/UserData`** takes the whole `UserItemDataDto`: a field left out (or
//!   null) is reset (0, false, no date).
//! - **Jellyfin playlists** keep each item once (`playlists:allowDuplicates` is off by
//!   default: an id already in the playlist, or twice in one request, is dropped). Each
//!   playlist has an owner and may be `OpenAccess` (readable by every user). Adding needs
//!   the owner (the `userId` parameter or the token's user); removing and moving entries
//!   need the *token's* user to be the owner, so an API key (a token without a user, see
//!   [`JellyfinSim::use_api_key`]) gets 403; `GET /Playlists/{id}/Users` answers only the
//!   owner (403 otherwise); `GET /Users/Me` answers 400 to an API key. Emby's playlists
//!   keep duplicates and have no owner checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::{IdKind, Item, Timestamp};
use serde_json::{Map, Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::{Fault, FaultControl, FaultRule, Knobs, ListFault, window};

/// The token the simulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "jf-sim-token-0123456789abcdef";
/// The simulated user's id.
pub const USER_ID: &str = "5f1d2c3b4a5968778695a4b3c2d1e0f1";
/// Another user of the same server (owner of playlists seeded for them).
pub const OTHER_USER_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
/// The server clock at start (2025-06-15T14:40:00Z).
pub const START_TIME: i64 = 1_750_000_000;
/// Ticks per millisecond (1 tick = 100 ns).
pub const TICKS_PER_MS: u64 = 10_000;

/// Which server's route table the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Jellyfin,
    Emby,
}

/// The type of a library item (`Type` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JfKind {
    Movie,
    Series,
    Episode,
}

impl JfKind {
    fn as_str(self) -> &'static str {
        match self {
            JfKind::Movie => "Movie",
            JfKind::Series => "Series",
            JfKind::Episode => "Episode",
        }
    }
}

/// The user's state for one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserData {
    pub played: bool,
    pub play_count: u32,
    pub last_played: Option<i64>,
    pub position_ticks: u64,
    pub favorite: bool,
}

/// One library item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JfItem {
    pub id: String,
    pub kind: JfKind,
    pub name: String,
    pub year: Option<u16>,
    /// `("Tmdb", "603")`, `("Imdb", "tt…")`, `("Tvdb", "…")`.
    pub provider_ids: Vec<(String, String)>,
    pub run_time_ticks: u64,
    pub series_id: Option<String>,
    pub series_name: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    pub user: UserData,
}

/// A playlist: `(PlaylistItemId, item id)` entries in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JfPlaylist {
    pub id: String,
    pub name: String,
    pub entries: Vec<(String, String)>,
    /// The owner's user id (Jellyfin's `OwnerUserId`).
    pub owner: String,
    /// Readable by every user (Jellyfin's `OpenAccess`); still editable only by the owner.
    pub open_access: bool,
    /// `DateLastSaved` (epoch seconds): the server stamps it on every save of the
    /// playlist (created, entries added, removed or moved). Not served itself; `Etag`
    /// (`Fields=Etag`) is a hash of it.
    pub saved_at: i64,
}

impl JfPlaylist {
    /// The item's `Etag`: on the real server the MD5 of `DateLastSaved`'s ticks; here a
    /// 128-bit FNV-1a of the same ticks (any stable hash will do for a client).
    pub fn etag(&self) -> String {
        let ticks = (i128::from(self.saved_at) + 62_135_596_800) * 10_000_000;
        let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        for b in ticks.to_string().bytes() {
            h ^= u128::from(b);
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
        format!("{h:032x}")
    }
}

#[derive(Debug)]
struct JfState {
    flavor: Flavor,
    token: String,
    /// The token is an API key: it carries no user.
    api_key: bool,
    items: Vec<JfItem>,
    by_id: HashMap<String, usize>,
    playlists: Vec<JfPlaylist>,
    next_id: u64,
    now: i64,
    ignore_date_played: bool,
    knobs: Knobs,
}

fn lock(m: &Mutex<JfState>) -> MutexGuard<'_, JfState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds a [`JellyfinSim`] with a chosen library and route table.
#[derive(Debug, Clone)]
pub struct JellyfinSimBuilder {
    flavor: Flavor,
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    token: String,
}

impl Default for JellyfinSimBuilder {
    fn default() -> Self {
        JellyfinSimBuilder {
            flavor: Flavor::Jellyfin,
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 2,
            seasons: 1,
            episodes: 4,
            token: DEFAULT_TOKEN.to_owned(),
        }
    }
}

impl JellyfinSimBuilder {
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Sample movies `0..n` (default [`SAMPLE_LIBRARY_SIZE`]).
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

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    pub async fn start(self) -> JellyfinSim {
        let f = self.flavor;
        let mut items = Vec::with_capacity(self.movies as usize);
        for n in 0..self.movies {
            let m = samples::movie(n);
            items.push(JfItem {
                id: item_id(f, 1, u64::from(n)),
                kind: JfKind::Movie,
                name: m.title.clone().unwrap_or_default(),
                year: m.year,
                provider_ids: provider_ids(&m),
                run_time_ticks: 6_000_000 * TICKS_PER_MS,
                series_id: None,
                series_name: None,
                season: None,
                episode: None,
                user: UserData::default(),
            });
        }
        for n in 0..self.shows {
            let s = samples::show(n);
            let sid = item_id(f, 2, u64::from(n));
            let name = s.title.clone().unwrap_or_default();
            items.push(JfItem {
                id: sid.clone(),
                kind: JfKind::Series,
                name: name.clone(),
                year: s.year,
                provider_ids: provider_ids(&s),
                run_time_ticks: 0,
                series_id: None,
                series_name: None,
                season: None,
                episode: None,
                user: UserData::default(),
            });
            for se in 1..=self.seasons {
                for e in 1..=self.episodes {
                    let ep = samples::episode(n, se, e);
                    let serial = u64::from(n) * 10_000 + u64::from(se) * 100 + u64::from(e);
                    items.push(JfItem {
                        id: item_id(f, 3, serial),
                        kind: JfKind::Episode,
                        name: format!("Episode {e}"),
                        year: None,
                        provider_ids: provider_ids(&ep),
                        run_time_ticks: 2_400_000 * TICKS_PER_MS,
                        series_id: Some(sid.clone()),
                        series_name: Some(name.clone()),
                        season: Some(se),
                        episode: Some(e),
                        user: UserData::default(),
                    });
                }
            }
        }
        let by_id = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.clone(), i))
            .collect();
        let state = Arc::new(Mutex::new(JfState {
            flavor: f,
            token: self.token,
            api_key: false,
            items,
            by_id,
            playlists: Vec::new(),
            next_id: 1,
            now: START_TIME,
            ignore_date_played: false,
            knobs: Knobs::default(),
        }));
        let server = super::server().await;
        Mock::given(any())
            .respond_with(Router(state.clone()))
            .mount(&server)
            .await;
        JellyfinSim {
            server: Arc::new(server),
            state,
        }
    }
}

/// Jellyfin ids are 32 hex digits; Emby ids are decimal numbers.
fn item_id(f: Flavor, tag: u64, n: u64) -> String {
    match f {
        Flavor::Jellyfin => format!("{tag:02x}f1e0{n:026x}"),
        Flavor::Emby => (tag * 10_000_000 + n).to_string(),
    }
}

fn provider_ids(item: &Item) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (kind, name) in [
        (IdKind::Tmdb, "Tmdb"),
        (IdKind::Imdb, "Imdb"),
        (IdKind::Tvdb, "Tvdb"),
    ] {
        if let Some(v) = item.ids.get(kind) {
            out.push((name.to_owned(), v.to_owned()));
        }
    }
    out
}

/// `2024-03-01T12:00:00.0000000Z`, the way Jellyfin writes dates.
pub fn jellyfin_date(epoch: i64) -> String {
    let s = Timestamp::from_unix(epoch).to_rfc3339();
    format!("{}.0000000Z", s.trim_end_matches('Z'))
}

/// Emby's `DatePlayed` format, `yyyyMMddHHmmss` in UTC.
fn parse_compact_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14]
    );
    Timestamp::parse(&iso).map(Timestamp::unix)
}

impl FaultControl for JellyfinSim {
    fn inject(&self, rule: FaultRule) {
        self.st().knobs.inject(rule);
    }

    fn clear_faults(&self) {
        self.st().knobs.clear_faults();
    }

    fn faults_fired(&self) -> u64 {
        self.st().knobs.fired()
    }

    /// Watchlist, history and progress are read from the one library list; playlists
    /// read a list per playlist, which the suite does not attack.
    fn list_path(&self, feature: ferry_core::Feature) -> Option<String> {
        use ferry_core::Feature as F;
        match feature {
            F::Watchlist | F::History | F::Progress => Some(match self.flavor() {
                Flavor::Jellyfin => "/Items".to_owned(),
                Flavor::Emby => format!("/Users/{USER_ID}/Items"),
            }),
            F::Ratings | F::Playlists => None,
        }
    }

    fn rate_limit_gap(&self) -> Option<Duration> {
        self.st().knobs.rate_limit_gap()
    }
}

/// A running Jellyfin (or Emby) simulator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JellyfinSim {
    server: Arc<MockServer>,
    state: Arc<Mutex<JfState>>,
}

impl JellyfinSim {
    /// A Jellyfin simulator holding [`SAMPLE_LIBRARY_SIZE`] sample movies and two shows.
    pub async fn start() -> JellyfinSim {
        JellyfinSimBuilder::default().start().await
    }

    /// The same library behind Emby's route table.
    pub async fn start_emby() -> JellyfinSim {
        JellyfinSimBuilder::default()
            .flavor(Flavor::Emby)
            .start()
            .await
    }

    pub fn builder() -> JellyfinSimBuilder {
        JellyfinSimBuilder::default()
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn st(&self) -> MutexGuard<'_, JfState> {
        lock(&self.state)
    }

    pub fn flavor(&self) -> Flavor {
        self.st().flavor
    }

    pub fn token(&self) -> String {
        self.st().token.clone()
    }

    pub fn user_id(&self) -> &'static str {
        USER_ID
    }

    /// Replaces the accepted token: the old one now gets 401.
    pub fn set_token(&self, token: impl Into<String>) {
        self.st().token = token.into();
    }

    /// Makes the accepted token an API key (`true`: requests carry no user, as with a key
    /// from Dashboard → API Keys) or the user's access token (`false`, the default).
    pub fn use_api_key(&self, on: bool) {
        self.st().api_key = on;
    }

    /// Makes mark-played ignore `datePlayed` and stamp the server's clock instead.
    pub fn ignore_date_played(&self, on: bool) {
        self.st().ignore_date_played = on;
    }

    pub fn now(&self) -> i64 {
        self.st().now
    }

    /// The item id of sample movie `n`.
    pub fn movie_id(&self, n: u32) -> String {
        item_id(self.flavor(), 1, u64::from(n))
    }

    /// The id of the library item sharing a tmdb/imdb/tvdb id with `item`.
    pub fn item_id_of(&self, item: &Item) -> Option<String> {
        let want = provider_ids(item);
        let kind = match item.kind {
            ferry_core::MediaType::Show => JfKind::Series,
            ferry_core::MediaType::Episode => JfKind::Episode,
            _ => JfKind::Movie,
        };
        self.st()
            .items
            .iter()
            .find(|i| i.kind == kind && i.provider_ids.iter().any(|p| want.contains(p)))
            .map(|i| i.id.clone())
    }

    pub fn item(&self, id: &str) -> Option<JfItem> {
        let st = self.st();
        st.by_id.get(id).map(|i| st.items[*i].clone())
    }

    pub fn items(&self) -> Vec<JfItem> {
        self.st().items.clone()
    }

    pub fn playlists(&self) -> Vec<JfPlaylist> {
        self.st().playlists.clone()
    }

    fn with_user(&self, id: &str, f: impl FnOnce(&mut UserData)) {
        let mut st = self.st();
        if let Some(i) = st.by_id.get(id).copied() {
            f(&mut st.items[i].user);
        }
    }

    pub fn seed_favorite(&self, id: &str, on: bool) {
        self.with_user(id, |u| u.favorite = on);
    }

    pub fn seed_played(&self, id: &str, at: i64) {
        self.with_user(id, |u| {
            u.played = true;
            u.play_count += 1;
            u.last_played = Some(at);
            u.position_ticks = 0;
        });
    }

    /// The user marks an item unplayed in a client (the play and any resume point go).
    pub fn mark_unplayed(&self, id: &str) {
        self.with_user(id, |u| {
            u.played = false;
            u.play_count = 0;
            u.last_played = None;
            u.position_ticks = 0;
        });
        self.st().tick();
    }

    /// The user watches an item to the end in a client: played now.
    pub fn watch_now(&self, id: &str) -> i64 {
        let now = self.st().tick();
        self.with_user(id, |u| {
            u.played = true;
            u.play_count += 1;
            u.last_played = Some(now);
            u.position_ticks = 0;
        });
        now
    }

    /// The user edits a playlist in a client (`f` gets its `(entry id, item id)` list);
    /// the server saves the playlist, which moves its `Etag`.
    pub fn edit_playlist(&self, id: &str, f: impl FnOnce(&mut Vec<(String, String)>)) {
        let mut st = self.st();
        let now = st.tick();
        if let Some(p) = st.playlists.iter_mut().find(|p| p.id == id) {
            f(&mut p.entries);
            p.saved_at = now;
        }
    }

    /// Another client (or user) creates a playlist: `owner` is its owner's user id,
    /// `open_access` makes it readable by every user. Returns its id.
    pub fn seed_playlist(
        &self,
        name: &str,
        owner: &str,
        open_access: bool,
        items: &[String],
    ) -> String {
        let mut st = self.st();
        let id = st.new_id(4);
        let mut entries = Vec::new();
        for item in items {
            let e = st.new_id(5);
            entries.push((e, item.clone()));
        }
        let saved_at = st.tick();
        st.playlists.push(JfPlaylist {
            id: id.clone(),
            name: name.to_owned(),
            entries,
            owner: owner.to_owned(),
            open_access,
            saved_at,
        });
        id
    }

    /// Marks an item played with no last played date (as imports and some older clients
    /// leave it).
    pub fn seed_played_without_date(&self, id: &str) {
        self.with_user(id, |u| {
            u.played = true;
            u.play_count += 1;
            u.last_played = None;
            u.position_ticks = 0;
        });
    }

    /// Sets an item's play count (what a client's plays would have counted).
    pub fn seed_play_count(&self, id: &str, n: u32) {
        self.with_user(id, |u| u.play_count = n);
    }

    pub fn seed_position(&self, id: &str, position_ms: u64, at: i64) {
        self.with_user(id, |u| {
            u.position_ticks = position_ms * TICKS_PER_MS;
            u.last_played = Some(at);
        });
    }

    pub fn inject(&self, rule: FaultRule) {
        self.st().knobs.inject(rule);
    }

    pub fn fail_next(&self, status: u16, n: u32) {
        self.inject(FaultRule::new(Fault::Status(status)).times(n));
    }

    pub fn rate_limit_next(&self, retry_after_secs: u64, n: u32) {
        self.inject(FaultRule::new(Fault::RateLimited { retry_after_secs }).times(n));
    }

    pub fn malformed_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Malformed).on(path_prefix));
    }

    pub fn truncate_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Truncate).on(path_prefix));
    }

    pub fn set_latency(&self, d: Duration) {
        self.st().knobs.set_latency(d);
    }

    pub fn clear_faults(&self) {
        self.st().knobs.clear_faults();
    }

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

    pub fn routes(&self) -> std::collections::BTreeMap<String, u64> {
        self.st().knobs.routes()
    }

    pub fn reset_counts(&self) {
        self.st().knobs.reset_counts();
    }
}

// ---------------------------------------------------------------------------------------
// Request plumbing.

/// Query parameters with lower-cased names (ASP.NET binds them case-insensitively).
fn query(req: &Request) -> HashMap<String, String> {
    req.url
        .query_pairs()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token from any of the places Jellyfin and Emby accept one.
fn request_token(req: &Request, q: &HashMap<String, String>) -> Option<String> {
    for name in ["Authorization", "X-Emby-Authorization"] {
        if let Some(v) = header(req, name)
            && let Some(rest) = v.trim().strip_prefix("MediaBrowser")
        {
            for part in rest.split(',') {
                if let Some((k, val)) = part.trim().split_once('=')
                    && k.trim().eq_ignore_ascii_case("token")
                {
                    return Some(val.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    for name in ["X-Emby-Token", "X-MediaBrowser-Token"] {
        if let Some(v) = header(req, name) {
            return Some(v.trim().to_owned());
        }
    }
    q.get("api_key").or_else(|| q.get("apikey")).cloned()
}

fn list(q: &HashMap<String, String>, name: &str) -> Vec<String> {
    q.get(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn flag(q: &HashMap<String, String>, name: &str) -> Option<bool> {
    q.get(name).map(|v| v.eq_ignore_ascii_case("true"))
}

fn usize_param(q: &HashMap<String, String>, name: &str) -> Option<usize> {
    q.get(name).and_then(|v| v.trim().parse().ok())
}

fn error(status: u16, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(msg.to_owned(), "text/plain")
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401)
}

fn not_found() -> ResponseTemplate {
    error(404, "Item not found.")
}

fn bad_request(msg: &str) -> ResponseTemplate {
    error(400, msg)
}

fn no_content() -> ResponseTemplate {
    ResponseTemplate::new(204)
}

fn ok_json(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

#[derive(Debug)]
struct Router(Arc<Mutex<JfState>>);

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        seen.answer_list(|method, path, fault| st.route(req, method, path, fault))
    }
}

/// Which user-data write a route performs.
#[derive(Debug, Clone, Copy)]
enum Write {
    Favorite(bool),
    Played(bool),
    UserData,
}

/// Which of the optional `UserData` fields an answer carries.
#[derive(Debug, Clone, Copy)]
struct UdFields {
    last_played: bool,
    play_count: bool,
}

impl UdFields {
    const ALL: UdFields = UdFields {
        last_played: true,
        play_count: true,
    };
}

impl JfState {
    fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    fn item(&self, id: &str) -> Option<&JfItem> {
        self.by_id.get(id).map(|i| &self.items[*i])
    }

    /// The `UserData` fields a list read carries: all of them on Jellyfin; on Emby the
    /// last played date and the play count only when `Fields` names them (without
    /// `UserDataPlayCount` Emby reports `PlayCount: 0`).
    fn list_fields(&self, q: &HashMap<String, String>) -> UdFields {
        if self.flavor == Flavor::Jellyfin {
            return UdFields::ALL;
        }
        let fields = list(q, "fields");
        let has = |name: &str| fields.iter().any(|f| f.eq_ignore_ascii_case(name));
        UdFields {
            last_played: has("UserDataLastPlayedDate"),
            play_count: has("UserDataPlayCount"),
        }
    }

    fn user_data_json(&self, item: &JfItem, f: UdFields) -> Value {
        let u = &item.user;
        let mut m = Map::new();
        m.insert("PlaybackPositionTicks".into(), json!(u.position_ticks));
        m.insert(
            "PlayCount".into(),
            json!(if f.play_count { u.play_count } else { 0 }),
        );
        m.insert("IsFavorite".into(), json!(u.favorite));
        m.insert("Played".into(), json!(u.played));
        m.insert("Key".into(), json!(item.id));
        m.insert("ItemId".into(), json!(item.id));
        if let Some(t) = u.last_played.filter(|_| f.last_played) {
            m.insert("LastPlayedDate".into(), json!(jellyfin_date(t)));
        }
        if item.run_time_ticks > 0 && u.position_ticks > 0 {
            m.insert(
                "PlayedPercentage".into(),
                json!(u.position_ticks as f64 * 100.0 / item.run_time_ticks as f64),
            );
        }
        Value::Object(m)
    }

    fn item_json(&self, item: &JfItem, provider_ids: bool, user_data: Option<UdFields>) -> Value {
        let mut m = Map::new();
        m.insert("Name".into(), json!(item.name));
        m.insert("ServerId".into(), json!("sim-server-0001"));
        m.insert("Id".into(), json!(item.id));
        m.insert("Type".into(), json!(item.kind.as_str()));
        m.insert(
            "MediaType".into(),
            json!(if item.kind == JfKind::Series {
                "Unknown"
            } else {
                "Video"
            }),
        );
        if let Some(y) = item.year {
            m.insert("ProductionYear".into(), json!(y));
        }
        if item.run_time_ticks > 0 {
            m.insert("RunTimeTicks".into(), json!(item.run_time_ticks));
        }
        if let Some(s) = &item.series_id {
            m.insert("SeriesId".into(), json!(s));
            m.insert("SeriesName".into(), json!(item.series_name));
            m.insert("ParentIndexNumber".into(), json!(item.season));
            m.insert("IndexNumber".into(), json!(item.episode));
        }
        if provider_ids {
            let p: Map<String, Value> = item
                .provider_ids
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            m.insert("ProviderIds".into(), Value::Object(p));
        }
        if let Some(f) = user_data {
            m.insert("UserData".into(), self.user_data_json(item, f));
        }
        Value::Object(m)
    }

    fn playlist_json(&self, p: &JfPlaylist, etag: bool) -> Value {
        let mut v = json!({
            "Name": p.name,
            "ServerId": "sim-server-0001",
            "Id": p.id,
            "Type": "Playlist",
            "MediaType": "Video",
            "IsFolder": true,
            "ChildCount": p.entries.len(),
        });
        if etag && let Value::Object(m) = &mut v {
            m.insert("Etag".into(), json!(p.etag()));
        }
        v
    }

    fn route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let q = query(req);
        if method == "GET" && path.eq_ignore_ascii_case("/System/Info/Public") {
            return ok_json(self.system_info());
        }
        if request_token(req, &q).as_deref() != Some(self.token.as_str()) {
            return unauthorized();
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let emby = self.flavor == Flavor::Emby;
        match (method, lower.as_slice()) {
            ("GET", ["system", "info"]) => ok_json(self.system_info()),
            // The token's user; "400 Token is not owned by a user" for an API key.
            ("GET", ["users", "me"]) => match self.token_user() {
                Some(u) => ok_json(json!({"Name": "sim", "Id": u, "HasPassword": true})),
                None => bad_request("Token is not owned by a user."),
            },
            ("GET", ["users", _]) => {
                if segs[1] == USER_ID {
                    ok_json(json!({"Name": "sim", "Id": USER_ID, "HasPassword": true}))
                } else {
                    not_found()
                }
            }
            // Jellyfin 10.9+ item routes.
            ("GET", ["items"]) if !emby => match self.user_param(&q) {
                Ok(user) => self.items_query(&q, user, fault),
                Err(r) => *r,
            },
            ("GET", ["items", _]) if !emby => match self.user_param(&q) {
                Ok(user) => self.get_one(segs[1], user),
                Err(r) => *r,
            },
            ("POST" | "DELETE", ["userfavoriteitems", _]) if !emby => match self.user_param(&q) {
                Ok(_) => self.write(segs[1], Write::Favorite(method == "POST"), req, &q),
                Err(r) => *r,
            },
            ("POST" | "DELETE", ["userplayeditems", _]) if !emby => match self.user_param(&q) {
                Ok(_) => self.write(segs[1], Write::Played(method == "POST"), req, &q),
                Err(r) => *r,
            },
            ("GET", ["useritems", _, "userdata"]) if !emby => {
                match (self.user_param(&q), self.item(segs[1])) {
                    (Err(r), _) => *r,
                    (Ok(_), Some(item)) => ok_json(self.user_data_json(item, UdFields::ALL)),
                    (Ok(_), None) => not_found(),
                }
            }
            ("POST", ["useritems", _, "userdata"]) if !emby => match self.user_param(&q) {
                Ok(_) => self.write(segs[1], Write::UserData, req, &q),
                Err(r) => *r,
            },
            // Emby (and legacy) user-scoped routes.
            ("GET", ["users", _, "items"]) if emby => match self.user_path(segs[1]) {
                Ok(()) => self.items_query(&q, true, fault),
                Err(r) => *r,
            },
            ("GET", ["users", _, "items", _]) if emby => match self.user_path(segs[1]) {
                Ok(()) => self.get_one(segs[3], true),
                Err(r) => *r,
            },
            ("POST" | "DELETE", ["users", _, "favoriteitems", _]) if emby => {
                match self.user_path(segs[1]) {
                    Ok(()) => self.write(segs[3], Write::Favorite(method == "POST"), req, &q),
                    Err(r) => *r,
                }
            }
            ("POST" | "DELETE", ["users", _, "playeditems", _]) if emby => {
                match self.user_path(segs[1]) {
                    Ok(()) => self.write(segs[3], Write::Played(method == "POST"), req, &q),
                    Err(r) => *r,
                }
            }
            ("POST", ["users", _, "items", _, "userdata"]) if emby => {
                match self.user_path(segs[1]) {
                    Ok(()) => self.write(segs[3], Write::UserData, req, &q),
                    Err(r) => *r,
                }
            }
            ("DELETE", ["items", _]) => self.delete_item(segs[1]),
            ("POST", ["items", "delete"]) => {
                let ids = list(&q, "ids");
                if ids.is_empty() {
                    return bad_request("Ids is required");
                }
                for id in ids {
                    self.delete_item(&id);
                }
                no_content()
            }
            ("POST", ["playlists"]) => self.create_playlist(req, &q),
            (m, ["playlists", _, rest @ ..]) => {
                let Some(pi) = self.playlists.iter().position(|p| p.id == segs[1]) else {
                    return not_found();
                };
                self.playlist_route(pi, m, rest, &segs, &q, fault)
            }
            _ => not_found(),
        }
    }

    fn system_info(&self) -> Value {
        match self.flavor {
            Flavor::Jellyfin => json!({
                "ServerName": "sim", "Version": "10.10.3", "Id": "sim-server-0001",
                "ProductName": "Jellyfin Server", "OperatingSystem": "Linux",
            }),
            Flavor::Emby => json!({
                "ServerName": "sim", "Version": "4.8.10.0", "Id": "sim-server-0001",
                "ProductName": "Emby Server", "OperatingSystem": "Linux",
            }),
        }
    }

    /// `userId` in the query (Jellyfin): `Ok(true)` when given and known, `Ok(false)` when
    /// absent (no user data in answers).
    fn user_param(&self, q: &HashMap<String, String>) -> Result<bool, Box<ResponseTemplate>> {
        match q.get("userid") {
            None => Ok(false),
            Some(u) if u.replace('-', "").eq_ignore_ascii_case(USER_ID) => Ok(true),
            Some(_) => Err(Box::new(not_found())),
        }
    }

    fn user_path(&self, user: &str) -> Result<(), Box<ResponseTemplate>> {
        if user.replace('-', "").eq_ignore_ascii_case(USER_ID) {
            Ok(())
        } else {
            Err(Box::new(not_found()))
        }
    }

    fn get_one(&self, id: &str, user: bool) -> ResponseTemplate {
        if let Some(item) = self.item(id) {
            // A single-item read carries the whole user record on both servers.
            return ok_json(self.item_json(item, true, user.then_some(UdFields::ALL)));
        }
        match self.playlists.iter().find(|p| p.id == id) {
            Some(p) => ok_json(self.playlist_json(p, true)),
            None => not_found(),
        }
    }

    fn items_query(
        &self,
        q: &HashMap<String, String>,
        user: bool,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let types = list(q, "includeitemtypes");
        let fields = list(q, "fields");
        let want_pids = fields.iter().any(|f| f.eq_ignore_ascii_case("ProviderIds"));
        let want_ud =
            (user && flag(q, "enableuserdata") != Some(false)).then(|| self.list_fields(q));
        let recursive = flag(q, "recursive") == Some(true);
        let parent = q.get("parentid");
        let ids = list(q, "ids");
        let start = usize_param(q, "startindex").unwrap_or(0);
        let limit = usize_param(q, "limit");
        if types.iter().any(|t| t.eq_ignore_ascii_case("Playlist")) {
            let etag = fields.iter().any(|f| f.eq_ignore_ascii_case("Etag"));
            let viewer = if user {
                Some(USER_ID)
            } else {
                self.token_user()
            };
            let rows: Vec<Value> = self
                .playlists
                .iter()
                .filter(|p| self.can_see(p, viewer))
                .filter(|p| ids.is_empty() || ids.contains(&p.id))
                .map(|p| self.playlist_json(p, etag))
                .collect();
            return page(rows, start, limit, fault);
        }
        let filters: Vec<String> = list(q, "filters")
            .into_iter()
            .map(|f| f.to_ascii_lowercase())
            .collect();
        let mut rows: Vec<&JfItem> = self
            .items
            .iter()
            .filter(|i| {
                types.is_empty()
                    || types
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(i.kind.as_str()))
            })
            .filter(|i| match parent {
                Some(p) => i.series_id.as_deref() == Some(p.as_str()),
                None => recursive || !ids.is_empty(),
            })
            .filter(|i| ids.is_empty() || ids.contains(&i.id))
            .filter(|i| {
                let u = &i.user;
                filters.iter().all(|f| match f.as_str() {
                    "isfavorite" => u.favorite,
                    "isplayed" => u.played,
                    "isunplayed" => !u.played,
                    // The server's IsResumable: a resume position, played or not.
                    "isresumable" => u.position_ticks > 0,
                    _ => true,
                })
            })
            .filter(|i| flag(q, "isfavorite").is_none_or(|f| i.user.favorite == f))
            .filter(|i| flag(q, "isplayed").is_none_or(|p| i.user.played == p))
            .collect();
        let desc = q
            .get("sortorder")
            .is_some_and(|o| o.eq_ignore_ascii_case("Descending"));
        match q.get("sortby").map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("dateplayed") => rows.sort_by_key(|i| i.user.last_played),
            Some("sortname") => rows.sort_by(|a, b| a.name.cmp(&b.name)),
            _ => {}
        }
        if desc {
            rows.reverse();
        }
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|i| self.item_json(i, want_pids, want_ud))
            .collect();
        page(rows, start, limit, fault)
    }

    fn write(
        &mut self,
        id: &str,
        what: Write,
        req: &Request,
        q: &HashMap<String, String>,
    ) -> ResponseTemplate {
        let now = self.tick();
        let Some(i) = self.by_id.get(id).copied() else {
            return not_found();
        };
        let flavor = self.flavor;
        let ignore_date = self.ignore_date_played;
        let u = &mut self.items[i].user;
        match what {
            Write::Favorite(on) => u.favorite = on,
            Write::Played(true) => {
                let date = match q.get("dateplayed") {
                    None => Some(now),
                    Some(d) => match flavor {
                        Flavor::Jellyfin => Timestamp::parse(d).map(Timestamp::unix),
                        Flavor::Emby => parse_compact_date(d),
                    },
                };
                let Some(date) = date else {
                    return bad_request("The DatePlayed value is not valid.");
                };
                u.played = true;
                u.play_count += 1;
                u.last_played = Some(if ignore_date { now } else { date });
                u.position_ticks = 0;
            }
            Write::Played(false) => {
                u.played = false;
                u.play_count = 0;
                u.last_played = None;
                u.position_ticks = 0;
            }
            Write::UserData => {
                let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                    return bad_request("The request body is not valid JSON.");
                };
                let get = |k: &str| {
                    body.as_object().and_then(|o| {
                        o.iter()
                            .find(|(name, v)| name.eq_ignore_ascii_case(k) && !v.is_null())
                            .map(|(_, v)| v.clone())
                    })
                };
                // Emby binds the body to the whole `UserItemDataDto`: what the body leaves
                // out (or sends as null) is the type's default, so it is reset (the
                // pessimistic reading of an undocumented behaviour). Jellyfin's
                // `UpdateUserItemDataDto` is all optional: only what is sent changes.
                let emby = flavor == Flavor::Emby;
                let mut next = if emby { UserData::default() } else { u.clone() };
                if let Some(v) = get("PlaybackPositionTicks") {
                    let Some(t) = v.as_u64() else {
                        return bad_request("PlaybackPositionTicks must be a number.");
                    };
                    next.position_ticks = t;
                }
                if let Some(v) = get("PlayCount").and_then(|v| v.as_u64()) {
                    next.play_count = v as u32;
                }
                if let Some(v) = get("IsFavorite").and_then(|v| v.as_bool()) {
                    next.favorite = v;
                }
                if let Some(v) = get("Played").and_then(|v| v.as_bool()) {
                    next.played = v;
                }
                if let Some(v) = get("LastPlayedDate") {
                    let Some(t) = v.as_str().and_then(Timestamp::parse) else {
                        return bad_request("LastPlayedDate is not a date.");
                    };
                    next.last_played = Some(t.unix());
                }
                *u = next;
                if emby {
                    return no_content();
                }
            }
        }
        ok_json(self.user_data_json(&self.items[i], UdFields::ALL))
    }

    fn delete_item(&mut self, id: &str) -> ResponseTemplate {
        match self.playlists.iter().position(|p| p.id == id) {
            // An API key may delete any item; a user only their own playlist.
            Some(i) if !self.api_key && !self.can_edit(&self.playlists[i], self.token_user()) => {
                error(403, "Forbidden")
            }
            Some(i) => {
                self.playlists.remove(i);
                self.tick();
                no_content()
            }
            // Library media is not deleted by this simulator.
            None if self.by_id.contains_key(id) => error(403, "Forbidden"),
            None => not_found(),
        }
    }

    /// The token's user: `None` for an API key.
    fn token_user(&self) -> Option<&'static str> {
        (!self.api_key).then_some(USER_ID)
    }

    /// The user a request acts for: its `userId` parameter, else the token's user.
    fn acting_user(&self, q: &HashMap<String, String>) -> Option<String> {
        q.get("userid")
            .map(|u| u.replace('-', "").to_ascii_lowercase())
            .or_else(|| self.token_user().map(str::to_owned))
    }

    /// Whether `user` sees the playlist (Jellyfin: the owner, or anyone when it is
    /// `OpenAccess`; no user at all, an API key listing, sees every one). Emby: everyone.
    fn can_see(&self, p: &JfPlaylist, user: Option<&str>) -> bool {
        self.flavor == Flavor::Emby || user.is_none_or(|u| p.owner == u || p.open_access)
    }

    /// Whether `user` may edit the playlist (Jellyfin: only its owner). Emby: everyone.
    fn can_edit(&self, p: &JfPlaylist, user: Option<&str>) -> bool {
        self.flavor == Flavor::Emby || user.is_some_and(|u| p.owner == u)
    }

    /// The ids an add keeps: known library items; on Jellyfin (`playlists:allowDuplicates`
    /// off by default) without an id already in the playlist or repeated in the request.
    fn addable(&self, existing: &[(String, String)], ids: Vec<String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in ids {
            if !self.by_id.contains_key(&id) {
                continue;
            }
            if self.flavor == Flavor::Jellyfin
                && (out.contains(&id) || existing.iter().any(|(_, i)| *i == id))
            {
                continue;
            }
            out.push(id);
        }
        out
    }

    fn new_id(&mut self, tag: u64) -> String {
        let n = self.next_id;
        self.next_id += 1;
        item_id(self.flavor, tag, n)
    }

    fn create_playlist(&mut self, req: &Request, q: &HashMap<String, String>) -> ResponseTemplate {
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        let from_body = |k: &str| {
            body.as_ref()
                .and_then(|b| b.as_object())
                .and_then(|o| o.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                .map(|(_, v)| v.clone())
        };
        let name = q
            .get("name")
            .cloned()
            .or_else(|| from_body("Name").and_then(|v| v.as_str().map(str::to_owned)))
            .unwrap_or_default();
        if name.trim().is_empty() {
            return bad_request("Name is required");
        }
        let mut ids = list(q, "ids");
        if ids.is_empty()
            && let Some(Value::Array(a)) = from_body("Ids")
        {
            ids = a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        // The owner: `UserId` (query or body), else the token's user.
        let owner = q
            .get("userid")
            .cloned()
            .or_else(|| from_body("UserId").and_then(|v| v.as_str().map(str::to_owned)))
            .map(|u| u.replace('-', "").to_ascii_lowercase())
            .or_else(|| self.token_user().map(str::to_owned));
        let Some(owner) = owner else {
            return bad_request("UserId is required");
        };
        let id = self.new_id(4);
        let mut pl = JfPlaylist {
            id: id.clone(),
            name: name.trim().to_owned(),
            entries: Vec::new(),
            owner,
            open_access: false,
            saved_at: 0,
        };
        let known = self.addable(&[], ids);
        for item in known {
            let e = self.new_id(5);
            pl.entries.push((e, item));
        }
        pl.saved_at = self.tick();
        self.playlists.push(pl);
        ok_json(json!({ "Id": id }))
    }

    fn playlist_route(
        &mut self,
        pi: usize,
        method: &str,
        rest: &[&str],
        segs: &[&str],
        q: &HashMap<String, String>,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let jellyfin = self.flavor == Flavor::Jellyfin;
        match (method, lower.as_slice()) {
            ("GET", []) => ok_json(self.playlist_json(&self.playlists[pi], true)),
            ("GET", ["items"]) => {
                if !self.can_see(&self.playlists[pi], self.acting_user(q).as_deref()) {
                    return error(404, "Playlist not found");
                }
                let fields = list(q, "fields");
                let want_pids = fields.iter().any(|f| f.eq_ignore_ascii_case("ProviderIds"));
                let user = q.contains_key("userid").then(|| self.list_fields(q));
                let rows: Vec<Value> = self.playlists[pi]
                    .entries
                    .iter()
                    .filter_map(|(e, id)| {
                        let mut v = self.item_json(self.item(id)?, want_pids, user);
                        if let Value::Object(m) = &mut v {
                            m.insert("PlaylistItemId".into(), json!(e));
                        }
                        Some(v)
                    })
                    .collect();
                page(
                    rows,
                    usize_param(q, "startindex").unwrap_or(0),
                    usize_param(q, "limit"),
                    fault,
                )
            }
            // Jellyfin's GetPlaylistUsers: the shares, for the owner (the token's user) only.
            ("GET", ["users"]) if jellyfin => {
                if self.can_edit(&self.playlists[pi], self.token_user()) {
                    ok_json(json!([]))
                } else {
                    error(403, "Forbidden")
                }
            }
            ("POST", ["items"]) => {
                // AddItemToPlaylist acts for `userId` (else the token's user).
                if !self.can_edit(&self.playlists[pi], self.acting_user(q).as_deref()) {
                    return error(403, "Forbidden");
                }
                let known = self.addable(&self.playlists[pi].entries, list(q, "ids"));
                for item in known {
                    let e = self.new_id(5);
                    self.playlists[pi].entries.push((e, item));
                }
                self.playlists[pi].saved_at = self.tick();
                no_content()
            }
            // RemoveItemFromPlaylist and MoveItem take the user from the token only: an
            // API key has none and is refused.
            ("DELETE", ["items"]) | ("POST", ["items", "delete"] | ["items", _, "move", _])
                if !self.can_edit(&self.playlists[pi], self.token_user()) =>
            {
                error(403, "Forbidden")
            }
            ("DELETE", ["items"]) | ("POST", ["items", "delete"]) => {
                let entries = list(q, "entryids");
                self.playlists[pi]
                    .entries
                    .retain(|(e, _)| !entries.contains(e));
                self.playlists[pi].saved_at = self.tick();
                no_content()
            }
            ("POST", ["items", _, "move", _]) => {
                let entry = segs[3];
                let Ok(to) = segs[5].parse::<usize>() else {
                    return bad_request("newIndex must be a number");
                };
                let entries = &mut self.playlists[pi].entries;
                let Some(from) = entries.iter().position(|(e, _)| e == entry) else {
                    return not_found();
                };
                if from == to {
                    // The server saves nothing when the entry is already there.
                    return no_content();
                }
                let e = entries.remove(from);
                let to = to.min(entries.len());
                entries.insert(to, e);
                self.playlists[pi].saved_at = self.tick();
                no_content()
            }
            _ => not_found(),
        }
    }
}

/// A `QueryResult` page, shaped by the request's list fault (if any).
fn page(
    rows: Vec<Value>,
    start: usize,
    limit: Option<usize>,
    fault: &ListFault,
) -> ResponseTemplate {
    let total = rows.len();
    let (from, to) = window(total, start, limit, fault.truncates());
    let items: Vec<Value> = rows.into_iter().skip(from).take(to - from).collect();
    let (items, declared) = fault.shape(items, total);
    let mut body = Map::new();
    body.insert("Items".into(), Value::Array(items));
    if let Some(t) = declared.json() {
        body.insert("TotalRecordCount".into(), t);
    }
    body.insert("StartIndex".into(), json!(from));
    ok_json(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_each_servers_shape() {
        assert_eq!(item_id(Flavor::Jellyfin, 1, 5).len(), 32);
        assert_eq!(item_id(Flavor::Emby, 1, 5), "10000005");
    }

    #[test]
    fn dates_in_both_formats() {
        assert_eq!(jellyfin_date(1_709_294_400), "2024-03-01T12:00:00.0000000Z");
        assert_eq!(parse_compact_date("20240301120000"), Some(1_709_294_400));
        assert_eq!(parse_compact_date("2024-03-01"), None);
    }
}

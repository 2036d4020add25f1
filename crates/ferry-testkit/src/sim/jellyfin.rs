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
//!
//! Layout: this module (the public handle and its controls), `state` (the server's
//! data), `seed` (the sample library), `routes` (how each request is answered; list
//! pages shaped by the shared fault knobs).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_core::Item;
use wiremock::MockServer;

use crate::sim::kit::Simulator;
use crate::sim::knobs::{Fault, FaultControl, FaultRule};

mod routes;
mod seed;
mod state;

pub use seed::JellyfinSimBuilder;
use seed::{item_id, provider_ids};
pub use state::jellyfin_date;
use state::{JfState, lock};

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

impl Simulator for JellyfinSim {
    async fn start() -> Self {
        JellyfinSim::start().await
    }

    fn uri(&self) -> String {
        JellyfinSim::uri(self)
    }

    fn token(&self) -> String {
        JellyfinSim::token(self)
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

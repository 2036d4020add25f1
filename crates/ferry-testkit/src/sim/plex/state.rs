//! The simulated Plex account's data and its rules: the library with the account's
//! watched state, ratings and resume points, the viewing history, playlists, the
//! Discover watchlist, the server's settings and clock, and each host's fault knobs,
//! behind one mutex.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::sim::knobs::Knobs;

/// The kind of a library item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlexKind {
    Movie,
    Show,
    Episode,
}

impl PlexKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            PlexKind::Movie => "movie",
            PlexKind::Show => "show",
            PlexKind::Episode => "episode",
        }
    }

    /// Plex's numeric type (`type=1` movies, `2` shows, `4` episodes).
    pub(super) fn number(self) -> u32 {
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
    pub(super) fn new(id: u64, title: &str) -> Self {
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
pub(super) struct PlexState {
    pub(super) token: String,
    pub(super) discover_token: String,
    pub(super) items: Vec<PlexItem>,
    pub(super) by_key: HashMap<u64, usize>,
    pub(super) history: Vec<HistoryRow>,
    pub(super) playlists: Vec<SimPlaylist>,
    /// Discover watchlist: (hex key, watchlisted at), oldest first.
    pub(super) watchlist: Vec<(String, i64)>,
    pub(super) next_id: u64,
    pub(super) now: i64,
    /// `LibraryVideoPlayedThreshold` (percent).
    pub(super) played_threshold: u32,
    /// `LibraryVideoPlayedAtBehaviour` (`0`-`3`).
    pub(super) played_at_behaviour: String,
    /// `/:/timeline` answers 200 and stores nothing.
    pub(super) timeline_ignored: bool,
    pub(super) pms: Knobs,
    pub(super) discover: Knobs,
}

pub(super) fn lock(m: &Mutex<PlexState>) -> MutexGuard<'_, PlexState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PlexState {
    pub(super) fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    pub(super) fn item_mut(&mut self, key: u64) -> Option<&mut PlexItem> {
        let i = *self.by_key.get(&key)?;
        Some(&mut self.items[i])
    }

    pub(super) fn item(&self, key: u64) -> Option<&PlexItem> {
        self.by_key.get(&key).map(|i| &self.items[*i])
    }

    pub(super) fn play(&mut self, key: u64, at: i64) -> bool {
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
    pub(super) fn mark_played(&mut self, key: u64) -> bool {
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

    pub(super) fn by_discover_key(&self, key: &str) -> Option<&PlexItem> {
        self.items
            .iter()
            .find(|i| i.kind != PlexKind::Episode && i.discover_key() == key)
    }
}

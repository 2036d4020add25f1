//! The SIMKL service's data and rules: the catalog, the user's library in its status
//! buckets, the activity stamps, the PIN flow's codes and the server-side rate limit,
//! with the fault knobs, behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferry_core::{Item, MediaType};
use serde_json::{Map, Value, json};

use crate::sim::knobs::Knobs;

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
    pub(super) fn activity_key(self) -> &'static str {
        match self {
            SimklType::Movies => "movies",
            SimklType::Shows => "tv_shows",
            SimklType::Anime => "anime",
        }
    }

    /// The key of the title object in a row: `movie` or `show` (anime rows use `show`).
    pub(super) fn item_key(self) -> &'static str {
        match self {
            SimklType::Movies => "movie",
            _ => "show",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "movies" | "movie" => Some(SimklType::Movies),
            "shows" | "show" | "tv" => Some(SimklType::Shows),
            "anime" => Some(SimklType::Anime),
            _ => None,
        }
    }

    pub(super) fn statuses(self) -> &'static [ListStatus] {
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
    pub(super) fn has_episode(&self, s: u32, e: u32) -> bool {
        s >= 1 && e >= 1 && self.seasons.get(s as usize - 1).is_some_and(|n| e <= *n)
    }

    pub(super) fn total_episodes(&self) -> usize {
        self.seasons.iter().map(|n| *n as usize).sum()
    }

    pub(super) fn all_episodes(&self) -> Vec<(u32, u32)> {
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
    pub(super) fn new(status: ListStatus, now: i64) -> Self {
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
pub(super) struct SimRateLimit {
    pub(super) gets: u32,
    pub(super) posts: u32,
    pub(super) window: Duration,
    pub(super) retry_after_secs: u64,
    pub(super) started: Instant,
    pub(super) seen_gets: u32,
    pub(super) seen_posts: u32,
}

#[derive(Debug, Clone)]
pub(super) struct Pin {
    pub(super) user_code: String,
    pub(super) approved: bool,
}

#[derive(Debug)]
pub(super) struct SimklState {
    pub(super) client_id: String,
    pub(super) token: String,
    pub(super) catalog: Vec<SimklTitle>,
    pub(super) by_id: HashMap<u64, usize>,
    pub(super) library: BTreeMap<u64, LibraryEntry>,
    /// `(block, field) → stamp`; block `""` is the top-level `all`.
    pub(super) stamps: BTreeMap<(&'static str, &'static str), i64>,
    pub(super) now: i64,
    pub(super) knobs: Knobs,
    pub(super) ignore_removals: u32,
    pub(super) empty_write_bodies: bool,
    pub(super) limit: Option<SimRateLimit>,
    pub(super) pins: Vec<Pin>,
    /// Seconds the PIN flow asks clients to wait between polls (SIMKL: 5).
    pub(super) pin_interval: u64,
    pub(super) missing_app_params: u64,
    /// List reads (`/sync/all-items…`, `/sync/ratings…`) without `date_from`.
    pub(super) full_list_reads: u64,
    /// Leave `seasons[]` out of completed and dropped shows even with
    /// `include_all_episodes=yes`.
    pub(super) ignore_include_all_episodes: bool,
    /// `date_from` compares watch and rating dates instead of the time of the change.
    pub(super) date_from_on_event_dates: bool,
}

pub(super) fn lock(m: &Mutex<SimklState>) -> MutexGuard<'_, SimklState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Recomputes a show's status and last watch from its watched episodes.
pub(super) fn refresh_show(t: &SimklTitle, e: &mut LibraryEntry) {
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

impl SimklState {
    pub(super) fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    pub(super) fn touch(&mut self, kind: SimklType, field: &'static str) {
        let now = self.now;
        self.stamps.insert((kind.activity_key(), field), now);
        self.stamps.insert((kind.activity_key(), "all"), now);
        self.stamps.insert(("", "all"), now);
    }

    pub(super) fn touch_status(
        &mut self,
        kind: SimklType,
        old: Option<ListStatus>,
        new: Option<ListStatus>,
    ) {
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

    /// Counts a request against the server-side limit; `Some(retry_after_secs)` when it
    /// is over.
    pub(super) fn over_limit(&mut self, method: &str) -> Option<u64> {
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
        over.then_some(l.retry_after_secs)
    }

    pub(super) fn resolve_item(&self, item: &Item) -> Option<usize> {
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
    pub(super) fn resolve(&self, ids: &Value, kinds: &[SimklType]) -> Option<usize> {
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

    /// Sets a title's bucket, creating the library entry if needed.
    pub(super) fn set_status(&mut self, idx: usize, status: ListStatus, now: i64) {
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
}

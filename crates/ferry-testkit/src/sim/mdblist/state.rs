//! The MDBList service's data and rules: the catalog, the watchlist, ratings, plays and
//! the journal of changes, the activity stamps and the daily quota, with the fault knobs,
//! behind one mutex.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use ferry_core::{Item, MediaType, Timestamp};
use serde_json::{Map, Value, json};

use crate::sim::knobs::Knobs;

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

    pub(super) fn plural(self) -> &'static str {
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
    pub(super) show_n: Option<u32>,
}

impl MdbTitle {
    pub(super) fn ids_json(&self) -> Value {
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

    pub(super) fn object_json(&self) -> Value {
        json!({"title": self.title, "year": self.year, "ids": self.ids_json()})
    }

    pub(super) fn has_episode(&self, s: u32, e: u32) -> bool {
        s >= 1 && e >= 1 && self.seasons.get(s as usize - 1).is_some_and(|n| e <= *n)
    }

    /// The episode's own TVDB id (as in [`crate::samples::episode`]).
    pub(super) fn episode_tvdb(&self, s: u32, e: u32) -> Option<u64> {
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

/// Faults the shared [`Fault`](crate::sim::knobs::Fault) enum does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    /// The page says `has_more: false` although rows remain.
    HasMoreLies,
}

#[derive(Debug, Clone)]
pub(super) struct ExtraRule {
    pub(super) extra: Extra,
    pub(super) prefix: String,
    pub(super) times: u32,
}

#[derive(Debug)]
pub(super) struct MdbState {
    pub(super) api_key: String,
    pub(super) bearer: Option<String>,
    pub(super) catalog: Vec<MdbTitle>,
    /// `(catalog index, watchlisted at)`, oldest first.
    pub(super) watchlist: Vec<(usize, i64)>,
    /// catalog index → (rating, rated at, changed at).
    pub(super) ratings: BTreeMap<usize, (u8, i64, i64)>,
    pub(super) plays: Vec<Play>,
    pub(super) journal: Vec<Value>,
    pub(super) stamps: BTreeMap<&'static str, i64>,
    pub(super) next_play: u64,
    pub(super) now: i64,
    pub(super) quota: u64,
    pub(super) used: u64,
    pub(super) knobs: Knobs,
    pub(super) extra: Vec<ExtraRule>,
    pub(super) declare_totals: bool,
    pub(super) show_inside_episode: bool,
}

pub(super) fn lock(m: &Mutex<MdbState>) -> MutexGuard<'_, MdbState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(Timestamp::from_unix(t).to_rfc3339()))
}

pub(super) fn parse_ts(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str)
        .and_then(Timestamp::parse)
        .map(Timestamp::unix)
}

pub(super) fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl MdbState {
    pub(super) fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    pub(super) fn stamp(&mut self, field: &'static str) {
        let now = self.now;
        self.stamps.insert(field, now);
        self.stamps.insert("updated_at", now);
        self.stamps.insert("journal_at", now);
    }

    pub(super) fn take_extra(&mut self, path: &str) -> Option<Extra> {
        let i = self
            .extra
            .iter()
            .position(|r| r.times > 0 && path.starts_with(&r.prefix))?;
        self.extra[i].times -= 1;
        let e = self.extra[i].extra;
        self.extra.retain(|r| r.times > 0);
        Some(e)
    }

    pub(super) fn record(
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

    pub(super) fn add_play(
        &mut self,
        title: usize,
        episode: Option<(u32, u32)>,
        at: i64,
    ) -> (u64, bool) {
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

    pub(super) fn activities_json(&self) -> Value {
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

    pub(super) fn resolve_item(&self, item: &Item) -> Option<usize> {
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
    pub(super) fn resolve(&self, ids: &Value, kind: MdbKind) -> Option<usize> {
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
    pub(super) fn resolve_flat(&self, it: &Value, kind: MdbKind) -> Option<usize> {
        let mut m = Map::new();
        for k in ["imdb", "tmdb", "tvdb", "mdblist"] {
            if let Some(v) = it.get(k) {
                m.insert(k.to_owned(), v.clone());
            }
        }
        self.resolve(&Value::Object(m), kind)
    }

    pub(super) fn drop_plays(&mut self, keep: impl Fn(&Play) -> bool) -> u64 {
        let before = self.plays.len();
        let gone: Vec<Play> = self.plays.iter().filter(|p| !keep(p)).cloned().collect();
        self.plays.retain(|p| keep(p));
        for p in &gone {
            self.record("watched", "removed", p.title, p.episode, None);
        }
        (before - self.plays.len()) as u64
    }
}

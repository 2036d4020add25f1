//! The wire: Trakt's JSON shapes as typed rows, each list row decoded on its own (so one
//! bad row makes a read partial instead of vanishing), and the answers of writes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A Trakt `ids` object: numbers or strings by name (`trakt`, `imdb`, `tmdb`, ...).
pub(crate) type WireIds = BTreeMap<String, Value>;

/// A movie, show, season or episode inside a row. Every field is optional on the wire;
/// what a row needs is checked when it becomes an item.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Media {
    #[serde(default)]
    pub(crate) ids: Option<WireIds>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) year: Option<u16>,
    /// A season's number, or an episode's number within its season.
    #[serde(default)]
    pub(crate) number: Option<u32>,
    /// An episode's season.
    #[serde(default)]
    pub(crate) season: Option<u32>,
    /// Minutes (`?extended=full`).
    #[serde(default)]
    pub(crate) runtime: Option<u64>,
}

/// One row of a sync or list read (`/sync/watchlist`, `/sync/ratings`, `/sync/history`,
/// `/sync/playback`, `/users/me/lists/{id}/items`): its type, the title under that type
/// (with the show for seasons and episodes) and the fields of the read it came from.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SyncRow {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The history id, playback id or list item id.
    #[serde(default)]
    pub(crate) id: Option<u64>,
    #[serde(default)]
    pub(crate) rank: Option<u64>,
    #[serde(default)]
    pub(crate) listed_at: Option<String>,
    #[serde(default)]
    pub(crate) rated_at: Option<String>,
    #[serde(default)]
    pub(crate) watched_at: Option<String>,
    #[serde(default)]
    pub(crate) paused_at: Option<String>,
    /// 1-10.
    #[serde(default)]
    pub(crate) rating: Option<u8>,
    /// Percent watched (playback).
    #[serde(default)]
    pub(crate) progress: Option<f64>,
    #[serde(default)]
    pub(crate) movie: Option<Media>,
    #[serde(default)]
    pub(crate) show: Option<Media>,
    #[serde(default)]
    pub(crate) season: Option<Media>,
    #[serde(default)]
    pub(crate) episode: Option<Media>,
}

/// `ids` of a personal list.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListIds {
    pub(crate) trakt: u64,
}

/// One personal list (`GET /users/me/lists`, and the answer of creating one).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListRow {
    pub(crate) ids: ListIds,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

/// `/users/settings`, the parts ferry reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsWire {
    #[serde(default)]
    pub(crate) limits: LimitsWire,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LimitsWire {
    #[serde(default)]
    pub(crate) watchlist: LimitWire,
    #[serde(default)]
    pub(crate) list: LimitWire,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LimitWire {
    #[serde(default)]
    pub(crate) count: Option<u64>,
    #[serde(default)]
    pub(crate) item_count: Option<u64>,
}

/// `/sync/last_activities`: groups (`movies`, `episodes`, `watchlist`, ...) of named
/// timestamps (`all` is a bare timestamp).
pub(crate) type ActivitiesWire = BTreeMap<String, ActivityGroup>;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ActivityGroup {
    Stamps(BTreeMap<String, Option<String>>),
    Other(serde::de::IgnoredAny),
}

impl ActivityGroup {
    pub(crate) fn stamp(&self, field: &str) -> Option<&str> {
        match self {
            ActivityGroup::Stamps(m) => m.get(field)?.as_deref(),
            ActivityGroup::Other(_) => None,
        }
    }
}

/// Trakt's JSON `X-Ratelimit` header.
#[derive(Debug, Deserialize)]
pub(crate) struct RateLimitWire {
    #[serde(default)]
    pub(crate) limit: Option<u64>,
    #[serde(default)]
    pub(crate) remaining: Option<u64>,
    #[serde(default)]
    pub(crate) until: Option<String>,
}

/// Per-type counts of a write answer (`{"movies": 1, "episodes": 0, ...}`).
pub(crate) type Counts = BTreeMap<String, u64>;

/// What a `/sync/*` or list write answers: counts per type, and the elements Trakt could
/// not find, echoed as sent.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WriteAnswer {
    #[serde(default)]
    pub(crate) added: Counts,
    #[serde(default)]
    pub(crate) updated: Counts,
    #[serde(default)]
    pub(crate) existing: Counts,
    #[serde(default)]
    pub(crate) deleted: Counts,
    #[serde(default)]
    pub(crate) not_found: NotFound,
    /// List writes: the list's new size.
    #[serde(default)]
    pub(crate) list: Option<ListCount>,
}

impl WriteAnswer {
    pub(crate) fn count(group: &Counts, bucket: &str) -> u64 {
        group.get(bucket).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListCount {
    #[serde(default)]
    pub(crate) item_count: Option<u64>,
}

/// `not_found`: the elements of each bucket Trakt did not find, and (history removes)
/// the history ids it did not find.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NotFound {
    #[serde(default)]
    pub(crate) movies: Vec<Echo>,
    #[serde(default)]
    pub(crate) shows: Vec<Echo>,
    #[serde(default)]
    pub(crate) seasons: Vec<Echo>,
    #[serde(default)]
    pub(crate) episodes: Vec<Echo>,
    #[serde(default)]
    pub(crate) ids: Vec<u64>,
}

impl NotFound {
    pub(crate) fn bucket(&self, b: &str) -> &[Echo] {
        match b {
            "movies" => &self.movies,
            "shows" => &self.shows,
            "seasons" => &self.seasons,
            "episodes" => &self.episodes,
            _ => &[],
        }
    }
}

/// One element of `not_found`, as it was sent: ids (or title and year), and for a show
/// element the seasons and episodes under it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Echo {
    #[serde(default)]
    pub(crate) ids: Option<WireIds>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) year: Option<u16>,
    #[serde(default)]
    pub(crate) seasons: Option<Vec<EchoSeason>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EchoSeason {
    #[serde(default)]
    pub(crate) number: Option<u32>,
    #[serde(default)]
    pub(crate) episodes: Option<Vec<EchoEpisode>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EchoEpisode {
    #[serde(default)]
    pub(crate) number: Option<u32>,
}

/// `POST /users/me/lists/{id}/items/reorder`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReorderAnswer {
    #[serde(default)]
    pub(crate) skipped_ids: Vec<u64>,
}

/// An OAuth token answer (`/oauth/device/token`, `/oauth/token`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenWire {
    #[serde(default)]
    pub(crate) access_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<i64>,
    #[serde(default)]
    pub(crate) expires_in: Option<i64>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
}

/// `POST /oauth/device/code`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeviceCodeWire {
    #[serde(default)]
    pub(crate) device_code: Option<String>,
    #[serde(default)]
    pub(crate) user_code: Option<String>,
    #[serde(default)]
    pub(crate) verification_url: Option<String>,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
    #[serde(default)]
    pub(crate) interval: Option<u64>,
}

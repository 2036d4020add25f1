//! The wire: MDBList's answers as typed structs. List rows stay raw until the pager hands
//! them to the decoder one at a time (`convert`), so one bad row makes the read partial
//! instead of vanishing.

use std::collections::HashMap;

use ferry_core::Declared;
use ferry_core::wire::{Loose, Stamp};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One page of a paged read: lists of rows by name (`movies`, `shows`, `episodes`, …)
/// and the `pagination` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PageBody {
    pub(crate) pagination: Option<Map<String, Value>>,
    pub(crate) error: Option<Value>,
    #[serde(flatten)]
    pub(crate) lists: Map<String, Value>,
}

impl PageBody {
    /// The list's size: the sum of every `total_*` (or `total`) the pagination block
    /// declares. None declared is missing; one that is not a count makes it invalid.
    pub(crate) fn total(&self) -> Declared {
        let Some(p) = &self.pagination else {
            return Declared::Missing;
        };
        let mut sum: Option<u64> = None;
        for (k, v) in p {
            if k != "total" && !k.starts_with("total_") {
                continue;
            }
            match Declared::from_json(Some(v)) {
                Declared::Valid(n) => sum = Some(sum.unwrap_or(0) + n),
                Declared::Missing => return Declared::Invalid(format!("{k}: null")),
                bad => return bad,
            }
        }
        sum.map_or(Declared::Missing, Declared::Valid)
    }

    /// The block's `has_more`, when it has a boolean one.
    pub(crate) fn has_more(&self) -> Option<bool> {
        self.pagination.as_ref()?.get("has_more")?.as_bool()
    }
}

/// A watchlist row: *flat* ids (`id` = TMDB, `imdb_id`, `tvdb_id`, …), sometimes an
/// `ids` block as well.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WatchlistRow {
    pub(crate) mediatype: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) release_year: Loose,
    pub(crate) year: Loose,
    pub(crate) watchlisted_at: Stamp,
    pub(crate) ids: Option<Map<String, Value>>,
    /// Every other field, the flat ids among them.
    #[serde(flatten)]
    pub(crate) flat: Map<String, Value>,
}

/// `{title, year, ids}` of the `/sync` endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TitleObj {
    pub(crate) title: Option<String>,
    pub(crate) year: Loose,
    pub(crate) ids: Map<String, Value>,
}

/// A `/sync/ratings` row of the `movies` or `shows` list; a `null` rating is MDBList's
/// "removed".
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RatingRow {
    pub(crate) rating: Option<f64>,
    pub(crate) rated_at: Stamp,
    pub(crate) movie: Option<TitleObj>,
    pub(crate) show: Option<TitleObj>,
}

/// A `/sync/watched?plays=all` row of the `movies` or `episodes` list: one play.
#[derive(Debug, Deserialize)]
pub(crate) struct PlayRow {
    pub(crate) play_id: u64,
    #[serde(default)]
    pub(crate) watched_at: Stamp,
    #[serde(default)]
    pub(crate) last_watched_at: Stamp,
    #[serde(default)]
    pub(crate) movie: Option<TitleObj>,
    /// The show beside the episode (one reading of the API)...
    #[serde(default)]
    pub(crate) show: Option<TitleObj>,
    #[serde(default)]
    pub(crate) episode: Option<EpisodeObj>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EpisodeObj {
    pub(crate) season: u32,
    pub(crate) number: u32,
    #[serde(default)]
    pub(crate) ids: Map<String, Value>,
    /// ...or inside it (CrossWatch's reading). The live service is unverified: either is
    /// accepted.
    #[serde(default)]
    pub(crate) show: Option<TitleObj>,
}

/// The answer to a write: counts per list and the titles not found. Which counts come
/// back depends on the route (`added`/`existing`, `updated`, `deleted` or `removed`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WriteAnswer {
    pub(crate) added: Counts,
    pub(crate) existing: Counts,
    pub(crate) updated: Counts,
    pub(crate) deleted: Counts,
    pub(crate) removed: Counts,
    pub(crate) not_found: HashMap<String, Vec<Value>>,
    /// History adds: one row per play sent.
    pub(crate) plays: Vec<Value>,
}

/// Counts per list (`{"movies": 2, "shows": 1}`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Counts(HashMap<String, u64>);

impl Counts {
    pub(crate) fn sum(&self) -> u64 {
        self.0.values().sum()
    }
}

impl WriteAnswer {
    /// Entries this answer accounts for as written (or already so).
    pub(crate) fn done(&self, add: bool) -> u64 {
        if add {
            self.added.sum() + self.existing.sum() + self.updated.sum()
        } else {
            self.deleted.sum() + self.removed.sum()
        }
    }

    /// The rows echoed as not found, every list together.
    pub(crate) fn not_found_rows(&self) -> impl Iterator<Item = &Value> {
        self.not_found.values().flatten()
    }
}

/// `GET /sync/last_activities`: stamps per kind of change (`null` before the first).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LastActivities {
    pub(crate) watchlisted_at: Option<String>,
    pub(crate) rated_at: Option<String>,
    pub(crate) watched_at: Option<String>,
    pub(crate) episode_watched_at: Option<String>,
    pub(crate) season_watched_at: Option<String>,
    pub(crate) journal_at: Option<String>,
}

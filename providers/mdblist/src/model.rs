//! The wire: MDBList's answers as typed structs. List rows stay raw until the pager hands
//! them to the decoder one at a time (`convert`), so one bad row makes the read partial
//! instead of vanishing.

use std::collections::HashMap;

use ferry_core::Declared;
use ferry_core::wire::{Loose, Stamp};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use serde_json::{Map, Value};

/// One page of a paged read: lists of rows by name (`movies`, `shows`, `episodes`, …)
/// and the `pagination` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PageBody {
    pub(crate) pagination: Option<Pagination>,
    pub(crate) error: Option<Value>,
    #[serde(flatten)]
    pub(crate) lists: Map<String, Value>,
}

/// The `pagination` block: `has_more`, and a `total_<list>` per list (or one `total`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Pagination {
    /// Only a boolean declares anything (the totals may still decide without it).
    #[serde(deserialize_with = "flag")]
    pub(crate) has_more: Option<bool>,
    /// The totals among `offset`, `limit` and whatever else the block holds.
    #[serde(flatten)]
    counts: Map<String, Value>,
}

impl Pagination {
    /// The list's size: the sum of every `total_*` (or `total`) the block declares. None
    /// declared is missing; one that is not a count makes it invalid.
    pub(crate) fn total(&self) -> Declared {
        let mut sum: Option<u64> = None;
        for (k, v) in &self.counts {
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
}

/// A boolean, or none: a flag of another type does not break the page.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(d)?.as_bool())
}

/// Ids sent nested (`ids`), flat beside the other fields (`id` = TMDB, `imdb_id`,
/// `tmdb`, …), or both.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IdFields {
    pub(crate) ids: Option<Map<String, Value>>,
    /// Every other field, the flat ids among them.
    #[serde(flatten)]
    pub(crate) flat: Map<String, Value>,
}

/// A watchlist row: *flat* ids, sometimes an `ids` block as well.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WatchlistRow {
    pub(crate) mediatype: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) release_year: Loose,
    pub(crate) year: Loose,
    pub(crate) watchlisted_at: Stamp,
    #[serde(flatten)]
    pub(crate) ids: IdFields,
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

/// The answer to a write: counts per list and what was not found. Which counts come
/// back depends on the route (`added`/`existing`, `updated`, `deleted` or `removed`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WriteAnswer {
    added: Counts,
    existing: Counts,
    updated: Counts,
    deleted: Counts,
    removed: Counts,
    pub(crate) not_found: NotFound,
    /// History adds: one row per play sent.
    plays: Vec<IgnoredAny>,
}

/// Counts per list (`{"movies": 2, "shows": 1}`).
#[derive(Debug, Default, Deserialize)]
struct Counts(HashMap<String, u64>);

impl WriteAnswer {
    /// Entries this answer accounts for as written (or already so), the plays it echoes
    /// as already gone among them.
    pub(crate) fn done(&self, add: bool) -> u64 {
        let sum = |c: &[&Counts]| c.iter().flat_map(|c| c.0.values()).sum::<u64>();
        let done = if add {
            sum(&[&self.added, &self.existing, &self.updated])
        } else {
            sum(&[&self.deleted, &self.removed])
        };
        done.max(self.plays.len() as u64) + self.not_found.play_ids.len() as u64
    }
}

/// What a write did not find: play ids (plays already gone), or titles by list.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NotFound {
    /// Numbers or numeric strings.
    pub(crate) play_ids: Vec<Loose>,
    #[serde(flatten)]
    pub(crate) titles: HashMap<String, Vec<Echo>>,
}

/// A title echoed as not found, by its ids; anything else (an episode's `{season,
/// number}`, a bare value) names no title ferry sent.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Echo {
    Title(IdFields),
    Other(IgnoredAny),
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

//! The wire: SIMKL's answers as typed structs. Library rows stay raw until the reader
//! hands them to the decoder one at a time (`convert`), so one bad row makes the read
//! partial instead of vanishing.

use std::collections::HashMap;

use ferry_core::wire::{Loose, Stamp};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

/// A read's body: SIMKL answers `null` (or `{}`) for "nothing", a bare list, or an
/// object holding the catalog's list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ListBody {
    Nothing(()),
    Rows(Vec<Value>),
    Lists(Map<String, Value>),
}

/// One row of `/sync/all-items` or `/sync/ratings`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LibRow {
    pub(crate) status: Option<String>,
    pub(crate) user_rating: Option<f64>,
    pub(crate) user_rated_at: Stamp,
    pub(crate) last_watched_at: Stamp,
    pub(crate) added_to_watchlist_at: Stamp,
    /// Only used to notice missing episodes, so an odd value is not an error.
    pub(crate) watched_episodes_count: Loose,
    pub(crate) seasons: Option<Vec<SeasonRow>>,
    pub(crate) movie: Option<TitleRow>,
    pub(crate) show: Option<TitleRow>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SeasonRow {
    pub(crate) number: u32,
    #[serde(default)]
    pub(crate) episodes: Option<Vec<EpisodeRow>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EpisodeRow {
    pub(crate) number: u32,
    #[serde(default)]
    pub(crate) watched_at: Stamp,
}

/// `{title, year, ids}` of a movie or show.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TitleRow {
    pub(crate) title: Option<String>,
    pub(crate) year: Loose,
    pub(crate) ids: Map<String, Value>,
}

/// `GET /sync/activities`: `all`, and blocks per catalog (`movies`, `tv_shows`, `anime`;
/// `shows` tolerated) of stamps per kind of change.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ActivitiesRow {
    pub(crate) all: Option<String>,
    #[serde(flatten)]
    pub(crate) blocks: HashMap<String, Block>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Block {
    Stamps(HashMap<String, Option<String>>),
    Other(IgnoredAny),
}

/// A write's answer: what SIMKL did not find, per list (the counts are not per item).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WriteAnswer {
    pub(crate) not_found: HashMap<String, Vec<Echoed>>,
}

/// A title echoed as not found, with the ids it was sent with.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Echoed {
    pub(crate) ids: Map<String, Value>,
}

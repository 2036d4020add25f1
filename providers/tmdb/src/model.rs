//! TMDB's wire rows (API v3), as serde structs: each list row is decoded on its own, so
//! one bad row makes the read partial instead of failing it or vanishing.

use serde::Deserialize;

/// A row of `/3/account/{id}/watchlist|rated/movies|tv`: a movie (`title`,
/// `release_date`) or a show (`name`, `first_air_date`); rated lists add `rating`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TitleRow {
    pub(crate) id: u64,
    pub(crate) title: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) release_date: Option<String>,
    pub(crate) first_air_date: Option<String>,
    pub(crate) rating: Option<f64>,
}

/// `GET /3/movie|tv/{id}/account_states`: the user's watchlist flag and rating.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AccountStates {
    pub(crate) watchlist: bool,
    pub(crate) rated: Rated,
}

/// `rated` is `false` or `{"value": 8.5}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Rated {
    Value { value: f64 },
    No(#[expect(dead_code, reason = "TMDB sends `false`: only the shape matters")] bool),
}

impl Rated {
    pub(crate) fn value(&self) -> Option<f64> {
        match self {
            Rated::Value { value } => Some(*value),
            Rated::No(_) => None,
        }
    }
}

/// The answer of every write: `{status_code, status_message, success}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusAnswer {
    pub(crate) status_code: i64,
    pub(crate) success: Option<bool>,
}

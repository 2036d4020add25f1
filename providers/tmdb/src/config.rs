//! `[providers.<instance>]` keys for `kind = "tmdb"`, and the tuning that is not user
//! configuration.

use ferry_core::Secret;
use serde::Deserialize;

/// TMDB's API root (the v3 routes sit under `/3`).
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.themoviedb.org";

/// `[providers.<instance>]` keys for `kind = "tmdb"`: the account, and either a bearer
/// token or a v3 API key; a `session_id` when the token does not name the user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmdbConfig {
    /// The API root; simulators and proxies override it.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The numeric account id (`GET /3/account` answers it as `id`).
    pub account_id: u64,
    /// `Authorization: Bearer`: a v4 user access token, or the API read access token
    /// together with `session_id`.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// The v3 API key (the `api_key` query parameter), with `session_id`.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// The user's v3 session (the `session_id` query parameter).
    #[serde(default)]
    pub session_id: Option<Secret>,
}

/// Tuning that is not user configuration: the kit's one seams struct (tests shorten the
/// retries).
pub type TmdbOptions = ferry_http::Seams;

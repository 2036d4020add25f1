//! `[providers.<instance>]` keys for `kind = "plex"`, and the tuning that is not user
//! configuration.

use ferry_core::Secret;
use serde::Deserialize;

/// Plex's cloud service that holds the account watchlist.
pub const DEFAULT_DISCOVER_URL: &str = "https://discover.provider.plex.tv";
/// Rows per page of every list read.
pub const DEFAULT_PAGE_SIZE: usize = 200;

fn default_discover_url() -> String {
    DEFAULT_DISCOVER_URL.to_owned()
}

fn default_plex_tv_url() -> String {
    crate::pin::DEFAULT_PLEX_TV_URL.to_owned()
}

/// `[providers.<instance>]` keys for `kind = "plex"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlexConfig {
    /// The Plex Media Server, e.g. `http://192.168.1.10:32400`.
    pub base_url: String,
    /// The account token (`X-Plex-Token`); used for the server and for Discover.
    /// Optional: `ferry auth plex` signs in with a PIN and keeps the token in the state
    /// database instead.
    #[serde(default)]
    pub token: Option<Secret>,
    /// plex.tv, for `ferry auth plex`; override only for a proxy or a simulator.
    #[serde(default = "default_plex_tv_url")]
    pub plex_tv_url: String,
    /// Discover's base URL; override only for a proxy or a simulator.
    #[serde(default = "default_discover_url")]
    pub discover_url: String,
    /// Library sections to read, by title or key; all movie and show sections when unset.
    #[serde(default)]
    pub libraries: Option<Vec<String>>,
}

/// Tuning that is not user configuration, the kit's one seams struct: tests use small
/// pages (`page_size`, [`DEFAULT_PAGE_SIZE`] otherwise), fast retries, and the store
/// where the write ledger, the ledger of marked plays and breaker records live.
pub type PlexOptions = ferry_http::Seams;

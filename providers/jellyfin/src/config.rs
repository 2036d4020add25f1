//! `[providers.<instance>]` keys for `kind = "jellyfin"` and `kind = "emby"`, and the
//! tuning that is not user configuration.

use ferry_core::Secret;
use serde::Deserialize;

/// Rows per page of every list read.
pub const DEFAULT_PAGE_SIZE: usize = 200;

/// `[providers.<instance>]` keys for `kind = "jellyfin"` and `kind = "emby"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server, e.g. `http://192.168.1.10:8096` (may include a reverse-proxy path).
    pub base_url: String,
    /// An API key or a user access token (`token` is accepted as an alias).
    #[serde(alias = "token")]
    pub api_key: Secret,
    /// The id of the user whose state ferry reads and writes.
    pub user_id: String,
}

/// Tuning that is not user configuration, the kit's one seams struct: tests use small
/// pages (`page_size`, [`DEFAULT_PAGE_SIZE`] otherwise), fast retries, and the store
/// where the write ledger and breaker records live.
pub type ServerOptions = ferry_http::Seams;

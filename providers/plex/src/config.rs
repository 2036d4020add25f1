//! `[providers.<instance>]` keys for `kind = "plex"`, and the tuning that is not user
//! configuration.

use std::sync::Arc;

use ferry_core::{BuildEnv, KvStore, Secret};
use ferry_http::RetryPolicy;
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

/// Tuning that is not user configuration (tests use small pages and fast retries).
#[derive(Debug, Clone)]
pub struct PlexOptions {
    pub page_size: usize,
    pub retry: RetryPolicy,
    /// Where the write ledger, the ledger of marked plays and breaker records live.
    pub kv: Option<Arc<dyn KvStore>>,
}

impl Default for PlexOptions {
    fn default() -> Self {
        PlexOptions {
            page_size: DEFAULT_PAGE_SIZE,
            retry: RetryPolicy::default(),
            kv: None,
        }
    }
}

impl PlexOptions {
    pub fn from_env(env: &BuildEnv) -> Self {
        PlexOptions {
            kv: Some(env.kv.clone()),
            ..PlexOptions::default()
        }
    }
}

//! `[providers.<instance>]` keys for `kind = "jellyfin"` and `kind = "emby"`, and the
//! tuning that is not user configuration.

use std::sync::Arc;

use ferry_core::{BuildEnv, KvStore, Secret};
use ferry_http::RetryPolicy;
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

/// Tuning that is not user configuration.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub page_size: usize,
    pub retry: RetryPolicy,
    pub kv: Option<Arc<dyn KvStore>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            page_size: DEFAULT_PAGE_SIZE,
            retry: RetryPolicy::default(),
            kv: None,
        }
    }
}

impl ServerOptions {
    pub fn from_env(env: &BuildEnv) -> Self {
        ServerOptions {
            kv: Some(env.kv.clone()),
            ..ServerOptions::default()
        }
    }
}

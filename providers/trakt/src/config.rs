//! `[providers.<instance>]` keys for `kind = "trakt"`, the test and embedding hooks, and
//! which tokens an instance starts with.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ferry_core::{KvStore, Secret, Timestamp};
use ferry_http::{KvTokenStore, TOKENS_NAMESPACE};
use serde::Deserialize;

/// Trakt's API.
pub const DEFAULT_BASE_URL: &str = "https://api.trakt.tv";

/// Trakt's largest page.
pub(crate) const MAX_PAGE_LIMIT: u32 = 250;

/// `[providers.<instance>]` keys for `kind = "trakt"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraktConfig {
    /// The API app's client id (sent as `trakt-api-key`).
    pub client_id: Secret,
    /// The app's client secret; with `refresh_token`, lets an expired token be renewed.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Optional: `ferry auth trakt` stores tokens in the state database instead.
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Items per page for list reads (1-250, default 250).
    #[serde(default)]
    pub page_limit: Option<u32>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

impl TraktConfig {
    /// The page size list reads ask for: the configured one within Trakt's 1-250.
    pub(crate) fn page_limit(&self) -> u32 {
        self.page_limit
            .unwrap_or(MAX_PAGE_LIMIT)
            .clamp(1, MAX_PAGE_LIMIT)
    }
}

/// Test and embedding hooks, the kit's one seams struct: the clock behind every wait,
/// the retry policy, the jitter seed, the client-side rate limits (Trakt's published
/// ones unless replaced: a test against a simulator that does not enforce them may lift
/// them) and the attempt timeout. The state store is the registry's (`BuildEnv::kv`);
/// the page size is the `page_limit` key.
pub type TraktOptions = ferry_http::Seams;

/// Where this provider remembers which configured tokens the persisted (rotated) ones
/// descend from.
const CONFIG_NAMESPACE: &str = "trakt";

fn fingerprint(config: &TraktConfig) -> String {
    let mut h = DefaultHasher::new();
    config
        .access_token
        .as_ref()
        .map(Secret::expose)
        .hash(&mut h);
    config
        .refresh_token
        .as_ref()
        .map(Secret::expose)
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The tokens to start with: the rotated ones persisted after a refresh, unless the
/// configured tokens changed since (the user re-authenticated); with the access token's
/// expiry when it is known (stored tokens), so it is refreshed before it lapses.
pub(crate) fn starting_tokens(
    instance: &str,
    config: &TraktConfig,
    kv: &Arc<dyn KvStore>,
) -> (Secret, Option<Secret>, Option<Timestamp>) {
    let stored = || match KvTokenStore::new(kv.clone(), instance).load() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(instance, "stored Trakt tokens unreadable: {e}");
            None
        }
    };
    let Some(access) = config.access_token.clone() else {
        // No token in the config: the ones `ferry auth trakt` stored, else none at all
        // (every request then fails as auth_failed, and health says to run the auth).
        return match stored() {
            Some(t) => (
                t.access,
                t.refresh.or_else(|| config.refresh_token.clone()),
                t.expires_at,
            ),
            None => (Secret::new(""), config.refresh_token.clone(), None),
        };
    };
    let configured = (access, config.refresh_token.clone(), None);
    let fp = fingerprint(config);
    let key = format!("{instance}:configured");
    let same_config = kv
        .get(CONFIG_NAMESPACE, &key)
        .ok()
        .flatten()
        .is_some_and(|v| v == fp);
    if !same_config {
        let _ = kv.put(CONFIG_NAMESPACE, &key, &fp);
        let _ = kv.delete(TOKENS_NAMESPACE, instance);
        return configured;
    }
    match KvTokenStore::new(kv.clone(), instance).load() {
        Ok(Some(t)) => (t.access, t.refresh.or(configured.1), t.expires_at),
        Ok(None) => configured,
        Err(e) => {
            tracing::warn!(
                instance,
                "stored Trakt tokens unreadable, using the configured ones: {e}"
            );
            configured
        }
    }
}

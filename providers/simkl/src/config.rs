//! `[providers.<instance>]` keys for `kind = "simkl"`, the knobs tests set, the declared
//! limits, and the HTTP client they make.

use std::time::Duration;

use ferry_core::{Error, ErrorKind, RateLimit, Result, Secret, VerbClass};
use ferry_http::HttpClient;
use serde::Deserialize;

/// SIMKL's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.simkl.com";

/// Reads: SIMKL publishes 10 GETs per second per user token; ferry asks for half that,
/// because SIMKL suspends apps that lean on it.
pub const READ_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Read,
    requests: 5,
    per: Duration::from_secs(1),
};

/// Writes: SIMKL publishes 1 POST per second and *blocks* the token on overage (repeated
/// overages extend the block), and serialises a user's writes server-side; ferry sends at
/// most one write every two seconds.
pub const WRITE_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Write,
    requests: 1,
    per: Duration::from_secs(2),
};

/// How `build_index` reads.
///
/// The default is [`ReadMode::Delta`]: SIMKL's API reference asks apps to call
/// `/sync/all-items?date_from=…` only when an activity stamp changed and suspends the
/// `client_id` of apps that re-download the whole library.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Every read is a full read (`present` semantics).
    Full,
    /// After a first full read, reads are `date_from` deltas (`delta` semantics) while
    /// nothing left the library; see the provider docs for what a delta cannot see.
    #[default]
    Delta,
}

/// `[providers.<instance>]` keys for `kind = "simkl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimklConfig {
    /// The app's `client_id` (sent as `simkl-api-key` and as the `client_id` parameter).
    pub client_id: Secret,
    /// The user's access token (from the PIN or OAuth flow; SIMKL tokens do not expire).
    /// Optional: `ferry auth simkl` keeps the token in the state database instead.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// Another API host (a proxy, a simulator). Default [`DEFAULT_BASE_URL`].
    #[serde(default)]
    pub base_url: Option<String>,
    /// `delta` (default) or `full`.
    #[serde(default)]
    pub read_mode: ReadMode,
}

/// Knobs that are not user configuration (the kit's one test-seam struct); the store
/// also keeps the delta watermarks.
pub type SimklOptions = ferry_http::Seams;

/// The HTTP client of an instance: the app's `client_id` and the user's token (from
/// the config, or the one `ferry auth simkl` stored).
pub(crate) fn client(
    instance: &str,
    config: &SimklConfig,
    options: &SimklOptions,
) -> Result<HttpClient> {
    let invalid = |msg: String| Error::new(ErrorKind::InvalidInput, msg).with_provider("simkl");
    if config.client_id.expose().trim().is_empty() {
        return Err(invalid(format!("providers.{instance}.client_id is empty")));
    }
    let token = match &config.access_token {
        Some(t) if t.expose().trim().is_empty() => {
            return Err(invalid(format!(
                "providers.{instance}.access_token is empty; remove it and run `ferry auth simkl`, or paste the token"
            )));
        }
        Some(t) => t.clone(),
        None => {
            let stored = options.store.as_ref().and_then(|kv| {
                ferry_http::KvTokenStore::new(kv.clone(), instance)
                    .load()
                    .ok()
                    .flatten()
            });
            match stored {
                Some(t) => t.access,
                None => {
                    return Err(invalid(format!(
                        "providers.{instance}: no access_token in the config and none stored; run `ferry auth simkl`"
                    )));
                }
            }
        }
    };
    HttpClient::builder("simkl", instance)
        .base_url(config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))
        .secret_header("simkl-api-key", &config.client_id)
        .bearer(&token)
        .seams(options, &[READ_LIMIT, WRITE_LIMIT])
        .build()
}

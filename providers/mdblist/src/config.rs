//! `[providers.<instance>]` keys for `kind = "mdblist"`, the knobs tests set, and the HTTP
//! client they make.

use std::time::Duration;

use ferry_core::{Error, ErrorKind, RateLimit, Result, Secret, VerbClass};
use ferry_http::{AuthScheme, HttpClient};
use serde::Deserialize;

/// MDBList's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.mdblist.com";
/// Rows per page unless configured.
pub const DEFAULT_PAGE_SIZE: u32 = 200;
/// Entries per write request.
pub const BATCH_SIZE: usize = 100;

/// Reads: MDBList's documentation names no per-second limit (only daily quotas per
/// account tier); ferry stays at five GETs a second.
pub const READ_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Read,
    requests: 5,
    per: Duration::from_secs(1),
};

/// Writes: one per second.
pub const WRITE_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Write,
    requests: 1,
    per: Duration::from_secs(1),
};

/// `[providers.<instance>]` keys for `kind = "mdblist"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdblistConfig {
    /// The API key from mdblist.com/preferences (sent as the `apikey` parameter).
    pub api_key: Secret,
    /// Another API host (a proxy, a simulator). Default [`DEFAULT_BASE_URL`].
    #[serde(default)]
    pub base_url: Option<String>,
    /// Rows per page, 1-1000. Default [`DEFAULT_PAGE_SIZE`].
    #[serde(default)]
    pub page_size: Option<u32>,
}

/// Knobs that are not user configuration (the kit's one test-seam struct).
pub type MdblistOptions = ferry_http::Seams;

/// The checked page size and the HTTP client of an instance.
pub(crate) fn client(
    instance: &str,
    config: &MdblistConfig,
    options: &MdblistOptions,
) -> Result<(HttpClient, usize)> {
    let invalid = |msg: String| Error::new(ErrorKind::InvalidInput, msg).with_provider("mdblist");
    if config.api_key.expose().trim().is_empty() {
        return Err(invalid(format!("providers.{instance}.api_key is empty")));
    }
    let page_size = config.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=1000).contains(&page_size) {
        return Err(invalid(format!(
            "providers.{instance}.page_size must be 1-1000, not {page_size}"
        )));
    }
    let b = HttpClient::builder("mdblist", instance)
        .base_url(config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))
        .auth(AuthScheme::Query("apikey".into()), &config.api_key)
        .seams(options, &[READ_LIMIT, WRITE_LIMIT]);
    Ok((b.build()?, page_size as usize))
}

//! `[providers.<instance>]` keys for `kind = "local"`.

use std::path::PathBuf;

use serde::Deserialize;

/// `[providers.<instance>]` keys for `kind = "local"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The directory holding this instance's files. Defaults to the instance's data dir.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

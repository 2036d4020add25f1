//! ferry provider for Emby.
//!
//! Emby and Jellyfin share a lineage and most of an API; the differences (user-scoped
//! `/Users/{userId}/…` routes, `X-Emby-Token`, compact `DatePlayed`, numeric item ids,
//! query-string playlist creation) are one route table in
//! [`jellyfin::Flavor::Emby`]. This crate only registers that flavour. See
//! `docs/providers/emby.md`.

use ferry_core::{BuildEnv, Capabilities, ProviderKind, Result};
use jellyfin::{Flavor, MediaServer, ServerConfig, ServerOptions};

/// `[providers.<instance>]` keys for `kind = "emby"`: `base_url`, `api_key` (or `token`),
/// `user_id`.
pub type EmbyConfig = ServerConfig;

/// The Emby provider.
#[derive(Debug)]
pub struct EmbyProvider(pub MediaServer);

impl EmbyProvider {
    pub fn new(instance: &str, config: EmbyConfig, options: ServerOptions) -> Result<Self> {
        MediaServer::new(Flavor::Emby, instance, config, options).map(EmbyProvider)
    }
}

impl ProviderKind for EmbyProvider {
    const ID: &'static str = "emby";
    const LABEL: &'static str = "Emby";
    type Config = EmbyConfig;
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(jellyfin::simulator::EMBY);

    fn capabilities() -> Capabilities {
        MediaServer::capabilities()
    }

    fn build(instance: &str, config: EmbyConfig, env: &BuildEnv) -> Result<Self> {
        EmbyProvider::new(instance, config, ServerOptions::from_env(env))
    }
}

ferry_core::register_provider!(EmbyProvider);
jellyfin::delegate_inventory_ops!(EmbyProvider);

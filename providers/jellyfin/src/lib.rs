//! ferry provider for Jellyfin 10.9+.
//!
//! The implementation lives in [`server`], one module family shared with Emby: a
//! [`server::MediaServer`] speaks either route table ([`server::Flavor`]). This crate
//! registers the Jellyfin flavour; the `emby` crate registers the other one.
//!
//! - watchlist = the user's favourites (movies and shows);
//! - history = the played state with its last played date (one play per title, declared
//!   as `PlaysPerTitle::LatestOnly`);
//! - progress = `PlaybackPositionTicks` (10,000 ticks per millisecond);
//! - playlists = the user's own playlists (a user access token is needed to edit them).
//!
//! Every write first resolves the entry to the server's own item id through one paged
//! library index (`ProviderIds`), never one lookup per item. See
//! `docs/providers/jellyfin.md`.

mod activity;
mod library;
mod outcome;
mod playlists;
pub mod server;

use ferry_core::{BuildEnv, Capabilities, ProviderKind, Result};

pub use library::TICKS_PER_MS;
pub use server::{Flavor, MediaServer, ServerConfig, ServerOptions};

/// `[providers.<instance>]` keys for `kind = "jellyfin"`.
pub type JellyfinConfig = ServerConfig;

/// The Jellyfin provider.
#[derive(Debug)]
pub struct JellyfinProvider(pub MediaServer);

impl JellyfinProvider {
    pub fn new(instance: &str, config: JellyfinConfig, options: ServerOptions) -> Result<Self> {
        MediaServer::new(Flavor::Jellyfin, instance, config, options).map(JellyfinProvider)
    }
}

impl ProviderKind for JellyfinProvider {
    const ID: &'static str = "jellyfin";
    const LABEL: &'static str = "Jellyfin";
    type Config = JellyfinConfig;

    fn capabilities() -> Capabilities {
        MediaServer::capabilities()
    }

    fn build(instance: &str, config: JellyfinConfig, env: &BuildEnv) -> Result<Self> {
        JellyfinProvider::new(instance, config, ServerOptions::from_env(env))
    }
}

ferry_core::register_provider!(JellyfinProvider);

/// Implements [`ferry_core::InventoryOps`] for a newtype over [`MediaServer`] by
/// delegation (used here and by the `emby` crate).
#[macro_export]
macro_rules! delegate_inventory_ops {
    ($ty:ty) => {
        #[$crate::__async_trait]
        impl ::ferry_core::InventoryOps for $ty {
            fn provider(&self) -> &'static str {
                ::ferry_core::InventoryOps::provider(&self.0)
            }
            fn instance(&self) -> &str {
                ::ferry_core::InventoryOps::instance(&self.0)
            }
            fn features(&self) -> ::ferry_core::Capabilities {
                ::ferry_core::InventoryOps::features(&self.0)
            }
            fn secrets(&self) -> ::std::vec::Vec<::ferry_core::Secret> {
                ::ferry_core::InventoryOps::secrets(&self.0)
            }
            async fn health(&self, cx: &::ferry_core::Context) -> ::ferry_core::Health {
                ::ferry_core::InventoryOps::health(&self.0, cx).await
            }
            async fn build_index(
                &self,
                cx: &::ferry_core::Context,
                feature: ::ferry_core::Feature,
            ) -> ::ferry_core::Result<::ferry_core::Snapshot> {
                ::ferry_core::InventoryOps::build_index(&self.0, cx, feature).await
            }
            async fn add(
                &self,
                cx: &::ferry_core::Context,
                feature: ::ferry_core::Feature,
                entries: &[::ferry_core::Entry],
            ) -> ::ferry_core::Result<::ferry_core::WriteReport> {
                ::ferry_core::InventoryOps::add(&self.0, cx, feature, entries).await
            }
            async fn remove(
                &self,
                cx: &::ferry_core::Context,
                feature: ::ferry_core::Feature,
                entries: &[::ferry_core::Entry],
            ) -> ::ferry_core::Result<::ferry_core::WriteReport> {
                ::ferry_core::InventoryOps::remove(&self.0, cx, feature, entries).await
            }
            async fn activities(
                &self,
                cx: &::ferry_core::Context,
            ) -> ::ferry_core::Result<::ferry_core::Activities> {
                ::ferry_core::InventoryOps::activities(&self.0, cx).await
            }
            async fn activity(
                &self,
                cx: &::ferry_core::Context,
                feature: ::ferry_core::Feature,
            ) -> ::ferry_core::Result<::std::option::Option<::std::string::String>> {
                ::ferry_core::InventoryOps::activity(&self.0, cx, feature).await
            }
        }
    };
}

#[doc(hidden)]
pub use ferry_core::async_trait as __async_trait;

delegate_inventory_ops!(JellyfinProvider);

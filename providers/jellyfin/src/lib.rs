//! ferry provider for Jellyfin 10.9+.
//!
//! One implementation shared with Emby: a [`MediaServer`] speaks either route table
//! ([`Flavor`]). This crate registers the Jellyfin flavour; the `emby` crate registers
//! the other one. Layout: `config` (user keys), `api` (routes, client, one page),
//! `model` (typed wire rows), `convert` (rows to items), `read` (the pager, the library),
//! `write` (the batch writer), `activity` (checkpoints), `playlists`.
//!
//! - watchlist = the user's favourites (movies and shows);
//! - history = the played state with its last played date (one play per title, declared
//!   as `PlaysPerTitle::LatestOnly`);
//! - progress = `PlaybackPositionTicks` (10,000 ticks per millisecond);
//! - playlists = the user's own playlists (a user access token is needed to edit them).
//!
//! Every write resolves the entry to the server's own item id through the last paged
//! library read (`ProviderIds`), never one lookup per item and never one library read per
//! batch. See
//! `docs/providers/jellyfin.md`.

mod activity;
mod api;
mod config;
mod convert;
mod model;
mod outcome;
mod playlists;
mod read;
#[cfg(feature = "sim")]
pub mod simulator;
mod write;

use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Feature, Health, InventoryOps,
    ProviderKind, Result, Secret, Snapshot, WriteReport,
};

pub use api::{Flavor, MediaServer};
pub use config::{DEFAULT_PAGE_SIZE, ServerConfig, ServerOptions};
pub use convert::TICKS_PER_MS;

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
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(simulator::JELLYFIN);

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

#[async_trait]
impl InventoryOps for MediaServer {
    fn provider(&self) -> &'static str {
        self.flavor.provider_id()
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn features(&self) -> Capabilities {
        Self::capabilities()
    }

    fn secrets(&self) -> Vec<Secret> {
        vec![self.token.clone()]
    }

    async fn health(&self, cx: &Context) -> Health {
        let h = tokio::time::timeout(Duration::from_secs(30), self.probe_health(cx)).await;
        h.unwrap_or_else(|_| Health::down("the health check timed out"))
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(self.unsupported(feature));
        }
        self.index(cx, feature).await
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(self.unsupported(feature));
        }
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Playlists => self.playlists_add(cx, entries).await,
            _ => self.state_write(cx, feature, entries, true).await,
        };
        self.ledger.note_result(cx, feature, &r);
        r
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(self.unsupported(feature));
        }
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Playlists => self.playlists_remove(cx, entries).await,
            _ => self.state_write(cx, feature, entries, false).await,
        };
        self.ledger.note_result(cx, feature, &r);
        r
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        self.all_checkpoints(cx).await
    }

    async fn activity(&self, cx: &Context, feature: Feature) -> Result<Option<String>> {
        self.checkpoint(cx, feature).await
    }
}

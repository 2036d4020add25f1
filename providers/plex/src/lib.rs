//! ferry provider for Plex.
//!
//! History, ratings, progress and playlists live on the user's Plex Media Server (PMS,
//! `base_url`); the watchlist lives on Plex's cloud Discover service (`discover_url`).
//! Every request goes through [`ferry_http`]; every list read through the kit's pager
//! (`X-Plex-Container-Start`/`-Size`, checked against `totalSize`), rows decoded one at
//! a time. See `docs/providers/plex.md` for features, configuration, limits and quirks.
//!
//! Layout: `config` (user keys), `api` (clients, one page, one write call), `model`
//! (typed wire rows, the library), `convert` (rows to items, the row decoders), `read`
//! (the pager, the library, the cached reads writes resolve against), `write` (watchlist
//! and ratings through the batch writer), and one module per concept that needs its own:
//! `history` (plays and the ledger of plays ferry marked), `progress` (resume points
//! below the server's played threshold), `playlists`, `activity` (checkpoints and the
//! health probe), `pin` (`ferry auth plex`).

mod activity;
mod api;
mod config;
mod convert;
mod history;
mod model;
pub mod pin;
mod playlists;
mod progress;
mod read;
mod sign_in;
#[cfg(feature = "sim")]
mod simulator;
mod write;

use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Feature, FeatureCaps, Health, InventoryOps,
    ProviderKind, Result, Secret, Snapshot, WriteReport,
};

pub use api::{LIBRARY_IDENTIFIER, PlexProvider};
pub use config::{DEFAULT_DISCOVER_URL, DEFAULT_PAGE_SIZE, PlexConfig, PlexOptions};
pub use convert::rating_from_plex;

use api::{PLAYABLE, RATEABLE, TITLES};

impl ProviderKind for PlexProvider {
    const ID: &'static str = "plex";
    const LABEL: &'static str = "Plex";
    type Config = PlexConfig;
    const SIGN_IN: Option<ferry_core::SignIn> = Some(sign_in::FLOW);
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(simulator::SIMULATOR);

    /// Every feature; change checkpoints for watchlist, history and ratings (see
    /// [`activity`]).
    fn capabilities() -> Capabilities {
        Capabilities::new()
            .with(Feature::Watchlist, FeatureCaps::full(100, &TITLES))
            .with(Feature::History, FeatureCaps::full(100, &PLAYABLE))
            .with(Feature::Ratings, FeatureCaps::full(100, &RATEABLE))
            .with(Feature::Progress, FeatureCaps::full(100, &PLAYABLE))
            .with(Feature::Playlists, FeatureCaps::full(20, &PLAYABLE))
            .with_activities(true)
    }

    fn build(instance: &str, config: PlexConfig, env: &BuildEnv) -> Result<Self> {
        PlexProvider::new(instance, config, PlexOptions::from_env(env))
    }
}

ferry_core::register_provider!(PlexProvider);

#[async_trait]
impl InventoryOps for PlexProvider {
    fn provider(&self) -> &'static str {
        Self::ID
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
        h.unwrap_or_else(|_| Health::down("plex: the health check timed out"))
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        cx.check_cancelled()?;
        match feature {
            Feature::Watchlist => self.watchlist_index(cx).await,
            Feature::History => self.history_index(cx).await,
            Feature::Ratings => self.ratings_index(cx).await,
            Feature::Progress => self.progress_index(cx).await,
            Feature::Playlists => self.playlists_index(cx).await,
        }
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        cx.check_cancelled()?;
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, true).await,
            Feature::History => self.history_add(cx, entries).await,
            Feature::Ratings => self.ratings_write(cx, entries, true).await,
            Feature::Progress => self.progress_write(cx, entries, true).await,
            Feature::Playlists => self.playlists_add(cx, entries).await,
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
        let _guard = self.write_lock.lock().await;
        let r = match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, false).await,
            Feature::History => self.history_remove(cx, entries).await,
            Feature::Ratings => self.ratings_write(cx, entries, false).await,
            Feature::Progress => self.progress_write(cx, entries, false).await,
            Feature::Playlists => self.playlists_remove(cx, entries).await,
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

//! ferry provider for TMDB (The Movie Database), scaffolded by `cargo xtask new-provider
//! tmdb` and built on the provider kit.
//!
//! - watchlist = the account's movie and TV watchlists;
//! - ratings = the account's rated movies and shows (TMDB's 0.5-10 in half steps, read
//!   rounded half up to ferry's 1-10; see [`convert`]).
//!
//! Layout: `config` (keys), `api` (one page, one write: TMDB API v3), `model` (wire
//! rows), `convert` (rows to items, the rating scale), `read` (the pager), `write` (the
//! batch writer), `sim` (feature `sim`: the simulator). See `docs/providers/tmdb.md`.

mod api;
mod config;
mod convert;
mod model;
mod read;
mod write;

#[cfg(feature = "sim")]
pub mod sim;

use async_trait::async_trait;
use ferry_core::{
    BuildEnv, Capabilities, Context, Entry, Feature, FeatureCaps, Health, InventoryOps, MediaType,
    ProviderKind, Result, Secret, Snapshot, WriteReport,
};

pub use config::{TmdbConfig, TmdbOptions};

/// The TMDB provider.
#[derive(Debug)]
pub struct TmdbProvider {
    instance: String,
    api: api::Api,
}

impl TmdbProvider {
    pub fn new(instance: &str, config: TmdbConfig, options: TmdbOptions) -> Result<Self> {
        Ok(TmdbProvider {
            instance: instance.to_owned(),
            api: api::Api::new(instance, config, options)?,
        })
    }
}

impl ProviderKind for TmdbProvider {
    const ID: &'static str = "tmdb";
    const LABEL: &'static str = "TMDB";
    type Config = TmdbConfig;
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(sim::SIMULATOR);

    /// One title per request (no batch routes); no change checkpoints, so the engine
    /// reads both features every run.
    fn capabilities() -> Capabilities {
        let titles = [MediaType::Movie, MediaType::Show];
        Capabilities::new()
            .with(Feature::Watchlist, FeatureCaps::full(1, &titles))
            .with(Feature::Ratings, FeatureCaps::full(1, &titles))
    }

    fn build(instance: &str, config: Self::Config, env: &BuildEnv) -> Result<Self> {
        TmdbProvider::new(instance, config, TmdbOptions::from_env(env))
    }
}

ferry_core::register_provider!(TmdbProvider);

#[async_trait]
impl InventoryOps for TmdbProvider {
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
        self.api.secrets.clone()
    }

    async fn health(&self, cx: &Context) -> Health {
        self.api.health(cx).await
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        read::index(&self.api, cx, feature).await
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        write::write(&self.api, cx, feature, entries, true).await
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        write::write(&self.api, cx, feature, entries, false).await
    }
}

//! ferry's MDBList provider: watchlist, ratings and play history over MDBList's API
//! (`https://api.mdblist.com`) with an API key. See `docs/providers/mdblist.md`.
//!
//! - Reads page with `offset`/`limit` through the kit's pager and are complete only when
//!   the rows read match the totals the pagination block declares (`read`).
//! - Writes go through the kit's batch writer, confirmed by MDBList's counts or, when
//!   they do not account for every entry, by one re-read (`write`).
//! - `activities()` reads `/sync/last_activities`.

mod api;
mod config;
mod convert;
mod model;
mod read;
#[cfg(feature = "sim")]
mod simulator;
mod write;

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, Feature, FeatureCaps, Health,
    InventoryOps, ListCache, ProviderKind, Result, Secret, Snapshot, WriteReport,
};

pub use config::{
    BATCH_SIZE, DEFAULT_BASE_URL, DEFAULT_PAGE_SIZE, MdblistConfig, MdblistOptions, READ_LIMIT,
    WRITE_LIMIT,
};

use crate::api::{Api, LISTS};
use crate::read::{Feed, VIEW_TTL};

/// The MDBList provider.
#[derive(Debug)]
pub struct MdblistProvider {
    instance: String,
    api: Api,
    page_size: usize,
    /// Watchlist, ratings, history: each list with its last read.
    feeds: [Feed; 3],
}

impl MdblistProvider {
    pub fn new(instance: &str, config: MdblistConfig, options: MdblistOptions) -> Result<Self> {
        let (http, page_size) = config::client(instance, &config, &options)?;
        Ok(MdblistProvider {
            instance: instance.to_owned(),
            api: Api { http },
            page_size,
            feeds: LISTS.each_ref().map(|list| Feed {
                list,
                last: ListCache::new(VIEW_TTL),
            }),
        })
    }

    fn feed(&self, feature: Feature) -> Result<&Feed> {
        let feed = self.feeds.iter().find(|f| f.list.feature == feature);
        feed.ok_or_else(|| {
            Error::unsupported(format!("MDBList does not hold {feature}")).with_provider(Self::ID)
        })
    }
}

impl ProviderKind for MdblistProvider {
    const ID: &'static str = "mdblist";
    const LABEL: &'static str = "MDBList";
    type Config = MdblistConfig;
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(simulator::SIMULATOR);

    fn capabilities() -> Capabilities {
        let caps = Capabilities::new()
            .with_activities(true)
            .with_rate_limit(READ_LIMIT.class, READ_LIMIT.requests, READ_LIMIT.per)
            .with_rate_limit(WRITE_LIMIT.class, WRITE_LIMIT.requests, WRITE_LIMIT.per);
        (LISTS.iter()).fold(caps, |caps, l| {
            caps.with(l.feature, FeatureCaps::full(BATCH_SIZE, l.kinds))
        })
    }

    fn build(instance: &str, config: MdblistConfig, env: &BuildEnv) -> Result<Self> {
        let store = Some(env.kv.clone());
        let options = MdblistOptions {
            store,
            ..MdblistOptions::default()
        };
        MdblistProvider::new(instance, config, options)
    }
}

ferry_core::register_provider!(MdblistProvider);

#[async_trait]
impl InventoryOps for MdblistProvider {
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
        self.api.http.secrets()
    }

    /// One `GET /user`, bypassing the breaker.
    async fn health(&self, cx: &Context) -> Health {
        let caps = Self::capabilities();
        ferry_http::service_health(&self.api.http, &caps, self.api.user(cx)).await
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        self.read(cx, self.feed(feature)?).await
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.write(cx, self.feed(feature)?, entries, true).await
    }

    async fn remove(&self, cx: &Context, f: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.write(cx, self.feed(f)?, entries, false).await
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        let a = self.api.last_activities(cx).await?;
        Ok(convert::activities(&a))
    }
}

//! The local file tracker. See `README.md` for the on-disk layout and its guarantees.

mod config;
mod files;
mod write;

pub use config::LocalConfig;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    Health, InventoryOps, MediaType, ProviderKind, Result, Snapshot, WriteReport,
};
use tokio::sync::Mutex;

use crate::files::Store;

/// The local file tracker.
#[derive(Debug)]
pub struct LocalProvider {
    pub(crate) instance: String,
    store: Arc<Store>,
    // Serializes writers within this process; each write re-reads its file first, so an
    // edit made by hand between runs is never overwritten by a stale copy.
    pub(crate) write_lock: Mutex<()>,
}

const TYPES: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];

impl LocalProvider {
    pub fn open(instance: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        LocalProvider {
            instance: instance.into(),
            store: Arc::new(Store::new(dir.into())),
            write_lock: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.store.dir()
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("local store task failed: {e}"),
                )
            })?
            .map_err(|e| e.with_provider("local"))
    }
}

impl ProviderKind for LocalProvider {
    const ID: &'static str = "local";
    const LABEL: &'static str = "Local file tracker";
    type Config = LocalConfig;

    fn capabilities() -> Capabilities {
        let mut caps = Capabilities::new().with_activities(true);
        for f in Feature::ALL {
            caps = caps.with(f, FeatureCaps::full(500, &TYPES));
        }
        caps
    }

    fn build(instance: &str, config: LocalConfig, env: &BuildEnv) -> Result<Self> {
        let dir = config.path.unwrap_or_else(|| env.data_dir.clone());
        Ok(LocalProvider::open(instance, dir))
    }
}

ferry_core::register_provider!(LocalProvider);

#[async_trait]
impl InventoryOps for LocalProvider {
    fn provider(&self) -> &'static str {
        Self::ID
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn features(&self) -> Capabilities {
        Self::capabilities()
    }

    async fn health(&self, _cx: &Context) -> Health {
        let started = Instant::now();
        match self.blocking(|s| s.probe()).await {
            Ok(()) => Health::ok()
                .with_latency(started.elapsed())
                .with_features(&Self::capabilities(), true),
            Err(e) => Health::down(e.to_string()).with_latency(started.elapsed()),
        }
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Error::unsupported(format!("local does not hold {feature}")));
        }
        let read = self.blocking(move |s| s.read(feature)).await?;
        let list = format!("{}/{feature}", self.instance);
        read.proof().report_undecodable(&cx.emitter, &list);
        let (entries, proof) = read.into_parts();
        Ok(Snapshot::from_read(feature, &proof, entries))
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.write(cx, feature, entries, true).await
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        self.write(cx, feature, entries, false).await
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        cx.check_cancelled()?;
        let counters: BTreeMap<Feature, u64> = self.blocking(|s| s.checkpoints()).await?;
        let mut a = Activities::new();
        for f in Feature::ALL {
            a = a.with(f, format!("{}", counters.get(&f).copied().unwrap_or(0)));
        }
        Ok(a)
    }
}

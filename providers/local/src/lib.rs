//! The local file tracker. See `README.md` for the on-disk layout and its guarantees.

mod files;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    Health, InventoryOps, MediaType, ProviderKind, Result, Snapshot, WriteReport,
};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::files::Store;

/// `[providers.<instance>]` keys for `kind = "local"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The directory holding this instance's files. Defaults to the instance's data dir.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// The local file tracker.
#[derive(Debug)]
pub struct LocalProvider {
    instance: String,
    store: Arc<Store>,
    // Serializes writers within this process; each write re-reads its file first, so an
    // edit made by hand between runs is never overwritten by a stale copy.
    write_lock: Mutex<()>,
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

    async fn blocking<T: Send + 'static>(
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

    async fn write(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Error::unsupported(format!("local does not hold {feature}")));
        }
        let _guard = self.write_lock.lock().await;
        let entries = entries.to_vec();
        let op = if add { "add" } else { "remove" };
        let started = Instant::now();
        let report = self
            .blocking(move |s| {
                let mut inv = s.load(feature)?;
                let report = if add {
                    inv.add(feature, &entries)
                } else {
                    inv.remove(feature, &entries)
                };
                if report.confirmed() > 0 {
                    s.save(feature, &inv)?;
                }
                Ok(report)
            })
            .await?;
        cx.emitter.emit(
            "local:write",
            serde_json::json!({
                "instance": self.instance, "feature": feature, "op": op,
                "confirmed": report.confirmed(), "unchanged": report.unchanged(),
                "ms": started.elapsed().as_millis() as u64,
            }),
        );
        Ok(report)
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
        self.blocking(move |s| Ok(s.load(feature)?.snapshot(feature)))
            .await
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

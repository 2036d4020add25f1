//! Provider registration through `inventory`.
//!
//! Each provider crate submits one [`ProviderDescriptor`]. A crate that is a dependency
//! but never referenced is not linked and its submission silently disappears, so the
//! runner keeps one `use provider as _;` line per cargo feature and a test that every
//! enabled feature registered exactly one provider.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::ops::{Capabilities, InventoryOps};
use crate::sign_in::SignIn;
use crate::simulate::Simulator;
use crate::store::{KvStore, MemoryKvStore};

/// One provider instance's raw configuration: the `[providers.<instance>]` table minus
/// `kind`, with `${VAR}` references already substituted.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    pub instance: String,
    pub kind: String,
    pub values: Map<String, Value>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may hold tokens; print only the key names.
        f.debug_struct("ProviderConfig")
            .field("instance", &self.instance)
            .field("kind", &self.kind)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderConfig {
    pub fn new(instance: impl Into<String>, kind: impl Into<String>) -> Self {
        ProviderConfig {
            instance: instance.into(),
            kind: kind.into(),
            values: Map::new(),
        }
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.values.insert(key.to_owned(), value.into());
        self
    }

    /// Deserializes the values into a provider's typed config; an error names the field.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let v = Value::Object(self.values.clone());
        serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
            let path = e.path().to_string();
            let field = (path != "." && !path.is_empty()).then_some(path);
            let inner = e.into_inner().to_string();
            // serde names unknown/missing fields in the message rather than the path.
            let field = field.or_else(|| backticked_after(&inner, "field `"));
            ConfigError {
                instance: self.instance.clone(),
                field,
                message: inner,
            }
        })
    }
}

fn backticked_after(msg: &str, marker: &str) -> Option<String> {
    let start = msg.find(marker)? + marker.len();
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_owned())
}

/// A configuration problem, naming the instance and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("providers.{instance}{}: {message}", field.as_ref().map(|f| format!(".{f}")).unwrap_or_default())]
pub struct ConfigError {
    pub instance: String,
    pub field: Option<String>,
    pub message: String,
}

/// What a provider gets besides its config when it is built.
#[derive(Debug, Clone)]
pub struct BuildEnv {
    /// A directory this instance may keep files in (the local provider's data).
    pub data_dir: PathBuf,
    /// Small provider-owned state (rotated tokens, breaker records), namespaced by instance.
    pub kv: Arc<dyn KvStore>,
}

impl BuildEnv {
    pub fn new(data_dir: impl Into<PathBuf>, kv: Arc<dyn KvStore>) -> Self {
        BuildEnv {
            data_dir: data_dir.into(),
            kv,
        }
    }

    /// A build environment backed by memory, rooted at `data_dir`.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        BuildEnv::new(data_dir, Arc::new(MemoryKvStore::new()))
    }
}

/// Implemented by each provider type so its descriptor can be built with
/// [`ProviderDescriptor::of`].
pub trait ProviderKind: InventoryOps + Sized + 'static {
    const ID: &'static str;
    const LABEL: &'static str;
    type Config: DeserializeOwned;

    /// Capabilities known without any configuration, for `ferry providers`.
    fn capabilities() -> Capabilities;

    /// `ferry auth <id>`: the service's interactive sign-in, if it has one.
    const SIGN_IN: Option<SignIn> = None;
    /// `ferry simulate <id>` and `ferry demo`: the service's simulator, declared behind
    /// the provider crate's own `sim` cargo feature so a build without it links no
    /// simulator.
    const SIMULATOR: Option<Simulator> = None;

    fn build(instance: &str, config: Self::Config, env: &BuildEnv) -> Result<Self>;
}

/// A provider's registration record.
pub struct ProviderDescriptor {
    pub id: &'static str,
    pub label: &'static str,
    pub capabilities: fn() -> Capabilities,
    /// Checks a config without building anything.
    pub validate: fn(&ProviderConfig) -> Result<(), ConfigError>,
    /// Parses the config and builds an instance, inside the [`crate::harness::Harness`].
    pub build: fn(&ProviderConfig, &BuildEnv) -> Result<Arc<dyn InventoryOps>>,
    /// [`ProviderKind::SIGN_IN`].
    pub sign_in: Option<SignIn>,
    /// [`ProviderKind::SIMULATOR`].
    pub simulator: Option<Simulator>,
}

impl fmt::Debug for ProviderDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderDescriptor")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("sign_in", &self.sign_in)
            .field("simulator", &self.simulator)
            .finish()
    }
}

fn validate_config<P: ProviderKind>(cfg: &ProviderConfig) -> Result<(), ConfigError> {
    cfg.parse::<P::Config>().map(drop)
}

fn build_provider<P: ProviderKind>(
    cfg: &ProviderConfig,
    env: &BuildEnv,
) -> Result<Arc<dyn InventoryOps>> {
    let parsed = cfg
        .parse::<P::Config>()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()).with_provider(P::ID))?;
    let provider: Arc<dyn InventoryOps> = Arc::new(P::build(&cfg.instance, parsed, env)?);
    Ok(crate::harness::Harness::wrap(provider))
}

impl ProviderDescriptor {
    /// The descriptor of a [`ProviderKind`], usable in `inventory::submit!`.
    pub const fn of<P: ProviderKind>() -> Self {
        ProviderDescriptor {
            id: P::ID,
            label: P::LABEL,
            capabilities: P::capabilities,
            validate: validate_config::<P>,
            build: build_provider::<P>,
            sign_in: P::SIGN_IN,
            simulator: P::SIMULATOR,
        }
    }
}

inventory::collect!(ProviderDescriptor);

/// Every provider linked into this binary, sorted by id.
pub fn providers() -> Vec<&'static ProviderDescriptor> {
    let mut v: Vec<_> = inventory::iter::<ProviderDescriptor>.into_iter().collect();
    v.sort_by_key(|d| d.id);
    v
}

/// The provider registered under `id`; the error lists what is compiled in.
pub fn find(id: &str) -> Result<&'static ProviderDescriptor> {
    let id = id.trim().to_ascii_lowercase();
    providers().into_iter().find(|d| d.id == id).ok_or_else(|| {
        let known: Vec<_> = providers().iter().map(|d| d.id).collect();
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "no provider `{id}` is compiled into this binary; compiled in: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        token: String,
        #[serde(default)]
        page_size: Option<u32>,
    }

    #[test]
    fn config_errors_name_the_field() {
        let c = ProviderConfig::new("t1", "x")
            .set("token", "abc")
            .set("page_sise", 3);
        let e = c.parse::<Cfg>().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("page_sise"));
        assert!(
            e.to_string()
                .starts_with("providers.t1.page_sise: unknown field"),
            "{e}"
        );

        let c = ProviderConfig::new("t1", "x")
            .set("token", "abc")
            .set("page_size", "big");
        let e = c.parse::<Cfg>().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("page_size"));

        let e = ProviderConfig::new("t1", "x").parse::<Cfg>().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("token"), "{e}");
    }

    /// A provider that declares a read-only watchlist and would confirm any write.
    #[derive(Debug)]
    struct ReadOnly;

    #[async_trait::async_trait]
    impl InventoryOps for ReadOnly {
        fn provider(&self) -> &'static str {
            "ro"
        }
        fn instance(&self) -> &str {
            "ro1"
        }
        fn features(&self) -> Capabilities {
            ReadOnly::capabilities()
        }
        async fn build_index(
            &self,
            _cx: &crate::ops::Context,
            f: crate::feature::Feature,
        ) -> Result<crate::snapshot::Snapshot> {
            Ok(crate::snapshot::Snapshot::partial(f, [], "test"))
        }
        async fn add(
            &self,
            _cx: &crate::ops::Context,
            _f: crate::feature::Feature,
            entries: &[crate::item::Entry],
        ) -> Result<crate::report::WriteReport> {
            Ok(crate::report::WriteReport::all(
                entries,
                crate::report::Outcome::Confirmed,
            ))
        }
        async fn remove(
            &self,
            cx: &crate::ops::Context,
            f: crate::feature::Feature,
            entries: &[crate::item::Entry],
        ) -> Result<crate::report::WriteReport> {
            self.add(cx, f, entries).await
        }
    }

    impl ProviderKind for ReadOnly {
        const ID: &'static str = "ro";
        const LABEL: &'static str = "Read-only";
        type Config = serde_json::Value;
        fn capabilities() -> Capabilities {
            Capabilities::new().with(
                crate::feature::Feature::Watchlist,
                crate::ops::FeatureCaps::read_only(&[crate::item::MediaType::Movie]),
            )
        }
        fn build(_instance: &str, _config: serde_json::Value, _env: &BuildEnv) -> Result<Self> {
            Ok(ReadOnly)
        }
    }

    #[tokio::test]
    async fn the_registry_builds_providers_inside_the_harness() {
        use crate::identity::{IdKind, Ids};
        let d = ProviderDescriptor::of::<ReadOnly>();
        let p = (d.build)(
            &ProviderConfig::new("ro1", "ro"),
            &BuildEnv::ephemeral(std::env::temp_dir()),
        )
        .unwrap();
        let e = crate::item::Entry::watchlist(crate::item::Item::movie(
            "M",
            2000,
            Ids::new().with(IdKind::Tmdb, "1"),
        ));
        let err = p
            .add(
                &crate::ops::Context::default(),
                crate::feature::Feature::Watchlist,
                &[e],
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("instance=ro1"), "{err}");
    }

    #[test]
    fn debug_never_prints_values() {
        let c = ProviderConfig::new("t1", "x").set("token", "supersecret");
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}

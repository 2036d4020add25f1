//! What every command that touches providers shares: the state database, the event
//! emitter for this invocation, the provider instances and the engine's run config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::{BuildEnv, Emitter, EventSink, Feature, InventoryOps, KvStore};
use ferry_engine::{Engine, FeatureSwitch, Guardrails, Mode, PairConfig, RemoveMode, RunConfig};
use ferry_state::StateStore;

use crate::Failure;
use crate::config::{self, Config};
use crate::degraded::{Degraded, HealthTap};
use crate::output::{Human, JsonLines};

/// Opens (or creates) the state database; a corrupt or too-new file is a usage error
/// naming it, never a reset.
pub(crate) fn open_state(path: &Path) -> Result<StateStore, Failure> {
    let state =
        StateStore::open(path).map_err(|e| Failure::usage(format!("state database: {e}")))?;
    for t in state.tightened() {
        crate::report(&format!("warning: {t}"));
    }
    Ok(state)
}

/// The sink for this invocation: NDJSON on stdout with `--json`, else bars and warnings.
pub(crate) fn sink(json: bool) -> Arc<dyn EventSink> {
    if json {
        Arc::new(JsonLines::default())
    } else {
        Arc::new(Human::new())
    }
}

/// Builds every configured provider instance, with the state store as their `KvStore`.
/// A config a provider refuses is a config error at the key its message names.
pub(crate) fn build_providers(
    cfg: &Config,
    kv: Arc<dyn KvStore>,
) -> Result<BTreeMap<String, Arc<dyn InventoryOps>>, Failure> {
    let mut out = BTreeMap::new();
    for instance in cfg.providers.keys() {
        out.insert(instance.clone(), build_instance(cfg, instance, kv.clone())?);
    }
    Ok(out)
}

/// Builds one configured instance, as [`build_providers`] does.
pub(crate) fn build_instance(
    cfg: &Config,
    instance: &str,
    kv: Arc<dyn KvStore>,
) -> Result<Arc<dyn InventoryOps>, Failure> {
    let pc = cfg.providers.get(instance).ok_or_else(|| {
        Failure::usage(format!(
            "no [providers.{instance}] in {}",
            cfg.file.display()
        ))
    })?;
    let d = ferry_core::registry::find(&pc.kind).map_err(|e| Failure::usage(e.to_string()))?;
    (d.build)(pc, &build_env(cfg, instance, kv))
        .map_err(|e| cfg.provider_error(instance, e.message()).into())
}

/// What a configured instance gets besides its config: its data directory beside the
/// state file, and `kv`.
pub(crate) fn build_env(cfg: &Config, instance: &str, kv: Arc<dyn KvStore>) -> BuildEnv {
    let data_root = cfg
        .state_path
        .parent()
        .map(|p| p.join("data"))
        .unwrap_or_else(|| PathBuf::from("data"));
    BuildEnv::new(data_root.join(instance), kv)
}

/// Builds instances configured in code (the demo, the benchmark: no config file).
pub(crate) fn build_from(
    providers: &BTreeMap<String, ferry_core::ProviderConfig>,
    data_root: &Path,
    kv: Arc<dyn KvStore>,
) -> Result<BTreeMap<String, Arc<dyn InventoryOps>>, Failure> {
    let mut out = BTreeMap::new();
    for (instance, pc) in providers {
        let d = ferry_core::registry::find(&pc.kind).map_err(|e| Failure::usage(e.to_string()))?;
        let env = BuildEnv::new(data_root.join(instance), kv.clone());
        let ops = (d.build)(pc, &env)
            .map_err(|e| Failure::usage(format!("providers.{instance}: {e}")))?;
        out.insert(instance.clone(), ops);
    }
    Ok(out)
}

/// Builds every instance as `run` does, without connecting and keeping nothing a build
/// would store: what `run` would refuse, `check` refuses. Tokens kept by `ferry auth` are
/// read from the state file if there is one.
pub(crate) fn check_providers(cfg: &Config) -> Result<(), Failure> {
    let stored = if cfg.state_path.exists() {
        Some(open_state(&cfg.state_path)?)
    } else {
        None
    };
    let kv: Arc<dyn KvStore> = Arc::new(ReadOnlyKv {
        stored,
        scratch: ferry_core::MemoryKvStore::new(),
    });
    build_providers(cfg, kv).map(drop)
}

/// The state's key-value store for reading; writes (a build may note which configured
/// token a stored one replaces) stay in memory.
#[derive(Debug)]
struct ReadOnlyKv {
    stored: Option<StateStore>,
    scratch: ferry_core::MemoryKvStore,
}

impl KvStore for ReadOnlyKv {
    fn get(&self, namespace: &str, key: &str) -> ferry_core::Result<Option<String>> {
        if let Some(v) = self.scratch.get(namespace, key)? {
            return Ok(Some(v));
        }
        match &self.stored {
            Some(s) => s.get(namespace, key),
            None => Ok(None),
        }
    }

    fn put(&self, namespace: &str, key: &str, value: &str) -> ferry_core::Result<()> {
        self.scratch.put(namespace, key, value)
    }

    fn delete(&self, namespace: &str, key: &str) -> ferry_core::Result<()> {
        self.scratch.delete(namespace, key)
    }
}

/// An emitter that scrubs every configured secret from every event.
pub(crate) fn emitter(
    sink: Arc<dyn EventSink>,
    providers: &BTreeMap<String, Arc<dyn InventoryOps>>,
    debug: bool,
) -> Emitter {
    let secrets: Vec<String> = providers
        .values()
        .flat_map(|p| p.secrets())
        .map(|s| s.expose().to_owned())
        .collect();
    Emitter::builder()
        .sink(sink)
        .debug(debug)
        .build()
        .with_redactions(secrets)
}

pub(crate) fn engine(state: StateStore, emitter: Emitter) -> Engine {
    Engine::new(state, emitter)
}

/// What a command that drives the engine over the configured providers needs: the
/// providers (built with the state database as their `KvStore`), the emitter for this
/// invocation, and the engine on the same state.
pub(crate) struct Session {
    pub(crate) providers: BTreeMap<String, Arc<dyn InventoryOps>>,
    pub(crate) emitter: Emitter,
    pub(crate) engine: Engine,
    /// Each instance's health as the engine saw it in the last run.
    pub(crate) health: Arc<HealthTap>,
}

pub(crate) fn session(cfg: &Config, state: StateStore, json: bool) -> Result<Session, Failure> {
    let providers = build_providers(cfg, Arc::new(state.clone()))?;
    let health = Arc::new(HealthTap::new(sink(json)));
    let emitter = self::emitter(health.clone(), &providers, cfg.runtime.debug);
    let engine = engine(state, emitter.clone());
    Ok(Session {
        providers,
        emitter,
        engine,
        health,
    })
}

/// What a finished run means for its exit code: the instances it could not sync
/// (announced as `run:degraded`, an event only when there are some).
pub(crate) fn degraded_after_run(
    cfg: &Config,
    session: &Session,
    summary: &ferry_engine::RunSummary,
) -> Vec<Degraded> {
    let list =
        crate::degraded::degraded(summary, &session.health.take(), &cfg.providers, &cfg.file);
    if !list.is_empty() {
        session.emitter.emit_value(
            "run:degraded",
            &serde_json::json!({"run_id": summary.run_id, "providers": list}),
        );
    }
    list
}

/// Per-run options from the command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFlags {
    pub(crate) pair: Option<String>,
    pub(crate) feature: Option<Feature>,
    pub(crate) dry_run: bool,
    pub(crate) allow_mass_delete: bool,
}

fn pair_config(p: &config::PairConfig) -> PairConfig {
    let mut out = PairConfig::new(&p.name, &p.source, &p.target);
    out.mode = match p.mode {
        config::Mode::OneWay => Mode::OneWay,
        config::Mode::TwoWay => Mode::TwoWay,
    };
    out.remove_mode = match p.remove_mode {
        config::RemoveMode::SourceDeletes => RemoveMode::SourceDeletes,
        config::RemoveMode::Mirror => RemoveMode::Mirror,
    };
    out.source_of_truth = match p.source_of_truth.as_deref() {
        Some("target") => Some(p.target.clone()),
        Some(_) => Some(p.source.clone()),
        None => None,
    };
    for (f, s) in &p.features {
        out.features.insert(
            *f,
            FeatureSwitch {
                enable: s.enable,
                add: s.add,
                remove: s.remove,
            },
        );
    }
    out
}

/// The engine's run config for this config file and these flags.
pub(crate) fn run_config(cfg: &Config, flags: &RunFlags) -> Result<RunConfig, Failure> {
    if let Some(name) = &flags.pair
        && !cfg.pairs.iter().any(|p| &p.name == name)
    {
        let known: Vec<_> = cfg.pairs.iter().map(|p| p.name.as_str()).collect();
        return Err(Failure::usage(format!(
            "--pair: no pair named `{name}` in {}; pairs: {}",
            cfg.file.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    if cfg.pairs.is_empty() {
        return Err(Failure::usage(format!(
            "{}: no [[pairs]] are configured, so there is nothing to sync",
            cfg.file.display()
        )));
    }
    let g = &cfg.guardrails;
    let guardrails = Guardrails {
        mass_delete_ratio: g.mass_delete_ratio,
        mass_delete_floor: g.mass_delete_floor,
        tombstone_ttl_days: g.tombstone_ttl_days,
        history_tolerance_secs: g.history_tolerance_secs,
        full_read_hours: g.full_read_hours,
        health_retry_ms: g.health_retry_ms,
        ..Guardrails::default()
    };
    let mut rc = RunConfig::new(cfg.pairs.iter().map(pair_config).collect());
    rc.guardrails = guardrails;
    rc.dry_run = flags.dry_run;
    rc.allow_mass_delete = flags.allow_mass_delete || g.allow_mass_delete;
    rc.only_pair = flags.pair.clone();
    rc.only_feature = flags.feature;
    rc.debug = cfg.runtime.debug;
    Ok(rc)
}

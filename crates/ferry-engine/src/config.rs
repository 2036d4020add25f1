//! What a run is asked to do: pairs, per-feature switches and guardrails.

use std::collections::BTreeMap;

use ferry_core::Feature;
use serde::{Deserialize, Serialize};

/// One-way (source → target) or two-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    OneWay,
    TwoWay,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::OneWay => "one-way",
            Mode::TwoWay => "two-way",
        }
    }
}

/// How a one-way pair removes from its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveMode {
    /// Remove from the target only what vanished from the source's baseline and still
    /// exists on the target (ferry's default).
    #[default]
    SourceDeletes,
    /// Also remove target items that are absent from the source, restricted to items in the
    /// target's own baseline (explicit opt-in).
    Mirror,
}

/// Per-feature switches of a pair. Defaults: enabled, adds on, removals **off**.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureSwitch {
    pub enable: bool,
    pub add: bool,
    pub remove: bool,
}

impl Default for FeatureSwitch {
    fn default() -> Self {
        FeatureSwitch {
            enable: true,
            add: true,
            remove: false,
        }
    }
}

impl FeatureSwitch {
    /// Enabled with adds and removals.
    pub fn with_removals() -> Self {
        FeatureSwitch {
            remove: true,
            ..FeatureSwitch::default()
        }
    }

    pub fn add_only() -> Self {
        FeatureSwitch::default()
    }
}

/// One pair. `name` keys its baselines, tombstones and unresolved items: renaming a pair
/// starts it afresh (a bootstrap run, which never removes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConfig {
    pub name: String,
    /// Source instance name (side A in two-way).
    pub source: String,
    /// Target instance name (side B in two-way).
    pub target: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub remove_mode: RemoveMode,
    /// Features of this pair. Empty means every feature both sides support, with default
    /// switches. When non-empty, only the features listed run.
    #[serde(default)]
    pub features: BTreeMap<Feature, FeatureSwitch>,
    /// The instance that wins two-way conflicts that timestamps cannot decide. Defaults to
    /// the source.
    #[serde(default)]
    pub source_of_truth: Option<String>,
}

impl PairConfig {
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        PairConfig {
            name: name.into(),
            source: source.into(),
            target: target.into(),
            mode: Mode::OneWay,
            remove_mode: RemoveMode::SourceDeletes,
            features: BTreeMap::new(),
            source_of_truth: None,
        }
    }

    pub fn two_way(mut self) -> Self {
        self.mode = Mode::TwoWay;
        self
    }

    pub fn mirror(mut self) -> Self {
        self.remove_mode = RemoveMode::Mirror;
        self
    }

    pub fn feature(mut self, f: Feature, switch: FeatureSwitch) -> Self {
        self.features.insert(f, switch);
        self
    }

    /// Whether side A (the source) wins ties.
    pub(crate) fn a_is_truth(&self) -> bool {
        self.source_of_truth
            .as_deref()
            .is_none_or(|s| s != self.target)
    }
}

/// Guardrails (`guard.rs`). All on by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guardrails {
    /// Drop guard: a side whose snapshot shrank to `drop_ratio` of a baseline of at least
    /// `drop_min_prev` items is suspect unless its activity checkpoint advanced.
    pub drop_guard: bool,
    pub drop_min_prev: usize,
    pub drop_ratio: f64,
    /// Mass delete: more removals for one target and feature than
    /// `max(mass_delete_floor, mass_delete_ratio × baseline)` are all blocked.
    pub mass_delete: bool,
    pub mass_delete_ratio: f64,
    pub mass_delete_floor: usize,
    pub tombstone_ttl_days: u32,
    /// Consecutive failed runs before an add is blackboxed (0 turns the blackbox off).
    pub blackbox_after: u32,
    pub blackbox_days: u32,
    /// Save the target's snapshot before any removal is applied.
    pub restore_points: bool,
    /// History: a play within this many seconds of a play of the same title is that play.
    pub history_tolerance_secs: u64,
    /// Progress: moves smaller than this are not written.
    pub progress_tolerance_ms: u64,
    /// A rate-limit wait longer than this defers the writes to the next run.
    pub max_rate_limit_wait_secs: u64,
    /// The activities shortcut skips a feature only if both sides were read in full
    /// within this many hours (0: never skip). A bound on every checkpoint scheme's
    /// blind spots (a change a service does not stamp, a delta missed by a crash).
    pub full_read_hours: u32,
    /// A health probe that answers `down` is asked again (backoff from 250 ms, doubling)
    /// while this budget lasts: one failed request is not an outage.
    pub health_retry_ms: u64,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            drop_guard: true,
            drop_min_prev: 20,
            drop_ratio: 0.10,
            mass_delete: true,
            mass_delete_ratio: 0.10,
            mass_delete_floor: 5,
            tombstone_ttl_days: 30,
            blackbox_after: 3,
            blackbox_days: 30,
            restore_points: true,
            history_tolerance_secs: ferry_core::HISTORY_TOLERANCE_SECS,
            progress_tolerance_ms: 30_000,
            max_rate_limit_wait_secs: 60,
            full_read_hours: 24,
            health_retry_ms: 5_000,
        }
    }
}

/// One run's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub pairs: Vec<PairConfig>,
    pub guardrails: Guardrails,
    /// Plan and report exactly as a real run, call no write, commit nothing.
    pub dry_run: bool,
    /// Lift the mass-delete block for this run only.
    pub allow_mass_delete: bool,
    pub only_pair: Option<String>,
    pub only_feature: Option<Feature>,
    /// Emit `dbg` events.
    pub debug: bool,
}

impl RunConfig {
    pub fn new(pairs: Vec<PairConfig>) -> Self {
        RunConfig {
            pairs,
            ..RunConfig::default()
        }
    }
}

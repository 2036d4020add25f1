//! The provider contract: [`InventoryOps`] and the types it speaks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::event::Emitter;
use crate::feature::Feature;
use crate::item::{Entry, MediaType};
use crate::report::WriteReport;
use crate::secret::Secret;
use crate::snapshot::{IndexSemantics, Snapshot};

/// What every provider call receives: where to send events, and whether to stop.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub emitter: Emitter,
    pub cancel: CancelToken,
}

impl Context {
    pub fn new(emitter: Emitter, cancel: CancelToken) -> Self {
        Context { emitter, cancel }
    }

    /// `Err(Cancelled)` once the run is cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        self.cancel.check()
    }
}

/// A provider's health, as gating sees it (`ferry-engine/src/gate.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
    RateLimited,
    Down,
    AuthFailed,
    /// The provider has no health check. ferry's rule: it may add, but never yields
    /// observed deletions.
    Unknown,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Degraded => "degraded",
            HealthStatus::RateLimited => "rate_limited",
            HealthStatus::Down => "down",
            HealthStatus::AuthFailed => "auth_failed",
            HealthStatus::Unknown => "unknown",
        }
    }

    /// Reads and writes may proceed.
    pub fn is_usable(self) -> bool {
        !matches!(self, HealthStatus::Down | HealthStatus::AuthFailed)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service's rate-limit headers at the time of the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateInfo {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Seconds until the window resets.
    pub reset_secs: Option<u64>,
}

/// The result of [`InventoryOps::health`]. Cheap: one or two requests, never a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub latency_ms: Option<u64>,
    /// Per-feature availability right now; a `false` makes the feature a no-op this run.
    #[serde(default)]
    pub features: BTreeMap<Feature, bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Account caps, e.g. `{"watchlist": 250}` for a free Trakt account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub account_limits: BTreeMap<Feature, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Checkpoints the probe read on its way (see [`InventoryOps::health`]): the engine
    /// uses them for this run instead of calling [`InventoryOps::activities`]. Not part
    /// of the `health` event.
    #[serde(skip)]
    pub activities: Option<Activities>,
}

impl Health {
    pub fn new(status: HealthStatus) -> Self {
        Health {
            status,
            latency_ms: None,
            features: BTreeMap::new(),
            rate: None,
            retry_after_secs: None,
            account_limits: BTreeMap::new(),
            details: None,
            activities: None,
        }
    }

    pub fn ok() -> Self {
        Health::new(HealthStatus::Ok)
    }

    pub fn unknown() -> Self {
        Health::new(HealthStatus::Unknown)
    }

    pub fn down(details: impl Into<String>) -> Self {
        Health {
            details: Some(details.into()),
            ..Health::new(HealthStatus::Down)
        }
    }

    pub fn auth_failed(details: impl Into<String>) -> Self {
        Health {
            details: Some(details.into()),
            ..Health::new(HealthStatus::AuthFailed)
        }
    }

    /// Hands the engine the checkpoints the probe read, so the run does not ask again.
    pub fn with_activities(mut self, a: Activities) -> Self {
        self.activities = Some(a);
        self
    }

    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency_ms = Some(d.as_millis() as u64);
        self
    }

    pub fn with_features(mut self, caps: &Capabilities, available: bool) -> Self {
        for f in caps.features.keys() {
            self.features.insert(*f, available);
        }
        self
    }

    /// Maps an error from the probe request to a status.
    pub fn from_error(err: &Error) -> Self {
        use crate::error::ErrorKind as K;
        let status = match err.kind() {
            K::Auth => HealthStatus::AuthFailed,
            K::RateLimited => HealthStatus::RateLimited,
            _ => HealthStatus::Down,
        };
        Health {
            retry_after_secs: err.retry_after().map(|d| d.as_secs()),
            details: Some(err.to_string()),
            ..Health::new(status)
        }
    }

    /// Whether the feature is available according to this check (absent means yes).
    pub fn feature_available(&self, f: Feature) -> bool {
        self.features.get(&f).copied().unwrap_or(true)
    }
}

/// A class of requests with its own rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerbClass {
    Read,
    Write,
}

/// A published rate limit: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub class: VerbClass,
    pub requests: u32,
    #[serde(with = "secs")]
    pub per: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        f64::deserialize(d).map(Duration::from_secs_f64)
    }
}

/// How many plays of one title a provider's history holds.
///
/// Trackers keep every play (`Many`). Jellyfin and Emby keep a played flag and one "last
/// played" date per title (`LatestOnly`): adding a play newer than the one shown moves the
/// date forward, an older play is already covered by it, and the title loses its play only
/// when it is marked unplayed. The planner reads such a side's single play as "the latest
/// play of this title", never as the title's whole history (see `docs/engine.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaysPerTitle {
    /// Every play is kept (the default).
    #[default]
    Many,
    /// Only the latest play of each title is kept.
    LatestOnly,
}

/// What a provider can do with one feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureCaps {
    pub read: bool,
    pub add: bool,
    pub remove: bool,
    pub semantics: IndexSemantics,
    /// Whether a deletion on this provider shows up as an absence in its snapshot.
    pub observed_deletes: bool,
    /// Items per write request the service accepts.
    pub batch_size: usize,
    /// Which media types this feature holds.
    pub media_types: Vec<MediaType>,
    /// History only: whether every play is kept or only each title's latest.
    #[serde(default)]
    pub plays_per_title: PlaysPerTitle,
}

impl FeatureCaps {
    /// Read, add and remove; a full inventory; deletions observable.
    pub fn full(batch_size: usize, media_types: &[MediaType]) -> Self {
        FeatureCaps {
            read: true,
            add: true,
            remove: true,
            semantics: IndexSemantics::Present,
            observed_deletes: true,
            batch_size,
            media_types: media_types.to_vec(),
            plays_per_title: PlaysPerTitle::Many,
        }
    }

    /// History: the provider keeps only the latest play of each title.
    pub fn latest_play_only(mut self) -> Self {
        self.plays_per_title = PlaysPerTitle::LatestOnly;
        self
    }

    pub fn read_only(media_types: &[MediaType]) -> Self {
        FeatureCaps {
            add: false,
            remove: false,
            ..FeatureCaps::full(1, media_types)
        }
    }

    pub fn writable(&self) -> bool {
        self.add || self.remove
    }
}

/// What a provider declares it can do (OpenDAL's capability struct, for watch state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub features: BTreeMap<Feature, FeatureCaps>,
    /// Whether [`InventoryOps::activities`] returns real checkpoints.
    pub activities: bool,
    pub rate_limits: Vec<RateLimit>,
}

impl Capabilities {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, feature: Feature, caps: FeatureCaps) -> Self {
        self.features.insert(feature, caps);
        self
    }

    pub fn with_activities(mut self, on: bool) -> Self {
        self.activities = on;
        self
    }

    pub fn with_rate_limit(mut self, class: VerbClass, requests: u32, per: Duration) -> Self {
        self.rate_limits.push(RateLimit {
            class,
            requests,
            per,
        });
        self
    }

    pub fn get(&self, f: Feature) -> Option<&FeatureCaps> {
        self.features.get(&f)
    }

    pub fn supports(&self, f: Feature) -> bool {
        self.features.get(&f).is_some_and(|c| c.read)
    }

    /// A one-line summary such as `watchlist(rw) ratings(rw) history(r)`.
    pub fn summary(&self) -> String {
        self.features
            .iter()
            .map(|(f, c)| {
                let mode = match (c.read, c.add, c.remove) {
                    (true, true, true) => "rw",
                    (true, true, false) => "r+add",
                    (true, false, false) => "r",
                    (false, _, _) => "w",
                    (true, false, true) => "r+remove",
                };
                format!("{f}({mode})")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Per-feature "last changed" checkpoints (Trakt `/sync/last_activities`, SIMKL
/// `/sync/activities`, ...). Opaque strings: ferry only asks "did it change?" and, where
/// both parse as timestamps, "did it move forward?".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activities {
    pub checkpoints: BTreeMap<Feature, String>,
}

impl Activities {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, f: Feature, checkpoint: impl Into<String>) -> Self {
        self.checkpoints.insert(f, checkpoint.into());
        self
    }

    pub fn get(&self, f: Feature) -> Option<&str> {
        self.checkpoints.get(&f).map(String::as_str)
    }
}

/// The contract every provider implements. Object-safe: the engine holds
/// `Arc<dyn InventoryOps>`.
///
/// Rules a provider must keep (the contract suite in `ferry-testkit` checks them):
/// - `build_index` returns `Partial` whenever it is not sure it saw everything; it never
///   returns an empty complete snapshot because a request failed (it returns the error).
/// - `add`/`remove` return exactly one outcome per entry, in order, and only report
///   `Confirmed` for what the service confirmed.
/// - no secret appears in any event, error or `Debug` output.
/// - the cancellation token is checked between pages and batches.
#[async_trait]
pub trait InventoryOps: Send + Sync + fmt::Debug {
    /// The provider id (`"trakt"`, `"local"`, ...), as in its descriptor.
    fn provider(&self) -> &'static str;

    /// The configured instance name (`"trakt-main"`).
    fn instance(&self) -> &str;

    /// Declared capabilities. Pure: no I/O.
    fn features(&self) -> Capabilities;

    /// The configured secrets, so the engine can scrub them from anything it prints.
    fn secrets(&self) -> Vec<Secret> {
        Vec::new()
    }

    /// A cheap health probe. The default is `Unknown` (spec: unknown health never yields
    /// deletions).
    ///
    /// A provider whose cheapest proof of health is reading its checkpoints may do exactly
    /// that and return them with [`Health::with_activities`]: the engine then uses them
    /// for the run and does not call [`InventoryOps::activities`] (one request instead of
    /// two). They must be what `activities` would have answered at that moment.
    async fn health(&self, _cx: &Context) -> Health {
        Health::unknown()
    }

    /// The provider's items for one feature, with completeness.
    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot>;

    /// Adds (or updates: rating changes, progress moves) entries.
    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport>;

    /// Removes entries.
    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport>;

    /// Per-feature change checkpoints. The default has none (the drop guard then treats a
    /// shrunken snapshot as suspect).
    ///
    /// A checkpoint must change with every change to its feature, deletions included, and
    /// with the provider's own writes; a feature without such a checkpoint has no entry
    /// (it is then read every run).
    async fn activities(&self, _cx: &Context) -> Result<Activities> {
        Ok(Activities::new())
    }

    /// The checkpoint of one feature, as [`InventoryOps::activities`] would report it. The
    /// engine asks for it around its own writes; a provider whose checkpoints cost a
    /// request each answers for the one feature alone.
    async fn activity(&self, cx: &Context, feature: Feature) -> Result<Option<String>> {
        Ok(self.activities(cx).await?.get(feature).map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_per_title_defaults_to_many_and_round_trips() {
        let caps = FeatureCaps::full(10, &[MediaType::Movie]);
        assert_eq!(caps.plays_per_title, PlaysPerTitle::Many);
        // Capabilities serialized before the field existed read as `Many`.
        let mut v = serde_json::to_value(&caps).unwrap();
        v.as_object_mut().unwrap().remove("plays_per_title");
        let old: FeatureCaps = serde_json::from_value(v).unwrap();
        assert_eq!(old, caps);
        let latest = caps.latest_play_only();
        assert_eq!(latest.plays_per_title, PlaysPerTitle::LatestOnly);
        let v = serde_json::to_value(&latest).unwrap();
        assert_eq!(v["plays_per_title"], "latest_only");
        assert_eq!(serde_json::from_value::<FeatureCaps>(v).unwrap(), latest);
    }
}

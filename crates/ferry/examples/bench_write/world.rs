//! The two targets the benchmark writes into: their simulators, how ferry is configured
//! for them, and what a first sync into each should cost.

use std::collections::BTreeMap;

use ferry_core::{Capabilities, Feature, ProviderConfig};
use ferry_testkit::sim::jellyfin::JellyfinSim;
use ferry_testkit::sim::trakt::{TraktLimits, TraktSim, TraktSimConfig};
use serde_json::{Map, Value, json};

use crate::bound::FeatureShape;

/// The page size the Trakt provider asks for when none is configured (Trakt's largest).
const TRAKT_PAGE: u64 = 250;

/// Which service the first sync writes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    Jellyfin,
    Trakt,
}

impl Target {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Target::Jellyfin => "jellyfin",
            Target::Trakt => "trakt",
        }
    }
}

/// A running simulator of the target.
pub(crate) enum Sim {
    Jellyfin(JellyfinSim),
    Trakt(TraktSim),
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Sim {
    /// A server whose library holds titles `0..items` (Jellyfin: a media server only
    /// takes state for titles it holds; none played or favourite yet), or an empty Trakt
    /// account whose watchlist limit fits them (Trakt resolves every sample title).
    pub(crate) async fn start(target: Target, items: u32) -> Sim {
        match target {
            Target::Jellyfin => Sim::Jellyfin(
                JellyfinSim::builder()
                    .movies(items)
                    .shows(0, 0, 0)
                    .start()
                    .await,
            ),
            Target::Trakt => Sim::Trakt(
                TraktSim::start_with(TraktSimConfig {
                    limits: TraktLimits {
                        watchlist_items: 100_000,
                        ..TraktLimits::VIP
                    },
                    vip: true,
                    ..TraktSimConfig::default()
                })
                .await,
            ),
        }
    }

    /// `[providers.<instance>]` as a user would write it for this simulator.
    pub(crate) fn provider_config(&self, instance: &str) -> ProviderConfig {
        let (kind, values) = match self {
            Sim::Jellyfin(s) => (
                "jellyfin",
                json!({"base_url": s.uri(), "api_key": s.token(), "user_id": s.user_id()}),
            ),
            Sim::Trakt(s) => (
                "trakt",
                json!({
                    "base_url": s.uri(), "client_id": s.client_id(),
                    "access_token": s.access_token()
                }),
            ),
        };
        ProviderConfig {
            instance: instance.to_owned(),
            kind: kind.to_owned(),
            values: object(values),
        }
    }

    pub(crate) fn routes(&self) -> BTreeMap<String, u64> {
        match self {
            Sim::Jellyfin(s) => s.routes(),
            Sim::Trakt(s) => s.routes(),
        }
    }

    pub(crate) fn reset_counts(&self) {
        match self {
            Sim::Jellyfin(s) => s.reset_counts(),
            Sim::Trakt(s) => s.reset_counts(),
        }
    }

    /// `429` answers so far (Jellyfin enforces no rate limit).
    pub(crate) fn too_many_requests(&self) -> u64 {
        match self {
            Sim::Jellyfin(_) => 0,
            Sim::Trakt(s) => s.too_many_requests(),
        }
    }

    /// What the service holds now, per feature: titles on the watchlist (Jellyfin:
    /// favourites) and plays (Jellyfin: titles marked played).
    pub(crate) fn held(&self) -> BTreeMap<Feature, usize> {
        let (watchlist, history) = match self {
            Sim::Jellyfin(s) => {
                let items = s.items();
                (
                    items.iter().filter(|i| i.user.favorite).count(),
                    items.iter().filter(|i| i.user.played).count(),
                )
            }
            Sim::Trakt(s) => (s.watchlist().len(), s.history().len()),
        };
        [(Feature::Watchlist, watchlist), (Feature::History, history)]
            .into_iter()
            .collect()
    }

    /// What each feature of a first sync of `items` titles may cost, from the page and
    /// batch sizes the provider works with.
    ///
    /// Jellyfin: each feature is derived from one paged read of the whole library (which
    /// holds the `items` titles), and its API changes one item per request (no bulk
    /// endpoint), so writes are one per title whatever the engine's batch size. Trakt:
    /// the account starts empty (one page per list), one write carries a whole batch, and
    /// a history batch first reads the plays around it (Trakt keeps duplicate plays, so a
    /// play is only sent once ferry has seen it is not there).
    pub(crate) fn shapes(&self, items: u64, caps: &Capabilities) -> Vec<FeatureShape> {
        crate::FEATURES
            .iter()
            .map(|&feature| {
                let batch = caps.get(feature).map_or(1, |c| c.batch_size.max(1) as u64);
                match self {
                    Sim::Jellyfin(_) => FeatureShape {
                        feature,
                        items,
                        held: items,
                        page: jellyfin::DEFAULT_PAGE_SIZE as u64,
                        per_write: 1,
                        reads_per_write: 0,
                    },
                    Sim::Trakt(_) => FeatureShape {
                        feature,
                        items,
                        held: 0,
                        page: TRAKT_PAGE,
                        per_write: batch,
                        reads_per_write: u64::from(feature == Feature::History),
                    },
                }
            })
            .collect()
    }
}

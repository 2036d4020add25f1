//! `ferry simulate jellyfin|emby` and `ferry demo` (feature `sim`): the testkit's
//! Jellyfin simulator, which serves Emby's route table too. [`JELLYFIN`] is declared in
//! this crate's descriptor, [`EMBY`] in the Emby crate's. In the demo a Jellyfin server
//! is a library synced both ways with the hub, removals included.

use ferry_core::{DemoRole, Feature, Result, Scenario, SimHandle, SimStart, Simulator};
use ferry_testkit::samples;
use ferry_testkit::sim::jellyfin::{Flavor, JellyfinSim};
use serde_json::{Map, Value, json};

/// Jellyfin's simulator.
pub const JELLYFIN: Simulator = Simulator {
    ports: 1,
    start: start_jellyfin,
    demo: Some(DemoRole::Library {
        two_way: true,
        removals: true,
        features: &[Feature::History, Feature::Watchlist],
    }),
};

/// Emby's simulator (the same simulator on Emby's route table); not part of the demo.
pub const EMBY: Simulator = Simulator {
    ports: 1,
    start: start_emby,
    demo: None,
};

struct Handle(JellyfinSim);

impl SimHandle for Handle {
    fn base_url(&self) -> String {
        self.0.uri()
    }

    fn config(&self) -> Map<String, Value> {
        let v = json!({"base_url": self.0.uri(), "api_key": self.0.token(),
            "user_id": self.0.user_id()});
        v.as_object().cloned().unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.0.total_requests()
    }
}

fn start_jellyfin(scenario: Scenario) -> SimStart {
    Box::pin(start(Flavor::Jellyfin, scenario))
}

fn start_emby(scenario: Scenario) -> SimStart {
    Box::pin(start(Flavor::Emby, scenario))
}

async fn start(flavor: Flavor, scenario: Scenario) -> Result<Box<dyn SimHandle>> {
    let b = JellyfinSim::builder().flavor(flavor);
    let sim = match scenario {
        Scenario::Library { items } => b.movies(items).start().await,
        Scenario::Demo { movies, shows } => {
            let sim = b.movies(movies).shows(shows, 2, 12).start().await;
            household(&sim, movies);
            sim
        }
    };
    Ok(Box::new(Handle(sim)))
}

/// A household's server: every 4th film watched (offset by one from the other demo
/// libraries), a few favourites.
fn household(sim: &JellyfinSim, movies: u32) {
    for n in 0..movies {
        let id = sim.movie_id(n);
        if n % 4 == 1 {
            sim.seed_played(&id, samples::BASE_TIME + 1_800 * i64::from(n));
        }
        if n % 40 == 3 {
            sim.seed_favorite(&id, true);
        }
    }
}

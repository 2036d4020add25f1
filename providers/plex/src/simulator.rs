//! `ferry simulate plex` and `ferry demo` (feature `sim`): the testkit's Plex simulator
//! (the media server, and Discover with plex.tv on the next port), declared in the
//! provider's descriptor. In the demo it is a library synced one way to the hub.

use ferry_core::{DemoRole, Feature, Scenario, SimHandle, SimStart, Simulator};
use ferry_testkit::samples;
use ferry_testkit::sim::plex::PlexSim;
use serde_json::{Map, Value, json};

pub(crate) const SIMULATOR: Simulator = Simulator {
    ports: 2,
    start,
    demo: Some(DemoRole::Library {
        two_way: false,
        removals: false,
        features: &[Feature::History, Feature::Ratings, Feature::Watchlist],
    }),
};

struct Handle(PlexSim);

impl SimHandle for Handle {
    fn base_url(&self) -> String {
        self.0.uri()
    }

    fn config(&self) -> Map<String, Value> {
        let v = json!({"base_url": self.0.uri(), "discover_url": self.0.discover_uri(),
            "plex_tv_url": self.0.plex_tv_uri(), "token": self.0.token()});
        v.as_object().cloned().unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.0.total_requests()
    }
}

fn start(scenario: Scenario) -> SimStart {
    Box::pin(async move {
        let sim = match scenario {
            Scenario::Library { items } => PlexSim::builder().movies(items).start().await,
            Scenario::Demo { movies, shows } => household(movies, shows).await,
        };
        Ok(Box::new(Handle(sim)) as Box<dyn SimHandle>)
    })
}

/// A household's server: every 3rd film watched, every 7th rated, every 50th on the
/// watchlist.
async fn household(movies: u32, shows: u32) -> PlexSim {
    let sim = PlexSim::builder()
        .movies(movies)
        .shows(shows, 2, 12)
        .start()
        .await;
    for n in 0..movies {
        let key = PlexSim::movie_key(n);
        if n % 3 == 0 {
            sim.seed_play(key, samples::BASE_TIME + 3_600 * i64::from(n));
        }
        if n % 7 == 0 {
            sim.seed_rating(key, Some(f64::from(2 + (n % 5) * 2)));
        }
        if n % 50 == 0 {
            sim.seed_watchlist(key);
        }
    }
    sim
}

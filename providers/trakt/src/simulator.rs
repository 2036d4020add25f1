//! `ferry simulate trakt` and `ferry demo` (feature `sim`): the testkit's Trakt simulator,
//! declared in the provider's descriptor. In the demo it is the hub, the account every
//! demo library syncs with.

use ferry_core::{DemoRole, Scenario, SimHandle, SimStart, Simulator, Timestamp};
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::TraktSim;
use serde_json::{Map, Value, json};

pub(crate) const SIMULATOR: Simulator = Simulator {
    ports: 1,
    start,
    demo: Some(DemoRole::Hub),
};

/// The most plays `ferry simulate` seeds (the simulator keeps every play in memory).
const MAX_PLAYS: u32 = 5_000;

struct Handle(TraktSim);

impl SimHandle for Handle {
    fn base_url(&self) -> String {
        self.0.uri()
    }

    fn config(&self) -> Map<String, Value> {
        let v = json!({"base_url": self.0.uri(), "client_id": self.0.client_id(),
            "access_token": self.0.access_token()});
        v.as_object().cloned().unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.0.total_requests()
    }
}

fn start(scenario: Scenario) -> SimStart {
    Box::pin(async move {
        let sim = TraktSim::start().await;
        match scenario {
            Scenario::Library { items } => library(&sim, items),
            Scenario::Demo { movies, .. } => household(&sim, movies),
        }
        Ok(Box::new(Handle(sim)) as Box<dyn SimHandle>)
    })
}

/// Every title played once, an hour apart; the first hundred on the watchlist.
fn library(sim: &TraktSim, items: u32) {
    let n = items.min(MAX_PLAYS);
    let plays: Vec<_> = (0..n)
        .map(|i| (samples::movie(i), samples::time(3_600 * i64::from(i))))
        .collect();
    sim.seed_history(&plays);
    sim.seed_watchlist(&(0..n.min(100)).map(samples::movie).collect::<Vec<_>>());
}

/// An account that already knows some of the household's films: every 9th watched,
/// a few on the watchlist, every 13th rated.
fn household(sim: &TraktSim, movies: u32) {
    let base = samples::BASE_TIME;
    let known: Vec<_> = (0..movies)
        .filter(|n| n % 9 == 0)
        .map(|n| {
            (
                samples::movie(n),
                Timestamp::from_unix(base + 3_600 * i64::from(n)),
            )
        })
        .collect();
    sim.seed_history(&known);
    sim.seed_watchlist(
        &(0..movies)
            .filter(|n| n % 97 == 5)
            .map(samples::movie)
            .collect::<Vec<_>>(),
    );
    sim.seed_ratings(
        &(0..movies)
            .filter(|n| n % 13 == 2)
            .map(|n| (samples::movie(n), (n % 10 + 1) as u8))
            .collect::<Vec<_>>(),
    );
}

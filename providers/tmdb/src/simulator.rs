//! `ferry simulate tmdb` (feature `sim`): this crate's simulator ([`crate::sim`]),
//! declared in the provider's descriptor.

use ferry_core::{IdKind, Item, Scenario, SimHandle, SimStart, Simulator};
use ferry_testkit::samples;
use ferry_testkit::sim::kit::{SAMPLE_SHOWS, Simulator as _};
use serde_json::{Map, Value, json};

use crate::sim::{ACCOUNT_ID, Key, TOKEN, TmdbRoutes, TmdbSim};

pub(crate) const SIMULATOR: Simulator = Simulator {
    ports: 1,
    start,
    demo: None,
};

struct Handle(TmdbSim);

impl SimHandle for Handle {
    fn base_url(&self) -> String {
        self.0.uri()
    }

    fn config(&self) -> Map<String, Value> {
        let v = json!({"base_url": self.0.uri(), "account_id": ACCOUNT_ID,
            "access_token": TOKEN});
        v.as_object().cloned().unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.0.knobs(|k| k.total())
    }
}

fn movie_key(it: &Item) -> Option<Key> {
    Some(("movie", it.ids.get(IdKind::Tmdb)?.parse().ok()?))
}

/// `items` sample films (and the sample shows) TMDB knows; every film on the
/// watchlist, every third rated.
fn account(items: u32) -> TmdbRoutes {
    let movies = samples::library(items);
    let watchlist: Vec<Key> = movies.iter().filter_map(movie_key).collect();
    let ratings = watchlist
        .iter()
        .step_by(3)
        .map(|k| (*k, f64::from((k.1 % 10) as u8 + 1)))
        .collect();
    let mut catalog = movies;
    catalog.extend((0..SAMPLE_SHOWS).map(samples::show));
    TmdbRoutes {
        catalog,
        watchlist,
        ratings,
    }
}

fn start(scenario: Scenario) -> SimStart {
    Box::pin(async move {
        let items = match scenario {
            Scenario::Library { items } => items,
            Scenario::Demo { movies, .. } => movies,
        };
        let sim = TmdbSim::serve(account(items)).await;
        Ok(Box::new(Handle(sim)) as Box<dyn SimHandle>)
    })
}

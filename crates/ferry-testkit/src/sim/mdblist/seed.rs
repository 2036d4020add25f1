//! The sample catalog a simulator starts with: the shared sample movies and shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_core::{IdKind, Item};
use wiremock::Mock;
use wiremock::matchers::any;

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::Knobs;

use super::routes::Router;
use super::state::{MdbKind, MdbState, MdbTitle};
use super::{DEFAULT_API_KEY, DEFAULT_DAILY_QUOTA, MdblistSim, START_TIME};

/// Builds an [`MdblistSim`] with a chosen catalog.
#[derive(Debug, Clone)]
pub struct MdblistSimBuilder {
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    api_key: String,
    quota: u64,
}

impl Default for MdblistSimBuilder {
    fn default() -> Self {
        MdblistSimBuilder {
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 4,
            seasons: 2,
            episodes: 5,
            api_key: DEFAULT_API_KEY.to_owned(),
            quota: DEFAULT_DAILY_QUOTA,
        }
    }
}

impl MdblistSimBuilder {
    /// Sample movies `0..n` in the catalog.
    pub fn movies(mut self, n: u32) -> Self {
        self.movies = n;
        self
    }

    /// Sample shows `0..n`, each with `seasons` × `episodes` episodes.
    pub fn shows(mut self, n: u32, seasons: u32, episodes: u32) -> Self {
        self.shows = n;
        self.seasons = seasons;
        self.episodes = episodes;
        self
    }

    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Requests per day before `429`.
    pub fn daily_quota(mut self, n: u64) -> Self {
        self.quota = n;
        self
    }

    pub async fn start(self) -> MdblistSim {
        let mut catalog = Vec::new();
        for n in 0..self.movies {
            let m = samples::movie(n);
            catalog.push(title_from(&m, MdbKind::Movie, Vec::new(), None));
        }
        for n in 0..self.shows {
            let s = samples::show(n);
            catalog.push(title_from(
                &s,
                MdbKind::Show,
                vec![self.episodes; self.seasons as usize],
                Some(n),
            ));
        }
        let state = Arc::new(Mutex::new(MdbState {
            api_key: self.api_key,
            bearer: None,
            catalog,
            watchlist: Vec::new(),
            ratings: BTreeMap::new(),
            plays: Vec::new(),
            journal: Vec::new(),
            stamps: BTreeMap::new(),
            next_play: 31_337,
            now: START_TIME,
            quota: self.quota,
            used: 0,
            knobs: Knobs::default(),
            extra: Vec::new(),
            declare_totals: true,
            show_inside_episode: false,
        }));
        let server = crate::sim::server().await;
        Mock::given(any())
            .respond_with(Router(state.clone()))
            .mount(&server)
            .await;
        MdblistSim {
            server: Arc::new(server),
            state,
        }
    }
}

fn title_from(item: &Item, kind: MdbKind, seasons: Vec<u32>, show_n: Option<u32>) -> MdbTitle {
    let num = |k: IdKind| item.ids.get(k).and_then(|v| v.parse::<u64>().ok());
    MdbTitle {
        kind,
        title: item.title.clone().unwrap_or_default(),
        year: item.year,
        tmdb: num(IdKind::Tmdb).unwrap_or_default(),
        imdb: item.ids.get(IdKind::Imdb).unwrap_or_default().to_owned(),
        tvdb: num(IdKind::Tvdb),
        trakt: num(IdKind::Trakt),
        seasons,
        show_n,
    }
}

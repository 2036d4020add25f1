//! The sample catalog a simulator starts with: the shared sample movies and shows, plus
//! anime that carry only anime ids.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_core::{IdKind, Item};
use wiremock::Mock;
use wiremock::matchers::any;

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::Knobs;

use super::routes::Router;
use super::state::{SimklState, SimklTitle, SimklType};
use super::{
    ANIME_ID_BASE, DEFAULT_CLIENT_ID, DEFAULT_TOKEN, MOVIE_ID_BASE, SHOW_ID_BASE, START_TIME,
    SimklSim,
};

/// Builds a [`SimklSim`] with a chosen catalog.
#[derive(Debug, Clone)]
pub struct SimklSimBuilder {
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    anime: u32,
    client_id: String,
    token: String,
}

impl Default for SimklSimBuilder {
    fn default() -> Self {
        SimklSimBuilder {
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 4,
            seasons: 2,
            episodes: 5,
            anime: 2,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            token: DEFAULT_TOKEN.to_owned(),
        }
    }
}

impl SimklSimBuilder {
    /// Sample movies `0..n` in the catalog (default [`SAMPLE_LIBRARY_SIZE`]).
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

    /// Sample anime `0..n` (one season of 12 episodes each).
    pub fn anime(mut self, n: u32) -> Self {
        self.anime = n;
        self
    }

    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    pub async fn start(self) -> SimklSim {
        let mut catalog = Vec::new();
        for n in 0..self.movies {
            catalog.push(movie_title(n));
        }
        for n in 0..self.shows {
            catalog.push(show_title(n, self.seasons, self.episodes));
        }
        for n in 0..self.anime {
            catalog.push(anime_title(n));
        }
        let by_id = catalog
            .iter()
            .enumerate()
            .map(|(i, t)| (t.simkl_id, i))
            .collect();
        let state = Arc::new(Mutex::new(SimklState {
            client_id: self.client_id,
            token: self.token,
            catalog,
            by_id,
            library: BTreeMap::new(),
            stamps: BTreeMap::new(),
            now: START_TIME,
            knobs: Knobs::default(),
            ignore_removals: 0,
            empty_write_bodies: false,
            limit: None,
            pins: Vec::new(),
            pin_interval: 5,
            missing_app_params: 0,
            full_list_reads: 0,
            ignore_include_all_episodes: false,
            date_from_on_event_dates: false,
        }));
        let server = crate::sim::server().await;
        Mock::given(any())
            .respond_with(Router(state.clone()))
            .mount(&server)
            .await;
        SimklSim {
            server: Arc::new(server),
            state,
        }
    }
}

fn ids_of(item: &Item, kinds: &[(IdKind, &str)]) -> BTreeMap<String, String> {
    kinds
        .iter()
        .filter_map(|(k, name)| item.ids.get(*k).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect()
}

fn movie_title(n: u32) -> SimklTitle {
    let m = samples::movie(n);
    SimklTitle {
        simkl_id: MOVIE_ID_BASE + u64::from(n),
        kind: SimklType::Movies,
        title: m.title.clone().unwrap_or_default(),
        year: m.year,
        ids: ids_of(
            &m,
            &[
                (IdKind::Imdb, "imdb"),
                (IdKind::Tmdb, "tmdb"),
                (IdKind::Slug, "slug"),
            ],
        ),
        seasons: Vec::new(),
    }
}

fn show_title(n: u32, seasons: u32, episodes: u32) -> SimklTitle {
    let s = samples::show(n);
    let mut ids = ids_of(
        &s,
        &[
            (IdKind::Imdb, "imdb"),
            (IdKind::Tmdb, "tmdb"),
            (IdKind::Tvdb, "tvdb"),
        ],
    );
    ids.insert("slug".into(), format!("sample-show-{n}"));
    SimklTitle {
        simkl_id: SHOW_ID_BASE + u64::from(n),
        kind: SimklType::Shows,
        title: s.title.clone().unwrap_or_default(),
        year: s.year,
        ids,
        seasons: vec![episodes; seasons as usize],
    }
}

/// Sample anime `n`: only anime ids (`mal`, `anilist`), as SIMKL prints them.
pub fn anime_item(n: u32) -> Item {
    let ids = ferry_core::Ids::new()
        .with(IdKind::Mal, &(52_000 + n).to_string())
        .with(IdKind::Anilist, &(154_000 + n).to_string())
        .with(IdKind::Simkl, &(ANIME_ID_BASE + u64::from(n)).to_string());
    Item::show(format!("Sample Anime {n}"), 2020 + (n % 5) as u16, ids)
}

fn anime_title(n: u32) -> SimklTitle {
    let a = anime_item(n);
    let mut ids = ids_of(&a, &[(IdKind::Mal, "mal"), (IdKind::Anilist, "anilist")]);
    ids.insert("slug".into(), format!("sample-anime-{n}"));
    SimklTitle {
        simkl_id: ANIME_ID_BASE + u64::from(n),
        kind: SimklType::Anime,
        title: a.title.clone().unwrap_or_default(),
        year: a.year,
        ids,
        seasons: vec![12],
    }
}

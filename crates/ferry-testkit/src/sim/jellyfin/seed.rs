//! The sample library a simulator starts with.

use std::sync::{Arc, Mutex};

use ferry_core::{IdKind, Item};
use wiremock::Mock;
use wiremock::matchers::any;

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::Knobs;

use super::routes::Router;
use super::state::JfState;
use super::{
    DEFAULT_TOKEN, Flavor, JellyfinSim, JfItem, JfKind, START_TIME, TICKS_PER_MS, UserData,
};

/// Builds a [`JellyfinSim`] with a chosen library and route table.
#[derive(Debug, Clone)]
pub struct JellyfinSimBuilder {
    flavor: Flavor,
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    token: String,
}

impl Default for JellyfinSimBuilder {
    fn default() -> Self {
        JellyfinSimBuilder {
            flavor: Flavor::Jellyfin,
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 2,
            seasons: 1,
            episodes: 4,
            token: DEFAULT_TOKEN.to_owned(),
        }
    }
}

impl JellyfinSimBuilder {
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Sample movies `0..n` (default [`SAMPLE_LIBRARY_SIZE`]).
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

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    pub async fn start(self) -> JellyfinSim {
        let f = self.flavor;
        let mut items = Vec::with_capacity(self.movies as usize);
        for n in 0..self.movies {
            let m = samples::movie(n);
            items.push(JfItem {
                id: item_id(f, 1, u64::from(n)),
                kind: JfKind::Movie,
                name: m.title.clone().unwrap_or_default(),
                year: m.year,
                provider_ids: provider_ids(&m),
                run_time_ticks: 6_000_000 * TICKS_PER_MS,
                series_id: None,
                series_name: None,
                season: None,
                episode: None,
                user: UserData::default(),
            });
        }
        for n in 0..self.shows {
            let s = samples::show(n);
            let sid = item_id(f, 2, u64::from(n));
            let name = s.title.clone().unwrap_or_default();
            items.push(JfItem {
                id: sid.clone(),
                kind: JfKind::Series,
                name: name.clone(),
                year: s.year,
                provider_ids: provider_ids(&s),
                run_time_ticks: 0,
                series_id: None,
                series_name: None,
                season: None,
                episode: None,
                user: UserData::default(),
            });
            for se in 1..=self.seasons {
                for e in 1..=self.episodes {
                    let ep = samples::episode(n, se, e);
                    let serial = u64::from(n) * 10_000 + u64::from(se) * 100 + u64::from(e);
                    items.push(JfItem {
                        id: item_id(f, 3, serial),
                        kind: JfKind::Episode,
                        name: format!("Episode {e}"),
                        year: None,
                        provider_ids: provider_ids(&ep),
                        run_time_ticks: 2_400_000 * TICKS_PER_MS,
                        series_id: Some(sid.clone()),
                        series_name: Some(name.clone()),
                        season: Some(se),
                        episode: Some(e),
                        user: UserData::default(),
                    });
                }
            }
        }
        let by_id = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.clone(), i))
            .collect();
        let state = Arc::new(Mutex::new(JfState {
            flavor: f,
            token: self.token,
            api_key: false,
            items,
            by_id,
            playlists: Vec::new(),
            next_id: 1,
            now: START_TIME,
            ignore_date_played: false,
            knobs: Knobs::default(),
        }));
        let server = crate::sim::server().await;
        Mock::given(any())
            .respond_with(Router(state.clone()))
            .mount(&server)
            .await;
        JellyfinSim {
            server: Arc::new(server),
            state,
        }
    }
}

/// Jellyfin ids are 32 hex digits; Emby ids are decimal numbers.
pub(super) fn item_id(f: Flavor, tag: u64, n: u64) -> String {
    match f {
        Flavor::Jellyfin => format!("{tag:02x}f1e0{n:026x}"),
        Flavor::Emby => (tag * 10_000_000 + n).to_string(),
    }
}

pub(super) fn provider_ids(item: &Item) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (kind, name) in [
        (IdKind::Tmdb, "Tmdb"),
        (IdKind::Imdb, "Imdb"),
        (IdKind::Tvdb, "Tvdb"),
    ] {
        if let Some(v) = item.ids.get(kind) {
            out.push((name.to_owned(), v.to_owned()));
        }
    }
    out
}

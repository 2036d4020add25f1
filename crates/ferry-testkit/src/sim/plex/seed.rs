//! The sample library a Plex simulator starts with, and the builder that chooses it.

use ferry_core::{IdKind, Item};

use crate::contract::SAMPLE_LIBRARY_SIZE;
use crate::samples;
use crate::sim::knobs::Knobs;

use super::state::{PlexItem, PlexKind, PlexState};
use super::tv::TvState;
use super::{DEFAULT_TOKEN, EPISODE_KEY_BASE, MOVIE_KEY_BASE, PlexSim, SHOW_KEY_BASE, START_TIME};

/// Builds a [`PlexSim`] with a chosen library.
#[derive(Debug, Clone)]
pub struct PlexSimBuilder {
    movies: u32,
    shows: u32,
    seasons: u32,
    episodes: u32,
    token: String,
    discover_token: Option<String>,
}

impl Default for PlexSimBuilder {
    fn default() -> Self {
        PlexSimBuilder {
            movies: SAMPLE_LIBRARY_SIZE,
            shows: 2,
            seasons: 1,
            episodes: 4,
            token: DEFAULT_TOKEN.to_owned(),
            discover_token: None,
        }
    }
}

impl PlexSimBuilder {
    /// Sample movies `0..n` in section 1 (default [`SAMPLE_LIBRARY_SIZE`]).
    pub fn movies(mut self, n: u32) -> Self {
        self.movies = n;
        self
    }

    /// Sample shows `0..n` in section 2, each with `seasons` × `episodes` episodes.
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

    /// A separate account token for Discover (default: the server token).
    pub fn discover_token(mut self, token: impl Into<String>) -> Self {
        self.discover_token = Some(token.into());
        self
    }

    pub async fn start(self) -> PlexSim {
        let mut items = Vec::with_capacity(self.movies as usize);
        for n in 0..self.movies {
            items.push(movie_item(n));
        }
        for n in 0..self.shows {
            let show = show_item(n);
            let show_key = show.rating_key;
            items.push(show);
            for s in 1..=self.seasons {
                for e in 1..=self.episodes {
                    items.push(episode_item(n, s, e, show_key));
                }
            }
        }
        let by_key = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.rating_key, i))
            .collect();
        let account_token = self.discover_token.unwrap_or_else(|| self.token.clone());
        let tv = TvState::new(account_token.clone(), START_TIME);
        let state = PlexState {
            discover_token: account_token,
            token: self.token,
            items,
            by_key,
            history: Vec::new(),
            playlists: Vec::new(),
            watchlist: Vec::new(),
            next_id: 1,
            now: START_TIME,
            played_threshold: 90,
            played_at_behaviour: "3".to_owned(),
            timeline_ignored: false,
            pms: Knobs::default(),
            discover: Knobs::default(),
        };
        PlexSim::serve(state, tv).await
    }
}

pub(super) fn ids_guids(item: &Item) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = item.ids.get(IdKind::Imdb) {
        out.push(format!("imdb://{v}"));
    }
    if let Some(v) = item.ids.get(IdKind::Tmdb) {
        out.push(format!("tmdb://{v}"));
    }
    if let Some(v) = item.ids.get(IdKind::Tvdb) {
        out.push(format!("tvdb://{v}"));
    }
    out
}

fn movie_item(n: u32) -> PlexItem {
    let m = samples::movie(n);
    let mut external = ids_guids(&m);
    // Plex's movie agent also knows a TVDB id for most films.
    external.push(format!("tvdb://{}", 2_000_000 + n));
    PlexItem {
        rating_key: MOVIE_KEY_BASE + u64::from(n),
        kind: PlexKind::Movie,
        title: m.title.clone().unwrap_or_default(),
        year: m.year,
        guid: format!("plex://movie/5d7768{:018x}", n),
        external,
        section: 1,
        duration_ms: 6_000_000,
        show_key: None,
        season: None,
        index: None,
        view_count: 0,
        last_viewed_at: None,
        view_offset: None,
        user_rating: None,
        last_rated_at: None,
        credits_at: None,
    }
}

fn show_item(n: u32) -> PlexItem {
    let s = samples::show(n);
    PlexItem {
        rating_key: SHOW_KEY_BASE + u64::from(n),
        kind: PlexKind::Show,
        title: s.title.clone().unwrap_or_default(),
        year: s.year,
        guid: format!("plex://show/5d9c08{:018x}", n),
        external: ids_guids(&s),
        section: 2,
        duration_ms: 2_400_000,
        ..movie_item(0)
    }
}

fn episode_item(n: u32, s: u32, e: u32, show_key: u64) -> PlexItem {
    let ep = samples::episode(n, s, e);
    let serial = u64::from(n) * 10_000 + u64::from(s) * 100 + u64::from(e);
    PlexItem {
        rating_key: EPISODE_KEY_BASE + serial,
        kind: PlexKind::Episode,
        title: format!("Episode {e}"),
        year: None,
        guid: format!("plex://episode/5d9c09{serial:018x}"),
        external: ids_guids(&ep),
        section: 2,
        duration_ms: 2_400_000,
        show_key: Some(show_key),
        season: Some(s),
        index: Some(e),
        ..movie_item(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_items_carry_plex_and_external_guids() {
        let m = movie_item(3);
        assert_eq!(m.rating_key, PlexSim::movie_key(3));
        assert_eq!(m.discover_key().len(), 24);
        assert!(m.external.contains(&"tmdb://900003".to_owned()));
        let e = episode_item(1, 1, 2, 7);
        assert_eq!(e.rating_key, PlexSim::episode_key(1, 1, 2));
        assert_eq!(e.external, vec!["tvdb://10010102".to_owned()]);
    }
}

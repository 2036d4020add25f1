//! What one side holds, as the model sees it: titles by sample number, ratings with
//! their time, plays as (title, time).

use std::collections::{BTreeMap, BTreeSet};

use ferry_core::{Entry, Feature, IdKind, Payload, Rating, Timestamp};
use ferry_testkit::fake::FakeProvider;
use ferry_testkit::samples;

/// A side's watchlist, ratings and history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideView {
    pub wl: BTreeSet<u8>,
    /// Title → (rating, rated_at).
    pub rt: BTreeMap<u8, (u8, i64)>,
    /// (title, watched_at), sorted.
    pub plays: Vec<(u8, i64)>,
}

/// The sample number of an entry's title. Every entry in a case is built on
/// `samples::movie(n)`, whose tmdb id is `900_000 + n`.
fn title_of(e: &Entry) -> u8 {
    e.item
        .ids
        .get(IdKind::Tmdb)
        .and_then(|id| id.parse::<u32>().ok())
        .and_then(|id| id.checked_sub(900_000))
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or_else(|| panic!("an entry the model did not make: {e:?}"))
}

impl SideView {
    pub fn read(fake: &FakeProvider) -> SideView {
        let mut v = SideView::default();
        for e in fake.entries(Feature::Watchlist) {
            v.wl.insert(title_of(&e));
        }
        for e in fake.entries(Feature::Ratings) {
            if let Payload::Rating { rating, rated_at } = e.payload {
                let at = rated_at.map_or(i64::MIN, Timestamp::unix);
                v.rt.insert(title_of(&e), (rating.get(), at));
            }
        }
        for e in fake.entries(Feature::History) {
            if let Payload::Watch { watched_at } = e.payload {
                v.plays.push((title_of(&e), watched_at.unix()));
            }
        }
        v.plays.sort_unstable();
        v
    }

    /// Whether the side holds a play of `title` within `tol` seconds of `at`.
    pub fn has_play_near(&self, title: u8, at: i64, tol: i64) -> bool {
        self.plays
            .iter()
            .any(|&(t, w)| t == title && (w - at).abs() <= tol)
    }

    pub fn plays_of(&self, title: u8) -> Vec<i64> {
        self.plays
            .iter()
            .filter(|(t, _)| *t == title)
            .map(|(_, w)| *w)
            .collect()
    }
}

/// A concrete change to one service, decided by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    List(u8, i64),
    Unlist(u8),
    Rate(u8, u8, i64),
    Unrate(u8),
    Play(u8, i64),
    Unplay(u8, i64),
}

impl Edit {
    /// Applies the change as the user would on the service (the feature's checkpoint
    /// moves).
    pub fn apply(self, fake: &FakeProvider) {
        let movie = |t: u8| samples::movie(u32::from(t));
        let not = |t: u8| move |e: &Entry| title_of(e) != t;
        match self {
            Edit::List(t, at) => {
                let e = Entry::new(
                    movie(t),
                    Payload::Watchlist {
                        listed_at: Some(Timestamp::from_unix(at)),
                    },
                );
                fake.user_edit(Feature::Watchlist, |v| v.push(e));
            }
            Edit::Unlist(t) => {
                fake.user_edit(Feature::Watchlist, |v| v.retain(not(t)));
            }
            Edit::Rate(t, r, at) => {
                let rating = Rating::new(r).expect("1..=10");
                let e = Entry::rating(movie(t), rating, Some(Timestamp::from_unix(at)));
                fake.user_edit(Feature::Ratings, |v| {
                    v.retain(not(t));
                    v.push(e);
                });
            }
            Edit::Unrate(t) => {
                fake.user_edit(Feature::Ratings, |v| v.retain(not(t)));
            }
            Edit::Play(t, at) => {
                let e = Entry::watch(movie(t), Timestamp::from_unix(at));
                fake.user_edit(Feature::History, |v| v.push(e));
            }
            Edit::Unplay(t, at) => {
                fake.user_edit(Feature::History, |v| {
                    v.retain(|e| {
                        let this = matches!(e.payload, Payload::Watch { watched_at }
                            if watched_at.unix() == at);
                        !(title_of(e) == t && this)
                    });
                });
            }
        }
    }
}

//! The item model: a title (movie, show, season, episode, or a playlist container) and the
//! per-feature payload a provider holds for it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::feature::Feature;
use crate::identity::{self, Ids};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Movie,
    Show,
    Season,
    Episode,
    /// The container of a playlist; its entries are items of the other types.
    Playlist,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Movie => "movie",
            MediaType::Show => "show",
            MediaType::Season => "season",
            MediaType::Episode => "episode",
            MediaType::Playlist => "playlist",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One title. Seasons and episodes carry their show's ids in `show_ids`; a show id is never
/// enough on its own to say two episodes are the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    #[serde(rename = "type")]
    pub kind: MediaType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<u16>,
    #[serde(default, skip_serializing_if = "Ids::is_empty")]
    pub ids: Ids,
    #[serde(default, skip_serializing_if = "Ids::is_empty")]
    pub show_ids: Ids,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub season: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u32>,
}

impl Item {
    pub fn new(kind: MediaType) -> Self {
        Item {
            kind,
            title: None,
            year: None,
            ids: Ids::new(),
            show_ids: Ids::new(),
            show_title: None,
            season: None,
            episode: None,
        }
    }

    pub fn movie(title: impl Into<String>, year: u16, ids: Ids) -> Self {
        Item {
            title: Some(title.into()),
            year: Some(year),
            ids,
            ..Item::new(MediaType::Movie)
        }
    }

    pub fn show(title: impl Into<String>, year: u16, ids: Ids) -> Self {
        Item {
            title: Some(title.into()),
            year: Some(year),
            ids,
            ..Item::new(MediaType::Show)
        }
    }

    pub fn episode(
        show_title: impl Into<String>,
        show_ids: Ids,
        season: u32,
        episode: u32,
    ) -> Self {
        Item {
            show_title: Some(show_title.into()),
            show_ids,
            season: Some(season),
            episode: Some(episode),
            ..Item::new(MediaType::Episode)
        }
    }

    /// The canonical key (`identity/key.rs`).
    pub fn key(&self) -> String {
        identity::canonical_key(self)
    }

    /// A short human label for logs and previews: `The Matrix (1999)`, `Show S01E02`.
    pub fn label(&self) -> String {
        match self.kind {
            MediaType::Episode | MediaType::Season => {
                let show = self
                    .show_title
                    .as_deref()
                    .or(self.title.as_deref())
                    .unwrap_or("?");
                match (self.season, self.episode) {
                    (Some(s), Some(e)) => format!("{show} S{s:02}E{e:02}"),
                    (Some(s), None) => format!("{show} season {s}"),
                    _ => show.to_owned(),
                }
            }
            _ => match (&self.title, self.year) {
                (Some(t), Some(y)) => format!("{t} ({y})"),
                (Some(t), None) => t.clone(),
                _ => self.key(),
            },
        }
    }
}

/// A user rating on the integer 1-10 scale every provider is mapped onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "u8")]
pub struct Rating(u8);

impl Rating {
    /// `1..=10`, otherwise `None`.
    pub fn new(v: u8) -> Option<Self> {
        (1..=10).contains(&v).then_some(Rating(v))
    }

    /// Normalizes a provider's raw rating (as CrossWatch does): values ≤ 0 are no
    /// rating; values in (10, 100] are a percentage-like scale and are divided by 10; the
    /// result is rounded half-up and must land in 1..=10.
    pub fn normalize(raw: f64) -> Option<Self> {
        if !raw.is_finite() || raw <= 0.0 {
            return None;
        }
        let v = if raw > 10.0 && raw <= 100.0 {
            raw / 10.0
        } else {
            raw
        };
        let r = (v + 0.5).floor();
        (1.0..=10.0).contains(&r).then_some(Rating(r as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<f64> for Rating {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        Rating::normalize(v).ok_or_else(|| format!("rating {v} is outside 1-10"))
    }
}

impl From<Rating> for u8 {
    fn from(r: Rating) -> u8 {
        r.0
    }
}

/// An ordered playlist: name plus entries in the user's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playlist {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub items: Vec<Item>,
}

/// What a provider holds for one item in one feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Watchlist {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listed_at: Option<Timestamp>,
    },
    Rating {
        rating: Rating,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rated_at: Option<Timestamp>,
    },
    /// One play. History is a set of these, never a count.
    Watch {
        watched_at: Timestamp,
    },
    Progress {
        position_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress_at: Option<Timestamp>,
    },
    Playlist(Playlist),
}

impl Payload {
    pub fn feature(&self) -> Feature {
        match self {
            Payload::Watchlist { .. } => Feature::Watchlist,
            Payload::Rating { .. } => Feature::Ratings,
            Payload::Watch { .. } => Feature::History,
            Payload::Progress { .. } => Feature::Progress,
            Payload::Playlist(_) => Feature::Playlists,
        }
    }

    /// The time this payload last changed, when the provider knows it.
    pub fn changed_at(&self) -> Option<Timestamp> {
        match self {
            Payload::Watchlist { listed_at } => *listed_at,
            Payload::Rating { rated_at, .. } => *rated_at,
            Payload::Watch { watched_at } => Some(*watched_at),
            Payload::Progress { progress_at, .. } => *progress_at,
            Payload::Playlist(_) => None,
        }
    }
}

/// An item together with its payload: the unit of snapshots and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub item: Item,
    pub payload: Payload,
}

impl Entry {
    pub fn new(item: Item, payload: Payload) -> Self {
        Entry { item, payload }
    }

    pub fn watchlist(item: Item) -> Self {
        Entry::new(item, Payload::Watchlist { listed_at: None })
    }

    pub fn rating(item: Item, rating: Rating, rated_at: Option<Timestamp>) -> Self {
        Entry::new(item, Payload::Rating { rating, rated_at })
    }

    pub fn watch(item: Item, watched_at: Timestamp) -> Self {
        Entry::new(item, Payload::Watch { watched_at })
    }

    pub fn progress(
        item: Item,
        position_ms: u64,
        duration_ms: Option<u64>,
        progress_at: Option<Timestamp>,
    ) -> Self {
        Entry::new(
            item,
            Payload::Progress {
                position_ms,
                duration_ms,
                progress_at,
            },
        )
    }

    pub fn playlist(playlist: Playlist) -> Self {
        let item = Item {
            title: Some(playlist.name.clone()),
            ..Item::new(MediaType::Playlist)
        };
        Entry::new(item, Payload::Playlist(playlist))
    }

    pub fn feature(&self) -> Feature {
        self.payload.feature()
    }

    /// The key this entry is filed under in a snapshot: the canonical key, except that a
    /// watch event is keyed by `<canonical key>@<epoch>` (history is a set of plays) and a
    /// playlist by its lower-cased name.
    pub fn key(&self) -> String {
        match &self.payload {
            Payload::Watch { watched_at } => identity::event_key(&self.item.key(), *watched_at),
            Payload::Playlist(p) => format!("playlist:{}", p.name.trim().to_lowercase()),
            _ => self.item.key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdKind;

    #[test]
    fn rating_normalization() {
        assert_eq!(Rating::normalize(8.0), Rating::new(8));
        assert_eq!(Rating::normalize(7.5), Rating::new(8), "half rounds up");
        assert_eq!(Rating::normalize(7.49), Rating::new(7));
        assert_eq!(
            Rating::normalize(85.0),
            Rating::new(9),
            "(10, 100] is divided by 10"
        );
        assert_eq!(Rating::normalize(100.0), Rating::new(10));
        assert_eq!(Rating::normalize(10.0), Rating::new(10));
        assert_eq!(Rating::normalize(0.0), None);
        assert_eq!(Rating::normalize(-3.0), None);
        assert_eq!(Rating::normalize(0.4), None, "rounds to 0");
        assert_eq!(Rating::normalize(101.0), None);
        assert_eq!(Rating::normalize(f64::NAN), None);
    }

    #[test]
    fn entry_keys_per_feature() {
        let m = Item::movie("The Matrix", 1999, Ids::new().with(IdKind::Tmdb, "603"));
        assert_eq!(Entry::watchlist(m.clone()).key(), "tmdb:603");
        assert_eq!(
            Entry::watch(m, Timestamp::from_unix(1_700_000_000)).key(),
            "tmdb:603@1700000000"
        );
        let p = Entry::playlist(Playlist {
            name: " Friday Night ".into(),
            description: None,
            items: vec![],
        });
        assert_eq!(p.key(), "playlist:friday night");
    }

    #[test]
    fn entries_serialize_with_tagged_payloads() {
        let e = Entry::rating(
            Item::movie("X", 2000, Ids::new().with(IdKind::Imdb, "tt1")),
            Rating::new(7).unwrap(),
            None,
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"item":{"type":"movie","title":"X","year":2000,"ids":{"imdb":"tt1"}},"payload":{"kind":"rating","rating":7}}"#
        );
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), e);
    }
}

//! TMDB rows to ferry's items, and ratings between the two scales.
//!
//! Ratings: TMDB takes 0.5 to 10 in steps of 0.5, ferry 1 to 10. Reading, a TMDB value
//! is rounded half up (7.5 reads as 8, 0.5 as 1); writing, ferry's `n` is sent as `n.0`.
//! A TMDB value that already reads as the rating being written is left alone, so a
//! user's 7.5 is never rewritten to 8.0 by a sync that changed nothing.

use ferry_core::{Entry, Feature, IdKind, Ids, Item, MediaType, Rating, Row};
use serde_json::Value;

use crate::model::TitleRow;

/// Movie or TV show: TMDB's two id spaces and route segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Movie,
    Tv,
}

impl Kind {
    pub(crate) fn of(t: MediaType) -> Option<Kind> {
        match t {
            MediaType::Movie => Some(Kind::Movie),
            MediaType::Show => Some(Kind::Tv),
            _ => None,
        }
    }

    /// `media_type` in bodies and the `/3/{movie|tv}/{id}` route segment.
    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Kind::Movie => "movie",
            Kind::Tv => "tv",
        }
    }
}

/// TMDB's value as ferry's rating (`None` outside 0.5..=10).
pub(crate) fn to_ferry(v: f64) -> Option<Rating> {
    (0.5..=10.0).contains(&v).then(|| Rating::normalize(v))?
}

/// Ferry's rating as TMDB's value.
pub(crate) fn to_tmdb(r: Rating) -> f64 {
    f64::from(r.get())
}

/// Decodes one raw row of `feature`'s list: a rated row must carry a valid rating.
pub(crate) fn row(raw: Value, feature: Feature) -> Row<TitleRow> {
    match ferry_core::read::decode::<TitleRow>(&raw) {
        Err(e) => Row::Bad(e),
        Ok(r) if feature == Feature::Ratings && r.rating.and_then(to_ferry).is_none() => {
            Row::Bad(format!("rating: {:?} is not a TMDB rating", r.rating))
        }
        Ok(r) => Row::Keep(r),
    }
}

fn year(date: Option<&str>) -> Option<u16> {
    date?.get(..4)?.parse().ok()
}

fn item(kind: Kind, r: &TitleRow) -> Item {
    let (media, title, date) = match kind {
        Kind::Movie => (MediaType::Movie, &r.title, &r.release_date),
        Kind::Tv => (MediaType::Show, &r.name, &r.first_air_date),
    };
    Item {
        title: title.clone(),
        year: year(date.as_deref()),
        ids: Ids::new().with(IdKind::Tmdb, &r.id.to_string()),
        ..Item::new(media)
    }
}

/// A kept row of `feature`'s `kind` list as an entry.
pub(crate) fn entry(feature: Feature, kind: Kind, r: &TitleRow) -> Option<Entry> {
    match feature {
        Feature::Watchlist => Some(Entry::watchlist(item(kind, r))),
        Feature::Ratings => Some(Entry::rating(
            item(kind, r),
            r.rating.and_then(to_ferry)?,
            None,
        )),
        _ => None,
    }
}

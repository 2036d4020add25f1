//! Deterministic sample titles. Simulators seed their libraries with these so that the
//! contract suite can add them on any provider, including media servers that only accept
//! items they already hold.

use ferry_core::{Entry, Feature, IdKind, Ids, Item, MediaType, Playlist, Rating, Timestamp};

/// A fixed epoch the samples' timestamps are based on (2024-03-01T12:00:00Z).
pub const BASE_TIME: i64 = 1_709_294_400;

const TITLES: [&str; 12] = [
    "Arrival",
    "Blade Runner",
    "Heat",
    "Alien",
    "Amelie",
    "Brazil",
    "Casablanca",
    "Drive",
    "Fargo",
    "Gattaca",
    "Inception",
    "Jaws",
];

/// The `n`th sample movie: stable tmdb/imdb/trakt ids and a title.
pub fn movie(n: u32) -> Item {
    let title = format!("{} {}", TITLES[(n as usize) % TITLES.len()], n);
    let ids = Ids::new()
        .with(IdKind::Tmdb, &(900_000 + n).to_string())
        .with(IdKind::Imdb, &format!("tt{:07}", 9_000_000 + n))
        .with(IdKind::Trakt, &(500_000 + n).to_string())
        .with(IdKind::Slug, &format!("sample-movie-{n}"));
    Item::movie(title, 1970 + (n % 50) as u16, ids)
}

/// The `n`th sample show.
pub fn show(n: u32) -> Item {
    let ids = Ids::new()
        .with(IdKind::Tmdb, &(800_000 + n).to_string())
        .with(IdKind::Imdb, &format!("tt{:07}", 8_000_000 + n))
        .with(IdKind::Tvdb, &(700_000 + n).to_string())
        .with(IdKind::Trakt, &(400_000 + n).to_string());
    Item::show(format!("Sample Show {n}"), 2000 + (n % 25) as u16, ids)
}

/// Episode `e` of season `s` of sample show `n`, with its own tvdb id.
pub fn episode(n: u32, s: u32, e: u32) -> Item {
    let sh = show(n);
    let mut ep = Item::episode(sh.title.clone().unwrap_or_default(), sh.ids.clone(), s, e);
    ep.ids = Ids::new().with(
        IdKind::Tvdb,
        &(10_000_000 + n * 10_000 + s * 100 + e).to_string(),
    );
    ep
}

pub fn time(offset_secs: i64) -> Timestamp {
    Timestamp::from_unix(BASE_TIME + offset_secs)
}

/// A sample entry of the given feature built on sample movie `n`.
pub fn entry(feature: Feature, n: u32) -> Entry {
    let m = movie(n);
    match feature {
        Feature::Watchlist => Entry::new(
            m,
            ferry_core::Payload::Watchlist {
                listed_at: Some(time(n as i64)),
            },
        ),
        Feature::Ratings => Entry::rating(
            m,
            Rating::new((n % 10 + 1) as u8).unwrap_or(Rating::new(5).expect("5 is a rating")),
            Some(time(n as i64)),
        ),
        Feature::History => Entry::watch(m, time(3600 * n as i64)),
        Feature::Progress => Entry::progress(
            m,
            600_000 + 1000 * n as u64,
            Some(6_000_000),
            Some(time(n as i64)),
        ),
        Feature::Playlists => Entry::playlist(Playlist {
            name: format!("Sample List {n}"),
            description: None,
            items: vec![movie(n), movie(n + 1), movie(n + 2)],
        }),
    }
}

/// A sample entry of `feature` whose item has the given media type, where that makes
/// sense (episodes for history, shows for the watchlist).
pub fn entry_of_type(feature: Feature, kind: MediaType, n: u32) -> Entry {
    let mut e = entry(feature, n);
    match kind {
        MediaType::Show => e.item = show(n),
        MediaType::Episode => e.item = episode(n, 1, 1 + n % 9),
        _ => {}
    }
    e
}

/// The titles simulators should hold in their libraries: movies `0..n`.
pub fn library(n: u32) -> Vec<Item> {
    (0..n).map(movie).collect()
}

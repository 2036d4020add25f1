//! MDBList rows to ferry items and back. Two id shapes: the watchlist speaks *flat* ids
//! (`id` = TMDB, `imdb_id`, `tvdb_id`, …; writes `{imdb, tmdb}`), the `/sync` endpoints
//! speak Trakt-like nested `ids` objects.

use ferry_core::lists::Lists;
use ferry_core::{
    Activities, Entry, Feature, IdKind, IdTable, Ids, Item, MediaType, Payload, Rating, Row,
    Timestamp,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::model::{IdFields, LastActivities, PlayRow, RatingRow, TitleObj, WatchlistRow};

/// The nested `ids` object of the `/sync` endpoints.
const NESTED: IdTable = IdTable(&[
    ("imdb", IdKind::Imdb),
    ("tmdb", IdKind::Tmdb),
    ("tvdb", IdKind::Tvdb),
    ("trakt", IdKind::Trakt),
    ("mdblist", IdKind::Mdblist),
]);

/// Flat watchlist ids. `id` is the TMDB id; `tmdb_id` wins over it when both are sent.
const FLAT: IdTable = IdTable(&[
    ("id", IdKind::Tmdb),
    ("tmdb_id", IdKind::Tmdb),
    ("imdb_id", IdKind::Imdb),
    ("imdb", IdKind::Imdb),
    ("tvdb_id", IdKind::Tvdb),
    ("tvdbid", IdKind::Tvdb),
    ("trakt_id", IdKind::Trakt),
    ("mdblist", IdKind::Mdblist),
]);

fn kind_of(list: &str) -> MediaType {
    if list == "movies" {
        MediaType::Movie
    } else {
        MediaType::Show
    }
}

/// An entry read, with its play id (history rows).
pub(crate) type Got = (Entry, Option<u64>);

/// One tagged row decoded as `W`, then made an entry by `f` (`None`: a row to skip);
/// why it fails names the row's list.
fn decoded<W: DeserializeOwned>(
    lists: &Lists,
    v: &Value,
    f: impl FnOnce(&str, W) -> Result<Option<Got>, String>,
) -> Row<Got> {
    match lists.decode::<W, Got>(v) {
        Err(row) => row,
        Ok((list, w)) => match f(&list, w) {
            Ok(Some(got)) => Row::Keep(got),
            Ok(None) => Row::Skip,
            Err(why) => Row::Bad(format!("{list}: {why}")),
        },
    }
}

/// A watchlist row: the title and when it was listed.
pub(crate) fn watchlist_row(lists: &Lists, v: &Value) -> Row<Got> {
    decoded(lists, v, |list, r: WatchlistRow| {
        let kind = match (r.mediatype.as_deref(), list) {
            (Some("movie"), _) => MediaType::Movie,
            (Some("show"), _) => MediaType::Show,
            // A unified list names each row's type.
            (_, "items" | "results") => return Err("no `mediatype`".into()),
            (_, list) => kind_of(list),
        };
        let ids = ids_of(&r.ids);
        if ids.is_empty() {
            return Err("a row without ids".into());
        }
        let item = Item {
            title: r.title,
            year: r.release_year.year().or(r.year.year()),
            ids,
            ..Item::new(kind)
        };
        let listed_at = r.watchlisted_at.0;
        Ok(Some((
            Entry::new(item, Payload::Watchlist { listed_at }),
            None,
        )))
    })
}

fn title_item(obj: Option<TitleObj>, kind: MediaType) -> Result<Item, String> {
    let obj = obj.ok_or_else(|| format!("a row without its {kind}"))?;
    let ids = NESTED.read(&obj.ids);
    if ids.is_empty() {
        return Err(format!("a {kind} without ids"));
    }
    let year = obj.year.year();
    Ok(Item {
        title: obj.title,
        year,
        ids,
        ..Item::new(kind)
    })
}

/// A ratings row; skipped for a `null` rating (MDBList's "removed").
pub(crate) fn rating_row(lists: &Lists, v: &Value) -> Row<Got> {
    decoded(lists, v, |list, r: RatingRow| {
        let obj = if list == "movies" { r.movie } else { r.show };
        let item = title_item(obj, kind_of(list))?;
        let Some(x) = r.rating else {
            return Ok(None);
        };
        let rating = Rating::normalize(x).ok_or(format!("rating {x} is not a rating 1-10"))?;
        Ok(Some((Entry::rating(item, rating, r.rated_at.0), None)))
    })
}

/// A `/sync/watched?plays=all` row of the `movies` or `episodes` list: one play.
pub(crate) fn play_row(lists: &Lists, v: &Value) -> Row<Got> {
    decoded(lists, v, |list, r: PlayRow| {
        let item = match (list, r.episode) {
            ("movies", _) => title_item(r.movie, MediaType::Movie)?,
            (_, None) => return Err("an episode play without its `episode`".into()),
            // The show's place is unverified against the live service: beside `episode`
            // (one reading of the API) or inside it (CrossWatch's). Either is accepted.
            (_, Some(ep)) => {
                let show = title_item(r.show.or(ep.show), MediaType::Show)?;
                let title = show.title.clone().unwrap_or_default();
                let mut item = Item::episode(title, show.ids, ep.season, ep.number);
                item.show_title = show.title;
                item.ids = NESTED.read(&ep.ids);
                item
            }
        };
        let at = (r.watched_at.0.or(r.last_watched_at.0)).ok_or("a play without `watched_at`")?;
        Ok(Some((Entry::watch(item, at), Some(r.play_id))))
    })
}

/// The ids of `kinds` as a write sends them, under their nested names: IMDb as text,
/// the numeric ones as integers. `None` when there is none of them.
fn sent(ids: &Ids, kinds: &[IdKind]) -> Option<Value> {
    let m: Map<String, Value> = (kinds.iter())
        .filter_map(|k| Some((NESTED.name_of(*k)?.to_owned(), ids.get(*k)?)))
        .map(|(name, v)| (name, v.parse::<u64>().map_or(json!(v), |n| json!(n))))
        .collect();
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The nested `ids` object a `/sync` write takes, or `None` without an id MDBList
/// resolves.
pub(crate) fn sync_ids(ids: &Ids) -> Option<Value> {
    sent(
        ids,
        &[IdKind::Imdb, IdKind::Tmdb, IdKind::Tvdb, IdKind::Trakt],
    )
}

/// The flat object a watchlist write takes: `{imdb, tmdb}`, TVDB only for shows and
/// only without either. `None` when the item has none of them.
pub(crate) fn flat_ids(item: &Item) -> Option<Value> {
    let tvdb: &[IdKind] = match item.kind {
        MediaType::Show => &[IdKind::Tvdb],
        _ => &[],
    };
    sent(&item.ids, &[IdKind::Imdb, IdKind::Tmdb]).or_else(|| sent(&item.ids, tvdb))
}

/// The ids of a watchlist row or of a title echoed as not found: nested, or flat under
/// either naming.
pub(crate) fn ids_of(f: &IdFields) -> Ids {
    let mut ids = NESTED.read(f.ids.iter().flatten());
    ids.merge_missing(&NESTED.read(&f.flat));
    ids.merge_missing(&FLAT.read(&f.flat));
    ids
}

/// Each feature's checkpoint. A missing feature stamp falls back to `journal_at`, which
/// every change moves (more reads, never a missed change).
pub(crate) fn activities(a: &LastActivities) -> Activities {
    let stamp = |s: &Option<String>| s.as_deref().and_then(Timestamp::parse);
    let plays = [&a.watched_at, &a.episode_watched_at, &a.season_watched_at];
    let own = [
        (Feature::Watchlist, stamp(&a.watchlisted_at)),
        (Feature::Ratings, stamp(&a.rated_at)),
        (Feature::History, plays.into_iter().filter_map(stamp).max()),
    ];
    let mut out = Activities::new();
    for (f, own) in own {
        if let Some(t) = own.or_else(|| stamp(&a.journal_at)) {
            out = out.with(f, t.to_rfc3339());
        }
    }
    out
}

//! MDBList rows to ferry items and back. Two id shapes: the watchlist speaks *flat* ids
//! (`id` = TMDB, `imdb_id`, `tvdb_id`, …; writes `{imdb, tmdb}`), the `/sync` endpoints
//! speak Trakt-like nested `ids` objects.

use ferry_core::{
    Activities, Feature, IdKind, IdTable, Ids, Item, MediaType, Rating, Row, Timestamp,
};
use serde_json::{Map, Value, json};

use crate::api::{HISTORY, RATINGS, WATCHLIST};
use crate::model::{LastActivities, PlayRow, RatingRow, TitleObj, WatchlistRow};

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

/// A listed title.
pub(crate) type Listed = (Item, Option<Timestamp>);

/// A watchlist row: the title and when it was listed.
pub(crate) fn watchlist_row(v: Value) -> Row<Listed> {
    let (list, r) = match WATCHLIST.lists.decode::<WatchlistRow, _>(&v) {
        Ok(x) => x,
        Err(row) => return row,
    };
    let mut ids = NESTED.read(r.ids.iter().flatten());
    ids.merge_missing(&FLAT.read(&r.flat));
    let kind = match (r.mediatype.as_deref(), list.as_str()) {
        (Some("movie"), _) => MediaType::Movie,
        (Some("show"), _) => MediaType::Show,
        // A unified list names each row's type.
        (_, "items" | "results") => return Row::Bad(format!("{list}: no `mediatype`")),
        (_, list) => kind_of(list),
    };
    if ids.is_empty() {
        return Row::Bad(format!("{list}: a row without ids"));
    }
    let year = r.release_year.year().or(r.year.year());
    let item = Item {
        title: r.title,
        year,
        ids,
        ..Item::new(kind)
    };
    Row::Keep((item, r.watchlisted_at.0))
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

/// A rated title.
pub(crate) type Rated = (Item, Rating, Option<Timestamp>);

/// A ratings row; `Skip` for a `null` rating (MDBList's "removed").
pub(crate) fn rating_row(v: Value) -> Row<Rated> {
    let (list, r) = match RATINGS.lists.decode::<RatingRow, _>(&v) {
        Ok(x) => x,
        Err(row) => return row,
    };
    let obj = if list == "movies" { r.movie } else { r.show };
    let rated = title_item(obj, kind_of(&list)).and_then(|item| match r.rating {
        None => Ok(None),
        Some(x) => Rating::normalize(x)
            .map(|rating| Some((item, rating, r.rated_at.0)))
            .ok_or_else(|| format!("rating {x} is not a rating 1-10")),
    });
    match rated {
        Ok(Some(t)) => Row::Keep(t),
        Ok(None) => Row::Skip,
        Err(why) => Row::Bad(format!("{list}: {why}")),
    }
}

/// One play of the history read.
#[derive(Debug, Clone)]
pub(crate) struct Play {
    pub(crate) item: Item,
    pub(crate) at: Timestamp,
    pub(crate) play_id: u64,
}

/// A `/sync/watched?plays=all` row of the `movies` or `episodes` list.
pub(crate) fn play_row(v: Value) -> Row<Play> {
    let (list, r) = match HISTORY.lists.decode::<PlayRow, _>(&v) {
        Ok(x) => x,
        Err(row) => return row,
    };
    let item = match (list.as_str(), r.episode) {
        ("movies", _) => title_item(r.movie, MediaType::Movie),
        (_, None) => Err("an episode play without its `episode`".into()),
        // The show's place is unverified against the live service: beside `episode`
        // (one reading of the API) or inside it (CrossWatch's). Either is accepted.
        (_, Some(ep)) => title_item(r.show.or(ep.show), MediaType::Show).map(|show| {
            let title = show.title.clone().unwrap_or_default();
            let mut item = Item::episode(title, show.ids, ep.season, ep.number);
            item.show_title = show.title;
            item.ids = NESTED.read(&ep.ids);
            item
        }),
    };
    let at = r.watched_at.0.or(r.last_watched_at.0);
    match (item, at) {
        (Ok(item), Some(at)) => Row::Keep(Play {
            item,
            at,
            play_id: r.play_id,
        }),
        (Err(why), _) => Row::Bad(format!("{list}: {why}")),
        (_, None) => Row::Bad(format!("{list}: a play without `watched_at`")),
    }
}

/// The nested `ids` object a `/sync` write takes (TMDB, TVDB and Trakt as integers), or
/// `None` without an id MDBList resolves.
pub(crate) fn sync_ids(ids: &Ids) -> Option<Value> {
    let mut m = Map::new();
    for kind in [IdKind::Imdb, IdKind::Tmdb, IdKind::Tvdb, IdKind::Trakt] {
        let (Some(name), Some(v)) = (NESTED.name_of(kind), ids.get(kind)) else {
            continue;
        };
        let value = match v.parse::<u64>() {
            Ok(n) if kind != IdKind::Imdb => json!(n),
            _ => json!(v),
        };
        m.insert(name.to_owned(), value);
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The flat object a watchlist write takes: `{imdb, tmdb}` (TMDB as an integer), TVDB
/// only for shows and only without either. `None` when the item has none of them.
pub(crate) fn flat_ids(item: &Item) -> Option<Value> {
    let mut m = Map::new();
    if let Some(v) = item.ids.get(IdKind::Imdb) {
        m.insert("imdb".into(), json!(v));
    }
    let num = |k| item.ids.get(k).and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = num(IdKind::Tmdb) {
        m.insert("tmdb".into(), json!(n));
    }
    if m.is_empty()
        && item.kind == MediaType::Show
        && let Some(n) = num(IdKind::Tvdb)
    {
        m.insert("tvdb".into(), json!(n));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The ids of a row echoed under `not_found` (flat or nested).
pub(crate) fn echoed_ids(row: &Value) -> Ids {
    let Some(m) = row.as_object() else {
        return Ids::new();
    };
    let mut ids = NESTED.read(
        m.get("ids")
            .and_then(Value::as_object)
            .into_iter()
            .flatten(),
    );
    ids.merge_missing(&NESTED.read(m));
    ids.merge_missing(&FLAT.read(m));
    ids
}

/// Each feature's checkpoint. A missing feature stamp falls back to `journal_at`, which
/// every change moves (more reads, never a missed change).
pub(crate) fn activities(a: &LastActivities, features: &[Feature]) -> Activities {
    let stamp = |s: &Option<String>| s.as_deref().and_then(Timestamp::parse);
    let mut out = Activities::new();
    for f in features {
        let own = match f {
            Feature::Watchlist => stamp(&a.watchlisted_at),
            Feature::Ratings => stamp(&a.rated_at),
            _ => [&a.watched_at, &a.episode_watched_at, &a.season_watched_at]
                .into_iter()
                .filter_map(stamp)
                .max(),
        };
        if let Some(t) = own.or_else(|| stamp(&a.journal_at)) {
            out = out.with(*f, t.to_rfc3339());
        }
    }
    out
}

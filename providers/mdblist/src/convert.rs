//! MDBList rows to ferry items and back. Two id shapes: the watchlist speaks *flat* ids
//! (`id` = TMDB, `imdb_id`, `tvdb_id`, …; writes `{imdb, tmdb}`), the `/sync` endpoints
//! speak Trakt-like nested `ids` objects.

use ferry_core::read::decode;
use ferry_core::{
    Activities, Feature, IdKind, IdTable, Ids, Item, MediaType, Rating, Row, Timestamp,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{HISTORY, List, RATINGS, WATCHLIST};
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

/// A raw row as the pager hands it: the row and the list it came in.
#[derive(Deserialize)]
struct Tagged {
    list: String,
    row: Value,
}

/// A raw row of `list`, or what it is when it is not one to decode: a row of a known
/// list the read does not hold is skipped; a row of a list nobody expects is data the
/// read would miss, so it is bad, never skipped.
fn untag<T>(v: &Value, list: &List) -> Result<Tagged, Row<T>> {
    let t = decode::<Tagged>(v).map_err(Row::Bad)?;
    if list.keep.contains(&t.list.as_str()) {
        Ok(t)
    } else if list.skip.contains(&t.list.as_str()) {
        Err(Row::Skip)
    } else {
        Err(Row::Bad(format!(
            "a row of an unexpected list `{}`",
            t.list
        )))
    }
}

fn kind_of(list: &str) -> MediaType {
    if list == "movies" {
        MediaType::Movie
    } else {
        MediaType::Show
    }
}

/// A watchlist row: the title and when it was listed.
pub(crate) fn watchlist_row(v: Value) -> Row<(Item, Option<Timestamp>)> {
    let t = match untag(&v, &WATCHLIST) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let r: WatchlistRow = match decode(&t.row) {
        Ok(r) => r,
        Err(e) => return Row::Bad(e),
    };
    let mut ids = NESTED.read(r.ids.iter().flatten());
    ids.merge_missing(&FLAT.read(&r.flat));
    if ids.is_empty() {
        return Row::Bad(format!("a watchlist {} row without ids", t.list));
    }
    let kind = match (r.mediatype.as_deref(), t.list.as_str()) {
        (Some("movie"), _) => MediaType::Movie,
        (Some("show"), _) => MediaType::Show,
        // A unified list names each row's type.
        (_, "items" | "results") => {
            return Row::Bad(format!("a watchlist {} row without `mediatype`", t.list));
        }
        (_, list) => kind_of(list),
    };
    let item = Item {
        title: r.title,
        year: r.release_year.0.or(r.year.0),
        ids,
        ..Item::new(kind)
    };
    Row::Keep((item, r.watchlisted_at.0))
}

fn title_item(obj: TitleObj, kind: MediaType) -> Result<Item, String> {
    let ids = NESTED.read(&obj.ids);
    if ids.is_empty() {
        return Err(format!("a {kind} without ids"));
    }
    Ok(Item {
        title: obj.title,
        year: obj.year.0,
        ids,
        ..Item::new(kind)
    })
}

/// A rated title.
pub(crate) type Rated = (Item, Rating, Option<Timestamp>);

/// A ratings row; `Skip` for a `null` rating (MDBList's "removed").
pub(crate) fn rating_row(v: Value) -> Row<Rated> {
    let t = match untag(&v, &RATINGS) {
        Ok(t) => t,
        Err(r) => return r,
    };
    Row::from_result(decode::<RatingRow>(&t.row).and_then(|r| {
        let (obj, key) = if t.list == "movies" {
            (r.movie, "movie")
        } else {
            (r.show, "show")
        };
        let obj = obj.ok_or_else(|| format!("a ratings row without its `{key}`"))?;
        let item = title_item(obj, kind_of(&t.list))?;
        match r.rating {
            None => Ok(None),
            Some(x) => Rating::normalize(x)
                .map(|rating| Some((item, rating, r.rated_at.0)))
                .ok_or_else(|| format!("rating {x} is not a rating 1-10")),
        }
    }))
    .and_then_skip()
}

/// `Row<Option<T>>` → `Row<T>`, `None` being a row that is not held.
trait SkipNone<T> {
    fn and_then_skip(self) -> Row<T>;
}

impl<T> SkipNone<T> for Row<Option<T>> {
    fn and_then_skip(self) -> Row<T> {
        match self {
            Row::Keep(Some(t)) => Row::Keep(t),
            Row::Keep(None) | Row::Skip => Row::Skip,
            Row::Bad(why) => Row::Bad(why),
        }
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
    let t = match untag(&v, &HISTORY) {
        Ok(t) => t,
        Err(r) => return r,
    };
    Row::from_result(decode::<PlayRow>(&t.row).and_then(|r| {
        let at = r
            .watched_at
            .0
            .or(r.last_watched_at.0)
            .ok_or("a play without `watched_at`")?;
        let item = if t.list == "movies" {
            title_item(
                r.movie.ok_or("a movie play without its `movie`")?,
                MediaType::Movie,
            )?
        } else {
            let mut ep = r.episode.ok_or("an episode play without its `episode`")?;
            let show = r
                .show
                .or(ep.show.take())
                .ok_or("an episode play without its `show`")?;
            let show = title_item(show, MediaType::Show)?;
            let mut item = Item::episode(
                show.title.clone().unwrap_or_default(),
                show.ids,
                ep.season,
                ep.number,
            );
            if show.title.is_none() {
                item.show_title = None;
            }
            item.ids = NESTED.read(&ep.ids);
            item
        };
        Ok(Play {
            item,
            at,
            play_id: r.play_id,
        })
    }))
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
    let mut ids = match m.get("ids").and_then(Value::as_object) {
        Some(nested) => NESTED.read(nested),
        None => Ids::new(),
    };
    ids.merge_missing(&NESTED.read(m));
    ids.merge_missing(&FLAT.read(m));
    ids
}

fn stamp(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(Timestamp::parse)
}

/// One feature's checkpoint. A missing feature stamp falls back to `journal_at`, which
/// every change moves (more reads, never a missed change).
pub(crate) fn checkpoint(a: &LastActivities, f: Feature) -> Option<Timestamp> {
    let own = match f {
        Feature::Watchlist => stamp(&a.watchlisted_at),
        Feature::Ratings => stamp(&a.rated_at),
        Feature::History => [&a.watched_at, &a.episode_watched_at, &a.season_watched_at]
            .into_iter()
            .filter_map(stamp)
            .max(),
        _ => None,
    };
    own.or_else(|| stamp(&a.journal_at))
}

pub(crate) fn activities(a: &LastActivities, features: &[Feature]) -> Activities {
    let mut out = Activities::new();
    for f in features {
        if let Some(t) = checkpoint(a, *f) {
            out = out.with(*f, t.to_rfc3339());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tagged;

    fn keep<T: std::fmt::Debug>(r: Row<T>) -> T {
        match r {
            Row::Keep(t) => t,
            other => panic!("expected a kept row, got {other:?}"),
        }
    }

    #[test]
    fn flat_watchlist_ids_take_id_as_tmdb() {
        let row = json!({"id": 949, "title": "Heat", "imdb_id": "tt0113277", "tvdb_id": null,
                         "mediatype": "movie", "release_year": 1995});
        let (item, _) = keep(watchlist_row(tagged("movies", row)));
        assert_eq!(item.ids.get(IdKind::Tmdb), Some("949"));
        assert_eq!(item.ids.get(IdKind::Imdb), Some("tt0113277"));
        assert_eq!(item.ids.get(IdKind::Tvdb), None);
        assert_eq!(item.year, Some(1995));
        assert_eq!(
            flat_ids(&item).unwrap(),
            json!({"imdb": "tt0113277", "tmdb": 949})
        );
    }

    #[test]
    fn a_null_rating_is_no_rating_and_a_garbled_one_is_a_bad_row() {
        let row = json!({"rating": null, "movie": {"ids": {"tmdb": 1}}});
        assert_eq!(rating_row(tagged("movies", row)), Row::Skip);
        let row = json!({"rating": "great", "movie": {"ids": {"tmdb": 1}}});
        assert!(matches!(rating_row(tagged("movies", row)), Row::Bad(_)));
        assert!(matches!(
            rating_row(tagged("movies", Value::Null)),
            Row::Bad(_)
        ));
        assert!(matches!(
            rating_row(tagged("lists", json!({}))),
            Row::Bad(_)
        ));
    }

    fn episode_play(row: Value) -> Item {
        keep(play_row(tagged("episodes", row))).item
    }

    #[test]
    fn an_episode_play_reads_its_show_beside_the_episode() {
        let row = json!({"watched_at": "2025-06-01T20:00:00Z", "play_id": 7,
            "show": {"title": "Severance", "year": 2022, "ids": {"tvdb": 371980, "imdb": "tt11280740"}},
            "episode": {"season": 1, "number": 2, "ids": {"tvdb": 8000002}}});
        let it = episode_play(row);
        assert_eq!((it.season, it.episode), (Some(1), Some(2)));
        assert_eq!(it.show_ids.get(IdKind::Tvdb), Some("371980"));
        assert_eq!(it.show_title.as_deref(), Some("Severance"));
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("8000002"));
    }

    #[test]
    fn an_episode_play_reads_its_show_inside_the_episode() {
        let row = json!({"watched_at": "2025-06-01T20:00:00Z", "play_id": 7,
            "episode": {"season": 1, "number": 2, "ids": {"tvdb": 8000002},
                        "show": {"title": "Severance", "ids": {"tvdb": 371980, "imdb": "tt11280740"}}}});
        let it = episode_play(row);
        assert_eq!((it.season, it.episode), (Some(1), Some(2)));
        assert_eq!(it.show_ids.get(IdKind::Imdb), Some("tt11280740"));
        assert_eq!(it.show_title.as_deref(), Some("Severance"));
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("8000002"));
        // Neither place: unreadable, never a play of no show.
        let row = json!({"watched_at": "2025-06-01T20:00:00Z", "play_id": 7,
            "episode": {"season": 1, "number": 2}});
        assert!(matches!(play_row(tagged("episodes", row)), Row::Bad(_)));
    }

    #[test]
    fn history_checkpoints_take_the_newest_watch_stamp() {
        let a: LastActivities = serde_json::from_value(json!({
            "watched_at": "2026-08-01T08:00:00Z", "episode_watched_at": "2026-08-02T08:00:00Z",
            "rated_at": null, "journal_at": "2026-08-03T00:00:00Z"}))
        .unwrap();
        assert_eq!(
            checkpoint(&a, Feature::History).unwrap().to_rfc3339(),
            "2026-08-02T08:00:00Z"
        );
        assert_eq!(
            checkpoint(&a, Feature::Ratings).unwrap().to_rfc3339(),
            "2026-08-03T00:00:00Z",
            "falls back to the journal stamp"
        );
    }
}

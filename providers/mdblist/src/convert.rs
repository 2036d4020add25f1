//! MDBList rows to ferry items and back. Two id shapes: the watchlist speaks *flat* ids
//! (`id` = TMDB, `imdb_id`, `tvdb_id`, …; writes `{imdb, tmdb}`), the `/sync` endpoints
//! speak Trakt-like nested `ids` objects.

use ferry_core::{Activities, Feature, IdKind, Ids, Item, MediaType, Rating, Timestamp};
use serde_json::{Map, Value, json};

const NESTED: [(&str, IdKind); 5] = [
    ("imdb", IdKind::Imdb),
    ("tmdb", IdKind::Tmdb),
    ("tvdb", IdKind::Tvdb),
    ("trakt", IdKind::Trakt),
    ("mdblist", IdKind::Mdblist),
];

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Ids from a nested `ids` object.
pub(crate) fn ids_from(v: Option<&Value>) -> Ids {
    let mut ids = Ids::new();
    if let Some(obj) = v.and_then(Value::as_object) {
        for (key, kind) in NESTED {
            if let Some(s) = obj.get(key).and_then(scalar) {
                ids.set(kind, &s);
            }
        }
    }
    ids
}

/// Ids from a flat watchlist row (`id`/`tmdb_id`, `imdb_id`, `tvdb_id`/`tvdbid`,
/// `trakt_id`, `mdblist`), merged with a nested `ids` block when the row has one.
pub(crate) fn flat_ids_from(row: &Value) -> Ids {
    let mut ids = ids_from(row.get("ids"));
    let flat: [(&[&str], IdKind); 5] = [
        (&["tmdb_id", "id"], IdKind::Tmdb),
        (&["imdb_id", "imdb"], IdKind::Imdb),
        (&["tvdb_id", "tvdbid"], IdKind::Tvdb),
        (&["trakt_id"], IdKind::Trakt),
        (&["mdblist"], IdKind::Mdblist),
    ];
    for (keys, kind) in flat {
        if ids.get(kind).is_some() {
            continue;
        }
        if let Some(s) = keys.iter().find_map(|k| row.get(*k).and_then(scalar)) {
            ids.set(kind, &s);
        }
    }
    ids
}

/// The nested `ids` object for a `/sync` write, or `None` without an id MDBList resolves.
pub(crate) fn ids_json(ids: &Ids) -> Option<Value> {
    let mut m = Map::new();
    for (key, kind) in NESTED {
        if kind == IdKind::Mdblist {
            continue;
        }
        if let Some(v) = ids.get(kind) {
            let value = match (kind, v.parse::<u64>()) {
                (IdKind::Imdb, _) | (_, Err(_)) => json!(v),
                (_, Ok(n)) => json!(n),
            };
            m.insert(key.to_owned(), value);
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The flat object a watchlist write takes: `{imdb, tmdb}` (TMDB as an integer), TVDB
/// only for shows and only without either. `None` when the item has none of them.
pub(crate) fn flat_json(item: &Item) -> Option<Value> {
    let mut m = Map::new();
    if let Some(v) = item.ids.get(IdKind::Imdb) {
        m.insert("imdb".into(), json!(v));
    }
    if let Some(n) = item
        .ids
        .get(IdKind::Tmdb)
        .and_then(|v| v.parse::<u64>().ok())
    {
        m.insert("tmdb".into(), json!(n));
    }
    if m.is_empty()
        && item.kind == MediaType::Show
        && let Some(n) = item
            .ids
            .get(IdKind::Tvdb)
            .and_then(|v| v.parse::<u64>().ok())
    {
        m.insert("tvdb".into(), json!(n));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// A timestamp field: `Ok(None)` when absent or `null`, an error when garbled.
pub(crate) fn time_field(row: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Timestamp::parse(s)
            .map(Some)
            .ok_or_else(|| format!("`{key}` is not a timestamp")),
        Some(_) => Err(format!("`{key}` is not a timestamp")),
    }
}

fn year_of(v: Option<&Value>) -> Option<u16> {
    v.and_then(scalar)
        .and_then(|y| y.trim().parse::<u16>().ok())
        .filter(|y| *y > 0)
}

fn kind_of(group: &str) -> MediaType {
    if group == "movies" {
        MediaType::Movie
    } else {
        MediaType::Show
    }
}

/// A watchlist row: the title and when it was listed.
pub(crate) fn watchlist_row(group: &str, row: &Value) -> Result<(Item, Option<Timestamp>), String> {
    let ids = flat_ids_from(row);
    if ids.is_empty() {
        return Err(format!("a watchlist {group} row without ids"));
    }
    let kind = match (row.get("mediatype").and_then(Value::as_str), group) {
        (Some("movie"), _) => MediaType::Movie,
        (Some("show"), _) => MediaType::Show,
        // A unified list (`items`, `results`) names each row's type.
        (_, "items" | "results") => {
            return Err(format!("a watchlist {group} row without `mediatype`"));
        }
        _ => kind_of(group),
    };
    let item = Item {
        title: row.get("title").and_then(Value::as_str).map(str::to_owned),
        year: year_of(row.get("release_year").or(row.get("year"))),
        ids,
        ..Item::new(kind)
    };
    Ok((item, time_field(row, "watchlisted_at")?))
}

/// A `{title, year, ids}` object of the `/sync` endpoints.
fn title_obj(obj: &Value, kind: MediaType) -> Result<Item, String> {
    let ids = ids_from(obj.get("ids"));
    if ids.is_empty() {
        return Err(format!("a {kind} without ids"));
    }
    Ok(Item {
        title: obj.get("title").and_then(Value::as_str).map(str::to_owned),
        year: year_of(obj.get("year")),
        ids,
        ..Item::new(kind)
    })
}

/// A ratings row: `Ok(None)` for a `null` rating (MDBList's "removed").
pub(crate) fn rating_row(
    group: &str,
    row: &Value,
) -> Result<Option<(Item, Rating, Option<Timestamp>)>, String> {
    let key = if group == "movies" { "movie" } else { "show" };
    let obj = row
        .get(key)
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("a ratings row without its `{key}`"))?;
    let item = title_obj(obj, kind_of(group))?;
    let rating = match row.get("rating") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v
            .as_f64()
            .and_then(Rating::normalize)
            .ok_or("`rating` is not a rating 1-10")?,
    };
    Ok(Some((item, rating, time_field(row, "rated_at")?)))
}

/// One play of the history read (`plays=all`).
#[derive(Debug, Clone)]
pub(crate) struct PlayRow {
    pub(crate) item: Item,
    pub(crate) watched_at: Timestamp,
    pub(crate) play_id: u64,
}

/// A `/sync/watched?plays=all` row of the `movies` or `episodes` group.
pub(crate) fn play_row(group: &str, row: &Value) -> Result<PlayRow, String> {
    let watched_at = time_field(row, "watched_at")?
        .or(time_field(row, "last_watched_at")?)
        .ok_or("a play without `watched_at`")?;
    let play_id = row
        .get("play_id")
        .and_then(Value::as_u64)
        .ok_or("a play without `play_id`")?;
    let item = if group == "movies" {
        let obj = row.get("movie").ok_or("a movie play without its `movie`")?;
        title_obj(obj, MediaType::Movie)?
    } else {
        let ep = row
            .get("episode")
            .ok_or("an episode play without its `episode`")?;
        // The show's place is unverified against the live service: ferry's reading puts
        // it beside `episode`, CrossWatch's inside it. Either is accepted.
        let show = row
            .get("show")
            .or_else(|| ep.get("show"))
            .ok_or("an episode play without its `show`")?;
        let show = title_obj(show, MediaType::Show)?;
        let num = |k: &str| ep.get(k).and_then(Value::as_u64).map(|n| n as u32);
        let (Some(s), Some(n)) = (num("season"), num("number")) else {
            return Err("an episode without season and number".into());
        };
        let mut item = Item::episode(show.title.clone().unwrap_or_default(), show.ids, s, n);
        if show.title.is_none() {
            item.show_title = None;
        }
        item.ids = ids_from(ep.get("ids"));
        item
    };
    Ok(PlayRow {
        item,
        watched_at,
        play_id,
    })
}

fn stamp(v: &Value, field: &str) -> Option<Timestamp> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(Timestamp::parse)
}

/// One feature's checkpoint from `/sync/last_activities`. A missing feature stamp falls
/// back to `journal_at`, which every change moves (more reads, never a missed change).
pub(crate) fn checkpoint(v: &Value, f: Feature) -> Option<Timestamp> {
    let own = match f {
        Feature::Watchlist => stamp(v, "watchlisted_at"),
        Feature::Ratings => stamp(v, "rated_at"),
        Feature::History => ["watched_at", "episode_watched_at", "season_watched_at"]
            .iter()
            .filter_map(|k| stamp(v, k))
            .max(),
        _ => None,
    };
    own.or_else(|| stamp(v, "journal_at"))
}

pub(crate) fn activities(v: &Value, features: &[Feature]) -> Activities {
    let mut a = Activities::new();
    for f in features {
        if let Some(t) = checkpoint(v, *f) {
            a = a.with(*f, t.to_rfc3339());
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_watchlist_ids_take_id_as_tmdb() {
        let row = json!({"id": 949, "title": "Heat", "imdb_id": "tt0113277", "tvdb_id": null,
                         "mediatype": "movie", "release_year": 1995});
        let (item, _) = watchlist_row("movies", &row).unwrap();
        assert_eq!(item.ids.get(IdKind::Tmdb), Some("949"));
        assert_eq!(item.ids.get(IdKind::Imdb), Some("tt0113277"));
        assert_eq!(item.ids.get(IdKind::Tvdb), None);
        assert_eq!(item.year, Some(1995));
        assert_eq!(
            flat_json(&item).unwrap(),
            json!({"imdb": "tt0113277", "tmdb": 949})
        );
    }

    #[test]
    fn a_null_rating_is_no_rating_and_a_garbled_one_is_an_error() {
        let row = json!({"rating": null, "movie": {"ids": {"tmdb": 1}}});
        assert!(rating_row("movies", &row).unwrap().is_none());
        let row = json!({"rating": "great", "movie": {"ids": {"tmdb": 1}}});
        assert!(rating_row("movies", &row).is_err());
    }

    fn episode_play(row: &Value) -> Item {
        play_row("episodes", row).unwrap().item
    }

    #[test]
    fn an_episode_play_reads_its_show_beside_the_episode() {
        let row = json!({"watched_at": "2025-06-01T20:00:00Z", "play_id": 7,
            "show": {"title": "Severance", "year": 2022, "ids": {"tvdb": 371980, "imdb": "tt11280740"}},
            "episode": {"season": 1, "number": 2, "ids": {"tvdb": 8000002}}});
        let it = episode_play(&row);
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
        let it = episode_play(&row);
        assert_eq!((it.season, it.episode), (Some(1), Some(2)));
        assert_eq!(it.show_ids.get(IdKind::Imdb), Some("tt11280740"));
        assert_eq!(it.show_title.as_deref(), Some("Severance"));
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("8000002"));
        // Neither place: unreadable, never a play of no show.
        let row = json!({"watched_at": "2025-06-01T20:00:00Z", "play_id": 7,
            "episode": {"season": 1, "number": 2}});
        assert!(play_row("episodes", &row).is_err());
    }

    #[test]
    fn history_checkpoints_take_the_newest_watch_stamp() {
        let v = json!({"watched_at": "2026-08-01T08:00:00Z", "episode_watched_at": "2026-08-02T08:00:00Z",
                       "rated_at": null, "journal_at": "2026-08-03T00:00:00Z"});
        assert_eq!(
            checkpoint(&v, Feature::History).unwrap().to_rfc3339(),
            "2026-08-02T08:00:00Z"
        );
        assert_eq!(
            checkpoint(&v, Feature::Ratings).unwrap().to_rfc3339(),
            "2026-08-03T00:00:00Z",
            "falls back to the journal stamp"
        );
    }
}

//! SIMKL rows to ferry items and back: ids, timestamps, library rows, request objects.

use ferry_core::{Activities, Feature, IdKind, Ids, Item, MediaType, Rating, Timestamp};
use serde_json::{Map, Value, json};

/// SIMKL's three catalogs. Anime is its own catalog on SIMKL; ferry files anime as shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    Movies,
    Shows,
    Anime,
}

impl Bucket {
    pub(crate) const ALL: [Bucket; 3] = [Bucket::Movies, Bucket::Shows, Bucket::Anime];

    /// The path segment and response key.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Bucket::Movies => "movies",
            Bucket::Shows => "shows",
            Bucket::Anime => "anime",
        }
    }

    /// The key of the title object inside a row.
    fn item_key(self) -> &'static str {
        match self {
            Bucket::Movies => "movie",
            _ => "show",
        }
    }
}

/// The watchlist bucket.
pub(crate) const PLAN_TO_WATCH: &str = "plantowatch";

/// Id keys SIMKL resolves on writes (`slug` is response-only, and SIMKL's slugs are its
/// own namespace, so they are never read into ferry's `slug` id either).
const ID_KEYS: [(&str, IdKind); 8] = [
    ("simkl", IdKind::Simkl),
    ("imdb", IdKind::Imdb),
    ("tmdb", IdKind::Tmdb),
    ("tvdb", IdKind::Tvdb),
    ("mal", IdKind::Mal),
    ("anidb", IdKind::Anidb),
    ("anilist", IdKind::Anilist),
    ("kitsu", IdKind::Kitsu),
];

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Ids from a SIMKL `ids` object (values may be numbers or strings).
pub(crate) fn ids_from(v: Option<&Value>) -> Ids {
    let mut ids = Ids::new();
    if let Some(obj) = v.and_then(Value::as_object) {
        for (key, kind) in ID_KEYS {
            if let Some(s) = obj.get(key).and_then(scalar) {
                ids.set(kind, &s);
            }
        }
    }
    ids
}

/// The `ids` object SIMKL should resolve `ids` by, or `None` when it holds no id SIMKL
/// knows.
pub(crate) fn ids_json(ids: &Ids) -> Option<Value> {
    let mut m = Map::new();
    for (key, kind) in ID_KEYS {
        if let Some(v) = ids.get(kind) {
            let value = match (kind, v.parse::<u64>()) {
                (IdKind::Simkl, Ok(n)) => json!(n),
                _ => json!(v),
            };
            m.insert(key.to_owned(), value);
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// A timestamp field: `Ok(None)` when absent or `null`, an error when present but not a
/// timestamp (a garbled date must not read as "never").
fn time_field(row: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Timestamp::parse(s)
            .map(Some)
            .ok_or_else(|| format!("`{key}` is not a timestamp")),
        Some(_) => Err(format!("`{key}` is not a timestamp")),
    }
}

/// A count field (a number or a numeric string); `None` when absent or not a count. Only
/// used to notice missing data, so an odd value is not an error.
fn count_field(row: &Value, key: &str) -> Option<u64> {
    match row.get(key)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One library row of `/sync/all-items` or `/sync/ratings`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The movie or show (anime rows are shows).
    pub(crate) item: Item,
    pub(crate) status: Option<String>,
    pub(crate) rating: Option<Rating>,
    pub(crate) rated_at: Option<Timestamp>,
    pub(crate) last_watched_at: Option<Timestamp>,
    pub(crate) added_at: Option<Timestamp>,
    /// Watched episodes: `(season, episode, watched_at)`.
    pub(crate) episodes: Vec<(u32, u32, Option<Timestamp>)>,
    /// The row's `watched_episodes_count`, when it carries one.
    pub(crate) watched_count: Option<u64>,
}

impl Row {
    pub(crate) fn is_movie(&self) -> bool {
        self.item.kind == MediaType::Movie
    }

    /// A show row that says episodes were watched but lists none (SIMKL leaves
    /// `seasons[]` out of finished shows unless asked with `include_all_episodes=yes`):
    /// its plays are unknown, never "none".
    pub(crate) fn episodes_missing(&self) -> bool {
        !self.is_movie() && self.episodes.is_empty() && self.watched_count.is_some_and(|n| n > 0)
    }

    /// The watched episodes that carry a time, as episode items.
    pub(crate) fn episode_plays(&self) -> impl Iterator<Item = (Item, Timestamp)> + '_ {
        self.episodes.iter().filter_map(|(s, e, at)| {
            at.map(|t| {
                let mut ep = Item::episode(
                    self.item.title.clone().unwrap_or_default(),
                    self.item.ids.clone(),
                    *s,
                    *e,
                );
                if self.item.title.is_none() {
                    ep.show_title = None;
                }
                (ep, t)
            })
        })
    }
}

/// Parses one row of bucket `b`. An error names what is wrong; the caller counts it and
/// marks the read partial.
pub(crate) fn parse_row(b: Bucket, row: &Value) -> Result<Row, String> {
    let obj = row
        .get(b.item_key())
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("a {} row without its `{}` object", b.as_str(), b.item_key()))?;
    let ids = ids_from(obj.get("ids"));
    if ids.is_empty() {
        return Err(format!("a {} row without ids", b.as_str()));
    }
    let kind = if b == Bucket::Movies {
        MediaType::Movie
    } else {
        MediaType::Show
    };
    let year = obj
        .get("year")
        .and_then(scalar)
        .and_then(|y| y.trim().parse::<u16>().ok())
        .filter(|y| *y > 0);
    let item = Item {
        title: obj.get("title").and_then(Value::as_str).map(str::to_owned),
        year,
        ids,
        ..Item::new(kind)
    };
    let rating = match row.get("user_rating") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .and_then(Rating::normalize)
                .ok_or("`user_rating` is not a rating 1-10")?,
        ),
    };
    let mut episodes = Vec::new();
    if let Some(seasons) = row.get("seasons").and_then(Value::as_array) {
        for s in seasons {
            let sn = s
                .get("number")
                .and_then(Value::as_u64)
                .ok_or("a season without a number")?;
            for e in s
                .get("episodes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let en = e
                    .get("number")
                    .and_then(Value::as_u64)
                    .ok_or("an episode without a number")?;
                episodes.push((sn as u32, en as u32, time_field(e, "watched_at")?));
            }
        }
    }
    Ok(Row {
        item,
        status: row.get("status").and_then(Value::as_str).map(str::to_owned),
        rating,
        rated_at: time_field(row, "user_rated_at")?,
        last_watched_at: time_field(row, "last_watched_at")?,
        added_at: time_field(row, "added_to_watchlist_at")?,
        episodes,
        watched_count: count_field(row, "watched_episodes_count"),
    })
}

/// The show an episode item belongs to, as a show item (for matching library rows).
pub(crate) fn show_of(ep: &Item) -> Item {
    Item {
        title: ep.show_title.clone(),
        ids: ep.show_ids.clone(),
        ..Item::new(MediaType::Show)
    }
}

fn stamp(v: &Value, block: &str, field: &str) -> Option<Timestamp> {
    v.get(block)
        .and_then(|b| b.get(field))
        .and_then(Value::as_str)
        .and_then(Timestamp::parse)
}

const BLOCKS: [&str; 4] = ["movies", "tv_shows", "anime", "shows"];

fn latest(v: &Value, fields: &[&str]) -> Option<Timestamp> {
    BLOCKS
        .iter()
        .flat_map(|b| fields.iter().filter_map(move |f| stamp(v, b, f)))
        .max()
}

/// The newest stamp of any change: the top-level `all` and every block's `all` and
/// `removed_from_list`.
pub(crate) fn newest_stamp(v: &Value) -> Option<Timestamp> {
    let top = v
        .get("all")
        .and_then(Value::as_str)
        .and_then(Timestamp::parse);
    latest(v, &["all", "removed_from_list"]).max(top)
}

/// The newest `removed_from_list` stamp: a title left the library entirely.
pub(crate) fn removed_stamp(v: &Value) -> Option<Timestamp> {
    latest(v, &["removed_from_list"])
}

/// One feature's checkpoint from `/sync/activities`: the newest stamp that a change to
/// the feature moves.
pub(crate) fn checkpoint(v: &Value, f: Feature) -> Option<Timestamp> {
    match f {
        // Moving a title into or out of Plan to Watch moves `plantowatch`; removing it
        // from the library moves `removed_from_list`.
        Feature::Watchlist => latest(v, &["plantowatch", "removed_from_list"]),
        // Removing a title from the library takes its rating with it.
        Feature::Ratings => latest(v, &["rated_at", "removed_from_list"]),
        // Watches move the bucket the title lands in; `all` covers every bucket.
        Feature::History => latest(v, &["all", "removed_from_list"]),
        _ => None,
    }
}

/// Per-feature checkpoints for [`ferry_core::InventoryOps::activities`].
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
    fn ids_read_numbers_and_strings_and_skip_slugs() {
        let ids = ids_from(Some(&json!({
            "simkl": 53536, "slug": "heat", "imdb": "tt0113277", "tmdb": "949", "mal": 5
        })));
        assert_eq!(ids.get(IdKind::Simkl), Some("53536"));
        assert_eq!(ids.get(IdKind::Tmdb), Some("949"));
        assert_eq!(ids.get(IdKind::Mal), Some("5"));
        assert_eq!(ids.get(IdKind::Slug), None);
        let out = ids_json(&ids).unwrap();
        assert_eq!(out["simkl"], json!(53536));
        assert_eq!(out["tmdb"], json!("949"));
    }

    #[test]
    fn a_garbled_timestamp_is_an_error_not_never() {
        let row = json!({"status": "completed", "last_watched_at": "yesterday",
                         "movie": {"title": "Heat", "ids": {"simkl": 1}}});
        assert!(parse_row(Bucket::Movies, &row).is_err());
        let row = json!({"status": "completed", "last_watched_at": null,
                         "movie": {"title": "Heat", "ids": {"simkl": 1}}});
        assert!(
            parse_row(Bucket::Movies, &row)
                .unwrap()
                .last_watched_at
                .is_none()
        );
    }

    #[test]
    fn checkpoints_take_the_newest_relevant_stamp() {
        let v = json!({
            "all": "2026-05-14T06:50:38Z",
            "movies": {"all": "2026-05-14T06:50:38Z", "rated_at": "2026-05-14T06:43:20Z",
                       "plantowatch": "2026-05-14T06:43:11Z", "removed_from_list": "2026-04-10T05:34:55Z"},
            "tv_shows": {"plantowatch": "2026-05-15T00:00:00Z", "rated_at": null},
        });
        assert_eq!(
            checkpoint(&v, Feature::Watchlist).unwrap().to_rfc3339(),
            "2026-05-15T00:00:00Z"
        );
        assert_eq!(
            checkpoint(&v, Feature::Ratings).unwrap().to_rfc3339(),
            "2026-05-14T06:43:20Z"
        );
        assert_eq!(checkpoint(&json!({}), Feature::Ratings), None);
    }
}

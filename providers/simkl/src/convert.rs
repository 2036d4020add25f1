//! SIMKL rows to ferry items and back: ids, timestamps, library rows, request objects.

use ferry_core::read::{Row as Decoded, decode};
use ferry_core::{Activities, Feature, IdKind, IdTable, Ids, Item, MediaType, Rating, Timestamp};
use serde_json::{Map, Value, json};

use crate::model::{ActivitiesRow, Block, LibRow};

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

    /// The catalog's block in `/sync/activities`.
    pub(crate) fn activities_block(self) -> &'static str {
        match self {
            Bucket::Movies => "movies",
            Bucket::Shows => "tv_shows",
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
pub(crate) const IDS: IdTable = IdTable(&[
    ("simkl", IdKind::Simkl),
    ("imdb", IdKind::Imdb),
    ("tmdb", IdKind::Tmdb),
    ("tvdb", IdKind::Tvdb),
    ("mal", IdKind::Mal),
    ("anidb", IdKind::Anidb),
    ("anilist", IdKind::Anilist),
    ("kitsu", IdKind::Kitsu),
]);

/// The `ids` object SIMKL should resolve `ids` by, or `None` when it holds no id SIMKL
/// knows.
pub(crate) fn ids_json(ids: &Ids) -> Option<Value> {
    let mut m = Map::new();
    for &(key, kind) in IDS.0 {
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

/// Decodes one raw row of bucket `b` (a bad row names what is wrong; the reader counts
/// it and marks the read partial).
pub(crate) fn decode_row(b: Bucket, raw: Value) -> Decoded<Row> {
    Decoded::from_result(decode::<LibRow>(&raw).and_then(|r| row(b, r)))
}

fn row(b: Bucket, r: LibRow) -> Result<Row, String> {
    let obj = if b == Bucket::Movies { r.movie } else { r.show };
    let obj = obj.ok_or_else(|| format!("a {} row without its `{}`", b.as_str(), b.item_key()))?;
    let ids = IDS.read(&obj.ids);
    if ids.is_empty() {
        return Err(format!("a {} row without ids", b.as_str()));
    }
    let kind = if b == Bucket::Movies {
        MediaType::Movie
    } else {
        MediaType::Show
    };
    let item = Item {
        title: obj.title,
        year: obj.year.year(),
        ids,
        ..Item::new(kind)
    };
    let rating = match r.user_rating {
        None => None,
        Some(x) => Some(Rating::normalize(x).ok_or("`user_rating` is not a rating 1-10")?),
    };
    let mut episodes = Vec::new();
    for s in r.seasons.into_iter().flatten() {
        for e in s.episodes.into_iter().flatten() {
            episodes.push((s.number, e.number, e.watched_at.0));
        }
    }
    Ok(Row {
        item,
        status: r.status,
        rating,
        rated_at: r.user_rated_at.0,
        last_watched_at: r.last_watched_at.0,
        added_at: r.added_to_watchlist_at.0,
        episodes,
        watched_count: r.watched_episodes_count.0,
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

const BLOCKS: [&str; 4] = ["movies", "tv_shows", "anime", "shows"];

/// The newest of `fields` over every catalog block.
fn latest(v: &ActivitiesRow, fields: &[&str]) -> Option<Timestamp> {
    let stamps = BLOCKS.iter().filter_map(|b| match v.blocks.get(*b) {
        Some(Block::Stamps(m)) => Some(m),
        _ => None,
    });
    stamps
        .flat_map(|m| fields.iter().filter_map(|f| m.get(*f)?.as_deref()))
        .filter_map(Timestamp::parse)
        .max()
}

/// The newest stamp of any change: the top-level `all` and every block's `all` and
/// `removed_from_list`.
pub(crate) fn newest_stamp(v: &ActivitiesRow) -> Option<Timestamp> {
    let top = v.all.as_deref().and_then(Timestamp::parse);
    latest(v, &["all", "removed_from_list"]).max(top)
}

/// The newest `removed_from_list` stamp: a title left the library entirely.
pub(crate) fn removed_stamp(v: &ActivitiesRow) -> Option<Timestamp> {
    latest(v, &["removed_from_list"])
}

/// One feature's checkpoint from `/sync/activities`: the newest stamp that a change to
/// the feature moves.
pub(crate) fn checkpoint(v: &ActivitiesRow, f: Feature) -> Option<Timestamp> {
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
pub(crate) fn activities(v: &ActivitiesRow, features: &[Feature]) -> Activities {
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
        let ids = IDS.read(
            json!({
                "simkl": 53536, "slug": "heat", "imdb": "tt0113277", "tmdb": "949", "mal": 5
            })
            .as_object()
            .unwrap(),
        );
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
        assert!(matches!(decode_row(Bucket::Movies, row), Decoded::Bad(_)));
        let row = json!({"status": "completed", "last_watched_at": null,
                         "movie": {"title": "Heat", "ids": {"simkl": 1}}});
        match decode_row(Bucket::Movies, row) {
            Decoded::Keep(r) => assert!(r.last_watched_at.is_none()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn checkpoints_take_the_newest_relevant_stamp() {
        let v: ActivitiesRow = serde_json::from_value(json!({
            "all": "2026-05-14T06:50:38Z",
            "movies": {"all": "2026-05-14T06:50:38Z", "rated_at": "2026-05-14T06:43:20Z",
                       "plantowatch": "2026-05-14T06:43:11Z", "removed_from_list": "2026-04-10T05:34:55Z"},
            "tv_shows": {"plantowatch": "2026-05-15T00:00:00Z", "rated_at": null},
        }))
        .unwrap();
        assert_eq!(
            checkpoint(&v, Feature::Watchlist).unwrap().to_rfc3339(),
            "2026-05-15T00:00:00Z"
        );
        assert_eq!(
            checkpoint(&v, Feature::Ratings).unwrap().to_rfc3339(),
            "2026-05-14T06:43:20Z"
        );
        assert_eq!(
            checkpoint(&ActivitiesRow::default(), Feature::Ratings),
            None
        );
    }
}

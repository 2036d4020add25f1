//! Trakt's wire rows ↔ ferry's items: rows decoded one at a time into items, the bodies
//! of sync writes, and the `added`/`existing`/`deleted`/`not_found` answers mapped back to
//! the entries that were sent.

use ferry_core::{
    ChunkAnswer, IdKind, IdTable, Ids, Item, MediaType, Outcome, Rating, Row, Timestamp,
    UnresolvedReason, read::decode,
};
use serde_json::{Map, Value, json};

use crate::model::{Echo, Media, SyncRow, WireIds, WriteAnswer};

/// The id kinds Trakt understands, in the order it matches them.
pub(crate) const IDS: IdTable = IdTable(&[
    ("trakt", IdKind::Trakt),
    ("imdb", IdKind::Imdb),
    ("tmdb", IdKind::Tmdb),
    ("tvdb", IdKind::Tvdb),
    ("slug", IdKind::Slug),
]);

/// The four body and answer buckets.
pub(crate) const BUCKETS: [&str; 4] = ["movies", "shows", "seasons", "episodes"];

/// ferry ids from a Trakt `ids` object (numbers or strings; `null`s skipped).
pub(crate) fn ids_of(ids: Option<&WireIds>) -> Ids {
    ids.map(|m| IDS.read(m)).unwrap_or_default()
}

/// A Trakt `ids` object for ferry ids: trakt/tmdb/tvdb as integers (as Trakt documents
/// them), imdb/slug as strings, other kinds left out.
pub(crate) fn ids_to_json(ids: &Ids) -> Map<String, Value> {
    let mut m = Map::new();
    for (name, v) in IDS.write(ids) {
        let Value::String(s) = v else { continue };
        let val = match IDS.kind_of(&name) {
            Some(IdKind::Trakt | IdKind::Tmdb | IdKind::Tvdb) => match s.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => continue,
            },
            _ => Value::String(s),
        };
        m.insert(name, val);
    }
    m
}

/// A timestamp field of a row.
pub(crate) fn time_of(s: Option<&String>) -> Option<Timestamp> {
    s.and_then(|s| Timestamp::parse(s))
}

/// RFC 3339 with milliseconds, as Trakt writes it.
pub(crate) fn trakt_time(t: Timestamp) -> String {
    format!("{}.000Z", t.to_rfc3339().trim_end_matches('Z'))
}

fn titled(kind: MediaType, m: &Media) -> Item {
    Item {
        title: m.title.clone(),
        year: m.year,
        ids: ids_of(m.ids.as_ref()),
        ..Item::new(kind)
    }
}

/// The item of a row: `Ok(None)` for a type ferry does not hold (a person on a list),
/// `Err` for a row that names no title it can match.
pub(crate) fn item_of(row: &SyncRow) -> Result<Option<Item>, String> {
    let missing = || format!("a {} row without its {}", row.kind, row.kind);
    let item = match row.kind.as_str() {
        "movie" => titled(MediaType::Movie, row.movie.as_ref().ok_or_else(missing)?),
        "show" => titled(MediaType::Show, row.show.as_ref().ok_or_else(missing)?),
        "season" | "episode" => {
            let show = row.show.clone().unwrap_or_default();
            let base = Item {
                show_ids: ids_of(show.ids.as_ref()),
                show_title: show.title,
                ..Item::new(MediaType::Season)
            };
            if row.kind == "season" {
                let s = row.season.as_ref().ok_or_else(missing)?;
                Item {
                    ids: ids_of(s.ids.as_ref()),
                    season: s.number,
                    ..base
                }
            } else {
                let e = row.episode.as_ref().ok_or_else(missing)?;
                Item {
                    kind: MediaType::Episode,
                    ids: ids_of(e.ids.as_ref()),
                    title: e.title.clone(),
                    season: e.season,
                    episode: e.number,
                    ..base
                }
            }
        }
        _ => return Ok(None),
    };
    if item.ids.is_empty() && item.show_ids.is_empty() {
        return Err(format!("a {} row without ids", row.kind));
    }
    Ok(Some(item))
}

/// One row decoded: the wire struct and its item, or why not. `skip` counts rows of types
/// ferry does not hold.
fn decoded(raw: &Value) -> Result<Option<(SyncRow, Item)>, String> {
    let row: SyncRow = decode(raw)?;
    Ok(item_of(&row)?.map(|item| (row, item)))
}

/// A row of a list (watchlist, personal list).
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// The list item id (personal lists; used to reorder).
    pub(crate) id: Option<u64>,
    pub(crate) rank: Option<u64>,
    pub(crate) item: Item,
    pub(crate) listed_at: Option<Timestamp>,
}

/// A list row; a person (or another type ferry does not hold) is counted in `foreign`.
pub(crate) fn list_row(raw: &Value, foreign: &mut u64) -> Row<Listed> {
    match decoded(raw) {
        Ok(Some((row, item))) => Row::Keep(Listed {
            id: row.id,
            rank: row.rank,
            item,
            listed_at: time_of(row.listed_at.as_ref()),
        }),
        Ok(None) => {
            *foreign += 1;
            Row::Skip
        }
        Err(e) => Row::Bad(e),
    }
}

/// A rating as Trakt holds it.
#[derive(Debug, Clone)]
pub(crate) struct Rated {
    pub(crate) item: Item,
    pub(crate) rating: Rating,
    pub(crate) rated_at: Option<Timestamp>,
}

pub(crate) fn rating_row(raw: &Value) -> Row<Rated> {
    match decoded(raw) {
        Ok(Some((row, item))) => match row.rating.and_then(Rating::new) {
            Some(rating) => Row::Keep(Rated {
                item,
                rating,
                rated_at: time_of(row.rated_at.as_ref()),
            }),
            None => Row::Bad(format!("rating: {:?} is not 1-10", row.rating)),
        },
        Ok(None) => Row::Skip,
        Err(e) => Row::Bad(e),
    }
}

/// One play in the history.
#[derive(Debug, Clone)]
pub(crate) struct Play {
    /// The history id (what a removal names).
    pub(crate) id: Option<u64>,
    pub(crate) item: Item,
    pub(crate) at: Timestamp,
}

pub(crate) fn play_row(raw: &Value) -> Row<Play> {
    match decoded(raw) {
        Ok(Some((row, item))) => match time_of(row.watched_at.as_ref()) {
            Some(at) => Row::Keep(Play {
                id: row.id,
                item,
                at,
            }),
            None => Row::Bad(format!("watched_at: {:?} is not a time", row.watched_at)),
        },
        Ok(None) => Row::Skip,
        Err(e) => Row::Bad(e),
    }
}

/// A resume point: Trakt keeps a percentage, the runtime turns it into a position.
#[derive(Debug, Clone)]
pub(crate) struct Resume {
    /// The playback id (what a removal names).
    pub(crate) id: Option<u64>,
    pub(crate) item: Item,
    pub(crate) progress: f64,
    pub(crate) runtime_ms: Option<u64>,
    pub(crate) paused_at: Option<Timestamp>,
}

impl Resume {
    pub(crate) fn position_ms(&self) -> Option<u64> {
        self.runtime_ms
            .map(|rt| (rt as f64 * self.progress / 100.0).round() as u64)
    }
}

pub(crate) fn resume_row(raw: &Value) -> Row<Resume> {
    match decoded(raw) {
        Ok(Some((row, item))) => {
            let media = match row.kind.as_str() {
                "movie" => row.movie.as_ref(),
                _ => row.episode.as_ref(),
            };
            let runtime_ms = media
                .and_then(|m| m.runtime)
                .filter(|m| *m > 0)
                .map(|m| m * 60_000);
            match row.progress.filter(|p| p.is_finite()) {
                Some(progress) => Row::Keep(Resume {
                    id: row.id,
                    item,
                    progress,
                    runtime_ms,
                    paused_at: time_of(row.paused_at.as_ref()),
                }),
                None => Row::Bad("progress: missing".into()),
            }
        }
        Ok(None) => Row::Skip,
        Err(e) => Row::Bad(e),
    }
}

/// How one entry was sent in a sync body, to map the answer back to it.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    /// The entry's position in the chunk.
    pub(crate) pos: usize,
    /// The body bucket it went in (`shows` for show-scoped seasons and episodes).
    pub(crate) bucket: &'static str,
    /// The answer bucket it is counted in.
    pub(crate) counted: &'static str,
    /// What `not_found` would echo: the top-level `ids`, or title and year.
    pub(crate) ids: Ids,
    pub(crate) title: Option<(String, Option<u16>)>,
    pub(crate) season: Option<u32>,
    pub(crate) episode: Option<u32>,
}

/// A sync body (`movies`, `shows`, `seasons`, `episodes`) being assembled.
#[derive(Debug, Default)]
pub(crate) struct Body {
    buckets: [Vec<Value>; 4],
    pub(crate) sent: Vec<Sent>,
}

fn bucket_index(b: &str) -> usize {
    BUCKETS.iter().position(|x| *x == b).unwrap_or(0)
}

fn counted_bucket(kind: MediaType) -> &'static str {
    match kind {
        MediaType::Movie => "movies",
        MediaType::Show => "shows",
        MediaType::Season => "seasons",
        _ => "episodes",
    }
}

fn with_extras(mut base: Map<String, Value>, extras: &Map<String, Value>) -> Value {
    for (k, v) in extras {
        base.insert(k.clone(), v.clone());
    }
    Value::Object(base)
}

/// An episode's own ids that are not simply its show's (some servers copy the show's tvdb
/// id onto every episode; sending those would name the show, not the episode).
fn own_ids(item: &Item) -> Ids {
    let mut ids = Ids::new();
    for (k, v) in item.ids.iter() {
        if item.show_ids.get(k) != Some(v) {
            ids.set(k, v);
        }
    }
    ids
}

/// Whether Trakt can be told which title `item` is.
pub(crate) fn nameable(item: &Item) -> bool {
    Body::new().push(0, item, &Map::new())
}

impl Body {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Adds the chunk's entry `pos` with per-item fields (`rating`, `watched_at`, ...).
    /// Seasons and episodes go show-scoped (show ids plus numbers) when the show's ids are
    /// known, else by their own ids; movies and shows without ids by title and year.
    /// `false` when the item cannot be named to Trakt at all.
    pub(crate) fn push(&mut self, pos: usize, item: &Item, extras: &Map<String, Value>) -> bool {
        let counted = counted_bucket(item.kind);
        let mut sent = Sent {
            pos,
            bucket: counted,
            counted,
            ids: Ids::new(),
            title: None,
            season: None,
            episode: None,
        };
        let element = match item.kind {
            MediaType::Movie | MediaType::Show => {
                let ids = ids_to_json(&item.ids);
                let mut m = Map::new();
                if ids.is_empty() {
                    let Some(t) = item.title.clone().filter(|t| !t.trim().is_empty()) else {
                        return false;
                    };
                    m.insert("title".into(), json!(t));
                    if let Some(y) = item.year {
                        m.insert("year".into(), json!(y));
                    }
                    sent.title = Some((t, item.year));
                } else {
                    sent.ids = IDS.read(&ids);
                    m.insert("ids".into(), Value::Object(ids));
                }
                with_extras(m, extras)
            }
            MediaType::Season | MediaType::Episode => {
                let show = ids_to_json(&item.show_ids);
                let (s, e) = (item.season, item.episode);
                let scoped = !show.is_empty()
                    && s.is_some()
                    && (item.kind == MediaType::Season || e.is_some());
                if scoped {
                    let leaf = if item.kind == MediaType::Season {
                        let mut m = Map::new();
                        m.insert("number".into(), json!(s));
                        with_extras(m, extras)
                    } else {
                        let mut ep = Map::new();
                        ep.insert("number".into(), json!(e));
                        json!({"number": s, "episodes": [with_extras(ep, extras)]})
                    };
                    sent.bucket = "shows";
                    sent.ids = IDS.read(&show);
                    sent.season = s;
                    sent.episode = e.filter(|_| item.kind == MediaType::Episode);
                    json!({"ids": show, "seasons": [leaf]})
                } else {
                    let own = ids_to_json(&own_ids(item));
                    if own.is_empty() {
                        return false;
                    }
                    sent.ids = IDS.read(&own);
                    let mut m = Map::new();
                    m.insert("ids".into(), Value::Object(own));
                    with_extras(m, extras)
                }
            }
            MediaType::Playlist => return false,
        };
        self.buckets[bucket_index(sent.bucket)].push(element);
        self.sent.push(sent);
        true
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (i, b) in BUCKETS.iter().enumerate() {
            if !self.buckets[i].is_empty() {
                m.insert((*b).to_owned(), Value::Array(self.buckets[i].clone()));
            }
        }
        Value::Object(m)
    }
}

/// Whether a `not_found` element names what was sent: a shared id, or (sent by title)
/// the same title and year.
fn echoes(sent: &Sent, nf: &Echo) -> bool {
    match &nf.ids {
        Some(ids) => {
            let echoed = IDS.read(ids);
            sent.ids
                .iter()
                .any(|(k, v)| echoed.get(k).is_some_and(|x| x.eq_ignore_ascii_case(v)))
        }
        None => match (&sent.title, &nf.title) {
            (Some((t, y)), Some(x)) => x.eq_ignore_ascii_case(t) && nf.year == *y,
            _ => false,
        },
    }
}

/// Whether a show-level `not_found` element covers this show-scoped item: a bare show
/// element covers every item under it, one with `seasons` only the numbers it lists.
fn covers_child(sent: &Sent, nf: &Echo) -> bool {
    let Some(seasons) = &nf.seasons else {
        return true;
    };
    seasons.iter().any(|s| {
        if s.number != sent.season {
            return false;
        }
        match (&s.episodes, sent.episode) {
            (None, _) => true,
            (Some(eps), Some(e)) => eps.iter().any(|x| x.number == Some(e)),
            (Some(_), None) => false,
        }
    })
}

/// Which kind of write an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// `added` (+ `updated`, `existing`).
    Add,
    /// `deleted`.
    Remove,
}

/// The answer for a chunk of `len` entries, of which `body` holds the ones sent.
///
/// Trakt reports counts per type, not per item, so: an element `not_found` echoes is
/// `Unresolved(NotFound)` (matched per bucket and, for show-scoped seasons and episodes,
/// per season and episode number, so one unknown episode does not make its siblings
/// "not found"); for the rest of a type, `added`/`deleted` covering all of them means
/// `Confirmed`, `existing` covering all means `AlreadyPresent`, a mix of the two is
/// `Confirmed` (each item is in the state asked for either way), and counts that fall
/// short leave the type unconfirmed: the service did not say which ones it took.
pub(crate) fn chunk_answer(
    len: usize,
    body: &Body,
    a: &WriteAnswer,
    kind: WriteKind,
) -> ChunkAnswer {
    let mut out = ChunkAnswer::new(len);
    for (j, o) in chunk_outcomes(len, body, a, kind).into_iter().enumerate() {
        if let Some(o) = o {
            out.set(j, o);
        }
    }
    out
}

/// [`chunk_answer`] as plain outcomes by chunk position (`None`: not sent).
pub(crate) fn chunk_outcomes(
    len: usize,
    body: &Body,
    a: &WriteAnswer,
    kind: WriteKind,
) -> Vec<Option<Outcome>> {
    let mut out: Vec<Option<Outcome>> = vec![None; len];
    let mut missing = vec![false; len];
    for s in &body.sent {
        let hit = a
            .not_found
            .bucket(s.bucket)
            .iter()
            .any(|nf| echoes(s, nf) && (s.bucket != "shows" || covers_child(s, nf)));
        if hit {
            missing[s.pos] = true;
            out[s.pos] = Some(Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                detail: Some("Trakt echoed it as not found".into()),
            });
        }
    }
    for bucket in BUCKETS {
        let ok: Vec<usize> = body
            .sent
            .iter()
            .filter(|s| s.counted == bucket && !missing[s.pos])
            .map(|s| s.pos)
            .collect();
        if ok.is_empty() {
            continue;
        }
        let n = ok.len() as u64;
        let count = WriteAnswer::count;
        let outcome = match kind {
            WriteKind::Add => {
                let added = count(&a.added, bucket) + count(&a.updated, bucket);
                let existing = count(&a.existing, bucket);
                if added + existing < n {
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unconfirmed,
                        detail: Some(format!(
                            "Trakt confirmed {} of {n} {bucket}",
                            added + existing
                        )),
                    }
                } else if added == 0 {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::Confirmed
                }
            }
            WriteKind::Remove => {
                if count(&a.deleted, bucket) == 0 {
                    Outcome::AlreadyAbsent
                } else {
                    Outcome::Confirmed
                }
            }
        };
        for pos in ok {
            out[pos] = Some(outcome.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::from_value;

    fn movie(tmdb: &str) -> Item {
        Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, tmdb))
    }

    fn keep<T: std::fmt::Debug>(r: Row<T>) -> T {
        match r {
            Row::Keep(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rows_become_items_and_broken_rows_are_bad() {
        let row = json!({
            "type": "episode", "listed_at": "2024-01-01T00:00:00.000Z",
            "episode": {"season": 1, "number": 2, "title": "Two", "ids": {"trakt": 7, "tvdb": 55, "imdb": null}},
            "show": {"title": "S", "year": 2001, "ids": {"trakt": 1, "tmdb": 9, "slug": "s"}}
        });
        let mut foreign = 0;
        let it = keep(list_row(&row, &mut foreign)).item;
        assert_eq!(it.key(), "tmdb:9#s01e02");
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("55"));
        assert_eq!(it.show_title.as_deref(), Some("S"));
        assert!(matches!(
            list_row(&json!({"type": "person", "person": {}}), &mut foreign),
            Row::Skip
        ));
        assert_eq!(foreign, 1);
        for bad in [
            json!(null),
            json!({"type": "movie"}),
            json!({"type": "movie", "movie": {"ids": {}}}),
            json!({"type": 5}),
            json!({"type": "movie", "movie": {"ids": {"tmdb": 1}, "year": "x"}}),
        ] {
            assert!(matches!(list_row(&bad, &mut foreign), Row::Bad(_)), "{bad}");
        }
        let no_rating = json!({"type": "movie", "movie": {"ids": {"tmdb": 1}}, "rating": 11});
        assert!(matches!(rating_row(&no_rating), Row::Bad(_)));
        let no_time = json!({"type": "movie", "movie": {"ids": {"tmdb": 1}}, "id": 3});
        assert!(matches!(play_row(&no_time), Row::Bad(_)));
    }

    #[test]
    fn bodies_scope_episodes_by_show_and_use_integer_ids() {
        let mut b = Body::new();
        let mut ep = Item::episode("S", Ids::new().with(IdKind::Tvdb, "81189"), 1, 2);
        ep.ids = Ids::new().with(IdKind::Tvdb, "81189"); // inherited: ignored
        let mut x = Map::new();
        x.insert("watched_at".into(), json!("2024-01-01T00:00:00.000Z"));
        assert!(b.push(0, &movie("603"), &Map::new()));
        assert!(b.push(1, &ep, &x));
        assert!(!b.push(2, &Item::new(MediaType::Movie), &Map::new()));
        assert_eq!(
            b.to_json(),
            json!({
                "movies": [{"ids": {"tmdb": 603}}],
                "shows": [{"ids": {"tvdb": 81189}, "seasons": [{"number": 1, "episodes": [{"number": 2, "watched_at": "2024-01-01T00:00:00.000Z"}]}]}]
            })
        );
    }

    fn outcomes(len: usize, b: &Body, a: serde_json::Value, kind: WriteKind) -> Vec<Outcome> {
        let a: WriteAnswer = from_value(a).unwrap();
        let entries: Vec<ferry_core::Entry> = (0..len)
            .map(|n| ferry_core::Entry::watchlist(movie(&n.to_string())))
            .collect();
        let cx = ferry_core::Context::default();
        let mut w = ferry_core::BatchWriter::new(&cx, &entries);
        let chunk = w.next_chunk(len).unwrap().unwrap();
        w.record(&chunk, Ok(chunk_answer(len, b, &a, kind)));
        w.finish().items.into_iter().map(|i| i.outcome).collect()
    }

    #[test]
    fn answers_map_to_per_item_outcomes() {
        let mut b = Body::new();
        b.push(0, &movie("1"), &Map::new());
        b.push(1, &movie("2"), &Map::new());
        let ep = |e| Item::episode("S", Ids::new().with(IdKind::Tvdb, "5"), 1, e);
        b.push(2, &ep(3), &Map::new());
        b.push(3, &ep(4), &Map::new());
        let answer = json!({
            "added": {"movies": 1, "shows": 0, "seasons": 0, "episodes": 1},
            "existing": {"movies": 0, "shows": 0, "seasons": 0, "episodes": 0},
            "not_found": {
                "movies": [{"ids": {"tmdb": 2}}],
                "shows": [{"ids": {"tvdb": 5}, "seasons": [{"number": 1, "episodes": [{"number": 3}]}]}],
                "seasons": [], "episodes": []
            }
        });
        let got = outcomes(4, &b, answer, WriteKind::Add);
        let nf = Outcome::Unresolved {
            reason: UnresolvedReason::NotFound,
            detail: Some("Trakt echoed it as not found".into()),
        };
        assert_eq!(
            got,
            [Outcome::Confirmed, nf.clone(), nf, Outcome::Confirmed]
        );

        let mut b = Body::new();
        b.push(0, &movie("1"), &Map::new());
        b.push(1, &movie("2"), &Map::new());
        let short = json!({"added": {"movies": 1}, "existing": {"movies": 0}, "not_found": {}});
        assert!(
            outcomes(2, &b, short, WriteKind::Add)
                .iter()
                .all(|o| matches!(
                    o,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unconfirmed,
                        ..
                    }
                ))
        );
        let existing = json!({"added": {"movies": 0}, "existing": {"movies": 2}});
        assert!(
            outcomes(2, &b, existing, WriteKind::Add)
                .iter()
                .all(|o| *o == Outcome::AlreadyPresent)
        );
        let gone = json!({"deleted": {"movies": 0}});
        assert!(
            outcomes(2, &b, gone, WriteKind::Remove)
                .iter()
                .all(|o| *o == Outcome::AlreadyAbsent)
        );
    }
}

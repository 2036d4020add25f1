//! Trakt's JSON shapes ↔ ferry's items: rows read from list endpoints, the bodies of
//! sync writes, and the `added`/`existing`/`deleted`/`not_found` answers.

use std::collections::BTreeSet;

use ferry_core::{IdKind, Ids, Item, MediaType, Outcome, Timestamp, UnresolvedReason};
use serde_json::{Map, Value, json};

/// The id kinds Trakt understands, in the order it matches them.
const TRAKT_IDS: [(&str, IdKind); 5] = [
    ("trakt", IdKind::Trakt),
    ("imdb", IdKind::Imdb),
    ("tmdb", IdKind::Tmdb),
    ("tvdb", IdKind::Tvdb),
    ("slug", IdKind::Slug),
];

/// The four body and answer buckets.
pub(crate) const BUCKETS: [&str; 4] = ["movies", "shows", "seasons", "episodes"];

/// ferry ids from a Trakt `ids` object (numbers or strings; `null`s skipped).
pub(crate) fn ids_from_json(v: Option<&Value>) -> Ids {
    let mut ids = Ids::new();
    let Some(obj) = v.and_then(Value::as_object) else {
        return ids;
    };
    for (name, kind) in TRAKT_IDS {
        match obj.get(name) {
            Some(Value::Number(n)) => {
                ids.set(kind, &n.to_string());
            }
            Some(Value::String(s)) => {
                ids.set(kind, s);
            }
            _ => {}
        }
    }
    ids
}

/// A Trakt `ids` object for ferry ids: trakt/tmdb/tvdb as integers, imdb/slug as strings,
/// other kinds left out.
pub(crate) fn ids_to_json(ids: &Ids) -> Map<String, Value> {
    let mut m = Map::new();
    for (name, kind) in TRAKT_IDS {
        let Some(v) = ids.get(kind) else { continue };
        let val = match kind {
            IdKind::Trakt | IdKind::Tmdb | IdKind::Tvdb => match v.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => continue,
            },
            _ => json!(v),
        };
        m.insert(name.to_owned(), val);
    }
    m
}

fn year_of(v: &Value) -> Option<u16> {
    v.get("year")
        .and_then(Value::as_u64)
        .and_then(|y| u16::try_from(y).ok())
}

fn title_of(v: &Value) -> Option<String> {
    v.get("title").and_then(Value::as_str).map(str::to_owned)
}

fn num(v: &Value, k: &str) -> Option<u32> {
    v.get(k)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// The item of a list-shaped row (`{"type": ..., "movie"|"show"|"season"|"episode": ...,
/// "show": ...}`); `None` for types ferry does not hold (people) or broken rows.
pub(crate) fn item_from_row(row: &Value) -> Option<Item> {
    let kind = row.get("type").and_then(Value::as_str)?;
    match kind {
        "movie" | "show" => {
            let m = row.get(kind)?;
            let ids = ids_from_json(m.get("ids"));
            let kind = if kind == "movie" {
                MediaType::Movie
            } else {
                MediaType::Show
            };
            (!ids.is_empty()).then(|| Item {
                title: title_of(m),
                year: year_of(m),
                ids,
                ..Item::new(kind)
            })
        }
        "season" | "episode" => {
            let x = row.get(kind)?;
            let show = row.get("show");
            let show_ids = ids_from_json(show.and_then(|s| s.get("ids")));
            let ids = ids_from_json(x.get("ids"));
            let item = if kind == "season" {
                Item {
                    season: num(x, "number"),
                    ..Item::new(MediaType::Season)
                }
            } else {
                Item {
                    title: title_of(x),
                    season: num(x, "season"),
                    episode: num(x, "number"),
                    ..Item::new(MediaType::Episode)
                }
            };
            let item = Item {
                ids,
                show_ids,
                show_title: show.and_then(title_of),
                ..item
            };
            (!item.ids.is_empty() || !item.show_ids.is_empty()).then_some(item)
        }
        _ => None,
    }
}

/// A timestamp field of a row.
pub(crate) fn time_field(row: &Value, k: &str) -> Option<Timestamp> {
    row.get(k)
        .and_then(Value::as_str)
        .and_then(Timestamp::parse)
}

/// RFC 3339 with milliseconds, as Trakt writes it.
pub(crate) fn trakt_time(t: Timestamp) -> String {
    format!("{}.000Z", t.to_rfc3339().trim_end_matches('Z'))
}

/// How one entry was sent in a sync body, to map the answer back to it.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    /// The entry's position in the caller's slice.
    pub(crate) idx: usize,
    /// The body bucket it went in (`shows` for show-scoped seasons and episodes).
    pub(crate) bucket: &'static str,
    /// The answer bucket it is counted in.
    pub(crate) counted: &'static str,
    /// What `not_found` would echo: the top-level `ids`, or title and year.
    pub(crate) ids: Map<String, Value>,
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

impl Body {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Adds entry `idx` with per-item fields (`rating`, `watched_at`, ...). Seasons and
    /// episodes go show-scoped (show ids plus numbers) when the show's ids are known, else
    /// by their own ids; movies and shows without ids by title and year. `false` when the
    /// item cannot be named to Trakt at all.
    pub(crate) fn push(&mut self, idx: usize, item: &Item, extras: &Map<String, Value>) -> bool {
        let counted = counted_bucket(item.kind);
        let (bucket, element, ids, title, season, episode) = match item.kind {
            MediaType::Movie | MediaType::Show => {
                let ids = ids_to_json(&item.ids);
                let bucket = counted;
                if ids.is_empty() {
                    let Some(t) = item.title.clone().filter(|t| !t.trim().is_empty()) else {
                        return false;
                    };
                    let mut m = Map::new();
                    m.insert("title".into(), json!(t));
                    if let Some(y) = item.year {
                        m.insert("year".into(), json!(y));
                    }
                    (
                        bucket,
                        with_extras(m, extras),
                        Map::new(),
                        Some((t, item.year)),
                        None,
                        None,
                    )
                } else {
                    let mut m = Map::new();
                    m.insert("ids".into(), Value::Object(ids.clone()));
                    (bucket, with_extras(m, extras), ids, None, None, None)
                }
            }
            MediaType::Season | MediaType::Episode => {
                let show = ids_to_json(&item.show_ids);
                let s = item.season;
                let e = item.episode;
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
                    let el = json!({"ids": show.clone(), "seasons": [leaf]});
                    (
                        "shows",
                        el,
                        show,
                        None,
                        s,
                        e.filter(|_| item.kind == MediaType::Episode),
                    )
                } else {
                    let own = ids_to_json(&own_ids(item));
                    if own.is_empty() {
                        return false;
                    }
                    let mut m = Map::new();
                    m.insert("ids".into(), Value::Object(own.clone()));
                    (counted, with_extras(m, extras), own, None, None, None)
                }
            }
            MediaType::Playlist => return false,
        };
        self.buckets[bucket_index(bucket)].push(element);
        self.sent.push(Sent {
            idx,
            bucket,
            counted,
            ids,
            title,
            season,
            episode,
        });
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

fn same_id_value(a: &Value, b: &Value) -> bool {
    let s = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    matches!((s(a), s(b)), (Some(x), Some(y)) if x == y)
}

/// Whether a `not_found` element names what was sent.
fn echoes(sent: &Sent, nf: &Value) -> bool {
    match nf.get("ids").and_then(Value::as_object) {
        Some(ids) => {
            !sent.ids.is_empty()
                && sent
                    .ids
                    .iter()
                    .any(|(k, v)| ids.get(k).is_some_and(|x| same_id_value(v, x)))
        }
        None => match &sent.title {
            Some((t, y)) => {
                nf.get("title")
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.eq_ignore_ascii_case(t))
                    && year_of(nf) == *y
            }
            None => false,
        },
    }
}

/// Whether a show-level `not_found` element covers this show-scoped item: a bare show
/// element covers every item under it, one with `seasons` only the numbers it lists.
fn covers_child(sent: &Sent, nf: &Value) -> bool {
    let Some(seasons) = nf.get("seasons").and_then(Value::as_array) else {
        return true;
    };
    seasons.iter().any(|s| {
        let n = num(s, "number");
        if n != sent.season {
            return false;
        }
        match (s.get("episodes").and_then(Value::as_array), sent.episode) {
            (None, _) => true,
            (Some(eps), Some(e)) => eps.iter().any(|x| num(x, "number") == Some(e)),
            (Some(_), None) => false,
        }
    })
}

/// The positions (`Sent::idx`) that Trakt's `not_found` names.
pub(crate) fn not_found(body: &Body, answer: &Value) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let Some(nf) = answer.get("not_found") else {
        return out;
    };
    for bucket in BUCKETS {
        for el in nf
            .get(bucket)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for s in body.sent.iter().filter(|s| s.bucket == bucket) {
                if echoes(s, el) && (bucket != "shows" || covers_child(s, el)) {
                    out.insert(s.idx);
                }
            }
        }
    }
    out
}

fn count(answer: &Value, group: &str, bucket: &str) -> u64 {
    answer
        .get(group)
        .and_then(|g| g.get(bucket))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Which kind of write an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// `added` (+ `existing` where Trakt reports it).
    Add,
    /// `deleted`.
    Remove,
}

/// Per-entry outcomes from an answer, `(idx, outcome)` for every sent entry.
///
/// Trakt reports counts per type, not per item, so: everything `not_found` names is
/// `Unresolved(NotFound)`; for the rest of a type, `added`/`deleted` covering all of them
/// means `Confirmed`, `existing` covering all means `AlreadyPresent`, a mix of the two is
/// `Confirmed` (each item is on the list either way), and counts that fall short leave the
/// type `Unresolved(Unconfirmed)`: the service did not say which ones it took.
pub(crate) fn outcomes(body: &Body, answer: &Value, kind: WriteKind) -> Vec<(usize, Outcome)> {
    let missing = not_found(body, answer);
    let mut out = Vec::with_capacity(body.sent.len());
    for bucket in BUCKETS {
        let ok: Vec<&Sent> = body
            .sent
            .iter()
            .filter(|s| s.counted == bucket && !missing.contains(&s.idx))
            .collect();
        if ok.is_empty() {
            continue;
        }
        let n = ok.len() as u64;
        let outcome = match kind {
            WriteKind::Add => {
                let added = count(answer, "added", bucket) + count(answer, "updated", bucket);
                let existing = count(answer, "existing", bucket);
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
                if count(answer, "deleted", bucket) == 0 {
                    Outcome::AlreadyAbsent
                } else {
                    Outcome::Confirmed
                }
            }
        };
        out.extend(ok.iter().map(|s| (s.idx, outcome.clone())));
    }
    for idx in missing {
        out.push((idx, Outcome::unresolved(UnresolvedReason::NotFound)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movie(tmdb: &str) -> Item {
        Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, tmdb))
    }

    #[test]
    fn rows_become_items() {
        let row = json!({
            "type": "episode",
            "episode": {"season": 1, "number": 2, "title": "Two", "ids": {"trakt": 7, "tvdb": 55, "imdb": null}},
            "show": {"title": "S", "year": 2001, "ids": {"trakt": 1, "tmdb": 9, "slug": "s"}}
        });
        let it = item_from_row(&row).unwrap();
        assert_eq!(it.key(), "tmdb:9#s01e02");
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("55"));
        assert_eq!(it.show_title.as_deref(), Some("S"));
        assert!(item_from_row(&json!({"type": "person", "person": {}})).is_none());
        assert!(item_from_row(&json!({"type": "movie"})).is_none());
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

    #[test]
    fn answers_map_to_per_item_outcomes() {
        let mut b = Body::new();
        b.push(0, &movie("1"), &Map::new());
        b.push(1, &movie("2"), &Map::new());
        let ep = Item::episode("S", Ids::new().with(IdKind::Tvdb, "5"), 1, 3);
        b.push(2, &ep, &Map::new());
        let answer = json!({
            "added": {"movies": 1, "shows": 0, "seasons": 0, "episodes": 0},
            "existing": {"movies": 0, "shows": 0, "seasons": 0, "episodes": 0},
            "not_found": {
                "movies": [{"ids": {"tmdb": 2}}],
                "shows": [{"ids": {"tvdb": 5}, "seasons": [{"number": 1, "episodes": [{"number": 3}]}]}],
                "seasons": [], "episodes": []
            }
        });
        let mut got = outcomes(&b, &answer, WriteKind::Add);
        got.sort_by_key(|(i, _)| *i);
        assert_eq!(got[0], (0, Outcome::Confirmed));
        assert_eq!(got[1], (1, Outcome::unresolved(UnresolvedReason::NotFound)));
        assert_eq!(got[2], (2, Outcome::unresolved(UnresolvedReason::NotFound)));

        let short = json!({"added": {"movies": 1}, "existing": {"movies": 0}, "not_found": {}});
        let mut b = Body::new();
        b.push(0, &movie("1"), &Map::new());
        b.push(1, &movie("2"), &Map::new());
        let got = outcomes(&b, &short, WriteKind::Add);
        assert!(got.iter().all(|(_, o)| matches!(
            o,
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                ..
            }
        )));
        let existing = json!({"added": {"movies": 0}, "existing": {"movies": 2}});
        assert!(
            outcomes(&b, &existing, WriteKind::Add)
                .iter()
                .all(|(_, o)| *o == Outcome::AlreadyPresent)
        );
        let gone = json!({"deleted": {"movies": 0}});
        assert!(
            outcomes(&b, &gone, WriteKind::Remove)
                .iter()
                .all(|(_, o)| *o == Outcome::AlreadyAbsent)
        );
    }
}

//! Reads: full reads per feature, `date_from` deltas, and the library view writes plan on.

use std::collections::HashMap;

use ferry_core::identity::{AliasIndex, TitleIndex, split_event_key};
use ferry_core::{
    Context, Counting, Entry, Feature, HISTORY_TOLERANCE_SECS, Item, MediaType, Payload, Proof,
    Reader, Result, Snapshot, Timestamp,
};

use crate::api::Api;
use crate::convert::{Bucket, PLAN_TO_WATCH, Row, decode_row, show_of};
use crate::model::{ActivitiesRow, Block};

/// Every rating value, so `/sync/ratings/{type}/{ratings}` returns every rated title.
const ALL_RATINGS: &str = "1,2,3,4,5,6,7,8,9,10";

/// Which SIMKL read backs a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `GET /sync/all-items/{type}/plantowatch`: the watchlist.
    PlanToWatch,
    /// `GET /sync/all-items/{type}`: every bucket, with episode watch times.
    Library,
    /// `GET /sync/ratings/{type}/1,…,10`: rated titles.
    Ratings,
}

impl Source {
    /// Names the read in reasons and events.
    fn what(self) -> &'static str {
        match self {
            Source::PlanToWatch => "plantowatch",
            Source::Library => "library",
            Source::Ratings => "ratings",
        }
    }

    pub(crate) fn for_feature(f: Feature) -> Source {
        match f {
            Feature::Watchlist => Source::PlanToWatch,
            Feature::Ratings => Source::Ratings,
            _ => Source::Library,
        }
    }
}

/// Rows of one read, and how complete it is: each catalog's document read whole, every
/// row decoded.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) rows: Vec<Row>,
    pub(crate) proof: Proof,
    /// Rows each catalog's document held (decodable or not), in [`Bucket::ALL`] order.
    pub(crate) counts: Vec<(Bucket, u64)>,
}

impl Fetched {
    pub(crate) fn complete(&self) -> bool {
        self.proof.is_complete()
    }

    fn reason(&self) -> String {
        self.proof.reason().unwrap_or_default()
    }
}

/// Reads one source over the three catalogs, optionally as a delta since `date_from`.
pub(crate) async fn fetch(
    api: &Api,
    cx: &Context,
    source: Source,
    date_from: Option<&str>,
) -> Result<Fetched> {
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    let mut proof: Option<Proof> = None;
    for b in Bucket::ALL {
        cx.check_cancelled()?;
        let t = b.as_str();
        let mut query: Vec<(&str, String)> = Vec::new();
        let (op, path) = match source {
            Source::PlanToWatch => {
                query.push(("extended", "full".into()));
                (
                    format!("GET /sync/all-items/{t}/plantowatch"),
                    format!("/sync/all-items/{t}/plantowatch"),
                )
            }
            Source::Library => {
                // `extended=full` turns on `seasons[]`; `include_all_episodes=yes` keeps it
                // on completed (and dropped) shows, which otherwise come back with a
                // watched count and no episodes; `episode_watched_at=yes` dates each
                // episode. Anime keeps `full` (not `full_anime_seasons`): ferry writes
                // SIMKL's own episode numbers, so it reads them back the same way.
                query.push(("extended", "full".into()));
                query.push(("episode_watched_at", "yes".into()));
                query.push(("include_all_episodes", "yes".into()));
                (
                    format!("GET /sync/all-items/{t}"),
                    format!("/sync/all-items/{t}"),
                )
            }
            Source::Ratings => (
                format!("GET /sync/ratings/{t}"),
                format!("/sync/ratings/{t}/{ALL_RATINGS}"),
            ),
        };
        if let Some(d) = date_from {
            query.push(("date_from", d.to_owned()));
        }
        let list = format!("{} {t}", source.what());
        let mut reader = Reader::new(list.clone());
        reader.rows(api.rows(cx, &op, &path, &query, b).await?, &mut |v| {
            decode_row(b, v)
        });
        counts.push((b, reader.accounted()));
        let (got, p) = reader.finish_whole().into_parts();
        p.report_undecodable(&cx.emitter, &list);
        rows.extend(got);
        proof = Some(match proof {
            Some(all) => all.and(&p),
            None => p,
        });
    }
    let proof = proof.unwrap_or_else(|| Reader::<()>::new("library").finish_whole().into_parts().1);
    Ok(Fetched {
        rows,
        proof,
        counts,
    })
}

/// Each catalog of a full read as the [`Tally`] judges it: its rows, and the
/// `/sync/activities` stamps that a removal from that list moves (`None` when the
/// activities could not be read or hold none for the catalog).
pub(crate) fn counting(
    fetched: &Fetched,
    source: Source,
    act: Option<&ActivitiesRow>,
) -> Vec<Counting> {
    fetched
        .counts
        .iter()
        .map(|(b, rows)| Counting {
            list: format!("{}/{}", source.what(), b.as_str()),
            rows: *rows,
            stamp: act.and_then(|a| removal_stamps(a, *b, source)),
        })
        .collect()
}

/// The stamps of one catalog that move when a title leaves the list `source` reads
/// (SIMKL's activities reference):
/// - Plan to Watch: a title leaves it by moving to another status list, which moves that
///   list's stamp (`completed`, `watching`, ...), or by leaving the library
///   (`removed_from_list`). Not `plantowatch` itself: an *add* moves it, and a list that
///   gained a title cannot also prove one gone.
/// - ratings: `rated_at` (an add moves it too: SIMKL has no stamp for removed ratings
///   alone) and `removed_from_list`;
/// - the library: `removed_from_list`.
fn removal_stamps(act: &ActivitiesRow, b: Bucket, source: Source) -> Option<String> {
    let Some(Block::Stamps(m)) = act.blocks.get(b.activities_block()) else {
        return None;
    };
    // Sorted: the stamp is compared as text with the one the last read recorded.
    let mut fields: Vec<&str> = match source {
        Source::PlanToWatch => (m.keys().map(String::as_str))
            .filter(|f| !matches!(*f, "all" | "rated_at" | "playback" | PLAN_TO_WATCH))
            .collect(),
        Source::Ratings => vec!["rated_at", "removed_from_list"],
        Source::Library => vec!["removed_from_list"],
    };
    fields.sort_unstable();
    let set: Vec<String> = fields
        .iter()
        .filter_map(|f| Some(format!("{f}={}", m.get(*f)?.as_deref()?)))
        .collect();
    (!set.is_empty()).then(|| set.join(" "))
}

/// The snapshot of `feature` a read yields.
pub(crate) fn snapshot(feature: Feature, source: Source, fetched: &Fetched) -> Snapshot {
    let mut entries = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut unrated = 0usize;
    let mut unlisted: Vec<&Row> = Vec::new();
    for r in &fetched.rows {
        match feature {
            Feature::Watchlist => {
                if r.status.as_deref().is_none_or(|s| s == PLAN_TO_WATCH) {
                    entries.push(Entry::new(
                        r.item.clone(),
                        Payload::Watchlist {
                            listed_at: r.added_at,
                        },
                    ));
                }
            }
            Feature::Ratings => match r.rating {
                Some(rating) => entries.push(Entry::rating(r.item.clone(), rating, r.rated_at)),
                // The ratings read only returns rated titles; a row without a rating there
                // is a row we did not understand.
                None if source == Source::Ratings => unrated += 1,
                None => {}
            },
            _ => {
                if r.is_movie() {
                    // A movie filed as completed without a date (a rating files it so) has
                    // no play ferry can key; it is not a deletion either.
                    if let Some(t) = r.last_watched_at {
                        entries.push(Entry::watch(r.item.clone(), t));
                    }
                } else {
                    if r.episodes_missing() {
                        unlisted.push(r);
                    }
                    for (ep, t) in r.episode_plays() {
                        entries.push(Entry::watch(ep, t));
                    }
                }
            }
        }
    }
    if let Some(first) = unlisted.first() {
        problems.push(unlisted_reason(unlisted.len(), first));
    }
    if unrated > 0 {
        problems.push(format!(
            "{unrated} rows of the ratings read carry no rating"
        ));
    }
    let mut proof = fetched.proof.clone();
    for p in problems {
        proof.mark_partial(p);
    }
    proof.snapshot(feature, entries)
}

/// Why a read is partial when `n` show rows (the first being `first`) say episodes were
/// watched but list none: their plays are unknown, not absent.
pub(crate) fn unlisted_reason(n: usize, first: &Row) -> String {
    format!(
        "{n} shows report watched episodes but list none (first: {}); their plays are unknown",
        first.item.title.clone().unwrap_or_else(|| first.item.key())
    )
}

/// Whether a snapshot read from `fetched` is complete.
pub(crate) fn is_complete(s: &Snapshot) -> bool {
    s.is_complete()
}

/// The library: every row, findable by any of its ids.
#[derive(Debug)]
pub(crate) struct Library {
    pub(crate) fetched: Fetched,
    index: AliasIndex,
    by_key: HashMap<String, usize>,
    /// Titles written since the read: their rows may be out of date.
    touched: TitleIndex<()>,
}

impl Library {
    pub(crate) fn new(fetched: Fetched) -> Self {
        let mut by_key = HashMap::new();
        let mut index = AliasIndex::with_capacity(fetched.rows.len());
        for (i, r) in fetched.rows.iter().enumerate() {
            let key = r.item.key();
            index.insert(&key, &r.item);
            by_key.entry(key).or_insert(i);
        }
        Library {
            fetched,
            index,
            by_key,
            touched: TitleIndex::new(),
        }
    }

    pub(crate) fn complete(&self) -> bool {
        self.fetched.complete()
    }

    pub(crate) fn reason(&self) -> String {
        self.fetched.reason()
    }

    /// Notes a title (an episode's show) written since the read.
    pub(crate) fn touch(&mut self, item: &Item) {
        self.touched.insert(item, ());
        if item.kind == MediaType::Episode {
            self.touched.insert(&show_of(item), ());
        }
    }

    /// Whether a write since the read touched this title (or the episode's show).
    pub(crate) fn touched(&self, item: &Item) -> bool {
        self.touched.contains(item)
            || (item.kind == MediaType::Episode && self.touched.contains(&show_of(item)))
    }

    /// The row of this movie or show.
    pub(crate) fn find(&self, item: &Item) -> Option<&Row> {
        let k = self.index.find(&item.key(), item)?;
        self.by_key.get(k).map(|i| &self.fetched.rows[*i])
    }
}

/// The plays of a history snapshot, findable by title with the time tolerance.
#[derive(Debug)]
pub(crate) struct Plays {
    index: AliasIndex,
    times: HashMap<String, Vec<Timestamp>>,
}

impl Plays {
    pub(crate) fn new(snap: &Snapshot) -> Self {
        let mut index = AliasIndex::new();
        let mut times: HashMap<String, Vec<Timestamp>> = HashMap::new();
        for (k, e) in snap.iter() {
            let base = split_event_key(k).map_or(k, |(b, _)| b).to_owned();
            if let Payload::Watch { watched_at } = e.payload {
                if !times.contains_key(&base) {
                    index.insert(&base, &e.item);
                }
                times.entry(base).or_default().push(watched_at);
            }
        }
        Plays { index, times }
    }

    /// Whether the title has a play within the tolerance of `at`.
    pub(crate) fn has(&self, item: &Item, at: Timestamp) -> bool {
        self.index
            .find(&item.key(), item)
            .and_then(|k| self.times.get(k))
            .is_some_and(|ts| ts.iter().any(|t| t.abs_diff(at) <= HISTORY_TOLERANCE_SECS))
    }
}

/// Whether `a` and `b` are the same play.
pub(crate) fn same_play(a: Timestamp, b: Timestamp) -> bool {
    a.abs_diff(b) <= HISTORY_TOLERANCE_SECS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Bucket;
    use serde_json::json;

    fn history_of(rows: &[serde_json::Value]) -> Snapshot {
        let mut reader = Reader::new("library");
        reader.rows(rows.to_vec(), &mut |v| decode_row(Bucket::Shows, v));
        let (rows, proof) = reader.finish_whole().into_parts();
        let fetched = Fetched {
            rows,
            proof,
            counts: Vec::new(),
        };
        snapshot(Feature::History, Source::Library, &fetched)
    }

    #[test]
    fn a_show_that_counts_watched_episodes_but_lists_none_makes_history_partial() {
        let listed = json!({"status": "watching", "watched_episodes_count": 1,
            "show": {"title": "Listed", "ids": {"simkl": 1}},
            "seasons": [{"number": 1, "episodes": [{"number": 1, "watched_at": "2025-01-01T00:00:00Z"}]}]});
        let unlisted = json!({"status": "completed", "watched_episodes_count": 10,
            "show": {"title": "Finished", "ids": {"simkl": 2}}});
        let snap = history_of(&[listed.clone(), unlisted]);
        assert_eq!(snap.len(), 1);
        match snap.completeness() {
            ferry_core::Completeness::Partial { reason } => {
                assert!(reason.contains("Finished"), "{reason}")
            }
            c => panic!("{c:?}"),
        }
        // No count, or a count of zero: nothing is missing.
        let planned = json!({"status": "plantowatch", "watched_episodes_count": 0,
            "show": {"title": "Later", "ids": {"simkl": 3}}});
        let bare = json!({"status": "watching", "show": {"title": "Bare", "ids": {"simkl": 4}}});
        assert!(history_of(&[listed, planned, bare]).is_complete());
    }
}

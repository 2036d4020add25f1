//! Writes through the kit's [`BatchWriter`]: chunks of [`BATCH_SIZE`] entries, one outcome
//! per entry in order, the kit's one error policy.
//!
//! MDBList answers a write with counts (`added`, `existing`, `deleted`, …) and echoes
//! what it did not find. When the counts account for every entry of a chunk, each is
//! confirmed (echoed titles are `not_found`, echoed play ids already gone); otherwise, or
//! when the answer does not decode, the chunk is only accepted and one re-read after the
//! call decides. Writes plan against the feature's last read ([`View`]) and update it
//! with what they confirmed, so a first sync costs one list read plus the writes.
//!
//! History is a list of plays, not a set: a play posted twice is two plays. So a play
//! missing from an incomplete read may well be there, and is never posted; a removal
//! deletes exactly the play it names (by its `play_id`), never the title's other plays.

use std::collections::BTreeMap;

use ferry_core::identity::{TitleIndex, nearest_play};
use ferry_core::lists::SyncBody;
use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, Feature, MediaType, Outcome, Payload, Result,
    Timestamp, WriteReport,
};
use serde_json::{Value, json};

use crate::config::BATCH_SIZE;
use crate::convert::{echoed_ids, flat_ids, sync_ids};
use crate::model::WriteAnswer;
use crate::read::{Held, View};
use crate::{MdblistProvider, PLAYS, TITLES};

/// Makes a request from a chunk's entries and the parts they send.
type Request = fn(&[(&Entry, &Value)]) -> Value;

/// One write call: where it goes, its entries with the body part each sends (`None`:
/// settled without sending), and how the request is made from a chunk's parts.
struct Job<'a> {
    path: &'static str,
    add: bool,
    w: BatchWriter<'a>,
    parts: Vec<Option<Value>>,
    request: Request,
}

/// What a chunk's answer proves (`None`: it did not decode, a re-read decides).
fn answer(chunk: &[(&Entry, &Value)], a: Option<WriteAnswer>, add: bool) -> ChunkAnswer {
    let Some(a) = a else {
        return ChunkAnswer::accepted(chunk.len());
    };
    let gone: Vec<&Value> = a.not_found.get("play_ids").into_iter().flatten().collect();
    let done = a.done(add).max(a.plays.len() as u64) + gone.len() as u64;
    let echoed: Vec<_> = a
        .not_found_rows()
        .map(echoed_ids)
        .filter(|i| !i.is_empty())
        .collect();
    let entries: Vec<&Entry> = chunk.iter().map(|(e, _)| *e).collect();
    let mut out = ChunkAnswer::counted(&entries, done, &echoed);
    for (j, (_, part)) in chunk.iter().enumerate() {
        if gone.contains(part) {
            out.set(j, Outcome::AlreadyAbsent);
        }
    }
    out
}

impl MdblistProvider {
    /// Sends `job`'s chunks, then settles the call: a re-read decides what the answers
    /// left open (`held(view, entry)`: the re-read shows it as written; a partial one
    /// never confirms a removal); otherwise the view takes what was confirmed (`apply`).
    async fn run(
        &self,
        cx: &Context,
        feature: Feature,
        mut job: Job<'_>,
        (at, mut view): (std::time::Instant, View),
        held: impl Fn(&View, &Entry) -> bool,
        apply: impl Fn(&mut View, &Entry),
    ) -> Result<WriteReport> {
        let (add, entries) = (job.add, job.w.entries());
        while let Some(chunk) = job.w.next_chunk(BATCH_SIZE)? {
            let parts: Vec<(&Entry, &Value)> = (chunk.iter())
                .filter_map(|i| Some((&entries[*i], job.parts[*i].as_ref()?)))
                .collect();
            let got = self.api.write(cx, job.path, &(job.request)(&parts)).await;
            job.w.record(&chunk, got.map(|a| answer(&parts, a, add)));
        }
        let cache = self.views.of(feature);
        if job.w.awaits_confirmation() {
            // A re-read that fails confirms nothing: those entries stay unconfirmed.
            if let Ok((at, view)) = self.view(cx, feature, true).await {
                let whole = view.partial.is_empty();
                job.w.confirm(add, |e| held(&view, e) || (!add && !whole));
                cache.put_back(at, view);
            }
            return Ok(job.w.finish());
        }
        let report = job.w.finish();
        for (e, r) in entries.iter().zip(&report.items) {
            if r.outcome == Outcome::Confirmed {
                apply(&mut view, e);
            }
        }
        cache.put_back(at, view);
        Ok(report)
    }

    /// Watchlist and ratings: add or remove titles.
    pub(crate) async fn title_write(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let path = match (feature, add) {
            (Feature::Watchlist, true) => "/watchlist/items/add",
            (Feature::Watchlist, false) => "/watchlist/items/remove",
            (_, true) => "/sync/ratings",
            (_, false) => "/sync/ratings/remove",
        };
        let (at, view) = self.view(cx, feature, false).await?;
        let mut w = BatchWriter::new(cx, entries);
        let mut parts = vec![None; entries.len()];
        let mut queued = TitleIndex::new();
        for (i, e) in entries.iter().enumerate() {
            match plan_title(e, feature, &view, add) {
                Err(o) => w.settle(i, o),
                Ok(_) if queued.contains(&e.item) => w.settle(i, Outcome::already(add)),
                Ok(b) => {
                    queued.insert(&e.item, ());
                    parts[i] = Some(b);
                }
            }
        }
        let request: Request = |parts| {
            let mut m: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
            for (e, part) in parts {
                let movie = e.item.kind == MediaType::Movie;
                m.entry(if movie { "movies" } else { "shows" })
                    .or_default()
                    .push(part);
            }
            json!(m)
        };
        let job = Job {
            path,
            add,
            w,
            parts,
            request,
        };
        let held = |v: &View, e: &Entry| match (v.held.get(&e.item), &e.payload) {
            (Some(h), Payload::Rating { rating, .. }) => {
                h.rating.is_some_and(|r| !add || r == *rating)
            }
            (held, _) => held.is_some(),
        };
        let apply = |v: &mut View, e: &Entry| match (&e.payload, add) {
            (Payload::Rating { rating, .. }, true) => {
                v.held.get_or_insert_with(&e.item, Held::default).rating = Some(*rating)
            }
            (_, true) => drop(v.held.get_or_insert_with(&e.item, Held::default)),
            (_, false) => drop(v.held.remove(&e.item)),
        };
        self.run(cx, feature, job, (at, view), held, apply).await
    }

    /// History: post plays not yet there, or remove exactly the plays named.
    pub(crate) async fn history_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let f = Feature::History;
        let (mut at, mut view) = self.view(cx, f, false).await?;
        // A play ferry wrote since the last read has no play id yet: read again.
        if !add
            && entries
                .iter()
                .any(|e| matches!(held_play(&view, e), Some((_, None))))
        {
            (at, view) = self.view(cx, f, true).await?;
        }
        let mut w = BatchWriter::new(cx, entries);
        let mut parts = vec![None; entries.len()];
        // Plays queued in this call, per title (two entries may name one play).
        let mut queued: TitleIndex<Vec<(Timestamp, ())>> = TitleIndex::new();
        for (i, e) in entries.iter().enumerate() {
            let planned = match plan_play(e, &view, add) {
                Err(o) => Err(o),
                Ok((at, part)) => {
                    let plays = queued.get_or_insert_with(&e.item, Vec::new);
                    let twice = nearest_play(plays, at).is_some();
                    plays.push((at, ()));
                    if twice {
                        Err(Outcome::already(add))
                    } else {
                        Ok(part)
                    }
                }
            };
            match planned {
                Ok(part) => parts[i] = Some(part),
                Err(o) => w.settle(i, o),
            }
        }
        let (path, request): (_, Request) = if add {
            ("/sync/watched", |parts| {
                play_body(parts.iter().map(|(e, _)| *e))
            })
        } else {
            (
                "/sync/watched/plays/remove",
                |parts| json!({"play_ids": parts.iter().map(|(_, id)| *id).collect::<Vec<_>>()}),
            )
        };
        let job = Job {
            path,
            add,
            w,
            parts,
            request,
        };
        let apply = |v: &mut View, e: &Entry| {
            let Payload::Watch { watched_at } = e.payload else {
                return;
            };
            let plays = &mut v.held.get_or_insert_with(&e.item, Held::default).plays;
            match nearest_play(plays, watched_at) {
                Some(k) if !add => drop(plays.remove(k)),
                _ if add => plays.push((watched_at, None)),
                _ => {}
            }
        };
        let held = |v: &View, e: &Entry| held_play(v, e).is_some();
        self.run(cx, f, job, (at, view), held, apply).await
    }
}

/// The play `e` names in `view`: when, and its id if known.
fn held_play(view: &View, e: &Entry) -> Option<(Timestamp, Option<u64>)> {
    let Payload::Watch { watched_at } = e.payload else {
        return None;
    };
    let plays = &view.held.get(&e.item)?.plays;
    nearest_play(plays, watched_at).map(|k| plays[k])
}

/// A play to write: when it was watched and what it sends (nothing for an add, which
/// sends the entry; the play id for a removal), or the outcome it settles with unsent.
fn plan_play(e: &Entry, view: &View, add: bool) -> Result<(Timestamp, Value), Outcome> {
    let Payload::Watch { watched_at } = e.payload else {
        return Err(Outcome::unsupported("not a play"));
    };
    match (held_play(view, e), add) {
        (Some(_), true) => return Err(Outcome::AlreadyPresent),
        (Some((_, Some(id))), false) => return Ok((watched_at, json!(id))),
        // Not held, or its play id unknown: after a partial read it may be there, so
        // nothing is posted (a duplicate) or removed (which play?).
        _ if !view.partial.is_empty() => return Err(Outcome::unmatched(&view.partial, add, "")),
        (_, false) => return Err(Outcome::AlreadyAbsent),
        (None, true) => {}
    }
    if !PLAYS.contains(&e.item.kind) {
        let why = "ferry writes movie and episode plays to MDBList, not a";
        return Err(Outcome::unsupported(format!("{why} {}", e.item.kind)));
    }
    let movie = e.item.kind == MediaType::Movie;
    if !movie && (e.item.season.is_none() || e.item.episode.is_none()) {
        return Err(Outcome::unsupported("an episode without season and number"));
    }
    match sync_ids(if movie { &e.item.ids } else { &e.item.show_ids }) {
        Some(_) => Ok((watched_at, Value::Null)),
        None => Err(Outcome::unsupported("no id MDBList resolves")),
    }
}

/// `POST /sync/watched`: movies with their `ids`, episodes under their show by season.
fn play_body<'a>(entries: impl Iterator<Item = &'a Entry>) -> Value {
    let mut body = SyncBody::default();
    for e in entries {
        let Payload::Watch { watched_at } = e.payload else {
            continue;
        };
        let (item, at) = (&e.item, watched_at.to_rfc3339());
        if item.kind == MediaType::Movie {
            if let Some(ids) = sync_ids(&item.ids) {
                body.title("movies", json!({"ids": ids, "watched_at": at}));
            }
        } else if let (Some(ids), Some(s), Some(n)) =
            (sync_ids(&item.show_ids), item.season, item.episode)
        {
            let episode = json!({"number": n, "watched_at": at});
            body.episode(&ids.to_string(), &json!({"ids": ids}), s, episode);
        }
    }
    body.finish()
}

/// An entry's write body, or the outcome it settles with unsent.
fn plan_title(e: &Entry, feature: Feature, view: &View, add: bool) -> Result<Value, Outcome> {
    if !TITLES.contains(&e.item.kind) || e.feature() != feature {
        let why = format!("MDBList's {feature} holds movies and shows, not this");
        return Err(Outcome::unsupported(format!("{why} {}", e.item.kind)));
    }
    let held = view.held.get(&e.item);
    // A title missing from a partial read may still be there: remove it anyway (a
    // removal of an absent title changes nothing) and let the answer decide.
    if !add && held.is_none() && view.partial.is_empty() {
        return Err(Outcome::AlreadyAbsent);
    }
    let Payload::Rating { rating, rated_at } = &e.payload else {
        if add && held.is_some() {
            return Err(Outcome::AlreadyPresent);
        }
        let why = "MDBList's watchlist needs an IMDb or TMDB id";
        return flat_ids(&e.item).ok_or_else(|| Outcome::unsupported(why));
    };
    if add && held.is_some_and(|h| h.rating == Some(*rating)) {
        return Err(Outcome::AlreadyPresent);
    }
    let ids =
        sync_ids(&e.item.ids).ok_or_else(|| Outcome::unsupported("no id MDBList resolves"))?;
    Ok(match (add, rated_at) {
        (false, _) => json!({"ids": ids}),
        (true, None) => json!({"ids": ids, "rating": rating.get()}),
        (true, Some(t)) => json!({"ids": ids, "rating": rating.get(), "rated_at": t.to_rfc3339()}),
    })
}

//! Writes through the kit's [`BatchWriter`]: chunks of [`BATCH_SIZE`] entries, one outcome
//! per entry in order, the kit's one error policy.
//!
//! MDBList answers a write with counts (`added`, `existing`, `deleted`, …) and echoes
//! what it did not find. When the counts account for every entry of a chunk, each is
//! confirmed (those echoed are `not_found`); otherwise, or when the answer does not
//! decode, the chunk is only accepted and one re-read after the call decides. Writes
//! plan against the feature's last read ([`View`]) and update it with what they
//! confirmed, so a first sync costs one list read plus the writes.
//!
//! History is a list of plays, not a set: a play posted twice is two plays. So a play
//! missing from an incomplete read may well be there, and is never posted; a removal
//! deletes exactly the play it names (by its `play_id`), never the title's other plays.

use std::collections::BTreeMap;
use std::time::Instant;

use ferry_core::identity::{TitleIndex, nearest_play};
use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, Feature, MediaType, Outcome, Payload, Result,
    Timestamp, UnresolvedReason, WriteReport,
};
use serde_json::{Value, json};

use crate::config::BATCH_SIZE;
use crate::convert::{echoed_ids, flat_ids, sync_ids};
use crate::model::WriteAnswer;
use crate::read::{Held, Plays, Titles, View};
use crate::{MdblistProvider, PLAYS, TITLES};

fn unsupported(detail: impl Into<String>) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(detail.into()),
    }
}

/// A chunk's answer from the counts and the `not_found` echoes, and whether some entry
/// is left for a re-read (`None`: the answer did not decode).
fn counted(chunk: &[&Entry], a: Option<&WriteAnswer>, done: u64) -> (ChunkAnswer, bool) {
    let n = chunk.len();
    let Some(a) = a else {
        return (ChunkAnswer::accepted(n), true);
    };
    let echoed: Vec<_> = a.not_found_rows().map(echoed_ids).collect();
    let whole = echoed.is_empty() && done == n as u64;
    let mut out = if whole {
        ChunkAnswer::all(n, Outcome::Confirmed)
    } else {
        ChunkAnswer::accepted(n)
    };
    out.not_found(chunk, &echoed);
    (out, !whole)
}

/// A play removal's answer: play ids echoed as not found were already gone; the rest are
/// confirmed when the count of removed plays accounts for them.
fn plays_removed(ids: &[u64], a: Option<&WriteAnswer>) -> (ChunkAnswer, bool) {
    let n = ids.len();
    let Some(a) = a else {
        return (ChunkAnswer::accepted(n), true);
    };
    let gone = a.not_found.get("play_ids");
    let gone: Vec<u64> = gone
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let whole = a.done(false) + gone.len() as u64 == n as u64;
    let mut out = if whole {
        ChunkAnswer::all(n, Outcome::Confirmed)
    } else {
        ChunkAnswer::accepted(n)
    };
    for (j, id) in ids.iter().enumerate() {
        if gone.contains(id) {
            out.set(j, Outcome::AlreadyAbsent);
        }
    }
    (out, !whole)
}

impl MdblistProvider {
    /// Sends every chunk: `body` makes a chunk's request, `answer` reads its answer.
    /// Whether some entry was only accepted.
    async fn send(
        &self,
        cx: &Context,
        w: &mut BatchWriter<'_>,
        path: &str,
        body: impl Fn(&[usize]) -> Value,
        answer: impl Fn(&[usize], Option<&WriteAnswer>) -> (ChunkAnswer, bool),
    ) -> Result<bool> {
        let mut open = false;
        while let Some(chunk) = w.next_chunk(BATCH_SIZE)? {
            let got = self.api.write(cx, path, &body(&chunk)).await;
            let got = got.map(|a| {
                let (answer, left) = answer(&chunk, a.as_ref());
                open |= left;
                answer
            });
            w.record(&chunk, got);
        }
        Ok(open)
    }

    /// Settles the call: a re-read decides what the answers left open (`held(view,
    /// entry)`: the re-read shows it as written; a partial one never confirms a removal);
    /// otherwise the view takes what was confirmed (`apply`).
    async fn settle<V: Held>(
        &self,
        cx: &Context,
        feature: Feature,
        (mut w, open, add): (BatchWriter<'_>, bool, bool),
        (at, mut view): (Instant, View<V>),
        held: impl Fn(&View<V>, &Entry) -> bool,
        apply: impl Fn(&mut View<V>, &Entry),
    ) -> Result<WriteReport> {
        let cache = V::cache(&self.views, feature);
        if open {
            let (at, view) = self.view::<V>(cx, feature, true).await?;
            let whole = view.partial.is_empty();
            w.confirm(add, |e| held(&view, e) || (!add && !whole));
            cache.put_back(at, view);
            return Ok(w.finish());
        }
        let entries = w.entries();
        let report = w.finish();
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
        let (at, view) = self.view::<Option<_>>(cx, feature, false).await?;
        let mut w = BatchWriter::new(cx, entries);
        let mut bodies: Vec<Option<Value>> = vec![None; entries.len()];
        let mut queued = TitleIndex::new();
        for (i, e) in entries.iter().enumerate() {
            match plan_title(e, feature, &view, add) {
                Err(o) => w.settle(i, o),
                Ok(_) if queued.contains(&e.item) => w.settle(i, already(add)),
                Ok(b) => {
                    queued.insert(&e.item, ());
                    bodies[i] = Some(b);
                }
            }
        }
        let body = |chunk: &[usize]| {
            let mut m: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
            for (&i, b) in chunk.iter().filter_map(|i| Some((i, bodies[*i].clone()?))) {
                let list = if entries[i].item.kind == MediaType::Movie {
                    "movies"
                } else {
                    "shows"
                };
                m.entry(list).or_default().push(b);
            }
            json!(m)
        };
        let answer = |chunk: &[usize], a: Option<&WriteAnswer>| {
            let chunk: Vec<&Entry> = chunk.iter().map(|i| &entries[*i]).collect();
            counted(&chunk, a, a.map_or(0, |a| a.done(add)))
        };
        let open = self.send(cx, &mut w, path, body, answer).await?;
        let held = |v: &Titles, e: &Entry| match (v.held.get(&e.item), &e.payload) {
            (Some(Some(r)), Payload::Rating { rating, .. }) => !add || r == rating,
            (held, _) => held.is_some(),
        };
        let apply = |v: &mut Titles, e: &Entry| match (&e.payload, add) {
            (Payload::Rating { rating, .. }, true) => v.held.insert(&e.item, Some(*rating)),
            (_, true) => v.held.insert(&e.item, None),
            (_, false) => drop(v.held.remove(&e.item)),
        };
        self.settle(cx, feature, (w, open, add), (at, view), held, apply)
            .await
    }

    /// History: post plays not yet there.
    pub(crate) async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let (at, view) = self.view::<Vec<_>>(cx, Feature::History, false).await?;
        let mut w = BatchWriter::new(cx, entries);
        let mut queued: TitleIndex<Vec<(Timestamp, ())>> = TitleIndex::new();
        for (i, e) in entries.iter().enumerate() {
            match plan_play(e, &view) {
                Err(o) => w.settle(i, o),
                Ok(t) => {
                    let plays = queued.get_or_insert_with(&e.item, Vec::new);
                    if nearest_play(plays, t).is_some() {
                        w.settle(i, Outcome::AlreadyPresent);
                    }
                    plays.push((t, ()));
                }
            }
        }
        let body = |chunk: &[usize]| play_body(chunk.iter().map(|i| &entries[*i]));
        let answer = |chunk: &[usize], a: Option<&WriteAnswer>| {
            let chunk: Vec<&Entry> = chunk.iter().map(|i| &entries[*i]).collect();
            let done = a.map_or(0, |a| (a.plays.len() as u64).max(a.done(true)));
            counted(&chunk, a, done)
        };
        let open = self.send(cx, &mut w, "/sync/watched", body, answer).await?;
        let apply = |v: &mut Plays, e: &Entry| {
            if let Payload::Watch { watched_at } = e.payload {
                v.held
                    .get_or_insert_with(&e.item, Vec::new)
                    .push((watched_at, None));
            }
        };
        let held = |v: &Plays, e: &Entry| held_play(v, e).is_some();
        self.settle(
            cx,
            Feature::History,
            (w, open, true),
            (at, view),
            held,
            apply,
        )
        .await
    }

    /// History: remove exactly the plays named, by their play ids.
    pub(crate) async fn history_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (mut at, mut view) = self.view::<Vec<_>>(cx, Feature::History, false).await?;
        // A play ferry wrote since the last read has no play id yet: read again.
        if entries
            .iter()
            .any(|e| matches!(held_play(&view, e), Some((_, None))))
        {
            (at, view) = self.view::<Vec<_>>(cx, Feature::History, true).await?;
        }
        let mut w = BatchWriter::new(cx, entries);
        let mut ids: Vec<Option<u64>> = vec![None; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watch { .. }) {
                w.settle(i, unsupported("not a play"));
                continue;
            }
            match held_play(&view, e) {
                Some((_, Some(id))) if !ids.contains(&Some(id)) => ids[i] = Some(id),
                // Two entries naming the same play: the first removes it.
                Some((_, Some(_))) => w.settle(i, Outcome::AlreadyAbsent),
                // Its play id is unknown: nothing can be removed safely.
                _ => w.settle(i, Outcome::unmatched(&view.partial, false, "")),
            }
        }
        let sent = |chunk: &[usize]| -> Vec<u64> { chunk.iter().filter_map(|i| ids[*i]).collect() };
        let body = |chunk: &[usize]| json!({"play_ids": sent(chunk)});
        let answer = |chunk: &[usize], a: Option<&WriteAnswer>| plays_removed(&sent(chunk), a);
        let path = "/sync/watched/plays/remove";
        let open = self.send(cx, &mut w, path, body, answer).await?;
        let apply = |v: &mut Plays, e: &Entry| {
            if let (Payload::Watch { watched_at }, Some(plays)) =
                (&e.payload, v.held.get_mut(&e.item))
                && let Some(k) = nearest_play(plays, *watched_at)
            {
                plays.remove(k);
            }
        };
        let held = |v: &Plays, e: &Entry| held_play(v, e).is_some();
        self.settle(
            cx,
            Feature::History,
            (w, open, false),
            (at, view),
            held,
            apply,
        )
        .await
    }
}

fn already(add: bool) -> Outcome {
    if add {
        Outcome::AlreadyPresent
    } else {
        Outcome::AlreadyAbsent
    }
}

/// The play `e` names in `view`: when, and its id if known.
fn held_play(view: &Plays, e: &Entry) -> Option<(Timestamp, Option<u64>)> {
    let Payload::Watch { watched_at } = e.payload else {
        return None;
    };
    let plays = view.held.get(&e.item)?;
    nearest_play(plays, watched_at).map(|k| plays[k])
}

/// A play to add: when it was watched, or the outcome it settles with unsent.
fn plan_play(e: &Entry, view: &Plays) -> Result<Timestamp, Outcome> {
    let Payload::Watch { watched_at } = e.payload else {
        return Err(unsupported("not a play"));
    };
    if !PLAYS.contains(&e.item.kind) {
        return Err(unsupported(format!(
            "ferry writes movie and episode plays to MDBList, not a {}",
            e.item.kind
        )));
    }
    if held_play(view, e).is_some() {
        return Err(Outcome::AlreadyPresent);
    }
    if !view.partial.is_empty() {
        return Err(Outcome::unmatched(&view.partial, true, ""));
    }
    let movie = e.item.kind == MediaType::Movie;
    if !movie && (e.item.season.is_none() || e.item.episode.is_none()) {
        return Err(unsupported("an episode without season and number"));
    }
    match sync_ids(if movie { &e.item.ids } else { &e.item.show_ids }) {
        Some(_) => Ok(watched_at),
        None => Err(unsupported("no id MDBList resolves")),
    }
}

/// `POST /sync/watched`: movies with their `ids`, episodes under their show by season.
fn play_body<'a>(entries: impl Iterator<Item = &'a Entry>) -> Value {
    let mut movies = Vec::new();
    // Show ids (as sent) -> season -> episodes.
    let mut shows: BTreeMap<String, (Value, BTreeMap<u32, Vec<Value>>)> = BTreeMap::new();
    for e in entries {
        let Payload::Watch { watched_at } = e.payload else {
            continue;
        };
        let at = watched_at.to_rfc3339();
        let item = &e.item;
        if item.kind == MediaType::Movie {
            movies.extend(sync_ids(&item.ids).map(|ids| json!({"ids": ids, "watched_at": at})));
        } else if let (Some(ids), Some(s), Some(n)) =
            (sync_ids(&item.show_ids), item.season, item.episode)
        {
            let show = shows
                .entry(ids.to_string())
                .or_insert_with(|| (ids, BTreeMap::new()));
            let episode = json!({"number": n, "watched_at": at});
            show.1.entry(s).or_default().push(episode);
        }
    }
    let shows: Vec<Value> = shows
        .into_values()
        .map(|(ids, seasons)| {
            let seasons: Vec<Value> = seasons
                .into_iter()
                .map(|(s, eps)| json!({"number": s, "episodes": eps}))
                .collect();
            json!({"ids": ids, "seasons": seasons})
        })
        .collect();
    json!({"movies": movies, "shows": shows})
}

/// An entry's write body, or the outcome it settles with unsent.
fn plan_title(e: &Entry, feature: Feature, view: &Titles, add: bool) -> Result<Value, Outcome> {
    if !TITLES.contains(&e.item.kind) || e.feature() != feature {
        return Err(unsupported(format!(
            "MDBList's {feature} holds movies and shows, not this {}",
            e.item.kind
        )));
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
        return flat_ids(&e.item).ok_or_else(|| unsupported(why));
    };
    if add && held == Some(&Some(*rating)) {
        return Err(Outcome::AlreadyPresent);
    }
    let ids = sync_ids(&e.item.ids).ok_or_else(|| unsupported("no id MDBList resolves"))?;
    Ok(match (add, rated_at) {
        (false, _) => json!({"ids": ids}),
        (true, None) => json!({"ids": ids, "rating": rating.get()}),
        (true, Some(t)) => json!({"ids": ids, "rating": rating.get(), "rated_at": t.to_rfc3339()}),
    })
}

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

use ferry_core::identity::{TitleIndex, nearest_play};
use ferry_core::lists::SyncBody;
use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, Feature, MediaType, Outcome, Payload, Result,
    Timestamp, WriteReport,
};
use serde_json::{Value, json};

use crate::MdblistProvider;
use crate::config::BATCH_SIZE;
use crate::convert::{flat_ids, ids_of, sync_ids};
use crate::model::{Echo, WriteAnswer};
use crate::read::{Feed, View};

/// What a chunk's answer proves (`None`: it did not decode, a re-read decides).
fn answer(chunk: &[(&Entry, &Value)], a: Option<WriteAnswer>, add: bool) -> ChunkAnswer {
    let Some(a) = a else {
        return ChunkAnswer::accepted(chunk.len());
    };
    let echoed: Vec<_> = (a.not_found.titles.values().flatten())
        .filter_map(|echo| match echo {
            Echo::Title(f) => Some(ids_of(f)).filter(|ids| !ids.is_empty()),
            Echo::Other(_) => None,
        })
        .collect();
    let entries: Vec<&Entry> = chunk.iter().map(|(e, _)| *e).collect();
    let mut out = ChunkAnswer::counted(&entries, a.done(add), &echoed);
    let gone = |part: &Value| {
        (a.not_found.play_ids.iter()).any(|id| id.0.is_some_and(|n| part.as_u64() == Some(n)))
    };
    for (j, (_, part)) in chunk.iter().enumerate() {
        if gone(part) {
            out.set(j, Outcome::AlreadyAbsent);
        }
    }
    out
}

impl MdblistProvider {
    /// Adds or removes `entries` on `feed`'s list.
    pub(crate) async fn write(
        &self,
        cx: &Context,
        feed: &Feed,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        if entries.is_empty() {
            return Ok(WriteReport::new());
        }
        let (list, history) = (feed.list, feed.list.feature == Feature::History);
        let (mut at, mut view) = self.view(cx, feed, false).await?;
        // A play ferry wrote since the last read has no play id yet: read again.
        let unnamed = |v: &View| entries.iter().any(|e| matches!(v.play(e), Some((_, None))));
        if !add && unnamed(&view) {
            (at, view) = self.view(cx, feed, true).await?;
        }
        let mut w = BatchWriter::new(cx, entries);
        let parts = plan(&mut w, feed, &view, add);
        let path = if add { list.add } else { list.remove };
        while let Some(chunk) = w.next_chunk(BATCH_SIZE)? {
            let parts: Vec<(&Entry, &Value)> = (chunk.iter())
                .filter_map(|i| Some((&entries[*i], parts[*i].as_ref()?)))
                .collect();
            let body = request(&parts, history && !add);
            let got = self.api.write(cx, path, &body).await;
            w.record(&chunk, got.map(|a| answer(&parts, a, add)));
        }
        if w.awaits_confirmation() {
            // A re-read that fails confirms nothing: those entries stay unconfirmed; a
            // partial one never confirms a removal.
            if let Ok((at, view)) = self.view(cx, feed, true).await {
                let whole = view.partial.is_empty();
                w.confirm(add, |e| view.shows(e, add) || (!add && !whole));
                feed.last.put_back(at, view);
            }
            return Ok(w.finish());
        }
        let report = w.finish();
        for (e, r) in entries.iter().zip(&report.items) {
            match r.outcome {
                Outcome::Confirmed if add => view.hold(e, None),
                Outcome::Confirmed => view.forget(e),
                _ => {}
            }
        }
        feed.last.put_back(at, view);
        Ok(report)
    }
}

/// Each entry's part of the request, or the outcome it settles with unsent. An entry
/// naming what another of this call names (the title, or the play) is already done.
fn plan(w: &mut BatchWriter, feed: &Feed, view: &View, add: bool) -> Vec<Option<Value>> {
    let (entries, feature) = (w.entries(), feed.list.feature);
    let mut parts = vec![None; entries.len()];
    // What this call queued per title: plays at their time, a title once (all its parts
    // count at one time).
    let mut queued: TitleIndex<Vec<(Timestamp, ())>> = TitleIndex::new();
    for (i, e) in entries.iter().enumerate() {
        let planned = match (e.feature(), feed.list.kinds.contains(&e.item.kind)) {
            (f, _) if f != feature => Err(Outcome::wrong_payload(e, feature)),
            (Feature::History, true) => plan_play(e, view, add),
            (_, true) => plan_title(e, view, add).map(|part| (Timestamp::from_unix(0), part)),
            (_, false) => {
                let why = format!("MDBList's {feature} does not hold a {}", e.item.kind);
                Err(Outcome::unsupported(why))
            }
        };
        match planned {
            Err(o) => w.settle(i, o),
            Ok((at, part)) => {
                let q = queued.get_or_insert_with(&e.item, Vec::new);
                if nearest_play(q, at).is_some() {
                    w.settle(i, Outcome::already(add));
                } else {
                    q.push((at, ()));
                    parts[i] = Some(part);
                }
            }
        }
    }
    parts
}

/// A chunk's request: the play ids to remove, or the titles by list with episodes under
/// their show by season.
fn request(parts: &[(&Entry, &Value)], play_ids: bool) -> Value {
    if play_ids {
        let ids: Vec<&Value> = parts.iter().map(|(_, id)| *id).collect();
        return json!({ "play_ids": ids });
    }
    let mut body = SyncBody::default();
    for (e, part) in parts {
        let (item, part) = (&e.item, (*part).clone());
        match (item.kind, sync_ids(&item.show_ids), item.season) {
            (MediaType::Episode, Some(ids), Some(s)) => {
                body.episode(&ids.to_string(), &json!({ "ids": ids }), s, part);
            }
            (MediaType::Movie, ..) => body.title("movies", part),
            _ => body.title("shows", part),
        }
    }
    body.finish()
}

/// A play to write: when it was watched and what it sends (the play itself for an add,
/// its play id for a removal), or the outcome it settles with unsent.
fn plan_play(e: &Entry, view: &View, add: bool) -> Result<(Timestamp, Value), Outcome> {
    let Payload::Watch { watched_at } = e.payload else {
        return Err(Outcome::wrong_payload(e, Feature::History));
    };
    match (view.play(e), add) {
        (Some(_), true) => return Err(Outcome::AlreadyPresent),
        (Some((_, Some(id))), false) => return Ok((watched_at, json!(id))),
        // Not held, or its play id unknown: after a partial read it may be there, so
        // nothing is posted (a duplicate) or removed (which play?).
        _ if !view.partial.is_empty() => return Err(Outcome::unmatched(&view.partial, add, "")),
        (_, false) => return Err(Outcome::AlreadyAbsent),
        (None, true) => {}
    }
    let (item, at) = (&e.item, watched_at.to_rfc3339());
    let part = match (item.kind, item.season, item.episode) {
        (MediaType::Movie, ..) => {
            sync_ids(&item.ids).map(|ids| json!({"ids": ids, "watched_at": at}))
        }
        (_, Some(_), Some(n)) => {
            sync_ids(&item.show_ids).map(|_| json!({"number": n, "watched_at": at}))
        }
        _ => return Err(Outcome::unsupported("an episode without season and number")),
    };
    let part = part.ok_or_else(|| Outcome::unsupported("no id MDBList resolves"))?;
    Ok((watched_at, part))
}

/// A title to write (watchlist: flat ids; ratings: nested ids and the rating), or the
/// outcome it settles with unsent.
fn plan_title(e: &Entry, view: &View, add: bool) -> Result<Value, Outcome> {
    let held = view.held.contains(&e.item);
    // A title missing from a partial read may still be there: remove it anyway (a
    // removal of an absent title changes nothing) and let the answer decide.
    if !add && !held && view.partial.is_empty() {
        return Err(Outcome::AlreadyAbsent);
    }
    let Payload::Rating { rating, rated_at } = &e.payload else {
        if add && held {
            return Err(Outcome::AlreadyPresent);
        }
        let why = "MDBList's watchlist needs an IMDb or TMDB id";
        return flat_ids(&e.item).ok_or_else(|| Outcome::unsupported(why));
    };
    if add && view.rating(e) == Some(*rating) {
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

//! History: watch events in `/sync/history`.
//!
//! Trakt does not deduplicate plays ("it is up to your app to verify this and not send
//! duplicate plays"), so every add first reads the plays around the new ones (with
//! `start_at`/`end_at`) and never sends a play that is already there within
//! [`HISTORY_TOLERANCE_SECS`]. If that read is not complete, nothing is sent: a duplicate
//! play is a fabricated one. The engine sends plays oldest first, so each batch reads
//! one short window: a first sync costs one history page per batch, not a whole-history
//! read.

use std::collections::{HashMap, HashSet};

use ferry_core::{
    ChunkAnswer, Context, Entry, Error, ErrorKind, Feature, HISTORY_TOLERANCE_SECS, Item,
    MediaType, Outcome, Payload, Result, Timestamp, UnresolvedReason, WriteReport,
};
use serde_json::{Map, json};

use crate::api::Api;
use crate::convert::{Body, Play, WriteKind, chunk_outcomes, trakt_time};
use crate::memo::{WatchlistMemo, may_have_played};
use crate::read::read_plays;
use crate::write::{BATCH, Matcher, screen, unsupported, writer};

pub(crate) const KINDS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
/// Plays further apart than this are read in separate windows.
const WINDOW_GAP_SECS: i64 = 7 * 86_400;

fn watched_at(e: &Entry) -> Option<Timestamp> {
    match e.payload {
        Payload::Watch { watched_at } => Some(watched_at),
        _ => None,
    }
}

/// Time windows covering `times` ± the tolerance, one per cluster of nearby plays.
fn windows(mut times: Vec<Timestamp>) -> Vec<(Timestamp, Timestamp)> {
    times.sort();
    let tol = HISTORY_TOLERANCE_SECS as i64;
    let mut out: Vec<(Timestamp, Timestamp)> = Vec::new();
    for t in times {
        match out.last_mut() {
            Some((_, end)) if t.unix() - (end.unix() - tol) <= WINDOW_GAP_SECS => {
                *end = Timestamp::from_unix(t.unix() + tol);
            }
            _ => out.push((
                Timestamp::from_unix(t.unix() - tol),
                Timestamp::from_unix(t.unix() + tol),
            )),
        }
    }
    out
}

/// Every play within the windows around `entries`; an error unless each read is complete.
///
/// Several windows are first read as the one stretch of time that covers them all, when
/// Trakt's first page of it says that takes no more requests than the windows one by one.
/// Otherwise the windows are read one by one, after that one request. The stretch holds
/// every window, so it is as complete an answer.
async fn plays_around(api: &Api, cx: &Context, entries: &[&Entry]) -> Result<Vec<Play>> {
    let times = entries.iter().filter_map(|e| watched_at(e)).collect();
    let spans = windows(times);
    let mut reads = Vec::new();
    if let (Some(first), Some(last)) = (spans.first(), spans.last())
        && spans.len() > 1
        && let Some(r) = read_plays(api, cx, Some((first.0, last.1)), spans.len() as u64).await?
    {
        reads.push(r);
    } else {
        for w in spans {
            reads.extend(read_plays(api, cx, Some(w), u64::MAX).await?);
        }
    }
    let mut out: Vec<Play> = Vec::new();
    let mut seen = HashSet::new();
    for read in reads {
        if let Some(why) = read.proof().reason() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the plays around the ones to write could not be read completely ({why}); \
                     nothing was written, so no play is duplicated"
                ),
            )
            .with_provider("trakt"));
        }
        for p in read.rows {
            if p.id.is_none_or(|id| seen.insert(id)) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn near(a: Timestamp, b: Timestamp) -> bool {
    a.abs_diff(b) <= HISTORY_TOLERANCE_SECS
}

/// Adds plays that are not there yet; a play within the tolerance of an existing play of
/// the same title (or of an earlier entry in this call) is `AlreadyPresent`. When Trakt's
/// counts fall short, the plays are read back: the ones now there are confirmed (every
/// play already there was left out before sending).
pub(crate) async fn add(
    api: &Api,
    memo: &WatchlistMemo,
    cx: &Context,
    entries: &[Entry],
) -> Result<WriteReport> {
    let mut w = writer(cx, entries, screen(entries, Feature::History, &KINDS));
    let todo: Vec<&Entry> = (0..entries.len())
        .filter(|&i| !w.is_settled(i))
        .map(|i| &entries[i])
        .collect();
    if todo.is_empty() {
        return Ok(w.finish());
    }
    let existing = plays_around(api, cx, &todo).await?;
    let m = Matcher::new(existing.iter().map(|p| &p.item));
    let mut pending: HashMap<String, Vec<Timestamp>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        let Some(at) = watched_at(e) else { continue };
        let there = m.all(&e.item).iter().any(|&r| near(existing[r].at, at));
        let twice = pending
            .get(&e.item.key())
            .is_some_and(|ts| ts.iter().any(|t| near(*t, at)));
        if there || twice {
            w.settle(i, Outcome::AlreadyPresent);
        } else {
            pending.entry(e.item.key()).or_default().push(at);
        }
    }
    let mut unsure = false;
    // Entries a request carried: only their plays may be on Trakt now.
    let mut sent = vec![false; entries.len()];
    while let Some(chunk) = w.next_chunk(BATCH)? {
        let mut body = Body::new();
        let mut answer = ChunkAnswer::accepted(chunk.len());
        let mut named = vec![true; chunk.len()];
        for (j, &i) in chunk.iter().enumerate() {
            let mut x = Map::new();
            if let Some(at) = watched_at(&entries[i]) {
                x.insert("watched_at".into(), json!(trakt_time(at)));
            }
            if !body.push(j, &entries[i].item, &x) {
                named[j] = false;
                answer.set(
                    j,
                    unsupported("the item has no id or title Trakt understands"),
                );
            }
        }
        if body.is_empty() {
            w.record(&chunk, Ok(answer));
            continue;
        }
        for &i in &chunk {
            sent[i] = true;
        }
        // Not idempotent: a repeated add would record the play twice.
        let answered = api
            .write(
                cx,
                "POST /sync/history",
                "/sync/history",
                &body.to_json(),
                false,
            )
            .await;
        let answered = answered.map(|a| {
            // Left accepted (to be read back): what the answer does not account for.
            let outs = match a {
                Some(a) => chunk_outcomes(chunk.len(), &body, &a, WriteKind::Add),
                None => vec![None; chunk.len()],
            };
            for (j, o) in outs.into_iter().enumerate() {
                match o {
                    Some(Outcome::Unresolved {
                        reason: UnresolvedReason::Unconfirmed,
                        ..
                    })
                    | None => unsure |= named[j],
                    Some(o) => answer.set(j, o),
                }
            }
            answer
        });
        w.record(&chunk, answered);
    }
    if unsure {
        confirm_plays(api, cx, entries, &mut w).await;
    }
    let report = w.finish();
    note_plays(memo, cx, entries, &sent, &report);
    Ok(report)
}

/// Confirms plays Trakt's counts did not account for by reading them back.
async fn confirm_plays(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    w: &mut ferry_core::BatchWriter<'_>,
) {
    let todo: Vec<&Entry> = entries.iter().collect();
    let now = plays_around(api, cx, &todo).await.unwrap_or_default();
    let m = Matcher::new(now.iter().map(|p| &p.item));
    w.confirm(true, |e| {
        watched_at(e).is_some_and(|at| m.all(&e.item).iter().any(|&r| near(now[r].at, at)))
    });
}

/// Remembers the plays that may now be on Trakt (sent, and not known to have failed
/// before Trakt applied them): Trakt takes those titles off the watchlist, and the next
/// watchlist read must not take that for the user's removal. An entry never sent (the
/// batch stopped first) played nothing.
fn note_plays(
    memo: &WatchlistMemo,
    cx: &Context,
    entries: &[Entry],
    sent: &[bool],
    report: &WriteReport,
) {
    let played: Vec<&Item> = entries
        .iter()
        .zip(&report.items)
        .zip(sent)
        .filter(|((_, o), sent)| **sent && may_have_played(&o.outcome))
        .map(|((e, _), _)| &e.item)
        .collect();
    memo.record_plays(cx, played);
}

/// Removes plays by their history ids: each entry removes the play of the same title
/// closest to its time, within the tolerance.
pub(crate) async fn remove(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    let mut w = writer(cx, entries, screen(entries, Feature::History, &KINDS));
    let todo: Vec<&Entry> = (0..entries.len())
        .filter(|&i| !w.is_settled(i))
        .map(|i| &entries[i])
        .collect();
    if todo.is_empty() {
        return Ok(w.finish());
    }
    let existing = plays_around(api, cx, &todo).await?;
    let m = Matcher::new(existing.iter().map(|p| &p.item));
    let mut claimed = HashSet::new();
    let mut ids: Vec<Option<u64>> = vec![None; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        let Some(at) = watched_at(e) else { continue };
        let best = m
            .all(&e.item)
            .iter()
            .filter_map(|&r| existing[r].id.map(|id| (id, existing[r].at)))
            .filter(|(id, t)| near(*t, at) && !claimed.contains(id))
            .min_by_key(|(_, t)| t.abs_diff(at));
        match best {
            Some((id, _)) => {
                claimed.insert(id);
                ids[i] = Some(id);
            }
            None => w.settle(i, Outcome::AlreadyAbsent),
        }
    }
    while let Some(chunk) = w.next_chunk(BATCH)? {
        let chunk_ids: Vec<u64> = chunk.iter().filter_map(|&i| ids[i]).collect();
        let sent = api
            .write(
                cx,
                "POST /sync/history/remove",
                "/sync/history/remove",
                &json!({ "ids": chunk_ids }),
                true,
            )
            .await
            .map(|a| removal_answer(&chunk, &ids, a));
        w.record(&chunk, sent);
    }
    Ok(w.finish())
}

/// Per-play outcomes of a removal by history ids: ids `not_found` were already gone;
/// the rest are confirmed when `deleted` counts all of them.
fn removal_answer(
    chunk: &[usize],
    ids: &[Option<u64>],
    a: Option<crate::model::WriteAnswer>,
) -> ChunkAnswer {
    let Some(a) = a else {
        return ChunkAnswer::all(
            chunk.len(),
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                detail: Some("Trakt's answer could not be read".into()),
            },
        );
    };
    let missing: HashSet<u64> = a.not_found.ids.iter().copied().collect();
    let deleted: u64 = a.deleted.values().sum();
    let expected = chunk
        .iter()
        .filter(|&&i| ids[i].is_some_and(|id| !missing.contains(&id)))
        .count() as u64;
    let mut out = ChunkAnswer::new(chunk.len());
    for (j, &i) in chunk.iter().enumerate() {
        let o = if ids[i].is_some_and(|id| missing.contains(&id)) {
            Outcome::AlreadyAbsent
        } else if deleted >= expected {
            Outcome::Confirmed
        } else {
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                detail: Some(format!("Trakt deleted {deleted} of {expected} plays")),
            }
        };
        out.set(j, o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cluster_nearby_plays() {
        let t = Timestamp::from_unix;
        let w = windows(vec![t(10_000_000), t(1_000), t(1_500), t(1_000 + 86_400)]);
        assert_eq!(
            w,
            vec![
                (t(940), t(1_000 + 86_400 + 60)),
                (t(9_999_940), t(10_000_060))
            ]
        );
        assert!(windows(Vec::new()).is_empty());
    }
}

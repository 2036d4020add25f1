//! History: watch events in `/sync/history`.
//!
//! Trakt does not deduplicate plays ("it is up to your app to verify this and not send
//! duplicate plays"), so every add first reads the plays around the new ones (with
//! `start_at`/`end_at`) and never sends a play that is already there within
//! [`HISTORY_TOLERANCE_SECS`]. If that read is not complete, nothing is sent: a duplicate
//! play is a fabricated one.

use std::collections::{HashMap, HashSet};

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, HISTORY_TOLERANCE_SECS, MediaType, Outcome, Payload,
    Result, Snapshot, Timestamp, UnresolvedReason, WriteReport,
};
use serde_json::{Map, Value, json};

use crate::api::{Api, Paged, error_outcomes};
use crate::common::{BATCH, Matcher, Slots, answer, unsupported, valid};
use crate::convert::{Body, WriteKind, item_from_row, outcomes, time_field, trakt_time};
use crate::memo::{WatchlistMemo, may_have_played};

const KINDS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
/// Plays further apart than this are read in separate windows.
const WINDOW_GAP_SECS: i64 = 7 * 86_400;

struct Play {
    id: Option<u64>,
    entry: Entry,
}

impl Play {
    fn at(&self) -> Timestamp {
        match self.entry.payload {
            Payload::Watch { watched_at } => watched_at,
            _ => Timestamp::from_unix(0),
        }
    }
}

fn watched_at(e: &Entry) -> Option<Timestamp> {
    match e.payload {
        Payload::Watch { watched_at } => Some(watched_at),
        _ => None,
    }
}

/// The plays in `window` (all of them without one); `None` if that takes more than
/// `max_pages` requests (after the first).
async fn read(
    api: &Api,
    cx: &Context,
    window: Option<(Timestamp, Timestamp)>,
    max_pages: u64,
) -> Result<Option<(Vec<Play>, Paged)>> {
    let query: Vec<(&str, String)> = match window {
        Some((a, b)) => vec![("start_at", trakt_time(a)), ("end_at", trakt_time(b))],
        None => Vec::new(),
    };
    let Some(mut paged) = api
        .read_up_to(cx, "GET /sync/history", "/sync/history", &query, max_pages)
        .await?
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(paged.rows.len());
    let mut skipped = 0;
    for r in &paged.rows {
        match (item_from_row(r), time_field(r, "watched_at")) {
            (Some(item), Some(at)) => out.push(Play {
                id: r.get("id").and_then(Value::as_u64),
                entry: Entry::watch(item, at),
            }),
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        paged
            .problems
            .push(format!("{skipped} history rows could not be read"));
    }
    Ok(Some((out, paged)))
}

pub(crate) async fn build_index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let (plays, paged) = read(api, cx, None, u64::MAX).await?.unwrap_or_default();
    let mut snap = Snapshot::unproven_legacy(Feature::History);
    for p in plays {
        snap.insert(p.entry);
    }
    if !paged.is_complete() {
        snap.mark_partial(paged.reason());
    }
    Ok(snap)
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
/// That is the usual case, as the engine sends plays oldest first, so a batch covers one
/// stretch of time: a first sync then reads one page per batch, however the batch's plays
/// are spread within it. Otherwise the windows are read one by one, after that one
/// request. The stretch holds every window, so it is as complete an answer.
async fn plays_around(api: &Api, cx: &Context, entries: &[&Entry]) -> Result<Vec<Play>> {
    let times = entries.iter().filter_map(|e| watched_at(e)).collect();
    let spans = windows(times);
    let mut reads = Vec::new();
    if let (Some(first), Some(last)) = (spans.first(), spans.last())
        && spans.len() > 1
        && let Some(r) = read(api, cx, Some((first.0, last.1)), spans.len() as u64).await?
    {
        reads.push(r);
    } else {
        for w in spans {
            reads.extend(read(api, cx, Some(w), u64::MAX).await?);
        }
    }
    let mut out: Vec<Play> = Vec::new();
    let mut seen = HashSet::new();
    for (plays, paged) in reads {
        if !paged.is_complete() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the plays around the ones to write could not be read completely ({}); \
                     nothing was written, so no play is duplicated",
                    paged.reason()
                ),
            )
            .with_provider("trakt"));
        }
        for p in plays {
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
/// the same title (or of an earlier entry in this call) is `AlreadyPresent`.
pub(crate) async fn add(
    api: &Api,
    memo: &WatchlistMemo,
    cx: &Context,
    entries: &[Entry],
) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::History, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let todo: Vec<&Entry> = ok.iter().map(|&i| &entries[i]).collect();
    let existing = plays_around(api, cx, &todo).await?;
    let m = Matcher::new(existing.iter().map(|p| &p.entry.item));
    let mut pending: HashMap<String, Vec<Timestamp>> = HashMap::new();
    let mut queue = Vec::new();
    for i in ok {
        let e = &entries[i];
        let Some(at) = watched_at(e) else { continue };
        let there = m.all(&e.item).iter().any(|&r| near(existing[r].at(), at));
        let twice = pending
            .get(&e.item.key())
            .is_some_and(|ts| ts.iter().any(|t| near(*t, at)));
        if there || twice {
            slots.set(i, Outcome::AlreadyPresent);
        } else {
            pending.entry(e.item.key()).or_default().push(at);
            queue.push(i);
        }
    }
    let mut sent_any = false;
    for chunk in queue.chunks(BATCH) {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        let mut body = Body::new();
        for &i in chunk {
            let mut x = Map::new();
            if let Some(at) = watched_at(&entries[i]) {
                x.insert("watched_at".into(), json!(trakt_time(at)));
            }
            if !body.push(i, &entries[i].item, &x) {
                slots.set(
                    i,
                    unsupported("the item has no id or title Trakt understands"),
                );
            }
        }
        if body.is_empty() {
            continue;
        }
        sent_any = true;
        // Not idempotent: a repeated add would record the play twice.
        match api
            .post(
                cx,
                "POST /sync/history",
                "/sync/history",
                &body.to_json(),
                false,
            )
            .await
        {
            Ok(resp) => match answer(&resp) {
                Ok(a) => {
                    let outs = outcomes(&body, &a, WriteKind::Add);
                    let unsure: Vec<usize> = outs
                        .iter()
                        .filter(|(_, o)| {
                            matches!(
                                o,
                                Outcome::Unresolved {
                                    reason: UnresolvedReason::Unconfirmed,
                                    ..
                                }
                            )
                        })
                        .map(|(i, _)| *i)
                        .collect();
                    for (i, o) in outs {
                        slots.set(i, o);
                    }
                    if !unsure.is_empty() {
                        verify(api, cx, entries, &unsure, &mut slots).await;
                    }
                }
                Err(o) => {
                    for s in &body.sent {
                        slots.set(s.idx, o.clone());
                    }
                }
            },
            Err(e) => {
                let eo = error_outcomes(&e);
                for s in &body.sent {
                    slots.set(s.idx, eo.sent.clone());
                }
                if let Some(rest) = eo.rest {
                    slots.fill(&rest);
                    note_plays(memo, cx, entries, &body, &slots);
                    break;
                }
            }
        }
        note_plays(memo, cx, entries, &body, &slots);
    }
    Ok(slots.report(entries))
}

/// Remembers the plays of a sent batch that may now be on Trakt: Trakt takes those
/// titles off the watchlist, and the next watchlist read must not take that for the
/// user's removal.
fn note_plays(memo: &WatchlistMemo, cx: &Context, entries: &[Entry], body: &Body, slots: &Slots) {
    let played = body
        .sent
        .iter()
        .filter(|s| slots.get(s.idx).is_some_and(may_have_played))
        .map(|s| &entries[s.idx].item);
    memo.record_plays(cx, played);
}

/// When Trakt's counts fall short, reads the plays back: the ones now there are
/// confirmed (every pre-existing play was excluded before sending).
async fn verify(api: &Api, cx: &Context, entries: &[Entry], unsure: &[usize], slots: &mut Slots) {
    let todo: Vec<&Entry> = unsure.iter().map(|&i| &entries[i]).collect();
    let Ok(now) = plays_around(api, cx, &todo).await else {
        return;
    };
    let m = Matcher::new(now.iter().map(|p| &p.entry.item));
    for &i in unsure {
        let e = &entries[i];
        let Some(at) = watched_at(e) else { continue };
        if m.all(&e.item).iter().any(|&r| near(now[r].at(), at)) {
            slots.set(i, Outcome::Confirmed);
        }
    }
}

/// Removes plays by their history ids: each entry removes the play of the same title
/// closest to its time, within the tolerance.
pub(crate) async fn remove(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::History, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let todo: Vec<&Entry> = ok.iter().map(|&i| &entries[i]).collect();
    let existing = plays_around(api, cx, &todo).await?;
    let m = Matcher::new(existing.iter().map(|p| &p.entry.item));
    let mut claimed = HashSet::new();
    let mut queue: Vec<(usize, u64)> = Vec::new();
    for i in ok {
        let e = &entries[i];
        let Some(at) = watched_at(e) else { continue };
        let best = m
            .all(&e.item)
            .iter()
            .filter_map(|&r| existing[r].id.map(|id| (id, existing[r].at())))
            .filter(|(id, t)| near(*t, at) && !claimed.contains(id))
            .min_by_key(|(_, t)| t.abs_diff(at));
        match best {
            Some((id, _)) => {
                claimed.insert(id);
                queue.push((i, id));
            }
            None => slots.set(i, Outcome::AlreadyAbsent),
        }
    }
    let mut sent_any = false;
    for chunk in queue.chunks(BATCH) {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        sent_any = true;
        let ids: Vec<u64> = chunk.iter().map(|(_, id)| *id).collect();
        match api
            .post(
                cx,
                "POST /sync/history/remove",
                "/sync/history/remove",
                &json!({ "ids": ids }),
                true,
            )
            .await
        {
            Ok(resp) => match answer(&resp) {
                Ok(a) => {
                    let missing: HashSet<u64> = a
                        .get("not_found")
                        .and_then(|n| n.get("ids"))
                        .and_then(Value::as_array)
                        .map(|v| v.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default();
                    let deleted: u64 = ["movies", "episodes"]
                        .iter()
                        .filter_map(|b| a.get("deleted").and_then(|d| d.get(*b)))
                        .filter_map(Value::as_u64)
                        .sum();
                    let expected = chunk.iter().filter(|(_, id)| !missing.contains(id)).count();
                    for &(i, id) in chunk {
                        let o = if missing.contains(&id) {
                            Outcome::AlreadyAbsent
                        } else if deleted as usize >= expected {
                            Outcome::Confirmed
                        } else {
                            Outcome::Unresolved {
                                reason: UnresolvedReason::Unconfirmed,
                                detail: Some(format!(
                                    "Trakt deleted {deleted} of {expected} plays"
                                )),
                            }
                        };
                        slots.set(i, o);
                    }
                }
                Err(o) => {
                    for &(i, _) in chunk {
                        slots.set(i, o.clone());
                    }
                }
            },
            Err(e) => {
                let eo = error_outcomes(&e);
                for &(i, _) in chunk {
                    slots.set(i, eo.sent.clone());
                }
                if let Some(rest) = eo.rest {
                    slots.fill(&rest);
                    break;
                }
            }
        }
    }
    Ok(slots.report(entries))
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

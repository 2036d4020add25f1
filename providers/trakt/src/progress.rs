//! Playback progress: read from `/sync/playback`, written with `POST /scrobble/pause`
//! (how Trakt stores a resume point), removed with `DELETE /sync/playback/{id}`.
//!
//! Trakt keeps a percentage; ferry keeps milliseconds. Reads convert with the title's
//! runtime (`?extended=full`), writes with the entry's duration. A progress write never
//! marks anything watched (that would be `scrobble/stop` past 80 %, which ferry never
//! calls). One request per entry: Trakt has no batch form.

use ferry_core::{
    Context, Entry, ErrorKind, Feature, Item, MediaType, Outcome, Payload, Result,
    UnresolvedReason, WriteReport,
};
use serde_json::{Map, Value, json};

use crate::api::Api;
use crate::convert::{Resume, ids_to_json};
use crate::write::{Dups, Matcher, screen, unsupported, writer};

pub(crate) const KINDS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];

fn scrobble_body(item: &Item, pct: f64) -> Option<Value> {
    let mut m = Map::new();
    m.insert("progress".into(), json!(pct));
    match item.kind {
        MediaType::Movie => {
            let ids = ids_to_json(&item.ids);
            if ids.is_empty() {
                return None;
            }
            m.insert(
                "movie".into(),
                json!({"title": item.title, "year": item.year, "ids": ids}),
            );
        }
        _ => {
            let show = ids_to_json(&item.show_ids);
            if !show.is_empty()
                && let (Some(s), Some(e)) = (item.season, item.episode)
            {
                m.insert(
                    "show".into(),
                    json!({"title": item.show_title, "ids": show}),
                );
                m.insert("episode".into(), json!({"season": s, "number": e}));
            } else {
                let ids = ids_to_json(&item.ids);
                if ids.is_empty() {
                    return None;
                }
                m.insert("episode".into(), json!({ "ids": ids }));
            }
        }
    }
    Some(Value::Object(m))
}

/// Sets resume points against `current` (Trakt's playback). A point within a second (or
/// 0.005 %) of Trakt's is `AlreadyPresent`. `current` follows the writes.
pub(crate) async fn add(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    current: &mut Vec<Resume>,
) -> Result<WriteReport> {
    let mut w = writer(cx, entries, screen(entries, Feature::Progress, &KINDS));
    let m = Matcher::new(current.iter().map(|r| &r.item));
    let mut dups = Dups::default();
    let mut plan: Vec<Option<(Item, f64)>> = vec![None; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        let Payload::Progress {
            position_ms,
            duration_ms,
            ..
        } = e.payload
        else {
            continue;
        };
        let cur = m.find(&e.item).map(|r| &current[r]);
        let Some(duration) = duration_ms
            .or(cur.and_then(|c| c.runtime_ms))
            .filter(|d| *d > 0)
        else {
            w.settle(
                i,
                unsupported("no duration is known to turn the position into a percentage"),
            );
            continue;
        };
        let pct = (position_ms as f64 / duration as f64 * 10_000.0).round() / 100.0;
        if pct <= 0.0 || pct >= 100.0 {
            w.settle(i, unsupported(format!("{pct}% is not a resume point")));
            continue;
        }
        if let Some(c) = cur {
            let same_pos = c
                .position_ms()
                .is_some_and(|p| p.abs_diff(position_ms) <= 1000);
            if same_pos || (c.progress - pct).abs() < 0.005 {
                w.settle(i, Outcome::AlreadyPresent);
                continue;
            }
        }
        if dups.first(&mut w, e.item.key(), i) {
            let item = cur.map_or_else(|| e.item.clone(), |c| c.item.clone());
            plan[i] = Some((item, pct));
        }
    }
    while let Some(chunk) = w.next_chunk(1)? {
        let i = chunk[0];
        let Some(body) = plan[i]
            .as_ref()
            .and_then(|(item, pct)| scrobble_body(item, *pct))
        else {
            w.settle(i, unsupported("the item has no id Trakt understands"));
            continue;
        };
        let result = api
            .post(cx, "POST /scrobble/pause", "/scrobble/pause", &body, true)
            .await
            .map(|resp| {
                if resp.status() == 201 {
                    Outcome::Confirmed
                } else {
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unconfirmed,
                        detail: Some(format!("Trakt answered {} instead of 201", resp.status())),
                    }
                }
            });
        w.record_one(i, result);
    }
    let mut report = w.finish();
    dups.resolve(&mut report, &Outcome::AlreadyPresent);
    for (i, o) in report.items.iter().enumerate() {
        let (Some((item, pct)), Outcome::Confirmed) = (&plan[i], &o.outcome) else {
            continue;
        };
        let runtime_ms = match entries[i].payload {
            Payload::Progress { duration_ms, .. } => duration_ms,
            _ => None,
        };
        match m.find(item) {
            Some(r) => current[r].progress = *pct,
            // Written just now: its playback id is not known until the next read.
            None => current.push(Resume {
                id: None,
                item: item.clone(),
                progress: *pct,
                runtime_ms,
                paused_at: None,
            }),
        }
    }
    Ok(report)
}

/// Removes resume points by their playback ids. A point without a known id (written by
/// ferry since the last read) is `None` from [`ids_needed`]: the caller reads again.
pub(crate) async fn remove(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    current: &mut Vec<Resume>,
    partial: &[String],
) -> Result<WriteReport> {
    let mut w = writer(cx, entries, screen(entries, Feature::Progress, &KINDS));
    let m = Matcher::new(current.iter().map(|r| &r.item));
    let mut dups = Dups::default();
    let mut ids: Vec<Option<(usize, u64)>> = vec![None; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        match m
            .find(&e.item)
            .and_then(|r| current[r].id.map(|id| (r, id)))
        {
            None => w.settle(
                i,
                Outcome::unmatched(partial, false, "no resume point on Trakt"),
            ),
            Some((r, id)) => {
                if dups.first(&mut w, format!("id:{id}"), i) {
                    ids[i] = Some((r, id));
                }
            }
        }
    }
    while let Some(chunk) = w.next_chunk(1)? {
        let i = chunk[0];
        let Some((_, id)) = ids[i] else { continue };
        let result = api
            .http
            .delete("DELETE /sync/playback/{id}", format!("/sync/playback/{id}"))
            .idempotent()
            .send(cx)
            .await;
        let result = match result {
            Ok(_) => Ok(Outcome::Confirmed),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Outcome::AlreadyAbsent),
            Err(e) => Err(e),
        };
        w.record_one(i, result);
    }
    let mut report = w.finish();
    dups.resolve(&mut report, &Outcome::AlreadyAbsent);
    let gone: Vec<usize> = report
        .items
        .iter()
        .enumerate()
        .filter(|(_, o)| o.outcome.is_settled())
        .filter_map(|(i, _)| ids[i].map(|(r, _)| r))
        .collect();
    let mut k = 0;
    current.retain(|_| {
        k += 1;
        !gone.contains(&(k - 1))
    });
    Ok(report)
}

/// Whether a removal needs a fresh read: some entry matches a point whose playback id is
/// not known (ferry wrote it since the last read).
pub(crate) fn ids_needed(entries: &[Entry], current: &[Resume]) -> bool {
    let m = Matcher::new(current.iter().map(|r| &r.item));
    entries
        .iter()
        .any(|e| m.find(&e.item).is_some_and(|r| current[r].id.is_none()))
}

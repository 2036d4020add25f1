//! Playback progress: read from `/sync/playback`, written with `POST /scrobble/pause`
//! (how Trakt stores a resume point), removed with `DELETE /sync/playback/{id}`.
//!
//! Trakt keeps a percentage; ferry keeps milliseconds. Reads convert with the title's
//! runtime (`?extended=full`), writes with the entry's duration. A progress write never
//! marks anything watched (that would be `scrobble/stop` past 80 %, which ferry never
//! calls).

use ferry_core::{
    Context, Entry, ErrorKind, Feature, Item, MediaType, Outcome, Payload, Result, Snapshot,
    Timestamp, UnresolvedReason, WriteReport,
};
use serde_json::{Map, Value, json};

use crate::api::{Api, Paged, error_outcomes};
use crate::common::{Dups, Matcher, Slots, unsupported, valid};
use crate::convert::{ids_to_json, item_from_row, time_field};

const KINDS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];

struct Resume {
    id: Option<u64>,
    item: Item,
    progress: f64,
    runtime_ms: Option<u64>,
    paused_at: Option<Timestamp>,
}

impl Resume {
    fn position_ms(&self) -> Option<u64> {
        self.runtime_ms
            .map(|rt| (rt as f64 * self.progress / 100.0).round() as u64)
    }
}

async fn read(api: &Api, cx: &Context) -> Result<(Vec<Resume>, Paged)> {
    let mut paged = api
        .read_all(
            cx,
            "GET /sync/playback",
            "/sync/playback",
            &[("extended", "full".to_owned())],
        )
        .await?;
    let mut out = Vec::with_capacity(paged.rows.len());
    let mut skipped = 0;
    for r in &paged.rows {
        let progress = r.get("progress").and_then(Value::as_f64);
        let kind = r.get("type").and_then(Value::as_str).unwrap_or_default();
        let runtime_ms = r
            .get(kind)
            .and_then(|m| m.get("runtime"))
            .and_then(Value::as_u64)
            .filter(|m| *m > 0)
            .map(|m| m * 60_000);
        match (item_from_row(r), progress) {
            (Some(item), Some(progress)) => out.push(Resume {
                id: r.get("id").and_then(Value::as_u64),
                item,
                progress,
                runtime_ms,
                paused_at: time_field(r, "paused_at"),
            }),
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        paged
            .problems
            .push(format!("{skipped} playback rows could not be read"));
    }
    Ok((out, paged))
}

pub(crate) async fn build_index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let (rows, mut paged) = read(api, cx).await?;
    let mut snap = Snapshot::unproven_legacy(Feature::Progress);
    let mut no_runtime = 0;
    for r in rows {
        match r.position_ms() {
            Some(pos) => snap.insert(Entry::progress(r.item, pos, r.runtime_ms, r.paused_at)),
            None => no_runtime += 1,
        }
    }
    if no_runtime > 0 {
        paged.problems.push(format!(
            "{no_runtime} resume points have no runtime to turn their percentage into a position"
        ));
    }
    if !paged.is_complete() {
        snap.mark_partial(paged.reason());
    }
    Ok(snap)
}

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

/// Sets resume points. One request per item (Trakt has no batch form).
pub(crate) async fn add(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Progress, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let (current, _) = read(api, cx).await?;
    let m = Matcher::new(current.iter().map(|r| &r.item));
    let mut dups = Dups::default();
    let mut queue: Vec<(usize, Item, f64)> = Vec::new();
    for i in ok {
        let Payload::Progress {
            position_ms,
            duration_ms,
            ..
        } = entries[i].payload
        else {
            continue;
        };
        let cur = m.find(&entries[i].item).map(|r| &current[r]);
        let Some(duration) = duration_ms
            .or(cur.and_then(|c| c.runtime_ms))
            .filter(|d| *d > 0)
        else {
            slots.set(
                i,
                unsupported("no duration is known to turn the position into a percentage"),
            );
            continue;
        };
        let pct = (position_ms as f64 / duration as f64 * 10_000.0).round() / 100.0;
        if pct <= 0.0 || pct >= 100.0 {
            slots.set(i, unsupported(format!("{pct}% is not a resume point")));
            continue;
        }
        if let Some(c) = cur {
            let same_pos = c
                .position_ms()
                .is_some_and(|p| p.abs_diff(position_ms) <= 1000);
            if same_pos || (c.progress - pct).abs() < 0.005 {
                slots.set(i, Outcome::AlreadyPresent);
                continue;
            }
        }
        if dups.first(entries[i].item.key(), i) {
            let item = cur.map_or_else(|| entries[i].item.clone(), |c| c.item.clone());
            queue.push((i, item, pct));
        }
    }
    let mut sent_any = false;
    for (i, item, pct) in queue {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        if slots.is_set(i) {
            continue; // a stop decided earlier (rate limit, down)
        }
        let Some(body) = scrobble_body(&item, pct) else {
            slots.set(i, unsupported("the item has no id Trakt understands"));
            continue;
        };
        sent_any = true;
        match api
            .post(cx, "POST /scrobble/pause", "/scrobble/pause", &body, true)
            .await
        {
            Ok(resp) if resp.status() == 201 => slots.set(i, Outcome::Confirmed),
            Ok(resp) => slots.set(
                i,
                Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some(format!("Trakt answered {} instead of 201", resp.status())),
                },
            ),
            Err(e) => {
                let eo = error_outcomes(&e);
                slots.set(i, eo.sent);
                if let Some(rest) = eo.rest {
                    slots.fill(&rest);
                    break;
                }
            }
        }
    }
    dups.resolve(&mut slots, Outcome::AlreadyPresent);
    Ok(slots.report(entries))
}

/// Removes resume points by their playback ids.
pub(crate) async fn remove(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Progress, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let (current, _) = read(api, cx).await?;
    let m = Matcher::new(current.iter().map(|r| &r.item));
    let mut dups = Dups::default();
    let mut queue = Vec::new();
    for i in ok {
        match m.find(&entries[i].item).and_then(|r| current[r].id) {
            None => slots.set(i, Outcome::AlreadyAbsent),
            Some(id) => {
                if dups.first(format!("id:{id}"), i) {
                    queue.push((i, id));
                }
            }
        }
    }
    let mut sent_any = false;
    for (i, id) in queue {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        if slots.is_set(i) {
            continue;
        }
        sent_any = true;
        let result = api
            .http
            .delete("DELETE /sync/playback/{id}", format!("/sync/playback/{id}"))
            .idempotent()
            .send(cx)
            .await;
        match result {
            Ok(_) => slots.set(i, Outcome::Confirmed),
            Err(e) if e.kind() == ErrorKind::NotFound => slots.set(i, Outcome::AlreadyAbsent),
            Err(e) => {
                let eo = error_outcomes(&e);
                slots.set(i, eo.sent);
                if let Some(rest) = eo.rest {
                    slots.fill(&rest);
                    break;
                }
            }
        }
    }
    dups.resolve(&mut slots, Outcome::AlreadyAbsent);
    Ok(slots.report(entries))
}

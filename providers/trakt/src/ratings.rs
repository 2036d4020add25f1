//! Ratings: `/sync/ratings` (1-10, the scale ferry keeps).

use ferry_core::{
    Context, Entry, Feature, Item, Outcome, Payload, Rating, Result, Snapshot, WriteReport,
};
use serde_json::{Map, Value, json};

use crate::api::{Api, Paged, error_outcomes};
use crate::common::{BATCH, Dups, Matcher, Slots, answer, unsupported, valid};
use crate::convert::{Body, WriteKind, item_from_row, outcomes, time_field, trakt_time};
use crate::watchlist::KINDS;

struct Rated {
    item: Item,
    rating: Rating,
    rated_at: Option<ferry_core::Timestamp>,
}

async fn read(api: &Api, cx: &Context) -> Result<(Vec<Rated>, Paged)> {
    let mut paged = api
        .read_all(cx, "GET /sync/ratings", "/sync/ratings", &[])
        .await?;
    let mut out = Vec::with_capacity(paged.rows.len());
    let mut skipped = 0;
    for r in &paged.rows {
        let rating = r
            .get("rating")
            .and_then(Value::as_u64)
            .and_then(|v| u8::try_from(v).ok())
            .and_then(Rating::new);
        match (item_from_row(r), rating) {
            (Some(item), Some(rating)) => out.push(Rated {
                item,
                rating,
                rated_at: time_field(r, "rated_at"),
            }),
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        paged
            .problems
            .push(format!("{skipped} rating rows could not be read"));
    }
    Ok((out, paged))
}

pub(crate) async fn build_index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let (rows, paged) = read(api, cx).await?;
    let mut snap = Snapshot::unproven_legacy(Feature::Ratings);
    for r in rows {
        snap.insert(Entry::rating(r.item, r.rating, r.rated_at));
    }
    if !paged.is_complete() {
        snap.mark_partial(paged.reason());
    }
    Ok(snap)
}

/// Adds or changes ratings. A title already rated the same is `AlreadyPresent` and is not
/// rewritten (its `rated_at` stays); a different rating is sent as an update.
pub(crate) async fn add(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Ratings, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let (current, _) = read(api, cx).await?;
    let m = Matcher::new(current.iter().map(|r| &r.item));
    let mut dups = Dups::default();
    // (entry, the item to send: Trakt's own when the title is already rated)
    let mut queue: Vec<(usize, Item)> = Vec::new();
    for i in ok {
        let Payload::Rating { rating, .. } = entries[i].payload else {
            continue;
        };
        let item = &entries[i].item;
        match m.find(item).map(|row| &current[row]) {
            Some(r) if r.rating == rating => slots.set(i, Outcome::AlreadyPresent),
            Some(r) => {
                if dups.first(item.key(), i) {
                    queue.push((i, r.item.clone()));
                }
            }
            None => {
                if dups.first(item.key(), i) {
                    queue.push((i, item.clone()));
                }
            }
        }
    }
    send(api, cx, entries, &queue, &mut slots, true).await?;
    dups.resolve(&mut slots, Outcome::AlreadyPresent);
    Ok(slots.report(entries))
}

pub(crate) async fn remove(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Ratings, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let (current, _) = read(api, cx).await?;
    let m = Matcher::new(current.iter().map(|r| &r.item));
    let mut dups = Dups::default();
    let mut queue = Vec::new();
    for i in ok {
        match m.find(&entries[i].item) {
            None => slots.set(i, Outcome::AlreadyAbsent),
            Some(row) => {
                if dups.first(format!("row:{row}"), i) {
                    queue.push((i, current[row].item.clone()));
                }
            }
        }
    }
    send(api, cx, entries, &queue, &mut slots, false).await?;
    dups.resolve(&mut slots, Outcome::AlreadyAbsent);
    Ok(slots.report(entries))
}

async fn send(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    queue: &[(usize, Item)],
    slots: &mut Slots,
    add: bool,
) -> Result<()> {
    let mut sent_any = false;
    for chunk in queue.chunks(BATCH) {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        let mut body = Body::new();
        for (i, item) in chunk {
            let mut x = Map::new();
            if add && let Payload::Rating { rating, rated_at } = entries[*i].payload {
                x.insert("rating".into(), json!(rating.get()));
                if let Some(t) = rated_at {
                    x.insert("rated_at".into(), json!(trakt_time(t)));
                }
            }
            if !body.push(*i, item, &x) {
                slots.set(
                    *i,
                    unsupported("the item has no id or title Trakt understands"),
                );
            }
        }
        if body.is_empty() {
            continue;
        }
        sent_any = true;
        let (op, path, kind) = if add {
            ("POST /sync/ratings", "/sync/ratings", WriteKind::Add)
        } else {
            (
                "POST /sync/ratings/remove",
                "/sync/ratings/remove",
                WriteKind::Remove,
            )
        };
        match api.post(cx, op, path, &body.to_json(), true).await {
            Ok(resp) => match answer(&resp) {
                Ok(a) => {
                    for (i, o) in outcomes(&body, &a, kind) {
                        slots.set(i, o);
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
                    break;
                }
            }
        }
    }
    Ok(())
}

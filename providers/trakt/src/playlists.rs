//! Playlists: the user's personal lists (`/users/me/lists`), one playlist per list, keyed
//! by name. Adding a playlist makes the list hold exactly its items in its order
//! (creating the list when needed); removing one deletes the list.

use std::collections::HashSet;

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, Item, MediaType, Outcome, Payload, Playlist, Result,
    Snapshot, UnresolvedReason, WriteReport,
};
use serde_json::{Value, json};

use crate::api::{Api, Paged, error_outcomes};
use crate::common::{Matcher, Slots, valid};
use crate::lists::{ListTarget, Listing, add_items, read_list, remove_items};

const KINDS: [MediaType; 1] = [MediaType::Playlist];

#[derive(Debug, Clone)]
struct TraktList {
    id: u64,
    name: String,
    description: Option<String>,
}

fn norm(name: &str) -> String {
    name.trim().to_lowercase()
}

fn desc(d: Option<&str>) -> Option<String> {
    d.map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

async fn lists(api: &Api, cx: &Context) -> Result<(Vec<TraktList>, Paged)> {
    let mut paged = api
        .read_all(cx, "GET /users/me/lists", "/users/me/lists", &[])
        .await?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for r in &paged.rows {
        let id = r
            .get("ids")
            .and_then(|i| i.get("trakt"))
            .and_then(Value::as_u64);
        let name = r.get("name").and_then(Value::as_str);
        match (id, name) {
            (Some(id), Some(name)) => out.push(TraktList {
                id,
                name: name.to_owned(),
                description: desc(r.get("description").and_then(Value::as_str)),
            }),
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        paged
            .problems
            .push(format!("{skipped} lists could not be read"));
    }
    Ok((out, paged))
}

/// All lists, or an error: writes must not create a second list because the first sat
/// on a page that failed.
async fn all_lists(api: &Api, cx: &Context) -> Result<Vec<TraktList>> {
    let (lists, paged) = lists(api, cx).await?;
    if !paged.is_complete() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the personal lists could not be read completely: {}",
                paged.reason()
            ),
        )
        .with_provider("trakt"));
    }
    Ok(lists)
}

pub(crate) async fn build_index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let (lists, paged) = lists(api, cx).await?;
    let mut problems = paged.problems;
    let mut snap = Snapshot::unproven_legacy(Feature::Playlists);
    let mut names = HashSet::new();
    for l in lists {
        if !names.insert(norm(&l.name)) {
            problems.push(format!(
                "two lists are named {:?}; only one is shown",
                l.name
            ));
            continue;
        }
        let listing = match read_list(api, cx, &ListTarget::List(l.id)).await {
            Ok(li) => li,
            Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
            Err(e) => {
                problems.push(format!("list {:?}: {e}", l.name));
                continue;
            }
        };
        if !listing.is_complete() {
            problems.push(format!("list {:?}: {}", l.name, listing.paged.reason()));
        }
        snap.insert(Entry::playlist(Playlist {
            name: l.name,
            description: l.description,
            items: listing.rows.into_iter().map(|r| r.item).collect(),
        }));
    }
    if !problems.is_empty() {
        snap.mark_partial(problems.join("; "));
    }
    Ok(snap)
}

/// The playlist's items without repeats (a Trakt list holds each title once).
fn wanted(p: &Playlist) -> Vec<Item> {
    let mut seen = HashSet::new();
    p.items
        .iter()
        .filter(|i| seen.insert(i.key()))
        .cloned()
        .collect()
}

/// Whether the list already holds exactly `want`, in order.
fn same_items(current: &Listing, want: &[Item]) -> bool {
    if current.rows.len() != want.len() {
        return false;
    }
    let m = Matcher::new(current.rows.iter().map(|r| &r.item));
    want.iter().enumerate().all(|(j, w)| m.find(w) == Some(j))
}

pub(crate) async fn add(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Playlists, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let mut lists = all_lists(api, cx).await?;
    let mut sent_any = false;
    for i in ok {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        let Payload::Playlist(p) = &entries[i].payload else {
            continue;
        };
        let want = wanted(p);
        let want_desc = desc(p.description.as_deref());
        let existing = lists
            .iter()
            .find(|l| norm(&l.name) == norm(&p.name))
            .cloned();
        let (id, current, old_desc) = match existing {
            Some(l) => {
                let current = match read_list(api, cx, &ListTarget::List(l.id)).await {
                    Ok(c) if c.is_complete() => c,
                    Ok(c) => {
                        slots.set(
                            i,
                            Outcome::Failed {
                                kind: ErrorKind::Unavailable,
                                message: format!(
                                    "the list could not be read completely: {}",
                                    c.paged.reason()
                                ),
                            },
                        );
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
                    Err(e) => {
                        slots.set(i, error_outcomes(&e).sent);
                        continue;
                    }
                };
                if same_items(&current, &want) && l.description == want_desc {
                    slots.set(i, Outcome::AlreadyPresent);
                    continue;
                }
                (l.id, current, l.description)
            }
            None => {
                sent_any = true;
                let body = json!({
                    "name": p.name.trim(),
                    "description": want_desc,
                    "privacy": "private",
                });
                // Not idempotent: a repeated create makes a second list.
                let created = api
                    .post(cx, "POST /users/me/lists", "/users/me/lists", &body, false)
                    .await
                    .and_then(|r| r.json::<Value>());
                let id = match created {
                    Ok(v) => v
                        .get("ids")
                        .and_then(|x| x.get("trakt"))
                        .and_then(Value::as_u64),
                    Err(e) => {
                        let eo = error_outcomes(&e);
                        slots.set(i, eo.sent);
                        if let Some(rest) = eo.rest {
                            slots.fill(&rest);
                            break;
                        }
                        continue;
                    }
                };
                let Some(id) = id else {
                    slots.set(
                        i,
                        Outcome::Unresolved {
                            reason: UnresolvedReason::Unconfirmed,
                            detail: Some("the created list has no id".into()),
                        },
                    );
                    continue;
                };
                lists.push(TraktList {
                    id,
                    name: p.name.trim().to_owned(),
                    description: want_desc.clone(),
                });
                let empty = Listing {
                    rows: Vec::new(),
                    paged: Paged::default(),
                };
                (id, empty, want_desc.clone())
            }
        };
        sent_any = true;
        let o = sync_items(
            api,
            cx,
            id,
            &current,
            &want,
            old_desc != want_desc,
            &want_desc,
        )
        .await;
        match o {
            Ok(o) => slots.set(i, o),
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                slots.set(i, Outcome::failed(&e));
                slots.fill(&Outcome::failed(&e));
                break;
            }
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
    Ok(slots.report(entries))
}

/// Makes list `id` (holding `current`) hold `want` in order.
async fn sync_items(
    api: &Api,
    cx: &Context,
    id: u64,
    current: &Listing,
    want: &[Item],
    update_desc: bool,
    description: &Option<String>,
) -> Result<Outcome> {
    let target = ListTarget::List(id);
    let m = Matcher::new(current.rows.iter().map(|r| &r.item));
    let mut keep = vec![false; current.rows.len()];
    let mut to_add = Vec::new();
    for w in want {
        match m.find(w) {
            Some(r) => keep[r] = true,
            None => to_add.push(w.clone()),
        }
    }
    let to_remove: Vec<Item> = current
        .rows
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(r, _)| r.item.clone())
        .collect();
    let mut problems: Vec<String> = Vec::new();
    let mut not_found = Vec::new();
    let mut over_limit = 0;
    if !to_remove.is_empty() {
        for (item, o) in to_remove
            .iter()
            .zip(remove_items(api, cx, &target, &to_remove, current).await?)
        {
            if !o.is_settled() {
                problems.push(format!("{} was not removed: {o:?}", item.label()));
            }
        }
    }
    if !to_add.is_empty() {
        let kept = Listing {
            rows: current
                .rows
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(r, _)| r.clone())
                .collect(),
            paged: Paged::default(),
        };
        for (item, o) in to_add
            .iter()
            .zip(add_items(api, cx, &target, &to_add, &kept).await?)
        {
            match o {
                Outcome::Confirmed | Outcome::AlreadyPresent => {}
                Outcome::Unresolved {
                    reason: UnresolvedReason::NotFound,
                    ..
                } => not_found.push(item.label()),
                Outcome::Unresolved {
                    reason: UnresolvedReason::AccountLimit,
                    ..
                } => over_limit += 1,
                o => problems.push(format!("{} was not added: {o:?}", item.label())),
            }
        }
    }
    // Order: read the list back and rank its items as the playlist has them.
    let after = read_list(api, cx, &target).await?;
    let by_item = Matcher::new(after.rows.iter().map(|r| &r.item));
    let wanted_ids: Vec<u64> = want
        .iter()
        .filter_map(|w| by_item.find(w).and_then(|r| after.rows[r].id))
        .collect();
    let order: Vec<u64> = after
        .rows
        .iter()
        .filter_map(|r| r.id)
        .filter(|id| wanted_ids.contains(id))
        .collect();
    if order != wanted_ids && !wanted_ids.is_empty() {
        let resp = api
            .post(
                cx,
                "POST /users/me/lists/{id}/items/reorder",
                &format!("/users/me/lists/{id}/items/reorder"),
                &json!({ "rank": wanted_ids }),
                true,
            )
            .await?;
        let skipped = resp
            .json::<Value>()
            .ok()
            .and_then(|v| v.get("skipped_ids").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0);
        if skipped > 0 {
            problems.push(format!("{skipped} items could not be ranked"));
        }
    }
    if update_desc {
        api.http
            .put("PUT /users/me/lists/{id}", format!("/users/me/lists/{id}"))
            .idempotent()
            .json(&json!({ "description": description }))
            .send(cx)
            .await?;
    }
    Ok(if over_limit > 0 {
        Outcome::Unresolved {
            reason: UnresolvedReason::AccountLimit,
            detail: Some(format!(
                "{over_limit} of {} items did not fit the Trakt list limit",
                want.len()
            )),
        }
    } else if !not_found.is_empty() {
        Outcome::Unresolved {
            reason: UnresolvedReason::NotFound,
            detail: Some(format!("not on Trakt: {}", not_found.join(", "))),
        }
    } else if !problems.is_empty() {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unconfirmed,
            detail: Some(problems.join("; ")),
        }
    } else {
        Outcome::Confirmed
    })
}

pub(crate) async fn remove(api: &Api, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Playlists, &KINDS, &mut slots);
    if ok.is_empty() {
        return Ok(slots.report(entries));
    }
    let lists = all_lists(api, cx).await?;
    let mut sent_any = false;
    for i in ok {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        let Payload::Playlist(p) = &entries[i].payload else {
            continue;
        };
        let Some(l) = lists.iter().find(|l| norm(&l.name) == norm(&p.name)) else {
            slots.set(i, Outcome::AlreadyAbsent);
            continue;
        };
        sent_any = true;
        let result = api
            .http
            .delete(
                "DELETE /users/me/lists/{id}",
                format!("/users/me/lists/{}", l.id),
            )
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
    Ok(slots.report(entries))
}

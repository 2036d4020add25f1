//! Playlists: the user's personal lists (`/users/me/lists`), one playlist per list, keyed
//! by name. Adding a playlist makes the list hold exactly its items in its order
//! (creating the list when needed); removing one deletes the list.

use std::collections::HashSet;

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, Item, MediaType, Outcome, Payload, Playlist, Proof,
    Result, Row, Snapshot, UnresolvedReason, WriteReport, read::decode,
};
use serde_json::json;

use crate::api::{Api, ListCall};
use crate::model::{ListRow, ReorderAnswer};
use crate::read::{ListTarget, Listing, read_list, read_list_proved};
use crate::write::{Matcher, list_add, list_remove, screen, writer};

const KINDS: [MediaType; 1] = [MediaType::Playlist];
/// What a personal list may hold (and a playlist entry may name).
const ITEM_KINDS: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];

fn norm(name: &str) -> String {
    name.trim().to_lowercase()
}

fn desc(d: Option<&str>) -> Option<String> {
    d.map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// The user's personal lists: one document (Trakt documents no pagination for it).
async fn lists(api: &Api, cx: &Context) -> Result<(Vec<ListRow>, Proof)> {
    let call = ListCall::new("GET /users/me/lists", "/users/me/lists");
    let read = api
        .read_whole(cx, "lists", &call, |v| {
            Row::from_result(decode::<ListRow>(&v))
        })
        .await?;
    Ok(read.into_parts())
}

/// All lists, or an error: writes must not create a second list because the first sat
/// on a page that failed.
async fn all_lists(api: &Api, cx: &Context) -> Result<Vec<ListRow>> {
    let (lists, proof) = lists(api, cx).await?;
    if let Some(why) = proof.reason() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("the personal lists could not be read completely: {why}"),
        )
        .with_provider("trakt"));
    }
    Ok(lists)
}

pub(crate) async fn index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let (lists, mut proof) = lists(api, cx).await?;
    let mut names = HashSet::new();
    let mut entries = Vec::new();
    for l in lists {
        if !names.insert(norm(&l.name)) {
            proof.mark_partial(format!(
                "two lists are named {:?}; only one is shown",
                l.name
            ));
            continue;
        }
        let (rows, list_proof) = match read_list_proved(api, cx, &ListTarget::List(l.ids.trakt))
            .await
        {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Auth) => return Err(e),
            Err(e) => {
                proof.mark_partial(format!("list {:?}: {e}", l.name));
                continue;
            }
        };
        if let Some(why) = list_proof.reason() {
            proof.mark_partial(format!("list {:?}: {why}", l.name));
        }
        entries.push(Entry::playlist(Playlist {
            name: l.name,
            description: desc(l.description.as_deref()),
            items: rows.into_iter().map(|r| r.item).collect(),
        }));
    }
    Ok(proof.snapshot(Feature::Playlists, entries))
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
    let mut w = writer(cx, entries, screen(entries, Feature::Playlists, &KINDS));
    if (0..entries.len()).all(|i| w.is_settled(i)) {
        return Ok(w.finish());
    }
    let mut lists = all_lists(api, cx).await?;
    while let Some(chunk) = w.next_chunk(1)? {
        let i = chunk[0];
        let Payload::Playlist(p) = &entries[i].payload else {
            continue;
        };
        let r = add_one(api, cx, p, &mut lists).await;
        w.record_one(i, r);
    }
    Ok(w.finish())
}

/// Makes one list match playlist `p`, creating it when no list has its name.
async fn add_one(
    api: &Api,
    cx: &Context,
    p: &Playlist,
    lists: &mut Vec<ListRow>,
) -> Result<Outcome> {
    let want = wanted(p);
    let want_desc = desc(p.description.as_deref());
    let existing = lists
        .iter()
        .find(|l| norm(&l.name) == norm(&p.name))
        .cloned();
    let (id, current, old_desc) = match existing {
        Some(l) => {
            let current = read_list(api, cx, &ListTarget::List(l.ids.trakt)).await?;
            if !current.is_complete() {
                return Ok(Outcome::Failed {
                    kind: ErrorKind::Unavailable,
                    message: format!(
                        "the list could not be read completely: {}",
                        current.partial.join("; ")
                    ),
                });
            }
            let old = desc(l.description.as_deref());
            if same_items(&current, &want) && old == want_desc {
                return Ok(Outcome::AlreadyPresent);
            }
            (l.ids.trakt, current, old)
        }
        None => {
            let body = json!({
                "name": p.name.trim(),
                "description": want_desc,
                "privacy": "private",
            });
            // Not idempotent: a repeated create makes a second list.
            let resp = api
                .post(cx, "POST /users/me/lists", "/users/me/lists", &body, false)
                .await?;
            let Ok(created) = resp.json::<ListRow>() else {
                return Ok(Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some("the created list has no id".into()),
                });
            };
            let id = created.ids.trakt;
            lists.push(created);
            (id, Listing::default(), want_desc.clone())
        }
    };
    sync_items(
        api,
        cx,
        id,
        current,
        &want,
        old_desc != want_desc,
        &want_desc,
    )
    .await
}

/// Makes list `id` (holding `current`) hold `want` in order.
async fn sync_items(
    api: &Api,
    cx: &Context,
    id: u64,
    mut current: Listing,
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
            None => to_add.push(Entry::watchlist(w.clone())),
        }
    }
    let to_remove: Vec<Entry> = current
        .rows
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(r, _)| Entry::watchlist(r.item.clone()))
        .collect();
    let mut problems: Vec<String> = Vec::new();
    let mut not_found = Vec::new();
    let mut over_limit = 0;
    if !to_remove.is_empty() {
        let pre = screen(&to_remove, Feature::Watchlist, &ITEM_KINDS);
        let r = list_remove(api, cx, &target, &to_remove, pre, &mut current).await?;
        for (e, o) in to_remove.iter().zip(r.items) {
            if !o.outcome.is_settled() {
                problems.push(format!(
                    "{} was not removed: {:?}",
                    e.item.label(),
                    o.outcome
                ));
            }
        }
    }
    if !to_add.is_empty() {
        let pre = screen(&to_add, Feature::Watchlist, &ITEM_KINDS);
        let r = list_add(api, cx, &target, &to_add, pre, &mut current).await?;
        for (e, o) in to_add.iter().zip(r.items) {
            match o.outcome {
                Outcome::Confirmed | Outcome::AlreadyPresent => {}
                Outcome::Unresolved {
                    reason: UnresolvedReason::NotFound,
                    ..
                } => not_found.push(e.item.label()),
                Outcome::Unresolved {
                    reason: UnresolvedReason::AccountLimit,
                    ..
                } => over_limit += 1,
                o => problems.push(format!("{} was not added: {o:?}", e.item.label())),
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
        match resp.json::<ReorderAnswer>() {
            Ok(a) if !a.skipped_ids.is_empty() => {
                problems.push(format!("{} items could not be ranked", a.skipped_ids.len()))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("the reorder answer could not be read: {e}")),
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
    let mut w = writer(cx, entries, screen(entries, Feature::Playlists, &KINDS));
    if (0..entries.len()).all(|i| w.is_settled(i)) {
        return Ok(w.finish());
    }
    let lists = all_lists(api, cx).await?;
    while let Some(chunk) = w.next_chunk(1)? {
        let i = chunk[0];
        let Payload::Playlist(p) = &entries[i].payload else {
            continue;
        };
        let Some(l) = lists.iter().find(|l| norm(&l.name) == norm(&p.name)) else {
            w.settle(i, Outcome::AlreadyAbsent);
            continue;
        };
        let result = api
            .http
            .delete(
                "DELETE /users/me/lists/{id}",
                format!("/users/me/lists/{}", l.ids.trakt),
            )
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
    Ok(w.finish())
}

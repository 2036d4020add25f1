//! List-shaped collections: the watchlist and the items of personal lists. Both page the
//! same rows, answer writes with `added`/`existing`/`not_found` plus the list's new
//! `item_count`, and refuse adds past an account limit with 420.

use ferry_core::{Context, Item, Outcome, Result, Timestamp, UnresolvedReason};
use serde_json::{Map, Value};

use crate::api::{Api, Paged, Settings, error_outcomes};
use crate::common::{BATCH, Dups, Matcher, Slots, answer, unsupported};
use crate::convert::{Body, WriteKind, item_from_row, outcomes, time_field};

/// Which list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListTarget {
    Watchlist,
    /// A personal list by trakt id.
    List(u64),
}

impl ListTarget {
    pub(crate) fn items_path(&self) -> String {
        match self {
            ListTarget::Watchlist => "/sync/watchlist".into(),
            ListTarget::List(id) => format!("/users/me/lists/{id}/items"),
        }
    }

    pub(crate) fn read_op(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "GET /sync/watchlist",
            ListTarget::List(_) => "GET /users/me/lists/{id}/items",
        }
    }

    fn add_op(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "POST /sync/watchlist",
            ListTarget::List(_) => "POST /users/me/lists/{id}/items",
        }
    }

    fn remove_op(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "POST /sync/watchlist/remove",
            ListTarget::List(_) => "POST /users/me/lists/{id}/items/remove",
        }
    }

    fn limit(&self, s: &Settings) -> Option<u64> {
        match self {
            ListTarget::Watchlist => s.watchlist_items,
            ListTarget::List(_) => s.list_items,
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "watchlist",
            ListTarget::List(_) => "list",
        }
    }
}

/// One row of a list.
#[derive(Debug, Clone)]
pub(crate) struct ListRow {
    /// The list item id (personal lists; used to reorder).
    pub(crate) id: Option<u64>,
    pub(crate) rank: Option<u64>,
    pub(crate) item: Item,
    pub(crate) listed_at: Option<Timestamp>,
}

/// A list as read, with its completeness.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) rows: Vec<ListRow>,
    pub(crate) paged: Paged,
}

impl Listing {
    pub(crate) fn is_complete(&self) -> bool {
        self.paged.is_complete()
    }

    /// How many items the list holds, as far as we know (the larger of what arrived and
    /// what the server declared).
    pub(crate) fn count(&self) -> u64 {
        (self.rows.len() as u64).max(self.paged.declared.unwrap_or(0))
    }
}

/// Reads a list in rank order. Rows ferry cannot represent (people) make it `Partial`.
pub(crate) async fn read_list(api: &Api, cx: &Context, target: &ListTarget) -> Result<Listing> {
    let mut paged = api
        .read_all(cx, target.read_op(), &target.items_path(), &[])
        .await?;
    let mut rows = Vec::with_capacity(paged.rows.len());
    let mut skipped = 0;
    for r in &paged.rows {
        match item_from_row(r) {
            Some(item) => rows.push(ListRow {
                id: r.get("id").and_then(Value::as_u64),
                rank: r.get("rank").and_then(Value::as_u64),
                item,
                listed_at: time_field(r, "listed_at"),
            }),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        paged.problems.push(format!(
            "{skipped} {} rows hold something ferry cannot represent",
            target.noun()
        ));
    }
    rows.sort_by_key(|r| r.rank.unwrap_or(u64::MAX));
    Ok(Listing { rows, paged })
}

fn over_limit(target: &ListTarget, limit: Option<u64>, count: u64) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::AccountLimit,
        detail: Some(match limit {
            Some(l) => format!("the Trakt {} is full ({count} of {l} items)", target.noun()),
            None => format!("the Trakt {} is full (420)", target.noun()),
        }),
    }
}

/// Adds `items` to a list whose current contents are `current`; one outcome per item.
///
/// Items already on the list are `AlreadyPresent` without a request. The rest go in
/// batches that fit the account limit (from `/users/settings`): exactly the items past
/// the limit are `Unresolved(AccountLimit)`. If Trakt still answers 420 (the limit or the
/// count moved), the limit and count are read again and the batch is cut to fit once more.
pub(crate) async fn add_items(
    api: &Api,
    cx: &Context,
    target: &ListTarget,
    items: &[Item],
    current: &Listing,
) -> Result<Vec<Outcome>> {
    let m = Matcher::new(current.rows.iter().map(|r| &r.item));
    let mut slots = Slots::new(items.len());
    let mut dups = Dups::default();
    let mut queue = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if m.find(item).is_some() {
            slots.set(i, Outcome::AlreadyPresent);
        } else if dups.first(item.key(), i) {
            queue.push(i);
        }
    }
    let mut count = current.count();
    let mut settings = api.settings(cx, false).await.ok();
    let mut refreshed = false;
    let mut sent_any = false;
    let mut pos = 0;
    while pos < queue.len() {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        let limit = settings.as_ref().and_then(|s| target.limit(s));
        let cap = limit.map_or(usize::MAX, |l| l.saturating_sub(count) as usize);
        if cap == 0 {
            for &i in &queue[pos..] {
                slots.set(i, over_limit(target, limit, count));
            }
            break;
        }
        let take = (queue.len() - pos).min(BATCH).min(cap);
        let chunk = queue[pos..pos + take].to_vec();
        let mut body = Body::new();
        for &i in &chunk {
            if !body.push(i, &items[i], &Map::new()) {
                slots.set(
                    i,
                    unsupported("the item has no id or title Trakt understands"),
                );
            }
        }
        if body.is_empty() {
            pos += take;
            continue;
        }
        sent_any = true;
        match api
            .post(
                cx,
                target.add_op(),
                &target.items_path(),
                &body.to_json(),
                true,
            )
            .await
        {
            Ok(resp) => {
                match answer(&resp) {
                    Ok(a) => {
                        let outs = outcomes(&body, &a, WriteKind::Add);
                        let added = outs
                            .iter()
                            .filter(|(_, o)| *o == Outcome::Confirmed)
                            .count() as u64;
                        for (i, o) in outs {
                            slots.set(i, o);
                        }
                        count = a
                            .get("list")
                            .and_then(|l| l.get("item_count"))
                            .and_then(Value::as_u64)
                            .unwrap_or(count + added);
                    }
                    Err(o) => {
                        for s in &body.sent {
                            slots.set(s.idx, o.clone());
                        }
                    }
                }
                pos += take;
            }
            Err(e) if e.kind() == ferry_core::ErrorKind::AccountLimit => {
                if refreshed {
                    // Refused again with fresh numbers: nothing more fits.
                    for &i in &queue[pos..] {
                        slots.set(i, error_outcomes(&e).sent);
                    }
                    break;
                }
                refreshed = true;
                if let Ok(s) = api.settings(cx, true).await {
                    settings = Some(s);
                }
                if let Ok(Some(n)) = api.count(cx, target.read_op(), &target.items_path()).await {
                    count = n;
                }
                if settings.as_ref().and_then(|s| target.limit(s)).is_none() {
                    // No limit to cut the batch to: report what Trakt refused.
                    for &i in &chunk {
                        slots.set(i, error_outcomes(&e).sent);
                    }
                    pos += take;
                }
            }
            Err(e) => {
                let eo = error_outcomes(&e);
                for &i in &chunk {
                    slots.set(i, eo.sent.clone());
                }
                pos += take;
                if let Some(rest) = eo.rest {
                    for &i in &queue[pos..] {
                        slots.set(i, rest.clone());
                    }
                    break;
                }
            }
        }
    }
    dups.resolve(&mut slots, Outcome::AlreadyPresent);
    Ok(slots.into_outcomes())
}

/// Removes `items` from a list whose current contents are `current`. Items not on it are
/// `AlreadyAbsent` without a request; the rest are sent with Trakt's own ids for them.
pub(crate) async fn remove_items(
    api: &Api,
    cx: &Context,
    target: &ListTarget,
    items: &[Item],
    current: &Listing,
) -> Result<Vec<Outcome>> {
    let m = Matcher::new(current.rows.iter().map(|r| &r.item));
    let mut slots = Slots::new(items.len());
    let mut dups = Dups::default();
    let mut queue: Vec<(usize, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match m.find(item) {
            None => slots.set(i, Outcome::AlreadyAbsent),
            Some(row) => {
                if dups.first(format!("row:{row}"), i) {
                    queue.push((i, row));
                }
            }
        }
    }
    let mut sent_any = false;
    for chunk in queue.chunks(BATCH) {
        if slots.cancelled(cx, sent_any)? {
            break;
        }
        let mut body = Body::new();
        for &(i, row) in chunk {
            if !body.push(i, &current.rows[row].item, &Map::new()) {
                slots.set(i, unsupported("the item has no id Trakt understands"));
            }
        }
        if body.is_empty() {
            continue;
        }
        sent_any = true;
        match api
            .post(
                cx,
                target.remove_op(),
                &format!("{}/remove", target.items_path()),
                &body.to_json(),
                true,
            )
            .await
        {
            Ok(resp) => match answer(&resp) {
                Ok(a) => {
                    for (i, o) in outcomes(&body, &a, WriteKind::Remove) {
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
    dups.resolve(&mut slots, Outcome::AlreadyAbsent);
    Ok(slots.into_outcomes())
}

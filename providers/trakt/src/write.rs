//! Writes to Trakt's sync endpoints through the kit's [`BatchWriter`]: one outcome per
//! entry in order, chunks of [`BATCH`], the one error-to-outcome policy (auth, rate
//! limits and an unreachable service stop the batch). Each chunk is confirmed per item
//! from Trakt's `added`/`existing`/`deleted`/`not_found` answer; an answer that cannot be
//! read is `Unresolved(Unconfirmed)`, never `Confirmed`.
//!
//! What Trakt already holds is resolved against one read of the list (see
//! [`crate::read::Known`]): titles already there are `AlreadyPresent` without a request,
//! an equal rating is not rewritten, a removal is sent with Trakt's own ids for the row.

use std::collections::HashMap;

use ferry_core::identity::AliasIndex;
use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, ErrorKind, Feature, Item, MediaType, Outcome,
    Payload, Result, UnresolvedReason, WriteReport,
};
use serde_json::{Map, Value, json};

use crate::api::Api;
use crate::convert::{Body, Listed, Rated, WriteKind, chunk_answer, nameable, trakt_time};
use crate::read::{Kept, ListTarget, Listing};

/// Items per write request (Trakt's sync endpoints take more, but smaller batches keep a
/// failure small).
pub(crate) const BATCH: usize = 100;

pub(crate) fn unsupported(detail: impl Into<String>) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(detail.into()),
    }
}

/// What each entry is before anything is sent: `Some` for an entry whose payload is not
/// `feature`'s or whose media type Trakt cannot hold there.
pub(crate) fn screen(
    entries: &[Entry],
    feature: Feature,
    kinds: &[MediaType],
) -> Vec<Option<Outcome>> {
    entries
        .iter()
        .map(|e| {
            if e.feature() != feature {
                Some(Outcome::wrong_payload(e, feature))
            } else if !kinds.contains(&e.item.kind) {
                Some(unsupported(format!(
                    "Trakt {feature} does not hold {}s",
                    e.item.kind
                )))
            } else {
                None
            }
        })
        .collect()
}

/// A writer with the screened entries already settled.
pub(crate) fn writer<'a>(
    cx: &'a Context,
    entries: &'a [Entry],
    pre: Vec<Option<Outcome>>,
) -> BatchWriter<'a> {
    let mut w = BatchWriter::new(cx, entries);
    for (i, o) in pre.into_iter().enumerate() {
        if let Some(o) = o {
            w.settle(i, o);
        }
    }
    w
}

/// Finds which of Trakt's rows an entry's item is (exact key, strong ids, then aliases).
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    index: AliasIndex,
    rows: HashMap<String, Vec<usize>>,
    len: usize,
}

impl Matcher {
    pub(crate) fn new<'a>(items: impl IntoIterator<Item = &'a Item>) -> Self {
        let mut m = Matcher::default();
        for item in items {
            m.push(item);
        }
        m
    }

    /// Adds the row after the last one.
    pub(crate) fn push(&mut self, item: &Item) {
        let key = item.key();
        self.index.insert(&key, item);
        self.rows.entry(key).or_default().push(self.len);
        self.len += 1;
    }

    /// Every row that is this title.
    pub(crate) fn all(&self, item: &Item) -> &[usize] {
        self.index
            .find(&item.key(), item)
            .and_then(|k| self.rows.get(k))
            .map_or(&[], Vec::as_slice)
    }

    /// The first row that is this title.
    pub(crate) fn find(&self, item: &Item) -> Option<usize> {
        self.all(item).first().copied()
    }
}

/// Whether a copy of the list still holds after these outcomes: every write either
/// settled or was refused without changing anything.
pub(crate) fn certain(report: &WriteReport) -> bool {
    report.items.iter().all(|i| match &i.outcome {
        Outcome::Unresolved { reason, .. } => matches!(
            reason,
            UnresolvedReason::NotFound
                | UnresolvedReason::Unsupported
                | UnresolvedReason::AccountLimit
        ),
        Outcome::Failed { .. } => false,
        _ => true,
    })
}

/// Repeats within one call: the first entry of each key is sent, the later ones are held
/// out of the batch and take its outcome afterwards (a second add of a confirmed title is
/// "already present").
#[derive(Debug, Default)]
pub(crate) struct Dups {
    first: HashMap<String, usize>,
    dups: Vec<(usize, usize)>,
}

impl Dups {
    /// `true` if `i` is the first with `key`; otherwise `i` is settled for now.
    pub(crate) fn first(&mut self, w: &mut BatchWriter<'_>, key: String, i: usize) -> bool {
        match self.first.get(&key) {
            Some(f) => {
                self.dups.push((i, *f));
                w.settle(i, Outcome::AlreadyPresent);
                false
            }
            None => {
                self.first.insert(key, i);
                true
            }
        }
    }

    /// Gives each repeat its first's outcome (`settled` when the first's intent holds).
    pub(crate) fn resolve(self, report: &mut WriteReport, settled: &Outcome) {
        for (d, f) in self.dups {
            let Some(o) = report.items.get(f).map(|x| x.outcome.clone()) else {
                continue;
            };
            if let Some(x) = report.items.get_mut(d) {
                x.outcome = if o.is_settled() { settled.clone() } else { o };
            }
        }
    }
}

/// Sends one chunk as a sync body: `items` are the chunk's titles with their per-item
/// fields, in chunk order. A title Trakt cannot be told about is `Unsupported`; an
/// answer that cannot be read leaves the chunk unconfirmed. Returns the list's new size
/// when Trakt reports one.
pub(crate) async fn sync_chunk(
    api: &Api,
    cx: &Context,
    (op, path): (&str, &str),
    kind: WriteKind,
    idempotent: bool,
    items: &[(&Item, Map<String, Value>)],
) -> Result<(ChunkAnswer, Option<u64>)> {
    let mut body = Body::new();
    let mut unnamed = Vec::new();
    for (j, (item, extras)) in items.iter().enumerate() {
        if !body.push(j, item, extras) {
            unnamed.push(j);
        }
    }
    let mut size = None;
    let mut answer = if body.is_empty() {
        ChunkAnswer::new(items.len())
    } else {
        match api.write(cx, op, path, &body.to_json(), idempotent).await? {
            Some(a) => {
                size = a.list.as_ref().and_then(|l| l.item_count);
                chunk_answer(items.len(), &body, &a, kind)
            }
            None => ChunkAnswer::all(
                items.len(),
                Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some("Trakt's answer could not be read".into()),
                },
            ),
        }
    };
    for j in unnamed {
        answer.set(
            j,
            unsupported("the item has no id or title Trakt understands"),
        );
    }
    Ok((answer, size))
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

/// Adds the entries' titles to a list holding `current`; one outcome per entry.
///
/// Titles already on the list are `AlreadyPresent` without a request. The rest go in
/// batches that fit the account limit (from `/users/settings`): exactly the titles past
/// the limit are `Unresolved(AccountLimit)`. If Trakt still answers 420 (the limit or the
/// count moved), both are read again and the batch is cut to fit once more. `current`
/// follows the titles now on the list.
pub(crate) async fn list_add(
    api: &Api,
    cx: &Context,
    target: &ListTarget,
    entries: &[Entry],
    pre: Vec<Option<Outcome>>,
    current: &mut Listing,
) -> Result<WriteReport> {
    let mut w = writer(cx, entries, pre);
    let mut m = current.take_index();
    let mut dups = Dups::default();
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        if m.find(&e.item).is_some() {
            w.settle(i, Outcome::AlreadyPresent);
        } else if !nameable(&e.item) {
            w.settle(
                i,
                unsupported("the item has no id or title Trakt understands"),
            );
        } else {
            dups.first(&mut w, e.item.key(), i);
        }
    }
    let mut count = current.rows.len() as u64;
    let mut settings = api.settings(cx, false).await.ok();
    let mut refreshed = false;
    let mut full = false;
    let ops = (target.add_op(), target.items_path());
    loop {
        let limit = settings.as_ref().and_then(|s| target.limit(s));
        let cap = limit.map_or(BATCH, |l| (l.saturating_sub(count) as usize).min(BATCH));
        if cap == 0 || full {
            for i in 0..entries.len() {
                if !w.is_settled(i) {
                    w.settle(i, over_limit(target, limit, count));
                }
            }
            break;
        }
        let Some(mut chunk) = w.next_chunk(cap)? else {
            break;
        };
        loop {
            let items: Vec<(&Item, Map<String, Value>)> = chunk
                .iter()
                .map(|&i| (&entries[i].item, Map::new()))
                .collect();
            let sent = sync_chunk(api, cx, (ops.0, &ops.1), WriteKind::Add, true, &items).await;
            match sent {
                Err(e) if e.kind() == ErrorKind::AccountLimit && !refreshed => {
                    refreshed = true;
                    if let Ok(s) = api.settings(cx, true).await {
                        settings = Some(s);
                    }
                    if let Ok(Some(n)) = api.count(cx, &target.call()).await {
                        count = n;
                    }
                    let limit = settings.as_ref().and_then(|s| target.limit(s));
                    let Some(l) = limit else {
                        // No limit to cut the batch to: report what Trakt refused.
                        w.record(&chunk, Err(e));
                        break;
                    };
                    let fits = (l.saturating_sub(count) as usize).min(chunk.len());
                    for &i in &chunk[fits..] {
                        w.settle(i, over_limit(target, limit, count));
                    }
                    chunk.truncate(fits);
                    if chunk.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    // Refused again with fresh numbers: nothing more fits.
                    full = e.kind() == ErrorKind::AccountLimit;
                    w.record(&chunk, Err(e));
                    break;
                }
                Ok((answer, size)) => {
                    w.record(&chunk, Ok(answer));
                    count = size.unwrap_or(count + chunk.len() as u64);
                    break;
                }
            }
        }
    }
    let mut report = w.finish();
    dups.resolve(&mut report, &Outcome::AlreadyPresent);
    let added: Vec<&Item> = entries
        .iter()
        .zip(&report.items)
        .filter(|(e, o)| matches!(o.outcome, Outcome::Confirmed) && m.find(&e.item).is_none())
        .map(|(e, _)| &e.item)
        .collect();
    for item in added {
        m.push(item);
        current.rows.push(Listed {
            id: None,
            rank: None,
            item: item.clone(),
            listed_at: None,
        });
    }
    current.keep_index(m);
    Ok(report)
}

/// Removes the entries' titles from what Trakt holds (`rows`, indexed by `m`, read with
/// `partial` as the reasons it may be incomplete) through `op`/`path`. Titles not there are
/// `AlreadyAbsent` without a request (unknown after a partial read); the rest are sent
/// with Trakt's own ids for them. `rows` follows the titles removed.
pub(crate) async fn sync_remove<T>(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    pre: Vec<Option<Outcome>>,
    (rows, m, item_of): (&mut Vec<T>, Matcher, fn(&T) -> &Item),
    partial: &[String],
    (op, path): (&str, &str),
) -> Result<WriteReport> {
    let mut w = writer(cx, entries, pre);
    let mut dups = Dups::default();
    let mut matched: Vec<Option<usize>> = vec![None; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        match m.find(&e.item) {
            None => w.settle(i, Outcome::unmatched(partial, false, "not on Trakt")),
            Some(row) => {
                if dups.first(&mut w, format!("row:{row}"), i) {
                    matched[i] = Some(row);
                }
            }
        }
    }
    while let Some(chunk) = w.next_chunk(BATCH)? {
        let items: Vec<(&Item, Map<String, Value>)> = chunk
            .iter()
            .map(|&i| {
                let item = matched[i].map_or(&entries[i].item, |r| item_of(&rows[r]));
                (item, Map::new())
            })
            .collect();
        let sent = sync_chunk(api, cx, (op, path), WriteKind::Remove, true, &items).await;
        w.record(&chunk, sent.map(|(a, _)| a));
    }
    let mut report = w.finish();
    dups.resolve(&mut report, &Outcome::AlreadyAbsent);
    let mut gone = vec![false; rows.len()];
    for (i, o) in report.items.iter().enumerate() {
        if o.outcome.is_settled()
            && let Some(r) = matched.get(i).copied().flatten()
        {
            gone[r] = true;
        }
    }
    let mut k = 0;
    rows.retain(|_| {
        k += 1;
        !gone[k - 1]
    });
    Ok(report)
}

/// Removes the entries' titles from a list holding `current`.
pub(crate) async fn list_remove(
    api: &Api,
    cx: &Context,
    target: &ListTarget,
    entries: &[Entry],
    pre: Vec<Option<Outcome>>,
    current: &mut Listing,
) -> Result<WriteReport> {
    let path = format!("{}/remove", target.items_path());
    // The rows change: the index is built again by the next write that needs one.
    let m = current.take_index();
    let rows = (
        &mut current.rows,
        m,
        (|r: &Listed| &r.item) as fn(&Listed) -> &Item,
    );
    let ops = (target.remove_op(), path.as_str());
    sync_remove(api, cx, entries, pre, rows, &current.partial, ops).await
}

/// Adds or changes ratings against `kept` (Trakt's ratings). A title already rated the
/// same is `AlreadyPresent` and is not rewritten (its `rated_at` stays); a different
/// rating is sent as an update of Trakt's row. `kept` follows the writes.
pub(crate) async fn ratings_add(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    pre: Vec<Option<Outcome>>,
    kept: &mut Kept<Rated>,
) -> Result<WriteReport> {
    let mut w = writer(cx, entries, pre);
    let mut m = kept.take_index(rated_item);
    let current = &mut kept.rows;
    let mut dups = Dups::default();
    // The title to send: Trakt's own when it is already rated.
    let mut send: Vec<Option<Item>> = vec![None; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if w.is_settled(i) {
            continue;
        }
        let Payload::Rating { rating, .. } = e.payload else {
            continue;
        };
        match m.find(&e.item).map(|row| &current[row]) {
            Some(r) if r.rating == rating => w.settle(i, Outcome::AlreadyPresent),
            found => {
                if dups.first(&mut w, e.item.key(), i) {
                    send[i] = Some(found.map_or_else(|| e.item.clone(), |r| r.item.clone()));
                }
            }
        }
    }
    while let Some(chunk) = w.next_chunk(BATCH)? {
        let items: Vec<(&Item, Map<String, Value>)> = chunk
            .iter()
            .map(|&i| {
                let mut x = Map::new();
                if let Payload::Rating { rating, rated_at } = entries[i].payload {
                    x.insert("rating".into(), json!(rating.get()));
                    if let Some(t) = rated_at {
                        x.insert("rated_at".into(), json!(trakt_time(t)));
                    }
                }
                (send[i].as_ref().unwrap_or(&entries[i].item), x)
            })
            .collect();
        let ops = ("POST /sync/ratings", "/sync/ratings");
        let sent = sync_chunk(api, cx, ops, WriteKind::Add, true, &items).await;
        w.record(&chunk, sent.map(|(a, _)| a));
    }
    let mut report = w.finish();
    dups.resolve(&mut report, &Outcome::AlreadyPresent);
    let mut added = Vec::new();
    for (e, o) in entries.iter().zip(&report.items) {
        let Payload::Rating { rating, rated_at } = e.payload else {
            continue;
        };
        if o.outcome == Outcome::Confirmed {
            match m.find(&e.item) {
                Some(row) => current[row].rating = rating,
                None => added.push(Rated {
                    item: e.item.clone(),
                    rating,
                    rated_at,
                }),
            }
        }
    }
    for r in added {
        m.push(&r.item);
        current.push(r);
    }
    kept.index = Some(m);
    Ok(report)
}

fn rated_item(r: &Rated) -> &Item {
    &r.item
}

/// Removes ratings from what Trakt holds (`kept`).
pub(crate) async fn ratings_remove(
    api: &Api,
    cx: &Context,
    entries: &[Entry],
    pre: Vec<Option<Outcome>>,
    kept: &mut Kept<Rated>,
    partial: &[String],
) -> Result<WriteReport> {
    // The rows change: the index is built again by the next write that needs one.
    let m = kept.take_index(rated_item);
    let rows = (&mut kept.rows, m, rated_item as fn(&Rated) -> &Item);
    let ops = ("POST /sync/ratings/remove", "/sync/ratings/remove");
    sync_remove(api, cx, entries, pre, rows, partial, ops).await
}

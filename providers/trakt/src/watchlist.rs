//! The watchlist: `/sync/watchlist`.

use ferry_core::{
    Context, Entry, Feature, Item, MediaType, Outcome, Payload, Result, Snapshot, WriteReport,
};

use crate::api::Api;
use crate::common::{Slots, valid};
use crate::lists::{ListTarget, add_items, read_list, remove_items};
use crate::memo::WatchlistMemo;

pub(crate) const KINDS: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];

/// The watchlist as Trakt lists it, plus the entries Trakt removed only because ferry
/// wrote a play of them (see [`crate::memo`]). Only a complete read updates the records.
pub(crate) async fn build_index(api: &Api, memo: &WatchlistMemo, cx: &Context) -> Result<Snapshot> {
    let started = memo.now_ms();
    let l = read_list(api, cx, &ListTarget::Watchlist).await?;
    let mut snap = Snapshot::unproven_legacy(Feature::Watchlist);
    let complete = l.is_complete();
    let reason = l.paged.reason();
    let rows: Vec<Entry> = l
        .rows
        .into_iter()
        .map(|r| {
            Entry::new(
                r.item,
                Payload::Watchlist {
                    listed_at: r.listed_at,
                },
            )
        })
        .collect();
    if complete {
        let retained = memo.after_complete_read(cx, started, &rows);
        snap.extend(rows);
        for e in retained {
            if !snap.contains_key(&e.key()) {
                snap.insert(e);
            }
        }
    } else {
        snap.extend(rows);
        snap.mark_partial(reason);
    }
    Ok(snap)
}

pub(crate) async fn write(
    api: &Api,
    memo: &WatchlistMemo,
    cx: &Context,
    entries: &[Entry],
    add: bool,
) -> Result<WriteReport> {
    cx.check_cancelled()?;
    let mut slots = Slots::new(entries.len());
    let ok = valid(entries, Feature::Watchlist, &KINDS, &mut slots);
    if !ok.is_empty() {
        let current = read_list(api, cx, &ListTarget::Watchlist).await?;
        let items: Vec<Item> = ok.iter().map(|&i| entries[i].item.clone()).collect();
        let outs = if add {
            add_items(api, cx, &ListTarget::Watchlist, &items, &current).await?
        } else {
            remove_items(api, cx, &ListTarget::Watchlist, &items, &current).await?
        };
        for (&i, o) in ok.iter().zip(outs) {
            slots.set(i, o);
        }
        let done: Vec<(&Entry, &Outcome)> = ok
            .iter()
            .filter_map(|&i| slots.get(i).map(|o| (&entries[i], o)))
            .collect();
        memo.after_write(cx, &done, add);
    }
    Ok(slots.report(entries))
}

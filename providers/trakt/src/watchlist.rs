//! The watchlist: `/sync/watchlist`.

use ferry_core::{
    Context, Entry, Feature, Item, MediaType, Payload, Result, Snapshot, WriteReport,
};

use crate::api::Api;
use crate::common::{Slots, valid};
use crate::lists::{ListTarget, add_items, read_list, remove_items};

pub(crate) const KINDS: [MediaType; 4] = [
    MediaType::Movie,
    MediaType::Show,
    MediaType::Season,
    MediaType::Episode,
];

pub(crate) async fn build_index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let l = read_list(api, cx, &ListTarget::Watchlist).await?;
    let mut snap = Snapshot::new(Feature::Watchlist);
    let complete = l.is_complete();
    let reason = l.paged.reason();
    for r in l.rows {
        snap.insert(Entry::new(
            r.item,
            Payload::Watchlist {
                listed_at: r.listed_at,
            },
        ));
    }
    if !complete {
        snap.mark_partial(reason);
    }
    Ok(snap)
}

pub(crate) async fn write(
    api: &Api,
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
    }
    Ok(slots.report(entries))
}

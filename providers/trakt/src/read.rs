//! Reads: every list goes through the kit's pager (`page`/`limit`, judged by Trakt's
//! `X-Pagination-Page-Count` and `-Item-Count`), rows decoded one at a time.
//!
//! Writes resolve against the *last* complete read of their list ([`Known`]) instead of
//! reading it again for every call: the engine reads a feature, then writes it in
//! batches of 100, so a first sync of N titles costs N / 250 page reads plus N / 100
//! writes, not a whole-list read per batch. The copy follows ferry's own writes (each
//! settled write updates it; anything uncertain drops it) and is read again when older
//! than [`KNOWN_TTL`]. A change made on Trakt after the read and before a write is not
//! seen by that write: an add Trakt already holds comes back `existing`, and a remove
//! of a title the copy does not hold is reported absent (the engine reads a feature
//! whose checkpoint moved before writing it, which refreshes the copy).

use std::sync::Mutex;

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, Item, Payload, Proof, Read, Result, Snapshot,
    Timestamp,
};

use crate::api::{Api, ListCall, Settings};
use crate::convert::{
    Listed, Play, Rated, Resume, list_row, play_row, rating_row, resume_row, trakt_time,
};
use crate::memo::WatchlistMemo;
use crate::write::Matcher;

/// How long writes may resolve against a read before reading the list again.
pub(crate) const KNOWN_TTL_MS: u64 = 120_000;

/// A complete read of one list kept for the writes that follow: when it was made
/// (provider clock, ms), its rows as ferry's writes left them, and the index over
/// exactly those rows when a write left one (so a sync in batches builds it once, not
/// once per batch).
#[derive(Debug)]
pub(crate) struct Kept<T> {
    pub(crate) at: u64,
    pub(crate) rows: Vec<T>,
    pub(crate) index: Option<Matcher>,
}

impl<T> Kept<T> {
    /// The index over the rows (built now unless one was kept); put it back in `index`
    /// once it covers the rows again.
    pub(crate) fn take_index(&mut self, item_of: fn(&T) -> &Item) -> Matcher {
        self.index
            .take()
            .unwrap_or_else(|| Matcher::new(self.rows.iter().map(item_of)))
    }
}

/// The last complete read of one list.
#[derive(Debug)]
pub(crate) struct Known<T>(Mutex<Option<Kept<T>>>);

impl<T> Default for Known<T> {
    fn default() -> Self {
        Known(Mutex::new(None))
    }
}

impl<T> Known<T> {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Kept<T>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a read for the writes that follow (a partial read is forgotten: it cannot
    /// say a title is absent).
    pub(crate) fn store(&self, at: u64, read: Option<Vec<T>>) {
        *self.slot() = read.map(|rows| Kept {
            at,
            rows,
            index: None,
        });
    }

    /// Takes the copy out if it is fresh enough (a write holds it while it runs).
    pub(crate) fn take_fresh(&self, now: u64) -> Option<Kept<T>> {
        self.slot()
            .take()
            .filter(|k| now.saturating_sub(k.at) < KNOWN_TTL_MS)
    }

    /// Puts a copy a write kept up to date back, unless a newer read replaced it.
    pub(crate) fn put_back(&self, kept: Kept<T>) {
        let mut slot = self.slot();
        if slot.as_ref().is_none_or(|k| k.at <= kept.at) {
            *slot = Some(kept);
        }
    }

    pub(crate) fn forget(&self) {
        *self.slot() = None;
    }
}

/// The copies writes resolve against.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    pub(crate) watchlist: Known<Listed>,
    pub(crate) ratings: Known<Rated>,
    pub(crate) playback: Known<Resume>,
}

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

    pub(crate) fn call(&self) -> ListCall {
        let op = match self {
            ListTarget::Watchlist => "GET /sync/watchlist",
            ListTarget::List(_) => "GET /users/me/lists/{id}/items",
        };
        ListCall::new(op, self.items_path())
    }

    pub(crate) fn add_op(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "POST /sync/watchlist",
            ListTarget::List(_) => "POST /users/me/lists/{id}/items",
        }
    }

    pub(crate) fn remove_op(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "POST /sync/watchlist/remove",
            ListTarget::List(_) => "POST /users/me/lists/{id}/items/remove",
        }
    }

    pub(crate) fn limit(&self, s: &Settings) -> Option<u64> {
        match self {
            ListTarget::Watchlist => s.watchlist_items,
            ListTarget::List(_) => s.list_items,
        }
    }

    pub(crate) fn noun(&self) -> &'static str {
        match self {
            ListTarget::Watchlist => "watchlist",
            ListTarget::List(_) => "list",
        }
    }
}

/// A list as read: its rows in rank order and why the read is partial (empty: it is
/// complete).
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub(crate) rows: Vec<Listed>,
    pub(crate) partial: Vec<String>,
    /// Over exactly `rows` when kept; a write takes it out before it changes `rows`.
    index: Option<Matcher>,
}

impl Listing {
    /// A list ferry just created, or a copy kept from a complete read.
    pub(crate) fn known(kept: Kept<Listed>) -> Self {
        Listing {
            rows: kept.rows,
            partial: Vec::new(),
            index: kept.index,
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.partial.is_empty()
    }

    /// The index over the rows (built now unless one was kept); give it back with
    /// [`Listing::keep_index`] once it covers the rows again.
    pub(crate) fn take_index(&mut self) -> Matcher {
        self.index
            .take()
            .unwrap_or_else(|| Matcher::new(self.rows.iter().map(|r| &r.item)))
    }

    /// Keeps an index over exactly the rows as they are now.
    pub(crate) fn keep_index(&mut self, index: Matcher) {
        self.index = Some(index);
    }

    /// The copy to keep for the next writes.
    pub(crate) fn into_kept(self, at: u64) -> Kept<Listed> {
        Kept {
            at,
            rows: self.rows,
            index: self.index,
        }
    }
}

/// Reads a list in rank order, with the proof of the read. Rows ferry cannot represent
/// (people) make it partial: a playlist written back from it would drop them.
pub(crate) async fn read_list_proved(
    api: &Api,
    cx: &Context,
    target: &ListTarget,
) -> Result<(Vec<Listed>, Proof)> {
    let mut foreign = 0;
    let read = api
        .read(cx, target.noun(), &target.call(), |v| {
            list_row(&v, &mut foreign)
        })
        .await?;
    let (mut rows, mut proof) = read.into_parts();
    if foreign > 0 {
        proof.mark_partial(format!(
            "{}: {foreign} rows hold something ferry cannot represent",
            target.noun()
        ));
    }
    rows.sort_by_key(|r| r.rank.unwrap_or(u64::MAX));
    Ok((rows, proof))
}

pub(crate) async fn read_list(api: &Api, cx: &Context, target: &ListTarget) -> Result<Listing> {
    let (rows, proof) = read_list_proved(api, cx, target).await?;
    Ok(Listing {
        rows,
        partial: proof.reasons().to_vec(),
        index: None,
    })
}

pub(crate) async fn read_ratings(api: &Api, cx: &Context) -> Result<Read<Rated>> {
    let call = ListCall::new("GET /sync/ratings", "/sync/ratings");
    api.read(cx, "ratings", &call, |v| rating_row(&v)).await
}

pub(crate) async fn read_playback(api: &Api, cx: &Context) -> Result<Read<Resume>> {
    let call = ListCall::new("GET /sync/playback", "/sync/playback").with("extended", "full");
    api.read(cx, "playback", &call, |v| resume_row(&v)).await
}

/// The plays in `window` (all of them without one); `None` if that takes more than
/// `max_pages` requests (after the first).
pub(crate) async fn read_plays(
    api: &Api,
    cx: &Context,
    window: Option<(Timestamp, Timestamp)>,
    max_pages: u64,
) -> Result<Option<Read<Play>>> {
    let mut call = ListCall::new("GET /sync/history", "/sync/history");
    if let Some((a, b)) = window {
        call = call
            .with("start_at", trakt_time(a))
            .with("end_at", trakt_time(b));
    }
    api.read_within(cx, "history", &call, max_pages, |v| play_row(&v))
        .await
}

/// The watchlist as Trakt lists it, plus the entries Trakt removed only because ferry
/// wrote a play of them (see [`crate::memo`]). Only a complete read updates the records.
pub(crate) async fn watchlist_index(
    api: &Api,
    memo: &WatchlistMemo,
    known: &Caches,
    cx: &Context,
) -> Result<Snapshot> {
    let started = memo.now_ms();
    let (listed, proof) = read_list_proved(api, cx, &ListTarget::Watchlist).await?;
    let complete = proof.is_complete();
    known
        .watchlist
        .store(started, complete.then(|| listed.clone()));
    let rows: Vec<Entry> = listed
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
    let mut entries = rows.clone();
    if complete {
        for e in memo.after_complete_read(cx, started, &rows) {
            if !entries.iter().any(|x| x.key() == e.key()) {
                entries.push(e);
            }
        }
    }
    Ok(proof.snapshot(Feature::Watchlist, entries))
}

pub(crate) async fn ratings_index(
    api: &Api,
    known: &Caches,
    at: u64,
    cx: &Context,
) -> Result<Snapshot> {
    let read = read_ratings(api, cx).await?;
    known
        .ratings
        .store(at, read.is_complete().then(|| read.rows.clone()));
    let (rows, proof) = read.into_parts();
    Ok(proof.snapshot(
        Feature::Ratings,
        rows.into_iter()
            .map(|r| Entry::rating(r.item, r.rating, r.rated_at)),
    ))
}

pub(crate) async fn history_index(api: &Api, cx: &Context) -> Result<Snapshot> {
    let read = read_plays(api, cx, None, u64::MAX)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::Unexpected, "an unbounded history read gave up"))?;
    let (rows, proof) = read.into_parts();
    Ok(proof.snapshot(
        Feature::History,
        rows.into_iter().map(|p| Entry::watch(p.item, p.at)),
    ))
}

pub(crate) async fn progress_index(
    api: &Api,
    known: &Caches,
    at: u64,
    cx: &Context,
) -> Result<Snapshot> {
    let read = read_playback(api, cx).await?;
    known
        .playback
        .store(at, read.is_complete().then(|| read.rows.clone()));
    let (rows, mut proof) = read.into_parts();
    let mut entries = Vec::with_capacity(rows.len());
    let mut no_runtime = 0;
    for r in rows {
        match r.position_ms() {
            Some(pos) => entries.push(Entry::progress(r.item, pos, r.runtime_ms, r.paused_at)),
            None => no_runtime += 1,
        }
    }
    if no_runtime > 0 {
        proof.mark_partial(format!(
            "playback: {no_runtime} resume points have no runtime to turn their percentage into a position"
        ));
    }
    Ok(proof.snapshot(Feature::Progress, entries))
}

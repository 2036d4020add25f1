//! Reads: every list through the kit's pager (`limit`/`offset`, complete only when the
//! rows read match the totals the pagination block declares), rows decoded one at a time.
//!
//! Each read also leaves a [`View`] of what the service holds, which the writes that
//! follow plan against and keep up to date ([`ListCache`]): the engine writes a feature in
//! batches right after reading it, and a re-read per batch would make a first sync
//! quadratic in the library.

use std::time::{Duration, Instant};

use ferry_core::identity::{TitleIndex, nearest_play};
use ferry_core::{
    Context, Entry, ListCache, Pager, Paging, Payload, Rating, Result, Snapshot, Timestamp,
};

use crate::MdblistProvider;
use crate::api::List;

/// How long writes may plan against a read before reading the list again.
pub(crate) const VIEW_TTL: Duration = Duration::from_secs(120);

/// A feature's list and the view of its last read.
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) list: &'static List,
    pub(crate) last: ListCache<View>,
}

/// What a read showed of one title: its rating (ratings), its plays (history: when,
/// and the play id once known; plays ferry wrote have none until the next read).
#[derive(Debug, Clone, Default)]
pub(crate) struct Held {
    rating: Option<Rating>,
    plays: Vec<(Timestamp, Option<u64>)>,
}

/// What one read showed: the titles and, when it was partial, why.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) held: TitleIndex<Held>,
    pub(crate) partial: Vec<String>,
}

impl View {
    /// Files an entry the service holds: read (with its play id), or written.
    pub(crate) fn hold(&mut self, e: &Entry, play_id: Option<u64>) {
        let held = self.held.get_or_insert_with(&e.item, Held::default);
        match e.payload {
            Payload::Rating { rating, .. } => held.rating = Some(rating),
            Payload::Watch { watched_at } => held.plays.push((watched_at, play_id)),
            _ => {}
        }
    }

    /// Forgets an entry the service no longer holds: the title, or the one play.
    pub(crate) fn forget(&mut self, e: &Entry) {
        let Payload::Watch { watched_at } = e.payload else {
            self.held.remove(&e.item);
            return;
        };
        if let Some(h) = self.held.get_mut(&e.item)
            && let Some(k) = nearest_play(&h.plays, watched_at)
        {
            h.plays.remove(k);
        }
    }

    /// The play `e` names: when, and its id if known.
    pub(crate) fn play(&self, e: &Entry) -> Option<(Timestamp, Option<u64>)> {
        let Payload::Watch { watched_at } = e.payload else {
            return None;
        };
        let plays = &self.held.get(&e.item)?.plays;
        nearest_play(plays, watched_at).map(|k| plays[k])
    }

    /// The rating a read showed for `e`'s title.
    pub(crate) fn rating(&self, e: &Entry) -> Option<Rating> {
        self.held.get(&e.item)?.rating
    }

    /// Whether this view shows `e` written: held (added), or held at all (removed).
    pub(crate) fn shows(&self, e: &Entry, add: bool) -> bool {
        match &e.payload {
            Payload::Watch { .. } => self.play(e).is_some(),
            Payload::Rating { rating, .. } => self.rating(e).is_some_and(|r| !add || r == *rating),
            _ => self.held.contains(&e.item),
        }
    }
}

impl MdblistProvider {
    /// A full read of a feature's list (`present` semantics); its view is kept for
    /// writes.
    pub(crate) async fn read(&self, cx: &Context, feed: &Feed) -> Result<Snapshot> {
        let list = feed.list;
        let paging = Paging::Offset {
            page_size: self.page_size,
            total_name: "pagination total_*",
        };
        let read = Pager::new(cx, list.feature.as_str(), paging)
            .read(
                |req| self.api.page(cx, list, req),
                |v| (list.decode)(&list.lists, &v),
            )
            .await?;
        let (rows, proof) = read.into_parts();
        let mut view = View {
            partial: proof.reasons().to_vec(),
            ..View::default()
        };
        rows.iter().for_each(|(e, play_id)| view.hold(e, *play_id));
        feed.last.store(view);
        Ok(proof.snapshot(list.feature, rows.into_iter().map(|(e, _)| e)))
    }

    /// A feature's view as last read; read now if that is too old, was partial (writes
    /// planned on a partial read defer what it may have missed), or `force`.
    pub(crate) async fn view(
        &self,
        cx: &Context,
        feed: &Feed,
        force: bool,
    ) -> Result<(Instant, View)> {
        let fresh = || feed.last.take_fresh();
        if !force && let Some(v) = fresh().filter(|(_, v)| v.partial.is_empty()) {
            return Ok(v);
        }
        self.read(cx, feed).await?;
        // Another write may have taken the copy meanwhile (the engine does not write one
        // feature twice at once); then nothing is known, which plans as a partial read.
        Ok(fresh().unwrap_or_else(|| {
            let partial = vec!["another write holds the list's last read".into()];
            let view = View {
                partial,
                ..View::default()
            };
            (Instant::now(), view)
        }))
    }
}

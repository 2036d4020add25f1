//! Reads: every list through the kit's pager (`limit`/`offset`, complete only when the
//! rows read match the totals the pagination block declares), rows decoded one at a time.
//!
//! Each read also leaves a [`View`] of what the service holds, which the writes that
//! follow plan against and keep up to date ([`ListCache`]): the engine writes a feature in
//! batches right after reading it, and a re-read per batch would make a first sync
//! quadratic in the library.

use std::time::{Duration, Instant};

use ferry_core::identity::TitleIndex;
use ferry_core::{
    Context, Entry, Feature, ListCache, Pager, Paging, Payload, Rating, Result, Row, Snapshot,
    Timestamp,
};
use serde_json::Value;

use crate::MdblistProvider;
use crate::api::{HISTORY, List, RATINGS, TOTAL_NAME, WATCHLIST};
use crate::convert::{Listed, Play, Rated, play_row, rating_row, watchlist_row};

/// How long writes may plan against a read before reading the list again.
pub(crate) const VIEW_TTL: Duration = Duration::from_secs(120);

/// What a read showed of one title: its rating (ratings), its plays (history: when,
/// and the play id once known; plays ferry wrote have none until the next read).
#[derive(Debug, Clone, Default)]
pub(crate) struct Held {
    pub(crate) rating: Option<Rating>,
    pub(crate) plays: Vec<(Timestamp, Option<u64>)>,
}

/// What one read showed: the titles and, when it was partial, why.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) held: TitleIndex<Held>,
    pub(crate) partial: Vec<String>,
}

/// The last read of each feature: watchlist, ratings, history.
#[derive(Debug)]
pub(crate) struct Views([ListCache<View>; 3]);

impl Default for Views {
    fn default() -> Self {
        Views(std::array::from_fn(|_| ListCache::new(VIEW_TTL)))
    }
}

impl Views {
    pub(crate) fn of(&self, f: Feature) -> &ListCache<View> {
        &self.0[match f {
            Feature::Watchlist => 0,
            Feature::Ratings => 1,
            _ => 2,
        }]
    }
}

/// The last read if it is fresh and was complete: writes planned on a partial read defer
/// what it may have missed, so after one the list is read again.
fn usable(cache: &ListCache<View>) -> Option<(Instant, View)> {
    cache.take_fresh().filter(|(_, v)| v.partial.is_empty())
}

impl MdblistProvider {
    /// Reads `list` through the pager, keeps its view (`hold` files a row in it) and
    /// makes the snapshot (`entry`).
    async fn keep<T>(
        &self,
        cx: &Context,
        feature: Feature,
        list: &List,
        decode: fn(Value) -> Row<T>,
        hold: fn(&mut TitleIndex<Held>, &T),
        entry: fn(T) -> Entry,
    ) -> Result<Snapshot> {
        let paging = Paging::Offset {
            page_size: self.page_size,
            total_name: TOTAL_NAME,
        };
        let read = Pager::new(cx, list.what, paging)
            .read(|req| self.api.page(cx, list, req), decode)
            .await?;
        let (rows, proof) = read.into_parts();
        let mut held = TitleIndex::new();
        rows.iter().for_each(|r| hold(&mut held, r));
        let partial = proof.reasons().to_vec();
        self.views.of(feature).store(View { held, partial });
        Ok(proof.snapshot(feature, rows.into_iter().map(entry)))
    }

    /// A full read of `feature` (`present` semantics); its view is kept for writes.
    pub(crate) async fn read(&self, cx: &Context, f: Feature) -> Result<Snapshot> {
        match f {
            Feature::Watchlist => {
                let hold =
                    |h: &mut TitleIndex<_>, (item, _): &Listed| h.insert(item, Held::default());
                let entry = |(item, listed_at)| Entry::new(item, Payload::Watchlist { listed_at });
                self.keep(cx, f, &WATCHLIST, watchlist_row, hold, entry)
                    .await
            }
            Feature::Ratings => {
                let hold = |h: &mut TitleIndex<_>, (item, r, _): &Rated| {
                    h.get_or_insert_with(item, Held::default).rating = Some(*r)
                };
                let entry = |(item, rating, at)| Entry::rating(item, rating, at);
                self.keep(cx, f, &RATINGS, rating_row, hold, entry).await
            }
            _ => {
                let hold = |h: &mut TitleIndex<Held>, p: &Play| {
                    let plays = &mut h.get_or_insert_with(&p.item, Held::default).plays;
                    plays.push((p.at, Some(p.play_id)));
                };
                let entry = |p: Play| Entry::watch(p.item, p.at);
                self.keep(cx, f, &HISTORY, play_row, hold, entry).await
            }
        }
    }

    /// A feature's view as last read; read now if that is too old, was partial, or
    /// `force`.
    pub(crate) async fn view(
        &self,
        cx: &Context,
        feature: Feature,
        force: bool,
    ) -> Result<(Instant, View)> {
        let cache = self.views.of(feature);
        if !force && let Some(v) = usable(cache) {
            return Ok(v);
        }
        self.read(cx, feature).await?;
        // Another write may have taken the copy meanwhile (the engine does not write one
        // feature twice at once); then nothing is known, which plans as a partial read.
        Ok(cache.take_fresh().unwrap_or_else(|| {
            let partial = vec!["another write holds the list's last read".into()];
            let held = TitleIndex::new();
            (Instant::now(), View { held, partial })
        }))
    }
}

//! Writes of the watchlist (Discover) and ratings (the server), one request per entry
//! through the kit's [`BatchWriter`] (one outcome per entry in order; auth, rate limits
//! and an unreachable server stop the batch). Neither endpoint answers with the state it
//! stored, so a 2xx is only "accepted" and each call ends with one re-read that confirms
//! it: the watchlist's newest rows for adds (one request), the whole watchlist for
//! removes, the rated items by rating key ([`crate::api::READ_BACK_CHUNK`] per request).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use ferry_core::identity::AliasIndex;
use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, ErrorKind, Feature, IdKind, Outcome, Payload, Rating,
    Result, Timestamp, UnresolvedReason, WriteReport,
};

use crate::api::{ListCall, PlexProvider, TITLES, container};
use crate::convert::{title_item, watchlist_row};
use crate::model::{ItemState, Library, ListPage};
use crate::read::Watchlist;

/// Newest watchlist rows read beyond the number of adds when confirming them.
const READ_BACK_MARGIN: usize = 5;

/// A title matching nothing the server read: see [`Outcome::unmatched`].
pub(crate) fn unmatched(partial: &[String], add: bool) -> Outcome {
    Outcome::unmatched(
        partial,
        add,
        "no item in the Plex library has any of these ids",
    )
}

pub(crate) fn unconfirmed(detail: impl Into<String>) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(detail.into()),
    }
}

pub(crate) fn unsupported(detail: impl Into<String>) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(detail.into()),
    }
}

/// Whether every outcome of a write is known for sure (a cached read that followed it
/// still tells the truth): nothing failed, nothing left unconfirmed or deferred.
pub(crate) fn certain(report: &WriteReport) -> bool {
    report.items.iter().all(|r| match &r.outcome {
        Outcome::Failed { .. } => false,
        Outcome::Unresolved { reason, .. } => matches!(
            reason,
            UnresolvedReason::NotFound | UnresolvedReason::Unsupported
        ),
        _ => true,
    })
}

fn rating_of(state: &ItemState) -> Option<Rating> {
    state.user_rating.and_then(Rating::normalize)
}

impl PlexProvider {
    pub(crate) async fn watchlist_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (at, mut wl) = self.watchlist_for_write(cx).await?;
        let r = self.watchlist_write_with(cx, &mut wl, entries, add).await;
        let keep = r.as_ref().is_ok_and(|(_, exact)| *exact);
        if keep {
            self.cache.watchlist.put_back(at, wl);
        }
        r.map(|(report, _)| report)
    }

    /// The Discover key a title is added under: the hex id of its `plex://` guid, from
    /// the entry or from the library.
    fn discover_key(e: &Entry, lib: &Library) -> std::result::Result<String, Outcome> {
        let guid = match e.item.ids.get(IdKind::Guid) {
            Some(g) if g.starts_with("plex://") => Some(g.to_owned()),
            _ => lib.resolve(&e.item).and_then(|li| li.plex_guid.clone()),
        };
        match guid.as_deref().and_then(|g| g.rsplit('/').next()) {
            Some(k) if !k.is_empty() => Ok(k.to_owned()),
            _ if !lib.partial().is_empty() => Err(unmatched(lib.partial(), true)),
            _ => Err(Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                detail: Some(
                    "ferry finds Discover titles through the library's plex:// guids; this title is not in the library".into(),
                ),
            }),
        }
    }

    /// The write, and whether the watchlist copy still tells the truth afterwards.
    async fn watchlist_write_with(
        &self,
        cx: &Context,
        wl: &mut Watchlist,
        entries: &[Entry],
        add: bool,
    ) -> Result<(WriteReport, bool)> {
        let listed = AliasIndex::build(wl.rows.iter().map(|(k, it)| (k.as_str(), it)));
        let mut lib: Option<(Instant, Library)> = None;
        let mut w = BatchWriter::new(cx, entries);
        let mut keys: Vec<Option<String>> = vec![None; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) {
                w.settle(i, Outcome::wrong_payload(e, Feature::Watchlist));
                continue;
            }
            if !TITLES.contains(&e.item.kind) {
                w.settle(
                    i,
                    unsupported(format!("the Plex watchlist holds no {}", e.item.kind)),
                );
                continue;
            }
            let on_list = listed.find(&e.item.key(), &e.item).map(str::to_owned);
            let key = match (on_list, add) {
                (Some(_), true) => {
                    w.settle(i, Outcome::AlreadyPresent);
                    continue;
                }
                (Some(k), false) => k,
                (None, false) => {
                    w.settle(i, unmatched(wl.proof.reasons(), false));
                    continue;
                }
                (None, true) => {
                    if lib.is_none() {
                        lib = Some(self.library_for_write(cx).await?);
                    }
                    match Self::discover_key(e, &lib.as_ref().expect("read above").1) {
                        Ok(k) => k,
                        Err(o) => {
                            w.settle(i, o);
                            continue;
                        }
                    }
                }
            };
            keys[i] = Some(key);
        }
        if let Some((at, l)) = lib {
            self.cache.library.put_back(at, l);
        }
        let mut sent: HashMap<String, String> = HashMap::new();
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Some(key) = keys[i].clone() else { continue };
            match self.watchlist_action(cx, &key, add).await {
                Ok(()) => {
                    sent.insert(entries[i].key(), key);
                    w.record(&chunk, Ok(ChunkAnswer::accepted(1)));
                }
                Err(e) if add && e.kind() == ErrorKind::Conflict => {
                    w.record_one(i, Ok(Outcome::AlreadyPresent))
                }
                Err(e) if !add && e.kind() == ErrorKind::NotFound => {
                    w.record_one(i, Ok(Outcome::AlreadyAbsent))
                }
                Err(e) => w.record_one(i, Err(e)),
            }
        }
        if sent.is_empty() {
            // The copy still holds when nothing was sent; a refused or failed send means
            // it was wrong or may be.
            let keep = keys.iter().all(Option::is_none);
            return Ok((w.finish(), keep));
        }
        let (present, whole) = if add {
            self.newest_watchlist_keys(cx, sent.len() + READ_BACK_MARGIN)
                .await
        } else {
            match self.read_watchlist(cx).await {
                Ok(fresh) => {
                    let keys = fresh.rows.iter().map(|(k, _)| k.clone()).collect();
                    let whole = fresh.proof.is_complete();
                    *wl = fresh;
                    (Some(keys), whole)
                }
                Err(_) => (None, false),
            }
        };
        let Some(present) = present else {
            for i in 0..entries.len() {
                if !w.is_settled(i) {
                    w.settle(
                        i,
                        unconfirmed("accepted, but the watchlist could not be read back"),
                    );
                }
            }
            return Ok((w.finish(), false));
        };
        w.confirm(add, |e| {
            let here = sent.get(&e.key()).is_some_and(|k| present.contains(k));
            if add { here } else { here || !whole }
        });
        let report = w.finish();
        if add {
            for (i, e) in entries.iter().enumerate() {
                let confirmed = report.items[i].outcome == Outcome::Confirmed;
                if let (true, Some(k)) = (confirmed, keys[i].as_ref()) {
                    wl.rows.push((k.clone(), e.item.clone()));
                }
            }
        }
        let exact = certain(&report);
        Ok((report, exact))
    }

    /// The Discover keys of the `n` titles watchlisted last (one request), and whether
    /// the answer decoded whole; `None` when it could not be read.
    async fn newest_watchlist_keys(
        &self,
        cx: &Context,
        n: usize,
    ) -> (Option<HashSet<String>>, bool) {
        let call = ListCall::discover(
            "GET /library/sections/watchlist/all",
            "/library/sections/watchlist/all",
        )
        .with("sort", "watchlistedAt:desc");
        let page = match self.list_request(&call, 0, n).send(cx).await {
            Ok(resp) => container::<ListPage>(&resp),
            Err(e) => Err(e),
        };
        let Ok(page) = page else { return (None, false) };
        let mut keys = HashSet::new();
        let mut whole = true;
        for raw in page.rows.unwrap_or_default() {
            match watchlist_row(raw) {
                ferry_core::Row::Keep(r) if title_item(&r).is_some() => {
                    keys.insert(r.rating_key.0);
                }
                ferry_core::Row::Bad(_) => whole = false,
                _ => {}
            }
        }
        (Some(keys), whole)
    }

    pub(crate) async fn ratings_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (at, mut lib) = self.library_for_write(cx).await?;
        let r = self.ratings_write_with(cx, &mut lib, entries, add).await;
        let keep = r.as_ref().is_ok_and(|(_, exact)| *exact);
        if keep {
            self.cache.library.put_back(at, lib);
        }
        r.map(|(report, _)| report)
    }

    /// Ratings: one `PUT /:/rate` per changed item, then the rated items read back.
    async fn ratings_write_with(
        &self,
        cx: &Context,
        lib: &mut Library,
        entries: &[Entry],
        add: bool,
    ) -> Result<(WriteReport, bool)> {
        let mut w = BatchWriter::new(cx, entries);
        // Per entry: (rating key, value sent, ratedAt).
        let mut plan: Vec<Option<(String, i32, Option<i64>)>> = vec![None; entries.len()];
        let now = Timestamp::now().unix();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Rating { rating, rated_at } = &e.payload else {
                w.settle(i, Outcome::wrong_payload(e, Feature::Ratings));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                w.settle(i, unmatched(lib.partial(), add));
                continue;
            };
            let have = rating_of(&li.state);
            plan[i] = Some(if add {
                if have == Some(*rating) {
                    w.settle(i, Outcome::AlreadyPresent);
                    continue;
                }
                // A time ahead of our clock is not sent (Plex refuses one in its future).
                let at = rated_at
                    .map(Timestamp::unix)
                    .filter(|t| *t > 0 && *t <= now);
                (li.rating_key.clone(), i32::from(rating.get()), at)
            } else {
                if have.is_none() {
                    w.settle(i, Outcome::AlreadyAbsent);
                    continue;
                }
                // Plex clears a rating with -1 (python-plexapi's reset; the Rate API
                // documents only 0-10).
                (li.rating_key.clone(), -1, None)
            });
        }
        let mut sent: HashMap<String, (String, i32)> = HashMap::new();
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Some((rk, value, at)) = plan[i].clone() else {
                continue;
            };
            match self.rate_at(cx, &rk, value, at).await {
                Ok(()) => {
                    sent.insert(entries[i].key(), (rk, value));
                    w.record(&chunk, Ok(ChunkAnswer::accepted(1)));
                }
                Err(e) => w.record_one(i, Err(e)),
            }
        }
        if sent.is_empty() {
            return Ok((w.finish(), true));
        }
        let mut keys: Vec<&str> = sent.values().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let (rows, failed) = self.read_back(cx, &keys).await;
        let failed: HashMap<String, String> = failed.into_iter().collect();
        let state: HashMap<String, ItemState> = rows
            .iter()
            .map(|r| (r.rating_key.0.clone(), ItemState::of(r)))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            if w.is_settled(i) {
                continue;
            }
            if let Some(err) = sent.get(&e.key()).and_then(|(rk, _)| failed.get(rk)) {
                w.settle(
                    i,
                    unconfirmed(format!("rated, but the item could not be read back: {err}")),
                );
            }
        }
        w.confirm(add, |e| {
            let Some((rk, value)) = sent.get(&e.key()) else {
                return !add;
            };
            let have = state.get(rk).and_then(rating_of);
            if add {
                have.is_some_and(|r| i32::from(r.get()) == *value)
            } else {
                have.is_some()
            }
        });
        for (rk, s) in &state {
            if let Some(held) = lib.state_mut(rk) {
                held.user_rating = s.user_rating;
                held.last_rated_at = s.last_rated_at;
            }
        }
        let report = w.finish();
        let exact = certain(&report);
        Ok((report, exact))
    }

    /// `PUT /:/rate` with `ratedAt` when the rating's time is known: Plex reads "The
    /// time when the rating occurred. If not present, interpreted as now" and refuses a
    /// `ratedAt` in its future with `400`. A server whose clock is behind ours may do that
    /// for a rating made moments ago: the rating is then sent once more without
    /// `ratedAt` and stamped with the server's clock.
    async fn rate_at(
        &self,
        cx: &Context,
        rk: &str,
        rating: i32,
        rated_at: Option<i64>,
    ) -> Result<()> {
        match self.rate(cx, rk, rating, rated_at).await {
            Err(err) if rated_at.is_some() && err.kind() == ErrorKind::InvalidInput => {
                cx.emitter.warn(&format!(
                    "{}: Plex refused ratedAt for item {rk} ({err}); sending the rating without its time",
                    self.instance
                ));
                self.rate(cx, rk, rating, None).await
            }
            r => r,
        }
    }
}

//! History: plays from `/status/sessions/history/all`, written with `/:/scrobble` and
//! removed with `DELETE /status/sessions/history/{id}`.
//!
//! Plex cannot record a play at a chosen time: `/:/scrobble` stamps the server's clock.
//! So after scrobbling, ferry reads the history again, finds the new row of each title
//! and keeps a small ledger (history id → the time the play really happened) in the
//! provider's key-value store. Reads report a ledgered play at its real time; without
//! that, a play copied from a tracker would come back as a second, newer play and be
//! copied again on the next run.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_core::{
    Context, Entry, Feature, HISTORY_TOLERANCE_SECS, Outcome, Payload, Result, Snapshot, Timestamp,
    UnresolvedReason, WriteReport,
};
use serde_json::Value;

use crate::library::Library;
use crate::outcome::{Outcomes, outcome_for, stops_batch, unmatched, wrong_payload};
use crate::paging::{fetch_all, i64_field, str_field};
use crate::{LIBRARY_IDENTIFIER, PlexProvider};

/// The key-value namespace of the watch-time ledger.
pub(crate) const LEDGER_NAMESPACE: &str = "plex.history_times";

/// One history row.
#[derive(Debug, Clone)]
pub(crate) struct Play {
    pub(crate) id: u64,
    pub(crate) rating_key: String,
    /// When the play happened: the ledgered time, else the server's `viewedAt`.
    pub(crate) at: i64,
}

fn history_id(row: &Value) -> Option<u64> {
    str_field(row, "historyKey")?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

impl PlexProvider {
    fn load_ledger(&self, cx: &Context) -> BTreeMap<u64, i64> {
        match self.kv.get(LEDGER_NAMESPACE, &self.instance) {
            Ok(Some(text)) => match serde_json::from_str::<BTreeMap<u64, i64>>(&text) {
                Ok(m) => m,
                Err(e) => {
                    cx.emitter.emit(
                        "plex:ledger_unreadable",
                        serde_json::json!({"instance": self.instance, "error": e.to_string()}),
                    );
                    BTreeMap::new()
                }
            },
            Ok(None) => BTreeMap::new(),
            Err(e) => {
                cx.emitter.emit(
                    "plex:ledger_unreadable",
                    serde_json::json!({"instance": self.instance, "error": e.to_string()}),
                );
                BTreeMap::new()
            }
        }
    }

    fn save_ledger(&self, ledger: &BTreeMap<u64, i64>) -> Result<()> {
        let text = serde_json::to_string(ledger).unwrap_or_else(|_| "{}".to_owned());
        self.kv.put(LEDGER_NAMESPACE, &self.instance, &text)
    }

    /// Every history row, with ledgered times applied.
    async fn plays(
        &self,
        cx: &Context,
        ledger: &BTreeMap<u64, i64>,
    ) -> Result<(Vec<Play>, Vec<String>)> {
        let paged = fetch_all(
            cx,
            &self.pms,
            "GET /status/sessions/history/all",
            "/status/sessions/history/all",
            &[("sort", "viewedAt:desc".to_owned())],
            self.page_size,
            "watch history",
        )
        .await?;
        let plays = paged
            .rows
            .iter()
            .filter_map(|row| {
                let id = history_id(row)?;
                let viewed = i64_field(row, "viewedAt")?;
                Some(Play {
                    id,
                    rating_key: str_field(row, "ratingKey")?,
                    at: ledger.get(&id).copied().unwrap_or(viewed),
                })
            })
            .collect();
        Ok((plays, paged.partial))
    }

    pub(crate) async fn history_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.library(cx).await?;
        let mut ledger = self.load_ledger(cx);
        let (plays, partial) = self.plays(cx, &ledger).await?;
        let mut snap = Snapshot::new(Feature::History);
        let mut with_rows: HashSet<&str> = HashSet::new();
        for p in &plays {
            with_rows.insert(&p.rating_key);
            if let Some(li) = lib.get(&p.rating_key) {
                snap.insert(Entry::watch(li.item.clone(), Timestamp::from_unix(p.at)));
            }
        }
        // Items marked watched without a history row (marked before history existed,
        // or rows pruned) still count as one play at their last view.
        for li in &lib.items {
            if li.view_count > 0
                && !with_rows.contains(li.rating_key.as_str())
                && let Some(at) = li.last_viewed_at
                && matches!(
                    li.item.kind,
                    ferry_core::MediaType::Movie | ferry_core::MediaType::Episode
                )
            {
                snap.insert(Entry::watch(li.item.clone(), Timestamp::from_unix(at)));
            }
        }
        for p in lib.partial.iter().chain(&partial) {
            snap.mark_partial(p.clone());
        }
        // Forget ledgered rows that no longer exist, but only on a complete read.
        if partial.is_empty() {
            let live: HashSet<u64> = plays.iter().map(|p| p.id).collect();
            let before = ledger.len();
            ledger.retain(|id, _| live.contains(id));
            if ledger.len() != before {
                self.save_ledger(&ledger)?;
            }
        }
        Ok(snap)
    }

    pub(crate) async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let lib = self.library(cx).await?;
        let mut ledger = self.load_ledger(cx);
        let (before, before_partial) = self.plays(cx, &ledger).await?;
        let known: HashSet<u64> = before.iter().map(|p| p.id).collect();
        let mut times: HashMap<String, Vec<i64>> = HashMap::new();
        for p in &before {
            times.entry(p.rating_key.clone()).or_default().push(p.at);
        }
        add_fallback_plays(&lib, &mut times);
        let mut out = Outcomes::new(entries.len());
        // (entry index, rating key, requested time) of each scrobble sent.
        let mut sent: Vec<(usize, String, i64)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                out.set(i, wrong_payload(e, Feature::History));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                out.set(i, unmatched(&lib.partial, true));
                continue;
            };
            let at = watched_at.unix();
            let rk = li.rating_key.clone();
            let plays = times.entry(rk.clone()).or_default();
            if plays
                .iter()
                .any(|t| t.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
            {
                out.set(i, Outcome::AlreadyPresent);
                continue;
            }
            if !before_partial.is_empty() {
                // The play may be on a page we could not read: adding could duplicate it.
                out.set(i, unmatched(&before_partial, true));
                continue;
            }
            if let Err(e) = cx.check_cancelled() {
                if sent.is_empty() {
                    return Err(e);
                }
                out.fill(&Outcome::failed(&e));
                break;
            }
            let r = self
                .pms
                .put("PUT /:/scrobble", "/:/scrobble")
                .query("key", &rk)
                .query("identifier", LIBRARY_IDENTIFIER)
                .send(cx)
                .await;
            match r {
                Ok(_) => {
                    plays.push(at);
                    sent.push((i, rk, at));
                }
                Err(err) => {
                    let o = outcome_for(&err);
                    out.set(i, o.clone());
                    if stops_batch(&err) {
                        out.fill(&o);
                        break;
                    }
                }
            }
        }
        if sent.is_empty() {
            return Ok(out.report(entries));
        }
        // Read back: each scrobble must show up as a new row of its title.
        match self.plays(cx, &ledger).await {
            Ok((after, _)) => {
                let mut fresh: HashMap<String, Vec<u64>> = HashMap::new();
                for p in after.iter().filter(|p| !known.contains(&p.id)) {
                    fresh.entry(p.rating_key.clone()).or_default().push(p.id);
                }
                for ids in fresh.values_mut() {
                    ids.sort_unstable_by(|a, b| b.cmp(a)); // pop() yields the oldest
                }
                for (i, rk, at) in sent {
                    match fresh.get_mut(&rk).and_then(Vec::pop) {
                        Some(id) => {
                            ledger.insert(id, at);
                            out.set(i, Outcome::Confirmed);
                        }
                        None => out.set(
                            i,
                            Outcome::Unresolved {
                                reason: UnresolvedReason::Unconfirmed,
                                detail: Some(
                                    "Plex accepted the scrobble but no new history row appeared"
                                        .into(),
                                ),
                            },
                        ),
                    }
                }
                self.save_ledger(&ledger)?;
            }
            Err(err) => {
                for (i, _, _) in sent {
                    out.set(
                        i,
                        Outcome::Unresolved {
                            reason: UnresolvedReason::Unconfirmed,
                            detail: Some(format!(
                                "scrobbled, but the history could not be read back: {err}"
                            )),
                        },
                    );
                }
            }
        }
        Ok(out.report(entries))
    }

    pub(crate) async fn history_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let lib = self.library(cx).await?;
        let mut ledger = self.load_ledger(cx);
        let (plays, plays_partial) = self.plays(cx, &ledger).await?;
        let mut by_rk: HashMap<String, Vec<Play>> = HashMap::new();
        for p in plays {
            by_rk.entry(p.rating_key.clone()).or_default().push(p);
        }
        let mut out = Outcomes::new(entries.len());
        let mut touched: Vec<String> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                out.set(i, wrong_payload(e, Feature::History));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                out.set(i, unmatched(&lib.partial, false));
                continue;
            };
            let at = watched_at.unix();
            let rows = by_rk.entry(li.rating_key.clone()).or_default();
            let closest = rows
                .iter()
                .enumerate()
                .filter(|(_, p)| p.at.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
                .min_by_key(|(_, p)| p.at.abs_diff(at))
                .map(|(n, p)| (n, p.id));
            if let Err(err) = cx.check_cancelled() {
                if touched.is_empty() {
                    return Err(err);
                }
                out.fill(&Outcome::failed(&err));
                break;
            }
            let result = match closest {
                Some((n, id)) => {
                    let r = self
                        .pms
                        .delete(
                            "DELETE /status/sessions/history/{id}",
                            format!("/status/sessions/history/{id}"),
                        )
                        .idempotent()
                        .send(cx)
                        .await;
                    match r {
                        Ok(_) => {
                            rows.remove(n);
                            ledger.remove(&id);
                            Ok(Outcome::Confirmed)
                        }
                        Err(err) if err.kind() == ferry_core::ErrorKind::NotFound => {
                            rows.remove(n);
                            Ok(Outcome::AlreadyAbsent)
                        }
                        Err(err) => Err(err),
                    }
                }
                // Watched without a history row: the play is the watched state itself.
                None if rows.is_empty()
                    && li.view_count > 0
                    && li
                        .last_viewed_at
                        .is_some_and(|t| t.abs_diff(at) <= HISTORY_TOLERANCE_SECS) =>
                {
                    self.unscrobble(cx, &li.rating_key)
                        .await
                        .map(|()| Outcome::Confirmed)
                }
                None => Ok(unmatched(&plays_partial, false)),
            };
            match result {
                Ok(o) => {
                    if o == Outcome::Confirmed {
                        touched.push(li.rating_key.clone());
                    }
                    out.set(i, o);
                }
                Err(err) => {
                    let o = outcome_for(&err);
                    out.set(i, o.clone());
                    if stops_batch(&err) {
                        out.fill(&o);
                        break;
                    }
                }
            }
        }
        // A title whose last play is gone reads as unwatched, as on the other side.
        touched.sort();
        touched.dedup();
        for rk in touched {
            let none_left = by_rk.get(&rk).is_none_or(Vec::is_empty);
            let watched = lib.get(&rk).is_some_and(|li| li.view_count > 0);
            if none_left && watched {
                // Best effort: the history rows are already gone.
                if let Err(err) = self.unscrobble(cx, &rk).await {
                    cx.emitter.emit(
                        "plex:unscrobble_failed",
                        serde_json::json!({"instance": self.instance, "error": err.to_string()}),
                    );
                }
            }
        }
        self.save_ledger(&ledger)?;
        Ok(out.report(entries))
    }

    async fn unscrobble(&self, cx: &Context, rk: &str) -> Result<()> {
        self.pms
            .put("PUT /:/unscrobble", "/:/unscrobble")
            .query("key", rk)
            .query("identifier", LIBRARY_IDENTIFIER)
            .idempotent()
            .send(cx)
            .await
            .map(drop)
    }
}

/// Watched items without history rows count as one play at their last view.
fn add_fallback_plays(lib: &Library, times: &mut HashMap<String, Vec<i64>>) {
    for li in &lib.items {
        if li.view_count > 0
            && !times.contains_key(&li.rating_key)
            && let Some(at) = li.last_viewed_at
        {
            times.insert(li.rating_key.clone(), vec![at]);
        }
    }
}

//! History: plays from `/status/sessions/history/all` plus the plays ferry marked, written
//! with `/:/scrobble` and removed with `DELETE /status/sessions/history/{id}`.
//!
//! Plex documents `PUT /:/scrobble` (PMS API, Timeline) as: "Mark an item as played.
//! Note, this does not create any view history of this item but rather just sets the
//! state as played." It has no parameter for the time of the play; it bumps the item's
//! `viewCount` and stamps `lastViewedAt` with the server's clock. History rows come only
//! from real plays in a client and go only with `DELETE /status/sessions/history/{id}`;
//! `/:/unscrobble` marks the item unplayed and leaves its rows.
//!
//! So a play ferry adds is a *marked-played* state, never a row. ferry keeps a ledger per
//! instance in its key-value store (namespace [`LEDGER_NAMESPACE`], key = instance): for
//! each rating key, the plays it marked as `(stamp, at)` — `stamp` is the `lastViewedAt`
//! the server showed right after the scrobble, `at` the time the play really happened.
//! A read of the history is:
//!
//! - every history row, at its `viewedAt`;
//! - every ledgered play of an item that still reads played (`viewCount > 0` and
//!   `lastViewedAt >= stamp`), at its real time — an item the user marked unwatched loses
//!   them;
//! - an item marked played with no row and no valid ledgered play: one play at its
//!   `lastViewedAt` (marked before history existed, rows pruned, or the ledger is gone).
//!
//! Without the ledger a play copied from a tracker would be re-sent every run (a title
//! with rows never shows it) and each retry would mark the item played again (play-count
//! inflation). Ledger entries that no longer hold are dropped only after a complete read.
//! The format of the former ledger (`plex.history_times`: history id → time, which
//! assumed a scrobble creates a row) is not read.
//!
//! Writes resolve against the last library and history reads (see [`crate::read`]); a
//! scrobble's confirmation reads the items back by rating key, so a call costs its
//! scrobbles plus one request per [`crate::api::READ_BACK_CHUNK`] items.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, Error, ErrorKind, Feature, HISTORY_TOLERANCE_SECS,
    MediaType, Outcome, Payload, Read, Result, Snapshot, Timestamp, WriteReport,
};
use serde::{Deserialize, Serialize};

use crate::api::PlexProvider;
use crate::model::{HistoryRow, ItemState, LibItem, Library, Mark};
use crate::write::{certain, unconfirmed, unmatched, unsupported};

/// The key-value namespace of the ledger of plays ferry marked.
pub(crate) const LEDGER_NAMESPACE: &str = "plex.marked_plays";
/// The version written in the ledger; any other content reads as unreadable.
const LEDGER_VERSION: u32 = 2;

/// rating key → the plays ferry marked on it.
type Ledger = BTreeMap<String, Vec<Mark>>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    version: u32,
    plays: Ledger,
}

/// Where a play comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A history row (its id).
    Row(u64),
    /// A play ferry marked.
    Marked(Mark),
    /// The watched state of an item without rows or valid marks.
    Watched,
}

/// One play of a title.
#[derive(Debug, Clone)]
struct Play {
    rating_key: String,
    /// When the play happened.
    at: i64,
    source: Source,
}

/// What removing one play takes.
#[derive(Debug, Clone)]
enum Removal {
    DeleteRow(u64),
    DropMark(Mark),
    Unscrobble,
}

fn playable(li: &LibItem) -> bool {
    matches!(li.item.kind, MediaType::Movie | MediaType::Episode)
}

/// Whether a marked play still holds: the item reads played, not unmarked since.
fn holds(li: &LibItem, m: &Mark) -> bool {
    li.state.view_count > 0 && li.state.last_viewed_at.is_some_and(|t| t >= m.stamp)
}

/// The recorded plays: rows, and marked plays that hold.
fn recorded_plays(lib: &Library, rows: &[HistoryRow], ledger: &Ledger) -> Vec<Play> {
    let mut plays: Vec<Play> = rows
        .iter()
        .map(|r| Play {
            rating_key: r.rating_key.clone(),
            at: r.viewed_at,
            source: Source::Row(r.id),
        })
        .collect();
    for (rk, marks) in ledger {
        let Some(li) = lib.get(rk) else { continue };
        for m in marks.iter().filter(|m| holds(li, m)) {
            plays.push(Play {
                rating_key: rk.clone(),
                at: m.at,
                source: Source::Marked(*m),
            });
        }
    }
    plays
}

/// Every play: rows, marked plays that hold, then watched items without either.
fn all_plays(lib: &Library, rows: &[HistoryRow], ledger: &Ledger) -> Vec<Play> {
    let mut plays = recorded_plays(lib, rows, ledger);
    let seen: HashSet<&str> = plays.iter().map(|p| p.rating_key.as_str()).collect();
    let watched: Vec<Play> = lib
        .items
        .iter()
        .filter(|li| {
            li.state.view_count > 0 && playable(li) && !seen.contains(li.rating_key.as_str())
        })
        .filter_map(|li| {
            Some(Play {
                rating_key: li.rating_key.clone(),
                at: li.state.last_viewed_at?,
                source: Source::Watched,
            })
        })
        .collect();
    plays.extend(watched);
    plays
}

fn by_title(plays: Vec<Play>) -> HashMap<String, Vec<Play>> {
    let mut m: HashMap<String, Vec<Play>> = HashMap::new();
    for p in plays {
        m.entry(p.rating_key.clone()).or_default().push(p);
    }
    m
}

/// Drops the marks of items that read unplayed (or unmarked since); marks of items the
/// library scan did not return are kept. Whether anything changed.
fn prune(lib: &Library, ledger: &mut Ledger) -> bool {
    let count = |l: &Ledger| l.values().map(Vec::len).sum::<usize>();
    let before = count(ledger);
    ledger.retain(|rk, marks| {
        if let Some(li) = lib.get(rk) {
            marks.retain(|m| holds(li, m));
        }
        !marks.is_empty()
    });
    before != count(ledger)
}

fn remove_mark(ledger: &mut Ledger, rk: &str, m: &Mark) {
    if let Some(marks) = ledger.get_mut(rk) {
        if let Some(n) = marks.iter().position(|x| x == m) {
            marks.remove(n);
        }
        if marks.is_empty() {
            ledger.remove(rk);
        }
    }
}

/// The closest play to `at` within the tolerance: its position and source.
fn closest(plays: &[Play], at: i64) -> Option<(usize, Source)> {
    plays
        .iter()
        .enumerate()
        .filter(|(_, p)| p.at.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
        .min_by_key(|(_, p)| p.at.abs_diff(at))
        .map(|(n, p)| (n, p.source))
}

impl PlexProvider {
    fn ledger_unreadable(&self, cx: &Context, error: String) {
        cx.emitter.emit(
            "plex:ledger_unreadable",
            serde_json::json!({"instance": self.instance, "error": error}),
        );
    }

    fn load_ledger(&self, cx: &Context) -> Ledger {
        match self.kv.get(LEDGER_NAMESPACE, &self.instance) {
            Ok(Some(text)) => match serde_json::from_str::<LedgerFile>(&text) {
                Ok(f) if f.version == LEDGER_VERSION => f.plays,
                Ok(f) => {
                    self.ledger_unreadable(cx, format!("unknown ledger version {}", f.version));
                    Ledger::new()
                }
                Err(e) => {
                    self.ledger_unreadable(cx, e.to_string());
                    Ledger::new()
                }
            },
            Ok(None) => Ledger::new(),
            Err(e) => {
                self.ledger_unreadable(cx, e.to_string());
                Ledger::new()
            }
        }
    }

    fn save_ledger(&self, ledger: &Ledger) -> Result<()> {
        let file = LedgerFile {
            version: LEDGER_VERSION,
            plays: ledger.clone(),
        };
        let text = serde_json::to_string(&file).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("plex ledger not serialisable: {e}"),
            )
        })?;
        self.kv.put(LEDGER_NAMESPACE, &self.instance, &text)
    }

    pub(crate) async fn history_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.fresh_library(cx).await?;
        let mut ledger = self.load_ledger(cx);
        let rows = self.fresh_history_rows(cx).await?;
        let proof = lib.proof.clone().and(rows.proof());
        let entries: Vec<Entry> = all_plays(&lib, &rows.rows, &ledger)
            .into_iter()
            .filter_map(|p| {
                let li = lib.get(&p.rating_key)?;
                Some(Entry::watch(li.item.clone(), Timestamp::from_unix(p.at)))
            })
            .collect();
        // Forget marks that no longer hold, but only on a complete read.
        if proof.is_complete()
            && prune(&lib, &mut ledger)
            && let Err(e) = self.save_ledger(&ledger)
        {
            cx.emitter.warn(&format!(
                "{}: could not save the pruned play ledger: {e}",
                self.instance
            ));
        }
        Ok(proof.snapshot(Feature::History, entries))
    }

    /// The items' played state as the server shows it now, or why it could not be read.
    async fn played_now(
        &self,
        cx: &Context,
        keys: &[&str],
    ) -> (HashMap<String, ItemState>, HashMap<String, String>) {
        let (rows, failed) = self.read_back(cx, keys).await;
        let state = rows
            .iter()
            .map(|r| (r.rating_key.0.clone(), ItemState::of(r)))
            .collect();
        (state, failed.into_iter().collect())
    }

    /// Reads the played state of the items `entries` name afresh (by rating key, a few
    /// requests) into `lib`: the ledger's marks are judged against the state the item
    /// has now, not the one a cached library read saw (the user may have unmarked it
    /// since).
    async fn refresh_played(&self, cx: &Context, lib: &mut Library, entries: &[Entry]) {
        let mut keys: Vec<String> = entries
            .iter()
            .filter_map(|e| lib.resolve(&e.item))
            .filter(|li| playable(li))
            .map(|li| li.rating_key.clone())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return;
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (state, failed) = self.played_now(cx, &refs).await;
        for k in &keys {
            if failed.contains_key(k) {
                continue;
            }
            if let Some(held) = lib.state_mut(k) {
                // Missing from the answer: gone from the server since; it reads unplayed.
                *held = state.get(k).copied().unwrap_or_default();
            }
        }
    }

    pub(crate) async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let (lat, mut lib) = self.library_for_write(cx).await?;
        let (hat, rows) = self.history_for_write(cx).await?;
        let r = self.history_add_with(cx, &mut lib, &rows, entries).await;
        let keep = r.as_ref().is_ok_and(certain);
        if keep {
            self.cache.library.put_back(lat, lib);
        }
        // A scrobble creates no history row: the rows read still hold.
        self.cache.history.put_back(hat, rows);
        r
    }

    /// Scrobbles each play not yet there, then reads the items back: a play is confirmed
    /// when its item reads played, and goes into the ledger with the item's new stamp.
    async fn history_add_with(
        &self,
        cx: &Context,
        lib: &mut Library,
        rows: &Read<HistoryRow>,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        self.refresh_played(cx, lib, entries).await;
        let rows_partial = rows.proof().reasons().to_vec();
        let mut ledger = self.load_ledger(cx);
        let before = by_title(all_plays(lib, &rows.rows, &ledger));
        let mut times: HashMap<String, Vec<i64>> = before
            .iter()
            .map(|(rk, ps)| (rk.clone(), ps.iter().map(|p| p.at).collect()))
            .collect();
        let mut w = BatchWriter::new(cx, entries);
        let mut plan: Vec<Option<(String, i64)>> = vec![None; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                w.settle(i, Outcome::wrong_payload(e, Feature::History));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                w.settle(i, unmatched(lib.partial(), true));
                continue;
            };
            if !playable(li) {
                w.settle(i, unsupported("Plex history holds movies and episodes"));
                continue;
            }
            let at = watched_at.unix();
            let plays = times.entry(li.rating_key.clone()).or_default();
            if plays
                .iter()
                .any(|t| t.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
            {
                w.settle(i, Outcome::AlreadyPresent);
                continue;
            }
            if !rows_partial.is_empty() {
                // The play may be on a page we could not read: adding could duplicate it.
                w.settle(i, unmatched(&rows_partial, true));
                continue;
            }
            plays.push(at);
            plan[i] = Some((li.rating_key.clone(), at));
        }
        // (entry index, rating key, requested time) of each scrobble sent.
        let mut sent: Vec<(usize, String, i64)> = Vec::new();
        // Scrobbles that got no answer (a timeout, a dropped connection, a proxy's 5xx):
        // they may have landed all the same.
        let mut unanswered: Vec<(usize, String, i64)> = Vec::new();
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Some((rk, at)) = plan[i].clone() else {
                continue;
            };
            match self.scrobble(cx, &rk).await {
                Ok(()) => {
                    sent.push((i, rk, at));
                    w.record(&chunk, Ok(ChunkAnswer::accepted(1)));
                }
                Err(e) => {
                    if e.kind() == ErrorKind::Unavailable {
                        unanswered.push((i, rk, at));
                    }
                    w.record_one(i, Err(e));
                }
            }
        }
        if sent.is_empty() && unanswered.is_empty() {
            return Ok(w.finish());
        }
        let mut keys: Vec<&str> = sent
            .iter()
            .chain(&unanswered)
            .map(|s| s.1.as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let (state, failed) = self.played_now(cx, &keys).await;
        // An unanswered scrobble landed when its item's play count or last view moved
        // since the read before it: it is then ferry's play like any other, ledgered with
        // its requested time. Otherwise a run that sends it again would find the item
        // played "now" and scrobble a second play.
        let moved = |rk: &str| {
            let was = lib.get(rk).map(|li| li.state).unwrap_or_default();
            state.get(rk).is_some_and(|s| {
                s.view_count > was.view_count || s.last_viewed_at > was.last_viewed_at
            })
        };
        let landed: Vec<(usize, String, i64)> = unanswered
            .into_iter()
            .filter(|(_, rk, _)| moved(rk))
            .collect();
        sent.extend(landed);
        let mut changed = false;
        let mut first_of_title: HashSet<String> = HashSet::new();
        for (i, rk, at) in &sent {
            if let Some(err) = failed.get(rk) {
                w.settle(
                    *i,
                    unconfirmed(format!(
                        "scrobbled, but the item could not be read back: {err}"
                    )),
                );
                continue;
            }
            let Some(stamp) = state
                .get(rk)
                .filter(|s| s.view_count > 0)
                .and_then(|s| s.last_viewed_at)
            else {
                w.settle(
                    *i,
                    unconfirmed("Plex accepted the scrobble but the item does not read played"),
                );
                continue;
            };
            let marks = ledger.entry(rk.clone()).or_default();
            if first_of_title.insert(rk.clone()) {
                if let Some(li) = lib.get(rk) {
                    // Marks that no longer held before the scrobble (the user unmarked
                    // the item) must not come back with the new played state.
                    marks.retain(|m| holds(li, m));
                }
                // The item was already marked played without a row: that play is now told
                // apart from the watched state only through the ledger, so it goes there.
                for p in before.get(rk).into_iter().flatten() {
                    if p.source == Source::Watched {
                        marks.push(Mark { stamp, at: p.at });
                    }
                }
            }
            marks.push(Mark { stamp, at: *at });
            changed = true;
            w.settle(*i, Outcome::Confirmed);
        }
        for (rk, s) in state {
            if let Some(held) = lib.state_mut(&rk) {
                *held = s;
            }
        }
        if changed {
            self.save_ledger(&ledger)?;
        }
        Ok(w.finish())
    }

    pub(crate) async fn history_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (lat, mut lib) = self.library_for_write(cx).await?;
        let (hat, mut rows) = self.history_for_write(cx).await?;
        let r = self
            .history_remove_with(cx, &mut lib, &mut rows, entries)
            .await;
        let keep = r.as_ref().is_ok_and(certain);
        if keep {
            self.cache.library.put_back(lat, lib);
            self.cache.history.put_back(hat, rows);
        }
        r
    }

    /// Deletes history rows, drops marked plays from the ledger, and unmarks a title
    /// whose last play went.
    async fn history_remove_with(
        &self,
        cx: &Context,
        lib: &mut Library,
        rows: &mut Read<HistoryRow>,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        self.refresh_played(cx, lib, entries).await;
        let rows_partial = rows.proof().reasons().to_vec();
        let mut ledger = self.load_ledger(cx);
        let mut by_rk = by_title(all_plays(lib, &rows.rows, &ledger));
        let mut w = BatchWriter::new(cx, entries);
        let mut plan: Vec<Option<(String, Removal)>> = vec![None; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                w.settle(i, Outcome::wrong_payload(e, Feature::History));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                w.settle(i, unmatched(lib.partial(), false));
                continue;
            };
            let rk = li.rating_key.clone();
            let plays = by_rk.entry(rk.clone()).or_default();
            let removal = match closest(plays, watched_at.unix()) {
                Some((n, Source::Row(id))) => (n, Removal::DeleteRow(id)),
                // The last play of a title that reads watched: dropping it needs an
                // unscrobble, which a partial history read cannot justify.
                Some((_, Source::Marked(_))) if plays.len() == 1 && !rows_partial.is_empty() => {
                    w.settle(i, unmatched(&rows_partial, false));
                    continue;
                }
                Some((n, Source::Marked(m))) => (n, Removal::DropMark(m)),
                // Watched without a row or a mark: the play is the watched state itself.
                Some((n, Source::Watched)) if rows_partial.is_empty() => (n, Removal::Unscrobble),
                Some((_, Source::Watched)) | None => {
                    w.settle(i, unmatched(&rows_partial, false));
                    continue;
                }
            };
            plays.remove(removal.0);
            plan[i] = Some((rk, removal.1));
        }
        // Titles that lost a row or a marked play, and the marks dropped (entry, key, mark).
        let mut touched: Vec<String> = Vec::new();
        let mut dropped: Vec<(usize, String, Mark)> = Vec::new();
        let mut ledger_changed = false;
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Some((rk, removal)) = plan[i].clone() else {
                continue;
            };
            let result = match removal {
                Removal::DeleteRow(id) => match self.delete_history_row(cx, id).await {
                    Ok(()) => {
                        rows.rows.retain(|r| r.id != id);
                        touched.push(rk);
                        Ok(Outcome::Confirmed)
                    }
                    Err(err) if err.kind() == ErrorKind::NotFound => {
                        rows.rows.retain(|r| r.id != id);
                        Ok(Outcome::AlreadyAbsent)
                    }
                    Err(err) => Err(err),
                },
                Removal::DropMark(m) => {
                    remove_mark(&mut ledger, &rk, &m);
                    ledger_changed = true;
                    dropped.push((i, rk.clone(), m));
                    touched.push(rk);
                    Ok(Outcome::Confirmed)
                }
                Removal::Unscrobble => {
                    let r = self.unscrobble(cx, &rk).await;
                    if r.is_ok() {
                        mark_unplayed(lib, &rk);
                    }
                    r.map(|()| Outcome::Confirmed)
                }
            };
            w.record_one(i, result);
        }
        // A title whose last play is gone reads as unwatched, as on the other side. Only
        // on a complete history read: a row on an unread page would be a play left.
        // (Its watched state is no play of its own here: it is what goes.)
        let left = by_title(recorded_plays(lib, &rows.rows, &ledger));
        touched.sort();
        touched.dedup();
        for rk in touched {
            let none_left = left.get(&rk).is_none_or(Vec::is_empty);
            let watched = lib.get(&rk).is_some_and(|li| li.state.view_count > 0);
            if !(none_left && watched && rows_partial.is_empty()) {
                continue;
            }
            match self.unscrobble(cx, &rk).await {
                Ok(()) => mark_unplayed(lib, &rk),
                Err(err) => {
                    cx.emitter.emit(
                        "plex:unscrobble_failed",
                        serde_json::json!({"instance": self.instance, "error": err.to_string()}),
                    );
                    // Deleted rows are gone (best effort), but a marked play is only gone
                    // once the item reads unwatched: keep it rather than let the watched
                    // state read as a play at the server's time.
                    let o = Outcome::from_error(&err);
                    for (i, _, m) in dropped.iter().filter(|d| d.1 == rk) {
                        ledger.entry(rk.clone()).or_default().push(*m);
                        w.settle(*i, o.clone());
                    }
                }
            }
        }
        if ledger_changed {
            self.save_ledger(&ledger)?;
        }
        Ok(w.finish())
    }
}

/// The item now reads unplayed (after `/:/unscrobble`).
fn mark_unplayed(lib: &mut Library, rk: &str) {
    if let Some(s) = lib.state_mut(rk) {
        s.view_count = 0;
        s.last_viewed_at = None;
        s.view_offset = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_former_ledger_format_is_not_a_ledger() {
        assert!(serde_json::from_str::<LedgerFile>(r#"{"17":1700000000}"#).is_err());
        let f: LedgerFile =
            serde_json::from_str(r#"{"version":2,"plays":{"7":[{"stamp":5,"at":3}]}}"#).unwrap();
        assert_eq!(f.plays["7"], vec![Mark { stamp: 5, at: 3 }]);
    }
}

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

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, HISTORY_TOLERANCE_SECS, MediaType, Outcome, Payload,
    Result, Snapshot, Timestamp, UnresolvedReason, WriteReport,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::library::{LibItem, Library};
use crate::outcome::{Outcomes, outcome_for, unmatched, wrong_payload};
use crate::paging::{fetch_all, i64_field, media_container, str_field, u64_field};
use crate::{LIBRARY_IDENTIFIER, PlexProvider};

/// The key-value namespace of the ledger of plays ferry marked.
pub(crate) const LEDGER_NAMESPACE: &str = "plex.marked_plays";
/// The version written in the ledger; any other content reads as unreadable.
const LEDGER_VERSION: u32 = 2;
/// Rows asked for beyond the number of scrobbles when reading them back.
const READ_BACK_MARGIN: usize = 5;

/// A play ferry marked: the item's `lastViewedAt` right after the scrobble, and the time
/// the play really happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    stamp: i64,
    at: i64,
}

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

/// One history row: (id, rating key, `viewedAt`).
type Row = (u64, String, i64);

fn history_id(row: &Value) -> Option<u64> {
    str_field(row, "historyKey")?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

fn playable(li: &LibItem) -> bool {
    matches!(li.item.kind, MediaType::Movie | MediaType::Episode)
}

/// Whether a marked play still holds: the item reads played, not unmarked since.
fn holds(li: &LibItem, m: &Mark) -> bool {
    li.view_count > 0 && li.last_viewed_at.is_some_and(|t| t >= m.stamp)
}

/// Every play: rows, marked plays that hold, then watched items without either.
fn all_plays(lib: &Library, rows: &[Row], ledger: &Ledger) -> Vec<Play> {
    let mut plays: Vec<Play> = rows
        .iter()
        .map(|(id, rk, at)| Play {
            rating_key: rk.clone(),
            at: *at,
            source: Source::Row(*id),
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
    let seen: HashSet<String> = plays.iter().map(|p| p.rating_key.clone()).collect();
    for li in &lib.items {
        if li.view_count > 0
            && playable(li)
            && !seen.contains(&li.rating_key)
            && let Some(at) = li.last_viewed_at
        {
            plays.push(Play {
                rating_key: li.rating_key.clone(),
                at,
                source: Source::Watched,
            });
        }
    }
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

/// `viewCount` and `lastViewedAt` of every row of a library answer, by rating key.
fn played_states(body: Value, what: &str) -> Result<HashMap<String, (u64, Option<i64>)>> {
    let mc = media_container(body, what)?;
    let rows = match mc.get("Metadata") {
        Some(Value::Array(rows)) => rows.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                format!("{what}: Metadata is not a list"),
            ));
        }
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some((
                str_field(row, "ratingKey")?,
                (
                    u64_field(row, "viewCount").unwrap_or(0),
                    i64_field(row, "lastViewedAt"),
                ),
            ))
        })
        .collect())
}

fn unconfirmed(detail: String) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(detail),
    }
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

    /// Every history row.
    async fn history_rows(&self, cx: &Context) -> Result<(Vec<Row>, Vec<String>)> {
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
        let rows = paged
            .rows
            .iter()
            .filter_map(|row| {
                Some((
                    history_id(row)?,
                    str_field(row, "ratingKey")?,
                    i64_field(row, "viewedAt")?,
                ))
            })
            .collect();
        Ok((rows, paged.partial))
    }

    pub(crate) async fn history_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.library(cx).await?;
        let mut ledger = self.load_ledger(cx);
        let (rows, partial) = self.history_rows(cx).await?;
        let mut snap = Snapshot::unproven_legacy(Feature::History);
        for p in all_plays(&lib, &rows, &ledger) {
            if let Some(li) = lib.get(&p.rating_key) {
                snap.insert(Entry::watch(li.item.clone(), Timestamp::from_unix(p.at)));
            }
        }
        for p in lib.partial.iter().chain(&partial) {
            snap.mark_partial(p.clone());
        }
        // Forget marks that no longer hold, but only on a complete read.
        if lib.partial.is_empty()
            && partial.is_empty()
            && prune(&lib, &mut ledger)
            && let Err(e) = self.save_ledger(&ledger)
        {
            cx.emitter.warn(&format!(
                "{}: could not save the pruned play ledger: {e}",
                self.instance
            ));
        }
        Ok(snap)
    }

    /// `viewCount`/`lastViewedAt` of the items of `ty` (1 movies, 4 episodes) viewed
    /// last: one request for `n` rows.
    async fn recently_viewed(
        &self,
        cx: &Context,
        ty: &str,
        n: usize,
    ) -> Result<HashMap<String, (u64, Option<i64>)>> {
        let body: Value = self
            .pms
            .get("GET /library/all", "/library/all")
            .query("type", ty)
            .query("sort", "lastViewedAt:desc")
            .header("X-Plex-Container-Start", "0")
            .header("X-Plex-Container-Size", &n.to_string())
            .send_json(cx)
            .await?;
        played_states(body, "recently viewed items")
    }

    /// `viewCount`/`lastViewedAt` of one item.
    async fn viewed_state(&self, cx: &Context, rk: &str) -> Result<Option<(u64, Option<i64>)>> {
        let body: Value = self
            .pms
            .get(
                "GET /library/metadata/{id}",
                format!("/library/metadata/{rk}"),
            )
            .send_json(cx)
            .await?;
        Ok(played_states(body, "library item")?.remove(rk))
    }

    pub(crate) async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let lib = self.library(cx).await?;
        let mut ledger = self.load_ledger(cx);
        let (rows, rows_partial) = self.history_rows(cx).await?;
        let before = by_title(all_plays(&lib, &rows, &ledger));
        let mut times: HashMap<String, Vec<i64>> = before
            .iter()
            .map(|(rk, ps)| (rk.clone(), ps.iter().map(|p| p.at).collect()))
            .collect();
        let mut out = Outcomes::new(entries.len());
        // (entry index, rating key, requested time, Plex type) of each scrobble sent.
        let mut sent: Vec<(usize, String, i64, &'static str)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                out.set(i, wrong_payload(e, Feature::History));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                out.set(i, unmatched(&lib.partial, true));
                continue;
            };
            let ty = match li.item.kind {
                MediaType::Movie => "1",
                MediaType::Episode => "4",
                _ => {
                    out.set(
                        i,
                        Outcome::Unresolved {
                            reason: UnresolvedReason::Unsupported,
                            detail: Some("Plex history holds movies and episodes".into()),
                        },
                    );
                    continue;
                }
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
            if !rows_partial.is_empty() {
                // The play may be on a page we could not read: adding could duplicate it.
                out.set(i, unmatched(&rows_partial, true));
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
                    sent.push((i, rk, at, ty));
                }
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        if sent.is_empty() {
            return Ok(out.report(entries));
        }
        // Read back: each scrobbled item must now read played. One request per type for
        // the items viewed last; an item not among them is read on its own.
        let mut state: HashMap<String, (u64, Option<i64>)> = HashMap::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        for ty in ["1", "4"] {
            let keys: HashSet<&str> = sent
                .iter()
                .filter(|s| s.3 == ty)
                .map(|s| s.1.as_str())
                .collect();
            if keys.is_empty() {
                continue;
            }
            let n = sent.iter().filter(|s| s.3 == ty).count() + READ_BACK_MARGIN;
            match self.recently_viewed(cx, ty, n).await {
                Ok(mut got) => {
                    for k in keys {
                        if let Some(s) = got.remove(k) {
                            state.insert(k.to_owned(), s);
                        }
                    }
                }
                Err(err) => {
                    for k in keys {
                        failed.insert(k.to_owned(), err.to_string());
                    }
                }
            }
        }
        let mut missing: Vec<&str> = sent
            .iter()
            .map(|s| s.1.as_str())
            .filter(|k| !state.contains_key(*k) && !failed.contains_key(*k))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for rk in missing {
            match self.viewed_state(cx, rk).await {
                Ok(Some(s)) => {
                    state.insert(rk.to_owned(), s);
                }
                Ok(None) => {}
                Err(err) => {
                    failed.insert(rk.to_owned(), err.to_string());
                }
            }
        }
        let mut changed = false;
        let mut first_of_title: HashSet<String> = HashSet::new();
        for (i, rk, at, _) in sent {
            if let Some(err) = failed.get(&rk) {
                out.set(
                    i,
                    unconfirmed(format!(
                        "scrobbled, but the item could not be read back: {err}"
                    )),
                );
                continue;
            }
            let Some(&(_, Some(stamp))) = state.get(&rk).filter(|s| s.0 > 0) else {
                out.set(
                    i,
                    unconfirmed(
                        "Plex accepted the scrobble but the item does not read played".into(),
                    ),
                );
                continue;
            };
            let marks = ledger.entry(rk.clone()).or_default();
            if first_of_title.insert(rk.clone()) {
                if let Some(li) = lib.get(&rk) {
                    // Marks that no longer held before the scrobble (the user unmarked
                    // the item) must not come back with the new played state.
                    marks.retain(|m| holds(li, m));
                }
                // The item was already marked played without a row: that play is now told
                // apart from the watched state only through the ledger, so it goes there.
                for p in before.get(&rk).into_iter().flatten() {
                    if p.source == Source::Watched {
                        marks.push(Mark { stamp, at: p.at });
                    }
                }
            }
            marks.push(Mark { stamp, at });
            changed = true;
            out.set(i, Outcome::Confirmed);
        }
        if changed {
            self.save_ledger(&ledger)?;
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
        let (rows, rows_partial) = self.history_rows(cx).await?;
        let mut by_rk = by_title(all_plays(&lib, &rows, &ledger));
        let mut out = Outcomes::new(entries.len());
        // Titles that lost a row or a marked play.
        let mut touched: Vec<String> = Vec::new();
        // (entry index, rating key, mark) of each marked play dropped.
        let mut dropped: Vec<(usize, String, Mark)> = Vec::new();
        let mut ledger_changed = false;
        let mut wrote = false;
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
            let rk = li.rating_key.clone();
            let plays = by_rk.entry(rk.clone()).or_default();
            let closest = plays
                .iter()
                .enumerate()
                .filter(|(_, p)| p.at.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
                .min_by_key(|(_, p)| p.at.abs_diff(at))
                .map(|(n, p)| (n, p.source));
            if let Err(err) = cx.check_cancelled() {
                if !wrote {
                    return Err(err);
                }
                out.fill(&Outcome::failed(&err));
                break;
            }
            let result = match closest {
                Some((n, Source::Row(id))) => {
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
                            plays.remove(n);
                            touched.push(rk.clone());
                            Ok(Outcome::Confirmed)
                        }
                        Err(err) if err.kind() == ErrorKind::NotFound => {
                            plays.remove(n);
                            Ok(Outcome::AlreadyAbsent)
                        }
                        Err(err) => Err(err),
                    }
                }
                // The last play of a title that reads watched: dropping it needs an
                // unscrobble, which a partial history read cannot justify.
                Some((_, Source::Marked(_))) if plays.len() == 1 && !rows_partial.is_empty() => {
                    Ok(unmatched(&rows_partial, false))
                }
                Some((n, Source::Marked(m))) => {
                    plays.remove(n);
                    remove_mark(&mut ledger, &rk, &m);
                    ledger_changed = true;
                    dropped.push((i, rk.clone(), m));
                    touched.push(rk.clone());
                    Ok(Outcome::Confirmed)
                }
                // Watched without a row or a mark: the play is the watched state itself.
                Some((n, Source::Watched)) if rows_partial.is_empty() => {
                    let r = self.unscrobble(cx, &rk).await;
                    if r.is_ok() {
                        plays.remove(n);
                    }
                    r.map(|()| Outcome::Confirmed)
                }
                Some((_, Source::Watched)) | None => Ok(unmatched(&rows_partial, false)),
            };
            match result {
                Ok(o) => {
                    wrote |= o == Outcome::Confirmed;
                    out.set(i, o);
                }
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        // A title whose last play is gone reads as unwatched, as on the other side. Only
        // on a complete history read: a row on an unread page would be a play left.
        touched.sort();
        touched.dedup();
        for rk in touched {
            let none_left = by_rk.get(&rk).is_none_or(Vec::is_empty);
            let watched = lib.get(&rk).is_some_and(|li| li.view_count > 0);
            if !(none_left && watched && rows_partial.is_empty()) {
                continue;
            }
            if let Err(err) = self.unscrobble(cx, &rk).await {
                cx.emitter.emit(
                    "plex:unscrobble_failed",
                    serde_json::json!({"instance": self.instance, "error": err.to_string()}),
                );
                // Deleted rows are gone (best effort), but a marked play is only gone once
                // the item reads unwatched: keep it rather than let the watched state
                // read as a play at the server's time.
                let o = outcome_for(&err);
                for (i, _, m) in dropped.iter().filter(|d| d.1 == rk) {
                    ledger.entry(rk.clone()).or_default().push(*m);
                    out.set(*i, o.clone());
                }
            }
        }
        if ledger_changed {
            self.save_ledger(&ledger)?;
        }
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

//! Writes through the kit's [`BatchWriter`]: chunks of [`BATCH_SIZE`] entries, one
//! outcome per entry in order, the kit's one error policy.
//!
//! SIMKL's write answers carry counts and a `not_found` echo, never a per-item "done", and
//! some writes answer with an empty body. So every chunk is only *accepted*, and an
//! entry is `Confirmed` only when a read after the write shows it in the requested state
//! ([`BatchWriter::confirm`]); `not_found` echoes become `Unresolved(NotFound)`;
//! everything else the service accepted is `Unresolved(Unconfirmed)`.

use std::collections::HashMap;
use std::time::Instant;

use ferry_core::lists::SyncBody;
use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, Error, ErrorKind, Feature, Item, MediaType, Outcome,
    Payload, Result, Snapshot, UnresolvedReason, WriteReport,
};
use serde_json::{Value, json};

use crate::api::Api;
use crate::convert::{self, IDS, PLAN_TO_WATCH, ids_json, show_of};
use crate::read::{
    Library, Plays, Source, fetch, is_complete, same_play, snapshot, unlisted_reason,
};
use crate::{PLAYS, SimklProvider, TITLES};

fn unsupported(detail: impl Into<String>) -> Option<Outcome> {
    Some(Outcome::unsupported(detail))
}

fn conflict(detail: impl Into<String>) -> Option<Outcome> {
    Some(Outcome::Unresolved {
        reason: UnresolvedReason::Conflict,
        detail: Some(detail.into()),
    })
}

/// Entries per write request (SIMKL's documented batch size for list and history writes).
pub const BATCH_SIZE: usize = 100;

/// `(season, episode, watched_at)` of one episode in a write.
pub(crate) type EpisodeMark = (u32, u32, Option<String>);

/// What one entry sends.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    /// A movie or show object (`{ids, …}`) of the `movies` or `shows` list.
    Title { group: &'static str, body: Value },
    /// An episode, sent under its show (`show` is the show object, `key` names the show).
    Episode {
        key: String,
        show: Value,
        mark: EpisodeMark,
    },
}

/// A chunk's request: titles by list, episodes grouped under their show with explicit
/// seasons and episodes (a bare show would mean the whole show).
fn request(parts: &[&Part]) -> Value {
    let mut body = SyncBody::default();
    for p in parts {
        match p {
            Part::Title { group, body: title } => body.title(group, title.clone()),
            Part::Episode { key, show, mark } => {
                let (s, n, at) = mark;
                let mut e = json!({"number": n});
                if let Some(at) = at {
                    e["watched_at"] = json!(at);
                }
                body.episode(key, show, *s, e);
            }
        }
    }
    body.finish()
}

/// Settles `decided` entries, sends every entry with a part, and leaves the rest
/// accepted for the caller's re-read (`BatchWriter::confirm`).
pub(crate) async fn send<'a>(
    api: &Api,
    cx: &'a Context,
    path: &str,
    entries: &'a [Entry],
    decided: Vec<Option<Outcome>>,
    parts: Vec<Option<Part>>,
) -> Result<BatchWriter<'a>> {
    let mut w = BatchWriter::new(cx, entries);
    for (i, (d, p)) in decided.into_iter().zip(&parts).enumerate() {
        match (d, p) {
            (Some(o), _) => w.settle(i, o),
            (None, None) => w.settle(
                i,
                Outcome::Unresolved {
                    reason: ferry_core::UnresolvedReason::Unconfirmed,
                    detail: Some("not written".into()),
                },
            ),
            (None, Some(_)) => {}
        }
    }
    while let Some(chunk) = w.next_chunk(BATCH_SIZE)? {
        let sent: Vec<&Part> = chunk.iter().filter_map(|i| parts[*i].as_ref()).collect();
        let got = api.write(cx, path, &request(&sent)).await;
        let chunk_entries = w.chunk_entries(&chunk);
        w.record(
            &chunk,
            got.map(|a| {
                let mut answer = ChunkAnswer::accepted(chunk.len());
                let echoed: Vec<_> = a
                    .iter()
                    .flat_map(|a| a.not_found.values().flatten())
                    .map(|row| IDS.read(&row.ids))
                    .collect();
                answer.not_found(&chunk_entries, &echoed);
                answer
            }),
        );
    }
    Ok(w)
}

impl SimklProvider {
    /// The library to plan a write of `entries` against: the last read while it is fresh
    /// (`ListCache`), unless this call writes a title an earlier write touched; then
    /// SIMKL's current state is read. The engine writes a feature in batches right after
    /// reading, so a first sync reads the library once, not once per batch.
    async fn library_for(
        &self,
        cx: &Context,
        op: &str,
        entries: &[Entry],
    ) -> Result<(Instant, Library)> {
        if let Some((at, lib)) = self.library.take_fresh()
            && !entries.iter().any(|e| lib.touched(&e.item))
        {
            return Ok((at, lib));
        }
        Ok((Instant::now(), self.library(cx, op).await?))
    }

    /// Puts the library back for the next write, the titles of `entries` marked touched.
    fn done_with(&self, (at, mut lib): (Instant, Library), entries: &[Entry]) {
        for e in entries {
            lib.touch(&e.item);
        }
        self.library.put_back(at, lib);
    }

    async fn library(&self, cx: &Context, op: &str) -> Result<Library> {
        let lib = Library::new(fetch(&self.api, cx, Source::Library, None).await?);
        if lib.complete() {
            Ok(lib)
        } else {
            Err(Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "the SIMKL library could not be read completely ({}); nothing was written",
                    lib.reason()
                ),
            )
            .with_provider("simkl")
            .with_operation(op.to_owned()))
        }
    }

    /// Where a confirming re-read of an *add* may start: SIMKL's newest activity stamp,
    /// read just before the write. Everything the write changes is modified after it, so
    /// a `date_from` read from there shows it, without reading the whole library again.
    /// `None` (confirm with a full read) when SIMKL has no stamp yet or the read fails.
    async fn write_mark(&self, cx: &Context) -> Option<String> {
        match self.api.activities(cx).await {
            Ok(v) => convert::newest_stamp(&v).map(|t| t.to_rfc3339()),
            Err(e) => {
                tracing::debug!(
                    "simkl: no activity stamp before the write ({e}); confirming with a full read"
                );
                None
            }
        }
    }

    /// Re-reads `feature` after a write: changes since `since` (enough to confirm an
    /// add: what was added was modified after the mark), or in full (`None`; a removal
    /// needs that: `date_from` never shows what left).
    async fn reread(
        &self,
        cx: &Context,
        feature: Feature,
        since: Option<&str>,
    ) -> std::result::Result<Snapshot, String> {
        let source = Source::for_feature(feature);
        fetch(&self.api, cx, source, since)
            .await
            .map(|f| snapshot(feature, source, &f))
            .map_err(|e| format!("the re-read after the write failed: {e}"))
    }

    /// Re-reads `feature` after an add: the `date_from` delta from `mark` when that shows
    /// every title SIMKL accepted (`shown(snapshot, entries)`), a full read otherwise —
    /// so a write the delta does not show (should SIMKL filter `date_from` on a back-dated
    /// watch or rating rather than on the change) is still confirmed when it landed.
    async fn reread_after_add(
        &self,
        cx: &Context,
        feature: Feature,
        mark: Option<&str>,
        shown: impl Fn(&Snapshot) -> bool,
    ) -> std::result::Result<Snapshot, String> {
        if let Some(since) = mark {
            match self.reread(cx, feature, Some(since)).await {
                Ok(delta) if shown(&delta) => return Ok(delta),
                Ok(_) => tracing::debug!(
                    "simkl: the {feature} delta since {since} does not show every write; reading in full"
                ),
                Err(e) => tracing::debug!("simkl: {e}; reading in full"),
            }
        }
        self.reread(cx, feature, None).await
    }

    // -- watchlist ------------------------------------------------------------------------

    pub(crate) async fn watchlist_add(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let op = "POST /sync/add-to-list";
        let (at, lib) = self.library_for(cx, op, entries).await?;
        let mut decided = vec![None; entries.len()];
        let mut parts = vec![None; entries.len()];
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) || !TITLES.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL's watchlist holds movies and shows, not this {}",
                    e.item.kind
                ));
                continue;
            }
            let Some(ids) = ids_json(&e.item.ids) else {
                decided[i] = unsupported("no id SIMKL can resolve");
                continue;
            };
            match lib.find(&e.item) {
                Some(r) if r.status.as_deref() == Some(PLAN_TO_WATCH) => {
                    decided[i] = Some(Outcome::AlreadyPresent);
                }
                Some(r) => {
                    decided[i] = conflict(format!(
                        "on SIMKL's `{}` list; adding it to Plan to Watch would move it off that list",
                        r.status.as_deref().unwrap_or("unknown")
                    ));
                }
                None => match queued.get(&e.item.key()) {
                    Some(_) => decided[i] = Some(Outcome::AlreadyPresent),
                    None => {
                        queued.insert(e.item.key(), i);
                        parts[i] = Some(Part::Title {
                            group: group_of(&e.item),
                            body: json!({"ids": ids, "to": PLAN_TO_WATCH}),
                        });
                    }
                },
            }
        }
        let mark = if parts.iter().all(Option::is_none) {
            None
        } else {
            self.write_mark(cx).await
        };
        let sent = sent_of(&parts);
        let mut w = send(&self.api, cx, "/sync/add-to-list", entries, decided, parts).await?;
        self.done_with((at, lib), entries);
        if w.awaits_confirmation() {
            let shown = |snap: &Snapshot| all_done(&sent, entries, listed_in(snap));
            let after = self
                .reread_after_add(cx, Feature::Watchlist, mark.as_deref(), shown)
                .await;
            if let Ok(snap) = &after {
                w.confirm(true, listed_in(snap));
            }
        }
        Ok(w.finish())
    }

    pub(crate) async fn watchlist_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let op = "POST /sync/history/remove";
        let (at, lib) = self.library_for(cx, op, entries).await?;
        let mut decided = vec![None; entries.len()];
        let mut parts = vec![None; entries.len()];
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) || !TITLES.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL's watchlist holds movies and shows, not this {}",
                    e.item.kind
                ));
                continue;
            }
            let row = match lib.find(&e.item) {
                Some(r) if r.status.as_deref() == Some(PLAN_TO_WATCH) => r,
                // Not in the library, or in another bucket: not on the watchlist.
                _ => {
                    decided[i] = Some(Outcome::AlreadyAbsent);
                    continue;
                }
            };
            if row.rating.is_some() {
                decided[i] = conflict(
                    "SIMKL takes a title off Plan to Watch only by removing it from the whole library, which would delete its rating",
                );
                continue;
            }
            if row.last_watched_at.is_some() || !row.episodes.is_empty() || row.episodes_missing() {
                decided[i] = conflict(
                    "SIMKL takes a title off Plan to Watch only by removing it from the whole library, which would delete its watch history",
                );
                continue;
            }
            let key = row.item.key();
            if queued.contains_key(&key) {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            let Some(ids) = ids_json(&row.item.ids) else {
                decided[i] = unsupported("no id SIMKL can resolve");
                continue;
            };
            queued.insert(key, i);
            parts[i] = Some(Part::Title {
                group: group_of(&row.item),
                body: json!({"ids": ids}),
            });
        }
        let mut w = send(
            &self.api,
            cx,
            "/sync/history/remove",
            entries,
            decided,
            parts,
        )
        .await?;
        self.done_with((at, lib), entries);
        // Confirmed only for titles a complete re-read no longer lists.
        if w.awaits_confirmation()
            && let Ok(snap) = self.reread(cx, Feature::Watchlist, None).await
            && is_complete(&snap)
        {
            let listed = listed_in(&snap);
            w.confirm(true, |e| !listed(e));
        }
        Ok(w.finish())
    }

    // -- ratings --------------------------------------------------------------------------

    pub(crate) async fn ratings_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let path = if add {
            "/sync/ratings"
        } else {
            "/sync/ratings/remove"
        };
        let op = path;
        let (at, lib) = self.library_for(cx, op, entries).await?;
        let mut decided = vec![None; entries.len()];
        let mut parts = vec![None; entries.len()];
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let rating = match e.payload {
                Payload::Rating { rating, .. } if TITLES.contains(&e.item.kind) => rating,
                _ => {
                    decided[i] = unsupported(format!(
                        "SIMKL rates movies and shows, not this {}",
                        e.item.kind
                    ));
                    continue;
                }
            };
            let Some(ids) = ids_json(&e.item.ids) else {
                decided[i] = unsupported("no id SIMKL can resolve");
                continue;
            };
            let current = lib.find(&e.item).and_then(|r| r.rating);
            if add && current == Some(rating) {
                decided[i] = Some(Outcome::AlreadyPresent);
                continue;
            }
            if !add && current.is_none() {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            if queued.contains_key(&e.item.key()) {
                decided[i] = Some(if add {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::AlreadyAbsent
                });
                continue;
            }
            queued.insert(e.item.key(), i);
            let mut body = json!({"ids": ids});
            if add {
                body["rating"] = json!(rating.get());
                if let Payload::Rating {
                    rated_at: Some(t), ..
                } = e.payload
                {
                    body["rated_at"] = json!(t.to_rfc3339());
                }
            }
            parts[i] = Some(Part::Title {
                group: group_of(&e.item),
                body,
            });
        }
        let mark = if add && parts.iter().any(Option::is_some) {
            self.write_mark(cx).await
        } else {
            None
        };
        let sent = sent_of(&parts);
        let mut w = send(&self.api, cx, path, entries, decided, parts).await?;
        self.done_with((at, lib), entries);
        if !w.awaits_confirmation() {
            return Ok(w.finish());
        }
        let after = if add {
            let shown = |snap: &Snapshot| all_done(&sent, entries, rated_as(snap, true));
            self.reread_after_add(cx, Feature::Ratings, mark.as_deref(), shown)
                .await
        } else {
            self.reread(cx, Feature::Ratings, None).await
        };
        match after {
            // An absent rating in a partial re-read proves nothing.
            Ok(snap) if add || is_complete(&snap) => w.confirm(true, rated_as(&snap, add)),
            _ => {}
        }
        Ok(w.finish())
    }

    // -- history --------------------------------------------------------------------------

    pub(crate) async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/history";
        let (at, lib) = self.library_for(cx, op, entries).await?;
        let mut decided = vec![None; entries.len()];
        let mut parts = vec![None; entries.len()];
        // Plays queued in this call: title or episode key → time.
        let mut queued: HashMap<String, ferry_core::Timestamp> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                decided[i] = unsupported("not a play");
                continue;
            };
            if !PLAYS.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL history holds movie and episode plays, not a {}",
                    e.item.kind
                ));
                continue;
            }
            let key = e.item.key();
            if let Some(t) = queued.get(&key) {
                decided[i] = if same_play(*t, watched_at) {
                    Some(Outcome::AlreadyPresent)
                } else {
                    unsupported(
                        "SIMKL keeps one watch per title without rewatches; another play of it is in this batch",
                    )
                };
                continue;
            }
            if e.item.kind == MediaType::Movie {
                let Some(ids) = ids_json(&e.item.ids) else {
                    decided[i] = unsupported("no id SIMKL can resolve");
                    continue;
                };
                if let Some(t) = lib.find(&e.item).and_then(|r| r.last_watched_at) {
                    decided[i] = if same_play(t, watched_at) {
                        Some(Outcome::AlreadyPresent)
                    } else {
                        unsupported(format!(
                            "SIMKL keeps one watch per movie without rewatches; it already holds one at {t}"
                        ))
                    };
                    continue;
                }
                queued.insert(key, watched_at);
                parts[i] = Some(Part::Title {
                    group: "movies",
                    body: json!({"ids": ids, "watched_at": watched_at.to_rfc3339()}),
                });
                continue;
            }
            // An episode: SIMKL files it under its show.
            let (Some(s), Some(n)) = (e.item.season, e.item.episode) else {
                decided[i] = unsupported("an episode without season and number");
                continue;
            };
            let show = show_of(&e.item);
            let row = lib.find(&show);
            let show_ids = row.map_or(&show.ids, |r| &r.item.ids);
            let Some(ids) = ids_json(show_ids) else {
                decided[i] = unsupported("no show id SIMKL can resolve");
                continue;
            };
            if let Some(r) = row.filter(|r| r.episodes_missing()) {
                // SIMKL says the show has watched episodes but did not list them: this one
                // may be among them, and re-sending it could move its date.
                decided[i] = Some(Outcome::unmatched(
                    &[unlisted_reason(1, r)],
                    true,
                    "not in SIMKL's library",
                ));
                continue;
            }
            if let Some((_, _, at)) =
                row.and_then(|r| r.episodes.iter().find(|(rs, re, _)| *rs == s && *re == n))
            {
                decided[i] = match at {
                    Some(t) if same_play(*t, watched_at) => Some(Outcome::AlreadyPresent),
                    Some(t) => unsupported(format!(
                        "SIMKL keeps one watch per episode without rewatches; it already holds one at {t}"
                    )),
                    None => {
                        unsupported("SIMKL already has this episode as watched, without a date")
                    }
                };
                continue;
            }
            queued.insert(key, watched_at);
            let show_body = json!({"ids": ids});
            parts[i] = Some(Part::Episode {
                key: show.key(),
                show: show_body,
                mark: (s, n, Some(watched_at.to_rfc3339())),
            });
        }
        let mark = if parts.iter().all(Option::is_none) {
            None
        } else {
            self.write_mark(cx).await
        };
        let sent = sent_of(&parts);
        let mut w = send(&self.api, cx, "/sync/history", entries, decided, parts).await?;
        self.done_with((at, lib), entries);
        if !w.awaits_confirmation() {
            return Ok(w.finish());
        }
        let shown = |snap: &Snapshot| all_done(&sent, entries, played_in(snap));
        let after = self
            .reread_after_add(cx, Feature::History, mark.as_deref(), shown)
            .await;
        if let Ok(snap) = after {
            w.confirm(true, played_in(&snap));
        }
        Ok(w.finish())
    }

    pub(crate) async fn history_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let op = "POST /sync/history/remove";
        let (at, lib) = self.library_for(cx, op, entries).await?;
        let mut decided = vec![None; entries.len()];
        let mut parts = vec![None; entries.len()];
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                decided[i] = unsupported("not a play");
                continue;
            };
            if !PLAYS.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL history holds movie and episode plays, not a {}",
                    e.item.kind
                ));
                continue;
            }
            let key = e.item.key();
            if queued.contains_key(&key) {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            if e.item.kind == MediaType::Movie {
                let row = match lib.find(&e.item) {
                    Some(r) if r.last_watched_at.is_some_and(|t| same_play(t, watched_at)) => r,
                    _ => {
                        decided[i] = Some(Outcome::AlreadyAbsent);
                        continue;
                    }
                };
                if row.rating.is_some() {
                    decided[i] = conflict(
                        "SIMKL removes a movie's watch by removing the movie from the library, which would delete its rating",
                    );
                    continue;
                }
                let Some(ids) = ids_json(&row.item.ids) else {
                    decided[i] = unsupported("no id SIMKL can resolve");
                    continue;
                };
                queued.insert(key, i);
                parts[i] = Some(Part::Title {
                    group: "movies",
                    body: json!({"ids": ids}),
                });
                continue;
            }
            let (Some(s), Some(n)) = (e.item.season, e.item.episode) else {
                decided[i] = unsupported("an episode without season and number");
                continue;
            };
            let show = show_of(&e.item);
            let found = lib.find(&show);
            if let Some(r) = found.filter(|r| r.episodes_missing()) {
                decided[i] = Some(Outcome::unmatched(
                    &[unlisted_reason(1, r)],
                    false,
                    "not in SIMKL's library",
                ));
                continue;
            }
            let Some(row) = found.filter(|r| {
                r.episodes.iter().any(|(rs, re, at)| {
                    *rs == s && *re == n && at.is_some_and(|t| same_play(t, watched_at))
                })
            }) else {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            };
            let Some(ids) = ids_json(&row.item.ids) else {
                decided[i] = unsupported("no show id SIMKL can resolve");
                continue;
            };
            queued.insert(key, i);
            let show_body = json!({"ids": ids});
            // Always with explicit episodes: a bare show would leave the library entirely.
            parts[i] = Some(Part::Episode {
                key: row.item.key(),
                show: show_body,
                mark: (s, n, None),
            });
        }
        let mut w = send(
            &self.api,
            cx,
            "/sync/history/remove",
            entries,
            decided,
            parts,
        )
        .await?;
        self.done_with((at, lib), entries);
        // Confirmed only for plays a complete, full re-read no longer shows.
        if w.awaits_confirmation()
            && let Ok(snap) = self.reread(cx, Feature::History, None).await
            && is_complete(&snap)
        {
            let played = played_in(&snap);
            w.confirm(true, |e| !played(e));
        }
        Ok(w.finish())
    }
}

fn group_of(item: &Item) -> &'static str {
    if item.kind == MediaType::Movie {
        "movies"
    } else {
        "shows"
    }
}

/// The entries that send something.
fn sent_of(parts: &[Option<Part>]) -> Vec<usize> {
    (0..parts.len()).filter(|i| parts[*i].is_some()).collect()
}

/// Whether a re-read shows every sent entry written.
fn all_done(sent: &[usize], entries: &[Entry], done: impl Fn(&Entry) -> bool) -> bool {
    sent.iter().all(|i| done(&entries[*i]))
}

/// Whether an entry's title is in `snap` (a watchlist read).
fn listed_in(snap: &Snapshot) -> impl Fn(&Entry) -> bool {
    let idx = index_of(snap);
    move |e| idx.find(&e.item.key(), &e.item).is_some()
}

/// Whether `snap` (a ratings read) shows an entry written: rated as asked (`add`), or
/// unrated (a removal).
fn rated_as(snap: &Snapshot, add: bool) -> impl Fn(&Entry) -> bool + '_ {
    let idx = index_of(snap);
    move |e| {
        let now = idx.find(&e.item.key(), &e.item).and_then(|k| snap.get(k));
        match (&e.payload, now.map(|x| &x.payload)) {
            (Payload::Rating { rating, .. }, Some(Payload::Rating { rating: r, .. })) => {
                add && rating == r
            }
            (_, None) => !add,
            _ => false,
        }
    }
}

/// Whether `snap` (a history read) holds an entry's play.
fn played_in(snap: &Snapshot) -> impl Fn(&Entry) -> bool {
    let plays = Plays::new(snap);
    move |e| match e.payload {
        Payload::Watch { watched_at } => plays.has(&e.item, watched_at),
        _ => false,
    }
}

fn index_of(snap: &Snapshot) -> ferry_core::identity::AliasIndex {
    ferry_core::identity::AliasIndex::build(snap.iter().map(|(k, e)| (k, &e.item)))
}

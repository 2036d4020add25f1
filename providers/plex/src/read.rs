//! Reads: every list goes through the kit's pager (`X-Plex-Container-Start`/`-Size`
//! with `totalSize`), rows decoded one at a time into typed wire rows; the section list
//! is one document read whole.
//!
//! The library is one paged read per allowed section and type (movies; shows, then
//! episodes, which need their show): every item with its GUIDs and the account's state
//! (watched, rating, resume point). Ratings and progress are derived from it, history and
//! playlists combine it with their own lists, and writes resolve their entries against
//! it.
//!
//! Writes resolve against the *last* reads ([`Cache`]: the library, the history rows,
//! the watchlist) instead of reading them again for every call: the engine reads a
//! feature, then writes it in batches, so a first sync of N titles costs the reads once
//! plus the writes, not a library read per batch. A copy follows ferry's own confirmed
//! writes and is dropped after a write it cannot follow (a failed or unconfirmed one);
//! it is read again when older than [`CACHE_TTL`], or when the read was partial (a write
//! after a partial read sees the server as it is now, not the read's gaps). A change
//! made on the server after the read and before a write is not seen by that write; the
//! window is the TTL at most (history writes read their items' played state afresh).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, IdKind, Ids, Item, ListCache, Pager, Paging, Proof,
    Read, Reader, Result, Row, Snapshot, Timestamp,
};
use serde_json::Value;

use crate::api::{ListCall, PLAYABLE, PlexProvider, container};
use crate::convert::{
    episode_item, history_row, library_row, plex_guid, section_row, show_ids_of, title_item,
    watchlist_row,
};
use crate::model::{HistoryRow, ItemState, LibItem, Library, MetadataRow, SectionRow, Sections};

/// How long writes may resolve against a read before reading it again.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(120);

/// The Discover watchlist: each title's Discover key and item, and how complete the read
/// was.
#[derive(Debug, Clone)]
pub(crate) struct Watchlist {
    pub(crate) rows: Vec<(String, Item)>,
    pub(crate) proof: Proof,
}

/// The reads writes resolve against.
#[derive(Debug)]
pub(crate) struct Cache {
    pub(crate) library: ListCache<Library>,
    pub(crate) history: ListCache<Read<HistoryRow>>,
    pub(crate) watchlist: ListCache<Watchlist>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            library: ListCache::new(CACHE_TTL),
            history: ListCache::new(CACHE_TTL),
            watchlist: ListCache::new(CACHE_TTL),
        }
    }
}

/// Whether a configured library name (title or key) is this section.
fn names(wanted: &str, s: &SectionRow) -> bool {
    let w = wanted.trim();
    w == s.key.0
        || s.title
            .as_deref()
            .is_some_and(|t| w.eq_ignore_ascii_case(t))
}

fn section_label(s: &SectionRow) -> String {
    match &s.title {
        Some(t) => format!("{t} ({})", s.key.0),
        None => s.key.0.clone(),
    }
}

impl PlexProvider {
    /// Every page of a list through the pager.
    pub(crate) async fn read_list<T>(
        &self,
        cx: &Context,
        call: &ListCall,
        what: &str,
        decode: impl FnMut(Value) -> Row<T>,
    ) -> Result<Read<T>> {
        let paging = Paging::Offset {
            page_size: self.page_size,
            total_name: "totalSize",
        };
        Pager::new(cx, what, paging)
            .read(|req| self.list_page(cx, call, req), decode)
            .await
    }

    /// The movie and show sections ferry reads (all, or the configured ones).
    async fn sections(&self, cx: &Context) -> Result<(Vec<SectionRow>, Proof)> {
        let resp = self
            .pms
            .get("GET /library/sections", "/library/sections")
            .send(cx)
            .await?;
        let doc: Sections = container(&resp)?;
        let mut reader = Reader::new("library sections");
        reader.rows(doc.rows.unwrap_or_default(), &mut section_row);
        let (all, proof) = reader.finish_whole().into_parts();
        proof.report_undecodable(&cx.emitter, "library sections");
        let Some(wanted) = &self.libraries else {
            return Ok((all, proof));
        };
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|w| !all.iter().any(|s| names(w, s)))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let have: Vec<String> = all.iter().map(section_label).collect();
            // A library that vanished must never read as "everything in it was deleted".
            let (kind, why) = match proof.reason() {
                Some(r) => (
                    ErrorKind::MalformedResponse,
                    format!(" (the list was not read whole: {r})"),
                ),
                None => (ErrorKind::InvalidInput, String::new()),
            };
            return Err(Error::new(
                kind,
                format!(
                    "configured libraries not found on the server: {}; it has: {}{why}",
                    missing.join(", "),
                    have.join(", ")
                ),
            )
            .with_provider("plex"));
        }
        let chosen = all
            .into_iter()
            .filter(|s| wanted.iter().any(|w| names(w, s)))
            .collect();
        Ok((chosen, proof))
    }

    /// Reads the allowed sections: movies, shows, then episodes (which need their show).
    async fn read_library(&self, cx: &Context) -> Result<Library> {
        let (sections, mut proof) = self.sections(cx).await?;
        if sections.is_empty() {
            proof.mark_partial("the server has no movie or show library");
        }
        let mut reads: Vec<Vec<MetadataRow>> = Vec::new();
        for s in &sections {
            let path = format!("/library/sections/{}/all", s.key.0);
            let what = format!(
                "library section {}",
                s.title.as_deref().unwrap_or(s.key.0.as_str())
            );
            let types: &[&str] = if s.kind == "movie" {
                &["1"]
            } else {
                &["2", "4"]
            };
            for ty in types {
                let call = ListCall::pms("GET /library/sections/{id}/all", path.clone())
                    .with("type", *ty)
                    .with("includeGuids", "1");
                let (rows, p) = self
                    .read_list(cx, &call, &what, library_row)
                    .await?
                    .into_parts();
                proof = proof.and(&p);
                reads.push(rows);
            }
        }
        let mut lib = Library::new(proof);
        let mut shows: HashMap<String, (String, Ids)> = HashMap::new();
        for row in reads.iter().flatten() {
            let item = if row.kind == "episode" {
                let (title, ids) = row
                    .grandparent_rating_key
                    .as_ref()
                    .and_then(|k| shows.get(&k.0).cloned())
                    .unwrap_or_else(|| {
                        (
                            row.grandparent_title.clone().unwrap_or_default(),
                            show_ids_of(row),
                        )
                    });
                episode_item(row, title, ids)
            } else {
                title_item(row)
            };
            let Some(item) = item else { continue };
            if row.kind == "show" {
                shows.insert(
                    row.rating_key.0.clone(),
                    (item.title.clone().unwrap_or_default(), item.ids.clone()),
                );
            }
            lib.push(LibItem {
                rating_key: row.rating_key.0.clone(),
                plex_guid: plex_guid(row),
                item,
                state: ItemState::of(row),
                duration: row.duration.filter(|d| *d > 0),
            });
        }
        Ok(lib)
    }

    /// A new library read, kept for the writes that follow.
    pub(crate) async fn fresh_library(&self, cx: &Context) -> Result<Library> {
        let at = Instant::now();
        let lib = self.read_library(cx).await?;
        self.cache.library.store_at(at, lib.clone());
        Ok(lib)
    }

    /// The library a write resolves against: the last read while it is fresh and was
    /// complete, else a new one. Hand it back with `self.cache.library.put_back`.
    pub(crate) async fn library_for_write(&self, cx: &Context) -> Result<(Instant, Library)> {
        if let Some(cached) = self
            .cache
            .library
            .take_fresh()
            .filter(|(_, l)| l.proof.is_complete())
        {
            return Ok(cached);
        }
        Ok((Instant::now(), self.read_library(cx).await?))
    }

    /// Every history row, newest first.
    async fn read_history_rows(&self, cx: &Context) -> Result<Read<HistoryRow>> {
        let call = ListCall::pms(
            "GET /status/sessions/history/all",
            "/status/sessions/history/all",
        )
        .with("sort", "viewedAt:desc");
        self.read_list(cx, &call, "watch history", history_row)
            .await
    }

    /// A new read of the history rows, kept for the writes that follow.
    pub(crate) async fn fresh_history_rows(&self, cx: &Context) -> Result<Read<HistoryRow>> {
        let at = Instant::now();
        let rows = self.read_history_rows(cx).await?;
        self.cache.history.store_at(at, rows.clone());
        Ok(rows)
    }

    /// The history rows a write works from: the last read while fresh, else a new one.
    pub(crate) async fn history_for_write(
        &self,
        cx: &Context,
    ) -> Result<(Instant, Read<HistoryRow>)> {
        if let Some(cached) = self
            .cache
            .history
            .take_fresh()
            .filter(|(_, r)| r.is_complete())
        {
            return Ok(cached);
        }
        Ok((Instant::now(), self.read_history_rows(cx).await?))
    }

    /// The Discover watchlist. Discover rows may lack external ids; the library knows
    /// them by plex guid, so it is read (or taken from the cache) only then.
    pub(crate) async fn read_watchlist(&self, cx: &Context) -> Result<Watchlist> {
        let call = ListCall::discover(
            "GET /library/sections/watchlist/all",
            "/library/sections/watchlist/all",
        )
        .with("includeCollections", "1")
        .with("includeExternalMedia", "1")
        .with("includeGuids", "1");
        let (rows, proof) = self
            .read_list(cx, &call, "Discover watchlist", watchlist_row)
            .await?
            .into_parts();
        let mut rows: Vec<(String, Item)> = rows
            .iter()
            .filter_map(|r| Some((r.rating_key.0.clone(), title_item(r)?)))
            .collect();
        let thin = |it: &Item| !IdKind::STRONG.iter().any(|k| it.ids.get(*k).is_some());
        if rows.iter().any(|(_, it)| thin(it)) {
            let (at, lib) = self.library_for_write(cx).await?;
            for (_, item) in rows.iter_mut().filter(|(_, it)| thin(it)) {
                if let Some(li) = item.ids.get(IdKind::Guid).and_then(|g| lib.by_plex_guid(g)) {
                    item.ids.merge_missing(&li.item.ids);
                }
            }
            self.cache.library.put_back(at, lib);
        }
        Ok(Watchlist { rows, proof })
    }

    /// The watchlist a write works from: the last read while fresh, else a new one.
    pub(crate) async fn watchlist_for_write(&self, cx: &Context) -> Result<(Instant, Watchlist)> {
        if let Some(cached) = self
            .cache
            .watchlist
            .take_fresh()
            .filter(|(_, w)| w.proof.is_complete())
        {
            return Ok(cached);
        }
        Ok((Instant::now(), self.read_watchlist(cx).await?))
    }

    pub(crate) async fn watchlist_index(&self, cx: &Context) -> Result<Snapshot> {
        let at = Instant::now();
        let wl = self.read_watchlist(cx).await?;
        let entries: Vec<Entry> = wl
            .rows
            .iter()
            .map(|(_, item)| Entry::watchlist(item.clone()))
            .collect();
        let snap = wl.proof.snapshot(Feature::Watchlist, entries);
        self.cache.watchlist.store_at(at, wl);
        Ok(snap)
    }

    pub(crate) async fn ratings_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.fresh_library(cx).await?;
        let entries = lib.items.iter().filter_map(|li| {
            let r = li.state.user_rating.and_then(crate::rating_from_plex)?;
            Some(Entry::rating(
                li.item.clone(),
                r,
                li.state.last_rated_at.map(Timestamp::from_unix),
            ))
        });
        Ok(lib.proof.snapshot(Feature::Ratings, entries))
    }

    pub(crate) async fn progress_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.fresh_library(cx).await?;
        let entries = lib
            .items
            .iter()
            .filter(|li| PLAYABLE.contains(&li.item.kind))
            .filter_map(|li| {
                let pos = li.state.view_offset?;
                Some(Entry::progress(li.item.clone(), pos, li.duration, None))
            });
        Ok(lib.proof.snapshot(Feature::Progress, entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Reader;
    use serde_json::json;

    fn lib_of(rows: Vec<Value>) -> Library {
        let mut r = Reader::new("library");
        r.rows(rows, &mut library_row);
        let (rows, proof) = r.finish_whole().into_parts();
        let mut lib = Library::new(proof);
        for row in &rows {
            lib.push(LibItem {
                rating_key: row.rating_key.0.clone(),
                plex_guid: plex_guid(row),
                item: title_item(row).unwrap(),
                state: ItemState::of(row),
                duration: None,
            });
        }
        lib
    }

    #[test]
    fn resolution_prefers_the_plex_guid_then_external_ids() {
        let lib = lib_of(vec![
            json!({"ratingKey": "7", "type": "movie", "title": "M",
            "year": 1999, "guid": "plex://movie/abc", "Guid": [{"id": "tmdb://603"}]}),
        ]);
        assert!(lib.proof.is_complete());
        let by_tmdb = Item::movie("M", 1999, Ids::new().with(IdKind::Tmdb, "603"));
        assert_eq!(
            lib.resolve(&by_tmdb).map(|l| l.rating_key.as_str()),
            Some("7")
        );
        let by_guid = Item::movie("x", 1, Ids::new().with(IdKind::Guid, "plex://movie/ABC"));
        assert_eq!(
            lib.resolve(&by_guid).map(|l| l.rating_key.as_str()),
            Some("7")
        );
        let show = Item::show("M", 1999, Ids::new().with(IdKind::Tmdb, "603"));
        assert!(lib.resolve(&show).is_none(), "types never cross");
    }
}

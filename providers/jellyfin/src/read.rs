//! Reads: every list goes through the kit's pager (`StartIndex`/`Limit` with
//! `TotalRecordCount`), rows decoded one at a time into [`ItemRow`]s.
//!
//! The user's library is one paged read: every movie, show and episode with its
//! `ProviderIds` and the user's `UserData` (on Emby with `Fields` naming the last played
//! date and play count, which Emby leaves out otherwise). Watchlist, history and
//! progress are derived from it, and writes resolve their entries against it.
//!
//! Writes resolve against the *last* library read (a [`ferry_core::ListCache`]) instead of reading
//! the library again for every call: the engine reads a feature, then writes it in
//! batches, so a first sync of N titles costs N / page size reads plus the writes, not a
//! library read per batch. The copy follows ferry's own writes (each confirmed write
//! updates it) and is re-read when older than [`LIBRARY_TTL`] (a title added to the
//! server since is then found). A change made on the server after the read and before a
//! write is not seen by that write (the engine reads a feature whose checkpoint moved
//! before writing it, which refreshes the copy); the window is the TTL at most.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferry_core::{
    Context, Entry, Feature, Item, Pager, Paging, Read, Result, Row, Snapshot, Timestamp,
};
use serde_json::Value;

use crate::api::{MediaServer, PLAYABLE, Route, TITLES};
use crate::convert::{TICKS_PER_MS, any_item, library_row, title_item};
use crate::model::{ItemRow, LibItem, Library, UserState};
use crate::outcome::named;

/// How long writes may resolve against a library read before reading it again.
pub(crate) const LIBRARY_TTL: Duration = Duration::from_secs(120);

impl MediaServer {
    /// Every page of a `QueryResult` list through the pager.
    pub(crate) async fn read_list<T>(
        &self,
        cx: &Context,
        route: &Route,
        query: &[(&'static str, String)],
        what: &str,
        decode: impl FnMut(Value) -> Row<T>,
    ) -> Result<Read<T>> {
        let paging = Paging::Offset {
            page_size: self.page_size,
            total_name: "TotalRecordCount",
        };
        Pager::new(cx, what, paging)
            .read(|req| self.query_page(cx, route, query, req), decode)
            .await
    }

    /// The whole library (movies, series, episodes) with the user's data.
    async fn read_library(&self, cx: &Context) -> Result<Library> {
        let route = self.flavor.items(&self.user_id);
        let query = [
            (self.p("recursive", "Recursive"), "true".to_owned()),
            (
                self.p("includeItemTypes", "IncludeItemTypes"),
                "Movie,Series,Episode".to_owned(),
            ),
            // Emby sends the last played date and play count only when asked.
            (self.p("fields", "Fields"), self.flavor.library_fields()),
            (
                self.p("enableUserData", "EnableUserData"),
                "true".to_owned(),
            ),
            (self.p("enableImages", "EnableImages"), "false".to_owned()),
        ];
        let read = self
            .read_list(cx, &route, &query, "library", library_row)
            .await?;
        Ok(self.library_of(read))
    }

    fn library_of(&self, read: Read<ItemRow>) -> Library {
        let (rows, proof) = read.into_parts();
        let local = self.flavor.local_id_kind();
        let series: HashMap<String, Item> = rows
            .iter()
            .filter(|r| r.kind == "Series")
            .filter_map(|r| Some((r.id.clone(), title_item(r, local)?)))
            .collect();
        let mut lib = Library::new(proof);
        for row in &rows {
            // An episode without season and episode numbers cannot be named to another
            // service; it is left out, as the servers' own sync plugins do.
            let Some(item) = any_item(row, local, &series) else {
                continue;
            };
            lib.push(LibItem {
                id: row.id.clone(),
                item,
                user: row
                    .user_data
                    .as_ref()
                    .map(UserState::from_wire)
                    .unwrap_or_default(),
                runtime_ms: row
                    .run_time_ticks
                    .map(|t| t / TICKS_PER_MS)
                    .filter(|t| *t > 0),
            });
        }
        lib
    }

    /// A new library read, kept for the writes that follow.
    pub(crate) async fn fresh_library(&self, cx: &Context) -> Result<Library> {
        let at = Instant::now();
        let lib = self.read_library(cx).await?;
        self.library.store_at(at, lib.clone());
        Ok(lib)
    }

    /// The library a write resolves against: the last read while it is fresh, else a
    /// new one. Hand it back with [`MediaServer::done_with_library`].
    pub(crate) async fn library_for_write(&self, cx: &Context) -> Result<(Instant, Library)> {
        if let Some(cached) = self.library.take_fresh() {
            return Ok(cached);
        }
        let at = Instant::now();
        Ok((at, self.read_library(cx).await?))
    }

    /// Keeps the library a write updated for the next write.
    pub(crate) fn done_with_library(&self, at: Instant, lib: Library) {
        self.library.put_back(at, lib);
    }

    pub(crate) async fn index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        if feature == Feature::Playlists {
            return self.playlists_index(cx).await;
        }
        let lib = self.fresh_library(cx).await?;
        let mut entries = Vec::new();
        let mut undated: Vec<String> = Vec::new();
        for li in &lib.items {
            let u = &li.user;
            let entry = match feature {
                Feature::Watchlist if u.favorite && TITLES.contains(&li.item.kind) => {
                    Entry::watchlist(li.item.clone())
                }
                Feature::History if PLAYABLE.contains(&li.item.kind) && u.played => {
                    // A played item without a date has no event to report, and leaving
                    // it out of a complete snapshot would read as "unplayed" (see below).
                    let Some(at) = u.last_played else {
                        undated.push(li.item.label());
                        continue;
                    };
                    Entry::watch(li.item.clone(), Timestamp::from_unix(at))
                }
                Feature::Progress if PLAYABLE.contains(&li.item.kind) && u.position_ms > 0 => {
                    Entry::progress(
                        li.item.clone(),
                        u.position_ms,
                        li.runtime_ms,
                        u.last_played.map(Timestamp::from_unix),
                    )
                }
                _ => continue,
            };
            entries.push(entry);
        }
        let mut snap = lib.proof.snapshot(feature, entries);
        if !undated.is_empty() {
            // The server says these titles are played but not when: they cannot be
            // reported as plays, and their absence is no evidence that a play is gone.
            // The read is partial, so nothing is removed on it, and the titles are named.
            let reason = undated_reason(&undated);
            cx.emitter
                .warn(&format!("{}: {}", self.instance, self.http.scrub(&reason)));
            snap.mark_partial(reason);
        }
        Ok(snap)
    }
}

/// The reason a history read is partial: played titles without a last played date.
fn undated_reason(labels: &[String]) -> String {
    format!(
        "history: {} played title(s) without a last played date, so their plays cannot be \
         read and nothing is removed on this read: {}",
        labels.len(),
        named(labels)
    )
}

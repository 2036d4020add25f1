//! Video playlists on the server: `/playlists`, `/playlists/{id}/items`.
//!
//! A playlist is matched by name (trimmed, case-insensitive). Adding an existing playlist
//! brings it to the requested entries and order without ever emptying it: missing titles
//! are appended first, extra entries removed, then entries are moved into place.
//!
//! `/playlists` "gets a list of playlists and playlist folders"; it is asked with `type=15`
//! ("a flat playlist list") and rows that still are not playlists (`type` other than
//! `playlist`, or another `playlistType`) are skipped. A playlist flagged `readOnly`
//! ("cannot be altered or deleted directly by the client") or carrying a
//! `specialPlaylistType` (e.g. favorites) is read but never written: a write to one is
//! `Unresolved { unsupported }`. Smart playlists are read but their entries never edited.

use std::collections::HashMap;

use ferry_core::{
    BatchWriter, Context, Entry, Error, ErrorKind, Feature, Item, Outcome, Payload, Playlist, Read,
    Result, Row, Snapshot, UnresolvedReason, WriteReport,
};

use crate::api::{LIBRARY_IDENTIFIER, ListCall, PlexProvider, container};
use crate::convert::{item_row, playlist_row, standalone_item};
use crate::model::{Library, ListPage, MetadataRow, PlaylistInfo};
use crate::write::{unconfirmed, unmatched};

/// Plex's metadata type of playlists (`type=15` on `/playlists`: no folders).
const PLAYLIST_TYPE: &str = "15";

fn read_only_outcome(title: &str, why: &str) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(format!(
            "the playlist \"{title}\" is {why}: ferry reads it but never changes it"
        )),
    }
}

/// `(playlistItemID, rating key)` in order.
type Entries = Vec<(String, String)>;

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// What bringing a playlist to the wanted entries did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Synced {
    /// It already held them.
    Same,
    /// Changed, and a re-read shows the wanted entries.
    Done,
    /// Changed, but a re-read does not show the wanted entries.
    Off(String),
}

impl PlexProvider {
    async fn read_playlists(&self, cx: &Context) -> Result<Read<PlaylistInfo>> {
        let call = ListCall::pms("GET /playlists", "/playlists")
            .with("type", PLAYLIST_TYPE)
            .with("playlistType", "video");
        self.read_list(cx, &call, "playlists", playlist_row).await
    }

    async fn playlist_entries(&self, cx: &Context, id: &str) -> Result<Read<MetadataRow>> {
        let call = ListCall::pms(
            "GET /playlists/{id}/items",
            format!("/playlists/{id}/items"),
        )
        .with("includeGuids", "1");
        self.read_list(cx, &call, "playlist items", item_row).await
    }

    fn playlist_item(lib: &Library, row: &MetadataRow) -> Option<Item> {
        match lib.get(&row.rating_key.0) {
            Some(li) => Some(li.item.clone()),
            // Not in the scanned sections: describe it from the row itself.
            None => standalone_item(row),
        }
    }

    pub(crate) async fn playlists_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.fresh_library(cx).await?;
        let (rows, listed) = self.read_playlists(cx).await?.into_parts();
        let mut proof = lib.proof.clone().and(&listed);
        let mut entries = Vec::new();
        for pl in rows {
            let read = self.playlist_entries(cx, &pl.id).await?;
            proof = proof.and(read.proof());
            let items: Vec<Item> = read
                .rows
                .iter()
                .filter_map(|r| Self::playlist_item(&lib, r))
                .collect();
            entries.push(Entry::playlist(Playlist {
                name: pl.title,
                description: pl.summary.filter(|s| !s.is_empty()),
                items,
            }));
        }
        Ok(proof.snapshot(Feature::Playlists, entries))
    }

    fn uri(machine: &str, keys: &[String]) -> String {
        format!(
            "server://{machine}/{LIBRARY_IDENTIFIER}/library/metadata/{}",
            keys.join(",")
        )
    }

    /// The playlist's entries, read whole, or an error: editing a playlist ferry could
    /// not read whole could drop the user's entries.
    async fn current_entries(&self, cx: &Context, id: &str) -> Result<Entries> {
        let read = self.playlist_entries(cx, id).await?;
        let whole = |why: String| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the playlist could not be read whole: {why}"),
            )
            .with_provider("plex")
        };
        if let Some(why) = read.proof().reason() {
            return Err(whole(why));
        }
        read.rows
            .iter()
            .map(|r| match &r.playlist_item_id {
                Some(pid) => Ok((pid.0.clone(), r.rating_key.0.clone())),
                None => Err(whole(format!(
                    "entry {} has no playlistItemID",
                    r.rating_key.0
                ))),
            })
            .collect()
    }

    /// The entries of `current` ferry may touch: those of the scanned library (entries of
    /// another section or media type are never touched: ferry cannot tell what they are).
    fn ours<'a>(current: &'a Entries, lib: &Library) -> Vec<&'a str> {
        current
            .iter()
            .map(|(_, k)| k.as_str())
            .filter(|k| lib.get(k).is_some())
            .collect()
    }

    /// Brings playlist `id` to `want` (rating keys, in order) without ever emptying it:
    /// missing titles are appended first, extra entries removed, then entries moved into
    /// place; a re-read confirms it.
    async fn sync_playlist(
        &self,
        cx: &Context,
        id: &str,
        want: &[String],
        lib: &Library,
    ) -> Result<Synced> {
        let machine = self.machine_id(cx).await?;
        let mut current = self.current_entries(cx, id).await?;
        if Self::ours(&current, lib)
            .into_iter()
            .eq(want.iter().map(String::as_str))
        {
            return Ok(Synced::Same);
        }
        // 1. Append what is missing (counting duplicates), so the list never shrinks first.
        let mut pool: Vec<&str> = Self::ours(&current, lib);
        let mut missing: Vec<String> = Vec::new();
        for k in want {
            match pool.iter().position(|h| *h == k) {
                Some(p) => {
                    pool.remove(p);
                }
                None => missing.push(k.clone()),
            }
        }
        if !missing.is_empty() {
            self.pms
                .put(
                    "PUT /playlists/{id}/items",
                    format!("/playlists/{id}/items"),
                )
                .query("uri", Self::uri(&machine, &missing))
                .send(cx)
                .await?;
            current = self.current_entries(cx, id).await?;
        }
        // 2. Remove entries beyond what is wanted.
        let mut budget: HashMap<&str, usize> = HashMap::new();
        for k in want {
            *budget.entry(k.as_str()).or_default() += 1;
        }
        let mut extra: Vec<String> = Vec::new();
        for (pid, k) in &current {
            match budget.get_mut(k.as_str()) {
                Some(n) if *n > 0 => *n -= 1,
                _ if lib.get(k).is_some() => extra.push(pid.clone()),
                _ => {}
            }
        }
        for pid in &extra {
            cx.check_cancelled()?;
            self.pms
                .delete(
                    "DELETE /playlists/{id}/items/{item}",
                    format!("/playlists/{id}/items/{pid}"),
                )
                .idempotent()
                .send(cx)
                .await?;
        }
        current.retain(|(pid, _)| !extra.contains(pid));
        // 3. Move entries into place.
        for (i, k) in want.iter().enumerate() {
            if current.get(i).is_some_and(|(_, have)| have == k) {
                continue;
            }
            let Some(from) = current
                .iter()
                .skip(i)
                .position(|(_, h)| h == k)
                .map(|p| p + i)
            else {
                continue;
            };
            cx.check_cancelled()?;
            let pid = current[from].0.clone();
            let mut req = self.pms.put(
                "PUT /playlists/{id}/items/{item}/move",
                format!("/playlists/{id}/items/{pid}/move"),
            );
            if i > 0 {
                req = req.query("after", &current[i - 1].0);
            }
            req.idempotent().send(cx).await?;
            let moved = current.remove(from);
            current.insert(i, moved);
        }
        let now = self.current_entries(cx, id).await?;
        Ok(
            if Self::ours(&now, lib)
                .into_iter()
                .eq(want.iter().map(String::as_str))
            {
                Synced::Done
            } else {
                Synced::Off(
                    "Plex accepted the edits, but the playlist does not read back as written"
                        .into(),
                )
            },
        )
    }

    /// Creates a playlist holding `keys`; its id when the answer names it.
    async fn create_playlist(
        &self,
        cx: &Context,
        pl: &Playlist,
        keys: &[String],
    ) -> Result<Option<String>> {
        let machine = self.machine_id(cx).await?;
        let resp = self
            .pms
            .post("POST /playlists", "/playlists")
            .query("type", "video")
            .query("title", pl.name.trim())
            .query("smart", 0)
            .query("uri", Self::uri(&machine, keys))
            .send(cx)
            .await?;
        let page: ListPage = container(&resp)?;
        let first = page.rows.unwrap_or_default().into_iter().next();
        let id = match first.map(playlist_row) {
            Some(Row::Keep(p)) => Some(p.id),
            _ => None,
        };
        if let (Some(id), Some(d)) = (&id, pl.description.as_deref().filter(|d| !d.is_empty())) {
            self.set_summary(cx, id, d).await?;
        }
        Ok(id)
    }

    async fn set_summary(&self, cx: &Context, id: &str, summary: &str) -> Result<()> {
        self.pms
            .put("PUT /playlists/{id}", format!("/playlists/{id}"))
            .query("summary", summary)
            .idempotent()
            .send(cx)
            .await
            .map(drop)
    }

    /// Writes one playlist: edits the one of that name in place, or creates it.
    async fn write_playlist(
        &self,
        cx: &Context,
        lib: &Library,
        rows: &mut Vec<PlaylistInfo>,
        pl: &Playlist,
        keys: &[String],
    ) -> Result<Outcome> {
        let existing = rows.iter().find(|r| same_name(&r.title, &pl.name)).cloned();
        match existing {
            Some(PlaylistInfo {
                title,
                read_only: Some(why),
                ..
            }) => Ok(read_only_outcome(&title, &why)),
            Some(r) if r.smart => Ok(Outcome::Unresolved {
                reason: UnresolvedReason::Unsupported,
                detail: Some(
                    "a smart playlist of that name exists; Plex computes its entries".into(),
                ),
            }),
            Some(r) => {
                let synced = self.sync_playlist(cx, &r.id, keys, lib).await?;
                let want_summary = pl.description.clone().unwrap_or_default();
                let summary_changed = pl.description.is_some()
                    && r.summary.clone().unwrap_or_default() != want_summary;
                if summary_changed {
                    self.set_summary(cx, &r.id, &want_summary).await?;
                }
                Ok(match synced {
                    Synced::Off(why) => unconfirmed(why),
                    Synced::Same if !summary_changed => Outcome::AlreadyPresent,
                    Synced::Same | Synced::Done => Outcome::Confirmed,
                })
            }
            None if keys.is_empty() => Ok(Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                detail: Some("none of the playlist's titles is in the Plex library".into()),
            }),
            None => match self.create_playlist(cx, pl, keys).await? {
                Some(id) => {
                    rows.push(PlaylistInfo {
                        id,
                        title: pl.name.trim().to_owned(),
                        summary: pl.description.clone(),
                        smart: false,
                        read_only: None,
                    });
                    Ok(Outcome::Confirmed)
                }
                None => Ok(unconfirmed(
                    "Plex answered the creation without naming the playlist",
                )),
            },
        }
    }

    pub(crate) async fn playlists_add(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (at, lib) = self.library_for_write(cx).await?;
        let r = self.playlists_add_with(cx, &lib, entries).await;
        // Playlist edits do not change the library's items.
        self.cache.library.put_back(at, lib);
        r
    }

    async fn playlists_add_with(
        &self,
        cx: &Context,
        lib: &Library,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (mut rows, _) = self.read_playlists(cx).await?.into_parts();
        let mut w = BatchWriter::new(cx, entries);
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Playlist(_)) {
                w.settle(i, Outcome::wrong_payload(e, Feature::Playlists));
            }
        }
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Payload::Playlist(pl) = &entries[i].payload else {
                continue;
            };
            let mut keys = Vec::new();
            let mut unresolved = Vec::new();
            for it in &pl.items {
                match lib.resolve(it) {
                    Some(li) => keys.push(li.rating_key.clone()),
                    None => unresolved.push(it.label()),
                }
            }
            if !unresolved.is_empty() && !lib.partial().is_empty() {
                w.record_one(i, Ok(unmatched(lib.partial(), true)));
                continue;
            }
            let result = self.write_playlist(cx, lib, &mut rows, pl, &keys).await;
            let result = result.map(|o| {
                if !unresolved.is_empty() && o.is_settled() {
                    Outcome::Unresolved {
                        reason: UnresolvedReason::NotFound,
                        detail: Some(format!(
                            "written without {} title(s) not in the library: {}",
                            unresolved.len(),
                            unresolved.join(", ")
                        )),
                    }
                } else {
                    o
                }
            });
            w.record_one(i, result);
        }
        Ok(w.finish())
    }

    pub(crate) async fn playlists_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (rows, _) = self.read_playlists(cx).await?.into_parts();
        let mut w = BatchWriter::new(cx, entries);
        let mut targets: Vec<Option<String>> = vec![None; entries.len()];
        let mut chosen: Vec<String> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Playlist(pl) = &e.payload else {
                w.settle(i, Outcome::wrong_payload(e, Feature::Playlists));
                continue;
            };
            let Some(r) = rows
                .iter()
                .find(|r| same_name(&r.title, &pl.name) && !chosen.contains(&r.id))
            else {
                w.settle(i, Outcome::AlreadyAbsent);
                continue;
            };
            if let Some(why) = &r.read_only {
                w.settle(i, read_only_outcome(&r.title, why));
                continue;
            }
            chosen.push(r.id.clone());
            targets[i] = Some(r.id.clone());
        }
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Some(id) = targets[i].as_deref() else {
                continue;
            };
            let r = self
                .pms
                .delete("DELETE /playlists/{id}", format!("/playlists/{id}"))
                .idempotent()
                .send(cx)
                .await;
            let outcome = match r {
                Ok(_) => Ok(Outcome::Confirmed),
                Err(err) if err.kind() == ErrorKind::NotFound => Ok(Outcome::AlreadyAbsent),
                Err(err) => Err(err),
            };
            w.record_one(i, outcome);
        }
        Ok(w.finish())
    }
}

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

use ferry_core::{
    Context, Entry, Feature, Item, Outcome, Payload, Playlist, Result, Snapshot, UnresolvedReason,
    WriteReport,
};
use serde_json::Value;

use crate::library::{Library, ids_of, title_item};
use crate::outcome::{Outcomes, unmatched, wrong_payload};
use crate::paging::{fetch_all, str_field, u64_field};
use crate::{LIBRARY_IDENTIFIER, PlexProvider};

#[derive(Debug, Clone)]
struct PlaylistRow {
    id: String,
    title: String,
    summary: Option<String>,
    smart: bool,
    /// Why ferry must not write it (`readOnly`, `specialPlaylistType`), if so.
    read_only: Option<String>,
}

/// Plex's metadata type of playlists (`type=15` on `/playlists`: no folders).
const PLAYLIST_TYPE: &str = "15";

fn flag(row: &Value, key: &str) -> bool {
    row.get(key)
        .is_some_and(|s| s.as_bool() == Some(true) || s.as_u64() == Some(1) || s == "1")
}

/// A `/playlists` row as a video playlist; `None` for a folder or another kind of list.
fn playlist_row(r: &Value) -> Option<PlaylistRow> {
    let is = |key: &str, want: &str| {
        r.get(key)
            .and_then(Value::as_str)
            .is_none_or(|v| v.eq_ignore_ascii_case(want))
    };
    if !is("type", "playlist") || !is("playlistType", "video") {
        return None;
    }
    let special = str_field(r, "specialPlaylistType");
    let read_only = match (flag(r, "readOnly"), special) {
        (_, Some(s)) => Some(format!("a special Plex playlist ({s})")),
        (true, None) => Some("read-only on Plex (readOnly)".to_owned()),
        (false, None) => None,
    };
    Some(PlaylistRow {
        id: str_field(r, "ratingKey")?,
        title: str_field(r, "title")?,
        summary: str_field(r, "summary"),
        smart: flag(r, "smart"),
        read_only,
    })
}

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

impl PlexProvider {
    async fn playlist_rows(&self, cx: &Context) -> Result<(Vec<PlaylistRow>, Vec<String>)> {
        let paged = fetch_all(
            cx,
            &self.pms,
            "GET /playlists",
            "/playlists",
            &[
                ("type", PLAYLIST_TYPE.to_owned()),
                ("playlistType", "video".to_owned()),
            ],
            self.page_size,
            "playlists",
        )
        .await?;
        let rows = paged.rows.iter().filter_map(playlist_row).collect();
        Ok((rows, paged.partial))
    }

    async fn playlist_entries(&self, cx: &Context, id: &str) -> Result<(Vec<Value>, Vec<String>)> {
        let paged = fetch_all(
            cx,
            &self.pms,
            "GET /playlists/{id}/items",
            &format!("/playlists/{id}/items"),
            &[("includeGuids", "1".to_owned())],
            self.page_size,
            "playlist items",
        )
        .await?;
        Ok((paged.rows, paged.partial))
    }

    fn playlist_item(lib: &Library, row: &Value) -> Option<Item> {
        if let Some(li) = str_field(row, "ratingKey").and_then(|k| lib.get(&k)) {
            return Some(li.item.clone());
        }
        // Not in the scanned sections: describe it from the row itself.
        match row.get("type").and_then(Value::as_str) {
            Some("episode") => {
                let mut ep = Item::episode(
                    str_field(row, "grandparentTitle").unwrap_or_default(),
                    ferry_core::Ids::new(),
                    u64_field(row, "parentIndex")? as u32,
                    u64_field(row, "index")? as u32,
                );
                ep.ids = ids_of(row, true);
                Some(ep)
            }
            _ => title_item(row),
        }
    }

    pub(crate) async fn playlists_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.library(cx).await?;
        let (rows, partial) = self.playlist_rows(cx).await?;
        let mut snap = Snapshot::unproven_legacy(Feature::Playlists);
        for p in lib.partial.iter().chain(&partial) {
            snap.mark_partial(p.clone());
        }
        for pl in rows {
            let (items, partial) = self.playlist_entries(cx, &pl.id).await?;
            for p in partial {
                snap.mark_partial(p);
            }
            let items: Vec<Item> = items
                .iter()
                .filter_map(|r| Self::playlist_item(&lib, r))
                .collect();
            snap.insert(Entry::playlist(Playlist {
                name: pl.title,
                description: pl.summary.filter(|s| !s.is_empty()),
                items,
            }));
        }
        Ok(snap)
    }

    fn uri(machine: &str, keys: &[String]) -> String {
        format!(
            "server://{machine}/{LIBRARY_IDENTIFIER}/library/metadata/{}",
            keys.join(",")
        )
    }

    async fn current_entries(&self, cx: &Context, id: &str) -> Result<Entries> {
        let (rows, partial) = self.playlist_entries(cx, id).await?;
        if let Some(p) = partial.into_iter().next() {
            // Editing a playlist we could not read whole could drop the user's entries.
            return Err(ferry_core::Error::new(
                ferry_core::ErrorKind::Unavailable,
                format!("the playlist could not be read whole: {p}"),
            )
            .with_provider("plex"));
        }
        Ok(rows
            .iter()
            .filter_map(|r| Some((str_field(r, "playlistItemID")?, str_field(r, "ratingKey")?)))
            .collect())
    }

    /// Brings playlist `id` to `want` (rating keys, in order); returns whether it changed.
    async fn sync_playlist(
        &self,
        cx: &Context,
        id: &str,
        want: &[String],
        lib: &Library,
    ) -> Result<bool> {
        let machine = self.machine_id(cx).await?;
        let mut current = self.current_entries(cx, id).await?;
        // Entries outside the scanned library (another section, another media type) are
        // never touched: ferry cannot tell what they are.
        let have: Vec<&String> = current
            .iter()
            .map(|(_, k)| k)
            .filter(|k| lib.get(k).is_some())
            .collect();
        if have
            .iter()
            .map(|k| k.as_str())
            .eq(want.iter().map(String::as_str))
        {
            return Ok(false);
        }
        // 1. Append what is missing (counting duplicates), so the list never shrinks first.
        let mut pool: Vec<&String> = have.clone();
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
        let mut budget: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
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
        Ok(true)
    }

    pub(crate) async fn playlists_add(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let lib = self.library(cx).await?;
        let (mut rows, _) = self.playlist_rows(cx).await?;
        let mut out = Outcomes::new(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let Payload::Playlist(pl) = &e.payload else {
                out.set(i, wrong_payload(e, Feature::Playlists));
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
            if !unresolved.is_empty() && !lib.partial.is_empty() {
                out.set(i, unmatched(&lib.partial, true));
                continue;
            }
            cx.check_cancelled()?;
            let existing = rows.iter().find(|r| same_name(&r.title, &pl.name)).cloned();
            let result: Result<Outcome> = async {
                match existing {
                    Some(PlaylistRow {
                        title,
                        read_only: Some(why),
                        ..
                    }) => Ok(read_only_outcome(&title, &why)),
                    Some(r) if r.smart => Ok(Outcome::Unresolved {
                        reason: UnresolvedReason::Unsupported,
                        detail: Some(
                            "a smart playlist of that name exists; Plex computes its entries"
                                .into(),
                        ),
                    }),
                    Some(r) => {
                        let mut changed = self.sync_playlist(cx, &r.id, &keys, &lib).await?;
                        let want_summary = pl.description.clone().unwrap_or_default();
                        if pl.description.is_some()
                            && r.summary.clone().unwrap_or_default() != want_summary
                        {
                            self.pms
                                .put("PUT /playlists/{id}", format!("/playlists/{}", r.id))
                                .query("summary", &want_summary)
                                .idempotent()
                                .send(cx)
                                .await?;
                            changed = true;
                        }
                        Ok(if changed {
                            Outcome::Confirmed
                        } else {
                            Outcome::AlreadyPresent
                        })
                    }
                    None if keys.is_empty() => Ok(Outcome::Unresolved {
                        reason: UnresolvedReason::NotFound,
                        detail: Some("none of the playlist's titles is in the Plex library".into()),
                    }),
                    None => {
                        let machine = self.machine_id(cx).await?;
                        let body: Value = self
                            .pms
                            .post("POST /playlists", "/playlists")
                            .query("type", "video")
                            .query("title", pl.name.trim())
                            .query("smart", 0)
                            .query("uri", Self::uri(&machine, &keys))
                            .send_json(cx)
                            .await?;
                        let created = body
                            .get("MediaContainer")
                            .and_then(|m| m.get("Metadata"))
                            .and_then(|m| m.get(0))
                            .and_then(|m| str_field(m, "ratingKey"));
                        if let Some(id) = created {
                            if let Some(d) = pl.description.as_deref().filter(|d| !d.is_empty()) {
                                self.pms
                                    .put("PUT /playlists/{id}", format!("/playlists/{id}"))
                                    .query("summary", d)
                                    .idempotent()
                                    .send(cx)
                                    .await?;
                            }
                            rows.push(PlaylistRow {
                                id,
                                title: pl.name.trim().to_owned(),
                                summary: pl.description.clone(),
                                smart: false,
                                read_only: None,
                            });
                        }
                        Ok(Outcome::Confirmed)
                    }
                }
            }
            .await;
            match result {
                Ok(o) if !unresolved.is_empty() && o.is_settled() => out.set(
                    i,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::NotFound,
                        detail: Some(format!(
                            "written without {} title(s) not in the library: {}",
                            unresolved.len(),
                            unresolved.join(", ")
                        )),
                    },
                ),
                Ok(o) => out.set(i, o),
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        Ok(out.report(entries))
    }

    pub(crate) async fn playlists_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (rows, _) = self.playlist_rows(cx).await?;
        let mut out = Outcomes::new(entries.len());
        let mut gone: Vec<String> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Playlist(pl) = &e.payload else {
                out.set(i, wrong_payload(e, Feature::Playlists));
                continue;
            };
            let Some(r) = rows
                .iter()
                .find(|r| same_name(&r.title, &pl.name) && !gone.contains(&r.id))
            else {
                out.set(i, Outcome::AlreadyAbsent);
                continue;
            };
            if let Some(why) = &r.read_only {
                out.set(i, read_only_outcome(&r.title, why));
                continue;
            }
            cx.check_cancelled()?;
            match self
                .pms
                .delete("DELETE /playlists/{id}", format!("/playlists/{}", r.id))
                .idempotent()
                .send(cx)
                .await
            {
                Ok(_) => {
                    gone.push(r.id.clone());
                    out.set(i, Outcome::Confirmed);
                }
                Err(err) if err.kind() == ferry_core::ErrorKind::NotFound => {
                    out.set(i, Outcome::AlreadyAbsent)
                }
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        Ok(out.report(entries))
    }
}

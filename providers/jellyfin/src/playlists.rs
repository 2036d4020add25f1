//! The user's playlists: listed as items of type `Playlist`, read through
//! `/Playlists/{id}/Items` (entries carry a `PlaylistItemId`), created with
//! `POST /Playlists`, edited by adding (`Ids`), removing (`EntryIds`) and moving entries,
//! deleted with `DELETE /Items/{id}`.
//!
//! A playlist is matched by name (trimmed, case-insensitive). Editing never empties a
//! playlist first: missing titles are appended, extra entries removed, then entries moved.

use std::collections::HashMap;

use ferry_core::{
    Context, Entry, Error, ErrorKind, Feature, Item, Outcome, Payload, Playlist, Result, Snapshot,
    UnresolvedReason, WriteReport,
};
use serde_json::{Value, json};

use crate::library::{Library, episode_item, title_item};
use crate::outcome::{Outcomes, outcome_for, stops_batch, unmatched, wrong_payload};
use crate::server::{Flavor, MediaServer, Method, Route};

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// `(PlaylistItemId, item id)` in order.
type Entries = Vec<(String, String)>;

impl MediaServer {
    fn playlist_route(&self, id: &str, label: &'static str, suffix: &str) -> Route {
        Route {
            path: format!("/Playlists/{id}{suffix}"),
            user_query: None,
            label,
        }
    }

    async fn playlist_rows(&self, cx: &Context) -> Result<(Vec<(String, String)>, Vec<String>)> {
        let route = self.flavor.items(&self.user_id);
        let paged = self
            .fetch_all(
                cx,
                &route,
                &[
                    (self.p("recursive", "Recursive"), "true".to_owned()),
                    (
                        self.p("includeItemTypes", "IncludeItemTypes"),
                        "Playlist".to_owned(),
                    ),
                ],
                "playlists",
            )
            .await?;
        let rows = paged
            .rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("Id")?.as_str()?.to_owned(),
                    r.get("Name")?.as_str()?.to_owned(),
                ))
            })
            .collect();
        Ok((rows, paged.partial))
    }

    async fn playlist_entries(&self, cx: &Context, id: &str) -> Result<(Vec<Value>, Vec<String>)> {
        let route = self.playlist_route(id, "/Playlists/{id}/Items", "/Items");
        let paged = self
            .fetch_all(
                cx,
                &route,
                &[
                    (self.p("userId", "UserId"), self.user_id.clone()),
                    (self.p("fields", "Fields"), "ProviderIds".to_owned()),
                ],
                "playlist items",
            )
            .await?;
        Ok((paged.rows, paged.partial))
    }

    fn entry_item(&self, lib: &Library, row: &Value) -> Option<Item> {
        if let Some(li) = row
            .get("Id")
            .and_then(Value::as_str)
            .and_then(|id| lib.get(id))
        {
            return Some(li.item.clone());
        }
        let local = self.flavor.local_id_kind();
        title_item(row, local).or_else(|| episode_item(row, local, None))
    }

    pub(crate) async fn playlists_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.library(cx).await?;
        let (rows, partial) = self.playlist_rows(cx).await?;
        let mut snap = Snapshot::new(Feature::Playlists);
        for p in lib.partial.iter().chain(&partial) {
            snap.mark_partial(p.clone());
        }
        for (id, name) in rows {
            let (entries, partial) = self.playlist_entries(cx, &id).await?;
            for p in partial {
                snap.mark_partial(p);
            }
            let items = entries
                .iter()
                .filter_map(|r| self.entry_item(&lib, r))
                .collect();
            snap.insert(Entry::playlist(Playlist {
                name,
                description: None,
                items,
            }));
        }
        Ok(snap)
    }

    async fn current_entries(&self, cx: &Context, id: &str) -> Result<Entries> {
        let (rows, partial) = self.playlist_entries(cx, id).await?;
        if let Some(p) = partial.into_iter().next() {
            // Editing a playlist we could not read whole could drop the user's entries.
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("the playlist could not be read whole: {p}"),
            )
            .with_provider(self.flavor.provider_id()));
        }
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("PlaylistItemId")?.as_str()?.to_owned(),
                    r.get("Id")?.as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    async fn create_playlist(&self, cx: &Context, name: &str, ids: &[String]) -> Result<()> {
        let route = Route {
            path: "/Playlists".to_owned(),
            user_query: None,
            label: "/Playlists",
        };
        let req = self.call(Method::Post, &route);
        let req = match self.flavor {
            Flavor::Jellyfin => req.json(&json!({
                "Name": name, "Ids": ids, "UserId": self.user_id, "MediaType": "Video",
            })),
            Flavor::Emby => req
                .query("Name", name)
                .query("Ids", ids.join(","))
                .query("UserId", &self.user_id)
                .query("MediaType", "Video"),
        };
        let v: Value = req.send_json(cx).await?;
        match v.get("Id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err(Error::new(
                ErrorKind::MalformedResponse,
                "the server did not return the new playlist's id",
            )
            .with_provider(self.flavor.provider_id())),
        }
    }

    /// Brings playlist `id` to `want` (item ids, in order); returns whether it changed.
    async fn sync_playlist(
        &self,
        cx: &Context,
        id: &str,
        want: &[String],
        lib: &Library,
    ) -> Result<bool> {
        let mut current = self.current_entries(cx, id).await?;
        // Entries outside the library index (other media types) are never touched.
        if current
            .iter()
            .map(|(_, i)| i)
            .filter(|i| lib.get(i).is_some())
            .eq(want.iter())
        {
            return Ok(false);
        }
        let items_route = self.playlist_route(id, "/Playlists/{id}/Items", "/Items");
        // 1. Append what is missing (counting duplicates).
        let mut pool: Vec<&String> = current.iter().map(|(_, i)| i).collect();
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
            self.call(Method::Post, &items_route)
                .query(self.p("ids", "Ids"), missing.join(","))
                .query(self.p("userId", "UserId"), &self.user_id)
                .send(cx)
                .await?;
            current = self.current_entries(cx, id).await?;
        }
        // 2. Remove entries beyond what is wanted, in one request.
        let mut budget: HashMap<&str, usize> = HashMap::new();
        for k in want {
            *budget.entry(k.as_str()).or_default() += 1;
        }
        let mut extra: Vec<String> = Vec::new();
        for (entry, item) in &current {
            match budget.get_mut(item.as_str()) {
                Some(n) if *n > 0 => *n -= 1,
                _ if lib.get(item).is_some() => extra.push(entry.clone()),
                _ => {}
            }
        }
        if !extra.is_empty() {
            self.call(Method::Delete, &items_route)
                .query(self.p("entryIds", "EntryIds"), extra.join(","))
                .idempotent()
                .send(cx)
                .await?;
            current.retain(|(e, _)| !extra.contains(e));
        }
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
            let entry = current[from].0.clone();
            let route = self.playlist_route(
                id,
                "/Playlists/{id}/Items/{entryId}/Move/{index}",
                &format!("/Items/{entry}/Move/{i}"),
            );
            self.call(Method::Post, &route)
                .idempotent()
                .send(cx)
                .await?;
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
            let mut ids = Vec::new();
            let mut unresolved = Vec::new();
            for it in &pl.items {
                match lib.resolve(it) {
                    Some(li) => ids.push(li.id.clone()),
                    None => unresolved.push(it.label()),
                }
            }
            if !unresolved.is_empty() && !lib.partial.is_empty() {
                out.set(i, unmatched(&lib.partial, true));
                continue;
            }
            cx.check_cancelled()?;
            let existing = rows.iter().find(|(_, n)| same_name(n, &pl.name)).cloned();
            let result: Result<Outcome> = match existing {
                Some((id, _)) => self
                    .sync_playlist(cx, &id, &ids, &lib)
                    .await
                    .map(|changed| {
                        if changed {
                            Outcome::Confirmed
                        } else {
                            Outcome::AlreadyPresent
                        }
                    }),
                None if ids.is_empty() => Ok(Outcome::Unresolved {
                    reason: UnresolvedReason::NotFound,
                    detail: Some("none of the playlist's titles is on the server".into()),
                }),
                None => {
                    let r = self.create_playlist(cx, pl.name.trim(), &ids).await;
                    if r.is_ok() {
                        // Learn the new id for later entries of this batch.
                        if let Ok((fresh, _)) = self.playlist_rows(cx).await {
                            rows = fresh;
                        }
                    }
                    r.map(|()| Outcome::Confirmed)
                }
            };
            match result {
                Ok(o) if !unresolved.is_empty() && o.is_settled() => out.set(
                    i,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::NotFound,
                        detail: Some(format!(
                            "written without {} title(s) the server does not hold: {}",
                            unresolved.len(),
                            unresolved.join(", ")
                        )),
                    },
                ),
                Ok(o) => out.set(i, o),
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
            let Some((id, _)) = rows
                .iter()
                .find(|(id, n)| same_name(n, &pl.name) && !gone.contains(id))
            else {
                out.set(i, Outcome::AlreadyAbsent);
                continue;
            };
            cx.check_cancelled()?;
            let route = Route {
                path: format!("/Items/{id}"),
                user_query: None,
                label: "/Items/{id}",
            };
            match self
                .call(Method::Delete, &route)
                .idempotent()
                .send(cx)
                .await
            {
                Ok(_) => {
                    gone.push(id.clone());
                    out.set(i, Outcome::Confirmed);
                }
                Err(err) if err.kind() == ErrorKind::NotFound => out.set(i, Outcome::AlreadyAbsent),
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
        Ok(out.report(entries))
    }
}

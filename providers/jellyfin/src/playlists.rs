//! The user's playlists: listed as items of type `Playlist`, read through
//! `/Playlists/{id}/Items` (entries carry a `PlaylistItemId`), created with
//! `POST /Playlists`, edited by adding (`Ids`), removing (`EntryIds`) and moving entries,
//! deleted with `DELETE /Items/{id}`.
//!
//! A playlist is matched by name (trimmed, case-insensitive). Editing never empties a
//! playlist first: missing titles are appended, extra entries removed, then entries moved.
//!
//! Jellyfin specifics:
//! - **Owners.** Every playlist has an owner, and the listing also shows other users'
//!   playlists that are shared with the user or `OpenAccess`. Only the owner may edit one,
//!   and removing and moving entries take the user from the *token* (an API key has none
//!   and gets 403). ferry reads and edits only the configured user's own playlists: it asks
//!   `GET /Users/Me` whose token it holds, and `GET /Playlists/{id}/Users` (answered to the
//!   owner only) whose each playlist is. Another user's playlist is never read, matched,
//!   edited or deleted. With a token that is not the user's (an API key) ownership cannot
//!   be told: such playlists are left out of the read, which is then partial, never deleted,
//!   and edited only as far as the server allows; a refusal (403) is that entry's
//!   `Unresolved` outcome, naming the fix (a user access token), never the batch's.
//! - **No duplicates.** Jellyfin drops an item already in the playlist (and repeats within
//!   one request; `playlists:allowDuplicates` is off by default), so ferry never asks for a
//!   second copy: a playlist that repeats a title is written with each title once (copies
//!   the server already holds are kept) and reported `Unresolved { unsupported }` naming the
//!   duplicates, with no write for them, so later runs do not repeat it. Emby keeps
//!   duplicates as before (its behaviour is undocumented).

use std::collections::HashMap;

use ferry_core::{
    BatchWriter, Context, Entry, Error, ErrorKind, Feature, Item, Outcome, Payload, Playlist,
    Proof, Read, Result, Row as WireRow, Snapshot, UnresolvedReason, WriteReport,
};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Flavor, MediaServer, Method, Route};
use crate::convert::{episode_item, item_row, title_item};
use crate::model::{ItemRow, Library, Me, PlaylistRow};
use crate::outcome::{named, unmatched, wrong_payload};

/// `POST /Playlists`' answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    #[serde(default)]
    id: Option<String>,
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Jellyfin writes user ids with or without dashes, in either case.
fn same_user(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace('-', "").to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The HTTP status an error came from, if it came from one.
fn http_status(e: &Error) -> Option<u16> {
    e.context()
        .iter()
        .find(|(k, _)| *k == "status")
        .and_then(|(_, v)| v.parse().ok())
}

/// `(PlaylistItemId, item id)` in order.
type Entries = Vec<(String, String)>;

/// Whose a listed playlist is, as far as ferry can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The configured user's: read and edited.
    User,
    /// Another user's (shared with the user or `OpenAccess`): never read or edited.
    Other,
    /// Not known: the token is not the configured user's (an API key), and Jellyfin tells
    /// only a playlist's owner that it is theirs.
    Unknown,
}

/// A listed playlist.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    name: String,
    owner: Owner,
}

impl MediaServer {
    fn playlist_route(&self, id: &str, label: &'static str, suffix: &str) -> Route {
        Route {
            path: format!("/Playlists/{id}{suffix}"),
            user_query: None,
            label,
        }
    }

    /// Jellyfin: whether the token is the configured user's (`GET /Users/Me`, asked once;
    /// an API key gets "400 Token is not owned by a user").
    async fn token_is_users(&self, cx: &Context) -> Result<bool> {
        let user = self
            .token_user
            .get_or_try_init(|| async {
                match self.http.get("GET /Users/Me", "/Users/Me").send(cx).await {
                    Ok(r) => Ok(r.json::<Me>()?.id),
                    Err(e) if http_status(&e) == Some(400) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(user.as_deref().is_some_and(|u| same_user(u, &self.user_id)))
    }

    /// Whose playlist `id` is (`None`: it is gone). Emby has no owner checks: every listed
    /// playlist is the user's, as before. Jellyfin: `GET /Playlists/{id}/Users` answers the
    /// owner and refuses (403) everyone else; the answer is kept for the provider's life.
    async fn playlist_owner(&self, cx: &Context, id: &str) -> Result<Option<Owner>> {
        if self.flavor == Flavor::Emby {
            return Ok(Some(Owner::User));
        }
        let known = self
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied();
        if let Some(mine) = known {
            return Ok(Some(if mine { Owner::User } else { Owner::Other }));
        }
        if !self.token_is_users(cx).await? {
            return Ok(Some(Owner::Unknown));
        }
        let route = self.playlist_route(id, "/Playlists/{id}/Users", "/Users");
        let mine = match self.call(Method::Get, &route).send(cx).await {
            Ok(_) => true,
            Err(e) if http_status(&e) == Some(403) => false,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), mine);
        Ok(Some(if mine { Owner::User } else { Owner::Other }))
    }

    async fn playlist_rows(&self, cx: &Context) -> Result<(Vec<Row>, Proof)> {
        let route = self.flavor.items(&self.user_id);
        let query = [
            (self.p("recursive", "Recursive"), "true".to_owned()),
            (
                self.p("includeItemTypes", "IncludeItemTypes"),
                "Playlist".to_owned(),
            ),
        ];
        let read = self
            .read_list(cx, &route, &query, "playlists", |raw| {
                WireRow::from_result(ferry_core::read::decode::<PlaylistRow>(&raw))
            })
            .await?;
        let (listed, proof) = read.into_parts();
        let mut rows = Vec::with_capacity(listed.len());
        for PlaylistRow { id, name } in listed {
            if let Some(owner) = self.playlist_owner(cx, &id).await? {
                rows.push(Row { id, name, owner });
            }
        }
        Ok((rows, proof))
    }

    async fn playlist_entries(&self, cx: &Context, id: &str) -> Result<Read<ItemRow>> {
        let route = self.playlist_route(id, "/Playlists/{id}/Items", "/Items");
        let query = [
            (self.p("userId", "UserId"), self.user_id.clone()),
            (self.p("fields", "Fields"), "ProviderIds".to_owned()),
        ];
        self.read_list(cx, &route, &query, "playlist items", item_row)
            .await
    }

    fn entry_item(&self, lib: &Library, row: &ItemRow) -> Option<Item> {
        if let Some(li) = lib.get(&row.id) {
            return Some(li.item.clone());
        }
        let local = self.flavor.local_id_kind();
        title_item(row, local).or_else(|| episode_item(row, local, None))
    }

    pub(crate) async fn playlists_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.fresh_library(cx).await?;
        let (rows, listing) = self.playlist_rows(cx).await?;
        let mut proof = lib.proof.clone().and(&listing);
        let mut playlists = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for row in rows {
            match row.owner {
                Owner::User => {}
                // Another user's playlist is not this user's data.
                Owner::Other => continue,
                Owner::Unknown => {
                    unknown.push(format!("\"{}\"", row.name));
                    continue;
                }
            }
            let (entries, read) = self.playlist_entries(cx, &row.id).await?.into_parts();
            proof = proof.and(&read);
            let items = entries
                .iter()
                .filter_map(|r| self.entry_item(&lib, r))
                .collect();
            playlists.push(Entry::playlist(Playlist {
                name: row.name,
                description: None,
                items,
            }));
        }
        let mut snap: Snapshot = proof.snapshot(Feature::Playlists, playlists);
        if !unknown.is_empty() {
            snap.mark_partial(format!(
                "playlists: {} playlist(s) not read because the token is not user {}'s access \
                 token (an API key?), so Jellyfin does not tell whose they are: {}; configure \
                 a user access token",
                unknown.len(),
                self.user_id,
                named(&unknown)
            ));
        }
        Ok(snap)
    }

    async fn current_entries(&self, cx: &Context, id: &str) -> Result<Entries> {
        let (rows, proof) = self.playlist_entries(cx, id).await?.into_parts();
        if let Some(p) = proof.reason() {
            // Editing a playlist we could not read whole could drop the user's entries.
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("the playlist could not be read whole: {p}"),
            )
            .with_provider(self.flavor.provider_id()));
        }
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.playlist_item_id?, r.id)))
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
        let v: Created = req.send_json(cx).await?;
        match v.id.as_deref() {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err(Error::new(
                ErrorKind::MalformedResponse,
                "the server did not return the new playlist's id",
            )
            .with_provider(self.flavor.provider_id())),
        }
    }

    /// What a playlist holding `current` (item ids) can be brought to from `want`: the
    /// wanted ids in order, and the wanted copies the server cannot hold. Jellyfin drops
    /// an item already in the playlist, so a title gets no more copies than it already
    /// has, or one; Emby holds whatever is asked.
    fn holdable(&self, current: &[&str], want: &[String]) -> (Vec<String>, Vec<String>) {
        if self.flavor != Flavor::Jellyfin {
            return (want.to_vec(), Vec::new());
        }
        let mut have: HashMap<&str, usize> = HashMap::new();
        for k in current {
            *have.entry(k).or_default() += 1;
        }
        let mut used: HashMap<&str, usize> = HashMap::new();
        let (mut target, mut dropped) = (Vec::new(), Vec::new());
        for k in want {
            let cap = have.get(k.as_str()).copied().unwrap_or(0).max(1);
            let n = used.entry(k.as_str()).or_default();
            if *n < cap {
                *n += 1;
                target.push(k.clone());
            } else {
                dropped.push(k.clone());
            }
        }
        (target, dropped)
    }

    /// The outcome of a playlist edit the server refused (403), or the error itself.
    fn refused(&self, err: Error, name: &str) -> Result<Outcome> {
        if http_status(&err) != Some(403) {
            return Err(err);
        }
        let detail = match self.flavor {
            Flavor::Jellyfin => format!(
                "Jellyfin refused to edit playlist \"{name}\" (HTTP 403): adding, removing and \
                 moving entries need an access token of the playlist's owner, user {}; an API \
                 key or another user's token is refused. Set `token` to that user's access \
                 token",
                self.user_id
            ),
            Flavor::Emby => format!("Emby refused to edit playlist \"{name}\" (HTTP 403)"),
        };
        Ok(Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            detail: Some(detail),
        })
    }

    /// Brings playlist `pl` to `want` (item ids, in order), as far as the server can hold
    /// it (see [`MediaServer::holdable`]): the outcome, and the wanted copies left out.
    async fn sync_playlist(
        &self,
        cx: &Context,
        pl: &Row,
        want: &[String],
        lib: &Library,
    ) -> Result<(Outcome, Vec<String>)> {
        let id = pl.id.as_str();
        let mut current = self.current_entries(cx, id).await?;
        let (target, dropped) = {
            let have: Vec<&str> = current.iter().map(|(_, i)| i.as_str()).collect();
            self.holdable(&have, want)
        };
        // Entries outside the library index (other media types) are never touched.
        let in_order = |current: &Entries| {
            current
                .iter()
                .map(|(_, i)| i)
                .filter(|i| lib.get(i).is_some())
                .eq(target.iter())
        };
        if in_order(&current) {
            return Ok((Outcome::AlreadyPresent, dropped));
        }
        let items_route = self.playlist_route(id, "/Playlists/{id}/Items", "/Items");
        // 1. Append what is missing (counting duplicates).
        let mut pool: Vec<&String> = current.iter().map(|(_, i)| i).collect();
        let mut missing: Vec<String> = Vec::new();
        for k in &target {
            match pool.iter().position(|h| *h == k) {
                Some(p) => {
                    pool.remove(p);
                }
                None => missing.push(k.clone()),
            }
        }
        if !missing.is_empty() {
            let sent = self
                .call(Method::Post, &items_route)
                .query(self.p("ids", "Ids"), missing.join(","))
                .query(self.p("userId", "UserId"), &self.user_id)
                .send(cx)
                .await;
            if let Err(e) = sent {
                return self.refused(e, &pl.name).map(|o| (o, dropped));
            }
            current = self.current_entries(cx, id).await?;
        }
        // 2. Remove entries beyond what is wanted, in one request.
        let mut budget: HashMap<&str, usize> = HashMap::new();
        for k in &target {
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
            let sent = self
                .call(Method::Delete, &items_route)
                .query(self.p("entryIds", "EntryIds"), extra.join(","))
                .idempotent()
                .send(cx)
                .await;
            if let Err(e) = sent {
                return self.refused(e, &pl.name).map(|o| (o, dropped));
            }
            current.retain(|(e, _)| !extra.contains(e));
        }
        // 3. Move entries into place.
        for (i, k) in target.iter().enumerate() {
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
            let sent = self.call(Method::Post, &route).idempotent().send(cx).await;
            if let Err(e) = sent {
                return self.refused(e, &pl.name).map(|o| (o, dropped));
            }
            let moved = current.remove(from);
            current.insert(i, moved);
        }
        if !in_order(&current) {
            return Ok((
                Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some(format!(
                        "the server did not keep playlist \"{}\" as written",
                        pl.name
                    )),
                },
                dropped,
            ));
        }
        Ok((Outcome::Confirmed, dropped))
    }

    fn labels(&self, lib: &Library, ids: &[String]) -> Vec<String> {
        ids.iter()
            .map(|id| lib.get(id).map_or_else(|| id.clone(), |li| li.item.label()))
            .collect()
    }

    pub(crate) async fn playlists_add(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (at, lib) = self.library_for_write(cx).await?;
        let r = self.playlists_add_with(cx, &lib, entries).await;
        self.done_with_library(at, lib);
        r
    }

    async fn playlists_add_with(
        &self,
        cx: &Context,
        lib: &Library,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (mut rows, listing) = self.playlist_rows(cx).await?;
        let mut listing_partial = listing.reasons().to_vec();
        let mut w = BatchWriter::new(cx, entries);
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let e = &entries[i];
            let Payload::Playlist(pl) = &e.payload else {
                w.record_one(i, Ok(wrong_payload(e, Feature::Playlists)));
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
            if !unresolved.is_empty() && !lib.partial().is_empty() {
                w.record_one(i, Ok(unmatched(lib.partial(), true)));
                continue;
            }
            // The user's own playlist of that name, else one whose owner cannot be told
            // (the server refuses what the token may not do). Another user's never.
            let existing = rows
                .iter()
                .filter(|r| same_name(&r.name, &pl.name) && r.owner != Owner::Other)
                .min_by_key(|r| r.owner != Owner::User)
                .cloned();
            let result: Result<(Outcome, Vec<String>)> = match existing {
                Some(row) => self.sync_playlist(cx, &row, &ids, lib).await,
                None if ids.is_empty() => Ok((
                    Outcome::Unresolved {
                        reason: UnresolvedReason::NotFound,
                        detail: Some("none of the playlist's titles is on the server".into()),
                    },
                    Vec::new(),
                )),
                // A listing that was not read whole may hide the playlist: creating
                // another could leave the user two.
                None if !listing_partial.is_empty() => {
                    Ok((unmatched(&listing_partial, true), Vec::new()))
                }
                None => {
                    let (ids, dropped) = self.holdable(&[], &ids);
                    let r = self.create_playlist(cx, pl.name.trim(), &ids).await;
                    if r.is_ok() {
                        // Learn the new id for later entries of this batch.
                        if let Ok((fresh, partial)) = self.playlist_rows(cx).await {
                            let partial = partial.reasons().to_vec();
                            rows = fresh;
                            listing_partial = partial;
                        }
                    }
                    r.map(|()| (Outcome::Confirmed, dropped))
                }
            };
            match result {
                Ok((o, dropped)) if o.is_settled() => {
                    let mut notes = Vec::new();
                    let mut reason = None;
                    if !unresolved.is_empty() {
                        reason = Some(UnresolvedReason::NotFound);
                        notes.push(format!(
                            "written without {} title(s) the server does not hold: {}",
                            unresolved.len(),
                            unresolved.join(", ")
                        ));
                    }
                    if !dropped.is_empty() {
                        reason.get_or_insert(UnresolvedReason::Unsupported);
                        notes.push(format!(
                            "written with each title once: Jellyfin drops a title already in \
                             a playlist (`playlists:allowDuplicates` is off by default), so {} \
                             repeated entr(ies) were not sent: {}",
                            dropped.len(),
                            named(&self.labels(lib, &dropped))
                        ));
                    }
                    match reason {
                        None => w.record_one(i, Ok(o)),
                        Some(reason) => w.record_one(
                            i,
                            Ok(Outcome::Unresolved {
                                reason,
                                detail: Some(notes.join("; ")),
                            }),
                        ),
                    }
                }
                Ok((o, _)) => w.record_one(i, Ok(o)),
                Err(err) => w.record_one(i, Err(err)),
            }
        }
        Ok(w.finish())
    }

    pub(crate) async fn playlists_remove(
        &self,
        cx: &Context,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        let (rows, _) = self.playlist_rows(cx).await?;
        let mut w = BatchWriter::new(cx, entries);
        let mut gone: Vec<String> = Vec::new();
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let e = &entries[i];
            let Payload::Playlist(pl) = &e.payload else {
                w.record_one(i, Ok(wrong_payload(e, Feature::Playlists)));
                continue;
            };
            // Another user's playlist of that name is not the user's: never deleted.
            let Some(row) = rows
                .iter()
                .filter(|r| {
                    same_name(&r.name, &pl.name) && r.owner != Owner::Other && !gone.contains(&r.id)
                })
                .min_by_key(|r| r.owner != Owner::User)
            else {
                w.record_one(i, Ok(Outcome::AlreadyAbsent));
                continue;
            };
            if row.owner == Owner::Unknown {
                // An API key may delete any user's playlist: without knowing the owner,
                // deleting could take another user's.
                w.record_one(
                    i,
                    Ok(Outcome::Unresolved {
                        reason: UnresolvedReason::Unsupported,
                        detail: Some(format!(
                            "not deleted: the token is not user {}'s access token (an API \
                             key?), so Jellyfin does not tell whether playlist \"{}\" is \
                             theirs. Set `token` to that user's access token",
                            self.user_id, row.name
                        )),
                    }),
                );
                continue;
            }
            let route = Route {
                path: format!("/Items/{}", row.id),
                user_query: None,
                label: "/Items/{id}",
            };
            let sent = self
                .call(Method::Delete, &route)
                .idempotent()
                .send(cx)
                .await
                .map(|_| Outcome::Confirmed)
                .or_else(|err| match err.kind() {
                    ErrorKind::NotFound => Ok(Outcome::AlreadyAbsent),
                    _ => self.refused(err, &row.name),
                });
            match sent {
                Ok(o) => {
                    if o == Outcome::Confirmed {
                        gone.push(row.id.clone());
                    }
                    w.record_one(i, Ok(o));
                }
                Err(err) => w.record_one(i, Err(err)),
            }
        }
        Ok(w.finish())
    }
}

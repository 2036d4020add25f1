//! How the simulated server answers each request: the route tables of both flavours,
//! list pages shaped by the shared fault knobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_core::Timestamp;
use serde_json::{Map, Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::sim::knobs::{ListFault, window};

use super::state::{JfState, jellyfin_date, lock, parse_compact_date};
use super::{Flavor, JfItem, JfKind, JfPlaylist, USER_ID, UserData};

// ---------------------------------------------------------------------------------------
// Request plumbing.

/// Query parameters with lower-cased names (ASP.NET binds them case-insensitively).
fn query(req: &Request) -> HashMap<String, String> {
    req.url
        .query_pairs()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token from any of the places Jellyfin and Emby accept one.
fn request_token(req: &Request, q: &HashMap<String, String>) -> Option<String> {
    for name in ["Authorization", "X-Emby-Authorization"] {
        if let Some(v) = header(req, name)
            && let Some(rest) = v.trim().strip_prefix("MediaBrowser")
        {
            for part in rest.split(',') {
                if let Some((k, val)) = part.trim().split_once('=')
                    && k.trim().eq_ignore_ascii_case("token")
                {
                    return Some(val.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    for name in ["X-Emby-Token", "X-MediaBrowser-Token"] {
        if let Some(v) = header(req, name) {
            return Some(v.trim().to_owned());
        }
    }
    q.get("api_key").or_else(|| q.get("apikey")).cloned()
}

fn list(q: &HashMap<String, String>, name: &str) -> Vec<String> {
    q.get(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn flag(q: &HashMap<String, String>, name: &str) -> Option<bool> {
    q.get(name).map(|v| v.eq_ignore_ascii_case("true"))
}

fn usize_param(q: &HashMap<String, String>, name: &str) -> Option<usize> {
    q.get(name).and_then(|v| v.trim().parse().ok())
}

fn error(status: u16, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(msg.to_owned(), "text/plain")
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401)
}

fn not_found() -> ResponseTemplate {
    error(404, "Item not found.")
}

fn bad_request(msg: &str) -> ResponseTemplate {
    error(400, msg)
}

fn no_content() -> ResponseTemplate {
    ResponseTemplate::new(204)
}

fn ok_json(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

#[derive(Debug)]
pub(super) struct Router(pub(super) Arc<Mutex<JfState>>);

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        seen.answer_list(|method, path, fault| st.route(req, method, path, fault))
    }
}

/// Which user-data write a route performs.
#[derive(Debug, Clone, Copy)]
enum Write {
    Favorite(bool),
    Played(bool),
    UserData,
}

/// Which of the optional `UserData` fields an answer carries.
#[derive(Debug, Clone, Copy)]
struct UdFields {
    last_played: bool,
    play_count: bool,
}

impl UdFields {
    const ALL: UdFields = UdFields {
        last_played: true,
        play_count: true,
    };
}

impl JfState {
    /// The `UserData` fields a list read carries: all of them on Jellyfin; on Emby the
    /// last played date and the play count only when `Fields` names them (without
    /// `UserDataPlayCount` Emby reports `PlayCount: 0`).
    fn list_fields(&self, q: &HashMap<String, String>) -> UdFields {
        if self.flavor == Flavor::Jellyfin {
            return UdFields::ALL;
        }
        let fields = list(q, "fields");
        let has = |name: &str| fields.iter().any(|f| f.eq_ignore_ascii_case(name));
        UdFields {
            last_played: has("UserDataLastPlayedDate"),
            play_count: has("UserDataPlayCount"),
        }
    }

    fn user_data_json(&self, item: &JfItem, f: UdFields) -> Value {
        let u = &item.user;
        let mut m = Map::new();
        m.insert("PlaybackPositionTicks".into(), json!(u.position_ticks));
        m.insert(
            "PlayCount".into(),
            json!(if f.play_count { u.play_count } else { 0 }),
        );
        m.insert("IsFavorite".into(), json!(u.favorite));
        m.insert("Played".into(), json!(u.played));
        m.insert("Key".into(), json!(item.id));
        m.insert("ItemId".into(), json!(item.id));
        if let Some(t) = u.last_played.filter(|_| f.last_played) {
            m.insert("LastPlayedDate".into(), json!(jellyfin_date(t)));
        }
        if item.run_time_ticks > 0 && u.position_ticks > 0 {
            m.insert(
                "PlayedPercentage".into(),
                json!(u.position_ticks as f64 * 100.0 / item.run_time_ticks as f64),
            );
        }
        Value::Object(m)
    }

    fn item_json(&self, item: &JfItem, provider_ids: bool, user_data: Option<UdFields>) -> Value {
        let mut m = Map::new();
        m.insert("Name".into(), json!(item.name));
        m.insert("ServerId".into(), json!("sim-server-0001"));
        m.insert("Id".into(), json!(item.id));
        m.insert("Type".into(), json!(item.kind.as_str()));
        m.insert(
            "MediaType".into(),
            json!(if item.kind == JfKind::Series {
                "Unknown"
            } else {
                "Video"
            }),
        );
        if let Some(y) = item.year {
            m.insert("ProductionYear".into(), json!(y));
        }
        if item.run_time_ticks > 0 {
            m.insert("RunTimeTicks".into(), json!(item.run_time_ticks));
        }
        if let Some(s) = &item.series_id {
            m.insert("SeriesId".into(), json!(s));
            m.insert("SeriesName".into(), json!(item.series_name));
            m.insert("ParentIndexNumber".into(), json!(item.season));
            m.insert("IndexNumber".into(), json!(item.episode));
        }
        if provider_ids {
            let p: Map<String, Value> = item
                .provider_ids
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            m.insert("ProviderIds".into(), Value::Object(p));
        }
        if let Some(f) = user_data {
            m.insert("UserData".into(), self.user_data_json(item, f));
        }
        Value::Object(m)
    }

    fn playlist_json(&self, p: &JfPlaylist, etag: bool) -> Value {
        let mut v = json!({
            "Name": p.name,
            "ServerId": "sim-server-0001",
            "Id": p.id,
            "Type": "Playlist",
            "MediaType": "Video",
            "IsFolder": true,
            "ChildCount": p.entries.len(),
        });
        if etag && let Value::Object(m) = &mut v {
            m.insert("Etag".into(), json!(p.etag()));
        }
        v
    }

    fn route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let q = query(req);
        if method == "GET" && path.eq_ignore_ascii_case("/System/Info/Public") {
            return ok_json(self.system_info());
        }
        if request_token(req, &q).as_deref() != Some(self.token.as_str()) {
            return unauthorized();
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let emby = self.flavor == Flavor::Emby;
        match (method, lower.as_slice()) {
            ("GET", ["system", "info"]) => ok_json(self.system_info()),
            // The token's user; "400 Token is not owned by a user" for an API key.
            ("GET", ["users", "me"]) => match self.token_user() {
                Some(u) => ok_json(json!({"Name": "sim", "Id": u, "HasPassword": true})),
                None => bad_request("Token is not owned by a user."),
            },
            ("GET", ["users", _]) => {
                if segs[1] == USER_ID {
                    ok_json(json!({"Name": "sim", "Id": USER_ID, "HasPassword": true}))
                } else {
                    not_found()
                }
            }
            // Jellyfin 10.9+ item routes.
            ("GET", ["items"]) if !emby => match self.user_param(&q) {
                Ok(user) => self.items_query(&q, user, fault),
                Err(r) => *r,
            },
            ("GET", ["items", _]) if !emby => match self.user_param(&q) {
                Ok(user) => self.get_one(segs[1], user),
                Err(r) => *r,
            },
            ("POST" | "DELETE", ["userfavoriteitems", _]) if !emby => match self.user_param(&q) {
                Ok(_) => self.write(segs[1], Write::Favorite(method == "POST"), req, &q),
                Err(r) => *r,
            },
            ("POST" | "DELETE", ["userplayeditems", _]) if !emby => match self.user_param(&q) {
                Ok(_) => self.write(segs[1], Write::Played(method == "POST"), req, &q),
                Err(r) => *r,
            },
            ("GET", ["useritems", _, "userdata"]) if !emby => {
                match (self.user_param(&q), self.item(segs[1])) {
                    (Err(r), _) => *r,
                    (Ok(_), Some(item)) => ok_json(self.user_data_json(item, UdFields::ALL)),
                    (Ok(_), None) => not_found(),
                }
            }
            ("POST", ["useritems", _, "userdata"]) if !emby => match self.user_param(&q) {
                Ok(_) => self.write(segs[1], Write::UserData, req, &q),
                Err(r) => *r,
            },
            // Emby (and legacy) user-scoped routes.
            ("GET", ["users", _, "items"]) if emby => match self.user_path(segs[1]) {
                Ok(()) => self.items_query(&q, true, fault),
                Err(r) => *r,
            },
            ("GET", ["users", _, "items", _]) if emby => match self.user_path(segs[1]) {
                Ok(()) => self.get_one(segs[3], true),
                Err(r) => *r,
            },
            ("POST" | "DELETE", ["users", _, "favoriteitems", _]) if emby => {
                match self.user_path(segs[1]) {
                    Ok(()) => self.write(segs[3], Write::Favorite(method == "POST"), req, &q),
                    Err(r) => *r,
                }
            }
            ("POST" | "DELETE", ["users", _, "playeditems", _]) if emby => {
                match self.user_path(segs[1]) {
                    Ok(()) => self.write(segs[3], Write::Played(method == "POST"), req, &q),
                    Err(r) => *r,
                }
            }
            ("POST", ["users", _, "items", _, "userdata"]) if emby => {
                match self.user_path(segs[1]) {
                    Ok(()) => self.write(segs[3], Write::UserData, req, &q),
                    Err(r) => *r,
                }
            }
            ("DELETE", ["items", _]) => self.delete_item(segs[1]),
            ("POST", ["items", "delete"]) => {
                let ids = list(&q, "ids");
                if ids.is_empty() {
                    return bad_request("Ids is required");
                }
                for id in ids {
                    self.delete_item(&id);
                }
                no_content()
            }
            ("POST", ["playlists"]) => self.create_playlist(req, &q),
            (m, ["playlists", _, rest @ ..]) => {
                let Some(pi) = self.playlists.iter().position(|p| p.id == segs[1]) else {
                    return not_found();
                };
                self.playlist_route(pi, m, rest, &segs, &q, fault)
            }
            _ => not_found(),
        }
    }

    fn system_info(&self) -> Value {
        match self.flavor {
            Flavor::Jellyfin => json!({
                "ServerName": "sim", "Version": "10.10.3", "Id": "sim-server-0001",
                "ProductName": "Jellyfin Server", "OperatingSystem": "Linux",
            }),
            Flavor::Emby => json!({
                "ServerName": "sim", "Version": "4.8.10.0", "Id": "sim-server-0001",
                "ProductName": "Emby Server", "OperatingSystem": "Linux",
            }),
        }
    }

    /// `userId` in the query (Jellyfin): `Ok(true)` when given and known, `Ok(false)` when
    /// absent (no user data in answers).
    fn user_param(&self, q: &HashMap<String, String>) -> Result<bool, Box<ResponseTemplate>> {
        match q.get("userid") {
            None => Ok(false),
            Some(u) if u.replace('-', "").eq_ignore_ascii_case(USER_ID) => Ok(true),
            Some(_) => Err(Box::new(not_found())),
        }
    }

    fn user_path(&self, user: &str) -> Result<(), Box<ResponseTemplate>> {
        if user.replace('-', "").eq_ignore_ascii_case(USER_ID) {
            Ok(())
        } else {
            Err(Box::new(not_found()))
        }
    }

    fn get_one(&self, id: &str, user: bool) -> ResponseTemplate {
        if let Some(item) = self.item(id) {
            // A single-item read carries the whole user record on both servers.
            return ok_json(self.item_json(item, true, user.then_some(UdFields::ALL)));
        }
        match self.playlists.iter().find(|p| p.id == id) {
            Some(p) => ok_json(self.playlist_json(p, true)),
            None => not_found(),
        }
    }

    fn items_query(
        &self,
        q: &HashMap<String, String>,
        user: bool,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let types = list(q, "includeitemtypes");
        let fields = list(q, "fields");
        let want_pids = fields.iter().any(|f| f.eq_ignore_ascii_case("ProviderIds"));
        let want_ud =
            (user && flag(q, "enableuserdata") != Some(false)).then(|| self.list_fields(q));
        let recursive = flag(q, "recursive") == Some(true);
        let parent = q.get("parentid");
        let ids = list(q, "ids");
        let start = usize_param(q, "startindex").unwrap_or(0);
        let limit = usize_param(q, "limit");
        if types.iter().any(|t| t.eq_ignore_ascii_case("Playlist")) {
            let etag = fields.iter().any(|f| f.eq_ignore_ascii_case("Etag"));
            let viewer = if user {
                Some(USER_ID)
            } else {
                self.token_user()
            };
            let rows: Vec<Value> = self
                .playlists
                .iter()
                .filter(|p| self.can_see(p, viewer))
                .filter(|p| ids.is_empty() || ids.contains(&p.id))
                .map(|p| self.playlist_json(p, etag))
                .collect();
            return page(rows, start, limit, fault);
        }
        let filters: Vec<String> = list(q, "filters")
            .into_iter()
            .map(|f| f.to_ascii_lowercase())
            .collect();
        let mut rows: Vec<&JfItem> = self
            .items
            .iter()
            .filter(|i| {
                types.is_empty()
                    || types
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(i.kind.as_str()))
            })
            .filter(|i| match parent {
                Some(p) => i.series_id.as_deref() == Some(p.as_str()),
                None => recursive || !ids.is_empty(),
            })
            .filter(|i| ids.is_empty() || ids.contains(&i.id))
            .filter(|i| {
                let u = &i.user;
                filters.iter().all(|f| match f.as_str() {
                    "isfavorite" => u.favorite,
                    "isplayed" => u.played,
                    "isunplayed" => !u.played,
                    // The server's IsResumable: a resume position, played or not.
                    "isresumable" => u.position_ticks > 0,
                    _ => true,
                })
            })
            .filter(|i| flag(q, "isfavorite").is_none_or(|f| i.user.favorite == f))
            .filter(|i| flag(q, "isplayed").is_none_or(|p| i.user.played == p))
            .collect();
        let desc = q
            .get("sortorder")
            .is_some_and(|o| o.eq_ignore_ascii_case("Descending"));
        match q.get("sortby").map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("dateplayed") => rows.sort_by_key(|i| i.user.last_played),
            Some("sortname") => rows.sort_by(|a, b| a.name.cmp(&b.name)),
            _ => {}
        }
        if desc {
            rows.reverse();
        }
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|i| self.item_json(i, want_pids, want_ud))
            .collect();
        page(rows, start, limit, fault)
    }

    fn write(
        &mut self,
        id: &str,
        what: Write,
        req: &Request,
        q: &HashMap<String, String>,
    ) -> ResponseTemplate {
        let now = self.tick();
        let Some(i) = self.by_id.get(id).copied() else {
            return not_found();
        };
        let flavor = self.flavor;
        let ignore_date = self.ignore_date_played;
        let u = &mut self.items[i].user;
        match what {
            Write::Favorite(on) => u.favorite = on,
            Write::Played(true) => {
                let date = match q.get("dateplayed") {
                    None => Some(now),
                    Some(d) => match flavor {
                        Flavor::Jellyfin => Timestamp::parse(d).map(Timestamp::unix),
                        Flavor::Emby => parse_compact_date(d),
                    },
                };
                let Some(date) = date else {
                    return bad_request("The DatePlayed value is not valid.");
                };
                u.played = true;
                u.play_count += 1;
                u.last_played = Some(if ignore_date { now } else { date });
                u.position_ticks = 0;
            }
            Write::Played(false) => {
                u.played = false;
                u.play_count = 0;
                u.last_played = None;
                u.position_ticks = 0;
            }
            Write::UserData => {
                let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                    return bad_request("The request body is not valid JSON.");
                };
                let get = |k: &str| {
                    body.as_object().and_then(|o| {
                        o.iter()
                            .find(|(name, v)| name.eq_ignore_ascii_case(k) && !v.is_null())
                            .map(|(_, v)| v.clone())
                    })
                };
                // Emby binds the body to the whole `UserItemDataDto`: what the body leaves
                // out (or sends as null) is the type's default, so it is reset (the
                // pessimistic reading of an undocumented behaviour). Jellyfin's
                // `UpdateUserItemDataDto` is all optional: only what is sent changes.
                let emby = flavor == Flavor::Emby;
                let mut next = if emby { UserData::default() } else { u.clone() };
                if let Some(v) = get("PlaybackPositionTicks") {
                    let Some(t) = v.as_u64() else {
                        return bad_request("PlaybackPositionTicks must be a number.");
                    };
                    next.position_ticks = t;
                }
                if let Some(v) = get("PlayCount").and_then(|v| v.as_u64()) {
                    next.play_count = v as u32;
                }
                if let Some(v) = get("IsFavorite").and_then(|v| v.as_bool()) {
                    next.favorite = v;
                }
                if let Some(v) = get("Played").and_then(|v| v.as_bool()) {
                    next.played = v;
                }
                if let Some(v) = get("LastPlayedDate") {
                    let Some(t) = v.as_str().and_then(Timestamp::parse) else {
                        return bad_request("LastPlayedDate is not a date.");
                    };
                    next.last_played = Some(t.unix());
                }
                *u = next;
                if emby {
                    return no_content();
                }
            }
        }
        ok_json(self.user_data_json(&self.items[i], UdFields::ALL))
    }

    fn delete_item(&mut self, id: &str) -> ResponseTemplate {
        match self.playlists.iter().position(|p| p.id == id) {
            // An API key may delete any item; a user only their own playlist.
            Some(i) if !self.api_key && !self.can_edit(&self.playlists[i], self.token_user()) => {
                error(403, "Forbidden")
            }
            Some(i) => {
                self.playlists.remove(i);
                self.tick();
                no_content()
            }
            // Library media is not deleted by this simulator.
            None if self.by_id.contains_key(id) => error(403, "Forbidden"),
            None => not_found(),
        }
    }

    /// The token's user: `None` for an API key.
    fn token_user(&self) -> Option<&'static str> {
        (!self.api_key).then_some(USER_ID)
    }

    /// The user a request acts for: its `userId` parameter, else the token's user.
    fn acting_user(&self, q: &HashMap<String, String>) -> Option<String> {
        q.get("userid")
            .map(|u| u.replace('-', "").to_ascii_lowercase())
            .or_else(|| self.token_user().map(str::to_owned))
    }

    /// Whether `user` sees the playlist (Jellyfin: the owner, or anyone when it is
    /// `OpenAccess`; no user at all, an API key listing, sees every one). Emby: everyone.
    fn can_see(&self, p: &JfPlaylist, user: Option<&str>) -> bool {
        self.flavor == Flavor::Emby || user.is_none_or(|u| p.owner == u || p.open_access)
    }

    /// Whether `user` may edit the playlist (Jellyfin: only its owner). Emby: everyone.
    fn can_edit(&self, p: &JfPlaylist, user: Option<&str>) -> bool {
        self.flavor == Flavor::Emby || user.is_some_and(|u| p.owner == u)
    }

    /// The ids an add keeps: known library items; on Jellyfin (`playlists:allowDuplicates`
    /// off by default) without an id already in the playlist or repeated in the request.
    fn addable(&self, existing: &[(String, String)], ids: Vec<String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in ids {
            if !self.by_id.contains_key(&id) {
                continue;
            }
            if self.flavor == Flavor::Jellyfin
                && (out.contains(&id) || existing.iter().any(|(_, i)| *i == id))
            {
                continue;
            }
            out.push(id);
        }
        out
    }

    fn create_playlist(&mut self, req: &Request, q: &HashMap<String, String>) -> ResponseTemplate {
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        let from_body = |k: &str| {
            body.as_ref()
                .and_then(|b| b.as_object())
                .and_then(|o| o.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                .map(|(_, v)| v.clone())
        };
        let name = q
            .get("name")
            .cloned()
            .or_else(|| from_body("Name").and_then(|v| v.as_str().map(str::to_owned)))
            .unwrap_or_default();
        if name.trim().is_empty() {
            return bad_request("Name is required");
        }
        let mut ids = list(q, "ids");
        if ids.is_empty()
            && let Some(Value::Array(a)) = from_body("Ids")
        {
            ids = a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        // The owner: `UserId` (query or body), else the token's user.
        let owner = q
            .get("userid")
            .cloned()
            .or_else(|| from_body("UserId").and_then(|v| v.as_str().map(str::to_owned)))
            .map(|u| u.replace('-', "").to_ascii_lowercase())
            .or_else(|| self.token_user().map(str::to_owned));
        let Some(owner) = owner else {
            return bad_request("UserId is required");
        };
        let id = self.new_id(4);
        let mut pl = JfPlaylist {
            id: id.clone(),
            name: name.trim().to_owned(),
            entries: Vec::new(),
            owner,
            open_access: false,
            saved_at: 0,
        };
        let known = self.addable(&[], ids);
        for item in known {
            let e = self.new_id(5);
            pl.entries.push((e, item));
        }
        pl.saved_at = self.tick();
        self.playlists.push(pl);
        ok_json(json!({ "Id": id }))
    }

    fn playlist_route(
        &mut self,
        pi: usize,
        method: &str,
        rest: &[&str],
        segs: &[&str],
        q: &HashMap<String, String>,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let jellyfin = self.flavor == Flavor::Jellyfin;
        match (method, lower.as_slice()) {
            ("GET", []) => ok_json(self.playlist_json(&self.playlists[pi], true)),
            ("GET", ["items"]) => {
                if !self.can_see(&self.playlists[pi], self.acting_user(q).as_deref()) {
                    return error(404, "Playlist not found");
                }
                let fields = list(q, "fields");
                let want_pids = fields.iter().any(|f| f.eq_ignore_ascii_case("ProviderIds"));
                let user = q.contains_key("userid").then(|| self.list_fields(q));
                let rows: Vec<Value> = self.playlists[pi]
                    .entries
                    .iter()
                    .filter_map(|(e, id)| {
                        let mut v = self.item_json(self.item(id)?, want_pids, user);
                        if let Value::Object(m) = &mut v {
                            m.insert("PlaylistItemId".into(), json!(e));
                        }
                        Some(v)
                    })
                    .collect();
                page(
                    rows,
                    usize_param(q, "startindex").unwrap_or(0),
                    usize_param(q, "limit"),
                    fault,
                )
            }
            // Jellyfin's GetPlaylistUsers: the shares, for the owner (the token's user) only.
            ("GET", ["users"]) if jellyfin => {
                if self.can_edit(&self.playlists[pi], self.token_user()) {
                    ok_json(json!([]))
                } else {
                    error(403, "Forbidden")
                }
            }
            ("POST", ["items"]) => {
                // AddItemToPlaylist acts for `userId` (else the token's user).
                if !self.can_edit(&self.playlists[pi], self.acting_user(q).as_deref()) {
                    return error(403, "Forbidden");
                }
                let known = self.addable(&self.playlists[pi].entries, list(q, "ids"));
                for item in known {
                    let e = self.new_id(5);
                    self.playlists[pi].entries.push((e, item));
                }
                self.playlists[pi].saved_at = self.tick();
                no_content()
            }
            // RemoveItemFromPlaylist and MoveItem take the user from the token only: an
            // API key has none and is refused.
            ("DELETE", ["items"]) | ("POST", ["items", "delete"] | ["items", _, "move", _])
                if !self.can_edit(&self.playlists[pi], self.token_user()) =>
            {
                error(403, "Forbidden")
            }
            ("DELETE", ["items"]) | ("POST", ["items", "delete"]) => {
                let entries = list(q, "entryids");
                self.playlists[pi]
                    .entries
                    .retain(|(e, _)| !entries.contains(e));
                self.playlists[pi].saved_at = self.tick();
                no_content()
            }
            ("POST", ["items", _, "move", _]) => {
                let entry = segs[3];
                let Ok(to) = segs[5].parse::<usize>() else {
                    return bad_request("newIndex must be a number");
                };
                let entries = &mut self.playlists[pi].entries;
                let Some(from) = entries.iter().position(|(e, _)| e == entry) else {
                    return not_found();
                };
                if from == to {
                    // The server saves nothing when the entry is already there.
                    return no_content();
                }
                let e = entries.remove(from);
                let to = to.min(entries.len());
                entries.insert(to, e);
                self.playlists[pi].saved_at = self.tick();
                no_content()
            }
            _ => not_found(),
        }
    }
}

/// A `QueryResult` page, shaped by the request's list fault (if any).
fn page(
    rows: Vec<Value>,
    start: usize,
    limit: Option<usize>,
    fault: &ListFault,
) -> ResponseTemplate {
    let total = rows.len();
    let (from, to) = window(total, start, limit, fault.truncates());
    let items: Vec<Value> = rows.into_iter().skip(from).take(to - from).collect();
    let (items, declared) = fault.shape(items, total);
    let mut body = Map::new();
    body.insert("Items".into(), Value::Array(items));
    if let Some(t) = declared.json() {
        body.insert("TotalRecordCount".into(), t);
    }
    body.insert("StartIndex".into(), json!(from));
    ok_json(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::super::seed::item_id;
    use super::*;

    #[test]
    fn ids_follow_each_servers_shape() {
        assert_eq!(item_id(Flavor::Jellyfin, 1, 5).len(), 32);
        assert_eq!(item_id(Flavor::Emby, 1, 5), "10000005");
    }

    #[test]
    fn dates_in_both_formats() {
        assert_eq!(jellyfin_date(1_709_294_400), "2024-03-01T12:00:00.0000000Z");
        assert_eq!(parse_compact_date("20240301120000"), Some(1_709_294_400));
        assert_eq!(parse_compact_date("2024-03-01"), None);
    }
}

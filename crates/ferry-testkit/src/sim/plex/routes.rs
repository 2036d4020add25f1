//! How the simulated Plex hosts answer each request: the server (PMS) and Discover;
//! list pages shaped by the shared fault knobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::sim::kit::offset_window;
use crate::sim::knobs::ListFault;

use super::state::{HistoryRow, PlexItem, PlexKind, PlexState, SimPlaylist, lock};
use super::{LIBRARY_IDENTIFIER, MACHINE_ID, START_TIME};

// ---------------------------------------------------------------------------------------
// Request plumbing.

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn plex_token(req: &Request, q: &HashMap<String, String>) -> Option<String> {
    header(req, "X-Plex-Token")
        .map(str::to_owned)
        .or_else(|| q.get("X-Plex-Token").cloned())
}

fn paging(req: &Request, q: &HashMap<String, String>) -> (usize, Option<usize>) {
    let get = |name: &str| {
        header(req, name)
            .map(str::to_owned)
            .or_else(|| q.get(name).cloned())
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    (
        get("X-Plex-Container-Start").unwrap_or(0),
        get("X-Plex-Container-Size"),
    )
}

fn html(status: u16, title: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        format!(
            "<html><head><title>{title}</title></head><body><h1>{status} {title}</h1></body></html>"
        ),
        "text/html",
    )
}

fn unauthorized() -> ResponseTemplate {
    html(401, "Unauthorized")
}

fn not_found() -> ResponseTemplate {
    html(404, "Not Found")
}

fn bad_request() -> ResponseTemplate {
    html(400, "Bad Request")
}

fn ok_empty() -> ResponseTemplate {
    ResponseTemplate::new(200)
}

fn container(fields: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "MediaContainer": fields }))
}

/// A paged `MediaContainer` over `rows`.
fn paged(
    rows: Vec<Value>,
    start: usize,
    size: Option<usize>,
    fault: &ListFault,
    extra: Value,
) -> ResponseTemplate {
    paged_with(rows, start, size, fault, extra, |v| v)
}

/// A paged `MediaContainer` over `rows`, rendering only the rows on the page (large
/// libraries would otherwise render every row for every page). A list fault shapes the
/// page and its `totalSize` ([`ListFault::shape`]).
fn paged_with<T>(
    rows: Vec<T>,
    start: usize,
    size: Option<usize>,
    fault: &ListFault,
    extra: Value,
    render: impl FnMut(T) -> Value,
) -> ResponseTemplate {
    let total = rows.len();
    let page = offset_window(total, start, size, fault);
    let from = page.start;
    let page: Vec<Value> = rows
        .into_iter()
        .skip(page.start)
        .take(page.len())
        .map(render)
        .collect();
    let (page, declared) = fault.shape(page, total);
    let mut mc = Map::new();
    mc.insert("size".into(), json!(page.len()));
    if size.is_some() {
        if let Some(t) = declared.json() {
            mc.insert("totalSize".into(), t);
        }
        mc.insert("offset".into(), json!(from));
    }
    if let Value::Object(extra) = extra {
        mc.extend(extra);
    }
    mc.insert("Metadata".into(), Value::Array(page));
    container(Value::Object(mc))
}

/// `key=/library/metadata/123`, `key=123` or `ratingKey=123`.
fn key_param(q: &HashMap<String, String>) -> Option<u64> {
    q.get("ratingKey")
        .or_else(|| q.get("key"))
        .and_then(|k| k.rsplit('/').next())
        .and_then(|k| k.parse().ok())
}

/// The rating keys in `server://<machine>/com.plexapp.plugins.library/library/metadata/1,2`.
fn uri_keys(uri: &str) -> Option<Vec<u64>> {
    let rest = uri.strip_prefix("server://")?;
    let (machine, path) = rest.split_once('/')?;
    if machine != MACHINE_ID {
        return None;
    }
    let list = path.strip_prefix("com.plexapp.plugins.library/library/metadata/")?;
    list.split(',').map(|k| k.trim().parse().ok()).collect()
}

// ---------------------------------------------------------------------------------------
// PMS.

#[derive(Debug)]
pub(super) struct PmsRouter(pub(super) Arc<Mutex<PlexState>>);

impl Respond for PmsRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.pms.begin(req);
        seen.answer_list(|method, path, fault| st.pms_route(req, method, path, fault))
    }
}

impl PlexState {
    fn item_json(&self, item: &PlexItem, guids: bool) -> Value {
        let mut m = Map::new();
        m.insert("ratingKey".into(), json!(item.rating_key.to_string()));
        m.insert(
            "key".into(),
            json!(format!("/library/metadata/{}", item.rating_key)),
        );
        m.insert("guid".into(), json!(item.guid));
        m.insert("type".into(), json!(item.kind.as_str()));
        m.insert("title".into(), json!(item.title));
        if let Some(y) = item.year {
            m.insert("year".into(), json!(y));
        }
        m.insert("librarySectionID".into(), json!(item.section));
        m.insert("duration".into(), json!(item.duration_ms));
        m.insert("addedAt".into(), json!(START_TIME - 86_400));
        if item.view_count > 0 {
            m.insert("viewCount".into(), json!(item.view_count));
        }
        if let Some(t) = item.last_viewed_at {
            m.insert("lastViewedAt".into(), json!(t));
        }
        if let Some(o) = item.view_offset {
            m.insert("viewOffset".into(), json!(o));
        }
        if let Some(r) = item.user_rating {
            m.insert("userRating".into(), json!(r));
        }
        if let Some(t) = item.last_rated_at {
            m.insert("lastRatedAt".into(), json!(t));
        }
        if let (Some(show_key), Some(show)) =
            (item.show_key, item.show_key.and_then(|k| self.item(k)))
        {
            m.insert("grandparentRatingKey".into(), json!(show_key.to_string()));
            m.insert(
                "grandparentKey".into(),
                json!(format!("/library/metadata/{show_key}")),
            );
            m.insert("grandparentGuid".into(), json!(show.guid));
            m.insert("grandparentTitle".into(), json!(show.title));
            m.insert("parentIndex".into(), json!(item.season));
            m.insert("index".into(), json!(item.index));
            m.insert(
                "parentTitle".into(),
                json!(format!("Season {}", item.season.unwrap_or(0))),
            );
        }
        if item.kind == PlexKind::Show {
            let eps: Vec<&PlexItem> = self
                .items
                .iter()
                .filter(|e| e.show_key == Some(item.rating_key))
                .collect();
            m.insert("leafCount".into(), json!(eps.len()));
            m.insert(
                "viewedLeafCount".into(),
                json!(eps.iter().filter(|e| e.view_count > 0).count()),
            );
        }
        if guids {
            let g: Vec<Value> = item.external.iter().map(|id| json!({ "id": id })).collect();
            m.insert("Guid".into(), Value::Array(g));
        }
        Value::Object(m)
    }

    /// Library items of a section (or all) and type, with Plex's filters (`field=v`,
    /// `field>>=v` greater than, `field<<=v` less than, on the numeric user-state fields;
    /// a missing value counts as 0) and `sort=field:dir,…`.
    fn search(
        &self,
        q: &HashMap<String, String>,
        section: Option<u32>,
        ty: Option<u32>,
    ) -> Vec<&PlexItem> {
        fn field(i: &PlexItem, name: &str) -> Option<f64> {
            match name {
                "userRating" => i.user_rating,
                "viewCount" => Some(f64::from(i.view_count)).filter(|v| *v > 0.0),
                "lastViewedAt" => i.last_viewed_at.map(|t| t as f64),
                "lastRatedAt" => i.last_rated_at.map(|t| t as f64),
                "viewOffset" => i.view_offset.map(|o| o as f64),
                "addedAt" => Some((START_TIME - 86_400) as f64),
                "ratingKey" => Some(i.rating_key as f64),
                _ => None,
            }
        }
        const FIELDS: [&str; 5] = [
            "userRating",
            "viewCount",
            "lastViewedAt",
            "lastRatedAt",
            "viewOffset",
        ];
        let mut filters: Vec<(&str, &str, f64)> = Vec::new();
        for (k, v) in q {
            let Ok(v) = v.parse::<f64>() else { continue };
            let (name, op) = if let Some(n) = k.strip_suffix(">>") {
                (n, ">")
            } else if let Some(n) = k.strip_suffix("<<") {
                (n, "<")
            } else {
                (k.as_str(), "=")
            };
            if let Some(f) = FIELDS.iter().find(|f| **f == name) {
                filters.push((f, op, v));
            }
        }
        let mut rows: Vec<&PlexItem> = self
            .items
            .iter()
            .filter(|i| section.is_none_or(|s| i.section == s))
            .filter(|i| ty.is_none_or(|t| i.kind.number() == t))
            .filter(|i| {
                filters.iter().all(|(f, op, v)| {
                    let x = field(i, f).unwrap_or(0.0);
                    match *op {
                        ">" => x > *v,
                        "<" => x < *v,
                        _ => x == *v,
                    }
                })
            })
            .collect();
        if let Some(sort) = q.get("sort") {
            let keys: Vec<(String, bool)> = sort
                .split(',')
                .map(|s| {
                    let (f, dir) = s.split_once(':').unwrap_or((s, "asc"));
                    (f.trim().to_owned(), dir.trim() == "desc")
                })
                .collect();
            rows.sort_by(|a, b| {
                for (f, desc) in &keys {
                    let ord = if f == "titleSort" || f == "title" {
                        a.title.cmp(&b.title)
                    } else {
                        let (x, y) = (field(a, f), field(b, f));
                        x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                    };
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                a.rating_key.cmp(&b.rating_key)
            });
        }
        rows
    }

    fn pms_route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let q = query(req);
        if method == "GET" && path == "/identity" {
            return container(json!({
                "size": 0, "claimed": true, "machineIdentifier": MACHINE_ID, "version": "1.41.3.9314"
            }));
        }
        if plex_token(req, &q).as_deref() != Some(self.token.as_str()) {
            return unauthorized();
        }
        let (start, size) = paging(req, &q);
        let guids = q.get("includeGuids").is_some_and(|v| v == "1");
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segs.as_slice()) {
            ("GET", ["library", "sections"]) => container(json!({
                "size": 2,
                "Directory": [
                    {"key": "1", "type": "movie", "title": "Movies", "agent": "tv.plex.agents.movie", "uuid": "sim-section-movies"},
                    {"key": "2", "type": "show", "title": "TV Shows", "agent": "tv.plex.agents.series", "uuid": "sim-section-shows"},
                ],
            })),
            ("GET", ["library", "sections", id, "all"]) => {
                let Ok(section) = id.parse::<u32>() else {
                    return not_found();
                };
                if !(1..=2).contains(&section) {
                    return not_found();
                }
                let default_type = if section == 1 { 1 } else { 2 };
                let ty = q
                    .get("type")
                    .and_then(|t| t.parse::<u32>().ok())
                    .unwrap_or(default_type);
                paged_with(
                    self.search(&q, Some(section), Some(ty)),
                    start,
                    size,
                    fault,
                    json!({"librarySectionID": section}),
                    |i| self.item_json(i, guids),
                )
            }
            // Every section at once (`Library.search` in python-plexapi).
            ("GET", ["library", "all"]) => {
                let ty = q.get("type").and_then(|t| t.parse::<u32>().ok());
                paged_with(
                    self.search(&q, None, ty),
                    start,
                    size,
                    fault,
                    json!({}),
                    |i| self.item_json(i, guids),
                )
            }
            // One rating key or several, comma-separated: the items found, in order.
            ("GET", ["library", "metadata", keys]) => {
                let rows: Vec<Value> = keys
                    .split(',')
                    .filter_map(|k| k.trim().parse::<u64>().ok())
                    .filter_map(|k| self.item(k))
                    .map(|item| self.item_json(item, guids))
                    .collect();
                if rows.is_empty() {
                    return not_found();
                }
                container(json!({"size": rows.len(), "Metadata": rows}))
            }
            ("GET", [":", "prefs"]) => container(json!({
                "size": 3,
                "Setting": [
                    {"id": "FriendlyName", "label": "Friendly name", "type": "text",
                     "default": "", "value": "ferry-sim", "hidden": false, "advanced": false,
                     "group": "general"},
                    {"id": "LibraryVideoPlayedThreshold", "label": "Video played threshold",
                     "type": "int", "default": 90, "value": self.played_threshold,
                     "hidden": false, "advanced": false, "group": "library"},
                    {"id": "LibraryVideoPlayedAtBehaviour",
                     "label": "Video play completion behaviour", "type": "text",
                     "default": "3", "value": self.played_at_behaviour, "hidden": false,
                     "advanced": true, "group": "library",
                     "enumValues": "0:at selected threshold percentage|1:at final credits marker position|2:at first credits marker position|3:earliest between threshold percent and first credits marker"},
                ],
            })),
            ("GET", ["status", "sessions", "history", "all"]) => {
                self.history_page(&q, start, size, fault)
            }
            ("DELETE", ["status", "sessions", "history", id]) => {
                let Ok(id) = id.parse::<u64>() else {
                    return not_found();
                };
                let before = self.history.len();
                self.history.retain(|r| r.id != id);
                if self.history.len() == before {
                    not_found()
                } else {
                    self.tick();
                    ok_empty()
                }
            }
            ("GET" | "PUT", [":", "scrobble"]) => {
                if q.get("identifier").map(String::as_str) != Some(LIBRARY_IDENTIFIER) {
                    return bad_request();
                }
                let Some(key) = key_param(&q) else {
                    return bad_request();
                };
                if self.mark_played(key) {
                    ok_empty()
                } else {
                    not_found()
                }
            }
            ("GET" | "PUT", [":", "unscrobble"]) => {
                if q.get("identifier").map(String::as_str) != Some(LIBRARY_IDENTIFIER) {
                    return bad_request();
                }
                let Some(key) = key_param(&q) else {
                    return bad_request();
                };
                self.tick();
                match self.item_mut(key) {
                    Some(item) => {
                        item.view_count = 0;
                        item.last_viewed_at = None;
                        item.view_offset = None;
                        ok_empty()
                    }
                    None => not_found(),
                }
            }
            ("GET" | "PUT", [":", "rate"]) => self.rate(&q),
            ("GET" | "POST" | "PUT", [":", "timeline"] | [":", "progress"]) => self.timeline(&q),
            // Playlists and playlist folders; `type=15` playlists only, `type=16` folders
            // only. `playlistType` limits playlists (folders have none and stay).
            ("GET", ["playlists"]) => {
                let ty = q.get("type").map(String::as_str);
                let rows: Vec<Value> = self
                    .playlists
                    .iter()
                    .filter(|p| match ty {
                        None => true,
                        Some("15") => !p.folder,
                        Some("16") => p.folder,
                        Some(_) => false,
                    })
                    .filter(|p| p.folder || q.get("playlistType").is_none_or(|t| t == "video"))
                    .map(playlist_json)
                    .collect();
                paged(rows, start, size, fault, json!({}))
            }
            ("POST", ["playlists"]) => self.create_playlist(&q),
            (m, ["playlists", id, rest @ ..]) => {
                let Some(pi) = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.playlists.iter().position(|p| p.id == id))
                else {
                    return not_found();
                };
                self.playlist_route(pi, m, rest, &q, start, size, fault, guids)
            }
            _ => not_found(),
        }
    }

    /// `GET /status/sessions/history/all`: by item or section, oldest or newest first.
    fn history_page(
        &self,
        q: &HashMap<String, String>,
        start: usize,
        size: Option<usize>,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let mut rows: Vec<&HistoryRow> = self.history.iter().collect();
        if let Some(k) = q.get("metadataItemID").and_then(|k| k.parse::<u64>().ok()) {
            rows.retain(|r| r.rating_key == k);
        }
        if let Some(s) = q
            .get("librarySectionID")
            .and_then(|s| s.parse::<u32>().ok())
        {
            rows.retain(|r| self.item(r.rating_key).is_some_and(|i| i.section == s));
        }
        if q.get("sort").is_some_and(|s| s == "viewedAt:desc") {
            rows.sort_by(|a, b| b.viewed_at.cmp(&a.viewed_at).then(b.id.cmp(&a.id)));
        } else {
            rows.sort_by(|a, b| a.viewed_at.cmp(&b.viewed_at).then(a.id.cmp(&b.id)));
        }
        rows.retain(|r| self.item(r.rating_key).is_some());
        paged_with(rows, start, size, fault, json!({}), |r| {
            let Some(item) = self.item(r.rating_key) else {
                return Value::Null;
            };
            let mut v = json!({
                "historyKey": format!("/status/sessions/history/{}", r.id),
                "key": format!("/library/metadata/{}", r.rating_key),
                "ratingKey": r.rating_key.to_string(),
                "librarySectionID": item.section.to_string(),
                "title": item.title,
                "type": item.kind.as_str(),
                "viewedAt": r.viewed_at,
                "accountID": 1,
                "deviceID": 1,
            });
            if let (Some(show), Value::Object(m)) =
                (item.show_key.and_then(|k| self.item(k)), &mut v)
            {
                m.insert("grandparentTitle".into(), json!(show.title));
                m.insert(
                    "grandparentKey".into(),
                    json!(format!("/library/metadata/{}", show.rating_key)),
                );
                m.insert("parentIndex".into(), json!(item.season));
                m.insert("index".into(), json!(item.index));
            }
            v
        })
    }

    /// `PUT /:/rate` as the Rate API documents it.
    fn rate(&mut self, q: &HashMap<String, String>) -> ResponseTemplate {
        if q.get("identifier").map(String::as_str) != Some(LIBRARY_IDENTIFIER) {
            return bad_request();
        }
        let (Some(key), Some(rating)) = (
            key_param(q),
            q.get("rating").and_then(|r| r.parse::<f64>().ok()),
        ) else {
            return bad_request();
        };
        // The spec: 0 to 10. -1 (python-plexapi's reset) clears.
        let clear = rating == -1.0;
        if !clear && !(0.0..=10.0).contains(&rating) {
            return bad_request();
        }
        let rated_at = match q.get("ratedAt").map(|t| t.trim().parse::<i64>()) {
            None => None,
            Some(Ok(t)) if t <= self.now => Some(t),
            // Not a number, or "in the future".
            Some(_) => return bad_request(),
        };
        if self.item(key).is_none() {
            return not_found();
        }
        let now = self.tick();
        if let Some(item) = self.item_mut(key) {
            if clear {
                item.user_rating = None;
                item.last_rated_at = None;
            } else {
                item.user_rating = Some(rating);
                item.last_rated_at = Some(rated_at.unwrap_or(now));
            }
        }
        ok_empty()
    }

    /// `/:/timeline` (and `/:/progress`): a resume point, or a play past the played point.
    fn timeline(&mut self, q: &HashMap<String, String>) -> ResponseTemplate {
        let (Some(key), Some(time)) = (
            key_param(q),
            q.get("time").and_then(|t| t.parse::<u64>().ok()),
        ) else {
            return bad_request();
        };
        let now = self.tick();
        let threshold = u64::from(self.played_threshold);
        let behaviour = self.played_at_behaviour.clone();
        let ignored = self.timeline_ignored;
        let Some(item) = self.item_mut(key) else {
            return not_found();
        };
        if ignored {
            return ok_empty();
        }
        let duration = q
            .get("duration")
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|d| *d > 0)
            .unwrap_or(item.duration_ms);
        // Where the server counts a play: the threshold, or the credits marker as
        // `LibraryVideoPlayedAtBehaviour` says (the threshold without a marker).
        let at_threshold = duration * threshold / 100;
        let played_at = match (behaviour.as_str(), item.credits_at) {
            ("1" | "2", Some(c)) => c,
            ("3", Some(c)) => c.min(at_threshold),
            _ => at_threshold,
        };
        if time == 0 {
            item.view_offset = None;
        } else if time >= played_at {
            self.play(key, now);
        } else {
            item.view_offset = Some(time);
        }
        ok_empty()
    }

    /// `POST /playlists`: a video playlist, from the rating keys in `uri`.
    fn create_playlist(&mut self, q: &HashMap<String, String>) -> ResponseTemplate {
        let title = q.get("title").map(|t| t.trim()).unwrap_or_default();
        if title.is_empty() || q.get("type").is_some_and(|t| t != "video") {
            return bad_request();
        }
        let keys = match q.get("uri") {
            Some(uri) => match uri_keys(uri) {
                Some(k) if k.iter().all(|k| self.by_key.contains_key(k)) => k,
                _ => return bad_request(),
            },
            None => Vec::new(),
        };
        let id = self.next_id;
        self.next_id += 1;
        let mut pl = SimPlaylist::new(id, title);
        pl.smart = q.get("smart").is_some_and(|s| s == "1");
        for k in keys {
            pl.items.push((self.next_id, k));
            self.next_id += 1;
        }
        self.tick();
        let v = playlist_json(&pl);
        self.playlists.push(pl);
        container(json!({"size": 1, "Metadata": [v]}))
    }

    #[allow(clippy::too_many_arguments)]
    fn playlist_route(
        &mut self,
        pi: usize,
        method: &str,
        rest: &[&str],
        q: &HashMap<String, String>,
        start: usize,
        size: Option<usize>,
        fault: &ListFault,
        guids: bool,
    ) -> ResponseTemplate {
        let pl = &self.playlists[pi];
        if pl.read_only && method != "GET" {
            // "cannot be altered or deleted directly by the client"
            return html(403, "Forbidden");
        }
        if pl.folder && method != "GET" && !(method == "DELETE" && rest.is_empty()) {
            return bad_request();
        }
        match (method, rest) {
            ("GET", []) => {
                container(json!({"size": 1, "Metadata": [playlist_json(&self.playlists[pi])]}))
            }
            ("PUT", []) => {
                if let Some(t) = q.get("title") {
                    self.playlists[pi].title = t.clone();
                }
                if let Some(s) = q.get("summary") {
                    self.playlists[pi].summary = s.clone();
                }
                self.tick();
                ok_empty()
            }
            ("DELETE", []) => {
                self.playlists.remove(pi);
                self.tick();
                ok_empty()
            }
            ("GET", ["items"]) => {
                let rows: Vec<Value> = self.playlists[pi]
                    .items
                    .iter()
                    .filter_map(|(pid, k)| {
                        let mut v = self.item_json(self.item(*k)?, guids);
                        if let Value::Object(m) = &mut v {
                            m.insert("playlistItemID".into(), json!(pid));
                        }
                        Some(v)
                    })
                    .collect();
                let title = self.playlists[pi].title.clone();
                paged(
                    rows,
                    start,
                    size,
                    fault,
                    json!({"title": title, "playlistType": "video"}),
                )
            }
            ("PUT", ["items"]) => {
                if self.playlists[pi].smart {
                    return bad_request();
                }
                let Some(keys) = q.get("uri").and_then(|u| uri_keys(u)) else {
                    return bad_request();
                };
                if !keys.iter().all(|k| self.by_key.contains_key(k)) {
                    return bad_request();
                }
                let added = keys.len();
                for k in keys {
                    let pid = self.next_id;
                    self.next_id += 1;
                    self.playlists[pi].items.push((pid, k));
                }
                self.tick();
                container(json!({"size": 1, "leafCountAdded": added, "leafCountRequested": added}))
            }
            ("DELETE", ["items", pid]) => {
                let Ok(pid) = pid.parse::<u64>() else {
                    return not_found();
                };
                let items = &mut self.playlists[pi].items;
                let before = items.len();
                items.retain(|(p, _)| *p != pid);
                if items.len() == before {
                    return not_found();
                }
                self.tick();
                ok_empty()
            }
            ("PUT", ["items", pid, "move"]) => {
                let items = &mut self.playlists[pi].items;
                let Some(from) = pid
                    .parse::<u64>()
                    .ok()
                    .and_then(|pid| items.iter().position(|(p, _)| *p == pid))
                else {
                    return not_found();
                };
                let entry = items.remove(from);
                match q.get("after").and_then(|a| a.parse::<u64>().ok()) {
                    Some(after) => match items.iter().position(|(p, _)| *p == after) {
                        Some(i) => items.insert(i + 1, entry),
                        None => {
                            items.insert(from, entry);
                            return bad_request();
                        }
                    },
                    None => items.insert(0, entry),
                }
                self.tick();
                ok_empty()
            }
            _ => not_found(),
        }
    }
}

fn playlist_json(p: &SimPlaylist) -> Value {
    if p.folder {
        // Metadata type 16 (the spec documents only that `type=15` leaves them out).
        return json!({
            "ratingKey": p.id.to_string(),
            "key": format!("/playlists/{}/items", p.id),
            "type": "playlistFolder",
            "title": p.title,
        });
    }
    let mut v = json!({
        "ratingKey": p.id.to_string(),
        "key": format!("/playlists/{}/items", p.id),
        "guid": format!("com.plexapp.agents.none://sim-playlist-{}", p.id),
        "type": "playlist",
        "title": p.title,
        "summary": p.summary,
        "smart": p.smart,
        "playlistType": "video",
        "leafCount": p.items.len(),
    });
    if let Value::Object(m) = &mut v {
        if p.read_only {
            m.insert("readOnly".into(), json!(true));
        }
        if let Some(special) = &p.special {
            m.insert("specialPlaylistType".into(), json!(special));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Discover.

#[derive(Debug)]
pub(super) struct DiscoverRouter(pub(super) Arc<Mutex<PlexState>>);

impl Respond for DiscoverRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.discover.begin(req);
        seen.answer_list(|method, path, fault| st.discover_route(req, method, path, fault))
    }
}

impl PlexState {
    fn discover_route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let q = query(req);
        if plex_token(req, &q).as_deref() != Some(self.discover_token.as_str()) {
            return unauthorized();
        }
        let (start, size) = paging(req, &q);
        let guids = q.get("includeGuids").is_some_and(|v| v == "1");
        match (method, path) {
            ("GET", "/library/sections/watchlist/all") => {
                // Newest first unless `sort` says otherwise (watchlistedAt or titleSort).
                let mut listed: Vec<&(String, i64)> = self.watchlist.iter().rev().collect();
                match q.get("sort").map(String::as_str) {
                    Some("watchlistedAt:asc" | "watchlistedAt") => listed.reverse(),
                    Some(s) if s.starts_with("titleSort") => {
                        listed
                            .sort_by_key(|(k, _)| self.by_discover_key(k).map(|i| i.title.clone()));
                        if s.ends_with(":desc") {
                            listed.reverse();
                        }
                    }
                    _ => {}
                }
                let rows: Vec<Value> = listed
                    .into_iter()
                    .filter_map(|(k, at)| {
                        let item = self.by_discover_key(k)?;
                        let mut v = json!({
                            "ratingKey": k,
                            "key": format!("/library/metadata/{k}"),
                            "guid": item.guid,
                            "type": item.kind.as_str(),
                            "title": item.title,
                            "year": item.year,
                            "watchlistedAt": at,
                        });
                        if guids && let Value::Object(m) = &mut v {
                            let g: Vec<Value> =
                                item.external.iter().map(|id| json!({ "id": id })).collect();
                            m.insert("Guid".into(), Value::Array(g));
                        }
                        Some(v)
                    })
                    .collect();
                paged(
                    rows,
                    start,
                    size,
                    fault,
                    json!({"librarySectionID": "watchlist", "identifier": "tv.plex.provider.discover"}),
                )
            }
            ("PUT", "/actions/addToWatchlist") => {
                let Some(key) = q.get("ratingKey").cloned() else {
                    return bad_request();
                };
                if self.by_discover_key(&key).is_none() {
                    return not_found();
                }
                if self.watchlist.iter().any(|(k, _)| *k == key) {
                    return ResponseTemplate::new(409)
                        .set_body_json(json!({"error": "This item is already on the watchlist"}));
                }
                let now = self.tick();
                self.watchlist.push((key, now));
                ok_empty()
            }
            ("PUT", "/actions/removeFromWatchlist") => {
                let Some(key) = q.get("ratingKey").cloned() else {
                    return bad_request();
                };
                let before = self.watchlist.len();
                self.watchlist.retain(|(k, _)| *k != key);
                if self.watchlist.len() == before {
                    return not_found();
                }
                self.tick();
                ok_empty()
            }
            _ => not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_rating_keys_on_this_machine() {
        assert_eq!(
            uri_keys(&format!(
                "server://{MACHINE_ID}/com.plexapp.plugins.library/library/metadata/1,22"
            )),
            Some(vec![1, 22])
        );
        assert_eq!(
            uri_keys("server://other/com.plexapp.plugins.library/library/metadata/1"),
            None
        );
    }
}

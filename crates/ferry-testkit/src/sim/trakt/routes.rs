//! How the simulated Trakt API answers each request: the header checks, the route
//! table, and list pages windowed by the kit with Trakt's `X-Pagination-*` headers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_core::{Feature, MediaType};
use serde_json::{Map, Value, json};
use wiremock::{Request, ResponseTemplate};

use super::TraktSimConfig;
use super::catalog::bucket_of;
use super::state::{
    DEFAULT_HISTORY_PAGE, DEFAULT_PAGE, DeviceCode, DeviceStatus, FOUR, Key, ListRow, MAX_PAGE,
    PlayRow, PlaybackRow, RatingRow, State, Target, UserList, error, fmt_ms, json_resp, parse_ms,
};
use crate::sim::kit::{Fault, ListFault, Routes, TotalOut, numbered_window, offset_window};

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

impl Routes for State {
    /// A free-tier account with the default credentials and nothing in it yet.
    fn seeded() -> Self {
        State::new(TraktSimConfig::default())
    }

    /// The access token the server accepts now (it rotates on every grant).
    fn token(&self) -> String {
        self.access_token.clone()
    }

    /// The four `/sync` lists; playlists read one list per personal list, which the
    /// suite does not attack.
    fn list_path(&self, feature: Feature) -> Option<String> {
        match feature {
            Feature::Watchlist => Some("/sync/watchlist".into()),
            Feature::Ratings => Some("/sync/ratings".into()),
            Feature::History => Some("/sync/history".into()),
            Feature::Progress => Some("/sync/playback".into()),
            Feature::Playlists => None,
        }
    }

    fn route(&mut self, req: &Request, fault: &ListFault) -> ResponseTemplate {
        let method = req.method.as_str().to_ascii_uppercase();
        let path = req.url.path().trim_end_matches('/');
        handle(self, &method, path, req, fault)
    }

    /// Counts the 429s the knobs send, next to Trakt's own.
    fn faulted(&mut self, fault: &Fault) {
        if matches!(fault, Fault::RateLimited { .. } | Fault::Status(429)) {
            self.too_many += 1;
        }
    }
}

fn handle(
    st: &mut State,
    method: &str,
    path: &str,
    req: &Request,
    fault: &ListFault,
) -> ResponseTemplate {
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => {
                return ResponseTemplate::new(400)
                    .set_body_json(serde_json::json!({"error": "the body is not JSON"}));
            }
        }
    };
    if path.starts_with("/oauth/") {
        return if method == "POST" {
            st.oauth(path, &body)
        } else {
            ResponseTemplate::new(405)
        };
    }
    if header(req, "trakt-api-key") != Some(st.cfg.client_id.as_str()) {
        return ResponseTemplate::new(403)
            .set_body_json(serde_json::json!({"error": "invalid API key or unapproved app"}));
    }
    if header(req, "trakt-api-version").map(str::trim) != Some("2") {
        return ResponseTemplate::new(400)
            .set_body_json(serde_json::json!({"error": "trakt-api-version must be 2"}));
    }
    let bearer = header(req, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    if st.token_expired || bearer != Some(st.access_token.as_str()) {
        return ResponseTemplate::new(401)
            .insert_header(
                "WWW-Authenticate",
                "Bearer realm=\"trakt\", error=\"invalid_token\"",
            )
            .set_body_json(serde_json::json!({
                "error": "invalid_token",
                "error_description": "The access token is invalid or expired"
            }));
    }
    if let Some(limited) = st.rate_check(method) {
        return limited;
    }
    let q = Query::parse(req.url.query_pairs());
    let resp = st.api(method, path, &q, &body, fault);
    if method == "GET" {
        resp.insert_header("X-Ratelimit", st.ratelimit_header().as_str())
    } else {
        resp
    }
}

/// A request's query parameters.
#[derive(Debug, Default)]
pub(super) struct Query(BTreeMap<String, String>);

impl Query {
    pub(crate) fn parse<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Self {
        Query(
            pairs
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub(super) fn u64(&self, k: &str) -> Option<u64> {
        self.get(k).and_then(|v| v.trim().parse().ok())
    }

    pub(super) fn full(&self) -> bool {
        self.get("extended")
            .is_some_and(|e| e.split(',').any(|x| x.trim() == "full"))
    }
}

impl State {
    /// Pages `rows` with `page`/`limit` and Trakt's `X-Pagination-*` headers. A truncated
    /// page keeps its declared counts but serves only half its rows.
    pub(super) fn paged(
        &self,
        rows: Vec<Value>,
        q: &Query,
        default_limit: u64,
        fault: &ListFault,
    ) -> ResponseTemplate {
        self.paged_with(rows, q, default_limit, fault, |v| v)
    }

    /// [`State::paged`], rendering only the rows on the page (a large history would
    /// otherwise be rendered whole for every page).
    fn paged_with<T>(
        &self,
        rows: Vec<T>,
        q: &Query,
        default_limit: u64,
        fault: &ListFault,
        render: impl FnMut(T) -> Value,
    ) -> ResponseTemplate {
        let total = rows.len() as u64;
        let page = q.u64("page").unwrap_or(1).max(1);
        let limit = q.u64("limit").unwrap_or(default_limit).clamp(1, MAX_PAGE);
        let page_count = total.div_ceil(limit);
        let w = numbered_window(rows.len(), page as usize, limit as usize, fault);
        let body: Vec<Value> = rows
            .into_iter()
            .skip(w.start)
            .take(w.len())
            .map(render)
            .collect();
        // A fault on the declared total damages both counts: Trakt's end of list is the
        // page count, its total the item count.
        let (body, items) = fault.shape(body, total as usize);
        let pages = match &items {
            TotalOut::Exact(_) => TotalOut::Exact(page_count as usize),
            other => other.clone(),
        };
        let mut resp = json_resp(200, Value::Array(body))
            .insert_header("X-Pagination-Page", page.to_string().as_str())
            .insert_header("X-Pagination-Limit", limit.to_string().as_str());
        if let Some(v) = pages.header() {
            resp = resp.insert_header("X-Pagination-Page-Count", v.as_str());
        }
        if let Some(v) = items.header() {
            resp = resp.insert_header("X-Pagination-Item-Count", v.as_str());
        }
        resp
    }

    // -----------------------------------------------------------------------------------
    // The router.

    /// Handles an authenticated API request.
    pub(super) fn api(
        &mut self,
        method: &str,
        path: &str,
        q: &Query,
        body: &Value,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, seg.as_slice()) {
            ("GET", ["sync", "last_activities"]) => json_resp(200, self.last_activities()),
            ("GET", ["users", "settings"]) => json_resp(200, self.settings()),

            ("GET", ["sync", "watchlist", rest @ ..]) => {
                let kind = rest.first().copied();
                if kind.is_some_and(|k| !FOUR.contains(&k)) {
                    return ResponseTemplate::new(404);
                }
                let rows = self.list_rows(Target::Watchlist, kind, q);
                self.paged(rows, q, DEFAULT_PAGE, fault)
            }
            ("POST", ["sync", "watchlist"]) => self.list_add(Target::Watchlist, body),
            ("POST", ["sync", "watchlist", "remove"]) => self.list_remove(Target::Watchlist, body),

            ("GET", ["sync", "ratings", rest @ ..]) => {
                let kind = rest.first().copied().filter(|k| *k != "all");
                if kind.is_some_and(|k| !FOUR.contains(&k)) {
                    return ResponseTemplate::new(404);
                }
                let rating: Option<u8> = rest.get(1).and_then(|r| r.parse().ok());
                let rows = self.rating_rows(kind, rating, q.full());
                self.paged(rows, q, DEFAULT_PAGE, fault)
            }
            ("POST", ["sync", "ratings"]) => self.ratings_add(body),
            ("POST", ["sync", "ratings", "remove"]) => self.ratings_remove(body),

            ("GET", ["sync", "history", rest @ ..]) => {
                let kind = rest.first().copied();
                if kind.is_some_and(|k| !FOUR.contains(&k)) {
                    return ResponseTemplate::new(404);
                }
                let id: Option<u64> = rest.get(1).and_then(|r| r.parse().ok());
                self.history_page(kind, id, q, fault)
            }
            ("POST", ["sync", "history"]) => self.history_add(body),
            ("POST", ["sync", "history", "remove"]) => self.history_remove(body),

            ("GET", ["sync", "playback", rest @ ..]) => {
                let kind = rest.first().copied();
                if kind.is_some_and(|k| !matches!(k, "movies" | "episodes")) {
                    return ResponseTemplate::new(404);
                }
                let rows = self.playback_rows(kind, q.full());
                self.paged(rows, q, DEFAULT_PAGE, fault)
            }
            ("DELETE", ["sync", "playback", id]) => {
                let Ok(id) = id.parse::<u64>() else {
                    return ResponseTemplate::new(404);
                };
                match self.playback.iter().position(|p| p.id == id) {
                    Some(i) => {
                        let row = self.playback.remove(i);
                        self.touch(&[(bucket_of(row.key.0), "paused_at")]);
                        ResponseTemplate::new(204)
                    }
                    None => ResponseTemplate::new(404),
                }
            }
            ("POST", ["scrobble", "pause"]) => self.scrobble_pause(body),

            ("GET", ["users", user, "lists"]) if self.is_me(user) => {
                // Trakt documents this list whole: no pagination, no headers.
                let rows: Vec<Value> = self.lists.iter().map(|l| self.list_json(l)).collect();
                let w = offset_window(rows.len(), 0, None, fault);
                let (rows, _) = fault.shape(rows[w].to_vec(), rows.len());
                json_resp(200, Value::Array(rows))
            }
            ("POST", ["users", user, "lists"]) if self.is_me(user) => self.list_create(body),
            (_, ["users", user, "lists", id, rest @ ..]) if self.is_me(user) => {
                let Some(i) = self.find_list(id) else {
                    return error(404, "not_found", "no such list");
                };
                self.list_route(method, i, rest, q, body, fault)
            }
            _ => error(404, "not_found", "no such endpoint in the simulator"),
        }
    }

    fn is_me(&self, user: &str) -> bool {
        user == "me" || user == "sim"
    }

    fn find_list(&self, id: &str) -> Option<usize> {
        self.lists
            .iter()
            .position(|l| l.id.to_string() == id || l.slug == id)
    }

    fn list_route(
        &mut self,
        method: &str,
        i: usize,
        rest: &[&str],
        q: &Query,
        body: &Value,
        fault: &ListFault,
    ) -> ResponseTemplate {
        match (method, rest) {
            ("GET", []) => json_resp(200, self.list_json(&self.lists[i])),
            ("PUT", []) => {
                if let Some(n) = body.get("name").and_then(Value::as_str) {
                    self.lists[i].name = n.to_owned();
                }
                if let Some(d) = body.get("description") {
                    self.lists[i].description = d.as_str().map(str::to_owned);
                }
                if let Some(p) = body.get("privacy").and_then(Value::as_str) {
                    self.lists[i].privacy = p.to_owned();
                }
                self.touch_list(Target::List(i), &[]);
                json_resp(200, self.list_json(&self.lists[i]))
            }
            ("DELETE", []) => {
                self.lists.remove(i);
                self.touch(&[("lists", "updated_at")]);
                ResponseTemplate::new(204)
            }
            ("GET", ["items", rest @ ..]) => {
                let kind = rest.first().copied();
                if kind.is_some_and(|k| !FOUR.contains(&k)) {
                    return ResponseTemplate::new(404);
                }
                let rows = self.list_rows(Target::List(i), kind, q);
                self.paged(rows, q, DEFAULT_PAGE, fault)
            }
            ("POST", ["items"]) => self.list_add(Target::List(i), body),
            ("POST", ["items", "remove"]) => self.list_remove(Target::List(i), body),
            ("POST", ["items", "reorder"]) => {
                let ids: Vec<u64> = body
                    .get("rank")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                let items = std::mem::take(&mut self.lists[i].items);
                let mut ordered = Vec::with_capacity(items.len());
                let mut skipped = Vec::new();
                for id in &ids {
                    match items.iter().find(|r| r.id == *id) {
                        Some(r) if !ordered.iter().any(|o: &ListRow| o.id == *id) => {
                            ordered.push(r.clone())
                        }
                        _ => skipped.push(*id),
                    }
                }
                for r in &items {
                    if !ordered.iter().any(|o| o.id == r.id) {
                        ordered.push(r.clone());
                    }
                }
                let updated = ids.len() - skipped.len();
                self.lists[i].items = ordered;
                self.touch_list(Target::List(i), &[]);
                json_resp(200, json!({"updated": updated, "skipped_ids": skipped}))
            }
            _ => error(404, "not_found", "no such endpoint in the simulator"),
        }
    }

    // -----------------------------------------------------------------------------------
    // History.

    fn history_page(
        &self,
        kind: Option<&str>,
        id: Option<u64>,
        q: &Query,
        fault: &ListFault,
    ) -> ResponseTemplate {
        let start = q.get("start_at").and_then(parse_ms);
        let end = q.get("end_at").and_then(parse_ms);
        let full = q.full();
        let mut rows: Vec<&PlayRow> = self
            .history
            .iter()
            .filter(|p| start.is_none_or(|s| p.watched_at >= s))
            .filter(|p| end.is_none_or(|e| p.watched_at <= e))
            .filter(|p| match (kind, id) {
                (None, _) => true,
                (Some(k), None) => match k {
                    "movies" | "episodes" => bucket_of(p.key.0) == k,
                    _ => p.key.0 == MediaType::Episode,
                },
                (Some(k), Some(id)) => match k {
                    "movies" | "episodes" => bucket_of(p.key.0) == k && p.key.1 == id,
                    "shows" => self.title(p.key).and_then(|t| t.show) == Some(id),
                    _ => self.title(p.key).is_some_and(|t| {
                        self.catalog
                            .show_of(&t)
                            .zip(t.season)
                            .and_then(|(sh, s)| self.catalog.child(&sh, s, None))
                            .is_some_and(|season| season.trakt == id)
                    }),
                },
            })
            .filter(|p| self.title(p.key).is_some())
            .collect();
        rows.sort_by(|a, b| b.watched_at.cmp(&a.watched_at).then(b.id.cmp(&a.id)));
        self.paged_with(rows, q, DEFAULT_HISTORY_PAGE, fault, |p| {
            let mut m = Map::new();
            m.insert("id".into(), json!(p.id));
            m.insert("watched_at".into(), json!(fmt_ms(p.watched_at)));
            m.insert("action".into(), json!("watch"));
            self.media_fields(p.key, full, &mut m);
            Value::Object(m)
        })
    }

    // -----------------------------------------------------------------------------------
    // OAuth: the device flow and token grants.

    pub(super) fn oauth(&mut self, path: &str, body: &Value) -> ResponseTemplate {
        let client_ok = body.get("client_id").and_then(Value::as_str) == Some(&self.cfg.client_id);
        let secret_ok =
            body.get("client_secret").and_then(Value::as_str) == Some(&self.cfg.client_secret);
        match path {
            "/oauth/device/code" => {
                if !client_ok {
                    return error(403, "invalid_client", "unknown client_id");
                }
                let n = self.next_id();
                let code = DeviceCode {
                    device_code: format!("sim-device-{n:06}-{:016x}", n * 0x9e37_79b9),
                    user_code: format!("SIM{n:05}"),
                    created: Instant::now(),
                    expires_in: 600,
                    status: DeviceStatus::Pending,
                    polls: 0,
                };
                let out = json!({
                    "device_code": code.device_code,
                    "user_code": code.user_code,
                    "verification_url": "https://trakt.tv/activate",
                    "expires_in": code.expires_in,
                    "interval": self.device_interval,
                });
                self.devices.push(code);
                json_resp(200, out)
            }
            "/oauth/device/token" => {
                let code = body.get("code").and_then(Value::as_str).unwrap_or_default();
                if !client_ok || !secret_ok {
                    return error(401, "invalid_client", "client credentials refused");
                }
                let auto = self.device_auto_approve;
                let Some(i) = self.devices.iter().position(|d| d.device_code == code) else {
                    return ResponseTemplate::new(404);
                };
                if self.device_slow_down > 0 {
                    self.device_slow_down -= 1;
                    self.too_many += 1;
                    return ResponseTemplate::new(429).set_body_json(json!({"error": "slow_down"}));
                }
                let d = &mut self.devices[i];
                d.polls += 1;
                if d.status == DeviceStatus::Pending
                    && d.created.elapsed() > Duration::from_secs(d.expires_in)
                {
                    d.status = DeviceStatus::Expired;
                }
                if d.status == DeviceStatus::Pending && auto.is_some_and(|n| d.polls >= n) {
                    d.status = DeviceStatus::Approved;
                }
                match d.status {
                    DeviceStatus::Pending => ResponseTemplate::new(400),
                    DeviceStatus::Denied => ResponseTemplate::new(418),
                    DeviceStatus::Expired => ResponseTemplate::new(410),
                    DeviceStatus::Used => ResponseTemplate::new(409),
                    DeviceStatus::Approved => {
                        d.status = DeviceStatus::Used;
                        json_resp(200, self.issue_tokens())
                    }
                }
            }
            "/oauth/token" => {
                let grant = body.get("grant_type").and_then(Value::as_str);
                if grant != Some("refresh_token") {
                    return error(
                        400,
                        "unsupported_grant_type",
                        "only refresh_token is simulated",
                    );
                }
                if !client_ok || !secret_ok {
                    return error(401, "invalid_client", "client credentials refused");
                }
                let rt = body.get("refresh_token").and_then(Value::as_str);
                if rt != Some(self.refresh_token.as_str()) {
                    return error(401, "invalid_grant", "the refresh token is invalid");
                }
                json_resp(200, self.issue_tokens())
            }
            _ => ResponseTemplate::new(404),
        }
    }

    // -----------------------------------------------------------------------------------
    // Rows as Trakt renders them.

    /// `"type": ..., "<type>": {...}` plus `"show"` for seasons and episodes.
    pub(super) fn media_fields(&self, key: Key, full: bool, out: &mut Map<String, Value>) -> bool {
        let Some(t) = self.title(key) else {
            return false;
        };
        out.insert("type".into(), json!(t.type_name()));
        out.insert(t.type_name().into(), t.render(full));
        if let Some(show) = self.catalog.show_of(&t) {
            out.insert("show".into(), show.render(full));
        }
        true
    }

    pub(super) fn list_row_json(&self, rank: usize, r: &ListRow, full: bool) -> Option<Value> {
        let mut m = Map::new();
        m.insert("rank".into(), json!(rank));
        m.insert("id".into(), json!(r.id));
        m.insert("listed_at".into(), json!(fmt_ms(r.listed_at)));
        m.insert("notes".into(), json!(r.notes));
        self.media_fields(r.key, full, &mut m)
            .then_some(Value::Object(m))
    }

    pub(super) fn list_json(&self, l: &UserList) -> Value {
        json!({
            "name": l.name,
            "description": l.description,
            "privacy": l.privacy,
            "share_link": format!("https://trakt.tv/lists/{}", l.id),
            "type": "personal",
            "display_numbers": false,
            "allow_comments": true,
            "sort_by": "rank",
            "sort_how": "asc",
            "created_at": fmt_ms(l.created_at),
            "updated_at": fmt_ms(l.updated_at),
            "item_count": l.items.len(),
            "comment_count": 0,
            "likes": 0,
            "ids": {"trakt": l.id, "slug": l.slug},
            "user": {
                "username": "sim", "private": false, "name": "Ferry Simulator",
                "vip": self.cfg.vip, "vip_ep": false, "ids": {"slug": "sim"}
            }
        })
    }

    pub(super) fn list_rows(&self, target: Target, kind: Option<&str>, q: &Query) -> Vec<Value> {
        let full = q.full();
        self.rows(target)
            .iter()
            .enumerate()
            .filter(|(_, r)| kind.is_none_or(|k| bucket_of(r.key.0) == k))
            .filter_map(|(i, r)| self.list_row_json(i + 1, r, full))
            .collect()
    }

    pub(super) fn rating_rows(
        &self,
        kind: Option<&str>,
        rating: Option<u8>,
        full: bool,
    ) -> Vec<Value> {
        let mut rows: Vec<&RatingRow> = self
            .ratings
            .iter()
            .filter(|r| kind.is_none_or(|k| bucket_of(r.key.0) == k))
            .filter(|r| rating.is_none_or(|x| r.rating == x))
            .collect();
        rows.sort_by(|a, b| b.rated_at.cmp(&a.rated_at).then(a.key.1.cmp(&b.key.1)));
        rows.into_iter()
            .filter_map(|r| {
                let mut m = Map::new();
                m.insert("rated_at".into(), json!(fmt_ms(r.rated_at)));
                m.insert("rating".into(), json!(r.rating));
                self.media_fields(r.key, full, &mut m)
                    .then_some(Value::Object(m))
            })
            .collect()
    }

    pub(super) fn playback_rows(&self, kind: Option<&str>, full: bool) -> Vec<Value> {
        let mut rows: Vec<&PlaybackRow> = self
            .playback
            .iter()
            .filter(|p| kind.is_none_or(|k| bucket_of(p.key.0) == k))
            .collect();
        rows.sort_by(|a, b| b.paused_at.cmp(&a.paused_at).then(b.id.cmp(&a.id)));
        rows.into_iter()
            .filter_map(|p| {
                let mut m = Map::new();
                m.insert("progress".into(), json!(p.progress));
                m.insert("paused_at".into(), json!(fmt_ms(p.paused_at)));
                m.insert("id".into(), json!(p.id));
                self.media_fields(p.key, full, &mut m)
                    .then_some(Value::Object(m))
            })
            .collect()
    }
}

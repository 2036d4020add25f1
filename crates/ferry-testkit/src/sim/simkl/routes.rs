//! How the simulated SIMKL answers each request: app and user auth, the PIN flow, the
//! list reads (one document per catalog, shaped by the shared fault knobs), activities
//! and the writes with SIMKL's `added`/`not_found` bodies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferry_core::Timestamp;
use serde_json::{Map, Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::sim::knobs::{Fault, ListFault, fault_response};

use super::START_TIME;
use super::state::{
    LibraryEntry, ListStatus, Pin, SimklState, SimklTitle, SimklType, lock, refresh_show,
};

// ---------------------------------------------------------------------------------------
// Replies.

enum Body {
    Json(Value),
    Empty,
}

struct Reply {
    status: u16,
    body: Body,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: Value) -> Self {
        Reply {
            status,
            body: Body::Json(v),
            headers: Vec::new(),
        }
    }

    fn error(status: u16, error: &str, message: &str) -> Self {
        Reply::json(
            status,
            json!({"error": error, "code": status, "message": message}),
        )
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::Empty => Vec::new(),
        }
    }
}

fn template(status: u16, body: Vec<u8>, headers: &[(&'static str, String)]) -> ResponseTemplate {
    let mut t = ResponseTemplate::new(status);
    if !body.is_empty() {
        t = t.set_body_raw(body, "application/json");
    }
    for (k, v) in headers {
        t = t.insert_header(*k, v.as_str());
    }
    t
}

#[derive(Debug)]
pub(super) struct Router(pub(super) Arc<Mutex<SimklState>>);

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        st.note_app_params(req);
        if let Some(retry_after_secs) = st.over_limit(&seen.method) {
            // The service's own limit answers with the knobs' 429.
            let limited = Fault::RateLimited { retry_after_secs };
            return fault_response(&limited).unwrap_or_else(|| ResponseTemplate::new(429));
        }
        seen.answer_list(|method, path, fault| {
            let mut r = st.route(req, method, path);
            if fault.truncates() {
                // A list read is one document, not a page: what a truncated answer means
                // for it is a body cut off mid-way.
                let mut b = r.bytes();
                b.truncate(b.len() / 2);
                return template(r.status, b, &r.headers);
            }
            if let Body::Json(v) = &mut r.body {
                shape_list(v, fault);
            }
            template(r.status, r.bytes(), &r.headers)
        })
    }
}

/// Applies a list fault to a list answer's rows (the first list in the answer). SIMKL
/// declares no totals, so a missing or invalid total changes nothing on the wire.
fn shape_list(v: &mut Value, fault: &ListFault) {
    let rows = match v {
        Value::Array(rows) => rows,
        Value::Object(m) => match m.values_mut().find_map(Value::as_array_mut) {
            Some(rows) => rows,
            None => return,
        },
        _ => return,
    };
    let n = rows.len();
    let (shaped, _) = fault.shape(std::mem::take(rows), n);
    *rows = shaped;
}

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(Timestamp::from_unix(t).to_rfc3339()))
}

fn parse_ts(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str)
        .and_then(Timestamp::parse)
        .map(Timestamp::unix)
}

/// The `/sync/all-items` flags that shape a row.
#[derive(Debug, Clone, Copy, Default)]
struct RowFlags {
    /// `episode_watched_at=yes`: each episode carries its `watched_at`.
    episode_watched_at: bool,
    /// `include_all_episodes=yes`: completed and dropped shows list their episodes too.
    include_all_episodes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extended {
    Full,
    IdsOnly,
    SimklIdsOnly,
}

impl SimklState {
    fn note_app_params(&mut self, req: &Request) {
        let q = query(req);
        if !["client_id", "app-name", "app-version"]
            .iter()
            .all(|k| q.contains_key(*k))
        {
            self.missing_app_params += 1;
        }
    }

    fn title_json(&self, t: &SimklTitle, ext: Extended) -> Value {
        let mut ids = Map::new();
        ids.insert("simkl".into(), json!(t.simkl_id));
        if ext != Extended::SimklIdsOnly {
            for (k, v) in &t.ids {
                ids.insert(k.clone(), json!(v));
            }
        }
        let mut m = Map::new();
        if ext == Extended::Full {
            m.insert("title".into(), json!(t.title));
            if let Some(y) = t.year {
                m.insert("year".into(), json!(y));
            }
        }
        m.insert("ids".into(), Value::Object(ids));
        Value::Object(m)
    }

    fn row_json(&self, t: &SimklTitle, e: &LibraryEntry, ext: Extended, flags: RowFlags) -> Value {
        let mut m = Map::new();
        if ext == Extended::Full {
            m.insert("added_to_watchlist_at".into(), ts(Some(e.added_at)));
            m.insert("last_watched_at".into(), ts(e.last_watched_at));
            m.insert("user_rated_at".into(), ts(e.rated_at));
            m.insert(
                "user_rating".into(),
                e.rating.map_or(Value::Null, |r| json!(r)),
            );
        }
        m.insert("status".into(), json!(e.status.as_str()));
        m.insert(t.kind.item_key().into(), self.title_json(t, ext));
        if t.kind != SimklType::Movies {
            if t.kind == SimklType::Anime {
                m.insert("anime_type".into(), json!("tv"));
            }
            if ext == Extended::Full {
                let last = e
                    .episodes
                    .iter()
                    .max_by_key(|(_, at)| **at)
                    .map(|((s, ep), _)| format!("S{s:02}E{ep:02}"));
                m.insert(
                    "last_watched".into(),
                    last.map_or(Value::Null, |l| json!(l)),
                );
                m.insert("watched_episodes_count".into(), json!(e.episodes.len()));
                m.insert("total_episodes_count".into(), json!(t.total_episodes()));
                m.insert("not_aired_episodes_count".into(), json!(0));
                // SIMKL lists the episodes of a finished (completed or dropped) show only
                // when asked with `include_all_episodes=yes`.
                let finished = matches!(e.status, ListStatus::Completed | ListStatus::Dropped);
                let listed = !finished || flags.include_all_episodes;
                if listed && !e.episodes.is_empty() {
                    let mut seasons: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
                    for ((s, ep), at) in &e.episodes {
                        let mut em = Map::new();
                        em.insert("number".into(), json!(ep));
                        if flags.episode_watched_at {
                            em.insert("watched_at".into(), ts(Some(*at)));
                        }
                        em.insert("tvdb".into(), json!({"season": s, "episode": ep}));
                        seasons.entry(*s).or_default().push(Value::Object(em));
                    }
                    let seasons: Vec<Value> = seasons
                        .into_iter()
                        .map(|(n, eps)| json!({"number": n, "episodes": eps}))
                        .collect();
                    m.insert("seasons".into(), Value::Array(seasons));
                }
            }
        }
        Value::Object(m)
    }

    pub(super) fn activities_json(&self) -> Value {
        let s = |block: &'static str, field: &'static str| {
            ts(self.stamps.get(&(block, field)).copied())
        };
        let block = |kind: SimklType| {
            let b = kind.activity_key();
            let mut m = Map::new();
            m.insert("all".into(), s(b, "all"));
            m.insert("rated_at".into(), s(b, "rated_at"));
            m.insert("playback".into(), s(b, "playback"));
            for st in kind.statuses() {
                m.insert(st.as_str().into(), s(b, st.as_str()));
            }
            m.insert("removed_from_list".into(), s(b, "removed_from_list"));
            Value::Object(m)
        };
        json!({
            "all": s("", "all"),
            "settings": {"all": s("settings", "all")},
            "tv_shows": block(SimklType::Shows),
            "anime": block(SimklType::Anime),
            "movies": block(SimklType::Movies),
        })
    }

    // -- routing --------------------------------------------------------------------------

    fn route(&mut self, req: &Request, method: &str, path: &str) -> Reply {
        let q = query(req);
        let cid = q
            .get("client_id")
            .map(String::as_str)
            .or_else(|| header(req, "simkl-api-key"));
        if cid != Some(self.client_id.as_str()) {
            return Reply::error(401, "client_id_failed", "client_id missing or unknown");
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segs.as_slice()) {
            ("GET", ["oauth", "pin"]) => return self.pin_new(),
            ("GET", ["oauth", "pin", code]) => return self.pin_poll(code),
            _ => {}
        }
        let bearer = header(req, "authorization").and_then(|h| h.strip_prefix("Bearer "));
        if bearer != Some(self.token.as_str()) {
            return Reply::error(
                401,
                "user_token_failed",
                "the access token is missing or revoked",
            );
        }
        let body = || -> Option<Value> {
            serde_json::from_slice::<Value>(&req.body)
                .ok()
                .filter(Value::is_object)
        };
        let bad = || Reply::error(400, "bad_request", "the body is not a JSON object");
        if method == "GET"
            && matches!(
                segs.as_slice(),
                ["sync", "all-items", ..] | ["sync", "ratings", ..]
            )
            && !q.contains_key("date_from")
        {
            self.full_list_reads += 1;
        }
        match (method, segs.as_slice()) {
            ("GET", ["sync", "activities"]) => Reply::json(200, self.activities_json()),
            ("GET", ["sync", "all-items"]) => self.all_items(None, None, &q),
            ("GET", ["sync", "all-items", t]) => match SimklType::parse(t) {
                Some(t) => self.all_items(Some(t), None, &q),
                None => Reply::error(404, "url_failed", "unknown type"),
            },
            ("GET", ["sync", "all-items", t, s]) => {
                match (SimklType::parse(t), ListStatus::parse(s), *s == "all") {
                    (Some(t), Some(s), _) => self.all_items(Some(t), Some(s), &q),
                    (Some(t), None, true) => self.all_items(Some(t), None, &q),
                    _ => Reply::error(404, "url_failed", "unknown type or status"),
                }
            }
            ("GET", ["sync", "ratings", t]) => match SimklType::parse(t) {
                Some(t) => self.ratings(t, None, &q),
                None => Reply::error(404, "url_failed", "unknown type"),
            },
            ("GET", ["sync", "ratings", t, r]) => match SimklType::parse(t) {
                Some(t) => self.ratings(t, Some(r), &q),
                None => Reply::error(404, "url_failed", "unknown type"),
            },
            ("POST", ["sync", "add-to-list"]) => match body() {
                Some(b) => self.add_to_list(&b),
                None => bad(),
            },
            ("POST", ["sync", "history"]) => match body() {
                Some(b) => self.history_add(&b),
                None => bad(),
            },
            ("POST", ["sync", "history", "remove"]) => match body() {
                Some(b) => self.history_remove(&b),
                None => bad(),
            },
            ("POST", ["sync", "ratings"]) => match body() {
                Some(b) => self.ratings_add(&b),
                None => bad(),
            },
            ("POST", ["sync", "ratings", "remove"]) => match body() {
                Some(b) => self.ratings_remove(&b),
                None => bad(),
            },
            ("POST", ["users", "settings"]) => Reply::json(
                200,
                json!({
                    "user": {"name": "ferry-sim", "joined_at": ts(Some(START_TIME - 86_400))},
                    "account": {"id": 1, "timezone": "UTC", "type": "free"},
                }),
            ),
            _ => Reply::error(404, "url_failed", "no such endpoint"),
        }
    }

    fn pin_new(&mut self) -> Reply {
        let code = format!("SIM{:02}", self.pins.len() + 1);
        self.pins.push(Pin {
            user_code: code.clone(),
            approved: false,
        });
        Reply::json(
            200,
            json!({
                "result": "OK",
                "device_code": "DEVICE_CODE",
                "user_code": code,
                "verification_url": "https://simkl.com/pin",
                "expires_in": 900,
                "interval": self.pin_interval,
            }),
        )
    }

    fn pin_poll(&mut self, code: &str) -> Reply {
        match self.pins.iter().find(|p| p.user_code == code) {
            Some(p) if p.approved => {
                Reply::json(200, json!({"result": "OK", "access_token": self.token}))
            }
            Some(_) => Reply::json(
                200,
                json!({"result": "KO", "message": "Authorization pending"}),
            ),
            None => Reply::json(200, json!({"result": "KO", "message": "Code not found"})),
        }
    }

    fn since(q: &HashMap<String, String>) -> Option<i64> {
        q.get("date_from")
            .and_then(|d| Timestamp::parse(d))
            .map(Timestamp::unix)
    }

    fn extended(q: &HashMap<String, String>) -> Extended {
        match q.get("extended").map(String::as_str) {
            Some("ids_only") => Extended::IdsOnly,
            Some("simkl_ids_only") => Extended::SimklIdsOnly,
            _ => Extended::Full,
        }
    }

    /// `{type: rows}` for every type with rows, or `null` when there are none at all.
    fn bucketed(rows: BTreeMap<SimklType, Vec<Value>>) -> Value {
        let mut m = Map::new();
        for (t, r) in rows {
            if !r.is_empty() {
                m.insert(t.as_str().into(), Value::Array(r));
            }
        }
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    }

    fn all_items(
        &self,
        kind: Option<SimklType>,
        status: Option<ListStatus>,
        q: &HashMap<String, String>,
    ) -> Reply {
        let since = Self::since(q);
        let ext = Self::extended(q);
        let yes = |k: &str| q.get(k).is_some_and(|v| v == "yes");
        let flags = RowFlags {
            episode_watched_at: yes("episode_watched_at"),
            include_all_episodes: yes("include_all_episodes") && !self.ignore_include_all_episodes,
        };
        let mut rows: BTreeMap<SimklType, Vec<Value>> = BTreeMap::new();
        for (id, e) in &self.library {
            let t = &self.catalog[self.by_id[id]];
            let when = if self.date_from_on_event_dates {
                e.episodes
                    .values()
                    .copied()
                    .chain(e.last_watched_at)
                    .max()
                    .unwrap_or(e.updated_at)
            } else {
                e.updated_at
            };
            if kind.is_some_and(|k| k != t.kind)
                || status.is_some_and(|s| s != e.status)
                || since.is_some_and(|d| when < d)
            {
                continue;
            }
            rows.entry(t.kind)
                .or_default()
                .push(self.row_json(t, e, ext, flags));
        }
        Reply::json(200, Self::bucketed(rows))
    }

    fn ratings(&self, kind: SimklType, wanted: Option<&str>, q: &HashMap<String, String>) -> Reply {
        let since = Self::since(q);
        let wanted: BTreeSet<u8> = match wanted {
            Some(w) => w.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
            None => (1..=10).collect(),
        };
        let mut rows = Vec::new();
        for (id, e) in &self.library {
            let t = &self.catalog[self.by_id[id]];
            let Some(r) = e.rating else { continue };
            let when = if self.date_from_on_event_dates {
                e.rated_at.unwrap_or(e.updated_at)
            } else {
                e.updated_at
            };
            if t.kind != kind || !wanted.contains(&r) || since.is_some_and(|d| when < d) {
                continue;
            }
            let mut m = Map::new();
            m.insert("last_watched_at".into(), ts(e.last_watched_at));
            m.insert("user_rated_at".into(), ts(e.rated_at));
            m.insert("user_rating".into(), json!(r));
            m.insert("status".into(), json!(e.status.as_str()));
            m.insert(t.kind.item_key().into(), self.title_json(t, Extended::Full));
            rows.push(Value::Object(m));
        }
        let mut m = BTreeMap::new();
        m.insert(kind, rows);
        Reply::json(200, Self::bucketed(m))
    }

    /// The request's items per catalog: `(array key, kinds it may hold, items)`.
    fn groups(body: &Value) -> Vec<(&'static str, &'static [SimklType], Vec<Value>)> {
        const MOVIES: &[SimklType] = &[SimklType::Movies];
        const SHOWS: &[SimklType] = &[SimklType::Shows, SimklType::Anime];
        let arr = |k: &str| {
            body.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        vec![
            ("movies", MOVIES, arr("movies")),
            ("shows", SHOWS, arr("shows")),
            ("anime", SHOWS, arr("anime")),
        ]
    }

    fn write_reply(&self, v: Value) -> Reply {
        if self.empty_write_bodies {
            Reply {
                status: 201,
                body: Body::Empty,
                headers: Vec::new(),
            }
        } else {
            Reply::json(201, v)
        }
    }

    fn add_to_list(&mut self, body: &Value) -> Reply {
        if body.get("to").is_some()
            && Self::groups(body)
                .iter()
                .all(|g| g.2.iter().all(|i| i.get("to").is_none()))
        {
            return Reply::error(400, "empty_field", "Missed \"to\" parameter");
        }
        let now = self.tick();
        let mut added: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(to) = it.get("to").and_then(Value::as_str) else {
                    return Reply::error(400, "empty_field", "Missed \"to\" parameter");
                };
                let Some(mut status) = ListStatus::parse(to) else {
                    return Reply::error(400, "wrong_parameter", "unknown status");
                };
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let kind = self.catalog[idx].kind;
                if kind == SimklType::Movies {
                    match status {
                        ListStatus::Watching => status = ListStatus::Completed,
                        ListStatus::Hold => {
                            not_found.entry(out_key).or_default().push(it.clone());
                            continue;
                        }
                        _ => {}
                    }
                }
                self.set_status(idx, status, now);
                added.entry(out_key).or_default().push(json!({
                    "to": status.as_str(),
                    "ids": {"simkl": self.catalog[idx].simkl_id},
                    "type": kind.item_key(),
                }));
            }
        }
        let mut added = added;
        let mut not_found = not_found;
        self.write_reply(json!({
            "added": {
                "movies": added.remove("movies").unwrap_or_default(),
                "shows": added.remove("shows").unwrap_or_default(),
            },
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }

    fn history_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let (mut movies, mut shows, mut episodes) = (0u64, 0u64, 0u64);
        let mut statuses = Vec::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let t = self.catalog[idx].clone();
                let at = parse_ts(it.get("watched_at")).unwrap_or(now);
                let old = self.library.get(&t.simkl_id).map(|e| e.status);
                let entry = self
                    .library
                    .entry(t.simkl_id)
                    .or_insert_with(|| LibraryEntry::new(ListStatus::Completed, now));
                if t.kind == SimklType::Movies {
                    entry.status = ListStatus::Completed;
                    entry.last_watched_at = Some(at);
                    movies += 1;
                } else {
                    let mut marks: Vec<(u32, u32, i64)> = Vec::new();
                    let seasons = it.get("seasons").and_then(Value::as_array);
                    let flat = it.get("episodes").and_then(Value::as_array);
                    if let Some(seasons) = seasons {
                        for s in seasons {
                            let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                                continue;
                            };
                            let s_at = parse_ts(s.get("watched_at")).unwrap_or(at);
                            match s.get("episodes").and_then(Value::as_array) {
                                Some(eps) => {
                                    for e in eps {
                                        if let Some(en) = e.get("number").and_then(Value::as_u64) {
                                            let e_at =
                                                parse_ts(e.get("watched_at")).unwrap_or(s_at);
                                            marks.push((sn as u32, en as u32, e_at));
                                        }
                                    }
                                }
                                None => {
                                    for (s2, e2) in t.all_episodes() {
                                        if s2 == sn as u32 {
                                            marks.push((s2, e2, s_at));
                                        }
                                    }
                                }
                            }
                        }
                    } else if let Some(eps) = flat {
                        for e in eps {
                            if let Some(en) = e.get("number").and_then(Value::as_u64) {
                                let e_at = parse_ts(e.get("watched_at")).unwrap_or(at);
                                marks.push((1, en as u32, e_at));
                            }
                        }
                    } else if it.get("status").and_then(Value::as_str) == Some("completed") {
                        marks.extend(t.all_episodes().into_iter().map(|(s, e)| (s, e, at)));
                    }
                    for (s, e, a) in marks {
                        if t.has_episode(s, e) {
                            entry.episodes.insert((s, e), a);
                            episodes += 1;
                        }
                    }
                    if entry.episodes.is_empty() && old.is_none() {
                        entry.status = ListStatus::Watching;
                    }
                    refresh_show(&t, entry);
                    shows += 1;
                }
                entry.updated_at = now;
                let new = entry.status;
                statuses.push(json!({
                    "request": it,
                    "response": {"status": new.as_str(), "simkl_type": if t.kind == SimklType::Movies {"movie"} else {"tv"}},
                }));
                self.touch_status(t.kind, old, Some(new));
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "added": {"movies": movies, "shows": shows, "episodes": episodes, "statuses": statuses},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
                "episodes": [],
            },
        }))
    }

    fn history_remove(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let ignore = self.ignore_removals > 0;
        if ignore {
            self.ignore_removals -= 1;
        }
        let (mut movies, mut shows, mut episodes) = (0u64, 0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let t = self.catalog[idx].clone();
                let Some(entry) = self.library.get(&t.simkl_id).cloned() else {
                    continue;
                };
                let seasons = it.get("seasons").and_then(Value::as_array);
                let flat = it.get("episodes").and_then(Value::as_array);
                if t.kind == SimklType::Movies || (seasons.is_none() && flat.is_none()) {
                    if t.kind == SimklType::Movies {
                        movies += 1;
                    } else {
                        shows += 1;
                    }
                    if !ignore {
                        self.library.remove(&t.simkl_id);
                        self.touch(t.kind, entry.status.as_str());
                        self.touch(t.kind, "removed_from_list");
                        if entry.rating.is_some() {
                            self.touch(t.kind, "rated_at");
                        }
                    }
                    continue;
                }
                let mut drop: Vec<(u32, u32)> = Vec::new();
                if let Some(seasons) = seasons {
                    for s in seasons {
                        let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                            continue;
                        };
                        match s.get("episodes").and_then(Value::as_array) {
                            Some(eps) => drop.extend(
                                eps.iter()
                                    .filter_map(|e| e.get("number").and_then(Value::as_u64))
                                    .map(|en| (sn as u32, en as u32)),
                            ),
                            None => drop.extend(
                                entry
                                    .episodes
                                    .keys()
                                    .filter(|(s2, _)| *s2 == sn as u32)
                                    .copied(),
                            ),
                        }
                    }
                } else if let Some(eps) = flat {
                    drop.extend(
                        eps.iter()
                            .filter_map(|e| e.get("number").and_then(Value::as_u64))
                            .map(|en| (1, en as u32)),
                    );
                }
                let hits = drop
                    .iter()
                    .filter(|k| entry.episodes.contains_key(k))
                    .count();
                episodes += hits as u64;
                if !ignore
                    && hits > 0
                    && let Some(e) = self.library.get_mut(&t.simkl_id)
                {
                    for k in &drop {
                        e.episodes.remove(k);
                    }
                    refresh_show(&t, e);
                    e.updated_at = now;
                    let new = e.status;
                    self.touch_status(t.kind, Some(entry.status), Some(new));
                }
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "deleted": {"movies": movies, "shows": shows, "episodes": episodes},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }

    fn ratings_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let (mut movies, mut shows) = (0u64, 0u64);
        let mut statuses = Vec::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                // Out-of-range ratings are silently ignored, as on SIMKL.
                let Some(rating) = it
                    .get("rating")
                    .and_then(Value::as_u64)
                    .filter(|r| (1..=10).contains(r))
                else {
                    continue;
                };
                let t = self.catalog[idx].clone();
                let at = parse_ts(it.get("rated_at")).unwrap_or(now);
                let old = self.library.get(&t.simkl_id).map(|e| e.status);
                let filed = if t.kind == SimklType::Movies {
                    ListStatus::Completed
                } else {
                    ListStatus::Watching
                };
                let e = self
                    .library
                    .entry(t.simkl_id)
                    .or_insert_with(|| LibraryEntry::new(filed, now));
                e.rating = Some(rating as u8);
                e.rated_at = Some(at);
                e.updated_at = now;
                let new = e.status;
                if old.is_none() {
                    self.touch_status(t.kind, None, Some(new));
                }
                self.touch(t.kind, "rated_at");
                if t.kind == SimklType::Movies {
                    movies += 1;
                } else {
                    shows += 1;
                }
                statuses.push(json!({"request": it, "response": {"status": new.as_str()}}));
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "added": {"movies": movies, "shows": shows, "statuses": statuses},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }

    fn ratings_remove(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let (mut movies, mut shows) = (0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for (key, kinds, items) in Self::groups(body) {
            let out_key = if key == "movies" { "movies" } else { "shows" };
            for it in items {
                let Some(idx) = it.get("ids").and_then(|ids| self.resolve(ids, kinds)) else {
                    not_found.entry(out_key).or_default().push(it.clone());
                    continue;
                };
                let t = self.catalog[idx].clone();
                // `deleted` counts matched items, not items that had a rating.
                if t.kind == SimklType::Movies {
                    movies += 1;
                } else {
                    shows += 1;
                }
                if let Some(e) = self.library.get_mut(&t.simkl_id)
                    && e.rating.is_some()
                {
                    e.rating = None;
                    e.rated_at = None;
                    e.updated_at = now;
                    self.touch(t.kind, "rated_at");
                }
            }
        }
        let mut not_found = not_found;
        self.write_reply(json!({
            "deleted": {"movies": movies, "shows": shows},
            "not_found": {
                "movies": not_found.remove("movies").unwrap_or_default(),
                "shows": not_found.remove("shows").unwrap_or_default(),
            },
        }))
    }
}

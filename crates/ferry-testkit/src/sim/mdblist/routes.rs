//! How the simulated MDBList answers each request: the key, the daily quota, the paged
//! reads (shaped by the shared fault knobs), the journal and the writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ferry_core::Timestamp;
use serde_json::{Map, Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::sim::knobs::{self, Fault, ListFault, TotalOut, fault_response};

use super::state::{Extra, MdbKind, MdbState, Play, lock, parse_ts, ts};
use super::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};

/// `(is an episode, catalog index, episode)`: one movie or episode of the history.
type PlayKey = (bool, usize, Option<(u32, u32)>);

// ---------------------------------------------------------------------------------------

struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Self {
        Reply {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    fn error(status: u16, msg: &str) -> Self {
        Reply::json(status, &json!({"error": msg}))
    }

    fn template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status);
        if !self.body.is_empty() {
            t = t.set_body_raw(self.body, "application/json");
        }
        for (k, v) in &self.headers {
            t = t.insert_header(*k, v.as_str());
        }
        t
    }
}

#[derive(Debug)]
pub(super) struct Router(pub(super) Arc<Mutex<MdbState>>);

impl Respond for Router {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        let lie = st.take_extra(&seen.path) == Some(Extra::HasMoreLies);
        seen.answer_list(|method, path, fault| st.answer(req, method, path, fault, lie))
    }
}

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn arr<'v>(body: &'v Value, key: &str) -> &'v [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `limit` and `offset` from the query.
fn window(q: &HashMap<String, String>) -> (usize, usize) {
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT);
    let offset = q
        .get("offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    (limit, offset)
}

/// A whole list as rows tagged with the list (`movies`, `shows`, …) they are sent in;
/// [`Listing::answer`] cuts one page of it.
struct Listing {
    rows: Vec<(&'static str, Value)>,
    lists: &'static [&'static str],
    /// Lists the answer always carries, empty.
    empty: &'static [&'static str],
    totals: bool,
}

impl Listing {
    fn new(lists: &'static [&'static str], empty: &'static [&'static str], totals: bool) -> Self {
        Listing {
            rows: Vec::new(),
            lists,
            empty,
            totals,
        }
    }

    fn push(&mut self, list: &'static str, row: Value) {
        self.rows.push((list, row));
    }

    /// The page `[offset, offset+limit)`: its rows by list and a pagination block with
    /// `has_more` and a `total_<list>` per list, shaped by the request's list fault (the
    /// total of a damaged page is rendered on every `total_*`).
    fn answer(self, q: &HashMap<String, String>, fault: &ListFault, lie: bool) -> Reply {
        let (limit, offset) = window(q);
        let n = self.rows.len();
        let has_more = offset.saturating_add(limit) < n;
        let (start, end) = knobs::window(n, offset, Some(limit), fault.truncates());
        let mut totals: BTreeMap<&str, usize> = self.lists.iter().map(|l| (*l, 0)).collect();
        for (l, _) in &self.rows {
            *totals.entry(l).or_default() += 1;
        }
        let page: Vec<(&str, Value)> = self
            .rows
            .into_iter()
            .skip(start)
            .take(end - start)
            .collect();
        let (lists, values): (Vec<&str>, Vec<Value>) = page.into_iter().unzip();
        let (values, total) = fault.shape(values, n);
        let mut body = Map::new();
        for l in self.lists.iter().chain(self.empty) {
            body.insert((*l).to_owned(), json!([]));
        }
        for (l, v) in lists.into_iter().zip(values) {
            if let Some(Value::Array(a)) = body.get_mut(l) {
                a.push(v);
            }
        }
        let mut p = Map::new();
        p.insert("offset".into(), json!(offset));
        p.insert("limit".into(), json!(limit));
        p.insert("has_more".into(), json!(has_more && !lie));
        if self.totals {
            for (l, count) in totals {
                let v = match &total {
                    TotalOut::Exact(_) => Some(json!(count)),
                    other => other.json(),
                };
                if let Some(v) = v {
                    p.insert(format!("total_{l}"), v);
                }
            }
        }
        // The pagination block is what declares the list's extent (`has_more` and the
        // totals): a page whose declaration is missing has none.
        if total != TotalOut::Missing {
            body.insert("pagination".into(), Value::Object(p));
        }
        Reply::json(200, &Value::Object(body))
    }
}

impl MdbState {
    fn rate_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("X-RateLimit-Limit", self.quota.to_string()),
            (
                "X-RateLimit-Remaining",
                self.quota.saturating_sub(self.used).to_string(),
            ),
            (
                "X-RateLimit-Reset",
                (86_400 - self.now.rem_euclid(86_400)).to_string(),
            ),
        ]
    }

    /// The key (or bearer) first, then the daily quota, then the route.
    fn answer(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
        lie: bool,
    ) -> ResponseTemplate {
        let key_ok = query(req).get("apikey").is_some_and(|k| *k == self.api_key);
        let bearer_ok = self.bearer.as_deref().is_some_and(|b| {
            req.headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                == Some(b)
        });
        if !key_ok && !bearer_ok {
            return Reply::error(401, "Invalid API key").template();
        }
        if self.used >= self.quota {
            // Past the quota the knobs' 429 answers, waiting for the quota's reset.
            let reset = 86_400 - self.now.rem_euclid(86_400);
            let limited = Fault::RateLimited {
                retry_after_secs: u64::try_from(reset).unwrap_or(86_400),
            };
            let mut t = fault_response(&limited).unwrap_or_else(|| ResponseTemplate::new(429));
            for (k, v) in self.rate_headers() {
                t = t.insert_header(k, v.as_str());
            }
            return t;
        }
        self.route(req, method, path, fault, lie).template()
    }

    fn route(
        &mut self,
        req: &Request,
        method: &str,
        path: &str,
        fault: &ListFault,
        lie: bool,
    ) -> Reply {
        let q = query(req);
        self.used += 1;
        let body: Option<Value> = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .filter(Value::is_object);
        let mut reply = match (method, path.trim_end_matches('/')) {
            ("GET", "/user") => Reply::json(
                200,
                &json!({
                    "user_id": 1,
                    "username": "ferry-sim",
                    "patron_status": "former",
                    "api_requests": self.quota,
                    "api_requests_count": self.used,
                }),
            ),
            ("GET", "/sync/last_activities") => Reply::json(200, &self.activities_json()),
            ("GET", "/sync/journal") => self.journal_page(&q),
            ("GET", "/watchlist/items") => self.watchlist_page(&q).answer(&q, fault, lie),
            ("GET", "/sync/ratings") => self.ratings_page(&q).answer(&q, fault, lie),
            ("GET", "/sync/watched") => self.watched_page(&q).answer(&q, fault, lie),
            ("POST", p) => match body {
                None => Reply::error(400, "Invalid JSON body"),
                Some(b) => match p {
                    "/watchlist/items/add" => self.watchlist_write(&b, true),
                    "/watchlist/items/remove" => self.watchlist_write(&b, false),
                    "/sync/ratings" => self.ratings_add(&b),
                    "/sync/ratings/remove" => self.ratings_remove(&b),
                    "/sync/watched" => self.watched_add(&b),
                    "/sync/watched/remove" => self.watched_remove(&b),
                    "/sync/watched/plays/remove" => self.plays_remove(&b),
                    _ => Reply::error(404, "Not found"),
                },
            },
            _ => Reply::error(404, "Not found"),
        };
        reply.headers.extend(self.rate_headers());
        reply
    }

    fn watchlist_page(&self, _q: &HashMap<String, String>) -> Listing {
        let mut l = Listing::new(&["movies", "shows"], &[], self.declare_totals);
        for (i, at) in &self.watchlist {
            let t = &self.catalog[*i];
            l.push(
                t.kind.plural(),
                json!({
                    "id": t.tmdb,
                    "title": t.title,
                    "imdb_id": t.imdb,
                    "tvdb_id": t.tvdb,
                    "trakt_id": t.trakt,
                    "mediatype": t.kind.as_str(),
                    "release_year": t.year,
                    "watchlisted_at": ts(Some(*at)),
                }),
            );
        }
        l
    }

    fn since(q: &HashMap<String, String>) -> Option<i64> {
        q.get("since")
            .and_then(|s| Timestamp::parse(s))
            .map(Timestamp::unix)
    }

    fn ratings_page(&self, q: &HashMap<String, String>) -> Listing {
        let since = Self::since(q);
        let mut l = Listing::new(
            &["movies", "shows"],
            &["seasons", "episodes"],
            self.declare_totals,
        );
        for (i, (r, at, changed)) in &self.ratings {
            if since.is_some_and(|s| *changed < s) {
                continue;
            }
            let t = &self.catalog[*i];
            match t.kind {
                MdbKind::Movie => l.push(
                    "movies",
                    json!({"rating": r, "rated_at": ts(Some(*at)), "movie": t.object_json()}),
                ),
                MdbKind::Show => l.push(
                    "shows",
                    json!({
                        "rating": r, "rated_at": ts(Some(*at)), "show": t.object_json(), "seasons": [],
                    }),
                ),
            }
        }
        l
    }

    fn watched_page(&self, q: &HashMap<String, String>) -> Listing {
        let since = Self::since(q);
        let all_plays = q.get("plays").is_some_and(|v| v == "all");
        let mut plays: Vec<&Play> = self
            .plays
            .iter()
            .filter(|p| since.is_none_or(|s| p.recorded_at >= s))
            .collect();
        plays.sort_by_key(|p| (p.episode.is_some(), p.play_id));
        // Without `plays=all`: one row per movie or episode, with its last play.
        let rows: Vec<(Play, usize)> = if all_plays {
            plays.into_iter().map(|p| (p.clone(), 1)).collect()
        } else {
            let mut agg: BTreeMap<PlayKey, (Play, usize)> = BTreeMap::new();
            for p in plays {
                let e = agg
                    .entry((p.episode.is_some(), p.title, p.episode))
                    .or_insert_with(|| (p.clone(), 0));
                e.1 += 1;
                if p.watched_at > e.0.watched_at {
                    e.0 = p.clone();
                }
            }
            agg.into_values().collect()
        };
        let mut l = Listing::new(
            &["movies", "episodes"],
            &["shows", "seasons"],
            self.declare_totals,
        );
        for (play, n) in rows {
            let t = &self.catalog[play.title];
            let mut row = Map::new();
            row.insert("watched_at".into(), ts(Some(play.watched_at)));
            row.insert("last_watched_at".into(), ts(Some(play.watched_at)));
            row.insert("plays".into(), json!(n));
            if all_plays {
                row.insert("play_id".into(), json!(play.play_id));
            }
            match play.episode {
                None => {
                    row.insert("movie".into(), t.object_json());
                    l.push("movies", Value::Object(row));
                }
                Some((s, e)) => {
                    let mut ep =
                        json!({"season": s, "number": e, "ids": {"tvdb": t.episode_tvdb(s, e)}});
                    if self.show_inside_episode {
                        ep["show"] = t.object_json();
                    } else {
                        row.insert("show".into(), t.object_json());
                    }
                    row.insert("episode".into(), ep);
                    l.push("episodes", Value::Object(row));
                }
            }
        }
        l
    }

    fn journal_page(&self, q: &HashMap<String, String>) -> Reply {
        let limit = q
            .get("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_PAGE_LIMIT)
            .clamp(1, MAX_PAGE_LIMIT);
        let since = Self::since(q);
        let start = q
            .get("cursor")
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or_else(|| {
                self.journal
                    .iter()
                    .position(|r| {
                        since.is_none_or(|s| parse_ts(r.get("action_at")).is_some_and(|a| a >= s))
                    })
                    .unwrap_or(self.journal.len())
            })
            .min(self.journal.len());
        let end = (start + limit).min(self.journal.len());
        let has_more = end < self.journal.len();
        Reply::json(
            200,
            &json!({
                "journal": self.journal[start..end].to_vec(),
                "pagination": {"has_more": has_more, "next_cursor": has_more.then(|| end.to_string())},
                "journal_oldest_at": self.journal.first().and_then(|r| r.get("action_at")).cloned(),
            }),
        )
    }

    fn watchlist_write(&mut self, body: &Value, add: bool) -> Reply {
        self.tick();
        let mut done: BTreeMap<&str, u64> = BTreeMap::new();
        let mut existing: BTreeMap<&str, u64> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for kind in [MdbKind::Movie, MdbKind::Show] {
            let key = kind.plural();
            for it in arr(body, key) {
                let Some(i) = self.resolve_flat(it, kind) else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                let pos = self.watchlist.iter().position(|(x, _)| *x == i);
                match (add, pos) {
                    (true, None) => {
                        let now = self.now;
                        self.watchlist.push((i, now));
                        self.record("watchlist", "added", i, None, None);
                        *done.entry(key).or_default() += 1;
                    }
                    (true, Some(_)) => *existing.entry(key).or_default() += 1,
                    (false, Some(p)) => {
                        self.watchlist.remove(p);
                        self.record("watchlist", "removed", i, None, None);
                        *done.entry(key).or_default() += 1;
                    }
                    (false, None) => {}
                }
            }
        }
        let counts = |m: &BTreeMap<&str, u64>| json!({"movies": m.get("movies").copied().unwrap_or(0), "shows": m.get("shows").copied().unwrap_or(0)});
        let nf = json!({
            "movies": not_found.get("movies").cloned().unwrap_or_default(),
            "shows": not_found.get("shows").cloned().unwrap_or_default(),
        });
        let v = if add {
            json!({"added": counts(&done), "existing": counts(&existing), "not_found": nf})
        } else {
            json!({"deleted": counts(&done), "not_found": nf})
        };
        Reply::json(200, &v)
    }

    fn ratings_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let mut added: BTreeMap<&str, u64> = BTreeMap::new();
        let mut updated: BTreeMap<&str, u64> = BTreeMap::new();
        let mut existing: BTreeMap<&str, u64> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for kind in [MdbKind::Movie, MdbKind::Show] {
            let key = kind.plural();
            for it in arr(body, key) {
                let Some(i) = it.get("ids").and_then(|ids| self.resolve(ids, kind)) else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                let Some(r) = it
                    .get("rating")
                    .and_then(Value::as_u64)
                    .filter(|r| (1..=10).contains(r))
                else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                let at = parse_ts(it.get("rated_at")).unwrap_or(now);
                match self.ratings.get(&i) {
                    Some((old, _, _)) if u64::from(*old) == r => {
                        *existing.entry(key).or_default() += 1;
                    }
                    Some(_) => {
                        self.ratings.insert(i, (r as u8, at, now));
                        self.record("rated", "updated", i, None, Some(r as u8));
                        *updated.entry(key).or_default() += 1;
                    }
                    None => {
                        self.ratings.insert(i, (r as u8, at, now));
                        self.record("rated", "added", i, None, Some(r as u8));
                        *added.entry(key).or_default() += 1;
                    }
                }
            }
        }
        let counts = |m: &BTreeMap<&str, u64>| json!({"movies": m.get("movies").copied().unwrap_or(0), "shows": m.get("shows").copied().unwrap_or(0), "seasons": 0, "episodes": 0});
        Reply::json(
            200,
            &json!({
                "added": counts(&added), "updated": counts(&updated), "existing": counts(&existing),
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                    "seasons": [], "episodes": [],
                },
            }),
        )
    }

    fn ratings_remove(&mut self, body: &Value) -> Reply {
        self.tick();
        let mut removed: BTreeMap<&str, u64> = BTreeMap::new();
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for kind in [MdbKind::Movie, MdbKind::Show] {
            let key = kind.plural();
            for it in arr(body, key) {
                let Some(i) = it.get("ids").and_then(|ids| self.resolve(ids, kind)) else {
                    not_found.entry(key).or_default().push(it.clone());
                    continue;
                };
                if self.ratings.remove(&i).is_some() {
                    self.record("rated", "removed", i, None, None);
                    *removed.entry(key).or_default() += 1;
                }
            }
        }
        Reply::json(
            200,
            &json!({
                "removed": {"movies": removed.get("movies").copied().unwrap_or(0), "shows": removed.get("shows").copied().unwrap_or(0), "seasons": 0, "episodes": 0},
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                },
            }),
        )
    }

    fn watched_add(&mut self, body: &Value) -> Reply {
        let now = self.tick();
        let mut plays = Vec::new();
        let (mut movies, mut episodes) = (0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for it in arr(body, "movies") {
            let Some(i) = it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Movie))
            else {
                not_found.entry("movies").or_default().push(it.clone());
                continue;
            };
            let at = parse_ts(it.get("watched_at")).unwrap_or(now);
            let (id, added) = self.add_play(i, None, at);
            movies += u64::from(added);
            plays.push(json!({"play_id": id, "added": added, "mediatype": "movie", "ids": self.catalog[i].ids_json(), "watched_at": ts(Some(at))}));
        }
        for it in arr(body, "shows") {
            let Some(i) = it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Show))
            else {
                not_found.entry("shows").or_default().push(it.clone());
                continue;
            };
            let show_at = parse_ts(it.get("watched_at")).unwrap_or(now);
            let mut marks = Vec::new();
            for s in arr(it, "seasons") {
                let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                    continue;
                };
                let s_at = parse_ts(s.get("watched_at")).unwrap_or(show_at);
                for e in arr(s, "episodes") {
                    if let Some(en) = e.get("number").and_then(Value::as_u64) {
                        marks.push((
                            sn as u32,
                            en as u32,
                            parse_ts(e.get("watched_at")).unwrap_or(s_at),
                        ));
                    }
                }
            }
            for (s, e, at) in marks {
                if !self.catalog[i].has_episode(s, e) {
                    not_found
                        .entry("episodes")
                        .or_default()
                        .push(json!({"season": s, "number": e}));
                    continue;
                }
                let (id, added) = self.add_play(i, Some((s, e)), at);
                episodes += u64::from(added);
                plays.push(json!({"play_id": id, "added": added, "mediatype": "episode", "season": s, "episode": e, "watched_at": ts(Some(at))}));
            }
        }
        Reply::json(
            200,
            &json!({
                "added": {"movies": movies, "episodes": episodes},
                "plays": plays,
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                    "episodes": not_found.get("episodes").cloned().unwrap_or_default(),
                },
            }),
        )
    }

    fn watched_remove(&mut self, body: &Value) -> Reply {
        self.tick();
        let (mut movies, mut episodes) = (0u64, 0u64);
        let mut not_found: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for it in arr(body, "movies") {
            match it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Movie))
            {
                Some(i) => movies += self.drop_plays(|p| !(p.title == i && p.episode.is_none())),
                None => not_found.entry("movies").or_default().push(it.clone()),
            }
        }
        for it in arr(body, "shows") {
            let Some(i) = it
                .get("ids")
                .and_then(|ids| self.resolve(ids, MdbKind::Show))
            else {
                not_found.entry("shows").or_default().push(it.clone());
                continue;
            };
            let seasons = arr(it, "seasons");
            if seasons.is_empty() {
                episodes += self.drop_plays(|p| p.title != i);
                continue;
            }
            for s in seasons {
                let Some(sn) = s.get("number").and_then(Value::as_u64) else {
                    continue;
                };
                let eps: Vec<u32> = arr(s, "episodes")
                    .iter()
                    .filter_map(|e| e.get("number").and_then(Value::as_u64))
                    .map(|e| e as u32)
                    .collect();
                episodes += self.drop_plays(|p| {
                    !(p.title == i
                        && p.episode.is_some_and(|(ps, pe)| {
                            ps == sn as u32 && (eps.is_empty() || eps.contains(&pe))
                        }))
                });
            }
        }
        Reply::json(
            200,
            &json!({
                "removed": {"movies": movies, "episodes": episodes},
                "not_found": {
                    "movies": not_found.get("movies").cloned().unwrap_or_default(),
                    "shows": not_found.get("shows").cloned().unwrap_or_default(),
                },
            }),
        )
    }

    fn plays_remove(&mut self, body: &Value) -> Reply {
        self.tick();
        let ids: Vec<u64> = arr(body, "play_ids")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let mut missing = Vec::new();
        let mut removed = 0u64;
        for id in ids {
            if self.plays.iter().any(|p| p.play_id == id) {
                removed += self.drop_plays(|p| p.play_id != id);
            } else {
                missing.push(id);
            }
        }
        Reply::json(
            200,
            &json!({"removed": {"plays": removed}, "not_found": {"play_ids": missing}}),
        )
    }
}

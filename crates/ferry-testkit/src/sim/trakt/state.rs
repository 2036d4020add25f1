//! The simulated account's data and Trakt's rules for it: tokens and the device flow,
//! rate limits, account limits, the sync lists, history, playback and personal lists,
//! and the write handlers that change them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_core::{MediaType, Timestamp};
use serde_json::{Map, Value, json};
use wiremock::ResponseTemplate;

use super::catalog::{Catalog, Title, bucket_of};
use super::{TraktLimits, TraktSimConfig};

/// The largest page Trakt serves; a larger `limit` is clamped (as Trakt does since 2026).
pub(crate) const MAX_PAGE: u64 = 250;
/// The page size when no `limit` is sent: Trakt's forced pagination returns 100 rows.
pub(crate) const DEFAULT_PAGE: u64 = 100;
/// `📄 Pagination` endpoints (history) default to 10 rows per page.
pub(crate) const DEFAULT_HISTORY_PAGE: u64 = 10;

pub(crate) type Key = (MediaType, u64);

#[derive(Debug, Clone)]
pub(crate) struct ListRow {
    pub(crate) id: u64,
    pub(crate) key: Key,
    pub(crate) listed_at: i64,
    pub(crate) notes: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RatingRow {
    pub(crate) key: Key,
    pub(crate) rating: u8,
    pub(crate) rated_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PlayRow {
    pub(crate) id: u64,
    pub(crate) key: Key,
    /// Milliseconds since the epoch.
    pub(crate) watched_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PlaybackRow {
    pub(crate) id: u64,
    pub(crate) key: Key,
    pub(crate) progress: f64,
    pub(crate) paused_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct UserList {
    pub(crate) id: u64,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) privacy: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) items: Vec<ListRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    Used,
    Expired,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) created: Instant,
    pub(crate) expires_in: u64,
    pub(crate) status: DeviceStatus,
    pub(crate) polls: u32,
}

/// Which list a list-shaped write goes to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Watchlist,
    List(usize),
}

#[derive(Debug)]
pub struct State {
    pub(crate) cfg: TraktSimConfig,
    pub(crate) catalog: Catalog,
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) token_expired: bool,
    pub(crate) token_gen: u64,
    pub(crate) devices: Vec<DeviceCode>,
    pub(crate) device_auto_approve: Option<u32>,
    /// Seconds the device flow asks clients to wait between polls (Trakt: 5).
    pub(crate) device_interval: u64,
    pub(crate) device_slow_down: u32,
    pub(crate) watchlist: Vec<ListRow>,
    pub(crate) ratings: Vec<RatingRow>,
    pub(crate) history: Vec<PlayRow>,
    pub(crate) playback: Vec<PlaybackRow>,
    pub(crate) lists: Vec<UserList>,
    activities: BTreeMap<&'static str, i64>,
    last_ms: i64,
    next_id: u64,
    gets: VecDeque<Instant>,
    last_write: Option<Instant>,
    /// `429` answers sent so far (rate limits, slowed-down device polls, injected faults).
    pub(crate) too_many: u64,
}

const ACTIVITY_FIELDS: &[(&str, &[&str])] = &[
    (
        "movies",
        &[
            "watched_at",
            "collected_at",
            "rated_at",
            "watchlisted_at",
            "favorited_at",
            "commented_at",
            "paused_at",
            "hidden_at",
        ],
    ),
    (
        "episodes",
        &[
            "watched_at",
            "collected_at",
            "rated_at",
            "watchlisted_at",
            "commented_at",
            "paused_at",
        ],
    ),
    (
        "shows",
        &[
            "rated_at",
            "watchlisted_at",
            "favorited_at",
            "commented_at",
            "hidden_at",
        ],
    ),
    (
        "seasons",
        &["rated_at", "watchlisted_at", "commented_at", "hidden_at"],
    ),
    ("comments", &["liked_at", "blocked_at"]),
    ("lists", &["liked_at", "updated_at", "commented_at"]),
    ("watchlist", &["updated_at"]),
    ("favorites", &["updated_at"]),
    (
        "account",
        &[
            "settings_at",
            "followed_at",
            "following_at",
            "pending_at",
            "requested_at",
        ],
    ),
    ("saved_filters", &["updated_at"]),
    ("notes", &["updated_at"]),
];

fn activity_key(group: &str, field: &str) -> Option<&'static str> {
    ACTIVITY_KEYS
        .iter()
        .find(|k| k.split_once('.') == Some((group, field)))
        .copied()
}

const ACTIVITY_KEYS: &[&str] = &[
    "movies.watched_at",
    "movies.collected_at",
    "movies.rated_at",
    "movies.watchlisted_at",
    "movies.favorited_at",
    "movies.commented_at",
    "movies.paused_at",
    "movies.hidden_at",
    "episodes.watched_at",
    "episodes.collected_at",
    "episodes.rated_at",
    "episodes.watchlisted_at",
    "episodes.commented_at",
    "episodes.paused_at",
    "shows.rated_at",
    "shows.watchlisted_at",
    "shows.favorited_at",
    "shows.commented_at",
    "shows.hidden_at",
    "seasons.rated_at",
    "seasons.watchlisted_at",
    "seasons.commented_at",
    "seasons.hidden_at",
    "comments.liked_at",
    "comments.blocked_at",
    "lists.liked_at",
    "lists.updated_at",
    "lists.commented_at",
    "watchlist.updated_at",
    "favorites.updated_at",
    "account.settings_at",
    "account.followed_at",
    "account.following_at",
    "account.pending_at",
    "account.requested_at",
    "saved_filters.updated_at",
    "notes.updated_at",
];

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Trakt's timestamp format: `2024-01-02T03:04:05.000Z`.
pub(crate) fn fmt_ms(ms: i64) -> String {
    let base = Timestamp::from_unix(ms.div_euclid(1000)).to_rfc3339();
    format!("{}.{:03}Z", base.trim_end_matches('Z'), ms.rem_euclid(1000))
}

pub(super) fn parse_ms(s: &str) -> Option<i64> {
    let t = Timestamp::parse(s)?;
    // Keep the milliseconds when the string has them.
    let frac = s
        .split_once('.')
        .map(|(_, r)| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .chain("000".chars())
                .take(3)
                .collect::<String>()
        })
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    Some(t.unix() * 1000 + frac)
}

pub(super) fn json_resp(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

pub(super) fn error(status: u16, error: &str, description: &str) -> ResponseTemplate {
    json_resp(
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn counts(kinds: &[&str]) -> Map<String, Value> {
    kinds.iter().map(|k| ((*k).to_owned(), json!(0))).collect()
}

fn bump(m: &mut Map<String, Value>, k: &str) {
    let n = m.get(k).and_then(Value::as_u64).unwrap_or(0);
    m.insert(k.to_owned(), json!(n + 1));
}

pub(super) const FOUR: [&str; 4] = ["movies", "shows", "seasons", "episodes"];

fn not_found_obj(with_ids: bool) -> Map<String, Value> {
    let mut m: Map<String, Value> = FOUR.iter().map(|k| ((*k).to_owned(), json!([]))).collect();
    if with_ids {
        m.insert("ids".into(), json!([]));
    }
    m
}

fn push_nf(nf: &mut Map<String, Value>, bucket: &str, v: Value) {
    if let Some(Value::Array(a)) = nf.get_mut(bucket) {
        a.push(v);
    }
}

/// What a sync body resolved to: titles with their per-item fields, and Trakt's
/// `not_found` object.
struct Resolved {
    titles: Vec<(Title, Map<String, Value>)>,
    not_found: Map<String, Value>,
}

fn extras_of(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "ids" | "title" | "year" | "seasons" | "episodes" | "number"
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn merged(base: &Map<String, Value>, over: &Map<String, Value>) -> Map<String, Value> {
    let mut m = base.clone();
    for (k, v) in over {
        m.insert(k.clone(), v.clone());
    }
    m
}

fn echo(obj: &Value) -> Value {
    match obj.get("ids") {
        Some(ids) => json!({ "ids": ids }),
        None => json!({"title": obj.get("title"), "year": obj.get("year")}),
    }
}

impl State {
    pub(crate) fn new(cfg: TraktSimConfig) -> Self {
        let now = wall_ms();
        let activities = ACTIVITY_KEYS.iter().map(|k| (*k, now)).collect();
        State {
            access_token: cfg.access_token.clone(),
            refresh_token: cfg.refresh_token.clone(),
            cfg,
            catalog: Catalog::default(),
            token_expired: false,
            token_gen: 1,
            devices: Vec::new(),
            device_auto_approve: None,
            device_interval: 5,
            device_slow_down: 0,
            watchlist: Vec::new(),
            ratings: Vec::new(),
            history: Vec::new(),
            playback: Vec::new(),
            lists: Vec::new(),
            activities,
            last_ms: now,
            next_id: 1000,
            gets: VecDeque::new(),
            last_write: None,
            too_many: 0,
        }
    }

    /// A strictly increasing server time in milliseconds.
    pub(crate) fn now_ms(&mut self) -> i64 {
        self.last_ms = wall_ms().max(self.last_ms + 1);
        self.last_ms
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Advances the given activity timestamps (and `all`) to a fresh server time.
    pub(crate) fn touch(&mut self, keys: &[(&str, &str)]) {
        let now = self.now_ms();
        for (g, f) in keys {
            if let Some(k) = activity_key(g, f) {
                self.activities.insert(k, now);
            }
        }
    }

    fn activity(&self, key: &str) -> i64 {
        self.activities.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn last_activities(&self) -> Value {
        let mut out = Map::new();
        let all = self.activities.values().copied().max().unwrap_or(0);
        out.insert("all".into(), json!(fmt_ms(all)));
        for (group, fields) in ACTIVITY_FIELDS {
            let mut g = Map::new();
            for f in *fields {
                g.insert(
                    (*f).to_owned(),
                    json!(fmt_ms(self.activity(&format!("{group}.{f}")))),
                );
            }
            out.insert((*group).to_owned(), Value::Object(g));
        }
        Value::Object(out)
    }

    pub(crate) fn settings(&self) -> Value {
        let l = self.cfg.limits;
        json!({
            "user": {
                "username": "sim",
                "private": false,
                "name": "Ferry Simulator",
                "vip": self.cfg.vip,
                "vip_ep": false,
                "ids": {"slug": "sim", "uuid": "00000000-0000-4000-8000-000000000001"},
                "joined_at": "2020-01-01T00:00:00.000Z",
                "location": "",
                "about": "",
                "gender": "",
                "age": null,
                "images": {"avatar": {"full": "https://example.invalid/avatar.png"}},
                "vip_og": false,
                "vip_years": 0
            },
            "account": {
                "timezone": "UTC",
                "date_format": "dmy",
                "time_24hr": true,
                "cover_image": null
            },
            "connections": {
                "facebook": false, "twitter": false, "mastodon": false, "google": false,
                "tumblr": false, "medium": false, "slack": false, "apple": false,
                "dropbox": false, "microsoft": false
            },
            "sharing_text": {"watching": "", "watched": "", "rated": ""},
            "browsing": {"watch_only_once": false},
            "limits": {
                "list": {"count": l.lists, "item_count": l.list_items},
                "watchlist": {"item_count": l.watchlist_items},
                "favorites": {"item_count": 50}
            }
        })
    }

    // -----------------------------------------------------------------------------------
    // Rate limits and auth.

    /// `Some(429)` when the request exceeds Trakt's authed limits.
    pub(crate) fn rate_check(&mut self, method: &str) -> Option<ResponseTemplate> {
        if !self.cfg.enforce_rate_limits {
            return None;
        }
        let now = Instant::now();
        if method == "GET" {
            let window = Duration::from_secs(300);
            while self
                .gets
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                self.gets.pop_front();
            }
            if self.gets.len() >= 1000 {
                let oldest = self.gets.front().copied().unwrap_or(now);
                let wait = window.saturating_sub(now.duration_since(oldest));
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Some(self.limited("AUTHED_API_GET_LIMIT", 300, 1000, secs.max(1)));
            }
            self.gets.push_back(now);
            None
        } else {
            // Trakt allows one write per second; a little slack absorbs network jitter.
            if self
                .last_write
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(900))
            {
                return Some(self.limited("AUTHED_API_POST_LIMIT", 1, 1, 1));
            }
            self.last_write = Some(now);
            None
        }
    }

    fn limited(&mut self, name: &str, period: u64, limit: u64, secs: u64) -> ResponseTemplate {
        self.too_many += 1;
        let until = fmt_ms(wall_ms() + secs as i64 * 1000);
        ResponseTemplate::new(429)
            .insert_header("Retry-After", secs.to_string().as_str())
            .insert_header(
                "X-Ratelimit",
                json!({"name": name, "period": period, "limit": limit, "remaining": 0, "until": until})
                    .to_string()
                    .as_str(),
            )
            .set_body_json(json!({"error": "Too Many Requests"}))
    }

    /// The `X-Ratelimit` header value for a successful GET.
    pub(crate) fn ratelimit_header(&self) -> String {
        json!({
            "name": "AUTHED_API_GET_LIMIT",
            "period": 300,
            "limit": 1000,
            "remaining": 1000usize.saturating_sub(self.gets.len()),
            "until": fmt_ms(wall_ms() + 300_000),
        })
        .to_string()
    }

    /// Rotates the token pair (a successful grant).
    pub(super) fn issue_tokens(&mut self) -> Value {
        self.token_gen += 1;
        self.access_token = format!("sim-access-{:04}-{}", self.token_gen, self.cfg.client_id);
        self.refresh_token = format!("sim-refresh-{:04}-{}", self.token_gen, self.cfg.client_id);
        self.token_expired = false;
        json!({
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": 7_776_000,
            "refresh_token": self.refresh_token,
            "scope": "public",
            "created_at": wall_ms() / 1000,
        })
    }

    // -----------------------------------------------------------------------------------
    // Titles.

    pub(super) fn title(&self, key: Key) -> Option<Title> {
        self.catalog.get(key.0, key.1)
    }

    // -----------------------------------------------------------------------------------
    // Request bodies.

    /// Resolves a sync body (`movies`, `shows` with optional `seasons[].episodes[]`,
    /// `seasons`, `episodes`). With `expand`, shows and seasons stand for their episodes
    /// (history); otherwise a show or season is itself the item (watchlist, ratings, lists).
    fn resolve(&self, body: &Value, expand: bool) -> Resolved {
        let mut titles = Vec::new();
        let mut nf = not_found_obj(false);
        let arr = |k: &str| {
            body.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for m in arr("movies") {
            match self.catalog.find(MediaType::Movie, &m) {
                Some(t) => titles.push((t, extras_of(&m))),
                None => push_nf(&mut nf, "movies", echo(&m)),
            }
        }
        for sh in arr("shows") {
            let Some(show) = self.catalog.find(MediaType::Show, &sh) else {
                push_nf(&mut nf, "shows", echo(&sh));
                continue;
            };
            let show_x = extras_of(&sh);
            let Some(seasons) = sh.get("seasons").and_then(Value::as_array) else {
                if expand {
                    for e in self.catalog.episodes(&show, None) {
                        titles.push((e, show_x.clone()));
                    }
                } else {
                    titles.push((show, show_x));
                }
                continue;
            };
            for se in seasons {
                let s = se.get("number").and_then(Value::as_u64).unwrap_or(0) as u32;
                let season_x = merged(&show_x, &extras_of(se));
                let missing = |nf: &mut Map<String, Value>, ep: Option<u64>| {
                    let mut season = json!({ "number": s });
                    if let Some(e) = ep {
                        season["episodes"] = json!([{ "number": e }]);
                    }
                    push_nf(
                        nf,
                        "shows",
                        json!({"ids": sh.get("ids"), "seasons": [season]}),
                    );
                };
                match se.get("episodes").and_then(Value::as_array) {
                    None => {
                        if self.catalog.child(&show, s, None).is_none() {
                            missing(&mut nf, None);
                        } else if expand {
                            for e in self.catalog.episodes(&show, Some(s)) {
                                titles.push((e, season_x.clone()));
                            }
                        } else if let Some(t) = self.catalog.child(&show, s, None) {
                            titles.push((t, season_x.clone()));
                        }
                    }
                    Some(eps) => {
                        for ep in eps {
                            let e = ep.get("number").and_then(Value::as_u64).unwrap_or(0);
                            match self.catalog.child(&show, s, Some(e as u32)) {
                                Some(t) => titles.push((t, merged(&season_x, &extras_of(ep)))),
                                None => missing(&mut nf, Some(e)),
                            }
                        }
                    }
                }
            }
        }
        for se in arr("seasons") {
            match self.catalog.find(MediaType::Season, &se) {
                Some(t) if expand => {
                    let x = extras_of(&se);
                    if let (Some(show), Some(s)) = (self.catalog.show_of(&t), t.season) {
                        for e in self.catalog.episodes(&show, Some(s)) {
                            titles.push((e, x.clone()));
                        }
                    }
                }
                Some(t) => titles.push((t, extras_of(&se))),
                None => push_nf(&mut nf, "seasons", echo(&se)),
            }
        }
        for ep in arr("episodes") {
            match self.catalog.find(MediaType::Episode, &ep) {
                Some(t) => titles.push((t, extras_of(&ep))),
                None => push_nf(&mut nf, "episodes", echo(&ep)),
            }
        }
        Resolved {
            titles,
            not_found: nf,
        }
    }

    // -----------------------------------------------------------------------------------
    // Watchlist and personal list items.

    pub(super) fn rows(&self, target: Target) -> &Vec<ListRow> {
        match target {
            Target::Watchlist => &self.watchlist,
            Target::List(i) => &self.lists[i].items,
        }
    }

    fn rows_mut(&mut self, target: Target) -> &mut Vec<ListRow> {
        match target {
            Target::Watchlist => &mut self.watchlist,
            Target::List(i) => &mut self.lists[i].items,
        }
    }

    fn list_meta(&self, target: Target) -> Value {
        let (updated, count) = match target {
            Target::Watchlist => (self.activity("watchlist.updated_at"), self.watchlist.len()),
            Target::List(i) => (self.lists[i].updated_at, self.lists[i].items.len()),
        };
        json!({"updated_at": fmt_ms(updated), "item_count": count})
    }

    pub(super) fn touch_list(&mut self, target: Target, buckets: &[&'static str]) {
        match target {
            Target::Watchlist => {
                let mut keys: Vec<(&str, &str)> = vec![("watchlist", "updated_at")];
                keys.extend(buckets.iter().map(|b| (*b, "watchlisted_at")));
                self.touch(&keys);
            }
            Target::List(i) => {
                let now = self.now_ms();
                self.lists[i].updated_at = now;
                self.touch(&[("lists", "updated_at")]);
            }
        }
    }

    pub(super) fn list_add(&mut self, target: Target, body: &Value) -> ResponseTemplate {
        let r = self.resolve(body, false);
        let mut added = counts(&FOUR);
        let mut existing = counts(&FOUR);
        let mut new: Vec<(Title, Map<String, Value>)> = Vec::new();
        for (t, x) in r.titles {
            let present = self.rows(target).iter().any(|row| row.key == t.key())
                || new.iter().any(|(n, _)| n.key() == t.key());
            if present {
                bump(&mut existing, t.bucket());
            } else {
                new.push((t, x));
            }
        }
        let limit = match target {
            Target::Watchlist => self.cfg.limits.watchlist_items,
            Target::List(_) => self.cfg.limits.list_items,
        };
        if !new.is_empty() && self.rows(target).len() + new.len() > limit {
            // Trakt rejects the whole request; nothing is added.
            return json_resp(
                420,
                json!({"error": "account_limit", "limit": limit, "upgrade_url": "https://trakt.tv/vip"}),
            )
            .insert_header("X-Upgrade-URL", "https://trakt.tv/vip");
        }
        let mut buckets = Vec::new();
        for (t, x) in new {
            let id = self.next_id();
            let listed_at = self.now_ms();
            let notes = x.get("notes").and_then(Value::as_str).map(str::to_owned);
            self.rows_mut(target).push(ListRow {
                id,
                key: t.key(),
                listed_at,
                notes,
            });
            bump(&mut added, t.bucket());
            if !buckets.contains(&t.bucket()) {
                buckets.push(t.bucket());
            }
        }
        if !buckets.is_empty() {
            self.touch_list(target, &buckets);
        }
        json_resp(
            201,
            json!({
                "added": added,
                "existing": existing,
                "not_found": r.not_found,
                "list": self.list_meta(target),
            }),
        )
    }

    pub(super) fn list_remove(&mut self, target: Target, body: &Value) -> ResponseTemplate {
        let r = self.resolve(body, false);
        let mut deleted = counts(&FOUR);
        let mut buckets = Vec::new();
        for (t, _) in r.titles {
            let rows = self.rows_mut(target);
            let before = rows.len();
            rows.retain(|row| row.key != t.key());
            if rows.len() < before {
                bump(&mut deleted, t.bucket());
                if !buckets.contains(&t.bucket()) {
                    buckets.push(t.bucket());
                }
            }
        }
        if !buckets.is_empty() {
            self.touch_list(target, &buckets);
        }
        json_resp(
            200,
            json!({
                "deleted": deleted,
                "not_found": r.not_found,
                "list": self.list_meta(target),
            }),
        )
    }

    pub(super) fn list_create(&mut self, body: &Value) -> ResponseTemplate {
        let Some(name) = body
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            return error(422, "validation_failed", "name is required");
        };
        if self.lists.len() >= self.cfg.limits.lists {
            return json_resp(
                420,
                json!({"error": "account_limit", "limit": self.cfg.limits.lists}),
            )
            .insert_header("X-Upgrade-URL", "https://trakt.tv/vip");
        }
        let base: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let mut slug = base.clone();
        let mut n = 1;
        while self.lists.iter().any(|l| l.slug == slug) {
            n += 1;
            slug = format!("{base}-{n}");
        }
        let id = self.next_id();
        let now = self.now_ms();
        let list = UserList {
            id,
            slug,
            name: name.to_owned(),
            description: body
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            privacy: body
                .get("privacy")
                .and_then(Value::as_str)
                .unwrap_or("private")
                .to_owned(),
            created_at: now,
            updated_at: now,
            items: Vec::new(),
        };
        let out = self.list_json(&list);
        self.lists.push(list);
        self.touch(&[("lists", "updated_at")]);
        json_resp(201, out)
    }

    // -----------------------------------------------------------------------------------
    // Ratings.

    pub(super) fn ratings_add(&mut self, body: &Value) -> ResponseTemplate {
        let mut r = self.resolve(body, false);
        let mut added = counts(&FOUR);
        let mut buckets = Vec::new();
        for (t, x) in std::mem::take(&mut r.titles) {
            let rating = x
                .get("rating")
                .and_then(Value::as_u64)
                .filter(|v| (1..=10).contains(v));
            let Some(rating) = rating else {
                push_nf(&mut r.not_found, t.bucket(), json!({ "ids": t.ids_json() }));
                continue;
            };
            let rated_at = x
                .get("rated_at")
                .and_then(Value::as_str)
                .and_then(parse_ms)
                .unwrap_or_else(|| self.now_ms());
            match self.ratings.iter_mut().find(|row| row.key == t.key()) {
                Some(row) => {
                    row.rating = rating as u8;
                    row.rated_at = rated_at;
                }
                None => self.ratings.push(RatingRow {
                    key: t.key(),
                    rating: rating as u8,
                    rated_at,
                }),
            }
            bump(&mut added, t.bucket());
            if !buckets.contains(&t.bucket()) {
                buckets.push(t.bucket());
            }
        }
        let keys: Vec<(&str, &str)> = buckets.iter().map(|b| (*b, "rated_at")).collect();
        self.touch(&keys);
        json_resp(201, json!({"added": added, "not_found": r.not_found}))
    }

    pub(super) fn ratings_remove(&mut self, body: &Value) -> ResponseTemplate {
        let r = self.resolve(body, false);
        let mut deleted = counts(&FOUR);
        let mut buckets = Vec::new();
        for (t, _) in r.titles {
            let before = self.ratings.len();
            self.ratings.retain(|row| row.key != t.key());
            if self.ratings.len() < before {
                bump(&mut deleted, t.bucket());
                if !buckets.contains(&t.bucket()) {
                    buckets.push(t.bucket());
                }
            }
        }
        let keys: Vec<(&str, &str)> = buckets.iter().map(|b| (*b, "rated_at")).collect();
        self.touch(&keys);
        json_resp(200, json!({"deleted": deleted, "not_found": r.not_found}))
    }

    // -----------------------------------------------------------------------------------
    // History.

    pub(super) fn history_add(&mut self, body: &Value) -> ResponseTemplate {
        let r = self.resolve(body, true);
        let mut added = counts(&["movies", "episodes"]);
        let mut buckets = Vec::new();
        let mut watched = Vec::new();
        for (t, x) in r.titles {
            if !matches!(t.kind, MediaType::Movie | MediaType::Episode) {
                continue;
            }
            // Trakt does not deduplicate plays: that is the client's job.
            let watched_at = x
                .get("watched_at")
                .and_then(Value::as_str)
                .and_then(parse_ms)
                .unwrap_or_else(|| self.now_ms());
            let id = self.next_id();
            self.history.push(PlayRow {
                id,
                key: t.key(),
                watched_at,
            });
            bump(&mut added, t.bucket());
            if !buckets.contains(&t.bucket()) {
                buckets.push(t.bucket());
            }
            watched.push(t);
        }
        let keys: Vec<(&str, &str)> = buckets.iter().map(|b| (*b, "watched_at")).collect();
        self.touch(&keys);
        self.unwatchlist_watched(&watched);
        json_resp(201, json!({"added": added, "not_found": r.not_found}))
    }

    /// Trakt takes a title off the watchlist once it is watched: the movie, the episode,
    /// and the show an episode belongs to (see the module docs for the sources). Stamps
    /// `watchlist.updated_at` like any watchlist change, only when something left.
    fn unwatchlist_watched(&mut self, watched: &[Title]) {
        let mut gone: Vec<Key> = Vec::new();
        for t in watched {
            gone.push(t.key());
            if t.kind == MediaType::Episode
                && let Some(show) = self.catalog.show_of(t)
            {
                gone.push(show.key());
            }
        }
        let mut buckets = Vec::new();
        self.watchlist.retain(|row| {
            let keep = !gone.contains(&row.key);
            if !keep && !buckets.contains(&bucket_of(row.key.0)) {
                buckets.push(bucket_of(row.key.0));
            }
            keep
        });
        if !buckets.is_empty() {
            self.touch_list(Target::Watchlist, &buckets);
        }
    }

    pub(super) fn history_remove(&mut self, body: &Value) -> ResponseTemplate {
        let r = self.resolve(body, true);
        let mut deleted = counts(&["movies", "episodes"]);
        let mut nf = r.not_found;
        nf.insert("ids".into(), json!([]));
        let mut buckets = Vec::new();
        let mut note = |deleted: &mut Map<String, Value>, key: Key| {
            let b = bucket_of(key.0);
            bump(deleted, b);
            if !buckets.contains(&b) {
                buckets.push(b);
            }
        };
        let ids: Vec<Value> = body
            .get("ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for id in ids {
            match id
                .as_u64()
                .and_then(|id| self.history.iter().position(|p| p.id == id))
            {
                Some(i) => {
                    let row = self.history.remove(i);
                    note(&mut deleted, row.key);
                }
                None => push_nf(&mut nf, "ids", id),
            }
        }
        for (t, _) in r.titles {
            let removed: Vec<PlayRow> = self
                .history
                .iter()
                .filter(|p| p.key == t.key())
                .cloned()
                .collect();
            self.history.retain(|p| p.key != t.key());
            for row in removed {
                note(&mut deleted, row.key);
            }
        }
        let keys: Vec<(&str, &str)> = buckets.iter().map(|b| (*b, "watched_at")).collect();
        self.touch(&keys);
        json_resp(200, json!({"deleted": deleted, "not_found": nf}))
    }

    // -----------------------------------------------------------------------------------
    // Playback.

    pub(super) fn scrobble_pause(&mut self, body: &Value) -> ResponseTemplate {
        let Some(progress) = body.get("progress").and_then(Value::as_f64) else {
            return error(422, "validation_failed", "progress is required");
        };
        if !(0.0..=100.0).contains(&progress) {
            return error(422, "validation_failed", "progress must be 0-100");
        }
        let title = if let Some(m) = body.get("movie") {
            self.catalog.find(MediaType::Movie, m)
        } else if let Some(ep) = body.get("episode") {
            let by_ids = ep
                .get("ids")
                .is_some()
                .then(|| self.catalog.find(MediaType::Episode, ep))
                .flatten();
            by_ids.or_else(|| {
                let show = self.catalog.find(MediaType::Show, body.get("show")?)?;
                let s = ep.get("season").and_then(Value::as_u64)? as u32;
                let e = ep.get("number").and_then(Value::as_u64)? as u32;
                self.catalog.child(&show, s, Some(e))
            })
        } else {
            None
        };
        let Some(t) = title else {
            return error(404, "not_found", "no such movie or episode");
        };
        let progress = (progress * 100.0).round() / 100.0;
        let now = self.now_ms();
        let id = match self.playback.iter_mut().find(|p| p.key == t.key()) {
            Some(p) => {
                p.progress = progress;
                p.paused_at = now;
                p.id
            }
            None => {
                let id = self.next_id();
                self.playback.push(PlaybackRow {
                    id,
                    key: t.key(),
                    progress,
                    paused_at: now,
                });
                id
            }
        };
        self.touch(&[(t.bucket(), "paused_at")]);
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("action".into(), json!("pause"));
        out.insert("progress".into(), json!(progress));
        out.insert(
            "sharing".into(),
            json!({"twitter": false, "mastodon": false, "tumblr": false}),
        );
        out.insert(t.type_name().into(), t.render(false));
        if let Some(show) = self.catalog.show_of(&t) {
            out.insert("show".into(), show.render(false));
        }
        json_resp(201, Value::Object(out))
    }

    /// Replaces the limits (tests of 420 handling).
    pub(crate) fn set_limits(&mut self, limits: TraktLimits) {
        self.cfg.limits = limits;
        self.touch(&[("account", "settings_at")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_milliseconds() {
        assert_eq!(fmt_ms(1_704_164_645_123), "2024-01-02T03:04:05.123Z");
        assert_eq!(
            parse_ms("2024-01-02T03:04:05.123Z"),
            Some(1_704_164_645_123)
        );
        assert_eq!(parse_ms("2024-01-02T03:04:05Z"), Some(1_704_164_645_000));
        assert_eq!(parse_ms("2024-01-02T03:04:05.1Z"), Some(1_704_164_645_100));
    }

    #[test]
    fn activity_keys_cover_the_table() {
        let mut n = 0;
        for (g, fs) in ACTIVITY_FIELDS {
            for f in *fs {
                assert!(activity_key(g, f).is_some(), "{g}.{f}");
                n += 1;
            }
        }
        assert_eq!(n, ACTIVITY_KEYS.len());
        assert_eq!(activity_key("movies", "nope"), None);
    }
}

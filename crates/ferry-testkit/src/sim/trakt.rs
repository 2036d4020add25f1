//! A stateful simulator of Trakt's API (`https://api.trakt.tv`), following Trakt's
//! published documentation where it and older notes disagree.
//!
//! One [`MockServer`] with one router over an in-memory account, so writes change later
//! reads:
//!
//! - **Headers**: every API request needs `trakt-api-key: <client id>` (else 403),
//!   `trakt-api-version: 2` (else 400) and `Authorization: Bearer <access token>` (else
//!   401). `/oauth/*` take the client id in the body instead.
//! - **Pagination**: `page`/`limit` with `X-Pagination-Page`, `-Limit`, `-Page-Count` and
//!   `-Item-Count`. `limit` is clamped to 250 (the header says what was applied); without
//!   `limit`, list endpoints serve 100 rows (Trakt's 2026 forced pagination) and history
//!   10 (the documented default). `GET /users/me/lists` is documented without
//!   pagination: it answers every list, without `X-Pagination-*` headers.
//! - **Sync**: `/sync/watchlist[/{type}]` (GET, POST, `/remove`), `/sync/ratings[/{type}]`,
//!   `/sync/history[/{type}[/{id}]]` with `start_at`/`end_at` (POST with `watched_at`,
//!   `/remove` by history ids or by title), `/sync/playback[/{type}]` and
//!   `DELETE /sync/playback/{id}`, progress writes through `POST /scrobble/pause`,
//!   `/sync/last_activities` (every timestamp advances, strictly monotonic, on each change).
//!   Write answers carry `added`/`existing`/`deleted`/`not_found` nested by type exactly
//!   as Trakt's. As Trakt documents, history is **not** deduplicated by the server.
//! - **Watched titles leave the watchlist**: a play added with `POST /sync/history` takes
//!   the movie, the episode and the episode's show off the watchlist, and stamps
//!   `watchlist.updated_at` (and the type's `watchlisted_at`) as any watchlist change
//!   does. Trakt does this itself: "Trakt already auto removes items from your watchlist
//!   after you watch them. It is a core Trakt feature." (rectifyer, Trakt,
//!   razzeee/script.trakt#460, 2019); Trakt's knowledge base, quoted in SimonVT/cathode#27
//!   (2017): "Trakt removes items from the watchlist once you've started watching them"
//!   (a show leaves once one of its episodes is watched); tknorris/salts#99: "That's by
//!   design. That's how the trakt watchlist works." Seeding ([`TraktSim::seed_history`])
//!   sets state directly and removes nothing. The simulator has no `/scrobble/stop`.
//! - **Lists**: `/users/me/lists` (GET, POST), `/users/me/lists/{id}` (GET, PUT, DELETE),
//!   `/items[/{type}]`, `/items/remove`, `/items/reorder`.
//! - **Limits**: `/users/settings` reports `limits` (free tier by default: 250 watchlist
//!   items, 5 lists, 250 items per list). A watchlist or list add that would exceed its
//!   limit is rejected whole with `420` and `X-Upgrade-URL`, as Trakt's docs describe;
//!   creating a list past the list count is a `420` too.
//! - **Rate limits** (on by default): 1000 GETs per 5 minutes and one POST/PUT/DELETE per
//!   second; beyond them `429` with `Retry-After` and Trakt's JSON `X-Ratelimit` header.
//! - **OAuth**: the device flow (`/oauth/device/code`, `/oauth/device/token` answering
//!   400 pending, 404, 409 used, 410 expired, 418 denied, 429 slow down) and refresh
//!   (`/oauth/token`, which rotates both tokens). [`TraktSim::expire_access_token`] makes
//!   the current token answer 401 until a refresh.
//!
//! Titles are the [`crate::samples`] (movies, shows with 5 seasons of 24 episodes), so ids
//! line up with the other simulators; unknown ids are `not_found`. Faults are scheduled
//! with [`FaultRule`]s through the shared knobs ([`FaultControl`]): whole answers
//! (statuses, 429s, expired tokens, empty, HTML or cut-off bodies) and list pages
//! (truncated, empty, an undecodable row, and a missing or invalid total, which damages
//! both `X-Pagination-Page-Count` and `-Item-Count`), plus latency.

//!
//! Layout: this module (the public handle: inspection, account and auth controls,
//! request accounting), `state` (the account's data and Trakt's rules for it),
//! `catalog` (the titles Trakt knows, by every id), `seed` (the starting credentials and
//! limits, and seeding the account), `routes` (how each request is answered; list pages
//! windowed and shaped by the kit).

mod catalog;
mod routes;
mod seed;
mod state;

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::{Item, MediaType, Timestamp};
use serde_json::Value;

use crate::sim::kit::{Host, Simulator};
pub use crate::sim::knobs::{Fault, FaultRule};
pub use seed::{TraktLimits, TraktSimConfig};
use state::{DeviceStatus, PlayRow, State};

/// A running Trakt simulator: the account's state behind the kit's host. Cheap to
/// clone; dropping the last clone stops the server.
pub type TraktSim = Host<State>;

impl TraktSim {
    /// Starts a simulator with these credentials and account settings
    /// ([`TraktSim::start`]: the defaults).
    pub async fn start_with(cfg: TraktSimConfig) -> TraktSim {
        Host::serve(State::new(cfg)).await
    }

    /// The base URL to configure instead of `https://api.trakt.tv`.
    pub fn uri(&self) -> String {
        Simulator::uri(self)
    }

    pub fn client_id(&self) -> String {
        self.with(|st| st.cfg.client_id.clone())
    }

    pub fn client_secret(&self) -> String {
        self.with(|st| st.cfg.client_secret.clone())
    }

    /// The access token the server accepts now (it rotates on every grant).
    pub fn access_token(&self) -> String {
        self.with(|st| st.access_token.clone())
    }

    /// The refresh token the server accepts now.
    pub fn refresh_token(&self) -> String {
        self.with(|st| st.refresh_token.clone())
    }

    // -----------------------------------------------------------------------------------
    // Inspection: what the account holds now, as ferry items.

    fn items_of(st: &State, keys: impl Iterator<Item = (MediaType, u64)>) -> Vec<Item> {
        keys.filter_map(|k| st.catalog.get(k.0, k.1))
            .map(|t| st.catalog.to_item(&t))
            .collect()
    }

    /// The watchlist in rank order.
    pub fn watchlist(&self) -> Vec<Item> {
        self.with(|st| Self::items_of(st, st.watchlist.iter().map(|r| r.key)))
    }

    pub fn ratings(&self) -> Vec<(Item, u8)> {
        self.with(|st| {
            st.ratings
                .iter()
                .filter_map(|r| {
                    let t = st.catalog.get(r.key.0, r.key.1)?;
                    Some((st.catalog.to_item(&t), r.rating))
                })
                .collect()
        })
    }

    /// Every play, oldest first.
    pub fn history(&self) -> Vec<(Item, Timestamp)> {
        self.with(|st| {
            let mut rows: Vec<&PlayRow> = st.history.iter().collect();
            rows.sort_by_key(|p| (p.watched_at, p.id));
            rows.into_iter()
                .filter_map(|p| {
                    let t = st.catalog.get(p.key.0, p.key.1)?;
                    Some((
                        st.catalog.to_item(&t),
                        Timestamp::from_unix(p.watched_at.div_euclid(1000)),
                    ))
                })
                .collect()
        })
    }

    /// Playback progress in percent.
    pub fn playback(&self) -> Vec<(Item, f64)> {
        self.with(|st| {
            st.playback
                .iter()
                .filter_map(|p| {
                    let t = st.catalog.get(p.key.0, p.key.1)?;
                    Some((st.catalog.to_item(&t), p.progress))
                })
                .collect()
        })
    }

    /// Personal lists by name, items in rank order.
    pub fn lists(&self) -> Vec<(String, Vec<Item>)> {
        self.with(|st| {
            st.lists
                .iter()
                .map(|l| {
                    (
                        l.name.clone(),
                        Self::items_of(st, l.items.iter().map(|r| r.key)),
                    )
                })
                .collect()
        })
    }

    /// The body `/sync/last_activities` would answer now.
    pub fn last_activities(&self) -> Value {
        self.with(|st| st.last_activities())
    }

    // -----------------------------------------------------------------------------------
    // Account and auth knobs.

    pub fn set_limits(&self, limits: TraktLimits) {
        self.with(|st| st.set_limits(limits));
    }

    pub fn set_vip(&self, vip: bool) {
        self.with(|st| st.cfg.vip = vip);
    }

    /// Turns Trakt's rate limits (and their 429s) on or off.
    pub fn enforce_rate_limits(&self, on: bool) {
        self.with(|st| st.cfg.enforce_rate_limits = on);
    }

    /// The current access token answers 401 until a refresh (`/oauth/token`).
    pub fn expire_access_token(&self) {
        self.with(|st| st.token_expired = true);
    }

    /// Approves the pending device code shown as `user_code`; false if there is none.
    pub fn approve_device(&self, user_code: &str) -> bool {
        self.set_device(user_code, DeviceStatus::Approved)
    }

    /// The user denies the device code (`418` on the next poll).
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.set_device(user_code, DeviceStatus::Denied)
    }

    fn set_device(&self, user_code: &str, status: DeviceStatus) -> bool {
        self.with(|st| {
            match st
                .devices
                .iter_mut()
                .find(|d| d.user_code == user_code && d.status == DeviceStatus::Pending)
            {
                Some(d) => {
                    d.status = status;
                    true
                }
                None => false,
            }
        })
    }

    /// Every pending device code is approved on its `polls`-th poll.
    pub fn auto_approve_devices_after(&self, polls: u32) {
        self.with(|st| st.device_auto_approve = Some(polls));
    }

    /// The poll interval new device codes ask for (Trakt says 5 s; tests and demos
    /// shorten it).
    pub fn set_device_interval(&self, secs: u64) {
        self.with(|st| st.device_interval = secs);
    }

    /// Every pending device code expires (`410` on the next poll).
    pub fn expire_device_codes(&self) {
        self.with(|st| {
            for d in st.devices.iter_mut() {
                if d.status == DeviceStatus::Pending {
                    d.status = DeviceStatus::Expired;
                }
            }
        })
    }

    /// The next `n` device-token polls answer `429` ("slow down").
    pub fn slow_down_device_polls(&self, n: u32) {
        self.with(|st| st.device_slow_down = n);
    }

    /// How many times the device code shown as `user_code` was polled.
    pub fn device_polls(&self, user_code: &str) -> u32 {
        self.with(|st| {
            st.devices
                .iter()
                .find(|d| d.user_code == user_code)
                .map_or(0, |d| d.polls)
        })
    }

    // -----------------------------------------------------------------------------------
    // Faults.

    /// Schedules a fault.
    pub fn inject(&self, rule: FaultRule) {
        self.knobs(|k| k.inject(rule));
    }

    /// The next `n` requests answer `status`.
    pub fn fail_next(&self, status: u16, n: u32) {
        self.inject(FaultRule::new(Fault::Status(status)).times(n));
    }

    /// The next `n` requests answer 429 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, retry_after_secs: u64, n: u32) {
        self.inject(FaultRule::new(Fault::RateLimited { retry_after_secs }).times(n));
    }

    /// The next request under `path_prefix` answers 200 with broken JSON.
    pub fn malformed_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Malformed).on(path_prefix));
    }

    /// The next list page under `path_prefix` serves half its rows while its
    /// `X-Pagination-Item-Count` still declares them all.
    pub fn truncate_next(&self, path_prefix: &str) {
        self.inject(FaultRule::new(Fault::Truncate).on(path_prefix));
    }

    /// Delays every answer.
    pub fn set_latency(&self, d: Duration) {
        self.knobs(|k| k.set_latency(d));
    }

    pub fn clear_faults(&self) {
        self.knobs(|k| k.clear_faults());
    }

    // -----------------------------------------------------------------------------------
    // Request accounting.

    /// Requests to exactly `path`, any method.
    pub fn requests(&self, path: &str) -> u64 {
        self.knobs(|k| k.requests(path))
    }

    /// Requests with `method` to exactly `path`.
    pub fn request_count(&self, method: &str, path: &str) -> u64 {
        self.knobs(|k| k.requests_to(method, path))
    }

    pub fn requests_under(&self, prefix: &str) -> u64 {
        self.knobs(|k| k.requests_under(prefix))
    }

    pub fn total_requests(&self) -> u64 {
        self.knobs(|k| k.total())
    }

    /// How many `429 Too Many Requests` the simulator has answered: past the rate limits,
    /// to slowed-down device polls and from injected faults. Not reset by
    /// [`TraktSim::reset_counts`].
    pub fn too_many_requests(&self) -> u64 {
        self.with(|st| st.too_many)
    }

    /// Every `METHOD /path` seen, with counts.
    pub fn routes(&self) -> BTreeMap<String, u64> {
        self.knobs(|k| k.routes())
    }

    pub fn reset_counts(&self) {
        self.knobs(|k| k.reset_counts());
    }
}

#[cfg(test)]
mod tests {
    //! The simulator over real HTTP (a minimal blocking HTTP/1.1 client: the server runs
    //! on its own thread).

    use std::io::{Read, Write};
    use std::net::TcpStream;

    use serde_json::{Value, json};

    use super::*;
    use crate::samples;
    use crate::sim::kit::FaultControl;

    struct Resp {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    }

    impl Resp {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    fn call(sim: &TraktSim, method: &str, path: &str, body: Option<Value>, auth: bool) -> Resp {
        let addr = sim.uri().trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(&addr).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if auth {
            req.push_str(&format!(
                "trakt-api-key: {}\r\ntrakt-api-version: 2\r\nAuthorization: Bearer {}\r\n",
                sim.client_id(),
                sim.access_token()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Resp {
            status,
            headers,
            body: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }

    async fn quiet() -> TraktSim {
        let sim = TraktSim::start().await;
        sim.enforce_rate_limits(false);
        sim
    }

    #[tokio::test]
    async fn requests_need_the_api_key_version_and_bearer() {
        let sim = quiet().await;
        assert_eq!(call(&sim, "GET", "/sync/watchlist", None, true).status, 200);
        assert_eq!(
            call(&sim, "GET", "/sync/watchlist", None, false).status,
            403
        );
        sim.expire_access_token();
        let r = call(&sim, "GET", "/sync/watchlist", None, true);
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"], "invalid_token");
        let refresh = json!({
            "refresh_token": sim.refresh_token(), "client_id": sim.client_id(),
            "client_secret": sim.client_secret(), "grant_type": "refresh_token",
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"
        });
        let r = call(&sim, "POST", "/oauth/token", Some(refresh.clone()), false);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["access_token"].as_str(),
            Some(sim.access_token().as_str())
        );
        assert_eq!(call(&sim, "GET", "/sync/watchlist", None, true).status, 200);
        // The old refresh token was used up.
        assert_eq!(
            call(&sim, "POST", "/oauth/token", Some(refresh), false).status,
            401
        );
    }

    #[tokio::test]
    async fn pages_carry_trakts_headers_and_limits_are_clamped() {
        let sim = quiet().await;
        sim.seed_watchlist(&(0..600).map(samples::movie).collect::<Vec<_>>());
        let r = call(&sim, "GET", "/sync/watchlist?page=3&limit=250", None, true);
        assert_eq!(r.body.as_array().map(Vec::len), Some(100));
        assert_eq!(r.header("x-pagination-page"), Some("3"));
        assert_eq!(r.header("x-pagination-page-count"), Some("3"));
        assert_eq!(r.header("x-pagination-item-count"), Some("600"));
        assert!(r.header("x-ratelimit").is_some());
        let r = call(&sim, "GET", "/sync/watchlist?limit=1000", None, true);
        assert_eq!(r.header("x-pagination-limit"), Some("250"));
        assert_eq!(r.body.as_array().map(Vec::len), Some(250));
        let r = call(&sim, "GET", "/sync/watchlist", None, true);
        assert_eq!(
            r.body.as_array().map(Vec::len),
            Some(100),
            "forced pagination"
        );
        let row = &r.body[0];
        assert_eq!(row["type"], "movie");
        assert_eq!(row["rank"], 1);
        assert_eq!(row["movie"]["ids"]["tmdb"], 900_000);
        sim.truncate_next("/sync/watchlist");
        let r = call(&sim, "GET", "/sync/watchlist?limit=250", None, true);
        assert_eq!(r.body.as_array().map(Vec::len), Some(125));
        assert_eq!(r.header("x-pagination-item-count"), Some("600"));
    }

    #[tokio::test]
    async fn a_watchlist_add_past_the_limit_is_refused_whole() {
        let sim = quiet().await;
        sim.set_limits(TraktLimits {
            watchlist_items: 3,
            ..TraktLimits::FREE
        });
        sim.seed_watchlist(&[samples::movie(1), samples::movie(2)]);
        let add = |ns: &[u32]| json!({"movies": ns.iter().map(|n| json!({"ids": {"tmdb": 900_000 + n}})).collect::<Vec<_>>()});
        let r = call(&sim, "POST", "/sync/watchlist", Some(add(&[1, 3, 4])), true);
        assert_eq!(r.status, 420);
        assert!(r.header("x-upgrade-url").is_some());
        assert_eq!(sim.watchlist().len(), 2, "nothing was added");
        let r = call(&sim, "POST", "/sync/watchlist", Some(add(&[1, 3])), true);
        assert_eq!(r.status, 201);
        assert_eq!(r.body["added"]["movies"], 1);
        assert_eq!(r.body["existing"]["movies"], 1);
        assert_eq!(r.body["list"]["item_count"], 3);
        let ghost = json!({"movies": [{"ids": {"tmdb": 1}}], "shows": [{"ids": {"tvdb": 700_001}, "seasons": [{"number": 9}]}]});
        let r = call(&sim, "POST", "/sync/watchlist/remove", Some(ghost), true);
        assert_eq!(r.body["deleted"]["movies"], 0);
        assert_eq!(r.body["not_found"]["movies"][0]["ids"]["tmdb"], 1);
        assert_eq!(r.body["not_found"]["shows"][0]["seasons"][0]["number"], 9);
    }

    #[tokio::test]
    async fn history_is_not_deduplicated_and_activities_only_move_forward() {
        let sim = quiet().await;
        let before = sim.last_activities();
        let play = json!({"movies": [{"ids": {"trakt": 500_001}, "watched_at": "2024-03-01T12:00:00.000Z"}]});
        for _ in 0..2 {
            let r = call(&sim, "POST", "/sync/history", Some(play.clone()), true);
            assert_eq!(r.status, 201);
            assert_eq!(r.body["added"]["movies"], 1);
        }
        assert_eq!(
            sim.history().len(),
            2,
            "Trakt leaves deduplication to the client"
        );
        let after = sim.last_activities();
        assert!(after["movies"]["watched_at"].as_str() > before["movies"]["watched_at"].as_str());
        assert_eq!(after["watchlist"], before["watchlist"]);
        let r = call(
            &sim,
            "GET",
            "/sync/history?start_at=2024-03-01T11:59:00.000Z&end_at=2024-03-01T12:01:00.000Z",
            None,
            true,
        );
        let ids: Vec<u64> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .collect();
        assert_eq!(ids.len(), 2);
        let r = call(
            &sim,
            "POST",
            "/sync/history/remove",
            Some(json!({"ids": [ids[0], 42]})),
            true,
        );
        assert_eq!(r.body["deleted"]["movies"], 1);
        assert_eq!(r.body["not_found"]["ids"], json!([42]));
    }

    #[tokio::test]
    async fn a_play_takes_the_title_and_its_show_off_the_watchlist() {
        let sim = quiet().await;
        sim.seed_watchlist(&[
            samples::movie(1),
            samples::movie(2),
            samples::show(3),
            samples::episode(4, 1, 2),
            samples::show(5),
        ]);
        let before = sim.last_activities();
        let play = json!({
            "movies": [{"ids": {"tmdb": 900_001}, "watched_at": "2024-03-01T12:00:00.000Z"}],
            "shows": [
                {"ids": {"tvdb": 700_003}, "seasons": [{"number": 1, "episodes": [{"number": 1}]}]},
                {"ids": {"tvdb": 700_004}, "seasons": [{"number": 1, "episodes": [{"number": 2}]}]}
            ]
        });
        let r = call(&sim, "POST", "/sync/history", Some(play), true);
        assert_eq!(r.status, 201);
        assert_eq!(r.body["added"]["movies"], 1);
        assert_eq!(r.body["added"]["episodes"], 2);
        let left: Vec<(MediaType, Option<String>)> = sim
            .watchlist()
            .iter()
            .map(|i| {
                (
                    i.kind,
                    i.ids.get(ferry_core::IdKind::Trakt).map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            left,
            vec![
                (MediaType::Movie, Some("500002".into())),
                (MediaType::Show, Some("400005".into()))
            ],
            "the watched movie, the watched episode and the show of a watched episode left"
        );
        let after = sim.last_activities();
        assert!(
            after["watchlist"]["updated_at"].as_str() > before["watchlist"]["updated_at"].as_str()
        );
        // A play of something not on the watchlist changes nothing there.
        let before = sim.last_activities();
        let play = json!({"movies": [{"ids": {"tmdb": 900_009}}]});
        assert_eq!(
            call(&sim, "POST", "/sync/history", Some(play), true).status,
            201
        );
        assert_eq!(sim.watchlist().len(), 2);
        assert_eq!(sim.last_activities()["watchlist"], before["watchlist"]);
    }

    #[tokio::test]
    async fn writes_past_one_per_second_are_rate_limited() {
        let sim = TraktSim::start().await;
        let body = json!({"movies": [{"ids": {"trakt": 500_001}}]});
        assert_eq!(
            call(&sim, "POST", "/sync/watchlist", Some(body.clone()), true).status,
            201
        );
        assert_eq!(sim.too_many_requests(), 0);
        let r = call(&sim, "POST", "/sync/watchlist", Some(body), true);
        assert_eq!(r.status, 429);
        assert_eq!(sim.too_many_requests(), 1);
        assert_eq!(r.header("retry-after"), Some("1"));
        let limit: Value = serde_json::from_str(r.header("x-ratelimit").unwrap()).unwrap();
        assert_eq!(limit["name"], "AUTHED_API_POST_LIMIT");
    }

    #[tokio::test]
    async fn the_kit_serves_it_and_its_knobs_429s_count_with_trakts_own() {
        let sim = quiet().await;
        assert_eq!(Simulator::token(&sim), sim.access_token());
        assert_eq!(
            FaultControl::list_path(&sim, ferry_core::Feature::History).as_deref(),
            Some("/sync/history")
        );
        sim.rate_limit_next(7, 1);
        let r = call(&sim, "GET", "/sync/watchlist", None, true);
        assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
        assert_eq!(sim.too_many_requests(), 1);
        sim.fail_next(500, 1);
        assert_eq!(call(&sim, "GET", "/sync/watchlist", None, true).status, 500);
        assert_eq!(sim.too_many_requests(), 1, "only 429s count");
        assert_eq!(sim.faults_fired(), 2);
        sim.expire_access_token();
        assert_eq!(call(&sim, "GET", "/sync/watchlist", None, true).status, 401);
        assert_eq!(
            sim.faults_fired(),
            2,
            "an expired token is the account's, not a fault"
        );
    }

    #[tokio::test]
    async fn scrobble_pause_keeps_one_resume_point_per_title() {
        let sim = quiet().await;
        let pause = |p: f64| json!({"progress": p, "movie": {"ids": {"tmdb": 900_005}}});
        let r = call(&sim, "POST", "/scrobble/pause", Some(pause(12.345)), true);
        assert_eq!(r.status, 201);
        assert_eq!(r.body["action"], "pause");
        call(&sim, "POST", "/scrobble/pause", Some(pause(40.0)), true);
        let r = call(&sim, "GET", "/sync/playback?extended=full", None, true);
        let rows = r.body.as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["progress"], 40.0);
        assert_eq!(rows[0]["movie"]["runtime"], 100);
        let id = rows[0]["id"].as_u64().unwrap();
        assert_eq!(
            call(&sim, "DELETE", &format!("/sync/playback/{id}"), None, true).status,
            204
        );
        assert_eq!(
            call(&sim, "DELETE", &format!("/sync/playback/{id}"), None, true).status,
            404
        );
    }

    #[tokio::test]
    async fn the_device_flow_answers_as_trakt_documents() {
        let sim = quiet().await;
        let r = call(
            &sim,
            "POST",
            "/oauth/device/code",
            Some(json!({"client_id": sim.client_id()})),
            false,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body["interval"], 5);
        let code = r.body["device_code"].as_str().unwrap().to_owned();
        let user = r.body["user_code"].as_str().unwrap().to_owned();
        let poll = json!({"code": code, "client_id": sim.client_id(), "client_secret": sim.client_secret()});
        assert_eq!(
            call(
                &sim,
                "POST",
                "/oauth/device/token",
                Some(poll.clone()),
                false
            )
            .status,
            400
        );
        assert!(sim.approve_device(&user));
        let r = call(
            &sim,
            "POST",
            "/oauth/device/token",
            Some(poll.clone()),
            false,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body["token_type"], "bearer");
        assert_eq!(
            call(&sim, "POST", "/oauth/device/token", Some(poll), false).status,
            409
        );
        let bogus = json!({"code": "nope", "client_id": sim.client_id(), "client_secret": sim.client_secret()});
        assert_eq!(
            call(&sim, "POST", "/oauth/device/token", Some(bogus), false).status,
            404
        );
    }

    #[tokio::test]
    async fn personal_lists_create_fill_reorder_and_delete() {
        let sim = quiet().await;
        sim.set_limits(TraktLimits {
            lists: 1,
            ..TraktLimits::FREE
        });
        let r = call(
            &sim,
            "POST",
            "/users/me/lists",
            Some(json!({"name": "Friday Night"})),
            true,
        );
        assert_eq!(r.status, 201);
        let id = r.body["ids"]["trakt"].as_u64().unwrap();
        assert_eq!(r.body["ids"]["slug"], "friday-night");
        assert_eq!(
            call(
                &sim,
                "POST",
                "/users/me/lists",
                Some(json!({"name": "Two"})),
                true
            )
            .status,
            420
        );
        let items = json!({"movies": [{"ids": {"tmdb": 900_001}}, {"ids": {"tmdb": 900_002}}]});
        let r = call(
            &sim,
            "POST",
            &format!("/users/me/lists/{id}/items"),
            Some(items),
            true,
        );
        assert_eq!(r.body["added"]["movies"], 2);
        let r = call(
            &sim,
            "GET",
            &format!("/users/me/lists/{id}/items"),
            None,
            true,
        );
        let ids: Vec<u64> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["id"].as_u64())
            .collect();
        let r = call(
            &sim,
            "POST",
            &format!("/users/me/lists/{id}/items/reorder"),
            Some(json!({"rank": [ids[1], ids[0]]})),
            true,
        );
        assert_eq!(r.body["updated"], 2);
        let names: Vec<_> = sim.lists()[0].1.iter().map(|i| i.title.clone()).collect();
        assert_eq!(names, [samples::movie(2).title, samples::movie(1).title]);
        assert_eq!(
            call(&sim, "DELETE", &format!("/users/me/lists/{id}"), None, true).status,
            204
        );
        assert!(sim.lists().is_empty());
    }
}

//! HTTP (TMDB API v3): ONE page of an account list and ONE write at a time, through the
//! resilient client (retries, `Retry-After`, the circuit breaker, secrets scrubbed).
//!
//! | what | route |
//! |---|---|
//! | list pages | `GET /3/account/{account_id}/{watchlist\|rated}/{movies\|tv}?page=&sort_by=created_at.asc` (20 rows, `total_pages`, `total_results`) |
//! | one title's state | `GET /3/{movie\|tv}/{id}/account_states` (`watchlist`, `rated`) |
//! | watchlist | `POST /3/account/{account_id}/watchlist` `{media_type, media_id, watchlist}` |
//! | rating | `POST /3/{movie\|tv}/{id}/rating` `{value}`, `DELETE` the same |
//! | health | `GET /3/account/{account_id}` |
//!
//! Auth: `Authorization: Bearer` or the `api_key` parameter, plus `session_id` when set.
//! Errors come as `{status_code, status_message, success: false}` with the HTTP status
//! the client classifies.

use std::time::Instant;

use ferry_core::{Context, Error, ErrorKind, Health, Page, PageRequest, Result, Secret};
use ferry_http::{AuthScheme, HttpClient, RequestBuilder};
use serde_json::{Value, json};

use crate::config::{DEFAULT_BASE_URL, TmdbConfig, TmdbOptions};
use crate::convert::Kind;
use crate::model::{AccountStates, StatusAnswer};

const ID: &str = "tmdb";
/// TMDB's fixed page size (account lists take no page size parameter).
pub(crate) const PER_PAGE: usize = 20;

/// The TMDB account, as one client.
#[derive(Debug)]
pub(crate) struct Api {
    http: HttpClient,
    /// Every configured secret (none may appear in any output).
    pub(crate) secrets: Vec<Secret>,
    session: Option<Secret>,
    account: u64,
}

impl Api {
    pub(crate) fn new(instance: &str, config: TmdbConfig, options: TmdbOptions) -> Result<Self> {
        let invalid = |m: &str| Error::new(ErrorKind::InvalidInput, m.to_owned()).with_provider(ID);
        let mut b = HttpClient::builder(ID, instance)
            .base_url(config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))
            .seams(&options, &[]);
        b = match (&config.access_token, &config.api_key, &config.session_id) {
            (Some(t), None, _) => b.bearer(t),
            (None, Some(k), Some(_)) => b.auth(AuthScheme::Query("api_key".into()), k),
            (None, Some(_), None) => return Err(invalid("an api_key needs the user's session_id")),
            _ => return Err(invalid("set exactly one of access_token and api_key")),
        };
        if let Some(s) = &config.session_id {
            b = b.secret(s);
        }
        let secrets = [
            config.access_token,
            config.api_key,
            config.session_id.clone(),
        ];
        Ok(Api {
            http: b.build()?,
            secrets: secrets.into_iter().flatten().collect(),
            session: config.session_id,
            account: config.account_id,
        })
    }

    /// A request with the session attached. Events name the route, not the title or
    /// the account: numeric path segments read `{id}`.
    fn call(&self, method: &str, path: String) -> RequestBuilder<'_> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // Segment 1 is the API version (`3`), kept.
        let label: Vec<&str> = (path.split('/').enumerate())
            .map(|(i, s)| if i > 1 && digits(s) { "{id}" } else { s })
            .collect();
        let op = format!("{method} {}", label.join("/"));
        let r = match method {
            "POST" => self.http.post(op, path).idempotent(),
            "DELETE" => self.http.delete(op, path).idempotent(),
            _ => self.http.get(op, path),
        };
        match &self.session {
            Some(s) => r.query("session_id", s.expose()),
            None => r,
        }
    }

    fn account_path(&self, rest: &str) -> String {
        format!("/3/account/{}{rest}", self.account)
    }

    /// ONE page of an account list (`watchlist/movies`, `rated/tv`), oldest first.
    pub(crate) async fn list_page(
        &self,
        cx: &Context,
        list: &str,
        req: PageRequest,
    ) -> Result<Page> {
        let resp = self
            .call("GET", self.account_path(&format!("/{list}")))
            .query("page", req.page)
            .query("sort_by", "created_at.asc")
            .send(cx)
            .await?;
        ferry_http::page::numbered_body_page(&resp, "results", "total_pages", "total_results")
    }

    /// The user's watchlist flag and rating of one title.
    pub(crate) async fn states(&self, cx: &Context, kind: Kind, id: u64) -> Result<AccountStates> {
        let path = format!("/3/{}/{id}/account_states", kind.media_type());
        self.call("GET", path).send(cx).await?.json()
    }

    pub(crate) async fn set_watchlist(
        &self,
        cx: &Context,
        kind: Kind,
        id: u64,
        on: bool,
    ) -> Result<()> {
        let body = json!({"media_type": kind.media_type(), "media_id": id, "watchlist": on});
        self.write(cx, self.account_path("/watchlist"), Some(body))
            .await
    }

    /// Rates a title (`Some(value)`) or deletes its rating.
    pub(crate) async fn rate(
        &self,
        cx: &Context,
        kind: Kind,
        id: u64,
        value: Option<f64>,
    ) -> Result<()> {
        let path = format!("/3/{}/{id}/rating", kind.media_type());
        self.write(cx, path, value.map(|v| json!({"value": v})))
            .await
    }

    /// `POST` with a body or `DELETE`. The answer must decode and say it succeeded;
    /// anything else is an error, never a confirmation.
    async fn write(&self, cx: &Context, path: String, body: Option<Value>) -> Result<()> {
        let req = match body {
            Some(b) => self.call("POST", path).json(&b),
            None => self.call("DELETE", path),
        };
        let resp = req.send(cx).await?;
        let a: StatusAnswer = ferry_http::page::envelope(&resp)?;
        match a.success {
            Some(false) => {
                Err(resp.malformed(format!("status_code {} without success", a.status_code)))
            }
            _ => Ok(()),
        }
    }

    pub(crate) async fn health(&self, cx: &Context) -> Health {
        if let Some(h) = self.http.breaker_health() {
            return h;
        }
        let started = Instant::now();
        let r = self
            .call("GET", self.account_path(""))
            .probe()
            .send(cx)
            .await;
        let caps = <crate::TmdbProvider as ferry_core::ProviderKind>::capabilities();
        match r {
            Ok(_) => Health::ok().with_features(&caps, true),
            Err(e) => Health::from_error(&e),
        }
        .with_latency(started.elapsed())
    }
}

//! HTTP: the provider's two clients (the server and Discover), one list page, and the
//! single calls that write (`/:/rate`, `/:/scrobble`, `/:/unscrobble`, `/:/timeline`,
//! Discover's watchlist actions) or read a few items back.
//!
//! Every list is paged with the `X-Plex-Container-Start`/`-Size` request headers; each
//! page declares the list's `totalSize` in its `MediaContainer`, which the kit's pager
//! checks ([`ferry_core::Paging::Offset`]).

use std::sync::Arc;

use ferry_core::{
    Context, Declared, Error, ErrorKind, KvStore, MediaType, Page, PageRequest, Result, Row,
    Secret, WriteLedger,
};
use ferry_http::{HttpClient, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::config::{DEFAULT_PAGE_SIZE, PlexConfig, PlexOptions};
use crate::convert::item_row;
use crate::model::{Envelope, Identity, ListPage, MetadataRow};
use crate::pin;
use crate::read::Cache;

/// The `identifier` of the library media provider, sent with every library write.
pub const LIBRARY_IDENTIFIER: &str = "com.plexapp.plugins.library";

pub(crate) const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
pub(crate) const PLAYABLE: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
pub(crate) const RATEABLE: [MediaType; 3] = [MediaType::Movie, MediaType::Show, MediaType::Episode];

/// Rating keys per `/library/metadata/{ids}` read-back request.
pub(crate) const READ_BACK_CHUNK: usize = 50;

/// Which host a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// The Plex Media Server.
    Pms,
    /// Discover (the account watchlist).
    Discover,
}

/// A list request: the host, the operation label, the path and its query.
#[derive(Debug, Clone)]
pub(crate) struct ListCall {
    pub(crate) host: Host,
    pub(crate) op: &'static str,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
}

impl ListCall {
    pub(crate) fn pms(op: &'static str, path: impl Into<String>) -> Self {
        ListCall {
            host: Host::Pms,
            op,
            path: path.into(),
            query: Vec::new(),
        }
    }

    pub(crate) fn discover(op: &'static str, path: impl Into<String>) -> Self {
        ListCall {
            host: Host::Discover,
            ..ListCall::pms(op, path)
        }
    }

    pub(crate) fn with(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
}

/// The Plex provider.
#[derive(Debug)]
pub struct PlexProvider {
    pub(crate) instance: String,
    pub(crate) pms: HttpClient,
    pub(crate) discover: HttpClient,
    pub(crate) token: Secret,
    pub(crate) libraries: Option<Vec<String>>,
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) page_size: usize,
    /// This instance's write counters, appended to the activity checkpoints.
    pub(crate) ledger: WriteLedger,
    /// The last reads writes resolve against (see [`crate::read`]).
    pub(crate) cache: Cache,
    pub(crate) machine_id: tokio::sync::Mutex<Option<String>>,
    // Writes are serialized: history writes keep a ledger of marked plays that must not
    // be updated by two writers at once, and every write updates the cached reads.
    pub(crate) write_lock: tokio::sync::Mutex<()>,
}

impl PlexProvider {
    pub fn new(instance: &str, config: PlexConfig, options: PlexOptions) -> Result<Self> {
        let kv = options
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(ferry_core::MemoryKvStore::new()));
        let token = Self::token(instance, &config, &kv)?;
        let client = |name: String, url: &str| {
            HttpClient::builder("plex", name)
                .base_url(url)
                .secret_header("X-Plex-Token", &token)
                .header("X-Plex-Product", "ferry")
                .header("X-Plex-Version", env!("CARGO_PKG_VERSION"))
                .header("X-Plex-Client-Identifier", pin::client_identifier(instance))
                .header("X-Plex-Platform", "ferry")
                .seams(&options, &[])
                .store(kv.clone())
                .build()
        };
        let pms = client(instance.to_owned(), &config.base_url)?;
        let discover = client(format!("{instance}/discover"), &config.discover_url)?;
        Ok(PlexProvider {
            instance: instance.to_owned(),
            pms,
            discover,
            token,
            libraries: config.libraries,
            ledger: WriteLedger::new(kv.clone(), "plex", instance),
            kv,
            page_size: options.page_size_or(DEFAULT_PAGE_SIZE),
            cache: Cache::default(),
            machine_id: tokio::sync::Mutex::new(None),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The configured token, else the one `ferry auth plex` stored.
    fn token(instance: &str, config: &PlexConfig, kv: &Arc<dyn KvStore>) -> Result<Secret> {
        let invalid = |msg: String| Error::new(ErrorKind::InvalidInput, msg).with_provider("plex");
        match &config.token {
            Some(t) if t.expose().trim().is_empty() => Err(invalid(format!(
                "providers.{instance}.token is empty; remove it and run `ferry auth plex`, or paste the token"
            ))),
            Some(t) => Ok(t.clone()),
            None => match ferry_http::KvTokenStore::new(kv.clone(), instance).load() {
                Ok(Some(t)) => Ok(t.access),
                Ok(None) => Err(invalid(format!(
                    "providers.{instance}: no token in the config and none stored; run `ferry auth plex`"
                ))),
                Err(e) => Err(invalid(format!(
                    "providers.{instance}: no token in the config, and the stored one cannot be read ({e}); run `ferry auth plex`"
                ))),
            },
        }
    }

    pub(crate) fn http(&self, host: Host) -> &HttpClient {
        match host {
            Host::Pms => &self.pms,
            Host::Discover => &self.discover,
        }
    }

    /// A `GET` of one page of a list (`start`, `size` rows).
    pub(crate) fn list_request(
        &self,
        call: &ListCall,
        start: usize,
        size: usize,
    ) -> RequestBuilder<'_> {
        let mut r = self
            .http(call.host)
            .get(call.op, call.path.clone())
            .header("X-Plex-Container-Start", &start.to_string())
            .header("X-Plex-Container-Size", &size.to_string());
        for (k, v) in &call.query {
            r = r.query(*k, v);
        }
        r
    }

    /// One page of a list: its rows, undecoded, and its declared `totalSize`. What the
    /// pager asks for.
    pub(crate) async fn list_page(
        &self,
        cx: &Context,
        call: &ListCall,
        req: PageRequest,
    ) -> Result<Page> {
        let resp = self
            .list_request(call, req.offset, req.limit)
            .send(cx)
            .await?;
        let page: ListPage = container(&resp)?;
        Ok(Page::offset(
            page.rows.unwrap_or_default(),
            Declared::from_json(page.total.as_ref()),
        ))
    }

    /// The server's `machineIdentifier` (needed for playlist URIs), fetched once.
    pub(crate) async fn machine_id(&self, cx: &Context) -> Result<String> {
        let mut cached = self.machine_id.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let resp = self.pms.get("GET /identity", "/identity").send(cx).await?;
        let identity: Identity = container(&resp)?;
        let id = identity
            .machine_identifier
            .filter(|s| !s.is_empty())
            .ok_or_else(|| resp.malformed("identity: no machineIdentifier"))?;
        *cached = Some(id.clone());
        Ok(id)
    }

    /// A library write naming the item (`key`) and the library provider.
    fn library_call(&self, op: &'static str, path: &'static str, rk: &str) -> RequestBuilder<'_> {
        self.pms
            .put(op, path)
            .query("key", rk)
            .query("identifier", LIBRARY_IDENTIFIER)
    }

    /// `PUT /:/rate`, with `ratedAt` (epoch seconds) when given.
    pub(crate) async fn rate(
        &self,
        cx: &Context,
        rk: &str,
        rating: i32,
        rated_at: Option<i64>,
    ) -> Result<()> {
        let mut r = self
            .library_call("PUT /:/rate", "/:/rate", rk)
            .query("rating", rating);
        if let Some(t) = rated_at {
            r = r.query("ratedAt", t);
        }
        r.idempotent().send(cx).await.map(drop)
    }

    /// `PUT /:/scrobble`: marks the item played (no history row). Not idempotent: each
    /// one counts a play.
    pub(crate) async fn scrobble(&self, cx: &Context, rk: &str) -> Result<()> {
        self.library_call("PUT /:/scrobble", "/:/scrobble", rk)
            .send(cx)
            .await
            .map(drop)
    }

    /// `PUT /:/unscrobble`: marks the item unplayed (its history rows stay).
    pub(crate) async fn unscrobble(&self, cx: &Context, rk: &str) -> Result<()> {
        self.library_call("PUT /:/unscrobble", "/:/unscrobble", rk)
            .idempotent()
            .send(cx)
            .await
            .map(drop)
    }

    /// `DELETE /status/sessions/history/{id}`.
    pub(crate) async fn delete_history_row(&self, cx: &Context, id: u64) -> Result<()> {
        self.pms
            .delete(
                "DELETE /status/sessions/history/{id}",
                format!("/status/sessions/history/{id}"),
            )
            .idempotent()
            .send(cx)
            .await
            .map(drop)
    }

    /// A "stopped at `time_ms`" timeline report.
    pub(crate) async fn timeline(
        &self,
        cx: &Context,
        rk: &str,
        time_ms: u64,
        duration_ms: u64,
    ) -> Result<()> {
        let mut r = self
            .pms
            .post("POST /:/timeline", "/:/timeline")
            .query("ratingKey", rk)
            .query("key", format!("/library/metadata/{rk}"))
            .query("identifier", LIBRARY_IDENTIFIER)
            .query("state", "stopped")
            .query("time", time_ms);
        if duration_ms > 0 {
            r = r.query("duration", duration_ms);
        }
        r.idempotent().send(cx).await.map(drop)
    }

    /// Discover's `PUT /actions/addToWatchlist` or `removeFromWatchlist`.
    pub(crate) async fn watchlist_action(&self, cx: &Context, key: &str, add: bool) -> Result<()> {
        let (op, path) = if add {
            ("PUT /actions/addToWatchlist", "/actions/addToWatchlist")
        } else {
            (
                "PUT /actions/removeFromWatchlist",
                "/actions/removeFromWatchlist",
            )
        };
        self.discover
            .put(op, path)
            .query("ratingKey", key)
            .idempotent()
            .send(cx)
            .await
            .map(drop)
    }

    /// These items as the server holds them now (`/library/metadata/{ids}`,
    /// [`READ_BACK_CHUNK`] rating keys per request), for confirming writes. An item
    /// missing from the answer is gone from the server; `Err` for a request that failed,
    /// with the keys it held.
    pub(crate) async fn read_back(
        &self,
        cx: &Context,
        keys: &[&str],
    ) -> (Vec<MetadataRow>, Vec<(String, String)>) {
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        for chunk in keys.chunks(READ_BACK_CHUNK) {
            let read = self
                .pms
                .get(
                    "GET /library/metadata/{ids}",
                    format!("/library/metadata/{}", chunk.join(",")),
                )
                .send(cx)
                .await
                .and_then(|resp| container::<ListPage>(&resp));
            match read {
                Ok(page) => {
                    for raw in page.rows.unwrap_or_default() {
                        match item_row(raw) {
                            Row::Keep(r) => rows.push(r),
                            Row::Skip => {}
                            Row::Bad(why) => {
                                for k in chunk {
                                    failed.push((
                                        (*k).to_owned(),
                                        format!("a row did not decode: {why}"),
                                    ));
                                }
                            }
                        }
                    }
                }
                // None of them is on the server any more.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => failed.extend(chunk.iter().map(|k| ((*k).to_owned(), e.to_string()))),
            }
        }
        (rows, failed)
    }
}

/// The `MediaContainer` of an answer, decoded into `T`; an empty or non-JSON body, or
/// one without a `MediaContainer`, is `MalformedResponse`.
pub(crate) fn container<T: DeserializeOwned>(resp: &Response) -> Result<T> {
    ferry_http::page::envelope::<Envelope<T>>(resp).map(|e| e.mc)
}

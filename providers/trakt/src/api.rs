//! The Trakt API over `ferry-http`: ONE page of a list, ONE write, the account settings,
//! and Trakt's rate-limit header. Paging itself is the kit's [`Pager`].

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::ops::RateInfo;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_core::{
    Context, Declared, Error, ErrorKind, PageRequest, Pager, Paging, Read, Reader, Result, Row,
    Timestamp,
};
use ferry_http::page::{array_body, numbered_page};
use ferry_http::{HttpClient, Response};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::model::{RateLimitWire, SettingsWire, WriteAnswer};

/// Account limits from `/users/settings`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) watchlist_items: Option<u64>,
    pub(crate) lists: Option<u64>,
    pub(crate) list_items: Option<u64>,
}

impl From<SettingsWire> for Settings {
    fn from(w: SettingsWire) -> Self {
        Settings {
            watchlist_items: w.limits.watchlist.item_count,
            lists: w.limits.list.count,
            list_items: w.limits.list.item_count,
        }
    }
}

/// One list endpoint: its path, the operation name requests carry, and its query.
#[derive(Debug, Clone)]
pub(crate) struct ListCall {
    pub(crate) op: &'static str,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
}

impl ListCall {
    pub(crate) fn new(op: &'static str, path: impl Into<String>) -> Self {
        ListCall {
            op,
            path: path.into(),
            query: Vec::new(),
        }
    }

    pub(crate) fn with(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
}

#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) http: HttpClient,
    page_limit: u32,
    settings: Mutex<Option<Settings>>,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Trakt's JSON `X-Ratelimit` header (`{"name","period","limit","remaining","until"}`).
pub(crate) fn rate_info(resp: &Response) -> Option<RateInfo> {
    let v: RateLimitWire = serde_json::from_str(resp.header("x-ratelimit")?).ok()?;
    let until = v.until.as_deref().and_then(Timestamp::parse);
    Some(RateInfo {
        limit: v.limit,
        remaining: v.remaining,
        reset_secs: until.map(|t| t.unix().saturating_sub(now_unix()).max(0) as u64),
    })
}

impl Api {
    pub(crate) fn new(http: HttpClient, page_limit: u32) -> Self {
        Api {
            http,
            page_limit,
            settings: Mutex::new(None),
        }
    }

    async fn send_page(
        &self,
        cx: &Context,
        call: &ListCall,
        page: usize,
        limit: usize,
    ) -> Result<Response> {
        let mut rb = self
            .http
            .get(call.op, &call.path)
            .query("page", page)
            .query("limit", limit);
        for (k, v) in &call.query {
            rb = rb.query(*k, v);
        }
        rb.send(cx).await
    }

    fn paging(&self) -> Paging {
        Paging::Numbered {
            limit: self.page_limit as usize,
        }
    }

    /// Every page of a list through the kit's pager (`page`/`limit`, judged by the
    /// `X-Pagination-*` headers), each row decoded on its own.
    pub(crate) async fn read<T>(
        &self,
        cx: &Context,
        what: &str,
        call: &ListCall,
        decode: impl FnMut(Value) -> Row<T>,
    ) -> Result<Read<T>> {
        Pager::new(cx, what, self.paging())
            .read(
                |req: PageRequest| async move {
                    numbered_page(&self.send_page(cx, call, req.page, req.limit).await?)
                },
                decode,
            )
            .await
    }

    /// [`Api::read`], unless the first page's `X-Pagination-Page-Count` says the read
    /// takes more than `max_pages` requests: then `None`, after that one request.
    pub(crate) async fn read_within<T>(
        &self,
        cx: &Context,
        what: &str,
        call: &ListCall,
        max_pages: u64,
        decode: impl FnMut(Value) -> Row<T>,
    ) -> Result<Option<Read<T>>> {
        let too_long = AtomicBool::new(false);
        let too_long = &too_long;
        let read = Pager::new(cx, what, self.paging())
            .read(
                |req: PageRequest| async move {
                    let resp = self.send_page(cx, call, req.page, req.limit).await?;
                    let pages = Declared::from_text(resp.header("x-pagination-page-count"));
                    if req.is_first() && pages.valid().is_some_and(|p| p > max_pages) {
                        too_long.store(true, Ordering::SeqCst);
                        return Err(Error::new(
                            ErrorKind::Unexpected,
                            format!("{what}: more than {max_pages} pages"),
                        ));
                    }
                    numbered_page(&resp)
                },
                decode,
            )
            .await;
        if too_long.load(Ordering::SeqCst) {
            return Ok(None);
        }
        read.map(Some)
    }

    /// A list Trakt documents as one unpaged document (`/users/me/lists`): read whole,
    /// each row decoded on its own. Should Trakt page it after all, a second page is
    /// never taken for the end of the list.
    pub(crate) async fn read_whole<T>(
        &self,
        cx: &Context,
        what: &str,
        call: &ListCall,
        mut decode: impl FnMut(Value) -> Row<T>,
    ) -> Result<Read<T>> {
        let resp = self.http.get(call.op, &call.path).send(cx).await?;
        let mut reader = Reader::new(what);
        reader.rows(array_body(&resp)?, &mut decode);
        if let Some(pages) = Declared::from_text(resp.header("x-pagination-page-count")).valid()
            && pages > 1
        {
            reader.mark_partial(format!("{what}: Trakt paged it ({pages} pages)"));
        }
        Ok(reader.finish_whole())
    }

    /// `X-Pagination-Item-Count` of a one-row read: how many items a list holds now.
    pub(crate) async fn count(&self, cx: &Context, call: &ListCall) -> Result<Option<u64>> {
        let resp = self
            .http
            .get(call.op, &call.path)
            .query("page", 1)
            .query("limit", 1)
            .send(cx)
            .await?;
        Ok(Declared::from_text(resp.header("x-pagination-item-count")).valid())
    }

    /// The account limits, fetched once per provider (`fresh` refetches: after a 420).
    pub(crate) async fn settings(&self, cx: &Context, fresh: bool) -> Result<Settings> {
        let mut memo = self.settings.lock().await;
        if !fresh && let Some(s) = *memo {
            return Ok(s);
        }
        let w: SettingsWire = self
            .http
            .get("GET /users/settings", "/users/settings")
            .send_json(cx)
            .await?;
        let s = Settings::from(w);
        *memo = Some(s);
        Ok(s)
    }

    /// Remembers settings read elsewhere (the health probe).
    pub(crate) async fn remember_settings(&self, w: SettingsWire) -> Settings {
        let s = Settings::from(w);
        *self.settings.lock().await = Some(s);
        s
    }

    /// A POST of a JSON body. `idempotent` writes are retried by the HTTP layer on
    /// temporary failures; the others only after a 429 (Trakt answers it before applying
    /// anything) or a refused connection, after the `Retry-After` pause.
    pub(crate) async fn post(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        body: &Value,
        idempotent: bool,
    ) -> Result<Response> {
        let mut rb = self.http.post(op, path).json(body);
        if idempotent {
            rb = rb.idempotent();
        }
        rb.send(cx).await
    }

    /// A `/sync/*` or list write and its answer. `Ok(None)`: Trakt answered, but not with
    /// a write answer ferry can read (the write may have happened).
    pub(crate) async fn write(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        body: &Value,
        idempotent: bool,
    ) -> Result<Option<WriteAnswer>> {
        let resp = self.post(cx, op, path, body, idempotent).await?;
        Ok(resp.json::<WriteAnswer>().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{from_value, json};

    #[test]
    fn settings_read_limits() {
        let w: SettingsWire = from_value(json!({
            "limits": {"list": {"count": 5, "item_count": 250}, "watchlist": {"item_count": 250}}
        }))
        .unwrap();
        assert_eq!(
            Settings::from(w),
            Settings {
                watchlist_items: Some(250),
                lists: Some(5),
                list_items: Some(250)
            }
        );
        let none: SettingsWire = from_value(json!({})).unwrap();
        assert_eq!(Settings::from(none), Settings::default());
    }
}

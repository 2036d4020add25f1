//! The Trakt API over `ferry-http`: paged reads that check what arrived against the
//! `X-Pagination-*` headers, account settings, and writes.

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::ops::RateInfo;
use ferry_core::{Context, Error, ErrorKind, Outcome, Result, Timestamp, UnresolvedReason};
use ferry_http::{HttpClient, Response};
use serde_json::Value;
use tokio::sync::Mutex;

/// Trakt's largest page.
pub(crate) const MAX_PAGE_LIMIT: u32 = 250;
/// A read stops (and is `Partial`) past this many pages.
const MAX_PAGES: u64 = 10_000;

/// The rows of a paged read and everything that makes it less than certain.
#[derive(Debug, Default)]
pub(crate) struct Paged {
    pub(crate) rows: Vec<Value>,
    /// Why the rows may not be everything (empty: they are).
    pub(crate) problems: Vec<String>,
    /// `X-Pagination-Item-Count` of the first page.
    pub(crate) declared: Option<u64>,
}

impl Paged {
    pub(crate) fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems as one `Partial` reason.
    pub(crate) fn reason(&self) -> String {
        self.problems.join("; ")
    }
}

/// Account limits from `/users/settings`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) watchlist_items: Option<u64>,
    pub(crate) lists: Option<u64>,
    pub(crate) list_items: Option<u64>,
}

impl Settings {
    fn parse(v: &Value) -> Self {
        let limit = |a: &str, b: &str| {
            v.get("limits")
                .and_then(|l| l.get(a))
                .and_then(|x| x.get(b))
                .and_then(Value::as_u64)
        };
        Settings {
            watchlist_items: limit("watchlist", "item_count"),
            lists: limit("list", "count"),
            list_items: limit("list", "item_count"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) http: HttpClient,
    page_limit: u32,
    settings: Mutex<Option<Settings>>,
}

/// The HTTP status an error came from, when it came from a response.
pub(crate) fn status_of(e: &Error) -> Option<u16> {
    e.context()
        .iter()
        .find(|(k, _)| *k == "status")
        .and_then(|(_, v)| v.parse().ok())
}

/// What a failed write means for the entries in it, and for the ones not yet sent.
pub(crate) struct ErrorOutcomes {
    pub(crate) sent: Outcome,
    /// `Some` when the rest of the call should not be attempted.
    pub(crate) rest: Option<Outcome>,
}

pub(crate) fn error_outcomes(e: &Error) -> ErrorOutcomes {
    let un = |reason, detail: &Error| Outcome::Unresolved {
        reason,
        detail: Some(detail.to_string()),
    };
    match e.kind() {
        ErrorKind::AccountLimit => ErrorOutcomes {
            sent: un(UnresolvedReason::AccountLimit, e),
            rest: None,
        },
        ErrorKind::Conflict => ErrorOutcomes {
            sent: un(UnresolvedReason::Conflict, e),
            rest: None,
        },
        ErrorKind::Locked => ErrorOutcomes {
            sent: un(UnresolvedReason::Locked, e),
            rest: Some(un(UnresolvedReason::Locked, e)),
        },
        ErrorKind::RateLimited => ErrorOutcomes {
            sent: un(UnresolvedReason::RateLimited, e),
            rest: Some(un(UnresolvedReason::RateLimited, e)),
        },
        ErrorKind::Unavailable => ErrorOutcomes {
            sent: Outcome::failed(e),
            rest: Some(un(UnresolvedReason::ProviderDown, e)),
        },
        ErrorKind::Auth | ErrorKind::Cancelled => ErrorOutcomes {
            sent: Outcome::failed(e),
            rest: Some(Outcome::failed(e)),
        },
        ErrorKind::NotFound => ErrorOutcomes {
            sent: un(UnresolvedReason::NotFound, e),
            rest: None,
        },
        _ => ErrorOutcomes {
            sent: Outcome::failed(e),
            rest: None,
        },
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Trakt's JSON `X-Ratelimit` header (`{"name","period","limit","remaining","until"}`).
pub(crate) fn rate_info(resp: &Response) -> Option<RateInfo> {
    let v: Value = serde_json::from_str(resp.header("x-ratelimit")?).ok()?;
    let until = v
        .get("until")
        .and_then(Value::as_str)
        .and_then(Timestamp::parse);
    Some(RateInfo {
        limit: v.get("limit").and_then(Value::as_u64),
        remaining: v.get("remaining").and_then(Value::as_u64),
        reset_secs: until.map(|t| t.unix().saturating_sub(now_unix()).max(0) as u64),
    })
}

impl Api {
    pub(crate) fn new(http: HttpClient, page_limit: Option<u32>) -> Self {
        Api {
            http,
            page_limit: page_limit
                .unwrap_or(MAX_PAGE_LIMIT)
                .clamp(1, MAX_PAGE_LIMIT),
            settings: Mutex::new(None),
        }
    }

    /// Reads every page of a list endpoint. The first page failing is an error (never an
    /// empty result); a later page failing, a page shorter than the headers promise, an
    /// item count that changes between pages or a total that disagrees with
    /// `X-Pagination-Item-Count` is recorded as a problem, which makes the caller's
    /// snapshot `Partial`.
    pub(crate) async fn read_all(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Paged> {
        let all = self.read_up_to(cx, op, path, query, u64::MAX).await?;
        Ok(all.unwrap_or_default())
    }

    /// [`Api::read_all`], unless the first page's `X-Pagination-Page-Count` says the read
    /// takes more than `max_pages` requests: then `None`, after that one request.
    pub(crate) async fn read_up_to(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        query: &[(&str, String)],
        max_pages: u64,
    ) -> Result<Option<Paged>> {
        let limit = u64::from(self.page_limit);
        let mut out = Paged::default();
        let mut page: u64 = 1;
        let mut applied: Option<u64> = None;
        let mut pages: Option<u64> = None;
        loop {
            cx.check_cancelled()?;
            let mut rb = self
                .http
                .get(op, path)
                .query("page", page)
                .query("limit", limit);
            for (k, v) in query {
                rb = rb.query(*k, v);
            }
            let resp = match rb.send(cx).await {
                Ok(r) => r,
                Err(e) if page == 1 || e.kind() == ErrorKind::Cancelled => return Err(e),
                Err(e) => {
                    out.problems.push(format!("page {page} failed: {e}"));
                    break;
                }
            };
            let rows = match resp.json::<Value>() {
                Ok(Value::Array(rows)) => rows,
                Ok(other) => {
                    let e = Error::new(
                        ErrorKind::MalformedResponse,
                        format!(
                            "expected a JSON array, got {}",
                            match other {
                                Value::Object(_) => "an object",
                                Value::Null => "nothing",
                                _ => "a scalar",
                            }
                        ),
                    )
                    .with_provider("trakt")
                    .with_operation(op.to_owned());
                    if page == 1 {
                        return Err(e);
                    }
                    out.problems.push(format!("page {page}: {e}"));
                    break;
                }
                Err(e) if page == 1 => return Err(e),
                Err(e) => {
                    out.problems.push(format!("page {page}: {e}"));
                    break;
                }
            };
            let p = resp.pagination();
            if page == 1 {
                if p.page_count.is_some_and(|pc| pc > max_pages) {
                    return Ok(None);
                }
                out.declared = p.item_count;
                applied = p.limit.or(Some(limit));
                pages = p.page_count;
            } else if p.item_count.is_some() && p.item_count != out.declared {
                out.problems.push(format!(
                    "the item count changed during the read ({} then {})",
                    out.declared.unwrap_or(0),
                    p.item_count.unwrap_or(0)
                ));
            }
            let n = rows.len() as u64;
            if let (Some(total), Some(lim)) = (out.declared, applied) {
                let expected = total.saturating_sub((page - 1) * lim).min(lim);
                if n != expected {
                    out.problems.push(format!(
                        "page {page} held {n} rows where the pagination headers promise {expected}"
                    ));
                }
            }
            out.rows.extend(rows);
            match pages {
                Some(pc) if page < pc => {
                    if page >= MAX_PAGES {
                        out.problems
                            .push(format!("stopped after {MAX_PAGES} pages of {pc}"));
                        break;
                    }
                    page += 1;
                }
                Some(_) => break,
                None => {
                    if out.declared.is_none() && n >= applied.unwrap_or(limit) {
                        out.problems.push(
                            "a full page without pagination headers: more rows may exist".into(),
                        );
                    }
                    break;
                }
            }
        }
        if let Some(total) = out.declared
            && out.rows.len() as u64 != total
        {
            out.problems.push(format!(
                "received {} of {total} items the server declared",
                out.rows.len()
            ));
        }
        Ok(Some(out))
    }

    /// `X-Pagination-Item-Count` of a one-row read: how many items a list holds now.
    pub(crate) async fn count(&self, cx: &Context, op: &str, path: &str) -> Result<Option<u64>> {
        let resp = self
            .http
            .get(op, path)
            .query("page", 1)
            .query("limit", 1)
            .send(cx)
            .await?;
        Ok(resp.pagination().item_count)
    }

    /// The account limits, fetched once per provider (`fresh` refetches: after a 420).
    pub(crate) async fn settings(&self, cx: &Context, fresh: bool) -> Result<Settings> {
        let mut memo = self.settings.lock().await;
        if !fresh && let Some(s) = *memo {
            return Ok(s);
        }
        let v: Value = self
            .http
            .get("GET /users/settings", "/users/settings")
            .send_json(cx)
            .await?;
        let s = Settings::parse(&v);
        *memo = Some(s);
        Ok(s)
    }

    /// Remembers settings read elsewhere (the health probe).
    pub(crate) async fn remember_settings(&self, v: &Value) -> Settings {
        let s = Settings::parse(v);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_read_limits() {
        let s = Settings::parse(&json!({
            "limits": {"list": {"count": 5, "item_count": 250}, "watchlist": {"item_count": 250}}
        }));
        assert_eq!(
            s,
            Settings {
                watchlist_items: Some(250),
                lists: Some(5),
                list_items: Some(250)
            }
        );
        assert_eq!(Settings::parse(&json!({})), Settings::default());
    }

    #[test]
    fn error_kinds_become_outcomes() {
        let o = error_outcomes(&Error::new(ErrorKind::AccountLimit, "HTTP 420"));
        assert!(matches!(
            o.sent,
            Outcome::Unresolved {
                reason: UnresolvedReason::AccountLimit,
                ..
            }
        ));
        assert!(o.rest.is_none());
        let o = error_outcomes(&Error::new(ErrorKind::Locked, "HTTP 423"));
        assert!(o.rest.is_some());
        let e = Error::new(ErrorKind::Conflict, "HTTP 409").with_context("status", "409");
        assert_eq!(status_of(&e), Some(409));
    }
}

//! Plex list reads: `X-Plex-Container-Start`/`-Size` paging checked against the
//! container's `totalSize`.
//!
//! A failure on the first page is an error, never an empty list; a failure on a later
//! page, and every other sign of an incomplete read (a short, empty or repeated page, a
//! count that disagrees with `totalSize`), makes the read partial: the shared rules of
//! [`ferry_core::paging`].

use ferry_core::{Context, Error, ErrorKind, OffsetPages, Result};
use ferry_http::HttpClient;
use serde_json::{Map, Value};

/// The rows of a paged read and why it may be incomplete.
#[derive(Debug, Default)]
pub(crate) struct Paged {
    pub(crate) rows: Vec<Value>,
    pub(crate) partial: Vec<String>,
    /// The first page's `MediaContainer` fields other than `Metadata`.
    pub(crate) container: Map<String, Value>,
}

/// A row's identity, for the duplicate and repeated-page guards.
fn row_id(row: &Value) -> String {
    let mut id = String::new();
    for k in ["historyKey", "playlistItemID", "ratingKey", "key"] {
        if let Some(v) = row.get(k) {
            id.push_str(&v.to_string());
            id.push('|');
        }
    }
    if id.is_empty() { row.to_string() } else { id }
}

/// Whether an error must end the whole read rather than make it partial.
fn aborts(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Cancelled | ErrorKind::Auth | ErrorKind::InvalidInput
    )
}

/// The `MediaContainer` of a Plex answer, or a `MalformedResponse`.
pub(crate) fn media_container(body: Value, what: &str) -> Result<Map<String, Value>> {
    match body {
        Value::Object(mut m) => match m.remove("MediaContainer") {
            Some(Value::Object(mc)) => Ok(mc),
            _ => Err(Error::new(
                ErrorKind::MalformedResponse,
                format!("{what}: the answer has no MediaContainer"),
            )),
        },
        _ => Err(Error::new(
            ErrorKind::MalformedResponse,
            format!("{what}: the answer is not a JSON object"),
        )),
    }
}

fn as_usize(v: Option<&Value>) -> Option<usize> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads every page of a Plex list endpoint. The completeness rules are
/// [`ferry_core::paging`]'s; a failed first page is an error.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch_all(
    cx: &Context,
    http: &HttpClient,
    op: &str,
    path: &str,
    query: &[(&str, String)],
    page_size: usize,
    what: &str,
) -> Result<Paged> {
    let mut pager = OffsetPages::new(what, "totalSize", page_size);
    let page_size = pager.page_size();
    let mut out = Paged::default();
    while let Some(start) = pager.next_start() {
        cx.check_cancelled()?;
        let mut req = http
            .get(op, path)
            .header("X-Plex-Container-Start", &start.to_string())
            .header("X-Plex-Container-Size", &page_size.to_string());
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let fetched = match req.send(cx).await {
            Ok(resp) => resp
                .json::<Value>()
                .and_then(|body| media_container(body, what)),
            Err(e) => Err(e),
        };
        let mut mc = match fetched {
            Ok(mc) => mc,
            Err(e) if pager.first_page() || aborts(&e) => return Err(e),
            Err(e) => {
                pager.failed(e);
                break;
            }
        };
        let rows = match mc.remove("Metadata") {
            Some(Value::Array(rows)) => rows,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                let e = Error::new(
                    ErrorKind::MalformedResponse,
                    format!("{what}: Metadata is not a list"),
                );
                if pager.first_page() {
                    return Err(e);
                }
                pager.mark_partial(e.to_string());
                break;
            }
        };
        if pager.first_page() {
            out.container = mc.clone();
        }
        if !pager.take(rows, as_usize(mc.get("totalSize")), row_id, &mut out.rows) {
            break;
        }
    }
    out.partial = pager.finish();
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Field helpers for Plex rows, which mix strings and numbers.

pub(crate) fn str_field(row: &Value, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn i64_field(row: &Value, key: &str) -> Option<i64> {
    match row.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn u64_field(row: &Value, key: &str) -> Option<u64> {
    i64_field(row, key).and_then(|v| u64::try_from(v).ok())
}

pub(crate) fn f64_field(row: &Value, key: &str) -> Option<f64> {
    match row.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

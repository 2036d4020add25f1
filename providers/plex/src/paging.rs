//! Plex list reads: `X-Plex-Container-Start`/`-Size` paging checked against the
//! container's `totalSize`.
//!
//! The rules that keep a bad read from looking like "the user deleted everything":
//! - a failure on the first page is an error, never an empty list;
//! - a failure on a later page, a short page before the end, an empty page before
//!   `totalSize`, a repeated page, or a final count that disagrees with `totalSize` makes
//!   the read partial (the rows read so far are kept; the snapshot is `Partial`);
//! - reads stop on an empty page, at `totalSize`, or on a repeated page.

use std::collections::HashSet;

use ferry_core::{Context, Error, ErrorKind, Result};
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

/// Reads every page of a Plex list endpoint.
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
    let page_size = page_size.max(1);
    let mut out = Paged::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut start = 0usize;
    let mut total: Option<usize> = None;
    let mut last_sig: Option<(String, String)> = None;
    let mut pages = 0usize;
    loop {
        cx.check_cancelled()?;
        pages += 1;
        if let Some(t) = total
            && pages > t / page_size + 10
        {
            out.partial.push(format!(
                "{what}: stopped after {pages} pages (runaway paging)"
            ));
            break;
        }
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
            Err(e) if pages == 1 || aborts(&e) => return Err(e),
            Err(e) => {
                out.partial
                    .push(format!("{what}: the page at offset {start} failed: {e}"));
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
                if pages == 1 {
                    return Err(e);
                }
                out.partial.push(e.to_string());
                break;
            }
        };
        if pages == 1 {
            out.container = mc.clone();
        }
        let declared = as_usize(mc.get("totalSize"));
        if let Some(d) = declared {
            if total.is_some_and(|t| t != d) {
                out.partial.push(format!(
                    "{what}: totalSize changed from {} to {d} while reading",
                    total.unwrap_or_default()
                ));
            }
            total = Some(d);
        }
        let n = rows.len();
        if n == 0 {
            if let Some(t) = total
                && out.rows.len() < t
            {
                out.partial.push(format!(
                    "{what}: empty page at offset {start} before totalSize {t}"
                ));
            }
            break;
        }
        let sig = (row_id(&rows[0]), row_id(&rows[n - 1]));
        if last_sig.as_ref() == Some(&sig) {
            out.partial.push(format!(
                "{what}: the page at offset {start} repeats the previous one"
            ));
            break;
        }
        last_sig = Some(sig);
        for row in rows {
            if seen.insert(row_id(&row)) {
                out.rows.push(row);
            }
        }
        start += n;
        match total {
            Some(t) if start >= t => break,
            Some(t) if n < page_size => out.partial.push(format!(
                "{what}: short page at offset {}: {n} of {page_size} rows with {t} declared",
                start - n
            )),
            Some(_) => {}
            None if n < page_size => break,
            None => {}
        }
    }
    if let Some(t) = total
        && out.rows.len() != t
    {
        out.partial.push(format!(
            "{what}: read {} rows but totalSize is {t}",
            out.rows.len()
        ));
    }
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

//! MDBList requests over `ferry-http`: decoding, and offset/limit paging checked against
//! `pagination.has_more` and every total the service declares.

use ferry_core::{Context, Error, ErrorKind, Outcome, Result, UnresolvedReason};
use ferry_http::{HttpClient, Response};
use serde_json::Value;

/// The most pages one read follows before it gives up (and is partial).
pub(crate) const MAX_PAGES: usize = 10_000;

pub(crate) fn malformed(op: &str, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::MalformedResponse, msg)
        .with_provider("mdblist")
        .with_operation(op.to_owned())
}

/// Decodes a body that must be a JSON object. An empty body, `null` or another shape is an
/// error: MDBList has no "nothing" answer other than empty lists.
pub(crate) fn object(resp: &Response, op: &str) -> Result<Value> {
    if resp.bytes().iter().all(u8::is_ascii_whitespace) {
        return Err(malformed(
            op,
            format!(
                "HTTP {} with an empty body where JSON was expected",
                resp.status()
            ),
        ));
    }
    let v = resp.json_value()?;
    match v.get("error") {
        _ if !v.is_object() => Err(malformed(op, "the answer is not a JSON object")),
        Some(e) => Err(malformed(
            op,
            format!("MDBList answered with an error: {e}"),
        )),
        None => Ok(v),
    }
}

/// Rows of a paged read, per group, with the problems that make it partial.
#[derive(Debug, Default)]
pub(crate) struct Paged {
    pub(crate) rows: Vec<(&'static str, Value)>,
    pub(crate) problems: Vec<String>,
}

/// The sum of every `total_*` (or `total`) number in a pagination block.
fn declared_total(p: &Value) -> Option<u64> {
    let m = p.as_object()?;
    let mut sum = None;
    for (k, v) in m {
        if (k == "total" || k.starts_with("total_"))
            && let Some(n) = v.as_u64()
        {
            sum = Some(sum.unwrap_or(0) + n);
        }
    }
    sum
}

/// Reads every page of `path`: `limit=page_size`, `offset` advanced by the rows actually
/// received (a short page is never skipped over). Rows of `groups` are kept; lists named
/// in `ignored` are known and skipped; any other non-empty list makes the read partial. The read is partial when a page has no
/// usable `pagination`, a page is empty although `has_more` says otherwise, the rows read
/// differ from the declared totals, or `has_more: false` on a full page turns out wrong.
/// One paged read: what to ask for and which lists of the answer matter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PagedRead<'a> {
    pub(crate) op: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a [(&'a str, String)],
    /// Lists whose rows are kept, tagged with the list's name.
    pub(crate) groups: &'a [&'static str],
    /// Lists that are known and skipped.
    pub(crate) ignored: &'a [&'a str],
}

pub(crate) async fn read_paged(
    http: &HttpClient,
    cx: &Context,
    r: PagedRead<'_>,
    page_size: usize,
) -> Result<Paged> {
    let PagedRead {
        op,
        path,
        query,
        groups,
        ignored,
    } = r;
    let mut out = Paged::default();
    let mut offset = 0usize;
    let mut declared: Option<u64> = None;
    // After `has_more: false` on a full page without totals, one more page tells whether
    // that was really the end.
    let mut verifying = false;
    for page in 0.. {
        cx.check_cancelled()?;
        if page >= MAX_PAGES {
            out.problems
                .push(format!("stopped after {MAX_PAGES} pages"));
            break;
        }
        let mut rb = http
            .get(op, path)
            .query("limit", page_size)
            .query("offset", offset);
        for (k, v) in query {
            rb = rb.query(*k, v);
        }
        let v = object(&rb.send(cx).await?, op)?;
        // Every list on the page takes page slots, read or not; a list nobody expects is
        // data this read would silently miss, so it makes the read partial.
        let mut n = 0usize;
        for (k, val) in v.as_object().into_iter().flatten() {
            let Some(rows) = val.as_array() else {
                if groups.contains(&k.as_str()) && !val.is_null() {
                    return Err(malformed(op, format!("`{k}` is not a list")));
                }
                continue;
            };
            n += rows.len();
            if let Some(g) = groups.iter().find(|g| **g == k.as_str()) {
                out.rows.extend(rows.iter().map(|r| (*g, r.clone())));
            } else if !ignored.contains(&k.as_str()) && !rows.is_empty() {
                out.problems.push(format!(
                    "the page at offset {offset} holds an unexpected list `{k}` of {} rows",
                    rows.len()
                ));
            }
        }
        let Some(p) = v.get("pagination").filter(|p| p.is_object()) else {
            out.problems.push(format!(
                "the page at offset {offset} has no pagination block"
            ));
            break;
        };
        let Some(has_more) = p.get("has_more").and_then(Value::as_bool) else {
            out.problems.push(format!(
                "the page at offset {offset} does not say whether more follow"
            ));
            break;
        };
        if let Some(t) = declared_total(p) {
            declared = Some(t);
        }
        if verifying && n > 0 {
            out.problems.push(format!(
                "the service said no rows follow offset {offset}, but {n} did"
            ));
        }
        offset += n;
        if has_more {
            if n == 0 {
                out.problems.push(format!(
                    "an empty page at offset {offset} although more rows were announced"
                ));
                break;
            }
            continue;
        }
        if !verifying && n >= page_size && declared.is_none() {
            verifying = true;
            continue;
        }
        break;
    }
    if let Some(d) = declared
        && offset as u64 != d
    {
        out.problems
            .push(format!("read {offset} rows, the service declared {d}"));
    }
    Ok(out)
}

/// What a failed write means for each item it carried.
pub(crate) fn error_outcome(e: &Error) -> Outcome {
    let un = |reason| Outcome::Unresolved {
        reason,
        detail: Some(e.to_string()),
    };
    match e.kind() {
        ErrorKind::RateLimited => un(UnresolvedReason::RateLimited),
        ErrorKind::Conflict => un(UnresolvedReason::Conflict),
        ErrorKind::NotFound => un(UnresolvedReason::NotFound),
        ErrorKind::Locked => un(UnresolvedReason::Locked),
        ErrorKind::AccountLimit => un(UnresolvedReason::AccountLimit),
        _ => Outcome::failed(e),
    }
}

//! The HTTP side of the pager ([`ferry_core::page`]): turning one response into one
//! [`Page`], for the wire shapes in use. A body of the wrong shape (HTML, empty, not
//! JSON, no rows list) is a `MalformedResponse` error, which the pager treats like any
//! failed page: an error on the first page, a partial read after it.

use ferry_core::{Declared, Page, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::client::Response;

/// A JSON object holding the rows under `rows` and the declared total under `total`
/// (Jellyfin's `QueryResult`: `{"Items": [...], "TotalRecordCount": n}`).
pub fn offset_page(resp: &Response, rows: &str, total: &str) -> Result<Page> {
    let body = resp.json::<Value>()?;
    let Value::Object(mut m) = body else {
        return Err(resp.malformed(format!("the answer is not an object with {rows}")));
    };
    let declared = Declared::from_json(m.get(total));
    match m.remove(rows) {
        Some(Value::Array(list)) => Ok(Page::offset(list, declared)),
        _ => Err(resp.malformed(format!("the answer has no {rows} list"))),
    }
}

/// A JSON array body, paged by Trakt's `X-Pagination-Page-Count` and
/// `X-Pagination-Item-Count` headers.
pub fn numbered_page(resp: &Response) -> Result<Page> {
    let list = array_body(resp)?;
    Ok(Page::numbered(
        list,
        Declared::from_text(resp.header("x-pagination-page-count")),
        Declared::from_text(resp.header("x-pagination-item-count")),
    ))
}

/// A JSON object holding the rows under `rows` and its page count and item count as
/// fields `pages` and `items` (TMDB's `{"page", "results", "total_pages",
/// "total_results"}`): a numbered page whose counts come from the body, not headers.
pub fn numbered_body_page(resp: &Response, rows: &str, pages: &str, items: &str) -> Result<Page> {
    let body = resp.json::<Value>()?;
    let Value::Object(mut m) = body else {
        return Err(resp.malformed(format!("the answer is not an object with {rows}")));
    };
    let (page_count, item_count) = (
        Declared::from_json(m.get(pages)),
        Declared::from_json(m.get(items)),
    );
    match m.remove(rows) {
        Some(Value::Array(list)) => Ok(Page::numbered(list, page_count, item_count)),
        _ => Err(resp.malformed(format!("the answer has no {rows} list"))),
    }
}

/// A JSON array body's rows, undecoded (each is decoded on its own by the pager).
pub fn array_body(resp: &Response) -> Result<Vec<Value>> {
    match resp.json::<Value>()? {
        Value::Array(list) => Ok(list),
        _ => Err(resp.malformed("the answer is not a JSON list")),
    }
}

/// A JSON object body decoded into a wire struct `W` whose rows field holds raw rows
/// (`Vec<Value>`), for envelopes with more than a list and a total.
pub fn envelope<W: for<'de> Deserialize<'de>>(resp: &Response) -> Result<W> {
    if resp.bytes().iter().all(u8::is_ascii_whitespace) {
        return Err(resp.malformed("the answer is empty"));
    }
    resp.json::<W>()
}

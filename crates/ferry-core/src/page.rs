//! The pager: owns the paging loop of a list read (OpenDAL's `PageList`), so every
//! provider pages, stops and judges completeness the same way. The provider says how to
//! fetch ONE page ([`PageRequest`] in, [`Page`] out) and how to decode one row; the pager
//! loops, checks cancellation between pages, applies the one failure policy and feeds a
//! [`Reader`].
//!
//! Paging styles ([`Paging`]) and what proves the end of the list:
//! - **offset + total** (Jellyfin `StartIndex`/`TotalRecordCount`, Plex
//!   `X-Plex-Container-Start`/`totalSize`): the rows accounted for reach the declared
//!   total, which was valid and the same on every page;
//! - **page + page count** (Trakt `X-Pagination-Page`/`-Page-Count`/`-Item-Count`): the
//!   last declared page was read and the rows match the declared item count;
//! - **cursor / has-more**: the service's explicit end of list (no next cursor,
//!   `has_more = false`).
//!
//! The read is partial (rows kept) when a total or page count is missing, invalid or
//! changes while reading; on an empty page before the declared end, a short page before
//! the total, a repeated page or cursor, runaway paging; when the final count disagrees
//! with the total; when a row does not decode; and when a page after the first fails.
//!
//! Failure policy: the first page failing is an error (nothing was read); a later page
//! failing makes the read partial with the reason, except cancellation and auth
//! failures, which are errors wherever they happen (the run stops / the user must act).

use std::future::Future;

use serde_json::Value;

use crate::error::{ErrorKind, Result};
use crate::ops::Context;
use crate::read::{Declared, Read, Reader, Row};

/// Pages a read may take when no total bounds it.
pub const MAX_PAGES: usize = 100_000;

/// How a list is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// A start offset and a page size; each page declares the list's total.
    /// `total_name` is the service's name for it (`TotalRecordCount`), for reasons.
    Offset {
        page_size: usize,
        total_name: &'static str,
    },
    /// Page numbers from 1 with a page size; each page declares the page count and the
    /// item count.
    Numbered { limit: usize },
    /// An opaque cursor or a has-more flag; `limit` is the page size to ask for.
    Cursor { limit: usize },
}

impl Paging {
    fn limit(&self) -> usize {
        match *self {
            Paging::Offset { page_size, .. } => page_size,
            Paging::Numbered { limit } | Paging::Cursor { limit } => limit,
        }
        .max(1)
    }
}

/// Which page to fetch. Every style fills every field, so a provider reads the ones its
/// protocol uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 0 for the first page.
    pub index: usize,
    /// Rows before this page (offset paging's start).
    pub offset: usize,
    /// Rows to ask for.
    pub limit: usize,
    /// 1-based page number (numbered paging).
    pub page: usize,
    /// The cursor the previous page handed out (`None` on the first page).
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn is_first(&self) -> bool {
        self.index == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Offset paging: the total decides.
    Total(Declared),
    /// Numbered paging: the page count and item count decide.
    Counts { pages: Declared, items: Declared },
    /// A cursor to the next page, or the end.
    Cursor(Option<String>),
    /// Whether more pages follow.
    HasMore(bool),
}

/// One fetched page: its raw rows and what it says about the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    rows: Vec<Value>,
    next: Next,
}

impl Page {
    /// An offset page with the total it declared.
    pub fn offset(rows: Vec<Value>, total: Declared) -> Page {
        Page {
            rows,
            next: Next::Total(total),
        }
    }

    /// A numbered page with its declared page count and item count.
    pub fn numbered(rows: Vec<Value>, page_count: Declared, item_count: Declared) -> Page {
        Page {
            rows,
            next: Next::Counts {
                pages: page_count,
                items: item_count,
            },
        }
    }

    /// A cursor page: the cursor to the next page, `None` at the end of the list.
    pub fn cursor(rows: Vec<Value>, next: Option<String>) -> Page {
        Page {
            rows,
            next: Next::Cursor(next),
        }
    }

    /// A page with a has-more flag.
    pub fn has_more(rows: Vec<Value>, more: bool) -> Page {
        Page {
            rows,
            next: Next::HasMore(more),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The bookkeeping of one paged read: the rules, free of I/O (tested on their own).
#[derive(Debug)]
struct Progress {
    what: String,
    paging: Paging,
    index: usize,
    offset: usize,
    cursor: Option<String>,
    /// The declared total (offset) or item count (numbered), as first seen.
    total: Option<u64>,
    /// Numbered paging: the declared page count, as first seen.
    pages: Option<u64>,
    /// The first fault of a declared value (reported once).
    declared_fault: bool,
    last_sig: Option<(String, String)>,
    seen_cursors: std::collections::HashSet<String>,
    partial: Vec<String>,
}

impl Progress {
    fn new(what: &str, paging: Paging) -> Self {
        Progress {
            what: what.to_owned(),
            paging,
            index: 0,
            offset: 0,
            cursor: None,
            total: None,
            pages: None,
            declared_fault: false,
            last_sig: None,
            seen_cursors: std::collections::HashSet::new(),
            partial: Vec::new(),
        }
    }

    fn request(&self) -> PageRequest {
        PageRequest {
            index: self.index,
            offset: self.offset,
            limit: self.paging.limit(),
            page: self.index + 1,
            cursor: self.cursor.clone(),
        }
    }

    fn max_pages(&self) -> usize {
        let size = self.paging.limit() as u64;
        match (self.total, self.pages) {
            (_, Some(p)) => (p as usize).saturating_add(10),
            (Some(t), None) => ((t / size) as usize).saturating_add(10),
            (None, None) => MAX_PAGES,
        }
    }

    fn partial(&mut self, why: String) {
        self.partial.push(format!("{}: {why}", self.what));
    }

    /// Checks a declared value against the one seen first: `Some(n)` while valid and
    /// consistent.
    fn declared(&mut self, d: &Declared, name: &str, slot: Slot) -> Option<u64> {
        if let Some(fault) = d.fault(name) {
            if !self.declared_fault {
                self.declared_fault = true;
                let at = self.offset;
                self.partial(format!("{fault} on the page at offset {at}"));
            }
            return None;
        }
        let n = d.valid()?;
        let held = match slot {
            Slot::Total => &mut self.total,
            Slot::Pages => &mut self.pages,
        };
        match *held {
            Some(t) if t != n => {
                self.partial.push(format!(
                    "{}: {name} changed from {t} to {n} while reading",
                    self.what
                ));
                *held = Some(n);
            }
            _ => *held = Some(n),
        }
        Some(n)
    }

    /// Takes a page's signature; `false` when it repeats the previous page.
    fn fresh(&mut self, rows: &[Value]) -> bool {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return true;
        };
        let sig = (first.to_string(), last.to_string());
        if self.last_sig.as_ref() == Some(&sig) {
            let at = self.offset;
            self.partial(format!("the page at offset {at} repeats the previous one"));
            return false;
        }
        self.last_sig = Some(sig);
        true
    }

    /// Judges one page (already decoded into the reader); whether to fetch another.
    fn take(&mut self, n: usize, next: &Next, accounted: u64) -> bool {
        let size = self.paging.limit();
        let start = self.offset;
        self.offset += n;
        self.index += 1;
        match next {
            Next::Total(d) => {
                let name = match self.paging {
                    Paging::Offset { total_name, .. } => total_name,
                    _ => "total",
                };
                let total = self.declared(d, name, Slot::Total);
                if n == 0 {
                    if let Some(t) = total.filter(|t| accounted < *t) {
                        self.partial(format!("empty page at offset {start} before {name} {t}"));
                    }
                    return false;
                }
                match total {
                    Some(t) if accounted >= t => false,
                    Some(t) => {
                        if n < size {
                            self.partial(format!(
                                "short page at offset {start}: {n} of {size} rows with {t} declared"
                            ));
                        }
                        true
                    }
                    None => n >= size,
                }
            }
            Next::Counts { pages, items } => {
                let pc = self.declared(pages, "page count", Slot::Pages);
                // Checked here (valid, unchanged); matched against the rows at the end.
                self.declared(items, "item count", Slot::Total);
                let page = self.index as u64;
                match pc {
                    Some(p) if page >= p => false,
                    Some(p) => {
                        if n == 0 {
                            self.partial(format!("page {page} of {p} is empty"));
                            return false;
                        }
                        true
                    }
                    None => n >= size,
                }
            }
            Next::Cursor(c) => match c {
                None => false,
                Some(c) if !self.seen_cursors.insert(c.clone()) => {
                    self.partial(format!("the cursor after offset {start} repeats"));
                    false
                }
                Some(c) => {
                    if n == 0 {
                        self.partial(format!("an empty page at offset {start} claims more"));
                        return false;
                    }
                    self.cursor = Some(c.clone());
                    true
                }
            },
            Next::HasMore(more) => {
                if *more && n == 0 {
                    self.partial(format!("an empty page at offset {start} claims more"));
                    return false;
                }
                *more
            }
        }
    }

    /// Why the read is incomplete, after the last page.
    fn finish(mut self, accounted: u64) -> Vec<String> {
        if let Some(t) = self.total.filter(|t| *t != accounted) {
            let name = match self.paging {
                Paging::Offset { total_name, .. } => total_name,
                _ => "item count",
            };
            self.partial(format!("read {accounted} rows but {name} is {t}"));
        }
        self.partial
    }
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Total,
    Pages,
}

/// A paged read in one call: see the module documentation.
#[derive(Debug)]
pub struct Pager<'a> {
    cx: &'a Context,
    what: String,
    paging: Paging,
}

impl<'a> Pager<'a> {
    /// `what` names the list in reasons and events ("library", "watchlist").
    pub fn new(cx: &'a Context, what: impl Into<String>, paging: Paging) -> Self {
        Pager {
            cx,
            what: what.into(),
            paging,
        }
    }

    /// Reads every page with `fetch`, decoding each row with `decode`.
    pub async fn read<T, F, Fut, D>(self, mut fetch: F, mut decode: D) -> Result<Read<T>>
    where
        F: FnMut(PageRequest) -> Fut,
        Fut: Future<Output = Result<Page>>,
        D: FnMut(Value) -> Row<T>,
    {
        let mut progress = Progress::new(&self.what, self.paging);
        let mut reader = Reader::new(self.what.clone());
        loop {
            self.cx.check_cancelled()?;
            if progress.index >= progress.max_pages() {
                let n = progress.index;
                progress.partial(format!("stopped after {n} pages (runaway paging)"));
                break;
            }
            let req = progress.request();
            let first = req.is_first();
            let page = match fetch(req).await {
                Ok(p) => p,
                Err(e) if first || matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Auth) => {
                    return Err(e);
                }
                Err(e) => {
                    let at = progress.offset;
                    progress.partial(format!("the page at offset {at} failed: {e}"));
                    break;
                }
            };
            if !progress.fresh(&page.rows) {
                break;
            }
            let n = page.rows.len();
            reader.rows(page.rows, &mut decode);
            if !progress.take(n, &page.next, reader.accounted()) {
                break;
            }
        }
        for why in progress.finish(reader.accounted()) {
            reader.mark_partial(why);
        }
        let read = reader.finish();
        read.proof()
            .report_undecodable(&self.cx.emitter, &self.what);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::error::Error;
    use crate::event::{CollectingSink, Emitter};
    use serde_json::json;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn rows(r: std::ops::Range<u32>) -> Vec<Value> {
        r.map(|i| json!(i)).collect()
    }

    fn num(v: Value) -> Row<u64> {
        match v.as_u64() {
            Some(n) => Row::Keep(n),
            None => Row::Bad("not a number".into()),
        }
    }

    const OFFSET: Paging = Paging::Offset {
        page_size: 2,
        total_name: "TotalRecordCount",
    };

    /// Serves `pages` in order (an `Err` answers with a 503) and records the requests.
    async fn read(
        paging: Paging,
        pages: Vec<Result<Page>>,
    ) -> (Result<Read<u64>>, Vec<PageRequest>) {
        let cx = Context::default();
        let queue = Mutex::new(VecDeque::from(pages));
        let seen = Mutex::new(Vec::new());
        let r = Pager::new(&cx, "list", paging)
            .read(
                |req| {
                    seen.lock().unwrap().push(req);
                    let next = queue
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or_else(|| Ok(Page::cursor(vec![], None)));
                    async move { next }
                },
                num,
            )
            .await;
        (r, seen.into_inner().unwrap())
    }

    fn reason(r: &Result<Read<u64>>) -> String {
        r.as_ref().unwrap().proof().reason().unwrap_or_default()
    }

    fn down() -> Error {
        Error::new(ErrorKind::Unavailable, "503")
    }

    #[tokio::test]
    async fn an_offset_read_to_its_total_is_complete() {
        let t = || Declared::Valid(5);
        let (r, reqs) = read(
            OFFSET,
            vec![
                Ok(Page::offset(rows(0..2), t())),
                Ok(Page::offset(rows(2..4), t())),
                Ok(Page::offset(rows(4..5), t())),
            ],
        )
        .await;
        let r = r.unwrap();
        assert!(r.is_complete(), "{:?}", r.proof());
        assert_eq!(r.rows, vec![0, 1, 2, 3, 4]);
        let offsets: Vec<usize> = reqs.iter().map(|q| q.offset).collect();
        assert_eq!(offsets, vec![0, 2, 4]);
    }

    #[tokio::test]
    async fn every_sign_of_a_bad_offset_read_makes_it_partial() {
        let v = Declared::Valid;
        let cases: Vec<(Vec<Result<Page>>, &str)> = vec![
            (
                vec![
                    Ok(Page::offset(rows(0..2), v(5))),
                    Ok(Page::offset(vec![], v(5))),
                ],
                "empty page at offset 2 before TotalRecordCount 5",
            ),
            (
                vec![
                    Ok(Page::offset(rows(0..2), v(6))),
                    Ok(Page::offset(rows(2..3), v(6))),
                    Ok(Page::offset(rows(3..6), v(6))),
                ],
                "short page",
            ),
            (
                vec![
                    Ok(Page::offset(rows(0..2), v(6))),
                    Ok(Page::offset(rows(0..2), v(6))),
                ],
                "repeats the previous one",
            ),
            (
                vec![
                    Ok(Page::offset(rows(0..2), v(4))),
                    Ok(Page::offset(rows(2..4), v(5))),
                ],
                "changed from 4 to 5",
            ),
            (
                vec![
                    Ok(Page::offset(rows(0..2), Declared::Missing)),
                    Ok(Page::offset(rows(2..3), Declared::Missing)),
                ],
                "TotalRecordCount missing",
            ),
            (
                vec![
                    Ok(Page::offset(rows(0..2), Declared::Invalid("-1".into()))),
                    Ok(Page::offset(rows(2..3), v(3))),
                ],
                "TotalRecordCount invalid (-1)",
            ),
            (
                vec![Ok(Page::offset(rows(0..2), v(5))), Err(down())],
                "the page at offset 2 failed",
            ),
            (
                vec![Ok(Page::offset(vec![json!(0), json!(null)], v(2)))],
                "undecodable_row: list: 1 row(s)",
            ),
            (
                vec![Ok(Page::offset(rows(0..2), v(1)))],
                "read 2 rows but TotalRecordCount is 1",
            ),
        ];
        for (pages, want) in cases {
            let (r, _) = read(OFFSET, pages).await;
            let why = reason(&r);
            assert!(why.contains(want), "want {want:?}, got {why:?}");
        }
    }

    #[tokio::test]
    async fn the_first_page_failing_is_an_error_and_auth_always_is() {
        let (r, _) = read(OFFSET, vec![Err(down())]).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Unavailable);
        let (r, _) = read(
            OFFSET,
            vec![
                Ok(Page::offset(rows(0..2), Declared::Valid(4))),
                Err(Error::new(ErrorKind::Auth, "401")),
            ],
        )
        .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Auth);
    }

    #[tokio::test]
    async fn numbered_pages_need_valid_counts_matched_by_the_rows() {
        let v = Declared::Valid;
        let p = Paging::Numbered { limit: 2 };
        let (r, reqs) = read(
            p,
            vec![
                Ok(Page::numbered(rows(0..2), v(2), v(3))),
                Ok(Page::numbered(rows(2..3), v(2), v(3))),
            ],
        )
        .await;
        assert!(r.as_ref().unwrap().is_complete(), "{}", reason(&r));
        assert_eq!(reqs.iter().map(|q| q.page).collect::<Vec<_>>(), vec![1, 2]);
        let (r, _) = read(
            p,
            vec![
                Ok(Page::numbered(rows(0..2), v(2), v(4))),
                Ok(Page::numbered(rows(2..3), v(2), v(4))),
            ],
        )
        .await;
        assert!(
            reason(&r).contains("read 3 rows but item count is 4"),
            "{}",
            reason(&r)
        );
        let (r, _) = read(
            p,
            vec![Ok(Page::numbered(
                rows(0..1),
                Declared::Missing,
                Declared::Missing,
            ))],
        )
        .await;
        assert!(reason(&r).contains("page count missing"), "{}", reason(&r));
    }

    #[tokio::test]
    async fn cursors_end_only_where_the_service_says() {
        let p = Paging::Cursor { limit: 2 };
        let (r, reqs) = read(
            p,
            vec![
                Ok(Page::cursor(rows(0..2), Some("c1".into()))),
                Ok(Page::cursor(rows(2..3), None)),
            ],
        )
        .await;
        assert!(r.as_ref().unwrap().is_complete());
        assert_eq!(reqs[1].cursor.as_deref(), Some("c1"));
        let (r, _) = read(
            p,
            vec![
                Ok(Page::cursor(rows(0..2), Some("c1".into()))),
                Ok(Page::cursor(rows(2..4), Some("c1".into()))),
            ],
        )
        .await;
        assert!(reason(&r).contains("repeats"), "{}", reason(&r));
        let (r, _) = read(
            p,
            vec![
                Ok(Page::has_more(rows(0..2), true)),
                Ok(Page::has_more(vec![], true)),
            ],
        )
        .await;
        assert!(reason(&r).contains("claims more"), "{}", reason(&r));
        let (r, _) = read(
            p,
            vec![
                Ok(Page::has_more(rows(0..2), true)),
                Ok(Page::has_more(rows(2..3), false)),
            ],
        )
        .await;
        assert!(r.unwrap().is_complete());
    }

    #[tokio::test]
    async fn cancellation_stops_between_pages_and_bad_rows_are_reported() {
        let sink = CollectingSink::new();
        let cx = Context::new(Emitter::to_sink(sink.clone()), CancelToken::new());
        let calls = Mutex::new(0);
        let r = Pager::new(&cx, "list", OFFSET)
            .read(
                |_req| {
                    *calls.lock().unwrap() += 1;
                    cx.cancel.cancel();
                    async { Ok(Page::offset(vec![json!(1), json!("x")], Declared::Valid(9))) }
                },
                num,
            )
            .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(*calls.lock().unwrap(), 1);
        let cx = Context::new(Emitter::to_sink(sink.clone()), CancelToken::new());
        let r = Pager::new(&cx, "list", OFFSET)
            .read(
                |_req| async { Ok(Page::offset(vec![json!(1), json!("x")], Declared::Valid(2))) },
                num,
            )
            .await
            .unwrap();
        assert_eq!(r.rows, vec![1]);
        assert_eq!(sink.named("read:undecodable_row").len(), 1);
    }
}

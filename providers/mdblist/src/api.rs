//! MDBList over HTTP: one page of a list, one write, the activity stamps, the health probe.

use ferry_core::lists::Lists;
use ferry_core::{Context, Declared, Page, PageRequest, Result};
use ferry_http::{HttpClient, Response};
use serde_json::Value;

use crate::model::{LastActivities, PageBody, WriteAnswer};

/// One paged list: where it is, and which of the answer's lists hold its rows.
#[derive(Debug)]
pub(crate) struct List {
    /// Names the list in reasons and events.
    pub(crate) what: &'static str,
    pub(crate) path: &'static str,
    pub(crate) query: &'static [(&'static str, &'static str)],
    /// The answer's lists this read holds, and those it knows and skips.
    pub(crate) lists: Lists,
}

pub(crate) const WATCHLIST: List = List {
    what: "watchlist",
    path: "/watchlist/items",
    query: &[("unified", "true")],
    // `unified=true` may answer one list (`items`, `results`) instead of two.
    lists: Lists {
        keep: &["movies", "shows", "items", "results"],
        skip: &[],
    },
};

pub(crate) const RATINGS: List = List {
    what: "ratings",
    path: "/sync/ratings",
    query: &[],
    // Season and episode ratings are not declared.
    lists: Lists {
        keep: &["movies", "shows"],
        skip: &["seasons", "episodes"],
    },
};

pub(crate) const HISTORY: List = List {
    what: "history",
    path: "/sync/watched",
    // One row per play, each with its `play_id`: what a removal names.
    query: &[("plays", "all")],
    // Show- and season-level rows are not plays ferry can key.
    lists: Lists {
        keep: &["movies", "episodes"],
        skip: &["shows", "seasons"],
    },
};

/// The service's name for the declared total, in reasons.
pub(crate) const TOTAL_NAME: &str = "pagination total_*";

#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) http: HttpClient,
}

impl Api {
    /// One page of `list`: `limit`/`offset`, every row of every list on the page, tagged
    /// with its list (every list takes page slots, so each row is accounted for).
    pub(crate) async fn page(&self, cx: &Context, list: &List, req: PageRequest) -> Result<Page> {
        let op = format!("GET {}", list.path);
        let mut rb = self
            .http
            .get(op, list.path)
            .query("limit", req.limit)
            .query("offset", req.offset);
        for (k, v) in list.query {
            rb = rb.query(*k, *v);
        }
        let resp = rb.send(cx).await?;
        let body: PageBody = ferry_http::page::envelope(&resp)?;
        if let Some(e) = &body.error {
            return Err(resp.malformed(format!("MDBList answered with an error: {e}")));
        }
        let (total, more) = (body.total(), body.has_more());
        let rows = list.lists.rows(body.lists).map_err(|m| resp.malformed(m))?;
        Ok(match (total, more) {
            // No totals: `has_more` is the end of the list. A full page that claims the
            // end is checked with one more request (rows there are read, not lost).
            (Declared::Missing, Some(more)) => {
                let full = rows.len() >= req.limit;
                Page::has_more(rows, more || full)
            }
            // Totals (valid or not) decide; a page without a usable pagination block
            // declares nothing, and nothing then proves the end of the list.
            (total, _) => Page::offset(rows, total),
        })
    }

    /// One write. `Ok(None)`: the service took it (2xx) but its answer does not decode,
    /// so nothing is known of what it did (a re-read decides).
    pub(crate) async fn write(
        &self,
        cx: &Context,
        path: &str,
        body: &Value,
    ) -> Result<Option<WriteAnswer>> {
        let resp = self
            .http
            .post(format!("POST {path}"), path)
            .json(body)
            .send(cx)
            .await?;
        Ok(answer(&resp))
    }

    pub(crate) async fn last_activities(&self, cx: &Context) -> Result<LastActivities> {
        let path = "/sync/last_activities";
        let resp = self.http.get(format!("GET {path}"), path).send(cx).await?;
        ferry_http::page::envelope(&resp)
    }

    /// `GET /user`, bypassing the breaker.
    pub(crate) async fn user(&self, cx: &Context) -> Result<()> {
        let resp = self.http.get("GET /user", "/user").probe().send(cx).await?;
        ferry_http::page::envelope::<serde_json::Map<String, Value>>(&resp).map(|_| ())
    }
}

fn answer(resp: &Response) -> Option<WriteAnswer> {
    let a: WriteAnswer = resp.json().ok()?;
    Some(a)
}

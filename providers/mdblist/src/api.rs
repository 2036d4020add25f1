//! MDBList over HTTP: where each feature's list lives, one page of a list, one write,
//! the activity stamps, the health probe.

use ferry_core::lists::Lists;
use ferry_core::{Context, Declared, Feature, MediaType, Page, PageRequest, Result, Row};
use ferry_http::HttpClient;
use serde_json::{Map, Value};

use crate::convert::{self, Got};
use crate::model::{LastActivities, PageBody, WriteAnswer};

/// One feature's list: where it is read and written, which of an answer's lists hold
/// its rows, and how one row decodes.
#[derive(Debug)]
pub(crate) struct List {
    pub(crate) feature: Feature,
    pub(crate) kinds: &'static [MediaType],
    pub(crate) path: &'static str,
    pub(crate) query: &'static [(&'static str, &'static str)],
    /// The answer's lists this read holds, and those it knows and skips.
    pub(crate) lists: Lists,
    pub(crate) decode: fn(&Lists, &Value) -> Row<Got>,
    pub(crate) add: &'static str,
    pub(crate) remove: &'static str,
}

const TITLES: &[MediaType] = &[MediaType::Movie, MediaType::Show];

/// Watchlist, ratings, history: the features MDBList holds.
pub(crate) const LISTS: [List; 3] = [
    List {
        feature: Feature::Watchlist,
        kinds: TITLES,
        path: "/watchlist/items",
        query: &[("unified", "true")],
        // `unified=true` may answer one list (`items`, `results`) instead of two.
        lists: Lists {
            keep: &["movies", "shows", "items", "results"],
            skip: &[],
        },
        decode: convert::watchlist_row,
        add: "/watchlist/items/add",
        remove: "/watchlist/items/remove",
    },
    List {
        feature: Feature::Ratings,
        kinds: TITLES,
        path: "/sync/ratings",
        query: &[],
        // Season and episode ratings are not declared.
        lists: Lists {
            keep: &["movies", "shows"],
            skip: &["seasons", "episodes"],
        },
        decode: convert::rating_row,
        add: "/sync/ratings",
        remove: "/sync/ratings/remove",
    },
    List {
        feature: Feature::History,
        kinds: &[MediaType::Movie, MediaType::Episode],
        path: "/sync/watched",
        // One row per play, each with its `play_id`: what a removal names.
        query: &[("plays", "all")],
        // Show- and season-level rows are not plays ferry can key.
        lists: Lists {
            keep: &["movies", "episodes"],
            skip: &["shows", "seasons"],
        },
        decode: convert::play_row,
        add: "/sync/watched",
        // Removes exactly the plays named; `/sync/watched/remove` drops every play of a
        // title.
        remove: "/sync/watched/plays/remove",
    },
];

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
        let rows = list.lists.rows(body.lists).map_err(|m| resp.malformed(m))?;
        let pagination = body.pagination.unwrap_or_default();
        Ok(match (pagination.total(), pagination.has_more) {
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
        let op = format!("POST {path}");
        let resp = self.http.post(op, path).json(body).send(cx).await?;
        Ok(resp.json().ok())
    }

    pub(crate) async fn last_activities(&self, cx: &Context) -> Result<LastActivities> {
        let path = "/sync/last_activities";
        let resp = self.http.get(format!("GET {path}"), path).send(cx).await?;
        ferry_http::page::envelope(&resp)
    }

    /// `GET /user`, bypassing the breaker.
    pub(crate) async fn user(&self, cx: &Context) -> Result<()> {
        let resp = self.http.get("GET /user", "/user").probe().send(cx).await?;
        ferry_http::page::envelope::<Map<String, Value>>(&resp).map(|_| ())
    }
}

//! SIMKL requests over `ferry-http`: the identification every request carries, and the
//! decoding of SIMKL's read bodies (where `null` means "nothing" and nothing else does).

use ferry_core::{Context, Result, Secret};
use ferry_http::{HttpClient, RequestBuilder, Response};
use serde_json::Value;

use crate::convert::Bucket;
use crate::model::{ActivitiesRow, ListBody, WriteAnswer};

/// The app name sent as `app-name` (SIMKL asks for a lower-case identifier).
pub(crate) const APP_NAME: &str = "ferry";
/// The app version sent as `app-version`.
pub(crate) const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) http: HttpClient,
    client_id: Secret,
}

impl Api {
    pub(crate) fn new(http: HttpClient, client_id: Secret) -> Self {
        Api { http, client_id }
    }

    /// SIMKL wants `client_id`, `app-name` and `app-version` in the query of every request
    /// (the `simkl-api-key` header is set on the client as well).
    fn identify<'a>(&self, rb: RequestBuilder<'a>) -> RequestBuilder<'a> {
        rb.query("client_id", self.client_id.expose())
            .query("app-name", APP_NAME)
            .query("app-version", APP_VERSION)
    }

    pub(crate) fn get(&self, op: &str, path: &str) -> RequestBuilder<'_> {
        self.identify(self.http.get(op, path))
    }

    pub(crate) fn post(&self, op: &str, path: &str) -> RequestBuilder<'_> {
        self.identify(self.http.post(op, path))
    }

    /// `GET /sync/activities`.
    pub(crate) async fn activities(&self, cx: &Context) -> Result<ActivitiesRow> {
        let resp = self
            .get("GET /sync/activities", "/sync/activities")
            .send(cx)
            .await?;
        ferry_http::page::envelope(&resp)
    }

    /// One write; `None` when SIMKL answered without a body it understands (some writes
    /// answer with an empty one): a re-read decides.
    pub(crate) async fn write(
        &self,
        cx: &Context,
        path: &str,
        body: &Value,
    ) -> Result<Option<WriteAnswer>> {
        let resp = self
            .post(&format!("POST {path}"), path)
            .json(body)
            .send(cx)
            .await?;
        Ok(resp.json::<WriteAnswer>().ok())
    }

    /// One read of bucket `b`: its rows, where SIMKL's `null` (or `{}`) is an empty result.
    pub(crate) async fn rows(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        query: &[(&str, String)],
        b: Bucket,
    ) -> Result<Vec<Value>> {
        let mut rb = self.get(op, path);
        for (k, v) in query {
            rb = rb.query(*k, v);
        }
        let resp = rb.send(cx).await?;
        rows_of(&resp, b)
    }
}

/// The rows of bucket `b` in a read's answer, undecoded. An empty body is not an answer
/// SIMKL gives for "nothing" (that is `null` or `{}`), so it is an error, never an empty
/// list; so is an object with `error`, or one with unknown keys only.
pub(crate) fn rows_of(resp: &Response, b: Bucket) -> Result<Vec<Value>> {
    let m = match ferry_http::page::envelope::<ListBody>(resp)? {
        ListBody::Nothing(()) => return Ok(Vec::new()),
        ListBody::Rows(rows) => return Ok(rows),
        ListBody::Lists(m) => m,
    };
    if let Some(e) = m.get("error") {
        return Err(resp.malformed(format!("SIMKL answered with an error: {e}")));
    }
    match m.get(b.as_str()) {
        Some(Value::Array(rows)) => Ok(rows.clone()),
        Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(resp.malformed(format!("`{}` is not a list", b.as_str()))),
        // Other catalogs only: nothing of this one.
        None if m
            .keys()
            .all(|k| Bucket::ALL.iter().any(|b| b.as_str() == k)) =>
        {
            Ok(Vec::new())
        }
        None => Err(resp.malformed(format!(
            "an object without `{}` and with unknown keys",
            b.as_str()
        ))),
    }
}

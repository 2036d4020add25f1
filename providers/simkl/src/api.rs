//! SIMKL requests over `ferry-http`: the identification every request carries, and the
//! decoding of SIMKL's read bodies (where `null` means "nothing" and nothing else does).

use ferry_core::{Context, Error, ErrorKind, Outcome, Result, Secret, UnresolvedReason};
use ferry_http::{HttpClient, RequestBuilder, Response};
use serde_json::Value;

use crate::convert::Bucket;

/// The app name sent as `app-name` (SIMKL asks for a lower-case identifier).
pub(crate) const APP_NAME: &str = "ferry";
/// The app version sent as `app-version`.
pub(crate) const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) http: HttpClient,
    client_id: Secret,
}

pub(crate) fn malformed(op: &str, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::MalformedResponse, msg)
        .with_provider("simkl")
        .with_operation(op.to_owned())
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

    /// `GET /sync/activities` as JSON; anything but an object is malformed.
    pub(crate) async fn activities(&self, cx: &Context) -> Result<Value> {
        let op = "GET /sync/activities";
        let v = decode(&self.get(op, "/sync/activities").send(cx).await?, op)?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(malformed(op, "the activities answer is not an object"))
        }
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
        rows_of(&decode(&resp, op)?, b, op)
    }
}

/// Decodes a read's body. An empty body is not an answer SIMKL gives for "nothing" (that is
/// `null`), so it is an error, never an empty list.
pub(crate) fn decode(resp: &Response, op: &str) -> Result<Value> {
    if resp.bytes().iter().all(u8::is_ascii_whitespace) {
        return Err(malformed(
            op,
            format!(
                "HTTP {} with an empty body where JSON was expected",
                resp.status()
            ),
        ));
    }
    resp.json_value()
}

/// The rows of bucket `b` in a decoded read.
pub(crate) fn rows_of(v: &Value, b: Bucket, op: &str) -> Result<Vec<Value>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(rows) => Ok(rows.clone()),
        Value::Object(m) => {
            if let Some(e) = m.get("error") {
                return Err(malformed(op, format!("SIMKL answered with an error: {e}")));
            }
            match m.get(b.as_str()) {
                Some(Value::Array(rows)) => Ok(rows.clone()),
                Some(Value::Null) => Ok(Vec::new()),
                Some(_) => Err(malformed(op, format!("`{}` is not a list", b.as_str()))),
                // `{}` or other catalogs only: nothing of this one. Any other shape is not
                // an answer we understand, and must not read as "the user has nothing".
                None if m
                    .keys()
                    .all(|k| Bucket::ALL.iter().any(|b| b.as_str() == k)) =>
                {
                    Ok(Vec::new())
                }
                None => Err(malformed(
                    op,
                    format!("an object without `{}` and with unknown keys", b.as_str()),
                )),
            }
        }
        _ => Err(malformed(
            op,
            "the answer is neither a list, an object nor null",
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_and_empty_objects_are_empty_results() {
        assert!(
            rows_of(&Value::Null, Bucket::Movies, "op")
                .unwrap()
                .is_empty()
        );
        assert!(
            rows_of(&json!({}), Bucket::Movies, "op")
                .unwrap()
                .is_empty()
        );
        assert!(
            rows_of(&json!({"shows": [1]}), Bucket::Movies, "op")
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            rows_of(&json!({"movies": [1, 2]}), Bucket::Movies, "op")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn unknown_shapes_are_errors_not_empty_results() {
        for v in [
            json!({"error": "user_token_failed"}),
            json!({"items": []}),
            json!({"movies": {}}),
            json!("ok"),
            json!(3),
        ] {
            let e = rows_of(&v, Bucket::Movies, "op").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::MalformedResponse, "{v}");
        }
    }
}

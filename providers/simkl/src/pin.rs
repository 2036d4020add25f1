//! SIMKL's PIN flow, for signing in without a redirect URI: ask for a code, show it to the
//! user (who enters it at the verification URL), then poll until SIMKL hands out the
//! access token. SIMKL tokens do not expire and there is no refresh.

use std::fmt;
use std::time::Duration;

use ferry_core::{Context, Error, ErrorKind, Result, Secret};
use ferry_http::{HttpClient, RetryPolicy};
use serde::Deserialize;

use crate::DEFAULT_BASE_URL;
use crate::api::{APP_NAME, APP_VERSION};

/// A PIN the user must enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinCode {
    pub user_code: String,
    pub verification_url: String,
    pub expires_in: Duration,
    /// How often SIMKL wants to be polled.
    pub interval: Duration,
}

/// The PIN flow against one SIMKL host.
pub struct PinFlow {
    http: HttpClient,
    client_id: Secret,
}

impl fmt::Debug for PinFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinFlow").field("http", &self.http).finish()
    }
}

fn malformed(op: &str, msg: &str) -> Error {
    Error::new(ErrorKind::MalformedResponse, msg)
        .with_provider("simkl")
        .with_operation(op.to_owned())
}

impl PinFlow {
    /// `base_url` defaults to SIMKL's API host.
    pub fn new(instance: &str, base_url: Option<&str>, client_id: &Secret) -> Result<Self> {
        let http = HttpClient::builder("simkl", instance)
            .base_url(base_url.unwrap_or(DEFAULT_BASE_URL))
            .secret_header("simkl-api-key", client_id)
            .retry(RetryPolicy::default().with_max_attempts(3))
            .build()?;
        Ok(PinFlow {
            http,
            client_id: client_id.clone(),
        })
    }

    async fn get(&self, cx: &Context, op: &str, path: &str) -> Result<PinAnswer> {
        let resp = self
            .http
            .get(op, path)
            .query("client_id", self.client_id.expose())
            .query("app-name", APP_NAME)
            .query("app-version", APP_VERSION)
            .send(cx)
            .await?;
        ferry_http::page::envelope(&resp)
    }

    /// `GET /oauth/pin`: a new code.
    pub async fn start(&self, cx: &Context) -> Result<PinCode> {
        let op = "GET /oauth/pin";
        let v = self.get(cx, op, "/oauth/pin").await?;
        let secs = |v: Option<u64>, d: u64| Duration::from_secs(v.unwrap_or(d));
        match (v.result.as_deref(), v.user_code, v.verification_url) {
            (Some("OK"), Some(user_code), Some(verification_url)) => Ok(PinCode {
                user_code,
                verification_url,
                expires_in: secs(v.expires_in, 900),
                interval: secs(v.interval, 5).max(Duration::from_secs(1)),
            }),
            _ => Err(malformed(op, "the PIN answer has no user_code")),
        }
    }

    /// `GET /oauth/pin/{user_code}`: the access token once the user approved, `None` while
    /// still pending.
    pub async fn poll(&self, cx: &Context, code: &PinCode) -> Result<Option<Secret>> {
        let op = "GET /oauth/pin/{user_code}";
        let v = self
            .get(cx, op, &format!("/oauth/pin/{}", code.user_code))
            .await?;
        match (v.result.as_deref(), v.access_token.as_deref()) {
            (Some("OK"), Some(t)) if !t.is_empty() => Ok(Some(Secret::new(t))),
            (Some(_), _) => Ok(None),
            _ => Err(malformed(op, "the PIN poll answer has no result")),
        }
    }

    /// Polls every `code.interval` until approved, `code.expires_in` passes, or the run is
    /// cancelled.
    pub async fn wait(&self, cx: &Context, code: &PinCode) -> Result<Secret> {
        let deadline = tokio::time::Instant::now() + code.expires_in;
        loop {
            if let Some(t) = self.poll(cx, code).await? {
                return Ok(t);
            }
            if tokio::time::Instant::now() + code.interval > deadline {
                return Err(Error::new(
                    ErrorKind::Auth,
                    "the SIMKL PIN expired before it was approved",
                )
                .with_provider("simkl"));
            }
            tokio::select! {
                _ = tokio::time::sleep(code.interval) => {}
                _ = cx.cancel.cancelled() => return Err(Error::cancelled()),
            }
        }
    }
}

/// `GET /oauth/pin` and `GET /oauth/pin/{user_code}` answers (fields of both).
#[derive(Default, Deserialize)]
#[serde(default)]
struct PinAnswer {
    result: Option<String>,
    user_code: Option<String>,
    verification_url: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
    access_token: Option<String>,
}

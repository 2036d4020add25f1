//! Signing in to plex.tv with a PIN, for `ferry auth plex`: ask plex.tv for a code, the user
//! enters it at <https://plex.tv/link>, ferry polls the PIN until plex.tv hands out the
//! account token, then proves the token with `/api/v2/user`. Plex account tokens are
//! long-lived and have no refresh.
//!
//! The PIN is bound to the `X-Plex-Client-Identifier` that asked for it; polls must carry
//! the same one, and so must the provider afterwards ([`client_identifier`]), so the
//! device that appears under the account's authorized devices is the same one.

use std::fmt;
use std::time::Duration;

use ferry_core::{Context, Error, ErrorKind, Result, Secret};
use ferry_http::{HttpClient, RetryPolicy};
use serde::Deserialize;

use crate::model::Key;

/// A PIN as plex.tv answers it (`POST /api/v2/pins`, `GET /api/v2/pins/{id}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PinWire {
    #[serde(default)]
    id: Option<Key>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    auth_token: Option<String>,
}

/// `GET /api/v2/user`.
#[derive(Debug, Deserialize)]
struct UserWire {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

/// plex.tv, where accounts, PINs and server lists live.
pub const DEFAULT_PLEX_TV_URL: &str = "https://plex.tv";
/// Where the user enters a 4-character PIN.
pub const LINK_URL: &str = "https://plex.tv/link";
/// How often the PIN is polled (plex.tv states no interval; its own apps poll about
/// once a second, ferry a little slower).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The `X-Plex-Client-Identifier` of this ferry instance: stable across runs so the
/// account lists one device per instance, not one per run.
pub fn client_identifier(instance: &str) -> String {
    format!("ferry-{instance}")
}

/// A PIN the user must enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexPin {
    pub id: u64,
    pub code: String,
    pub verification_url: String,
    pub expires_in: Duration,
    pub interval: Duration,
}

/// The account a token belongs to (from `/api/v2/user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlexAccount {
    pub username: String,
}

/// The PIN flow against one plex.tv host.
pub struct PinFlow {
    http: HttpClient,
}

impl fmt::Debug for PinFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinFlow").field("http", &self.http).finish()
    }
}

fn malformed(op: &str, msg: &str) -> Error {
    Error::new(ErrorKind::MalformedResponse, msg)
        .with_provider("plex")
        .with_operation(op.to_owned())
}

impl PinFlow {
    /// `plex_tv_url` defaults to [`DEFAULT_PLEX_TV_URL`].
    pub fn new(instance: &str, plex_tv_url: Option<&str>) -> Result<Self> {
        let http = HttpClient::builder("plex", format!("{instance}/plex.tv"))
            .base_url(plex_tv_url.unwrap_or(DEFAULT_PLEX_TV_URL))
            .header("Accept", "application/json")
            .header("X-Plex-Product", "ferry")
            .header("X-Plex-Version", env!("CARGO_PKG_VERSION"))
            .header("X-Plex-Client-Identifier", client_identifier(instance))
            .header("X-Plex-Platform", "ferry")
            .header("X-Plex-Device-Name", format!("ferry ({instance})"))
            .retry(RetryPolicy::default().with_max_attempts(3))
            .build()?;
        Ok(PinFlow { http })
    }

    /// `POST /api/v2/pins`: a new 4-character code (not `strong`: a strong code is meant
    /// for a browser redirect, which a command line does not have).
    pub async fn start(&self, cx: &Context) -> Result<PlexPin> {
        let op = "POST /api/v2/pins";
        let v: PinWire = self
            .http
            .post(op, "/api/v2/pins")
            .query("strong", "false")
            .send_json(cx)
            .await?;
        let id = v.id.and_then(|k| k.0.parse::<u64>().ok());
        let code = v.code.filter(|c| !c.trim().is_empty());
        match (id, code) {
            (Some(id), Some(code)) => Ok(PlexPin {
                id,
                code,
                verification_url: LINK_URL.to_owned(),
                expires_in: Duration::from_secs(v.expires_in.unwrap_or(900)),
                interval: POLL_INTERVAL,
            }),
            _ => Err(malformed(op, "the PIN answer has no id or code")),
        }
    }

    /// `GET /api/v2/pins/{id}`: the account token once the user linked the code, `None`
    /// while it is pending. An expired PIN is an auth error.
    pub async fn poll(&self, cx: &Context, pin: &PlexPin) -> Result<Option<Secret>> {
        let op = "GET /api/v2/pins/{id}";
        let r = self
            .http
            .get(op, format!("/api/v2/pins/{}", pin.id))
            .send(cx)
            .await;
        let v: PinWire = match r {
            Ok(resp) => resp.json()?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::Auth,
                    "the Plex PIN expired before it was linked; run `ferry auth plex` again",
                )
                .with_provider("plex"));
            }
            Err(e) => return Err(e),
        };
        if v.id.is_none() {
            return Err(malformed(op, "the PIN answer has no id"));
        }
        Ok(v.auth_token
            .filter(|t| !t.trim().is_empty())
            .map(Secret::new))
    }

    /// Polls every `pin.interval` until linked, `pin.expires_in` passes, or the run is
    /// cancelled.
    pub async fn wait(&self, cx: &Context, pin: &PlexPin) -> Result<Secret> {
        let deadline = tokio::time::Instant::now() + pin.expires_in;
        loop {
            if let Some(t) = self.poll(cx, pin).await? {
                return Ok(t);
            }
            if tokio::time::Instant::now() + pin.interval > deadline {
                return Err(Error::new(
                    ErrorKind::Auth,
                    "the Plex PIN expired before it was linked; run `ferry auth plex` again",
                )
                .with_provider("plex"));
            }
            tokio::select! {
                _ = tokio::time::sleep(pin.interval) => {}
                _ = cx.cancel.cancelled() => return Err(Error::cancelled()),
            }
        }
    }

    /// `GET /api/v2/user` with `token`: whose account it is. A token plex.tv does not
    /// accept is an auth error.
    pub async fn account(&self, cx: &Context, token: &Secret) -> Result<PlexAccount> {
        let op = "GET /api/v2/user";
        let v: UserWire = self
            .http
            .get(op, "/api/v2/user")
            .header("X-Plex-Token", token.expose())
            .send_json(cx)
            .await?;
        let username = v
            .username
            .or(v.title)
            .ok_or_else(|| malformed(op, "the account answer has no username"))?;
        Ok(PlexAccount { username })
    }
}

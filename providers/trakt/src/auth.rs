//! OAuth: the device flow `ferry auth trakt` runs, and the token refresh the HTTP layer
//! calls on a 401.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{Context, Error, ErrorKind, Result, Secret, Timestamp};
use ferry_http::{Clock, HttpClient, RetryPolicy, SystemClock, TokenRefresher, Tokens};
use serde_json::json;

use crate::model::{DeviceCodeWire, TokenWire};

/// The HTTP status an error came from, when it came from a response.
fn status_of(e: &Error) -> Option<u16> {
    e.context()
        .iter()
        .find(|(k, _)| *k == "status")
        .and_then(|(_, v)| v.parse().ok())
}

/// Trakt's redirect URI for apps without one (device and PIN apps).
pub const OOB_REDIRECT: &str = "urn:ietf:wg:oauth:2.0:oob";

/// A device code: what the user must enter, and where.
#[derive(Clone)]
pub struct DeviceCode {
    /// The code to type at [`DeviceCode::verification_url`].
    pub user_code: String,
    pub verification_url: String,
    /// How long the code is valid.
    pub expires_in: Duration,
    /// How often Trakt wants to be polled.
    pub interval: Duration,
    device_code: Secret,
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCode")
            .field("user_code", &self.user_code)
            .field("verification_url", &self.verification_url)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The tokens a grant yields. Store both: Trakt refresh tokens are single-use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at: Option<Timestamp>,
    pub scope: Option<String>,
}

impl TokenGrant {
    fn from_wire(w: TokenWire) -> Result<Self> {
        let present = |s: Option<String>| s.filter(|x| !x.is_empty());
        let (Some(access), Some(refresh)) = (present(w.access_token), present(w.refresh_token))
        else {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "the token answer has no access_token or refresh_token",
            )
            .with_provider("trakt"));
        };
        Ok(TokenGrant {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_at: w
                .created_at
                .zip(w.expires_in)
                .map(|(c, e)| Timestamp::from_unix(c + e)),
            scope: present(w.scope),
        })
    }

    pub(crate) fn tokens(&self) -> Tokens {
        let t = Tokens::new(self.access_token.clone()).with_refresh(self.refresh_token.clone());
        match self.expires_at {
            Some(at) => t.with_expiry(at),
            None => t,
        }
    }
}

/// A client for Trakt's `/oauth` endpoints: no bearer token, never refreshed.
fn oauth_client(
    base_url: &str,
    instance: &str,
    secrets: &[&Secret],
    clock: Option<Arc<dyn Clock>>,
) -> Result<HttpClient> {
    let mut b = HttpClient::builder("trakt", instance)
        .base_url(base_url)
        .header("trakt-api-version", "2");
    for s in secrets {
        b = b.secret(s);
    }
    if let Some(c) = clock {
        b = b.clock(c);
    }
    b.build()
}

/// Trakt's OAuth device flow (`/oauth/device/code`, then polling `/oauth/device/token`).
///
/// ```no_run
/// # async fn f(cx: ferry_core::Context) -> ferry_core::Result<()> {
/// use ferry_core::Secret;
/// let flow = trakt::DeviceFlow::new(
///     "https://api.trakt.tv",
///     Secret::new("client-id"),
///     Secret::new("client-secret"),
/// )?;
/// let code = flow.request_code(&cx).await?;
/// eprintln!("open {} and enter {}", code.verification_url, code.user_code);
/// let grant = flow.poll(&cx, &code).await?;
/// # let _ = grant; Ok(()) }
/// ```
pub struct DeviceFlow {
    http: HttpClient,
    client_id: Secret,
    client_secret: Secret,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DeviceFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceFlow")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl DeviceFlow {
    pub fn new(base_url: &str, client_id: Secret, client_secret: Secret) -> Result<Self> {
        Self::with_clock(
            base_url,
            client_id,
            client_secret,
            Arc::new(SystemClock::new()),
        )
    }

    /// With an injected clock for the polling waits (tests pass a `ManualClock`).
    pub fn with_clock(
        base_url: &str,
        client_id: Secret,
        client_secret: Secret,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let http = oauth_client(
            base_url,
            "device-flow",
            &[&client_id, &client_secret],
            Some(clock.clone()),
        )?;
        Ok(DeviceFlow {
            http,
            client_id,
            client_secret,
            clock,
        })
    }

    /// `POST /oauth/device/code`.
    pub async fn request_code(&self, cx: &Context) -> Result<DeviceCode> {
        let w: DeviceCodeWire = self
            .http
            .post("POST /oauth/device/code", "/oauth/device/code")
            .without_auth()
            .json(&json!({"client_id": self.client_id.expose()}))
            .send_json(cx)
            .await?;
        let device_code = w.device_code.filter(|c| !c.is_empty());
        let (Some(device_code), Some(user_code)) = (device_code, w.user_code) else {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "the device code answer has no device_code or user_code",
            )
            .with_provider("trakt"));
        };
        Ok(DeviceCode {
            user_code,
            verification_url: w
                .verification_url
                .unwrap_or_else(|| "https://trakt.tv/activate".to_owned()),
            expires_in: Duration::from_secs(w.expires_in.unwrap_or(600)),
            interval: Duration::from_secs(w.interval.unwrap_or(5).max(1)),
            device_code: Secret::new(device_code),
        })
    }

    /// Polls `POST /oauth/device/token` every `interval` until the user approves (200),
    /// denies (418), the code expires (410 or `expires_in` passes) or is refused (404
    /// invalid, 409 already used). A 429 ("slow down") adds five seconds to the interval.
    pub async fn poll(&self, cx: &Context, code: &DeviceCode) -> Result<TokenGrant> {
        let started = self.clock.monotonic();
        let mut interval = code.interval;
        let body = json!({
            "code": code.device_code.expose(),
            "client_id": self.client_id.expose(),
            "client_secret": self.client_secret.expose(),
        });
        let fail = |kind, msg: &str| Err(Error::new(kind, msg).with_provider("trakt"));
        loop {
            tokio::select! {
                _ = self.clock.sleep(interval) => {}
                _ = cx.cancel.cancelled() => return Err(Error::cancelled()),
            }
            if self.clock.monotonic().saturating_sub(started) > code.expires_in {
                return fail(
                    ErrorKind::Auth,
                    "the device code expired before it was approved",
                );
            }
            let result = self
                .http
                .post("POST /oauth/device/token", "/oauth/device/token")
                .without_auth()
                .retry(RetryPolicy::none())
                .json(&body)
                .send(cx)
                .await;
            let e = match result {
                Ok(resp) => return TokenGrant::from_wire(resp.json::<TokenWire>()?),
                Err(e) => e,
            };
            match status_of(&e) {
                Some(400) => {} // pending: the user has not entered the code yet
                Some(429) => interval += Duration::from_secs(5),
                Some(404) => {
                    return fail(
                        ErrorKind::InvalidInput,
                        "Trakt does not know this device code",
                    );
                }
                Some(409) => return fail(ErrorKind::Conflict, "this device code was already used"),
                Some(410) => return fail(ErrorKind::Auth, "the device code expired"),
                Some(418) => return fail(ErrorKind::Auth, "the user denied access"),
                _ if e.kind() == ErrorKind::Cancelled => return Err(e),
                _ if e.is_temporary() || e.kind() == ErrorKind::Unavailable => {}
                _ => return Err(e),
            }
        }
    }
}

/// Runs the whole device flow: requests a code, hands it to `show` (print it for the
/// user), and polls until the user decides. This is what `ferry auth trakt` calls.
pub async fn device_flow(
    cx: &Context,
    base_url: &str,
    client_id: Secret,
    client_secret: Secret,
    show: impl FnOnce(&DeviceCode),
) -> Result<TokenGrant> {
    let flow = DeviceFlow::new(base_url, client_id, client_secret)?;
    let code = flow.request_code(cx).await?;
    show(&code);
    flow.poll(cx, &code).await
}

/// Refreshes the access token with `POST /oauth/token` (grant `refresh_token`). Trakt
/// rotates the refresh token on every grant; the newest is kept here and persisted by
/// the HTTP layer's token sink.
pub(crate) struct Refresher {
    http: HttpClient,
    client_id: Secret,
    client_secret: Secret,
    refresh: Mutex<Secret>,
}

impl fmt::Debug for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher").finish_non_exhaustive()
    }
}

impl Refresher {
    pub(crate) fn new(
        base_url: &str,
        instance: &str,
        client_id: Secret,
        client_secret: Secret,
        refresh: Secret,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self> {
        let http = oauth_client(
            base_url,
            instance,
            &[&client_id, &client_secret, &refresh],
            clock,
        )?;
        Ok(Refresher {
            http,
            client_id,
            client_secret,
            refresh: Mutex::new(refresh),
        })
    }
}

#[async_trait]
impl TokenRefresher for Refresher {
    async fn refresh(&self, cx: &Context) -> Result<Tokens> {
        let refresh = self
            .refresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let w: TokenWire = self
            .http
            .post("POST /oauth/token", "/oauth/token")
            .without_auth()
            .retry(RetryPolicy::none())
            .json(&json!({
                "refresh_token": refresh.expose(),
                "client_id": self.client_id.expose(),
                "client_secret": self.client_secret.expose(),
                "redirect_uri": OOB_REDIRECT,
                "grant_type": "refresh_token",
            }))
            .send_json(cx)
            .await?;
        let grant = TokenGrant::from_wire(w)?;
        *self.refresh.lock().unwrap_or_else(|p| p.into_inner()) = grant.refresh_token.clone();
        Ok(grant.tokens())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_never_print_tokens() {
        let parse = |v| TokenGrant::from_wire(serde_json::from_value(v).unwrap());
        let g = parse(json!({
            "access_token": "acc-123456", "refresh_token": "ref-654321",
            "expires_in": 100, "created_at": 1000, "scope": "public", "token_type": "bearer"
        }))
        .unwrap();
        assert_eq!(g.expires_at, Some(Timestamp::from_unix(1100)));
        let dbg = format!("{g:?}");
        assert!(
            !dbg.contains("acc-123456") && !dbg.contains("ref-654321"),
            "{dbg}"
        );
        assert!(parse(json!({"access_token": "x"})).is_err());
    }
}

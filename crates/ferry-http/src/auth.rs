//! Credentials on the wire, and token refresh: ahead of expiry, and on 401.
//!
//! The client attaches the current token per attempt (so a rotated token is used at once).
//! On a 401 the provider's [`TokenRefresher`] runs *once* for all concurrent requests that
//! saw the same token refused (single flight: a tokio mutex plus a token generation), the
//! new tokens go to the [`TokenSink`], and each request is replayed once.
//!
//! When the token's expiry is known ([`crate::HttpClientBuilder::token_expiry`], then each
//! refresh's [`Tokens::expires_at`]), a request sent less than [`REFRESH_AHEAD`] before it
//! refreshes first, through the same single flight, at most once per token: a request
//! never goes out with a token about to lapse mid-run. A failed early refresh is not
//! retried by that request's 401 (the token endpoint is asked once).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use ferry_core::{Context, Error, ErrorKind, KvStore, Result, Secret, Timestamp};
use reqwest::header::HeaderName;
use serde_json::json;

/// Where the access token goes on each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>` (Trakt, SIMKL).
    Bearer,
    /// A custom header, e.g. `X-Plex-Token` or `X-Emby-Token`.
    Header(HeaderName),
    /// A query parameter, e.g. MDBList's `apikey`. The value never appears in events or
    /// errors: ops are caller-supplied labels and error context carries the path only.
    Query(String),
}

/// How long before expiry a token is refreshed (Trakt's tokens: reference §13,
/// "pre-flight refresh at <120 s").
pub const REFRESH_AHEAD: std::time::Duration = std::time::Duration::from_secs(120);

/// What a refresh yields. `refresh` is the (possibly rotated) refresh token, for the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_at: Option<Timestamp>,
}

impl Tokens {
    pub fn new(access: Secret) -> Self {
        Tokens {
            access,
            refresh: None,
            expires_at: None,
        }
    }

    pub fn with_refresh(mut self, refresh: Secret) -> Self {
        self.refresh = Some(refresh);
        self
    }

    pub fn with_expiry(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// Obtains new tokens after the service refused the current one (401).
///
/// A refresher that calls the service itself (Trakt's `POST /oauth/token`) should use a
/// separate [`crate::HttpClient`] or send its request with
/// [`crate::RequestBuilder::without_auth`], so a refused refresh cannot recurse.
#[async_trait]
pub trait TokenRefresher: Send + Sync + fmt::Debug {
    async fn refresh(&self, cx: &Context) -> Result<Tokens>;
}

/// Persists rotated tokens (Trakt refresh tokens are single-use: losing the new one means
/// the user re-authenticates).
pub trait TokenSink: Send + Sync + fmt::Debug {
    fn persist(&self, tokens: &Tokens) -> Result<()>;
}

/// A [`TokenSink`] on the engine's [`KvStore`]: namespace [`TOKENS_NAMESPACE`], key =
/// instance, a JSON object `{access, refresh, expires_at}`.
#[derive(Clone)]
pub struct KvTokenStore {
    store: Arc<dyn KvStore>,
    instance: String,
}

impl fmt::Debug for KvTokenStore {
    // Not derived: a store's own `Debug` (MemoryKvStore's, say) may print the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvTokenStore")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The [`KvStore`] namespace [`KvTokenStore`] writes.
pub const TOKENS_NAMESPACE: &str = "tokens";

impl KvTokenStore {
    pub fn new(store: Arc<dyn KvStore>, instance: impl Into<String>) -> Self {
        KvTokenStore {
            store,
            instance: instance.into(),
        }
    }

    /// The last persisted tokens, if any. A corrupt record is an error (not silently
    /// dropped: the caller falls back to its configured token and says so).
    pub fn load(&self) -> Result<Option<Tokens>> {
        let Some(text) = self.store.get(TOKENS_NAMESPACE, &self.instance)? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::new(ErrorKind::MalformedResponse, "stored tokens are not JSON")
                .with_context("error", e.to_string())
        })?;
        let Some(access) = v.get("access").and_then(|a| a.as_str()) else {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                "stored tokens have no access token",
            ));
        };
        Ok(Some(Tokens {
            access: Secret::new(access),
            refresh: v.get("refresh").and_then(|r| r.as_str()).map(Secret::new),
            expires_at: v
                .get("expires_at")
                .and_then(|t| t.as_i64())
                .map(Timestamp::from_unix),
        }))
    }
}

impl TokenSink for KvTokenStore {
    fn persist(&self, tokens: &Tokens) -> Result<()> {
        let v = json!({
            "access": tokens.access.expose(),
            "refresh": tokens.refresh.as_ref().map(Secret::expose),
            "expires_at": tokens.expires_at.map(Timestamp::unix),
        });
        self.store
            .put(TOKENS_NAMESPACE, &self.instance, &v.to_string())
    }
}

/// Every secret the client has seen, for scrubbing.
#[derive(Default)]
pub(crate) struct SecretSet(RwLock<Vec<Secret>>);

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretSet({} secrets)", self.all().len())
    }
}

impl SecretSet {
    pub(crate) fn add(&self, s: &Secret) {
        if s.expose().len() < 4 {
            return;
        }
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        if !g.contains(s) {
            g.push(s.clone());
        }
    }

    pub(crate) fn all(&self) -> Vec<Secret> {
        self.0.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// The raw values, for [`ferry_core::secret::scrub`].
    pub(crate) fn exposed(&self) -> Vec<String> {
        self.all().iter().map(|s| s.expose().to_owned()).collect()
    }
}

struct RefreshFlight {
    /// How many refreshes have completed, and whether the last one failed.
    completed: u64,
    last_failed: bool,
}

pub(crate) struct AuthState {
    pub(crate) scheme: AuthScheme,
    /// The current token and its generation (bumped on every rotation).
    token: RwLock<(Option<Secret>, u64)>,
    refresher: Option<Arc<dyn TokenRefresher>>,
    sink: Option<Arc<dyn TokenSink>>,
    flight: tokio::sync::Mutex<RefreshFlight>,
    /// Mirror of `flight.completed`, readable without the lock.
    completed: AtomicU64,
    /// When the current token expires, if known.
    expiry: RwLock<Option<Timestamp>>,
    /// The token generation an early refresh was last tried for (`u64::MAX`: none).
    early_tried: AtomicU64,
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthState")
            .field("scheme", &self.scheme)
            .field("token", &self.current().0)
            .field("refresher", &self.refresher.is_some())
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

/// A snapshot taken when a request is sent, so a 401 can be matched to the token it refused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthTicket {
    generation: u64,
    /// Refreshes completed when the request was sent.
    completed: u64,
}

impl AuthState {
    pub(crate) fn new(
        scheme: AuthScheme,
        token: Option<Secret>,
        refresher: Option<Arc<dyn TokenRefresher>>,
        sink: Option<Arc<dyn TokenSink>>,
        expiry: Option<Timestamp>,
    ) -> Self {
        AuthState {
            expiry: RwLock::new(expiry),
            early_tried: AtomicU64::new(u64::MAX),
            scheme,
            token: RwLock::new((token, 0)),
            refresher,
            sink,
            flight: tokio::sync::Mutex::new(RefreshFlight {
                completed: 0,
                last_failed: false,
            }),
            completed: AtomicU64::new(0),
        }
    }

    pub(crate) fn current(&self) -> (Option<Secret>, u64) {
        self.token
            .read()
            .map(|g| g.clone())
            .unwrap_or((None, u64::MAX))
    }

    pub(crate) fn can_refresh(&self) -> bool {
        self.refresher.is_some()
    }

    /// The ticket to refresh early with, when the current token expires within
    /// [`REFRESH_AHEAD`] of `now_ms` and no early refresh was tried for it yet.
    pub(crate) fn early_refresh_ticket(&self, now_ms: u64) -> Option<AuthTicket> {
        self.refresher.as_ref()?;
        let expiry = (*self.expiry.read().unwrap_or_else(|p| p.into_inner()))?;
        let left_ms = i128::from(expiry.unix()) * 1000 - i128::from(now_ms);
        if left_ms >= REFRESH_AHEAD.as_millis() as i128 {
            return None;
        }
        let (_, ticket) = self.ticket();
        let before = self.early_tried.swap(ticket.generation, Ordering::SeqCst);
        (before != ticket.generation).then_some(ticket)
    }

    /// The token to send and the ticket to present if it is refused.
    pub(crate) fn ticket(&self) -> (Option<Secret>, AuthTicket) {
        // Read the count first: the token is rotated before the count moves, so a ticket
        // never pairs an old token with a newer count.
        let completed = self.completed.load(Ordering::SeqCst);
        let (token, generation) = self.current();
        (
            token,
            AuthTicket {
                generation,
                completed,
            },
        )
    }

    /// Makes sure a newer token than the one in `ticket` exists: runs the refresher unless
    /// another request already did (or is doing) so. `Err(Auth)` if the refresh failed.
    pub(crate) async fn refresh(
        &self,
        cx: &Context,
        ticket: AuthTicket,
        secrets: &SecretSet,
        provider: &str,
        instance: &str,
    ) -> Result<()> {
        let Some(refresher) = &self.refresher else {
            return Err(Error::new(ErrorKind::Auth, "credentials refused"));
        };
        let mut flight = self.flight.lock().await;
        if self.current().1 != ticket.generation {
            return Ok(()); // someone rotated the token since we sent ours
        }
        if flight.completed > ticket.completed && flight.last_failed {
            // A refresh finished (and failed) after this request was sent: share its
            // verdict instead of hammering the token endpoint.
            return Err(Error::new(
                ErrorKind::Auth,
                "credentials refused and the token refresh failed",
            ));
        }
        let outcome = refresher.refresh(cx).await;
        let result = self.apply_refresh(cx, outcome, &mut flight, secrets, provider, instance);
        flight.completed += 1;
        self.completed.store(flight.completed, Ordering::SeqCst);
        result
    }

    fn apply_refresh(
        &self,
        cx: &Context,
        outcome: Result<Tokens>,
        flight: &mut RefreshFlight,
        secrets: &SecretSet,
        provider: &str,
        instance: &str,
    ) -> Result<()> {
        match outcome {
            Ok(tokens) => {
                flight.last_failed = false;
                secrets.add(&tokens.access);
                if let Some(r) = &tokens.refresh {
                    secrets.add(r);
                }
                if let Some(sink) = &self.sink
                    && let Err(e) = sink.persist(&tokens)
                {
                    let raw = secrets.exposed();
                    let refs: Vec<&str> = raw.iter().map(String::as_str).collect();
                    let e = e.scrubbed(&refs);
                    tracing::warn!(provider, instance, "rotated token not persisted: {e}");
                    cx.emitter
                        .warn(&format!("{instance}: rotated token not persisted: {e}"));
                }
                {
                    let mut g = self.token.write().unwrap_or_else(|p| p.into_inner());
                    g.0 = Some(tokens.access.clone());
                    g.1 += 1;
                    *self.expiry.write().unwrap_or_else(|p| p.into_inner()) = tokens.expires_at;
                }
                cx.emitter.emit(
                    "auth:refresh",
                    json!({"provider": provider, "instance": instance, "ok": true}),
                );
                tracing::info!(provider, instance, "access token refreshed");
                Ok(())
            }
            Err(e) => {
                flight.last_failed = true;
                cx.emitter.emit(
                    "auth:refresh",
                    json!({"provider": provider, "instance": instance, "ok": false, "kind": e.kind().as_str()}),
                );
                Err(Error::new(
                    ErrorKind::Auth,
                    "credentials refused and the token refresh failed",
                )
                .with_source(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::MemoryKvStore;

    #[test]
    fn kv_token_store_round_trips() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
        let s = KvTokenStore::new(kv.clone(), "trakt-main");
        assert_eq!(s.load().unwrap(), None);
        let t = Tokens::new(Secret::new("acc-1234"))
            .with_refresh(Secret::new("ref-5678"))
            .with_expiry(Timestamp::from_unix(1_700_000_000));
        s.persist(&t).unwrap();
        assert_eq!(s.load().unwrap(), Some(t.clone()));
        assert!(!format!("{t:?} {s:?}").contains("acc-1234"));
        kv.put(TOKENS_NAMESPACE, "trakt-main", "{").unwrap();
        assert!(s.load().is_err());
    }

    #[test]
    fn secret_sets_dedupe_and_skip_trivial_values() {
        let s = SecretSet::default();
        s.add(&Secret::new("abcd1234"));
        s.add(&Secret::new("abcd1234"));
        s.add(&Secret::new("ab"));
        assert_eq!(s.exposed(), ["abcd1234"]);
        assert!(!format!("{s:?}").contains("abcd"));
    }
}

//! One error type for every provider and the engine: a [`ErrorKind`] the orchestrator
//! branches on, an [`ErrorStatus`] the retry layer branches on, and context that never
//! carries a secret.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms the orchestrator can act on. Decisions key off the kind,
/// never off message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Credentials missing, expired or refused (401/403). Needs the user.
    Auth,
    /// The service asked us to slow down (429); see [`Error::retry_after`].
    RateLimited,
    /// The service is unreachable or failing (5xx, 408, connect errors, timeouts).
    Unavailable,
    /// The item or endpoint does not exist (404).
    NotFound,
    /// We sent something the service rejects, or the user's config is wrong.
    InvalidInput,
    /// The service (or a local file) answered with data we cannot decode.
    MalformedResponse,
    /// The write conflicts with the service's state (409).
    Conflict,
    /// An account cap was reached (Trakt 420: list or item limits).
    AccountLimit,
    /// The account is locked (Trakt 423).
    Locked,
    /// The provider does not support this feature or operation.
    Unsupported,
    /// The run was cancelled.
    Cancelled,
    /// Anything else: a bug or an environment failure (disk full, permissions).
    Unexpected,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::Conflict => "conflict",
            ErrorKind::AccountLimit => "account_limit",
            ErrorKind::Locked => "locked",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Unexpected => "unexpected",
        }
    }

    /// The status an error of this kind starts with.
    pub fn default_status(self) -> ErrorStatus {
        match self {
            ErrorKind::RateLimited | ErrorKind::Unavailable => ErrorStatus::Temporary,
            _ => ErrorStatus::Permanent,
        }
    }

    /// Whether this kind counts as a failure for a circuit breaker: the service being down,
    /// never the item being missing or the input being wrong.
    pub fn counts_for_breaker(self) -> bool {
        matches!(self, ErrorKind::Unavailable)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStatus {
    /// Retrying will not help.
    Permanent,
    /// Retrying may help.
    Temporary,
    /// Was temporary, but retries were exhausted: do not retry again at a higher layer.
    Persistent,
}

/// The error every provider operation returns. Boxed, so `Result<T>` stays small.
pub struct Error(Box<ErrorInner>);

struct ErrorInner {
    kind: ErrorKind,
    status: ErrorStatus,
    message: String,
    provider: Option<String>,
    operation: Option<String>,
    retry_after: Option<Duration>,
    context: Vec<(&'static str, String)>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorInner {
            kind,
            status: kind.default_status(),
            message: message.into(),
            provider: None,
            operation: None,
            retry_after: None,
            context: Vec::new(),
            source: None,
        }))
    }

    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, what)
    }

    pub fn cancelled() -> Self {
        Error::new(ErrorKind::Cancelled, "the run was cancelled")
    }

    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.0.provider = Some(provider.into());
        self
    }

    pub fn with_operation(mut self, op: impl Into<String>) -> Self {
        self.0.operation = Some(op.into());
        self
    }

    pub fn with_status(mut self, status: ErrorStatus) -> Self {
        self.0.status = status;
        self
    }

    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.0.retry_after = Some(d);
        self
    }

    /// Adds a key/value pair of context. Callers pass values that are already scrubbed
    /// of secrets (see [`crate::secret::scrub`]).
    pub fn with_context(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.0.context.push((key, value.into()));
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn status(&self) -> ErrorStatus {
        self.0.status
    }

    /// Whether the rest of a write batch should not be attempted after this error: the
    /// service is down, asked us to slow down, refused the credentials, or the run was
    /// cancelled — every remaining item would fail the same way.
    pub fn stops_batch(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::Auth
                | ErrorKind::Unavailable
                | ErrorKind::RateLimited
                | ErrorKind::Cancelled
        )
    }

    pub fn is_temporary(&self) -> bool {
        self.0.status == ErrorStatus::Temporary
    }

    /// Marks a temporary error whose retries ran out, so no outer layer retries it again.
    pub fn persist(mut self) -> Self {
        if self.0.status == ErrorStatus::Temporary {
            self.0.status = ErrorStatus::Persistent;
        }
        self
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    pub fn operation(&self) -> Option<&str> {
        self.0.operation.as_deref()
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    pub fn context(&self) -> &[(&'static str, String)] {
        &self.0.context
    }

    /// Replaces every occurrence of the given secrets in the message and context. The
    /// engine calls this with every configured secret before an error leaves a provider.
    pub fn scrubbed(mut self, secrets: &[&str]) -> Self {
        self.0.message = crate::secret::scrub(&self.0.message, secrets);
        for (_, v) in &mut self.0.context {
            *v = crate::secret::scrub(v, secrets);
        }
        if let Some(src) = self.0.source.take() {
            // The source's text may echo a URL with a token; keep only its scrubbed text.
            let text = crate::secret::scrub(&src.to_string(), secrets);
            self.0.source = Some(Box::new(SourceText(text)));
        }
        self
    }
}

#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.0.provider {
            write!(f, "{p}: ")?;
        }
        if let Some(op) = &self.0.operation {
            write!(f, "{op}: ")?;
        }
        write!(f, "{} ({}", self.0.message, self.0.kind)?;
        if self.0.status != ErrorStatus::Permanent {
            write!(
                f,
                ", {}",
                match self.0.status {
                    ErrorStatus::Temporary => "temporary",
                    ErrorStatus::Persistent => "retries exhausted",
                    ErrorStatus::Permanent => "",
                }
            )?;
        }
        if let Some(d) = self.0.retry_after {
            write!(f, ", retry after {}s", d.as_secs())?;
        }
        f.write_str(")")?;
        for (k, v) in &self.0.context {
            write!(f, " {k}={v}")?;
        }
        if let Some(src) = &self.0.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug prints the same scrubbed material as Display; no hidden fields.
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("status", &self.0.status)
            .field("provider", &self.0.provider)
            .field("operation", &self.0.operation)
            .field("message", &self.0.message)
            .field("retry_after", &self.0.retry_after)
            .field("context", &self.0.context)
            .field("source", &self.0.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_start_with_the_right_status() {
        assert!(Error::new(ErrorKind::Unavailable, "x").is_temporary());
        assert!(Error::new(ErrorKind::RateLimited, "x").is_temporary());
        assert!(!Error::new(ErrorKind::Auth, "x").is_temporary());
        assert!(!Error::new(ErrorKind::NotFound, "x").is_temporary());
        let e = Error::new(ErrorKind::Unavailable, "x").persist();
        assert_eq!(e.status(), ErrorStatus::Persistent);
        assert!(!e.is_temporary());
    }

    #[test]
    fn display_names_provider_operation_and_kind() {
        let e = Error::new(ErrorKind::RateLimited, "slow down")
            .with_provider("trakt")
            .with_operation("GET /sync/watchlist")
            .with_retry_after(Duration::from_secs(30))
            .with_context("page", "3");
        assert_eq!(
            e.to_string(),
            "trakt: GET /sync/watchlist: slow down (rate_limited, temporary, retry after 30s) page=3"
        );
    }

    #[test]
    fn scrubbing_removes_secrets_everywhere() {
        #[derive(Debug)]
        struct Src;
        impl fmt::Display for Src {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("GET http://x/?token=hunter2 failed")
            }
        }
        impl std::error::Error for Src {}
        let e = Error::new(ErrorKind::Auth, "token hunter2 refused")
            .with_context("url", "http://x/?token=hunter2")
            .with_source(Src)
            .scrubbed(&["hunter2"]);
        let all = format!("{e} {e:?}");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("[redacted]"));
    }

    #[test]
    fn breaker_counts_only_unavailability() {
        assert!(ErrorKind::Unavailable.counts_for_breaker());
        for k in [
            ErrorKind::NotFound,
            ErrorKind::InvalidInput,
            ErrorKind::AccountLimit,
            ErrorKind::Auth,
        ] {
            assert!(!k.counts_for_breaker(), "{k}");
        }
    }
}

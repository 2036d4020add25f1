//! Sign-in flows a provider declares in its descriptor, run by `ferry auth <provider>`.
//!
//! The runner knows no service: it finds the instance's config, opens the store the
//! flow keeps its token in, and hands both to the provider's [`SignIn`] with a
//! [`SignInPrompt`] that shows the user what to enter where. The flow itself (device code,
//! PIN, whatever the service publishes) lives in the provider crate, which owns HTTP.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Error;
use crate::ops::Context;
use crate::registry::{BuildEnv, ProviderConfig};

/// A boxed future a descriptor's hook returns (a fn pointer cannot name an `async fn`'s type).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the user must do to approve a sign-in: open `verification_url`, enter `user_code`
/// before `expires_in` runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCode {
    pub user_code: String,
    pub verification_url: String,
    pub expires_in: Duration,
}

/// Where a flow talks to the user (the terminal, or `auth:code` events with `--json`).
pub trait SignInPrompt: Send + Sync {
    fn show_code(&self, code: &UserCode);
}

/// One sign-in, as the runner hands it to a provider's flow.
pub struct SignInRequest<'a> {
    /// The instance's config (`${VAR}`s substituted), parsed by the flow itself.
    pub config: &'a ProviderConfig,
    /// `kv` is where the flow keeps the tokens it obtains (the state database, under the
    /// instance's name), exactly where the provider's `build` looks for them.
    pub env: &'a BuildEnv,
    pub cx: &'a Context,
    pub prompt: &'a dyn SignInPrompt,
}

impl fmt::Debug for SignInRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInRequest")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in did not finish. The runner reports the two differently: a config the
/// flow cannot start from is a usage error, a flow that failed is an error.
#[derive(Debug)]
pub enum SignInFailure {
    /// The instance's config cannot start the flow; the message names the key
    /// (`providers.tv.client_secret: ...`).
    Config(Error),
    /// The service refused, the user denied, the code expired, the run was cancelled.
    Flow(Error),
}

impl SignInFailure {
    pub fn config(e: impl Into<Error>) -> Self {
        SignInFailure::Config(e.into())
    }
}

/// Any error a flow's step returns is a failed flow; config problems are said so
/// explicitly with [`SignInFailure::config`].
impl From<Error> for SignInFailure {
    fn from(e: Error) -> Self {
        SignInFailure::Flow(e)
    }
}

impl fmt::Display for SignInFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignInFailure::Config(e) | SignInFailure::Flow(e) => e.fmt(f),
        }
    }
}

/// What a [`SignIn`]'s `run` returns.
pub type SignInRun<'a> = BoxFuture<'a, Result<(), SignInFailure>>;

/// A provider's interactive sign-in: `ferry auth <id>` runs it.
///
/// `run` obtains a token, stores it through `env.kv` (where the provider's `build` finds
/// it) and returns. Tokens never appear in its errors or events.
#[derive(Clone, Copy)]
pub struct SignIn {
    /// How the user approves, for listings: `device code`, `PIN`.
    pub method: &'static str,
    pub run: for<'a> fn(SignInRequest<'a>) -> SignInRun<'a>,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

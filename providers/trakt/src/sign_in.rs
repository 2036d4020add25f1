//! `ferry auth trakt`: the OAuth device flow, declared in the provider's descriptor.
//!
//! The instance is built first: that records which configured tokens the stored ones
//! replace (see `config::starting_tokens`), so a token written into the config later
//! still wins over the one kept here.

use ferry_core::{
    Error, ErrorKind, ProviderKind, SignIn, SignInFailure, SignInRequest, SignInRun, UserCode,
};
use ferry_http::{KvTokenStore, TokenSink, Tokens};

use crate::{TraktConfig, TraktProvider, device_flow};

pub(crate) const FLOW: SignIn = SignIn {
    method: "device code",
    run,
};

fn run(req: SignInRequest<'_>) -> SignInRun<'_> {
    Box::pin(sign_in(req))
}

fn config(req: &SignInRequest<'_>) -> Result<TraktConfig, SignInFailure> {
    req.config
        .parse()
        .map_err(|e| SignInFailure::config(Error::new(ErrorKind::InvalidInput, e.to_string())))
}

async fn sign_in(req: SignInRequest<'_>) -> Result<(), SignInFailure> {
    let instance = &req.config.instance;
    let parsed = config(&req)?;
    let Some(secret) = parsed.client_secret.clone() else {
        return Err(SignInFailure::config(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "providers.{instance}.client_secret: the device sign-in needs your Trakt app's client secret"
            ),
        )));
    };
    TraktProvider::build(instance, config(&req)?, req.env).map_err(SignInFailure::config)?;
    let grant = device_flow(
        req.cx,
        &parsed.base_url,
        parsed.client_id.clone(),
        secret,
        |code| {
            req.prompt.show_code(&UserCode {
                user_code: code.user_code.clone(),
                verification_url: code.verification_url.clone(),
                expires_in: code.expires_in,
            })
        },
    )
    .await?;
    KvTokenStore::new(req.env.kv.clone(), instance.as_str()).persist(&Tokens {
        access: grant.access_token,
        refresh: Some(grant.refresh_token),
        expires_at: grant.expires_at,
    })?;
    Ok(())
}

//! `ferry auth plex`: plex.tv's PIN ([`crate::pin`]), declared in the provider's
//! descriptor. The user enters a 4-character code at plex.tv/link; the account token it
//! hands out is checked against `/api/v2/user` before it is kept.

use ferry_core::{Error, ErrorKind, SignIn, SignInFailure, SignInRequest, SignInRun, UserCode};
use ferry_http::{KvTokenStore, TokenSink, Tokens};

use crate::PlexConfig;
use crate::pin::PinFlow;

pub(crate) const FLOW: SignIn = SignIn { method: "PIN", run };

fn run(req: SignInRequest<'_>) -> SignInRun<'_> {
    Box::pin(sign_in(req))
}

async fn sign_in(req: SignInRequest<'_>) -> Result<(), SignInFailure> {
    let instance = &req.config.instance;
    let parsed: PlexConfig = req
        .config
        .parse()
        .map_err(|e| SignInFailure::config(Error::new(ErrorKind::InvalidInput, e.to_string())))?;
    let flow = PinFlow::new(instance, Some(&parsed.plex_tv_url)).map_err(SignInFailure::config)?;
    let pin = flow.start(req.cx).await?;
    req.prompt.show_code(&UserCode {
        user_code: pin.code.clone(),
        verification_url: pin.verification_url.clone(),
        expires_in: pin.expires_in,
    });
    let token = flow.wait(req.cx, &pin).await?;
    let account = flow.account(req.cx, &token).await?;
    req.cx.emitter.info(&format!(
        "plex: signed in as {} for `{instance}`",
        account.username
    ));
    KvTokenStore::new(req.env.kv.clone(), instance.as_str()).persist(&Tokens::new(token))?;
    Ok(())
}

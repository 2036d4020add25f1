//! `ferry auth simkl`: SIMKL's PIN flow ([`crate::pin`]), declared in the provider's
//! descriptor. SIMKL tokens do not expire, so only the access token is kept.

use ferry_core::{Error, ErrorKind, SignIn, SignInFailure, SignInRequest, SignInRun, UserCode};
use ferry_http::{KvTokenStore, TokenSink, Tokens};

use crate::SimklConfig;
use crate::pin::PinFlow;

pub(crate) const FLOW: SignIn = SignIn { method: "PIN", run };

fn run(req: SignInRequest<'_>) -> SignInRun<'_> {
    Box::pin(sign_in(req))
}

async fn sign_in(req: SignInRequest<'_>) -> Result<(), SignInFailure> {
    let instance = &req.config.instance;
    let parsed: SimklConfig = req
        .config
        .parse()
        .map_err(|e| SignInFailure::config(Error::new(ErrorKind::InvalidInput, e.to_string())))?;
    let flow = PinFlow::new(instance, parsed.base_url.as_deref(), &parsed.client_id)
        .map_err(SignInFailure::config)?;
    let code = flow.start(req.cx).await?;
    req.prompt.show_code(&UserCode {
        user_code: code.user_code.clone(),
        verification_url: code.verification_url.clone(),
        expires_in: code.expires_in,
    });
    let token = flow.wait(req.cx, &code).await?;
    KvTokenStore::new(req.env.kv.clone(), instance.as_str()).persist(&Tokens::new(token))?;
    Ok(())
}

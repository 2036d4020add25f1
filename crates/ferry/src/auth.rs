//! `ferry auth <provider>`: runs the sign-in flow the provider declares in its descriptor
//! ([`ferry_core::SignIn`]) for one configured instance, under the state file's lock, and
//! keeps the token where the provider's build finds it. This module names no service.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_core::registry::{self, ProviderDescriptor};
use ferry_core::{
    Context, Emitter, ProviderConfig, SignIn, SignInFailure, SignInPrompt, SignInRequest, UserCode,
};

use crate::config::Config;
use crate::{Cli, Failure, app, cancel_on_ctrl_c, load_config, out, take_lock};

/// The providers compiled in with a sign-in flow.
fn with_sign_in() -> Vec<(&'static ProviderDescriptor, SignIn)> {
    registry::providers()
        .into_iter()
        .filter_map(|d| d.sign_in.map(|s| (d, s)))
        .collect()
}

/// The sign-in of provider `kind`; the error lists the providers that have one.
fn find(kind: &str) -> Result<(&'static ProviderDescriptor, SignIn), Failure> {
    let kind = kind.trim().to_ascii_lowercase();
    let all = with_sign_in();
    all.iter().find(|(d, _)| d.id == kind).copied().ok_or_else(|| {
        let list: Vec<_> = all
            .iter()
            .map(|(d, s)| format!("{} ({})", d.id, s.method))
            .collect();
        Failure::usage(format!(
            "`ferry auth {kind}`: no sign-in flow for `{kind}` in this ferry; sign-in flows: {}; other providers take their token or API key in the config",
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        ))
    })
}

/// The instance to sign in: the one named, else the only one of that kind.
fn instance_of<'c>(
    cfg: &'c Config,
    kind: &str,
    instance: Option<&str>,
) -> Result<&'c ProviderConfig, Failure> {
    if let Some(name) = instance {
        return cfg
            .providers
            .get(name)
            .filter(|p| p.kind == kind)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--instance: no {kind} instance named `{name}` in {}",
                    cfg.file.display()
                ))
            });
    }
    let candidates: Vec<&ProviderConfig> =
        cfg.providers.values().filter(|p| p.kind == kind).collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::usage(format!(
            "no [providers.<name>] with kind = \"{kind}\" in {}",
            cfg.file.display()
        ))),
        _ => Err(Failure::usage(format!(
            "several {kind} instances are configured; pick one with --instance"
        ))),
    }
}

/// Shows the code on the terminal, or as an `auth:code` event with `--json`.
struct Prompt<'a> {
    json: bool,
    kind: &'a str,
    emitter: &'a Emitter,
}

impl SignInPrompt for Prompt<'_> {
    fn show_code(&self, code: &UserCode) {
        if self.json {
            self.emitter.emit(
                "auth:code",
                serde_json::json!({"provider": self.kind, "user_code": code.user_code,
                    "verification_url": code.verification_url,
                    "expires_in_secs": code.expires_in.as_secs()}),
            );
        } else {
            out(&format!(
                "open {} and enter the code {}",
                code.verification_url, code.user_code
            ));
            out(&format!(
                "waiting for you to approve (the code expires in {} minutes)...",
                code.expires_in.as_secs() / 60
            ));
        }
    }
}

pub(crate) async fn run(cli: &Cli, provider: &str, instance: Option<&str>) -> Result<u8, Failure> {
    let (descriptor, flow) = find(provider)?;
    let kind = descriptor.id;
    let cfg = load_config(cli)?;
    let pc = instance_of(&cfg, kind, instance)?;
    let _lock = take_lock(&cfg, &format!("auth {kind}"))?;
    let state = app::open_state(&cfg.state_path)?;
    let em = app::emitter(app::sink(cli.json), &BTreeMap::new(), false);
    let cx = Context::new(em.clone(), cancel_on_ctrl_c());
    let env = app::build_env(&cfg, &pc.instance, Arc::new(state));
    let prompt = Prompt {
        json: cli.json,
        kind,
        emitter: &em,
    };
    let request = SignInRequest {
        config: pc,
        env: &env,
        cx: &cx,
        prompt: &prompt,
    };
    (flow.run)(request).await.map_err(|f| match f {
        SignInFailure::Config(e) => cfg.provider_error(&pc.instance, e.message()).into(),
        SignInFailure::Flow(e) => Failure::errors(format!("{kind} sign-in failed: {e}")),
    })?;
    if cli.json {
        em.emit(
            "auth:done",
            serde_json::json!({"provider": kind, "instance": pc.instance}),
        );
    } else {
        out(&format!(
            "signed in: the token for `{}` is kept in {}",
            pc.instance,
            cfg.state_path.display()
        ));
        out("it is used until you write a token for this instance in the config");
    }
    Ok(0)
}

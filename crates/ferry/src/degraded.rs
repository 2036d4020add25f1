//! Skipped work is never silent: which provider instances a run could not sync because
//! they were down or refused their credentials, what that cost, and what to do about it.
//! A run with any of them exits 4 (see `report::exit_code`) and says so in `run:degraded`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ferry_core::{Event, EventSink, ProviderConfig};
use ferry_engine::{FeatureStatus, RunSummary};
use serde::Serialize;

/// Records each instance's status from the engine's `health` events (one per instance
/// per run) and passes every event on.
pub(crate) struct HealthTap {
    next: Arc<dyn EventSink>,
    seen: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for HealthTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthTap").finish_non_exhaustive()
    }
}

impl HealthTap {
    pub(crate) fn new(next: Arc<dyn EventSink>) -> Self {
        HealthTap {
            next,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    /// The statuses seen since the last call (instance → status), emptied.
    pub(crate) fn take(&self) -> BTreeMap<String, String> {
        self.seen
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

impl EventSink for HealthTap {
    fn event(&self, e: &Event) {
        if e.name == "health"
            && let (Some(i), Some(s)) = (e.str("instance"), e.str("status"))
            && let Ok(mut m) = self.seen.lock()
        {
            m.insert(i.to_owned(), s.to_owned());
        }
        self.next.event(e);
    }
}

/// One instance the run could not fully sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Degraded {
    pub(crate) instance: String,
    /// The provider kind (`kind = "..."` of the instance).
    pub(crate) provider: String,
    /// `down` or `auth_failed`.
    pub(crate) status: String,
    /// What was not done: `pair den-to-cloud skipped`, `history of den-to-cloud not
    /// synced`, `3 writes kept for the next run`.
    pub(crate) affected: Vec<String>,
    /// What the user should do.
    pub(crate) fix: String,
}

const DOWN: &str = "down";
const AUTH: &str = "auth_failed";

/// The instances of this run that were down or refused their credentials, from their
/// health and from writes the summary kept unresolved for those reasons.
pub(crate) fn degraded(
    s: &RunSummary,
    health: &BTreeMap<String, String>,
    providers: &BTreeMap<String, ProviderConfig>,
    config_file: &std::path::Path,
) -> Vec<Degraded> {
    let mut affected: BTreeMap<(String, &str), BTreeSet<String>> = BTreeMap::new();
    for (inst, st) in health {
        if st == DOWN || st == AUTH {
            affected.entry((inst.clone(), st.as_str())).or_default();
        }
    }
    let status_of = |inst: &str| health.get(inst).map(String::as_str);
    for p in &s.pairs {
        let sides = [p.source.as_str(), p.target.as_str()];
        if p.skipped.as_deref() == Some(AUTH) {
            for i in sides.into_iter().filter(|i| status_of(i) == Some(AUTH)) {
                let e = affected.entry((i.to_owned(), AUTH)).or_default();
                e.insert(format!("pair {} skipped", p.name));
            }
        }
        for f in &p.features {
            if f.status == FeatureStatus::SourceDown {
                for i in sides.into_iter().filter(|i| status_of(i) == Some(DOWN)) {
                    let e = affected.entry((i.to_owned(), DOWN)).or_default();
                    e.insert(format!("{} of {} not synced", f.feature, p.name));
                }
            }
            for (inst, w) in [(p.source.as_str(), &f.to_a), (p.target.as_str(), &f.to_b)] {
                for (reason, st) in [("provider_down", DOWN), (AUTH, AUTH)] {
                    let n = w.unresolved.get(reason).copied().unwrap_or(0);
                    if n > 0 {
                        let e = affected.entry((inst.to_owned(), st)).or_default();
                        e.insert(format!(
                            "{n} {} write(s) of {} kept for the next run",
                            f.feature, p.name
                        ));
                    }
                }
            }
        }
    }
    affected
        .into_iter()
        .map(|((instance, status), what)| {
            let pc = providers.get(&instance);
            let provider = pc.map(|c| c.kind.clone()).unwrap_or_default();
            let fix = fix(&instance, status, pc, providers, config_file);
            Degraded {
                instance,
                provider,
                status: status.to_owned(),
                affected: if what.is_empty() {
                    vec!["not read this run, nothing written to it".to_owned()]
                } else {
                    what.into_iter().collect()
                },
                fix,
            }
        })
        .collect()
}

fn fix(
    instance: &str,
    status: &str,
    pc: Option<&ProviderConfig>,
    all: &BTreeMap<String, ProviderConfig>,
    config_file: &std::path::Path,
) -> String {
    let kind = pc.map(|c| c.kind.as_str()).unwrap_or("");
    if status == AUTH {
        let signs_in = ferry_core::registry::find(kind).is_ok_and(|d| d.sign_in.is_some());
        if signs_in {
            let several = all.values().filter(|c| c.kind == kind).count() > 1;
            let inst = if several {
                format!(" --instance {instance}")
            } else {
                String::new()
            };
            return format!(
                "sign in again: `ferry auth {kind}{inst}` (a token written in [providers.{instance}] of {} is used first: update or remove it)",
                config_file.display()
            );
        }
        return format!(
            "check the credentials (token or api_key) in [providers.{instance}] of {}",
            config_file.display()
        );
    }
    match pc
        .and_then(|c| c.values.get("base_url"))
        .and_then(|v| v.as_str())
    {
        Some(url) => format!(
            "check that the server at {} is reachable",
            without_userinfo(url)
        ),
        None if !kind.is_empty() => {
            format!("check that {kind} is reachable from this machine")
        }
        None => "check that it is reachable from this machine".to_owned(),
    }
}

/// A URL may carry `user:password@`; never print it.
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// The human lines for the summary: one per instance, what happened and the fix.
pub(crate) fn lines(list: &[Degraded]) -> Vec<String> {
    list.iter()
        .map(|d| {
            let what = match d.status.as_str() {
                AUTH => "refused its credentials",
                _ => "was down",
            };
            format!(
                "  {} ({}) {what}: {}. Fix: {}",
                d.instance,
                d.provider,
                d.affected.join("; "),
                d.fix
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_never_printed() {
        assert_eq!(
            without_userinfo("http://me:pw@host:8096/jf"),
            "http://host:8096/jf"
        );
        assert_eq!(without_userinfo("http://host/a@b"), "http://host/a@b");
    }

    #[test]
    fn the_fix_names_the_sign_in_command_or_the_server() {
        let file = std::path::Path::new("/c.toml");
        // A kind whose descriptor declares a sign-in (any, in this build) and one that
        // no provider registers.
        let Some(kind) = ferry_core::registry::providers()
            .into_iter()
            .find(|d| d.sign_in.is_some())
            .map(|d| d.id)
        else {
            let pc = ProviderConfig::new("tr", "no-such-kind");
            let all = BTreeMap::from([("tr".to_owned(), pc.clone())]);
            let f = fix("tr", AUTH, Some(&pc), &all, file);
            assert!(!f.contains("ferry auth"), "{f}");
            return;
        };
        let tr = ProviderConfig::new("tr", kind);
        let jf = ProviderConfig::new("jf", "no-such-kind").set("base_url", "http://nas:8096");
        let all = BTreeMap::from([("tr".to_owned(), tr.clone()), ("jf".into(), jf.clone())]);
        let f = fix("tr", AUTH, Some(&tr), &all, file);
        assert!(f.contains(&format!("`ferry auth {kind}`")), "{f}");
        let f = fix("jf", AUTH, Some(&jf), &all, file);
        assert!(
            f.contains("[providers.jf]") && !f.contains("ferry auth"),
            "{f}"
        );
        let f = fix("jf", DOWN, Some(&jf), &all, file);
        assert!(f.contains("server at http://nas:8096 is reachable"), "{f}");
        let mut two = all.clone();
        two.insert("tr2".into(), ProviderConfig::new("tr2", kind));
        let f = fix("tr", AUTH, Some(&tr), &two, file);
        assert!(
            f.contains(&format!("`ferry auth {kind} --instance tr`")),
            "{f}"
        );
    }
}

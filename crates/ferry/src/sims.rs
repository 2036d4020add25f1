//! Simulators the CLI serves: `ferry simulate <provider>` (one service, for integrators'
//! CI) and `ferry demo`. Each comes from the provider's descriptor in the registry
//! ([`ferry_core::Simulator`]); this module names no service.

use ferry_core::registry::{self, ProviderDescriptor};
use ferry_core::{DemoRole, Scenario, SimHandle, Simulator};
use serde_json::{Map, Value};

/// A running simulator and the provider config that points at it.
pub(crate) struct RunningSim {
    pub(crate) kind: &'static str,
    pub(crate) label: &'static str,
    handle: Box<dyn SimHandle>,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("kind", &self.kind)
            .field("uri", &self.uri())
            .finish()
    }
}

impl RunningSim {
    pub(crate) fn uri(&self) -> String {
        self.handle.base_url()
    }

    /// `[providers.<instance>]` values (besides `kind`) for a provider using this simulator.
    pub(crate) fn config(&self) -> Map<String, Value> {
        self.handle.config()
    }

    /// Requests the simulator has answered so far.
    pub(crate) fn requests(&self) -> u64 {
        self.handle.requests()
    }

    /// The config snippet a user pastes to point ferry at this simulator.
    pub(crate) fn toml_snippet(&self, instance: &str) -> String {
        let mut s = format!("[providers.{instance}]\nkind = \"{}\"\n", self.kind);
        for (k, v) in &self.config() {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s
    }
}

/// Every compiled-in provider that declares a simulator, by id.
pub(crate) fn simulated() -> Vec<(&'static ProviderDescriptor, Simulator)> {
    registry::providers()
        .into_iter()
        .filter_map(|d| d.simulator.map(|s| (d, s)))
        .collect()
}

/// The ids of `list`, for an error that says what there is.
pub(crate) fn ids(list: &[(&'static ProviderDescriptor, Simulator)]) -> String {
    if list.is_empty() {
        return format!("none ({})", without_sim());
    }
    list.iter()
        .map(|(d, _)| d.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a build may have no simulator at all.
fn without_sim() -> &'static str {
    if cfg!(feature = "sim") {
        "no provider compiled in declares one"
    } else {
        "this ferry was built without the `sim` feature"
    }
}

/// The simulator of provider `kind`; the error lists the simulated providers.
pub(crate) fn find(kind: &str) -> Result<(&'static ProviderDescriptor, Simulator), String> {
    let kind = kind.trim().to_ascii_lowercase();
    let all = simulated();
    all.iter()
        .find(|(d, _)| d.id == kind)
        .copied()
        .ok_or_else(|| {
            format!(
                "no simulator for `{kind}`; simulated providers: {}",
                ids(&all)
            )
        })
}

/// Starts `sim` (the simulator of `d`) seeded for `scenario`.
pub(crate) async fn start(
    d: &'static ProviderDescriptor,
    sim: Simulator,
    scenario: Scenario,
) -> Result<RunningSim, String> {
    let handle = (sim.start)(scenario)
        .await
        .map_err(|e| format!("the {} simulator did not start: {e}", d.label))?;
    Ok(RunningSim {
        kind: d.id,
        label: d.label,
        handle,
    })
}

/// Simulators started from now on listen from this loopback port upwards.
#[cfg(feature = "sim")]
pub(crate) fn listen_from(port: u16) {
    ferry_testkit::sim::listen_from(port);
}

/// Without the `sim` feature no simulator is compiled in, so none ever listens.
#[cfg(not(feature = "sim"))]
pub(crate) fn listen_from(_port: u16) {}

/// One library of the demo and how it syncs with the hub.
#[derive(Debug)]
pub(crate) struct DemoLibrary {
    pub(crate) sim: RunningSim,
    pub(crate) two_way: bool,
    pub(crate) removals: bool,
    pub(crate) features: &'static [ferry_core::Feature],
}

/// The demo's services, seeded like a real household: the libraries (media servers
/// holding the same films and shows, each with its own history, ratings and watchlist)
/// and the hub, an account that already knows some of it.
#[derive(Debug)]
pub(crate) struct DemoWorld {
    pub(crate) hub: RunningSim,
    pub(crate) libraries: Vec<DemoLibrary>,
}

impl DemoWorld {
    pub(crate) fn requests(&self) -> u64 {
        self.hub.requests() + self.libraries.iter().map(|l| l.sim.requests()).sum::<u64>()
    }
}

/// Starts every simulator with a part in the demo: the first hub by id, and every
/// library, one-way ones first.
pub(crate) async fn start_demo(movies: u32, shows: u32) -> Result<DemoWorld, String> {
    let all = simulated();
    let hub = all
        .iter()
        .find(|(_, s)| s.demo == Some(DemoRole::Hub))
        .copied();
    let libraries: Vec<_> = all
        .iter()
        .filter_map(|(d, s)| match s.demo {
            Some(DemoRole::Library {
                two_way,
                removals,
                features,
            }) => Some((*d, *s, two_way, removals, features)),
            _ => None,
        })
        .collect();
    let Some((hub_d, hub_s)) = hub.filter(|_| !libraries.is_empty()) else {
        return Err(format!(
            "the demo needs a simulated account to sync with and at least one simulated library; simulated providers: {}",
            ids(&all)
        ));
    };
    // One-way libraries only feed the hub; the two-way pairs run after them, so what the
    // one-way pairs added reaches the two-way libraries in the same run and an unchanged
    // second run has nothing left to do.
    let mut libraries = libraries;
    libraries.sort_by_key(|(d, _, two_way, _, _)| (*two_way, d.id));
    let scenario = Scenario::Demo { movies, shows };
    let mut started = Vec::with_capacity(libraries.len());
    for (d, s, two_way, removals, features) in libraries {
        started.push(DemoLibrary {
            sim: start(d, s, scenario).await?,
            two_way,
            removals,
            features,
        });
    }
    Ok(DemoWorld {
        hub: start(hub_d, hub_s, scenario).await?,
        libraries: started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{BuildEnv, Context, ProviderConfig};

    /// What `ferry simulate` prints is what a user pastes: every simulator's config
    /// passes its provider's own parser, builds it, and its health check reaches the
    /// simulator.
    #[tokio::test(flavor = "multi_thread")]
    async fn every_simulator_serves_its_provider_with_the_config_it_prints() {
        let all = simulated();
        assert_eq!(all.is_empty(), !cfg!(feature = "sim"), "{}", ids(&all));
        let dir = std::env::temp_dir().join(format!("ferry-sims-{}", std::process::id()));
        for (d, s) in all {
            let sim = start(d, s, Scenario::Library { items: 20 })
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let pc = ProviderConfig {
                instance: format!("{}-sim", d.id),
                kind: d.id.to_owned(),
                values: sim.config(),
            };
            (d.validate)(&pc).unwrap_or_else(|e| panic!("{}: {e}", d.id));
            let ops = (d.build)(&pc, &BuildEnv::ephemeral(dir.join(d.id)))
                .unwrap_or_else(|e| panic!("{}: {e}", d.id));
            let before = sim.requests();
            let h = ops.health(&Context::default()).await;
            assert!(h.status.is_usable(), "{}: {:?}", d.id, h.status);
            assert!(sim.requests() > before, "{}: health never reached it", d.id);
            assert!(sim.uri().starts_with("http://127.0.0.1:"), "{}", sim.uri());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

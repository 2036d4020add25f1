//! `ferry demo`: the main job on the embedded default. The simulators the providers
//! declare for the demo (see [`ferry_core::DemoRole`]) on loopback, seeded like a real
//! household: every library synced with the hub through the real providers and the real
//! engine; then the same sync again, to show the unchanged-run fast path.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::ProviderConfig;
use ferry_engine::{FeatureSwitch, PairConfig, RunConfig, RunSummary};

use crate::sims::{DemoLibrary, DemoWorld};
use crate::{Failure, app, out, report, sims};

/// Shows in each simulated library (besides the films).
const SHOWS: u32 = 20;

/// The pair of one library with the hub, named after both.
fn pair(lib: &DemoLibrary, hub: &str) -> PairConfig {
    let id = lib.sim.kind;
    let switch = if lib.removals {
        FeatureSwitch::with_removals()
    } else {
        FeatureSwitch::add_only()
    };
    let mut p = if lib.two_way {
        PairConfig::new(format!("{id}-{hub}"), id, hub).two_way()
    } else {
        PairConfig::new(format!("{id}-to-{hub}"), id, hub)
    };
    for f in lib.features {
        p = p.feature(*f, switch);
    }
    p
}

fn pairs(world: &DemoWorld) -> Vec<PairConfig> {
    world
        .libraries
        .iter()
        .map(|l| pair(l, world.hub.kind))
        .collect()
}

/// `den <-> hub (two-way: history, watchlist)`, one line per pair.
fn pair_lines(world: &DemoWorld) -> Vec<String> {
    world
        .libraries
        .iter()
        .map(|l| {
            let (arrow, way) = if l.two_way {
                ("<->", "two-way")
            } else {
                ("->", "one-way")
            };
            let features: Vec<_> = l.features.iter().map(|f| f.as_str()).collect();
            format!(
                "{} {arrow} {} ({way}: {})",
                l.sim.kind,
                world.hub.kind,
                features.join(", ")
            )
        })
        .collect()
}

/// `A`, `A and B`, `A, B and C`.
fn and_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn provider_configs(world: &DemoWorld) -> BTreeMap<String, ProviderConfig> {
    let sims = world
        .libraries
        .iter()
        .map(|l| &l.sim)
        .chain(std::iter::once(&world.hub));
    sims.map(|sim| {
        let pc = ProviderConfig {
            instance: sim.kind.to_owned(),
            kind: sim.kind.to_owned(),
            values: sim.config(),
        };
        (sim.kind.to_owned(), pc)
    })
    .collect()
}

pub(crate) async fn run(json: bool, movies: u32, state: Option<PathBuf>) -> Result<u8, Failure> {
    if !(10..=20_000).contains(&movies) {
        return Err(Failure::usage("--movies: between 10 and 20000"));
    }
    let temp = std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id()));
    let (state_path, cleanup) = match state {
        Some(p) => (p, false),
        None => (temp.join("ferry.db"), true),
    };
    let world = sims::start_demo(movies, SHOWS)
        .await
        .map_err(Failure::usage)?;
    if !json {
        let labels: Vec<_> = world.libraries.iter().map(|l| l.sim.label).collect();
        out(&format!(
            "simulated {} servers ({movies} films and {SHOWS} shows each) and a {} account are listening on loopback",
            and_list(&labels),
            world.hub.label
        ));
    }
    let store = app::open_state(&state_path)?;
    let providers = app::build_from(
        &provider_configs(&world),
        &temp.join("data"),
        Arc::new(store.clone()),
    )?;
    let em = app::emitter(app::sink(json), &providers, false);
    let engine = app::engine(store, em.clone());
    let cfg = RunConfig::new(pairs(&world));
    let cancel = crate::cancel_on_ctrl_c();

    if !json {
        for (i, line) in pair_lines(&world).iter().enumerate() {
            out(&format!(
                "{}{line}",
                if i == 0 { "pairs: " } else { "       " }
            ));
        }
        out("");
        out("first run: everything is new to ferry");
    }
    let before = world.requests();
    let first = engine
        .run(&providers, &cfg, cancel.clone())
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    let first_requests = world.requests() - before;
    show(json, &em, &first);

    if !json {
        out("");
        out("second run: nothing changed anywhere since the first");
    }
    let before = world.requests();
    let second = engine
        .run(&providers, &cfg, cancel)
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    let second_requests = world.requests() - before;
    show(json, &em, &second);
    if json {
        em.emit("demo:done", serde_json::json!({"first_run_requests": first_requests, "second_run_requests": second_requests}));
    } else {
        out("");
        out(&format!(
            "the simulators answered {first_requests} requests in the first run and {second_requests} in the unchanged second run"
        ));
        if cleanup {
            out(
                "the demo's state database is discarded; pass --state PATH to keep it and inspect it with `ferry state`",
            );
        } else {
            out(&format!("state kept in {}", state_path.display()));
        }
    }
    if cleanup {
        drop(engine);
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(report::exit_code(&first, &[]).max(report::exit_code(&second, &[])))
}

fn show(json: bool, em: &ferry_core::Emitter, s: &RunSummary) {
    if json {
        em.emit_value("summary", s);
    } else {
        for line in report::summary_lines(s, &[]) {
            out(&line);
        }
    }
}

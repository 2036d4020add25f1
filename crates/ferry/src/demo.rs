//! `ferry demo`: the main job on the embedded default. Simulated Plex, Jellyfin and Trakt
//! servers on loopback, seeded like a real household, synced through the real providers
//! and the real engine; then the same sync again, to show the unchanged-run fast path.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::{Feature, ProviderConfig};
use ferry_engine::{FeatureSwitch, PairConfig, RunConfig, RunSummary};

use crate::{Failure, app, out, report, sims};

fn pairs() -> Vec<PairConfig> {
    vec![
        PairConfig::new("plex-to-trakt", "plex", "trakt")
            .feature(Feature::History, FeatureSwitch::add_only())
            .feature(Feature::Ratings, FeatureSwitch::add_only())
            .feature(Feature::Watchlist, FeatureSwitch::add_only()),
        PairConfig::new("jellyfin-trakt", "jellyfin", "trakt")
            .two_way()
            .feature(Feature::History, FeatureSwitch::with_removals())
            .feature(Feature::Watchlist, FeatureSwitch::with_removals()),
    ]
}

fn provider_configs(world: &sims::DemoWorld) -> BTreeMap<String, ProviderConfig> {
    let mut m = BTreeMap::new();
    for (name, sim) in [
        ("plex", &world.plex),
        ("jellyfin", &world.jellyfin),
        ("trakt", &world.trakt),
    ] {
        m.insert(
            name.to_owned(),
            ProviderConfig {
                instance: name.to_owned(),
                kind: sim.kind.to_owned(),
                values: sim.config.clone(),
            },
        );
    }
    m
}

fn requests(world: &sims::DemoWorld) -> u64 {
    world.plex.requests() + world.jellyfin.requests() + world.trakt.requests()
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
    if !json {
        out(&format!(
            "starting simulated Plex and Jellyfin servers ({movies} films and 20 shows each) and a Trakt account on loopback..."
        ));
    }
    let world = sims::start_demo(movies, 20).await;
    let store = app::open_state(&state_path)?;
    let providers = app::build_from(
        &provider_configs(&world),
        &temp.join("data"),
        Arc::new(store.clone()),
    )?;
    let em = app::emitter(app::sink(json), &providers, false);
    let engine = app::engine(store, em.clone());
    let cfg = RunConfig::new(pairs());
    let cancel = crate::cancel_on_ctrl_c();

    if !json {
        out("pairs: plex -> trakt (one-way: history, ratings, watchlist)");
        out("       jellyfin <-> trakt (two-way: history, watchlist)");
        out("");
        out("first run: everything is new to ferry");
    }
    let before = requests(&world);
    let first = engine
        .run(&providers, &cfg, cancel.clone())
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    let first_requests = requests(&world) - before;
    show(json, &em, &first);

    if !json {
        out("");
        out("second run: nothing changed anywhere since the first");
    }
    let before = requests(&world);
    let second = engine
        .run(&providers, &cfg, cancel)
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    let second_requests = requests(&world) - before;
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

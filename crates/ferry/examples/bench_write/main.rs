//! `cargo run --release -p ferry --example bench_write -- --target jellyfin --items 10000`:
//! the measurement behind `cargo xtask bench-write`.
//!
//! A first sync of `items` titles from a local file tracker into Jellyfin or Trakt, each
//! title on the watchlist and watched once (history), through the registry's providers
//! and the real engine against the target's in-process simulator. The titles are the
//! testkit's sample movies `0..items` (stable tmdb, imdb and trakt ids), which both
//! simulators know. Measures what the write path costs: the requests the simulator
//! counted, by route, next to the bound a linear write path must stay within (every
//! feature read once, page by page, plus its batches: O(N / page + N / batch)), and the
//! CPU time of ferry (user + system, from `/proc`, without the simulators' threads), with
//! wall time and peak memory for information. Prints one JSON object (`--json`) or a
//! line.
//!
//! No latency is added and Trakt's published rate limits are kept (the client spaces its
//! writes a second apart and the simulator enforces them), so Trakt's wall time is mostly
//! waiting; CPU time is what the write path itself costs.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bound;
mod cpu;
mod world;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use ferry_core::{
    BuildEnv, CancelToken, Context, Emitter, Entry, Event, EventSink, Feature, InventoryOps,
    ProviderConfig,
};
use ferry_engine::{Engine, FeatureSwitch, PairConfig, RunConfig, RunSummary};
use ferry_state::StateStore;
use ferry_testkit::samples;
use serde_json::{Value, json};
// Linked so that their registrations are in the registry this benchmark builds from.
use local as _;
use trakt as _;

use bound::Bound;
use world::{Sim, Target};

/// The features every title travels in.
pub(crate) const FEATURES: [Feature; 2] = [Feature::Watchlist, Feature::History];
const SOURCE: &str = "source";
const TARGET: &str = "target";
const PAIR: &str = "first-sync";
/// ferry's runtime threads are named with this, the simulators' threads are not.
const THREAD_PREFIX: &str = "ferry-";

#[derive(Debug, Clone, Copy, Parser)]
#[command(
    name = "bench_write",
    about = "A first sync of N titles into Jellyfin or Trakt against its simulator: requests and CPU."
)]
struct Args {
    /// The service written into.
    #[arg(long, value_enum)]
    target: Target,
    /// Titles in the source, each on the watchlist and watched once.
    #[arg(long, default_value_t = 1000)]
    items: u32,
    /// Print one JSON object on stdout instead of a line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(1..=100_000).contains(&args.items) {
        eprintln!("bench_write: --items: between 1 and 100000");
        return ExitCode::from(2);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_name(format!("{THREAD_PREFIX}worker"))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_write: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let before = cpu::tids();
    let sim = runtime.block_on(Sim::start(args.target, args.items));
    let sim_threads = cpu::new_threads(&before, THREAD_PREFIX);
    match runtime.block_on(first_sync(args.target, args.items, &sim, &sim_threads)) {
        Ok((v, code)) => {
            if args.json {
                println!("{v}");
            } else {
                human(&v);
            }
            ExitCode::from(code)
        }
        Err(message) => {
            eprintln!("bench_write: {message}");
            ExitCode::from(1)
        }
    }
}

/// Counts the providers' requests (`api:hit`) per phase: `health` until the first
/// feature starts, then the feature's name.
struct Counting {
    state: Mutex<(String, BTreeMap<String, u64>)>,
}

impl EventSink for Counting {
    fn event(&self, event: &Event) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if event.name == "feature:start"
            && let Some(f) = event.str("feature")
        {
            s.0 = f.to_owned();
        }
        if event.name == "api:hit" {
            let phase = s.0.clone();
            *s.1.entry(phase).or_default() += 1;
        }
    }
}

fn build_providers(
    configs: &[ProviderConfig],
    data_root: &Path,
    store: &StateStore,
) -> Result<BTreeMap<String, Arc<dyn InventoryOps>>, String> {
    let mut out = BTreeMap::new();
    for pc in configs {
        let d = ferry_core::registry::find(&pc.kind).map_err(|e| e.to_string())?;
        let env = BuildEnv::new(data_root.join(&pc.instance), Arc::new(store.clone()));
        let ops = (d.build)(pc, &env).map_err(|e| format!("providers.{}: {e}", pc.instance))?;
        out.insert(pc.instance.clone(), ops);
    }
    Ok(out)
}

/// Fills the source: titles `0..items` on the watchlist and each watched once, plays
/// spread over ten years by a fixed seed (so runs are comparable).
async fn seed_source(source: &dyn InventoryOps, items: u32) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(0x00fe_2217);
    let ten_years = 10 * 365 * 86_400;
    let watchlist: Vec<Entry> = (0..items)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    let history: Vec<Entry> = (0..items)
        .map(|n| Entry::watch(samples::movie(n), samples::time(-rng.i64(0..ten_years))))
        .collect();
    let cx = Context::default();
    for (feature, entries) in [(Feature::Watchlist, watchlist), (Feature::History, history)] {
        let batch = source
            .features()
            .get(feature)
            .map_or(100, |c| c.batch_size.max(1));
        for chunk in entries.chunks(batch) {
            let report = source
                .add(&cx, feature, chunk)
                .await
                .map_err(|e| format!("seeding the source's {feature}: {e}"))?;
            if report.confirmed() != chunk.len() {
                return Err(format!("seeding the source's {feature}: {report:?}"));
            }
        }
    }
    Ok(())
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM`: peak resident,
/// `VmRSS`: resident now), in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn mib(kib: Option<u64>) -> Value {
    kib.map_or(json!("n/a"), |k| {
        json!((k as f64 / 1024.0 * 10.0).round() / 10.0)
    })
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// 1 for a run with errors or cancelled, 3 for one that left items unresolved, else 0
/// (the binary's exit codes for the same summaries).
fn exit_code(s: &RunSummary) -> u8 {
    if s.totals.errors > 0 || s.cancelled {
        1
    } else if s.totals.unresolved > 0 {
        3
    } else {
        0
    }
}

/// Runs the first sync in a scratch directory and returns the result and an exit code.
async fn first_sync(
    target: Target,
    items: u32,
    sim: &Sim,
    sim_threads: &[u32],
) -> Result<(Value, u8), String> {
    let temp = std::env::temp_dir().join(format!(
        "ferry-bench-write-{}-{}",
        std::process::id(),
        target.as_str()
    ));
    let result = measure(target, items, sim, sim_threads, &temp).await;
    let _ = std::fs::remove_dir_all(&temp);
    result
}

async fn measure(
    target: Target,
    items: u32,
    sim: &Sim,
    sim_threads: &[u32],
    temp: &Path,
) -> Result<(Value, u8), String> {
    let store =
        StateStore::open(temp.join("ferry.db")).map_err(|e| format!("state database: {e}"))?;
    let source_config = ProviderConfig {
        instance: SOURCE.to_owned(),
        kind: "local".to_owned(),
        values: [("path".to_owned(), json!(temp.join("source")))]
            .into_iter()
            .collect(),
    };
    let configs = [source_config, sim.provider_config(TARGET)];
    let providers = build_providers(&configs, &temp.join("data"), &store)?;
    let (Some(source), Some(target_ops)) = (providers.get(SOURCE), providers.get(TARGET)) else {
        return Err("the registry built no source or no target".to_owned());
    };
    seed_source(source.as_ref(), items).await?;
    let caps = target_ops.features();
    let shapes = sim.shapes(u64::from(items), &caps);
    let bound = Bound::of(&shapes);

    let counting = Arc::new(Counting {
        state: Mutex::new(("health".to_owned(), BTreeMap::new())),
    });
    let secrets: Vec<String> = providers
        .values()
        .flat_map(|p| p.secrets())
        .map(|s| s.expose().to_owned())
        .collect();
    let em = Emitter::builder()
        .sink(counting.clone())
        .build()
        .with_redactions(secrets);
    let engine = Engine::new(store, em);
    let pair = FEATURES
        .iter()
        .fold(PairConfig::new(PAIR, SOURCE, TARGET), |p, f| {
            p.feature(*f, FeatureSwitch::add_only())
        });
    let cfg = RunConfig::new(vec![pair]);

    sim.reset_counts();
    let limited_before = sim.too_many_requests();
    // Each run reports its own peak (the kernel may refuse; the figure is then the
    // process's).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_at_start = status_kib("VmRSS");
    let cpu_before = cpu::process();
    let sims_before = cpu::threads(sim_threads);
    let started = Instant::now();
    let summary = engine
        .run(&providers, &cfg, CancelToken::new())
        .await
        .map_err(|e| e.to_string())?;
    let wall = started.elapsed().as_secs_f64();
    let sims_cpu = cpu::threads(sim_threads).minus(sims_before);
    let ferry_cpu = cpu::process()
        .zip(cpu_before)
        .map(|(after, before)| after.minus(before).minus(sims_cpu));
    let peak = status_kib("VmHWM");

    let routes = bound::classes(&sim.routes());
    let (reads, writes) = bound::split(&routes);
    let held = sim.held();
    let complete = FEATURES
        .iter()
        .all(|f| held.get(f).copied() == Some(items as usize));
    let n = f64::from(items);
    let shapes_json: serde_json::Map<String, Value> = shapes
        .iter()
        .map(|s| {
            let engine_batch = caps.get(s.feature).map(|c| c.batch_size);
            (
                s.feature.as_str().to_owned(),
                json!({"page": s.page, "held_before": s.held, "titles_per_write": s.per_write,
                       "reads_per_write": s.reads_per_write, "engine_batch": engine_batch}),
            )
        })
        .collect();
    let phases = counting
        .state
        .lock()
        .map(|s| s.1.clone())
        .unwrap_or_default();
    let v = json!({
        "bench": "first-sync-write-path",
        "target": target.as_str(),
        "items": items,
        "features": FEATURES.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "shapes": shapes_json,
        "requests": {
            "reads": reads, "writes": writes, "total": reads + writes,
            "per_item": round((reads + writes) as f64 / n, 3),
        },
        "routes": routes,
        "by_phase": phases,
        "bound": bound.to_json(),
        "within_bound": reads <= bound.reads() && writes <= bound.writes,
        "beyond_pages_and_writes": bound.remainder(reads + writes),
        "cpu": ferry_cpu.map_or(json!("n/a"), |c| json!({
            "user_s": round(c.user_s(), 2), "sys_s": round(c.sys_s(), 2),
            "total_s": round(c.total_s(), 2), "per_item_ms": round(c.total_s() * 1000.0 / n, 3),
        })),
        "sim_cpu_s": round(sims_cpu.total_s(), 2),
        "wall_s": round(wall, 2),
        "peak_rss_mib": mib(peak),
        "rss_at_start_mib": mib(rss_at_start),
        "too_many_requests": sim.too_many_requests() - limited_before,
        "held": {"watchlist": held.get(&Feature::Watchlist), "history": held.get(&Feature::History)},
        "complete": complete,
        "totals": summary.totals,
    });
    let code = exit_code(&summary);
    Ok((v, if complete { code } else { code.max(1) }))
}

fn human(v: &Value) {
    println!(
        "{} × {}: {} requests ({} reads, {} writes; bound {} + {}, within: {}), {} per title; \
         ferry CPU {} s ({} ms per title), simulator CPU {} s, wall {} s, peak RSS {} MiB; \
         complete: {}",
        v["target"],
        v["items"],
        v["requests"]["total"],
        v["requests"]["reads"],
        v["requests"]["writes"],
        v["bound"]["reads"],
        v["bound"]["writes"],
        v["within_bound"],
        v["requests"]["per_item"],
        v["cpu"]["total_s"],
        v["cpu"]["per_item_ms"],
        v["sim_cpu_s"],
        v["wall_s"],
        v["peak_rss_mib"],
        v["complete"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first sync of `items` titles through the engine and the registry's harness:
    /// complete, within the bound, no `429`.
    async fn synced(target: Target, items: u32) -> Value {
        let sim = Sim::start(target, items).await;
        let (v, code) = first_sync(target, items, &sim, &[]).await.unwrap();
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["complete"], json!(true), "{v}");
        assert_eq!(v["within_bound"], json!(true), "{v}");
        assert_eq!(v["too_many_requests"], json!(0), "{v}");
        v
    }

    /// Linear: what a larger sync costs beyond its pages and writes is what a smaller one
    /// costs (no read, checkpoint or probe per batch). Request counts only, no timing.
    fn same_remainder(small: &Value, large: &Value) {
        assert_eq!(
            small["beyond_pages_and_writes"], large["beyond_pages_and_writes"],
            "small: {small}\nlarge: {large}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_sync_into_jellyfin_costs_pages_plus_one_request_per_title() {
        let small = synced(Target::Jellyfin, 100).await;
        // Two pages of 200 and three engine batches per feature.
        let large = synced(Target::Jellyfin, 250).await;
        assert_eq!(large["requests"]["writes"], json!(500), "{large}");
        same_remainder(&small, &large);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_sync_into_trakt_costs_one_write_per_batch() {
        // The client spaces writes a second apart: about 4 s of waiting in all.
        let small = synced(Target::Trakt, 1).await;
        let large = synced(Target::Trakt, 150).await;
        assert_eq!(large["routes"]["POST /sync/watchlist"], json!(2), "{large}");
        assert_eq!(large["routes"]["POST /sync/history"], json!(2), "{large}");
        same_remainder(&small, &large);
    }
}

//! `cargo run --release -p ferry --example bench_sync`: the measurement behind
//! `cargo xtask bench`.
//!
//! A first full sync Plex → Trakt of a large library, then the same sync unchanged, through
//! the real providers and the real engine against in-process simulators with latency on
//! every answer and Trakt's published rate limits enforced (the simulator answers `429`
//! past them). Prints one JSON object (`--json`) or a short report: wall time, requests per
//! simulator and route, `429`s, the lower bound the rate limits set for the requests that
//! were made, and peak memory.
//!
//! The library: `movies` films, each watched once, every 7th rated and every 50th on the
//! watchlist (at most 200: Trakt's free tier holds 250); and shows of 5 seasons × 20
//! episodes whose episodes are watched once each, in order, one a day from a start date
//! per show, `plays` episode plays in all. Play dates are spread over ten years by a fixed
//! seed, so runs are comparable.
//!
//! A target of its own rather than a command of the binary: it measures two particular
//! services, which the `ferry` binary never names (it learns them from the registry).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use ferry_core::{BuildEnv, Emitter, Event, EventSink, Feature, InventoryOps, ProviderConfig};
use ferry_engine::{Engine, FeatureSwitch, PairConfig, RunConfig, RunSummary};
use ferry_state::StateStore;
use ferry_testkit::samples;
use ferry_testkit::sim::plex::PlexSim;
use ferry_testkit::sim::trakt::TraktSim;
use serde_json::{Map, Value, json};
// Linked so that their registrations are in the registry this benchmark builds from.
use plex as _;
use trakt as _;

/// Trakt's published limits, as the provider declares them and the simulator enforces them.
const GET_LIMIT: u64 = 1000;
const GET_WINDOW: Duration = Duration::from_secs(300);
const WRITE_INTERVAL: Duration = Duration::from_secs(1);

const SEASONS: u32 = 5;
const EPISODES: u32 = 20;
const PAIR: &str = "plex-to-trakt";
const FEATURES: [Feature; 3] = [Feature::History, Feature::Ratings, Feature::Watchlist];

/// What the benchmark was asked to do.
#[derive(Debug, Clone, Copy, Parser)]
#[command(
    name = "bench_sync",
    about = "A full Plex → Trakt sync against simulators, then the unchanged rerun."
)]
struct BenchArgs {
    /// Films in the Plex library, each watched once.
    #[arg(long, default_value_t = 5000)]
    movies: u32,
    /// Episode plays in the Plex history.
    #[arg(long, default_value_t = 20000)]
    plays: u32,
    /// Latency of every simulator answer, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Print one JSON object on stdout instead of the short report.
    #[arg(long)]
    json: bool,
}

/// Why the benchmark could not run, and its exit code (2: bad arguments, 1: a failure).
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    fn errors(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

fn out(line: &str) {
    println!("{line}");
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

/// Events are only counted; warnings reach stderr through `tracing` (stdout holds only
/// the result).
struct Discard;

impl EventSink for Discard {
    fn event(&self, _: &Event) {}
}

fn build_providers(
    configs: &BTreeMap<String, ProviderConfig>,
    data_root: &Path,
    store: &StateStore,
) -> Result<BTreeMap<String, Arc<dyn InventoryOps>>, Failure> {
    let mut out = BTreeMap::new();
    for (instance, pc) in configs {
        let d = ferry_core::registry::find(&pc.kind).map_err(|e| Failure::errors(e.to_string()))?;
        let env = BuildEnv::new(data_root.join(instance), Arc::new(store.clone()));
        let ops = (d.build)(pc, &env)
            .map_err(|e| Failure::errors(format!("providers.{instance}: {e}")))?;
        out.insert(instance.clone(), ops);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_sync: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("bench_sync: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The least wall time Trakt's rate limits allow for `writes` write requests and `gets`
/// GETs with `latency` per answer: writes one per second, each 1000 GETs after the first
/// needing a fresh 300 s window, plus one latency for the reads that must precede the
/// first write and one for the answer to the last request.
fn lower_bound(writes: u64, gets: u64, latency: Duration) -> Duration {
    if writes == 0 && gets == 0 {
        return Duration::ZERO;
    }
    let write_span = WRITE_INTERVAL * u32::try_from(writes.saturating_sub(1)).unwrap_or(u32::MAX);
    let windows = gets.div_ceil(GET_LIMIT).saturating_sub(1);
    let read_span = GET_WINDOW * u32::try_from(windows).unwrap_or(u32::MAX);
    let rounds = if writes > 0 { 2 } else { 1 };
    write_span.max(read_span) + latency * rounds
}

/// What the providers reported (`api:hit`) during one run, per instance.
#[derive(Debug, Default)]
struct Hits {
    /// The feature being synced (`health` before the first).
    phase: String,
    /// Per instance: requests, `429` answers, requests per phase.
    by_instance: BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>,
}

/// Counts what the providers report and forwards every event to `inner`.
struct Counting {
    inner: Arc<dyn EventSink>,
    hits: Mutex<Hits>,
}

impl EventSink for Counting {
    fn event(&self, event: &Event) {
        if let Ok(mut h) = self.hits.lock() {
            if event.name == "feature:start"
                && let Some(f) = event.str("feature")
            {
                h.phase = f.to_owned();
            }
            if event.name == "api:hit" {
                let who = event
                    .str("instance")
                    .or_else(|| event.str("provider"))
                    .unwrap_or("?")
                    .to_owned();
                let limited = u64::from(event.u64("status") == Some(429));
                let phase = h.phase.clone();
                let e = h.by_instance.entry(who).or_default();
                e.0 += 1;
                e.1 += limited;
                *e.2.entry(phase).or_default() += 1;
            }
        }
        self.inner.event(event);
    }
}

impl Counting {
    /// What was counted since the last call; the next run starts with its health checks.
    fn take(&self) -> Hits {
        self.hits
            .lock()
            .map(|mut h| {
                std::mem::replace(
                    &mut *h,
                    Hits {
                        phase: "health".to_owned(),
                        ..Hits::default()
                    },
                )
            })
            .unwrap_or_default()
    }
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM`: peak resident,
/// `VmRSS`: resident now), in KiB; `None` off Linux.
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

/// Resets the peak (`VmHWM`) to the current resident size, so each run reports its own
/// peak; false where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> Value {
    kib.map_or(json!("n/a"), |k| {
        json!((k as f64 / 1024.0 * 10.0).round() / 10.0)
    })
}

/// Reads (GET) and writes (anything else) in a `METHOD /path` count map.
fn split(routes: &BTreeMap<String, u64>) -> (u64, u64) {
    routes.iter().fold((0, 0), |(r, w), (k, n)| {
        if k.starts_with("GET ") {
            (r + n, w)
        } else {
            (r, w + n)
        }
    })
}

struct World {
    plex: PlexSim,
    trakt: TraktSim,
    expected_plays: usize,
    expected_ratings: usize,
    expected_watchlist: usize,
}

fn seed(args: &BenchArgs, plex: &PlexSim) -> (usize, usize, usize) {
    let mut rng = fastrand::Rng::with_seed(0x00fe_2217);
    let ten_years = 10 * 365 * 86_400;
    let mut plays = Vec::with_capacity(args.movies as usize + args.plays as usize);
    for n in 0..args.movies {
        let at = samples::BASE_TIME - rng.i64(0..ten_years);
        plays.push((PlexSim::movie_key(n), at));
    }
    let per_show = SEASONS * EPISODES;
    let shows = args.plays.div_ceil(per_show);
    let mut left = args.plays;
    for show in 0..shows {
        let start = samples::BASE_TIME - rng.i64(0..ten_years);
        for i in 0..per_show.min(left) {
            let (s, e) = (1 + i / EPISODES, 1 + i % EPISODES);
            let at = start + i64::from(i) * 86_400 + rng.i64(0..3_600);
            plays.push((PlexSim::episode_key(show, s, e), at));
        }
        left = left.saturating_sub(per_show);
    }
    plex.seed_plays(&plays);
    let mut ratings = 0;
    let mut watchlist = 0;
    for n in 0..args.movies {
        let key = PlexSim::movie_key(n);
        if n % 7 == 0 {
            plex.seed_rating(key, Some(f64::from(2 + (n % 5) * 2)));
            ratings += 1;
        }
        if n % 50 == 0 && watchlist < 200 {
            plex.seed_watchlist(key);
            watchlist += 1;
        }
    }
    (plays.len(), ratings, watchlist)
}

async fn start_world(args: &BenchArgs) -> World {
    let shows = args.plays.div_ceil(SEASONS * EPISODES);
    let plex = PlexSim::builder()
        .movies(args.movies)
        .shows(shows, SEASONS, EPISODES)
        .start()
        .await;
    let (expected_plays, expected_ratings, expected_watchlist) = seed(args, &plex);
    let trakt = TraktSim::start().await;
    trakt.enforce_rate_limits(true);
    let latency = Duration::from_millis(args.latency_ms);
    plex.set_latency(latency);
    trakt.set_latency(latency);
    World {
        plex,
        trakt,
        expected_plays,
        expected_ratings,
        expected_watchlist,
    }
}

fn provider_configs(w: &World) -> BTreeMap<String, ProviderConfig> {
    let mut m = BTreeMap::new();
    let obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert(
        "plex".to_owned(),
        ProviderConfig {
            instance: "plex".to_owned(),
            kind: "plex".to_owned(),
            values: obj(json!({
                "base_url": w.plex.uri(), "discover_url": w.plex.discover_uri(), "token": w.plex.token()
            })),
        },
    );
    m.insert(
        "trakt".to_owned(),
        ProviderConfig {
            instance: "trakt".to_owned(),
            kind: "trakt".to_owned(),
            values: obj(json!({
                "base_url": w.trakt.uri(), "client_id": w.trakt.client_id(), "access_token": w.trakt.access_token()
            })),
        },
    );
    m
}

/// One measured run and what the simulators saw during it.
struct Measured {
    summary: RunSummary,
    wall: Duration,
    plex_routes: BTreeMap<String, u64>,
    discover_routes: BTreeMap<String, u64>,
    trakt_routes: BTreeMap<String, u64>,
    trakt_429: u64,
    client_hits: Hits,
    peak_kib: Option<u64>,
    peak_is_per_run: bool,
    start_kib: Option<u64>,
}

async fn measure(
    w: &World,
    engine: &Engine,
    providers: &BTreeMap<String, Arc<dyn InventoryOps>>,
    counting: &Counting,
    cfg: &RunConfig,
) -> Result<Measured, Failure> {
    w.plex.reset_counts();
    w.trakt.reset_counts();
    counting.take();
    let limited_before = w.trakt.too_many_requests();
    let peak_is_per_run = reset_peak_rss();
    let start_kib = status_kib("VmRSS");
    let started = Instant::now();
    let summary = engine
        .run(providers, cfg, ferry_core::CancelToken::new())
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    let wall = started.elapsed();
    Ok(Measured {
        summary,
        wall,
        plex_routes: w.plex.routes(),
        discover_routes: w.plex.discover_routes(),
        trakt_routes: w.trakt.routes(),
        trakt_429: w.trakt.too_many_requests() - limited_before,
        client_hits: counting.take(),
        peak_kib: status_kib("VmHWM"),
        peak_is_per_run,
        start_kib,
    })
}

fn features_json(s: &RunSummary) -> Value {
    let mut m = Map::new();
    for f in FEATURES {
        if let Some(fs) = s.feature(PAIR, f) {
            m.insert(
                f.as_str().to_owned(),
                json!({
                    "status": fs.status,
                    "planned": fs.to_b.planned_adds + fs.to_b.planned_updates,
                    "added": fs.added() + fs.updated(),
                    "unchanged": fs.to_b.unchanged,
                    "unresolved": fs.unresolved(),
                    "api_hits": fs.api_hits,
                }),
            );
        }
    }
    Value::Object(m)
}

fn run_json(m: &Measured, latency: Duration) -> Value {
    let (plex_r, plex_w) = split(&m.plex_routes);
    let (disc_r, disc_w) = split(&m.discover_routes);
    let (trakt_r, trakt_w) = split(&m.trakt_routes);
    let bound = lower_bound(trakt_w, trakt_r, latency);
    let wall = m.wall.as_secs_f64();
    let over = if bound.is_zero() {
        Value::Null
    } else {
        json!(((wall / bound.as_secs_f64() - 1.0) * 1000.0).round() / 10.0)
    };
    let client: Map<String, Value> = m
        .client_hits
        .by_instance
        .iter()
        .map(|(k, (n, l, phases))| {
            (
                k.clone(),
                json!({"requests": n, "429": l, "by_phase": phases}),
            )
        })
        .collect();
    json!({
        "wall_s": (wall * 100.0).round() / 100.0,
        "lower_bound_s": (bound.as_secs_f64() * 100.0).round() / 100.0,
        "over_bound_pct": over,
        "trakt_429": m.trakt_429,
        "requests": {
            "plex": {"reads": plex_r + disc_r, "writes": plex_w + disc_w, "total": plex_r + disc_r + plex_w + disc_w},
            "trakt": {"reads": trakt_r, "writes": trakt_w, "total": trakt_r + trakt_w},
        },
        "routes": {
            "plex": m.plex_routes,
            "plex_discover": m.discover_routes,
            "trakt": m.trakt_routes,
        },
        "client_seen": client,
        "features": features_json(&m.summary),
        "totals": m.summary.totals,
        "peak_rss_mib": mib(m.peak_kib),
        "rss_at_start_mib": mib(m.start_kib),
        "peak_rss_scope": if m.peak_kib.is_none() { "n/a" } else if m.peak_is_per_run { "run" } else { "process" },
    })
}

async fn run(args: BenchArgs) -> Result<u8, Failure> {
    let json_out = args.json;
    if !(1..=100_000).contains(&args.movies) {
        return Err(Failure::usage("--movies: between 1 and 100000"));
    }
    if args.plays > 100_000 {
        return Err(Failure::usage("--plays: at most 100000"));
    }
    if args.latency_ms > 10_000 {
        return Err(Failure::usage("--latency-ms: at most 10000"));
    }
    let latency = Duration::from_millis(args.latency_ms);
    let setup = Instant::now();
    let world = start_world(&args).await;
    let temp = std::env::temp_dir().join(format!("ferry-bench-{}", std::process::id()));
    let store = StateStore::open(temp.join("ferry.db"))
        .map_err(|e| Failure::errors(format!("state database: {e}")))?;
    let providers = build_providers(&provider_configs(&world), &temp.join("data"), &store)?;
    let counting = Arc::new(Counting {
        inner: Arc::new(Discard),
        hits: Mutex::new(Hits::default()),
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
    let mut pair = PairConfig::new(PAIR, "plex", "trakt");
    for f in FEATURES {
        pair = pair.feature(f, FeatureSwitch::add_only());
    }
    let cfg = RunConfig::new(vec![pair]);
    let setup_s = setup.elapsed().as_secs_f64();

    let first = measure(&world, &engine, &providers, &counting, &cfg).await?;
    let held = (
        world.trakt.history().len(),
        world.trakt.ratings().len(),
        world.trakt.watchlist().len(),
    );
    let second = measure(&world, &engine, &providers, &counting, &cfg).await?;
    let held_after = (
        world.trakt.history().len(),
        world.trakt.ratings().len(),
        world.trakt.watchlist().len(),
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&temp);

    let complete =
        held == (
            world.expected_plays,
            world.expected_ratings,
            world.expected_watchlist,
        ) && held_after == held;
    let features = FEATURES.len() as u64;
    let unchanged_ok = {
        let (pr, pw) = split(&second.plex_routes);
        let (dr, dw) = split(&second.discover_routes);
        let (tr, tw) = split(&second.trakt_routes);
        pr + pw + dr + dw <= features && tr + tw <= features
    };
    let first_json = run_json(&first, latency);
    let within = first_json["over_bound_pct"]
        .as_f64()
        .is_some_and(|p| p <= 10.0);
    let v = json!({
        "bench": "plex-to-trakt",
        "args": {"movies": args.movies, "plays": args.plays, "latency_ms": args.latency_ms},
        "library": {
            "movies": args.movies,
            "shows": args.plays.div_ceil(SEASONS * EPISODES),
            "movie_plays": args.movies,
            "episode_plays": args.plays,
            "ratings": world.expected_ratings,
            "watchlist": world.expected_watchlist,
        },
        "features": FEATURES.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "setup_s": (setup_s * 100.0).round() / 100.0,
        "first": first_json,
        "unchanged": run_json(&second, latency),
        "trakt_after": {"plays": held.0, "ratings": held.1, "watchlist": held.2},
        "goals": {
            "complete_and_no_duplicates": complete,
            "within_10pct_of_bound": within,
            "zero_429": first.trakt_429 == 0 && second.trakt_429 == 0,
            "unchanged_run_at_most_one_request_per_provider_per_feature": unchanged_ok,
        },
    });
    if json_out {
        out(&v.to_string());
    } else {
        human(&v);
    }
    let code = exit_code(&first.summary).max(exit_code(&second.summary));
    Ok(if complete { code } else { code.max(1) })
}

fn human(v: &Value) {
    let line = |name: &str, r: &Value| {
        format!(
            "{name}: {} s (lower bound {} s, {}% over); trakt {} requests ({} GET, {} writes), {} 429s; plex {} requests; peak RSS {} MiB",
            r["wall_s"],
            r["lower_bound_s"],
            r["over_bound_pct"],
            r["requests"]["trakt"]["total"],
            r["requests"]["trakt"]["reads"],
            r["requests"]["trakt"]["writes"],
            r["trakt_429"],
            r["requests"]["plex"]["total"],
            r["peak_rss_mib"],
        )
    };
    out(&line("first run", &v["first"]));
    out(&line("unchanged run", &v["unchanged"]));
    out(&format!("goals: {}", v["goals"]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_the_slower_of_writes_and_get_windows_plus_two_latencies() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        assert_eq!(lower_bound(0, 0, ms(50)), Duration::ZERO);
        // Reads alone: one latency, no window past the first.
        assert_eq!(lower_bound(0, 3, ms(50)), ms(50));
        // 250 writes: 249 s of spacing, plus the first read and the last answer.
        assert_eq!(lower_bound(250, 400, ms(50)), s(249) + ms(100));
        // 2,500 GETs need two more 300 s windows, more than 10 writes need.
        assert_eq!(lower_bound(10, 2_500, ms(50)), s(600) + ms(100));
        assert_eq!(lower_bound(1, 1_000, ms(0)), Duration::ZERO);
    }

    #[test]
    fn routes_split_into_reads_and_writes() {
        let m: BTreeMap<String, u64> = [
            ("GET /sync/history".to_owned(), 7),
            ("POST /sync/history".to_owned(), 2),
            ("PUT /x".to_owned(), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(split(&m), (7, 3));
    }
}

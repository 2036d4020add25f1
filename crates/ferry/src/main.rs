//! `ferry`: keep your watch state in agreement across media servers and trackers.

mod app;
mod auth;
mod config;
mod daemon;
mod degraded;
mod demo;
mod lock;
mod output;
mod providers;
mod report;
mod sims;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ferry_core::{CancelToken, Context};

use report::{EXIT_BUSY, EXIT_ERRORS, EXIT_USAGE};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Keep watch state in agreement across media servers and trackers, without ever losing it."
)]
struct Cli {
    /// The config file (default: $FERRY_CONFIG, else the platform config directory).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Print events as NDJSON on stdout and nothing else.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the providers compiled into this binary, with their features and capabilities.
    Providers,
    /// Check every configured provider instance: status, latency, features.
    Health,
    /// Validate the config file and print what it configures.
    Check,
    /// Sync every configured pair once (or one pair, or one feature).
    Run {
        #[command(flatten)]
        opts: RunOpts,
        /// Plan and report exactly as a real run, but write nothing and commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what a run would do, with the evidence behind every removal. Writes nothing.
    Plan {
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Show the state database: baselines, unresolved items, blackbox, breakers, past runs.
    State {
        /// How many past runs to show.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// List restore points, or put one back (add-only: a restore never removes anything).
    Restore {
        /// The restore point to put back; without it, the list.
        id: Option<i64>,
    },
    /// Run pairs on their intervals, one run at a time, probing down providers in between.
    Daemon {
        /// Stop after this many runs (default: run until Ctrl-C).
        #[arg(long)]
        max_runs: Option<u64>,
        /// Minutes between runs for pairs without `interval_minutes` (default 60).
        #[arg(long, default_value_t = 60)]
        interval_minutes: u64,
    },
    /// Sync simulated media servers with a simulated tracker account on loopback (no
    /// account, no network).
    Demo {
        /// Films in each simulated media server's library (plus 20 shows of 24 episodes).
        #[arg(long, default_value_t = 1500)]
        movies: u32,
        /// Keep the demo's state database here instead of a temporary directory.
        #[arg(long, value_name = "PATH")]
        state: Option<PathBuf>,
    },
    /// Sign in to a service and keep its token in the state database (the provider's
    /// device-code or PIN flow; `ferry providers` lists which have one).
    Auth {
        /// The provider (its kind, as in `kind = "..."`).
        provider: String,
        /// The configured instance to sign in (default: the only instance of that provider).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
    },
    /// Serve a stateful simulator of a service on loopback, for integrators' CI.
    Simulate {
        /// The provider whose service to simulate (`ferry providers` lists which have one).
        provider: String,
        /// Listen on this loopback port (a service with a second host takes the next ones
        /// too; the ready line names them).
        #[arg(long)]
        port: Option<u16>,
        /// How many titles the simulated library holds.
        #[arg(long, default_value_t = 200)]
        items: u32,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct RunOpts {
    /// Only this pair.
    #[arg(long, value_name = "NAME")]
    pair: Option<String>,
    /// Only this feature: history, watchlist, ratings, progress or playlists.
    #[arg(long, value_name = "FEATURE")]
    feature: Option<ferry_core::Feature>,
    /// Lift the mass-delete guard for this run only.
    #[arg(long)]
    allow_mass_delete: bool,
}

impl RunOpts {
    fn flags(&self, dry_run: bool) -> app::RunFlags {
        app::RunFlags {
            pair: self.pair.clone(),
            feature: self.feature,
            dry_run,
            allow_mass_delete: self.allow_mass_delete,
        }
    }
}

/// An error the CLI reports: a message and an exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    fn errors(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_ERRORS,
            message: message.into(),
        }
    }
}

impl From<lock::LockError> for Failure {
    fn from(e: lock::LockError) -> Self {
        let code = match e {
            lock::LockError::Busy { .. } => EXIT_BUSY,
            lock::LockError::Io(_) => EXIT_ERRORS,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Self {
        Failure::usage(format!("config error: {e}"))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&format!("ferry: cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_ERRORS);
        }
    };
    let result = runtime.block_on(dispatch(&cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            report(&format!("ferry: {}", f.message));
            ExitCode::from(f.code)
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Providers => Ok(cmd_providers(cli.json)),
        Command::Health => cmd_health(cli).await,
        Command::Check => cmd_check(cli),
        Command::Run { opts, dry_run } => cmd_run(cli, opts.flags(*dry_run)).await,
        Command::Plan { opts } => cmd_plan(cli, opts.flags(true)).await,
        Command::State { runs } => cmd_state(cli, *runs),
        Command::Restore { id } => cmd_restore(cli, *id).await,
        Command::Daemon {
            max_runs,
            interval_minutes,
        } => daemon::run(cli, *max_runs, *interval_minutes).await,
        Command::Demo { movies, state } => demo::run(cli.json, *movies, state.clone()).await,
        Command::Auth { provider, instance } => auth::run(cli, provider, instance.as_deref()).await,
        Command::Simulate {
            provider,
            port,
            items,
        } => cmd_simulate(cli.json, provider, *port, *items).await,
    }
}

fn init_logging(json: bool) {
    // Human lines go to stderr; stdout is reserved for results and `--json` events.
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if json { "error" } else { "warn" })
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[allow(clippy::print_stderr)]
pub(crate) fn report(msg: &str) {
    eprintln!("{msg}");
}

#[allow(clippy::print_stdout)]
fn out(line: &str) {
    println!("{line}");
}

fn load_config(cli: &Cli) -> Result<config::Config, Failure> {
    let path = config::locate(cli.config.as_deref())
        .ok_or_else(|| Failure::usage("no config file: pass --config PATH or set FERRY_CONFIG"))?;
    let (cfg, warnings) = config::load(&path)?;
    for w in warnings {
        report(&format!("warning: {w}"));
    }
    Ok(cfg)
}

fn cmd_providers(json: bool) -> u8 {
    let list = ferry_core::registry::providers();
    if json {
        for d in &list {
            let caps = (d.capabilities)();
            let line = serde_json::json!({"event": "provider", "id": d.id, "label": d.label, "capabilities": caps,
                "sign_in": d.sign_in.map(|s| s.method), "simulator": d.simulator.is_some()});
            out(&line.to_string());
        }
        return 0;
    }
    let width = list.iter().map(|d| d.id.len()).max().unwrap_or(0);
    for d in &list {
        let caps = (d.capabilities)();
        let extra = if caps.activities { " +activities" } else { "" };
        let mut tools = Vec::new();
        if let Some(s) = d.sign_in {
            tools.push(format!("`ferry auth {}` ({})", d.id, s.method));
        }
        if d.simulator.is_some() {
            tools.push(format!("`ferry simulate {}`", d.id));
        }
        let tools = if tools.is_empty() {
            String::new()
        } else {
            format!("  {}", tools.join(", "))
        };
        out(&format!(
            "{:width$}  {}  [{}{extra}]{tools}",
            d.id,
            d.label,
            caps.summary()
        ));
    }
    0
}

fn cmd_check(cli: &Cli) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    // Every instance is built as `run` builds it (nothing connects), so whatever `run`
    // would refuse, `check` refuses first.
    app::check_providers(&cfg)?;
    if cli.json {
        let line = serde_json::json!({
            "event": "config:ok", "file": cfg.file, "state": cfg.state_path,
            "instances": cfg.providers.keys().collect::<Vec<_>>(),
            "pairs": cfg.pairs.iter().map(|p| &p.name).collect::<Vec<_>>(),
        });
        out(&line.to_string());
    } else {
        out(&format!("{}: ok", cfg.file.display()));
        out(&format!("  state      {}", cfg.state_path.display()));
        let g = &cfg.guardrails;
        out(&format!(
            "  guardrails removals above max({}, {:.0}%) of a list are {}; tombstones kept {} days; debug events {}",
            g.mass_delete_floor,
            g.mass_delete_ratio * 100.0,
            if g.allow_mass_delete {
                "ALLOWED"
            } else {
                "blocked"
            },
            g.tombstone_ttl_days,
            if cfg.runtime.debug { "on" } else { "off" }
        ));
        for (name, pc) in &cfg.providers {
            out(&format!("  instance   {name} ({})", pc.kind));
        }
        for p in &cfg.pairs {
            out(&format!(
                "  pair       {}: {} -> {} ({:?})",
                p.name, p.source, p.target, p.mode
            ));
        }
    }
    Ok(0)
}

/// What `ferry health` shows of a stored circuit-breaker record.
#[derive(serde::Deserialize)]
struct BreakerView {
    state: String,
    #[serde(default)]
    opened_at_ms: Option<i64>,
}

async fn cmd_health(cli: &Cli) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let state = app::open_state(&cfg.state_path)?;
    let providers = app::build_providers(&cfg, Arc::new(state.clone()))?;
    if providers.is_empty() {
        return Err(Failure::errors("no provider instances are configured"));
    }
    let em = app::emitter(app::sink(cli.json), &providers, false);
    let cx = Context::new(em.clone(), CancelToken::new());
    let breakers = state.breaker_records().unwrap_or_default();
    let unresolved = state.unresolved(None, None).unwrap_or_default();
    let now_ms = ferry_core::Timestamp::now().unix() * 1000;
    let mut worst = 0;
    let width = providers.keys().map(String::len).max().unwrap_or(0);
    for (instance, ops) in &providers {
        let h = ops.health(&cx).await;
        if !h.status.is_usable() {
            worst = EXIT_ERRORS;
        }
        // The breaker record of this instance (and of its sub-clients, `<instance>/...`).
        let breaker: Vec<String> = breakers
            .iter()
            .filter(|b| b.key == *instance || b.key.starts_with(&format!("{instance}/")))
            .filter_map(|b| {
                let v: BreakerView = serde_json::from_str(&b.value).ok()?;
                let st = v.state;
                let open_for = v.opened_at_ms.map(|o| (now_ms - o).max(0) / 1000);
                Some(match (st.as_str(), open_for) {
                    ("closed", _) => format!("{}: closed", b.key),
                    (_, Some(secs)) => format!("{}: {st} for {secs} s", b.key),
                    _ => format!("{}: {st}", b.key),
                })
            })
            .collect();
        let pending = unresolved
            .iter()
            .filter(|u| u.instance == *instance)
            .count();
        if cli.json {
            em.emit_value(
                "health",
                &serde_json::json!({"provider": ops.provider(), "instance": instance, "status": h.status, "latency_ms": h.latency_ms,
                    "features": h.features, "details": h.details, "breaker": breaker, "pending_unresolved": pending}),
            );
        } else {
            let latency = h
                .latency_ms
                .map(|l| format!("{l} ms"))
                .unwrap_or_else(|| "-".into());
            let breaker = if breaker.is_empty() {
                "breaker closed".to_owned()
            } else {
                breaker.join(", ")
            };
            let details = h
                .details
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default();
            out(&format!(
                "{instance:width$}  {:<8} {:<12} {latency:>7}  {breaker}; {pending} pending unresolved{details}",
                ops.provider(),
                h.status.as_str()
            ));
        }
    }
    Ok(worst)
}

async fn cmd_simulate(
    json: bool,
    provider: &str,
    port: Option<u16>,
    items: u32,
) -> Result<u8, Failure> {
    let (descriptor, simulator) = sims::find(provider).map_err(Failure::usage)?;
    if items > 100_000 {
        return Err(Failure::usage("--items: at most 100000 titles"));
    }
    if let Some(p) = port {
        let needed = simulator.ports.max(1);
        for q in 0..needed {
            let Some(port) = p.checked_add(q) else {
                return Err(Failure::usage(format!(
                    "--port {p}: {needed} consecutive ports are needed"
                )));
            };
            std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
                Failure::usage(format!("--port: cannot listen on 127.0.0.1:{port}: {e}"))
            })?;
        }
        sims::listen_from(p);
    }
    let sim = sims::start(
        descriptor,
        simulator,
        ferry_core::Scenario::Library { items },
    )
    .await
    .map_err(Failure::errors)?;
    if json {
        let line = serde_json::json!({"event": "simulate:ready", "provider": sim.kind, "uri": sim.uri(), "items": items, "config": sim.config()});
        out(&line.to_string());
    } else {
        out(&format!(
            "{} simulator listening on {} with {items} titles",
            sim.kind,
            sim.uri()
        ));
        out("");
        out(&sim.toml_snippet(&format!("{}-sim", sim.kind)));
        out("Press Ctrl-C to stop.");
    }
    // Scripts read the ready line through a pipe; make sure it is out before we wait.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::errors(format!("cannot wait for Ctrl-C: {e}")))?;
    if json {
        out(&serde_json::json!({"event": "simulate:done", "requests": sim.requests()}).to_string());
    } else {
        out(&format!("served {} requests", sim.requests()));
    }
    Ok(0)
}

/// A cancel token that fires on Ctrl-C: the run stops at the next batch boundary and
/// commits nothing half-done.
pub(crate) fn cancel_on_ctrl_c() -> CancelToken {
    let cancel = CancelToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted: stopping at the next batch boundary");
            c.cancel();
        }
    });
    cancel
}

/// The one-ferry-at-a-time lock beside the state file (`ferry.db.lock`).
pub(crate) fn lock_path(cfg: &config::Config) -> PathBuf {
    ferry_state::sibling(&cfg.state_path, ".lock")
}

/// Takes the state file's lock for `command` (`run`, `daemon`, ...), or fails with
/// [`EXIT_BUSY`] naming who holds it.
pub(crate) fn take_lock(cfg: &config::Config, command: &str) -> Result<lock::RunLock, Failure> {
    Ok(lock::RunLock::acquire(
        &lock_path(cfg),
        &format!("ferry {command}"),
    )?)
}

async fn cmd_run(cli: &Cli, flags: app::RunFlags) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let rc = app::run_config(&cfg, &flags)?;
    let _lock = take_lock(&cfg, "run")?;
    let session = app::session(&cfg, app::open_state(&cfg.state_path)?, cli.json)?;
    let summary = session
        .engine
        .run(&session.providers, &rc, cancel_on_ctrl_c())
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    let degraded = app::degraded_after_run(&cfg, &session, &summary);
    if cli.json {
        session.emitter.emit_value("summary", &summary);
    } else {
        for line in report::summary_lines(&summary, &degraded) {
            out(&line);
        }
    }
    Ok(report::exit_code(&summary, &degraded))
}

async fn cmd_plan(cli: &Cli, flags: app::RunFlags) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let rc = app::run_config(&cfg, &flags)?;
    let session = app::session(&cfg, app::open_state(&cfg.state_path)?, cli.json)?;
    let plan = session
        .engine
        .plan(&session.providers, &rc, cancel_on_ctrl_c())
        .await
        .map_err(|e| Failure::errors(e.to_string()))?;
    // A plan that could not look at a provider says so, as a run would.
    let degraded = app::degraded_after_run(&cfg, &session, &plan.summary);
    if cli.json {
        session.emitter.emit_value("plan", &plan);
    } else {
        for line in report::plan_lines(&plan) {
            out(&line);
        }
        if !degraded.is_empty() {
            out(&format!(
                "attention: {} provider instance(s) could not be planned for:",
                degraded.len()
            ));
        }
        for line in degraded::lines(&degraded) {
            out(&line);
        }
    }
    Ok(if degraded.is_empty() {
        report::EXIT_OK
    } else {
        report::EXIT_DEGRADED
    })
}

fn cmd_state(cli: &Cli, runs: usize) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let state = app::open_state(&cfg.state_path)?;
    let engine = app::engine(state, ferry_core::Emitter::silent());
    let r = engine
        .state_report(runs)
        .map_err(|e| Failure::errors(e.to_string()))?;
    if cli.json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("event".into(), "state".into());
        }
        out(&v.to_string());
        return Ok(0);
    }
    out(&format!(
        "state {} (schema {})",
        r.path.as_deref().unwrap_or("in memory"),
        r.schema_version
    ));
    out(&format!("baselines ({}):", r.baselines.len()));
    for b in &r.baselines {
        out(&format!(
            "  {:<22} {:<16} {:<10} {:>7} items  checkpoint {}  at {}{}",
            b.pair,
            b.instance,
            b.feature.as_str(),
            b.item_count,
            b.checkpoint.as_deref().unwrap_or("-"),
            b.updated_at,
            if b.pending { "  (writes pending)" } else { "" }
        ));
    }
    out(&format!("unresolved ({}):", r.unresolved.len()));
    for u in r.unresolved.iter().take(50) {
        out(&format!(
            "  {} {} {} {}: {} since {}",
            u.pair,
            u.instance,
            u.feature,
            u.entry.item.label(),
            u.reason,
            u.first_seen
        ));
    }
    out(&format!("blackbox ({}):", r.blackbox.len()));
    for b in r.blackbox.iter().take(50) {
        out(&format!(
            "  {} {} {} {}: {} since {}",
            b.pair,
            b.instance,
            b.feature,
            b.entry.item.label(),
            b.reason,
            b.since
        ));
    }
    out(&format!("circuit breakers ({}):", r.breakers.len()));
    for k in &r.breakers {
        out(&format!(
            "  {}: {} (updated {})",
            k.key, k.value, k.updated_at
        ));
    }
    out(&format!(
        "tombstones: {}   restore points: {}   unreconciled write batches: {}",
        r.tombstones,
        r.restore_points.len(),
        r.pending_journal_batches
    ));
    out(&format!("recent runs ({}):", r.runs.len()));
    for run in &r.runs {
        out(&format!(
            "  #{} {} {:?}{}",
            run.id,
            run.started_at,
            run.status,
            run.finished_at
                .map(|f| format!(" -> {f}"))
                .unwrap_or_default()
        ));
    }
    Ok(0)
}

async fn cmd_restore(cli: &Cli, id: Option<i64>) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let state = app::open_state(&cfg.state_path)?;
    let Some(id) = id else {
        let points = state
            .restore_points()
            .map_err(|e| Failure::errors(e.to_string()))?;
        if cli.json {
            for p in &points {
                let mut v = serde_json::to_value(p).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.insert("event".into(), "restore_point".into());
                }
                out(&v.to_string());
            }
        } else if points.is_empty() {
            out("no restore points: one is saved before any removal is applied");
        } else {
            for p in &points {
                out(&format!(
                    "{:>5}  {}  {} {} {}  {} items",
                    p.id, p.created_at, p.pair, p.instance, p.feature, p.item_count
                ));
            }
        }
        return Ok(0);
    };
    drop(state);
    let _lock = take_lock(&cfg, "restore")?;
    let app::Session {
        providers,
        emitter: em,
        engine,
        ..
    } = app::session(&cfg, app::open_state(&cfg.state_path)?, cli.json)?;
    let r = engine
        .restore(&providers, id, cancel_on_ctrl_c())
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    if cli.json {
        em.emit_value("restore", &r);
    } else {
        out(&format!(
            "restore point {} ({} {}): {} saved, {} missing, {} restored",
            r.id, r.instance, r.feature, r.saved, r.missing, r.restored
        ));
        for (reason, n) in &r.unresolved {
            out(&format!("  {n} not restored: {reason}"));
        }
    }
    Ok(if r.unresolved.values().sum::<usize>() > 0 {
        report::EXIT_UNRESOLVED
    } else {
        report::EXIT_OK
    })
}

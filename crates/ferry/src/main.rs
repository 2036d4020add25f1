//! `ferry`: keep your watch state in agreement across media servers and trackers.

mod config;
mod providers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ferry_core::{BuildEnv, Context, InventoryOps, KvStore, MemoryKvStore};

/// Exit codes (documented in the README).
const EXIT_ERRORS: u8 = 1;
const EXIT_USAGE: u8 = 2;

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
fn report(msg: &str) {
    eprintln!("{msg}");
}

#[allow(clippy::print_stdout)]
fn out(line: &str) {
    println!("{line}");
}

fn load_config(cli: &Cli) -> Result<config::Config, Failure> {
    let path = config::locate(cli.config.as_deref())
        .ok_or_else(|| Failure::usage("no config file: pass --config PATH or set FERRY_CONFIG"))?;
    Ok(config::load(&path)?)
}

/// Builds every configured provider instance.
fn build_providers(
    cfg: &config::Config,
    kv: Arc<dyn KvStore>,
) -> Result<std::collections::BTreeMap<String, Arc<dyn InventoryOps>>, Failure> {
    let data_root = cfg
        .state_path
        .parent()
        .map(|p| p.join("data"))
        .unwrap_or_else(|| PathBuf::from("data"));
    let mut out = std::collections::BTreeMap::new();
    for (instance, pc) in &cfg.providers {
        let d = ferry_core::registry::find(&pc.kind).map_err(|e| Failure::usage(e.to_string()))?;
        let env = BuildEnv::new(data_root.join(instance), kv.clone());
        let ops = (d.build)(pc, &env)
            .map_err(|e| Failure::usage(format!("providers.{instance}: {e}")))?;
        out.insert(instance.clone(), ops);
    }
    Ok(out)
}

fn cmd_providers(json: bool) -> u8 {
    let list = ferry_core::registry::providers();
    if json {
        for d in &list {
            let caps = (d.capabilities)();
            let line = serde_json::json!({"event": "provider", "id": d.id, "label": d.label, "capabilities": caps});
            out(&line.to_string());
        }
        return 0;
    }
    let width = list.iter().map(|d| d.id.len()).max().unwrap_or(0);
    for d in &list {
        let caps = (d.capabilities)();
        let extra = if caps.activities { " +activities" } else { "" };
        out(&format!(
            "{:width$}  {}  [{}{extra}]",
            d.id,
            d.label,
            caps.summary()
        ));
    }
    0
}

fn cmd_check(cli: &Cli) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
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

async fn cmd_health(cli: &Cli) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let providers = build_providers(&cfg, Arc::new(MemoryKvStore::new()))?;
    let cx = Context::default();
    let mut worst = 0;
    let width = providers.keys().map(String::len).max().unwrap_or(0);
    for (instance, ops) in &providers {
        let h = ops.health(&cx).await;
        if !h.status.is_usable() {
            worst = EXIT_ERRORS;
        }
        if cli.json {
            let line = serde_json::json!({"event": "health", "provider": ops.provider(), "instance": instance, "status": h.status, "latency_ms": h.latency_ms, "features": h.features, "details": h.details});
            out(&line.to_string());
        } else {
            let latency = h
                .latency_ms
                .map(|l| format!("{l} ms"))
                .unwrap_or_else(|| "-".into());
            let details = h.details.as_deref().unwrap_or("");
            out(&format!(
                "{instance:width$}  {:<8} {:<12} {latency:>7}  {details}",
                ops.provider(),
                h.status.as_str()
            ));
        }
    }
    if providers.is_empty() {
        return Err(Failure::errors("no provider instances are configured"));
    }
    Ok(worst)
}

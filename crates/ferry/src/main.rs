//! `ferry`: keep your watch state in agreement across media servers and trackers.

mod providers;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes (documented in the README): 0 ok, 1 errors, 2 config or usage,
/// 3 finished with unresolved items or blocked removals.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Keep watch state in agreement across media servers and trackers, without ever losing it."
)]
struct Cli {
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
    match cli.command {
        Command::Providers => cmd_providers(cli.json),
    }
}

#[allow(clippy::print_stdout)]
fn cmd_providers(json: bool) -> ExitCode {
    let list = ferry_core::registry::providers();
    if json {
        for d in &list {
            let caps = (d.capabilities)();
            let line = serde_json::json!({"event": "provider", "id": d.id, "label": d.label, "capabilities": caps});
            println!("{line}");
        }
        return ExitCode::SUCCESS;
    }
    let width = list.iter().map(|d| d.id.len()).max().unwrap_or(0);
    for d in &list {
        let caps = (d.capabilities)();
        let extra = if caps.activities { " +activities" } else { "" };
        println!("{:width$}  {}  [{}{extra}]", d.id, d.label, caps.summary());
    }
    ExitCode::SUCCESS
}

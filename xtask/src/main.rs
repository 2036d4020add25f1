//! `cargo xtask <command>`: repository automation, in Rust so it runs wherever cargo does.
//!
//! - `ci`: formatting check, clippy with `-D warnings`, the whole test suite.
//! - `new-provider NAME`: scaffolds `providers/NAME` and wires it into the runner.
//! - `bench [--quick]`: the full-sync benchmark (Plex → Trakt against simulators); writes
//!   its figures into `docs/benchmarks.md` (`--quick`: a small library, printed only).
//! - `bench-write [--quick]`: requests and CPU of a first sync of 1,000 and 10,000 titles
//!   into Jellyfin and Trakt against their simulators; writes `docs/benchmarks.md` too.

mod bench;
mod bench_write;
mod scaffold;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("new-provider") => match args.get(1) {
            Some(name) => scaffold::new_provider(&root, name).map(|created| {
                report(&format!("created providers/{name} ({} files) and wired `provider-{name}` into the runner", created.len()));
                report(&format!("next: cargo test -p {name}   (the contract suite fails until the provider is written)"));
            }),
            None => Err("usage: cargo xtask new-provider NAME".to_owned()),
        },
        Some("bench") => bench::bench(&root, &args[1..]),
        Some("bench-write") => bench_write::bench_write(&root, &args[1..]),
        _ => Err(
            "usage: cargo xtask <ci | new-provider NAME | bench [--quick] | bench-write [--quick]>"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("xtask: {e}"));
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::print_stderr)]
fn report(msg: &str) {
    eprintln!("{msg}");
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn run(root: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    report(&format!("$ {program} {}", args.join(" ")));
    let status = Command::new(program)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// What CI runs: the same three steps a contributor runs before pushing.
fn ci(root: &Path) -> Result<(), String> {
    run(root, "cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(root, "cargo", &["test", "--workspace"])
}

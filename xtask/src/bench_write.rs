//! `cargo xtask bench-write [--quick]`: builds the `ferry` package's `bench_write` example
//! in release, runs a first sync of 1,000 and of 10,000 titles into Jellyfin and into
//! Trakt against their simulators (one process per run), and writes the figures into the
//! marked section of `docs/benchmarks.md`. `--quick` runs 100 and 300 titles and only
//! prints the section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bench::{Json, Machine, replace_marked, thousands, today};
use crate::report;

pub(crate) const START: &str = "<!-- xtask-bench-write:start -->";
pub(crate) const END: &str = "<!-- xtask-bench-write:end -->";
const HEADING: &str = "First sync write path (`cargo xtask bench-write`)";

const TARGETS: [&str; 2] = ["jellyfin", "trakt"];
const FULL: [u32; 2] = [1_000, 10_000];
const QUICK: [u32; 2] = [100, 300];
/// Only what the example needs, so a provider it does not use cannot stop the build.
const FEATURES: &str = "sim,provider-local,provider-jellyfin,provider-trakt";

pub(crate) fn bench_write(root: &Path, args: &[String]) -> Result<(), String> {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            other => {
                return Err(format!(
                    "bench-write: unknown argument `{other}`; usage: cargo xtask bench-write [--quick]"
                ));
            }
        }
    }
    crate::run(
        root,
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "ferry",
            "--no-default-features",
            "--features",
            FEATURES,
            "--example",
            "bench_write",
        ],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let exe = target.join("release").join("examples").join("bench_write");
    let machine = Machine::probe();
    let sizes = if quick { QUICK } else { FULL };
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for t in TARGETS {
        for n in sizes {
            let args = ["--target", t, "--items", &n.to_string(), "--json"].map(str::to_owned);
            report(&format!(
                "$ target/release/examples/bench_write {}",
                args.join(" ")
            ));
            let output = Command::new(&exe)
                .args(&args)
                .current_dir(root)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with('{'))
                .ok_or_else(|| format!("bench_write printed no result ({})", output.status))?;
            results.push(Json::parse(line).map_err(|e| format!("bench_write result: {e}"))?);
            if !output.status.success() {
                failed.push(format!("{t} × {n}: {}", output.status));
            }
        }
    }
    let section = render(&results, &sizes, &machine, &today());
    if quick {
        report("--quick: docs/benchmarks.md left as it is; the section would read:\n");
        report(&section);
    } else {
        let path = root.join("docs").join("benchmarks.md");
        let doc = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let new = replace_marked(&doc, (START, END), HEADING, &section)?;
        std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        report(&format!("updated {}", path.display()));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("bench_write failed: {}", failed.join("; ")))
    }
}

fn label(target: &str) -> &str {
    match target {
        "jellyfin" => "Jellyfin",
        "trakt" => "Trakt",
        other => other,
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |s| format!("{s:.2} s"))
}

/// One row of the main table.
fn row(r: &Json) -> String {
    let n = |path: &str| r.num(path).unwrap_or(0.0);
    let u = |path: &str| thousands(n(path) as u64);
    let ms = |path: &str| {
        r.num(path)
            .map_or("n/a".to_owned(), |m| format!("{m:.2} ms"))
    };
    let within = matches!(r.get("within_bound"), Some(Json::Bool(true)));
    let beyond = r.num("beyond_pages_and_writes").unwrap_or(0.0);
    format!(
        "| {} | {} | {} / {} | {} + {} + {} + ≤{} = {} | {beyond:+} | {} | {:.3} | {} + {} = {} | {} | {} | {} | {} |",
        label(r.get("target").and_then(str_of).unwrap_or("?")),
        u("items"),
        u("requests.reads"),
        u("requests.writes"),
        u("bound.pages"),
        u("bound.writes"),
        u("bound.write_reads"),
        u("bound.constant"),
        u("bound.total"),
        if within { "yes" } else { "**no**" },
        n("requests.per_item"),
        secs(r.num("cpu.user_s")),
        secs(r.num("cpu.sys_s")),
        secs(r.num("cpu.total_s")),
        ms("cpu.per_item_ms"),
        secs(r.num("sim_cpu_s")),
        secs(r.num("wall_s")),
        r.num("peak_rss_mib")
            .map_or("n/a".to_owned(), |m| format!("{m:.0} MiB")),
    )
}

fn str_of(j: &Json) -> Option<&str> {
    match j {
        Json::Str(s) => Some(s),
        _ => None,
    }
}

/// The markdown between the markers.
pub(crate) fn render(results: &[Json], sizes: &[u32], machine: &Machine, date: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Measured with `cargo xtask bench-write` on {date}:\n");
    let _ = writeln!(s, "```sh");
    for r in results {
        let _ = writeln!(
            s,
            "target/release/examples/bench_write --target {} --items {} --json",
            r.get("target").and_then(str_of).unwrap_or("?"),
            r.num("items").unwrap_or(0.0)
        );
    }
    let _ = writeln!(s, "```\n");
    let _ = writeln!(s, "Machine: {}.\n", machine.describe());
    let _ = writeln!(
        s,
        "| target | titles | requests: reads / writes | bound: pages + writes + reads for writes + constant¹ | beyond pages and writes² | within the bound | requests per title (2 features) | ferry CPU: user + sys³ | CPU per title | simulator CPU | wall⁴ | peak RSS⁵ |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    );
    for r in results {
        let _ = writeln!(s, "{}", row(r));
    }
    let _ = writeln!(
        s,
        "\n¹ Per feature (watchlist, history): the target's list read page by page \
         (Jellyfin: the whole library of N titles, 200 a page; Trakt: an empty list, one \
         page), one write per batch (Jellyfin: one request per title, its API has no bulk \
         endpoint; Trakt: 100 titles a request), the reads a write needs first (Trakt \
         history: the plays around the batch, one per batch), and an allowance for \
         health checks, account settings and change checkpoints.  \n\
         ² Requests beyond the pages, writes and reads for writes: the same at every N on \
         a linear write path.  \n\
         ³ `utime` + `stime` of the process from `/proc/self/stat`, minus the simulator's \
         threads (`/proc/self/task/*/stat`), over the sync alone (setup excluded); 10 ms \
         resolution.  \n\
         ⁴ Trakt's writes are spaced a second apart by the client (Trakt's published \
         limit), so its wall time is mostly waiting.  \n\
         ⁵ `VmHWM` of the process, which also holds the simulator and its data.\n"
    );
    for t in TARGETS {
        let runs: Vec<&Json> = results
            .iter()
            .filter(|r| r.get("target").and_then(str_of) == Some(t))
            .collect();
        if runs.is_empty() {
            continue;
        }
        routes_table(&mut s, label(t), &runs);
    }
    let complete = results
        .iter()
        .all(|r| matches!(r.get("complete"), Some(Json::Bool(true))));
    let limited: f64 = results
        .iter()
        .map(|r| r.num("too_many_requests").unwrap_or(0.0))
        .sum();
    let _ = writeln!(
        s,
        "Every title arrived on both features in every run: {}; `429` answers: {limited}.",
        if complete { "yes" } else { "**no**" }
    );
    if let [small, large] = sizes {
        for t in TARGETS {
            let per = |n: u32| {
                results
                    .iter()
                    .find(|r| {
                        r.get("target").and_then(str_of) == Some(t)
                            && r.num("items") == Some(f64::from(n))
                    })
                    .and_then(|r| r.num("cpu.per_item_ms"))
            };
            if let (Some(a), Some(b)) = (per(*small), per(*large))
                && a > 0.0
            {
                let _ = writeln!(
                    s,
                    "{}: CPU per title at {} titles is {:.2}× that at {}.",
                    label(t),
                    thousands(u64::from(*large)),
                    b / a,
                    thousands(u64::from(*small)),
                );
            }
        }
    }
    s
}

/// Requests per route class for one target's runs (per-item routes folded into `{id}`).
fn routes_table(s: &mut String, label: &str, runs: &[&Json]) {
    let mut routes: Vec<&str> = runs
        .iter()
        .filter_map(|r| r.get("routes"))
        .flat_map(Json::keys)
        .collect();
    routes.sort_unstable();
    routes.dedup();
    let sizes: Vec<String> = runs
        .iter()
        .map(|r| format!("{} titles", thousands(r.num("items").unwrap_or(0.0) as u64)))
        .collect();
    let _ = writeln!(
        s,
        "{label}, requests per route:\n\n| route | {} |\n|---|{}",
        sizes.join(" | "),
        "---:|".repeat(runs.len())
    );
    for route in routes {
        let counts: Vec<String> = runs
            .iter()
            .map(|r| {
                r.get("routes")
                    .and_then(|m| m.field(route))
                    .and_then(Json::as_num)
                    .map_or("0".to_owned(), |c| thousands(c as u64))
            })
            .collect();
        let _ = writeln!(s, "| `{route}` | {} |", counts.join(" | "));
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(target: &str, items: u32, cpu_ms: f64) -> Json {
        Json::parse(&format!(
            r#"{{"target":"{target}","items":{items},
            "requests":{{"reads":19,"writes":2000,"total":2019,"per_item":2.019}},
            "routes":{{"GET /Items":19,"POST /UserPlayedItems/{{id}}":{items}}},
            "bound":{{"pages":10,"writes":2000,"write_reads":0,"constant":16,"reads":26,"total":2026}},
            "within_bound":true,"beyond_pages_and_writes":9,
            "cpu":{{"user_s":0.5,"sys_s":0.1,"total_s":0.6,"per_item_ms":{cpu_ms}}},
            "sim_cpu_s":0.3,"wall_s":1.5,"peak_rss_mib":40.2,"too_many_requests":0,"complete":true}}"#
        ))
        .unwrap()
    }

    #[test]
    fn results_render_into_a_table_with_the_bound_and_routes() {
        let m = Machine {
            cpus: 2,
            cpu_model: Some("Test CPU".into()),
            mem_gib: Some(24.0),
            load: Some("1.50".into()),
        };
        let rs = [
            result("jellyfin", 1000, 0.6),
            result("jellyfin", 10000, 0.66),
        ];
        let s = render(&rs, &[1000, 10000], &m, "2026-12-07");
        assert!(
            s.contains("bench_write --target jellyfin --items 10000 --json"),
            "{s}"
        );
        assert!(
            s.contains(
                "| Jellyfin | 1,000 | 19 / 2,000 | 10 + 2,000 + 0 + ≤16 = 2,026 | +9 | yes | 2.019 | 0.50 s + 0.10 s = 0.60 s | 0.60 ms | 0.30 s | 1.50 s | 40 MiB |"
            ),
            "{s}"
        );
        assert!(
            s.contains("| `POST /UserPlayedItems/{id}` | 1,000 | 10,000 |"),
            "{s}"
        );
        assert!(s.contains("in every run: yes; `429` answers: 0."), "{s}");
        assert!(
            s.contains("Jellyfin: CPU per title at 10,000 titles is 1.10× that at 1,000."),
            "{s}"
        );
    }

    #[test]
    fn the_write_section_has_markers_of_its_own() {
        let doc = format!(
            "# B\n\n{}\nold\n{}\n",
            crate::bench::START,
            crate::bench::END
        );
        let out = replace_marked(&doc, (START, END), HEADING, "new").unwrap();
        assert!(
            out.starts_with(&doc.trim_end_matches('\n').to_owned()),
            "{out}"
        );
        assert!(out.ends_with(&format!("## {HEADING}\n\n{START}\nnew\n{END}\n")));
        let again = replace_marked(&out, (START, END), HEADING, "newer").unwrap();
        assert!(again.contains(&format!("{START}\nnewer\n{END}")));
        assert!(again.contains("old"), "the other section is kept");
    }
}

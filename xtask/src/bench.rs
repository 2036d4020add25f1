//! `cargo xtask bench [--quick]`: builds the `ferry` package's `bench_sync` example in
//! release and runs it (a full Plex → Trakt sync against simulators with latency and
//! Trakt's rate limits, then the unchanged rerun), and writes the figures into the marked
//! section of `docs/benchmarks.md`. `--quick` runs a scaled-down library and only prints
//! the section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::report;

pub(crate) const START: &str = "<!-- xtask-bench:start -->";
pub(crate) const END: &str = "<!-- xtask-bench:end -->";

const FULL: (u32, u32) = (5_000, 20_000);
const QUICK: (u32, u32) = (500, 2_000);
const LATENCY_MS: u32 = 50;

pub(crate) fn bench(root: &Path, args: &[String]) -> Result<(), String> {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            other => {
                return Err(format!(
                    "bench: unknown argument `{other}`; usage: cargo xtask bench [--quick]"
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
            "--example",
            "bench_sync",
        ],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let exe = target.join("release").join("examples").join("bench_sync");
    let (movies, plays) = if quick { QUICK } else { FULL };
    let bench_args = [
        "--json".to_owned(),
        "--movies".to_owned(),
        movies.to_string(),
        "--plays".to_owned(),
        plays.to_string(),
        "--latency-ms".to_owned(),
        LATENCY_MS.to_string(),
    ];
    let command = format!(
        "target/release/examples/bench_sync {}",
        bench_args.join(" ")
    );
    report(&format!("$ {command}"));
    let machine = Machine::probe();
    let output = Command::new(&exe)
        .args(&bench_args)
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
        .ok_or_else(|| format!("bench_sync printed no result ({})", output.status))?;
    let result = Json::parse(line).map_err(|e| format!("bench_sync result: {e}"))?;
    let section = render(&result, &command, &machine, &today());
    if quick {
        report("--quick: docs/benchmarks.md left as it is; the section would read:\n");
        report(&section);
    } else {
        let path = root.join("docs").join("benchmarks.md");
        let doc = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let new = replace_section(&doc, &section)?;
        std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        report(&format!("updated {}", path.display()));
    }
    if !output.status.success() {
        return Err(format!("bench_sync exited with {}", output.status));
    }
    Ok(())
}

/// `doc` with the text between the markers replaced by `body`; a document without the
/// markers gets a new section at its end.
pub(crate) fn replace_section(doc: &str, body: &str) -> Result<String, String> {
    replace_marked(doc, (START, END), "Full sync (`cargo xtask bench`)", body)
}

/// `doc` with the text between the `(start, end)` markers replaced by `body`; a document
/// without them gets a new section headed `heading` at its end.
pub(crate) fn replace_marked(
    doc: &str,
    (start, end): (&str, &str),
    heading: &str,
    body: &str,
) -> Result<String, String> {
    let body = body.trim_end_matches('\n');
    match (doc.find(start), doc.find(end)) {
        (Some(s), Some(e)) if s < e => {
            let before = &doc[..s + start.len()];
            let after = &doc[e..];
            Ok(format!("{before}\n{body}\n{after}"))
        }
        (None, None) => {
            let mut out = doc.trim_end_matches('\n').to_owned();
            let _ = write!(out, "\n\n## {heading}\n\n{start}\n{body}\n{end}\n");
            Ok(out)
        }
        _ => Err(format!(
            "docs/benchmarks.md: the markers `{start}` and `{end}` must both be present, in that order"
        )),
    }
}

/// Where the numbers were measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: Option<String>,
    pub(crate) mem_gib: Option<f64>,
    pub(crate) load: Option<String>,
}

impl Machine {
    pub(crate) fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned()),
            mem_gib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map(|kib| kib / 1024.0 / 1024.0),
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_owned)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = format!("{} logical CPUs", self.cpus);
        if let Some(m) = &self.cpu_model {
            let _ = write!(s, " ({m})");
        }
        if let Some(g) = self.mem_gib {
            let _ = write!(s, ", {g:.0} GiB");
        }
        if let Some(l) = &self.load {
            let _ = write!(s, ", load average {l} when the run started");
        }
        s
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    date_of(secs / 86_400)
}

/// The civil date of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn date_of(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn met(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}

/// The markdown between the markers.
pub(crate) fn render(r: &Json, command: &str, machine: &Machine, date: &str) -> String {
    let n = |path: &str| r.num(path).unwrap_or(0.0);
    let u = |path: &str| thousands(n(path) as u64);
    let secs = |path: &str| match r.num(path) {
        Some(s) => format!("{s:.1} s"),
        None => "n/a".to_owned(),
    };
    let mib = |path: &str| match r.get(path) {
        Some(Json::Num(m)) => format!("{m:.0} MiB"),
        _ => "n/a".to_owned(),
    };
    let peak = |run: &str| match r.num(&format!("{run}.rss_at_start_mib")) {
        Some(at) => format!(
            "{} ({at:.0} at the start)",
            mib(&format!("{run}.peak_rss_mib"))
        ),
        None => mib(&format!("{run}.peak_rss_mib")),
    };
    let mut s = String::new();
    let _ = writeln!(s, "Measured with `cargo xtask bench` on {date}:\n");
    let _ = writeln!(s, "```sh\n{command}\n```\n");
    let _ = writeln!(s, "Machine: {}.\n", machine.describe());
    let _ = writeln!(
        s,
        "Library: {} films (each watched once, {} rated, {} on the watchlist) and {} shows \
         with {} episode plays, so {} plays; Trakt starts empty. One-way pair Plex → Trakt, \
         history, ratings and watchlist, add-only. Every simulator answer takes {} ms; \
         Trakt's limits (1000 GETs per 300 s, one write per second) are enforced by the \
         simulator, which answers `429` past them.\n",
        u("library.movies"),
        u("library.ratings"),
        u("library.watchlist"),
        u("library.shows"),
        u("library.episode_plays"),
        thousands((n("library.movie_plays") + n("library.episode_plays")) as u64),
        n("args.latency_ms"),
    );
    let over = match r.num("first.over_bound_pct") {
        Some(p) => format!("{p:+.1}%"),
        None => "n/a".to_owned(),
    };
    let rows: [(&str, String, String); 8] = [
        ("wall time", secs("first.wall_s"), secs("unchanged.wall_s")),
        (
            "lower bound set by Trakt's limits¹",
            secs("first.lower_bound_s"),
            secs("unchanged.lower_bound_s"),
        ),
        ("wall time over the bound", over, "–".to_owned()),
        (
            "Trakt requests: GET / write",
            format!(
                "{} / {}",
                u("first.requests.trakt.reads"),
                u("first.requests.trakt.writes")
            ),
            format!(
                "{} / {}",
                u("unchanged.requests.trakt.reads"),
                u("unchanged.requests.trakt.writes")
            ),
        ),
        (
            "Plex requests: GET / write",
            format!(
                "{} / {}",
                u("first.requests.plex.reads"),
                u("first.requests.plex.writes")
            ),
            format!(
                "{} / {}",
                u("unchanged.requests.plex.reads"),
                u("unchanged.requests.plex.writes")
            ),
        ),
        (
            "`429` answers from Trakt",
            u("first.trakt_429"),
            u("unchanged.trakt_429"),
        ),
        (
            "items written (plays + ratings + watchlist)",
            u("first.totals.added"),
            u("unchanged.totals.added"),
        ),
        ("peak RSS of the process²", peak("first"), peak("unchanged")),
    ];
    let _ = writeln!(s, "| | first run | unchanged run |\n|---|---:|---:|");
    for (name, a, b) in rows {
        let _ = writeln!(s, "| {name} | {a} | {b} |");
    }
    let _ = writeln!(
        s,
        "\n¹ From the requests the run made: (writes − 1) × 1 s or, if longer, one more \
         300 s window per 1000 GETs past the first 1000; plus one latency for the reads \
         before the first write and one for the last answer.  \n\
         ² `VmHWM` of the `ferry` process, reset before each run (in brackets: `VmRSS` when \
         the run started): the simulators and their data run in the same process, so both \
         include them.\n"
    );
    let _ = writeln!(
        s,
        "Requests per route (what the simulators counted):\n\n| service | route | first run | unchanged run |\n|---|---|---:|---:|"
    );
    for (label, key) in [
        ("Plex", "plex"),
        ("Plex Discover", "plex_discover"),
        ("Trakt", "trakt"),
    ] {
        let first = r.get(&format!("first.routes.{key}"));
        let second = r.get(&format!("unchanged.routes.{key}"));
        let mut routes: Vec<&str> = first
            .into_iter()
            .chain(second)
            .flat_map(Json::keys)
            .collect();
        routes.sort_unstable();
        routes.dedup();
        for route in routes {
            let count = |j: Option<&Json>| {
                j.and_then(|j| j.field(route))
                    .and_then(Json::as_num)
                    .map_or("0".to_owned(), |c| thousands(c as u64))
            };
            let _ = writeln!(
                s,
                "| {label} | `{route}` | {} | {} |",
                count(first),
                count(second)
            );
        }
    }
    if let Some(seen) = r.get("unchanged.client_seen") {
        let instances = seen.keys();
        let mut phases: Vec<&str> = vec!["health"];
        if let Some(Json::Arr(fs)) = r.get("features") {
            phases.extend(fs.iter().filter_map(|f| match f {
                Json::Str(f) => Some(f.as_str()),
                _ => None,
            }));
        }
        for i in &instances {
            for p in seen
                .get(&format!("{i}.by_phase"))
                .map(Json::keys)
                .unwrap_or_default()
            {
                if !phases.contains(&p) {
                    phases.push(p);
                }
            }
        }
        let _ = writeln!(
            s,
            "\nUnchanged run, requests per provider instance and phase (from the providers' \
             `api:hit` events; `health` is the checks before the first feature):\n"
        );
        let _ = writeln!(
            s,
            "| instance | {} | total |\n|---|{}---:|",
            phases.join(" | "),
            "---:|".repeat(phases.len())
        );
        for i in instances {
            let cells: Vec<String> = phases
                .iter()
                .map(|p| u(&format!("unchanged.client_seen.{i}.by_phase.{p}")))
                .collect();
            let _ = writeln!(
                s,
                "| {i} | {} | {} |",
                cells.join(" | "),
                u(&format!("unchanged.client_seen.{i}.requests"))
            );
        }
    }
    let features = r.get("features").map_or(0, |f| match f {
        Json::Arr(a) => a.len(),
        _ => 0,
    });
    let goal = |path: &str| matches!(r.get(path), Some(Json::Bool(true)));
    let _ = writeln!(s, "\nGoals (issue 7):\n");
    let _ = writeln!(
        s,
        "- first run within 10% of the bound with zero `429`s: {} ({} over the bound, {} `429`s)",
        met(goal("goals.within_10pct_of_bound") && goal("goals.zero_429")),
        match r.num("first.over_bound_pct") {
            Some(p) => format!("{p:.1}%"),
            None => "n/a".to_owned(),
        },
        u("first.trakt_429"),
    );
    let _ = writeln!(
        s,
        "- unchanged run makes at most one request per provider per feature group ({features} \
         feature groups): {} (Plex {}, Trakt {})",
        met(goal(
            "goals.unchanged_run_at_most_one_request_per_provider_per_feature"
        )),
        u("unchanged.requests.plex.total"),
        u("unchanged.requests.trakt.total"),
    );
    let _ = writeln!(
        s,
        "- every play, rating and watchlist item arrived once, and the rerun wrote nothing: {} \
         (Trakt holds {} plays, {} ratings, {} watchlist items)",
        if goal("goals.complete_and_no_duplicates") {
            "yes"
        } else {
            "**no**"
        },
        u("trakt_after.plays"),
        u("trakt_after.ratings"),
        u("trakt_after.watchlist"),
    );
    s
}

/// A JSON value: just enough of JSON to read `bench_sync`'s result without a dependency.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }

    pub(crate) fn field(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a dotted path of object keys (`first.requests.trakt.reads`).
    pub(crate) fn get(&self, path: &str) -> Option<&Json> {
        path.split('.').try_fold(self, |v, k| v.field(k))
    }

    pub(crate) fn as_num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn num(&self, path: &str) -> Option<f64> {
        self.get(path).and_then(Json::as_num)
    }

    pub(crate) fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("unexpected input at byte {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            None => Err("unexpected end of input".to_owned()),
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    m.push((k, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("expected `,` or `}}` at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("expected `,` or `]` at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad value at byte {start}"))
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".to_owned());
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("unterminated escape".to_owned());
                    };
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| format!("bad \\u escape at byte {}", self.i))?;
                            self.i += 4;
                            let ch = char::from_u32(hex).unwrap_or('\u{fffd}');
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marked_section_is_replaced_and_the_rest_kept() {
        let doc = format!(
            "# Benchmarks\n\n## Planner\n\ntext\n\n## Sync\n\n{START}\nold\nlines\n{END}\n\nafter\n"
        );
        let out = replace_section(&doc, "new table\n").unwrap();
        assert_eq!(
            out,
            format!(
                "# Benchmarks\n\n## Planner\n\ntext\n\n## Sync\n\n{START}\nnew table\n{END}\n\nafter\n"
            )
        );
        // Idempotent: rewriting with the same body changes nothing.
        assert_eq!(replace_section(&out, "new table").unwrap(), out);
    }

    #[test]
    fn a_document_without_markers_gets_a_section_at_its_end() {
        let out = replace_section("# Benchmarks\n\nplanner\n\n", "table").unwrap();
        assert!(out.starts_with("# Benchmarks\n\nplanner\n\n## Full sync"));
        assert!(out.ends_with(&format!("{START}\ntable\n{END}\n")));
        assert_eq!(replace_section(&out, "table").unwrap(), out);
    }

    #[test]
    fn a_lone_or_misordered_marker_is_an_error_not_a_rewrite() {
        assert!(replace_section(&format!("a\n{START}\nb\n"), "x").is_err());
        assert!(replace_section(&format!("a\n{END}\nb\n{START}\n"), "x").is_err());
    }

    #[test]
    fn json_values_parse_and_paths_resolve() {
        let j = Json::parse(
            r#"{"a": {"b": [1, 2.5e1, -3]}, "s": "x\"y\u00e9", "t": true, "n": null, "o": {}}"#,
        )
        .unwrap();
        assert_eq!(
            j.get("a.b"),
            Some(&Json::Arr(vec![
                Json::Num(1.0),
                Json::Num(25.0),
                Json::Num(-3.0)
            ]))
        );
        assert_eq!(j.get("s"), Some(&Json::Str("x\"yé".to_owned())));
        assert_eq!(j.get("t"), Some(&Json::Bool(true)));
        assert_eq!(j.get("n"), Some(&Json::Null));
        assert_eq!(j.get("o"), Some(&Json::Obj(Vec::new())));
        assert_eq!(j.num("a.b.c"), None);
        assert!(Json::parse("{\"a\": 1,}").is_err());
        assert!(Json::parse("[1 2]").is_err());
        assert!(Json::parse("{} x").is_err());
    }

    #[test]
    fn dates_and_thousands_render() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(19_782), "2024-02-29");
        assert_eq!(date_of(20_414), "2025-11-22");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(25_000), "25,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_result_renders_into_a_table_with_the_goals() {
        let r = Json::parse(
            r#"{"args":{"latency_ms":50},"library":{"movies":500,"shows":20,"movie_plays":500,"episode_plays":2000,"ratings":72,"watchlist":10},
            "features":["history","ratings","watchlist"],
            "first":{"wall_s":28.3,"lower_bound_s":26.1,"over_bound_pct":8.4,"trakt_429":0,
              "requests":{"plex":{"reads":47,"writes":0,"total":47},"trakt":{"reads":79,"writes":27,"total":106}},
              "routes":{"plex":{"GET /identity":1},"plex_discover":{},"trakt":{"POST /sync/history":25}},
              "totals":{"added":2582},"peak_rss_mib":58.4,"rss_at_start_mib":30.2},
            "unchanged":{"wall_s":3.8,"lower_bound_s":0.05,"over_bound_pct":7528.1,"trakt_429":0,
              "requests":{"plex":{"reads":47,"writes":0,"total":47},"trakt":{"reads":15,"writes":0,"total":15}},
              "routes":{"plex":{"GET /identity":1},"plex_discover":{},"trakt":{"GET /sync/history":10}},
              "client_seen":{"plex":{"requests":47,"by_phase":{"health":3,"history":44}},"trakt":{"requests":15,"by_phase":{"health":2,"history":11,"ratings":2}}},
              "totals":{"added":0},"peak_rss_mib":"n/a"},
            "trakt_after":{"plays":2500,"ratings":72,"watchlist":10},
            "goals":{"complete_and_no_duplicates":true,"within_10pct_of_bound":true,"zero_429":true,
              "unchanged_run_at_most_one_request_per_provider_per_feature":false}}"#,
        )
        .unwrap();
        let m = Machine {
            cpus: 2,
            cpu_model: Some("Test CPU".into()),
            mem_gib: Some(24.0),
            load: Some("1.50".into()),
        };
        let s = render(&r, "ferry bench_sync", &m, "2025-11-22");
        assert!(s.contains("2 logical CPUs (Test CPU), 24 GiB"), "{s}");
        assert!(s.contains("| wall time | 28.3 s | 3.8 s |"), "{s}");
        assert!(
            s.contains("| Trakt requests: GET / write | 79 / 27 | 15 / 0 |"),
            "{s}"
        );
        assert!(
            s.contains("| peak RSS of the process² | 58 MiB (30 at the start) | n/a |"),
            "{s}"
        );
        assert!(
            s.contains("| Trakt | `GET /sync/history` | 0 | 10 |"),
            "{s}"
        );
        assert!(
            s.contains("| Trakt | `POST /sync/history` | 25 | 0 |"),
            "{s}"
        );
        assert!(s.contains("zero `429`s: **met** (8.4% over"), "{s}");
        assert!(
            s.contains("(3 feature groups): **not met** (Plex 47, Trakt 15)"),
            "{s}"
        );
        assert!(s.contains("so 2,500 plays"), "{s}");
        assert!(
            s.contains("| instance | health | history | ratings | watchlist | total |"),
            "{s}"
        );
        assert!(s.contains("| plex | 3 | 44 | 0 | 0 | 47 |"), "{s}");
        assert!(s.contains("| trakt | 2 | 11 | 2 | 0 | 15 |"), "{s}");
    }
}

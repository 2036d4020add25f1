//! What the end-to-end tests share: spawning the real `ferry` binary (asynchronously, so
//! the simulators running in the test's tokio runtime keep serving), config files in a
//! temporary directory, NDJSON events, and a minimal HTTP/1.1 client for poking a
//! simulator directly.
//!
//! Each test target uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use std::collections::BTreeSet;

use ferry_testkit::contract::FaultControl;
use ferry_testkit::samples;
use ferry_testkit::sim::knobs::{BadTotal, Fault, FaultRule, RowDamage};
use ferry_testkit::sim::trakt::TraktSim;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A hang guard, not a timing assertion: a `ferry` that has not exited after this long is
/// stuck, and the test fails instead of blocking `cargo test` forever.
const HANG_GUARD: Duration = Duration::from_secs(600);

/// One finished `ferry` invocation.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) args: Vec<String>,
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Everything a failed assertion should show.
    pub(crate) fn show(&self) -> String {
        format!(
            "ferry {}\nexit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit code, showing the whole invocation when it differs.
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{}", self.show());
        self
    }

    /// stdout as NDJSON events. With `--json`, stdout holds nothing else: every line must
    /// be one JSON object with an `event` name.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", self.show()));
                assert!(
                    v.get("event").and_then(Value::as_str).is_some(),
                    "a line without an event name: {l}"
                );
                v
            })
            .collect()
    }

    /// The events named `name`, in order.
    pub(crate) fn named(&self, name: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == name)
            .collect()
    }

    /// The one `summary` event of a `--json run`.
    pub(crate) fn summary(&self) -> Value {
        let mut s = self.named("summary");
        assert_eq!(s.len(), 1, "expected one summary event\n{}", self.show());
        s.remove(0)
    }
}

/// Spawns `ferry` with `args` (plus `--config <config>` when given) and waits for it.
pub(crate) async fn ferry(config: Option<&Path>, args: &[&str]) -> Run {
    ferry_env(config, args, &[]).await
}

/// [`ferry`] with extra environment variables.
pub(crate) async fn ferry_env(config: Option<&Path>, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    if let Some(c) = config {
        all.push("--config".into());
        all.push(c.display().to_string());
    }
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(&all)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(HANG_GUARD, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("ferry {} did not exit", all.join(" ")))
        .expect("spawn ferry");
    Run {
        args: all,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A TOML string literal (JSON string escapes are valid TOML basic-string escapes).
pub(crate) fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A temporary directory holding one config file (and, next to it, the state database).
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
}

impl Setup {
    pub(crate) fn new() -> Self {
        Setup {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `config.toml` and returns its path.
    pub(crate) fn config(&self, body: &str) -> PathBuf {
        let p = self.path("config.toml");
        std::fs::write(&p, body).expect("write the config");
        p
    }
}

/// `[providers.<name>]` for a Trakt simulator.
pub(crate) fn trakt_block(name: &str, sim: &ferry_testkit::sim::trakt::TraktSim) -> String {
    format!(
        "[providers.{name}]\nkind = \"trakt\"\nbase_url = {}\nclient_id = {}\naccess_token = {}\n\n",
        q(&sim.uri()),
        q(&sim.client_id()),
        q(&sim.access_token())
    )
}

/// `[providers.<name>]` for a SIMKL simulator.
pub(crate) fn simkl_block(name: &str, sim: &ferry_testkit::sim::simkl::SimklSim) -> String {
    format!(
        "[providers.{name}]\nkind = \"simkl\"\nbase_url = {}\nclient_id = {}\naccess_token = {}\n\n",
        q(&sim.uri()),
        q(&sim.client_id()),
        q(&sim.token())
    )
}

/// `[providers.<name>]` for an MDBList simulator.
pub(crate) fn mdblist_block(name: &str, sim: &ferry_testkit::sim::mdblist::MdblistSim) -> String {
    format!(
        "[providers.{name}]\nkind = \"mdblist\"\nbase_url = {}\napi_key = {}\n\n",
        q(&sim.uri()),
        q(&sim.api_key())
    )
}

/// `[providers.<name>]` for a Plex simulator (server and Discover).
pub(crate) fn plex_block(name: &str, sim: &ferry_testkit::sim::plex::PlexSim) -> String {
    format!(
        "[providers.{name}]\nkind = \"plex\"\nbase_url = {}\ndiscover_url = {}\ntoken = {}\n\n",
        q(&sim.uri()),
        q(&sim.discover_uri()),
        q(&sim.token())
    )
}

/// `[providers.<name>]` for a Jellyfin simulator.
pub(crate) fn jellyfin_block(
    name: &str,
    sim: &ferry_testkit::sim::jellyfin::JellyfinSim,
) -> String {
    format!(
        "[providers.{name}]\nkind = \"jellyfin\"\nbase_url = {}\napi_key = {}\nuser_id = {}\n\n",
        q(&sim.uri()),
        q(&sim.token()),
        q(sim.user_id())
    )
}

/// `[providers.<name>]` for a local file tracker in `dir`.
pub(crate) fn local_block(name: &str, dir: &Path) -> String {
    format!(
        "[providers.{name}]\nkind = \"local\"\npath = {}\n\n",
        q(&dir.display().to_string())
    )
}

/// A `summary` event's totals as `(added, updated, removed, unresolved, blocked, errors)`.
pub(crate) fn totals(summary: &Value) -> (u64, u64, u64, u64, u64, u64) {
    let t = &summary["totals"];
    let n = |k: &str| {
        t[k].as_u64()
            .unwrap_or_else(|| panic!("totals.{k} missing: {summary}"))
    };
    (
        n("added"),
        n("updated"),
        n("removed"),
        n("unresolved"),
        n("blocked"),
        n("errors"),
    )
}

/// The summary of one pair's feature.
pub(crate) fn feature_summary<'a>(summary: &'a Value, pair: &str, feature: &str) -> &'a Value {
    summary["pairs"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == pair))
        .and_then(|p| p["features"].as_array())
        .and_then(|fs| fs.iter().find(|f| f["feature"] == feature))
        .unwrap_or_else(|| panic!("no {pair} {feature} in the summary: {summary}"))
}

/// Confirmed writes of one side of a feature summary (`to_a` or `to_b`): `(added,
/// updated, removed)`.
pub(crate) fn side_counts(feature: &Value, side: &str) -> (u64, u64, u64) {
    let w = &feature[side];
    let n = |k: &str| {
        w[k].as_u64()
            .unwrap_or_else(|| panic!("{side}.{k}: {feature}"))
    };
    (n("added"), n("updated"), n("removed"))
}

/// Requests that write (anything but `GET`), from a simulator's `METHOD /path` counts.
pub(crate) fn writes(routes: &std::collections::BTreeMap<String, u64>) -> Vec<(String, u64)> {
    routes
        .iter()
        .filter(|(k, _)| !k.starts_with("GET "))
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

/// A minimal HTTP/1.1 exchange with a loopback server: `(status, body)`.
pub(crate) async fn http(
    base_uri: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let host = base_uri
        .strip_prefix("http://")
        .expect("a plain http:// loopback uri")
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .unwrap_or_else(|e| panic!("connect to {host}: {e}"));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        req.push_str("Content-Type: application/json\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in: {head}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Removes sample movie `n` from the Trakt simulator's watchlist through its API, as the
/// user would on trakt.tv.
pub(crate) async fn trakt_unwatchlist(trakt: &ferry_testkit::sim::trakt::TraktSim, n: u32) {
    trakt_remove(trakt, "/sync/watchlist/remove", n).await;
}

/// Removes sample movie `n` through one of Trakt's `/sync/.../remove` routes (the
/// watchlist, every play of it), as the user would on trakt.tv.
pub(crate) async fn trakt_remove(trakt: &TraktSim, route: &str, n: u32) {
    let token = format!("Bearer {}", trakt.access_token());
    let body = format!(r#"{{"movies":[{{"ids":{{"tmdb":{}}}}}]}}"#, 900_000 + n);
    let (status, answer) = http(
        &trakt.uri(),
        "POST",
        route,
        &[
            ("trakt-api-key", &trakt.client_id()),
            ("trakt-api-version", "2"),
            ("Authorization", &token),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

/// The read faults the issue that introduced the provider kit served the release binary
/// (a row that does not decode, a missing or invalid total, a cut-off, empty, HTML or
/// failing answer), generated from the simulator kit's knobs rather than listed by hand,
/// with `rows`: values that make one of the service's rows undecodable (JSON pointer,
/// value); `counted`: the list declares a total or page count to take away or spoil.
/// Each is `(label, fault, how many requests it hits)`.
pub(crate) fn read_faults(
    rows: &[(&str, serde_json::Value)],
    counted: bool,
) -> Vec<(String, Fault, u32)> {
    let mut faults = vec![
        Fault::Truncate,
        Fault::EmptyList,
        Fault::UndecodableRow(RowDamage::Null),
        Fault::EmptyBody,
        Fault::Html,
        Fault::Malformed,
    ];
    faults.extend(rows.iter().map(|(pointer, value)| {
        Fault::UndecodableRow(RowDamage::Set {
            pointer: (*pointer).to_owned(),
            value: value.clone(),
        })
    }));
    if counted {
        faults.push(Fault::MissingTotal);
        faults.extend(BadTotal::ALL.into_iter().map(Fault::InvalidTotal));
    }
    let mut out: Vec<(String, Fault, u32)> = faults
        .into_iter()
        .map(|f| (format!("{f:?}"), f, 1))
        .collect();
    // A later page that keeps failing past every retry.
    out.push(("Status(503) x20".to_owned(), Fault::Status(503), 20));
    out
}

/// One side of a two-way watchlist under attack: its simulator's knobs are used only on
/// the attacked side; `list` reads its watchlist as sample numbers.
pub(crate) struct Side<'a> {
    pub(crate) name: &'static str,
    pub(crate) list: Box<dyn Fn() -> BTreeSet<u32> + 'a>,
}

/// Aims every fault at every `GET <path>` of the `attacked` simulator in a `feature` run
/// with `config`, in turn (`per_run` of them;
/// faults that hit 20 requests only at the last two, since a failing page costs the
/// client's whole retry schedule), calling `add_on_both` before each run so both
/// checkpoints move and both lists are read again. No run may remove a title from
/// either side, panic, or exit 4 (a provider down: every request was answered).
/// Returns how many runs it made.
pub(crate) async fn sweep(
    (config, feature): (&Path, &str),
    (attacked, path, per_run): (&dyn FaultControl, &str, u32),
    faults: Vec<(String, Fault, u32)>,
    add_on_both: &mut dyn FnMut(),
    sides: &[Side<'_>; 2],
) -> u32 {
    let mut rounds = 0;
    for (what, fault, times) in faults {
        let first = if times > 1 {
            per_run.saturating_sub(2)
        } else {
            0
        };
        for at in first..per_run {
            add_on_both();
            let before: Vec<BTreeSet<u32>> = sides.iter().map(|s| (s.list)()).collect();
            let fired = attacked.faults_fired();
            attacked.inject(
                FaultRule::new(fault.clone())
                    .on(path)
                    .method("GET")
                    .after(at)
                    .times(times),
            );
            let r = ferry(Some(config), &["--json", "run", "--feature", feature]).await;
            attacked.clear_faults();
            let case = format!("{what} on GET {path} #{}", at + 1);
            assert!(attacked.faults_fired() > fired, "{case}: never fired");
            assert!(
                matches!(r.code, Some(0 | 1 | 3)),
                "{case}: exit {:?}\n{}",
                r.code,
                r.show()
            );
            for (side, before) in sides.iter().zip(before) {
                let after = (side.list)();
                let lost: Vec<_> = before.difference(&after).collect();
                assert!(
                    lost.is_empty(),
                    "{case}: {} lost {lost:?}\n{}",
                    side.name,
                    r.show()
                );
            }
            rounds += 1;
        }
    }
    rounds
}

/// A tracker whose list reads the binary-level read-fault sweep attacks, with Trakt on
/// the other side of a two-way watchlist.
pub(crate) struct Attacked<'a> {
    pub(crate) name: &'static str,
    /// The feature the pair syncs: `watchlist`, or `ratings` (every rating an 8).
    pub(crate) feature: &'static str,
    /// Its `[providers.<name>]` block.
    pub(crate) block: String,
    pub(crate) faults: &'a dyn FaultControl,
    /// The route prefix of the feature's reads, and how many `GET`s it has seen there.
    pub(crate) path: String,
    pub(crate) gets: Box<dyn Fn() -> u64 + 'a>,
    /// The feature's titles as sample numbers, and how the user adds sample `n` to it.
    pub(crate) list: Box<dyn Fn() -> BTreeSet<u32> + 'a>,
    pub(crate) add: Box<dyn Fn(u32) + 'a>,
    /// Values that make one of its rows undecodable (JSON pointer, value), and whether
    /// its lists declare a total or page count.
    pub(crate) rows: Vec<(&'static str, serde_json::Value)>,
    pub(crate) counted: bool,
}

/// The binary-level read-fault sweep (`sweep`) against a tracker, in a two-way
/// watchlist with Trakt, removals on and the mass-delete guard lifted: every fault the
/// tracker's list can show at every `GET` of its watchlist in a run. Nothing may be
/// removed from either side, no run may claim a provider was down, and afterwards a real
/// deletion on Trakt is still carried over to the tracker.
pub(crate) async fn sweep_against_trakt(a: Attacked<'_>) {
    let ratings = a.feature == "ratings";
    let trakt = TraktSim::start().await;
    let trakt_add = |ns: std::ops::Range<u32>| match ratings {
        true => trakt.seed_ratings(&ns.map(|n| (samples::movie(n), 8)).collect::<Vec<_>>()),
        false => trakt.seed_watchlist(&ns.map(samples::movie).collect::<Vec<_>>()),
    };
    let trakt_list = || -> BTreeSet<u32> {
        match ratings {
            true => trakt.ratings().iter().map(|(i, _)| movie_no(i)).collect(),
            false => trakt_watchlist(&trakt),
        }
    };
    trakt_add(0..20);
    (0..20).for_each(|n| (a.add)(n));
    let setup = Setup::new();
    let config = setup.config(&format!(
        "[guardrails]\nallow_mass_delete = true\n\n{}{}[[pairs]]\nname = \"{n}-trakt\"\nsource = \"{n}\"\ntarget = \"trakt\"\nmode = \"two-way\"\n\
         [pairs.features.{f}]\nremove = true\n",
        a.block,
        trakt_block("trakt", &trakt),
        n = a.name,
        f = a.feature,
    ));
    let args = ["--json", "run", "--feature", a.feature];
    let run = || ferry(Some(&config), &args);
    run().await.expect_code(0);
    assert_eq!((a.list)(), (0..20).collect(), "{}", a.name);

    let mut fresh = 20..80;
    let mut add_on_both = || {
        let n = fresh.next().expect("enough catalog");
        (a.add)(n);
        trakt_add(n..n + 1);
    };
    add_on_both();
    let before = (a.gets)();
    run().await.expect_code(0);
    let per_run = u32::try_from((a.gets)() - before).unwrap();
    assert!(per_run >= 2, "{}: {per_run} reads", a.name);
    let sides = [
        Side {
            name: a.name,
            list: Box::new(|| (a.list)()),
        },
        Side {
            name: "trakt",
            list: Box::new(trakt_list),
        },
    ];
    let faults = read_faults(&a.rows, a.counted);
    let rounds = sweep(
        (&config, a.feature),
        (a.faults, &a.path, per_run),
        faults,
        &mut add_on_both,
        &sides,
    )
    .await;
    assert!(rounds >= 8 * per_run, "{}: {rounds} rounds", a.name);

    let route = format!("/sync/{}/remove", a.feature);
    trakt_remove(&trakt, &route, 3).await;
    let before = (a.list)();
    let clean = run().await;
    clean.expect_code(0);
    let (_, _, removed, _, _, _) = totals(&clean.summary());
    assert_eq!(removed, 1, "{}: {}", a.name, clean.show());
    let expected: BTreeSet<u32> = before.into_iter().filter(|n| *n != 3).collect();
    assert_eq!((a.list)(), expected, "{}", a.name);
}

/// Sample movie number of an item (its TMDB id is `900_000 + n`).
pub(crate) fn movie_no(item: &ferry_core::Item) -> u32 {
    let tmdb: u32 = item
        .ids
        .get(ferry_core::IdKind::Tmdb)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no tmdb id: {item:?}"));
    tmdb - 900_000
}

/// The Trakt simulator's watchlist, as sample movie numbers.
pub(crate) fn trakt_watchlist(trakt: &TraktSim) -> BTreeSet<u32> {
    trakt.watchlist().iter().map(movie_no).collect()
}

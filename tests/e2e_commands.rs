//! One end-to-end test per `ferry` command (issue 7), each spawning the real binary with a
//! real config file against simulators or local file trackers: run (and its dry run), plan,
//! state, restore, daemon, demo, simulate and health, with their exit codes (0 ok,
//! 1 errors, 2 config or usage, 3 unresolved items or blocked removals).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Run, Setup, ferry, ferry_env, local_block, simkl_block, totals, trakt_block, writes};
use ferry_core::Feature;
use ferry_testkit::samples;
use ferry_testkit::sim::simkl::SimklSim;
use ferry_testkit::sim::trakt::TraktSim;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Sample movie numbers of the entries in a local tracker's feature file (empty when the
/// file does not exist).
fn local_movies(dir: &Path, feature: &str) -> Vec<u32> {
    let path = dir.join(format!("{feature}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut out: Vec<u32> = v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{path:?} has no entries: {v}"))
        .iter()
        .map(|e| {
            let tmdb: u32 = e["item"]["ids"]["tmdb"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no tmdb id in {e}"));
            tmdb - 900_000
        })
        .collect();
    out.sort_unstable();
    out
}

/// Writes a local tracker's watchlist file holding sample movies `movies`, and advances its
/// activity checkpoint to `checkpoint`, as a write through the provider would.
fn write_local_watchlist(dir: &Path, movies: impl IntoIterator<Item = u32>, checkpoint: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let entries: Vec<Value> = movies
        .into_iter()
        .map(|n| serde_json::to_value(samples::entry(Feature::Watchlist, n)).unwrap())
        .collect();
    std::fs::write(
        dir.join("watchlist.json"),
        json!({"format": 1, "entries": entries}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("activities.json"),
        json!({"format": 1, "checkpoints": {"watchlist": checkpoint}}).to_string(),
    )
    .unwrap();
}

/// A Trakt simulator whose watchlist holds sample movies `0..5`, and a config syncing it
/// one-way into a local tracker in `<setup>/mirror`.
async fn trakt_to_local(setup: &Setup, remove: bool) -> (TraktSim, std::path::PathBuf) {
    let trakt = TraktSim::start().await;
    trakt.seed_watchlist(&(0..5).map(samples::movie).collect::<Vec<_>>());
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"trakt-to-local\"\nsource = \"trakt\"\ntarget = \"mirror\"\n\
         [pairs.features.watchlist]\nremove = {remove}\n",
        trakt_block("trakt", &trakt),
        local_block("mirror", &setup.path("mirror")),
    ));
    (trakt, config)
}

fn state_json(run: &Run) -> Value {
    let mut events = run.named("state");
    assert_eq!(events.len(), 1, "{}", run.show());
    events.remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn run_dry_run_writes_and_commits_nothing_then_run_writes_the_target() {
    let setup = Setup::new();
    let (trakt, config) = trakt_to_local(&setup, false).await;
    let mirror = setup.path("mirror");

    let dry = ferry(Some(&config), &["run", "--dry-run"]).await;
    dry.expect_code(0);
    assert!(
        dry.stdout
            .starts_with("dry run (nothing written, nothing committed)"),
        "{}",
        dry.show()
    );
    assert!(
        dry.stdout.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() >= 6
                && cols[..6] == ["trakt-to-local", "watchlist", "planned", "5", "0", "0"]
        }),
        "the dry run reports the 5 adds a real run would make\n{}",
        dry.show()
    );
    assert!(
        dry.stdout.lines().any(|l| l.starts_with(
            "total: 5 to add, 0 to update, 0 to remove, 0 unresolved, 0 blocked, 0 errors"
        )),
        "{}",
        dry.show()
    );
    let dry_json = ferry(Some(&config), &["--json", "run", "--dry-run"]).await;
    dry_json.expect_code(0);
    let s = dry_json.summary();
    assert_eq!(s["dry_run"], true, "{s}");
    assert_eq!(s["run_id"], Value::Null, "{s}");
    assert_eq!(
        totals(&s),
        (0, 0, 0, 0, 0, 0),
        "a dry run confirms nothing: {s}"
    );
    let f = common::feature_summary(&s, "trakt-to-local", "watchlist");
    assert_eq!(f["to_b"]["planned_adds"], 5, "{f}");
    let done = dry_json.named("apply:add:done");
    assert_eq!(done.len(), 1, "{}", dry_json.show());
    assert_eq!(done[0]["dry_run"], true, "{}", done[0]);
    assert_eq!(local_movies(&mirror, "watchlist"), Vec::<u32>::new());
    assert_eq!(writes(&trakt.routes()), vec![]);
    let state = ferry(Some(&config), &["--json", "state"]).await;
    state.expect_code(0);
    let st = state_json(&state);
    assert_eq!(
        st["baselines"],
        json!([]),
        "a dry run commits nothing: {st}"
    );
    assert_eq!(st["runs"], json!([]), "a dry run records no run: {st}");

    let real = ferry(Some(&config), &["run"]).await;
    real.expect_code(0);
    assert!(
        real.stdout
            .lines()
            .any(|l| l.starts_with("run #1 finished")),
        "{}",
        real.show()
    );
    assert!(
        real.stdout.lines().any(|l| l.starts_with(
            "total: 5 added, 0 updated, 0 removed, 0 unresolved, 0 blocked, 0 errors"
        )),
        "{}",
        real.show()
    );
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..5).collect::<Vec<_>>()
    );
    assert_eq!(
        writes(&trakt.routes()),
        vec![],
        "one-way: Trakt is only read"
    );

    let again = ferry(Some(&config), &["--json", "run"]).await;
    again.expect_code(0);
    assert_eq!(totals(&again.summary()), (0, 0, 0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_planned_adds_and_removals_with_evidence_and_writes_nothing() {
    let setup = Setup::new();
    let (trakt, config) = trakt_to_local(&setup, true).await;
    let mirror = setup.path("mirror");

    let plan = ferry(Some(&config), &["plan"]).await;
    plan.expect_code(0);
    let lines: Vec<&str> = plan.stdout.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "pair", "feature", "writes", "to", "adds", "updates", "removes", "held"
                ]),
        "{}",
        plan.show()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["trakt-to-local", "watchlist", "mirror", "5", "0", "0", "0"]),
        "the table shows 5 planned adds to mirror\n{}",
        plan.show()
    );

    let json_plan = ferry(Some(&config), &["--json", "plan"]).await;
    json_plan.expect_code(0);
    let plans = json_plan.named("plan");
    assert_eq!(plans.len(), 1, "{}", json_plan.show());
    let p = &plans[0]["plans"][0];
    assert_eq!(p["pair"], "trakt-to-local", "{p}");
    assert_eq!(p["plan"]["feature"], "watchlist", "{p}");
    assert_eq!(
        p["plan"]["to_b"]["adds"].as_array().map(Vec::len),
        Some(5),
        "{p}"
    );
    assert_eq!(p["plan"]["to_b"]["removes"], json!([]), "{p}");

    // Planning wrote and committed nothing.
    assert_eq!(local_movies(&mirror, "watchlist"), Vec::<u32>::new());
    let st = state_json(&ferry(Some(&config), &["--json", "state"]).await);
    assert_eq!(st["baselines"], json!([]), "{st}");

    ferry(Some(&config), &["run"]).await.expect_code(0);
    let agreed = ferry(Some(&config), &["plan"]).await;
    agreed.expect_code(0);
    assert!(
        agreed
            .stdout
            .contains("nothing to do: every pair is in agreement"),
        "{}",
        agreed.show()
    );

    // The user removes movie 2 on Trakt: the plan shows the removal with its evidence.
    common::trakt_unwatchlist(&trakt, 2).await;
    let removal = ferry(Some(&config), &["plan"]).await;
    removal.expect_code(0);
    let title = samples::movie(2).title.unwrap();
    assert!(
        removal
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["trakt-to-local", "watchlist", "mirror", "0", "0", "1", "0"]),
        "{}",
        removal.show()
    );
    assert!(
        removal
            .stdout
            .contains("removals from mirror (trakt-to-local watchlist), with their evidence:"),
        "{}",
        removal.show()
    );
    assert!(
        removal.stdout.lines().any(|l| l.contains(&title)
            && l.contains("was on trakt at the last sync and is gone from its complete read")),
        "{}",
        removal.show()
    );
    // Still nothing written by planning.
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..5).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_lists_baselines_and_runs_after_a_run() {
    let setup = Setup::new();
    let (_trakt, config) = trakt_to_local(&setup, false).await;

    let before = ferry(Some(&config), &["state"]).await;
    before.expect_code(0);
    assert!(
        before.stdout.lines().any(|l| l == "baselines (0):"),
        "{}",
        before.show()
    );

    ferry(Some(&config), &["run"]).await.expect_code(0);

    let text = ferry(Some(&config), &["state"]).await;
    text.expect_code(0);
    assert!(
        text.stdout.lines().any(|l| l == "baselines (2):"),
        "{}",
        text.show()
    );
    for instance in ["trakt", "mirror"] {
        assert!(
            text.stdout.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() >= 5
                    && cols[..5] == ["trakt-to-local", instance, "watchlist", "5", "items"]
            }),
            "a baseline of 5 items for {instance}\n{}",
            text.show()
        );
    }
    assert!(
        text.stdout.lines().any(|l| l == "recent runs (1):"),
        "{}",
        text.show()
    );

    let json_state = ferry(Some(&config), &["--json", "state"]).await;
    json_state.expect_code(0);
    let st = state_json(&json_state);
    let st_path = st["path"].as_str().expect("a path");
    assert!(Path::new(st_path).ends_with("ferry.db"), "{st}");
    let mut baselines: Vec<(String, String, String, u64)> = st["baselines"]
        .as_array()
        .expect("baselines")
        .iter()
        .map(|b| {
            (
                b["pair"].as_str().unwrap().to_owned(),
                b["instance"].as_str().unwrap().to_owned(),
                b["feature"].as_str().unwrap().to_owned(),
                b["item_count"].as_u64().unwrap(),
            )
        })
        .collect();
    baselines.sort();
    assert_eq!(
        baselines,
        vec![
            (
                "trakt-to-local".into(),
                "mirror".into(),
                "watchlist".into(),
                5
            ),
            (
                "trakt-to-local".into(),
                "trakt".into(),
                "watchlist".into(),
                5
            ),
        ]
    );
    assert_eq!(st["runs"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(st["restore_points"], json!([]), "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_lists_points_and_puts_removed_items_back() {
    let setup = Setup::new();
    let backup = setup.path("backup");
    let mirror = setup.path("mirror");
    write_local_watchlist(&backup, 0..10, 1);
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"backup-to-mirror\"\nsource = \"backup\"\ntarget = \"mirror\"\n\
         [pairs.features.watchlist]\nremove = true\n",
        local_block("backup", &backup),
        local_block("mirror", &mirror),
    ));

    ferry(Some(&config), &["run"]).await.expect_code(0);
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..10).collect::<Vec<_>>()
    );
    let none = ferry(Some(&config), &["restore"]).await;
    none.expect_code(0);
    assert!(none.stdout.contains("no restore points"), "{}", none.show());

    // Three titles leave the source: the run removes them from the mirror, after saving a
    // restore point of it.
    write_local_watchlist(&backup, 3..10, 2);
    let removing = ferry(Some(&config), &["--json", "run"]).await;
    removing.expect_code(0);
    assert_eq!(totals(&removing.summary()).2, 3, "{}", removing.show());
    let saved = removing.named("restore:saved");
    assert_eq!(saved.len(), 1, "{}", removing.show());
    assert_eq!(saved[0]["instance"], "mirror");
    assert_eq!(saved[0]["count"], 10);
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (3..10).collect::<Vec<_>>()
    );

    let listed = ferry(Some(&config), &["--json", "restore"]).await;
    listed.expect_code(0);
    let points = listed.named("restore_point");
    assert_eq!(points.len(), 1, "{}", listed.show());
    let p = &points[0];
    assert_eq!(
        (&p["pair"], &p["instance"], &p["feature"], &p["item_count"]),
        (
            &json!("backup-to-mirror"),
            &json!("mirror"),
            &json!("watchlist"),
            &json!(10)
        ),
        "{p}"
    );
    let id = p["id"].as_i64().expect("an id");
    assert_eq!(saved[0]["id"].as_i64(), Some(id));
    let text = ferry(Some(&config), &["restore"]).await;
    text.expect_code(0);
    assert!(
        text.stdout.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&id.to_string().as_str())
                && l.contains("backup-to-mirror mirror watchlist")
                && l.ends_with("10 items")
        }),
        "{}",
        text.show()
    );

    let restored = ferry(Some(&config), &["restore", &id.to_string()]).await;
    restored.expect_code(0);
    assert!(
        restored.stdout.contains(&format!(
            "restore point {id} (mirror watchlist): 10 saved, 3 missing, 3 restored"
        )),
        "{}",
        restored.show()
    );
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..10).collect::<Vec<_>>()
    );
    // A restore is add-only: the source is untouched.
    assert_eq!(
        local_movies(&backup, "watchlist"),
        (3..10).collect::<Vec<_>>()
    );

    // A restore point that does not exist is a usage error.
    let missing = ferry(Some(&config), &["restore", "9999"]).await;
    missing.expect_code(2);
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_exit_codes_usage_2_blocked_removals_3_errors_1() {
    let setup = Setup::new();
    let backup = setup.path("backup");
    let mirror = setup.path("mirror");
    write_local_watchlist(&backup, 0..10, 1);
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"backup-to-mirror\"\nsource = \"backup\"\ntarget = \"mirror\"\n\
         [pairs.features.watchlist]\nremove = true\n",
        local_block("backup", &backup),
        local_block("mirror", &mirror),
    ));

    // Usage: an unknown pair or feature, a missing config.
    let unknown_pair = ferry(Some(&config), &["run", "--pair", "nope"]).await;
    unknown_pair.expect_code(2);
    assert!(
        unknown_pair.stderr.contains("--pair: no pair named `nope`"),
        "{}",
        unknown_pair.show()
    );
    ferry(Some(&config), &["run", "--feature", "bogus"])
        .await
        .expect_code(2);
    ferry(Some(&setup.path("absent.toml")), &["run"])
        .await
        .expect_code(2);
    assert_eq!(local_movies(&mirror, "watchlist"), Vec::<u32>::new());

    ferry(Some(&config), &["run"]).await.expect_code(0);
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..10).collect::<Vec<_>>()
    );

    // Eight of ten titles leave the source: more than the mass-delete limit, so every
    // removal is held and the run exits 3.
    write_local_watchlist(&backup, 8..10, 2);
    let blocked = ferry(Some(&config), &["run"]).await;
    blocked.expect_code(3);
    assert!(
        blocked
            .stdout
            .contains("8 removals from mirror blocked (limit 5 of 10)"),
        "{}",
        blocked.show()
    );
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..10).collect::<Vec<_>>()
    );

    // A corrupt source file is an error, never an empty read: exit 1, nothing removed.
    std::fs::write(backup.join("watchlist.json"), "{\"format\": 1, \"entr").unwrap();
    std::fs::write(
        backup.join("activities.json"),
        json!({"format": 1, "checkpoints": {"watchlist": 3}}).to_string(),
    )
    .unwrap();
    let broken = ferry(Some(&config), &["--json", "run"]).await;
    broken.expect_code(1);
    let s = broken.summary();
    let (_, _, removed, _, _, errors) = totals(&s);
    assert_eq!((removed, errors), (0, 1), "{}", broken.show());
    assert!(
        broken
            .named("feature:error")
            .iter()
            .any(|e| e["error"].as_str().is_some_and(|m| m.contains("corrupt"))),
        "{}",
        broken.show()
    );
    assert_eq!(
        local_movies(&mirror, "watchlist"),
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_max_runs_1_runs_every_pair_once_and_exits_0() {
    let setup = Setup::new();
    let (trakt, config) = trakt_to_local(&setup, false).await;
    let d = ferry(Some(&config), &["--json", "daemon", "--max-runs", "1"]).await;
    d.expect_code(0);
    let names: Vec<String> = d
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .filter(|n| n.starts_with("daemon:") || n == "summary" || n == "run:start")
        .collect();
    assert_eq!(
        names,
        ["daemon:start", "run:start", "summary", "daemon:stop"],
        "{}",
        d.show()
    );
    assert_eq!(
        d.named("daemon:start")[0]["pairs"],
        json!(["trakt-to-local"])
    );
    assert_eq!(d.named("daemon:stop")[0]["runs"], 1);
    assert_eq!(totals(&d.summary()), (5, 0, 0, 0, 0, 0), "{}", d.show());
    assert_eq!(
        local_movies(&setup.path("mirror"), "watchlist"),
        (0..5).collect::<Vec<_>>()
    );
    assert_eq!(writes(&trakt.routes()), vec![]);
    let st = state_json(&ferry(Some(&config), &["--json", "state"]).await);
    assert_eq!(st["runs"].as_array().map(Vec::len), Some(1), "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_syncs_twice_and_the_unchanged_second_run_needs_fewer_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TMPDIR", tmp.path())];

    let text = ferry_env(None, &["demo", "--movies", "50"], &env).await;
    assert!(
        matches!(text.code, Some(0 | 3)),
        "demo exits 0 or 3\n{}",
        text.show()
    );
    assert!(
        text.stdout
            .contains("first run: everything is new to ferry"),
        "{}",
        text.show()
    );
    assert!(
        text.stdout
            .contains("second run: nothing changed anywhere since the first"),
        "{}",
        text.show()
    );
    assert_eq!(
        text.stdout
            .lines()
            .filter(|l| l.starts_with("total: "))
            .count(),
        2,
        "two summaries\n{}",
        text.show()
    );
    let counts = text
        .stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("the simulators answered ")?;
            let (first, rest) = rest.split_once(" requests in the first run and ")?;
            let second = rest.strip_suffix(" in the unchanged second run")?;
            Some((first.parse::<u64>().ok()?, second.parse::<u64>().ok()?))
        })
        .unwrap_or_else(|| panic!("no request counts\n{}", text.show()));
    assert!(counts.0 > counts.1, "{counts:?}\n{}", text.show());
    assert!(counts.0 > 0);

    let json = ferry_env(None, &["--json", "demo", "--movies", "50"], &env).await;
    assert!(matches!(json.code, Some(0 | 3)), "{}", json.show());
    let summaries = json.named("summary");
    assert_eq!(summaries.len(), 2, "{}", json.show());
    // The first run writes (the libraries differ); the second has nothing left to add.
    assert!(totals(&summaries[0]).0 > 0, "{}", summaries[0]);
    assert_eq!(totals(&summaries[1]).0, 0, "{}", summaries[1]);
    assert_eq!(totals(&summaries[1]).2, 0, "{}", summaries[1]);
    let done = json.named("demo:done");
    assert_eq!(done.len(), 1, "{}", json.show());
    let first = done[0]["first_run_requests"].as_u64().expect("a count");
    let second = done[0]["second_run_requests"].as_u64().expect("a count");
    assert!(second < first, "{}", done[0]);

    // Out of range is a usage error.
    ferry_env(None, &["demo", "--movies", "3"], &env)
        .await
        .expect_code(2);
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_trakt_serves_real_http_on_the_given_port_until_interrupted() {
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "--json",
            "simulate",
            "trakt",
            "--port",
            &port.to_string(),
            "--items",
            "20",
        ])
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferry simulate");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Wait (bounded) for the ready line.
    let ready = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("simulate:ready within the bound")
        .expect("read stdout")
        .expect("a ready line before stdout closed");
    let ready: Value = serde_json::from_str(&ready).expect("the ready line is JSON");
    assert_eq!(ready["event"], "simulate:ready", "{ready}");
    assert_eq!(ready["provider"], "trakt");
    let uri = ready["uri"].as_str().expect("a uri").to_owned();
    assert_eq!(uri, format!("http://127.0.0.1:{port}"), "{ready}");
    let cfg = &ready["config"];
    assert_eq!(cfg["base_url"], uri.as_str(), "{ready}");
    let client_id = cfg["client_id"].as_str().expect("client_id").to_owned();
    let token = format!(
        "Bearer {}",
        cfg["access_token"].as_str().expect("access_token")
    );

    let (status, body) = common::http(
        &uri,
        "GET",
        "/sync/watchlist",
        &[
            ("trakt-api-key", &client_id),
            ("trakt-api-version", "2"),
            ("Authorization", &token),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows: Value = serde_json::from_str(&body).expect("a JSON answer");
    assert_eq!(
        rows.as_array().map(Vec::len),
        Some(20),
        "the watchlist of a 20-title simulator: {body}"
    );
    // The printed credentials are the ones that matter: without them, 401.
    let (status, _) = common::http(
        &uri,
        "GET",
        "/sync/watchlist",
        &[("trakt-api-key", &client_id), ("trakt-api-version", "2")],
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Ctrl-C: the simulator reports what it served and exits 0.
    let pid = child.id().expect("still running");
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let mut rest = Vec::new();
    while let Some(l) = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("stdout closes after Ctrl-C")
        .expect("read stdout")
    {
        rest.push(l);
    }
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert_eq!(rest.len(), 1, "{rest:?}");
    let done: Value = serde_json::from_str(&rest[0]).expect("JSON");
    assert_eq!(done["event"], "simulate:done", "{done}");
    assert_eq!(done["requests"], 2, "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_json_reports_every_instance_and_exits_1_when_one_refuses_the_credentials() {
    let trakt = TraktSim::start().await;
    let simkl = SimklSim::start().await;
    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}",
        trakt_block("trakt-main", &trakt),
        simkl_block("simkl-main", &simkl)
    ));

    let ok = ferry(Some(&config), &["--json", "health"]).await;
    ok.expect_code(0);
    let health = ok.named("health");
    assert_eq!(health.len(), 2, "{}", ok.show());
    for (instance, provider) in [("trakt-main", "trakt"), ("simkl-main", "simkl")] {
        let h = health
            .iter()
            .find(|h| h["instance"] == instance)
            .unwrap_or_else(|| panic!("no health for {instance}\n{}", ok.show()));
        assert_eq!(h["provider"], provider, "{h}");
        assert_eq!(h["status"], "ok", "{h}");
        assert_eq!(h["features"]["watchlist"], true, "{h}");
        assert!(h["latency_ms"].is_u64(), "{h}");
    }
    // Secrets never show up in the output.
    for secret in [
        trakt.access_token(),
        trakt.client_id(),
        simkl.token(),
        simkl.client_id(),
    ] {
        assert!(!ok.stdout.contains(&secret), "{}", ok.show());
    }

    // SIMKL revokes the token: that instance is auth_failed, the other still ok; exit 1.
    simkl.set_token("a-new-token-ferry-does-not-have");
    let refused = ferry(Some(&config), &["--json", "health"]).await;
    refused.expect_code(1);
    let health = refused.named("health");
    let status = |instance: &str| {
        health
            .iter()
            .find(|h| h["instance"] == instance)
            .map(|h| h["status"].clone())
    };
    assert_eq!(
        status("simkl-main"),
        Some(json!("auth_failed")),
        "{}",
        refused.show()
    );
    assert_eq!(
        status("trakt-main"),
        Some(json!("ok")),
        "{}",
        refused.show()
    );

    // The human table: one line per instance.
    let text = ferry(Some(&config), &["health"]).await;
    text.expect_code(1);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("simkl-main") && l.contains("auth_failed")),
        "{}",
        text.show()
    );
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("trakt-main") && l.contains(" ok ")),
        "{}",
        text.show()
    );
}

//! Skipped work is never silent: a run that could not sync a provider instance because it
//! was down or refused its credentials exits 4, its summary names the instance and the
//! fix, and `--json` carries the same as a `run:degraded` event (stdout stays NDJSON).

mod common;

use common::{Setup, ferry, local_block, q, trakt_block};
use ferry_testkit::sim::trakt::TraktSim;
use serde_json::Value;

/// A loopback address nothing listens on: connections to it are refused.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = l.local_addr().expect("its address").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Down providers are probed again for this long (the default is 5 s): enough to see
/// the retries, short enough for a test.
const QUICK_RETRIES: &str = "[guardrails]\nhealth_retry_ms = 300\n\n";

fn jellyfin_at(name: &str, url: &str) -> String {
    format!(
        "[providers.{name}]\nkind = \"jellyfin\"\nbase_url = {}\napi_key = \"k\"\nuser_id = \"5f0c\"\n\n",
        q(url)
    )
}

fn pair(name: &str, source: &str, target: &str) -> String {
    format!("[[pairs]]\nname = \"{name}\"\nsource = \"{source}\"\ntarget = \"{target}\"\n\n")
}

fn degraded_providers(run: &common::Run) -> Vec<Value> {
    let ev = run.named("run:degraded");
    assert_eq!(ev.len(), 1, "one run:degraded event\n{}", run.show());
    ev[0]["providers"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_every_provider_up_exits_0_and_reports_nothing_degraded() {
    let s = Setup::new();
    let cfg = s.config(&format!(
        "{}{}{}",
        local_block("a", &s.path("a")),
        local_block("b", &s.path("b")),
        pair("a-to-b", "a", "b")
    ));
    let run = ferry(Some(&cfg), &["--json", "run"]).await;
    run.expect_code(0);
    assert!(run.named("run:degraded").is_empty(), "{}", run.show());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_target_exits_4_and_the_summary_names_it_and_the_server() {
    let s = Setup::new();
    let url = closed_port_url();
    let cfg = s.config(&format!(
        "{QUICK_RETRIES}{}{}{}",
        local_block("shelf", &s.path("shelf")),
        jellyfin_at("den", &url),
        pair("shelf-to-den", "shelf", "den")
    ));
    let run = ferry(Some(&cfg), &["run"]).await;
    run.expect_code(4);
    let line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("den (jellyfin) was down"))
        .unwrap_or_else(|| panic!("no line for den\n{}", run.show()));
    assert!(
        line.contains(&format!("check that the server at {url} is reachable")),
        "{line}"
    );

    let run = ferry(Some(&cfg), &["--json", "run"]).await;
    run.expect_code(4);
    let list = degraded_providers(&run);
    assert_eq!(list.len(), 1, "{}", run.show());
    assert_eq!(list[0]["instance"], "den");
    assert_eq!(list[0]["provider"], "jellyfin");
    assert_eq!(list[0]["status"], "down");
    // events() checks every stdout line is one JSON event.
    assert!(run.events().iter().any(|e| e["event"] == "summary"));

    // A plan that could not look at the target says so the same way.
    let plan = ferry(Some(&cfg), &["plan"]).await;
    plan.expect_code(4);
    assert!(
        plan.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("den (jellyfin) was down")),
        "{}",
        plan.show()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_source_skips_its_features_exits_4_and_says_which() {
    let s = Setup::new();
    let url = closed_port_url();
    let cfg = s.config(&format!(
        "{QUICK_RETRIES}{}{}{}",
        jellyfin_at("den", &url),
        local_block("shelf", &s.path("shelf")),
        pair("den-to-shelf", "den", "shelf")
    ));
    let run = ferry(Some(&cfg), &["--json", "run", "--feature", "watchlist"]).await;
    run.expect_code(4);
    let list = degraded_providers(&run);
    assert_eq!(list.len(), 1, "{}", run.show());
    assert_eq!(list[0]["instance"], "den");
    let affected = list[0]["affected"].to_string();
    assert!(
        affected.contains("watchlist of den-to-shelf not synced"),
        "{affected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_exit_4_and_name_the_sign_in_command() {
    let sim = TraktSim::start().await;
    let s = Setup::new();
    let block = trakt_block("tracker", &sim).replace(&sim.access_token(), "a-revoked-token");
    let cfg = s.config(&format!(
        "{}{block}{}",
        local_block("shelf", &s.path("shelf")),
        pair("shelf-to-tracker", "shelf", "tracker")
    ));
    let run = ferry(Some(&cfg), &["run"]).await;
    run.expect_code(4);
    let line = run
        .stdout
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("tracker (trakt) refused its credentials")
        })
        .unwrap_or_else(|| panic!("no line for tracker\n{}", run.show()));
    assert!(line.contains("pair shelf-to-tracker skipped"), "{line}");
    assert!(line.contains("`ferry auth trakt`"), "{line}");
    assert!(!run.stdout.contains("a-revoked-token"), "{}", run.show());

    let run = ferry(Some(&cfg), &["--json", "run"]).await;
    run.expect_code(4);
    let list = degraded_providers(&run);
    assert_eq!(list[0]["status"], "auth_failed", "{}", run.show());
    assert!(
        list[0]["fix"]
            .as_str()
            .unwrap_or("")
            .contains("ferry auth trakt")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reports_a_down_provider_each_run_and_keeps_going() {
    let s = Setup::new();
    let url = closed_port_url();
    let cfg = s.config(&format!(
        "{QUICK_RETRIES}{}{}{}",
        local_block("shelf", &s.path("shelf")),
        jellyfin_at("den", &url),
        "[[pairs]]\nname = \"p\"\nsource = \"shelf\"\ntarget = \"den\"\ninterval_minutes = 1\n"
    ));
    // One run is enough to see the report; the daemon ends on --max-runs, not on the
    // down provider, and its exit code says what the worst run meant.
    let run = ferry(Some(&cfg), &["--json", "daemon", "--max-runs", "1"]).await;
    run.expect_code(4);
    let list = degraded_providers(&run);
    assert_eq!(list[0]["instance"], "den", "{}", run.show());
    assert_eq!(run.named("daemon:stop").len(), 1, "{}", run.show());
}

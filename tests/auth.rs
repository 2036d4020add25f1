//! `ferry auth trakt`: the device-code sign-in against the Trakt simulator, with the
//! tokens kept in the state database and used by the next command.

use std::process::Stdio;

use ferry_testkit::sim::trakt::TraktSim;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn config(sim: &TraktSim, with_secret: bool) -> String {
    let secret = if with_secret {
        format!("client_secret = \"{}\"\n", sim.client_secret())
    } else {
        String::new()
    };
    format!(
        "[providers.tv]\nkind = \"trakt\"\nbase_url = \"{}\"\nclient_id = \"{}\"\n{secret}",
        sim.uri(),
        sim.client_id()
    )
}

async fn events(cmd: &mut Command) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut out = Vec::new();
    while let Ok(Some(l)) = lines.next_line().await {
        out.push(serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")));
    }
    let o = child.wait_with_output().await.expect("wait");
    (
        o.status.code(),
        out,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `ferry --json auth <provider>`, handing each `auth:code` event to `on_code` (the
/// user at the service's page) while it waits. The exit code, the stdout lines, stderr.
async fn sign_in(
    cfg: &std::path::Path,
    provider: &str,
    mut on_code: impl FnMut(&serde_json::Value),
) -> (Option<i32>, Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--json", "auth", provider, "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    while let Ok(Some(l)) = lines.next_line().await {
        let v: serde_json::Value =
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
        if v["event"] == "auth:code" {
            on_code(&v);
        }
        out.push(l);
    }
    let o = child.wait_with_output().await.unwrap();
    (
        o.status.code(),
        out,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn has_event(lines: &[String], name: &str) -> bool {
    lines
        .iter()
        .any(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["event"] == name))
}

fn health(ev: &[serde_json::Value]) -> &serde_json::Value {
    ev.iter()
        .find(|e| e["event"] == "health")
        .expect("a health event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_sign_in_stores_tokens_that_the_next_command_uses() {
    let sim = TraktSim::start().await;
    sim.set_device_interval(1);
    sim.auto_approve_devices_after(1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config(&sim, true)).unwrap();
    let ferry = env!("CARGO_BIN_EXE_ferry");

    // Before signing in there is no token: health says so.
    let (code, ev, _) = events(
        Command::new(ferry)
            .args(["--json", "health", "--config"])
            .arg(&cfg),
    )
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(health(&ev)["status"], "auth_failed", "{ev:?}");
    assert!(
        health(&ev)["details"]
            .as_str()
            .unwrap_or("")
            .contains("ferry auth trakt"),
        "{ev:?}"
    );

    let (code, ev, err) = events(
        Command::new(ferry)
            .args(["--json", "auth", "trakt", "--config"])
            .arg(&cfg),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let names: Vec<&str> = ev.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        names.contains(&"auth:code") && names.contains(&"auth:done"),
        "{names:?}"
    );
    let dump = serde_json::to_string(&ev).unwrap();
    assert!(
        !dump.contains(&sim.access_token()),
        "the new token must not be printed"
    );

    let (code, ev, err) = events(
        Command::new(ferry)
            .args(["--json", "health", "--config"])
            .arg(&cfg),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(health(&ev)["status"], "ok", "{ev:?}");
}

#[tokio::test]
async fn sign_in_without_a_client_secret_is_a_config_error() {
    let sim = TraktSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config(&sim, false)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["auth", "trakt", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("providers.tv.client_secret"));
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["auth", "netflix", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simkl_pin_sign_in_stores_the_token_that_the_next_command_uses() {
    use ferry_testkit::sim::simkl::SimklSim;
    let sim = SimklSim::start().await;
    sim.set_pin_interval(1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let body = format!(
        "[providers.sk]\nkind = \"simkl\"\nbase_url = \"{}\"\nclient_id = \"{}\"\n",
        sim.uri(),
        sim.client_id()
    );
    std::fs::write(&cfg, body).unwrap();
    let ferry = env!("CARGO_BIN_EXE_ferry");

    // Without a token the instance cannot be built: a config error that says what to do.
    let o = Command::new(ferry)
        .args(["health", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ferry auth simkl"));

    let (code, out, err) = sign_in(&cfg, "simkl", |v| {
        // The user types the PIN on simkl.com.
        assert!(sim.approve_pin(v["user_code"].as_str().unwrap()));
    })
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(has_event(&out, "auth:done"));
    assert!(
        out.iter().all(|l| !l.contains(&sim.token())),
        "the token must not be printed"
    );

    let (code, ev, err) = events(
        Command::new(ferry)
            .args(["--json", "health", "--config"])
            .arg(&cfg),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(health(&ev)["status"], "ok", "{ev:?}");
}

fn plex_config(sim: &ferry_testkit::sim::plex::PlexSim) -> String {
    format!(
        "[providers.px]\nkind = \"plex\"\nbase_url = \"{}\"\ndiscover_url = \"{}\"\nplex_tv_url = \"{}\"\n",
        sim.uri(),
        sim.discover_uri(),
        sim.plex_tv_uri()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plex_pin_sign_in_stores_the_account_token_that_the_next_command_uses() {
    use ferry_testkit::sim::plex::PlexSim;
    let sim = PlexSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, plex_config(&sim)).unwrap();
    let ferry = env!("CARGO_BIN_EXE_ferry");

    // No token in the config and none stored: a config error naming the command to run.
    let o = Command::new(ferry)
        .args(["health", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ferry auth plex"));

    let mut shown = None;
    let (code, out, stderr) = sign_in(&cfg, "plex", |v| {
        assert_eq!(v["verification_url"], "https://plex.tv/link", "{v}");
        let code = v["user_code"].as_str().unwrap().to_owned();
        assert_eq!(code.len(), 4, "a PIN typed at plex.tv/link: {code}");
        // The user types the code at plex.tv/link.
        assert!(sim.approve_pin(&code));
        shown = Some(code);
    })
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(has_event(&out, "auth:done") && shown.is_some());
    let token = sim.account_token();
    assert!(
        out.iter().all(|l| !l.contains(&token)) && !stderr.contains(&token),
        "the token must not be printed"
    );
    // One PIN, polled until linked, then the token proved against the account.
    assert_eq!(sim.pins_created(), 1);
    assert_eq!(sim.plex_tv_routes().get("GET /api/v2/user"), Some(&1));

    let (code, ev, err) = events(
        Command::new(ferry)
            .args(["--json", "health", "--config"])
            .arg(&cfg),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(health(&ev)["status"], "ok", "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_plex_pin_fails_the_sign_in_and_stores_nothing() {
    use ferry_testkit::sim::plex::PlexSim;
    let sim = PlexSim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, plex_config(&sim)).unwrap();
    let ferry = env!("CARGO_BIN_EXE_ferry");

    // The user walks away; the PIN runs out.
    let (code, _, stderr) = sign_in(&cfg, "plex", |_| sim.expire_pins()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(stderr.contains("ferry auth plex"), "{stderr}");

    // Nothing was stored: the next command still asks for a sign-in.
    let o = Command::new(ferry)
        .args(["health", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ferry auth plex"));
}

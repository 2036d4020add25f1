//! End-to-end tests of the `ferry` binary's commands and exit codes: each spawns the real
//! binary with a real config file.

use std::path::Path;
use std::process::{Command, Output};

fn ferry(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().expect("spawn ferry")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, body).unwrap();
    p
}

const TWO_LOCALS: &str = r#"
[providers.backup]
kind = "local"

[providers.mirror]
kind = "local"

[[pairs]]
name = "backup-to-mirror"
source = "backup"
target = "mirror"
"#;

#[test]
fn providers_lists_local() {
    let o = ferry(&["providers"], None);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.lines().any(|l| l.starts_with("local ")), "{out}");
}

#[test]
fn providers_json_is_one_object_per_line() {
    let o = ferry(&["--json", "providers"], None);
    let (out, _) = text(&o);
    assert!(o.status.success());
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v["event"], "provider");
    }
    assert!(out.contains("\"id\":\"local\""));
}

/// `ferry auth` and `ferry simulate` offer what the descriptors declare: `providers`
/// says which kinds have a sign-in and a simulator, and an unknown kind is refused with
/// exactly those lists.
#[test]
fn auth_and_simulate_offer_what_the_descriptors_declare() {
    let o = ferry(&["--json", "providers"], None);
    assert!(o.status.success());
    let rows: Vec<serde_json::Value> = text(&o)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let method = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["sign_in"].clone())
            .unwrap_or_else(|| panic!("no provider {id}"))
    };
    assert_eq!(method("trakt"), "device code");
    assert_eq!(method("simkl"), "PIN");
    assert_eq!(method("plex"), "PIN");
    assert_eq!(method("jellyfin"), serde_json::Value::Null);
    let simulated: Vec<&str> = rows
        .iter()
        .filter(|r| r["simulator"] == true)
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(
        simulated.contains(&"trakt") && simulated.contains(&"emby"),
        "{simulated:?}"
    );
    assert!(!simulated.contains(&"local"), "{simulated:?}");

    let o = ferry(&["auth", "vhs"], None);
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(
        err.contains("sign-in flows: plex (PIN), simkl (PIN), trakt (device code)"),
        "{err}"
    );
    for kind in ["vhs", "local"] {
        let o = ferry(&["simulate", kind], None);
        assert_eq!(o.status.code(), Some(2), "simulate {kind}");
        let (_, err) = text(&o);
        assert!(
            err.contains(&format!("simulated providers: {}", simulated.join(", "))),
            "{err}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let o = ferry(&["frobnicate"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = ferry(&["check", "--config"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let c = write_config(dir.path(), TWO_LOCALS);
    let o = ferry(&["check"], Some(&c));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("pair       backup-to-mirror: backup -> mirror"),
        "{out}"
    );
}

#[test]
fn every_config_error_class_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, String, &str); 5] = [
        (
            "unknown key",
            TWO_LOCALS.replace("[[pairs]]", "[[pairs]]\nsauce = \"x\""),
            ":9: `pairs[0].sauce`",
        ),
        (
            "wrong type",
            TWO_LOCALS.replace(
                "kind = \"local\"\n\n[providers.mirror]",
                "kind = \"local\"\npath = 7\n\n[providers.mirror]",
            ),
            ":4: `providers.backup.path`",
        ),
        (
            "missing instance",
            TWO_LOCALS.replace("target = \"mirror\"", "target = \"mirrorr\""),
            ":11: `pairs[0].target`",
        ),
        (
            "provider not compiled in",
            TWO_LOCALS.replace(
                "[providers.mirror]\nkind = \"local\"",
                "[providers.mirror]\nkind = \"vhs\"",
            ),
            ":6: `providers.mirror.kind`",
        ),
        (
            "unset variable",
            TWO_LOCALS.replace(
                "[providers.mirror]\nkind = \"local\"",
                "[providers.mirror]\nkind = \"local\"\npath = \"${FERRY_E2E_UNSET}\"",
            ),
            ":7: `providers.mirror.path`",
        ),
    ];
    for (what, body, expected) in cases {
        let c = write_config(dir.path(), &body);
        let o = ferry(&["check"], Some(&c));
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(&format!("{}{expected}", c.display())),
            "{what}: expected `{expected}` in: {err}"
        );
    }
}

#[test]
fn a_missing_config_file_exits_2_with_a_hint() {
    let o = ferry(&["check"], Some(Path::new("/nonexistent/ferry.toml")));
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("/nonexistent/ferry.toml") && err.contains("--config"),
        "{err}"
    );
}

#[test]
fn health_reports_each_instance_and_fails_on_a_down_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = write_config(dir.path(), TWO_LOCALS);
    let o = ferry(&["health"], Some(&c));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("backup") && l.contains(" ok ")),
        "{out}"
    );

    // A local instance whose directory cannot be created is down: exit 1.
    std::fs::write(dir.path().join("blocker"), b"x").unwrap();
    let body = TWO_LOCALS.replace(
        "[providers.mirror]\nkind = \"local\"",
        &format!(
            "[providers.mirror]\nkind = \"local\"\npath = \"{}/blocker/sub\"",
            dir.path().display()
        ),
    );
    let c = write_config(dir.path(), &body);
    let o = ferry(&["--json", "health"], Some(&c));
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let down: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["status"] == "down")
        .collect();
    assert_eq!(down.len(), 1, "{out}");
    assert_eq!(down[0]["instance"], "mirror");
}

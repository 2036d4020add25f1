//! One validation: `ferry check` builds every provider instance as `ferry run` does, so
//! both refuse the same config with exit 2 and an error naming file:line and the key,
//! with the offending line shown; `nan`/`inf` are never taken as "unset". And ferry
//! warns, naming the file, when a config holding a literal secret is readable by others.

mod common;

use common::{Setup, ferry, local_block, q};

/// A config whose line `line` (1-based) is `key = value` of `[providers.den]`.
fn jellyfin_config(s: &Setup, base_url: &str, api_key: &str, user_id: &str) -> std::path::PathBuf {
    s.config(&format!(
        "{}[providers.den]\nkind = \"jellyfin\"\nbase_url = {}\napi_key = {}\nuser_id = {}\n\n\
         [[pairs]]\nname = \"p\"\nsource = \"shelf\"\ntarget = \"den\"\n",
        local_block("shelf", &s.path("shelf")),
        q(base_url),
        q(api_key),
        q(user_id)
    ))
}

/// Line numbers in `jellyfin_config` (after the 4-line local block).
const BASE_URL_LINE: usize = 7;
const API_KEY_LINE: usize = 8;
const USER_ID_LINE: usize = 9;

/// `check` and `run` both exit 2, and both name `file:line: `key``.
async fn both_refuse(cfg: &std::path::Path, line: usize, key: &str, shown: &str) {
    let want = format!("{}:{line}: `{key}`", cfg.display());
    for args in [&["check"][..], &["run"]] {
        let r = ferry(Some(cfg), args).await;
        r.expect_code(2);
        assert!(r.stderr.contains(&want), "want {want}\n{}", r.show());
        // The code frame shows the line as written.
        assert!(
            r.stderr.contains(shown),
            "want the line `{shown}`\n{}",
            r.show()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_config_passes_check_and_run_builds_it() {
    let s = Setup::new();
    let cfg = jellyfin_config(&s, "http://127.0.0.1:9", "k", "5f0c");
    ferry(Some(&cfg), &["check"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_base_url_is_refused_by_check_and_run_alike() {
    let s = Setup::new();
    let cfg = jellyfin_config(&s, "ftp://nas", "k", "5f0c");
    both_refuse(
        &cfg,
        BASE_URL_LINE,
        "providers.den.base_url",
        "base_url = \"ftp://nas\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_user_id_is_refused_by_check_and_run_alike() {
    let s = Setup::new();
    let cfg = jellyfin_config(&s, "http://127.0.0.1:9", "k", "not an id!");
    both_refuse(
        &cfg,
        USER_ID_LINE,
        "providers.den.user_id",
        "user_id = \"not an id!\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_api_key_is_refused_by_check_and_run_alike() {
    let s = Setup::new();
    let cfg = jellyfin_config(&s, "http://127.0.0.1:9", "", "5f0c");
    both_refuse(
        &cfg,
        API_KEY_LINE,
        "providers.den.api_key",
        "api_key = \"\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_and_inf_are_refused_on_provider_and_guardrail_keys() {
    for (section, key, value) in [
        ("providers.den", "page_size", "nan"),
        ("providers.den", "page_size", "-inf"),
        ("guardrails", "mass_delete_ratio", "nan"),
        ("guardrails", "mass_delete_ratio", "+inf"),
        ("guardrails", "mass_delete_floor", "inf"),
    ] {
        let s = Setup::new();
        let den = "[providers.den]\nkind = \"mdblist\"\napi_key = \"k\"\n";
        let body = if section == "guardrails" {
            format!(
                "[guardrails]\n{key} = {value}\n\n{}{den}\n[[pairs]]\nname = \"p\"\nsource = \"shelf\"\ntarget = \"den\"\n",
                local_block("shelf", &s.path("shelf"))
            )
        } else {
            format!(
                "[guardrails]\n\n{}{den}{key} = {value}\n\n[[pairs]]\nname = \"p\"\nsource = \"shelf\"\ntarget = \"den\"\n",
                local_block("shelf", &s.path("shelf"))
            )
        };
        let cfg = s.config(&body);
        let line = body
            .lines()
            .position(|l| l == format!("{key} = {value}"))
            .expect("the key is in the text")
            + 1;
        both_refuse(
            &cfg,
            line,
            &format!("{section}.{key}"),
            &format!("{key} = {value}"),
        )
        .await;
    }
}

#[cfg(unix)]
fn chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_config_with_a_literal_secret_is_warned_about() {
    let s = Setup::new();
    let cfg = jellyfin_config(&s, "http://127.0.0.1:9", "a-literal-key", "5f0c");
    chmod(&cfg, 0o644);
    let r = ferry(Some(&cfg), &["check"]).await;
    r.expect_code(0);
    let warning = r
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains(&cfg.display().to_string()))
        .unwrap_or_else(|| panic!("no warning naming the file\n{}", r.show()));
    assert!(warning.contains("providers.den.api_key"), "{warning}");
    assert!(!r.stderr.contains("a-literal-key"), "{}", r.show());

    // Owner-only: nothing to say.
    chmod(&cfg, 0o600);
    let r = ferry(Some(&cfg), &["check"]).await;
    assert!(!r.stderr.contains("warning"), "{}", r.show());

    // A ${VAR} reference keeps the secret out of the file.
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"a-literal-key\"", "\"${FERRY_TEST_DEN_KEY}\"");
    std::fs::write(&cfg, body).unwrap();
    chmod(&cfg, 0o644);
    let r = common::ferry_env(
        Some(&cfg),
        &["check"],
        &[("FERRY_TEST_DEN_KEY", std::path::Path::new("from-env"))],
    )
    .await;
    r.expect_code(0);
    assert!(!r.stderr.contains("warning"), "{}", r.show());
}

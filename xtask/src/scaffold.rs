//! `cargo xtask new-provider NAME`: a provider crate that builds, registers, and runs the
//! contract suite (failing honestly) straight away.

use std::fs;
use std::path::{Path, PathBuf};

/// Validates a provider name: lower-case ASCII, digits and dashes, starting with a letter.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.len() >= 2
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        return Err(format!(
            "`{name}` is not a valid provider name: use 2-32 lower-case letters, digits and dashes, starting with a letter"
        ));
    }
    if matches!(name, "ferry" | "xtask" | "core" | "std" | "test" | "tests") {
        return Err(format!("`{name}` is reserved"));
    }
    Ok(())
}

fn camel(name: &str) -> String {
    name.split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The files of a new provider crate, as (path relative to the workspace root, contents).
pub(crate) fn provider_files(name: &str) -> Vec<(PathBuf, String)> {
    let ty = format!("{}Provider", camel(name));
    let krate = name.replace('-', "_");
    let dir = PathBuf::from("providers").join(name);
    let cargo = format!(
        r#"[package]
name = "{name}"
description = "ferry provider for {name}."
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
ferry-core.workspace = true
async-trait.workspace = true
serde.workspace = true

[dev-dependencies]
ferry-testkit.workspace = true
tokio = {{ workspace = true, features = ["macros", "rt-multi-thread"] }}

[lints]
workspace = true
"#
    );
    let lib = format!(
        r#"//! ferry provider for {name}. Scaffolded by `cargo xtask new-provider`.
//!
//! Fill in the methods below, then make `cargo test -p {name}` pass: it runs the whole
//! contract suite (see `ferry_testkit::contract`) against your provider.

use async_trait::async_trait;
use ferry_core::{{
    BuildEnv, Capabilities, Context, Entry, Error, Feature, FeatureCaps, Health, InventoryOps,
    MediaType, ProviderKind, Result, Secret, Snapshot, WriteReport,
}};
use serde::Deserialize;

/// `[providers.<instance>]` keys for `kind = "{name}"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct {ty}Config {{
    /// Where the service lives; simulators and reverse proxies override it.
    pub base_url: String,
    /// The API token. A `Secret` never prints its value.
    pub token: Secret,
}}

#[derive(Debug)]
pub struct {ty} {{
    instance: String,
    config: {ty}Config,
}}

impl ProviderKind for {ty} {{
    const ID: &'static str = "{name}";
    const LABEL: &'static str = "{name}";
    type Config = {ty}Config;

    fn capabilities() -> Capabilities {{
        // Declare only what the service really supports; the contract suite holds you to it.
        Capabilities::new().with(Feature::Watchlist, FeatureCaps::full(100, &[MediaType::Movie, MediaType::Show]))
    }}

    fn build(instance: &str, config: Self::Config, _env: &BuildEnv) -> Result<Self> {{
        Ok({ty} {{ instance: instance.to_owned(), config }})
    }}
}}

ferry_core::register_provider!({ty});

fn unwritten(what: &str) -> Error {{
    Error::unsupported(format!("{name}: {{what}} is still to be written (scaffold)"))
}}

#[async_trait]
impl InventoryOps for {ty} {{
    fn provider(&self) -> &'static str {{
        Self::ID
    }}

    fn instance(&self) -> &str {{
        &self.instance
    }}

    fn features(&self) -> Capabilities {{
        Self::capabilities()
    }}

    fn secrets(&self) -> Vec<Secret> {{
        vec![self.config.token.clone()]
    }}

    async fn health(&self, _cx: &Context) -> Health {{
        Health::down(format!("{name}: health is still to be written (scaffold); base_url {{}}", self.config.base_url))
    }}

    async fn build_index(&self, cx: &Context, _feature: Feature) -> Result<Snapshot> {{
        cx.check_cancelled()?;
        Err(unwritten("build_index"))
    }}

    async fn add(&self, cx: &Context, _feature: Feature, _entries: &[Entry]) -> Result<WriteReport> {{
        cx.check_cancelled()?;
        Err(unwritten("add"))
    }}

    async fn remove(&self, cx: &Context, _feature: Feature, _entries: &[Entry]) -> Result<WriteReport> {{
        cx.check_cancelled()?;
        Err(unwritten("remove"))
    }}
}}
"#
    );
    let test = format!(
        r#"//! The contract suite against {name}. Point `base_url` at a simulator of the service
//! (see `ferry-testkit`), never at the real one.

use std::sync::Arc;

use ferry_core::{{BuildEnv, ProviderKind, Secret}};
use ferry_testkit::contract::{{Subject, run_contract_suite}};
use {krate}::{{{ty}, {ty}Config}};

#[tokio::test]
async fn {krate}_passes_the_contract_suite() {{
    let config = {ty}Config {{ base_url: "http://127.0.0.1:9".into(), token: Secret::new("scaffold-token") }};
    let env = BuildEnv::ephemeral(std::env::temp_dir().join("{name}-contract"));
    let provider = {ty}::build("contract", config, &env).expect("build");
    let report = run_contract_suite(Subject::new(Arc::new(provider)).with_secrets(["scaffold-token"])).await;
    report.assert_passed();
}}
"#
    );
    let readme = format!(
        "# {name}\n\nferry provider for {name}, scaffolded by `cargo xtask new-provider {name}`.\n\n\
         - Config keys: `base_url`, `token` (see `{ty}Config`).\n\
         - Features: declare them in `capabilities()`; the contract suite checks every one.\n\
         - Test: `cargo test -p {name}` runs the contract suite against a simulator.\n"
    );
    vec![
        (dir.join("Cargo.toml"), cargo),
        (dir.join("src/lib.rs"), lib),
        (dir.join("tests/contract.rs"), test),
        (dir.join("README.md"), readme),
    ]
}

/// Inserts `line` before the line containing `marker`, once.
pub(crate) fn insert_before_marker(text: &str, marker: &str, line: &str) -> Result<String, String> {
    if text.contains(line) {
        return Ok(text.to_owned());
    }
    let pos = text
        .find(marker)
        .ok_or_else(|| format!("marker `{marker}` not found"))?;
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = text[line_start..pos]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    Ok(format!(
        "{}{indent}{line}\n{}",
        &text[..line_start],
        &text[line_start..]
    ))
}

/// Adds `item` to the TOML array on the line starting with `key = [`.
pub(crate) fn add_to_array(text: &str, key: &str, item: &str) -> Result<String, String> {
    let start = text
        .find(&format!("\n{key} = ["))
        .ok_or_else(|| format!("`{key} = [` not found"))?
        + 1;
    let end = text[start..].find(']').ok_or("unterminated array")? + start;
    let inner = &text[start + key.len() + 4..end];
    if inner.contains(&format!("\"{item}\"")) {
        return Ok(text.to_owned());
    }
    let sep = if inner.trim().is_empty() { "" } else { ", " };
    Ok(format!(
        "{}{}{sep}\"{item}\"{}",
        &text[..start],
        &text[start..end],
        &text[end..]
    ))
}

/// The edits that wire a provider into the workspace and the runner.
pub(crate) fn wire(
    root_toml: &str,
    runner_toml: &str,
    providers_rs: &str,
    name: &str,
) -> Result<(String, String, String), String> {
    let krate = name.replace('-', "_");
    let root = insert_before_marker(
        root_toml,
        "# xtask:providers",
        &format!("{name} = {{ path = \"providers/{name}\" }}"),
    )?;
    let mut runner = insert_before_marker(
        runner_toml,
        "# xtask:features",
        &format!("provider-{name} = [\"dep:{name}\"]"),
    )?;
    runner = add_to_array(&runner, "default", &format!("provider-{name}"))?;
    runner = insert_before_marker(
        &runner,
        "# xtask:dependencies",
        &format!("{name} = {{ workspace = true, optional = true }}"),
    )?;
    let mut prs = insert_before_marker(
        providers_rs,
        "// xtask:use",
        &format!("#[cfg(feature = \"provider-{name}\")]\nuse {krate} as _;"),
    )?;
    prs = insert_before_marker(
        &prs,
        "// xtask:enabled",
        &format!("#[cfg(feature = \"provider-{name}\")]\n    v.push(\"{name}\");"),
    )?;
    Ok((root, runner, prs))
}

pub(crate) fn new_provider(root: &Path, name: &str) -> Result<Vec<PathBuf>, String> {
    validate_name(name)?;
    let dir = root.join("providers").join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let read =
        |p: &Path| fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let root_toml_p = root.join("Cargo.toml");
    let runner_toml_p = root.join("crates/ferry/Cargo.toml");
    let providers_rs_p = root.join("crates/ferry/src/providers.rs");
    // Compute every edit before touching the disk, so a failure leaves nothing half-done.
    let (root_toml, runner_toml, providers_rs) = wire(
        &read(&root_toml_p)?,
        &read(&runner_toml_p)?,
        &read(&providers_rs_p)?,
        name,
    )?;
    let files = provider_files(name);
    let mut created = Vec::new();
    for (rel, contents) in &files {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&p, contents).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        created.push(p);
    }
    for (p, text) in [
        (&root_toml_p, root_toml),
        (&runner_toml_p, runner_toml),
        (&providers_rs_p, providers_rs),
    ] {
        fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("my-tracker").is_ok());
        for bad in ["", "a", "My", "1abc", "a_b", "abc-", "ferry", "x y"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wiring_edits_every_registration_point_once() {
        let root =
            "[workspace.dependencies]\nlocal = { path = \"providers/local\" }\n# xtask:providers\n";
        let runner = "[features]\ndefault = [\"provider-local\"]\nprovider-local = [\"dep:local\"]\n# xtask:features\n\n[dependencies]\nlocal = { workspace = true, optional = true }\n# xtask:dependencies\n";
        let prs = "#[cfg(feature = \"provider-local\")]\nuse local as _;\n// xtask:use\nfn f() {\n    v.push(\"local\");\n    // xtask:enabled\n}\n";
        let (r, ru, p) = wire(root, runner, prs, "my-tv").unwrap();
        assert!(r.contains("my-tv = { path = \"providers/my-tv\" }\n# xtask:providers"));
        assert!(
            ru.contains("default = [\"provider-local\", \"provider-my-tv\"]"),
            "{ru}"
        );
        assert!(ru.contains("provider-my-tv = [\"dep:my-tv\"]"));
        assert!(ru.contains("my-tv = { workspace = true, optional = true }"));
        assert!(p.contains("use my_tv as _;"));
        assert!(
            p.contains("    #[cfg(feature = \"provider-my-tv\")]\n    v.push(\"my-tv\");"),
            "{p}"
        );
        // Idempotent.
        let again = wire(&r, &ru, &p, "my-tv").unwrap();
        assert_eq!(again, (r, ru, p));
    }

    #[test]
    fn generated_crate_names_its_types_and_never_leaks_its_token() {
        let files = provider_files("my-tv");
        let lib = &files
            .iter()
            .find(|(p, _)| p.ends_with("src/lib.rs"))
            .unwrap()
            .1;
        assert!(lib.contains("pub struct MyTvProvider"));
        assert!(lib.contains("ferry_core::register_provider!(MyTvProvider);"));
        assert!(lib.contains("pub token: Secret"));
        let test = &files
            .iter()
            .find(|(p, _)| p.ends_with("tests/contract.rs"))
            .unwrap()
            .1;
        assert!(test.contains("use my_tv::{MyTvProvider, MyTvProviderConfig};"));
    }

    /// The real thing: scaffold into a copy of this workspace's manifests and build and
    /// test the new crate with cargo. The suite must *run* and fail honestly.
    #[test]
    fn scaffolded_provider_builds_and_runs_the_contract_suite() {
        let real = super::super::workspace_root();
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        // A workspace whose members are the new provider plus path deps on the real crates.
        let root_toml = fs::read_to_string(real.join("Cargo.toml")).unwrap();
        let root_toml = root_toml
            .replace(
                "members = [\"crates/*\", \"providers/*\", \"xtask\"]",
                "members = [\"providers/*\"]",
            )
            .replace(
                "{ path = \"crates/",
                &format!("{{ path = \"{}/crates/", real.display()),
            )
            .replace(
                "{ path = \"providers/local\" }",
                &format!("{{ path = \"{}/providers/local\" }}", real.display()),
            );
        fs::create_dir_all(ws.join("crates/ferry/src")).unwrap();
        fs::create_dir_all(ws.join("providers")).unwrap();
        fs::write(ws.join("Cargo.toml"), root_toml).unwrap();
        fs::copy(
            real.join("crates/ferry/Cargo.toml"),
            ws.join("crates/ferry/Cargo.toml"),
        )
        .unwrap();
        fs::copy(
            real.join("crates/ferry/src/providers.rs"),
            ws.join("crates/ferry/src/providers.rs"),
        )
        .unwrap();
        if real.join("Cargo.lock").exists() {
            fs::copy(real.join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
        }
        new_provider(ws, "scaffold-probe").unwrap();
        let runner = fs::read_to_string(ws.join("crates/ferry/Cargo.toml")).unwrap();
        assert!(runner.contains("provider-scaffold-probe"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| real.join("target"));
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "test",
                "--offline",
                "-p",
                "scaffold-probe",
                "--color",
                "never",
            ])
            .current_dir(ws)
            .env("CARGO_TARGET_DIR", target.join("scaffold-check"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "a scaffold must fail its contract suite until written:\n{text}"
        );
        assert!(
            text.contains("contract suite for scaffold-probe/contract"),
            "the suite did not run:\n{text}"
        );
        assert!(text.contains("declared_features_are_readable"), "{text}");
        assert!(
            !text.contains("scaffold-token"),
            "the token leaked:\n{text}"
        );
    }
}

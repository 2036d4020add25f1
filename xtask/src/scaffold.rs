//! `cargo xtask new-provider NAME`: a provider crate on the provider kit (the HTTP
//! client, the pager over typed rows, the batch writer), its simulator on the simulator
//! kit (`src/sim.rs`, feature `sim`) and the contract suite wired to that simulator's
//! fault knobs, registered in the runner at the `xtask:` markers. It builds and runs the
//! whole suite at once, failing honestly (every read and write answers "still to be
//! written") until the service's wire format is filled in. Templates:
//! `xtask/templates/provider`.

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

/// The templates of a new provider crate (`xtask/templates/provider`), by path inside
/// the crate. `{{name}}` is the provider id, `{{crate}}` its Rust crate name, `{{Type}}`
/// the type prefix (`my-tv`, `my_tv`, `MyTv`).
const TEMPLATES: [(&str, &str); 12] = [
    (
        "Cargo.toml",
        include_str!("../templates/provider/Cargo.toml.tmpl"),
    ),
    (
        "README.md",
        include_str!("../templates/provider/README.md.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/provider/src/lib.rs.tmpl"),
    ),
    (
        "src/config.rs",
        include_str!("../templates/provider/src/config.rs.tmpl"),
    ),
    (
        "src/api.rs",
        include_str!("../templates/provider/src/api.rs.tmpl"),
    ),
    (
        "src/model.rs",
        include_str!("../templates/provider/src/model.rs.tmpl"),
    ),
    (
        "src/convert.rs",
        include_str!("../templates/provider/src/convert.rs.tmpl"),
    ),
    (
        "src/read.rs",
        include_str!("../templates/provider/src/read.rs.tmpl"),
    ),
    (
        "src/write.rs",
        include_str!("../templates/provider/src/write.rs.tmpl"),
    ),
    (
        "src/sim.rs",
        include_str!("../templates/provider/src/sim.rs.tmpl"),
    ),
    (
        "tests/contract.rs",
        include_str!("../templates/provider/tests/contract.rs.tmpl"),
    ),
    (
        "tests/sim.rs",
        include_str!("../templates/provider/tests/sim.rs.tmpl"),
    ),
];

/// The provider's docs page, `docs/providers/NAME.md` (a tidy test wants one for every
/// provider: `xtask/src/tidy.rs`).
const DOCS_PAGE: &str = include_str!("../templates/docs/provider.md.tmpl");

/// The files of a new provider crate and its docs page, as (path relative to the
/// workspace root, contents).
pub(crate) fn provider_files(name: &str) -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from("providers").join(name);
    let krate = name.replace('-', "_");
    let ty = camel(name);
    let fill = |text: &str| {
        text.replace("{{Type}}", &ty)
            .replace("{{TYPE}}", &krate.to_ascii_uppercase())
            .replace("{{crate}}", &krate)
            .replace("{{name}}", name)
    };
    let docs = PathBuf::from("docs/providers").join(format!("{name}.md"));
    (TEMPLATES.iter())
        .map(|(rel, text)| (dir.join(rel), fill(text)))
        .chain([(docs, fill(DOCS_PAGE))])
        .collect()
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
    // The binary's `sim` feature turns on each linked provider's simulator.
    runner = insert_before_marker(&runner, "# xtask:sim", &format!("\"{name}?/sim\","))?;
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
    if let Some((rel, _)) = files.iter().find(|(rel, _)| root.join(rel).exists()) {
        return Err(format!("{} already exists", root.join(rel).display()));
    }
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
    // The `use` line goes in name order, where rustfmt wants it.
    format_rust(&[created.as_slice(), &[providers_rs_p]].concat());
    Ok(created)
}

/// Formats the generated Rust files (their layout depends on the name's length) and the
/// runner's `providers.rs`, so everything passes `cargo fmt --check` at once. Without rustfmt they stay as
/// generated: valid, only unformatted.
fn format_rust(files: &[PathBuf]) {
    let rs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&rs)
        .status();
    if !formatted.is_ok_and(|s| s.success()) {
        super::report("xtask: rustfmt did not run; run `cargo fmt` on the new crate");
    }
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
        let runner = "[features]\ndefault = [\"sim\", \"provider-local\"]\nsim = [\n    \"dep:ferry-testkit\",\n    # xtask:sim\n]\nprovider-local = [\"dep:local\"]\n# xtask:features\n\n[dependencies]\nlocal = { workspace = true, optional = true }\n# xtask:dependencies\n";
        let prs = "#[cfg(feature = \"provider-local\")]\nuse local as _;\n// xtask:use\nfn f() {\n    v.push(\"local\");\n    // xtask:enabled\n}\n";
        let (r, ru, p) = wire(root, runner, prs, "my-tv").unwrap();
        assert!(r.contains("my-tv = { path = \"providers/my-tv\" }\n# xtask:providers"));
        assert!(
            ru.contains("default = [\"sim\", \"provider-local\", \"provider-my-tv\"]"),
            "{ru}"
        );
        assert!(ru.contains("    \"my-tv?/sim\",\n    # xtask:sim"), "{ru}");
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

    fn file<'a>(files: &'a [(PathBuf, String)], rel: &str) -> &'a str {
        &files
            .iter()
            .find(|(p, _)| p.ends_with(rel))
            .unwrap_or_else(|| panic!("{rel} not generated"))
            .1
    }

    #[test]
    fn generated_crate_names_its_types_and_fills_every_placeholder() {
        let files = provider_files("my-tv");
        assert_eq!(files.len(), TEMPLATES.len() + 1);
        for (path, text) in &files {
            assert!(
                path.starts_with("providers/my-tv") || path == Path::new("docs/providers/my-tv.md"),
                "{}",
                path.display()
            );
            for hole in ["{{name}}", "{{crate}}", "{{Type}}", "{{TYPE}}"] {
                assert!(!text.contains(hole), "{} keeps {hole}", path.display());
            }
        }
        let lib = file(&files, "src/lib.rs");
        assert!(lib.contains("pub struct MyTvProvider"));
        assert!(lib.contains("ferry_core::register_provider!(MyTvProvider);"));
        assert!(lib.contains("pub use config::{MyTvConfig, MyTvOptions};"));
        assert!(file(&files, "src/config.rs").contains("pub token: Secret"));
        let cargo = file(&files, "Cargo.toml");
        assert!(cargo.contains("name = \"my-tv\""));
        assert!(cargo.contains("my-tv = { path = \".\", features = [\"sim\"] }"));
        let test = file(&files, "tests/contract.rs");
        assert!(test.contains("use my_tv::sim::{MyTvSim, PER_PAGE};"));
        assert!(test.contains("async fn my_tv_passes_the_contract_suite()"));
    }

    /// The crate is built on the kits, and fails honestly until written: its stubs
    /// answer errors, and nothing in it can claim a complete read.
    #[test]
    fn generated_crate_stands_on_the_kits_and_its_stubs_fail() {
        let files = provider_files("my-tv");
        let read = file(&files, "src/read.rs");
        assert!(read.contains("Pager::new(") && read.contains("proof.snapshot("));
        assert!(file(&files, "src/write.rs").contains("BatchWriter::new("));
        assert!(file(&files, "src/convert.rs").contains("Row::Bad(e)"));
        let api = file(&files, "src/api.rs");
        assert!(api.contains("HttpClient::builder("));
        assert_eq!(
            api.matches("Err(unwritten(").count(),
            2,
            "list_page and write_one"
        );
        assert!(api.contains("Health::from_error(&unwritten("));
        let sim = file(&files, "src/sim.rs");
        assert!(sim.contains("impl Routes for MyTvRoutes"));
        assert!(sim.contains("pub type MyTvSim = Host<MyTvRoutes>;"));
        assert!(sim.contains("fault.shape("));
        assert!(sim.contains("pub(crate) const SIMULATOR: Simulator = Simulator {"));
        let lib = file(&files, "src/lib.rs");
        assert!(
            lib.contains("const SIMULATOR: Option<ferry_core::Simulator> = Some(sim::SIMULATOR);")
        );
        assert!(file(&files, "tests/contract.rs").contains(".with_faults(Arc::new(sim.clone()))"));
        for (path, text) in &files {
            for forbidden in ["unproven_legacy", "Completeness::Complete", "#[ignore]"] {
                assert!(
                    !text.contains(forbidden),
                    "{} has {forbidden}",
                    path.display()
                );
            }
        }
    }

    /// Scaffolds into a copy of this workspace's three wired manifests: the crate's files
    /// are written and every registration point names it; a second run refuses.
    #[test]
    fn scaffolding_writes_the_crate_and_wires_it_into_a_workspace_copy() {
        let real = super::super::workspace_root();
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        fs::create_dir_all(ws.join("crates/ferry/src")).unwrap();
        for rel in [
            "Cargo.toml",
            "crates/ferry/Cargo.toml",
            "crates/ferry/src/providers.rs",
        ] {
            fs::copy(real.join(rel), ws.join(rel)).unwrap();
        }
        let created = new_provider(ws, "scaffold-probe").unwrap();
        assert_eq!(created.len(), TEMPLATES.len() + 1);
        for rel in [
            "Cargo.toml",
            "src/lib.rs",
            "src/sim.rs",
            "tests/contract.rs",
        ] {
            assert!(
                ws.join("providers/scaffold-probe").join(rel).is_file(),
                "{rel}"
            );
        }
        let read = |rel: &str| fs::read_to_string(ws.join(rel)).unwrap();
        assert!(read("Cargo.toml").contains(
            "scaffold-probe = { path = \"providers/scaffold-probe\" }\n# xtask:providers"
        ));
        let runner = read("crates/ferry/Cargo.toml");
        assert!(runner.contains("provider-scaffold-probe = [\"dep:scaffold-probe\"]"));
        assert!(runner.contains("scaffold-probe = { workspace = true, optional = true }"));
        assert!(
            runner.contains("\"scaffold-probe?/sim\","),
            "the simulator feature"
        );
        assert!(
            runner.contains("\"provider-scaffold-probe\"]"),
            "default features"
        );
        let prs = read("crates/ferry/src/providers.rs");
        assert!(prs.contains("use scaffold_probe as _;"));
        assert!(prs.contains("v.push(\"scaffold-probe\");"));
        let err = new_provider(ws, "scaffold-probe").unwrap_err();
        assert!(err.contains("already exists"), "{err}");
    }

    /// A workspace without the markers is refused before anything is written.
    #[test]
    fn missing_markers_leave_nothing_half_done() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        fs::create_dir_all(ws.join("crates/ferry/src")).unwrap();
        fs::write(ws.join("Cargo.toml"), "[workspace]\n").unwrap();
        fs::write(ws.join("crates/ferry/Cargo.toml"), "[features]\n").unwrap();
        fs::write(ws.join("crates/ferry/src/providers.rs"), "").unwrap();
        let err = new_provider(ws, "probe").unwrap_err();
        assert!(err.contains("marker"), "{err}");
        assert!(!ws.join("providers/probe").exists());
        assert_eq!(
            fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
            "[workspace]\n"
        );
    }
}

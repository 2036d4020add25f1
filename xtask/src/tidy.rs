//! Source checks that keep the provider side of the workspace true to
//! `docs/ARCHITECTURE.md` by construction (they run with `cargo test --workspace`):
//!
//! - every crate under `providers/` has a README, a docs page, a contract test and a
//!   `provider-<name>` feature of the binary that links it;
//! - a provider that speaks HTTP itself (it depends on `ferry-http`) has the kit's file
//!   layout: `config`, `api`, `model`, `read`, `write`, `convert`, `lib`;
//! - every contract test holds its provider to the whole suite: a check that found
//!   nothing to attack may not pass as a check that passed;
//! - comments point at files in this repository, never at the product's design
//!   documents outside it (a reader of the code has only the repository).

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The kit's file layout, for a provider that speaks HTTP.
    const LAYOUT: [&str; 7] = [
        "config.rs",
        "api.rs",
        "model.rs",
        "read.rs",
        "write.rs",
        "convert.rs",
        "lib.rs",
    ];

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the workspace root")
            .to_path_buf()
    }

    /// Every provider crate, by folder name (= crate name = provider id).
    fn providers() -> Vec<String> {
        let dir = root().join("providers");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .filter(|e| e.path().join("Cargo.toml").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The `[dependencies]` table of a manifest, as text (dev-dependencies excluded).
    fn dependencies(manifest: &str) -> &str {
        let Some(start) = manifest.find("\n[dependencies]") else {
            return "";
        };
        let rest = &manifest[start + 1..];
        let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    }

    /// Every Rust source file under `dir`, recursively (build output excluded).
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && e.file_name() != "target" {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn comments_point_inside_the_repository() {
        let root = root();
        // Spelled in pieces so this test does not find itself.
        let outside = [
            concat!("spec ", "§"),
            concat!("../", "shared"),
            concat!("seeds", "/"),
        ];
        let mut files = Vec::new();
        for dir in ["crates", "providers", "xtask", "tests"] {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "found only {} Rust files", files.len());
        let mut found = Vec::new();
        for f in &files {
            for (n, line) in read(f).lines().enumerate() {
                if outside.iter().any(|o| line.contains(o)) {
                    let rel = f.strip_prefix(&root).unwrap_or(f);
                    found.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "point at a file in this repository (docs/, a module) instead:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_workspace_has_its_providers() {
        let names = providers();
        for expected in ["jellyfin", "local", "plex", "tmdb", "trakt"] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
    }

    #[test]
    fn every_provider_has_its_readme_docs_page_contract_test_and_feature() {
        let root = root();
        let runner = read(&root.join("crates/ferry/Cargo.toml"));
        let linked = read(&root.join("crates/ferry/src/providers.rs"));
        let mut missing = Vec::new();
        for p in providers() {
            let dir = root.join("providers").join(&p);
            for file in ["README.md", "tests/contract.rs"] {
                if !dir.join(file).is_file() {
                    missing.push(format!("providers/{p}/{file}"));
                }
            }
            if !root.join(format!("docs/providers/{p}.md")).is_file() {
                missing.push(format!("docs/providers/{p}.md"));
            }
            let feature = format!("provider-{p} = [\"dep:{p}\"]");
            if !runner.contains(&feature) {
                missing.push(format!("crates/ferry/Cargo.toml: {feature}"));
            }
            let link = format!("use {} as _;", p.replace('-', "_"));
            if !linked.contains(&link) {
                missing.push(format!("crates/ferry/src/providers.rs: {link}"));
            }
        }
        assert!(
            missing.is_empty(),
            "missing (`cargo xtask new-provider` writes all of these):\n  {}",
            missing.join("\n  ")
        );
    }

    #[test]
    fn every_http_provider_has_the_kit_layout() {
        let root = root();
        let mut wrong = Vec::new();
        let mut http = 0;
        for p in providers() {
            let dir = root.join("providers").join(&p);
            let manifest = read(&dir.join("Cargo.toml"));
            if !dependencies(&manifest).contains("ferry-http") {
                continue;
            }
            http += 1;
            for file in LAYOUT {
                if !dir.join("src").join(file).is_file() {
                    wrong.push(format!("providers/{p}/src/{file}"));
                }
            }
        }
        assert!(http >= 5, "only {http} providers depend on ferry-http");
        assert!(
            wrong.is_empty(),
            "a provider on the kit has one layout (docs/ARCHITECTURE.md, `providers/*`); \
             missing:\n  {}",
            wrong.join("\n  ")
        );
    }

    #[test]
    fn every_contract_test_holds_its_provider_to_every_check() {
        let root = root();
        let mut lax = Vec::new();
        for p in providers() {
            let text = read(&root.join("providers").join(&p).join("tests/contract.rs"));
            let runs = text.contains("run_contract_suite(");
            let whole =
                text.contains(".assert_every_check_ran()") || text.contains(".assert_ran_all_but(");
            if !runs || !whole {
                lax.push(p);
            }
        }
        assert!(
            lax.is_empty(),
            "these contract tests do not run the suite, or accept checks that attacked \
             nothing (call `assert_every_check_ran`, or name the exceptions in \
             `assert_ran_all_but`): {lax:?}"
        );
    }

    #[test]
    fn the_dependency_table_is_cut_at_the_next_table() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\na = 1\n\n[dev-dependencies]\nferry-http = 1\n";
        assert_eq!(dependencies(manifest), "[dependencies]\na = 1\n");
        assert_eq!(dependencies("[package]\n"), "");
    }
}

//! The binary names no provider: every service it knows comes from the registry. Only
//! `providers.rs` (the `use <provider> as _;` lines `cargo xtask new-provider` writes)
//! and test modules may name one.

use std::path::{Path, PathBuf};

/// Every provider id there is: the crates in the workspace's `providers/` (folder name =
/// crate name = provider id) and whatever this build registered.
fn provider_ids() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../providers");
    let mut ids: Vec<String> = std::fs::read_dir(&root)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    for d in ferry_core::registry::providers() {
        ids.push(d.id.to_owned());
        ids.push(d.label.to_ascii_lowercase());
    }
    ids.sort();
    ids.dedup();
    ids
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of a source file before its test module (`#[cfg(test)]` then `mod`).
fn non_test(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// Where `word` occurs in `text` as a whole word, case-insensitively (1-based lines).
fn occurrences(text: &str, word: &str) -> Vec<usize> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lower = line.to_ascii_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(word) {
            let start = from + i;
            let end = start + word.len();
            let before = lower[..start].chars().next_back();
            let after = lower[end..].chars().next();
            if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
                found.push(n + 1);
                break;
            }
            from = end;
        }
    }
    found
}

#[test]
fn no_provider_is_named_outside_providers_rs() {
    let ids = provider_ids();
    assert!(
        ids.len() > 1,
        "found no provider ids to look for ({ids:?}): the test would prove nothing"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 3, "no sources under {}", src.display());
    let mut named = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("providers.rs")) {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for id in &ids {
            for line in occurrences(non_test(&text), id) {
                named.push(format!("{}:{line}: `{id}`", f.display()));
            }
        }
    }
    assert!(
        named.is_empty(),
        "the binary must learn providers from the registry (ProviderDescriptor), never by name:\n{}",
        named.join("\n")
    );
}

#[test]
fn the_scan_finds_a_name_and_skips_test_modules() {
    assert_eq!(
        occurrences("a\nkind = \"Acme\"\nacmes\n", "acme"),
        vec![2],
        "whole words only, any case"
    );
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    acme\n}\n";
    assert_eq!(non_test(text), "fn a() {}\n");
    assert_eq!(non_test("fn a() {}\n"), "fn a() {}\n");
}

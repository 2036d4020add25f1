//! Source checks that keep the engine readable by construction: no function longer than
//! [`MAX_FN_LINES`] lines.

use std::path::{Path, PathBuf};

/// The longest function the engine allows, in lines (signature to closing brace).
const MAX_FN_LINES: usize = 150;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text with string, char and comment contents blanked, so braces in them do not
/// count. Line breaks are kept.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep_newlines = |s: &[u8], out: &mut String| {
        out.extend(s.iter().filter(|c| **c == b'\n').map(|_| '\n'));
    };
    while i < b.len() {
        let rest = &b[i..];
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            i + 2 + src[i + 2..].find("*/").map_or(rest.len() - 2, |p| p + 2)
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|c| **c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            body + src[body..]
                .find(&close)
                .map_or(b.len() - body, |p| p + close.len())
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(b.len())
        } else if rest[0] == b'\'' && rest.len() > 3 && (rest[1] == b'\\' || rest[2] == b'\'') {
            i + 1
                + rest[1..]
                    .iter()
                    .skip(1)
                    .position(|c| *c == b'\'')
                    .map_or(0, |p| p + 2)
        } else {
            out.push(rest[0] as char);
            i += 1;
            continue;
        };
        keep_newlines(&b[i..end], &mut out);
        i = end;
    }
    out
}

/// Every function in `src` longer than `max` lines: `(name, first line, lines)`.
fn long_functions(src: &str, max: usize) -> Vec<(String, usize, usize)> {
    let code = code_only(src);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else {
            continue;
        };
        let mut depth = 0i32;
        let mut opened = false;
        for (k, l) in lines[start..].iter().enumerate() {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
            if opened && depth <= 0 {
                if k + 1 > max {
                    out.push((name.to_owned(), start + 1, k + 1));
                }
                break;
            }
        }
    }
    out
}

/// The function declared on this line, if any.
fn fn_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w == "fn" {
            let name = words.next()?;
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            return Some(&name[..end]);
        }
        let modifier = w.starts_with("pub") || matches!(w, "async" | "const" | "unsafe");
        if !modifier {
            return None;
        }
    }
    None
}

#[test]
fn no_engine_function_is_longer_than_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 10,
        "no sources found under {}",
        root.display()
    );
    let mut long = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap_or_default();
        for (name, line, n) in long_functions(&src, MAX_FN_LINES) {
            long.push(format!("{}:{line} `{name}`: {n} lines", f.display()));
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them into named steps):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_check_sees_through_strings_comments_and_signatures() {
    let src = r#"
pub(crate) async fn a(x: &str) -> usize {
    let s = "}}}{";
    // }
    let c = '}';
    let r = r"}";
    1
}
fn decl(&self);
fn b() {
    x();
    y();
}
"#;
    assert_eq!(long_functions(src, 7), vec![]);
    assert_eq!(long_functions(src, 6), vec![("a".to_owned(), 2, 7)]);
    assert_eq!(
        long_functions(src, 3),
        vec![("a".to_owned(), 2, 7), ("b".to_owned(), 10, 4)]
    );
}

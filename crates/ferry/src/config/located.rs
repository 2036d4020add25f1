//! Where every key of the config file is, from toml's span-preserving parse, so that any
//! error (toml's own, serde's, a provider's) names the file, the line and the dotted key,
//! and shows the line with the offending value underlined.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

/// A config problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    pub(crate) file: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
    /// The file's text and the bytes to underline, for the code frame.
    pub(crate) frame: Option<(Arc<str>, Range<usize>)>,
}

impl ConfigError {
    pub(crate) fn new(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: message.into(),
            frame: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": `{k}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some((text, span)) = &self.frame {
            write!(
                f,
                "\n{}",
                frame(&self.file, text, span.clone(), self.key.as_deref())
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The offending line(s) with the span underlined (plain text: it goes to stderr and
/// into logs).
fn frame(file: &Path, text: &str, span: Range<usize>, key: Option<&str>) -> String {
    use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
    let end = span.end.min(text.len());
    let start = span.start.min(end);
    let path = file.display().to_string();
    let label = key.unwrap_or("here");
    let report = &[Level::ERROR.primary_title("in the config file").element(
        Snippet::source(text)
            .path(path.as_str())
            .annotation(AnnotationKind::Primary.span(start..end).label(label)),
    )];
    Renderer::plain().render(report).to_string()
}

/// One key of the file: its dotted path (`providers.den.base_url`, `pairs[0].name`),
/// where the key is written and where its value is.
#[derive(Debug, Clone)]
struct KeyAt {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

/// Every key of one config file, with the text, for locating errors.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    file: PathBuf,
    text: Arc<str>,
    keys: Vec<KeyAt>,
    /// Floats written `nan` or `inf`, which no key accepts.
    non_finite: Vec<KeyAt>,
}

impl Located {
    /// Parses the text keeping spans; a syntax error is located at its line.
    pub(crate) fn parse(file: &Path, text: &str) -> Result<Located, ConfigError> {
        let doc = DeTable::parse(text).map_err(|e| {
            let mut err = ConfigError::new(file, e.message().trim());
            if let Some(span) = e.span() {
                err.line = Some(line_of(text, span.start));
                err.frame = Some((Arc::from(text), span));
            }
            err
        })?;
        let mut out = Located {
            file: file.to_path_buf(),
            text: Arc::from(text),
            keys: Vec::new(),
            non_finite: Vec::new(),
        };
        out.walk("", doc.get_ref());
        Ok(out)
    }

    fn walk(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            let at = KeyAt {
                path: path.clone(),
                key: k.span(),
                value: v.span(),
            };
            self.value(at, v.get_ref());
        }
    }

    fn value(&mut self, at: KeyAt, v: &DeValue<'_>) {
        self.keys.push(at.clone());
        match v {
            DeValue::Table(t) => self.walk(&at.path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    // An element has no key of its own: it is where it is written
                    // (a `[[pairs]]` header, or the value in an inline array).
                    let el = KeyAt {
                        path: format!("{}[{i}]", at.path),
                        key: item.span(),
                        value: item.span(),
                    };
                    self.value(el, item.get_ref());
                }
            }
            DeValue::Float(f) => {
                let raw = f.as_str().trim_start_matches(['+', '-']);
                if raw == "nan" || raw == "inf" {
                    self.non_finite.push(at);
                }
            }
            _ => {}
        }
    }

    /// The first `nan`/`inf` in the file, as an error.
    pub(crate) fn reject_non_finite(&self) -> Result<(), ConfigError> {
        match self.non_finite.first() {
            Some(at) => Err(self.error_at(
                at,
                format!(
                    "`{}` is not a finite number; write a number such as 0.10 (nan and inf are never accepted)",
                    &self.text[at.value.clone()]
                ),
            )),
            None => Ok(()),
        }
    }

    fn error_at(&self, at: &KeyAt, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: Some(line_of(&self.text, at.key.start)),
            key: Some(at.path.clone()),
            message,
            frame: Some((self.text.clone(), at.value.clone())),
        }
    }

    /// An error about the key at `path` (`providers.den.base_url`). When that key is
    /// not written in the file (a missing field), the nearest written table above it is
    /// shown, and the key named is still `path`.
    pub(crate) fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        let mut probe = path;
        loop {
            if let Some(at) = self.keys.iter().find(|k| k.path == probe) {
                let mut e = self.error_at(at, message);
                e.key = Some(path.to_owned());
                if probe != path {
                    // Point at the table's header rather than its whole body.
                    e.frame = Some((self.text.clone(), at.key.clone()));
                }
                return e;
            }
            match probe.rfind(['.', '[']) {
                Some(i) => probe = &probe[..i],
                None => {
                    let mut e = ConfigError::new(&self.file, message);
                    e.key = Some(path.to_owned());
                    return e;
                }
            }
        }
    }

    /// An error toml or serde raised at byte `span`: the innermost key whose key or
    /// value holds it.
    pub(crate) fn error_at_span(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        let message = message.into();
        let holds = |r: &Range<usize>| r.start <= span.start && span.end <= r.end.max(r.start + 1);
        // The deepest entry written at that key: `pairs[0]` rather than `pairs`.
        let on_key = self
            .keys
            .iter()
            .rev()
            .find(|k| holds(&k.key) && k.key != k.value);
        let inner = on_key.or_else(|| {
            // Tables' value spans are their headers, shared by `pairs` and `pairs[0]`:
            // on a tie the deeper entry, pushed later, wins.
            self.keys
                .iter()
                .rev()
                .filter(|k| holds(&k.value))
                .min_by_key(|k| k.value.len())
        });
        let mut e = match inner {
            Some(at) => self.error_at(at, message),
            None => ConfigError::new(&self.file, message),
        };
        e.line = Some(line_of(&self.text, span.start));
        e.frame = Some((self.text.clone(), span));
        e
    }

    /// The string literal written for `path`, as written (before `${VAR}` expansion).
    pub(crate) fn raw_string(&self, path: &str) -> Option<&str> {
        let at = self.keys.iter().find(|k| k.path == path)?;
        let raw = self.text.get(at.value.clone())?;
        Some(raw.trim_matches(['"', '\'']))
    }

    /// The line of the key at `path`.
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        let at = self.keys.iter().find(|k| k.path == path)?;
        Some(line_of(&self.text, at.key.start))
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[guardrails]\nmass_delete_ratio = nan\n\n[providers.tr]\nkind = \"trakt\"\nbase_url = \"ftp://x\"\n\n[[pairs]]\nname = \"p\"\n";

    fn located() -> Located {
        Located::parse(Path::new("/c.toml"), TEXT).unwrap()
    }

    #[test]
    fn keys_are_found_with_their_lines() {
        let l = located();
        assert_eq!(l.line("providers.tr.base_url"), Some(6));
        assert_eq!(l.line("pairs[0].name"), Some(9));
        assert_eq!(l.raw_string("providers.tr.base_url"), Some("ftp://x"));
    }

    #[test]
    fn nan_is_rejected_at_its_key_with_a_frame() {
        let e = located().reject_non_finite().unwrap_err();
        assert_eq!(e.key.as_deref(), Some("guardrails.mass_delete_ratio"));
        assert_eq!(e.line, Some(2));
        let shown = e.to_string();
        assert!(
            shown.starts_with(
                "/c.toml:2: `guardrails.mass_delete_ratio`: `nan` is not a finite number"
            ),
            "{shown}"
        );
        assert!(shown.contains("mass_delete_ratio = nan\n"), "{shown}");
        assert!(shown.contains("^^^"), "{shown}");
    }

    #[test]
    fn a_missing_key_points_at_its_table() {
        let e = located().error("providers.tr.client_id", "missing");
        assert_eq!(e.key.as_deref(), Some("providers.tr.client_id"));
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn each_array_element_is_located_at_its_own_header() {
        let text = "[[pairs]]\nname = \"a\"\n\n[[pairs]]\nsource = \"x\"\n";
        let l = Located::parse(Path::new("/c.toml"), text).unwrap();
        let e = l.error("pairs[1].name", "missing");
        assert_eq!(e.line, Some(4), "{e}");
        let header = text.rfind("[[pairs]]").unwrap();
        let e = l.error_at_span(header..header + 9, "missing field `name`");
        assert_eq!(e.key.as_deref(), Some("pairs[1]"), "{e}");
    }

    #[test]
    fn a_span_finds_the_innermost_key() {
        let off = TEXT.find("ftp").unwrap();
        let e = located().error_at_span(off..off + 3, "bad");
        assert_eq!(e.key.as_deref(), Some("providers.tr.base_url"));
        assert_eq!(e.line, Some(6));
    }
}

//! Secrets written into the config file. Like ssh with a private key, ferry warns when a
//! config file holding one literally is readable by group or others; a `${VAR}` reference
//! keeps the secret out of the file and needs no warning.

use std::path::Path;

/// Key names that hold a secret: `token`, `access_token`, `api_key`, `client_secret`,
/// `password`, ...
pub(super) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password", "api_key", "apikey"]
        .iter()
        .any(|s| k == *s || k.ends_with(&format!("_{s}")))
}

/// A value as written is a literal secret unless it is only `${VAR}` references.
pub(super) fn is_literal(raw: &str) -> bool {
    let mut rest = raw;
    let mut literal = String::new();
    while let Some(start) = rest.find("${") {
        literal.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
                literal.push('$');
            }
        }
    }
    literal.push_str(rest);
    !literal.trim().is_empty()
}

/// Whether `message` names `key`, as written (`api_key`) or in words (`base URL` for
/// `base_url`).
pub(super) fn mentions(message: &str, key: &str) -> bool {
    let msg = message.to_ascii_lowercase();
    let key = key.to_ascii_lowercase();
    [key.clone(), key.replace('_', " ")]
        .iter()
        .any(|k| has_word(&msg, k))
}

fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The warning for a config file that holds literal secrets and is readable by group
/// or others, naming the file and the keys.
#[cfg(unix)]
pub(super) fn exposure_warning(file: &Path, literal: &[(String, usize)]) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if literal.is_empty() {
        return None;
    }
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    let keys: Vec<String> = literal
        .iter()
        .map(|(k, line)| format!("{k} (line {line})"))
        .collect();
    Some(format!(
        "{} holds secrets ({}) and is readable by other users (mode {mode:04o}); run `chmod 600 {}`, or write them as ${{VAR}} references",
        file.display(),
        keys.join(", "),
        file.display()
    ))
}

#[cfg(not(unix))]
pub(super) fn exposure_warning(_file: &Path, _literal: &[(String, usize)]) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_and_literals() {
        for k in [
            "token",
            "access_token",
            "api_key",
            "client_secret",
            "password",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["client_id", "base_url", "user_id", "tokens_path"] {
            assert!(!is_secret_key(k), "{k}");
        }
        assert!(is_literal("abc123"));
        assert!(is_literal("abc${X}"));
        assert!(!is_literal("${PLEX_TOKEN}"));
        assert!(!is_literal(" ${A}${B} "));
    }

    #[test]
    fn a_message_mentions_a_key_as_written_or_in_words() {
        assert!(mentions("the base URL is not an http(s) URL", "base_url"));
        assert!(mentions("the api_key is empty", "api_key"));
        assert!(!mentions("the api_keys are empty", "api_key"));
        assert!(!mentions("client_id is empty", "id"));
    }
}

//! The configuration file: one TOML file (`--config`, else `FERRY_CONFIG`, else the
//! platform config directory). Every error names the file, the line and the key, and says
//! what was expected; the CLI exits with code 2 on any of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::{Feature, ProviderConfig};
use serde::Deserialize;

mod located;
mod secrets;

pub(crate) use located::ConfigError;
use located::Located;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mode {
    OneWay,
    TwoWay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RemoveMode {
    SourceDeletes,
    Mirror,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeatureSwitch {
    #[serde(default = "yes")]
    pub(crate) enable: bool,
    #[serde(default = "yes")]
    pub(crate) add: bool,
    #[serde(default)]
    pub(crate) remove: bool,
}

fn yes() -> bool {
    true
}

impl Default for FeatureSwitch {
    fn default() -> Self {
        FeatureSwitch {
            enable: true,
            add: true,
            remove: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PairConfig {
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) target: String,
    #[serde(default = "one_way")]
    pub(crate) mode: Mode,
    #[serde(default = "source_deletes")]
    pub(crate) remove_mode: RemoveMode,
    /// Two-way tie-break when timestamps cannot decide: `"source"` or `"target"`.
    #[serde(default)]
    pub(crate) source_of_truth: Option<String>,
    /// Minutes between runs of this pair under `ferry daemon`.
    #[serde(default)]
    pub(crate) interval_minutes: Option<u64>,
    /// Per-feature switches; a pair without this table syncs every feature both sides
    /// support, adding but never removing.
    #[serde(default)]
    pub(crate) features: BTreeMap<Feature, FeatureSwitch>,
}

fn one_way() -> Mode {
    Mode::OneWay
}

fn source_deletes() -> RemoveMode {
    RemoveMode::SourceDeletes
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuardrailsConfig {
    #[serde(default)]
    pub(crate) allow_mass_delete: bool,
    #[serde(default = "ratio")]
    pub(crate) mass_delete_ratio: f64,
    #[serde(default = "floor")]
    pub(crate) mass_delete_floor: usize,
    #[serde(default = "ttl")]
    pub(crate) tombstone_ttl_days: u32,
    #[serde(default = "tolerance")]
    pub(crate) history_tolerance_secs: u64,
    #[serde(default = "full_read_hours")]
    pub(crate) full_read_hours: u32,
    /// How long a provider that answers `down` is probed again before the run treats it
    /// as down (one blip must not make a run add-only).
    #[serde(default = "health_retry_ms")]
    pub(crate) health_retry_ms: u64,
}

fn ratio() -> f64 {
    0.10
}
fn floor() -> usize {
    5
}
fn ttl() -> u32 {
    30
}
fn tolerance() -> u64 {
    60
}
fn full_read_hours() -> u32 {
    24
}
fn health_retry_ms() -> u64 {
    5_000
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        GuardrailsConfig {
            allow_mass_delete: false,
            mass_delete_ratio: ratio(),
            mass_delete_floor: floor(),
            tombstone_ttl_days: ttl(),
            history_tolerance_secs: tolerance(),
            full_read_hours: full_read_hours(),
            health_retry_ms: health_retry_ms(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateConfig {
    #[serde(default)]
    pub(crate) path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimeConfig {
    #[serde(default)]
    pub(crate) debug: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    state: StateConfig,
    #[serde(default)]
    guardrails: GuardrailsConfig,
    #[serde(default)]
    runtime: RuntimeConfig,
    #[serde(default)]
    providers: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pairs: Vec<PairConfig>,
}

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) file: PathBuf,
    /// Absolute path of the state database.
    pub(crate) state_path: PathBuf,
    pub(crate) guardrails: GuardrailsConfig,
    pub(crate) runtime: RuntimeConfig,
    pub(crate) providers: BTreeMap<String, ProviderConfig>,
    pub(crate) pairs: Vec<PairConfig>,
    /// Where each key is written, for errors found after parsing (a provider's build).
    pub(crate) located: Arc<Located>,
    /// Keys holding a secret written literally (not `${VAR}`), with their lines.
    pub(crate) literal_secrets: Vec<(String, usize)>,
}

/// Where the config file is: `--config`, else `FERRY_CONFIG`, else the platform config
/// directory (`$XDG_CONFIG_HOME/ferry/config.toml`, `~/.config/ferry/config.toml`, or
/// `~/Library/Application Support/ferry/config.toml` on macOS).
pub(crate) fn locate(cli: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = cli {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("FERRY_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let base = if cfg!(target_os = "macos") {
        home.map(|h| h.join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".config")))
    };
    base.map(|b| b.join("ferry").join("config.toml"))
}

/// Replaces `${VAR}` with the environment's value; an unset variable is an error naming it.
fn substitute_env(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${` (expected `${VAR}`)".to_owned())?;
        let var = &after[..end];
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{var}}}` is not a valid environment variable reference"
            ));
        }
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) => {
                return Err(format!(
                    "environment variable `{var}` is not set (referenced as `${{{var}}}`)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn toml_to_json(v: &toml::Value, path: &str) -> Result<serde_json::Value, (String, String)> {
    Ok(match v {
        toml::Value::String(s) => {
            serde_json::Value::String(substitute_env(s).map_err(|m| (path.to_owned(), m))?)
        }
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) if f.is_finite() => serde_json::Value::from(*f),
        // `Located::reject_non_finite` stops these first; never let one become `null`.
        toml::Value::Float(f) => {
            return Err((path.to_owned(), format!("`{f}` is not a finite number")));
        }
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .map(|x| toml_to_json(x, path))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        toml::Value::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, x) in t {
                m.insert(k.clone(), toml_to_json(x, &format!("{path}.{k}"))?);
            }
            serde_json::Value::Object(m)
        }
    })
}

/// Parses and validates a config file's text. Provider configs are parsed by their
/// provider's own parser here; what only a provider's build checks is located by
/// [`Config::provider_error`].
pub(crate) fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let loc = Located::parse(file, text)?;
    loc.reject_non_finite()?;
    let raw: RawConfig = toml::from_str(text).map_err(|e| serde_error(file, &loc, &e))?;

    let mut providers = BTreeMap::new();
    let mut literal_secrets = Vec::new();
    for (instance, table) in &raw.providers {
        let at = |key: &str| format!("providers.{instance}.{key}");
        let kind = match table.get("kind") {
            Some(toml::Value::String(k)) => k.clone(),
            Some(_) => {
                return Err(loc.error(
                    &at("kind"),
                    format!("expected a string naming a provider: {}", kinds()),
                ));
            }
            None => {
                return Err(loc.error(
                    &at("kind"),
                    format!(
                        "missing `kind`: every provider instance names its provider: {}",
                        kinds()
                    ),
                ));
            }
        };
        let descriptor =
            ferry_core::registry::find(&kind).map_err(|e| loc.error(&at("kind"), e.message()))?;
        let mut values = serde_json::Map::new();
        for (k, v) in table.iter().filter(|(k, _)| k.as_str() != "kind") {
            let json = toml_to_json(v, &at(k)).map_err(|(path, m)| loc.error(&path, m))?;
            values.insert(k.clone(), json);
            if secrets::is_secret_key(k)
                && let Some(raw) = loc.raw_string(&at(k))
                && secrets::is_literal(raw)
            {
                literal_secrets.push((at(k), loc.line(&at(k)).unwrap_or(0)));
            }
        }
        let pc = ProviderConfig {
            instance: instance.clone(),
            kind: descriptor.id.to_owned(),
            values,
        };
        (descriptor.validate)(&pc).map_err(|e| {
            let path = match &e.field {
                Some(f) => at(f),
                None => format!("providers.{instance}"),
            };
            loc.error(
                &path,
                format!("{} (provider `{}`)", e.message, descriptor.id),
            )
        })?;
        providers.insert(instance.clone(), pc);
    }

    let mut names = std::collections::BTreeSet::new();
    for (i, p) in raw.pairs.iter().enumerate() {
        let at = |key: &str| format!("pairs[{i}].{key}");
        if !names.insert(p.name.clone()) {
            return Err(loc.error(&at("name"), format!("pair name `{}` is used twice", p.name)));
        }
        for (side, inst) in [("source", &p.source), ("target", &p.target)] {
            if !providers.contains_key(inst) {
                let known: Vec<_> = providers.keys().cloned().collect();
                return Err(loc.error(
                    &at(side),
                    format!(
                        "pair `{}` names instance `{inst}`, which is not configured; configured instances: {}",
                        p.name,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if p.source == p.target {
            return Err(loc.error(&at("target"), "a pair's source and target must differ"));
        }
        if let Some(s) = &p.source_of_truth
            && s != "source"
            && s != "target"
        {
            return Err(loc.error(
                &at("source_of_truth"),
                format!("expected \"source\" or \"target\", got \"{s}\""),
            ));
        }
    }
    let g = &raw.guardrails;
    if !(0.0..=1.0).contains(&g.mass_delete_ratio) {
        return Err(loc.error(
            "guardrails.mass_delete_ratio",
            "expected a fraction between 0 and 1, e.g. 0.10",
        ));
    }
    if g.health_retry_ms > 600_000 {
        return Err(loc.error(
            "guardrails.health_retry_ms",
            "expected at most 600000 (ten minutes); 5000 is the default, 0 probes once",
        ));
    }

    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let state_path = match &raw.state.path {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => dir.join(p),
        None => dir.join("ferry.db"),
    };
    Ok(Config {
        file: file.to_path_buf(),
        state_path,
        guardrails: raw.guardrails,
        runtime: raw.runtime,
        providers,
        pairs: raw.pairs,
        located: Arc::new(loc),
        literal_secrets,
    })
}

/// A serde error from the typed sections, at the key its span falls in. serde names an
/// unknown or missing field only in its message, so that name completes the key.
fn serde_error(file: &Path, loc: &Located, e: &toml::de::Error) -> ConfigError {
    let msg = e.message().trim().to_owned();
    let Some(span) = e.span() else {
        return ConfigError::new(file, msg);
    };
    let mut err = loc.error_at_span(span, msg.clone());
    let named = backticked(&msg);
    if msg.starts_with("unknown field")
        && let (Some(k), Some(at)) = (&named, &err.key)
    {
        // The span is the unknown key itself; `at` is already its path.
        if !at.ends_with(k.as_str()) {
            err.key = Some(format!("{at}.{k}"));
        }
    } else if msg.starts_with("missing field")
        && let Some(k) = named
    {
        err.key = Some(match &err.key {
            Some(table) => format!("{table}.{k}"),
            None => k,
        });
    }
    err
}

impl Config {
    /// A provider's build refused this instance's config: the error, at the key its
    /// message names (`the api_key is empty`, `the base URL is not ...`), else at the
    /// instance's table.
    pub(crate) fn provider_error(&self, instance: &str, message: &str) -> ConfigError {
        let kind = self
            .providers
            .get(instance)
            .map(|p| p.kind.clone())
            .unwrap_or_default();
        let key = self.providers.get(instance).and_then(|pc| {
            pc.values
                .keys()
                .filter(|k| secrets::mentions(message, k))
                .max_by_key(|k| k.len())
        });
        let path = match key {
            Some(k) => format!("providers.{instance}.{k}"),
            None => format!("providers.{instance}"),
        };
        self.located
            .error(&path, format!("{message} (provider `{kind}`)"))
    }
}

/// The kinds this binary knows, for an error about `kind`.
fn kinds() -> String {
    let ids: Vec<_> = ferry_core::registry::providers()
        .iter()
        .map(|d| format!("\"{}\"", d.id))
        .collect();
    if ids.is_empty() {
        "none is compiled into this ferry".to_owned()
    } else {
        format!("one of {}", ids.join(", "))
    }
}

fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_owned())
}

/// Reads and parses the config file. The warnings are for the user (a file that holds a
/// secret and is readable by others), not errors.
pub(crate) fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path,
            format!("cannot read the config file: {e}; pass --config PATH or set FERRY_CONFIG"),
        )
    })?;
    let cfg = parse(path, &text)?;
    let warnings = secrets::exposure_warning(path, &cfg.literal_secrets)
        .into_iter()
        .collect();
    Ok((cfg, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/ferry/config.toml"), text)
    }

    const GOOD: &str = r#"
[state]
path = "ferry.db"

[guardrails]
allow_mass_delete = false

[providers.backup]
kind = "local"

[providers.mirror]
kind = "local"
path = "/tmp/mirror"

[[pairs]]
name = "backup-to-mirror"
source = "backup"
target = "mirror"
mode = "one-way"
[pairs.features.watchlist]
add = true
remove = false
"#;

    #[test]
    fn a_good_config_loads_with_defaults() {
        let c = p(GOOD).unwrap();
        assert_eq!(c.state_path, PathBuf::from("/etc/ferry/ferry.db"));
        assert_eq!(c.pairs[0].mode, Mode::OneWay);
        assert_eq!(c.pairs[0].remove_mode, RemoveMode::SourceDeletes);
        let w = &c.pairs[0].features[&Feature::Watchlist];
        assert!(w.enable && w.add && !w.remove);
        assert_eq!(c.guardrails.mass_delete_floor, 5);
        assert_eq!(c.guardrails.full_read_hours, 24);
        assert_eq!(c.providers["mirror"].values["path"], "/tmp/mirror");
        let c = p(&GOOD.replace(
            "allow_mass_delete = false",
            "allow_mass_delete = false\nfull_read_hours = 6",
        ))
        .unwrap();
        assert_eq!(c.guardrails.full_read_hours, 6);
        let e = p(&GOOD.replace(
            "allow_mass_delete = false",
            "allow_mass_delete = false\nfull_read_hours = -1",
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("guardrails.full_read_hours"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = p(&GOOD.replace(
            "allow_mass_delete = false",
            "allow_mass_delete = false\nallow_mass_deletes = true",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(7), "{e}");
        assert_eq!(
            e.key.as_deref(),
            Some("guardrails.allow_mass_deletes"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("/etc/ferry/config.toml:7: `guardrails.allow_mass_deletes`"),
            "{e}"
        );
        // The code frame shows the line as written, the key underlined.
        assert!(
            e.to_string().contains("7 | allow_mass_deletes = true"),
            "{e}"
        );
    }

    #[test]
    fn unknown_provider_key_names_its_line() {
        let e = p(&GOOD.replace(
            "path = \"/tmp/mirror\"",
            "path = \"/tmp/mirror\"\npaht = \"x\"",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(14), "{e}");
        assert_eq!(e.key.as_deref(), Some("providers.mirror.paht"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_is_reported_with_expectation() {
        let e = p(&GOOD.replace("allow_mass_delete = false", "allow_mass_delete = \"no\""))
            .unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(
            e.key.as_deref(),
            Some("guardrails.allow_mass_delete"),
            "{e}"
        );
        assert!(
            e.message.contains("bool") || e.message.contains("boolean"),
            "{e}"
        );
        let e = p(&GOOD.replace("path = \"/tmp/mirror\"", "path = 42")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("providers.mirror.path"), "{e}");
        assert_eq!(e.line, Some(13), "{e}");
    }

    #[test]
    fn a_pair_naming_a_missing_instance() {
        let e = p(&GOOD.replace("target = \"mirror\"", "target = \"mirorr\"")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("pairs[0].target"));
        assert_eq!(e.line, Some(18));
        assert!(
            e.message.contains("`mirorr`") && e.message.contains("backup, mirror"),
            "{e}"
        );
    }

    #[test]
    fn an_instance_naming_a_provider_not_compiled_in() {
        let e = p(&GOOD.replace("kind = \"local\"\npath", "kind = \"netflix\"\npath")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("providers.mirror.kind"));
        assert_eq!(e.line, Some(12));
        assert!(
            e.message.contains("no provider `netflix`") && e.message.contains("compiled in: "),
            "{e}"
        );
    }

    #[test]
    fn an_unset_env_var_is_named() {
        let text = GOOD.replace(
            "path = \"/tmp/mirror\"",
            "path = \"${FERRY_TEST_SURELY_UNSET_VAR}/m\"",
        );
        let e = p(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("providers.mirror.path"));
        assert_eq!(e.line, Some(13));
        assert!(e.message.contains("FERRY_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn env_vars_are_substituted() {
        assert_eq!(
            substitute_env("a${HOME}b").unwrap(),
            format!("a{}b", std::env::var("HOME").unwrap())
        );
        assert!(substitute_env("${").is_err());
        assert!(substitute_env("${A-B}").is_err());
    }

    #[test]
    fn non_finite_numbers_are_refused_where_they_are_written() {
        let e = p(&GOOD.replace(
            "path = \"/tmp/mirror\"",
            "path = \"/tmp/mirror\"\npage_size = nan",
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("providers.mirror.page_size"), "{e}");
        assert_eq!(e.line, Some(14), "{e}");
        assert!(e.message.contains("not a finite number"), "{e}");
        let e =
            p(&GOOD.replace("allow_mass_delete = false", "mass_delete_ratio = -inf")).unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("guardrails.mass_delete_ratio"),
            "{e}"
        );
        assert_eq!(e.line, Some(6), "{e}");
    }

    #[test]
    fn the_health_retry_budget_is_configurable_and_bounded() {
        let c = p(&GOOD.replace("allow_mass_delete = false", "health_retry_ms = 250")).unwrap();
        assert_eq!(c.guardrails.health_retry_ms, 250);
        assert_eq!(p(GOOD).unwrap().guardrails.health_retry_ms, 5_000);
        let e =
            p(&GOOD.replace("allow_mass_delete = false", "health_retry_ms = 3600000")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("guardrails.health_retry_ms"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("at most 600000"), "{e}");
    }

    #[test]
    fn a_missing_pair_field_names_it_at_its_table() {
        let e = p(&GOOD.replace("name = \"backup-to-mirror\"\n", "")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("pairs[0].name"), "{e}");
        assert_eq!(e.line, Some(15), "{e}");
    }

    #[test]
    fn literal_secrets_are_noted_and_references_are_not() {
        let c = p(&GOOD.replace(
            "path = \"/tmp/mirror\"",
            "path = \"/tmp/mirror\"\n# a comment",
        ))
        .unwrap();
        assert!(c.literal_secrets.is_empty());
    }

    #[test]
    fn bad_toml_syntax_names_the_line() {
        let e = p("[state]\npath = \n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}

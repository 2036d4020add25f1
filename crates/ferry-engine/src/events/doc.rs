//! `docs/events.md`'s generated parts, rendered from the event declarations
//! ([`super::CATALOGUE`], [`super::NESTED`]). The hand-written prose around them stays
//! in the file; each generated part sits between `<!-- begin generated: NAME -->` and
//! `<!-- end generated: NAME -->`.

use std::fmt::Write;

use super::{CATALOGUE, EventDoc, FieldDoc, NESTED};

/// The generated parts, by name, in file order.
pub const GENERATED: &[&str] = &["schema", "catalogue", "nested"];

/// One generated part's text (without its markers); `None` for an unknown name.
pub fn generated(name: &str) -> Option<String> {
    match name {
        "schema" => Some(format!(
            "**Schema version: {}** (`ferry_core::event::EVENT_SCHEMA_VERSION`, also sent as\n`run:start.schema`).\n",
            ferry_core::event::EVENT_SCHEMA_VERSION
        )),
        "catalogue" => Some(section(CATALOGUE.iter().filter(|d| !d.debug))),
        "nested" => Some(
            section(NESTED.iter())
                + "\n## Debug events\n\n`{\"event\": \"dbg\", \"msg\": <name>, ...}`, only when debug is on.\n\n"
                + &section(CATALOGUE.iter().filter(|d| d.debug)),
        ),
        _ => None,
    }
}

fn section<'a>(docs: impl Iterator<Item = &'a EventDoc>) -> String {
    let mut out = String::new();
    for d in docs {
        out.push('\n');
        render(&mut out, d);
    }
    out
}

fn render(out: &mut String, d: &EventDoc) {
    let title = if d.names.is_empty() {
        format!("`{}`", d.ty)
    } else {
        d.names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "### {title}\n\n{}", prose(d.doc));
    if d.fields.is_empty() {
        return;
    }
    out.push_str("\n| field | type | |\n|---|---|---|\n");
    for f in d.fields {
        let _ = writeln!(out, "| {} | {} | {} |", name(f), json_type(f), cell(f.doc));
    }
}

/// Doc comment lines joined into one paragraph.
fn prose(doc: &str) -> String {
    doc.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cell(doc: &str) -> String {
    prose(doc).replace('|', "\\|")
}

fn serde_attr(f: &FieldDoc, key: &str) -> Option<String> {
    let attrs = f.serde.replace(' ', "");
    let at = attrs.find(&format!("{key}="))? + key.len() + 1;
    let rest = attrs[at..].strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

fn name(f: &FieldDoc) -> String {
    if f.serde.contains("flatten") {
        return format!("({} fields)", base_type(f));
    }
    format!(
        "`{}`",
        serde_attr(f, "rename").unwrap_or_else(|| f.name.to_owned())
    )
}

fn base_type(f: &FieldDoc) -> String {
    let t = f.ty.replace(' ', "");
    let t = t
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(&t);
    format!("[`{t}`](#{})", t.to_lowercase())
}

fn json_type(f: &FieldDoc) -> String {
    if f.serde.contains("flatten") {
        let always = !f.ty.replace(' ', "").starts_with("Option<");
        return if always {
            "flattened"
        } else {
            "flattened, optional"
        }
        .into();
    }
    let t = render_type(&f.ty.replace(' ', ""));
    if f.serde.contains("skip_serializing_if") {
        // An `Option` that is left out when empty, or a flag left out when false.
        let inner = t.strip_suffix(" or null").unwrap_or(&t);
        format!("{inner}, optional")
    } else {
        t
    }
}

fn render_type(t: &str) -> String {
    if let Some(inner) = t.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return format!("{} or null", render_type(inner));
    }
    if let Some(inner) = t.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return format!("[{}]", render_type(inner));
    }
    if let Some(inner) = t
        .strip_prefix("BTreeMap<")
        .and_then(|t| t.strip_suffix('>'))
        && let Some((k, v)) = inner.split_once(',')
    {
        return format!("{{{}: {}}}", render_type(k), render_type(v));
    }
    match t {
        "String" => "string".into(),
        "usize" | "u64" | "u32" | "i64" => "integer".into(),
        "bool" => "bool".into(),
        "Value" => "object".into(),
        "Feature" => "feature".into(),
        "HealthStatus" => "health status".into(),
        "WriteKind" => "op".into(),
        "FeatureStatus" => "feature status".into(),
        other => format!("[`{other}`](#{})", other.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_part_renders_and_nested_types_link_to_their_section() {
        for name in GENERATED {
            assert!(generated(name).is_some_and(|t| !t.is_empty()), "{name}");
        }
        let cat = generated("catalogue").unwrap_or_default();
        assert!(cat.contains("### `apply:add:done`, `apply:update:done`, `apply:remove:done`"));
        assert!(
            cat.contains("| `add_to_A` | integer |"),
            "renamed fields by their JSON name"
        );
        assert!(cat.contains("([`Scope`](#scope) fields) | flattened |"));
        let nested = generated("nested").unwrap_or_default();
        assert!(nested.contains("### `Scope`") && nested.contains("### `deletions:untrusted`"));
    }
}

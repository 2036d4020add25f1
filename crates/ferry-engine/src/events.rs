//! Event helpers. The catalogue (names, fields, schema version) is `docs/events.md`.

use ferry_core::Entry;
use serde_json::{Value, json};

/// How many items a plan preview lists.
pub const PREVIEW_ITEMS: usize = 10;

/// A small description of an entry for previews: key, type, label.
pub fn preview(e: &Entry) -> Value {
    json!({
        "key": e.key(),
        "type": e.item.kind.as_str(),
        "title": e.item.label(),
    })
}

/// The first [`PREVIEW_ITEMS`] entries, as previews.
pub fn previews<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Value> {
    entries
        .into_iter()
        .take(PREVIEW_ITEMS)
        .map(preview)
        .collect()
}

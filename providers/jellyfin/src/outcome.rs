//! Write outcomes. The shared rules live in the SDK (`ferry_core::write`'s batch writer:
//! one outcome per entry, errors that stop a batch); this module only names what a miss
//! means on this server.

use ferry_core::{Entry, Feature, Outcome};

pub(crate) fn wrong_payload(e: &Entry, feature: Feature) -> Outcome {
    Outcome::wrong_payload(e, feature)
}

/// How many titles a reason or detail names before "and N more".
const NAMED: usize = 5;

/// Up to five labels, comma-separated, then "and N more".
pub(crate) fn named(labels: &[String]) -> String {
    let mut s = labels
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if labels.len() > NAMED {
        s.push_str(&format!(" and {} more", labels.len() - NAMED));
    }
    s
}

/// A title matching nothing the server read: see [`Outcome::unmatched`].
pub(crate) fn unmatched(partial: &[String], add: bool) -> Outcome {
    Outcome::unmatched(
        partial,
        add,
        "the server holds no item with any of these ids",
    )
}

//! Memory of collapsed reads (ferry's rule, spec §6 "empty reads"): a trusted read that
//! dropped every title of a non-empty baseline is suspect the first time; the run after
//! it that reads the same collapse again from a trusted read confirms it and may act.
//! The marker is the run id of the first sighting, kept in the state's key-value table
//! per (pair, instance, feature); any read that does not collapse clears it.

use ferry_core::{Feature, KvStore};
use ferry_state::StateStore;

const NAMESPACE: &str = "engine.collapse";

fn key(pair: &str, instance: &str, feature: Feature) -> String {
    format!("{pair}\u{1f}{instance}\u{1f}{}", feature.as_str())
}

/// Whether an earlier run (not `run_id`) already saw this side's read collapse.
pub(crate) fn seen_before(
    state: &StateStore,
    pair: &str,
    instance: &str,
    feature: Feature,
    run_id: Option<i64>,
) -> bool {
    match state.get(NAMESPACE, &key(pair, instance, feature)) {
        Ok(Some(v)) => v.parse::<i64>().ok() != run_id,
        // A marker that cannot be read confirms nothing: the collapse stays suspect.
        _ => false,
    }
}

/// Records this run's sighting (`Some(run_id)`; an earlier sighting is kept) or clears
/// the marker (`None`: the read did not collapse).
pub(crate) fn record(
    state: &StateStore,
    pair: &str,
    instance: &str,
    feature: Feature,
    sighting: Option<i64>,
) -> ferry_core::Result<()> {
    let k = key(pair, instance, feature);
    match sighting {
        Some(run) => {
            if state.get(NAMESPACE, &k)?.is_none() {
                state.put(NAMESPACE, &k, &run.to_string())?;
            }
            Ok(())
        }
        None => state.delete(NAMESPACE, &k),
    }
}

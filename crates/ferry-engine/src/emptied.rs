//! Playlists read empty: the empty-read rule (`collapse.rs`, `docs/engine.md`) one
//! playlist at a time. A playlist whose committed baseline held titles and that a whole
//! read shows empty is one empty answer, and a lie looks the same: its titles would
//! leave the other side's copy in one go (updates, which the mass-delete block does not
//! count). So the run keeps the baseline's copy of that playlist (nothing looks
//! dropped, nothing is proposed from it) and remembers the sighting; a later run that
//! reads it empty again confirms it under the same checkpoint story as a collapsed list.
//! `--allow-mass-delete` confirms at once.
//!
//! The sightings of one side are kept together in the state's key-value table (one
//! value per pair, instance), replaced by every run that reads the side's playlists:
//! a playlist read with titles again loses its marker.

use std::collections::{BTreeMap, HashSet};

use ferry_core::{KvStore, Payload, Snapshot};
use ferry_state::StateStore;

use crate::collapse::{Sighting, confirms};

const NAMESPACE: &str = "engine.emptied";

fn key(pair: &str, instance: &str) -> String {
    format!("{pair}\u{1f}{instance}")
}

fn load(state: &StateStore, k: &str) -> BTreeMap<String, Sighting> {
    state
        .get(NAMESPACE, k)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

fn holds_titles(e: &ferry_core::Entry) -> bool {
    matches!(&e.payload, Payload::Playlist(p) if !p.items.is_empty())
}

/// The keys of the playlists `read` shows empty whose `baseline` copy held titles.
pub(crate) fn emptied(baseline: Option<&Snapshot>, read: &Snapshot) -> Vec<String> {
    let Some(base) = baseline else {
        return Vec::new();
    };
    read.iter()
        .filter(|(k, e)| {
            matches!(&e.payload, Payload::Playlist(p) if p.items.is_empty())
                && base.get(k).is_some_and(holds_titles)
        })
        .map(|(k, _)| k.to_owned())
        .collect()
}

/// Those of `keys` an earlier run saw emptied under a checkpoint story that a later
/// read may act on (`collapse::confirms`). A marker that cannot be read confirms nothing.
pub(crate) fn confirmed(
    state: &StateStore,
    pair: &str,
    instance: &str,
    run_id: Option<i64>,
    now_checkpoint: Option<&str>,
    keys: &[String],
) -> HashSet<String> {
    if keys.is_empty() {
        return HashSet::new();
    }
    let markers = load(state, &key(pair, instance));
    keys.iter()
        .filter(|k| {
            markers
                .get(*k)
                .is_some_and(|s| confirms(s, run_id, now_checkpoint))
        })
        .cloned()
        .collect()
}

/// Replaces the side's markers with this run's sightings. A playlist seen emptied again
/// under the checkpoint of its first sighting keeps that sighting (what a later run
/// confirms), and so does one this run could not read the checkpoint for.
pub(crate) fn record(
    state: &StateStore,
    pair: &str,
    instance: &str,
    sightings: Vec<(String, Sighting)>,
) -> ferry_core::Result<()> {
    let k = key(pair, instance);
    let old = load(state, &k);
    if sightings.is_empty() {
        return if old.is_empty() {
            Ok(())
        } else {
            state.delete(NAMESPACE, &k)
        };
    }
    let mut next = BTreeMap::new();
    for (playlist, s) in sightings {
        let kept = old
            .get(&playlist)
            .filter(|e| e.at == s.at || (s.at.is_none() && e.at.is_some()))
            .cloned();
        next.insert(playlist, kept.unwrap_or(s));
    }
    if next == old {
        return Ok(());
    }
    state.put(
        NAMESPACE,
        &k,
        &serde_json::to_string(&next).unwrap_or_default(),
    )
}

//! Memory of collapsed reads (ferry's rule, `docs/engine.md`): a whole read that
//! dropped every title of a non-empty baseline is suspect the first time. A read in a
//! later run that shows the same collapse confirms it, and the run may act, but only if
//! the checkpoints tell the story of a user emptying the list: the checkpoint had moved
//! at the first sighting (away from the one committed with the last baseline that held
//! the titles) and has not moved since (nothing was listed after the emptying). An
//! empty answer against an unmoved checkpoint is a lie however often it is repeated,
//! and a change between the two sightings starts over. Where no checkpoint was ever
//! committed with the titles (a side without checkpoints, a first run whose checkpoint
//! requests failed or that was killed), the second sighting at an unchanged checkpoint
//! confirms (a later trusted read). A run that cannot read the
//! checkpoint confirms nothing (the user can `--allow-mass-delete`).
//!
//! "The same collapse" means the same read: the confirming read holds exactly the keys
//! the first sighting held (a fingerprint of them), so a list that changed again in
//! between starts over.
//!
//! The marker is kept in the state's key-value table per (pair, instance, feature):
//! the run of the first sighting, the checkpoints around it and the read's fingerprint.
//! Any read that does not collapse clears it.

use std::hash::{Hash, Hasher};

use ferry_core::{Feature, KvStore, Snapshot};
use ferry_state::StateStore;
use serde::{Deserialize, Serialize};

const NAMESPACE: &str = "engine.collapse";
/// The keys a side's baseline holds only as evidence of a deletion not yet acted on.
const EVIDENCE: &str = "engine.evidence";

/// The first sighting of a collapse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sighting {
    pub(crate) run: i64,
    /// The side's checkpoint committed with the last baseline that still held the titles.
    pub(crate) before: Option<String>,
    /// The side's checkpoint at the first sighting.
    #[serde(default)]
    pub(crate) at: Option<String>,
    /// The fingerprint of the read at the first sighting ([`fingerprint`]).
    #[serde(default)]
    pub(crate) read: u64,
}

/// A stable fingerprint of a read's keys (they come sorted from the snapshot).
pub(crate) fn fingerprint(snap: &Snapshot) -> u64 {
    fingerprint_keys(snap.keys())
}

/// Whether a fingerprint is that of an empty read.
fn is_empty_read(fp: u64) -> bool {
    fp == fingerprint_keys(std::iter::empty())
}

/// The fingerprint of sorted keys (what [`fingerprint`] takes of a snapshot).
pub(crate) fn fingerprint_keys<'a>(keys: impl Iterator<Item = &'a str>) -> u64 {
    // FNV-1a: stable across runs and builds, unlike `DefaultHasher`'s seed policy.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for k in keys {
        k.hash(&mut h);
    }
    h.finish()
}

fn key(pair: &str, instance: &str, feature: Feature) -> String {
    format!("{pair}\u{1f}{instance}\u{1f}{}", feature.as_str())
}

fn load(state: &StateStore, k: &str) -> Option<Sighting> {
    let v = state.get(NAMESPACE, k).ok()??;
    serde_json::from_str(&v).ok()
}

/// Whether an earlier run (not `run_id`) saw this side collapse and the side's
/// checkpoint has moved since before that collapse (see the module notes). A marker
/// that cannot be read confirms nothing: the collapse stays suspect.
pub(crate) fn confirmed(
    state: &StateStore,
    pair: &str,
    instance: &str,
    feature: Feature,
    run_id: Option<i64>,
    now_checkpoint: Option<&str>,
    read: Option<&Snapshot>,
) -> bool {
    let Some(s) = load(state, &key(pair, instance, feature)) else {
        return false;
    };
    let same = read.is_some_and(|r| fingerprint(r) == s.read);
    same && confirms(&s, run_id, now_checkpoint)
}

/// Whether a sighting made by an earlier run (not `run_id`) tells the story of a user
/// emptying the list, given the checkpoint now (see the module notes).
pub(crate) fn confirms(s: &Sighting, run_id: Option<i64>, now_checkpoint: Option<&str>) -> bool {
    let earlier = Some(s.run) != run_id;
    let story = match (s.before.as_deref(), s.at.as_deref(), now_checkpoint) {
        (Some(before), Some(at), Some(now)) => at != before && now == at,
        // No checkpoint was ever committed with the titles (a side without checkpoints,
        // a first run whose checkpoint requests failed, a baseline a killed first run's
        // journal made): the second sighting, at an unchanged checkpoint, is all there
        // is (a later trusted read confirms).
        (None, Some(at), Some(now)) => now == at,
        (None, None, None) => true,
        // The checkpoint could not be read now or at the sighting: wait for a run
        // that can (`--allow-mass-delete` confirms by hand).
        _ => false,
    };
    earlier && story
}

/// Records a sighting or clears the marker (`None`: the read did not collapse). An
/// earlier sighting of the same read at the same checkpoint is kept (it is what a later
/// run confirms), and so is one when this run could not read the checkpoint; any other
/// is replaced, so a lie seen once never blocks a real emptying seen later.
pub(crate) fn record(
    state: &StateStore,
    pair: &str,
    instance: &str,
    feature: Feature,
    sighting: Option<Sighting>,
) -> ferry_core::Result<()> {
    let k = key(pair, instance, feature);
    match sighting {
        Some(s) => {
            // Kept: the same sighting again, or any sighting whose checkpoint could not
            // be read (it tells nothing new, and must not unanchor a marker that can
            // still be confirmed).
            let existing = load(state, &k);
            let keep = existing.as_ref().is_some_and(|e| {
                (e.read == s.read && e.at == s.at) || (s.at.is_none() && e.at.is_some())
            });
            let mut s = s;
            if existing.is_some_and(|e| {
                let titles_after_empty = is_empty_read(e.read) && !is_empty_read(s.read);
                e.at.is_some() && e.at == s.at && !titles_after_empty
            }) {
                // The read changed while the checkpoint did not, so one of the two is a
                // lie: whatever moved the checkpoint belongs to the earlier sighting, not
                // to this one. Except after an empty read: an empty answer is the lie a
                // service tells (docs/engine.md), a list of titles is not, so titles read
                // under the checkpoint an empty answer was given under keep its move
                // (else the user's change they show could never be confirmed).
                s.before = s.at.clone();
            }
            if !keep {
                let v = serde_json::to_string(&s).unwrap_or_default();
                state.put(NAMESPACE, &k, &v)?;
            }
            Ok(())
        }
        None => state.delete(NAMESPACE, &k),
    }
}

/// The keys the side's committed baseline holds only as evidence of its user's deletion
/// (retained by the commit until a run acts on it): the side was already seen without
/// them, so a read lacking them is no collapse.
pub(crate) fn evidence(
    state: &StateStore,
    pair: &str,
    instance: &str,
    feature: Feature,
) -> std::collections::HashSet<String> {
    state
        .get(EVIDENCE, &key(pair, instance, feature))
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

/// Replaces the side's evidence keys with those of the baseline just committed.
pub(crate) fn record_evidence(
    state: &StateStore,
    pair: &str,
    instance: &str,
    feature: Feature,
    keys: &[String],
) -> ferry_core::Result<()> {
    let k = key(pair, instance, feature);
    if keys.is_empty() {
        return state.delete(EVIDENCE, &k);
    }
    state.put(
        EVIDENCE,
        &k,
        &serde_json::to_string(keys).unwrap_or_default(),
    )
}

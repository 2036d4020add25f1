//! An in-memory inventory with the write semantics every provider should have. The local
//! file tracker persists one of these; the test fakes wrap one; simulators can use it to
//! decide what "already present" means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::feature::Feature;
use crate::identity::split_event_key;
use crate::item::{Entry, Payload};
use crate::read::Reader;
use crate::report::{Outcome, UnresolvedReason, WriteReport};
use crate::snapshot::Snapshot;

/// Two plays of one title closer than this are one play (Trakt stores minutes).
pub const HISTORY_TOLERANCE_SECS: u64 = 60;

/// Entries per feature, keyed by [`Entry::key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInventory {
    features: BTreeMap<Feature, BTreeMap<String, Entry>>,
}

impl MemoryInventory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn entries(&self, feature: Feature) -> impl Iterator<Item = &Entry> + '_ {
        self.features
            .get(&feature)
            .into_iter()
            .flat_map(|m| m.values())
    }

    pub fn len(&self, feature: Feature) -> usize {
        self.features.get(&feature).map_or(0, BTreeMap::len)
    }

    pub fn is_empty(&self) -> bool {
        self.features.values().all(BTreeMap::is_empty)
    }

    /// A snapshot of one feature: the whole inventory, read as one document.
    pub fn snapshot(&self, feature: Feature) -> Snapshot {
        let mut r = Reader::new(feature.as_str());
        for e in self.entries(feature) {
            r.keep(e.clone());
        }
        let (entries, proof) = r.finish_whole().into_parts();
        Snapshot::from_read(feature, &proof, entries)
    }

    /// Replaces one feature's entries wholesale (seeding, restores).
    pub fn replace(&mut self, feature: Feature, entries: impl IntoIterator<Item = Entry>) {
        let m = self.features.entry(feature).or_default();
        m.clear();
        for e in entries {
            m.insert(e.key(), e);
        }
    }

    /// Finds a play of the same title within the tolerance.
    fn find_play(m: &BTreeMap<String, Entry>, key: &str) -> Option<String> {
        if m.contains_key(key) {
            return Some(key.to_owned());
        }
        let (base, ts) = split_event_key(key)?;
        let prefix = format!("{base}@");
        m.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .find(|(k, _)| {
                split_event_key(k)
                    .is_some_and(|(b, t)| b == base && t.abs_diff(ts) <= HISTORY_TOLERANCE_SECS)
            })
            .map(|(k, _)| k.clone())
    }

    /// Adds or updates entries, one outcome each. An entry whose payload does not belong to
    /// `feature` is `Unresolved(Unsupported)`, never silently filed elsewhere.
    pub fn add(&mut self, feature: Feature, entries: &[Entry]) -> WriteReport {
        let mut report = WriteReport::new();
        let m = self.features.entry(feature).or_default();
        for e in entries {
            if e.feature() != feature {
                report.push(
                    e,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unsupported,
                        detail: Some(format!("a {} entry sent to {feature}", e.feature())),
                    },
                );
                continue;
            }
            let key = e.key();
            let outcome = match &e.payload {
                Payload::Watch { .. } => {
                    if Self::find_play(m, &key).is_some() {
                        Outcome::AlreadyPresent
                    } else {
                        m.insert(key, e.clone());
                        Outcome::Confirmed
                    }
                }
                _ => match m.get_mut(&key) {
                    Some(existing) if same_state(&existing.payload, &e.payload) => {
                        existing.item.ids.merge_missing(&e.item.ids);
                        Outcome::AlreadyPresent
                    }
                    Some(existing) => {
                        let mut item = e.item.clone();
                        item.ids.merge_missing(&existing.item.ids);
                        *existing = Entry::new(item, e.payload.clone());
                        Outcome::Confirmed
                    }
                    None => {
                        m.insert(key, e.clone());
                        Outcome::Confirmed
                    }
                },
            };
            report.push(e, outcome);
        }
        report
    }

    /// Removes entries, one outcome each; removing an absent entry is `AlreadyAbsent`.
    pub fn remove(&mut self, feature: Feature, entries: &[Entry]) -> WriteReport {
        let mut report = WriteReport::new();
        let m = self.features.entry(feature).or_default();
        for e in entries {
            let key = e.key();
            let found = match e.payload {
                Payload::Watch { .. } => Self::find_play(m, &key),
                _ => m.contains_key(&key).then_some(key),
            };
            let outcome = match found {
                Some(k) => {
                    m.remove(&k);
                    Outcome::Confirmed
                }
                None => Outcome::AlreadyAbsent,
            };
            report.push(e, outcome);
        }
        report
    }
}

/// Whether writing `new` over `old` would change nothing the user can see. Timestamps of
/// equal ratings are not a change: re-setting an equal rating must not bump its date.
fn same_state(old: &Payload, new: &Payload) -> bool {
    match (old, new) {
        (Payload::Watchlist { .. }, Payload::Watchlist { .. }) => true,
        (Payload::Rating { rating: a, .. }, Payload::Rating { rating: b, .. }) => a == b,
        (Payload::Progress { position_ms: a, .. }, Payload::Progress { position_ms: b, .. }) => {
            a == b
        }
        (Payload::Playlist(a), Payload::Playlist(b)) => {
            a.items.len() == b.items.len()
                && a.items
                    .iter()
                    .zip(&b.items)
                    .all(|(x, y)| x.key() == y.key())
                && a.description == b.description
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{IdKind, Ids};
    use crate::item::{Item, Rating};
    use crate::time::Timestamp;

    fn m(n: &str) -> Item {
        Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, n))
    }

    #[test]
    fn plays_within_tolerance_are_one_play() {
        let mut inv = MemoryInventory::new();
        let r = inv.add(
            Feature::History,
            &[Entry::watch(m("1"), Timestamp::from_unix(1000))],
        );
        assert_eq!(r.confirmed(), 1);
        let r = inv.add(
            Feature::History,
            &[
                Entry::watch(m("1"), Timestamp::from_unix(1059)),
                Entry::watch(m("1"), Timestamp::from_unix(2000)),
            ],
        );
        assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent);
        assert_eq!(r.items[1].outcome, Outcome::Confirmed);
        assert_eq!(inv.len(Feature::History), 2);
        let r = inv.remove(
            Feature::History,
            &[Entry::watch(m("1"), Timestamp::from_unix(1030))],
        );
        assert_eq!(r.confirmed(), 1);
        assert_eq!(inv.len(Feature::History), 1);
    }

    #[test]
    fn equal_ratings_are_not_rewritten() {
        let mut inv = MemoryInventory::new();
        let seven = Rating::new(7).unwrap();
        inv.add(
            Feature::Ratings,
            &[Entry::rating(m("1"), seven, Some(Timestamp::from_unix(1)))],
        );
        let r = inv.add(
            Feature::Ratings,
            &[Entry::rating(m("1"), seven, Some(Timestamp::from_unix(99)))],
        );
        assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent);
        let e = inv.entries(Feature::Ratings).next().unwrap();
        assert_eq!(
            e.payload.changed_at(),
            Some(Timestamp::from_unix(1)),
            "date not bumped"
        );
        let r = inv.add(
            Feature::Ratings,
            &[Entry::rating(m("1"), Rating::new(9).unwrap(), None)],
        );
        assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    }

    #[test]
    fn wrong_feature_payload_is_unresolved() {
        let mut inv = MemoryInventory::new();
        let r = inv.add(
            Feature::Watchlist,
            &[Entry::watch(m("1"), Timestamp::from_unix(1))],
        );
        assert!(matches!(
            r.items[0].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::Unsupported,
                ..
            }
        ));
        assert!(inv.is_empty());
    }

    #[test]
    fn removing_absent_is_harmless() {
        let mut inv = MemoryInventory::new();
        let r = inv.remove(Feature::Watchlist, &[Entry::watchlist(m("1"))]);
        assert_eq!(r.items[0].outcome, Outcome::AlreadyAbsent);
    }
}

//! Snapshots: what a provider holds for one feature, *and how sure it is*.

use std::collections::BTreeMap;
use std::collections::btree_map;

use serde::{Deserialize, Serialize};

use crate::feature::Feature;
use crate::item::{Entry, Payload};
use crate::read::Proof;

/// Whether a snapshot is the provider's whole inventory.
///
/// ferry's rule: only a `Complete` snapshot may ever produce a removal. A failed page, a
/// count that disagrees with the server's declared total, or a truncated page makes the
/// snapshot `Partial`, and the planner then treats everything missing as "unknown", never
/// as "deleted".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Completeness {
    Complete,
    Partial { reason: String },
}

impl Completeness {
    pub fn is_complete(&self) -> bool {
        matches!(self, Completeness::Complete)
    }
}

/// What a snapshot's absence of an item means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexSemantics {
    /// The snapshot is the full inventory: an absent item is not there.
    Present,
    /// The snapshot holds only changes since the last read: an absent item is unknown.
    Delta,
}

/// A provider's items for one feature, keyed by [`Entry::key`]. Serializable for
/// reports, never deserializable: that would be a way round the reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
///
/// No public constructor yields a `Complete` snapshot out of nothing: a provider's read
/// becomes one only through [`crate::read`] (a reader that proved it), the engine's
/// stored state through [`Snapshot::committed_baseline`].
pub struct Snapshot {
    feature: Feature,
    completeness: Completeness,
    semantics: IndexSemantics,
    entries: BTreeMap<String, Entry>,
}

impl Snapshot {
    fn empty_complete(feature: Feature) -> Self {
        Snapshot {
            feature,
            completeness: Completeness::Complete,
            semantics: IndexSemantics::Present,
            entries: BTreeMap::new(),
        }
    }

    /// A snapshot of one finished read ([`crate::read`]): `Complete` only when the read
    /// proved it, else `Partial` with the read's reasons.
    pub fn from_read(
        feature: Feature,
        proof: &Proof,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Self {
        let mut s = Snapshot::empty_complete(feature);
        s.extend(entries);
        if let Some(reason) = proof.reason() {
            s.mark_partial(reason);
        }
        s
    }

    /// A committed baseline: entries the engine stored after it judged the read that
    /// produced them complete. For the engine's own state only, never for a provider's
    /// read (those go through [`crate::read`]).
    pub fn committed_baseline(feature: Feature, entries: impl IntoIterator<Item = Entry>) -> Self {
        let mut s = Snapshot::empty_complete(feature);
        s.extend(entries);
        s
    }

    pub fn feature(&self) -> Feature {
        self.feature
    }

    pub fn completeness(&self) -> &Completeness {
        &self.completeness
    }

    pub fn semantics(&self) -> IndexSemantics {
        self.semantics
    }

    pub fn partial(
        feature: Feature,
        entries: impl IntoIterator<Item = Entry>,
        reason: impl Into<String>,
    ) -> Self {
        let mut s = Snapshot::empty_complete(feature);
        s.extend(entries);
        s.mark_partial(reason);
        s
    }

    pub fn with_semantics(mut self, semantics: IndexSemantics) -> Self {
        self.semantics = semantics;
        self
    }

    /// Downgrades to `Partial`. A second reason is appended, never replaces the first.
    pub fn mark_partial(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        self.completeness = match std::mem::replace(&mut self.completeness, Completeness::Complete)
        {
            Completeness::Complete => Completeness::Partial { reason },
            Completeness::Partial { reason: prev } => Completeness::Partial {
                reason: format!("{prev}; {reason}"),
            },
        };
    }

    pub fn is_complete(&self) -> bool {
        self.completeness.is_complete()
    }

    /// Adds an entry under its key. Two entries with one key are merged: ids are united,
    /// the newer rating or progress wins; an existing watch event is kept.
    pub fn insert(&mut self, entry: Entry) {
        let key = entry.key();
        match self.entries.entry(key) {
            btree_map::Entry::Vacant(v) => {
                v.insert(entry);
            }
            btree_map::Entry::Occupied(mut o) => merge_into(o.get_mut(), entry),
        }
    }

    pub fn extend(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for e in entries {
            self.insert(e);
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Entry)> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        self.entries.keys().map(String::as_str)
    }

    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> + ExactSizeIterator + '_ {
        self.entries.values()
    }

    pub fn into_entries(self) -> impl Iterator<Item = (String, Entry)> {
        self.entries.into_iter()
    }
}

fn merge_into(existing: &mut Entry, new: Entry) {
    existing.item.ids.merge_missing(&new.item.ids);
    existing.item.show_ids.merge_missing(&new.item.show_ids);
    if existing.item.title.is_none() {
        existing.item.title = new.item.title;
    }
    if existing.item.year.is_none() {
        existing.item.year = new.item.year;
    }
    let newer = match (existing.payload.changed_at(), new.payload.changed_at()) {
        (Some(a), Some(b)) => b > a,
        (None, Some(_)) => true,
        _ => false,
    };
    let replace = match (&existing.payload, &new.payload) {
        (Payload::Rating { .. }, Payload::Rating { .. })
        | (Payload::Progress { .. }, Payload::Progress { .. }) => newer,
        _ => false,
    };
    if replace {
        existing.payload = new.payload;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{IdKind, Ids};
    use crate::item::{Item, Rating};
    use crate::time::Timestamp;

    #[test]
    fn partial_reasons_accumulate() {
        let mut s = Snapshot::committed_baseline(Feature::Watchlist, []);
        assert!(s.is_complete());
        s.mark_partial("page 3 failed");
        s.mark_partial("count 90 != declared 100");
        assert_eq!(
            s.completeness,
            Completeness::Partial {
                reason: "page 3 failed; count 90 != declared 100".into()
            }
        );
    }

    #[test]
    fn duplicate_keys_merge_ids_and_keep_newest_rating() {
        let a = Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, "1"));
        let b = Item::movie(
            "M",
            2000,
            Ids::new().with(IdKind::Tmdb, "1").with(IdKind::Imdb, "tt2"),
        );
        let mut s = Snapshot::committed_baseline(Feature::Ratings, []);
        s.insert(Entry::rating(
            a,
            Rating::new(5).unwrap(),
            Some(Timestamp::from_unix(10)),
        ));
        s.insert(Entry::rating(
            b,
            Rating::new(9).unwrap(),
            Some(Timestamp::from_unix(20)),
        ));
        assert_eq!(s.len(), 1);
        let e = s.get("tmdb:1").unwrap();
        assert_eq!(e.item.ids.get(IdKind::Imdb), Some("tt2"));
        assert!(matches!(e.payload, Payload::Rating { rating, .. } if rating.get() == 9));
    }
}

//! What a provider holds of one list, findable by title the way the engine matches titles
//! ([`AliasIndex`]), each title with a value: `()` for a watchlist, the rating, the plays
//! of a history. Writes plan against it (already there? which play id?) and keep it in
//! step with what they confirmed, so a provider need not re-read a list per batch.

use std::collections::HashMap;

use crate::identity::AliasIndex;
use crate::item::Item;
use crate::memory::HISTORY_TOLERANCE_SECS;
use crate::time::Timestamp;

/// Titles with a value each. A title is found by its key, then by a strong id, then by
/// any id it shares with a held title (the engine's matching rules).
#[derive(Debug, Clone)]
pub struct TitleIndex<V> {
    index: AliasIndex,
    values: HashMap<String, V>,
}

impl<V> Default for TitleIndex<V> {
    fn default() -> Self {
        TitleIndex {
            index: AliasIndex::new(),
            values: HashMap::new(),
        }
    }
}

impl<V> TitleIndex<V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key `item` is held under, if it is held.
    fn held_key(&self, item: &Item) -> Option<String> {
        let k = self.index.find(&item.key(), item)?;
        self.values.contains_key(k).then(|| k.to_owned())
    }

    pub fn get(&self, item: &Item) -> Option<&V> {
        let k = self.index.find(&item.key(), item)?;
        self.values.get(k)
    }

    pub fn get_mut(&mut self, item: &Item) -> Option<&mut V> {
        let k = self.held_key(item)?;
        self.values.get_mut(&k)
    }

    pub fn contains(&self, item: &Item) -> bool {
        self.get(item).is_some()
    }

    /// The key `item` is (or is now) indexed under.
    fn key_for(&mut self, item: &Item) -> String {
        match self.index.find(&item.key(), item) {
            Some(k) => k.to_owned(),
            None => {
                let k = item.key();
                self.index.insert(&k, item);
                k
            }
        }
    }

    /// Holds `item` with `value`, replacing the value of the title it matches.
    pub fn insert(&mut self, item: &Item, value: V) {
        let key = self.key_for(item);
        self.values.insert(key, value);
    }

    /// The value of the title `item` matches, inserted with `make` when it is not held.
    pub fn get_or_insert_with(&mut self, item: &Item, make: impl FnOnce() -> V) -> &mut V {
        let key = self.key_for(item);
        self.values.entry(key).or_insert_with(make)
    }

    /// Stops holding the title `item` matches; its value.
    pub fn remove(&mut self, item: &Item) -> Option<V> {
        let k = self.held_key(item)?;
        self.values.remove(&k)
    }

    /// Titles held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The play of `plays` nearest to `at` within [`HISTORY_TOLERANCE_SECS`]: the same viewing
/// as written by two services whose clocks or rounding differ.
pub fn nearest_play<P>(plays: &[(Timestamp, P)], at: Timestamp) -> Option<usize> {
    plays
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| t.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
        .min_by_key(|(_, (t, _))| t.abs_diff(at))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{IdKind, Ids};

    fn movie(pairs: &[(IdKind, &str)]) -> Item {
        Item::movie("M", 2000, Ids::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn titles_are_found_by_any_shared_id_and_can_be_removed_and_held_again() {
        let mut t = TitleIndex::new();
        t.insert(&movie(&[(IdKind::Tmdb, "603")]), 7u8);
        let other_spelling = movie(&[(IdKind::Tmdb, "603"), (IdKind::Imdb, "tt0133093")]);
        assert_eq!(t.get(&other_spelling), Some(&7));
        *t.get_mut(&other_spelling).unwrap() = 8;
        assert_eq!(t.remove(&movie(&[(IdKind::Tmdb, "603")])), Some(8));
        assert!(!t.contains(&other_spelling));
        assert!(t.is_empty());
        t.get_or_insert_with(&other_spelling, || 1);
        assert_eq!(t.get(&movie(&[(IdKind::Tmdb, "603")])), Some(&1));
        assert_eq!(t.len(), 1);
        assert!(!t.contains(&movie(&[(IdKind::Tmdb, "604")])));
    }

    #[test]
    fn the_nearest_play_within_the_tolerance_is_found() {
        let t = |s: i64| Timestamp::from_unix(1_700_000_000 + s);
        let plays = [(t(0), 'a'), (t(50), 'b'), (t(10_000), 'c')];
        assert_eq!(nearest_play(&plays, t(40)), Some(1));
        assert_eq!(nearest_play(&plays, t(-30)), Some(0));
        assert_eq!(nearest_play(&plays, t(5_000)), None);
    }
}

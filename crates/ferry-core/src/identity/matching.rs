use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::identity::key::{alias_tokens, strong_tokens};
use crate::item::{Item, MediaType};

/// Finds the item on the other side that is "the same title" (rules in `mod.rs`): exact key, then
/// strong-id overlap (tmdb/imdb/tvdb/trakt), then the alias index over every id.
///
/// Tokens are stored as 64-bit hashes so an index over a million items stays small; a hash
/// collision could only make an item look present (and so not be added), never make one
/// look deleted.
#[derive(Debug, Clone, Default)]
pub struct AliasIndex {
    keys: Vec<(String, MediaType)>,
    by_key: HashMap<u64, u32>,
    by_strong: HashMap<u64, u32>,
    by_alias: HashMap<u64, u32>,
}

fn h(s: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    s.hash(&mut hasher);
    hasher.finish()
}

impl AliasIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        AliasIndex {
            keys: Vec::with_capacity(n),
            by_key: HashMap::with_capacity(n),
            by_strong: HashMap::with_capacity(n * 2),
            by_alias: HashMap::with_capacity(n * 2),
        }
    }

    /// Builds an index over `(key, item)` pairs.
    pub fn build<'a>(entries: impl IntoIterator<Item = (&'a str, &'a Item)>) -> Self {
        let it = entries.into_iter();
        let mut idx = AliasIndex::with_capacity(it.size_hint().0);
        for (k, item) in it {
            idx.insert(k, item);
        }
        idx
    }

    /// Adds one item; the first item to claim a token keeps it.
    pub fn insert(&mut self, key: &str, item: &Item) {
        let n = self.keys.len() as u32;
        self.keys.push((key.to_owned(), item.kind));
        self.by_key.entry(h(key)).or_insert(n);
        for t in strong_tokens(item) {
            self.by_strong.entry(h(&t)).or_insert(n);
        }
        for t in alias_tokens(item) {
            self.by_alias.entry(h(&t)).or_insert(n);
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of the matching item, if any. Items of a different media type never match:
    /// TMDB numbers movies and shows independently.
    pub fn find(&self, key: &str, item: &Item) -> Option<&str> {
        let hit = |i: u32| {
            let (k, kind) = &self.keys[i as usize];
            (*kind == item.kind).then_some(k.as_str())
        };
        if let Some(k) = self.by_key.get(&h(key)).and_then(|i| hit(*i)) {
            return Some(k);
        }
        for t in strong_tokens(item) {
            if let Some(k) = self.by_strong.get(&h(&t)).and_then(|i| hit(*i)) {
                return Some(k);
            }
        }
        for t in alias_tokens(item) {
            if let Some(k) = self.by_alias.get(&h(&t)).and_then(|i| hit(*i)) {
                return Some(k);
            }
        }
        None
    }

    pub fn contains(&self, key: &str, item: &Item) -> bool {
        self.find(key, item).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{IdKind, Ids, canonical_key};

    fn movie(pairs: &[(IdKind, &str)]) -> Item {
        Item::movie("M", 2000, Ids::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn matches_by_exact_key_strong_then_alias() {
        let a = movie(&[(IdKind::Tmdb, "603"), (IdKind::Imdb, "tt0133093")]);
        let b = movie(&[(IdKind::Imdb, "tt0133093"), (IdKind::Slug, "the-matrix")]);
        let c = movie(&[(IdKind::Simkl, "77"), (IdKind::Mal, "5")]);
        let idx = AliasIndex::build([("tmdb:603", &a), ("mal:5", &c)]);
        assert_eq!(idx.find("tmdb:603", &a), Some("tmdb:603"));
        assert_eq!(
            idx.find(&canonical_key(&b), &b),
            Some("tmdb:603"),
            "strong imdb overlap"
        );
        let c2 = movie(&[(IdKind::Simkl, "77")]);
        assert_eq!(
            idx.find(&canonical_key(&c2), &c2),
            Some("mal:5"),
            "alias over all ids"
        );
        let d = movie(&[(IdKind::Tmdb, "1")]);
        assert_eq!(idx.find(&canonical_key(&d), &d), None);
    }

    #[test]
    fn different_media_types_never_match() {
        let m = movie(&[(IdKind::Tmdb, "1399")]);
        let s = Item::show("GoT", 2011, Ids::new().with(IdKind::Tmdb, "1399"));
        let idx = AliasIndex::build([("tmdb:1399", &m)]);
        assert_eq!(idx.find("tmdb:1399", &s), None);
    }
}

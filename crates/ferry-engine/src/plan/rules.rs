//! Per-feature conflict rules for titles present on both sides.

use std::collections::HashSet;

use ferry_core::{Entry, Item, Payload, Playlist};

use super::Side;

/// Ratings: equal values are never rewritten; otherwise the newer `rated_at` wins, then
/// `truth`. `None` means nothing to write.
pub(crate) fn rating_winner(a: &Payload, b: &Payload, truth: Side) -> Option<Side> {
    let (
        Payload::Rating {
            rating: ra,
            rated_at: ta,
        },
        Payload::Rating {
            rating: rb,
            rated_at: tb,
        },
    ) = (a, b)
    else {
        return None;
    };
    if ra == rb {
        return None;
    }
    match (ta, tb) {
        (Some(x), Some(y)) if x > y => Some(Side::A),
        (Some(x), Some(y)) if y > x => Some(Side::B),
        _ => Some(truth),
    }
}

/// Progress: moves within `tol_ms` are nothing; otherwise the newer `progress_at` wins,
/// and without two different timestamps the further position wins (never regress).
pub(crate) fn progress_winner(a: &Payload, b: &Payload, tol_ms: u64) -> Option<Side> {
    let (
        Payload::Progress {
            position_ms: pa,
            progress_at: ta,
            ..
        },
        Payload::Progress {
            position_ms: pb,
            progress_at: tb,
            ..
        },
    ) = (a, b)
    else {
        return None;
    };
    if pa.abs_diff(*pb) <= tol_ms {
        return None;
    }
    match (ta, tb) {
        (Some(x), Some(y)) if x > y => Some(Side::A),
        (Some(x), Some(y)) if y > x => Some(Side::B),
        _ if pa > pb => Some(Side::A),
        _ => Some(Side::B),
    }
}

fn item_keys(p: &Playlist) -> Vec<String> {
    p.items.iter().map(ferry_core::Item::key).collect()
}

/// Titles a side dropped from a playlist since its baseline.
pub(crate) fn dropped_since(now: &Playlist, baseline: Option<&Playlist>) -> HashSet<String> {
    let Some(base) = baseline else {
        return HashSet::new();
    };
    let have: HashSet<String> = item_keys(now).into_iter().collect();
    item_keys(base)
        .into_iter()
        .filter(|k| !have.contains(k))
        .collect()
}

/// Merges two versions of one ordered playlist: `pref`'s order, minus what `other`
/// dropped (when its drops count), plus `other`'s titles that `pref` lacks and did not
/// drop itself, appended in `other`'s order.
pub(crate) fn merge_playlists(
    pref: &Playlist,
    other: &Playlist,
    dropped_by_pref: &HashSet<String>,
    dropped_by_other: &HashSet<String>,
) -> Playlist {
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(pref.items.len().max(other.items.len()));
    for it in &pref.items {
        let k = it.key();
        if !dropped_by_other.contains(&k) && seen.insert(k) {
            items.push(it.clone());
        }
    }
    let pref_keys: HashSet<String> = item_keys(pref).into_iter().collect();
    for it in &other.items {
        let k = it.key();
        if !pref_keys.contains(&k) && !dropped_by_pref.contains(&k) && seen.insert(k) {
            items.push(it.clone());
        }
    }
    Playlist {
        name: pref.name.clone(),
        description: pref
            .description
            .clone()
            .or_else(|| other.description.clone()),
        items,
    }
}

/// Puts back into `merged` the titles of `kept` that `now` holds, each after the title
/// that precedes it in `now` (at the front when none does). Linear: a blocked mass drop
/// can put back thousands.
pub(crate) fn keep_in_place(
    merged: &mut ferry_core::Playlist,
    now: &ferry_core::Playlist,
    kept: &HashSet<String>,
) {
    let present: HashSet<String> = item_keys(merged).into_iter().collect();
    // Each kept title goes after the last title before it in `now` that `merged` holds
    // (kept titles in a row stay together, in `now`'s order).
    let mut front = Vec::new();
    let mut after: std::collections::HashMap<String, Vec<Item>> = Default::default();
    let mut anchor: Option<String> = None;
    for it in &now.items {
        let k = it.key();
        if present.contains(&k) {
            anchor = Some(k);
        } else if kept.contains(&k) {
            match &anchor {
                Some(a) => after.entry(a.clone()).or_default().push(it.clone()),
                None => front.push(it.clone()),
            }
        }
    }
    if front.is_empty() && after.is_empty() {
        return;
    }
    let mut items = front;
    for it in std::mem::take(&mut merged.items) {
        let k = it.key();
        items.push(it);
        if let Some(more) = after.remove(&k) {
            items.extend(more);
        }
    }
    merged.items = items;
}

/// Whether two playlists hold the same titles in the same order.
pub(crate) fn same_playlist(a: &Playlist, b: &Playlist) -> bool {
    a.items.len() == b.items.len()
        && a.items
            .iter()
            .zip(&b.items)
            .all(|(x, y)| x.key() == y.key())
        && (a.description == b.description || b.description.is_none())
}

pub(crate) fn playlist_of(e: &Entry) -> Option<&Playlist> {
    match &e.payload {
        Payload::Playlist(p) => Some(p),
        _ => None,
    }
}

/// The entry to write when `from` wins over `to`: the target's own item (so the provider
/// finds it, and the key stays the one the target files it under) with `from`'s payload.
pub(crate) fn update_entry(from: &Entry, to: &Entry) -> Entry {
    Entry::new(to.item.clone(), from.payload.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{IdKind, Ids, Item, Rating, Timestamp};

    fn r(v: u8, at: Option<i64>) -> Payload {
        Payload::Rating {
            rating: Rating::new(v).unwrap(),
            rated_at: at.map(Timestamp::from_unix),
        }
    }

    fn p(pos: u64, at: Option<i64>) -> Payload {
        Payload::Progress {
            position_ms: pos,
            duration_ms: None,
            progress_at: at.map(Timestamp::from_unix),
        }
    }

    #[test]
    fn ratings_equal_values_are_never_rewritten_then_newest_then_truth() {
        assert_eq!(rating_winner(&r(7, Some(1)), &r(7, Some(9)), Side::A), None);
        assert_eq!(
            rating_winner(&r(7, Some(1)), &r(8, Some(9)), Side::A),
            Some(Side::B)
        );
        assert_eq!(
            rating_winner(&r(7, Some(10)), &r(8, Some(9)), Side::B),
            Some(Side::A)
        );
        assert_eq!(
            rating_winner(&r(7, None), &r(8, Some(9)), Side::B),
            Some(Side::B)
        );
        assert_eq!(
            rating_winner(&r(7, Some(5)), &r(8, Some(5)), Side::A),
            Some(Side::A)
        );
    }

    #[test]
    fn progress_newest_wins_and_never_regresses_without_timestamps() {
        assert_eq!(
            progress_winner(&p(1000, None), &p(20_000, None), 30_000),
            None
        );
        assert_eq!(
            progress_winner(&p(100_000, None), &p(10_000, None), 30_000),
            Some(Side::A)
        );
        assert_eq!(
            progress_winner(&p(10_000, None), &p(100_000, Some(1)), 30_000),
            Some(Side::B)
        );
        assert_eq!(
            progress_winner(&p(10_000, Some(9)), &p(100_000, Some(1)), 30_000),
            Some(Side::A),
            "a newer rewind wins"
        );
    }

    /// Movie `n` (its tmdb id is `n`).
    fn m(n: &str) -> Item {
        Item::movie(n, 2000, Ids::new().with(IdKind::Tmdb, n))
    }

    /// A playlist of movies.
    fn pl(items: &[&str]) -> Playlist {
        Playlist {
            name: "L".into(),
            description: None,
            items: items.iter().map(|n| m(n)).collect(),
        }
    }

    #[test]
    fn playlists_merge_keeps_order_and_honours_drops() {
        let base = pl(&["1", "2", "3"]);
        let a = pl(&["3", "1", "2", "4"]);
        let b = pl(&["1", "3", "5"]);
        let merged = merge_playlists(
            &a,
            &b,
            &dropped_since(&a, Some(&base)),
            &dropped_since(&b, Some(&base)),
        );
        let keys: Vec<String> = merged.items.iter().map(Item::key).collect();
        assert_eq!(keys, ["tmdb:3", "tmdb:1", "tmdb:4", "tmdb:5"]);
        let no_drops = merge_playlists(&a, &b, &HashSet::new(), &HashSet::new());
        assert_eq!(no_drops.items.len(), 5);
    }

    #[test]
    fn kept_titles_go_back_where_the_side_holds_them() {
        let keys = |p: &Playlist| -> Vec<String> { p.items.iter().map(Item::key).collect() };
        let now = pl(&["1", "2", "4", "6", "3"]);
        let kept: HashSet<String> = ["1", "4", "6", "9"].iter().map(|n| m(n).key()).collect();
        let mut merged = pl(&["2", "3", "5"]);
        keep_in_place(&mut merged, &now, &kept);
        // 1 before every title merged holds; 4 and 6 (in a row) after 2; 9 not held.
        assert_eq!(
            keys(&merged),
            ["tmdb:1", "tmdb:2", "tmdb:4", "tmdb:6", "tmdb:3", "tmdb:5"]
        );
        let mut unchanged = pl(&["2", "3"]);
        keep_in_place(&mut unchanged, &pl(&["2", "3"]), &kept);
        assert_eq!(keys(&unchanged), ["tmdb:2", "tmdb:3"]);
    }
}

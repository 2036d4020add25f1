//! The request bound a first sync must stay within, O(N / page + N / batch), and how the
//! simulators' request counts are grouped to compare with it.

use std::collections::BTreeMap;

use ferry_core::Feature;
use serde_json::{Value, json};

/// Requests allowed besides pages and batches, whatever N: health checks, the account's
/// settings, change checkpoints (11 for Jellyfin, 7 for Trakt when this was written).
pub(crate) const CONSTANT: u64 = 16;

/// What one feature of a first sync works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FeatureShape {
    pub(crate) feature: Feature,
    /// Titles the sync writes.
    pub(crate) items: u64,
    /// Rows the target's read of the feature pages through.
    pub(crate) held: u64,
    pub(crate) page: u64,
    /// Titles one write request carries.
    pub(crate) per_write: u64,
    /// Reads a write needs before it is sent.
    pub(crate) reads_per_write: u64,
}

impl FeatureShape {
    /// An empty list still costs the one request that says so.
    fn pages(&self) -> u64 {
        self.held.div_ceil(self.page.max(1)).max(1)
    }

    fn writes(&self) -> u64 {
        self.items.div_ceil(self.per_write.max(1))
    }
}

/// The bound of a whole sync: every feature read once, its writes, the reads its writes
/// need, and [`CONSTANT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bound {
    pub(crate) pages: u64,
    pub(crate) writes: u64,
    pub(crate) write_reads: u64,
}

impl Bound {
    pub(crate) fn of(shapes: &[FeatureShape]) -> Bound {
        shapes.iter().fold(Bound::default(), |b, s| Bound {
            pages: b.pages + s.pages(),
            writes: b.writes + s.writes(),
            write_reads: b.write_reads + s.writes() * s.reads_per_write,
        })
    }

    /// Reads the sync may make.
    pub(crate) fn reads(&self) -> u64 {
        self.pages + self.write_reads + CONSTANT
    }

    pub(crate) fn total(&self) -> u64 {
        self.reads() + self.writes
    }

    /// Requests made beyond the pages, writes and write reads (negative when fewer pages
    /// were read than the bound counts): constant in N on a linear write path.
    pub(crate) fn remainder(&self, requests: u64) -> i64 {
        let counted = self.pages + self.writes + self.write_reads;
        i64::try_from(requests).unwrap_or(i64::MAX) - i64::try_from(counted).unwrap_or(i64::MAX)
    }

    pub(crate) fn to_json(self) -> Value {
        json!({
            "pages": self.pages,
            "writes": self.writes,
            "write_reads": self.write_reads,
            "constant": CONSTANT,
            "reads": self.reads(),
            "total": self.total(),
        })
    }
}

/// A path segment that names one item (a number, or a hex id of 16 digits or more) is
/// replaced by `{id}`, so per-item routes count as one route.
fn segment(s: &str) -> &str {
    let number = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex_id = s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if number || hex_id { "{id}" } else { s }
}

/// `POST /UserPlayedItems/0af1…` → `POST /UserPlayedItems/{id}`.
pub(crate) fn route_class(route: &str) -> String {
    let (method, path) = route.split_once(' ').unwrap_or(("", route));
    let path: Vec<&str> = path.split('/').map(segment).collect();
    format!("{method} {}", path.join("/"))
}

/// Counts per route class.
pub(crate) fn classes(routes: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (route, n) in routes {
        *out.entry(route_class(route)).or_default() += n;
    }
    out
}

/// Reads (GET) and writes (any other verb).
pub(crate) fn split(routes: &BTreeMap<String, u64>) -> (u64, u64) {
    routes.iter().fold((0, 0), |(r, w), (k, n)| {
        if k.starts_with("GET ") {
            (r + n, w)
        } else {
            (r, w + n)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(feature: Feature, items: u64, held: u64, per_write: u64, rpw: u64) -> FeatureShape {
        FeatureShape {
            feature,
            items,
            held,
            page: 250,
            per_write,
            reads_per_write: rpw,
        }
    }

    #[test]
    fn the_bound_counts_pages_batches_and_the_reads_batches_need() {
        // Trakt-like: empty lists (one page each), batches of 100, history reads per batch.
        let b = Bound::of(&[
            shape(Feature::Watchlist, 1_000, 0, 100, 0),
            shape(Feature::History, 1_000, 0, 100, 1),
        ]);
        assert_eq!((b.pages, b.writes, b.write_reads), (2, 20, 10));
        assert_eq!(b.total(), 2 + 20 + 10 + CONSTANT);
        assert_eq!(b.remainder(39), 7);
        assert_eq!(b.remainder(30), -2);
        // Jellyfin-like: the library read whole, one request per title.
        let b = Bound::of(&[shape(Feature::Watchlist, 1_001, 1_001, 1, 0)]);
        assert_eq!((b.pages, b.writes, b.write_reads), (5, 1_001, 0));
    }

    #[test]
    fn per_item_routes_fold_into_one_class() {
        assert_eq!(
            route_class("POST /UserPlayedItems/01f1e00000000000000000000000002a"),
            "POST /UserPlayedItems/{id}"
        );
        assert_eq!(route_class("GET /Users/12345"), "GET /Users/{id}");
        assert_eq!(route_class("GET /sync/history"), "GET /sync/history");
        assert_eq!(route_class("GET /System/Info"), "GET /System/Info");
        let routes: BTreeMap<String, u64> = [
            ("POST /UserFavoriteItems/aaaaaaaaaaaaaaaa".to_owned(), 1),
            ("POST /UserFavoriteItems/bbbbbbbbbbbbbbbb".to_owned(), 2),
            ("GET /Items".to_owned(), 4),
        ]
        .into_iter()
        .collect();
        let c = classes(&routes);
        assert_eq!(c.get("POST /UserFavoriteItems/{id}"), Some(&3));
        assert_eq!(split(&c), (4, 3));
    }
}

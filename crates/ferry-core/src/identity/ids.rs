use std::fmt;
use std::str::FromStr;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of external id ferry understands. Variant order is key priority:
/// `tmdb > imdb > tvdb > trakt > mal > anilist > kitsu > anidb > simkl > plex > guid > slug`,
/// then the server-local ids that never form keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKind {
    Tmdb,
    Imdb,
    Tvdb,
    Trakt,
    Mal,
    Anilist,
    Kitsu,
    Anidb,
    Simkl,
    Plex,
    Guid,
    Slug,
    Jellyfin,
    Emby,
    Mdblist,
}

impl IdKind {
    pub const ALL: [IdKind; 15] = [
        IdKind::Tmdb,
        IdKind::Imdb,
        IdKind::Tvdb,
        IdKind::Trakt,
        IdKind::Mal,
        IdKind::Anilist,
        IdKind::Kitsu,
        IdKind::Anidb,
        IdKind::Simkl,
        IdKind::Plex,
        IdKind::Guid,
        IdKind::Slug,
        IdKind::Jellyfin,
        IdKind::Emby,
        IdKind::Mdblist,
    ];

    /// Ids strong enough to decide on their own that two items are the same title.
    pub const STRONG: [IdKind; 4] = [IdKind::Tmdb, IdKind::Imdb, IdKind::Tvdb, IdKind::Trakt];

    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Tmdb => "tmdb",
            IdKind::Imdb => "imdb",
            IdKind::Tvdb => "tvdb",
            IdKind::Trakt => "trakt",
            IdKind::Mal => "mal",
            IdKind::Anilist => "anilist",
            IdKind::Kitsu => "kitsu",
            IdKind::Anidb => "anidb",
            IdKind::Simkl => "simkl",
            IdKind::Plex => "plex",
            IdKind::Guid => "guid",
            IdKind::Slug => "slug",
            IdKind::Jellyfin => "jellyfin",
            IdKind::Emby => "emby",
            IdKind::Mdblist => "mdblist",
        }
    }

    /// Server-local ids (a Jellyfin item id, an Emby id, an MDBList id) mean nothing to
    /// another provider, so they never become a canonical key.
    pub fn is_key_eligible(self) -> bool {
        !matches!(self, IdKind::Jellyfin | IdKind::Emby | IdKind::Mdblist)
    }

    pub fn is_strong(self) -> bool {
        IdKind::STRONG.contains(&self)
    }

    fn digits_only(self) -> bool {
        matches!(
            self,
            IdKind::Tmdb
                | IdKind::Tvdb
                | IdKind::Trakt
                | IdKind::Simkl
                | IdKind::Mal
                | IdKind::Anilist
                | IdKind::Kitsu
                | IdKind::Anidb
                | IdKind::Plex
                | IdKind::Emby
        )
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.trim().to_ascii_lowercase();
        IdKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

const SENTINELS: [&str; 6] = ["none", "null", "nan", "undefined", "unknown", "0"];

/// Normalizes one raw id value for its kind, or drops it (`None`).
///
/// - values are trimmed; empty strings and the sentinels `none, null, nan, undefined,
///   unknown, 0` are dropped;
/// - numeric kinds keep digits only (Jellyfin's hex GUIDs keep their hex digits);
/// - imdb is lower-cased, the first `tt\d+` is taken, otherwise `tt` + its digits;
/// - mdblist and slug are lower-cased; guid is kept verbatim.
pub fn normalize_id(kind: IdKind, raw: &str) -> Option<String> {
    let v = raw.trim();
    if v.is_empty() || SENTINELS.iter().any(|s| v.eq_ignore_ascii_case(s)) {
        return None;
    }
    let out = match kind {
        k if k.digits_only() => v.chars().filter(char::is_ascii_digit).collect::<String>(),
        IdKind::Imdb => {
            let lower = v.to_ascii_lowercase();
            match find_tt(&lower) {
                Some(tt) => tt.to_owned(),
                None => {
                    let digits: String = lower.chars().filter(char::is_ascii_digit).collect();
                    if digits.is_empty() {
                        String::new()
                    } else {
                        format!("tt{digits}")
                    }
                }
            }
        }
        IdKind::Mdblist | IdKind::Slug => v.to_lowercase(),
        // Jellyfin item ids are 32-digit hex GUIDs (CrossWatch keeps digits only, which
        // corrupts them); ferry keeps the hex digits, lower-cased, without dashes. They
        // never form keys either way.
        IdKind::Jellyfin => v
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_lowercase(),
        _ => v.to_owned(),
    };
    // A value that normalizes to nothing, or to a sentinel ("0" from "000"), is no id.
    let trimmed_zero = out.trim_start_matches('0');
    if out.is_empty() || (kind.digits_only() && trimmed_zero.is_empty()) {
        return None;
    }
    Some(out)
}

fn find_tt(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(pos) = s[i..].find("tt") {
        let start = i + pos;
        let mut end = start + 2;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end > start + 2 {
            return Some(&s[start..end]);
        }
        i = start + 2;
    }
    None
}

/// Parses the GUID forms providers (mostly Plex) attach to items:
/// `com.plexapp.agents.imdb://tt…`, `…themoviedb://N`, `…thetvdb://N`, `imdb://`,
/// `tmdb://[movie|show|tv/]N`, `tvdb://[series|show|tv/]N`. Anything starting with
/// `plex://` is kept whole as a `guid` id.
pub fn ids_from_guid(guid: &str) -> Option<(IdKind, String)> {
    let g = guid.trim();
    let lower = g.to_ascii_lowercase();
    if lower.starts_with("plex://") {
        return normalize_id(IdKind::Guid, g).map(|v| (IdKind::Guid, v));
    }
    let (scheme, rest) = lower.split_once("://")?;
    let scheme = scheme.rsplit('.').next().unwrap_or(scheme);
    // Legacy agents append `?lang=en` and sometimes season/episode paths.
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let strip = |prefixes: &[&str]| -> String {
        let mut r = rest;
        for p in prefixes {
            if let Some(s) = r.strip_prefix(p) {
                r = s;
                break;
            }
        }
        r.split('/').next().unwrap_or("").to_owned()
    };
    let (kind, value) = match scheme {
        "imdb" => (IdKind::Imdb, strip(&[])),
        "tmdb" | "themoviedb" => (IdKind::Tmdb, strip(&["movie/", "show/", "tv/"])),
        "tvdb" | "thetvdb" => (IdKind::Tvdb, strip(&["series/", "show/", "tv/"])),
        _ => return None,
    };
    normalize_id(kind, &value).map(|v| (kind, v))
}

/// The normalized external ids of one item, at most one value per kind, kept in key
/// priority order.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Ids(Vec<(IdKind, String)>);

impl Ids {
    pub fn new() -> Self {
        Ids(Vec::new())
    }

    /// Builds ids from raw `(kind, value)` pairs; later pairs win per kind; values that do
    /// not normalize are dropped.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (IdKind, &'a str)>) -> Self {
        let mut ids = Ids::new();
        for (k, v) in pairs {
            ids.set(k, v);
        }
        ids
    }

    /// Sets `kind` to the normalized `raw`; a value that does not normalize leaves the id
    /// unchanged. Returns whether a value was stored.
    pub fn set(&mut self, kind: IdKind, raw: &str) -> bool {
        let Some(v) = normalize_id(kind, raw) else {
            return false;
        };
        match self.0.binary_search_by_key(&kind, |(k, _)| *k) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (kind, v)),
        }
        true
    }

    /// Builder form of [`Ids::set`].
    pub fn with(mut self, kind: IdKind, raw: &str) -> Self {
        self.set(kind, raw);
        self
    }

    pub fn get(&self, kind: IdKind) -> Option<&str> {
        self.0
            .binary_search_by_key(&kind, |(k, _)| *k)
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn remove(&mut self, kind: IdKind) -> Option<String> {
        let i = self.0.binary_search_by_key(&kind, |(k, _)| *k).ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Ids in key priority order.
    pub fn iter(&self) -> impl Iterator<Item = (IdKind, &str)> + '_ {
        self.0.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// The best key-eligible id.
    pub fn best(&self) -> Option<(IdKind, &str)> {
        self.iter().find(|(k, _)| k.is_key_eligible())
    }

    /// Fills ids this set lacks from `other`; existing values win.
    pub fn merge_missing(&mut self, other: &Ids) {
        for (k, v) in other.iter() {
            if self.get(k).is_none() {
                let i = self.0.binary_search_by_key(&k, |(k, _)| *k).unwrap_err();
                self.0.insert(i, (k, v.to_owned()));
            }
        }
    }

    /// Whether the two sets share any strong id with the same value.
    pub fn shares_strong(&self, other: &Ids) -> bool {
        IdKind::STRONG
            .iter()
            .any(|k| matches!((self.get(*k), other.get(*k)), (Some(a), Some(b)) if a == b))
    }
}

impl fmt::Debug for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Ids {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k.as_str(), v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ids;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of id kind to id value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ids, A::Error> {
                let mut ids = Ids::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    // Unknown id kinds are ignored, not fatal: services add id types.
                    let Ok(kind) = k.parse::<IdKind>() else {
                        continue;
                    };
                    match v {
                        serde_json::Value::String(s) => ids.set(kind, &s),
                        serde_json::Value::Number(n) => ids.set(kind, &n.to_string()),
                        _ => false,
                    };
                }
                Ok(ids)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_and_empty_values_dropped() {
        assert_eq!(normalize_id(IdKind::Tmdb, "  603 "), Some("603".into()));
        assert_eq!(normalize_id(IdKind::Tmdb, ""), None);
        assert_eq!(normalize_id(IdKind::Tmdb, "   "), None);
    }

    #[test]
    fn sentinel_values_are_dropped() {
        for s in ["none", "NULL", "NaN", "undefined", "Unknown", "0", " 0 "] {
            assert_eq!(normalize_id(IdKind::Tmdb, s), None, "{s}");
            assert_eq!(normalize_id(IdKind::Slug, s), None, "{s}");
            assert_eq!(normalize_id(IdKind::Guid, s), None, "{s}");
        }
    }

    #[test]
    fn numeric_kinds_keep_digits_only() {
        for k in [
            IdKind::Tmdb,
            IdKind::Tvdb,
            IdKind::Trakt,
            IdKind::Simkl,
            IdKind::Mal,
            IdKind::Anilist,
            IdKind::Kitsu,
            IdKind::Anidb,
            IdKind::Plex,
            IdKind::Emby,
        ] {
            assert_eq!(normalize_id(k, "id-12a3"), Some("123".into()), "{k}");
            assert_eq!(normalize_id(k, "abc"), None, "{k}");
            assert_eq!(normalize_id(k, "000"), None, "{k}");
        }
    }

    #[test]
    fn jellyfin_guids_keep_their_hex_digits() {
        assert_eq!(
            normalize_id(IdKind::Jellyfin, "A1B2C3D4-0000-4000-8000-00000000ABCD"),
            Some("a1b2c3d400004000800000000000abcd".into())
        );
        assert_eq!(normalize_id(IdKind::Jellyfin, "zz"), None);
    }

    #[test]
    fn imdb_takes_first_tt_match_lower_cased() {
        assert_eq!(
            normalize_id(IdKind::Imdb, "TT0133093"),
            Some("tt0133093".into())
        );
        assert_eq!(
            normalize_id(IdKind::Imdb, "https://imdb.com/title/tt0133093/?ref=x"),
            Some("tt0133093".into())
        );
        assert_eq!(
            normalize_id(IdKind::Imdb, "attic tt12 tt34"),
            Some("tt12".into())
        );
    }

    #[test]
    fn imdb_without_tt_gets_prefix_on_digits() {
        assert_eq!(
            normalize_id(IdKind::Imdb, "0133093"),
            Some("tt0133093".into())
        );
        assert_eq!(normalize_id(IdKind::Imdb, "no digits"), None);
    }

    #[test]
    fn mdblist_and_slug_are_lower_cased_guid_verbatim() {
        assert_eq!(
            normalize_id(IdKind::Slug, "The-Matrix-1999"),
            Some("the-matrix-1999".into())
        );
        assert_eq!(normalize_id(IdKind::Mdblist, "AbC"), Some("abc".into()));
        assert_eq!(
            normalize_id(IdKind::Guid, "plex://movie/5d7768ba96b655001fdc0408"),
            Some("plex://movie/5d7768ba96b655001fdc0408".into())
        );
        assert_eq!(
            normalize_id(IdKind::Guid, "Plex://Movie/ABC"),
            Some("Plex://Movie/ABC".into())
        );
    }

    #[test]
    fn guid_forms_are_parsed() {
        let cases = [
            (
                "com.plexapp.agents.imdb://tt0133093?lang=en",
                IdKind::Imdb,
                "tt0133093",
            ),
            (
                "com.plexapp.agents.themoviedb://603?lang=en",
                IdKind::Tmdb,
                "603",
            ),
            (
                "com.plexapp.agents.thetvdb://81189/1/2?lang=en",
                IdKind::Tvdb,
                "81189",
            ),
            ("imdb://tt0133093", IdKind::Imdb, "tt0133093"),
            ("tmdb://603", IdKind::Tmdb, "603"),
            ("tmdb://movie/603", IdKind::Tmdb, "603"),
            ("tmdb://tv/1399", IdKind::Tmdb, "1399"),
            ("tmdb://show/1399", IdKind::Tmdb, "1399"),
            ("tvdb://series/81189", IdKind::Tvdb, "81189"),
            ("tvdb://show/81189", IdKind::Tvdb, "81189"),
            ("tvdb://tv/81189", IdKind::Tvdb, "81189"),
            ("tvdb://81189", IdKind::Tvdb, "81189"),
        ];
        for (g, k, v) in cases {
            assert_eq!(ids_from_guid(g), Some((k, v.to_owned())), "{g}");
        }
        assert_eq!(
            ids_from_guid("plex://episode/5d9c0874ffd9ef001e99607a"),
            Some((
                IdKind::Guid,
                "plex://episode/5d9c0874ffd9ef001e99607a".into()
            ))
        );
        assert_eq!(ids_from_guid("local://123"), None);
        assert_eq!(ids_from_guid("not a guid"), None);
    }

    #[test]
    fn later_values_win_and_order_is_priority() {
        let ids = Ids::from_pairs([
            (IdKind::Slug, "x"),
            (IdKind::Imdb, "tt1"),
            (IdKind::Tmdb, "5"),
            (IdKind::Tmdb, "6"),
            (IdKind::Jellyfin, "9"),
        ]);
        let kinds: Vec<_> = ids.iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            [IdKind::Tmdb, IdKind::Imdb, IdKind::Slug, IdKind::Jellyfin]
        );
        assert_eq!(ids.get(IdKind::Tmdb), Some("6"));
    }

    #[test]
    fn server_local_ids_never_form_keys() {
        let ids = Ids::from_pairs([
            (IdKind::Jellyfin, "5"),
            (IdKind::Emby, "6"),
            (IdKind::Mdblist, "x"),
        ]);
        assert_eq!(ids.best(), None);
    }

    #[test]
    fn serde_round_trip_ignores_unknown_kinds_and_normalizes() {
        let ids: Ids = serde_json::from_str(
            r#"{"tmdb": 603, "imdb": "TT0133093", "tvrage": "1", "trakt": "null"}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&ids).unwrap(),
            r#"{"tmdb":"603","imdb":"tt0133093"}"#
        );
    }
}

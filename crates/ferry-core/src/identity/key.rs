use crate::identity::ids::IdKind;
#[cfg(test)]
use crate::identity::ids::Ids;
use crate::item::{Item, MediaType};
use crate::time::Timestamp;

/// Maps the type names providers use onto ferry's media types:
/// `movies→movie`, `shows, series, tv, anime→show`, `seasons→season`, `episodes→episode`.
pub fn normalize_media_type(raw: &str) -> Option<MediaType> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "movie" | "movies" | "film" => Some(MediaType::Movie),
        "show" | "shows" | "series" | "tv" | "anime" => Some(MediaType::Show),
        "season" | "seasons" => Some(MediaType::Season),
        "episode" | "episodes" | "ep" => Some(MediaType::Episode),
        "playlist" | "playlists" => Some(MediaType::Playlist),
        _ => None,
    }
}

fn fragment(item: &Item) -> Option<String> {
    match item.kind {
        MediaType::Episode => match (item.season, item.episode) {
            (Some(s), Some(e)) => Some(format!("#s{s:02}e{e:02}")),
            _ => None,
        },
        MediaType::Season => item.season.map(|s| format!("#season:{s}")),
        _ => None,
    }
}

/// The canonical key of an item (CrossWatch's `canonical_key` rules):
/// 1. season/episode: the show's best id (from `show_ids`, else the item's own ids) plus
///    `#sSSeEE` or `#season:N`;
/// 2. otherwise the best key-eligible own id, `<kind>:<value>`;
/// 3. otherwise `<type>|title:<title>|year:<year or empty>`;
/// 4. otherwise `unknown:`.
///
/// The whole key is lower-cased.
pub fn canonical_key(item: &Item) -> String {
    let key = canonical_key_raw(item);
    key.to_lowercase()
}

fn canonical_key_raw(item: &Item) -> String {
    if matches!(item.kind, MediaType::Episode | MediaType::Season) {
        let show = item.show_ids.best().or_else(|| item.ids.best());
        if let (Some((k, v)), Some(frag)) = (show, fragment(item)) {
            return format!("{k}:{v}{frag}");
        }
    }
    if let Some((k, v)) = item.ids.best() {
        return format!("{k}:{v}");
    }
    let title = item
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match title {
        Some(t) => {
            let year = item.year.map(|y| y.to_string()).unwrap_or_default();
            format!("{}|title:{}|year:{}", item.kind, t, year)
        }
        None => "unknown:".to_owned(),
    }
}

/// The key of one watch event: `<base>@<epoch seconds>`.
pub fn event_key(base: &str, watched_at: Timestamp) -> String {
    format!("{base}@{}", watched_at.unix())
}

/// Splits an event key into its base key and epoch; `None` for a plain key.
pub fn split_event_key(key: &str) -> Option<(&str, Timestamp)> {
    let (base, ts) = key.rsplit_once('@')?;
    if base.is_empty() || ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ts.parse::<i64>()
        .ok()
        .map(|t| (base, Timestamp::from_unix(t)))
}

fn token(kind: IdKind, value: &str) -> String {
    format!("{kind}:{}", value.to_lowercase())
}

/// Own ids of an episode that are not simply inherited from its show: a provider that
/// copies the show's tvdb id onto every episode must not make all episodes one title.
fn own_ids_not_inherited<'a>(item: &'a Item) -> impl Iterator<Item = (IdKind, &'a str)> + 'a {
    item.ids
        .iter()
        .filter(move |(k, v)| !(k.is_strong() && item.show_ids.get(*k) == Some(*v)))
}

/// Strong tokens (tmdb/imdb/tvdb/trakt): enough on their own to say two items are one.
/// Episodes use their own non-inherited ids plus `<show id>#sSSeEE`; seasons use
/// `<show id>#season:N`. Inherited show ids never make two episodes match.
pub fn strong_tokens(item: &Item) -> Vec<String> {
    let mut out = Vec::new();
    match (item.kind, fragment(item)) {
        (MediaType::Episode | MediaType::Season, Some(frag)) => {
            if item.kind == MediaType::Episode {
                out.extend(
                    own_ids_not_inherited(item)
                        .filter(|(k, _)| k.is_strong())
                        .map(|(k, v)| token(k, v)),
                );
            }
            out.extend(
                item.show_ids
                    .iter()
                    .filter(|(k, _)| k.is_strong())
                    .map(|(k, v)| format!("{}{frag}", token(k, v))),
            );
        }
        _ => out.extend(
            item.ids
                .iter()
                .filter(|(k, _)| k.is_strong())
                .map(|(k, v)| token(k, v)),
        ),
    }
    out
}

/// Alias tokens over every id kind, for the last matching tier. Episodes: own ids that are
/// not inherited from the show, plus fragment tokens from both `show_ids` and `ids`.
/// Seasons: fragment tokens. Without a fragment: all own ids.
pub fn alias_tokens(item: &Item) -> Vec<String> {
    let mut out = Vec::new();
    match (item.kind, fragment(item)) {
        (MediaType::Episode | MediaType::Season, Some(frag)) => {
            if item.kind == MediaType::Episode {
                out.extend(own_ids_not_inherited(item).map(|(k, v)| token(k, v)));
            }
            for ids in [&item.show_ids, &item.ids] {
                out.extend(ids.iter().map(|(k, v)| format!("{}{frag}", token(k, v))));
            }
        }
        _ => out.extend(item.ids.iter().map(|(k, v)| token(k, v))),
    }
    out.sort();
    out.dedup();
    out
}

/// The id-token set a tombstone is keyed by: the canonical key plus every alias token, so
/// a deletion is recognised whichever id the other provider files the title under.
pub fn id_tokens(item: &Item) -> Vec<String> {
    let mut out = alias_tokens(item);
    out.push(canonical_key(item));
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
pub(crate) fn ids(pairs: &[(IdKind, &str)]) -> Ids {
    Ids::from_pairs(pairs.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn movie(pairs: &[(IdKind, &str)]) -> Item {
        Item {
            ids: ids(pairs),
            title: Some("The Matrix".into()),
            year: Some(1999),
            ..Item::new(MediaType::Movie)
        }
    }

    #[test]
    fn key_priority_order() {
        assert_eq!(
            canonical_key(&movie(&[
                (IdKind::Imdb, "tt0133093"),
                (IdKind::Tmdb, "603")
            ])),
            "tmdb:603"
        );
        assert_eq!(
            canonical_key(&movie(&[(IdKind::Imdb, "tt0133093"), (IdKind::Tvdb, "1")])),
            "imdb:tt0133093"
        );
        let chain = [
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
        ];
        // Removing the best id each time exposes the next one in priority order.
        for (i, expected) in chain.iter().enumerate() {
            let pairs: Vec<(IdKind, &str)> = chain[i..]
                .iter()
                .map(|k| {
                    (
                        *k,
                        if *k == IdKind::Imdb {
                            "tt7"
                        } else if *k == IdKind::Guid {
                            "plex://x/7"
                        } else {
                            "7"
                        },
                    )
                })
                .collect();
            let key = canonical_key(&movie(&pairs));
            assert!(
                key.starts_with(&format!("{expected}:")),
                "{key} should start with {expected}"
            );
        }
    }

    #[test]
    fn server_local_ids_are_not_key_eligible() {
        let m = movie(&[
            (IdKind::Jellyfin, "42"),
            (IdKind::Emby, "43"),
            (IdKind::Mdblist, "x"),
        ]);
        assert_eq!(canonical_key(&m), "movie|title:the matrix|year:1999");
    }

    #[test]
    fn title_year_fallback_and_unknown() {
        let mut m = movie(&[]);
        assert_eq!(canonical_key(&m), "movie|title:the matrix|year:1999");
        m.year = None;
        assert_eq!(canonical_key(&m), "movie|title:the matrix|year:");
        m.title = Some("   ".into());
        assert_eq!(canonical_key(&m), "unknown:");
    }

    #[test]
    fn episode_and_season_keys_use_show_id_and_fragment() {
        let mut e = Item::episode(
            "Breaking Bad",
            ids(&[(IdKind::Tvdb, "81189"), (IdKind::Tmdb, "1396")]),
            1,
            2,
        );
        e.ids = ids(&[(IdKind::Tvdb, "349232")]);
        assert_eq!(canonical_key(&e), "tmdb:1396#s01e02");
        e.episode = Some(123);
        assert_eq!(canonical_key(&e), "tmdb:1396#s01e123", "wider when needed");
        let season = Item {
            season: Some(3),
            show_ids: ids(&[(IdKind::Imdb, "tt0903747")]),
            ..Item::new(MediaType::Season)
        };
        assert_eq!(canonical_key(&season), "imdb:tt0903747#season:3");
    }

    #[test]
    fn episode_without_show_ids_falls_back_to_own_ids() {
        let e = Item {
            ids: ids(&[(IdKind::Tvdb, "349232")]),
            season: Some(1),
            episode: Some(2),
            ..Item::new(MediaType::Episode)
        };
        assert_eq!(canonical_key(&e), "tvdb:349232#s01e02");
        let no_frag = Item {
            ids: ids(&[(IdKind::Tvdb, "349232")]),
            ..Item::new(MediaType::Episode)
        };
        assert_eq!(canonical_key(&no_frag), "tvdb:349232");
    }

    #[test]
    fn keys_are_lower_cased() {
        let m = movie(&[(IdKind::Guid, "plex://movie/ABC")]);
        assert_eq!(canonical_key(&m), "guid:plex://movie/abc");
        let mut t = movie(&[]);
        t.title = Some("THE Matrix".into());
        assert_eq!(canonical_key(&t), "movie|title:the matrix|year:1999");
    }

    #[test]
    fn media_type_aliases() {
        assert_eq!(normalize_media_type("movies"), Some(MediaType::Movie));
        for s in ["shows", "series", "tv", "anime", "Show"] {
            assert_eq!(normalize_media_type(s), Some(MediaType::Show), "{s}");
        }
        assert_eq!(normalize_media_type("seasons"), Some(MediaType::Season));
        assert_eq!(normalize_media_type("episodes"), Some(MediaType::Episode));
        assert_eq!(
            normalize_media_type(""),
            Some(MediaType::Movie),
            "empty means movie"
        );
        assert_eq!(normalize_media_type("podcast"), None);
    }

    #[test]
    fn event_keys_round_trip() {
        let k = event_key("tmdb:603", Timestamp::from_unix(1_700_000_000));
        assert_eq!(k, "tmdb:603@1700000000");
        assert_eq!(
            split_event_key(&k),
            Some(("tmdb:603", Timestamp::from_unix(1_700_000_000)))
        );
        assert_eq!(split_event_key("tmdb:603"), None);
        assert_eq!(split_event_key("guid:plex://x@y"), None);
    }

    #[test]
    fn inherited_show_ids_never_make_episodes_match() {
        let show = ids(&[(IdKind::Tvdb, "81189")]);
        let mut e1 = Item::episode("BB", show.clone(), 1, 1);
        let mut e2 = Item::episode("BB", show.clone(), 1, 2);
        // A provider that copies the show id onto each episode.
        e1.ids = show.clone();
        e2.ids = show;
        let s1 = strong_tokens(&e1);
        let s2 = strong_tokens(&e2);
        assert!(s1.iter().all(|t| !s2.contains(t)), "{s1:?} vs {s2:?}");
        let a1 = alias_tokens(&e1);
        let a2 = alias_tokens(&e2);
        assert!(a1.iter().all(|t| !a2.contains(t)), "{a1:?} vs {a2:?}");
    }

    #[test]
    fn episode_level_ids_match_across_coordinates() {
        let mut a = Item::episode("X", ids(&[(IdKind::Tvdb, "1")]), 1, 1);
        a.ids = ids(&[(IdKind::Tvdb, "555")]);
        let mut b = Item::episode("X", ids(&[(IdKind::Tmdb, "9")]), 0, 7);
        b.ids = ids(&[(IdKind::Tvdb, "555")]);
        let sa = strong_tokens(&a);
        assert!(strong_tokens(&b).iter().any(|t| sa.contains(t)));
    }

    fn arb_pairs() -> impl Strategy<Value = Vec<(IdKind, String)>> {
        let kind = proptest::sample::select(IdKind::ALL.to_vec());
        proptest::collection::vec((kind, "[0-9]{1,6}|tt[0-9]{1,7}|[a-zA-Z-]{1,8}"), 0..6)
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]
        /// Keys do not depend on the order ids arrive in (when kinds are distinct),
        /// nor on case and surrounding whitespace.
        #[test]
        fn key_is_stable_under_order_case_and_whitespace(pairs in arb_pairs(), title in "[A-Za-z ]{0,12}") {
            let mut seen = std::collections::HashSet::new();
            let pairs: Vec<_> = pairs.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
            let build = |ps: &[(IdKind, String)], upper: bool, pad: bool| {
                let mut it = Item::new(MediaType::Movie);
                it.title = Some(if upper { title.to_uppercase() } else { title.clone() });
                for (k, v) in ps {
                    // guid is the one kind kept verbatim; its case is part of the value.
                    let v = if upper && *k != IdKind::Guid { v.to_uppercase() } else { v.clone() };
                    let v = if pad { format!("  {v}\t") } else { v };
                    it.ids.set(*k, &v);
                }
                canonical_key(&it)
            };
            let base = build(&pairs, false, false);
            let mut rev = pairs.clone();
            rev.reverse();
            prop_assert_eq!(&build(&rev, false, false), &base);
            prop_assert_eq!(&build(&pairs, false, true), &base);
            prop_assert_eq!(&build(&pairs, true, false), &base);
            prop_assert_eq!(base.to_lowercase(), base);
        }

        #[test]
        fn tokens_are_order_independent(pairs in arb_pairs()) {
            let mut seen = std::collections::HashSet::new();
            let pairs: Vec<_> = pairs.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
            let mut a = Item::new(MediaType::Show);
            let mut b = Item::new(MediaType::Show);
            for (k, v) in &pairs { a.ids.set(*k, v); }
            for (k, v) in pairs.iter().rev() { b.ids.set(*k, v); }
            prop_assert_eq!(id_tokens(&a), id_tokens(&b));
        }
    }
}

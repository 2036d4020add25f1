//! Wire rows to ferry's items: GUIDs to ids (parsed by
//! [`ferry_core::identity::ids_from_guid`], the one table of Plex's GUID forms),
//! episodes under their show, and the decoders that judge one row at a time.

use ferry_core::identity::ids_from_guid;
use ferry_core::read::decode;
use ferry_core::{IdKind, Ids, Item, MediaType, Rating, Row};
use serde_json::Value;

use crate::model::{
    HistoryRow, HistoryWire, MetadataRow, PlaylistInfo, PlaylistWire, SectionRow, SettingRow,
};

/// The external ids of a row: its `Guid` list plus its `guid`. Legacy agent guids of
/// episodes (`com.plexapp.agents.thetvdb://81189/1/2`) name the show, so they are not
/// taken as episode ids.
pub(crate) fn ids_of(row: &MetadataRow, episode: bool) -> Ids {
    let mut ids = Ids::new();
    for g in row.guids.iter().flatten() {
        if let Some((k, v)) = ids_from_guid(&g.id) {
            ids.set(k, &v);
        }
    }
    if let Some(g) = &row.guid {
        match ids_from_guid(g) {
            Some((IdKind::Guid, v)) => {
                ids.set(IdKind::Guid, &v);
            }
            Some((k, v)) if !episode && ids.get(k).is_none() => {
                ids.set(k, &v);
            }
            _ => {}
        }
    }
    ids
}

/// The ids a `grandparentGuid` gives an episode's show.
pub(crate) fn show_ids_of(row: &MetadataRow) -> Ids {
    let mut ids = Ids::new();
    if let Some((k, v)) = row.grandparent_guid.as_deref().and_then(ids_from_guid) {
        ids.set(k, &v);
    }
    ids
}

/// The row's `plex://…` guid, which is also how Discover knows the title.
pub(crate) fn plex_guid(row: &MetadataRow) -> Option<String> {
    row.guid.clone().filter(|g| g.starts_with("plex://"))
}

/// A movie or show row as an [`Item`].
pub(crate) fn title_item(row: &MetadataRow) -> Option<Item> {
    let kind = match row.kind.as_str() {
        "movie" => MediaType::Movie,
        "show" => MediaType::Show,
        _ => return None,
    };
    Some(Item {
        title: row.title.clone().filter(|t| !t.is_empty()),
        year: row.year,
        ids: ids_of(row, false),
        ..Item::new(kind)
    })
}

/// An episode row as an [`Item`] under its show (`title`, `ids`).
pub(crate) fn episode_item(row: &MetadataRow, show_title: String, show_ids: Ids) -> Option<Item> {
    if row.kind != "episode" {
        return None;
    }
    let mut ep = Item::episode(show_title, show_ids, row.parent_index?, row.index?);
    ep.title = row.title.clone().filter(|t| !t.is_empty());
    ep.ids = ids_of(row, true);
    Some(ep)
}

/// An episode row described by itself (`grandparentTitle`, `grandparentGuid`), for rows
/// outside the scanned library.
pub(crate) fn standalone_item(row: &MetadataRow) -> Option<Item> {
    title_item(row).or_else(|| {
        episode_item(
            row,
            row.grandparent_title.clone().unwrap_or_default(),
            show_ids_of(row),
        )
    })
}

/// Maps Plex's 0-10 `userRating` onto ferry's 1-10 scale (half rounds up, 0 is no rating).
pub fn rating_from_plex(user_rating: f64) -> Option<Rating> {
    Rating::normalize(user_rating)
}

/// Decodes one library row: movies, shows and episodes with season and episode numbers
/// are kept; other types, and episodes that cannot be named to another service, are
/// accounted for and skipped.
pub(crate) fn library_row(raw: Value) -> Row<MetadataRow> {
    match decode::<MetadataRow>(&raw) {
        Err(e) => Row::Bad(e),
        Ok(r) => match r.kind.as_str() {
            "movie" | "show" => Row::Keep(r),
            "episode" if r.parent_index.is_some() && r.index.is_some() => Row::Keep(r),
            _ => Row::Skip,
        },
    }
}

/// Decodes one row of a list of any items (playlist entries, read-backs).
pub(crate) fn item_row(raw: Value) -> Row<MetadataRow> {
    Row::from_result(decode::<MetadataRow>(&raw))
}

/// Decodes one Discover watchlist row: movies and shows (collections are skipped).
pub(crate) fn watchlist_row(raw: Value) -> Row<MetadataRow> {
    match decode::<MetadataRow>(&raw) {
        Err(e) => Row::Bad(e),
        Ok(r) if matches!(r.kind.as_str(), "movie" | "show") => Row::Keep(r),
        Ok(_) => Row::Skip,
    }
}

/// Decodes one history row; a play without a `ratingKey` names nothing to match and is
/// skipped, a `historyKey` without a numeric id is a bad row.
pub(crate) fn history_row(raw: Value) -> Row<HistoryRow> {
    let w = match decode::<HistoryWire>(&raw) {
        Ok(w) => w,
        Err(e) => return Row::Bad(e),
    };
    let Some(id) = w
        .history_key
        .rsplit('/')
        .next()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Row::Bad(format!("historyKey: no history id in {:?}", w.history_key));
    };
    match w.rating_key {
        Some(k) => Row::Keep(HistoryRow {
            id,
            rating_key: k.0,
            viewed_at: w.viewed_at,
        }),
        None => Row::Skip,
    }
}

/// Decodes one `/playlists` row: a video playlist, or skipped (a folder, another kind
/// of list). A playlist without a title is a bad row.
pub(crate) fn playlist_row(raw: Value) -> Row<PlaylistInfo> {
    let w = match decode::<PlaylistWire>(&raw) {
        Ok(w) => w,
        Err(e) => return Row::Bad(e),
    };
    let is =
        |v: &Option<String>, want: &str| v.as_deref().is_none_or(|v| v.eq_ignore_ascii_case(want));
    if !is(&w.kind, "playlist") || !is(&w.playlist_type, "video") {
        return Row::Skip;
    }
    let Some(title) = w.title.filter(|t| !t.trim().is_empty()) else {
        return Row::Bad("title: a playlist without a title".into());
    };
    let special = w.special_playlist_type.filter(|s| !s.is_empty());
    let read_only = match (w.read_only.unwrap_or_default().0, special) {
        (_, Some(s)) => Some(format!("a special Plex playlist ({s})")),
        (true, None) => Some("read-only on Plex (readOnly)".to_owned()),
        (false, None) => None,
    };
    Row::Keep(PlaylistInfo {
        id: w.rating_key.0,
        title,
        summary: w.summary,
        smart: w.smart.unwrap_or_default().0,
        read_only,
    })
}

/// Decodes one `/library/sections` row; only movie and show sections are kept.
pub(crate) fn section_row(raw: Value) -> Row<SectionRow> {
    match decode::<SectionRow>(&raw) {
        Err(e) => Row::Bad(e),
        Ok(s) if matches!(s.kind.as_str(), "movie" | "show") => Row::Keep(s),
        Ok(_) => Row::Skip,
    }
}

/// Decodes one `/:/prefs` row.
pub(crate) fn setting_row(raw: Value) -> Row<SettingRow> {
    Row::from_result(decode::<SettingRow>(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> MetadataRow {
        match item_row(v) {
            Row::Keep(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn guids_become_ids() {
        let r = row(json!({
            "ratingKey": "7", "type": "movie",
            "guid": "plex://movie/5d7768ba96b655001fdc0408",
            "Guid": [{"id": "imdb://tt0133093"}, {"id": "tmdb://603"}, {"id": "tvdb://169"}],
        }));
        let ids = ids_of(&r, false);
        assert_eq!(ids.get(IdKind::Imdb), Some("tt0133093"));
        assert_eq!(ids.get(IdKind::Tmdb), Some("603"));
        assert_eq!(ids.get(IdKind::Tvdb), Some("169"));
        assert_eq!(
            ids.get(IdKind::Guid),
            Some("plex://movie/5d7768ba96b655001fdc0408")
        );
    }

    #[test]
    fn legacy_agent_guids_are_read_for_titles_but_not_episodes() {
        let movie = row(json!({"ratingKey": 1, "type": "movie",
            "guid": "com.plexapp.agents.imdb://tt0133093?lang=en"}));
        assert_eq!(ids_of(&movie, false).get(IdKind::Imdb), Some("tt0133093"));
        let ep = row(json!({"ratingKey": "2", "type": "episode",
            "guid": "com.plexapp.agents.thetvdb://81189/1/2?lang=en"}));
        assert!(
            ids_of(&ep, true).is_empty(),
            "a legacy episode guid names the show"
        );
    }

    #[test]
    fn rows_ferry_cannot_read_are_bad_never_dropped() {
        let bad = [
            json!(null),
            json!({"type": "movie"}),
            json!({"ratingKey": "", "type": "movie"}),
            json!({"ratingKey": "1"}),
            json!({"ratingKey": "1", "type": "movie", "viewCount": "2"}),
            json!({"ratingKey": "1", "type": "movie", "userRating": "8"}),
            json!({"ratingKey": "1", "type": "movie", "Guid": "imdb://tt1"}),
            json!({"ratingKey": "1", "type": "movie", "lastViewedAt": null, "year": "1999"}),
        ];
        for b in bad {
            assert!(matches!(library_row(b.clone()), Row::Bad(_)), "{b}");
        }
        assert!(matches!(
            library_row(json!({"ratingKey": "1", "type": "clip"})),
            Row::Skip
        ));
        assert!(matches!(
            library_row(json!({"ratingKey": "1", "type": "episode", "index": 2})),
            Row::Skip
        ));
    }

    #[test]
    fn history_rows_need_an_id_and_a_time() {
        let ok = json!({"historyKey": "/status/sessions/history/17", "ratingKey": "5",
            "viewedAt": 1_700_000_000});
        assert_eq!(
            history_row(ok),
            Row::Keep(HistoryRow {
                id: 17,
                rating_key: "5".into(),
                viewed_at: 1_700_000_000
            })
        );
        assert!(matches!(
            history_row(json!({"historyKey": "/status/sessions/history/x", "viewedAt": 1})),
            Row::Bad(_)
        ));
        assert!(matches!(
            history_row(json!({"historyKey": "/status/sessions/history/1", "ratingKey": "5"})),
            Row::Bad(_)
        ));
        assert_eq!(
            history_row(json!({"historyKey": "/status/sessions/history/1", "viewedAt": 1})),
            Row::Skip
        );
    }

    #[test]
    fn playlist_rows_skip_folders_and_flag_what_ferry_must_not_write() {
        let folder = json!({"ratingKey": "3", "type": "playlistFolder", "title": "F"});
        assert!(matches!(playlist_row(folder), Row::Skip));
        let audio =
            json!({"ratingKey": "4", "type": "playlist", "playlistType": "audio", "title": "A"});
        assert!(matches!(playlist_row(audio), Row::Skip));
        let Row::Keep(p) = playlist_row(json!({"ratingKey": "5", "type": "playlist",
            "playlistType": "video", "title": "Faves", "specialPlaylistType": "favorites",
            "smart": "1"}))
        else {
            panic!("kept")
        };
        assert!(p.smart && p.read_only.is_some_and(|w| w.contains("favorites")));
        let Row::Keep(p) = playlist_row(json!({"ratingKey": "6", "type": "playlist",
            "title": "RO", "readOnly": true}))
        else {
            panic!("kept")
        };
        assert!(p.read_only.is_some());
        assert!(matches!(
            playlist_row(
                json!({"ratingKey": "7", "type": "playlist", "readOnly": "yes", "title": "x"})
            ),
            Row::Bad(_)
        ));
    }
}

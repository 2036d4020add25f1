//! Wire rows to ferry's items: external ids through one table, the server's own id when
//! it survives normalization, episodes under their series, ticks to milliseconds.

use std::collections::HashMap;

use ferry_core::identity::normalize_id;
use ferry_core::{IdKind, IdTable, Ids, Item, MediaType, Row, Timestamp};
use serde_json::Value;

use crate::model::{ItemRow, UserDataRow, UserState};

/// 1 ms = 10,000 ticks.
pub const TICKS_PER_MS: u64 = 10_000;

/// `ProviderIds` names (matched case-insensitively, as the servers write them in
/// several casings).
pub(crate) const PROVIDER_IDS: IdTable = IdTable(&[
    ("Tmdb", IdKind::Tmdb),
    ("Imdb", IdKind::Imdb),
    ("Tvdb", IdKind::Tvdb),
    ("Trakt", IdKind::Trakt),
    ("Mal", IdKind::Mal),
    ("AniList", IdKind::Anilist),
    ("Kitsu", IdKind::Kitsu),
    ("AniDb", IdKind::Anidb),
    ("Simkl", IdKind::Simkl),
]);

impl UserState {
    pub(crate) fn from_wire(u: &UserDataRow) -> UserState {
        UserState {
            played: u.played,
            last_played: u
                .last_played_date
                .as_deref()
                .and_then(Timestamp::parse)
                .map(Timestamp::unix),
            position_ms: u.playback_position_ticks / TICKS_PER_MS,
            favorite: u.is_favorite,
        }
    }
}

/// `ProviderIds` as ids, plus the server's own id when it survives normalization
/// unchanged (Emby's numeric ids, Jellyfin's dash-less hex ids).
pub(crate) fn ids_of(row: &ItemRow, local: IdKind) -> Ids {
    let mut ids = row
        .provider_ids
        .as_ref()
        .map(|p| PROVIDER_IDS.read(p))
        .unwrap_or_default();
    if normalize_id(local, &row.id).as_deref() == Some(row.id.as_str()) {
        ids.set(local, &row.id);
    }
    ids
}

/// A movie or series row as an item (episodes need their series: see [`episode_item`]).
pub(crate) fn title_item(row: &ItemRow, local: IdKind) -> Option<Item> {
    let kind = match row.kind.as_str() {
        "Movie" => MediaType::Movie,
        "Series" => MediaType::Show,
        _ => return None,
    };
    Some(Item {
        title: row.name.clone(),
        year: row.production_year,
        ids: ids_of(row, local),
        ..Item::new(kind)
    })
}

pub(crate) fn episode_item(row: &ItemRow, local: IdKind, series: Option<&Item>) -> Option<Item> {
    if row.kind != "Episode" {
        return None;
    }
    let show_title = series
        .and_then(|s| s.title.clone())
        .or_else(|| row.series_name.clone())
        .unwrap_or_default();
    let show_ids = series.map(|s| s.ids.clone()).unwrap_or_default();
    let mut ep = Item::episode(
        show_title,
        show_ids,
        row.parent_index_number?,
        row.index_number?,
    );
    ep.title = row.name.clone();
    ep.ids = ids_of(row, local);
    Some(ep)
}

/// Any row as an item: a title, or an episode under its series when known.
pub(crate) fn any_item(
    row: &ItemRow,
    local: IdKind,
    series: &HashMap<String, Item>,
) -> Option<Item> {
    title_item(row, local).or_else(|| {
        let s = row.series_id.as_deref().and_then(|s| series.get(s));
        episode_item(row, local, s)
    })
}

/// Decodes one library row: a typed row with its user data, or why not. A row of
/// another type than the library holds is skipped (accounted for, not kept).
pub(crate) fn library_row(raw: Value) -> Row<ItemRow> {
    match ferry_core::read::decode::<ItemRow>(&raw) {
        Err(e) => Row::Bad(e),
        Ok(r) if r.user_data.is_none() => Row::Bad("UserData: missing or null".into()),
        Ok(r) if !matches!(r.kind.as_str(), "Movie" | "Series" | "Episode") => Row::Skip,
        Ok(r) => Row::Keep(r),
    }
}

/// Decodes one row of a list whose rows need no user data (playlist entries).
pub(crate) fn item_row(raw: Value) -> Row<ItemRow> {
    Row::from_result(ferry_core::read::decode::<ItemRow>(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> ItemRow {
        match library_row(v) {
            Row::Keep(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn provider_ids_are_case_insensitive_and_local_ids_only_when_intact() {
        let r = row(
            json!({"Id": "a1b2", "Type": "Movie", "Name": "M", "ProductionYear": 1999,
            "ProviderIds": {"Tmdb": "603", "IMDB": "tt0133093", "Tvdb": 169, "TvRage": "x"},
            "UserData": {}}),
        );
        let it = title_item(&r, IdKind::Jellyfin).unwrap();
        assert_eq!(it.ids.get(IdKind::Tmdb), Some("603"));
        assert_eq!(it.ids.get(IdKind::Imdb), Some("tt0133093"));
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("169"));
        assert_eq!(
            it.ids.get(IdKind::Jellyfin),
            Some("a1b2"),
            "hex ids survive intact"
        );
        let dashed = row(json!({"Id": "A1B2-C3", "Type": "Movie", "Name": "M", "UserData": {}}));
        let it = title_item(&dashed, IdKind::Jellyfin).unwrap();
        assert_eq!(
            it.ids.get(IdKind::Jellyfin),
            None,
            "an id normalization would change is not attached"
        );
        let emby = row(json!({"Id": "12345", "Type": "Series", "Name": "S", "UserData": {}}));
        let it = title_item(&emby, IdKind::Emby).unwrap();
        assert_eq!(it.kind, MediaType::Show);
        assert_eq!(it.ids.get(IdKind::Emby), Some("12345"));
    }

    #[test]
    fn user_data_ticks_become_milliseconds() {
        let r = row(json!({"Id": "a", "Type": "Movie", "UserData": {
            "Played": true, "PlaybackPositionTicks": 18_000_000_000u64,
            "LastPlayedDate": "2024-03-01T12:00:00.0000000Z", "IsFavorite": true
        }}));
        let u = UserState::from_wire(r.user_data.as_ref().unwrap());
        assert_eq!(u.position_ms, 1_800_000);
        assert_eq!(u.last_played, Some(1_709_294_400));
        assert!(u.played && u.favorite);
    }

    #[test]
    fn rows_ferry_cannot_read_are_bad_never_dropped() {
        let bad = [
            json!(null),
            json!({"Id": 42, "Type": "Movie", "UserData": {}}),
            json!({"Id": "a", "Type": "Movie", "UserData": null}),
            json!({"Id": "a", "Type": "Movie"}),
            json!({"Id": "a", "Type": "Movie", "UserData": {"Played": "true"}}),
            json!({"Id": "a", "Type": "Movie", "UserData": {"IsFavorite": "false"}}),
            json!({"Id": "a", "Type": null, "UserData": {}}),
        ];
        for b in bad {
            assert!(matches!(library_row(b.clone()), Row::Bad(_)), "{b}");
        }
        assert!(matches!(
            library_row(json!({"Id": "f", "Type": "Folder", "UserData": {}})),
            Row::Skip
        ));
    }
}

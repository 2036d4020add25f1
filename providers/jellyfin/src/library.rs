//! The user's library as one paged index: every movie, show and episode with its
//! `ProviderIds` and the user's `UserData` (on Emby with `Fields` naming the last played
//! date and play count, which Emby leaves out otherwise). Reads derive each feature from
//! it and every write resolves its entries against it, so resolution costs O(pages), not
//! O(items).

use std::collections::HashMap;

use ferry_core::identity::{AliasIndex, normalize_id};
use ferry_core::{
    Context, Error, ErrorKind, IdKind, Ids, Item, MediaType, OffsetPages, Result, Timestamp,
};
use serde_json::Value;

use crate::server::{MediaServer, Method, Route};

/// 1 ms = 10,000 ticks.
pub const TICKS_PER_MS: u64 = 10_000;

/// The user's state for one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserState {
    pub(crate) played: bool,
    pub(crate) last_played: Option<i64>,
    pub(crate) position_ms: u64,
    pub(crate) favorite: bool,
}

impl UserState {
    pub(crate) fn from_json(v: Option<&Value>) -> UserState {
        let Some(v) = v else {
            return UserState::default();
        };
        UserState {
            played: v.get("Played").and_then(Value::as_bool).unwrap_or(false),
            last_played: v
                .get("LastPlayedDate")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse)
                .map(Timestamp::unix),
            position_ms: v
                .get("PlaybackPositionTicks")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                / TICKS_PER_MS,
            favorite: v
                .get("IsFavorite")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// One library item.
#[derive(Debug, Clone)]
pub(crate) struct LibItem {
    pub(crate) id: String,
    pub(crate) item: Item,
    pub(crate) user: UserState,
    pub(crate) runtime_ms: Option<u64>,
}

/// The indexed library.
#[derive(Debug, Default)]
pub(crate) struct Library {
    pub(crate) items: Vec<LibItem>,
    by_id: HashMap<String, usize>,
    index: AliasIndex,
    pub(crate) partial: Vec<String>,
}

impl Library {
    fn push(&mut self, li: LibItem) {
        if self.by_id.contains_key(&li.id) {
            return;
        }
        let n = self.items.len();
        self.by_id.insert(li.id.clone(), n);
        self.index.insert(&format!("#{n}"), &li.item);
        self.items.push(li);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&LibItem> {
        self.by_id.get(id).map(|i| &self.items[*i])
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut LibItem> {
        let i = *self.by_id.get(id)?;
        Some(&mut self.items[i])
    }

    /// The library item that is the same title as `item`.
    pub(crate) fn resolve(&self, item: &Item) -> Option<&LibItem> {
        let hit = self.index.find(&item.key(), item)?;
        let n: usize = hit.strip_prefix('#')?.parse().ok()?;
        self.items.get(n)
    }
}

/// `ProviderIds` (keys case-insensitive) as ids, plus the server's own id when it
/// survives normalization unchanged (Emby's numeric ids, Jellyfin's dash-less hex ids).
pub(crate) fn ids_of(row: &Value, local: IdKind) -> Ids {
    let mut ids = Ids::new();
    if let Some(Value::Object(p)) = row.get("ProviderIds") {
        for (k, v) in p {
            let Ok(kind) = k.parse::<IdKind>() else {
                continue;
            };
            if !kind.is_key_eligible() {
                continue;
            }
            match v {
                Value::String(s) => ids.set(kind, s),
                Value::Number(n) => ids.set(kind, &n.to_string()),
                _ => false,
            };
        }
    }
    if let Some(id) = row.get("Id").and_then(Value::as_str)
        && normalize_id(local, id).as_deref() == Some(id)
    {
        ids.set(local, id);
    }
    ids
}

fn u32_of(row: &Value, k: &str) -> Option<u32> {
    row.get(k)
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

/// A movie or series row as an item (episodes need their series: see [`episode_item`]).
pub(crate) fn title_item(row: &Value, local: IdKind) -> Option<Item> {
    let kind = match row.get("Type").and_then(Value::as_str)? {
        "Movie" => MediaType::Movie,
        "Series" => MediaType::Show,
        _ => return None,
    };
    Some(Item {
        title: row.get("Name").and_then(Value::as_str).map(str::to_owned),
        year: row
            .get("ProductionYear")
            .and_then(Value::as_u64)
            .and_then(|y| u16::try_from(y).ok()),
        ids: ids_of(row, local),
        ..Item::new(kind)
    })
}

pub(crate) fn episode_item(row: &Value, local: IdKind, series: Option<&Item>) -> Option<Item> {
    if row.get("Type").and_then(Value::as_str) != Some("Episode") {
        return None;
    }
    let show_title = series
        .and_then(|s| s.title.clone())
        .or_else(|| {
            row.get("SeriesName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let show_ids = series.map(|s| s.ids.clone()).unwrap_or_default();
    let mut ep = Item::episode(
        show_title,
        show_ids,
        u32_of(row, "ParentIndexNumber")?,
        u32_of(row, "IndexNumber")?,
    );
    ep.title = row.get("Name").and_then(Value::as_str).map(str::to_owned);
    ep.ids = ids_of(row, local);
    Some(ep)
}

/// The rows of a paged read and why it may be incomplete.
#[derive(Debug, Default)]
pub(crate) struct Paged {
    pub(crate) rows: Vec<Value>,
    pub(crate) partial: Vec<String>,
}

fn aborts(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Cancelled | ErrorKind::Auth | ErrorKind::InvalidInput
    )
}

impl MediaServer {
    /// Reads every page of a `QueryResult` endpoint (`Items` + `TotalRecordCount`),
    /// paging with `StartIndex`/`Limit`. A failed first page is an error; a later failed,
    /// short, empty or repeated page, or a count that disagrees with the total, makes the
    /// read partial.
    pub(crate) async fn fetch_all(
        &self,
        cx: &Context,
        route: &Route,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<Paged> {
        let mut pager = OffsetPages::new(what, "TotalRecordCount", self.page_size);
        let size = pager.page_size();
        let mut out = Paged::default();
        while let Some(start) = pager.next_start() {
            cx.check_cancelled()?;
            let mut req = self
                .call(Method::Get, route)
                .query(self.p("startIndex", "StartIndex"), start)
                .query(self.p("limit", "Limit"), size)
                .query(
                    self.p("enableTotalRecordCount", "EnableTotalRecordCount"),
                    "true",
                );
            for (k, v) in query {
                req = req.query(*k, v);
            }
            let body = match req.send(cx).await.and_then(|r| r.json::<Value>()) {
                Ok(b) => b,
                Err(e) if pager.first_page() || aborts(&e) => return Err(e),
                Err(e) => {
                    pager.failed(e);
                    break;
                }
            };
            let (rows, declared) = match (
                body.get("Items"),
                body.get("TotalRecordCount").and_then(Value::as_u64),
            ) {
                (Some(Value::Array(rows)), declared) => (rows.clone(), declared),
                _ => {
                    let e = Error::new(
                        ErrorKind::MalformedResponse,
                        format!("{what}: the answer has no Items list"),
                    )
                    .with_provider(self.flavor.provider_id());
                    if pager.first_page() {
                        return Err(e);
                    }
                    pager.mark_partial(e.to_string());
                    break;
                }
            };
            // A playlist holds a title more than once: entries differ by PlaylistItemId.
            let id = |r: &Value| {
                let pid = r
                    .get("PlaylistItemId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let id = r.get("Id").and_then(Value::as_str).unwrap_or("");
                format!("{id}|{pid}")
            };
            if !pager.take(rows, declared.map(|d| d as usize), id, &mut out.rows) {
                break;
            }
        }
        out.partial = pager.finish();
        Ok(out)
    }

    /// The whole library (movies, series, episodes) with the user's data.
    pub(crate) async fn library(&self, cx: &Context) -> Result<Library> {
        let route = self.flavor.items(&self.user_id);
        let paged = self
            .fetch_all(
                cx,
                &route,
                &[
                    (self.p("recursive", "Recursive"), "true".to_owned()),
                    (
                        self.p("includeItemTypes", "IncludeItemTypes"),
                        "Movie,Series,Episode".to_owned(),
                    ),
                    // Emby sends the last played date and play count only when asked.
                    (self.p("fields", "Fields"), self.flavor.library_fields()),
                    (
                        self.p("enableUserData", "EnableUserData"),
                        "true".to_owned(),
                    ),
                    (self.p("enableImages", "EnableImages"), "false".to_owned()),
                ],
                "library",
            )
            .await?;
        let local = self.flavor.local_id_kind();
        let mut lib = Library {
            partial: paged.partial,
            ..Library::default()
        };
        let mut series: HashMap<String, Item> = HashMap::new();
        for row in &paged.rows {
            if let (Some(id), Some(item)) = (
                row.get("Id").and_then(Value::as_str),
                title_item(row, local),
            ) && item.kind == MediaType::Show
            {
                series.insert(id.to_owned(), item);
            }
        }
        for row in &paged.rows {
            let Some(id) = row.get("Id").and_then(Value::as_str) else {
                continue;
            };
            let item = match title_item(row, local) {
                Some(it) => it,
                None => {
                    let s = row
                        .get("SeriesId")
                        .and_then(Value::as_str)
                        .and_then(|s| series.get(s));
                    match episode_item(row, local, s) {
                        Some(it) => it,
                        None => continue,
                    }
                }
            };
            lib.push(LibItem {
                id: id.to_owned(),
                item,
                user: UserState::from_json(row.get("UserData")),
                runtime_ms: row
                    .get("RunTimeTicks")
                    .and_then(Value::as_u64)
                    .map(|t| t / TICKS_PER_MS)
                    .filter(|t| *t > 0),
            });
        }
        Ok(lib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_ids_are_case_insensitive_and_local_ids_only_when_intact() {
        let row = json!({"Id": "a1b2", "Type": "Movie", "Name": "M", "ProductionYear": 1999,
            "ProviderIds": {"Tmdb": "603", "IMDB": "tt0133093", "Tvdb": 169, "TvRage": "x"}});
        let it = title_item(&row, IdKind::Jellyfin).unwrap();
        assert_eq!(it.ids.get(IdKind::Tmdb), Some("603"));
        assert_eq!(it.ids.get(IdKind::Imdb), Some("tt0133093"));
        assert_eq!(it.ids.get(IdKind::Tvdb), Some("169"));
        assert_eq!(
            it.ids.get(IdKind::Jellyfin),
            Some("a1b2"),
            "hex ids survive intact"
        );
        let dashed = json!({"Id": "A1B2-C3", "Type": "Movie", "Name": "M"});
        let it = title_item(&dashed, IdKind::Jellyfin).unwrap();
        assert_eq!(
            it.ids.get(IdKind::Jellyfin),
            None,
            "an id normalization would change is not attached"
        );
        let emby = json!({"Id": "12345", "Type": "Series", "Name": "S"});
        let it = title_item(&emby, IdKind::Emby).unwrap();
        assert_eq!(it.kind, MediaType::Show);
        assert_eq!(it.ids.get(IdKind::Emby), Some("12345"));
    }

    #[test]
    fn user_data_ticks_become_milliseconds() {
        let u = UserState::from_json(Some(&json!({
            "Played": true, "PlaybackPositionTicks": 18_000_000_000u64,
            "LastPlayedDate": "2024-03-01T12:00:00.0000000Z", "IsFavorite": true
        })));
        assert_eq!(u.position_ms, 1_800_000);
        assert_eq!(u.last_played, Some(1_709_294_400));
        assert!(u.played && u.favorite);
    }
}

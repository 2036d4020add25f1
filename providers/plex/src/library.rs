//! The PMS library: every movie, show and episode of the allowed sections with its GUIDs
//! and the account's state (watched, rating, resume point). Reads of history, ratings
//! and progress, and the id resolution of every write, go through it.

use std::collections::HashMap;

use ferry_core::identity::{AliasIndex, ids_from_guid};
use ferry_core::{Context, Error, ErrorKind, IdKind, Ids, Item, MediaType, Result};
use serde_json::Value;

use crate::PlexProvider;
use crate::paging::{f64_field, fetch_all, i64_field, media_container, str_field, u64_field};

/// One library item and the account's state for it.
#[derive(Debug, Clone)]
pub(crate) struct LibItem {
    pub(crate) rating_key: String,
    pub(crate) item: Item,
    /// The `plex://…` guid, which is also how Discover knows the title.
    pub(crate) plex_guid: Option<String>,
    pub(crate) view_count: u64,
    pub(crate) last_viewed_at: Option<i64>,
    pub(crate) view_offset: Option<u64>,
    pub(crate) duration: Option<u64>,
    pub(crate) user_rating: Option<f64>,
    pub(crate) last_rated_at: Option<i64>,
}

/// The scanned library, indexed for id resolution.
#[derive(Debug, Default)]
pub(crate) struct Library {
    pub(crate) items: Vec<LibItem>,
    by_key: HashMap<String, usize>,
    by_guid: HashMap<String, usize>,
    index: AliasIndex,
    /// Why the scan may be incomplete.
    pub(crate) partial: Vec<String>,
}

impl Library {
    fn push(&mut self, li: LibItem) {
        let n = self.items.len();
        if self.by_key.contains_key(&li.rating_key) {
            return;
        }
        self.by_key.insert(li.rating_key.clone(), n);
        if let Some(g) = &li.plex_guid {
            self.by_guid.entry(g.to_ascii_lowercase()).or_insert(n);
        }
        self.index.insert(&format!("#{n}"), &li.item);
        self.items.push(li);
    }

    pub(crate) fn get(&self, rating_key: &str) -> Option<&LibItem> {
        self.by_key.get(rating_key).map(|i| &self.items[*i])
    }

    pub(crate) fn by_plex_guid(&self, guid: &str) -> Option<&LibItem> {
        self.by_guid
            .get(&guid.to_ascii_lowercase())
            .map(|i| &self.items[*i])
    }

    /// The library item that is the same title as `item` (exact, strong ids, aliases).
    pub(crate) fn resolve(&self, item: &Item) -> Option<&LibItem> {
        if let Some(g) = item.ids.get(IdKind::Guid)
            && let Some(li) = self.by_plex_guid(g)
            && li.item.kind == item.kind
        {
            return Some(li);
        }
        let hit = self.index.find(&item.key(), item)?;
        let n: usize = hit.strip_prefix('#')?.parse().ok()?;
        self.items.get(n)
    }
}

/// The external ids of a Plex row: its `Guid` array plus its `guid`. Legacy agent guids
/// of episodes (`com.plexapp.agents.thetvdb://81189/1/2`) name the show, so they are not
/// taken as episode ids.
pub(crate) fn ids_of(row: &Value, episode: bool) -> Ids {
    let mut ids = Ids::new();
    if let Some(Value::Array(guids)) = row.get("Guid") {
        for g in guids {
            if let Some(id) = g.get("id").and_then(Value::as_str)
                && let Some((k, v)) = ids_from_guid(id)
            {
                ids.set(k, &v);
            }
        }
    }
    if let Some(g) = row.get("guid").and_then(Value::as_str) {
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

fn year(row: &Value) -> Option<u16> {
    u64_field(row, "year").and_then(|y| u16::try_from(y).ok())
}

/// A movie or show row as an [`Item`].
pub(crate) fn title_item(row: &Value) -> Option<Item> {
    let kind = match row.get("type").and_then(Value::as_str)? {
        "movie" => MediaType::Movie,
        "show" => MediaType::Show,
        _ => return None,
    };
    Some(Item {
        title: str_field(row, "title"),
        year: year(row),
        ids: ids_of(row, false),
        ..Item::new(kind)
    })
}

fn lib_item(row: &Value, item: Item) -> Option<LibItem> {
    Some(LibItem {
        rating_key: str_field(row, "ratingKey")?,
        plex_guid: row
            .get("guid")
            .and_then(Value::as_str)
            .filter(|g| g.starts_with("plex://"))
            .map(str::to_owned),
        item,
        view_count: u64_field(row, "viewCount").unwrap_or(0),
        last_viewed_at: i64_field(row, "lastViewedAt"),
        view_offset: u64_field(row, "viewOffset").filter(|o| *o > 0),
        duration: u64_field(row, "duration").filter(|d| *d > 0),
        user_rating: f64_field(row, "userRating"),
        last_rated_at: i64_field(row, "lastRatedAt"),
    })
}

/// A library section that ferry reads.
#[derive(Debug, Clone)]
struct Section {
    key: String,
    kind: String,
    title: String,
}

impl PlexProvider {
    async fn sections(&self, cx: &Context) -> Result<Vec<Section>> {
        let body: Value = self
            .pms
            .get("GET /library/sections", "/library/sections")
            .send_json(cx)
            .await?;
        let mc = media_container(body, "library sections")?;
        let dirs = match mc.get("Directory") {
            Some(Value::Array(d)) => d.clone(),
            None => Vec::new(),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::MalformedResponse,
                    "library sections: Directory is not a list",
                ));
            }
        };
        let all: Vec<Section> = dirs
            .iter()
            .filter_map(|d| {
                Some(Section {
                    key: str_field(d, "key")?,
                    kind: str_field(d, "type")?,
                    title: str_field(d, "title").unwrap_or_default(),
                })
            })
            .filter(|s| s.kind == "movie" || s.kind == "show")
            .collect();
        let Some(wanted) = &self.libraries else {
            return Ok(all);
        };
        let chosen: Vec<Section> = all
            .iter()
            .filter(|s| {
                wanted
                    .iter()
                    .any(|w| w.trim() == s.key || w.trim().eq_ignore_ascii_case(&s.title))
            })
            .cloned()
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| {
                !all.iter()
                    .any(|s| w.trim() == s.key || w.trim().eq_ignore_ascii_case(&s.title))
            })
            .collect();
        if !missing.is_empty() {
            // A library that vanished must never read as "everything in it was deleted".
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "configured libraries not found on the server: {}; it has: {}",
                    missing
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    all.iter()
                        .map(|s| format!("{} ({})", s.title, s.key))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_provider("plex"));
        }
        Ok(chosen)
    }

    /// Scans the allowed sections: movies, shows, then episodes (which need their show).
    pub(crate) async fn library(&self, cx: &Context) -> Result<Library> {
        let sections = self.sections(cx).await?;
        let mut lib = Library::default();
        if sections.is_empty() {
            lib.partial
                .push("the server has no movie or show library".to_owned());
        }
        for s in &sections {
            let path = format!("/library/sections/{}/all", s.key);
            let what = format!("library section {}", s.title);
            let types: &[&str] = if s.kind == "movie" {
                &["1"]
            } else {
                &["2", "4"]
            };
            let mut shows: HashMap<String, (String, Ids)> = HashMap::new();
            for ty in types {
                let paged = fetch_all(
                    cx,
                    &self.pms,
                    "GET /library/sections/{id}/all",
                    &path,
                    &[("type", (*ty).to_owned()), ("includeGuids", "1".to_owned())],
                    self.page_size,
                    &what,
                )
                .await?;
                lib.partial.extend(paged.partial);
                for row in &paged.rows {
                    let item = if *ty == "4" {
                        let show_key = str_field(row, "grandparentRatingKey");
                        let (show_title, show_ids) = show_key
                            .and_then(|k| shows.get(&k).cloned())
                            .unwrap_or_else(|| {
                                (str_field(row, "grandparentTitle").unwrap_or_default(), {
                                    let mut ids = Ids::new();
                                    if let Some(g) =
                                        row.get("grandparentGuid").and_then(Value::as_str)
                                        && let Some((k, v)) = ids_from_guid(g)
                                    {
                                        ids.set(k, &v);
                                    }
                                    ids
                                })
                            });
                        let (Some(season), Some(episode)) =
                            (u64_field(row, "parentIndex"), u64_field(row, "index"))
                        else {
                            continue;
                        };
                        let mut ep =
                            Item::episode(show_title, show_ids, season as u32, episode as u32);
                        ep.title = str_field(row, "title");
                        ep.ids = ids_of(row, true);
                        ep
                    } else {
                        let Some(item) = title_item(row) else {
                            continue;
                        };
                        if item.kind == MediaType::Show
                            && let Some(k) = str_field(row, "ratingKey")
                        {
                            shows.insert(
                                k,
                                (item.title.clone().unwrap_or_default(), item.ids.clone()),
                            );
                        }
                        item
                    };
                    if let Some(li) = lib_item(row, item) {
                        lib.push(li);
                    }
                }
            }
        }
        Ok(lib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guids_become_ids() {
        let row = json!({
            "guid": "plex://movie/5d7768ba96b655001fdc0408",
            "Guid": [{"id": "imdb://tt0133093"}, {"id": "tmdb://603"}, {"id": "tvdb://169"}],
        });
        let ids = ids_of(&row, false);
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
        let movie = json!({"guid": "com.plexapp.agents.imdb://tt0133093?lang=en"});
        assert_eq!(ids_of(&movie, false).get(IdKind::Imdb), Some("tt0133093"));
        let ep = json!({"guid": "com.plexapp.agents.thetvdb://81189/1/2?lang=en"});
        assert!(
            ids_of(&ep, true).is_empty(),
            "a legacy episode guid names the show"
        );
    }

    #[test]
    fn resolution_prefers_the_plex_guid_then_external_ids() {
        let mut lib = Library::default();
        let row = json!({"ratingKey": "7", "type": "movie", "title": "M", "year": 1999,
            "guid": "plex://movie/abc", "Guid": [{"id": "tmdb://603"}]});
        let li = lib_item(&row, title_item(&row).unwrap()).unwrap();
        lib.push(li);
        let by_tmdb = Item::movie("M", 1999, Ids::new().with(IdKind::Tmdb, "603"));
        assert_eq!(
            lib.resolve(&by_tmdb).map(|l| l.rating_key.as_str()),
            Some("7")
        );
        let by_guid = Item::movie("x", 1, Ids::new().with(IdKind::Guid, "plex://movie/ABC"));
        assert_eq!(
            lib.resolve(&by_guid).map(|l| l.rating_key.as_str()),
            Some("7")
        );
        let show = Item::show("M", 1999, Ids::new().with(IdKind::Tmdb, "603"));
        assert!(lib.resolve(&show).is_none(), "types never cross");
    }
}

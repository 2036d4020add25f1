//! The wire: typed rows as Plex sends them (each decoded on its own, so one bad row
//! makes the read partial instead of vanishing), and the library they make.
//!
//! Every answer is a `{"MediaContainer": {...}}`; lists hold their rows under
//! `Metadata` (`Directory` for sections, `Setting` for preferences), left out when empty,
//! and declare `totalSize` when asked for a page. Numbers are JSON numbers (a string
//! where a count belongs is a bad row, never read as 0); keys (`ratingKey`) are strings,
//! and a number there is taken as the same key.

use std::collections::HashMap;

use ferry_core::identity::AliasIndex;
use ferry_core::{IdKind, Item, Proof};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"MediaContainer": T}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    #[serde(rename = "MediaContainer")]
    pub(crate) mc: T,
}

/// One page of a list: its rows, undecoded, and its declared `totalSize`, as sent.
#[derive(Debug, Deserialize)]
pub(crate) struct ListPage {
    #[serde(rename = "Metadata", default)]
    pub(crate) rows: Option<Vec<Value>>,
    #[serde(rename = "totalSize", default)]
    pub(crate) total: Option<Value>,
}

/// `GET /library/sections`.
#[derive(Debug, Deserialize)]
pub(crate) struct Sections {
    #[serde(rename = "Directory", default)]
    pub(crate) rows: Option<Vec<Value>>,
}

/// `GET /:/prefs`.
#[derive(Debug, Deserialize)]
pub(crate) struct Prefs {
    #[serde(rename = "Setting", default)]
    pub(crate) rows: Option<Vec<Value>>,
}

/// `GET /identity`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Identity {
    #[serde(default)]
    pub(crate) machine_identifier: Option<String>,
}

/// A key Plex sends as a string; a number is taken as the same key, an empty string is
/// no key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key(pub(crate) String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(u64),
        }
        match Raw::deserialize(d).map_err(|_| de::Error::custom("expected a string key"))? {
            Raw::S(s) if s.trim().is_empty() => Err(de::Error::custom("empty key")),
            Raw::S(s) => Ok(Key(s)),
            Raw::N(n) => Ok(Key(n.to_string())),
        }
    }
}

/// A flag sent as a boolean, or as `0`/`1` (a number or a string).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flag(pub(crate) bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            N(u64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| de::Error::custom("expected a flag"))? {
            Raw::B(b) => Ok(Flag(b)),
            Raw::N(0) => Ok(Flag(false)),
            Raw::N(1) => Ok(Flag(true)),
            Raw::S(s) if s == "0" => Ok(Flag(false)),
            Raw::S(s) if s == "1" => Ok(Flag(true)),
            _ => Err(de::Error::custom("a flag must be true/false or 0/1")),
        }
    }
}

/// A scalar kept as text (a setting's value, the parts of a checkpoint), whatever JSON
/// type the server chose for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub(crate) fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(n) => n.to_string(),
            // As JSON writes it (`8.0`), so checkpoints read the same as before.
            Scalar::Float(f) => {
                serde_json::Number::from_f64(*f).map_or_else(|| f.to_string(), |n| n.to_string())
            }
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// `{"id": "imdb://tt0133093"}` in a row's `Guid` list.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GuidRow {
    pub(crate) id: String,
}

/// One row of a metadata list: a library item, a playlist entry, a Discover watchlist
/// title. `ratingKey` and `type` are required: a row without them matches nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetadataRow {
    pub(crate) rating_key: Key,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) year: Option<u16>,
    #[serde(default)]
    pub(crate) guid: Option<String>,
    #[serde(rename = "Guid", default)]
    pub(crate) guids: Option<Vec<GuidRow>>,
    #[serde(default)]
    pub(crate) grandparent_rating_key: Option<Key>,
    #[serde(default)]
    pub(crate) grandparent_title: Option<String>,
    #[serde(default)]
    pub(crate) grandparent_guid: Option<String>,
    #[serde(default)]
    pub(crate) parent_index: Option<u32>,
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) view_count: Option<u64>,
    #[serde(default)]
    pub(crate) last_viewed_at: Option<i64>,
    #[serde(default)]
    pub(crate) view_offset: Option<u64>,
    #[serde(default)]
    pub(crate) duration: Option<u64>,
    #[serde(default)]
    pub(crate) user_rating: Option<f64>,
    #[serde(default)]
    pub(crate) last_rated_at: Option<i64>,
    /// Playlist entries: the entry's own id (a title may be in a playlist twice).
    #[serde(rename = "playlistItemID", default)]
    pub(crate) playlist_item_id: Option<Key>,
}

/// One row of `/status/sessions/history/all`. A play of an item that is gone from the
/// server may come without a `ratingKey`: it names nothing ferry can match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryWire {
    pub(crate) history_key: String,
    #[serde(default)]
    pub(crate) rating_key: Option<Key>,
    pub(crate) viewed_at: i64,
}

/// One history row: its id, the item's rating key and when it was played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryRow {
    pub(crate) id: u64,
    pub(crate) rating_key: String,
    pub(crate) viewed_at: i64,
}

/// One row of `/playlists` (playlists and, without `type=15`, playlist folders).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlaylistWire {
    pub(crate) rating_key: Key,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) playlist_type: Option<String>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) summary: Option<String>,
    #[serde(default)]
    pub(crate) smart: Option<Flag>,
    #[serde(default)]
    pub(crate) read_only: Option<Flag>,
    #[serde(default)]
    pub(crate) special_playlist_type: Option<String>,
}

/// A video playlist ferry reads.
#[derive(Debug, Clone)]
pub(crate) struct PlaylistInfo {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) summary: Option<String>,
    pub(crate) smart: bool,
    /// Why ferry must not write it (`readOnly`, `specialPlaylistType`), if so.
    pub(crate) read_only: Option<String>,
}

/// One row of `/library/sections`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SectionRow {
    pub(crate) key: Key,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) title: Option<String>,
}

/// One row of `/:/prefs`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SettingRow {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) value: Option<Scalar>,
}

/// The newest row of a list, for a checkpoint: only what the checkpoint names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeadRow {
    #[serde(default)]
    pub(crate) rating_key: Option<Scalar>,
    #[serde(default)]
    pub(crate) history_key: Option<Scalar>,
    #[serde(default)]
    pub(crate) viewed_at: Option<Scalar>,
    #[serde(default)]
    pub(crate) watchlisted_at: Option<Scalar>,
    #[serde(default)]
    pub(crate) last_viewed_at: Option<Scalar>,
    #[serde(default)]
    pub(crate) view_count: Option<Scalar>,
    #[serde(default)]
    pub(crate) last_rated_at: Option<Scalar>,
    #[serde(default)]
    pub(crate) user_rating: Option<Scalar>,
}

/// The played state of an item as read back after a write.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ItemState {
    pub(crate) view_count: u64,
    pub(crate) last_viewed_at: Option<i64>,
    pub(crate) view_offset: Option<u64>,
    pub(crate) user_rating: Option<f64>,
    pub(crate) last_rated_at: Option<i64>,
}

impl ItemState {
    pub(crate) fn of(row: &MetadataRow) -> ItemState {
        ItemState {
            view_count: row.view_count.unwrap_or(0),
            last_viewed_at: row.last_viewed_at,
            view_offset: row.view_offset.filter(|o| *o > 0),
            user_rating: row.user_rating,
            last_rated_at: row.last_rated_at,
        }
    }
}

/// One library item and the account's state for it.
#[derive(Debug, Clone)]
pub(crate) struct LibItem {
    pub(crate) rating_key: String,
    pub(crate) item: Item,
    /// The `plex://…` guid, which is also how Discover knows the title.
    pub(crate) plex_guid: Option<String>,
    pub(crate) state: ItemState,
    pub(crate) duration: Option<u64>,
}

/// The scanned library, indexed for id resolution, and how complete the read was.
#[derive(Debug, Clone)]
pub(crate) struct Library {
    pub(crate) items: Vec<LibItem>,
    by_key: HashMap<String, usize>,
    by_guid: HashMap<String, usize>,
    index: AliasIndex,
    pub(crate) proof: Proof,
}

impl Library {
    pub(crate) fn new(proof: Proof) -> Self {
        Library {
            items: Vec::new(),
            by_key: HashMap::new(),
            by_guid: HashMap::new(),
            index: AliasIndex::new(),
            proof,
        }
    }

    pub(crate) fn push(&mut self, li: LibItem) {
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

    /// The account's state of an item, to follow ferry's own confirmed writes.
    pub(crate) fn state_mut(&mut self, rating_key: &str) -> Option<&mut ItemState> {
        let i = *self.by_key.get(rating_key)?;
        Some(&mut self.items[i].state)
    }

    pub(crate) fn by_plex_guid(&self, guid: &str) -> Option<&LibItem> {
        self.by_guid
            .get(&guid.to_ascii_lowercase())
            .map(|i| &self.items[*i])
    }

    /// The library item that is the same title as `item` (plex guid, then exact key,
    /// strong ids, aliases).
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

    /// Why the read was partial, one reason each (empty: complete).
    pub(crate) fn partial(&self) -> &[String] {
        self.proof.reasons()
    }
}

/// A play ferry marked with `/:/scrobble`: the item's `lastViewedAt` right after the
/// scrobble, and the time the play really happened (see [`crate::history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    pub(crate) stamp: i64,
    pub(crate) at: i64,
}

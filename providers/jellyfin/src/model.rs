//! The wire: typed rows as the servers send them (each decoded on its own, so one bad
//! row makes the read partial instead of vanishing), and the library they make.

use std::collections::{BTreeMap, HashMap};

use ferry_core::identity::AliasIndex;
use ferry_core::{Item, Proof};
use serde::Deserialize;
use serde_json::Value;

/// `GET /System/Info`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SystemInfo {
    #[serde(default)]
    pub(crate) version: Option<String>,
}

/// One row of an item list (`BaseItemDto`), with the fields ferry asks for. `Id` must be
/// a string and `Type` present: a row without them cannot be matched to anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ItemRow {
    pub(crate) id: String,
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) production_year: Option<u16>,
    /// External ids; values are strings, some servers send numbers.
    #[serde(default)]
    pub(crate) provider_ids: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub(crate) series_id: Option<String>,
    #[serde(default)]
    pub(crate) series_name: Option<String>,
    #[serde(default)]
    pub(crate) parent_index_number: Option<u32>,
    #[serde(default)]
    pub(crate) index_number: Option<u32>,
    #[serde(default)]
    pub(crate) run_time_ticks: Option<u64>,
    /// Present on every row of a read with `EnableUserData`; `null` there is a bad row.
    #[serde(default)]
    pub(crate) user_data: Option<UserDataRow>,
    /// Playlist entries only: the entry's own id (a title may be in a playlist twice).
    #[serde(default)]
    pub(crate) playlist_item_id: Option<String>,
}

/// `UserItemDataDto`: the user's state for one item. Flags are booleans; a string flag
/// is a bad row, never read as "false".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UserDataRow {
    #[serde(default)]
    pub(crate) played: bool,
    #[serde(default)]
    pub(crate) last_played_date: Option<String>,
    #[serde(default)]
    pub(crate) playback_position_ticks: u64,
    #[serde(default)]
    pub(crate) is_favorite: bool,
}

/// A playlist as listed among the user's items.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PlaylistRow {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// `GET /Users/Me`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Me {
    #[serde(default)]
    pub(crate) id: Option<String>,
}

/// The user's state for one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserState {
    pub(crate) played: bool,
    pub(crate) last_played: Option<i64>,
    pub(crate) position_ms: u64,
    pub(crate) favorite: bool,
}

/// One library item.
#[derive(Debug, Clone)]
pub(crate) struct LibItem {
    pub(crate) id: String,
    pub(crate) item: Item,
    pub(crate) user: UserState,
    pub(crate) runtime_ms: Option<u64>,
}

/// The indexed library, and how complete the read that made it was.
#[derive(Debug, Clone)]
pub(crate) struct Library {
    pub(crate) items: Vec<LibItem>,
    by_id: HashMap<String, usize>,
    index: AliasIndex,
    pub(crate) proof: Proof,
}

impl Library {
    pub(crate) fn new(proof: Proof) -> Self {
        Library {
            items: Vec::new(),
            by_id: HashMap::new(),
            index: AliasIndex::new(),
            proof,
        }
    }

    pub(crate) fn push(&mut self, li: LibItem) {
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

    /// Why the read was partial, one reason each (empty: complete).
    pub(crate) fn partial(&self) -> &[String] {
        self.proof.reasons()
    }
}

//! The simulated server's data: one user's library, user data and playlists, the clock
//! and the fault knobs, behind one mutex.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::sim::knobs::Knobs;

use ferry_core::Timestamp;

use super::seed::item_id;
use super::{Flavor, JfItem, JfPlaylist};

#[derive(Debug)]
pub(super) struct JfState {
    pub(super) flavor: Flavor,
    pub(super) token: String,
    /// The token is an API key: it carries no user.
    pub(super) api_key: bool,
    pub(super) items: Vec<JfItem>,
    pub(super) by_id: HashMap<String, usize>,
    pub(super) playlists: Vec<JfPlaylist>,
    pub(super) next_id: u64,
    pub(super) now: i64,
    pub(super) ignore_date_played: bool,
    pub(super) knobs: Knobs,
}

impl JfState {
    /// Advances the server clock by a second and returns it.
    pub(super) fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    pub(super) fn item(&self, id: &str) -> Option<&JfItem> {
        self.by_id.get(id).map(|i| &self.items[*i])
    }

    /// A new item id of this server's shape.
    pub(super) fn new_id(&mut self, tag: u64) -> String {
        let n = self.next_id;
        self.next_id += 1;
        item_id(self.flavor, tag, n)
    }
}

pub(super) fn lock(m: &Mutex<JfState>) -> MutexGuard<'_, JfState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `2024-03-01T12:00:00.0000000Z`, the way Jellyfin writes dates.
pub fn jellyfin_date(epoch: i64) -> String {
    let s = Timestamp::from_unix(epoch).to_rfc3339();
    format!("{}.0000000Z", s.trim_end_matches('Z'))
}

/// Emby's `DatePlayed` format, `yyyyMMddHHmmss` in UTC.
pub(super) fn parse_compact_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14]
    );
    Timestamp::parse(&iso).map(Timestamp::unix)
}

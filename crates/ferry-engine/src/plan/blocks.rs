//! Tombstone matching: a tombstone is the id-token set of a title (or play) ferry removed,
//! so a title is recognised whichever id the other side files it under.

use std::collections::HashMap;

use ferry_core::identity::id_tokens;
use ferry_core::{Entry, MediaType, Payload, Timestamp};

/// One live tombstone, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tomb {
    /// The instance ferry removed the title from.
    pub instance: String,
    pub key: String,
    pub event_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Live tombstones of one pair and feature, indexed by `(media type, token)`.
#[derive(Debug, Clone, Default)]
pub struct TombstoneIndex {
    tombs: Vec<Tomb>,
    by_token: HashMap<(MediaType, String), Vec<u32>>,
}

impl TombstoneIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_state(tombs: &[ferry_state::Tombstone]) -> Self {
        let mut idx = TombstoneIndex::new();
        for t in tombs {
            idx.insert(
                Tomb {
                    instance: t.instance.clone(),
                    key: t.key.clone(),
                    event_at: t.event_at,
                    created_at: t.created_at,
                },
                t.media_type,
                t.tokens.iter().cloned(),
            );
        }
        idx
    }

    pub fn insert(
        &mut self,
        tomb: Tomb,
        media_type: MediaType,
        tokens: impl IntoIterator<Item = String>,
    ) {
        let n = self.tombs.len() as u32;
        self.tombs.push(tomb);
        for t in tokens {
            self.by_token.entry((media_type, t)).or_default().push(n);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tombs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tombs.len()
    }

    /// The tombstone written when ferry removed this title (play) from `instance`, if any:
    /// same media type, a shared id token, and for plays a time within `tol` seconds.
    pub fn find(&self, entry: &Entry, instance: &str, tol: u64) -> Option<&Tomb> {
        if self.tombs.is_empty() {
            return None;
        }
        let played = match entry.payload {
            Payload::Watch { watched_at } => Some(watched_at),
            _ => None,
        };
        for t in id_tokens(&entry.item) {
            let Some(ids) = self.by_token.get(&(entry.item.kind, t)) else {
                continue;
            };
            for i in ids {
                let tomb = &self.tombs[*i as usize];
                if tomb.instance != instance {
                    continue;
                }
                let same_play = match (played, tomb.event_at) {
                    (Some(a), Some(b)) => a.abs_diff(b) <= tol,
                    (None, None) => true,
                    _ => false,
                };
                if same_play {
                    return Some(tomb);
                }
            }
        }
        None
    }
}

/// Whether `entry` was changed on purpose after `since` (a re-add newer than the
/// tombstone). Plays never are: a play's time is when it was watched.
pub(crate) fn newer_than(entry: &Entry, since: Timestamp) -> bool {
    match entry.payload {
        Payload::Watch { .. } => false,
        _ => entry.payload.changed_at().is_some_and(|t| t > since),
    }
}

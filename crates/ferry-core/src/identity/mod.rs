//! Item identity: which external ids an item carries, the one canonical key it is filed
//! under, and how items held by two different providers are recognised as the same title.
//!
//! This follows CrossWatch's `id_map` rules exactly: providers name the same
//! film with different ids, and every hazard in "deletions get resurrected" starts with
//! two providers disagreeing about identity.

mod ids;
mod key;
mod matching;
mod titles;

pub use ids::{IdKind, Ids, ids_from_guid, normalize_id};
pub use key::{
    alias_tokens, canonical_key, event_key, id_tokens, normalize_media_type, split_event_key,
    strong_tokens,
};
pub use matching::AliasIndex;
pub use titles::{TitleIndex, nearest_play};

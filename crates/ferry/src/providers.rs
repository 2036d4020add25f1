//! The providers linked into this binary.
//!
//! A provider crate that is a dependency but never referenced is not linked, and its
//! `inventory::submit!` silently disappears. One `use` line per cargo feature forces the
//! link; the test below fails if a feature is on but its provider did not register.

#[cfg(feature = "provider-emby")]
use emby as _;
#[cfg(feature = "provider-jellyfin")]
use jellyfin as _;
#[cfg(feature = "provider-local")]
use local as _;
#[cfg(feature = "provider-mdblist")]
use mdblist as _;
#[cfg(feature = "provider-plex")]
use plex as _;
#[cfg(feature = "provider-simkl")]
use simkl as _;
#[cfg(feature = "provider-tmdb")]
use tmdb as _;
#[cfg(feature = "provider-trakt")]
use trakt as _;
// xtask:use (new-provider inserts above)

/// The provider ids whose cargo features are enabled in this build.
#[cfg(test)]
// Each push sits behind its own cargo feature, so neither lint applies.
#[allow(unused_mut, clippy::vec_init_then_push)]
pub(crate) fn enabled_features() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    #[cfg(feature = "provider-local")]
    v.push("local");
    #[cfg(feature = "provider-trakt")]
    v.push("trakt");
    #[cfg(feature = "provider-plex")]
    v.push("plex");
    #[cfg(feature = "provider-jellyfin")]
    v.push("jellyfin");
    #[cfg(feature = "provider-emby")]
    v.push("emby");
    #[cfg(feature = "provider-simkl")]
    v.push("simkl");
    #[cfg(feature = "provider-mdblist")]
    v.push("mdblist");
    #[cfg(feature = "provider-tmdb")]
    v.push("tmdb");
    // xtask:enabled (new-provider inserts above)
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enabled_feature_registered_exactly_one_provider() {
        let registered: Vec<&str> = ferry_core::registry::providers()
            .iter()
            .map(|d| d.id)
            .collect();
        for id in enabled_features() {
            let n = registered.iter().filter(|r| **r == id).count();
            assert_eq!(
                n, 1,
                "provider `{id}` is enabled but registered {n} times; registered: {registered:?}"
            );
        }
        for id in &registered {
            assert!(
                enabled_features().contains(id),
                "provider `{id}` registered without its cargo feature"
            );
        }
    }
}

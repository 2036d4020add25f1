//! The five kinds of watch state ferry keeps in agreement.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One kind of watch state. The order of the variants is the default run order:
/// history runs before watchlist so a title watched and removed from the watchlist in
/// the same session is seen as watched first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    History,
    Watchlist,
    Ratings,
    Progress,
    Playlists,
}

impl Feature {
    /// Every feature, in default run order.
    pub const ALL: [Feature; 5] = [
        Feature::History,
        Feature::Watchlist,
        Feature::Ratings,
        Feature::Progress,
        Feature::Playlists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::History => "history",
            Feature::Watchlist => "watchlist",
            Feature::Ratings => "ratings",
            Feature::Progress => "progress",
            Feature::Playlists => "playlists",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string names no feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown feature `{0}`; expected one of: history, watchlist, ratings, progress, playlists")]
pub struct UnknownFeature(pub String);

impl FromStr for Feature {
    type Err = UnknownFeature;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "history" => Ok(Feature::History),
            "watchlist" => Ok(Feature::Watchlist),
            "ratings" => Ok(Feature::Ratings),
            "progress" => Ok(Feature::Progress),
            "playlists" => Ok(Feature::Playlists),
            _ => Err(UnknownFeature(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_strings() {
        for f in Feature::ALL {
            assert_eq!(f.as_str().parse::<Feature>().unwrap(), f);
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
        }
        assert!("watched".parse::<Feature>().is_err());
    }
}

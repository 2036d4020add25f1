//! What a Trakt simulator starts with (credentials, account limits) and how tests and
//! demos seed its account with sample titles.

use ferry_core::{Item, MediaType, Timestamp};

use super::TraktSim;
use super::state::{ListRow, PlayRow, PlaybackRow, RatingRow, State, UserList};

/// Account limits as `/users/settings` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraktLimits {
    pub watchlist_items: usize,
    pub lists: usize,
    pub list_items: usize,
}

impl TraktLimits {
    /// Trakt's 2026 free tier.
    pub const FREE: TraktLimits = TraktLimits {
        watchlist_items: 250,
        lists: 5,
        list_items: 250,
    };
    /// Trakt VIP.
    pub const VIP: TraktLimits = TraktLimits {
        watchlist_items: 5_000,
        lists: 100,
        list_items: 5_000,
    };
}

/// Credentials and account settings the simulator starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraktSimConfig {
    pub client_id: String,
    pub client_secret: String,
    pub access_token: String,
    pub refresh_token: String,
    pub limits: TraktLimits,
    pub vip: bool,
    /// Answer 429 past Trakt's published limits.
    pub enforce_rate_limits: bool,
}

impl Default for TraktSimConfig {
    fn default() -> Self {
        TraktSimConfig {
            client_id: "sim-client-id-4f1c9a7e".into(),
            client_secret: "sim-client-secret-b83d2e61".into(),
            access_token: "sim-access-token-0d5a7c93".into(),
            refresh_token: "sim-refresh-token-6e2b8f14".into(),
            limits: TraktLimits::FREE,
            vip: false,
            enforce_rate_limits: true,
        }
    }
}

impl TraktSim {
    // -----------------------------------------------------------------------------------
    // Seeding. Items resolve to sample titles by their ids; unknown items are registered
    // as new titles first.

    fn resolve(st: &mut State, item: &Item) -> Option<(MediaType, u64)> {
        st.catalog.register(item).map(|t| t.key())
    }

    /// Puts items on the watchlist (in order, skipping ones already there), ignoring the
    /// account limit.
    pub fn seed_watchlist(&self, items: &[Item]) {
        self.with(|st| {
            for item in items {
                let Some(key) = Self::resolve(st, item) else {
                    continue;
                };
                if st.watchlist.iter().any(|r| r.key == key) {
                    continue;
                }
                let id = st.next_id();
                let listed_at = st.now_ms();
                st.watchlist.push(ListRow {
                    id,
                    key,
                    listed_at,
                    notes: None,
                });
            }
            st.touch(&[("watchlist", "updated_at")]);
        })
    }

    /// The user takes items off the watchlist on trakt.tv (stamping `watchlist.updated_at`
    /// when something left); items not there are ignored.
    pub fn unwatchlist(&self, items: &[Item]) {
        self.with(|st| {
            let keys: Vec<(MediaType, u64)> =
                items.iter().filter_map(|i| Self::resolve(st, i)).collect();
            let before = st.watchlist.len();
            st.watchlist.retain(|r| !keys.contains(&r.key));
            if st.watchlist.len() < before {
                st.touch(&[("watchlist", "updated_at")]);
            }
        })
    }

    /// Rates items (1-10; other values are skipped).
    pub fn seed_ratings(&self, ratings: &[(Item, u8)]) {
        self.with(|st| {
            for (item, rating) in ratings {
                if !(1..=10).contains(rating) {
                    continue;
                }
                let Some(key) = Self::resolve(st, item) else {
                    continue;
                };
                let rated_at = st.now_ms();
                st.ratings.retain(|r| r.key != key);
                st.ratings.push(RatingRow {
                    key,
                    rating: *rating,
                    rated_at,
                });
            }
            st.touch(&[
                ("movies", "rated_at"),
                ("shows", "rated_at"),
                ("seasons", "rated_at"),
                ("episodes", "rated_at"),
            ]);
        })
    }

    /// Adds plays of movies and episodes, as state: unlike `POST /sync/history`, it leaves
    /// the watchlist alone.
    pub fn seed_history(&self, plays: &[(Item, Timestamp)]) {
        self.with(|st| {
            for (item, at) in plays {
                let Some(key) = Self::resolve(st, item) else {
                    continue;
                };
                if !matches!(key.0, MediaType::Movie | MediaType::Episode) {
                    continue;
                }
                let id = st.next_id();
                st.history.push(PlayRow {
                    id,
                    key,
                    watched_at: at.unix() * 1000,
                });
            }
            st.touch(&[("movies", "watched_at"), ("episodes", "watched_at")]);
        })
    }

    /// Sets playback progress (percent) of movies and episodes.
    pub fn seed_playback(&self, progress: &[(Item, f64)]) {
        self.with(|st| {
            for (item, pct) in progress {
                let Some(key) = Self::resolve(st, item) else {
                    continue;
                };
                let id = st.next_id();
                let paused_at = st.now_ms();
                st.playback.retain(|p| p.key != key);
                st.playback.push(PlaybackRow {
                    id,
                    key,
                    progress: *pct,
                    paused_at,
                });
            }
            st.touch(&[("movies", "paused_at"), ("episodes", "paused_at")]);
        })
    }

    /// Creates a personal list holding `items` in order; returns its trakt id.
    pub fn seed_list(&self, name: &str, items: &[Item]) -> u64 {
        self.with(|st| {
            let id = st.next_id();
            let now = st.now_ms();
            let mut rows: Vec<ListRow> = Vec::new();
            for item in items {
                let Some(key) = Self::resolve(st, item) else {
                    continue;
                };
                if rows.iter().any(|r| r.key == key) {
                    continue;
                }
                let row_id = st.next_id();
                rows.push(ListRow {
                    id: row_id,
                    key,
                    listed_at: now,
                    notes: None,
                });
            }
            st.lists.push(UserList {
                id,
                slug: format!("seeded-list-{id}"),
                name: name.to_owned(),
                description: None,
                privacy: "private".into(),
                created_at: now,
                updated_at: now,
                items: rows,
            });
            st.touch(&[("lists", "updated_at")]);
            id
        })
    }
}

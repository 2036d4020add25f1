//! What this provider remembers about the watchlist between reads, so a removal ferry
//! caused is not passed on as the user's.
//!
//! Trakt takes a title off the watchlist once it is watched (a show once one of its
//! episodes is). When ferry itself adds the play (`POST /sync/history`), the next
//! watchlist read would show the title as gone, and a two-way pair would remove it from
//! the other side: a removal nobody asked for. So two small records are kept per instance
//! in the provider's [`KvStore`] (namespace [`NAMESPACE`]):
//!
//! - `<instance>:played`: the titles ferry wrote plays of (id tokens of the movie, or of
//!   the episode, its season and its show), each with the time of the latest such play;
//! - `<instance>:seen`: the entries of the last complete watchlist read, each with the
//!   time it was last known to be there (and whether it is retained, below). Entries
//!   ferry adds to the watchlist itself join it too.
//!
//! On a complete read, an entry that was seen, is missing now, and that ferry wrote a
//! play of after it was seen (less [`GRACE_MS`]) is **retained**: it stays in the
//! snapshot, and stays retained while it is missing. It is dropped when ferry's own
//! `remove` is asked to remove it, or when Trakt lists it again. Anything else missing is
//! a deletion as usual. A partial read changes nothing. A record that cannot be read is
//! reported (`trakt:watchlist_memo`) and taken as empty.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::identity::strong_tokens;
use ferry_core::{Context, Entry, Item, KvStore, MediaType, Outcome, UnresolvedReason};
use ferry_http::Clock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::write::Matcher;

/// The [`KvStore`] namespace of both records.
pub(crate) const NAMESPACE: &str = "trakt.watchlist";

/// Plays this long before an entry was last seen still count as after it: Trakt may
/// take a title off the watchlist a little after the play is recorded.
pub(crate) const GRACE_MS: u64 = 60 * 60 * 1000;

const VERSION: u32 = 1;

/// Just the version of a record, read before the record itself.
#[derive(Debug, Deserialize)]
struct Versioned {
    #[serde(default)]
    v: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Played {
    v: u32,
    /// Id token (`<type>|<token>`) → unix ms of the latest play ferry wrote.
    plays: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeenEntry {
    entry: Entry,
    /// Unix ms when it was last known to be on the watchlist.
    at: u64,
    /// Kept although Trakt no longer lists it (Trakt removed it after ferry's play).
    #[serde(default)]
    retained: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    v: u32,
    /// Unix ms of the read (its start).
    at: u64,
    /// Entry key → entry.
    entries: BTreeMap<String, SeenEntry>,
}

/// The two records of one instance.
#[derive(Debug)]
pub(crate) struct WatchlistMemo {
    kv: Arc<dyn KvStore>,
    instance: String,
    clock: Option<Arc<dyn Clock>>,
    /// Serialises read-modify-write of the records within this process.
    lock: Mutex<()>,
}

/// Every token an item is recognised by, prefixed by its type (a movie and a show may
/// share a tmdb number).
fn tokens(item: &Item) -> Vec<String> {
    let mut out: Vec<String> = strong_tokens(item);
    out.push(item.key());
    out.sort();
    out.dedup();
    out.into_iter()
        .map(|t| format!("{}|{t}", item.kind))
        .collect()
}

/// What leaves Trakt's watchlist when `item` is played: the movie, or the episode with
/// its season and show.
fn played_items(item: &Item) -> Vec<Item> {
    let mut out = vec![item.clone()];
    if item.kind == MediaType::Episode && !item.show_ids.is_empty() {
        out.push(Item {
            ids: item.show_ids.clone(),
            title: item.show_title.clone(),
            ..Item::new(MediaType::Show)
        });
        if item.season.is_some() {
            out.push(Item {
                show_ids: item.show_ids.clone(),
                show_title: item.show_title.clone(),
                season: item.season,
                ..Item::new(MediaType::Season)
            });
        }
    }
    out
}

/// Whether the play of an entry sent in a history add may now be on Trakt.
pub(crate) fn may_have_played(o: &Outcome) -> bool {
    match o {
        Outcome::Confirmed | Outcome::Failed { .. } => true,
        Outcome::Unresolved { reason, .. } => matches!(
            reason,
            UnresolvedReason::Unconfirmed | UnresolvedReason::ProviderDown
        ),
        Outcome::AlreadyPresent | Outcome::AlreadyAbsent => false,
    }
}

impl WatchlistMemo {
    pub(crate) fn new(kv: Arc<dyn KvStore>, instance: &str, clock: Option<Arc<dyn Clock>>) -> Self {
        WatchlistMemo {
            kv,
            instance: instance.to_owned(),
            clock,
            lock: Mutex::new(()),
        }
    }

    /// Wall-clock milliseconds (the provider's clock when it has one).
    pub(crate) fn now_ms(&self) -> u64 {
        match &self.clock {
            Some(c) => c.unix_ms(),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, record: &str) -> String {
        format!("{}:{record}", self.instance)
    }

    fn problem(&self, cx: &Context, record: &str, what: &str, detail: &str) {
        tracing::warn!(
            instance = %self.instance,
            "Trakt watchlist record `{record}` {what}: {detail}"
        );
        cx.emitter.emit(
            "trakt:watchlist_memo",
            json!({
                "instance": self.instance, "record": record, "problem": what,
                "detail": detail,
            }),
        );
    }

    /// A record, or its default when there is none or it cannot be read (reported).
    fn load<T: DeserializeOwned + Default>(&self, cx: &Context, record: &str) -> T {
        let raw = match self.kv.get(NAMESPACE, &self.key(record)) {
            Ok(Some(raw)) => raw,
            Ok(None) => return T::default(),
            Err(e) => {
                self.problem(cx, record, "unreadable", &e.to_string());
                return T::default();
            }
        };
        let version = serde_json::from_str::<Versioned>(&raw)
            .ok()
            .and_then(|v| v.v);
        if version != Some(u64::from(VERSION)) {
            self.problem(
                cx,
                record,
                "unreadable",
                &format!("unknown version {version:?}"),
            );
            return T::default();
        }
        serde_json::from_str(&raw).unwrap_or_else(|e| {
            self.problem(cx, record, "unreadable", &e.to_string());
            T::default()
        })
    }

    fn save<T: Serialize>(&self, cx: &Context, record: &str, value: &T) {
        let res = serde_json::to_string(value)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                self.kv
                    .put(NAMESPACE, &self.key(record), &s)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = res {
            self.problem(cx, record, "not saved", &e);
        }
    }

    /// Notes that ferry wrote plays of `items` just now.
    pub(crate) fn record_plays<'a>(&self, cx: &Context, items: impl IntoIterator<Item = &'a Item>) {
        let now = self.now_ms();
        let tokens: Vec<String> = items
            .into_iter()
            .flat_map(played_items)
            .flat_map(|i| tokens(&i))
            .collect();
        if tokens.is_empty() {
            return;
        }
        let _g = self.guard();
        let mut played: Played = self.load(cx, "played");
        played.v = VERSION;
        for t in tokens {
            let at = played.plays.entry(t).or_insert(now);
            *at = (*at).max(now);
        }
        self.save(cx, "played", &played);
    }

    /// The entries to keep in the snapshot of a complete read that listed `rows` and
    /// started at `started`; updates both records. Emits `trakt:watchlist_retained` when
    /// any are kept.
    pub(crate) fn after_complete_read(
        &self,
        cx: &Context,
        started: u64,
        rows: &[Entry],
    ) -> Vec<Entry> {
        let _g = self.guard();
        let seen: Seen = self.load(cx, "seen");
        let mut played: Played = self.load(cx, "played");
        let listed = Matcher::new(rows.iter().map(|e| &e.item));
        let played_since = |e: &Entry, since: u64| {
            let since = since.saturating_sub(GRACE_MS);
            tokens(&e.item)
                .iter()
                .any(|t| played.plays.get(t).is_some_and(|at| *at >= since))
        };
        let mut kept: Vec<SeenEntry> = Vec::new();
        let mut newly = Vec::new();
        for (key, s) in seen.entries {
            if listed.find(&s.entry.item).is_some() {
                continue;
            }
            if s.retained {
                kept.push(s);
            } else if played_since(&s.entry, s.at) {
                newly.push(key);
                kept.push(SeenEntry {
                    retained: true,
                    ..s
                });
            }
        }
        let mut next = Seen {
            v: VERSION,
            at: started,
            entries: BTreeMap::new(),
        };
        for e in rows {
            next.entries.insert(
                e.key(),
                SeenEntry {
                    entry: e.clone(),
                    at: started,
                    retained: false,
                },
            );
        }
        let mut out = Vec::with_capacity(kept.len());
        for s in kept {
            let key = s.entry.key();
            if next.entries.contains_key(&key) {
                continue;
            }
            out.push(s.entry.clone());
            next.entries.insert(key, s);
        }
        self.save(cx, "seen", &next);
        // A play older than this cannot count for any entry any more: every entry not
        // retained was seen at `started` or later.
        let oldest = started.saturating_sub(GRACE_MS);
        let before = played.plays.len();
        played.plays.retain(|_, at| *at >= oldest);
        if played.plays.len() != before {
            played.v = VERSION;
            self.save(cx, "played", &played);
        }
        if !newly.is_empty() || !out.is_empty() {
            cx.emitter.emit(
                "trakt:watchlist_retained",
                json!({
                    "instance": self.instance,
                    "retained": out.len(),
                    "new": newly,
                }),
            );
        }
        out
    }

    /// Notes ferry's own watchlist writes: entries it added join the seen record (from
    /// now); entries it removed (or found absent) leave it, retained or not.
    pub(crate) fn after_write(&self, cx: &Context, entries: &[(&Entry, &Outcome)], add: bool) {
        let touched: Vec<&Entry> = entries
            .iter()
            .filter(|(_, o)| {
                if add {
                    matches!(o, Outcome::Confirmed | Outcome::AlreadyPresent)
                } else {
                    matches!(o, Outcome::Confirmed | Outcome::AlreadyAbsent)
                }
            })
            .map(|(e, _)| *e)
            .collect();
        if touched.is_empty() {
            return;
        }
        let _g = self.guard();
        let mut seen: Seen = self.load(cx, "seen");
        let keys: Vec<String> = seen.entries.keys().cloned().collect();
        let m = Matcher::new(seen.entries.values().map(|s| &s.entry.item));
        let mut changed = false;
        if add {
            let now = self.now_ms();
            for e in touched {
                if m.find(&e.item).is_none() && !seen.entries.contains_key(&e.key()) {
                    seen.entries.insert(
                        e.key(),
                        SeenEntry {
                            entry: e.clone(),
                            at: now,
                            retained: false,
                        },
                    );
                    changed = true;
                }
            }
        } else {
            let mut drop: HashSet<String> = HashSet::new();
            for e in touched {
                drop.extend(m.all(&e.item).iter().map(|&row| keys[row].clone()));
                drop.insert(e.key());
            }
            for k in &drop {
                changed |= seen.entries.remove(k).is_some();
            }
        }
        if changed {
            seen.v = VERSION;
            self.save(cx, "seen", &seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{IdKind, Ids};

    #[test]
    fn an_episode_play_names_the_episode_its_season_and_its_show() {
        let show = Ids::new().with(IdKind::Tvdb, "81189");
        let mut ep = Item::episode("S", show, 1, 2);
        ep.ids = Ids::new().with(IdKind::Tvdb, "123");
        let all: Vec<String> = played_items(&ep).iter().flat_map(tokens).collect();
        assert!(all.contains(&"episode|tvdb:123".to_owned()));
        assert!(all.contains(&"episode|tvdb:81189#s01e02".to_owned()));
        assert!(all.contains(&"season|tvdb:81189#season:1".to_owned()));
        assert!(all.contains(&"show|tvdb:81189".to_owned()));
        let movie = Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, "81189"));
        assert_eq!(tokens(&movie), vec!["movie|tmdb:81189".to_owned()]);
    }
}

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
//!
//! Both records grow with a first sync (each batch of titles ferry adds or plays), so
//! each is stored as a base plus the changes of each call and held decoded between calls
//! ([`crate::record_log`]): a write batch costs its own size, not the record's, and is
//! saved before the call returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_core::identity::{AliasIndex, strong_tokens};
use ferry_core::{Context, Entry, Item, KvStore, MediaType, Outcome, UnresolvedReason};
use ferry_http::Clock;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::record_log::{Record, RecordLog};
use crate::write::Matcher;

/// The [`KvStore`] namespace of both records.
pub(crate) const NAMESPACE: &str = "trakt.watchlist";

/// Plays this long before an entry was last seen still count as after it: Trakt may
/// take a title off the watchlist a little after the play is recorded.
pub(crate) const GRACE_MS: u64 = 60 * 60 * 1000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Played {
    /// Id token (`<type>|<token>`) → unix ms of the latest play ferry wrote.
    plays: BTreeMap<String, u64>,
}

impl Record for Played {
    /// A play of the title with this token, at this time.
    type Change = (String, u64);

    fn apply(&mut self, (token, at): (String, u64)) {
        let latest = self.plays.entry(token).or_insert(at);
        *latest = (*latest).max(at);
    }
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
    /// Unix ms of the read (its start).
    at: u64,
    /// Entry key → entry.
    entries: BTreeMap<String, SeenEntry>,
    /// Finds entries by any id; follows the changes instead of being rebuilt per call.
    #[serde(skip)]
    index: SeenIndex,
}

#[derive(Debug, Serialize, Deserialize)]
enum SeenChange {
    /// ferry added the entry to the watchlist (or found it there).
    Add(String, Box<SeenEntry>),
    /// ferry removed the entry from the watchlist (or found it absent).
    Drop(String),
}

impl Record for Seen {
    type Change = SeenChange;

    fn apply(&mut self, change: SeenChange) {
        match change {
            SeenChange::Add(key, s) => {
                self.index.added(&key, &s.entry.item);
                if let Some(old) = self.entries.insert(key, *s) {
                    self.index.dropped(&old.entry.item);
                }
            }
            SeenChange::Drop(key) => {
                if let Some(old) = self.entries.remove(&key) {
                    self.index.dropped(&old.entry.item);
                }
            }
        }
    }
}

/// The seen entries by any of their ids (exact key, strong ids, then aliases), kept up
/// to date as entries come and go. [`AliasIndex`] cannot forget an item, so a dropped
/// entry's item key is noted and a lookup that lands on one rebuilds the index: an
/// answer is always what an index built afresh over the entries would give.
#[derive(Debug, Default)]
struct SeenIndex {
    built: bool,
    index: AliasIndex,
    /// Item key → the keys of the entries with that item key.
    keys: HashMap<String, Vec<String>>,
    /// Item keys of entries dropped since the index was built.
    dropped: HashSet<String>,
}

impl SeenIndex {
    fn added(&mut self, key: &str, item: &Item) {
        if !self.built {
            return;
        }
        let ik = item.key();
        if self.dropped.contains(&ik) {
            // Its old ids are still in the index; build afresh at the next lookup.
            self.built = false;
            return;
        }
        self.index.insert(&ik, item);
        self.keys.entry(ik).or_default().push(key.to_owned());
    }

    fn dropped(&mut self, item: &Item) {
        if self.built {
            self.dropped.insert(item.key());
        }
    }

    fn rebuild(&mut self, entries: &BTreeMap<String, SeenEntry>) {
        self.index = AliasIndex::with_capacity(entries.len());
        self.keys.clear();
        self.dropped.clear();
        for (key, s) in entries {
            let ik = s.entry.item.key();
            self.index.insert(&ik, &s.entry.item);
            self.keys.entry(ik).or_default().push(key.clone());
        }
        self.built = true;
    }

    /// The keys of the entries that are this title.
    fn find(&mut self, entries: &BTreeMap<String, SeenEntry>, item: &Item) -> Vec<String> {
        if !self.built {
            self.rebuild(entries);
        }
        let ik = item.key();
        let hit = self.index.find(&ik, item).map(str::to_owned);
        let hit = match hit {
            Some(k) if self.dropped.contains(&k) => {
                self.rebuild(entries);
                self.index.find(&ik, item).map(str::to_owned)
            }
            hit => hit,
        };
        hit.and_then(|k| self.keys.get(&k).cloned())
            .unwrap_or_default()
    }
}

/// Both records of one instance, held decoded between calls (see [`crate::record_log`]).
#[derive(Debug)]
struct Records {
    seen: RecordLog<Seen>,
    played: RecordLog<Played>,
}

/// The two records of one instance.
#[derive(Debug)]
pub(crate) struct WatchlistMemo {
    instance: String,
    clock: Option<Arc<dyn Clock>>,
    /// Serialises read-modify-write of the records within this process.
    records: Mutex<Records>,
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
        let key = |record: &str| format!("{instance}:{record}");
        WatchlistMemo {
            instance: instance.to_owned(),
            clock,
            records: Mutex::new(Records {
                seen: RecordLog::new(kv.clone(), NAMESPACE, key("seen")),
                played: RecordLog::new(kv, NAMESPACE, key("played")),
            }),
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

    fn records(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Notes that ferry wrote plays of `items` just now.
    pub(crate) fn record_plays<'a>(&self, cx: &Context, items: impl IntoIterator<Item = &'a Item>) {
        let now = self.now_ms();
        let changes: Vec<(String, u64)> = items
            .into_iter()
            .flat_map(played_items)
            .flat_map(|i| tokens(&i))
            .map(|t| (t, now))
            .collect();
        if changes.is_empty() {
            return;
        }
        let report = |what: &str, detail: &str| self.problem(cx, "played", what, detail);
        let mut records = self.records();
        records.played.record(&report);
        records.played.save(&report, changes);
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
        let seen_report = |what: &str, detail: &str| self.problem(cx, "seen", what, detail);
        let played_report = |what: &str, detail: &str| self.problem(cx, "played", what, detail);
        let mut records = self.records();
        let Records { seen, played } = &mut *records;
        let seen = std::mem::take(seen.record(&seen_report));
        let plays = &played.record(&played_report).plays;
        let listed = Matcher::new(rows.iter().map(|e| &e.item));
        let played_since = |e: &Entry, since: u64| {
            let since = since.saturating_sub(GRACE_MS);
            tokens(&e.item)
                .iter()
                .any(|t| plays.get(t).is_some_and(|at| *at >= since))
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
            at: started,
            ..Seen::default()
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
        records.seen.replace(&seen_report, next);
        // A play older than this cannot count for any entry any more: every entry not
        // retained was seen at `started` or later.
        let oldest = started.saturating_sub(GRACE_MS);
        let played = records.played.record(&played_report);
        if played.plays.values().any(|at| *at < oldest) {
            let mut recent = std::mem::take(played);
            recent.plays.retain(|_, at| *at >= oldest);
            records.played.replace(&played_report, recent);
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
        let report = |what: &str, detail: &str| self.problem(cx, "seen", what, detail);
        let mut records = self.records();
        let seen = records.seen.record(&report);
        // Every lookup is against the record as it was before this call.
        let mut changes = Vec::new();
        if add {
            let now = self.now_ms();
            let mut adding: HashSet<String> = HashSet::new();
            for e in touched {
                let key = e.key();
                if seen.index.find(&seen.entries, &e.item).is_empty()
                    && !seen.entries.contains_key(&key)
                    && adding.insert(key.clone())
                {
                    let s = SeenEntry {
                        entry: e.clone(),
                        at: now,
                        retained: false,
                    };
                    changes.push(SeenChange::Add(key, Box::new(s)));
                }
            }
        } else {
            let mut drop: HashSet<String> = HashSet::new();
            for e in touched {
                drop.extend(seen.index.find(&seen.entries, &e.item));
                drop.insert(e.key());
            }
            changes.extend(
                drop.into_iter()
                    .filter(|k| seen.entries.contains_key(k))
                    .map(SeenChange::Drop),
            );
        }
        records.seen.save(&report, changes);
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

    fn add(seen: &mut Seen, item: &Item) -> String {
        let e = Entry::watchlist(item.clone());
        let key = e.key();
        let s = SeenEntry {
            entry: e,
            at: 0,
            retained: false,
        };
        seen.apply(SeenChange::Add(key.clone(), Box::new(s)));
        key
    }

    /// The index that follows the changes answers as one built afresh would.
    #[test]
    fn the_seen_index_follows_adds_and_drops() {
        let by_both = Item::movie(
            "M",
            2000,
            Ids::new()
                .with(IdKind::Tmdb, "1")
                .with(IdKind::Imdb, "tt0000001"),
        );
        let by_imdb = Item::movie("M", 2000, Ids::new().with(IdKind::Imdb, "tt0000001"));
        let other = Item::movie("O", 2001, Ids::new().with(IdKind::Tmdb, "2"));
        let mut seen = Seen::default();
        let first = add(&mut seen, &by_both);
        assert_eq!(
            seen.index.find(&seen.entries, &by_imdb),
            vec![first.clone()]
        );
        // Added after the index was built: found without a rebuild.
        let second = add(&mut seen, &other);
        assert_eq!(seen.index.find(&seen.entries, &other), vec![second]);
        // Dropped: no longer found, although the index still holds its ids.
        seen.apply(SeenChange::Drop(first));
        assert!(seen.index.find(&seen.entries, &by_imdb).is_empty());
        assert!(seen.index.find(&seen.entries, &by_both).is_empty());
        // Another entry with one of its ids: found by that id.
        let third = add(&mut seen, &by_imdb);
        assert_eq!(seen.index.find(&seen.entries, &by_both), vec![third]);
    }
}

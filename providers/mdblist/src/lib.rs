//! ferry's MDBList provider: watchlist, ratings and play history over MDBList's API
//! (`https://api.mdblist.com`) with an API key. See `docs/providers/mdblist.md`.
//!
//! - Every read pages with `offset`/`limit` and is checked: a page without pagination, an
//!   empty page that claims more, `has_more: false` that turns out wrong, or a row count
//!   that differs from the declared totals makes the snapshot `Partial`.
//! - `activities()` reads `/sync/last_activities`.
//! - Every write is confirmed by a re-read: `Confirmed` only for what the re-read shows;
//!   a removal only when a *complete* re-read no longer shows the item.
//! - History is a set of plays: a removal deletes exactly the play it names (by its
//!   `play_id`), never the title's other plays.

mod api;
mod convert;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::identity::{AliasIndex, split_event_key};
use ferry_core::{
    Activities, BuildEnv, Capabilities, Completeness, Context, Entry, Error, ErrorKind, Feature,
    FeatureCaps, HISTORY_TOLERANCE_SECS, Health, Ids, InventoryOps, Item, KvStore, MediaType,
    Outcome, Payload, ProviderKind, RateLimit, Result, Secret, Snapshot, Timestamp,
    UnresolvedReason, VerbClass, WriteReport,
};
use ferry_http::{AuthScheme, Clock, HttpClient, RetryPolicy};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{Paged, PagedRead, error_outcome, object, read_paged};
use crate::convert::{
    PlayRow, flat_ids_from, flat_json, ids_json, play_row, rating_row, watchlist_row,
};

/// MDBList's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.mdblist.com";
/// Rows per page unless configured.
pub const DEFAULT_PAGE_SIZE: u32 = 200;
/// Titles per write request.
pub const BATCH_SIZE: usize = 100;

/// Reads: MDBList's documentation names no per-second limit (only daily quotas per
/// account tier); ferry stays at five GETs a second.
pub const READ_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Read,
    requests: 5,
    per: Duration::from_secs(1),
};

/// Writes: one per second.
pub const WRITE_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Write,
    requests: 1,
    per: Duration::from_secs(1),
};

/// `[providers.<instance>]` keys for `kind = "mdblist"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdblistConfig {
    /// The API key from mdblist.com/preferences (sent as the `apikey` parameter).
    pub api_key: Secret,
    /// Another API host (a proxy, a simulator). Default [`DEFAULT_BASE_URL`].
    #[serde(default)]
    pub base_url: Option<String>,
    /// Rows per page, 1-1000. Default [`DEFAULT_PAGE_SIZE`].
    #[serde(default)]
    pub page_size: Option<u32>,
}

/// Knobs that are not user configuration.
#[derive(Debug, Clone, Default)]
pub struct MdblistOptions {
    pub retry: RetryPolicy,
    /// Waits and breaker timestamps (tests pass a `ManualClock`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Where the breaker record lives.
    pub store: Option<Arc<dyn KvStore>>,
    pub seed: Option<u64>,
    /// Replaces the declared [`READ_LIMIT`] and [`WRITE_LIMIT`].
    pub rate_limits: Option<Vec<RateLimit>>,
}

const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
const PLAYS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
const FEATURES: [Feature; 3] = [Feature::History, Feature::Watchlist, Feature::Ratings];

/// The MDBList provider.
#[derive(Debug)]
pub struct MdblistProvider {
    instance: String,
    http: HttpClient,
    page_size: usize,
}

/// One title of a write, with the entries it carries.
#[derive(Debug, Clone)]
struct Wire {
    group: &'static str,
    body: Value,
    /// The ids the title was sent with, to map `not_found` echoes back.
    ids: Ids,
    idxs: Vec<usize>,
}

/// Episode plays of a write, grouped under their show: `(show key, show, episodes)`.
type ShowPlays = Vec<(String, Wire, Vec<(u32, u32, String)>)>;

/// A write on its way: the entries, the outcomes decided before sending, what was sent.
#[derive(Debug)]
struct Pending<'a> {
    entries: &'a [Entry],
    decided: Vec<Option<Outcome>>,
    sent: Sent,
}

/// What happened to the write requests.
#[derive(Debug, Default)]
struct Sent {
    accepted: Vec<usize>,
    errored: Vec<(usize, Outcome)>,
    unsent: Vec<(usize, Outcome)>,
    not_found: HashSet<usize>,
}

impl Sent {
    fn any_sent(&self) -> bool {
        !self.accepted.is_empty() || !self.errored.is_empty()
    }
}

/// The plays of a history read, findable by title, with their play ids.
#[derive(Debug)]
struct Plays {
    index: AliasIndex,
    plays: HashMap<String, Vec<(Timestamp, u64)>>,
}

impl Plays {
    fn new(rows: &[PlayRow]) -> Self {
        let mut index = AliasIndex::new();
        let mut plays: HashMap<String, Vec<(Timestamp, u64)>> = HashMap::new();
        for r in rows {
            let base = r.item.key();
            if !plays.contains_key(&base) {
                index.insert(&base, &r.item);
            }
            plays
                .entry(base)
                .or_default()
                .push((r.watched_at, r.play_id));
        }
        Plays { index, plays }
    }

    /// The play of `item` closest to `at`, within the tolerance.
    fn find(&self, item: &Item, at: Timestamp) -> Option<u64> {
        let k = self.index.find(&item.key(), item)?;
        self.plays
            .get(k)?
            .iter()
            .filter(|(t, _)| t.abs_diff(at) <= HISTORY_TOLERANCE_SECS)
            .min_by_key(|(t, _)| t.abs_diff(at))
            .map(|(_, id)| *id)
    }
}

/// Entries whose title MDBList echoed under `not_found` (flat or nested ids).
fn not_found(v: &Value, batch: &[Wire]) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(nf) = v.get("not_found").and_then(Value::as_object) else {
        return out;
    };
    for rows in nf.values().filter_map(Value::as_array) {
        for row in rows {
            let echoed = flat_ids_from(row);
            for w in batch {
                if echoed.iter().any(|(k, v)| w.ids.get(k) == Some(v)) {
                    out.extend(w.idxs.iter().copied());
                }
            }
        }
    }
    out
}

fn unresolved(reason: UnresolvedReason, detail: impl Into<String>) -> Option<Outcome> {
    Some(Outcome::Unresolved {
        reason,
        detail: Some(detail.into()),
    })
}

fn index_of(snap: &Snapshot) -> AliasIndex {
    AliasIndex::build(snap.iter().map(|(k, e)| (k, &e.item)))
}

fn group_of(item: &Item) -> &'static str {
    if item.kind == MediaType::Movie {
        "movies"
    } else {
        "shows"
    }
}

impl MdblistProvider {
    pub fn new(instance: &str, config: MdblistConfig, options: MdblistOptions) -> Result<Self> {
        let invalid =
            |msg: String| Error::new(ErrorKind::InvalidInput, msg).with_provider("mdblist");
        if config.api_key.expose().trim().is_empty() {
            return Err(invalid(format!("providers.{instance}.api_key is empty")));
        }
        let page_size = config.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=1000).contains(&page_size) {
            return Err(invalid(format!(
                "providers.{instance}.page_size must be 1-1000, not {page_size}"
            )));
        }
        let limits = options
            .rate_limits
            .clone()
            .unwrap_or_else(|| vec![READ_LIMIT, WRITE_LIMIT]);
        let mut b = HttpClient::builder("mdblist", instance)
            .base_url(config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))
            .auth(AuthScheme::Query("apikey".into()), &config.api_key)
            .rate_limits(&limits)
            .retry(options.retry);
        if let Some(s) = &options.store {
            b = b.store(s.clone());
        }
        if let Some(c) = &options.clock {
            b = b.clock(c.clone());
        }
        if let Some(seed) = options.seed {
            b = b.seed(seed);
        }
        Ok(MdblistProvider {
            instance: instance.to_owned(),
            http: b.build()?,
            page_size: page_size as usize,
        })
    }

    fn check(&self, cx: &Context, feature: Feature) -> Result<()> {
        cx.check_cancelled()?;
        if Self::capabilities().supports(feature) {
            Ok(())
        } else {
            Err(
                Error::unsupported(format!("MDBList does not hold {feature}"))
                    .with_provider("mdblist"),
            )
        }
    }

    async fn paged(&self, cx: &Context, r: PagedRead<'_>) -> Result<Paged> {
        read_paged(&self.http, cx, r, self.page_size).await
    }

    async fn read_history(&self, cx: &Context) -> Result<(Vec<PlayRow>, Vec<String>)> {
        let paged = self
            .paged(
                cx,
                PagedRead {
                    op: "GET /sync/watched",
                    path: "/sync/watched",
                    query: &[("plays", "all".into())],
                    groups: &["movies", "episodes"],
                    // Show- and season-level rows are not plays ferry can key.
                    ignored: &["shows", "seasons"],
                },
            )
            .await?;
        let mut problems = paged.problems;
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        for (g, r) in &paged.rows {
            match play_row(g, r) {
                Ok(p) => rows.push(p),
                Err(m) => bad.push(m),
            }
        }
        if !bad.is_empty() {
            problems.push(format!(
                "{} plays could not be read (first: {})",
                bad.len(),
                bad[0]
            ));
        }
        Ok((rows, problems))
    }

    /// A full read of one feature (`present` semantics).
    async fn read(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        self.check(cx, feature)?;
        let mut snap = Snapshot::unproven_legacy(feature);
        let mut bad: Vec<String> = Vec::new();
        let problems = match feature {
            Feature::Watchlist => {
                let paged = self
                    .paged(
                        cx,
                        PagedRead {
                            op: "GET /watchlist/items",
                            path: "/watchlist/items",
                            query: &[("unified", "true".into())],
                            groups: &["movies", "shows", "items", "results"],
                            ignored: &[],
                        },
                    )
                    .await?;
                for (g, r) in &paged.rows {
                    match watchlist_row(g, r) {
                        Ok((item, listed_at)) => {
                            snap.insert(Entry::new(item, Payload::Watchlist { listed_at }))
                        }
                        Err(m) => bad.push(m),
                    }
                }
                paged.problems
            }
            Feature::Ratings => {
                let paged = self
                    .paged(
                        cx,
                        PagedRead {
                            op: "GET /sync/ratings",
                            path: "/sync/ratings",
                            query: &[],
                            groups: &["movies", "shows"],
                            // Season and episode ratings are not declared.
                            ignored: &["seasons", "episodes"],
                        },
                    )
                    .await?;
                for (g, r) in &paged.rows {
                    match rating_row(g, r) {
                        Ok(Some((item, rating, at))) => {
                            snap.insert(Entry::rating(item, rating, at))
                        }
                        Ok(None) => {}
                        Err(m) => bad.push(m),
                    }
                }
                paged.problems
            }
            _ => {
                let (rows, problems) = self.read_history(cx).await?;
                for p in rows {
                    snap.insert(Entry::watch(p.item, p.watched_at));
                }
                problems
            }
        };
        let mut problems = problems;
        if !bad.is_empty() {
            problems.push(format!(
                "{} rows could not be read (first: {})",
                bad.len(),
                bad[0]
            ));
        }
        if !problems.is_empty() {
            snap.mark_partial(problems.join("; "));
        }
        Ok(snap)
    }

    async fn post_batches(
        &self,
        cx: &Context,
        op: &str,
        path: &str,
        wires: Vec<Wire>,
    ) -> Result<Sent> {
        let mut sent = Sent::default();
        let mut stop: Option<Outcome> = None;
        let batches: Vec<Vec<Wire>> = wires.chunks(BATCH_SIZE).map(<[Wire]>::to_vec).collect();
        for batch in batches {
            let idxs: Vec<usize> = batch.iter().flat_map(|w| w.idxs.iter().copied()).collect();
            if let Some(o) = &stop {
                sent.unsent.extend(idxs.iter().map(|i| (*i, o.clone())));
                continue;
            }
            if cx.cancel.is_cancelled() {
                if !sent.any_sent() {
                    return Err(Error::cancelled());
                }
                let o = Outcome::failed(&Error::cancelled());
                sent.unsent.extend(idxs.iter().map(|i| (*i, o.clone())));
                stop = Some(o);
                continue;
            }
            let mut body = Map::new();
            for w in &batch {
                if let Some(a) = body
                    .entry(w.group)
                    .or_insert_with(|| Value::Array(Vec::new()))
                    .as_array_mut()
                {
                    a.push(w.body.clone());
                }
            }
            match self
                .http
                .post(op, path)
                .json(&Value::Object(body))
                .send(cx)
                .await
            {
                Ok(resp) => {
                    sent.accepted.extend(idxs);
                    if let Ok(v) = object(&resp, op) {
                        sent.not_found.extend(not_found(&v, &batch));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Cancelled && !sent.any_sent() => return Err(e),
                Err(e) => {
                    let o = error_outcome(&e);
                    if matches!(
                        e.kind(),
                        ErrorKind::Auth | ErrorKind::RateLimited | ErrorKind::Cancelled
                    ) {
                        stop = Some(o.clone());
                    }
                    sent.errored
                        .extend(idxs.into_iter().map(|i| (i, o.clone())));
                }
            }
        }
        Ok(sent)
    }

    /// Outcomes: decided ones, unsent ones, then the verdict of the re-read for the rest.
    fn finalize(
        entries: &[Entry],
        decided: Vec<Option<Outcome>>,
        sent: Sent,
        confirm: Option<&dyn Fn(usize) -> bool>,
        reread_error: Option<String>,
    ) -> WriteReport {
        let mut out = decided;
        out.resize(entries.len(), None);
        for (i, o) in sent.unsent {
            out[i] = Some(o);
        }
        let errors: HashMap<usize, Outcome> = sent.errored.into_iter().collect();
        let attempted: Vec<usize> = sent
            .accepted
            .iter()
            .copied()
            .chain(errors.keys().copied())
            .collect();
        for i in attempted {
            out[i] = Some(if confirm.is_some_and(|c| c(i)) {
                Outcome::Confirmed
            } else if sent.not_found.contains(&i) {
                Outcome::Unresolved {
                    reason: UnresolvedReason::NotFound,
                    detail: Some("MDBList found no title with these ids".into()),
                }
            } else if let Some(o) = errors.get(&i) {
                o.clone()
            } else {
                Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some(reread_error.clone().unwrap_or_else(|| {
                        "MDBList accepted the write, but a re-read does not show it".into()
                    })),
                }
            });
        }
        let mut r = WriteReport::new();
        for (e, o) in entries.iter().zip(out) {
            r.push(
                e,
                o.unwrap_or(Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some("not written".into()),
                }),
            );
        }
        r
    }

    /// Re-reads `feature` after a write and judges each sent entry with `judge(entry,
    /// snapshot)`. A removal (`need_complete`) is only confirmed by a complete re-read.
    async fn confirm_by_reread(
        &self,
        cx: &Context,
        feature: Feature,
        w: Pending<'_>,
        need_complete: bool,
        judge: impl Fn(&Entry, &Snapshot, &AliasIndex) -> bool,
    ) -> WriteReport {
        let Pending {
            entries,
            decided,
            sent,
        } = w;
        if !sent.any_sent() {
            return Self::finalize(entries, decided, sent, None, None);
        }
        match self.read(cx, feature).await {
            Ok(snap) if !need_complete || snap.is_complete() => {
                let idx = index_of(&snap);
                let c = |i: usize| judge(&entries[i], &snap, &idx);
                Self::finalize(entries, decided, sent, Some(&c), None)
            }
            Ok(snap) => {
                let reason = match snap.completeness() {
                    Completeness::Partial { reason } => reason.clone(),
                    Completeness::Complete => String::new(),
                };
                Self::finalize(
                    entries,
                    decided,
                    sent,
                    None,
                    Some(format!(
                        "the re-read after the write was incomplete ({reason})"
                    )),
                )
            }
            Err(e) => Self::finalize(
                entries,
                decided,
                sent,
                None,
                Some(format!("the re-read after the write failed: {e}")),
            ),
        }
    }

    // -- watchlist ------------------------------------------------------------------------

    async fn watchlist_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (op, path) = if add {
            ("POST /watchlist/items/add", "/watchlist/items/add")
        } else {
            ("POST /watchlist/items/remove", "/watchlist/items/remove")
        };
        let before = self.read(cx, Feature::Watchlist).await?;
        let idx = index_of(&before);
        let mut decided = vec![None; entries.len()];
        let mut wires = Vec::new();
        let mut queued = HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) || !TITLES.contains(&e.item.kind) {
                decided[i] = unresolved(
                    UnresolvedReason::Unsupported,
                    format!(
                        "MDBList's watchlist holds movies and shows, not this {}",
                        e.item.kind
                    ),
                );
                continue;
            }
            let Some(flat) = flat_json(&e.item) else {
                decided[i] = unresolved(
                    UnresolvedReason::Unsupported,
                    "MDBList's watchlist needs an IMDb or TMDB id",
                );
                continue;
            };
            let present = idx.find(&e.item.key(), &e.item).is_some();
            if add && present {
                decided[i] = Some(Outcome::AlreadyPresent);
                continue;
            }
            // An item missing from a partial read may still be there: remove it anyway
            // (a removal of an absent item changes nothing) and let the re-read decide.
            if !add && !present && before.is_complete() {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            if !queued.insert(e.item.key()) {
                decided[i] = Some(if add {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::AlreadyAbsent
                });
                continue;
            }
            wires.push(Wire {
                group: group_of(&e.item),
                body: flat,
                ids: e.item.ids.clone(),
                idxs: vec![i],
            });
        }
        let sent = self.post_batches(cx, op, path, wires).await?;
        Ok(self
            .confirm_by_reread(
                cx,
                Feature::Watchlist,
                Pending {
                    entries,
                    decided,
                    sent,
                },
                !add,
                |e, _, idx| idx.find(&e.item.key(), &e.item).is_some() == add,
            )
            .await)
    }

    // -- ratings --------------------------------------------------------------------------

    async fn ratings_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (op, path) = if add {
            ("POST /sync/ratings", "/sync/ratings")
        } else {
            ("POST /sync/ratings/remove", "/sync/ratings/remove")
        };
        let before = self.read(cx, Feature::Ratings).await?;
        let idx = index_of(&before);
        let mut decided = vec![None; entries.len()];
        let mut wires = Vec::new();
        let mut queued = HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            let rating = match e.payload {
                Payload::Rating { rating, .. } if TITLES.contains(&e.item.kind) => rating,
                _ => {
                    decided[i] = unresolved(
                        UnresolvedReason::Unsupported,
                        format!(
                            "ferry rates movies and shows on MDBList, not this {}",
                            e.item.kind
                        ),
                    );
                    continue;
                }
            };
            let Some(ids) = ids_json(&e.item.ids) else {
                decided[i] = unresolved(UnresolvedReason::Unsupported, "no id MDBList resolves");
                continue;
            };
            let current = idx
                .find(&e.item.key(), &e.item)
                .and_then(|k| before.get(k))
                .and_then(|x| match x.payload {
                    Payload::Rating { rating, .. } => Some(rating),
                    _ => None,
                });
            if add && current == Some(rating) {
                decided[i] = Some(Outcome::AlreadyPresent);
                continue;
            }
            if !add && current.is_none() && before.is_complete() {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            if !queued.insert(e.item.key()) {
                decided[i] = Some(if add {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::AlreadyAbsent
                });
                continue;
            }
            let mut body = json!({"ids": ids});
            if add {
                body["rating"] = json!(rating.get());
                if let Payload::Rating {
                    rated_at: Some(t), ..
                } = e.payload
                {
                    body["rated_at"] = json!(t.to_rfc3339());
                }
            }
            wires.push(Wire {
                group: group_of(&e.item),
                body,
                ids: e.item.ids.clone(),
                idxs: vec![i],
            });
        }
        let sent = self.post_batches(cx, op, path, wires).await?;
        Ok(self
            .confirm_by_reread(
                cx,
                Feature::Ratings,
                Pending {
                    entries,
                    decided,
                    sent,
                },
                !add,
                |e, snap, idx| {
                    let now = idx.find(&e.item.key(), &e.item).and_then(|k| snap.get(k));
                    match (&e.payload, now.map(|x| &x.payload)) {
                        (
                            Payload::Rating { rating, .. },
                            Some(Payload::Rating { rating: r, .. }),
                        ) => add && rating == r,
                        (_, None) => !add,
                        _ => false,
                    }
                },
            )
            .await)
    }

    // -- history --------------------------------------------------------------------------

    /// Judges a play against a history re-read: present within the tolerance == `add`.
    /// The index over the re-read is built once, on the first call.
    fn play_judge(add: bool) -> impl Fn(&Entry, &Snapshot, &AliasIndex) -> bool {
        type Bases = (AliasIndex, HashMap<String, Vec<Timestamp>>);
        let cache: std::cell::OnceCell<Bases> = std::cell::OnceCell::new();
        move |e, snap, _| {
            let Payload::Watch { watched_at } = e.payload else {
                return false;
            };
            let (idx, times) = cache.get_or_init(|| {
                let mut idx = AliasIndex::new();
                let mut times: HashMap<String, Vec<Timestamp>> = HashMap::new();
                for (k, v) in snap.iter() {
                    if let Some((base, t)) = split_event_key(k) {
                        if !times.contains_key(base) {
                            idx.insert(base, &v.item);
                        }
                        times.entry(base.to_owned()).or_default().push(t);
                    }
                }
                (idx, times)
            });
            let has = idx
                .find(&e.item.key(), &e.item)
                .and_then(|b| times.get(b))
                .is_some_and(|ts| {
                    ts.iter()
                        .any(|t| t.abs_diff(watched_at) <= HISTORY_TOLERANCE_SECS)
                });
            has == add
        }
    }

    async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/watched";
        // History is a list of plays, not a set: a play posted twice is two plays. So a
        // play missing from an incomplete read may well be there, and is never posted.
        let (rows, problems) = self.read_history(cx).await?;
        let plays = Plays::new(&rows);
        let mut decided = vec![None; entries.len()];
        let mut movies: Vec<Wire> = Vec::new();
        // Show key → (show wire, its episodes).
        let mut shows: ShowPlays = Vec::new();
        let mut queued: HashMap<String, Vec<Timestamp>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                decided[i] = unresolved(UnresolvedReason::Unsupported, "not a play");
                continue;
            };
            if !PLAYS.contains(&e.item.kind) {
                decided[i] = unresolved(
                    UnresolvedReason::Unsupported,
                    format!(
                        "ferry writes movie and episode plays to MDBList, not a {}",
                        e.item.kind
                    ),
                );
                continue;
            }
            let key = e.item.key();
            let dup = queued.get(&key).is_some_and(|ts| {
                ts.iter()
                    .any(|t| t.abs_diff(watched_at) <= HISTORY_TOLERANCE_SECS)
            });
            if dup || plays.find(&e.item, watched_at).is_some() {
                decided[i] = Some(Outcome::AlreadyPresent);
                continue;
            }
            if !problems.is_empty() {
                decided[i] = Some(Outcome::unmatched(
                    &problems,
                    true,
                    "not in the MDBList history",
                ));
                continue;
            }
            if e.item.kind == MediaType::Movie {
                let Some(ids) = ids_json(&e.item.ids) else {
                    decided[i] =
                        unresolved(UnresolvedReason::Unsupported, "no id MDBList resolves");
                    continue;
                };
                queued.entry(key).or_default().push(watched_at);
                movies.push(Wire {
                    group: "movies",
                    body: json!({"ids": ids, "watched_at": watched_at.to_rfc3339()}),
                    ids: e.item.ids.clone(),
                    idxs: vec![i],
                });
                continue;
            }
            let (Some(s), Some(n)) = (e.item.season, e.item.episode) else {
                decided[i] = unresolved(
                    UnresolvedReason::Unsupported,
                    "an episode without season and number",
                );
                continue;
            };
            let Some(ids) = ids_json(&e.item.show_ids) else {
                decided[i] =
                    unresolved(UnresolvedReason::Unsupported, "no show id MDBList resolves");
                continue;
            };
            queued.entry(key).or_default().push(watched_at);
            let show_key = ids.to_string();
            let pos = match shows.iter().position(|(k, _, _)| *k == show_key) {
                Some(p) => p,
                None => {
                    shows.push((
                        show_key,
                        Wire {
                            group: "shows",
                            body: json!({"ids": ids}),
                            ids: e.item.show_ids.clone(),
                            idxs: Vec::new(),
                        },
                        Vec::new(),
                    ));
                    shows.len() - 1
                }
            };
            shows[pos].1.idxs.push(i);
            shows[pos].2.push((s, n, watched_at.to_rfc3339()));
        }
        let mut wires = movies;
        for (_, mut w, eps) in shows {
            let mut by: std::collections::BTreeMap<u32, Vec<Value>> = Default::default();
            for (s, n, at) in eps {
                by.entry(s)
                    .or_default()
                    .push(json!({"number": n, "watched_at": at}));
            }
            w.body["seasons"] = Value::Array(
                by.into_iter()
                    .map(|(s, e)| json!({"number": s, "episodes": e}))
                    .collect(),
            );
            wires.push(w);
        }
        let sent = self.post_batches(cx, op, "/sync/watched", wires).await?;
        Ok(self
            .confirm_by_reread(
                cx,
                Feature::History,
                Pending {
                    entries,
                    decided,
                    sent,
                },
                false,
                Self::play_judge(true),
            )
            .await)
    }

    async fn history_remove(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/watched/plays/remove";
        let (rows, problems) = self.read_history(cx).await?;
        let complete = problems.is_empty();
        let plays = Plays::new(&rows);
        let mut decided = vec![None; entries.len()];
        let mut ids: Vec<(u64, usize)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                decided[i] = unresolved(UnresolvedReason::Unsupported, "not a play");
                continue;
            };
            match plays.find(&e.item, watched_at) {
                Some(id) if ids.iter().any(|(x, _)| *x == id) => {
                    decided[i] = Some(Outcome::AlreadyAbsent);
                }
                Some(id) => ids.push((id, i)),
                None if complete => decided[i] = Some(Outcome::AlreadyAbsent),
                // Its play id is unknown: nothing can be removed safely.
                None => {
                    decided[i] = unresolved(
                        UnresolvedReason::Unconfirmed,
                        format!(
                            "the history could not be read completely ({})",
                            problems.join("; ")
                        ),
                    );
                }
            }
        }
        let mut sent = Sent::default();
        for chunk in ids.chunks(BATCH_SIZE) {
            let idxs: Vec<usize> = chunk.iter().map(|(_, i)| *i).collect();
            if cx.cancel.is_cancelled() {
                if !sent.any_sent() {
                    return Err(Error::cancelled());
                }
                let o = Outcome::failed(&Error::cancelled());
                sent.unsent.extend(idxs.into_iter().map(|i| (i, o.clone())));
                continue;
            }
            let body = json!({"play_ids": chunk.iter().map(|(id, _)| *id).collect::<Vec<_>>()});
            match self
                .http
                .post(op, "/sync/watched/plays/remove")
                .json(&body)
                .send(cx)
                .await
            {
                Ok(resp) => {
                    // Decoded for its shape only; the re-read decides.
                    let _ = object(&resp, op);
                    sent.accepted.extend(idxs);
                }
                Err(e) if e.kind() == ErrorKind::Cancelled && !sent.any_sent() => return Err(e),
                Err(e) => {
                    let o = error_outcome(&e);
                    sent.errored
                        .extend(idxs.into_iter().map(|i| (i, o.clone())));
                }
            }
        }
        Ok(self
            .confirm_by_reread(
                cx,
                Feature::History,
                Pending {
                    entries,
                    decided,
                    sent,
                },
                true,
                Self::play_judge(false),
            )
            .await)
    }

    fn emit_write(&self, cx: &Context, feature: Feature, op: &str, r: &WriteReport) {
        cx.emitter.emit(
            "mdblist:write",
            json!({
                "instance": self.instance, "feature": feature, "op": op,
                "confirmed": r.confirmed(), "unchanged": r.unchanged(),
                "unresolved": r.unresolved(), "failed": r.failed(),
            }),
        );
    }
}

impl ProviderKind for MdblistProvider {
    const ID: &'static str = "mdblist";
    const LABEL: &'static str = "MDBList";
    type Config = MdblistConfig;

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .with_activities(true)
            .with(Feature::Watchlist, FeatureCaps::full(BATCH_SIZE, &TITLES))
            .with(Feature::Ratings, FeatureCaps::full(BATCH_SIZE, &TITLES))
            .with(Feature::History, FeatureCaps::full(BATCH_SIZE, &PLAYS))
            .with_rate_limit(READ_LIMIT.class, READ_LIMIT.requests, READ_LIMIT.per)
            .with_rate_limit(WRITE_LIMIT.class, WRITE_LIMIT.requests, WRITE_LIMIT.per)
    }

    fn build(instance: &str, config: MdblistConfig, env: &BuildEnv) -> Result<Self> {
        MdblistProvider::new(
            instance,
            config,
            MdblistOptions {
                store: Some(env.kv.clone()),
                ..MdblistOptions::default()
            },
        )
    }
}

ferry_core::register_provider!(MdblistProvider);

#[async_trait]
impl InventoryOps for MdblistProvider {
    fn provider(&self) -> &'static str {
        Self::ID
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn features(&self) -> Capabilities {
        Self::capabilities()
    }

    fn secrets(&self) -> Vec<Secret> {
        self.http.secrets()
    }

    /// One `GET /user`, bypassing the breaker.
    async fn health(&self, cx: &Context) -> Health {
        if let Some(h) = self.http.breaker_health() {
            return h;
        }
        let started = Instant::now();
        let op = "GET /user";
        let result = self.http.get(op, "/user").probe().send(cx).await;
        let mut h = match result.and_then(|r| object(&r, op)) {
            Ok(_) => Health::ok().with_features(&Self::capabilities(), true),
            Err(e) => Health::from_error(&e),
        };
        h.latency_ms = Some(started.elapsed().as_millis() as u64);
        h.rate = self.http.rate_info();
        h
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        self.read(cx, feature).await
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.check(cx, feature)?;
        if entries.is_empty() {
            return Ok(WriteReport::new());
        }
        let r = match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, true).await?,
            Feature::Ratings => self.ratings_write(cx, entries, true).await?,
            _ => self.history_add(cx, entries).await?,
        };
        self.emit_write(cx, feature, "add", &r);
        Ok(r)
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        self.check(cx, feature)?;
        if entries.is_empty() {
            return Ok(WriteReport::new());
        }
        let r = match feature {
            Feature::Watchlist => self.watchlist_write(cx, entries, false).await?,
            Feature::Ratings => self.ratings_write(cx, entries, false).await?,
            _ => self.history_remove(cx, entries).await?,
        };
        self.emit_write(cx, feature, "remove", &r);
        Ok(r)
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        cx.check_cancelled()?;
        let op = "GET /sync/last_activities";
        let v = object(
            &self.http.get(op, "/sync/last_activities").send(cx).await?,
            op,
        )?;
        Ok(convert::activities(&v, &FEATURES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ProviderConfig;

    #[test]
    fn config_rejects_unknown_keys_and_bad_page_sizes() {
        let c = ProviderConfig::new("m", "mdblist")
            .set("api_key", "key-123456")
            .set("apikey", "typo");
        assert_eq!(
            c.parse::<MdblistConfig>().unwrap_err().field.as_deref(),
            Some("apikey")
        );
        let cfg = ProviderConfig::new("m", "mdblist")
            .set("api_key", "key-123456")
            .set("page_size", 5000)
            .parse::<MdblistConfig>()
            .unwrap();
        let e = MdblistProvider::new("m", cfg, MdblistOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("page_size"), "{e}");
    }

    #[test]
    fn declared_capabilities() {
        let caps = MdblistProvider::capabilities();
        assert!(caps.activities);
        assert_eq!(caps.rate_limits.len(), 2);
        for f in [Feature::Watchlist, Feature::Ratings, Feature::History] {
            assert_eq!(
                caps.get(f).unwrap().semantics,
                ferry_core::IndexSemantics::Present
            );
        }
        assert!(!caps.supports(Feature::Progress));
    }
}

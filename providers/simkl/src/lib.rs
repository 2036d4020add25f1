//! ferry's SIMKL provider: the Plan to Watch list as the watchlist, ratings, and watch
//! history, over SIMKL's API (`https://api.simkl.com`). See `docs/providers/simkl.md`.
//!
//! SIMKL keeps one *library*: every title the user tracks sits in exactly one bucket
//! (`plantowatch`, `watching`, `completed`, `hold`, `dropped`), carries its rating and its
//! watches. That shapes every write here:
//!
//! - adding to the watchlist *moves* a title into `plantowatch`, so a title already in
//!   another bucket is not moved (that would take it off that list): `Unresolved(Conflict)`;
//! - SIMKL can only take a title off Plan to Watch by removing it from the whole library,
//!   so a removal that would also delete a rating or watches is refused
//!   (`Unresolved(Conflict)`), and a title in another bucket is already off the watchlist;
//! - without rewatches a title holds one watch: a second, different play is
//!   `Unresolved(Unsupported)`, never written over the first;
//! - every write is confirmed by a re-read: `Confirmed` only for what the re-read shows.

mod api;
mod convert;
pub mod pin;
mod read;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, ErrorKind, Feature, FeatureCaps,
    Health, IndexSemantics, InventoryOps, Item, KvStore, MediaType, Outcome, Payload, ProviderKind,
    RateLimit, Result, Secret, Snapshot, VerbClass, WriteReport,
};
use ferry_http::{Clock, HttpClient, RetryPolicy};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Api;
use crate::convert::{PLAN_TO_WATCH, ids_json, show_of};
use crate::read::{
    Library, Plays, Source, fetch, is_complete, same_play, snapshot, unlisted_reason,
};
use crate::write::{Sent, Wire, conflict, finalize, post_batches, unsupported};

pub use crate::write::BATCH_SIZE;

/// SIMKL's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.simkl.com";

/// Reads: SIMKL publishes 10 GETs per second per user token; ferry asks for half that,
/// because SIMKL suspends apps that lean on it.
pub const READ_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Read,
    requests: 5,
    per: Duration::from_secs(1),
};

/// Writes: SIMKL publishes 1 POST per second and *blocks* the token on overage (repeated
/// overages extend the block), and serialises a user's writes server-side; ferry sends at
/// most one write every two seconds.
pub const WRITE_LIMIT: RateLimit = RateLimit {
    class: VerbClass::Write,
    requests: 1,
    per: Duration::from_secs(2),
};

/// How `build_index` reads.
///
/// The default is [`ReadMode::Delta`]: SIMKL's API reference asks apps to call
/// `/sync/all-items?date_from=…` only when an activity stamp changed and suspends the
/// `client_id` of apps that re-download the whole library.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Every read is a full read (`present` semantics).
    Full,
    /// After a first full read, reads are `date_from` deltas (`delta` semantics) while
    /// nothing left the library; see the provider docs for what a delta cannot see.
    #[default]
    Delta,
}

/// `[providers.<instance>]` keys for `kind = "simkl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimklConfig {
    /// The app's `client_id` (sent as `simkl-api-key` and as the `client_id` parameter).
    pub client_id: Secret,
    /// The user's access token (from the PIN or OAuth flow; SIMKL tokens do not expire).
    /// Optional: `ferry auth simkl` keeps the token in the state database instead.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// Another API host (a proxy, a simulator). Default [`DEFAULT_BASE_URL`].
    #[serde(default)]
    pub base_url: Option<String>,
    /// `delta` (default) or `full`.
    #[serde(default)]
    pub read_mode: ReadMode,
}

/// Knobs that are not user configuration: retries, the clock, the state store, limits.
#[derive(Debug, Clone, Default)]
pub struct SimklOptions {
    pub retry: RetryPolicy,
    /// Waits and breaker timestamps (tests pass a `ManualClock`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Where the breaker record and the delta watermarks live.
    pub store: Option<Arc<dyn KvStore>>,
    /// Seeds the retry jitter.
    pub seed: Option<u64>,
    /// Replaces the declared [`READ_LIMIT`] and [`WRITE_LIMIT`].
    pub rate_limits: Option<Vec<RateLimit>>,
}

const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
const PLAYS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
const FEATURES: [Feature; 3] = [Feature::History, Feature::Watchlist, Feature::Ratings];
const WATERMARKS: &str = "simkl";

/// The SIMKL provider.
#[derive(Debug)]
pub struct SimklProvider {
    instance: String,
    api: Api,
    read_mode: ReadMode,
    store: Option<Arc<dyn KvStore>>,
}

impl SimklProvider {
    pub fn new(instance: &str, config: SimklConfig, options: SimklOptions) -> Result<Self> {
        let invalid = |msg: String| Error::new(ErrorKind::InvalidInput, msg).with_provider("simkl");
        if config.client_id.expose().trim().is_empty() {
            return Err(invalid(format!("providers.{instance}.client_id is empty")));
        }
        let token = match &config.access_token {
            Some(t) if t.expose().trim().is_empty() => {
                return Err(invalid(format!(
                    "providers.{instance}.access_token is empty; remove it and run `ferry auth simkl`, or paste the token"
                )));
            }
            Some(t) => t.clone(),
            None => {
                let stored = options.store.as_ref().and_then(|kv| {
                    ferry_http::KvTokenStore::new(kv.clone(), instance)
                        .load()
                        .ok()
                        .flatten()
                });
                match stored {
                    Some(t) => t.access,
                    None => {
                        return Err(invalid(format!(
                            "providers.{instance}: no access_token in the config and none stored; run `ferry auth simkl`"
                        )));
                    }
                }
            }
        };
        let limits = options
            .rate_limits
            .clone()
            .unwrap_or_else(|| vec![READ_LIMIT, WRITE_LIMIT]);
        let mut b = HttpClient::builder("simkl", instance)
            .base_url(config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))
            .secret_header("simkl-api-key", &config.client_id)
            .bearer(&token)
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
        Ok(SimklProvider {
            instance: instance.to_owned(),
            api: Api::new(b.build()?, config.client_id),
            read_mode: config.read_mode,
            store: options.store,
        })
    }

    fn check(&self, cx: &Context, feature: Feature) -> Result<()> {
        cx.check_cancelled()?;
        if Self::capabilities().supports(feature) {
            Ok(())
        } else {
            Err(Error::unsupported(format!("SIMKL does not hold {feature}")).with_provider("simkl"))
        }
    }

    /// A full read of one feature (`present` semantics).
    pub async fn read_full(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        self.check(cx, feature)?;
        let source = Source::for_feature(feature);
        let fetched = fetch(&self.api, cx, source, None).await?;
        Ok(snapshot(feature, source, &fetched))
    }

    /// What changed in one feature since `since` (`delta` semantics: an absent item is
    /// unknown, never deleted). `Ok(None)` when the changes include one a delta cannot
    /// express; read in full then.
    ///
    /// The delta is read from the library (`/sync/all-items?date_from=`), which returns
    /// every changed title with its *current* state, so a change that takes something away
    /// is recognisable: a title now outside Plan to Watch, a changed title without a
    /// rating, a changed show (an episode may have been un-marked). Those need a full read.
    pub async fn read_delta(
        &self,
        cx: &Context,
        feature: Feature,
        since: &str,
    ) -> Result<Option<Snapshot>> {
        self.check(cx, feature)?;
        let fetched = fetch(&self.api, cx, Source::Library, Some(since)).await?;
        let expressible = fetched.rows.iter().all(|r| match feature {
            Feature::Watchlist => r.status.as_deref() == Some(PLAN_TO_WATCH),
            Feature::Ratings => r.rating.is_some(),
            _ => r.is_movie(),
        });
        if !expressible {
            return Ok(None);
        }
        Ok(Some(
            snapshot(feature, Source::Library, &fetched).with_semantics(IndexSemantics::Delta),
        ))
    }

    fn watermark_key(&self, feature: Feature) -> String {
        format!("{}:watermark:{feature}", self.instance)
    }

    fn load_watermark(&self, feature: Feature) -> Option<(String, Option<String>)> {
        let raw = self
            .store
            .as_ref()?
            .get(WATERMARKS, &self.watermark_key(feature))
            .ok()??;
        let v: Value = serde_json::from_str(&raw).ok()?;
        let at = v.get("at")?.as_str()?.to_owned();
        let removed = v.get("removed").and_then(Value::as_str).map(str::to_owned);
        Some((at, removed))
    }

    fn save_watermark(&self, feature: Feature, at: &str, removed: Option<&str>) {
        if let Some(s) = &self.store {
            let v = json!({"at": at, "removed": removed});
            if let Err(e) = s.put(WATERMARKS, &self.watermark_key(feature), &v.to_string()) {
                tracing::warn!("simkl: could not store the {feature} watermark: {e}");
            }
        }
    }

    /// Delta mode: a delta since the stored watermark while nothing left the library and
    /// the change is visible as a delta; a full read otherwise. The watermark only moves
    /// after a complete read.
    async fn read_with_deltas(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        let act = self.api.activities(cx).await?;
        let now = convert::checkpoint(&act, feature).map(|t| t.to_rfc3339());
        let removed = convert::removed_stamp(&act).map(|t| t.to_rfc3339());
        let stored = self.load_watermark(feature);
        let mut snap = None;
        if let (Some((at, was_removed)), Some(now_at)) = (&stored, &now)
            && *was_removed == removed
        {
            if at == now_at {
                snap = Some(Snapshot::unproven_legacy(feature).with_semantics(IndexSemantics::Delta));
            } else if let Some(d) = self.read_delta(cx, feature, at).await? {
                // The checkpoint moved but nothing shows: the change is one a delta cannot
                // see (a rating or an episode taken away). Read in full.
                if !d.is_empty() {
                    snap = Some(d);
                }
            }
        }
        let snap = match snap {
            Some(s) => s,
            None => self.read_full(cx, feature).await?,
        };
        if is_complete(&snap)
            && let Some(now_at) = &now
        {
            self.save_watermark(feature, now_at, removed.as_deref());
        }
        Ok(snap)
    }

    async fn library(&self, cx: &Context, op: &str) -> Result<Library> {
        let lib = Library::new(fetch(&self.api, cx, Source::Library, None).await?);
        if lib.complete() {
            Ok(lib)
        } else {
            Err(Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "the SIMKL library could not be read completely ({}); nothing was written",
                    lib.reason()
                ),
            )
            .with_provider("simkl")
            .with_operation(op.to_owned()))
        }
    }

    /// Where a confirming re-read of an *add* may start: SIMKL's newest activity stamp,
    /// read just before the write. Everything the write changes is modified after it, so
    /// a `date_from` read from there shows it, without reading the whole library again.
    /// `None` (confirm with a full read) when SIMKL has no stamp yet or the read fails.
    async fn write_mark(&self, cx: &Context) -> Option<String> {
        match self.api.activities(cx).await {
            Ok(v) => convert::newest_stamp(&v).map(|t| t.to_rfc3339()),
            Err(e) => {
                tracing::debug!(
                    "simkl: no activity stamp before the write ({e}); confirming with a full read"
                );
                None
            }
        }
    }

    /// Re-reads `feature` after a write: changes since `since` (enough to confirm an
    /// add: what was added was modified after the mark), or in full (`None`; a removal
    /// needs that: `date_from` never shows what left).
    async fn reread(
        &self,
        cx: &Context,
        feature: Feature,
        since: Option<&str>,
    ) -> std::result::Result<Snapshot, String> {
        let source = Source::for_feature(feature);
        fetch(&self.api, cx, source, since)
            .await
            .map(|f| snapshot(feature, source, &f))
            .map_err(|e| format!("the re-read after the write failed: {e}"))
    }

    /// Re-reads `feature` after an add: the `date_from` delta from `mark` when that shows
    /// every title SIMKL accepted (`shown(snapshot, entries)`), a full read otherwise —
    /// so a write the delta does not show (should SIMKL filter `date_from` on a back-dated
    /// watch or rating rather than on the change) is still confirmed when it landed.
    async fn reread_after_add(
        &self,
        cx: &Context,
        feature: Feature,
        mark: Option<&str>,
        sent: &Sent,
        shown: impl Fn(&Snapshot, &[usize]) -> bool,
    ) -> std::result::Result<Snapshot, String> {
        if let Some(since) = mark {
            let expected: Vec<usize> = sent
                .accepted
                .iter()
                .copied()
                .filter(|i| !sent.not_found.contains(i))
                .collect();
            match self.reread(cx, feature, Some(since)).await {
                Ok(delta) if shown(&delta, &expected) => return Ok(delta),
                Ok(_) => tracing::debug!(
                    "simkl: the {feature} delta since {since} does not show every write; reading in full"
                ),
                Err(e) => tracing::debug!("simkl: {e}; reading in full"),
            }
        }
        self.reread(cx, feature, None).await
    }

    fn emit_write(&self, cx: &Context, feature: Feature, op: &str, r: &WriteReport) {
        cx.emitter.emit(
            "simkl:write",
            json!({
                "instance": self.instance, "feature": feature, "op": op,
                "confirmed": r.confirmed(), "unchanged": r.unchanged(),
                "unresolved": r.unresolved(), "failed": r.failed(),
            }),
        );
    }

    // -- watchlist ------------------------------------------------------------------------

    async fn watchlist_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/add-to-list";
        let lib = self.library(cx, op).await?;
        let mut decided = vec![None; entries.len()];
        let mut wires = Vec::new();
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) || !TITLES.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL's watchlist holds movies and shows, not this {}",
                    e.item.kind
                ));
                continue;
            }
            let Some(ids) = ids_json(&e.item.ids) else {
                decided[i] = unsupported("no id SIMKL can resolve");
                continue;
            };
            match lib.find(&e.item) {
                Some(r) if r.status.as_deref() == Some(PLAN_TO_WATCH) => {
                    decided[i] = Some(Outcome::AlreadyPresent);
                }
                Some(r) => {
                    decided[i] = conflict(format!(
                        "on SIMKL's `{}` list; adding it to Plan to Watch would move it off that list",
                        r.status.as_deref().unwrap_or("unknown")
                    ));
                }
                None => match queued.get(&e.item.key()) {
                    Some(_) => decided[i] = Some(Outcome::AlreadyPresent),
                    None => {
                        queued.insert(e.item.key(), i);
                        wires.push(Wire {
                            group: group_of(&e.item),
                            body: json!({"ids": ids, "to": PLAN_TO_WATCH}),
                            ids: e.item.ids.clone(),
                            idxs: vec![i],
                        });
                    }
                },
            }
        }
        let mark = if wires.is_empty() {
            None
        } else {
            self.write_mark(cx).await
        };
        let sent = post_batches(&self.api, cx, op, "/sync/add-to-list", wires).await?;
        let report = if sent.any_sent() {
            let after = self
                .reread_after_add(
                    cx,
                    Feature::Watchlist,
                    mark.as_deref(),
                    &sent,
                    |snap, is| {
                        let listed = listed_in(entries, snap);
                        is.iter().all(|i| listed(*i))
                    },
                )
                .await;
            match &after {
                Ok(snap) => {
                    let confirm = listed_in(entries, snap);
                    finalize(entries, decided, sent, Some(&confirm), None)
                }
                Err(msg) => finalize(entries, decided, sent, None, Some(msg.clone())),
            }
        } else {
            finalize(entries, decided, sent, None, None)
        };
        Ok(report)
    }

    async fn watchlist_remove(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/history/remove";
        let lib = self.library(cx, op).await?;
        let mut decided = vec![None; entries.len()];
        let mut wires = Vec::new();
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.payload, Payload::Watchlist { .. }) || !TITLES.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL's watchlist holds movies and shows, not this {}",
                    e.item.kind
                ));
                continue;
            }
            let row = match lib.find(&e.item) {
                Some(r) if r.status.as_deref() == Some(PLAN_TO_WATCH) => r,
                // Not in the library, or in another bucket: not on the watchlist.
                _ => {
                    decided[i] = Some(Outcome::AlreadyAbsent);
                    continue;
                }
            };
            if row.rating.is_some() {
                decided[i] = conflict(
                    "SIMKL takes a title off Plan to Watch only by removing it from the whole library, which would delete its rating",
                );
                continue;
            }
            if row.last_watched_at.is_some() || !row.episodes.is_empty() || row.episodes_missing() {
                decided[i] = conflict(
                    "SIMKL takes a title off Plan to Watch only by removing it from the whole library, which would delete its watch history",
                );
                continue;
            }
            let key = row.item.key();
            if queued.contains_key(&key) {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            let Some(ids) = ids_json(&row.item.ids) else {
                decided[i] = unsupported("no id SIMKL can resolve");
                continue;
            };
            queued.insert(key, i);
            wires.push(Wire {
                group: group_of(&row.item),
                body: json!({"ids": ids}),
                ids: row.item.ids.clone(),
                idxs: vec![i],
            });
        }
        let sent = post_batches(&self.api, cx, op, "/sync/history/remove", wires).await?;
        let report = if sent.any_sent() {
            match self.reread(cx, Feature::Watchlist, None).await {
                Ok(snap) if is_complete(&snap) => {
                    let idx = index_of(&snap);
                    let confirm =
                        |i: usize| idx.find(&entries[i].item.key(), &entries[i].item).is_none();
                    finalize(entries, decided, sent, Some(&confirm), None)
                }
                Ok(snap) => finalize(entries, decided, sent, None, Some(partial_reread(&snap))),
                Err(msg) => finalize(entries, decided, sent, None, Some(msg)),
            }
        } else {
            finalize(entries, decided, sent, None, None)
        };
        Ok(report)
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
        let before = self.read_full(cx, Feature::Ratings).await?;
        let before_complete = is_complete(&before);
        let idx = index_of(&before);
        let mut decided = vec![None; entries.len()];
        let mut wires = Vec::new();
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let rating = match e.payload {
                Payload::Rating { rating, .. } if TITLES.contains(&e.item.kind) => rating,
                _ => {
                    decided[i] = unsupported(format!(
                        "SIMKL rates movies and shows, not this {}",
                        e.item.kind
                    ));
                    continue;
                }
            };
            let Some(ids) = ids_json(&e.item.ids) else {
                decided[i] = unsupported("no id SIMKL can resolve");
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
            if !add && current.is_none() && before_complete {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            if queued.contains_key(&e.item.key()) {
                decided[i] = Some(if add {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::AlreadyAbsent
                });
                continue;
            }
            queued.insert(e.item.key(), i);
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
        let mark = if add && !wires.is_empty() {
            self.write_mark(cx).await
        } else {
            None
        };
        let sent = post_batches(&self.api, cx, op, path, wires).await?;
        if !sent.any_sent() {
            return Ok(finalize(entries, decided, sent, None, None));
        }
        let after = if add {
            self.reread_after_add(cx, Feature::Ratings, mark.as_deref(), &sent, |snap, is| {
                let rated = rated_as(entries, snap, true);
                is.iter().all(|i| rated(*i))
            })
            .await
        } else {
            self.reread(cx, Feature::Ratings, None).await
        };
        let report = match after {
            Ok(snap) if add || is_complete(&snap) => {
                let confirm = rated_as(entries, &snap, add);
                finalize(entries, decided, sent, Some(&confirm), None)
            }
            Ok(snap) => finalize(entries, decided, sent, None, Some(partial_reread(&snap))),
            Err(msg) => finalize(entries, decided, sent, None, Some(msg)),
        };
        Ok(report)
    }

    // -- history --------------------------------------------------------------------------

    async fn history_add(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/history";
        let lib = self.library(cx, op).await?;
        let mut decided = vec![None; entries.len()];
        let mut movies: Vec<Wire> = Vec::new();
        let mut shows = ShowGroups::default();
        // Plays queued in this call: title or episode key → time.
        let mut queued: HashMap<String, ferry_core::Timestamp> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                decided[i] = unsupported("not a play");
                continue;
            };
            if !PLAYS.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL history holds movie and episode plays, not a {}",
                    e.item.kind
                ));
                continue;
            }
            let key = e.item.key();
            if let Some(t) = queued.get(&key) {
                decided[i] = if same_play(*t, watched_at) {
                    Some(Outcome::AlreadyPresent)
                } else {
                    unsupported(
                        "SIMKL keeps one watch per title without rewatches; another play of it is in this batch",
                    )
                };
                continue;
            }
            if e.item.kind == MediaType::Movie {
                let Some(ids) = ids_json(&e.item.ids) else {
                    decided[i] = unsupported("no id SIMKL can resolve");
                    continue;
                };
                if let Some(t) = lib.find(&e.item).and_then(|r| r.last_watched_at) {
                    decided[i] = if same_play(t, watched_at) {
                        Some(Outcome::AlreadyPresent)
                    } else {
                        unsupported(format!(
                            "SIMKL keeps one watch per movie without rewatches; it already holds one at {t}"
                        ))
                    };
                    continue;
                }
                queued.insert(key, watched_at);
                movies.push(Wire {
                    group: "movies",
                    body: json!({"ids": ids, "watched_at": watched_at.to_rfc3339()}),
                    ids: e.item.ids.clone(),
                    idxs: vec![i],
                });
                continue;
            }
            // An episode: SIMKL files it under its show.
            let (Some(s), Some(n)) = (e.item.season, e.item.episode) else {
                decided[i] = unsupported("an episode without season and number");
                continue;
            };
            let show = show_of(&e.item);
            let row = lib.find(&show);
            let show_ids = row.map_or(&show.ids, |r| &r.item.ids);
            let Some(ids) = ids_json(show_ids) else {
                decided[i] = unsupported("no show id SIMKL can resolve");
                continue;
            };
            if let Some(r) = row.filter(|r| r.episodes_missing()) {
                // SIMKL says the show has watched episodes but did not list them: this one
                // may be among them, and re-sending it could move its date.
                decided[i] = Some(Outcome::unmatched(
                    &[unlisted_reason(1, r)],
                    true,
                    "not in SIMKL's library",
                ));
                continue;
            }
            if let Some((_, _, at)) =
                row.and_then(|r| r.episodes.iter().find(|(rs, re, _)| *rs == s && *re == n))
            {
                decided[i] = match at {
                    Some(t) if same_play(*t, watched_at) => Some(Outcome::AlreadyPresent),
                    Some(t) => unsupported(format!(
                        "SIMKL keeps one watch per episode without rewatches; it already holds one at {t}"
                    )),
                    None => {
                        unsupported("SIMKL already has this episode as watched, without a date")
                    }
                };
                continue;
            }
            queued.insert(key, watched_at);
            let show_wire = Wire {
                group: "shows",
                body: json!({"ids": ids}),
                ids: show_ids.clone(),
                idxs: Vec::new(),
            };
            shows.push(
                show.key(),
                show_wire,
                i,
                (s, n, Some(watched_at.to_rfc3339())),
            );
        }
        let mut wires = movies;
        wires.extend(shows.into_wires());
        let mark = if wires.is_empty() {
            None
        } else {
            self.write_mark(cx).await
        };
        let sent = post_batches(&self.api, cx, op, "/sync/history", wires).await?;
        if !sent.any_sent() {
            return Ok(finalize(entries, decided, sent, None, None));
        }
        let after = self
            .reread_after_add(cx, Feature::History, mark.as_deref(), &sent, |snap, is| {
                let played = played_in(entries, snap);
                is.iter().all(|i| played(*i))
            })
            .await;
        let report = match after {
            Ok(snap) => {
                let confirm = played_in(entries, &snap);
                finalize(entries, decided, sent, Some(&confirm), None)
            }
            Err(msg) => finalize(entries, decided, sent, None, Some(msg)),
        };
        Ok(report)
    }

    async fn history_remove(&self, cx: &Context, entries: &[Entry]) -> Result<WriteReport> {
        let op = "POST /sync/history/remove";
        let lib = self.library(cx, op).await?;
        let mut decided = vec![None; entries.len()];
        let mut movies: Vec<Wire> = Vec::new();
        let mut shows = ShowGroups::default();
        let mut queued: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Watch { watched_at } = e.payload else {
                decided[i] = unsupported("not a play");
                continue;
            };
            if !PLAYS.contains(&e.item.kind) {
                decided[i] = unsupported(format!(
                    "SIMKL history holds movie and episode plays, not a {}",
                    e.item.kind
                ));
                continue;
            }
            let key = e.item.key();
            if queued.contains_key(&key) {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            }
            if e.item.kind == MediaType::Movie {
                let row = match lib.find(&e.item) {
                    Some(r) if r.last_watched_at.is_some_and(|t| same_play(t, watched_at)) => r,
                    _ => {
                        decided[i] = Some(Outcome::AlreadyAbsent);
                        continue;
                    }
                };
                if row.rating.is_some() {
                    decided[i] = conflict(
                        "SIMKL removes a movie's watch by removing the movie from the library, which would delete its rating",
                    );
                    continue;
                }
                let Some(ids) = ids_json(&row.item.ids) else {
                    decided[i] = unsupported("no id SIMKL can resolve");
                    continue;
                };
                queued.insert(key, i);
                movies.push(Wire {
                    group: "movies",
                    body: json!({"ids": ids}),
                    ids: row.item.ids.clone(),
                    idxs: vec![i],
                });
                continue;
            }
            let (Some(s), Some(n)) = (e.item.season, e.item.episode) else {
                decided[i] = unsupported("an episode without season and number");
                continue;
            };
            let show = show_of(&e.item);
            let found = lib.find(&show);
            if let Some(r) = found.filter(|r| r.episodes_missing()) {
                decided[i] = Some(Outcome::unmatched(
                    &[unlisted_reason(1, r)],
                    false,
                    "not in SIMKL's library",
                ));
                continue;
            }
            let Some(row) = found.filter(|r| {
                r.episodes.iter().any(|(rs, re, at)| {
                    *rs == s && *re == n && at.is_some_and(|t| same_play(t, watched_at))
                })
            }) else {
                decided[i] = Some(Outcome::AlreadyAbsent);
                continue;
            };
            let Some(ids) = ids_json(&row.item.ids) else {
                decided[i] = unsupported("no show id SIMKL can resolve");
                continue;
            };
            queued.insert(key, i);
            let show_wire = Wire {
                group: "shows",
                body: json!({"ids": ids}),
                ids: row.item.ids.clone(),
                idxs: Vec::new(),
            };
            // Always with explicit episodes: a bare show would leave the library entirely.
            shows.push(row.item.key(), show_wire, i, (s, n, None));
        }
        let mut wires = movies;
        wires.extend(shows.into_wires());
        let sent = post_batches(&self.api, cx, op, "/sync/history/remove", wires).await?;
        if !sent.any_sent() {
            return Ok(finalize(entries, decided, sent, None, None));
        }
        // Confirmed only for plays a complete, full re-read no longer shows.
        let report = match self.reread(cx, Feature::History, None).await {
            Ok(snap) if is_complete(&snap) => {
                let plays = Plays::new(&snap);
                let confirm = |i: usize| match entries[i].payload {
                    Payload::Watch { watched_at } => !plays.has(&entries[i].item, watched_at),
                    _ => false,
                };
                finalize(entries, decided, sent, Some(&confirm), None)
            }
            Ok(snap) => finalize(entries, decided, sent, None, Some(partial_reread(&snap))),
            Err(msg) => finalize(entries, decided, sent, None, Some(msg)),
        };
        Ok(report)
    }
}

/// Episodes grouped under their show: one show object per show in a write.
#[derive(Debug, Default)]
struct ShowGroups(Vec<(String, Wire, Vec<EpisodeMark>)>);

/// `(season, episode, watched_at)` of one episode in a write.
type EpisodeMark = (u32, u32, Option<String>);

impl ShowGroups {
    fn push(&mut self, key: String, show: Wire, idx: usize, mark: EpisodeMark) {
        let pos = match self.0.iter().position(|(k, _, _)| *k == key) {
            Some(p) => p,
            None => {
                self.0.push((key, show, Vec::new()));
                self.0.len() - 1
            }
        };
        self.0[pos].1.idxs.push(idx);
        self.0[pos].2.push(mark);
    }

    /// The show objects, each with explicit seasons and episodes.
    fn into_wires(self) -> impl Iterator<Item = Wire> {
        self.0.into_iter().map(|(_, mut w, eps)| {
            w.body["seasons"] = seasons_json(eps.iter().map(|(s, n, at)| (*s, *n, at.as_deref())));
            w
        })
    }
}

fn group_of(item: &Item) -> &'static str {
    if item.kind == MediaType::Movie {
        "movies"
    } else {
        "shows"
    }
}

/// Whether entry `i`'s title is in `snap` (a watchlist read).
fn listed_in<'a>(entries: &'a [Entry], snap: &Snapshot) -> impl Fn(usize) -> bool + 'a {
    let idx = index_of(snap);
    move |i| idx.find(&entries[i].item.key(), &entries[i].item).is_some()
}

/// Whether `snap` (a ratings read) shows entry `i` written: rated as asked (`add`), or
/// unrated (a removal).
fn rated_as<'a>(
    entries: &'a [Entry],
    snap: &'a Snapshot,
    add: bool,
) -> impl Fn(usize) -> bool + 'a {
    let idx = index_of(snap);
    move |i| {
        let e = &entries[i];
        let now = idx.find(&e.item.key(), &e.item).and_then(|k| snap.get(k));
        match (&e.payload, now.map(|x| &x.payload)) {
            (Payload::Rating { rating, .. }, Some(Payload::Rating { rating: r, .. })) => {
                add && rating == r
            }
            (_, None) => !add,
            _ => false,
        }
    }
}

/// Whether `snap` (a history read) holds entry `i`'s play.
fn played_in<'a>(entries: &'a [Entry], snap: &Snapshot) -> impl Fn(usize) -> bool + 'a {
    let plays = Plays::new(snap);
    move |i| match entries[i].payload {
        Payload::Watch { watched_at } => plays.has(&entries[i].item, watched_at),
        _ => false,
    }
}

fn index_of(snap: &Snapshot) -> ferry_core::identity::AliasIndex {
    ferry_core::identity::AliasIndex::build(snap.iter().map(|(k, e)| (k, &e.item)))
}

fn partial_reread(snap: &Snapshot) -> String {
    match snap.completeness() {
        ferry_core::Completeness::Partial { reason } => {
            format!("the re-read after the write was incomplete ({reason})")
        }
        ferry_core::Completeness::Complete => "the re-read was complete".into(),
    }
}

/// `[{number, episodes: [{number, watched_at?}]}]`, seasons in order.
fn seasons_json<'a>(eps: impl Iterator<Item = (u32, u32, Option<&'a str>)>) -> Value {
    let mut by: std::collections::BTreeMap<u32, Vec<Value>> = Default::default();
    for (s, n, at) in eps {
        let mut e = json!({"number": n});
        if let Some(at) = at {
            e["watched_at"] = json!(at);
        }
        by.entry(s).or_default().push(e);
    }
    Value::Array(
        by.into_iter()
            .map(|(s, eps)| json!({"number": s, "episodes": eps}))
            .collect(),
    )
}

impl ProviderKind for SimklProvider {
    const ID: &'static str = "simkl";
    const LABEL: &'static str = "SIMKL";
    type Config = SimklConfig;

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .with_activities(true)
            .with(Feature::Watchlist, FeatureCaps::full(BATCH_SIZE, &TITLES))
            .with(Feature::Ratings, FeatureCaps::full(BATCH_SIZE, &TITLES))
            .with(Feature::History, FeatureCaps::full(BATCH_SIZE, &PLAYS))
            .with_rate_limit(READ_LIMIT.class, READ_LIMIT.requests, READ_LIMIT.per)
            .with_rate_limit(WRITE_LIMIT.class, WRITE_LIMIT.requests, WRITE_LIMIT.per)
    }

    fn build(instance: &str, config: SimklConfig, env: &BuildEnv) -> Result<Self> {
        SimklProvider::new(
            instance,
            config,
            SimklOptions {
                store: Some(env.kv.clone()),
                ..SimklOptions::default()
            },
        )
    }
}

ferry_core::register_provider!(SimklProvider);

#[async_trait]
impl InventoryOps for SimklProvider {
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
        self.api.http.secrets()
    }

    /// One `GET /sync/activities`, bypassing the breaker (SIMKL's cheapest call).
    async fn health(&self, cx: &Context) -> Health {
        if let Some(h) = self.api.http.breaker_health() {
            return h;
        }
        let started = Instant::now();
        let op = "GET /sync/activities";
        let result = self.api.get(op, "/sync/activities").probe().send(cx).await;
        let mut h = match result.and_then(|r| api::decode(&r, op)) {
            Ok(v) if v.is_object() => Health::ok().with_features(&Self::capabilities(), true),
            Ok(_) => Health::down("SIMKL's activities answer is not an object"),
            Err(e) => Health::from_error(&e),
        };
        h.latency_ms = Some(started.elapsed().as_millis() as u64);
        h.rate = self.api.http.rate_info();
        h
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        self.check(cx, feature)?;
        match self.read_mode {
            ReadMode::Full => self.read_full(cx, feature).await,
            ReadMode::Delta => self.read_with_deltas(cx, feature).await,
        }
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.check(cx, feature)?;
        if entries.is_empty() {
            return Ok(WriteReport::new());
        }
        let r = match feature {
            Feature::Watchlist => self.watchlist_add(cx, entries).await?,
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
            Feature::Watchlist => self.watchlist_remove(cx, entries).await?,
            Feature::Ratings => self.ratings_write(cx, entries, false).await?,
            _ => self.history_remove(cx, entries).await?,
        };
        self.emit_write(cx, feature, "remove", &r);
        Ok(r)
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        cx.check_cancelled()?;
        let v = self.api.activities(cx).await?;
        Ok(convert::activities(&v, &FEATURES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ProviderConfig;

    #[test]
    fn config_rejects_unknown_keys_and_names_them() {
        let c = ProviderConfig::new("s", "simkl")
            .set("client_id", "cid-123456")
            .set("access_token", "tok-123456")
            .set("acess_token", "typo");
        let e = c.parse::<SimklConfig>().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("acess_token"));
        let c = ProviderConfig::new("s", "simkl")
            .set("client_id", "cid-123456")
            .set("access_token", "tok-123456")
            .set("read_mode", "delta");
        let cfg = c.parse::<SimklConfig>().unwrap();
        assert_eq!(cfg.read_mode, ReadMode::Delta);
        assert!(!format!("{cfg:?}").contains("tok-123456"));
    }

    #[test]
    fn delta_is_the_default_read_mode() {
        // SIMKL suspends apps that re-download the library instead of `date_from` reads.
        let cfg = ProviderConfig::new("s", "simkl")
            .set("client_id", "cid-123456")
            .set("access_token", "tok-123456")
            .parse::<SimklConfig>()
            .unwrap();
        assert_eq!(cfg.read_mode, ReadMode::Delta);
        let cfg = ProviderConfig::new("s", "simkl")
            .set("client_id", "cid-123456")
            .set("access_token", "tok-123456")
            .set("read_mode", "full")
            .parse::<SimklConfig>()
            .unwrap();
        assert_eq!(cfg.read_mode, ReadMode::Full);
    }

    #[test]
    fn declared_limits_stay_below_simkls_published_ones() {
        let caps = SimklProvider::capabilities();
        let per_sec = |l: &RateLimit| f64::from(l.requests) / l.per.as_secs_f64();
        let read = caps
            .rate_limits
            .iter()
            .find(|l| l.class == VerbClass::Read)
            .unwrap();
        let write = caps
            .rate_limits
            .iter()
            .find(|l| l.class == VerbClass::Write)
            .unwrap();
        assert!(per_sec(read) <= 10.0 / 2.0, "{read:?}");
        assert!(per_sec(write) < 1.0, "{write:?}");
        for f in [Feature::Watchlist, Feature::Ratings, Feature::History] {
            let c = caps.get(f).unwrap();
            assert_eq!(
                c.semantics,
                IndexSemantics::Present,
                "{f}: full reads are present"
            );
        }
    }

    #[test]
    fn empty_credentials_are_refused() {
        let cfg = SimklConfig {
            client_id: Secret::new("cid-1234"),
            access_token: Some(Secret::new(" ")),
            base_url: None,
            read_mode: ReadMode::Full,
        };
        let e = SimklProvider::new("s", cfg, SimklOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("access_token"), "{e}");
    }
}

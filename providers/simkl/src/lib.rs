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
mod config;
mod convert;
mod model;
pub mod pin;
mod read;
mod sign_in;
#[cfg(feature = "sim")]
mod simulator;
mod write;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{
    Activities, BuildEnv, Capabilities, Context, Entry, Error, Feature, FeatureCaps, Health,
    IndexSemantics, InventoryOps, KvStore, ListCache, MediaType, ProviderKind, Reader, Result,
    Secret, Snapshot, Tally, WriteReport,
};
use serde::{Deserialize, Serialize};

use crate::api::Api;
use crate::convert::PLAN_TO_WATCH;
use crate::model::ActivitiesRow;
use crate::read::{Library, Source, fetch, is_complete, snapshot};

pub use crate::write::BATCH_SIZE;

/// How long writes may plan against a library read before reading it again.
const LIBRARY_TTL: Duration = Duration::from_secs(120);

pub use crate::config::{
    DEFAULT_BASE_URL, READ_LIMIT, ReadMode, SimklConfig, SimklOptions, WRITE_LIMIT,
};

const TITLES: [MediaType; 2] = [MediaType::Movie, MediaType::Show];
const PLAYS: [MediaType; 2] = [MediaType::Movie, MediaType::Episode];
const FEATURES: [Feature; 3] = [Feature::History, Feature::Watchlist, Feature::Ratings];
const WATERMARKS: &str = "simkl";

/// Where a delta read of a feature starts: the checkpoint of its last complete read, and
/// the `removed_from_list` stamp then (a newer one forces a full read).
#[derive(Debug, Serialize, Deserialize)]
struct Watermark {
    at: String,
    #[serde(default)]
    removed: Option<String>,
}

/// The SIMKL provider.
#[derive(Debug)]
pub struct SimklProvider {
    instance: String,
    api: Api,
    read_mode: ReadMode,
    store: Option<Arc<dyn KvStore>>,
    /// Each list's row count at its last complete read: the proof SIMKL's totals-free
    /// lists lack.
    tally: Tally,
    /// The last library read, which writes plan against.
    library: ListCache<Library>,
}

impl SimklProvider {
    pub fn new(instance: &str, config: SimklConfig, options: SimklOptions) -> Result<Self> {
        let http = config::client(instance, &config, &options)?;
        Ok(SimklProvider {
            instance: instance.to_owned(),
            api: Api::new(http, config.client_id),
            read_mode: config.read_mode,
            tally: Tally::new(options.store.clone(), "simkl", instance),
            store: options.store,
            library: ListCache::new(LIBRARY_TTL),
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

    /// A full read of one feature (`present` semantics), judged against the counts of the
    /// last complete read (see [`Tally`]): SIMKL's lists declare no totals, so a catalog
    /// that comes back shorter is only complete when `/sync/activities` shows a removal
    /// from it since.
    pub async fn read_full(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        self.check(cx, feature)?;
        // Unreadable activities prove no removal: a shorter catalog is then partial. An
        // auth failure or a cancellation shows again on the list read itself.
        let act = self.api.activities(cx).await.ok();
        self.read_full_under(cx, feature, act.as_ref()).await
    }

    async fn read_full_under(
        &self,
        cx: &Context,
        feature: Feature,
        act: Option<&ActivitiesRow>,
    ) -> Result<Snapshot> {
        let source = Source::for_feature(feature);
        let mut fetched = fetch(&self.api, cx, source, None).await?;
        let counts = read::counting(&fetched, source, act);
        let mut shrank = false;
        for c in &counts {
            match self.tally.judge(c) {
                Some(why) => fetched.proof.mark_partial(why),
                None => shrank |= self.tally.shrank(c),
            }
        }
        // A list its stamps allow to shrink is read once more before it is believed: an
        // added rating moves the same stamp a removed one does, so only a second read
        // that counts the same tells a removal from a lost answer.
        if shrank && fetched.complete() {
            let again = fetch(&self.api, cx, source, None).await?;
            for (first, again) in counts.iter().zip(read::counting(&again, source, act)) {
                if let Some(why) = Tally::unsteady(first, &again) {
                    fetched.proof.mark_partial(why);
                }
            }
        }
        let snap = snapshot(feature, source, &fetched);
        if snap.is_complete() && self.tally.record(&counts) > 0 {
            cx.emitter.warn(&format!(
                "{}: could not record the {feature} list counts; the next read of a \
                 shorter list is judged without them",
                self.instance
            ));
        }
        Ok(snap)
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
        let w: Watermark = serde_json::from_str(&raw).ok()?;
        Some((w.at, w.removed))
    }

    fn save_watermark(&self, feature: Feature, at: &str, removed: Option<&str>) {
        if let Some(s) = &self.store {
            let w = Watermark {
                at: at.to_owned(),
                removed: removed.map(str::to_owned),
            };
            let v = serde_json::to_string(&w).unwrap_or_default();
            if let Err(e) = s.put(WATERMARKS, &self.watermark_key(feature), &v) {
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
                // Nothing changed since the watermark: the activities, read whole, prove
                // the delta empty.
                let proof = Reader::<()>::new("activities").finish_whole();
                let none = proof.proof().snapshot(feature, Vec::new());
                snap = Some(none.with_semantics(IndexSemantics::Delta));
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
            None => self.read_full_under(cx, feature, Some(&act)).await?,
        };
        if is_complete(&snap)
            && let Some(now_at) = &now
        {
            self.save_watermark(feature, now_at, removed.as_deref());
        }
        Ok(snap)
    }
}

impl ProviderKind for SimklProvider {
    const ID: &'static str = "simkl";
    const LABEL: &'static str = "SIMKL";
    type Config = SimklConfig;
    const SIGN_IN: Option<ferry_core::SignIn> = Some(sign_in::FLOW);
    #[cfg(feature = "sim")]
    const SIMULATOR: Option<ferry_core::Simulator> = Some(simulator::SIMULATOR);

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
        let probe = async {
            let resp = (self.api.get("GET /sync/activities", "/sync/activities"))
                .probe()
                .send(cx)
                .await?;
            ferry_http::page::envelope::<model::ActivitiesRow>(&resp).map(|_| ())
        };
        ferry_http::service_health(&self.api.http, &Self::capabilities(), probe).await
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
        match feature {
            Feature::Watchlist => self.watchlist_add(cx, entries).await,
            Feature::Ratings => self.ratings_write(cx, entries, true).await,
            _ => self.history_add(cx, entries).await,
        }
    }

    async fn remove(&self, cx: &Context, f: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.check(cx, f)?;
        if entries.is_empty() {
            return Ok(WriteReport::new());
        }
        match f {
            Feature::Watchlist => self.watchlist_remove(cx, entries).await,
            Feature::Ratings => self.ratings_write(cx, entries, false).await,
            _ => self.history_remove(cx, entries).await,
        }
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
    use ferry_core::{ErrorKind, RateLimit, VerbClass};

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

//! The harness around every provider the registry builds (OpenDAL's default layers):
//! what every provider would otherwise repeat, and what the engine must be able to rely
//! on whatever a provider does.
//!
//! - **capabilities**: a read of a feature the provider does not read, or a write it does
//!   not declare (`add`/`remove` off), is refused with `unsupported` before the provider
//!   sees it;
//! - **cancellation**: checked before every call;
//! - **error context**: every error names the provider, the instance and the operation;
//! - **write events**: every add and remove call emits `provider:write` with its
//!   per-item outcome counts ([`ProviderWrite`]);
//! - **runtime contract**: `add`/`remove` must answer one outcome per entry, in order
//!   (same keys), and `build_index` a snapshot of the feature asked for. A violation is
//!   an `unexpected` error naming the provider, never a panic and never passed on.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::feature::Feature;
use crate::item::Entry;
use crate::ops::{Activities, Capabilities, Context, Health, InventoryOps};
use crate::report::WriteReport;
use crate::secret::Secret;
use crate::snapshot::Snapshot;

/// A provider inside the harness.
#[derive(Debug)]
pub struct Harness {
    inner: Arc<dyn InventoryOps>,
}

impl Harness {
    /// Wraps a provider (the registry does this for every provider it builds).
    pub fn wrap(inner: Arc<dyn InventoryOps>) -> Arc<dyn InventoryOps> {
        Arc::new(Harness { inner })
    }

    fn context(&self, e: Error, op: &str) -> Error {
        let mut e = e;
        if e.provider().is_none() {
            e = e.with_provider(self.inner.provider());
        }
        if e.operation().is_none() {
            e = e.with_operation(op.to_owned());
        }
        if !e.context().iter().any(|(k, _)| *k == "instance") {
            e = e.with_context("instance", self.inner.instance().to_owned());
        }
        e
    }

    fn violation(&self, op: &str, what: String) -> Error {
        self.context(
            Error::new(
                ErrorKind::Unexpected,
                format!("the provider broke its contract: {what}"),
            ),
            op,
        )
    }

    fn refuse(&self, op: &str, feature: Feature, what: &str) -> Error {
        self.context(
            Error::unsupported(format!(
                "{} does not {what} {feature}",
                self.inner.provider()
            )),
            op,
        )
    }

    fn checked_report(
        &self,
        op: &str,
        entries: &[Entry],
        r: Result<WriteReport>,
    ) -> Result<WriteReport> {
        let report = r.map_err(|e| self.context(e, op))?;
        if report.items.len() != entries.len() {
            return Err(self.violation(
                op,
                format!(
                    "{} outcome(s) for {} entr(ies)",
                    report.items.len(),
                    entries.len()
                ),
            ));
        }
        if let Some(i) = report
            .items
            .iter()
            .zip(entries)
            .position(|(o, e)| o.key != e.key())
        {
            return Err(self.violation(
                op,
                format!("outcome {i} is for another entry than the one sent"),
            ));
        }
        Ok(report)
    }

    async fn write(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let op = if add { "add" } else { "remove" };
        let op = format!("{op} {feature}");
        cx.check_cancelled().map_err(|e| self.context(e, &op))?;
        let caps = self.inner.features();
        let allowed = caps
            .get(feature)
            .is_some_and(|c| if add { c.add } else { c.remove });
        if !allowed {
            return Err(self.refuse(&op, feature, if add { "add to" } else { "remove from" }));
        }
        if entries.is_empty() {
            return Ok(WriteReport::new());
        }
        let started = std::time::Instant::now();
        let r = if add {
            self.inner.add(cx, feature, entries).await
        } else {
            self.inner.remove(cx, feature, entries).await
        };
        let r = self.checked_report(&op, entries, r);
        let (provider, instance) = (self.inner.provider(), self.inner.instance());
        let ms = started.elapsed().as_millis() as u64;
        cx.emitter.emit_value(
            ProviderWrite::NAME,
            &ProviderWrite::new(provider, instance, feature, add, entries.len(), &r, ms),
        );
        r
    }
}

/// `provider:write`: one add or remove call as the provider answered it, emitted by the
/// harness for every provider (counts from the per-item outcomes, never from a bare
/// count the service claimed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderWrite<'a> {
    pub provider: &'a str,
    pub instance: &'a str,
    pub feature: Feature,
    /// `add` or `remove`.
    pub op: &'static str,
    /// Entries sent to the call.
    pub entries: usize,
    pub confirmed: usize,
    /// Already present (add) or already absent (remove).
    pub unchanged: usize,
    pub unresolved: usize,
    pub failed: usize,
    /// The error kind when the whole call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    pub ms: u64,
}

impl<'a> ProviderWrite<'a> {
    pub const NAME: &'static str = "provider:write";

    fn new(
        provider: &'a str,
        instance: &'a str,
        feature: Feature,
        add: bool,
        entries: usize,
        r: &Result<WriteReport>,
        ms: u64,
    ) -> Self {
        let counts = |r: &WriteReport| (r.confirmed(), r.unchanged(), r.unresolved(), r.failed());
        let ((confirmed, unchanged, unresolved, failed), error) = match r {
            Ok(r) => (counts(r), None),
            Err(e) => ((0, 0, 0, entries), Some(e.kind().as_str())),
        };
        ProviderWrite {
            provider,
            instance,
            feature,
            op: if add { "add" } else { "remove" },
            entries,
            confirmed,
            unchanged,
            unresolved,
            failed,
            error,
            ms,
        }
    }
}

#[async_trait]
impl InventoryOps for Harness {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    fn instance(&self) -> &str {
        self.inner.instance()
    }

    fn features(&self) -> Capabilities {
        self.inner.features()
    }

    fn secrets(&self) -> Vec<Secret> {
        self.inner.secrets()
    }

    async fn health(&self, cx: &Context) -> Health {
        self.inner.health(cx).await
    }

    async fn build_index(&self, cx: &Context, feature: Feature) -> Result<Snapshot> {
        let op = format!("build_index {feature}");
        cx.check_cancelled().map_err(|e| self.context(e, &op))?;
        if !self.inner.features().supports(feature) {
            return Err(self.refuse(&op, feature, "read"));
        }
        let snap = self
            .inner
            .build_index(cx, feature)
            .await
            .map_err(|e| self.context(e, &op))?;
        if snap.feature() != feature {
            return Err(self.violation(
                &op,
                format!("asked for {feature}, answered {}", snap.feature()),
            ));
        }
        Ok(snap)
    }

    async fn add(&self, cx: &Context, feature: Feature, entries: &[Entry]) -> Result<WriteReport> {
        self.write(cx, feature, entries, true).await
    }

    async fn remove(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
    ) -> Result<WriteReport> {
        self.write(cx, feature, entries, false).await
    }

    async fn activities(&self, cx: &Context) -> Result<Activities> {
        cx.check_cancelled()
            .map_err(|e| self.context(e, "activities"))?;
        self.inner
            .activities(cx)
            .await
            .map_err(|e| self.context(e, "activities"))
    }

    async fn activity(&self, cx: &Context, feature: Feature) -> Result<Option<String>> {
        let op = format!("activity {feature}");
        cx.check_cancelled().map_err(|e| self.context(e, &op))?;
        self.inner
            .activity(cx, feature)
            .await
            .map_err(|e| self.context(e, &op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{IdKind, Ids};
    use crate::item::{Item, MediaType};
    use crate::ops::FeatureCaps;
    use crate::report::Outcome;

    /// A provider that answers with whatever it was built to (wrong feature, short
    /// reports, reordered reports).
    #[derive(Debug)]
    struct Rogue {
        feature: Feature,
        drop_one: bool,
        reverse: bool,
    }

    #[async_trait]
    impl InventoryOps for Rogue {
        fn provider(&self) -> &'static str {
            "rogue"
        }
        fn instance(&self) -> &str {
            "r1"
        }
        fn features(&self) -> Capabilities {
            Capabilities::new()
                .with(
                    Feature::Watchlist,
                    FeatureCaps::full(10, &[MediaType::Movie]),
                )
                .with(
                    Feature::History,
                    FeatureCaps::read_only(&[MediaType::Movie]),
                )
        }
        async fn build_index(&self, _cx: &Context, _f: Feature) -> Result<Snapshot> {
            Ok(Snapshot::partial(self.feature, [], "test"))
        }
        async fn add(&self, _cx: &Context, _f: Feature, entries: &[Entry]) -> Result<WriteReport> {
            let mut v: Vec<&Entry> = entries.iter().collect();
            if self.drop_one {
                v.pop();
            }
            if self.reverse {
                v.reverse();
            }
            let mut r = WriteReport::new();
            for e in v {
                r.push(e, Outcome::Confirmed);
            }
            Ok(r)
        }
        async fn remove(&self, _cx: &Context, _f: Feature, _e: &[Entry]) -> Result<WriteReport> {
            Err(Error::new(ErrorKind::Unavailable, "503"))
        }
    }

    fn entries() -> Vec<Entry> {
        ["1", "2"]
            .iter()
            .map(|n| Entry::watchlist(Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, n))))
            .collect()
    }

    fn rogue(feature: Feature, drop_one: bool, reverse: bool) -> Arc<dyn InventoryOps> {
        Harness::wrap(Arc::new(Rogue {
            feature,
            drop_one,
            reverse,
        }))
    }

    #[tokio::test]
    async fn contract_violations_become_errors() {
        let cx = Context::default();
        let e = rogue(Feature::History, false, false)
            .build_index(&cx, Feature::Watchlist)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert!(e.to_string().contains("asked for watchlist"), "{e}");
        for (drop_one, reverse) in [(true, false), (false, true)] {
            let e = rogue(Feature::Watchlist, drop_one, reverse)
                .add(&cx, Feature::Watchlist, &entries())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unexpected, "{e}");
        }
        let ok = rogue(Feature::Watchlist, false, false)
            .add(&cx, Feature::Watchlist, &entries())
            .await
            .unwrap();
        assert_eq!(ok.confirmed(), 2);
    }

    #[tokio::test]
    async fn capabilities_cancellation_and_context_are_applied() {
        let cx = Context::default();
        let p = rogue(Feature::Watchlist, false, false);
        let e = p.add(&cx, Feature::History, &entries()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = p.build_index(&cx, Feature::Ratings).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = p
            .remove(&cx, Feature::Watchlist, &entries())
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("rogue: remove watchlist: 503") && text.contains("instance=r1"),
            "{text}"
        );
        cx.cancel.cancel();
        let e = p.build_index(&cx, Feature::Watchlist).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
    }

    #[tokio::test]
    async fn every_write_call_is_reported_from_its_outcomes() {
        let sink = crate::event::CollectingSink::new();
        let cx = Context::new(
            crate::event::Emitter::to_sink(sink.clone()),
            crate::cancel::CancelToken::new(),
        );
        let p = rogue(Feature::Watchlist, false, false);
        p.add(&cx, Feature::Watchlist, &entries()).await.unwrap();
        assert!(p.remove(&cx, Feature::Watchlist, &entries()).await.is_err());
        let ev = sink.named("provider:write");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].str("op"), Some("add"));
        assert_eq!(
            (ev[0].u64("entries"), ev[0].u64("confirmed")),
            (Some(2), Some(2))
        );
        assert_eq!(ev[1].str("op"), Some("remove"));
        assert_eq!(
            (ev[1].u64("failed"), ev[1].str("error")),
            (Some(2), Some("unavailable"))
        );
    }
}

//! The event contract: lifecycle order, `api:hit` aggregation, `dbg` gating, redaction,
//! and the gates that only show up as events.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use ferry_core::{
    Activities, Capabilities, Context, Entry, Feature, Health, InventoryOps, Result, Secret,
    Snapshot, WriteReport,
};
use ferry_engine::{FeatureStatus, FeatureSwitch, RunConfig};
use ferry_testkit::fake::FakeProvider;
use serde_json::json;

const WL: Feature = Feature::Watchlist;

/// A fake that reports an `api:hit` per call (with its secret in the URL, as a careless
/// provider might) and declares a secret.
#[derive(Debug)]
struct Chatty(FakeProvider);

impl Chatty {
    fn hit(&self, cx: &Context, op: &str, status: u64) {
        cx.emitter.emit(
            "api:hit",
            json!({"provider": "fake", "instance": self.0.instance(), "op": op, "ms": 12,
                   "ok": status < 400, "status": status,
                   "url": "https://api.example/sync?token=s3cret-t0ken"}),
        );
    }
}

#[async_trait]
impl InventoryOps for Chatty {
    fn provider(&self) -> &'static str {
        "fake"
    }
    fn instance(&self) -> &str {
        self.0.instance()
    }
    fn features(&self) -> Capabilities {
        self.0.features()
    }
    fn secrets(&self) -> Vec<Secret> {
        vec![Secret::new("s3cret-t0ken")]
    }
    async fn health(&self, cx: &Context) -> Health {
        self.hit(cx, "GET /users/settings", 200);
        self.0.health(cx).await
    }
    async fn build_index(&self, cx: &Context, f: Feature) -> Result<Snapshot> {
        self.hit(cx, "GET /sync/watchlist", 200);
        self.0.build_index(cx, f).await
    }
    async fn add(&self, cx: &Context, f: Feature, e: &[Entry]) -> Result<WriteReport> {
        self.hit(cx, "POST /sync/watchlist", 201);
        self.0.add(cx, f, e).await
    }
    async fn remove(&self, cx: &Context, f: Feature, e: &[Entry]) -> Result<WriteReport> {
        self.hit(cx, "POST /sync/watchlist/remove", 200);
        self.0.remove(cx, f, e).await
    }
    async fn activities(&self, cx: &Context) -> Result<Activities> {
        self.0.activities(cx).await
    }
}

#[tokio::test]
async fn a_run_emits_the_lifecycle_in_order() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..150));
    let s = w
        .run(&cfg(vec![pair(
            "p",
            "plex",
            "trakt",
            WL,
            FeatureSwitch::default(),
        )]))
        .await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 150);
    let names = w.sink.names();
    let expected = [
        "health",
        "health",
        "run:start",
        "run:pair",
        "feature:start",
        "feature:read",
        "one:plan",
        "apply:add:start",
        "apply:add:progress",
        "apply:add:progress",
        "apply:add:done",
        "feature:done",
        "api:totals",
        "http:overview",
        "run:done",
    ];
    assert_eq!(names, expected);
    let start = &w.sink.named("run:start")[0];
    assert_eq!(
        start.u64("schema"),
        Some(u64::from(ferry_core::event::EVENT_SCHEMA_VERSION))
    );
    let prog = w.sink.named("apply:add:progress");
    assert_eq!(
        (prog[0].u64("done"), prog[0].u64("total")),
        (Some(100), Some(150))
    );
    let done = &w.sink.named("apply:add:done")[0];
    assert_eq!(
        (done.u64("count"), done.u64("added"), done.u64("attempted")),
        (Some(150), Some(150), Some(150))
    );
    let plan = &w.sink.named("one:plan")[0];
    assert_eq!(plan.u64("adds"), Some(150));
    assert_eq!(
        plan.get("preview").unwrap()["adds"]
            .as_array()
            .unwrap()
            .len(),
        10,
        "previews are capped"
    );
}

#[tokio::test]
async fn api_hits_are_aggregated_and_secrets_scrubbed() {
    let mut w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    let chatty = Arc::new(Chatty(w.fake("trakt").clone()));
    w.set_provider("trakt", chatty);
    let s = w
        .run(&cfg(vec![pair(
            "p",
            "plex",
            "trakt",
            WL,
            FeatureSwitch::default(),
        )]))
        .await;
    assert_eq!(s.api.total, 3, "health, read, write");
    let t = &s.api.providers["trakt"];
    assert_eq!(t.by_method["GET"], 2);
    assert_eq!(t.by_status["2xx"], 3);
    assert_eq!(feat(&s, "p", WL).api_hits, 2);
    let totals = &w.sink.named("api:totals")[0];
    assert_eq!(
        totals.get("totals").unwrap()["providers"]["trakt"]["total"],
        3
    );
    let overview = &w.sink.named("http:overview")[0];
    assert_eq!(overview.get("providers").unwrap()["trakt"]["requests"], 3);
    let dump = w.sink.dump();
    assert!(!dump.contains("s3cret-t0ken"), "{dump}");
    assert!(dump.contains("[redacted]"));
}

#[tokio::test]
async fn dbg_events_appear_only_when_debug_is_on() {
    let c = |debug| RunConfig {
        debug,
        ..cfg(vec![pair(
            "p",
            "local",
            "trakt",
            WL,
            FeatureSwitch::with_removals(),
        )])
    };
    for debug in [false, true] {
        let w = World::new(&["local", "trakt"]);
        w.fake("local").without_health();
        w.fake("local").seed(WL, entries(WL, 0..2));
        w.run(&c(debug)).await;
        let dbg = w.sink.named("dbg");
        assert_eq!(!dbg.is_empty(), debug, "{dbg:?}");
        if debug {
            assert!(
                dbg.iter()
                    .any(|e| e.str("msg") == Some("deletions:untrusted"))
            );
        }
    }
}

#[tokio::test]
async fn auth_failure_skips_the_pair_and_a_down_source_skips_the_feature() {
    let w = World::new(&["plex", "trakt", "simkl"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    w.fake("trakt").set_health(Health::auth_failed("401"));
    w.fake("simkl").set_health(Health::down("503"));
    let c = cfg(vec![
        pair("a", "plex", "trakt", WL, FeatureSwitch::default()),
        pair("b", "simkl", "plex", WL, FeatureSwitch::default()),
    ]);
    let s = w.run(&c).await;
    assert_eq!(s.pairs[0].skipped.as_deref(), Some("auth_failed"));
    let skip = &w.sink.named("pair:skip")[0];
    assert_eq!(
        (skip.str("reason"), skip.str("dst_status")),
        (Some("auth_failed"), Some("auth_failed"))
    );
    assert_eq!(feat(&s, "b", WL).status, FeatureStatus::SourceDown);
    let ws = &w.sink.named("writes:skipped")[0];
    assert_eq!(ws.str("reason"), Some("source_down"));
    assert!(
        w.engine.state().baselines().unwrap().is_empty(),
        "nothing committed"
    );
}

#[tokio::test]
async fn a_feature_a_side_cannot_read_is_unsupported() {
    let w = World::new(&["plex", "trakt"]);
    let caps = Capabilities::new().with_activities(true).with(
        WL,
        ferry_core::FeatureCaps::full(100, &[ferry_core::MediaType::Movie]),
    );
    w.fake("trakt").with_caps(caps);
    let s = w
        .run(&cfg(vec![pair(
            "p",
            "plex",
            "trakt",
            Feature::Ratings,
            FeatureSwitch::default(),
        )]))
        .await;
    assert_eq!(
        feat(&s, "p", Feature::Ratings).status,
        FeatureStatus::Unsupported
    );
    let e = &w.sink.named("feature:unsupported")[0];
    assert_eq!(e.get("dst_supported"), Some(&json!(false)));
}

#[tokio::test]
async fn target_down_writes_are_recorded_unresolved_and_retried() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..4));
    w.fake("trakt").set_health(Health::down("maintenance"));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.to_b.unresolved.get("provider_down"), Some(&4));
    let ws = &w.sink.named("writes:skipped")[0];
    assert_eq!(
        (ws.str("reason"), ws.u64("count")),
        (Some("provider_down"), Some(4))
    );
    let report = w.engine.state_report(5).unwrap();
    assert_eq!(report.unresolved.len(), 4);
    assert!(
        report
            .unresolved
            .iter()
            .all(|u| u.reason == "provider_down")
    );
    w.fake("trakt").set_health(Health::ok());
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 4);
    assert!(w.engine.state_report(5).unwrap().unresolved.is_empty());
}

/// `docs/events.md`'s generated parts match the event types. On drift:
/// `UPDATE_EXPECT=1 cargo test -p ferry-engine --test events` rewrites them.
#[test]
fn docs_events_md_is_generated_from_the_event_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut fresh = text.clone();
    for name in ferry_engine::events::GENERATED {
        let begin = format!("<!-- begin generated: {name} -->\n");
        let end = format!("<!-- end generated: {name} -->");
        let (Some(b), Some(e)) = (fresh.find(&begin), fresh.find(&end)) else {
            panic!("{}: no `{begin}` … `{end}` markers", path.display());
        };
        let body = ferry_engine::events::generated(name).unwrap_or_default();
        fresh.replace_range(b + begin.len()..e, &body);
    }
    if fresh == text {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    panic!(
        "{} is out of date with the event types in crates/ferry-engine/src/events; \
         regenerate it with `UPDATE_EXPECT=1 cargo test -p ferry-engine --test events`",
        path.display()
    );
}

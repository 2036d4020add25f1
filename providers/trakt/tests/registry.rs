//! Registration and configuration: what the runner sees.

mod common;

use std::sync::Arc;

use ferry_core::registry::{find, providers};
use ferry_core::{BuildEnv, Feature, ProviderConfig};

use common::{cx, sim};

fn raw(sim: &ferry_testkit::sim::trakt::TraktSim) -> ProviderConfig {
    ProviderConfig::new("trakt-main", "trakt")
        .set("client_id", sim.client_id())
        .set("client_secret", sim.client_secret())
        .set("access_token", sim.access_token())
        .set("refresh_token", sim.refresh_token())
        .set("base_url", sim.uri())
}

#[tokio::test]
async fn trakt_registers_once_and_builds_from_config() {
    assert_eq!(providers().iter().filter(|d| d.id == "trakt").count(), 1);
    let d = find("trakt").unwrap();
    assert_eq!(d.label, "Trakt");
    let caps = (d.capabilities)();
    for f in Feature::ALL {
        assert!(caps.supports(f), "{f}");
    }
    assert!(caps.activities);
    assert_eq!(caps.rate_limits.len(), 2);

    let sim = sim().await;
    let cfg = raw(&sim);
    (d.validate)(&cfg).unwrap();
    let env = BuildEnv::new(
        std::env::temp_dir(),
        Arc::new(ferry_core::MemoryKvStore::new()),
    );
    let p = (d.build)(&cfg, &env).unwrap();
    assert_eq!(p.instance(), "trakt-main");
    assert!(
        p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap()
            .is_complete()
    );
    let dbg = format!("{p:?}");
    for s in [
        sim.client_id(),
        sim.access_token(),
        sim.refresh_token(),
        sim.client_secret(),
    ] {
        assert!(!dbg.contains(&s), "secret in {dbg}");
    }
    let secrets: Vec<String> = p.secrets().iter().map(|s| s.expose().to_owned()).collect();
    assert!(secrets.contains(&sim.client_id()));
    assert!(secrets.contains(&sim.access_token()));
    assert!(secrets.contains(&sim.client_secret()));
}

#[tokio::test]
async fn config_errors_name_the_field() {
    let sim = sim().await;
    let d = find("trakt").unwrap();
    let e = (d.validate)(&raw(&sim).set("page_limt", 10)).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("page_limt"));
    let mut missing = raw(&sim);
    missing.values.remove("client_id");
    let e = (d.validate)(&missing).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("client_id"));
    // Only the client id is required: tokens may come from `ferry auth trakt`.
    let minimal = ProviderConfig::new("t", "trakt").set("client_id", "abc");
    let parsed: trakt::TraktConfig = minimal.parse().unwrap();
    assert_eq!(parsed.base_url, trakt::DEFAULT_BASE_URL);
    assert!(parsed.client_secret.is_none() && parsed.page_limit.is_none());
    let e = (d.build)(
        &minimal.set("base_url", "not a url"),
        &BuildEnv::ephemeral(std::env::temp_dir()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ferry_core::ErrorKind::InvalidInput);
}

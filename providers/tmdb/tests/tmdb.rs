//! TMDB behaviour the contract suite does not pin: linear writes, the rating scale, the
//! two ways to sign in, secrets in errors.

use std::time::Duration;

use ferry_core::{Context, Entry, Feature, InventoryOps, Outcome, Payload, Rating, Secret};
use ferry_http::RetryPolicy;
use ferry_testkit::samples;
use ferry_testkit::sim::kit::{FaultControl, FaultRule, Simulator};
use ferry_testkit::sim::knobs::Fault;
use tmdb::sim::{ACCOUNT_ID, API_KEY, SESSION_ID, TmdbSim};
use tmdb::{TmdbConfig, TmdbOptions, TmdbProvider};

fn config(sim: &TmdbSim) -> TmdbConfig {
    TmdbConfig {
        base_url: Some(sim.uri()),
        account_id: ACCOUNT_ID,
        access_token: Some(Secret::new(sim.token())),
        api_key: None,
        session_id: None,
    }
}

fn build(config: TmdbConfig) -> ferry_core::Result<TmdbProvider> {
    let retry =
        RetryPolicy::default().with_backoff(Duration::from_millis(1), Duration::from_millis(5));
    let options = TmdbOptions {
        retry,
        ..TmdbOptions::default()
    };
    TmdbProvider::new("tmdb-test", config, options)
}

fn rating(n: u32, r: u8) -> Entry {
    Entry::rating(samples::movie(n), Rating::new(r).unwrap(), None)
}

#[tokio::test]
async fn a_first_sync_of_250_titles_costs_two_requests_each_at_most() {
    let sim = TmdbSim::start().await;
    sim.with(|r| r.catalog.extend((1000..1250).map(samples::movie)));
    let p = build(config(&sim)).unwrap();
    let cx = Context::default();
    let entries: Vec<Entry> = (1000..1250)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    sim.knobs(|k| k.reset_counts());
    let r = p.add(&cx, Feature::Watchlist, &entries).await.unwrap();
    assert_eq!(r.confirmed(), 250, "{:?}", r.items.first());
    assert_eq!(
        sim.knobs(|k| k.total()),
        500,
        "one state read and one write each"
    );
    // Again: nothing to change, so only the state reads.
    sim.knobs(|k| k.reset_counts());
    let r = p.add(&cx, Feature::Watchlist, &entries).await.unwrap();
    assert!(r.items.iter().all(|i| i.outcome == Outcome::AlreadyPresent));
    assert_eq!(sim.knobs(|k| k.total()), 250);
    let snap = p.build_index(&cx, Feature::Watchlist).await.unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.len(), 22 + 4 + 250);
}

#[tokio::test]
async fn a_half_step_reads_rounded_up_and_is_never_rewritten_to_an_equal_value() {
    let sim = TmdbSim::start().await;
    let p = build(config(&sim)).unwrap();
    let cx = Context::default();
    let snap = p.build_index(&cx, Feature::Ratings).await.unwrap();
    let held = snap.get(&rating(42, 8).key()).expect("movie 42 is rated");
    assert!(matches!(held.payload, Payload::Rating { rating, .. } if rating.get() == 8));
    let value =
        |sim: &TmdbSim| sim.with(|r| r.ratings.iter().find(|(k, _)| k.1 == 900_042).map(|x| x.1));
    let r = p
        .add(&cx, Feature::Ratings, &[rating(42, 8)])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent);
    assert_eq!(value(&sim), Some(7.5), "the user's 7.5 stays");
    let r = p
        .add(&cx, Feature::Ratings, &[rating(42, 7)])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(value(&sim), Some(7.0));
}

#[tokio::test]
async fn an_api_key_signs_in_with_the_session_and_neither_leaks() {
    let sim = TmdbSim::start().await;
    let keyed = TmdbConfig {
        access_token: None,
        api_key: Some(Secret::new(API_KEY)),
        session_id: Some(Secret::new(SESSION_ID)),
        ..config(&sim)
    };
    let p = build(keyed.clone()).unwrap();
    let cx = Context::default();
    let snap = p.build_index(&cx, Feature::Watchlist).await.unwrap();
    assert!(snap.is_complete() && snap.len() == 26, "{}", snap.len());
    sim.inject(FaultRule::new(Fault::Status(500)).times(50));
    let err = p.build_index(&cx, Feature::Watchlist).await.unwrap_err();
    let text = format!("{err} {err:?}");
    sim.clear_faults();
    assert!(
        !text.contains(API_KEY) && !text.contains(SESSION_ID),
        "{text}"
    );
    // A wrong session is refused as auth.
    let wrong = TmdbConfig {
        session_id: Some(Secret::new("stale-session-000000")),
        ..keyed.clone()
    };
    let err = build(wrong)
        .unwrap()
        .build_index(&cx, Feature::Watchlist)
        .await;
    assert_eq!(err.unwrap_err().kind(), ferry_core::ErrorKind::Auth);
    // Configurations that cannot sign in are refused before any request.
    let no_session = TmdbConfig {
        session_id: None,
        ..keyed.clone()
    };
    assert!(build(no_session).is_err());
    let both = TmdbConfig {
        access_token: Some(Secret::new("t")),
        ..keyed
    };
    assert!(build(both).is_err());
}

#[tokio::test]
async fn titles_tmdb_does_not_know_or_cannot_name_are_unresolved() {
    let sim = TmdbSim::start().await;
    let p = build(config(&sim)).unwrap();
    let cx = Context::default();
    let mut no_id = Entry::watchlist(samples::movie(3));
    no_id.item.ids = ferry_core::Ids::new().with(ferry_core::IdKind::Imdb, "tt0000001");
    let unknown = Entry::watchlist(samples::movie(5000));
    let episode = Entry::watchlist(samples::episode(1, 1, 1));
    let r = p
        .add(&cx, Feature::Watchlist, &[no_id, unknown, episode])
        .await
        .unwrap();
    for (i, why) in ["not_found", "not_found", "unsupported"].iter().enumerate() {
        match &r.items[i].outcome {
            Outcome::Unresolved { reason, .. } => assert_eq!(reason.as_str(), *why, "{i}"),
            other => panic!("{i}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_rating_ferry_cannot_read_makes_the_read_partial_and_keeps_the_rest() {
    let sim = TmdbSim::start().await;
    let p = build(config(&sim)).unwrap();
    let cx = Context::default();
    sim.with(|r| {
        r.ratings[1].1 = 10.5;
        r.ratings[2].1 = 0.5;
    });
    let snap = p.build_index(&cx, Feature::Ratings).await.unwrap();
    assert!(
        !snap.is_complete(),
        "a row out of TMDB's scale is not silently dropped"
    );
    assert_eq!(snap.len(), 25, "the other rows are kept");
    let lowest = snap.get(&rating(44, 1).key()).expect("0.5 is kept");
    assert!(matches!(lowest.payload, Payload::Rating { rating, .. } if rating.get() == 1));
}

#[tokio::test]
async fn shows_are_written_in_tmdbs_tv_id_space() {
    let sim = TmdbSim::start().await;
    let p = build(config(&sim)).unwrap();
    let cx = Context::default();
    let show = Entry::watchlist(samples::show(1));
    let rated = Entry::rating(samples::show(1), Rating::new(6).unwrap(), None);
    let r = p
        .add(&cx, Feature::Watchlist, std::slice::from_ref(&show))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let r = p
        .add(&cx, Feature::Ratings, std::slice::from_ref(&rated))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert!(sim.with(|s| s.watchlist.contains(&("tv", 800_001))));
    assert!(sim.with(|s| s.ratings.contains(&(("tv", 800_001), 6.0))));
    let snap = p.build_index(&cx, Feature::Ratings).await.unwrap();
    let got = snap
        .get(&rated.key())
        .expect("the show's rating reads back");
    assert_eq!(got.item.kind, ferry_core::MediaType::Show);
}

/// `ferry simulate tmdb` starts the simulator through the descriptor's hook, and the
/// configuration it hands out is one this provider accepts and reads completely.
#[tokio::test]
async fn the_descriptors_simulator_serves_a_config_the_provider_reads() {
    use ferry_core::{ProviderKind, Scenario};
    let hook = TmdbProvider::SIMULATOR.expect("tmdb declares its simulator");
    let handle = (hook.start)(Scenario::Library { items: 30 }).await.unwrap();
    let config: TmdbConfig =
        serde_json::from_value(serde_json::Value::Object(handle.config())).unwrap();
    assert_eq!(config.base_url.as_deref(), Some(handle.base_url().as_str()));
    let p = build(config).unwrap();
    let snap = p
        .build_index(&Context::default(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.len(), 30);
    assert!(handle.requests() >= 3, "two movie pages and the tv list");
}

/// Events name routes, never the account or a title: `api:hit` ops are labels.
#[tokio::test]
async fn events_name_the_route_not_the_account_or_the_title() {
    use ferry_core::{CancelToken, CollectingSink, Emitter};
    let sim = TmdbSim::start().await;
    let p = build(config(&sim)).unwrap();
    let sink = CollectingSink::new();
    let cx = Context::new(Emitter::to_sink(sink.clone()), CancelToken::new());
    p.build_index(&cx, Feature::Watchlist).await.unwrap();
    p.add(&cx, Feature::Ratings, &[rating(3, 6)]).await.unwrap();
    let ops: Vec<String> = sink
        .named("api:hit")
        .iter()
        .filter_map(|e| e.str("op").map(str::to_owned))
        .collect();
    for want in [
        "GET /3/account/{id}/watchlist/movies",
        "GET /3/account/{id}/watchlist/tv",
        "GET /3/movie/{id}/account_states",
        "POST /3/movie/{id}/rating",
    ] {
        assert!(ops.iter().any(|o| o == want), "{want} not in {ops:?}");
    }
    assert!(
        !ops.iter()
            .any(|o| o.contains("548") || o.contains("900003")),
        "{ops:?}"
    );
}

//! Plex-specific behaviour against the simulator: paging and completeness, failure
//! paths, GUIDs, the rating scale, history times, Discover, playlists, batching.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{
    Context, Entry, ErrorKind, Feature, HealthStatus, IdKind, InventoryOps, KvStore, MemoryKvStore,
    Outcome, Payload, Playlist, Rating, Secret, UnresolvedReason,
};
use ferry_testkit::samples;
use ferry_testkit::sim::knobs::{Fault, FaultRule};
use ferry_testkit::sim::plex::{PlexSim, START_TIME};
use plex::{PlexConfig, PlexOptions, PlexProvider, rating_from_plex};

use common::{config, fast_retry};

fn provider_with(sim: &PlexSim, page_size: usize, kv: Arc<dyn KvStore>) -> PlexProvider {
    common::provider_on(sim, "plex-test", page_size, kv)
}

fn provider(sim: &PlexSim, page_size: usize) -> PlexProvider {
    provider_with(sim, page_size, Arc::new(MemoryKvStore::new()))
}

fn cx() -> Context {
    Context::default()
}

#[tokio::test]
async fn paging_reads_1200_titles_and_checks_the_total() {
    let sim = PlexSim::builder().movies(1200).shows(0, 0, 0).start().await;
    for n in 0..1200 {
        sim.seed_rating(PlexSim::movie_key(n), Some(f64::from(n % 10 + 1)));
    }
    let p = provider(&sim, 100);
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 1200);
    // 1200 rows at 100 per page: 12 pages and not one more (the total says we are done).
    assert_eq!(sim.requests("/library/sections/1/all"), 12);
}

#[tokio::test]
async fn a_2500_title_library_is_seeded_and_read_quickly() {
    let sim = PlexSim::builder().movies(2500).start().await;
    let p = provider(&sim, 500);
    let snap = p.build_index(&cx(), Feature::Progress).await.unwrap();
    assert!(snap.is_complete());
    assert!(snap.is_empty());
    assert_eq!(sim.requests("/library/sections/1/all"), 5);
}

#[tokio::test]
async fn malformed_json_is_an_error_never_an_empty_snapshot() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.malformed_next("/library/sections/1/all");
    let err = p.build_index(&cx(), Feature::Ratings).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");

    sim.malformed_next("/status/sessions/history/all");
    let err = p.build_index(&cx(), Feature::History).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
}

#[tokio::test]
async fn a_broken_later_page_keeps_what_was_read_and_is_partial() {
    let sim = PlexSim::builder().movies(250).start().await;
    for n in 0..250 {
        sim.seed_rating(PlexSim::movie_key(n), Some(8.0));
    }
    let p = provider(&sim, 100);
    sim.inject(
        FaultRule::new(Fault::Malformed)
            .on("/library/sections/1/all")
            .after(1),
    );
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    assert!(!snap.is_complete());
    assert_eq!(snap.len(), 100, "the first page is kept");
}

#[tokio::test]
async fn an_expired_token_is_an_auth_error() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.set_token("a-new-token-after-expiry");
    sim.set_discover_token("a-new-token-after-expiry");
    let err = p.build_index(&cx(), Feature::History).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let err = p.build_index(&cx(), Feature::Watchlist).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::AuthFailed, "{h:?}");
    // An auth failure is never retried into a pile of requests.
    sim.reset_counts();
    let _ = p.build_index(&cx(), Feature::Ratings).await;
    assert_eq!(sim.total_requests(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_unavailable() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.fail_next(503, 2);
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    assert!(snap.is_complete(), "two 503s then success");

    sim.fail_next(500, 1000);
    let err = p.build_index(&cx(), Feature::Ratings).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.is_temporary(), "retries are spent: {err}");
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Down, "{h:?}");
}

#[tokio::test]
async fn guids_become_ids_on_every_item() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.seed_rating(PlexSim::movie_key(3), Some(8.0));
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    let e = snap.get("tmdb:900003").expect("filed under its tmdb id");
    let ids = &e.item.ids;
    assert_eq!(ids.get(IdKind::Imdb), Some("tt9000003"));
    assert_eq!(ids.get(IdKind::Tvdb), Some("2000003"));
    assert!(ids.get(IdKind::Guid).unwrap().starts_with("plex://movie/"));
}

#[tokio::test]
async fn ratings_map_plexs_scale_onto_one_to_ten() {
    assert_eq!(rating_from_plex(7.5), Rating::new(8));
    assert_eq!(rating_from_plex(10.0), Rating::new(10));
    assert_eq!(rating_from_plex(0.0), None);
    assert_eq!(rating_from_plex(0.4), None);

    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.seed_rating(PlexSim::movie_key(1), Some(7.5));
    sim.seed_rating(PlexSim::movie_key(2), Some(0.4));
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    assert_eq!(snap.len(), 1, "0.4 is no rating");
    match snap.get("tmdb:900001").map(|e| &e.payload) {
        Some(Payload::Rating { rating, .. }) => assert_eq!(rating.get(), 8),
        other => panic!("{other:?}"),
    }
    // Writing 9 stores 9 on Plex's 0-10 scale; re-sending 8 for a stored 7.5 is a no-op.
    let nine = Entry::rating(samples::movie(4), Rating::new(9).unwrap(), None);
    let r = p.add(&cx(), Feature::Ratings, &[nine]).await.unwrap();
    assert_eq!(r.confirmed(), 1);
    assert_eq!(
        sim.item(PlexSim::movie_key(4)).unwrap().user_rating,
        Some(9.0)
    );
    let eight = Entry::rating(samples::movie(1), Rating::new(8).unwrap(), None);
    let r = p.add(&cx(), Feature::Ratings, &[eight]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent);
}

#[tokio::test]
async fn history_keeps_the_real_time_of_a_copied_play() {
    let sim = PlexSim::start().await;
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    let p = provider_with(&sim, 100, kv.clone());
    let e = samples::entry(Feature::History, 2);
    let watched = samples::time(7200);
    let r = p
        .add(&cx(), Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    // A scrobble only marks the item played, at Plex's own clock: no history row...
    assert!(sim.history().is_empty());
    let it = sim.item(PlexSim::movie_key(2)).unwrap();
    assert_eq!(it.view_count, 1);
    assert!(it.last_viewed_at.unwrap() > START_TIME);
    // ...but the play reads back at the time it happened, also from a new instance.
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert!(
        snap.contains_key(&e.key()),
        "{:?}",
        snap.keys().collect::<Vec<_>>()
    );
    let again = provider_with(&sim, 100, kv);
    let snap = again.build_index(&cx(), Feature::History).await.unwrap();
    assert!(snap.contains_key(&e.key()));
    assert_eq!(watched, samples::time(7200));
    // Without the ledger the play shows at Plex's time: never lost, only re-timed.
    let forgetful = provider(&sim, 100);
    let snap = forgetful
        .build_index(&cx(), Feature::History)
        .await
        .unwrap();
    assert_eq!(snap.len(), 1);
    assert!(!snap.contains_key(&e.key()));
}

#[tokio::test]
async fn history_remove_deletes_one_play_and_keeps_the_others() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let rk = PlexSim::movie_key(6);
    sim.seed_play(rk, samples::time(0).unix());
    sim.seed_play(rk, samples::time(86_400).unix());
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(snap.len(), 2);
    let one = Entry::watch(samples::movie(6), samples::time(30));
    let r = p.remove(&cx(), Feature::History, &[one]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let left = sim.history();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].viewed_at, samples::time(86_400).unix());
    assert!(sim.item(rk).unwrap().view_count > 0, "still watched");
    // Removing the last play marks the title unwatched.
    let last = Entry::watch(samples::movie(6), samples::time(86_400));
    p.remove(&cx(), Feature::History, &[last]).await.unwrap();
    assert_eq!(sim.item(rk).unwrap().view_count, 0);
    assert!(
        p.build_index(&cx(), Feature::History)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn titles_missing_from_the_library_are_unresolved_not_found() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let stranger = samples::movie(5000);
    for f in [
        Feature::History,
        Feature::Ratings,
        Feature::Progress,
        Feature::Watchlist,
    ] {
        let mut e = samples::entry(f, 5000);
        e.item = stranger.clone();
        let r = p.add(&cx(), f, &[e]).await.unwrap();
        assert!(
            matches!(
                r.items[0].outcome,
                Outcome::Unresolved {
                    reason: UnresolvedReason::NotFound,
                    ..
                }
            ),
            "{f}: {:?}",
            r.items[0].outcome
        );
    }
    assert_eq!(sim.requests_under("/:/"), 0, "nothing was written");
}

#[tokio::test]
async fn id_resolution_costs_library_pages_not_requests_per_item() {
    let sim = PlexSim::builder().movies(1000).shows(0, 0, 0).start().await;
    let p = provider(&sim, 200);
    let entries: Vec<Entry> = (100..160)
        .map(|n| Entry::rating(samples::movie(n), Rating::new(7).unwrap(), None))
        .collect();
    let r = p.add(&cx(), Feature::Ratings, &entries).await.unwrap();
    assert_eq!(r.confirmed(), 60);
    // One scan of the library (5 pages), then one write per changed item, confirmed by
    // reading the rated items back 50 rating keys per request: no per-item lookups.
    assert_eq!(sim.requests("/library/sections/1/all"), 5);
    assert_eq!(sim.requests("/:/rate"), 60);
    assert_eq!(sim.requests_under("/library/metadata"), 2);
}

#[tokio::test]
async fn the_watchlist_lives_on_discover() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let e = Entry::watchlist(samples::movie(11));
    let r = p
        .add(&cx(), Feature::Watchlist, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let key = sim
        .item(PlexSim::movie_key(11))
        .unwrap()
        .discover_key()
        .to_owned();
    assert_eq!(sim.watchlist(), vec![key]);
    assert_eq!(sim.discover_requests("/actions/addToWatchlist"), 1);
    let snap = p.build_index(&cx(), Feature::Watchlist).await.unwrap();
    assert!(snap.contains_key("tmdb:900011"));
    let r = p.remove(&cx(), Feature::Watchlist, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert!(sim.watchlist().is_empty());
    // A watchlist outage degrades health without taking the server down.
    sim.inject_discover(FaultRule::new(Fault::Status(503)).times(10));
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Degraded, "{h:?}");
    assert!(!h.feature_available(Feature::Watchlist));
    assert!(h.feature_available(Feature::History));
}

#[tokio::test]
async fn episodes_resolve_through_their_show() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let ep = samples::episode(1, 1, 3);
    let e = Entry::watch(ep.clone(), samples::time(100));
    let r = p
        .add(&cx(), Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    let got = snap
        .get(&e.key())
        .expect("episode play filed under show id + SxxEyy");
    assert_eq!(got.item.show_ids.get(IdKind::Tmdb), Some("800001"));
    assert_eq!((got.item.season, got.item.episode), (Some(1), Some(3)));
}

#[tokio::test]
async fn progress_is_a_stopped_timeline_and_never_marks_watched() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let e = Entry::progress(samples::movie(8), 1_234_000, Some(6_000_000), None);
    let r = p
        .add(&cx(), Feature::Progress, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let it = sim.item(PlexSim::movie_key(8)).unwrap();
    assert_eq!(it.view_offset, Some(1_234_000));
    assert_eq!(it.view_count, 0);
    // 95 % would make Plex count a play: refused rather than marking it watched.
    let late = Entry::progress(samples::movie(9), 5_700_000, Some(6_000_000), None);
    let r = p.add(&cx(), Feature::Progress, &[late]).await.unwrap();
    assert!(matches!(
        r.items[0].outcome,
        Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            ..
        }
    ));
    assert_eq!(sim.item(PlexSim::movie_key(9)).unwrap().view_count, 0);
    let r = p.remove(&cx(), Feature::Progress, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(sim.item(PlexSim::movie_key(8)).unwrap().view_offset, None);
}

#[tokio::test]
async fn playlists_are_edited_in_place_in_order() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let list = |ns: &[u32]| {
        Entry::playlist(Playlist {
            name: "Weekend".into(),
            description: None,
            items: ns.iter().map(|n| samples::movie(*n)).collect(),
        })
    };
    let r = p
        .add(&cx(), Feature::Playlists, &[list(&[1, 2, 3])])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let id = sim.playlists()[0].id;
    let r = p
        .add(&cx(), Feature::Playlists, &[list(&[3, 4, 1])])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let pls = sim.playlists();
    assert_eq!(pls.len(), 1);
    assert_eq!(pls[0].id, id, "the same playlist, edited");
    let keys: Vec<u64> = pls[0].items.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        keys,
        vec![
            PlexSim::movie_key(3),
            PlexSim::movie_key(4),
            PlexSim::movie_key(1)
        ]
    );
    let r = p
        .add(&cx(), Feature::Playlists, &[list(&[3, 4, 1])])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent);
}

#[tokio::test]
async fn a_configured_library_that_vanished_is_an_error_not_an_empty_read() {
    let sim = PlexSim::start().await;
    let mut cfg = config(&sim);
    cfg.libraries = Some(vec!["Films (4K)".into()]);
    let p = PlexProvider::new("plex-test", cfg, PlexOptions::default()).unwrap();
    let err = p.build_index(&cx(), Feature::History).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("Films (4K)"), "{err}");

    let mut cfg = config(&sim);
    cfg.libraries = Some(vec!["movies".into()]);
    let p = PlexProvider::new("plex-test", cfg, PlexOptions::default()).unwrap();
    sim.seed_rating(PlexSim::movie_key(1), Some(4.0));
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(
        sim.requests_under("/library/sections/2"),
        0,
        "TV Shows not read"
    );
}

#[tokio::test]
async fn config_rejects_unknown_keys_and_defaults_discover() {
    let cfg = ferry_core::ProviderConfig::new("p", "plex")
        .set("base_url", "http://pms:32400")
        .set("token", "tok-1234567");
    let parsed: PlexConfig = cfg.parse().unwrap();
    assert_eq!(parsed.discover_url, plex::DEFAULT_DISCOVER_URL);
    let bad = ferry_core::ProviderConfig::new("p", "plex")
        .set("base_url", "http://pms:32400")
        .set("token", "tok-1234567")
        .set("server_url", "x");
    assert_eq!(
        bad.parse::<PlexConfig>().unwrap_err().field.as_deref(),
        Some("server_url")
    );
    let p = PlexProvider::new("p", parsed, PlexOptions::default()).unwrap();
    assert_eq!(p.secrets(), vec![Secret::new("tok-1234567")]);
    assert!(!format!("{p:?}").contains("tok-1234567"));
}

#[tokio::test]
async fn history_is_not_added_when_the_history_read_was_partial() {
    let sim = PlexSim::builder().movies(64).start().await;
    for n in 0..30 {
        sim.seed_play(PlexSim::movie_key(n), samples::time(i64::from(n)).unix());
    }
    let p = provider(&sim, 10);
    sim.inject(
        FaultRule::new(Fault::Status(503))
            .on("/status/sessions/history/all")
            .after(1)
            .times(100),
    );
    let e = samples::entry(Feature::History, 25);
    let r = p.add(&cx(), Feature::History, &[e]).await.unwrap();
    assert!(
        matches!(
            r.items[0].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::PartialRead,
                ..
            }
        ),
        "{:?}",
        r.items[0].outcome
    );
    assert_eq!(
        sim.requests("/:/scrobble"),
        0,
        "a play that may exist is not duplicated"
    );
}

#[tokio::test]
async fn playlist_entries_outside_the_read_libraries_are_kept() {
    let sim = PlexSim::start().await;
    let episode = sim.rating_key_of(&samples::episode(0, 1, 1)).unwrap();
    sim.seed_playlist("Mixed", &[PlexSim::movie_key(1), episode]);
    let mut cfg = config(&sim);
    cfg.libraries = Some(vec!["Movies".into()]);
    let p = PlexProvider::new(
        "plex-test",
        cfg,
        PlexOptions {
            retry: fast_retry(),
            ..PlexOptions::default()
        },
    )
    .unwrap();
    let want = Entry::playlist(Playlist {
        name: "mixed".into(),
        description: None,
        items: vec![samples::movie(1), samples::movie(2)],
    });
    let r = p.add(&cx(), Feature::Playlists, &[want]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let keys: Vec<u64> = sim.playlists()[0].items.iter().map(|(_, k)| *k).collect();
    assert!(
        keys.contains(&episode),
        "the episode ferry cannot see stays: {keys:?}"
    );
    assert_eq!(&keys[..2], &[PlexSim::movie_key(1), PlexSim::movie_key(2)]);
}

#[tokio::test]
async fn slow_answers_are_waited_for() {
    let sim = PlexSim::start().await;
    sim.set_latency(Duration::from_millis(20));
    let p = provider(&sim, 100);
    let snap = p.build_index(&cx(), Feature::Watchlist).await.unwrap();
    assert!(snap.is_complete());
    let h = p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Ok, "{h:?}");
    assert!(h.latency_ms.is_some());
}

// ---------------------------------------------------------------------------------------
// History: `/:/scrobble` only marks an item played (no history row); the plays ferry adds
// live in its ledger.

/// The play times of a history snapshot, sorted.
fn play_times(snap: &ferry_core::Snapshot) -> Vec<i64> {
    let mut t: Vec<i64> = snap
        .entries()
        .filter_map(|e| match e.payload {
            Payload::Watch { watched_at } => Some(watched_at.unix()),
            _ => None,
        })
        .collect();
    t.sort_unstable();
    t
}

#[tokio::test]
async fn a_play_added_to_a_title_with_a_history_row_is_confirmed_once_and_never_resent() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let rk = PlexSim::movie_key(7);
    sim.seed_play(rk, samples::time(0).unix());
    let e = Entry::watch(samples::movie(7), samples::time(3 * 86_400));
    // The same play twice in one call: one scrobble.
    let r = p
        .add(&cx(), Feature::History, &[e.clone(), e.clone()])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(r.items[1].outcome, Outcome::AlreadyPresent, "{r:?}");
    assert_eq!(sim.requests("/:/scrobble"), 1);
    assert_eq!(sim.history().len(), 1, "a scrobble creates no history row");
    assert_eq!(sim.item(rk).unwrap().view_count, 2);
    // The item's state read before (the ledger is judged against it) and after (the
    // confirmation), each one batched read by rating key, not one read per entry.
    assert_eq!(sim.requests_under("/library/metadata"), 2);
    // The next run: the play is there, nothing is sent again (no play-count inflation).
    let r = p
        .add(&cx(), Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent, "{r:?}");
    assert_eq!(sim.requests("/:/scrobble"), 1);
    assert_eq!(sim.item(rk).unwrap().view_count, 2);
}

#[tokio::test]
async fn a_marked_play_reads_back_at_its_real_time_not_the_servers_stamp() {
    let sim = PlexSim::start().await;
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    let p = provider_with(&sim, 100, kv.clone());
    let rk = PlexSim::movie_key(7);
    let row = samples::time(0).unix();
    sim.seed_play(rk, row);
    let e = Entry::watch(samples::movie(7), samples::time(3 * 86_400));
    let r = p
        .add(&cx(), Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let stamp = sim.item(rk).unwrap().last_viewed_at.unwrap();
    assert!(stamp > START_TIME);
    for reader in [&p, &provider_with(&sim, 100, kv)] {
        let snap = reader.build_index(&cx(), Feature::History).await.unwrap();
        assert!(snap.is_complete());
        assert!(
            snap.contains_key(&e.key()),
            "{:?}",
            snap.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            play_times(&snap),
            vec![row, samples::time(3 * 86_400).unix()]
        );
    }
}

#[tokio::test]
async fn unmarking_the_item_drops_its_marked_plays() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let with_row = PlexSim::movie_key(7);
    let row = samples::time(0).unix();
    sim.seed_play(with_row, row);
    let added = [
        Entry::watch(samples::movie(7), samples::time(3 * 86_400)),
        Entry::watch(samples::movie(8), samples::time(4 * 86_400)),
    ];
    let r = p.add(&cx(), Feature::History, &added).await.unwrap();
    assert_eq!(r.confirmed(), 2, "{r:?}");
    assert_eq!(
        p.build_index(&cx(), Feature::History).await.unwrap().len(),
        3
    );
    // The user marks both unwatched in a client: the history row stays, the marks go.
    sim.mark_unwatched(with_row);
    sim.mark_unwatched(PlexSim::movie_key(8));
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(play_times(&snap), vec![row]);
    // They stay gone when the title is watched again later: only the new play shows.
    let now = sim.watch_now(with_row);
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(play_times(&snap), vec![row, now]);
}

#[tokio::test]
async fn a_rewatch_added_in_one_batch_reads_back_as_two_plays() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let rk = PlexSim::movie_key(9);
    let plays = [
        Entry::watch(samples::movie(9), samples::time(86_400)),
        Entry::watch(samples::movie(9), samples::time(20 * 86_400)),
    ];
    let r = p.add(&cx(), Feature::History, &plays).await.unwrap();
    assert_eq!(r.confirmed(), 2, "{r:?}");
    assert_eq!(sim.requests("/:/scrobble"), 2);
    assert_eq!(sim.item(rk).unwrap().view_count, 2);
    assert!(sim.history().is_empty());
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(
        play_times(&snap),
        vec![
            samples::time(86_400).unix(),
            samples::time(20 * 86_400).unix()
        ]
    );
    let r = p.add(&cx(), Feature::History, &plays).await.unwrap();
    assert!(r.items.iter().all(|i| i.outcome == Outcome::AlreadyPresent));
    assert_eq!(sim.requests("/:/scrobble"), 2);
}

#[tokio::test]
async fn a_play_marked_without_a_row_before_ferrys_add_is_kept() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let rk = PlexSim::movie_key(12);
    sim.seed_play(rk, samples::time(0).unix());
    let row = sim.history()[0].id;
    sim.delete_history_row(row);
    let before = sim.item(rk).unwrap().last_viewed_at.unwrap();
    let e = Entry::watch(samples::movie(12), samples::time(5 * 86_400));
    let r = p.add(&cx(), Feature::History, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(
        play_times(&snap),
        vec![before, samples::time(5 * 86_400).unix()]
    );
}

#[tokio::test]
async fn removing_a_marked_play_leaves_the_history_rows_alone() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let rk = PlexSim::movie_key(10);
    let row = samples::time(0).unix();
    sim.seed_play(rk, row);
    let rows = sim.history();
    let e = Entry::watch(samples::movie(10), samples::time(2 * 86_400));
    p.add(&cx(), Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    sim.reset_counts();
    let r = p.remove(&cx(), Feature::History, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(sim.history(), rows, "the row is not touched");
    assert_eq!(
        sim.requests("/:/unscrobble"),
        0,
        "the title still has a play"
    );
    assert!(writes_of(&sim).iter().all(|r| !r.starts_with("DELETE")));
    assert!(sim.item(rk).unwrap().view_count > 0);
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(play_times(&snap), vec![row]);
    // The last (marked) play of a title without rows goes with an unscrobble.
    let lone = Entry::watch(samples::movie(11), samples::time(86_400));
    p.add(&cx(), Feature::History, std::slice::from_ref(&lone))
        .await
        .unwrap();
    let r = p.remove(&cx(), Feature::History, &[lone]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(sim.item(PlexSim::movie_key(11)).unwrap().view_count, 0);
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(play_times(&snap), vec![row]);
}

/// The routes of every write request the server saw.
fn writes_of(sim: &PlexSim) -> Vec<String> {
    sim.routes()
        .into_keys()
        .filter(|r| !r.starts_with("GET"))
        .collect()
}

#[tokio::test]
async fn a_partial_history_read_never_unscrobbles() {
    let sim = PlexSim::builder().movies(64).start().await;
    for n in 0..30 {
        sim.seed_play(PlexSim::movie_key(n), samples::time(i64::from(n)).unix());
    }
    let p = provider(&sim, 10);
    let marked = Entry::watch(samples::movie(40), samples::time(9 * 86_400));
    p.add(&cx(), Feature::History, std::slice::from_ref(&marked))
        .await
        .unwrap();
    // The second page of every history read fails.
    let second_page_down = || {
        FaultRule::new(Fault::Status(503))
            .on("/status/sessions/history/all")
            .after(1)
            .times(10)
    };
    sim.inject(second_page_down());
    // The engine reads before it writes: the read is partial, and so is what the write
    // reads again (a partial read is never reused).
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert!(!snap.is_complete());
    sim.clear_faults();
    sim.inject(second_page_down());
    sim.reset_counts();
    let r = p.remove(&cx(), Feature::History, &[marked]).await.unwrap();
    assert!(
        matches!(
            r.items[0].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::PartialRead,
                ..
            }
        ),
        "{:?}",
        r.items[0].outcome
    );
    assert_eq!(sim.requests("/:/unscrobble"), 0);
    assert_eq!(sim.item(PlexSim::movie_key(40)).unwrap().view_count, 1);
}

#[tokio::test]
async fn an_unreadable_ledger_is_reported_and_read_as_empty() {
    let sim = PlexSim::start().await;
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    // The former format (history id → time) and garbage: neither is a ledger.
    kv.put("plex.history_times", "plex-test", r#"{"17":1700000000}"#)
        .unwrap();
    kv.put("plex.marked_plays", "plex-test", r#"{"17":1700000000}"#)
        .unwrap();
    let p = provider_with(&sim, 100, kv.clone());
    let rk = PlexSim::movie_key(3);
    sim.seed_play(rk, samples::time(0).unix());
    let sink = ferry_core::CollectingSink::new();
    let cx = Context::new(
        ferry_core::Emitter::to_sink(sink.clone()),
        ferry_core::CancelToken::default(),
    );
    let snap = p.build_index(&cx, Feature::History).await.unwrap();
    assert_eq!(play_times(&snap), vec![samples::time(0).unix()]);
    assert_eq!(sink.named("plex:ledger_unreadable").len(), 1);
    // A write replaces it with a readable ledger.
    let e = Entry::watch(samples::movie(3), samples::time(86_400));
    let r = p
        .add(&cx, Feature::History, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    sink.clear();
    let snap = p.build_index(&cx, Feature::History).await.unwrap();
    assert!(snap.contains_key(&e.key()));
    assert!(sink.named("plex:ledger_unreadable").is_empty());
}

#[tokio::test]
async fn a_play_the_user_unmarked_does_not_come_back_with_a_new_add() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let first = Entry::watch(samples::movie(13), samples::time(86_400));
    p.add(&cx(), Feature::History, std::slice::from_ref(&first))
        .await
        .unwrap();
    // Unmarked, and no read in between: the mark is still in the ledger.
    sim.mark_unwatched(PlexSim::movie_key(13));
    let second = Entry::watch(samples::movie(13), samples::time(9 * 86_400));
    let r = p.add(&cx(), Feature::History, &[second]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(play_times(&snap), vec![samples::time(9 * 86_400).unix()]);
}

// ---------------------------------------------------------------------------------------
// What the PMS OpenAPI documents: `ratedAt` on `/:/rate`, the played threshold in
// `/:/prefs`, `/:/timeline` as playback reporting only, playlist folders and read-only
// playlists.

fn is_unresolved(o: &Outcome, want: UnresolvedReason) -> bool {
    matches!(o, Outcome::Unresolved { reason, .. } if *reason == want)
}

#[tokio::test]
async fn a_rating_is_written_at_the_time_it_was_made() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let made = samples::time(5 * 86_400);
    let e = Entry::rating(samples::movie(4), Rating::new(7).unwrap(), Some(made));
    let r = p.add(&cx(), Feature::Ratings, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let it = sim.item(PlexSim::movie_key(4)).unwrap();
    assert_eq!(it.user_rating, Some(7.0));
    assert_eq!(it.last_rated_at, Some(made.unix()), "not the sync time");
    // ...and it reads back at that time.
    let snap = p.build_index(&cx(), Feature::Ratings).await.unwrap();
    match snap.get("tmdb:900004").map(|e| &e.payload) {
        Some(Payload::Rating { rated_at, .. }) => assert_eq!(*rated_at, Some(made)),
        other => panic!("{other:?}"),
    }
    // Without a time, and with a time ahead of our clock (not sent), the server stamps
    // its own.
    let future = ferry_core::Timestamp::from_unix(ferry_core::Timestamp::now().unix() + 86_400);
    let entries = [
        Entry::rating(samples::movie(5), Rating::new(6).unwrap(), None),
        Entry::rating(samples::movie(6), Rating::new(5).unwrap(), Some(future)),
    ];
    let r = p.add(&cx(), Feature::Ratings, &entries).await.unwrap();
    assert_eq!(r.confirmed(), 2, "{r:?}");
    for n in [5, 6] {
        let at = sim
            .item(PlexSim::movie_key(n))
            .unwrap()
            .last_rated_at
            .unwrap();
        assert!(at > START_TIME, "movie {n}: {at}");
    }
    assert_eq!(sim.requests("/:/rate"), 3, "no request was refused");
    // Clearing still sends rating=-1.
    let gone = Entry::rating(samples::movie(4), Rating::new(7).unwrap(), None);
    let r = p.remove(&cx(), Feature::Ratings, &[gone]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let it = sim.item(PlexSim::movie_key(4)).unwrap();
    assert_eq!((it.user_rating, it.last_rated_at), (None, None));
}

#[tokio::test]
async fn a_rated_at_the_server_calls_future_is_sent_again_without_it() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    // Past on our clock, but after the server's (a server clock that is behind).
    let made = ferry_core::Timestamp::from_unix(sim.now() + 3_600);
    assert!(made.unix() < ferry_core::Timestamp::now().unix());
    let e = Entry::rating(samples::movie(4), Rating::new(8).unwrap(), Some(made));
    let r = p.add(&cx(), Feature::Ratings, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(
        sim.requests("/:/rate"),
        2,
        "refused once, then without ratedAt"
    );
    let it = sim.item(PlexSim::movie_key(4)).unwrap();
    assert_eq!(it.user_rating, Some(8.0));
    assert!(it.last_rated_at.unwrap() <= sim.now());
}

#[tokio::test]
async fn the_simulated_rate_endpoint_follows_the_rate_api() {
    let sim = PlexSim::start().await;
    let rk = PlexSim::movie_key(3);
    let rate = |q: &str| {
        sim.raw_status(
            "PUT",
            &format!("/:/rate?key={rk}&identifier=com.plexapp.plugins.library&{q}"),
        )
    };
    // The spec: `rating` is a number from 0 to 10; 0 is a value, not a reset.
    assert_eq!(rate("rating=0"), 200);
    assert_eq!(sim.item(rk).unwrap().user_rating, Some(0.0));
    assert_eq!(rating_from_plex(0.0), None, "ferry reads 0 as no rating");
    // -1 is outside the documented range; it is what python-plexapi sends to reset.
    assert_eq!(rate("rating=-1"), 200);
    assert_eq!(sim.item(rk).unwrap().user_rating, None);
    for bad in ["rating=11", "rating=-2", "rating=-0.5", "rating=x"] {
        assert_eq!(rate(bad), 400, "{bad}");
    }
    // ratedAt: when the rating occurred; "now" without it; 400 in the future.
    assert_eq!(rate("rating=6&ratedAt=1700000000"), 200);
    assert_eq!(sim.item(rk).unwrap().last_rated_at, Some(1_700_000_000));
    let future = sim.now() + 60;
    assert_eq!(rate(&format!("rating=6&ratedAt={future}")), 400);
    assert_eq!(rate("rating=7"), 200);
    assert_eq!(sim.item(rk).unwrap().last_rated_at, Some(sim.now()));
}

#[tokio::test]
async fn an_old_rated_at_still_moves_the_ratings_checkpoint() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let f = Feature::Ratings;
    sim.seed_rating(PlexSim::movie_key(1), Some(4.0));
    sim.seed_rating(PlexSim::movie_key(2), Some(6.0));
    sim.rate_now(PlexSim::movie_key(3), Some(8.0));
    let before = p.activity(&cx(), f).await.unwrap().unwrap();
    // ferry changes an existing rating with a time long past: neither the count nor the
    // newest row (by lastRatedAt) changes on the server...
    let e = Entry::rating(
        samples::movie(1),
        Rating::new(9).unwrap(),
        Some(samples::time(100)),
    );
    let r = p.add(&cx(), f, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(
        sim.item(PlexSim::movie_key(1)).unwrap().last_rated_at,
        Some(samples::time(100).unix())
    );
    let after = p.activity(&cx(), f).await.unwrap().unwrap();
    let server = |cp: &str| cp.split("|w").next().unwrap().to_owned();
    assert_eq!(server(&before), server(&after), "{before} / {after}");
    // ...but the write counter does: the checkpoint moves.
    assert_ne!(before, after);
    // A rating the user makes after it is the newest row again.
    sim.rate_now(PlexSim::movie_key(5), Some(2.0));
    let user = p.activity(&cx(), f).await.unwrap().unwrap();
    assert_ne!(server(&user), server(&after), "{user}");
    // And the user changing the item ferry wrote moves it too.
    sim.rate_now(PlexSim::movie_key(1), Some(3.0));
    assert_ne!(p.activity(&cx(), f).await.unwrap().unwrap(), user);
}

fn progress(n: u32, permille: u64) -> Entry {
    Entry::progress(
        samples::movie(n),
        6_000_000 * permille / 1000,
        Some(6_000_000),
        None,
    )
}

#[tokio::test]
async fn progress_stays_below_the_servers_played_threshold() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    // Threshold only (behaviour 0) at 70 %: 5 points of margin, so up to 65 %.
    sim.set_played_threshold(70);
    sim.set_played_at_behaviour("0");
    let entries = [progress(1, 600), progress(2, 750), progress(3, 660)];
    let r = p.add(&cx(), Feature::Progress, &entries).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert!(
        is_unresolved(&r.items[1].outcome, UnresolvedReason::Unsupported),
        "{r:?}"
    );
    assert!(is_unresolved(
        &r.items[2].outcome,
        UnresolvedReason::Unsupported
    ));
    for n in [2, 3] {
        let it = sim.item(PlexSim::movie_key(n)).unwrap();
        assert_eq!((it.view_count, it.view_offset), (0, None), "movie {n}");
    }
    assert!(sim.history().is_empty(), "no play was made up");
    assert_eq!(
        sim.requests("/:/prefs"),
        1,
        "one read of the settings per call"
    );
    assert_eq!(sim.requests("/:/timeline"), 1);
    // A higher threshold lets more through: 95 % allows up to 90 %.
    sim.set_played_threshold(95);
    let r = p
        .add(&cx(), Feature::Progress, &[progress(2, 850)])
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(
        sim.item(PlexSim::movie_key(2)).unwrap().view_offset,
        Some(5_100_000)
    );
}

#[tokio::test]
async fn progress_is_conservative_when_credits_may_count_a_play() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    // Plex's default: the earlier of 90 % and the first credits marker, here at 82 %.
    sim.set_credits_marker(PlexSim::movie_key(1), Some(4_920_000));
    sim.set_credits_marker(PlexSim::movie_key(2), Some(4_920_000));
    let entries = [progress(1, 840), progress(2, 700)];
    let r = p.add(&cx(), Feature::Progress, &entries).await.unwrap();
    match &r.items[0].outcome {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            detail: Some(d),
        } => assert!(d.contains("credits"), "{d}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.items[1].outcome, Outcome::Confirmed);
    assert_eq!(sim.item(PlexSim::movie_key(1)).unwrap().view_count, 0);
    assert!(sim.history().is_empty());
    // Settings that cannot be read get the same rule, even where the server would allow
    // more.
    sim.set_played_at_behaviour("0");
    sim.set_played_threshold(95);
    sim.inject(FaultRule::new(Fault::Status(500)).on("/:/prefs").times(10));
    let r = p
        .add(
            &cx(),
            Feature::Progress,
            &[progress(3, 800), progress(4, 500)],
        )
        .await
        .unwrap();
    match &r.items[0].outcome {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            detail: Some(d),
        } => assert!(d.contains("could not be read"), "{d}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.items[1].outcome, Outcome::Confirmed, "{r:?}");
}

#[tokio::test]
async fn progress_is_confirmed_only_when_the_server_shows_it() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.seed_view_offset(PlexSim::movie_key(9), Some(900_000));
    // Normally: one batched read-back for the whole call.
    let entries = [progress(1, 100), progress(2, 200), progress(3, 300)];
    let r = p.add(&cx(), Feature::Progress, &entries).await.unwrap();
    assert_eq!(r.confirmed(), 3, "{r:?}");
    assert_eq!(sim.requests_under("/library/metadata"), 1);
    // A server that answers 200 and keeps nothing: not confirmed, either way.
    sim.set_timeline_ignored(true);
    sim.reset_counts();
    let r = p
        .add(&cx(), Feature::Progress, &[progress(4, 100)])
        .await
        .unwrap();
    match &r.items[0].outcome {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unconfirmed,
            detail: Some(d),
        } => assert!(d.contains("no resume point"), "{d}"),
        other => panic!("{other:?}"),
    }
    let clear = Entry::progress(samples::movie(9), 900_000, Some(6_000_000), None);
    let r = p.remove(&cx(), Feature::Progress, &[clear]).await.unwrap();
    match &r.items[0].outcome {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unconfirmed,
            detail: Some(d),
        } => assert!(d.contains("900000"), "{d}"),
        other => panic!("{other:?}"),
    }
    // A read-back that fails is not a confirmation either.
    sim.set_timeline_ignored(false);
    sim.inject(
        FaultRule::new(Fault::Status(500))
            .on("/library/metadata")
            .times(10),
    );
    let r = p
        .add(&cx(), Feature::Progress, &[progress(5, 100)])
        .await
        .unwrap();
    assert!(
        is_unresolved(&r.items[0].outcome, UnresolvedReason::Unconfirmed),
        "{r:?}"
    );
    assert_eq!(
        sim.item(PlexSim::movie_key(5)).unwrap().view_offset,
        Some(600_000)
    );
}

#[tokio::test]
async fn playlist_folders_are_not_playlists() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    let folder = sim.seed_playlist_folder("Weekend");
    sim.seed_playlist("Other", &[PlexSim::movie_key(1)]);
    let snap = p.build_index(&cx(), Feature::Playlists).await.unwrap();
    assert!(snap.is_complete());
    let names: Vec<String> = snap
        .entries()
        .filter_map(|e| match &e.payload {
            Payload::Playlist(pl) => Some(pl.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["Other".to_owned()]);
    // A playlist named like the folder is a new playlist; the folder is left alone.
    let want = Entry::playlist(Playlist {
        name: "Weekend".into(),
        description: None,
        items: vec![samples::movie(2)],
    });
    let r = p.add(&cx(), Feature::Playlists, &[want]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    let pls = sim.playlists();
    assert_eq!(pls.len(), 3);
    let f = pls.iter().find(|pl| pl.id == folder).unwrap();
    assert!(f.folder && f.items.is_empty());
    assert!(
        pls.iter()
            .any(|pl| !pl.folder && pl.title == "Weekend" && pl.items.len() == 1)
    );
}

#[tokio::test]
async fn read_only_and_special_playlists_are_read_but_never_written() {
    let sim = PlexSim::start().await;
    let p = provider(&sim, 100);
    sim.seed_read_only_playlist(
        "Plex Picks",
        &[PlexSim::movie_key(1), PlexSim::movie_key(2)],
    );
    sim.seed_special_playlist("Favorites", "favorites", &[PlexSim::movie_key(3)]);
    let before = sim.playlists();
    let snap = p.build_index(&cx(), Feature::Playlists).await.unwrap();
    let items = |name: &str| {
        snap.entries()
            .find_map(|e| match &e.payload {
                Payload::Playlist(pl) if pl.name == name => Some(pl.items.len()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} not read"))
    };
    assert_eq!((items("Plex Picks"), items("Favorites")), (2, 1));
    sim.reset_counts();
    let edit = Entry::playlist(Playlist {
        name: "plex picks".into(),
        description: None,
        items: vec![samples::movie(1), samples::movie(2), samples::movie(4)],
    });
    let r = p.add(&cx(), Feature::Playlists, &[edit]).await.unwrap();
    assert!(
        is_unresolved(&r.items[0].outcome, UnresolvedReason::Unsupported),
        "{r:?}"
    );
    let drop = Entry::playlist(Playlist {
        name: "Favorites".into(),
        description: None,
        items: vec![samples::movie(3)],
    });
    let r = p.remove(&cx(), Feature::Playlists, &[drop]).await.unwrap();
    match &r.items[0].outcome {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            detail: Some(d),
        } => assert!(d.contains("favorites"), "{d}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.playlists(), before);
    assert!(writes_of(&sim).is_empty(), "{:?}", writes_of(&sim));
}

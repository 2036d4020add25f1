//! Change checkpoints against the simulator: every kind of change to a feature, by the
//! user in a client or by ferry, moves its checkpoint; nothing else does; each costs one
//! request.

use std::time::Duration;

use ferry_core::{Context, Entry, Feature, InventoryOps, Playlist};
use ferry_http::RetryPolicy;
use ferry_testkit::samples;
use ferry_testkit::sim::jellyfin::{JellyfinSim, START_TIME, TICKS_PER_MS};
use jellyfin::{JellyfinConfig, JellyfinProvider, ServerOptions};

fn provider(sim: &JellyfinSim) -> JellyfinProvider {
    let config = JellyfinConfig {
        base_url: sim.uri(),
        api_key: ferry_core::Secret::new(sim.token()),
        user_id: sim.user_id().to_owned(),
    };
    let options = ServerOptions {
        retry: RetryPolicy::default()
            .with_max_attempts(3)
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        ..ServerOptions::default()
    };
    JellyfinProvider::new("jf-activity", config, options).expect("build")
}

fn cx() -> Context {
    Context::default()
}

async fn cp(p: &JellyfinProvider, f: Feature) -> String {
    p.activity(&cx(), f)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {f} checkpoint"))
}

#[tokio::test]
async fn every_feature_has_a_checkpoint_from_one_request_each() {
    let sim = JellyfinSim::start().await;
    let p = provider(&sim);
    assert!(p.features().activities);
    sim.reset_counts();
    let a = p.activities(&cx()).await.unwrap();
    for f in [
        Feature::Watchlist,
        Feature::History,
        Feature::Progress,
        Feature::Playlists,
    ] {
        assert!(a.get(f).is_some(), "{f}");
    }
    assert_eq!(a.get(Feature::Ratings), None);
    assert_eq!(sim.total_requests(), 4, "one request per feature");
    sim.reset_counts();
    p.activity(&cx(), Feature::History).await.unwrap();
    assert_eq!(sim.total_requests(), 1);
    // Nothing changed, a full read in between: the same checkpoints.
    p.build_index(&cx(), Feature::History).await.unwrap();
    assert_eq!(p.activities(&cx()).await.unwrap(), a);
}

#[tokio::test]
async fn history_checkpoint_moves_with_plays_unplays_and_dates() {
    let sim = JellyfinSim::start().await;
    let p = provider(&sim);
    let f = Feature::History;
    let c0 = cp(&p, f).await;
    // Watched to the end in a client.
    sim.watch_now(&sim.movie_id(1));
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    assert_eq!(c1, cp(&p, f).await, "stable without a change");
    // Another program marks an old play.
    sim.seed_played(&sim.movie_id(2), START_TIME - 86_400);
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2);
    // Marked unplayed (not the newest one).
    sim.mark_unplayed(&sim.movie_id(2));
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    // Watched again: same count, a newer date.
    sim.watch_now(&sim.movie_id(1));
    let c4 = cp(&p, f).await;
    assert_ne!(c3, c4);
    // ferry's own writes: a play on an unplayed title, a later play moving a date (to a
    // time older than the newest one), removing a play.
    let e = Entry::watch(samples::movie(3), samples::time(10 * 3600));
    p.add(&cx(), f, std::slice::from_ref(&e)).await.unwrap();
    let c5 = cp(&p, f).await;
    assert_ne!(c4, c5);
    let later = Entry::watch(samples::movie(3), samples::time(20 * 3600));
    p.add(&cx(), f, std::slice::from_ref(&later)).await.unwrap();
    assert_eq!(
        sim.item(&sim.movie_id(3)).unwrap().user.last_played,
        Some(samples::time(20 * 3600).unix())
    );
    let c6 = cp(&p, f).await;
    assert_ne!(
        c5, c6,
        "a moved date older than the newest play still shows"
    );
    p.remove(&cx(), f, std::slice::from_ref(&later))
        .await
        .unwrap();
    let c7 = cp(&p, f).await;
    assert_ne!(c6, c7);
    // A write with nothing to do (an older play) leaves it alone. The checkpoint moved,
    // so the engine reads the feature again before writing, as here.
    sim.watch_now(&sim.movie_id(3));
    let c8 = cp(&p, f).await;
    p.build_index(&cx(), f).await.unwrap();
    p.add(&cx(), f, &[e]).await.unwrap();
    assert_eq!(c8, cp(&p, f).await);
}

#[tokio::test]
async fn watchlist_checkpoint_sees_a_swap_of_favourites() {
    let sim = JellyfinSim::start().await;
    let p = provider(&sim);
    let f = Feature::Watchlist;
    sim.seed_favorite(&sim.movie_id(1), true);
    let c0 = cp(&p, f).await;
    // One favourite removed and another added between two runs: same count.
    sim.seed_favorite(&sim.movie_id(1), false);
    sim.seed_favorite(&sim.movie_id(2), true);
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    assert_eq!(c1, cp(&p, f).await);
    sim.seed_favorite(&sim.movie_id(2), false);
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2);
    let e = Entry::watchlist(samples::movie(5));
    p.add(&cx(), f, std::slice::from_ref(&e)).await.unwrap();
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    p.remove(&cx(), f, &[e]).await.unwrap();
    assert_ne!(c3, cp(&p, f).await);
}

#[tokio::test]
async fn progress_checkpoint_sees_positions_set_moved_and_cleared() {
    let sim = JellyfinSim::start().await;
    let p = provider(&sim);
    let f = Feature::Progress;
    let c0 = cp(&p, f).await;
    sim.seed_position(&sim.movie_id(1), 60_000, START_TIME);
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    // Moved, same last-played date (another program writing the position only).
    sim.seed_position(&sim.movie_id(1), 120_000, START_TIME);
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2);
    assert_eq!(c2, cp(&p, f).await);
    // A played title with a resume point (rewatching) counts too.
    sim.seed_played(&sim.movie_id(2), START_TIME);
    sim.seed_position(&sim.movie_id(2), 30_000, START_TIME);
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    sim.seed_position(&sim.movie_id(1), 0, START_TIME);
    let c4 = cp(&p, f).await;
    assert_ne!(c3, c4);
    let e = Entry::progress(samples::movie(4), 90_000, None, None);
    p.add(&cx(), f, std::slice::from_ref(&e)).await.unwrap();
    assert_eq!(
        sim.item(&sim.movie_id(4)).unwrap().user.position_ticks,
        90_000 * TICKS_PER_MS
    );
    assert_ne!(c4, cp(&p, f).await);
}

#[tokio::test]
async fn playlist_checkpoint_sees_entries_added_removed_and_moved() {
    let sim = JellyfinSim::start().await;
    let p = provider(&sim);
    let f = Feature::Playlists;
    let c0 = cp(&p, f).await;
    let pl = Entry::playlist(Playlist {
        name: "Weekend".into(),
        description: None,
        items: vec![samples::movie(1), samples::movie(2), samples::movie(3)],
    });
    p.add(&cx(), f, std::slice::from_ref(&pl)).await.unwrap();
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    assert_eq!(c1, cp(&p, f).await);
    let id = sim.playlists()[0].id.clone();
    // Reordered in a client: same entries, same count.
    sim.edit_playlist(&id, |e| e.swap(0, 2));
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2, "a move shows");
    sim.edit_playlist(&id, |e| {
        e.pop();
    });
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    let m4 = sim.movie_id(4);
    sim.edit_playlist(&id, |e| e.push(("entry-x".into(), m4)));
    assert_ne!(c3, cp(&p, f).await);
}

#[tokio::test]
async fn a_fingerprint_set_larger_than_one_request_gets_no_checkpoint() {
    let sim = JellyfinSim::builder()
        .movies(10_050)
        .shows(0, 0, 0)
        .start()
        .await;
    for n in 0..10_050 {
        sim.seed_favorite(&sim.movie_id(n), true);
    }
    let p = provider(&sim);
    assert_eq!(p.activity(&cx(), Feature::Watchlist).await.unwrap(), None);
    let a = p.activities(&cx()).await.unwrap();
    assert_eq!(a.get(Feature::Watchlist), None, "read every run instead");
    assert!(a.get(Feature::History).is_some());
}

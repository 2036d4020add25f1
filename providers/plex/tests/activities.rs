//! Change checkpoints against the simulator: every kind of change to watchlist, history
//! and ratings, by the user or by ferry, moves the feature's checkpoint; nothing else does;
//! none needs a list read.

mod common;

use ferry_core::{Context, Entry, Feature, InventoryOps, Rating};
use ferry_testkit::samples;
use ferry_testkit::sim::plex::PlexSim;
use plex::PlexProvider;

fn provider(sim: &PlexSim) -> PlexProvider {
    common::provider_named(sim, "plex-activity")
}

fn cx() -> Context {
    Context::default()
}

async fn cp(p: &PlexProvider, f: Feature) -> String {
    p.activity(&cx(), f)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {f} checkpoint"))
}

fn key(n: u32) -> u64 {
    PlexSim::movie_key(n)
}

#[tokio::test]
async fn checkpoints_cost_one_row_requests_and_are_stable() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    assert!(p.features().activities);
    sim.seed_play(key(1), 1_700_000_000);
    sim.reset_counts();
    let a = p.activities(&cx()).await.unwrap();
    for f in [Feature::Watchlist, Feature::History, Feature::Ratings] {
        assert!(a.get(f).is_some(), "{f}");
    }
    // Progress and playlists have no reliable cheap checkpoint: read every run.
    assert_eq!(a.get(Feature::Progress), None);
    assert_eq!(a.get(Feature::Playlists), None);
    assert_eq!(sim.discover_requests("/library/sections/watchlist/all"), 1);
    assert_eq!(sim.requests("/status/sessions/history/all"), 1);
    assert_eq!(
        sim.requests("/library/all"),
        5,
        "2 watched counts, 3 rated types"
    );
    assert_eq!(sim.total_requests(), 7, "no list is read");
    assert_eq!(sim.requests_under("/library/sections/"), 0);
    // A full read changes nothing.
    p.build_index(&cx(), Feature::History).await.unwrap();
    p.build_index(&cx(), Feature::Ratings).await.unwrap();
    assert_eq!(p.activities(&cx()).await.unwrap(), a);
    sim.reset_counts();
    p.activity(&cx(), Feature::Watchlist).await.unwrap();
    assert_eq!(sim.total_requests(), 1);
}

#[tokio::test]
async fn history_checkpoint_moves_with_plays_deleted_rows_and_unwatched_items() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    let f = Feature::History;
    sim.seed_play(key(1), 1_700_000_000);
    sim.seed_play(key(2), 1_700_100_000);
    let c0 = cp(&p, f).await;
    sim.watch_now(key(3));
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    assert_eq!(c1, cp(&p, f).await);
    // A row deleted from the history (not the newest).
    let oldest = sim.history().iter().map(|r| r.id).min().unwrap();
    sim.delete_history_row(oldest);
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2);
    // That item is still marked watched: it reads as one play at its last view. Marking it
    // unwatched changes no history row, only the watched count.
    sim.mark_unwatched(key(1));
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    // A row deleted and another watched between two runs.
    let some = sim.history().iter().map(|r| r.id).min().unwrap();
    sim.delete_history_row(some);
    sim.watch_now(key(4));
    let c4 = cp(&p, f).await;
    assert_ne!(c3, c4);
    // ferry's own writes.
    let e = Entry::watch(samples::movie(5), samples::time(3600));
    p.add(&cx(), f, std::slice::from_ref(&e)).await.unwrap();
    let c5 = cp(&p, f).await;
    assert_ne!(c4, c5);
    p.remove(&cx(), f, &[e]).await.unwrap();
    assert_ne!(c5, cp(&p, f).await);
}

#[tokio::test]
async fn ratings_checkpoint_moves_with_new_changed_and_cleared_ratings() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    let f = Feature::Ratings;
    let c0 = cp(&p, f).await;
    sim.rate_now(key(1), Some(6.0));
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    sim.rate_now(key(2), Some(8.0));
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2);
    assert_eq!(c2, cp(&p, f).await);
    // The older rating changed.
    sim.rate_now(key(1), Some(4.0));
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    // Cleared (not the newest), then another title rated: the same count.
    sim.rate_now(key(2), None);
    sim.rate_now(key(3), Some(10.0));
    let c4 = cp(&p, f).await;
    assert_ne!(c3, c4);
    // Shows and episodes count too.
    let show = sim
        .items()
        .into_iter()
        .find(|i| i.kind == ferry_testkit::sim::plex::PlexKind::Show)
        .unwrap()
        .rating_key;
    sim.rate_now(show, Some(2.0));
    let c5 = cp(&p, f).await;
    assert_ne!(c4, c5);
    // ferry's own write.
    let e = Entry::rating(samples::movie(6), Rating::new(7).unwrap(), None);
    p.add(&cx(), f, &[e]).await.unwrap();
    assert_ne!(c5, cp(&p, f).await);
}

#[tokio::test]
async fn watchlist_checkpoint_moves_with_adds_removals_and_swaps() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    let f = Feature::Watchlist;
    sim.watchlist_now(key(1));
    sim.watchlist_now(key(2));
    let c0 = cp(&p, f).await;
    // The older one removed and a new one added: the same count.
    sim.unwatchlist(key(1));
    sim.watchlist_now(key(3));
    let c1 = cp(&p, f).await;
    assert_ne!(c0, c1);
    assert_eq!(c1, cp(&p, f).await);
    sim.unwatchlist(key(2));
    let c2 = cp(&p, f).await;
    assert_ne!(c1, c2);
    let e = Entry::watchlist(samples::movie(4));
    p.add(&cx(), f, std::slice::from_ref(&e)).await.unwrap();
    let c3 = cp(&p, f).await;
    assert_ne!(c2, c3);
    p.remove(&cx(), f, &[e]).await.unwrap();
    assert_ne!(c3, cp(&p, f).await);
}

#[tokio::test]
async fn a_discover_outage_leaves_the_library_checkpoints() {
    let sim = PlexSim::start().await;
    let p = provider(&sim);
    sim.inject_discover(
        ferry_testkit::sim::knobs::FaultRule::new(ferry_testkit::sim::knobs::Fault::Status(503))
            .times(10),
    );
    let a = p.activities(&cx()).await.unwrap();
    assert_eq!(a.get(Feature::Watchlist), None);
    assert!(a.get(Feature::History).is_some());
    assert!(a.get(Feature::Ratings).is_some());
}

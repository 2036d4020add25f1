//! Write paths are linear in what is written: a first sync of N titles, sent in the
//! engine's batches after the engine's read, costs the writes plus a few requests per
//! batch, never a library or list read per batch.

mod common;

use std::sync::Arc;

use ferry_core::{Context, Entry, Feature, InventoryOps, MemoryKvStore, Rating};
use ferry_testkit::samples;
use ferry_testkit::sim::plex::PlexSim;
use plex::PlexProvider;

/// Titles written.
const N: u32 = 250;
/// The library: more than is written, on several pages.
const LIBRARY: u32 = 300;
const PAGE: usize = 50;
/// The engine's batch (the declared batch size of these features).
const BATCH: usize = 100;
/// Rating keys per read-back request.
const READ_BACK: usize = 50;

async fn setup() -> (PlexSim, PlexProvider) {
    let sim = PlexSim::builder()
        .movies(LIBRARY)
        .shows(0, 0, 0)
        .start()
        .await;
    let p = common::provider_on(&sim, "plex-linear", PAGE, Arc::new(MemoryKvStore::new()));
    (sim, p)
}

/// Reads `f` (as the engine does before writing), then adds `entries` in batches;
/// returns the requests the writes cost, every one confirmed.
async fn first_sync(sim: &PlexSim, p: &PlexProvider, f: Feature, entries: &[Entry]) -> u64 {
    let cx = Context::default();
    p.build_index(&cx, f).await.unwrap();
    sim.reset_counts();
    for batch in entries.chunks(BATCH) {
        let r = p.add(&cx, f, batch).await.unwrap();
        assert_eq!(r.confirmed(), batch.len(), "{f}: {r:?}");
    }
    sim.total_requests()
}

/// The bound: one write per title, two batched read-backs per title chunk (before and
/// after, history), one request per batch (the played settings, the watchlist's newest
/// rows), and one library read (sections + pages) at most.
fn bound() -> u64 {
    let n = N as usize;
    let batches = n.div_ceil(BATCH);
    let library = 1 + (LIBRARY as usize).div_ceil(PAGE);
    (n + 2 * (n.div_ceil(READ_BACK) + batches) + batches + library) as u64
}

fn no_list_read_per_batch(sim: &PlexSim) {
    let pages = (LIBRARY as usize).div_ceil(PAGE) as u64;
    assert!(
        sim.requests("/library/sections/1/all") <= pages,
        "the library was read more than once: {:?}",
        sim.routes()
    );
    assert_eq!(sim.requests("/status/sessions/history/all"), 0);
    // The watchlist's newest rows, once per batch (watchlist adds only).
    assert!(sim.discover_requests("/library/sections/watchlist/all") <= 3);
}

#[tokio::test]
async fn a_first_history_sync_costs_the_scrobbles_and_batched_read_backs() {
    let (sim, p) = setup().await;
    let entries: Vec<Entry> = (0..N)
        .map(|n| Entry::watch(samples::movie(n), samples::time(i64::from(n) * 3_600)))
        .collect();
    let cost = first_sync(&sim, &p, Feature::History, &entries).await;
    assert_eq!(sim.requests("/:/scrobble"), u64::from(N));
    no_list_read_per_batch(&sim);
    assert!(
        cost <= bound(),
        "{cost} requests > {}: {:?}",
        bound(),
        sim.routes()
    );
}

#[tokio::test]
async fn a_first_ratings_sync_costs_the_rates_and_batched_read_backs() {
    let (sim, p) = setup().await;
    let entries: Vec<Entry> = (0..N)
        .map(|n| Entry::rating(samples::movie(n), Rating::new(7).unwrap(), None))
        .collect();
    let cost = first_sync(&sim, &p, Feature::Ratings, &entries).await;
    assert_eq!(sim.requests("/:/rate"), u64::from(N));
    no_list_read_per_batch(&sim);
    assert!(
        cost <= bound(),
        "{cost} requests > {}: {:?}",
        bound(),
        sim.routes()
    );
}

#[tokio::test]
async fn a_first_progress_sync_costs_the_reports_and_batched_read_backs() {
    let (sim, p) = setup().await;
    let entries: Vec<Entry> = (0..N)
        .map(|n| Entry::progress(samples::movie(n), 1_200_000, Some(6_000_000), None))
        .collect();
    let cost = first_sync(&sim, &p, Feature::Progress, &entries).await;
    assert_eq!(sim.requests("/:/timeline"), u64::from(N));
    no_list_read_per_batch(&sim);
    assert!(
        cost <= bound(),
        "{cost} requests > {}: {:?}",
        bound(),
        sim.routes()
    );
}

#[tokio::test]
async fn a_first_watchlist_sync_costs_the_adds_and_one_read_back_per_batch() {
    let (sim, p) = setup().await;
    let entries: Vec<Entry> = (0..N)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    let cost = first_sync(&sim, &p, Feature::Watchlist, &entries).await;
    assert_eq!(
        sim.discover_requests("/actions/addToWatchlist"),
        u64::from(N)
    );
    assert_eq!(sim.watchlist().len(), N as usize);
    no_list_read_per_batch(&sim);
    assert!(
        cost <= bound(),
        "{cost} requests > {}: {:?}",
        bound(),
        sim.discover_routes()
    );
}

//! A first sync costs requests linear in its size: one read of the list (N / page size
//! pages) and N / batch size writes, not a read of the whole list before every batch.

mod common;

use ferry_core::{Entry, Feature, InventoryOps, Outcome, Rating, WriteReport};
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::{TraktLimits, TraktSim};

use common::{Rig, cx, rig_with, sim};

const PAGE: u32 = 100;
const BATCH: usize = 100;
/// Titles already on the account: ten pages.
const HELD: u32 = 1000;
/// Titles the sync writes.
const NEW: u32 = 250;

async fn vip_sim() -> TraktSim {
    let sim = sim().await;
    sim.set_limits(TraktLimits::VIP);
    sim
}

fn rig(sim: &TraktSim) -> Rig {
    let mut config = common::config(sim);
    config.page_limit = Some(PAGE);
    rig_with(config)
}

/// Writes `entries` the way the engine does: in batches of the declared size.
async fn add_in_batches(r: &Rig, f: Feature, entries: &[Entry]) -> Vec<WriteReport> {
    let mut out = Vec::new();
    for batch in entries.chunks(BATCH) {
        out.push(r.provider.add(&cx(), f, batch).await.unwrap());
    }
    out
}

fn confirmed(reports: &[WriteReport]) -> usize {
    reports.iter().map(WriteReport::confirmed).sum()
}

#[tokio::test]
async fn a_first_watchlist_sync_reads_the_list_once() {
    let sim = vip_sim().await;
    sim.seed_watchlist(&(0..HELD).map(samples::movie).collect::<Vec<_>>());
    let r = rig(&sim);
    // The engine reads the feature, then writes it.
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert_eq!(snap.len(), HELD as usize);
    let entries: Vec<Entry> = (HELD..HELD + NEW)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    let reports = add_in_batches(&r, Feature::Watchlist, &entries).await;
    assert_eq!(confirmed(&reports), NEW as usize);
    assert_eq!(sim.watchlist().len(), (HELD + NEW) as usize);

    let pages = u64::from(HELD.div_ceil(PAGE));
    let batches = (NEW as usize).div_ceil(BATCH) as u64;
    assert_eq!(
        sim.request_count("GET", "/sync/watchlist"),
        pages,
        "one read"
    );
    assert_eq!(sim.request_count("POST", "/sync/watchlist"), batches);
    // Plus the account limits, once.
    assert_eq!(
        sim.total_requests(),
        pages + batches + 1,
        "{:?}",
        sim.routes()
    );

    // Adding them again costs nothing: the kept read follows ferry's writes.
    let again = add_in_batches(&r, Feature::Watchlist, &entries).await;
    assert!(
        again
            .iter()
            .flat_map(|r| &r.items)
            .all(|i| i.outcome == Outcome::AlreadyPresent)
    );
    assert_eq!(sim.total_requests(), pages + batches + 1);
}

#[tokio::test]
async fn without_a_read_first_the_first_batch_reads_the_list_once() {
    let sim = vip_sim().await;
    sim.seed_watchlist(&(0..HELD).map(samples::movie).collect::<Vec<_>>());
    let r = rig(&sim);
    let entries: Vec<Entry> = (HELD..HELD + NEW)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    let reports = add_in_batches(&r, Feature::Watchlist, &entries).await;
    assert_eq!(confirmed(&reports), NEW as usize);
    let pages = u64::from(HELD.div_ceil(PAGE));
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), pages);
}

#[tokio::test]
async fn a_first_ratings_sync_reads_the_ratings_once() {
    let sim = vip_sim().await;
    sim.seed_ratings(
        &(0..HELD)
            .map(|n| (samples::movie(n), 6))
            .collect::<Vec<_>>(),
    );
    let r = rig(&sim);
    r.provider
        .build_index(&cx(), Feature::Ratings)
        .await
        .unwrap();
    let entries: Vec<Entry> = (HELD..HELD + NEW)
        .map(|n| Entry::rating(samples::movie(n), Rating::new(8).unwrap(), None))
        .collect();
    let reports = add_in_batches(&r, Feature::Ratings, &entries).await;
    assert_eq!(confirmed(&reports), NEW as usize);
    let pages = u64::from(HELD.div_ceil(PAGE));
    assert_eq!(sim.request_count("GET", "/sync/ratings"), pages);
    assert_eq!(
        sim.request_count("POST", "/sync/ratings"),
        (NEW as usize).div_ceil(BATCH) as u64
    );
}

#[tokio::test]
async fn a_first_history_sync_reads_one_window_per_batch() {
    let sim = vip_sim().await;
    let r = rig(&sim);
    // Oldest first, an hour apart: each batch covers one stretch of time.
    let entries: Vec<Entry> = (0..NEW)
        .map(|n| Entry::watch(samples::movie(n), samples::time(i64::from(n) * 3600)))
        .collect();
    let reports = add_in_batches(&r, Feature::History, &entries).await;
    assert_eq!(confirmed(&reports), NEW as usize);
    let batches = (NEW as usize).div_ceil(BATCH) as u64;
    assert_eq!(sim.request_count("GET", "/sync/history"), batches);
    assert_eq!(sim.request_count("POST", "/sync/history"), batches);
}

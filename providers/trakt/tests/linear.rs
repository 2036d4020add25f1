//! A first sync costs requests linear in its size: one read of the list (N / page size
//! pages) and N / batch size writes, not a read of the whole list before every batch.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferry_core::{
    Entry, Feature, InventoryOps, KvStore, MemoryKvStore, Outcome, Rating, Result, WriteReport,
};
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::{TraktLimits, TraktSim};

use common::{Rig, cx, rig_on, rig_with, sim};

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

/// The namespace of the watchlist memo's records.
const MEMO: &str = "trakt.watchlist";

/// A state store that counts what the watchlist memo reads and writes.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryKvStore,
    gets: AtomicU64,
    puts: AtomicU64,
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
    /// Key → size of what is stored now.
    sizes: Mutex<HashMap<String, u64>>,
}

/// What the memo cost over some calls.
#[derive(Debug, Clone, Copy)]
struct Cost {
    gets: u64,
    puts: u64,
    read_bytes: u64,
    written_bytes: u64,
}

impl Counting {
    fn cost(&self) -> Cost {
        Cost {
            gets: self.gets.load(Ordering::SeqCst),
            puts: self.puts.load(Ordering::SeqCst),
            read_bytes: self.read_bytes.load(Ordering::SeqCst),
            written_bytes: self.written_bytes.load(Ordering::SeqCst),
        }
    }

    /// The size of both records as stored now.
    fn stored_bytes(&self) -> u64 {
        self.sizes.lock().unwrap().values().sum()
    }
}

impl KvStore for Counting {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        let v = self.inner.get(namespace, key)?;
        if namespace == MEMO {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let n = v.as_ref().map_or(0, String::len) as u64;
            self.read_bytes.fetch_add(n, Ordering::SeqCst);
        }
        Ok(v)
    }

    fn put(&self, namespace: &str, key: &str, value: &str) -> Result<()> {
        if namespace == MEMO {
            self.puts.fetch_add(1, Ordering::SeqCst);
            let n = value.len() as u64;
            self.written_bytes.fetch_add(n, Ordering::SeqCst);
            self.sizes.lock().unwrap().insert(key.to_owned(), n);
        }
        self.inner.put(namespace, key, value)
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        if namespace == MEMO {
            self.sizes.lock().unwrap().remove(key);
        }
        self.inner.delete(namespace, key)
    }
}

/// The memo's records grow with every batch of a first sync (each title ferry adds to
/// the watchlist, each title it writes a play of). Saving a batch must cost the batch,
/// not the records: rewriting (or re-reading) them whole per batch made a first sync's
/// CPU quadratic. Both made one read and one write per call, so this counts bytes.
#[tokio::test]
async fn the_watchlist_memo_costs_each_batch_its_own_size() {
    const TITLES: u32 = 3_000;
    let sim = vip_sim().await;
    let kv = Arc::new(Counting::default());
    let mut config = common::config(&sim);
    config.page_limit = Some(PAGE);
    let r = rig_on(config, kv.clone(), None);
    r.provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    let before = kv.cost();

    let listed: Vec<Entry> = (0..TITLES)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    let reports = add_in_batches(&r, Feature::Watchlist, &listed).await;
    assert_eq!(confirmed(&reports), TITLES as usize);
    let plays: Vec<Entry> = (0..TITLES)
        .map(|n| Entry::watch(samples::movie(n), samples::time(i64::from(n) * 3600)))
        .collect();
    let reports = add_in_batches(&r, Feature::History, &plays).await;
    assert_eq!(confirmed(&reports), TITLES as usize);

    let after = kv.cost();
    let calls = 2 * u64::from(TITLES).div_ceil(BATCH as u64);
    let stored = kv.stored_bytes();
    let (gets, puts) = (after.gets - before.gets, after.puts - before.puts);
    let read = after.read_bytes - before.read_bytes;
    let written = after.written_bytes - before.written_bytes;
    let cost = format!(
        "{calls} calls: {gets} gets ({read} bytes), {puts} puts ({written} bytes); \
         {stored} bytes stored at the end"
    );
    // Per call: a check that nobody else saved the records (and their first load), a
    // saved batch of changes and where it ends, and now and then the records whole.
    assert!(gets <= 2 * calls + 64, "{cost}");
    assert!(puts <= 3 * calls, "{cost}");
    // Rewriting the records whole per batch writes about calls / 4 times what is
    // stored at the end (15 times here); re-reading them, as much again.
    assert!(written <= 4 * stored, "{cost}");
    assert!(read <= stored / 4, "{cost}");
}

/// The kept copy's index follows ferry's writes: titles removed between batches are
/// absent to the next batch, titles added are present.
#[tokio::test]
async fn a_kept_copy_follows_removals_and_adds_between_batches() {
    let sim = vip_sim().await;
    let r = rig(&sim);
    assert!(
        r.provider
            .build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap()
            .is_empty()
    );
    let entries: Vec<Entry> = (0..250)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    let reports = add_in_batches(&r, Feature::Watchlist, &entries).await;
    assert_eq!(confirmed(&reports), 250);
    // Remove the first hundred, then add everything again: exactly those go back.
    let removed = r
        .provider
        .remove(&cx(), Feature::Watchlist, &entries[..100])
        .await
        .unwrap();
    assert_eq!(removed.confirmed(), 100);
    let again = add_in_batches(&r, Feature::Watchlist, &entries).await;
    let outcomes: Vec<&Outcome> = again
        .iter()
        .flat_map(|r| &r.items)
        .map(|i| &i.outcome)
        .collect();
    assert!(outcomes[..100].iter().all(|o| **o == Outcome::Confirmed));
    assert!(
        outcomes[100..]
            .iter()
            .all(|o| **o == Outcome::AlreadyPresent)
    );
    assert_eq!(sim.watchlist().len(), 250);
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 1, "one read");
}

//! Planner benchmark: two-way watchlist plans of 10k, 100k and 1M items per side.
//!
//! Side A holds titles `0..n`, side B `n/10..n+n/20`, both baselines `n/20..n`: 90% of
//! the titles are on both sides, A's first 5% are new on A (added to B), its next 5%
//! vanished from B since the baseline (removed from A), and B's last 5% are new on B
//! (added to A). Titles carry tmdb, imdb and trakt ids; B files a third of them under
//! imdb only, so a third of all matches go through the token index, not the exact key.
//!
//! Run: `cargo bench -p ferry-engine --bench planner`. Allocation columns come from
//! divan's `AllocProfiler`: bytes allocated by one plan, i.e. the planner's own memory on
//! top of its input snapshots.

use divan::{AllocProfiler, Bencher};
use ferry_core::{Entry, Feature, IdKind, Ids, Item, Snapshot};
use ferry_engine::plan::{PlanInput, PlanOptions, SideInput, plan};
use ferry_engine::{FeatureSwitch, Mode, RemoveMode};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

fn item(n: u32, imdb_only: bool) -> Item {
    let mut ids = Ids::new().with(IdKind::Imdb, &format!("tt{:08}", n + 1));
    if !imdb_only {
        ids.set(IdKind::Tmdb, &(n + 1).to_string());
        ids.set(IdKind::Trakt, &(n + 7).to_string());
    }
    Item::movie(format!("Movie {n}"), 1990 + (n % 30) as u16, ids)
}

struct World {
    a: Snapshot,
    b: Snapshot,
    base: Snapshot,
}

fn world(n: u32) -> World {
    let twentieth = n / 20;
    let wl = |i: u32, imdb_only: bool| Entry::watchlist(item(i, imdb_only));
    let a = ferry_testkit::snap(Feature::Watchlist, (0..n).map(|i| wl(i, false)));
    let b = ferry_testkit::snap(
        Feature::Watchlist,
        (2 * twentieth..n + twentieth).map(|i| wl(i, i % 3 == 0)),
    );
    let base = ferry_testkit::snap(Feature::Watchlist, (twentieth..n).map(|i| wl(i, false)));
    World { a, b, base }
}

fn input(w: &World) -> PlanInput<'_> {
    let side = |inst, view| SideInput {
        instance: inst,
        view,
        baseline: Some(&w.base),
        yields_deletions: true,
        holds_deletions: false,
        filled: None,
        accepts_removals: true,
        accepts_adds: true,
        read: true,
        blackbox: None,
        plays: ferry_core::PlaysPerTitle::Many,
    };
    PlanInput {
        feature: Feature::Watchlist,
        mode: Mode::TwoWay,
        remove_mode: RemoveMode::SourceDeletes,
        switch: FeatureSwitch::with_removals(),
        a: side("a", &w.a),
        b: side("b", &w.b),
        tombstones: None,
        options: PlanOptions::default(),
    }
}

#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 5, sample_size = 1)]
fn two_way_watchlist(bencher: Bencher, n: u32) {
    let w = world(n);
    let p = plan(&input(&w));
    // Sanity: the scenario is what the doc comment says.
    assert_eq!(p.to_a.adds.len() as u32, n / 20);
    assert_eq!(p.to_b.adds.len() as u32, n / 20);
    assert_eq!(p.to_a.removes.len() as u32, n / 20);
    bencher.bench_local(|| plan(&input(&w)));
}

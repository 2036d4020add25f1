//! The activities fast path around ferry's own writes: a run that wrote commits the
//! checkpoint its own writes produced, so the next run of an unchanged pair reads nothing;
//! a change by anyone else is never folded into that checkpoint.

mod common;

use std::sync::Arc;

use common::*;
use ferry_core::{Activities, Context, Entry, Feature, InventoryOps, Result, WriteReport};
use ferry_engine::{FeatureStatus, FeatureSwitch, RunConfig};
use ferry_testkit::fake::{FakeOp, FakeProvider};
use ferry_testkit::samples;

const WL: Feature = Feature::Watchlist;

fn two_way(a: &str, b: &str) -> RunConfig {
    cfg(vec![
        pair("p", a, b, WL, FeatureSwitch::with_removals()).two_way(),
    ])
}

#[tokio::test]
async fn own_writes_leave_the_next_run_unchanged() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    // Not empty: an empty first read is read again next run (see the last test).
    w.fake("trakt").seed(WL, entries(WL, 90..91));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::with_removals(),
    )]);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 10);
    let before = (reads(&w, "plex"), reads(&w, "trakt"));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
    assert_eq!((reads(&w, "plex"), reads(&w, "trakt")), before);
    // A later change is still seen.
    w.fake("trakt")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 4).key()));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Done);
    assert_eq!(feat(&s, "p", WL).to_b.added, 1, "one-way puts it back");
}

#[tokio::test]
async fn two_way_writes_to_both_sides_settle_in_one_run() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..6));
    w.fake("trakt").seed(WL, entries(WL, 4..12));
    let c = two_way("plex", "trakt");
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!((f.to_a.added, f.to_b.added), (6, 4));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
    assert_eq!(w.count("feature:unchanged"), 1);
}

#[tokio::test]
async fn a_one_way_pair_is_not_woken_by_titles_another_pair_adds_to_its_target() {
    // plex -> trakt commits Trakt's checkpoint after its own writes; jellyfin -> trakt then
    // adds to Trakt too. Titles added to its target never give a one-way
    // `source_deletes` pair work, so it stays unchanged.
    let w = World::new(&["plex", "jellyfin", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..5));
    w.fake("jellyfin").seed(WL, entries(WL, 10..15));
    w.fake("trakt").seed(WL, entries(WL, 90..91));
    let c = cfg(vec![
        pair("a", "plex", "trakt", WL, FeatureSwitch::with_removals()),
        pair("b", "jellyfin", "trakt", WL, FeatureSwitch::with_removals()),
    ]);
    w.run(&c).await;
    assert_eq!(w.fake("trakt").entries(WL).len(), 11);
    let before = reads(&w, "trakt");
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "a", WL).status, FeatureStatus::Unchanged);
    assert_eq!(feat(&s, "b", WL).status, FeatureStatus::Unchanged);
    assert_eq!(reads(&w, "trakt"), before);
    let ev = w.sink.named("feature:unchanged");
    assert_eq!(ev[0].str("reason"), Some("target_gained_own_adds_only"));
    // A user change on the shared target is still seen by both.
    w.fake("trakt")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 2).key()));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "a", WL).to_b.added, 1, "put back");
    assert_eq!(feat(&s, "b", WL).status, FeatureStatus::Done);
}

#[tokio::test]
async fn a_pair_reads_again_when_another_pair_removed_from_its_target() {
    // plex -> trakt (one-way) and jellyfin <-> trakt (two-way): a title deleted on Jellyfin
    // is removed from Trakt by the second pair. That is not "only adds": the first pair
    // reads and puts back what Plex still holds.
    let w = World::new(&["plex", "jellyfin", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..5));
    w.fake("jellyfin").seed(WL, entries(WL, 0..5));
    let c = cfg(vec![
        pair("a", "plex", "trakt", WL, FeatureSwitch::with_removals()),
        pair("b", "jellyfin", "trakt", WL, FeatureSwitch::with_removals()).two_way(),
    ]);
    w.run(&c).await;
    w.run(&c).await;
    w.fake("jellyfin")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 1).key()));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "a", WL).status, FeatureStatus::Unchanged);
    assert_eq!(feat(&s, "b", WL).to_b.removed, 1);
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "a", WL).status,
        FeatureStatus::Done,
        "woken by a removal"
    );
    assert_eq!(feat(&s, "a", WL).to_b.added, 1);
}

#[tokio::test]
async fn mirror_pairs_read_again_after_other_pairs_add_to_their_target() {
    let w = World::new(&["plex", "jellyfin", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    w.fake("jellyfin").seed(WL, entries(WL, 10..12));
    let c = cfg(vec![
        pair("a", "plex", "trakt", WL, FeatureSwitch::with_removals()).mirror(),
        pair("b", "jellyfin", "trakt", WL, FeatureSwitch::with_removals()),
    ]);
    w.run(&c).await;
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "a", WL).status,
        FeatureStatus::Done,
        "mirror cares about what its target gained"
    );
}

/// Trakt, where the user adds a title right after ferry read the watchlist (before ferry
/// writes to it).
#[derive(Debug)]
struct EditAfterRead {
    inner: FakeProvider,
    armed: std::sync::atomic::AtomicBool,
}

#[ferry_core::async_trait]
impl InventoryOps for EditAfterRead {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }
    fn instance(&self) -> &str {
        self.inner.instance()
    }
    fn features(&self) -> ferry_core::Capabilities {
        self.inner.features()
    }
    async fn build_index(&self, cx: &Context, f: Feature) -> Result<ferry_core::Snapshot> {
        let snap = self.inner.build_index(cx, f).await?;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.inner.user_edit(f, |e| e.push(samples::entry(WL, 50)));
        }
        Ok(snap)
    }
    async fn add(&self, cx: &Context, f: Feature, e: &[Entry]) -> Result<WriteReport> {
        self.inner.add(cx, f, e).await
    }
    async fn remove(&self, cx: &Context, f: Feature, e: &[Entry]) -> Result<WriteReport> {
        self.inner.remove(cx, f, e).await
    }
    async fn activities(&self, cx: &Context) -> Result<Activities> {
        self.inner.activities(cx).await
    }
}

#[tokio::test]
async fn a_change_by_someone_else_before_our_writes_is_read_next_run() {
    let mut w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    let trakt = Arc::new(EditAfterRead {
        inner: w.fake("trakt").clone(),
        armed: std::sync::atomic::AtomicBool::new(true),
    });
    w.set_provider("trakt", trakt);
    let c = two_way("plex", "trakt");
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 3);
    assert!(
        w.fake("trakt")
            .keys(WL)
            .contains(&samples::entry(WL, 50).key())
    );
    // The user's title was added after the read: the next run must not skip it.
    let reads_before = w.fake("trakt").calls(FakeOp::BuildIndex);
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.status, FeatureStatus::Done, "{f:#?}");
    assert_eq!(f.to_a.added, 1, "the user's new title reaches Plex");
    assert!(w.fake("trakt").calls(FakeOp::BuildIndex) > reads_before);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
}

#[tokio::test]
async fn a_dry_run_commits_nothing_and_the_next_run_still_writes() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..4));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    let dry = RunConfig {
        dry_run: true,
        ..c.clone()
    };
    w.run(&dry).await;
    assert!(w.fake("trakt").entries(WL).is_empty());
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 4);
}

#[tokio::test]
async fn checkpoints_read_by_the_health_check_replace_the_activities_call() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").health_reads_activities();
    w.fake("plex").seed(WL, entries(WL, 0..10));
    w.fake("trakt").seed(WL, entries(WL, 90..91));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::with_removals(),
    )]);
    w.run(&c).await;
    w.fake("plex").reset_calls();
    w.fake("trakt").reset_calls();
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
    assert_eq!(
        w.fake("plex").calls(FakeOp::Activities),
        0,
        "the health check's checkpoints were used"
    );
    assert_eq!(w.fake("trakt").calls(FakeOp::Activities), 1);
    // A change made before the health check moves the checkpoint it hands over.
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 3).key()));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Done);
    assert_eq!(feat(&s, "p", WL).to_b.removed, 1);
    assert_eq!(w.fake("plex").calls(FakeOp::Activities), 0);
}

#[tokio::test]
async fn checkpoints_from_the_health_check_are_used_once_then_read_afresh() {
    // The shape of the demo: plex -> trakt one-way and jellyfin <-> trakt two-way, every
    // provider handing its checkpoints over with the health. The second pair's writes
    // to Trakt drop the run's cached Trakt checkpoints; the health-time ones must not
    // come back in their place, or a settled run looks changed forever.
    let w = World::new(&["plex", "jellyfin", "trakt"]);
    for name in ["plex", "jellyfin", "trakt"] {
        w.fake(name).health_reads_activities();
    }
    w.fake("plex").seed(WL, entries(WL, 0..5));
    w.fake("jellyfin").seed(WL, entries(WL, 3..9));
    let c = cfg(vec![
        pair("a", "plex", "trakt", WL, FeatureSwitch::with_removals()),
        pair("b", "jellyfin", "trakt", WL, FeatureSwitch::with_removals()).two_way(),
    ]);
    w.run(&c).await;
    let s = w.run(&c).await;
    let second = [feat(&s, "a", WL).status, feat(&s, "b", WL).status];
    let s = w.run(&c).await;
    assert_eq!(
        [feat(&s, "a", WL).status, feat(&s, "b", WL).status],
        [FeatureStatus::Unchanged, FeatureStatus::Unchanged],
        "third run (second: {second:?})"
    );
}

#[tokio::test]
async fn a_side_effect_of_our_own_writes_on_another_feature_is_not_read_again() {
    // Pair "plays" adds history to Trakt, which moves Trakt's watchlist checkpoint too
    // (Trakt takes watched titles off its watchlist). Pair "lists" then writes Trakt's
    // watchlist: it must start from the checkpoint after that side effect, or its own
    // writes look like someone else's change and the next run reads everything again.
    const H: Feature = Feature::History;
    let w = World::new(&["plex", "jellyfin", "trakt"]);
    w.fake("trakt").writes_also_move(H, WL);
    w.fake("plex").seed(H, entries(H, 0..4));
    w.fake("jellyfin").seed(WL, entries(WL, 0..4));
    w.fake("trakt").seed(H, entries(H, 90..91));
    w.fake("trakt").seed(WL, entries(WL, 90..91));
    let c = cfg(vec![
        pair("plays", "plex", "trakt", H, FeatureSwitch::default()),
        pair("lists", "jellyfin", "trakt", WL, FeatureSwitch::default()),
    ]);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "plays", H).to_b.added, 4);
    assert_eq!(feat(&s, "lists", WL).to_b.added, 4);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "plays", H).status, FeatureStatus::Unchanged);
    assert_eq!(
        feat(&s, "lists", WL).status,
        FeatureStatus::Unchanged,
        "{:?}",
        w.sink.named("feature:read")
    );
}

#[tokio::test]
async fn an_unchanged_feature_is_still_read_in_full_once_a_day() {
    // A checkpoint can miss a change a service does not stamp; the shortcut therefore
    // holds only while the last full read is younger than `full_read_hours` (24).
    let mut w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..5));
    w.fake("trakt").seed(WL, entries(WL, 90..91));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    let start = ferry_core::Timestamp::now().unix();
    let at = |w: &mut World, hours: i64| {
        let t = start + hours * 3_600;
        w.engine = w
            .engine
            .clone()
            .with_clock(move || ferry_core::Timestamp::from_unix(t));
    };
    at(&mut w, 0);
    w.run(&c).await;
    at(&mut w, 23);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
    at(&mut w, 25);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Done);
    assert_eq!(
        w.sink.named("feature:read")[0].str("reason"),
        Some("full_read_due")
    );
    // The full read committed a fresh baseline: unchanged again for a day.
    at(&mut w, 26);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
}

#[tokio::test]
async fn an_empty_first_read_is_read_again_before_it_is_trusted() {
    // ferry's rule (empty reads): an empty answer is not conclusive on its own. Two-way,
    // the run after it reads that list again even though ferry's writes filled it and no
    // checkpoint moved (a lie there would hide titles from the other side); one more run
    // and the pair is unchanged.
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    let c = two_way("plex", "trakt");
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 3);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Done);
    assert_eq!(
        w.sink.named("feature:read")[0].str("reason"),
        Some("baseline_pending")
    );
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
}

#[tokio::test]
async fn a_one_way_target_ferry_filled_is_settled_by_that_run() {
    // Its own titles flow nowhere, so an empty first read of it that ferry's adds filled
    // needs no second read: the next run is unchanged.
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    w.run(&c).await;
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
}

#[tokio::test]
async fn an_empty_one_way_source_is_read_again_before_it_is_trusted() {
    let w = World::new(&["plex", "trakt"]);
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    w.run(&c).await;
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Done);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Unchanged);
}

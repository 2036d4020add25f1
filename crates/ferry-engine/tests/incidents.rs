//! One scenario per incident of `peers-and-pain.md` §3.1 that the engine can prevent,
//! named after it, run against the testkit's fake providers.

mod common;

use common::*;
use ferry_core::{Entry, ErrorKind, Feature, Health, Payload, Timestamp};
use ferry_engine::{FeatureStatus, FeatureSwitch, RunConfig};
use ferry_testkit::fake::FakeOp;
use ferry_testkit::samples;

const WL: Feature = Feature::Watchlist;

fn one_way_removals(src: &str, dst: &str) -> RunConfig {
    cfg(vec![pair(
        "p",
        src,
        dst,
        WL,
        FeatureSwitch::with_removals(),
    )])
}

fn two_way_removals(a: &str, b: &str, f: Feature) -> RunConfig {
    cfg(vec![
        pair("p", a, b, f, FeatureSwitch::with_removals()).two_way(),
    ])
}

// ---------------------------------------------------------------------------------------
// #1 Whole lists wiped after misconfiguration or a bad read (CrossWatch #19, PTS #1066)

#[tokio::test]
async fn incident_01_list_wiped_after_an_empty_read() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..30));
    let c = one_way_removals("plex", "trakt");
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 30);

    // Plex answers with an empty, "complete" list: a lie after a silent failure. (Trakt
    // changed, so the feature is read; Plex's own checkpoint did not move.)
    w.fake("plex").lie_empty_next_read(WL);
    w.fake("trakt").user_edit(WL, |_| {});
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.removed(), 0, "nothing removed: {f:#?}");
    assert_eq!(w.fake("trakt").entries(WL).len(), 30);
    let suspect = w.sink.named("snapshot:suspect");
    assert_eq!(suspect.len(), 1);
    assert_eq!(suspect[0].str("provider"), Some("plex"));
    assert_eq!(suspect[0].u64("prev_count"), Some(30));
    assert_eq!(suspect[0].u64("cur_count"), Some(0));

    // The read recovers: still nothing removed, and the baseline was never wiped.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0);
    assert_eq!(w.fake("trakt").entries(WL).len(), 30);
}

#[tokio::test]
async fn incident_01_list_wiped_after_an_empty_read_without_checkpoints() {
    // ferry's rule: no checkpoint available means suspect, not "progressed".
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").without_activities();
    w.fake("plex").seed(WL, entries(WL, 0..25));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    w.fake("plex").lie_empty_next_read(WL);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0);
    // ferry's rule (empty reads): an empty read of a non-empty baseline is suspect
    // whatever the checkpoints say.
    assert_eq!(feat(&s, "p", WL).suspect[0].1.reason, "empty");
    assert_eq!(w.fake("trakt").entries(WL).len(), 25);
}

#[tokio::test]
async fn incident_01_list_wiped_after_a_failed_read() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..30));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    w.fake("plex")
        .fail_next(FakeOp::BuildIndex, ErrorKind::Unavailable, 1);
    // A change on Trakt makes the run read.
    w.fake("trakt").user_edit(WL, |_| {});
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.status, FeatureStatus::Error);
    assert_eq!(f.removed(), 0);
    assert_eq!(w.count("feature:error"), 1);
    assert_eq!(w.fake("trakt").entries(WL).len(), 30);
    // Nothing was committed: a later genuine deletion still propagates.
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 3).key()));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 1);
    assert_eq!(w.fake("trakt").entries(WL).len(), 29);
}

#[tokio::test]
async fn incident_01_two_way_pair_never_wipes_both_sides_after_an_empty_read() {
    // CrossWatch #19: a two-way pair with deletions on consumed an empty index.
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..30));
    w.fake("trakt").seed(WL, entries(WL, 20..40));
    let c = two_way_removals("plex", "trakt", WL);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).added(), 30);
    w.fake("trakt").lie_empty_next_read(WL);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0, "{:#?}", feat(&s, "p", WL));
    assert_eq!(w.fake("plex").entries(WL).len(), 40);
    assert_eq!(w.fake("trakt").entries(WL).len(), 40);
}

#[tokio::test]
async fn incident_01_token_fixed_after_weeks_looks_like_mass_deletion() {
    // PTS #1066: the source's token was invalid for weeks; once fixed, its first read must
    // not be taken as "everything I did not see was deleted".
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..50));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    assert_eq!(w.fake("trakt").entries(WL).len(), 50);

    w.fake("plex")
        .set_health(Health::auth_failed("401 invalid token"));
    for _ in 0..2 {
        let s = w.run(&c).await;
        assert_eq!(s.pairs[0].skipped.as_deref(), Some("auth_failed"));
        assert_eq!(w.count("pair:skip"), 1);
    }
    // Fixed: the token now reads a library that lacks 4 of the titles (a small drop the
    // drop guard and the mass-delete block would both let through).
    w.fake("plex").set_health(Health::ok());
    w.fake("plex").user_edit(WL, |e| e.truncate(46));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(
        f.removed(),
        0,
        "first healthy run after an outage is add-only: {f:#?}"
    );
    assert_eq!(w.fake("trakt").entries(WL).len(), 50);
    let health = w.sink.named("health");
    assert!(health.iter().any(|e| e.str("instance") == Some("plex")
        && e.get("add_only") == Some(&serde_json::json!(true))));
    // ferry's rule (held evidence): the add-only run held the 4 deletions, it did not
    // forget them.
    assert_eq!(f.blocked.get("recovering"), Some(&4), "{f:#?}");
    // The next run is normal again: the user's deletions, proved by a whole read, are
    // carried out now.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 4);
    assert_eq!(w.fake("trakt").entries(WL).len(), 46);
}

// ---------------------------------------------------------------------------------------
// #2 One-way with delete behaves like mirror (CrossWatch #96)

#[tokio::test]
async fn incident_02_one_way_with_removals_does_not_behave_like_mirror() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    // The user keeps their own titles on the target.
    w.fake("trakt").seed(WL, entries(WL, 100..105));
    let c = one_way_removals("plex", "trakt");
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 10);
    assert_eq!(
        feat(&s, "p", WL).to_b.removed,
        0,
        "nothing removed on a first run"
    );
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "p", WL).to_b.removed,
        0,
        "target-only titles are never removed"
    );
    assert_eq!(w.fake("trakt").entries(WL).len(), 15);

    // A source deletion propagates; the target's own titles stay.
    let gone = samples::entry(WL, 2).key();
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.to_b.removed, 1);
    let keys = w.keys("trakt", WL);
    assert!(!keys.contains(&gone));
    assert_eq!(keys.len(), 14);
    // The plan carried the evidence.
    let plan = w.sink.named("one:plan");
    let ev = &plan[0].get("preview").unwrap()["removes"][0]["evidence"];
    assert_eq!(ev["kind"], "baseline");
    assert_eq!(ev["side"], "A");
}

#[tokio::test]
async fn incident_02_mirror_is_an_explicit_opt_in() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    w.fake("trakt").seed(WL, entries(WL, 100..103));
    let c = cfg(vec![
        pair("p", "plex", "trakt", WL, FeatureSwitch::with_removals()).mirror(),
    ]);
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "p", WL).to_b.removed,
        0,
        "mirror removes nothing on a first run"
    );
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 3);
    assert_eq!(w.fake("trakt").entries(WL).len(), 10);
}

// ---------------------------------------------------------------------------------------
// #3 Pagination or limit changes truncate reads, then mass-remove (PTS #2452)

#[tokio::test]
async fn incident_03_truncated_page_followed_by_removals() {
    let w = World::new(&["trakt", "plex"]);
    w.fake("trakt").seed(WL, entries(WL, 0..600));
    let c = one_way_removals("trakt", "plex");
    w.run(&c).await;
    assert_eq!(w.fake("plex").entries(WL).len(), 600);

    // The user really deletes 2 titles, and the next read stops after the first page.
    w.fake("trakt").user_edit(WL, |e| e.truncate(598));
    w.fake("trakt").truncate_next_read(WL, 498);
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.removed(), 0, "a partial read never removes: {f:#?}");
    assert_eq!(w.fake("plex").entries(WL).len(), 600);
    assert!(
        w.sink
            .named("snapshot:suspect")
            .iter()
            .any(|e| e.str("reason") == Some("partial"))
    );

    // The next complete read still sees the 2 real deletions: the partial run kept the
    // evidence instead of committing a truncated baseline.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 2);
    assert_eq!(w.fake("plex").entries(WL).len(), 598);
}

// ---------------------------------------------------------------------------------------
// #4 Deletions get resurrected, or removals never stick (PTS #1247, CrossWatch #1182)

fn imdb_only(e: &Entry) -> Entry {
    let mut e = e.clone();
    e.item.ids.remove(ferry_core::IdKind::Tmdb);
    e.item.ids.remove(ferry_core::IdKind::Trakt);
    e.item.ids.remove(ferry_core::IdKind::Slug);
    e
}

#[tokio::test]
async fn incident_04_deletions_resurrected_by_the_other_side() {
    let w = World::new(&["plex", "simkl"]);
    // The two sides file the same titles under different canonical ids.
    w.fake("plex").seed(WL, entries(WL, 0..10));
    w.fake("simkl")
        .seed(WL, entries(WL, 0..10).iter().map(imdb_only));
    let c = two_way_removals("plex", "simkl", WL);
    let s = w.run(&c).await;
    assert!(feat(&s, "p", WL).to_a.planned_adds == 0 && feat(&s, "p", WL).to_b.planned_adds == 0);

    // The user deletes title 4 on Plex: it must go from SIMKL, not come back to Plex.
    let gone = samples::entry(WL, 4).key();
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!((f.to_b.removed, f.to_a.added), (1, 0), "{f:#?}");
    assert_eq!(w.fake("simkl").entries(WL).len(), 9);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).added(), 0);
    assert_eq!(w.fake("plex").entries(WL).len(), 9);

    // SIMKL resurrects it (a stale cache), with an old listing date: the tombstone wins.
    w.fake("simkl")
        .user_edit(WL, |e| e.push(imdb_only(&samples::entry(WL, 4))));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.to_a.added, 0, "never re-added to Plex: {f:#?}");
    assert_eq!(f.to_b.removed, 1, "removed from SIMKL again");
    assert_eq!(w.fake("plex").entries(WL).len(), 9);
    assert_eq!(w.fake("simkl").entries(WL).len(), 9);
}

#[tokio::test]
async fn incident_04_removed_items_are_not_added_back_when_removals_are_off() {
    // PTS #1247 "always adds back removed items": two-way with removals off (the default)
    // must not undo the user's deletion either.
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    let c = cfg(vec![
        pair("p", "plex", "trakt", WL, FeatureSwitch::default()).two_way(),
    ]);
    w.run(&c).await;
    let gone = samples::entry(WL, 7).key();
    w.fake("trakt")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));
    for _ in 0..3 {
        let s = w.run(&c).await;
        let f = feat(&s, "p", WL);
        assert_eq!(f.added() + f.removed(), 0, "{f:#?}");
        assert_eq!(f.blocked.get("removals_disabled"), Some(&1));
    }
    assert!(!w.keys("trakt", WL).contains(&gone));
    assert!(w.keys("plex", WL).contains(&gone));
}

// ---------------------------------------------------------------------------------------
// #5 Duplicate plays / history inflation (PTS #918, JF-Trakt #226)

#[tokio::test]
async fn incident_05_duplicate_plays() {
    const H: Feature = Feature::History;
    let w = World::new(&["jellyfin", "trakt"]);
    let play = |n: u32, off: i64| Entry::watch(samples::movie(n), samples::time(off));
    // Jellyfin: three plays of movie 1, one of movie 2 (with seconds).
    w.fake("jellyfin").seed(
        H,
        [
            play(1, 37),
            play(1, 86_437),
            play(1, 172_837),
            play(2, 1_000_017),
        ],
    );
    // Trakt already has movie 1's first play, stored to the minute.
    w.fake("trakt").seed(H, [play(1, 0)]);
    let c = cfg(vec![pair(
        "p",
        "jellyfin",
        "trakt",
        H,
        FeatureSwitch::default(),
    )]);
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "p", H).to_b.added,
        3,
        "the two missing plays of 1, one of 2"
    );
    assert_eq!(w.fake("trakt").entries(H).len(), 4);
    for _ in 0..3 {
        let s = w.run(&c).await;
        assert_eq!(feat(&s, "p", H).to_b.planned_adds, 0);
    }
    // Never fabricated: exactly the plays that exist on the source.
    assert_eq!(w.fake("trakt").entries(H).len(), 4);

    // Two-way as well: no ping-pong of near-identical plays.
    let c2 = cfg(vec![
        pair("q", "jellyfin", "trakt", H, FeatureSwitch::default()).two_way(),
    ]);
    w.run(&c2).await;
    w.run(&c2).await;
    assert_eq!(w.fake("trakt").entries(H).len(), 4);
    assert_eq!(
        w.fake("jellyfin").entries(H).len(),
        4,
        "trakt's minute-rounded copy is the same play"
    );
}

// ---------------------------------------------------------------------------------------
// #11 Crash mid-run restarts from zero (PTS #606) — killed mid-apply

#[tokio::test]
async fn incident_11_kill_mid_apply() {
    const H: Feature = Feature::History;
    let mut w = World::new(&["plex", "trakt"]);
    let plays: Vec<Entry> = (0..250)
        .map(|n| Entry::watch(samples::movie(n), samples::time(i64::from(n) * 3600)))
        .collect();
    w.fake("plex").seed(H, plays.clone());
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        H,
        FeatureSwitch::default(),
    )]);
    // Batches of 100: the second batch reaches Trakt, then the process dies.
    w.fake("trakt").crash_after_writes(1);
    let (engine, providers, c2) = (w.engine.clone(), w.providers.clone(), c.clone());
    let died = tokio::spawn(async move {
        engine
            .run(&providers, &c2, ferry_core::CancelToken::new())
            .await
    })
    .await;
    assert!(died.is_err(), "the run died mid-apply");
    assert_eq!(w.fake("trakt").entries(H).len(), 200, "two batches landed");

    // A new process on the same state file.
    w.reopen();
    assert_eq!(
        w.engine.state().journal_all().unwrap().len(),
        2,
        "both batches journaled"
    );
    let s = w.run(&c).await;
    let f = feat(&s, "p", H);
    assert_eq!(
        f.to_b.planned_adds, 50,
        "only the batch that never went: {f:#?}"
    );
    assert_eq!(f.to_b.added, 50);
    assert_eq!(w.count("journal:reconciled"), 1);
    assert!(w.engine.state().journal_all().unwrap().is_empty());
    // No duplicate plays, no lost ones.
    assert_eq!(w.fake("trakt").entries(H).len(), 250);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", H).to_b.planned_adds, 0);
    let runs = w.engine.state().runs(10).unwrap();
    assert!(
        runs.iter()
            .any(|r| r.status == ferry_state::RunStatus::Interrupted)
    );
}

// ---------------------------------------------------------------------------------------
// A provider going down mid two-way

#[tokio::test]
async fn incident_provider_down_mid_two_way() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..20));
    w.fake("trakt").seed(WL, entries(WL, 10..30));
    let c = two_way_removals("plex", "trakt", WL);
    // Trakt reads fine, then its write fails as unavailable.
    w.fake("trakt")
        .fail_next(FakeOp::Add, ErrorKind::Unavailable, 1);
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.to_a.added, 10, "writes to the healthy side proceed");
    assert_eq!(f.to_b.added, 0);
    assert_eq!(f.to_b.unresolved_total(), 10);
    let un = w.engine.state().unresolved(Some("p"), None).unwrap();
    assert_eq!(un.len(), 10);
    assert!(
        un.iter().all(|u| u.instance == "trakt" && u.failures == 0),
        "outages are not item failures"
    );

    // Trakt recovers: the unresolved writes go through, nothing was lost or removed.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 10);
    assert!(w.engine.state().unresolved(None, None).unwrap().is_empty());
    assert_eq!(w.fake("trakt").entries(WL).len(), 30);
    assert_eq!(w.fake("plex").entries(WL).len(), 30);
}

#[tokio::test]
async fn incident_provider_down_keeps_deletion_evidence_for_later() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    let c = two_way_removals("plex", "trakt", WL);
    w.run(&c).await;
    // The user deletes a title on Plex while Trakt is down.
    let gone = samples::entry(WL, 5).key();
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));
    w.fake("trakt").set_health(Health::down("503"));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.added() + f.removed(), 0, "{f:#?}");
    assert_eq!(
        w.fake("plex").entries(WL).len(),
        9,
        "not re-added from the down side's stale baseline"
    );
    // Trakt is back (first healthy run: add-only for Trakt, so the removal waits).
    w.fake("trakt").set_health(Health::ok());
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0);
    assert_eq!(feat(&s, "p", WL).blocked.get("add_only"), Some(&1));
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "p", WL).to_b.removed,
        1,
        "the deletion propagates once trusted"
    );
    assert!(!w.keys("trakt", WL).contains(&gone));
    assert!(!w.keys("plex", WL).contains(&gone));
}

// ---------------------------------------------------------------------------------------
// CrossWatch hazard: a dry run consuming deletions

#[tokio::test]
async fn incident_dry_run_consuming_deletions() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    let gone = samples::entry(WL, 1).key();
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));

    let before = w.engine.state().baselines().unwrap();
    let dry = RunConfig {
        dry_run: true,
        ..c.clone()
    };
    let writes_before = w.fake("trakt").calls(FakeOp::Remove) + w.fake("trakt").calls(FakeOp::Add);
    let s = w.run(&dry).await;
    let dry_names = w.sink.names();
    let f = feat(&s, "p", WL);
    assert_eq!(f.to_b.planned_removes, 1);
    assert_eq!(f.to_b.removed, 0);
    assert_eq!(s.run_id, None);
    assert_eq!(
        w.fake("trakt").calls(FakeOp::Remove) + w.fake("trakt").calls(FakeOp::Add),
        writes_before,
        "no write calls"
    );
    assert_eq!(
        w.engine.state().baselines().unwrap(),
        before,
        "nothing committed"
    );
    assert!(w.engine.state().restore_points().unwrap().is_empty());

    // The real run still sees the deletion, with the same events.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 1);
    assert!(!w.keys("trakt", WL).contains(&gone));
    let real_names: Vec<String> = w
        .sink
        .names()
        .into_iter()
        .filter(|n| n != "restore:saved")
        .collect();
    assert_eq!(
        dry_names, real_names,
        "a dry run emits the events of a real run"
    );
}

#[tokio::test]
async fn dry_run_plan_preview_shows_the_evidence_behind_each_removal() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    w.fake("plex").user_edit(WL, |e| e.truncate(8));
    let report = w
        .engine
        .plan(&w.providers, &c, ferry_core::CancelToken::new())
        .await
        .unwrap();
    assert!(report.summary.dry_run);
    let p = &report.plans[0];
    assert_eq!(p.plan.to_b.removes.len(), 2);
    for r in &p.plan.to_b.removes {
        assert_eq!(r.evidence.kind, ferry_engine::plan::EvidenceKind::Baseline);
        assert_eq!(r.evidence.side, ferry_engine::plan::Side::A);
    }
    assert!(p.a_untrusted.is_empty());
    assert_eq!(w.fake("trakt").entries(WL).len(), 10);
}

// ---------------------------------------------------------------------------------------
// #12 Two-way conflict surprises: equal ratings are never rewritten, newest wins

#[tokio::test]
async fn incident_12_stale_rating_never_overwrites_a_newer_one() {
    const R: Feature = Feature::Ratings;
    let w = World::new(&["plex", "trakt"]);
    let r = |n: u32, v: u8, at: i64| {
        Entry::rating(
            samples::movie(n),
            ferry_core::Rating::new(v).unwrap(),
            Some(samples::time(at)),
        )
    };
    w.fake("plex")
        .seed(R, [r(1, 6, 10), r(2, 7, 10), r(3, 9, 500)]);
    w.fake("trakt")
        .seed(R, [r(1, 8, 100), r(2, 7, 900), r(3, 4, 100)]);
    let c = cfg(vec![
        pair("p", "plex", "trakt", R, FeatureSwitch::default()).two_way(),
    ]);
    let s = w.run(&c).await;
    let f = feat(&s, "p", R);
    assert_eq!(
        (f.to_a.planned_updates, f.to_b.planned_updates),
        (1, 1),
        "{f:#?}"
    );
    let rating = |inst: &str, n: u32| {
        w.fake(inst)
            .entries(R)
            .into_iter()
            .find(|e| e.key() == samples::movie(n).key())
            .map(|e| match e.payload {
                Payload::Rating { rating, .. } => rating.get(),
                _ => 0,
            })
    };
    assert_eq!(rating("plex", 1), Some(8), "Trakt's newer rating won");
    assert_eq!(rating("trakt", 3), Some(9), "Plex's newer rating won");
    assert_eq!(rating("trakt", 2), Some(7));
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "p", R).updated(),
        0,
        "equal values are never rewritten"
    );
}

// ---------------------------------------------------------------------------------------
// #10 Slow runs / #13 silent no-ops: unchanged features are skipped with zero list
// requests, and say so

#[tokio::test]
async fn incident_10_unchanged_features_make_zero_list_requests() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    // Our own writes moved Trakt's checkpoint after we read it: one more full read.
    w.run(&c).await;
    let before = (reads(&w, "plex"), reads(&w, "trakt"));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.status, FeatureStatus::Unchanged, "{f:#?}");
    assert_eq!(
        (reads(&w, "plex"), reads(&w, "trakt")),
        before,
        "zero list requests"
    );
    assert_eq!(w.count("feature:unchanged"), 1);
    // A change on either side brings the reads back.
    w.fake("plex").user_edit(WL, |e| e.truncate(9));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::Done);
    assert_eq!(feat(&s, "p", WL).to_b.removed, 1);
}

// ---------------------------------------------------------------------------------------
// Guardrails: mass delete, unknown health, blackbox, restore points

#[tokio::test]
async fn mass_delete_is_blocked_unless_overridden_for_one_run() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..100));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    w.fake("plex").user_edit(WL, |e| e.truncate(80));
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.removed(), 0);
    assert_eq!(f.mass_delete[0].threshold, 10);
    let ev = &w.sink.named("mass_delete:blocked")[0];
    assert_eq!(
        (ev.u64("attempted"), ev.u64("threshold")),
        (Some(20), Some(10))
    );
    // Blocked again next run (the evidence is kept), until the user lifts it once.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).blocked.get("mass_delete"), Some(&20));
    let s = w
        .run(&RunConfig {
            allow_mass_delete: true,
            ..c.clone()
        })
        .await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 20);
    assert_eq!(w.fake("trakt").entries(WL).len(), 80);
}

#[tokio::test]
async fn unknown_health_adds_but_never_yields_deletions() {
    let w = World::new(&["local", "trakt"]);
    w.fake("local").without_health();
    w.fake("local").seed(WL, entries(WL, 0..10));
    let c = one_way_removals("local", "trakt");
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 10);
    w.fake("local").user_edit(WL, |e| e.truncate(8));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0);
    assert_eq!(w.fake("trakt").entries(WL).len(), 10);
}

#[tokio::test]
async fn incident_09_unmatched_items_are_quarantined_after_three_failed_runs() {
    const R: Feature = Feature::Ratings;
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(R, entries(R, 0..1));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        R,
        FeatureSwitch::default(),
    )]);
    for run in 1..=3 {
        w.fake("trakt")
            .fail_next(FakeOp::Add, ErrorKind::NotFound, 1);
        let s = w.run(&c).await;
        assert_eq!(feat(&s, "p", R).to_b.unresolved_total(), 1, "run {run}");
    }
    assert_eq!(w.engine.state().blackbox(None).unwrap().len(), 1);
    let adds = w.fake("trakt").calls(FakeOp::Add);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", R).blocked.get("blackbox"), Some(&1));
    assert_eq!(
        w.fake("trakt").calls(FakeOp::Add),
        adds,
        "not retried while blackboxed"
    );
    assert_eq!(w.count("blocked:counts"), 1);
}

#[tokio::test]
async fn a_restore_point_is_saved_before_removals_and_can_be_restored() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..10));
    let c = one_way_removals("plex", "trakt");
    w.run(&c).await;
    w.fake("plex").user_edit(WL, |e| e.truncate(7));
    w.run(&c).await;
    assert_eq!(w.fake("trakt").entries(WL).len(), 7);
    let rps = w.engine.state().restore_points().unwrap();
    assert_eq!(rps.len(), 1);
    assert_eq!((rps[0].instance.as_str(), rps[0].item_count), ("trakt", 10));
    let r = w
        .engine
        .restore(&w.providers, rps[0].id, ferry_core::CancelToken::new())
        .await
        .unwrap();
    assert_eq!((r.missing, r.restored), (3, 3));
    assert_eq!(w.fake("trakt").entries(WL).len(), 10);
}

#[tokio::test]
async fn cancellation_stops_between_batches_and_keeps_the_rest_for_later() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..250));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    let cancel = ferry_core::CancelToken::new();
    // Cancel as soon as the first progress event arrives.
    let sink_cancel = cancel.clone();
    let em = ferry_core::Emitter::to_sink(std::sync::Arc::new(move |e: &ferry_core::Event| {
        if e.name == "apply:add:progress" {
            sink_cancel.cancel();
        }
    }));
    let engine = ferry_engine::Engine::new(w.engine.state().clone(), em);
    let s = engine.run(&w.providers, &c, cancel).await.unwrap();
    assert!(s.cancelled);
    let f = feat(&s, "p", WL);
    assert_eq!(f.status, FeatureStatus::Cancelled);
    assert_eq!(f.to_b.added, 100, "one batch of 100 went");
    assert_eq!(w.fake("trakt").entries(WL).len(), 100);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 150);
}

#[tokio::test]
async fn tombstones_expire_after_their_ttl() {
    let mut w = World::new(&["plex", "simkl"]);
    w.fake("plex").seed(WL, entries(WL, 0..5));
    let c = two_way_removals("plex", "simkl", WL);
    w.run(&c).await;
    let gone = samples::entry(WL, 0);
    w.fake("plex")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone.key()));
    w.run(&c).await;
    assert_eq!(w.engine.state().tombstone_count().unwrap(), 1);
    // 31 days later the tombstone is gone.
    let later = Timestamp::now().unix() + 31 * 86_400;
    w.engine = w
        .engine
        .clone()
        .with_clock(move || Timestamp::from_unix(later));
    w.run(&c).await;
    assert_eq!(w.engine.state().tombstone_count().unwrap(), 0);
}

/// A Trakt that dies on its second write (before applying it) and whose reads lag: it
/// does not list what was written in its first batch until told to.
#[derive(Debug)]
struct Lagging {
    inner: ferry_testkit::fake::FakeProvider,
    adds: std::sync::atomic::AtomicUsize,
    hide: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ferry_core::InventoryOps for Lagging {
    fn provider(&self) -> &'static str {
        "fake"
    }
    fn instance(&self) -> &str {
        self.inner.instance()
    }
    fn features(&self) -> ferry_core::Capabilities {
        self.inner.features()
    }
    async fn health(&self, cx: &ferry_core::Context) -> Health {
        self.inner.health(cx).await
    }
    async fn build_index(
        &self,
        cx: &ferry_core::Context,
        f: Feature,
    ) -> ferry_core::Result<ferry_core::Snapshot> {
        let mut s = self.inner.build_index(cx, f).await?;
        for k in self.hide.lock().unwrap().iter() {
            s.remove(k);
        }
        Ok(s)
    }
    async fn add(
        &self,
        cx: &ferry_core::Context,
        f: Feature,
        e: &[Entry],
    ) -> ferry_core::Result<ferry_core::WriteReport> {
        if self.adds.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            panic!("killed before the second batch reached the service");
        }
        let r = self.inner.add(cx, f, e).await?;
        self.hide.lock().unwrap().extend(e.iter().map(Entry::key));
        Ok(r)
    }
    async fn remove(
        &self,
        cx: &ferry_core::Context,
        f: Feature,
        e: &[Entry],
    ) -> ferry_core::Result<ferry_core::WriteReport> {
        self.inner.remove(cx, f, e).await
    }
    async fn activities(
        &self,
        cx: &ferry_core::Context,
    ) -> ferry_core::Result<ferry_core::Activities> {
        self.inner.activities(cx).await
    }
}

#[tokio::test]
async fn incident_05_confirmed_plays_are_never_sent_twice_after_a_kill_even_when_reads_lag() {
    const H: Feature = Feature::History;
    let mut w = World::new(&["plex", "trakt"]);
    let plays: Vec<Entry> = (0..250)
        .map(|n| Entry::watch(samples::movie(n), samples::time(i64::from(n) * 3600)))
        .collect();
    w.fake("plex").seed(H, plays);
    let lag = std::sync::Arc::new(Lagging {
        inner: w.fake("trakt").clone(),
        adds: std::sync::atomic::AtomicUsize::new(0),
        hide: std::sync::Mutex::new(Vec::new()),
    });
    w.set_provider("trakt", lag.clone());
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        H,
        FeatureSwitch::default(),
    )]);
    let (engine, providers, c2) = (w.engine.clone(), w.providers.clone(), c.clone());
    let died = tokio::spawn(async move {
        engine
            .run(&providers, &c2, ferry_core::CancelToken::new())
            .await
    })
    .await;
    assert!(died.is_err());
    assert_eq!(
        w.fake("trakt").entries(H).len(),
        100,
        "the first batch landed"
    );

    // Restart while Trakt still does not list the first batch.
    w.reopen();
    let s = w.run(&c).await;
    let f = feat(&s, "p", H);
    assert_eq!(
        f.to_b.planned_adds, 150,
        "the journal's confirmed plays are not sent again: {f:#?}"
    );
    assert_eq!(w.fake("trakt").entries(H).len(), 250);
    // Trakt catches up: still nothing to do, nothing duplicated.
    lag.hide.lock().unwrap().clear();
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", H).to_b.planned_adds, 0);
    assert_eq!(w.fake("trakt").entries(H).len(), 250);
}

// ---------------------------------------------------------------------------------------
// #6 Trakt 429 rate limits abort or hang runs (PTS #2151)

#[tokio::test]
async fn incident_06_a_long_retry_after_defers_writes_instead_of_hanging() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..5));
    let mut limited = Health::new(ferry_core::HealthStatus::RateLimited);
    limited.retry_after_secs = Some(2852);
    w.fake("trakt").set_health(limited);
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.to_b.unresolved.get("rate_limited"), Some(&5), "{f:#?}");
    assert_eq!(
        w.fake("trakt").calls(FakeOp::Add),
        0,
        "no write attempted, no wait"
    );
    let ws = &w.sink.named("writes:skipped")[0];
    assert_eq!(ws.str("reason"), Some("rate_limited"));
    // Next run, the window has reset: the deferred writes go through.
    w.fake("trakt").set_health(Health::ok());
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.added, 5);
}

// ---------------------------------------------------------------------------------------
// #7 Trakt account limits (420) fail silently (PTS #2162)

#[tokio::test]
async fn incident_07_account_limit_is_reported_by_reason_and_never_blackboxed() {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(WL, entries(WL, 0..3));
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        WL,
        FeatureSwitch::default(),
    )]);
    for _ in 0..4 {
        w.fake("trakt")
            .fail_next(FakeOp::Add, ErrorKind::AccountLimit, 1);
        let s = w.run(&c).await;
        assert_eq!(
            feat(&s, "p", WL)
                .to_b
                .unresolved
                .get("failed:account_limit"),
            Some(&3)
        );
        let un = &w.sink.named("apply:unresolved")[0];
        assert_eq!(un.get("reason_counts").unwrap()["failed:account_limit"], 3);
    }
    assert!(
        w.engine.state().blackbox(None).unwrap().is_empty(),
        "a full list is not the item's fault"
    );
    let un = w.engine.state().unresolved(Some("p"), None).unwrap();
    assert_eq!(un.len(), 3);
    assert!(un.iter().all(|u| u.reason == "failed:account_limit"));
}

// ---------------------------------------------------------------------------------------
// Held evidence, empty reads and health blips (faults found by the fault campaign)

#[tokio::test]
async fn a_health_blip_is_retried_and_does_not_gate_the_provider() {
    let w = World::new(&["jellyfin", "trakt"]);
    w.fake("jellyfin").seed(WL, entries(WL, 0..6));
    let c = one_way_removals("jellyfin", "trakt");
    w.run(&c).await;
    w.fake("jellyfin")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 2).key()));
    // One failed health request: the probe asks again within its budget.
    w.fake("jellyfin")
        .fail_next(FakeOp::Health, ErrorKind::Unavailable, 1);
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.status, FeatureStatus::Done, "{f:#?}");
    assert_eq!(f.to_b.removed, 1, "the deletion is carried out this run");
    assert_eq!(w.count("health:retried"), 1);
    let health = w.sink.named("health");
    assert!(
        health
            .iter()
            .all(|h| h.get("add_only") == Some(&serde_json::json!(false)))
    );
}

#[tokio::test]
async fn a_source_deletion_made_during_an_outage_is_held_then_carried_out() {
    let w = World::new(&["jellyfin", "trakt"]);
    w.fake("jellyfin").seed(WL, entries(WL, 0..6));
    let c = one_way_removals("jellyfin", "trakt");
    w.run(&c).await;
    // The source is down for a run (every probe fails), and the user deletes a title.
    w.fake("jellyfin").set_health(Health::down("503"));
    w.fake("jellyfin")
        .user_edit(WL, |e| e.retain(|x| x.key() != samples::entry(WL, 4).key()));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).status, FeatureStatus::SourceDown);
    // Back: the first run is add-only, and holds the deletion instead of forgetting it.
    w.fake("jellyfin").set_health(Health::ok());
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.removed(), 0);
    assert_eq!(f.blocked.get("recovering"), Some(&1), "{f:#?}");
    assert_eq!(w.fake("trakt").entries(WL).len(), 6);
    // The next normal run acts on the evidence it kept.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 1);
    assert!(
        !w.fake("trakt")
            .keys(WL)
            .contains(&samples::entry(WL, 4).key())
    );
}

#[tokio::test]
async fn two_way_a_deletion_on_a_recovering_side_is_never_added_back() {
    let w = World::new(&["jellyfin", "trakt"]);
    w.fake("jellyfin").seed(WL, entries(WL, 0..6));
    let c = two_way_removals("jellyfin", "trakt", WL);
    w.run(&c).await;
    assert_eq!(w.fake("trakt").entries(WL).len(), 6);
    let gone = samples::entry(WL, 1).key();
    w.fake("jellyfin").set_health(Health::down("503"));
    w.run(&c).await;
    w.fake("jellyfin")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));
    w.fake("jellyfin").set_health(Health::ok());
    // Recovering run: neither removed from Trakt nor added back to Jellyfin.
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!((f.added(), f.removed()), (0, 0), "{f:#?}");
    assert!(!w.fake("jellyfin").keys(WL).contains(&gone));
    assert_eq!(f.blocked.get("recovering"), Some(&1));
    // Normal run: the deletion reaches Trakt.
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!((f.added(), f.removed()), (0, 1), "{f:#?}");
    assert!(!w.fake("trakt").keys(WL).contains(&gone));
    assert!(!w.fake("jellyfin").keys(WL).contains(&gone));
}

#[tokio::test]
async fn two_way_unknown_health_holds_its_deletions_instead_of_reversing_them() {
    let w = World::new(&["local", "trakt"]);
    w.fake("local").without_health();
    w.fake("local").seed(WL, entries(WL, 0..6));
    let c = two_way_removals("local", "trakt", WL);
    w.run(&c).await;
    let gone = samples::entry(WL, 0).key();
    w.fake("local")
        .user_edit(WL, |e| e.retain(|x| x.key() != gone));
    for _ in 0..2 {
        let s = w.run(&c).await;
        let f = feat(&s, "p", WL);
        assert_eq!((f.added(), f.removed()), (0, 0), "{f:#?}");
        assert_eq!(f.blocked.get("recovering"), Some(&1));
        assert!(!w.fake("local").keys(WL).contains(&gone), "never re-added");
    }
}

#[tokio::test]
async fn an_empty_read_of_a_small_list_needs_a_second_trusted_read() {
    let w = World::new(&["jellyfin", "trakt"]);
    w.fake("jellyfin").seed(WL, entries(WL, 0..3));
    let c = one_way_removals("jellyfin", "trakt");
    w.run(&c).await;
    assert_eq!(w.fake("trakt").entries(WL).len(), 3);
    // One empty answer, with the checkpoint moved: suspect, nothing removed.
    w.fake("jellyfin").lie_empty_next_read(WL);
    w.fake("jellyfin").user_edit(WL, |_| {});
    let s = w.run(&c).await;
    let f = feat(&s, "p", WL);
    assert_eq!(f.removed(), 0, "{f:#?}");
    assert_eq!(f.suspect[0].1.reason, "empty");
    // The next read is whole again: the marker is cleared, nothing was lost.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0);
    assert_eq!(w.fake("trakt").entries(WL).len(), 3);
    // The user really empties the list: the first empty read is held as suspect ...
    w.fake("jellyfin").user_edit(WL, |e| e.clear());
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).removed(), 0);
    assert_eq!(w.fake("trakt").entries(WL).len(), 3);
    // ... and the second trusted read in a later run confirms it.
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 3);
    assert!(w.fake("trakt").entries(WL).is_empty());
}

#[tokio::test]
async fn allow_mass_delete_confirms_an_empty_read_for_one_run() {
    let w = World::new(&["jellyfin", "trakt"]);
    w.fake("jellyfin").seed(WL, entries(WL, 0..2));
    let mut c = one_way_removals("jellyfin", "trakt");
    w.run(&c).await;
    w.fake("jellyfin").user_edit(WL, |e| e.clear());
    c.allow_mass_delete = true;
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", WL).to_b.removed, 2);
}

//! SIMKL-specific behaviour against the simulator: empty shapes, deltas, SIMKL's library
//! semantics on writes, confirmation by re-read, faults, limits, auth and the PIN flow.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{
    Completeness, Context, Entry, ErrorKind, Feature, HealthStatus, IndexSemantics, InventoryOps,
    KvStore, MemoryKvStore, Outcome, Payload, Rating, Secret, Snapshot, Timestamp,
    UnresolvedReason,
};
use ferry_http::{HttpClient, ManualClock, RetryPolicy};
use ferry_testkit::samples;
use ferry_testkit::sim::knobs::{Fault, FaultRule};
use ferry_testkit::sim::simkl::{ListStatus, SimklSim};
use serde_json::Value;
use simkl::pin::PinFlow;
use simkl::{ReadMode, SimklConfig, SimklOptions, SimklProvider};

struct Setup {
    sim: SimklSim,
    p: SimklProvider,
    clock: Arc<ManualClock>,
}

async fn setup_with(mode: ReadMode) -> Setup {
    let sim = SimklSim::start().await;
    let clock = Arc::new(ManualClock::new(1_750_000_000));
    let p = build(&sim, mode, clock.clone());
    Setup { sim, p, clock }
}

async fn setup() -> Setup {
    setup_with(ReadMode::Full).await
}

fn build(sim: &SimklSim, mode: ReadMode, clock: Arc<ManualClock>) -> SimklProvider {
    let config = SimklConfig {
        client_id: Secret::new(sim.client_id()),
        access_token: Some(Secret::new(sim.token())),
        base_url: Some(sim.uri()),
        read_mode: mode,
    };
    let options = SimklOptions {
        clock: Some(clock),
        store: Some(Arc::new(MemoryKvStore::new()) as Arc<dyn KvStore>),
        seed: Some(3),
        ..SimklOptions::default()
    };
    SimklProvider::new("simkl-test", config, options).expect("build")
}

fn cx() -> Context {
    Context::default()
}

fn wl(n: u32) -> Entry {
    Entry::watchlist(samples::movie(n))
}

fn play(n: u32, offset: i64) -> Entry {
    Entry::watch(samples::movie(n), samples::time(offset))
}

fn unresolved(o: &Outcome) -> Option<UnresolvedReason> {
    match o {
        Outcome::Unresolved { reason, .. } => Some(*reason),
        _ => None,
    }
}

async fn index(p: &SimklProvider, f: Feature) -> Snapshot {
    p.build_index(&cx(), f).await.expect("build_index")
}

// -- empty and broken reads ----------------------------------------------------------------

#[tokio::test]
async fn null_bodies_read_as_complete_empty_snapshots() {
    let s = setup().await;
    // The simulator answers SIMKL's literal `null` for an empty library.
    let raw = HttpClient::builder("simkl", "raw")
        .base_url(s.sim.uri())
        .bearer(&Secret::new(s.sim.token()))
        .build()
        .unwrap();
    let resp = raw
        .get(
            "GET /sync/all-items/movies/plantowatch",
            "/sync/all-items/movies/plantowatch",
        )
        .query("client_id", s.sim.client_id())
        .send(&cx())
        .await
        .unwrap();
    assert_eq!(resp.text(), "null");
    for f in [Feature::Watchlist, Feature::Ratings, Feature::History] {
        let snap = index(&s.p, f).await;
        assert!(snap.is_empty(), "{f}");
        assert_eq!(snap.completeness(), &Completeness::Complete, "{f}");
        assert_eq!(snap.semantics(), IndexSemantics::Present, "{f}");
    }
}

fn partial_reason(snap: &Snapshot) -> String {
    match snap.completeness() {
        Completeness::Partial { reason } => reason.clone(),
        c => panic!("expected a partial read, got {c:?}"),
    }
}

/// SIMKL's lists declare no count, so a catalog that comes back shorter is held against
/// the last complete read and SIMKL's `/sync/activities` stamps.
#[tokio::test]
async fn a_catalog_that_shrinks_while_simkl_reports_no_removal_is_partial() {
    let s = setup().await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.seed_watchlist(&samples::show(1));
    assert!(index(&s.p, Feature::Watchlist).await.is_complete());

    // The shows catalog answers with no rows while none of its stamps moved.
    s.sim
        .inject(FaultRule::new(Fault::EmptyList).on("/sync/all-items/shows"));
    let snap = index(&s.p, Feature::Watchlist).await;
    assert_eq!(snap.len(), 1, "the movie is kept");
    let why = partial_reason(&snap);
    assert!(
        why.contains("shrank_unchanged") && why.contains("plantowatch/shows"),
        "{why}"
    );

    // The user removes the show on SIMKL: `removed_from_list` moves, the shorter list is
    // whole.
    assert!(s.sim.remove_from_library(&samples::show(1)));
    let snap = index(&s.p, Feature::Watchlist).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 1);

    // Activities that cannot be read prove no removal.
    assert!(s.sim.remove_from_library(&samples::movie(1)));
    s.sim.inject(
        FaultRule::new(Fault::Status(500))
            .on("/sync/activities")
            .times(20),
    );
    let snap = index(&s.p, Feature::Watchlist).await;
    s.sim.clear_faults();
    assert!(snap.is_empty());
    let why = partial_reason(&snap);
    assert!(why.contains("could not be read"), "{why}");
    // Readable again, they show the removal.
    assert!(index(&s.p, Feature::Watchlist).await.is_complete());
}

/// Adding to Plan to Watch moves `plantowatch` too, so that stamp cannot prove a title
/// left: after an add, an emptied document is still a read that lost rows (the release
/// binary's fault sweep, `tests/e2e_trackers.rs`, found this wiping Trakt's watchlist).
#[tokio::test]
async fn an_add_does_not_let_the_plan_to_watch_list_shrink() {
    let s = setup().await;
    for n in 1..=3 {
        s.sim.seed_watchlist(&samples::movie(n));
    }
    assert!(index(&s.p, Feature::Watchlist).await.is_complete());
    s.sim.seed_watchlist(&samples::movie(4));
    s.sim
        .inject(FaultRule::new(Fault::EmptyList).on("/sync/all-items/movies"));
    let snap = index(&s.p, Feature::Watchlist).await;
    s.sim.clear_faults();
    let why = partial_reason(&snap);
    assert!(
        why.contains("shrank_unchanged") && why.contains("plantowatch/movies"),
        "{why}"
    );
    assert_eq!(index(&s.p, Feature::Watchlist).await.len(), 4);
}

/// An added rating moves `rated_at` as a removed one does, so a ratings document that
/// comes back shorter under a moved stamp is read once more: an emptied answer (here,
/// once) does not read the same twice and is partial; a real removal does and is whole.
#[tokio::test]
async fn a_shorter_ratings_list_is_believed_only_when_read_the_same_twice() {
    let s = setup().await;
    for n in 1..=3 {
        s.sim.seed_rating(&samples::movie(n), 7);
    }
    assert!(index(&s.p, Feature::Ratings).await.is_complete());
    s.sim.seed_rating(&samples::movie(4), 8);
    s.sim
        .inject(FaultRule::new(Fault::EmptyList).on("/sync/ratings/movies"));
    let snap = index(&s.p, Feature::Ratings).await;
    s.sim.clear_faults();
    let why = partial_reason(&snap);
    assert!(why.contains("unsteady") && why.contains("movies"), "{why}");

    let r =
        s.p.remove(
            &cx(),
            Feature::Ratings,
            &[Entry::rating(
                samples::movie(1),
                Rating::new(7).unwrap(),
                None,
            )],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    let snap = index(&s.p, Feature::Ratings).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 3);
}

/// A move out of Plan to Watch moves the destination list's stamp (`completed`); a
/// removed rating moves `rated_at`: both let their list shrink.
#[tokio::test]
async fn moves_and_unrated_titles_shrink_their_lists_completely() {
    let s = setup().await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.seed_watchlist(&samples::movie(2));
    s.sim.seed_rating(&samples::movie(3), 6);
    s.sim.seed_rating(&samples::movie(4), 7);
    assert!(index(&s.p, Feature::Watchlist).await.is_complete());
    assert!(index(&s.p, Feature::Ratings).await.is_complete());
    s.sim.seed_status(&samples::movie(1), ListStatus::Completed);
    let r =
        s.p.remove(
            &cx(),
            Feature::Ratings,
            &[Entry::rating(
                samples::movie(3),
                Rating::new(6).unwrap(),
                None,
            )],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    let wl = index(&s.p, Feature::Watchlist).await;
    assert!(wl.is_complete() && wl.len() == 1, "{:?}", wl.completeness());
    let rated = index(&s.p, Feature::Ratings).await;
    assert!(
        rated.is_complete() && rated.len() == 1,
        "{:?}",
        rated.completeness()
    );
}

#[tokio::test]
async fn an_empty_body_is_an_error_never_an_empty_snapshot() {
    let s = setup().await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.empty_body_next("/sync/all-items/movies", 1);
    let err =
        s.p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
    assert_eq!(index(&s.p, Feature::Watchlist).await.len(), 1);
}

#[tokio::test]
async fn malformed_json_is_an_error_never_an_empty_snapshot() {
    let s = setup().await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.malformed_next("/sync/all-items");
    let err =
        s.p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
}

#[tokio::test]
async fn a_truncated_body_is_an_error_never_a_shorter_snapshot() {
    let s = setup().await;
    for n in 1..=6 {
        s.sim.seed_rating(&samples::movie(n), 7);
    }
    s.sim.truncate_next("/sync/ratings/movies");
    let err = s.p.build_index(&cx(), Feature::Ratings).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
    assert_eq!(index(&s.p, Feature::Ratings).await.len(), 6);
}

#[tokio::test]
async fn a_failing_catalog_fails_the_whole_read() {
    let s = setup().await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.inject(
        FaultRule::new(Fault::Status(502))
            .on("/sync/all-items/shows")
            .times(10),
    );
    let err =
        s.p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn an_unreadable_row_makes_the_read_partial() {
    let s = setup().await;
    for n in 1..=3 {
        s.sim.seed_watchlist(&samples::movie(n));
    }
    s.sim.bad_row_next("/sync/all-items/movies");
    let sink = ferry_core::CollectingSink::new();
    let cx = Context::new(
        ferry_core::Emitter::to_sink(sink.clone()),
        ferry_core::CancelToken::new(),
    );
    let snap = s.p.build_index(&cx, Feature::Watchlist).await.unwrap();
    assert_eq!(snap.len(), 2);
    match snap.completeness() {
        Completeness::Partial { reason } => {
            assert!(reason.contains("undecodable_row"), "{reason}")
        }
        c => panic!("a read missing a row must be partial, got {c:?}"),
    }
    // The user is told which list lost a row, and shown it.
    let events = sink.named(ferry_core::UndecodableRows::NAME);
    assert_eq!(events.len(), 1, "{events:?}");
    let list = events[0].str("list").unwrap_or_default();
    assert!(list.contains("movies"), "{list}");
    assert!(events[0].fields.get("sample").is_some_and(|v| !v.is_null()));
}

// -- deltas ----------------------------------------------------------------------------------

#[tokio::test]
async fn delta_reads_are_marked_delta_and_hold_only_changes() {
    let s = setup_with(ReadMode::Delta).await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.seed_watchlist(&samples::movie(2));
    let first = index(&s.p, Feature::Watchlist).await;
    assert_eq!(
        first.semantics(),
        IndexSemantics::Present,
        "the first read is full"
    );
    assert_eq!(first.len(), 2);

    s.sim.seed_watchlist(&samples::movie(3));
    let delta = index(&s.p, Feature::Watchlist).await;
    assert_eq!(delta.semantics(), IndexSemantics::Delta);
    assert!(delta.is_complete());
    // `date_from` is inclusive: the title changed at the watermark may come again.
    assert!(delta.contains_key(&samples::movie(3).key()), "{delta:?}");
    assert!(
        !delta.contains_key(&samples::movie(1).key()),
        "only changes: {delta:?}"
    );

    // Nothing changed: no list read at all, an empty delta.
    s.sim.reset_counts();
    let quiet = index(&s.p, Feature::Watchlist).await;
    assert_eq!(quiet.semantics(), IndexSemantics::Delta);
    assert!(quiet.is_empty());
    assert_eq!(s.sim.requests_under("/sync/all-items"), 0);
    assert_eq!(s.sim.requests("/sync/activities"), 1);
}

#[tokio::test]
async fn a_removal_from_the_library_forces_a_full_read() {
    let s = setup_with(ReadMode::Delta).await;
    for n in 1..=3 {
        s.sim.seed_watchlist(&samples::movie(n));
    }
    assert_eq!(index(&s.p, Feature::Watchlist).await.len(), 3);
    assert!(s.sim.remove_from_library(&samples::movie(2)));
    let snap = index(&s.p, Feature::Watchlist).await;
    assert_eq!(
        snap.semantics(),
        IndexSemantics::Present,
        "removals need a full read"
    );
    assert_eq!(snap.len(), 2);
    assert!(!snap.contains_key(&samples::movie(2).key()));
}

#[tokio::test]
async fn a_title_moved_off_plan_to_watch_forces_a_full_read() {
    let s = setup_with(ReadMode::Delta).await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.seed_watchlist(&samples::movie(2));
    assert_eq!(index(&s.p, Feature::Watchlist).await.len(), 2);
    s.sim.seed_status(&samples::movie(1), ListStatus::Completed);
    let snap = index(&s.p, Feature::Watchlist).await;
    assert_eq!(snap.semantics(), IndexSemantics::Present);
    assert_eq!(snap.len(), 1);
    assert!(snap.contains_key(&samples::movie(2).key()));
}

#[tokio::test]
async fn an_invisible_change_forces_a_full_read() {
    let s = setup_with(ReadMode::Delta).await;
    s.sim.seed_rating(&samples::movie(1), 6);
    s.sim.seed_rating(&samples::movie(2), 8);
    assert_eq!(index(&s.p, Feature::Ratings).await.len(), 2);
    // Un-rating moves `rated_at` but a ratings delta cannot show it.
    let r =
        s.p.remove(
            &cx(),
            Feature::Ratings,
            &[samples::entry(Feature::Ratings, 1)],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let snap = index(&s.p, Feature::Ratings).await;
    assert_eq!(snap.semantics(), IndexSemantics::Present);
    assert_eq!(snap.len(), 1);
}

#[tokio::test]
async fn history_deltas_hold_movie_plays_and_show_changes_read_in_full() {
    let s = setup_with(ReadMode::Delta).await;
    s.sim.seed_play(&samples::movie(1), samples::time(0));
    assert_eq!(
        index(&s.p, Feature::History).await.semantics(),
        IndexSemantics::Present
    );
    s.sim.seed_play(&samples::movie(2), samples::time(60));
    let d = index(&s.p, Feature::History).await;
    assert_eq!(d.semantics(), IndexSemantics::Delta);
    assert!(d.contains_key(&play(2, 60).key()));
    // An episode change could be an un-marked episode: only a full read can tell.
    s.sim
        .seed_episode_play(&samples::show(0), 1, 1, samples::time(120));
    let full = index(&s.p, Feature::History).await;
    assert_eq!(full.semantics(), IndexSemantics::Present);
    assert_eq!(full.len(), 3);
}

// -- SIMKL's library semantics on writes -------------------------------------------------------

#[tokio::test]
async fn history_removal_is_confirmed_only_by_a_reread() {
    let s = setup().await;
    s.sim.seed_play(&samples::movie(1), samples::time(3600));
    s.sim.seed_play(&samples::movie(2), samples::time(3600));

    s.sim.reset_counts();
    let r =
        s.p.remove(&cx(), Feature::History, &[play(1, 3600)])
            .await
            .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(s.sim.requests_to("POST", "/sync/history/remove"), 1);
    assert_eq!(
        s.sim.requests_to("GET", "/sync/all-items/movies"),
        2,
        "one read to plan, one to confirm"
    );
    assert!(s.sim.entry(&samples::movie(1)).is_none());

    // SIMKL answers 201 but keeps the play: not confirmed.
    s.sim.ignore_next_removals(1);
    let r =
        s.p.remove(&cx(), Feature::History, &[play(2, 3600)])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Unconfirmed),
        "{r:?}"
    );
    assert!(s.sim.entry(&samples::movie(2)).is_some());
}

#[tokio::test]
async fn empty_write_bodies_are_accepted_and_confirmed_by_reread() {
    let s = setup().await;
    s.sim.set_empty_write_bodies(true);
    let r = s.p.add(&cx(), Feature::Watchlist, &[wl(1)]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let r =
        s.p.remove(&cx(), Feature::Watchlist, &[wl(1)])
            .await
            .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert!(s.sim.watchlist().is_empty());
}

#[tokio::test]
async fn watchlist_add_never_moves_a_title_off_another_list() {
    let s = setup().await;
    s.sim.seed_play(&samples::movie(1), samples::time(0));
    let r =
        s.p.add(&cx(), Feature::Watchlist, &[wl(1), wl(2)])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Conflict),
        "{r:?}"
    );
    assert_eq!(r.items[1].outcome, Outcome::Confirmed);
    let e = s.sim.entry(&samples::movie(1)).unwrap();
    assert_eq!(e.status, ListStatus::Completed);
    assert_eq!(e.last_watched_at, Some(samples::time(0).unix()));
}

#[tokio::test]
async fn watchlist_remove_leaves_other_lists_and_ratings_alone() {
    let s = setup().await;
    s.sim.seed_play(&samples::movie(1), samples::time(0));
    s.sim.seed_watchlist(&samples::movie(2));
    s.sim.seed_rating(&samples::movie(2), 9);
    s.sim.reset_counts();
    let r =
        s.p.remove(&cx(), Feature::Watchlist, &[wl(1), wl(2)])
            .await
            .unwrap();
    assert_eq!(
        r.items[0].outcome,
        Outcome::AlreadyAbsent,
        "completed is not the watchlist"
    );
    assert_eq!(
        unresolved(&r.items[1].outcome),
        Some(UnresolvedReason::Conflict),
        "{r:?}"
    );
    assert_eq!(s.sim.requests_to("POST", "/sync/history/remove"), 0);
    assert_eq!(s.sim.entry(&samples::movie(2)).unwrap().rating, Some(9));
}

#[tokio::test]
async fn removing_a_rated_movies_play_is_refused() {
    let s = setup().await;
    s.sim.seed_play(&samples::movie(1), samples::time(3600));
    s.sim.seed_rating(&samples::movie(1), 8);
    let r =
        s.p.remove(&cx(), Feature::History, &[play(1, 3600)])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Conflict),
        "{r:?}"
    );
    assert_eq!(s.sim.entry(&samples::movie(1)).unwrap().rating, Some(8));
}

#[tokio::test]
async fn a_second_play_of_a_movie_is_never_written_over_the_first() {
    let s = setup().await;
    s.sim.seed_play(&samples::movie(1), samples::time(0));
    let r =
        s.p.add(&cx(), Feature::History, &[play(1, 86_400)])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Unsupported),
        "{r:?}"
    );
    assert_eq!(s.sim.requests_to("POST", "/sync/history"), 0);
    assert_eq!(
        s.sim.entry(&samples::movie(1)).unwrap().last_watched_at,
        Some(samples::time(0).unix())
    );
}

#[tokio::test]
async fn episode_plays_round_trip_and_keep_the_show() {
    let s = setup().await;
    let e1 = Entry::watch(samples::episode(0, 1, 1), samples::time(100));
    let e2 = Entry::watch(samples::episode(0, 1, 2), samples::time(200));
    let r =
        s.p.add(&cx(), Feature::History, &[e1.clone(), e2.clone()])
            .await
            .unwrap();
    assert_eq!(r.confirmed(), 2, "{r:?}");
    assert_eq!(
        s.sim.requests_to("POST", "/sync/history"),
        1,
        "one show object"
    );
    let snap = index(&s.p, Feature::History).await;
    assert!(
        snap.contains_key(&e1.key()) && snap.contains_key(&e2.key()),
        "{snap:?}"
    );

    let r =
        s.p.remove(&cx(), Feature::History, std::slice::from_ref(&e1))
            .await
            .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let show = s
        .sim
        .entry(&samples::show(0))
        .expect("the show stays in the library");
    assert_eq!(show.episodes.len(), 1);
    let snap = index(&s.p, Feature::History).await;
    assert!(!snap.contains_key(&e1.key()) && snap.contains_key(&e2.key()));
}

/// Every episode of sample show 0 (2 seasons × 5), `i` hours after `samples::time(0)`.
fn all_episodes_of_show_0() -> Vec<Entry> {
    let mut v = Vec::new();
    for s in 1..=2 {
        for e in 1..=5 {
            let i = v.len() as i64;
            v.push(Entry::watch(
                samples::episode(0, s, e),
                samples::time(i * 3600),
            ));
        }
    }
    v
}

#[tokio::test]
async fn a_show_ferry_completes_keeps_every_episode_play() {
    let s = setup().await;
    let eps = all_episodes_of_show_0();
    for e in &eps[..9] {
        let Payload::Watch { watched_at } = e.payload else {
            unreachable!()
        };
        let (season, n) = (e.item.season.unwrap(), e.item.episode.unwrap());
        s.sim
            .seed_episode_play(&samples::show(0), season, n, watched_at);
    }
    // ferry writes the last episode: SIMKL files the show as completed.
    let r = s.p.add(&cx(), Feature::History, &eps[9..]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(
        s.sim.entry(&samples::show(0)).unwrap().status,
        ListStatus::Completed
    );
    // A completed show still lists its episodes: no play drops out of the snapshot
    // (which the engine would read as ten deletions).
    let snap = index(&s.p, Feature::History).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    for e in &eps {
        assert!(snap.contains_key(&e.key()), "{} missing: {snap:?}", e.key());
    }
    // And an add of a play SIMKL holds is recognised, never sent again.
    s.sim.reset_counts();
    let r = s.p.add(&cx(), Feature::History, &eps[..1]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent, "{r:?}");
    assert_eq!(s.sim.requests_to("POST", "/sync/history"), 0);
}

#[tokio::test]
async fn the_simulator_lists_a_finished_shows_episodes_only_when_asked() {
    let sim = SimklSim::start().await;
    for s in 1..=2 {
        for e in 1..=5 {
            sim.seed_episode_play(&samples::show(0), s, e, samples::time(0));
        }
    }
    let raw = HttpClient::builder("simkl", "raw")
        .base_url(sim.uri())
        .bearer(&Secret::new(sim.token()))
        .build()
        .unwrap();
    let c = cx();
    let read = |all: bool| {
        let mut rb = raw
            .get("GET /sync/all-items/shows", "/sync/all-items/shows")
            .query("client_id", sim.client_id())
            .query("extended", "full")
            .query("episode_watched_at", "yes");
        if all {
            rb = rb.query("include_all_episodes", "yes");
        }
        rb.send(&c)
    };
    let row = |v: &Value| v["shows"][0].clone();
    let bare = row(&read(false).await.unwrap().json_value().unwrap());
    assert_eq!(bare["status"], "completed");
    assert_eq!(bare["watched_episodes_count"], 10);
    assert!(bare.get("seasons").is_none(), "{bare}");
    let full = row(&read(true).await.unwrap().json_value().unwrap());
    assert_eq!(full["seasons"].as_array().map(Vec::len), Some(2), "{full}");
}

#[tokio::test]
async fn a_show_row_without_its_episodes_is_partial_and_never_rewritten() {
    let s = setup().await;
    // SIMKL leaves the episode list out: only the count says they exist.
    s.sim.ignore_include_all_episodes(true);
    let eps = all_episodes_of_show_0();
    for e in &eps {
        let Payload::Watch { watched_at } = e.payload else {
            unreachable!()
        };
        let (season, n) = (e.item.season.unwrap(), e.item.episode.unwrap());
        s.sim
            .seed_episode_play(&samples::show(0), season, n, watched_at);
    }
    s.sim.seed_play(&samples::movie(1), samples::time(0));
    let snap = index(&s.p, Feature::History).await;
    match snap.completeness() {
        Completeness::Partial { reason } => assert!(reason.contains("list none"), "{reason}"),
        c => panic!("plays SIMKL did not list must not read as absent, got {c:?}"),
    }
    assert!(snap.contains_key(&play(1, 0).key()), "the rest is read");
    // An add or removal of one of those plays cannot be planned: nothing is sent.
    s.sim.reset_counts();
    let r = s.p.add(&cx(), Feature::History, &eps[..1]).await.unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::PartialRead),
        "{r:?}"
    );
    let r =
        s.p.remove(&cx(), Feature::History, &eps[1..2])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::PartialRead),
        "{r:?}"
    );
    assert_eq!(s.sim.requests_to("POST", "/sync/history"), 0);
    assert_eq!(s.sim.requests_to("POST", "/sync/history/remove"), 0);
    assert_eq!(s.sim.entry(&samples::show(0)).unwrap().episodes.len(), 10);
}

#[tokio::test]
async fn adds_are_confirmed_by_a_date_from_read_not_a_full_one() {
    let s = setup().await;
    s.sim.seed_play(&samples::movie(2), samples::time(0));
    // The library is read in full once (three catalogs) to plan; the writes after it
    // plan against that read (other titles), and none is confirmed by a full read.
    for (feature, entry, full) in [
        (Feature::History, play(1, 3600), 3),
        (Feature::Watchlist, wl(3), 0),
        (
            Feature::Ratings,
            Entry::rating(samples::movie(4), Rating::new(7).unwrap(), None),
            0,
        ),
    ] {
        s.sim.reset_counts();
        let r = s.p.add(&cx(), feature, &[entry]).await.unwrap();
        assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{feature}: {r:?}");
        assert_eq!(
            s.sim.full_list_reads(),
            full,
            "{feature}: {:?}",
            s.sim.routes()
        );
        assert_eq!(s.sim.requests("/sync/activities"), 1, "{feature}: the mark");
    }
    // A removal is still confirmed by a full read: `date_from` never shows what left.
    s.sim.reset_counts();
    let r =
        s.p.remove(&cx(), Feature::History, &[play(2, 0)])
            .await
            .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(s.sim.full_list_reads(), 3, "planned on the last read");
}

#[tokio::test]
async fn a_back_dated_add_the_delta_misses_is_confirmed_by_a_full_read() {
    let s = setup().await;
    // Should SIMKL's `date_from` look at watch and rating dates, a back-dated write is
    // not in the delta: the confirmation falls back to a full read, never to "unconfirmed".
    s.sim.date_from_on_event_dates(true);
    s.sim.advance(400 * 86_400);
    let rating = Entry::rating(
        samples::movie(4),
        Rating::new(7).unwrap(),
        Some(samples::time(0)),
    );
    // History plans on a library read (three catalogs) and confirms with a full one;
    // ratings plan on that same library read.
    for (feature, entry, full) in [
        (Feature::History, play(1, 0), 6),
        (Feature::Ratings, rating, 3),
    ] {
        s.sim.reset_counts();
        let r = s.p.add(&cx(), feature, &[entry]).await.unwrap();
        assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{feature}: {r:?}");
        assert_eq!(
            s.sim.full_list_reads(),
            full,
            "{feature}: {:?}",
            s.sim.routes()
        );
    }
    // A title SIMKL silently ignored is still not confirmed by either read.
    s.sim.set_empty_write_bodies(true);
    let r =
        s.p.add(&cx(), Feature::Watchlist, &[wl(500)])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Unconfirmed),
        "{r:?}"
    );
}

#[tokio::test]
async fn anime_reads_as_shows_with_their_anime_ids() {
    let s = setup().await;
    let anime = ferry_testkit::sim::simkl::anime_item(0);
    s.sim.seed_watchlist(&anime);
    let snap = index(&s.p, Feature::Watchlist).await;
    assert_eq!(snap.len(), 1);
    let e = snap.entries().next().unwrap();
    assert_eq!(e.item.kind, ferry_core::MediaType::Show);
    assert_eq!(e.item.ids.get(ferry_core::IdKind::Mal), Some("52000"));
}

#[tokio::test]
async fn titles_simkl_does_not_know_are_unresolved_not_found() {
    let s = setup().await;
    let r =
        s.p.add(&cx(), Feature::Watchlist, &[wl(500), wl(1)])
            .await
            .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::NotFound),
        "{r:?}"
    );
    assert_eq!(r.items[1].outcome, Outcome::Confirmed);
}

#[tokio::test]
async fn ratings_update_and_report_each_item() {
    let s = setup().await;
    let seven = Entry::rating(samples::movie(1), Rating::new(7).unwrap(), None);
    let nine = Entry::rating(samples::movie(1), Rating::new(9).unwrap(), None);
    assert_eq!(
        s.p.add(&cx(), Feature::Ratings, std::slice::from_ref(&seven))
            .await
            .unwrap()
            .confirmed(),
        1
    );
    let r = s.p.add(&cx(), Feature::Ratings, &[seven]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent);
    let r = s.p.add(&cx(), Feature::Ratings, &[nine]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(s.sim.entry(&samples::movie(1)).unwrap().rating, Some(9));
}

// -- activities, limits, faults, auth ------------------------------------------------------------

#[tokio::test]
async fn activities_move_forward_on_every_change() {
    let s = setup().await;
    let mut last: Option<Timestamp> = None;
    for n in 1..=3 {
        s.p.add(&cx(), Feature::Watchlist, &[wl(n)]).await.unwrap();
        let a = s.p.activities(&cx()).await.unwrap();
        let t = Timestamp::parse(a.get(Feature::Watchlist).unwrap()).unwrap();
        if let Some(prev) = last {
            assert!(t > prev, "{t} after {prev}");
        }
        last = Some(t);
    }
}

#[tokio::test]
async fn a_429_is_honoured_with_its_retry_after() {
    let s = setup().await;
    s.sim.seed_rating(&samples::movie(1), 5);
    s.sim.inject(
        FaultRule::new(Fault::RateLimited {
            retry_after_secs: 7,
        })
        .on("/sync/ratings/movies"),
    );
    s.clock.clear_sleeps();
    let snap = index(&s.p, Feature::Ratings).await;
    assert_eq!(snap.len(), 1);
    assert!(
        s.clock
            .sleeps()
            .iter()
            .any(|d| *d >= Duration::from_secs(7)),
        "waited {:?}",
        s.clock.sleeps()
    );
    assert_eq!(s.sim.requests_under("/sync/ratings/movies"), 2);
}

#[tokio::test]
async fn writes_are_spaced_by_the_declared_write_limit() {
    let s = setup().await;
    // 101 ratings: two POSTs back to back, nothing read between them.
    let entries: Vec<Entry> = (0..101)
        .map(|n| Entry::rating(samples::movie(n), Rating::new(5).unwrap(), None))
        .collect();
    s.clock.clear_sleeps();
    let r = s.p.add(&cx(), Feature::Ratings, &entries).await.unwrap();
    assert_eq!(s.sim.requests_to("POST", "/sync/ratings"), 2);
    assert_eq!(r.len(), 101);
    assert_eq!(r.confirmed(), 64, "the catalog holds 64 sample movies");
    assert_eq!(
        r.items
            .iter()
            .filter(|i| unresolved(&i.outcome) == Some(UnresolvedReason::NotFound))
            .count(),
        37
    );
    assert!(
        s.clock.sleeps().contains(&Duration::from_secs(2)),
        "the second POST waits two seconds for its slot: {:?}",
        s.clock.sleeps()
    );
}

#[tokio::test]
async fn the_simulator_answers_429_past_its_own_limit() {
    let sim = SimklSim::start().await;
    sim.enforce_rate_limit(2, 1, Duration::from_secs(60), 3);
    let raw = HttpClient::builder("simkl", "raw")
        .base_url(sim.uri())
        .bearer(&Secret::new(sim.token()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let c = cx();
    let get = || {
        raw.get("GET /sync/activities", "/sync/activities")
            .query("client_id", sim.client_id())
            .send(&c)
    };
    get().await.unwrap();
    get().await.unwrap();
    let err = get().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn an_expired_token_is_an_auth_error_everywhere() {
    let s = setup().await;
    s.sim.expire_token();
    let err =
        s.p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let err =
        s.p.add(&cx(), Feature::Watchlist, &[wl(1)])
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let h = s.p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::AuthFailed, "{h:?}");
    assert!(!format!("{err} {err:?} {h:?}").contains(&s.sim.token()));
}

#[tokio::test]
async fn requests_without_the_client_id_are_refused() {
    let sim = SimklSim::start().await;
    let raw = HttpClient::builder("simkl", "raw")
        .base_url(sim.uri())
        .bearer(&Secret::new(sim.token()))
        .build()
        .unwrap();
    let err = raw
        .get("GET /sync/activities", "/sync/activities")
        .send(&cx())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn health_is_one_cheap_request() {
    let s = setup().await;
    let h = s.p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Ok, "{h:?}");
    assert!(h.latency_ms.is_some());
    assert_eq!(s.sim.total_requests(), 1);
    assert_eq!(s.sim.requests("/sync/activities"), 1);
}

#[tokio::test]
async fn the_pin_flow_yields_the_access_token() {
    let sim = SimklSim::start().await;
    let flow = PinFlow::new("simkl-pin", Some(&sim.uri()), &Secret::new(sim.client_id())).unwrap();
    let code = flow.start(&cx()).await.unwrap();
    assert_eq!(code.verification_url, "https://simkl.com/pin");
    assert_eq!(flow.poll(&cx(), &code).await.unwrap(), None, "pending");
    assert!(sim.approve_pin(&code.user_code));
    let token = flow.wait(&cx(), &code).await.unwrap();
    assert_eq!(token.expose(), sim.token());
}

#[tokio::test]
async fn the_simulator_files_a_rated_title_like_simkl() {
    let sim = SimklSim::start().await;
    sim.seed_rating(&samples::movie(1), 8);
    let e = sim.entry(&samples::movie(1)).unwrap();
    assert_eq!(e.status, ListStatus::Completed);
    let a: Value = sim.activities();
    assert!(a["movies"]["rated_at"].is_string());
    assert!(
        a["movies"].get("watching").is_none(),
        "movies have no watching bucket"
    );
}

// -- cost --------------------------------------------------------------------------------------

/// A first sync of 250 titles, written as the engine writes (batches of the declared
/// batch size, each its own `add` call), reads the library in full once: each later
/// batch plans on that read, and adds are confirmed by `date_from` reads of what changed.
#[tokio::test]
async fn a_first_sync_of_250_titles_reads_the_library_once() {
    const N: u32 = 250;
    let sim = SimklSim::builder().movies(N).start().await;
    let p = build(
        &sim,
        ReadMode::Full,
        Arc::new(ManualClock::new(1_750_000_000)),
    );
    let batches = (N as usize).div_ceil(simkl::BATCH_SIZE) as u64;
    for f in [Feature::Watchlist, Feature::History] {
        assert!(index(&p, f).await.is_empty());
        sim.reset_counts();
        let entries: Vec<Entry> = (0..N)
            .map(|n| match f {
                Feature::History => play(n, 3600),
                _ => wl(n),
            })
            .collect();
        for batch in entries.chunks(simkl::BATCH_SIZE) {
            let r = p.add(&cx(), f, batch).await.unwrap();
            assert_eq!(r.confirmed(), batch.len(), "{f}: {r:?}");
        }
        // The three catalogs read whole once to plan, and once to confirm the very first
        // write (an account without activity stamps has no `date_from` to read from);
        // per batch: the mark, the write, a `date_from` read of three catalogs.
        let full = sim.full_list_reads();
        assert!(
            full <= 6,
            "{f}: {full} full catalog reads: {:?}",
            sim.routes()
        );
        let spent = sim.total_requests();
        assert!(
            spent <= 3 + 5 * batches,
            "{f}: {spent} requests for {N} titles: {:?}",
            sim.routes()
        );
        assert_eq!(index(&p, f).await.len(), N as usize);
    }
}

//! MDBList-specific behaviour against the simulator: paging checked for completeness,
//! broken answers, play-exact history removal, confirmation by re-read, limits and auth.

#[path = "behaviour/wire.rs"]
mod wire;

use std::sync::Arc;
use std::time::Duration;

use ferry_core::{
    Completeness, Context, Entry, ErrorKind, Feature, HealthStatus, IdKind, Ids, IndexSemantics,
    InventoryOps, Item, Outcome, ProviderConfig, ProviderKind, Secret, Snapshot, Timestamp,
    UnresolvedReason,
};
use ferry_http::ManualClock;
use ferry_testkit::samples;
use ferry_testkit::sim::knobs::{Fault, FaultRule, RowDamage};
use ferry_testkit::sim::mdblist::MdblistSim;
use mdblist::{MdblistConfig, MdblistOptions, MdblistProvider};

struct Setup {
    sim: MdblistSim,
    p: MdblistProvider,
    clock: Arc<ManualClock>,
}

async fn setup(page_size: Option<u32>) -> Setup {
    let sim = MdblistSim::start().await;
    let clock = Arc::new(ManualClock::new(1_750_000_000));
    let config = MdblistConfig {
        api_key: Secret::new(sim.api_key()),
        base_url: Some(sim.uri()),
        page_size,
    };
    let options = MdblistOptions {
        clock: Some(clock.clone()),
        seed: Some(5),
        ..MdblistOptions::default()
    };
    let p = MdblistProvider::new("mdblist-test", config, options).expect("build");
    Setup { sim, p, clock }
}

fn cx() -> Context {
    Context::default()
}

async fn index(p: &MdblistProvider, f: Feature) -> Snapshot {
    p.build_index(&cx(), f).await.expect("build_index")
}

fn partial_reason(s: &Snapshot) -> String {
    match s.completeness() {
        Completeness::Partial { reason } => reason.clone(),
        Completeness::Complete => panic!(
            "expected a partial snapshot, got a complete one of {}",
            s.len()
        ),
    }
}

fn unresolved(o: &Outcome) -> Option<UnresolvedReason> {
    match o {
        Outcome::Unresolved { reason, .. } => Some(*reason),
        _ => None,
    }
}

// -- configuration and rows ------------------------------------------------------------------

#[test]
fn config_rejects_unknown_keys_and_bad_page_sizes() {
    let c = ProviderConfig::new("m", "mdblist")
        .set("api_key", "key-123456")
        .set("apikey", "typo");
    assert_eq!(
        c.parse::<MdblistConfig>().unwrap_err().field.as_deref(),
        Some("apikey")
    );
    let cfg = ProviderConfig::new("m", "mdblist")
        .set("api_key", "key-123456")
        .set("page_size", 5000)
        .parse::<MdblistConfig>()
        .unwrap();
    let e = MdblistProvider::new("m", cfg, MdblistOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("page_size"), "{e}");
}

#[test]
fn declared_capabilities() {
    let caps = MdblistProvider::capabilities();
    assert!(caps.activities);
    assert_eq!(caps.rate_limits.len(), 2);
    for f in [Feature::Watchlist, Feature::Ratings, Feature::History] {
        assert_eq!(caps.get(f).unwrap().semantics, IndexSemantics::Present);
    }
    assert!(!caps.supports(Feature::Progress));
}

#[tokio::test]
async fn flat_watchlist_ids_read_id_as_tmdb() {
    let s = setup(None).await;
    s.sim.seed_watchlist(&samples::movie(3));
    let snap = index(&s.p, Feature::Watchlist).await;
    let (_, e) = snap.iter().next().expect("one title");
    assert_eq!(e.item.ids.get(IdKind::Tmdb), Some("900003"));
    assert_eq!(e.item.ids.get(IdKind::Imdb), Some("tt9000003"));
    assert_eq!(e.item.year, samples::movie(3).year);
}

#[tokio::test]
async fn a_null_rating_is_no_rating_and_a_garbled_one_is_a_bad_row() {
    let s = setup(None).await;
    for n in 1..=3 {
        s.sim.seed_rating(&samples::movie(n), 6);
    }
    let damage = |value| {
        FaultRule::new(Fault::UndecodableRow(RowDamage::Set {
            pointer: "/rating".into(),
            value,
        }))
        .on("/sync/ratings")
    };
    s.sim.inject(damage(serde_json::Value::Null));
    let snap = index(&s.p, Feature::Ratings).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 2, "MDBList's null rating is a removed one");
    s.sim.inject(damage(serde_json::json!("great")));
    let snap = index(&s.p, Feature::Ratings).await;
    assert_eq!(snap.len(), 2);
    assert!(partial_reason(&snap).contains("undecodable_row"));
}

#[tokio::test]
async fn an_episode_play_reads_its_show_beside_or_inside_the_episode() {
    let s = setup(None).await;
    let ep = samples::episode(1, 1, 2);
    s.sim.seed_play(&ep, samples::time(0));
    for inside in [false, true] {
        s.sim.set_show_inside_episode(inside);
        let snap = index(&s.p, Feature::History).await;
        assert!(snap.is_complete(), "{:?}", snap.completeness());
        let (_, e) = snap.iter().next().expect("one play");
        assert_eq!((e.item.season, e.item.episode), (Some(1), Some(2)));
        assert_eq!(
            e.item.show_ids.get(IdKind::Tmdb),
            ep.show_ids.get(IdKind::Tmdb)
        );
        assert_eq!(e.item.show_title, ep.show_title);
        assert_eq!(e.item.ids.get(IdKind::Tvdb), ep.ids.get(IdKind::Tvdb));
    }
}

// -- paging ----------------------------------------------------------------------------------

#[tokio::test]
async fn paging_reads_every_page() {
    let s = setup(Some(5)).await;
    for n in 0..12 {
        s.sim.seed_watchlist(&samples::movie(n));
    }
    s.sim.seed_watchlist(&samples::show(1));
    let snap = index(&s.p, Feature::Watchlist).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 13);
    assert_eq!(s.sim.requests("/watchlist/items"), 3);
}

// A truncated page (half its rows, the totals unchanged) is read around, the next offset
// following the rows received, but a short page before the total is never proof: the
// read is partial (the kit's one rule; the contract suite attacks it).
#[tokio::test]
async fn a_truncated_page_is_read_around_but_never_complete() {
    let s = setup(Some(5)).await;
    for n in 0..12 {
        s.sim.seed_watchlist(&samples::movie(n));
    }
    s.sim.truncate_next("/watchlist/items");
    let snap = index(&s.p, Feature::Watchlist).await;
    assert_eq!(snap.len(), 12, "the next offset follows the rows received");
    assert!(
        partial_reason(&snap).contains("short page"),
        "{:?}",
        snap.completeness()
    );
}

// The declared totals decide where the list ends, not `has_more`: a lie does not cut the
// read short.
#[tokio::test]
async fn a_lying_has_more_does_not_end_the_read_early() {
    let s = setup(Some(5)).await;
    for n in 0..12 {
        s.sim
            .seed_play(&samples::movie(n), samples::time(n as i64 * 3600));
    }
    s.sim.lie_has_more_next("/sync/watched", 1);
    let snap = index(&s.p, Feature::History).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 12);
}

// Without `total_*` counts, `has_more: false` is the end of the list; a full page that
// claims it is checked with one more request, so a lie there loses no row.
#[tokio::test]
async fn without_totals_has_more_ends_the_read_and_a_full_last_page_is_verified() {
    let s = setup(Some(5)).await;
    s.sim.set_declare_totals(false);
    for n in 0..10 {
        s.sim.seed_rating(&samples::movie(n), 8);
    }
    // Exactly two full pages: the empty third page confirms the end.
    let snap = index(&s.p, Feature::Ratings).await;
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 10);
    assert_eq!(s.sim.requests("/sync/ratings"), 3);
    // A lie on the first (full) page: the verifying request reads on.
    s.sim.lie_has_more_next("/sync/ratings", 1);
    let snap = index(&s.p, Feature::Ratings).await;
    assert_eq!(snap.len(), 10, "{:?}", snap.completeness());
    // A page without its pagination block declares nothing: never complete.
    s.sim
        .inject(FaultRule::new(Fault::MissingTotal).on("/sync/ratings"));
    let snap = index(&s.p, Feature::Ratings).await;
    assert!(
        partial_reason(&snap).contains("missing"),
        "{:?}",
        snap.completeness()
    );
}

#[tokio::test]
async fn malformed_json_is_an_error_never_an_empty_snapshot() {
    let s = setup(None).await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.malformed_next("/watchlist/items");
    let err =
        s.p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
}

#[tokio::test]
async fn an_empty_body_is_an_error_never_an_empty_snapshot() {
    let s = setup(None).await;
    s.sim.seed_rating(&samples::movie(1), 4);
    s.sim.empty_body_next("/sync/ratings", 1);
    let err = s.p.build_index(&cx(), Feature::Ratings).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");
    assert_eq!(index(&s.p, Feature::Ratings).await.len(), 1);
}

#[tokio::test]
async fn a_server_error_mid_read_is_partial_with_the_rows_read() {
    let s = setup(Some(2)).await;
    for n in 0..6 {
        s.sim.seed_watchlist(&samples::movie(n));
    }
    s.sim.inject(
        FaultRule::new(Fault::Status(500))
            .on("/watchlist/items")
            .after(1)
            .times(10),
    );
    let snap = index(&s.p, Feature::Watchlist).await;
    assert_eq!(snap.len(), 2, "the first page's rows are kept");
    assert!(
        partial_reason(&snap).contains("failed"),
        "{:?}",
        snap.completeness()
    );
}

// -- writes ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_history_removal_removes_exactly_that_play() {
    let s = setup(None).await;
    let m = samples::movie(1);
    s.sim.seed_play(&m, samples::time(0));
    s.sim.seed_play(&m, samples::time(86_400));
    let r =
        s.p.remove(
            &cx(),
            Feature::History,
            &[Entry::watch(m.clone(), samples::time(20))],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    let left = s.sim.plays_of(&m);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].watched_at, samples::time(86_400).unix());
    assert_eq!(s.sim.requests_to("POST", "/sync/watched/plays/remove"), 1);
}

#[tokio::test]
async fn a_removal_is_unconfirmed_when_the_reread_is_partial() {
    let s = setup(None).await;
    for n in 1..=3 {
        s.sim.seed_play(&samples::movie(n), samples::time(0));
    }
    // The read that plans passes; the removal's answer is cut off, so only a re-read can
    // confirm it, and that comes back truncated.
    s.sim.inject(
        FaultRule::new(Fault::Malformed)
            .on("/sync/watched/plays/remove")
            .method("POST"),
    );
    s.sim.inject(
        FaultRule::new(Fault::Truncate)
            .on("/sync/watched")
            .method("GET")
            .after(1),
    );
    let r =
        s.p.remove(
            &cx(),
            Feature::History,
            &[Entry::watch(samples::movie(1), samples::time(0))],
        )
        .await
        .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Unconfirmed),
        "{r:?}"
    );
    // The simulator answered with the cut-off body instead of removing it.
    assert_eq!(s.sim.plays_of(&samples::movie(1)).len(), 1);
}

#[tokio::test]
async fn plays_are_never_duplicated_and_rewatches_are_kept() {
    let s = setup(None).await;
    let m = samples::movie(2);
    let first = Entry::watch(m.clone(), samples::time(0));
    let again = Entry::watch(m.clone(), samples::time(30));
    let rewatch = Entry::watch(m.clone(), samples::time(7 * 86_400));
    let r =
        s.p.add(&cx(), Feature::History, &[first, again])
            .await
            .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(
        r.items[1].outcome,
        Outcome::AlreadyPresent,
        "30 s apart is the same play"
    );
    let r = s.p.add(&cx(), Feature::History, &[rewatch]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(s.sim.plays_of(&m).len(), 2);
}

#[tokio::test]
async fn an_add_after_an_incomplete_history_read_posts_nothing() {
    let s = setup(Some(5)).await;
    for n in 0..12 {
        s.sim
            .seed_play(&samples::movie(n), samples::time(n as i64 * 3600));
    }
    let listed = Entry::watch(samples::movie(0), samples::time(0));
    // On the last page, which keeps failing.
    let hidden = Entry::watch(samples::movie(11), samples::time(11 * 3600));
    let new = Entry::watch(samples::movie(20), samples::time(0));
    s.sim.inject(
        FaultRule::new(Fault::Status(500))
            .on("/sync/watched")
            .method("GET")
            .after(2)
            .times(10),
    );
    let r =
        s.p.add(
            &cx(),
            Feature::History,
            &[listed.clone(), hidden.clone(), new.clone()],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent, "{r:?}");
    for i in [1, 2] {
        assert_eq!(
            unresolved(&r.items[i].outcome),
            Some(UnresolvedReason::PartialRead),
            "a play the read may have missed is never posted: {r:?}"
        );
    }
    assert_eq!(s.sim.requests_to("POST", "/sync/watched"), 0);
    assert_eq!(s.sim.plays_of(&samples::movie(11)).len(), 1, "no duplicate");
    assert!(s.sim.plays_of(&samples::movie(20)).is_empty());

    // Read whole again, the new play is written and the listed one is not.
    s.sim.clear_faults();
    let r =
        s.p.add(
            &cx(),
            Feature::History,
            &[
                Entry::watch(samples::movie(11), samples::time(11 * 3600)),
                Entry::watch(samples::movie(20), samples::time(0)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyPresent, "{r:?}");
    assert_eq!(r.items[1].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(s.sim.plays_of(&samples::movie(11)).len(), 1);
}

#[tokio::test]
async fn episode_plays_round_trip() {
    let s = setup(None).await;
    let e1 = Entry::watch(samples::episode(1, 1, 2), samples::time(100));
    let e2 = Entry::watch(samples::episode(1, 2, 1), samples::time(200));
    let r =
        s.p.add(&cx(), Feature::History, &[e1.clone(), e2.clone()])
            .await
            .unwrap();
    assert_eq!(r.confirmed(), 2, "{r:?}");
    let snap = index(&s.p, Feature::History).await;
    assert!(
        snap.contains_key(&e1.key()) && snap.contains_key(&e2.key()),
        "{snap:?}"
    );
    let r =
        s.p.remove(&cx(), Feature::History, std::slice::from_ref(&e2))
            .await
            .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(s.sim.plays().len(), 1);
}

#[tokio::test]
async fn watchlist_writes_need_an_imdb_or_tmdb_id() {
    let s = setup(None).await;
    let tvdb_only = Item::movie("Only TVDB", 2001, Ids::new().with(IdKind::Tvdb, "4242"));
    let r =
        s.p.add(
            &cx(),
            Feature::Watchlist,
            &[
                Entry::watchlist(tvdb_only),
                Entry::watchlist(samples::movie(3)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Unsupported),
        "{r:?}"
    );
    assert_eq!(r.items[1].outcome, Outcome::Confirmed);
    assert_eq!(s.sim.watchlist(), vec![900_003]);
}

#[tokio::test]
async fn titles_mdblist_does_not_know_are_unresolved_not_found() {
    let s = setup(None).await;
    let r =
        s.p.add(
            &cx(),
            Feature::Watchlist,
            &[
                Entry::watchlist(samples::movie(900)),
                Entry::watchlist(samples::movie(1)),
            ],
        )
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
async fn a_rating_for_a_title_mdblist_does_not_know_is_unresolved_not_found() {
    let s = setup(None).await;
    // The `/sync` routes echo what they did not find with its nested `ids`.
    let r =
        s.p.add(
            &cx(),
            Feature::Ratings,
            &[
                samples::entry(Feature::Ratings, 900),
                samples::entry(Feature::Ratings, 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::NotFound),
        "{r:?}"
    );
    assert_eq!(r.items[1].outcome, Outcome::Confirmed, "{r:?}");
}

// A play removed elsewhere since the last read: MDBList echoes its id as not found, and
// the removal is already done without touching the title's other plays.
#[tokio::test]
async fn a_play_removed_elsewhere_is_already_absent() {
    let s = setup(None).await;
    let m = samples::movie(5);
    s.sim.seed_play(&m, samples::time(0));
    s.sim.seed_play(&m, samples::time(86_400));
    index(&s.p, Feature::History).await;
    let elsewhere = MdblistProvider::new(
        "mdblist-elsewhere",
        MdblistConfig {
            api_key: Secret::new(s.sim.api_key()),
            base_url: Some(s.sim.uri()),
            page_size: None,
        },
        MdblistOptions {
            clock: Some(s.clock.clone()),
            ..MdblistOptions::default()
        },
    )
    .expect("build");
    let play = [Entry::watch(m.clone(), samples::time(0))];
    let r = elsewhere
        .remove(&cx(), Feature::History, &play)
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    let r = s.p.remove(&cx(), Feature::History, &play).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyAbsent, "{r:?}");
    assert_eq!(s.sim.plays_of(&m).len(), 1, "the rewatch stays");
    assert_eq!(s.sim.requests_to("POST", "/sync/watched/plays/remove"), 2);
}

#[tokio::test]
async fn ratings_changes_are_updates() {
    let s = setup(None).await;
    s.sim.seed_rating(&samples::movie(4), 3);
    let r =
        s.p.add(
            &cx(),
            Feature::Ratings,
            &[samples::entry(Feature::Ratings, 4)],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert_eq!(s.sim.ratings().get(&900_004), Some(&5));
    let r =
        s.p.remove(
            &cx(),
            Feature::Ratings,
            &[samples::entry(Feature::Ratings, 4)],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    assert!(s.sim.ratings().is_empty());
}

// -- activities, limits, auth --------------------------------------------------------------------

#[tokio::test]
async fn activities_follow_last_activities_and_the_journal_records_changes() {
    let s = setup(None).await;
    let before = s.p.activities(&cx()).await.unwrap();
    assert!(
        before.get(Feature::Watchlist).is_none(),
        "nothing happened yet"
    );
    s.p.add(
        &cx(),
        Feature::Watchlist,
        &[Entry::watchlist(samples::movie(1))],
    )
    .await
    .unwrap();
    let a1 = s.p.activities(&cx()).await.unwrap();
    s.p.add(
        &cx(),
        Feature::History,
        &[Entry::watch(samples::movie(1), samples::time(0))],
    )
    .await
    .unwrap();
    let a2 = s.p.activities(&cx()).await.unwrap();
    let t = |a: &ferry_core::Activities, f| Timestamp::parse(a.get(f).unwrap()).unwrap();
    assert_eq!(t(&a1, Feature::Watchlist), t(&a2, Feature::Watchlist));
    assert!(t(&a2, Feature::History) > t(&a1, Feature::Watchlist));
    let journal = s.sim.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0]["category"], "watchlist");
    assert_eq!(journal[1]["category"], "watched");
}

#[tokio::test]
async fn a_429_is_honoured_with_its_retry_after() {
    let s = setup(None).await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.rate_limit_next(4, 1);
    s.clock.clear_sleeps();
    assert_eq!(index(&s.p, Feature::Watchlist).await.len(), 1);
    assert!(
        s.clock
            .sleeps()
            .iter()
            .any(|d| *d >= Duration::from_secs(4)),
        "{:?}",
        s.clock.sleeps()
    );
    assert_eq!(s.sim.requests("/watchlist/items"), 2);
}

#[tokio::test]
async fn an_exhausted_daily_quota_is_rate_limited_never_empty() {
    let s = setup(None).await;
    s.sim.seed_watchlist(&samples::movie(1));
    s.sim.set_quota(50, 50);
    let err =
        s.p.build_index(&cx(), Feature::Watchlist)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert!(err.retry_after().is_some());
    let h = s.p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::RateLimited, "{h:?}");
}

#[tokio::test]
async fn a_revoked_key_is_an_auth_error() {
    let s = setup(None).await;
    let old = s.sim.api_key();
    s.sim.set_api_key("another-key-entirely");
    let err = s.p.build_index(&cx(), Feature::Ratings).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let err2 =
        s.p.add(
            &cx(),
            Feature::Ratings,
            &[samples::entry(Feature::Ratings, 1)],
        )
        .await
        .unwrap_err();
    assert_eq!(err2.kind(), ErrorKind::Auth);
    let h = s.p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::AuthFailed);
    assert!(!format!("{err} {err:?} {err2:?} {h:?}").contains(&old));
}

#[tokio::test]
async fn health_is_one_request_and_reports_the_quota() {
    let s = setup(None).await;
    let h = s.p.health(&cx()).await;
    assert_eq!(h.status, HealthStatus::Ok, "{h:?}");
    assert!(h.latency_ms.is_some());
    let rate = h.rate.expect("rate headers");
    assert_eq!(rate.limit, Some(100_000));
    assert_eq!(s.sim.total_requests(), 1);
    assert_eq!(s.sim.requests("/user"), 1);
}

// -- cost --------------------------------------------------------------------------------------

/// A first sync of 250 titles, written as the engine writes (batches of the declared
/// batch size, each its own `add` call), costs about N / page + N / batch requests: the
/// list is read once, not before or after every batch.
#[tokio::test]
async fn a_first_sync_of_250_titles_costs_reads_per_page_and_writes_per_batch() {
    const N: u32 = 250;
    const PAGE: u32 = 100;
    let sim = MdblistSim::builder().movies(N).start().await;
    let config = MdblistConfig {
        api_key: Secret::new(sim.api_key()),
        base_url: Some(sim.uri()),
        page_size: Some(PAGE),
    };
    let options = MdblistOptions {
        clock: Some(Arc::new(ManualClock::new(1_750_000_000))),
        ..MdblistOptions::default()
    };
    let p = MdblistProvider::new("mdblist-cost", config, options).expect("build");
    let bound = (N / PAGE + 1) as u64 + (N as u64).div_ceil(mdblist::BATCH_SIZE as u64) + 1;
    for f in [Feature::Watchlist, Feature::History] {
        // What the engine does: read the feature, then write it batch by batch.
        assert!(index(&p, f).await.is_empty());
        sim.reset_counts();
        let entries: Vec<Entry> = (0..N)
            .map(|n| match f {
                Feature::History => Entry::watch(samples::movie(n), samples::time(n as i64)),
                _ => Entry::watchlist(samples::movie(n)),
            })
            .collect();
        for batch in entries.chunks(mdblist::BATCH_SIZE) {
            let r = p.add(&cx(), f, batch).await.unwrap();
            assert_eq!(r.confirmed(), batch.len(), "{f}: {r:?}");
        }
        let spent = sim.total_requests();
        assert!(
            spent <= bound,
            "{f}: {spent} requests for {N} titles, more than {bound}: {:?}",
            sim.routes()
        );
        let snap = index(&p, f).await;
        assert!(snap.is_complete(), "{:?}", snap.completeness());
        assert_eq!(snap.len(), N as usize);
    }
}

/// A write whose answer is cut off and whose confirming re-read fails reports each entry
/// unconfirmed: the call still answers, nothing is claimed either way.
#[tokio::test]
async fn a_failed_confirming_reread_leaves_the_write_unconfirmed() {
    let s = setup(None).await;
    index(&s.p, Feature::Watchlist).await;
    s.sim
        .inject(FaultRule::new(Fault::Malformed).on("/watchlist/items/add"));
    s.sim.inject(
        FaultRule::new(Fault::Status(500))
            .on("/watchlist/items")
            .method("GET")
            .times(20),
    );
    let r =
        s.p.add(
            &cx(),
            Feature::Watchlist,
            &[Entry::watchlist(samples::movie(2))],
        )
        .await
        .unwrap();
    assert_eq!(
        unresolved(&r.items[0].outcome),
        Some(UnresolvedReason::Unconfirmed),
        "{r:?}"
    );
}

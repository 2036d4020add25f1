//! Writes: per-item confirmation, account limits (420), rate limits (429), conflicts and
//! locked accounts, and the plays Trakt itself would duplicate.

mod common;

use std::time::Duration;

use ferry_core::{
    Entry, ErrorKind, Feature, InventoryOps, Outcome, Payload, Playlist, Rating, Timestamp,
    UnresolvedReason,
};
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::{Fault, FaultRule, TraktLimits};

use common::{cx, rig, sim};

fn wl(n: u32) -> Entry {
    Entry::watchlist(samples::movie(n))
}

fn reason(o: &Outcome) -> Option<UnresolvedReason> {
    match o {
        Outcome::Unresolved { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[tokio::test]
async fn a_full_watchlist_leaves_exactly_the_overflow_unresolved() {
    let sim = sim().await;
    sim.seed_watchlist(&(0..248).map(samples::movie).collect::<Vec<_>>());
    let r = rig(&sim);
    let entries = [wl(0), wl(300), wl(301), wl(302), wl(303)];
    let report = r
        .provider
        .add(&cx(), Feature::Watchlist, &entries)
        .await
        .unwrap();
    let got: Vec<_> = report.items.iter().map(|i| i.outcome.clone()).collect();
    assert_eq!(got[0], Outcome::AlreadyPresent);
    assert_eq!(got[1], Outcome::Confirmed);
    assert_eq!(got[2], Outcome::Confirmed);
    assert_eq!(reason(&got[3]), Some(UnresolvedReason::AccountLimit));
    assert_eq!(reason(&got[4]), Some(UnresolvedReason::AccountLimit));
    assert_eq!(sim.watchlist().len(), 250);
    assert_eq!(sim.request_count("POST", "/sync/watchlist"), 1);
}

#[tokio::test]
async fn a_420_with_a_stale_limit_is_reread_and_only_the_overflow_is_refused() {
    let sim = sim().await;
    sim.seed_watchlist(&(0..247).map(samples::movie).collect::<Vec<_>>());
    let r = rig(&sim);
    // The provider learns the limit (250) from the health probe...
    r.provider.health(&cx()).await;
    // ...then the account shrinks to 249.
    sim.set_limits(TraktLimits {
        watchlist_items: 249,
        ..TraktLimits::FREE
    });
    let entries = [wl(400), wl(401), wl(402)];
    let report = r
        .provider
        .add(&cx(), Feature::Watchlist, &entries)
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert_eq!(report.items[1].outcome, Outcome::Confirmed);
    assert_eq!(
        reason(&report.items[2].outcome),
        Some(UnresolvedReason::AccountLimit)
    );
    // One refused request, then the batch cut to fit.
    assert_eq!(sim.request_count("POST", "/sync/watchlist"), 2);
    assert_eq!(sim.watchlist().len(), 249);
}

#[tokio::test]
async fn a_full_personal_list_and_the_list_count_are_account_limits() {
    let sim = sim().await;
    sim.set_limits(TraktLimits {
        watchlist_items: 250,
        lists: 2,
        list_items: 3,
    });
    let r = rig(&sim);
    let playlist = |name: &str, ns: &[u32]| {
        Entry::playlist(Playlist {
            name: name.into(),
            description: None,
            items: ns.iter().map(|n| samples::movie(*n)).collect(),
        })
    };
    let report = r
        .provider
        .add(
            &cx(),
            Feature::Playlists,
            &[
                playlist("Big", &[1, 2, 3, 4, 5]),
                playlist("Small", &[6]),
                playlist("Third", &[7]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&report.items[0].outcome),
        Some(UnresolvedReason::AccountLimit)
    );
    assert_eq!(report.items[1].outcome, Outcome::Confirmed);
    assert_eq!(
        reason(&report.items[2].outcome),
        Some(UnresolvedReason::AccountLimit)
    );
    let lists = sim.lists();
    assert_eq!(lists.len(), 2);
    assert_eq!(lists[0].1.len(), 3, "the first three fit");
}

#[tokio::test]
async fn plays_already_there_are_never_sent_again() {
    let sim = sim().await;
    let t = samples::time(0);
    sim.seed_history(&[(samples::movie(1), t)]);
    let r = rig(&sim);
    let later =
        |n: u32, secs: i64| Entry::watch(samples::movie(n), Timestamp::from_unix(t.unix() + secs));
    let entries = [later(1, 30), later(2, 0), later(2, 10), later(1, 7200)];
    let report = r
        .provider
        .add(&cx(), Feature::History, &entries)
        .await
        .unwrap();
    let got: Vec<_> = report.items.iter().map(|i| i.outcome.clone()).collect();
    assert_eq!(
        got,
        [
            Outcome::AlreadyPresent,
            Outcome::Confirmed,
            Outcome::AlreadyPresent,
            Outcome::Confirmed
        ]
    );
    assert_eq!(sim.history().len(), 3, "one seeded play, two new ones");
    // Removing removes one play, the nearest.
    let report = r
        .provider
        .remove(&cx(), Feature::History, &[later(1, 20)])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    let one = samples::movie(1).key();
    let left: Vec<_> = sim
        .history()
        .into_iter()
        .filter(|(item, _)| item.key() == one)
        .map(|(_, at)| at)
        .collect();
    assert_eq!(left, [Timestamp::from_unix(t.unix() + 7200)]);
}

#[tokio::test]
async fn scattered_plays_are_checked_with_one_history_read_when_that_is_cheaper() {
    let sim = sim().await;
    sim.seed_history(&[(samples::movie(1), samples::time(0))]);
    let r = rig(&sim);
    let month = 30 * 86_400;
    let entries: Vec<_> = (0..5)
        .map(|k| Entry::watch(samples::movie(1), samples::time(k * month)))
        .collect();
    let report = r
        .provider
        .add(&cx(), Feature::History, &entries)
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::AlreadyPresent);
    assert_eq!(report.confirmed(), 4);
    // One read of the four months that cover all five windows, instead of five windows.
    assert_eq!(sim.request_count("GET", "/sync/history"), 1);
    assert_eq!(sim.history().len(), 5);
}

#[tokio::test]
async fn windows_are_read_one_by_one_when_the_stretch_between_them_is_longer() {
    let sim = sim().await;
    let year = 365 * 86_400;
    // Ten plays between the two new ones, and one of the new ones already there.
    sim.seed_history(
        &(10..20)
            .map(|n| (samples::movie(n), samples::time(i64::from(n) * 86_400)))
            .chain([(samples::movie(1), samples::time(0))])
            .collect::<Vec<_>>(),
    );
    let mut config = common::config(&sim);
    config.page_limit = Some(1);
    let r = common::rig_with(config);
    let entries = [
        Entry::watch(samples::movie(1), samples::time(0)),
        Entry::watch(samples::movie(2), samples::time(year)),
    ];
    let report = r
        .provider
        .add(&cx(), Feature::History, &entries)
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::AlreadyPresent);
    assert_eq!(report.items[1].outcome, Outcome::Confirmed);
    // The first page of the stretch (eleven pages of one row) gives up on it; then each
    // window is one page.
    assert_eq!(sim.request_count("GET", "/sync/history"), 3);
    assert_eq!(sim.history().len(), 12);
}

#[tokio::test]
async fn history_is_not_written_when_existing_plays_cannot_be_read_completely() {
    let sim = sim().await;
    let t = samples::time(0);
    sim.seed_history(
        &(0..40)
            .map(|n| (samples::movie(n), Timestamp::from_unix(t.unix() + n as i64)))
            .collect::<Vec<_>>(),
    );
    let r = rig(&sim);
    sim.truncate_next("/sync/history");
    let err = r
        .provider
        .add(
            &cx(),
            Feature::History,
            &[Entry::watch(samples::movie(99), t)],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(sim.request_count("POST", "/sync/history"), 0);
    assert_eq!(sim.history().len(), 40);
}

#[tokio::test]
async fn episodes_are_written_by_show_and_numbers() {
    let sim = sim().await;
    let r = rig(&sim);
    let ep = samples::episode(5, 2, 7);
    let report = r
        .provider
        .add(
            &cx(),
            Feature::History,
            &[Entry::watch(ep.clone(), samples::time(0))],
        )
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    let (item, _) = &sim.history()[0];
    assert_eq!(item.key(), ep.key());
    // Unknown titles are not found, per item.
    let mut ghost = samples::movie(1);
    ghost.ids = ferry_core::Ids::new().with(ferry_core::IdKind::Tmdb, "42");
    let report = r
        .provider
        .add(&cx(), Feature::Watchlist, &[Entry::watchlist(ghost), wl(2)])
        .await
        .unwrap();
    assert_eq!(
        reason(&report.items[0].outcome),
        Some(UnresolvedReason::NotFound)
    );
    assert_eq!(report.items[1].outcome, Outcome::Confirmed);
}

#[tokio::test]
async fn equal_ratings_are_not_rewritten_and_changes_are_updates() {
    let sim = sim().await;
    sim.seed_ratings(&[(samples::movie(1), 7)]);
    let r = rig(&sim);
    let seven = Entry::rating(samples::movie(1), Rating::new(7).unwrap(), None);
    let report = r
        .provider
        .add(&cx(), Feature::Ratings, &[seven])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::AlreadyPresent);
    assert_eq!(sim.request_count("POST", "/sync/ratings"), 0);
    let nine = Entry::rating(samples::movie(1), Rating::new(9).unwrap(), None);
    let report = r
        .provider
        .add(&cx(), Feature::Ratings, &[nine])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert_eq!(sim.ratings()[0].1, 9);
}

#[tokio::test]
async fn a_429_is_waited_out_for_its_retry_after() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1)]);
    let r = rig(&sim);
    sim.rate_limit_next(7, 1);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert!(
        r.clock
            .sleeps()
            .iter()
            .any(|d| *d >= Duration::from_secs(7)),
        "{:?}",
        r.clock.sleeps()
    );

    // A write Trakt refused with 429 was not applied: it is sent again, once.
    r.clock.clear_sleeps();
    sim.inject(
        FaultRule::new(Fault::RateLimited {
            retry_after_secs: 3,
        })
        .on("/sync/history")
        .method("POST"),
    );
    let report = r
        .provider
        .add(
            &cx(),
            Feature::History,
            &[Entry::watch(samples::movie(2), samples::time(0))],
        )
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert_eq!(sim.history().len(), 1);
    assert_eq!(sim.request_count("POST", "/sync/history"), 2);
    assert!(
        r.clock
            .sleeps()
            .iter()
            .any(|d| *d >= Duration::from_secs(3)),
        "{:?}",
        r.clock.sleeps()
    );
}

#[tokio::test]
async fn conflicts_and_locked_accounts_are_unresolved_per_item() {
    let sim = sim().await;
    let r = rig(&sim);
    sim.inject(
        FaultRule::new(Fault::Status(409))
            .on("/sync/history")
            .method("POST"),
    );
    let report = r
        .provider
        .add(
            &cx(),
            Feature::History,
            &[Entry::watch(samples::movie(3), samples::time(0))],
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&report.items[0].outcome),
        Some(UnresolvedReason::Conflict)
    );

    sim.inject(
        FaultRule::new(Fault::Status(423))
            .on("/sync/watchlist")
            .method("POST"),
    );
    let report = r
        .provider
        .add(&cx(), Feature::Watchlist, &[wl(1), wl(2)])
        .await
        .unwrap();
    for i in &report.items {
        assert_eq!(reason(&i.outcome), Some(UnresolvedReason::Locked), "{i:?}");
    }
    assert!(sim.watchlist().is_empty());
}

#[tokio::test]
async fn playlists_are_made_to_match_the_entry_in_order() {
    let sim = sim().await;
    sim.seed_list(
        "Queue",
        &[samples::movie(1), samples::movie(2), samples::movie(3)],
    );
    let r = rig(&sim);
    let want = Entry::playlist(Playlist {
        name: "queue".into(),
        description: Some("for the weekend".into()),
        items: vec![samples::movie(3), samples::movie(4), samples::movie(1)],
    });
    let report = r
        .provider
        .add(&cx(), Feature::Playlists, std::slice::from_ref(&want))
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    let lists = sim.lists();
    assert_eq!(lists.len(), 1);
    let keys: Vec<_> = lists[0].1.iter().map(|i| i.key()).collect();
    assert_eq!(
        keys,
        [
            samples::movie(3).key(),
            samples::movie(4).key(),
            samples::movie(1).key()
        ]
    );
    let again = r
        .provider
        .add(&cx(), Feature::Playlists, &[want])
        .await
        .unwrap();
    assert_eq!(again.items[0].outcome, Outcome::AlreadyPresent);
    let snap = r
        .provider
        .build_index(&cx(), Feature::Playlists)
        .await
        .unwrap();
    match &snap.get("playlist:queue").unwrap().payload {
        Payload::Playlist(p) => assert_eq!(p.description.as_deref(), Some("for the weekend")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn progress_is_written_as_a_percentage_and_removed_by_playback_id() {
    let sim = sim().await;
    let r = rig(&sim);
    let e = Entry::progress(samples::movie(9), 1_500_000, Some(6_000_000), None);
    let report = r
        .provider
        .add(&cx(), Feature::Progress, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert_eq!(sim.playback()[0].1, 25.0);
    let no_duration = Entry::progress(samples::movie(10), 1_000, None, None);
    let report = r
        .provider
        .add(&cx(), Feature::Progress, &[no_duration])
        .await
        .unwrap();
    assert_eq!(
        reason(&report.items[0].outcome),
        Some(UnresolvedReason::Unsupported)
    );
    let report = r
        .provider
        .remove(&cx(), Feature::Progress, &[e])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert!(sim.playback().is_empty());
    assert!(
        sim.history().is_empty(),
        "progress never marks anything watched"
    );
}

#[tokio::test]
async fn trakts_published_limits_keep_the_provider_out_of_429s() {
    // Real time: the simulator enforces one write per second; the provider's declared
    // limit spaces its writes accordingly (a 429 from network jitter is sent again).
    let sim = ferry_testkit::sim::trakt::TraktSim::start().await;
    let cfg = common::config(&sim);
    let env = ferry_core::BuildEnv::ephemeral(std::env::temp_dir());
    let p = trakt::TraktProvider::new("trakt-rt", cfg, &env).unwrap();
    for n in 0..2 {
        let report = p.add(&cx(), Feature::Watchlist, &[wl(n)]).await.unwrap();
        assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    }
    assert_eq!(sim.watchlist().len(), 2);
}

#[tokio::test]
async fn a_removal_after_a_partial_read_is_never_already_absent() {
    let sim = sim().await;
    sim.set_limits(TraktLimits::VIP);
    sim.seed_watchlist(&(0..600).map(samples::movie).collect::<Vec<_>>());
    let r = rig(&sim);
    // The read the removal resolves against loses half of its second page.
    sim.inject(
        FaultRule::new(Fault::Truncate)
            .on("/sync/watchlist")
            .method("GET")
            .after(1),
    );
    let report = r
        .provider
        .remove(&cx(), Feature::Watchlist, &[wl(1), wl(400)])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert_eq!(
        reason(&report.items[1].outcome),
        Some(UnresolvedReason::PartialRead),
        "{:?}",
        report.items[1]
    );
    assert_eq!(sim.watchlist().len(), 599, "movie 400 is still there");
}

#[tokio::test]
async fn an_uncertain_write_drops_the_kept_read() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1)]);
    let r = rig(&sim);
    r.provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap();
    sim.inject(
        FaultRule::new(Fault::Status(503))
            .on("/sync/watchlist")
            .method("POST")
            .times(10),
    );
    let report = r
        .provider
        .add(&cx(), Feature::Watchlist, &[wl(2)])
        .await
        .unwrap();
    assert!(!report.items[0].outcome.is_settled());
    assert_eq!(
        sim.request_count("GET", "/sync/watchlist"),
        1,
        "the kept read"
    );
    sim.clear_faults();
    // What Trakt holds is unknown now: the next write reads it again.
    let report = r
        .provider
        .add(&cx(), Feature::Watchlist, &[wl(2)])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    assert_eq!(sim.request_count("GET", "/sync/watchlist"), 2);
}

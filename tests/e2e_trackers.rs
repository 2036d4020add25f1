//! End-to-end runs between tracker providers (issue 5): the real `ferry` binary against
//! the Trakt, SIMKL and MDBList simulators, with the simulators' state checked afterwards.

mod common;

use std::collections::BTreeSet;

use common::{
    Setup, feature_summary, ferry, mdblist_block, movie_no, side_counts, simkl_block, totals,
    trakt_block, trakt_watchlist, writes,
};
use ferry_testkit::samples;
use ferry_testkit::sim::knobs::{Fault, FaultRule};
use ferry_testkit::sim::mdblist::MdblistSim;
use ferry_testkit::sim::simkl::{ListStatus, MOVIE_ID_BASE, SimklSim};
use ferry_testkit::sim::trakt::TraktSim;

fn simkl_watchlist(sim: &SimklSim) -> BTreeSet<u32> {
    sim.watchlist()
        .into_iter()
        .map(|id| u32::try_from(id - MOVIE_ID_BASE).expect("a sample movie"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn trakt_to_simkl_one_way_fills_simkl_leaves_trakt_untouched_and_a_second_run_writes_nothing()
{
    let trakt = TraktSim::start().await;
    trakt.seed_watchlist(&(0..6).map(samples::movie).collect::<Vec<_>>());
    trakt.seed_ratings(
        &(10..15)
            .map(|n| (samples::movie(n), (n % 10 + 3) as u8))
            .collect::<Vec<_>>(),
    );
    trakt.seed_history(
        &(20..26)
            .map(|n| (samples::movie(n), samples::time(3_600 * i64::from(n))))
            .collect::<Vec<_>>(),
    );
    let simkl = SimklSim::builder().movies(40).start().await;

    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"trakt-to-simkl\"\nsource = \"trakt\"\ntarget = \"simkl\"\nmode = \"one-way\"\n\
         [pairs.features.watchlist]\n[pairs.features.ratings]\n[pairs.features.history]\n",
        trakt_block("trakt", &trakt),
        simkl_block("simkl", &simkl),
    ));

    let first = ferry(Some(&config), &["--json", "run"]).await;
    first.expect_code(0);
    let s = first.summary();
    assert_eq!(totals(&s), (17, 0, 0, 0, 0, 0), "{}", first.show());
    for (feature, added) in [("watchlist", 6), ("ratings", 5), ("history", 6)] {
        let f = feature_summary(&s, "trakt-to-simkl", feature);
        assert_eq!(f["status"], "done", "{feature}: {f}");
        assert_eq!(side_counts(f, "to_b"), (added, 0, 0), "{feature}: {f}");
    }

    // Every request the simulators answered is counted once in the run's API totals.
    let api = &first.named("api:totals")[0]["totals"]["providers"];
    for (instance, served) in [
        ("trakt", trakt.total_requests()),
        ("simkl", simkl.total_requests()),
    ] {
        let p = &api[instance];
        assert_eq!(p["total"], served, "{instance}: {p}");
        let by_method: u64 = p["by_method"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or_default();
        assert_eq!(by_method, served, "{instance}: one method per request: {p}");
    }

    // SIMKL now holds Trakt's state.
    assert_eq!(simkl_watchlist(&simkl), (0..6).collect());
    for n in 0..6 {
        let e = simkl.entry(&samples::movie(n)).expect("on SIMKL");
        assert_eq!(e.status, ListStatus::PlanToWatch, "movie {n}");
    }
    for n in 10..15 {
        let e = simkl.entry(&samples::movie(n)).expect("rated on SIMKL");
        assert_eq!(e.rating, Some((n % 10 + 3) as u8), "movie {n}");
    }
    for n in 20..26 {
        let e = simkl.entry(&samples::movie(n)).expect("watched on SIMKL");
        assert_eq!(
            e.last_watched_at,
            Some(samples::time(3_600 * i64::from(n)).unix()),
            "movie {n}"
        );
    }
    // Nothing else was filed on SIMKL.
    assert_eq!(simkl.library().len(), 6 + 5 + 6);

    // One-way: Trakt was only read.
    assert_eq!(writes(&trakt.routes()), vec![], "Trakt must not be written");
    assert_eq!(trakt_watchlist(&trakt), (0..6).collect());
    assert_eq!(trakt.ratings().len(), 5);
    assert_eq!(trakt.history().len(), 6);

    // Nothing changed anywhere: the second run changes nothing and writes nothing.
    simkl.reset_counts();
    trakt.reset_counts();
    let second = ferry(Some(&config), &["--json", "run"]).await;
    second.expect_code(0);
    assert_eq!(
        totals(&second.summary()),
        (0, 0, 0, 0, 0, 0),
        "{}",
        second.show()
    );
    assert_eq!(writes(&simkl.routes()), vec![], "{}", second.show());
    assert_eq!(writes(&trakt.routes()), vec![]);
    assert_eq!(simkl.library().len(), 17);
    assert_eq!(simkl_watchlist(&simkl), (0..6).collect());
}

#[tokio::test(flavor = "multi_thread")]
async fn trakt_and_mdblist_two_way_end_with_the_union_on_both_sides_and_a_second_run_writes_nothing()
 {
    let trakt = TraktSim::start().await;
    trakt.seed_watchlist(&(0..5).map(samples::movie).collect::<Vec<_>>());
    trakt.seed_ratings(&[(samples::movie(10), 7), (samples::movie(11), 7)]);
    let mdb = MdblistSim::builder().movies(40).start().await;
    for n in 4..8 {
        assert!(mdb.seed_watchlist(&samples::movie(n)));
    }
    for n in 13..15 {
        assert!(mdb.seed_rating(&samples::movie(n), 9));
    }

    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"trakt-mdblist\"\nsource = \"trakt\"\ntarget = \"mdblist\"\nmode = \"two-way\"\n\
         [pairs.features.watchlist]\n[pairs.features.ratings]\n",
        trakt_block("trakt", &trakt),
        mdblist_block("mdblist", &mdb),
    ));

    let first = ferry(Some(&config), &["--json", "run"]).await;
    first.expect_code(0);
    let s = first.summary();
    // Watchlist: 5, 6, 7 go to Trakt, 0..4 to MDBList (4 is on both already).
    let w = feature_summary(&s, "trakt-mdblist", "watchlist");
    assert_eq!(side_counts(w, "to_a"), (3, 0, 0), "{w}");
    assert_eq!(side_counts(w, "to_b"), (4, 0, 0), "{w}");
    let r = feature_summary(&s, "trakt-mdblist", "ratings");
    assert_eq!(side_counts(r, "to_a"), (2, 0, 0), "{r}");
    assert_eq!(side_counts(r, "to_b"), (2, 0, 0), "{r}");
    assert_eq!(totals(&s), (11, 0, 0, 0, 0, 0), "{}", first.show());

    // Both sides hold the union.
    assert_eq!(trakt_watchlist(&trakt), (0..8).collect());
    let mdb_watchlist: BTreeSet<u64> = mdb.watchlist().into_iter().collect();
    assert_eq!(mdb_watchlist, (0..8u64).map(|n| 900_000 + n).collect());
    let trakt_ratings: BTreeSet<(u32, u8)> = trakt
        .ratings()
        .iter()
        .map(|(i, r)| (movie_no(i), *r))
        .collect();
    assert_eq!(
        trakt_ratings,
        [(10, 7), (11, 7), (13, 9), (14, 9)].into_iter().collect()
    );
    let mdb_ratings: Vec<(u64, u8)> = mdb.ratings().into_iter().collect();
    assert_eq!(
        mdb_ratings,
        vec![(900_010, 7), (900_011, 7), (900_013, 9), (900_014, 9)]
    );

    trakt.reset_counts();
    mdb.reset_counts();
    let second = ferry(Some(&config), &["--json", "run"]).await;
    second.expect_code(0);
    assert_eq!(
        totals(&second.summary()),
        (0, 0, 0, 0, 0, 0),
        "{}",
        second.show()
    );
    assert_eq!(writes(&trakt.routes()), vec![], "{}", second.show());
    assert_eq!(writes(&mdb.routes()), vec![], "{}", second.show());
    assert_eq!(trakt_watchlist(&trakt).len(), 8);
    assert_eq!(mdb.watchlist().len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_trakt_page_removes_nothing_from_simkl_and_a_clean_read_later_removes_only_the_real_deletion()
 {
    let trakt = TraktSim::start().await;
    trakt.seed_watchlist(&(0..30).map(samples::movie).collect::<Vec<_>>());
    let simkl = SimklSim::builder().movies(60).start().await;

    let setup = Setup::new();
    // Removals on, and the mass-delete guard lifted: only the completeness of the read
    // stands between a truncated page and a wiped watchlist.
    let config = setup.config(&format!(
        "[guardrails]\nallow_mass_delete = true\n\n{}{}[[pairs]]\nname = \"trakt-to-simkl\"\nsource = \"trakt\"\ntarget = \"simkl\"\n\
         [pairs.features.watchlist]\nremove = true\n",
        trakt_block("trakt", &trakt),
        simkl_block("simkl", &simkl),
    ));

    // The first run establishes the baselines.
    let first = ferry(Some(&config), &["--json", "run"]).await;
    first.expect_code(0);
    assert_eq!(totals(&first.summary()), (30, 0, 0, 0, 0, 0));
    assert_eq!(simkl_watchlist(&simkl), (0..30).collect());

    // On Trakt the user really removes movie 0 and adds movie 40; then the next watchlist
    // page ferry reads holds half its rows while its headers still declare them all.
    common::trakt_unwatchlist(&trakt, 0).await;
    trakt.seed_watchlist(&[samples::movie(40)]);
    assert_eq!(trakt_watchlist(&trakt), (1..30).chain([40]).collect());
    trakt.inject(
        FaultRule::new(Fault::Truncate)
            .on("/sync/watchlist")
            .method("GET"),
    );

    let second = ferry(Some(&config), &["--json", "run"]).await;
    let suspect = second.named("snapshot:suspect");
    assert!(
        suspect
            .iter()
            .any(|e| e["provider"] == "trakt" && e["reason"] == "partial"),
        "the truncated read must be reported as partial\n{}",
        second.show()
    );
    let s = second.summary();
    let (_, _, removed, _, _, errors) = totals(&s);
    assert_eq!(removed, 0, "{}", second.show());
    assert_eq!(errors, 0, "{}", second.show());
    let f = feature_summary(&s, "trakt-to-simkl", "watchlist");
    assert_eq!(f["to_b"]["planned_removes"], 0, "{f}");
    // Every item SIMKL had is still there, movie 0 included: a partial read proves nothing.
    let kept = simkl_watchlist(&simkl);
    assert!(
        (0..30).all(|n| kept.contains(&n)),
        "SIMKL lost items after a truncated read: {kept:?}"
    );
    second.expect_code(0);

    // A clean read: now the deletion is proven, and it is the only one.
    let third = ferry(Some(&config), &["--json", "run"]).await;
    third.expect_code(0);
    assert!(
        third.named("snapshot:suspect").is_empty(),
        "{}",
        third.show()
    );
    let (_, _, removed, _, _, _) = totals(&third.summary());
    assert_eq!(removed, 1, "{}", third.show());
    assert_eq!(simkl_watchlist(&simkl), (1..30).chain([40]).collect());
}

/// SIMKL's catalog documents (no count: cut, emptied, undecodable rows, bad bodies,
/// failing documents), in the default read mode (`delta`: a full read first, then
/// deltas; the contract suite runs both modes). SIMKL's client spaces its requests, so
/// each run takes about a second.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_simkl_read_removes_a_title_from_trakt() {
    let simkl = SimklSim::builder().movies(80).start().await;
    common::sweep_against_trakt(common::Attacked {
        feature: "watchlist",
        name: "simkl",
        block: simkl_block("simkl", &simkl),
        faults: &simkl,
        path: "/sync/all-items/".into(),
        gets: Box::new(|| simkl.requests_under("/sync/all-items/")),
        list: Box::new(|| simkl_watchlist(&simkl)),
        add: Box::new(|n| assert!(simkl.seed_watchlist(&samples::movie(n)))),
        rows: vec![
            ("/movie", serde_json::Value::Null),
            ("/movie/ids", serde_json::json!("tt1")),
        ],
        counted: false,
    })
    .await;
}

/// MDBList's watchlist pages (15 a page: `pagination` missing or not counts, rows that
/// do not decode, cut-off and failing pages).
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_mdblist_read_removes_a_title_from_trakt() {
    let mdb = MdblistSim::builder().movies(80).start().await;
    common::sweep_against_trakt(common::Attacked {
        feature: "watchlist",
        name: "mdblist",
        block: mdblist_block("mdblist", &mdb).replacen('\n', "\npage_size = 15\n", 1),
        faults: &mdb,
        path: "/watchlist/items".into(),
        gets: Box::new(|| mdb.requests_under("/watchlist/items")),
        list: Box::new(|| {
            (mdb.watchlist().into_iter())
                .map(|tmdb| u32::try_from(tmdb - 900_000).expect("a sample movie"))
                .collect()
        }),
        add: Box::new(|n| assert!(mdb.seed_watchlist(&samples::movie(n)))),
        rows: vec![
            ("/id", serde_json::json!("tt1")),
            ("/mediatype", serde_json::json!(7)),
        ],
        counted: true,
    })
    .await;
}

/// SIMKL's ratings documents (`/sync/ratings/{type}`, read whole in `full` mode), the
/// same attack.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_simkl_read_removes_a_rating_from_trakt() {
    let simkl = SimklSim::builder().movies(80).start().await;
    common::sweep_against_trakt(common::Attacked {
        feature: "ratings",
        name: "simkl",
        block: simkl_block("simkl", &simkl).replacen('\n', "\nread_mode = \"full\"\n", 1),
        faults: &simkl,
        path: "/sync/ratings/".into(),
        gets: Box::new(|| simkl.requests_under("/sync/ratings/")),
        list: Box::new(|| {
            (simkl.library().into_iter())
                .filter(|(_, e)| e.rating.is_some())
                .map(|(id, _)| u32::try_from(id - MOVIE_ID_BASE).expect("a sample movie"))
                .collect()
        }),
        add: Box::new(|n| assert!(simkl.seed_rating(&samples::movie(n), 8))),
        rows: vec![
            ("/movie", serde_json::Value::Null),
            ("/user_rating", serde_json::json!("eight")),
        ],
        counted: false,
    })
    .await;
}

/// MDBList's ratings pages (`/sync/ratings`, 15 a page), the same attack.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_mdblist_read_removes_a_rating_from_trakt() {
    let mdb = MdblistSim::builder().movies(80).start().await;
    common::sweep_against_trakt(common::Attacked {
        feature: "ratings",
        name: "mdblist",
        block: mdblist_block("mdblist", &mdb).replacen('\n', "\npage_size = 15\n", 1),
        faults: &mdb,
        path: "/sync/ratings".into(),
        gets: Box::new(|| mdb.requests_to("GET", "/sync/ratings")),
        list: Box::new(|| {
            (mdb.ratings().into_keys())
                .map(|tmdb| u32::try_from(tmdb - 900_000).expect("a sample movie"))
                .collect()
        }),
        add: Box::new(|n| assert!(mdb.seed_rating(&samples::movie(n), 8))),
        rows: vec![
            ("/rating", serde_json::json!("eight")),
            ("/movie", serde_json::Value::Null),
        ],
        counted: true,
    })
    .await;
}

/// TMDB's account watchlist pages (20 a page: `total_pages` and `total_results` missing
/// or not counts, rows that do not decode, cut-off and failing pages).
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_tmdb_read_removes_a_title_from_trakt() {
    tmdb_sweep("watchlist").await;
}

/// TMDB's rated movies pages, the same attack.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_tmdb_read_removes_a_rating_from_trakt() {
    tmdb_sweep("ratings").await;
}

/// The sweep against the TMDB simulator's account list of `feature` (`watchlist` or
/// `ratings`, every rating an 8).
async fn tmdb_sweep(feature: &'static str) {
    use ferry_testkit::sim::kit::Simulator;
    use tmdb::sim::{ACCOUNT_ID, TOKEN, TmdbSim};
    let ratings = feature == "ratings";
    let sim = TmdbSim::start().await;
    sim.with(|r| {
        r.watchlist.clear();
        r.ratings.clear();
        r.catalog.extend((64..100).map(samples::movie));
    });
    let block = format!(
        "[providers.tmdb]\nkind = \"tmdb\"\nbase_url = {}\naccount_id = {ACCOUNT_ID}\naccess_token = {}\n\n",
        common::q(&sim.uri()),
        common::q(TOKEN),
    );
    let list = if ratings { "rated" } else { "watchlist" };
    let path = format!("/3/account/{ACCOUNT_ID}/{list}/");
    common::sweep_against_trakt(common::Attacked {
        feature,
        name: "tmdb",
        block,
        faults: &sim,
        path: path.clone(),
        gets: Box::new(|| sim.knobs(|k| k.requests_under(&path))),
        list: Box::new(|| {
            let ids: Vec<u64> = sim.with(|r| match ratings {
                true => r.ratings.iter().map(|((_, id), _)| *id).collect(),
                false => r.watchlist.iter().map(|(_, id)| *id).collect(),
            });
            (ids.into_iter())
                .map(|id| u32::try_from(id - 900_000).expect("a sample movie"))
                .collect()
        }),
        add: Box::new(|n| {
            let key = ("movie", 900_000 + u64::from(n));
            sim.with(|r| match ratings {
                true => r.ratings.push((key, 8.0)),
                false => r.watchlist.push(key),
            });
        }),
        rows: vec![
            ("/id", serde_json::json!("tt1")),
            ("/title", serde_json::json!(["not", "a", "title"])),
        ],
        counted: true,
    })
    .await;
}

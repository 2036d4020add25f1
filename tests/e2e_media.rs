//! End-to-end runs between media servers and Trakt (issue 6): the real `ferry` binary
//! against the Plex, Jellyfin and Trakt simulators, with both sides' state checked
//! afterwards, and a second run that must change nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    Setup, feature_summary, ferry, jellyfin_block, movie_no, plex_block, side_counts, totals,
    trakt_block, trakt_watchlist, writes,
};
use ferry_core::Timestamp;
use ferry_testkit::contract::FaultControl;
use ferry_testkit::samples;
use ferry_testkit::sim::jellyfin::JellyfinSim;

use ferry_testkit::sim::plex::PlexSim;
use ferry_testkit::sim::trakt::TraktSim;

/// Trakt's plays as sample movie number → play times (epoch seconds), sorted.
fn trakt_plays(trakt: &TraktSim) -> BTreeMap<u32, Vec<i64>> {
    let mut out: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (item, at) in trakt.history() {
        out.entry(movie_no(&item)).or_default().push(at.unix());
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

fn at(offset: i64) -> i64 {
    samples::BASE_TIME + offset
}

#[tokio::test(flavor = "multi_thread")]
async fn plex_to_trakt_one_way_copies_plays_ratings_and_watchlist_and_a_second_run_changes_nothing()
{
    let plex = PlexSim::builder().movies(30).start().await;
    for n in 0..5u32 {
        plex.seed_play(PlexSim::movie_key(n), at(3_600 * i64::from(n)));
    }
    // A rewatch: history is a set of plays, so both go to Trakt.
    plex.seed_play(PlexSim::movie_key(0), at(86_400 * 30));
    for (n, r) in [(10u32, 8.0), (11, 6.0), (12, 4.0)] {
        plex.seed_rating(PlexSim::movie_key(n), Some(r));
    }
    plex.seed_watchlist(PlexSim::movie_key(20));
    plex.seed_watchlist(PlexSim::movie_key(21));

    let trakt = TraktSim::start().await;
    // Trakt already knows movie 1's play (at the same time): it must not be sent again.
    trakt.seed_history(&[(samples::movie(1), Timestamp::from_unix(at(3_600)))]);

    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"plex-to-trakt\"\nsource = \"plex\"\ntarget = \"trakt\"\nmode = \"one-way\"\n\
         [pairs.features.history]\n[pairs.features.ratings]\n[pairs.features.watchlist]\n",
        plex_block("plex", &plex),
        trakt_block("trakt", &trakt),
    ));

    let first = ferry(Some(&config), &["--json", "run"]).await;
    first.expect_code(0);
    let s = first.summary();
    let h = feature_summary(&s, "plex-to-trakt", "history");
    assert_eq!(side_counts(h, "to_b"), (5, 0, 0), "{h}");
    let r = feature_summary(&s, "plex-to-trakt", "ratings");
    assert_eq!(side_counts(r, "to_b"), (3, 0, 0), "{r}");
    let w = feature_summary(&s, "plex-to-trakt", "watchlist");
    assert_eq!(side_counts(w, "to_b"), (2, 0, 0), "{w}");
    assert_eq!(totals(&s), (10, 0, 0, 0, 0, 0), "{}", first.show());

    // Trakt: every Plex play once (movie 0 twice, movie 1 not duplicated), the ratings on
    // the same 1-10 scale, the watchlist.
    let expected_plays: BTreeMap<u32, Vec<i64>> = [
        (0, vec![at(0), at(86_400 * 30)]),
        (1, vec![at(3_600)]),
        (2, vec![at(7_200)]),
        (3, vec![at(10_800)]),
        (4, vec![at(14_400)]),
    ]
    .into_iter()
    .collect();
    assert_eq!(trakt_plays(&trakt), expected_plays);
    let ratings: BTreeSet<(u32, u8)> = trakt
        .ratings()
        .iter()
        .map(|(i, r)| (movie_no(i), *r))
        .collect();
    assert_eq!(ratings, [(10, 8), (11, 6), (12, 4)].into_iter().collect());
    assert_eq!(trakt_watchlist(&trakt), [20, 21].into_iter().collect());

    // One-way: Plex was only read (server and Discover).
    assert_eq!(
        writes(&plex.routes()),
        vec![],
        "the Plex server must not be written"
    );
    assert_eq!(
        writes(&plex.discover_routes()),
        vec![],
        "Discover must not be written"
    );
    assert_eq!(plex.history().len(), 6);

    // The second run: nothing changed, nothing is written.
    trakt.reset_counts();
    plex.reset_counts();
    let second = ferry(Some(&config), &["--json", "run"]).await;
    second.expect_code(0);
    assert_eq!(
        totals(&second.summary()),
        (0, 0, 0, 0, 0, 0),
        "{}",
        second.show()
    );
    assert_eq!(writes(&trakt.routes()), vec![], "{}", second.show());
    assert_eq!(writes(&plex.routes()), vec![]);
    assert_eq!(trakt_plays(&trakt), expected_plays);
}

#[tokio::test(flavor = "multi_thread")]
async fn jellyfin_and_trakt_two_way_exchange_plays_and_favourites_and_a_second_run_changes_nothing()
{
    let jellyfin = JellyfinSim::builder().movies(30).start().await;
    for n in 0..4u32 {
        jellyfin.seed_played(&jellyfin.movie_id(n), at(1_800 * i64::from(n)));
    }
    for n in 10..13u32 {
        jellyfin.seed_favorite(&jellyfin.movie_id(n), true);
    }
    let trakt = TraktSim::start().await;
    trakt.seed_history(
        &(5..9u32)
            .map(|n| (samples::movie(n), samples::time(3_600 * i64::from(n))))
            .collect::<Vec<_>>(),
    );
    trakt.seed_watchlist(&(12..15).map(samples::movie).collect::<Vec<_>>());

    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"jellyfin-trakt\"\nsource = \"jellyfin\"\ntarget = \"trakt\"\nmode = \"two-way\"\n\
         [pairs.features.history]\nremove = true\n[pairs.features.watchlist]\nremove = true\n",
        jellyfin_block("jellyfin", &jellyfin),
        trakt_block("trakt", &trakt),
    ));

    let first = ferry(Some(&config), &["--json", "run"]).await;
    first.expect_code(0);
    let s = first.summary();
    let (_, _, removed, _, _, errors) = totals(&s);
    assert_eq!((removed, errors), (0, 0), "{}", first.show());
    let w = feature_summary(&s, "jellyfin-trakt", "watchlist");
    // Favourites 10, 11 go to Trakt; Trakt's 13, 14 become favourites; 12 is on both.
    assert_eq!(side_counts(w, "to_a"), (2, 0, 0), "{w}");
    assert_eq!(side_counts(w, "to_b"), (2, 0, 0), "{w}");

    // Trakt holds Jellyfin's plays at Jellyfin's times, and its own.
    let plays = trakt_plays(&trakt);
    for n in 0..4u32 {
        assert_eq!(
            plays.get(&n),
            Some(&vec![at(1_800 * i64::from(n))]),
            "movie {n}"
        );
    }
    for n in 5..9u32 {
        assert_eq!(
            plays.get(&n),
            Some(&vec![samples::time(3_600 * i64::from(n)).unix()]),
            "movie {n}"
        );
    }
    assert_eq!(plays.len(), 8, "{plays:?}");
    assert_eq!(trakt_watchlist(&trakt), (10..15).collect());

    // Jellyfin: Trakt's plays are played (with Trakt's time), Trakt's watchlist is
    // favourited, and nothing else changed.
    for n in 0..30u32 {
        let item = jellyfin
            .item(&jellyfin.movie_id(n))
            .expect("in the library");
        let u = &item.user;
        let expect_played = n < 4 || (5..9).contains(&n);
        assert_eq!(u.played, expect_played, "movie {n}: {u:?}");
        if (5..9).contains(&n) {
            assert_eq!(
                u.last_played,
                Some(samples::time(3_600 * i64::from(n)).unix()),
                "movie {n}"
            );
        }
        assert_eq!(u.favorite, (10..15).contains(&n), "movie {n}: {u:?}");
    }

    // The second run: nothing changed since, so nothing is added, updated or removed, and
    // neither side is written.
    trakt.reset_counts();
    jellyfin.reset_counts();
    let second = ferry(Some(&config), &["--json", "run"]).await;
    let s2 = second.summary();
    let (added, updated, removed, _, _, errors) = totals(&s2);
    assert_eq!(
        (added, updated, removed, errors),
        (0, 0, 0, 0),
        "{}",
        second.show()
    );
    assert_eq!(writes(&trakt.routes()), vec![], "{}", second.show());
    assert_eq!(writes(&jellyfin.routes()), vec![], "{}", second.show());
    assert_eq!(trakt_plays(&trakt), plays);
    assert_eq!(trakt_watchlist(&trakt), (10..15).collect());
    second.expect_code(0);
}

/// Jellyfin keeps one play per title. A rewatch on Trakt can not be mirrored there; what
/// must hold whatever ferry does about it: no play is removed anywhere, Trakt keeps both
/// plays, Jellyfin ends up played, and a second run writes nothing to either side.
#[tokio::test(flavor = "multi_thread")]
async fn a_trakt_rewatch_against_single_play_jellyfin_loses_no_play_and_is_not_resent() {
    let jellyfin = JellyfinSim::builder().movies(20).start().await;
    jellyfin.seed_played(&jellyfin.movie_id(1), at(600));
    let trakt = TraktSim::start().await;
    let rewatch = [at(86_400), at(86_400 * 8)];
    trakt.seed_history(&[
        (samples::movie(5), Timestamp::from_unix(rewatch[0])),
        (samples::movie(5), Timestamp::from_unix(rewatch[1])),
    ]);

    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"jellyfin-trakt\"\nsource = \"jellyfin\"\ntarget = \"trakt\"\nmode = \"two-way\"\n\
         [pairs.features.history]\nremove = true\n",
        jellyfin_block("jellyfin", &jellyfin),
        trakt_block("trakt", &trakt),
    ));

    let expected: BTreeMap<u32, Vec<i64>> = [(1, vec![at(600)]), (5, rewatch.to_vec())]
        .into_iter()
        .collect();
    let first = ferry(Some(&config), &["--json", "run"]).await;
    assert!(matches!(first.code, Some(0 | 3)), "{}", first.show());
    let (_, _, removed, _, _, errors) = totals(&first.summary());
    assert_eq!((removed, errors), (0, 0), "{}", first.show());
    assert_eq!(trakt_plays(&trakt), expected, "{}", first.show());
    let u = jellyfin
        .item(&jellyfin.movie_id(5))
        .expect("in the library")
        .user;
    assert!(u.played, "{u:?}");
    assert!(u.last_played.is_some_and(|t| rewatch.contains(&t)), "{u:?}");

    for run in 2..=3 {
        trakt.reset_counts();
        jellyfin.reset_counts();
        let again = ferry(Some(&config), &["--json", "run"]).await;
        assert!(matches!(again.code, Some(0 | 3)), "{}", again.show());
        let (added, updated, removed, _, _, errors) = totals(&again.summary());
        assert_eq!(
            (added, updated, removed, errors),
            (0, 0, 0, 0),
            "run {run}\n{}",
            again.show()
        );
        assert_eq!(
            writes(&trakt.routes()),
            vec![],
            "run {run}\n{}",
            again.show()
        );
        assert_eq!(
            writes(&jellyfin.routes()),
            vec![],
            "run {run}\n{}",
            again.show()
        );
        assert_eq!(trakt_plays(&trakt), expected);
    }
}

/// Trakt takes a title off the watchlist once a play of it is added (a core Trakt
/// feature). When ferry added that play, the removal is not the user's: a two-way
/// watchlist pair must not carry it to Plex.
#[tokio::test(flavor = "multi_thread")]
async fn a_watchlist_title_trakt_drops_after_ferrys_play_stays_on_plex() {
    let plex = PlexSim::builder().movies(10).start().await;
    plex.seed_watchlist(PlexSim::movie_key(3));
    plex.seed_watchlist(PlexSim::movie_key(4));
    plex.seed_play(PlexSim::movie_key(3), at(0));
    let trakt = TraktSim::start().await;

    let setup = Setup::new();
    let config = setup.config(&format!(
        "{}{}[[pairs]]\nname = \"plays\"\nsource = \"plex\"\ntarget = \"trakt\"\nmode = \"one-way\"\n\
         [pairs.features.history]\n\
         [[pairs]]\nname = \"lists\"\nsource = \"plex\"\ntarget = \"trakt\"\nmode = \"two-way\"\n\
         [pairs.features.watchlist]\nremove = true\n",
        plex_block("plex", &plex),
        trakt_block("trakt", &trakt),
    ));
    let plex_listed = |plex: &PlexSim| -> BTreeSet<u32> {
        (0..10)
            .filter(|n| {
                let key = plex.item(PlexSim::movie_key(*n)).unwrap();
                plex.watchlist().iter().any(|k| k == key.discover_key())
            })
            .collect()
    };

    ferry(Some(&config), &["--json", "run"])
        .await
        .expect_code(0);
    assert_eq!(trakt_watchlist(&trakt), [3, 4].into_iter().collect());
    assert_eq!(trakt_plays(&trakt).len(), 1);

    // The user watches movie 3 again on Plex; ferry sends the play, Trakt drops the title.
    plex.watch_now(PlexSim::movie_key(3));
    ferry(Some(&config), &["--json", "run"])
        .await
        .expect_code(0);
    assert_eq!(trakt_plays(&trakt)[&3].len(), 2);
    assert_eq!(
        trakt_watchlist(&trakt),
        [4].into_iter().collect(),
        "Trakt took movie 3 off its watchlist"
    );

    // The next runs see Trakt without movie 3, and remove nothing anywhere.
    for _ in 0..2 {
        let run = ferry(Some(&config), &["--json", "run"]).await;
        run.expect_code(0);
        let (_, _, removed, _, _, _) = totals(&run.summary());
        assert_eq!(removed, 0, "{}", run.show());
        assert_eq!(
            plex_listed(&plex),
            [3, 4].into_iter().collect(),
            "{}",
            run.show()
        );
    }
    // A removal the user makes is still carried over.
    trakt.unwatchlist(&[samples::movie(4)]);
    let run = ferry(Some(&config), &["--json", "run"]).await;
    run.expect_code(0);
    assert_eq!(
        plex_listed(&plex),
        [3].into_iter().collect(),
        "{}",
        run.show()
    );
}

/// Favourite movies of the Jellyfin simulator, by sample number.
fn jellyfin_favorites(jellyfin: &JellyfinSim) -> BTreeSet<u32> {
    (0..LIBRARY)
        .filter(|n| {
            jellyfin
                .item(&jellyfin.movie_id(*n))
                .is_some_and(|i| i.user.favorite)
        })
        .collect()
}

/// Movies in the Jellyfin library of the fault sweeps: more than the provider's page of
/// 200, so the library index is read in two pages.
const LIBRARY: u32 = 250;

/// When the sample play of movie `n` happened, on both sides.
fn play_time(n: u32) -> ferry_core::Timestamp {
    samples::time(600 * i64::from(n))
}

/// Movies the Jellyfin simulator holds as played, by sample number.
fn jellyfin_played(jellyfin: &JellyfinSim) -> BTreeSet<u32> {
    (0..LIBRARY)
        .filter(|n| {
            jellyfin
                .item(&jellyfin.movie_id(*n))
                .is_some_and(|i| i.user.played)
        })
        .collect()
}

/// Movies with a play on the Trakt simulator, by sample number.
fn trakt_played(trakt: &TraktSim) -> BTreeSet<u32> {
    trakt.history().iter().map(|(i, _)| movie_no(i)).collect()
}

/// A two-way Jellyfin ↔ Trakt pair on one feature (the watchlist, or the history of
/// movie plays) with removals on and the mass-delete guard lifted, so only the
/// completeness of each read stands between a damaged answer and a deletion on the
/// other side. Trakt reads 10 rows a page.
struct Duo {
    jellyfin: JellyfinSim,
    trakt: TraktSim,
    feature: &'static str,
    _setup: Setup,
    config: std::path::PathBuf,
}

impl Duo {
    async fn start(feature: &'static str) -> Duo {
        let jellyfin = JellyfinSim::builder().movies(LIBRARY).start().await;
        let trakt = TraktSim::start().await;
        let setup = Setup::new();
        let config = setup.config(&format!(
            "[guardrails]\nallow_mass_delete = true\n\n{}{}[[pairs]]\nname = \"jellyfin-trakt\"\nsource = \"jellyfin\"\ntarget = \"trakt\"\nmode = \"two-way\"\n\
             [pairs.features.{feature}]\nremove = true\n",
            jellyfin_block("jellyfin", &jellyfin),
            trakt_block("trakt", &trakt).replacen('\n', "\npage_limit = 10\n", 1),
        ));
        let duo = Duo {
            jellyfin,
            trakt,
            feature,
            _setup: setup,
            config,
        };
        // Titles on both pages of the library index, and across the page boundary, set
        // on Jellyfin; the first run copies them to Trakt.
        let kept: BTreeSet<u32> = (0..6).chain(195..215).chain(240..246).collect();
        for n in &kept {
            duo.set_on_jellyfin(*n);
        }
        duo.run().await.expect_code(0);
        assert_eq!((duo.sides()[1].list)(), kept, "{feature}");
        duo
    }

    async fn run(&self) -> common::Run {
        ferry(
            Some(&self.config),
            &["--json", "run", "--feature", self.feature],
        )
        .await
    }

    /// The user favourites, or plays, movie `n` on Jellyfin.
    fn set_on_jellyfin(&self, n: u32) {
        let id = self.jellyfin.movie_id(n);
        match self.feature {
            "history" => self.jellyfin.seed_played(&id, play_time(n).unix()),
            _ => self.jellyfin.seed_favorite(&id, true),
        }
    }

    /// The user adds one more title on both sides (each round takes the next one).
    fn add_on_both<'a>(&'a self, fresh: &'a mut std::ops::Range<u32>) -> impl FnMut() + 'a {
        move || {
            let n = fresh.next().expect("enough library");
            self.set_on_jellyfin(n);
            match self.feature {
                "history" => self
                    .trakt
                    .seed_history(&[(samples::movie(n), play_time(n))]),
                _ => self.trakt.seed_watchlist(&[samples::movie(n)]),
            }
        }
    }

    fn sides(&self) -> [common::Side<'_>; 2] {
        let history = self.feature == "history";
        [
            common::Side {
                name: "Jellyfin",
                list: Box::new(move || match history {
                    true => jellyfin_played(&self.jellyfin),
                    false => jellyfin_favorites(&self.jellyfin),
                }),
            },
            common::Side {
                name: "Trakt",
                list: Box::new(move || match history {
                    true => trakt_played(&self.trakt),
                    false => trakt_watchlist(&self.trakt),
                }),
            },
        ]
    }

    /// Measures how many `GET <path>` a run makes (`gets` counts them on the attacked
    /// simulator), then [`common::sweep`]s every read fault over them. Returns the runs made.
    async fn attack(
        &self,
        attacked: &dyn FaultControl,
        path: &str,
        gets: &dyn Fn() -> u64,
        rows: &[(&str, serde_json::Value)],
    ) -> u32 {
        let mut fresh = 100..LIBRARY;
        let mut add_on_both = self.add_on_both(&mut fresh);
        add_on_both();
        let before = gets();
        self.run().await.expect_code(0);
        let per_run = u32::try_from(gets() - before).unwrap();
        assert!(
            per_run >= 3,
            "GET {path}: read in pages? {per_run} requests"
        );
        let faults = common::read_faults(rows, true);
        common::sweep(
            (&self.config, self.feature),
            (attacked, path, per_run),
            faults,
            &mut add_on_both,
            &self.sides(),
        )
        .await
    }

    /// A clean run after a sweep: the user's real deletion of `n` on one side (an
    /// unfavourite, a play marked unwatched) is carried over to the other, alone, so the
    /// sweep did not pass by never removing anything.
    async fn a_real_deletion_is_still_carried_over(&self, n: u32, on_jellyfin: bool) {
        let history = self.feature == "history";
        let (from, to) = if on_jellyfin {
            let id = self.jellyfin.movie_id(n);
            match history {
                true => self.jellyfin.mark_unplayed(&id),
                false => self.jellyfin.seed_favorite(&id, false),
            }
            (0, 1)
        } else {
            let route = if history {
                "/sync/history/remove"
            } else {
                "/sync/watchlist/remove"
            };
            common::trakt_remove(&self.trakt, route, n).await;
            (1, 0)
        };
        let sides = self.sides();
        let before = (sides[to].list)();
        let clean = self.run().await;
        clean.expect_code(0);
        let (_, _, removed, _, _, _) = totals(&clean.summary());
        assert_eq!(removed, 1, "{}", clean.show());
        let expected: BTreeSet<u32> = before.into_iter().filter(|m| *m != n).collect();
        assert_eq!((sides[to].list)(), expected, "{}", sides[to].name);
        assert!(!(sides[from].list)().contains(&n));
    }
}

/// The attack on Jellyfin, replayed through the binary: every read fault at each
/// `GET /Items` of a run (the change checkpoints and both pages of the library index).
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_jellyfin_read_removes_a_title_from_trakt() {
    let duo = Duo::start("watchlist").await;
    let rows = [
        ("/Id", serde_json::json!(42)),
        ("/Type", serde_json::Value::Null),
        ("/UserData", serde_json::Value::Null),
        ("/UserData/IsFavorite", serde_json::json!("true")),
    ];
    let gets = || duo.jellyfin.requests_to("GET", "/Items");
    let rounds = duo.attack(&duo.jellyfin, "/Items", &gets, &rows).await;
    assert!(rounds >= 3 * 14, "{rounds} rounds");
    duo.a_real_deletion_is_still_carried_over(200, true).await;
}

/// The same attack on Trakt's watchlist pages (`X-Pagination-*` headers missing or not
/// counts, rows that do not decode, cut-off and failing pages).
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_trakt_read_removes_a_title_from_jellyfin() {
    let duo = Duo::start("watchlist").await;
    let rows = [
        ("/type", serde_json::json!(7)),
        ("/movie", serde_json::Value::Null),
        ("/movie/ids", serde_json::json!("tt1")),
    ];
    let gets = || duo.trakt.request_count("GET", "/sync/watchlist");
    let rounds = duo
        .attack(&duo.trakt, "/sync/watchlist", &gets, &rows)
        .await;
    assert!(rounds >= 3 * 13, "{rounds} rounds");
    duo.a_real_deletion_is_still_carried_over(201, false).await;
}

/// Plex's Discover watchlist (its change checkpoint and its page: `totalSize` missing or
/// not a count, rows that do not decode, cut-off, empty and failing answers), with Trakt
/// on the other side.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_plex_read_removes_a_title_from_trakt() {
    let plex = PlexSim::builder().movies(100).start().await;
    let path = "/library/sections/watchlist/all";
    common::sweep_against_trakt(common::Attacked {
        feature: "watchlist",
        name: "plex",
        block: plex_block("plex", &plex),
        faults: &plex,
        path: path.into(),
        gets: Box::new(|| plex.discover_requests(path)),
        list: Box::new(|| {
            let on: BTreeSet<String> = plex.watchlist().into_iter().collect();
            (0..100)
                .filter(|n| {
                    plex.item(PlexSim::movie_key(*n))
                        .is_some_and(|i| on.contains(i.discover_key()))
                })
                .collect()
        }),
        add: Box::new(|n| plex.seed_watchlist(PlexSim::movie_key(n))),
        rows: vec![
            ("/guid", serde_json::json!(7)),
            ("/type", serde_json::Value::Null),
        ],
        counted: true,
    })
    .await;
}

/// The sweep on the history of movie plays: every read fault at each `GET /Items` of a
/// Jellyfin ↔ Trakt history run. A play the damaged read did not show is never removed
/// from Trakt, and a play marked unwatched afterwards still is.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_jellyfin_read_removes_a_play_from_trakt() {
    let duo = Duo::start("history").await;
    let rows = [
        ("/UserData/Played", serde_json::json!("yes")),
        ("/UserData/LastPlayedDate", serde_json::json!(17)),
    ];
    let gets = || duo.jellyfin.requests_to("GET", "/Items");
    let rounds = duo.attack(&duo.jellyfin, "/Items", &gets, &rows).await;
    assert!(rounds >= 3 * 13, "{rounds} rounds");
    duo.a_real_deletion_is_still_carried_over(205, true).await;
}

/// Plex's library of 250 movies (two pages of 200; its checkpoint and its pages:
/// `totalSize` missing or not a count,
/// rows that do not decode, cut-off, empty and failing answers) on the ratings, with
/// Trakt on the other side: a rating the damaged read did not show is never removed.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_plex_read_removes_a_rating_from_trakt() {
    let plex = PlexSim::builder().movies(250).start().await;
    let path = "/library/sections/1/all";
    common::sweep_against_trakt(common::Attacked {
        feature: "ratings",
        name: "plex",
        block: plex_block("plex", &plex),
        faults: &plex,
        path: path.into(),
        gets: Box::new(|| plex.requests_to("GET", path)),
        list: Box::new(|| {
            (0..250)
                .filter(|n| {
                    plex.item(PlexSim::movie_key(*n))
                        .is_some_and(|i| i.user_rating.is_some())
                })
                .collect()
        }),
        add: Box::new(|n| plex.seed_rating(PlexSim::movie_key(n), Some(8.0))),
        rows: vec![
            ("/ratingKey", serde_json::json!([])),
            ("/userRating", serde_json::json!("eight")),
        ],
        counted: true,
    })
    .await;
}

/// How many `GET`s a simulator has answered under `prefix` (its writes not counted).
fn gets_under(routes: BTreeMap<String, u64>, prefix: &str) -> u64 {
    let prefix = format!("GET {prefix}");
    routes
        .iter()
        .filter(|(r, _)| r.starts_with(&prefix))
        .map(|(_, n)| n)
        .sum()
}

/// The movie numbers on a Jellyfin playlist, in order.
fn jellyfin_playlist(jellyfin: &JellyfinSim, id: &str) -> Vec<u32> {
    let by_id: BTreeMap<String, u32> = (0..LIBRARY).map(|n| (jellyfin.movie_id(n), n)).collect();
    jellyfin
        .playlists()
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| {
            p.entries
                .iter()
                .filter_map(|(_, item)| by_id.get(item).copied())
                .collect()
        })
        .unwrap_or_default()
}

/// The movie numbers on Trakt's personal list `name`, in order.
fn trakt_list(trakt: &TraktSim, name: &str) -> Vec<u32> {
    trakt
        .lists()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, items)| items.iter().map(movie_no).collect())
        .unwrap_or_default()
}

/// The sweep on playlists: a Jellyfin playlist and its Trakt list in a two-way pair with
/// removals on and the mass-delete block lifted; every read fault at each `GET
/// /Playlists/…` of a run (the playlist's owner and its entries), and then at each `GET`
/// of Trakt's list items. No title leaves either copy, and afterwards a title the user
/// takes off the Jellyfin playlist still leaves the Trakt list.
#[tokio::test(flavor = "multi_thread")]
async fn no_damaged_playlist_read_drops_a_title_from_the_other_copy() {
    let jellyfin = JellyfinSim::builder().movies(LIBRARY).start().await;
    let trakt = TraktSim::start().await;
    let first: Vec<String> = (0..12).map(|n| jellyfin.movie_id(n)).collect();
    let id = jellyfin.seed_playlist("Friday", jellyfin.user_id(), false, &first);
    let setup = Setup::new();
    let config = setup.config(&format!(
        "[guardrails]\nallow_mass_delete = true\n\n{}{}[[pairs]]\nname = \"jellyfin-trakt\"\nsource = \"jellyfin\"\ntarget = \"trakt\"\nmode = \"two-way\"\n\
         [pairs.features.playlists]\nremove = true\n",
        jellyfin_block("jellyfin", &jellyfin),
        trakt_block("trakt", &trakt),
    ));
    let args = ["--json", "run", "--feature", "playlists"];
    ferry(Some(&config), &args).await.expect_code(0);
    assert_eq!(trakt_list(&trakt, "Friday"), (0..12).collect::<Vec<_>>());

    let as_set = |v: Vec<u32>| v.into_iter().collect::<BTreeSet<u32>>();
    let sides = [
        common::Side {
            name: "Jellyfin",
            list: Box::new(|| as_set(jellyfin_playlist(&jellyfin, &id))),
        },
        common::Side {
            name: "Trakt",
            list: Box::new(|| as_set(trakt_list(&trakt, "Friday"))),
        },
    ];
    // Each round the user adds the next movie to the Jellyfin playlist, so both copies
    // are read again. Against Trakt the user only saves the playlist unchanged: its
    // `GET`s are then all reads (a write's own read of the list, failing past every
    // retry, rightly reports Trakt down).
    let mut fresh = 12..LIBRARY;
    let touch_only = std::cell::Cell::new(false);
    let mut step = || {
        if touch_only.get() {
            jellyfin.edit_playlist(&id, |_| {});
            return;
        }
        let n = fresh.next().expect("enough library");
        let item = jellyfin.movie_id(n);
        jellyfin.edit_playlist(&id, |e| e.push((format!("e{n:08}"), item)));
    };
    let mut rounds = 0;
    for (attacked, path, gets, rows) in [
        (
            &jellyfin as &dyn FaultControl,
            "/Playlists/",
            Box::new(|| gets_under(jellyfin.routes(), "/Playlists/")) as Box<dyn Fn() -> u64>,
            vec![
                ("/Id", serde_json::json!(42)),
                ("/ProviderIds", serde_json::json!("tmdb")),
            ],
        ),
        (
            &trakt,
            "/users/me/lists/",
            Box::new(|| gets_under(trakt.routes(), "/users/me/lists/")),
            vec![
                ("/type", serde_json::json!(7)),
                ("/movie/ids", serde_json::json!("tt1")),
            ],
        ),
    ] {
        touch_only.set(path.starts_with("/users"));
        // A clean run first, so the measured one reads without writing.
        ferry(Some(&config), &args).await.expect_code(0);
        step();
        let before = gets();
        ferry(Some(&config), &args).await.expect_code(0);
        let per_run = u32::try_from(gets() - before).unwrap();
        assert!(per_run >= 1, "GET {path}: {per_run} requests");
        let faults = common::read_faults(&rows, true);
        rounds += common::sweep(
            (&config, "playlists"),
            (attacked, path, per_run),
            faults,
            &mut step,
            &sides,
        )
        .await;
    }
    assert!(rounds >= 2 * 10, "{rounds} rounds");

    // A clean run copies what the faults held back; then the user takes movie 5 off
    // the Jellyfin playlist, and it leaves the Trakt list alone.
    ferry(Some(&config), &args).await.expect_code(0);
    let before = trakt_list(&trakt, "Friday");
    assert_eq!(
        as_set(before.clone()),
        as_set(jellyfin_playlist(&jellyfin, &id))
    );
    let gone = jellyfin.movie_id(5);
    jellyfin.edit_playlist(&id, |e| e.retain(|(_, item)| *item != gone));
    let clean = ferry(Some(&config), &args).await;
    clean.expect_code(0);
    let expected: Vec<u32> = before.into_iter().filter(|n| *n != 5).collect();
    assert_eq!(trakt_list(&trakt, "Friday"), expected, "{}", clean.show());
}

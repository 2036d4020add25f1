//! Emby-specific behaviour against the simulator's Emby flavour: user data Emby only
//! sends when asked, user-data writes that must carry the whole record, duplicates.

use std::time::Duration;

use emby::{EmbyConfig, EmbyProvider};
use ferry_core::{Context, Entry, Feature, InventoryOps, Outcome, Playlist, Secret};
use ferry_http::RetryPolicy;
use ferry_testkit::samples;
use ferry_testkit::sim::jellyfin::{JellyfinSim, TICKS_PER_MS};
use jellyfin::ServerOptions;

fn provider(sim: &JellyfinSim) -> EmbyProvider {
    let config = EmbyConfig {
        base_url: sim.uri(),
        api_key: Secret::new(sim.token()),
        user_id: sim.user_id().to_owned(),
    };
    let options = ServerOptions {
        retry: RetryPolicy::default()
            .with_max_attempts(3)
            .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        ..ServerOptions::default()
    };
    EmbyProvider::new("emby-test", config, options).expect("build")
}

fn cx() -> Context {
    Context::default()
}

#[tokio::test]
async fn history_asks_emby_for_the_play_dates_it_leaves_out_otherwise() {
    let sim = JellyfinSim::start_emby().await;
    let p = provider(&sim);
    for n in [2, 5] {
        sim.seed_played(&sim.movie_id(n), samples::time(100 * i64::from(n)).unix());
    }
    let snap = p.build_index(&cx(), Feature::History).await.unwrap();
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 2, "every play is read, with its date");
    for n in [2, 5] {
        let want = Entry::watch(samples::movie(n), samples::time(100 * i64::from(n)));
        assert!(snap.get(&want.key()).is_some(), "movie {n} at its date");
    }
    // The history checkpoint sees the newest play's date too.
    let before = p.activity(&cx(), Feature::History).await.unwrap().unwrap();
    sim.seed_played(&sim.movie_id(5), samples::time(900).unix());
    let after = p.activity(&cx(), Feature::History).await.unwrap().unwrap();
    assert_ne!(before, after, "a moved date of the newest play shows");
}

#[tokio::test]
async fn progress_writes_send_emby_the_whole_record_back() {
    let sim = JellyfinSim::start_emby().await;
    let p = provider(&sim);
    let id = sim.movie_id(7);
    sim.seed_played(&id, samples::time(0).unix());
    sim.seed_play_count(&id, 3);
    sim.seed_favorite(&id, true);
    let e = Entry::progress(samples::movie(7), 1_800_000, Some(6_000_000), None);
    let r = p
        .add(&cx(), Feature::Progress, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let u = sim.item(&id).unwrap().user;
    assert_eq!(u.position_ticks, 1_800_000 * TICKS_PER_MS);
    // Emby resets what the body leaves out: the rest of the record was sent back as read.
    assert!(u.played, "still played");
    assert_eq!(
        u.last_played,
        Some(samples::time(0).unix()),
        "history untouched"
    );
    assert_eq!(u.play_count, 3, "play count kept");
    assert!(u.favorite, "favourite kept");
    let user = sim.user_id();
    assert_eq!(
        sim.requests_to("GET", &format!("/Users/{user}/Items/{id}")),
        1,
        "the record is read first"
    );
    let r = p.remove(&cx(), Feature::Progress, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let u = sim.item(&id).unwrap().user;
    assert_eq!(u.position_ticks, 0);
    assert!(u.played && u.favorite && u.play_count == 3);
}

#[tokio::test]
async fn play_dates_set_through_user_data_keep_the_rest_of_the_record() {
    let sim = JellyfinSim::start_emby().await;
    sim.ignore_date_played(true);
    let p = provider(&sim);
    let id = sim.movie_id(4);
    sim.seed_play_count(&id, 2);
    sim.seed_favorite(&id, true);
    let e = Entry::watch(samples::movie(4), samples::time(1234));
    let r = p.add(&cx(), Feature::History, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let u = sim.item(&id).unwrap().user;
    assert_eq!(u.last_played, Some(samples::time(1234).unix()));
    assert!(u.played);
    assert!(u.favorite, "favourite kept");
    assert_eq!(u.play_count, 3, "the server's count of the play kept");
    let user = sim.user_id();
    assert_eq!(
        sim.requests_to("POST", &format!("/Users/{user}/Items/{id}/UserData")),
        1
    );
}

#[tokio::test]
async fn emby_playlists_keep_duplicates_as_before() {
    let sim = JellyfinSim::start_emby().await;
    let p = provider(&sim);
    let e = Entry::playlist(Playlist {
        name: "Friday".into(),
        description: None,
        items: [1, 2, 1].iter().map(|n| samples::movie(*n)).collect(),
    });
    let r = p.add(&cx(), Feature::Playlists, &[e]).await.unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed);
    let items: Vec<String> = sim.playlists()[0]
        .entries
        .iter()
        .map(|(_, i)| i.clone())
        .collect();
    assert_eq!(
        items,
        vec![sim.movie_id(1), sim.movie_id(2), sim.movie_id(1)]
    );
}

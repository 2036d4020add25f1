//! Feature rules through whole runs: progress, playlists, history removals, ratings.

mod common;

use common::*;
use ferry_core::{Entry, ErrorKind, Feature, Payload, Playlist, Rating, Timestamp};
use ferry_engine::{FeatureSwitch, RunConfig};
use ferry_testkit::fake::FakeOp;
use ferry_testkit::samples;

fn pos(w: &World, inst: &str, n: u32) -> Option<u64> {
    w.fake(inst)
        .entries(Feature::Progress)
        .into_iter()
        .find(|e| e.key() == samples::movie(n).key())
        .and_then(|e| match e.payload {
            Payload::Progress { position_ms, .. } => Some(position_ms),
            _ => None,
        })
}

#[tokio::test]
async fn progress_newest_wins_and_never_regresses_without_timestamps() {
    const P: Feature = Feature::Progress;
    let w = World::new(&["plex", "jellyfin"]);
    let p = |n: u32, ms: u64, at: Option<i64>| {
        Entry::progress(
            samples::movie(n),
            ms,
            Some(6_000_000),
            at.map(samples::time),
        )
    };
    w.fake("plex").seed(
        P,
        [
            p(1, 1_000_000, Some(100)),
            p(2, 3_000_000, None),
            p(3, 500_000, Some(900)),
        ],
    );
    w.fake("jellyfin").seed(
        P,
        [
            p(1, 2_000_000, Some(50)),
            p(2, 1_000_000, None),
            p(3, 4_000_000, Some(10)),
        ],
    );
    let c = cfg(vec![
        pair("p", "plex", "jellyfin", P, FeatureSwitch::default()).two_way(),
    ]);
    w.run(&c).await;
    assert_eq!(
        pos(&w, "jellyfin", 1),
        Some(1_000_000),
        "plex's newer rewind wins"
    );
    assert_eq!(
        pos(&w, "jellyfin", 2),
        Some(3_000_000),
        "no timestamps: never regress"
    );
    assert_eq!(pos(&w, "plex", 2), Some(3_000_000));
    assert_eq!(
        pos(&w, "jellyfin", 3),
        Some(500_000),
        "newer wins even backwards"
    );
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", P).updated(), 0);
}

fn list(items: &[u32]) -> Entry {
    Entry::playlist(Playlist {
        name: "Friday".into(),
        description: None,
        items: items.iter().map(|n| samples::movie(*n)).collect(),
    })
}

fn items_of(w: &World, inst: &str) -> Vec<String> {
    let e = w.fake(inst).entries(Feature::Playlists);
    match &e[0].payload {
        Payload::Playlist(p) => p.items.iter().map(|i| i.key()).collect(),
        _ => Vec::new(),
    }
}

/// Plex's playlist of `items` in a two-way pair with Trakt, removals on, after the first
/// run copied it.
async fn two_way_playlist(items: &[u32]) -> (World, RunConfig) {
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(Feature::Playlists, [list(items)]);
    let c = cfg(vec![
        pair(
            "p",
            "plex",
            "trakt",
            Feature::Playlists,
            FeatureSwitch::with_removals(),
        )
        .two_way(),
    ]);
    w.run(&c).await;
    assert_eq!(items_of(&w, "trakt").len(), items.len());
    (w, c)
}

#[tokio::test]
async fn playlists_are_ordered_sets_and_lose_nothing_without_evidence() {
    const L: Feature = Feature::Playlists;
    let w = World::new(&["plex", "trakt"]);
    w.fake("plex").seed(L, [list(&[3, 1, 2])]);
    w.fake("trakt").seed(L, [list(&[1, 9])]);
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        L,
        FeatureSwitch::with_removals(),
    )]);
    w.run(&c).await;
    let k = |n: u32| samples::movie(n).key();
    assert_eq!(
        items_of(&w, "trakt"),
        [k(3), k(1), k(2), k(9)],
        "source order, target's own title kept"
    );
    // The source drops title 1: with removals on, it goes from the target too.
    w.fake("plex").user_edit(L, |e| *e = vec![list(&[3, 2])]);
    w.run(&c).await;
    assert_eq!(items_of(&w, "trakt"), [k(3), k(2), k(9)]);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", L).updated(), 0);
}

/// A title dropped from a playlist on one side, whose removal from the other side's copy
/// failed, is neither forgotten nor written back: the next run removes it.
#[tokio::test]
async fn a_playlist_drop_whose_write_failed_is_carried_out_next_run_not_reversed() {
    const L: Feature = Feature::Playlists;
    let (w, c) = two_way_playlist(&[1, 2, 3]).await;
    let k = |n: u32| samples::movie(n).key();
    assert_eq!(items_of(&w, "trakt"), [k(1), k(2), k(3)]);
    w.fake("plex").user_edit(L, |e| *e = vec![list(&[1, 3])]);
    w.fake("trakt")
        .fail_next(FakeOp::Add, ErrorKind::Unavailable, 1);
    w.run(&c).await;
    assert_eq!(
        items_of(&w, "trakt"),
        [k(1), k(2), k(3)],
        "the write failed"
    );
    w.run(&c).await;
    assert_eq!(items_of(&w, "plex"), [k(1), k(3)], "plex's drop reversed");
    assert_eq!(
        items_of(&w, "trakt"),
        [k(1), k(3)],
        "plex's drop not carried out"
    );
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", L).updated(), 0);
}

/// A playlist read empty that held titles at the last commit is one empty answer (a
/// lie looks the same): nothing leaves the other side's copy on its strength.
#[tokio::test]
async fn one_empty_answer_for_a_playlist_removes_nothing() {
    const L: Feature = Feature::Playlists;
    let (w, c) = two_way_playlist(&[1, 2, 3, 4, 5, 6]).await;
    let k = |n: u32| samples::movie(n).key();
    let all: Vec<String> = (1..=6).map(k).collect();
    assert_eq!(items_of(&w, "trakt"), all);
    // Plex's user adds a title (so the feature is read); Trakt answers its playlist
    // empty once, its checkpoint unmoved.
    w.fake("plex")
        .user_edit(L, |e| *e = vec![list(&[1, 2, 3, 4, 5, 6, 7])]);
    w.fake("trakt").seed(L, [list(&[])]);
    let s = w.run(&c).await;
    assert_eq!(items_of(&w, "plex").len(), 7, "plex lost titles");
    assert_eq!(feat(&s, "p", L).to_a.updated, 0);
    // The lie is over: the next run carries Plex's new title over, and nothing was lost.
    w.fake("trakt").seed(L, [list(&[1, 2, 3, 4, 5, 6])]);
    w.run(&c).await;
    let mut all7 = all.clone();
    all7.push(k(7));
    assert_eq!(items_of(&w, "plex"), all7);
    assert_eq!(items_of(&w, "trakt"), all7);
}

/// A user who really empties a playlist sees it carried out by the second run that reads
/// it so, as for a list (`docs/engine.md`, empty reads).
#[tokio::test]
async fn a_playlist_the_user_emptied_is_emptied_on_the_other_side_after_a_second_read() {
    const L: Feature = Feature::Playlists;
    let (w, c) = two_way_playlist(&[1, 2, 3]).await;
    w.fake("trakt").user_edit(L, |e| *e = vec![list(&[])]);
    w.run(&c).await;
    assert_eq!(items_of(&w, "plex").len(), 3, "emptied on one read");
    w.run(&c).await;
    assert_eq!(
        items_of(&w, "plex"),
        Vec::<String>::new(),
        "never confirmed"
    );
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", L).updated(), 0);
}

/// Titles dropped from playlists count against the mass-delete budget like removals:
/// one side dropping 15 of a 20-title playlist is blocked (held, its evidence kept) until
/// the user allows it.
#[tokio::test]
async fn dropping_most_of_a_playlist_is_held_by_the_mass_delete_block() {
    const L: Feature = Feature::Playlists;
    let twenty: Vec<u32> = (1..=20).collect();
    let (w, mut c) = two_way_playlist(&twenty).await;
    w.fake("trakt")
        .user_edit(L, |e| *e = vec![list(&[1, 2, 3, 4, 5])]);
    let s = w.run(&c).await;
    assert_eq!(
        items_of(&w, "plex").len(),
        20,
        "15 titles dropped in one go"
    );
    assert_eq!(items_of(&w, "trakt").len(), 5, "the drop written back");
    assert_eq!(feat(&s, "p", L).mass_delete.len(), 1);
    // Held, not forgotten: the user lifts the block for one run.
    w.run(&c).await;
    assert_eq!(items_of(&w, "plex").len(), 20);
    c.allow_mass_delete = true;
    w.run(&c).await;
    let k = |n: u32| samples::movie(n).key();
    assert_eq!(items_of(&w, "plex"), (1..=5).map(k).collect::<Vec<_>>());
}

#[tokio::test]
async fn history_removal_propagates_one_play_not_the_title() {
    const H: Feature = Feature::History;
    let w = World::new(&["plex", "trakt"]);
    let play = |off: i64| Entry::watch(samples::movie(1), samples::time(off));
    w.fake("plex")
        .seed(H, [play(0), play(86_400), play(172_800)]);
    let c = cfg(vec![
        pair("p", "plex", "trakt", H, FeatureSwitch::with_removals()).two_way(),
    ]);
    w.run(&c).await;
    assert_eq!(w.fake("trakt").entries(H).len(), 3);
    // The user deletes the middle play on Trakt.
    let mid = play(86_400).key();
    w.fake("trakt")
        .user_edit(H, |e| e.retain(|x| x.key() != mid));
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", H).to_a.removed, 1);
    assert_eq!(w.fake("plex").entries(H).len(), 2);
    let s = w.run(&c).await;
    assert_eq!(feat(&s, "p", H).added() + feat(&s, "p", H).removed(), 0);
    assert_eq!(w.engine.state().tombstone_count().unwrap(), 1);
}

#[tokio::test]
async fn one_way_ratings_take_the_source_unless_the_target_is_newer() {
    const R: Feature = Feature::Ratings;
    let w = World::new(&["plex", "trakt"]);
    let r = |n: u32, v: u8, at: Option<i64>| {
        Entry::rating(
            samples::movie(n),
            Rating::new(v).unwrap(),
            at.map(|a| Timestamp::from_unix(samples::BASE_TIME + a)),
        )
    };
    w.fake("plex")
        .seed(R, [r(1, 9, Some(10)), r(2, 9, None), r(3, 9, Some(100))]);
    w.fake("trakt")
        .seed(R, [r(1, 3, Some(50)), r(2, 3, None), r(3, 3, Some(20))]);
    let c = cfg(vec![pair(
        "p",
        "plex",
        "trakt",
        R,
        FeatureSwitch::default(),
    )]);
    let s = w.run(&c).await;
    assert_eq!(
        feat(&s, "p", R).to_b.updated,
        2,
        "items 2 and 3; item 1 is newer on the target"
    );
}

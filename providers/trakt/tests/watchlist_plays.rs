//! Trakt takes a title off the watchlist once it is watched. When ferry wrote that play,
//! the title stays in the watchlist snapshot (ferry caused the removal, the user did
//! not), until ferry's own `remove` is asked to remove it or Trakt lists it again.

mod common;

use std::time::Duration;

use ferry_core::{Entry, Feature, IdKind, Ids, InventoryOps, Item, Outcome, Snapshot, WriteReport};
use ferry_testkit::samples;
use ferry_testkit::sim::trakt::{Fault, FaultRule, TraktLimits};

use common::{Rig, collecting, cx, rig, rig_on, sim};

const NAMESPACE: &str = "trakt.watchlist";

async fn watchlist(r: &Rig) -> Snapshot {
    r.provider
        .build_index(&cx(), Feature::Watchlist)
        .await
        .unwrap()
}

/// ferry writes a play of `item` (as another server would name it).
async fn play(r: &Rig, item: Item) {
    let report = r
        .provider
        .add(
            &cx(),
            Feature::History,
            &[Entry::watch(item, samples::time(0))],
        )
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
}

/// The movie as a media server might know it: by its imdb id alone.
/// ferry adds (`"add"`) or removes (`"remove"`) one watchlist entry on Trakt.
async fn listing(r: &Rig, op: &str, item: Item) -> WriteReport {
    let entries = [Entry::watchlist(item)];
    let p = &r.provider;
    match op {
        "add" => p.add(&cx(), Feature::Watchlist, &entries).await,
        _ => p.remove(&cx(), Feature::Watchlist, &entries).await,
    }
    .unwrap()
}

fn by_imdb(n: u32) -> Item {
    let m = samples::movie(n);
    let imdb = m.ids.get(IdKind::Imdb).unwrap().to_owned();
    Item {
        ids: Ids::new().with(IdKind::Imdb, &imdb),
        ..m
    }
}

fn has(snap: &Snapshot, item: &Item) -> bool {
    snap.contains_key(&item.key())
}

#[tokio::test]
async fn a_movie_ferry_played_stays_until_ferry_removes_it() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1), samples::movie(2)]);
    let r = rig(&sim);
    let first = watchlist(&r).await;
    assert!(has(&first, &samples::movie(1)));
    let before = sim.last_activities()["watchlist"]["updated_at"].clone();

    play(&r, by_imdb(1)).await;
    assert_eq!(sim.watchlist().len(), 1, "Trakt took the watched movie off");
    assert_ne!(sim.last_activities()["watchlist"]["updated_at"], before);

    let reads = sim.requests("/sync/watchlist");
    let (ctx, events) = collecting();
    let snap = r
        .provider
        .build_index(&ctx, Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert!(has(&snap, &samples::movie(1)), "ferry caused that removal");
    assert!(has(&snap, &samples::movie(2)));
    assert_eq!(snap.len(), 2);
    assert_eq!(
        sim.requests("/sync/watchlist"),
        reads + 1,
        "no extra requests"
    );
    let retained = events.named("trakt:watchlist_retained");
    assert_eq!(retained.len(), 1, "{}", events.dump());
    assert_eq!(retained[0].u64("retained"), Some(1));

    // Still missing on Trakt: still retained.
    assert!(has(&watchlist(&r).await, &samples::movie(1)));

    // The user removes it elsewhere and a two-way pair asks ferry to remove it here.
    let report = listing(&r, "remove", samples::movie(1)).await;
    assert_eq!(report.items[0].outcome, Outcome::AlreadyAbsent);
    let snap = watchlist(&r).await;
    assert!(!has(&snap, &samples::movie(1)), "no longer retained");
    assert_eq!(snap.len(), 1);
}

#[tokio::test]
async fn a_show_stays_when_ferry_plays_one_of_its_episodes() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::show(3), samples::movie(1)]);
    let r = rig(&sim);
    assert!(has(&watchlist(&r).await, &samples::show(3)));

    play(&r, samples::episode(3, 1, 1)).await;
    assert_eq!(sim.watchlist().len(), 1, "Trakt took the show off");

    let snap = watchlist(&r).await;
    assert!(snap.is_complete());
    assert!(has(&snap, &samples::show(3)));
    assert!(has(&snap, &samples::movie(1)));
    assert_eq!(snap.len(), 2);
}

#[tokio::test]
async fn a_title_the_user_removes_on_trakt_is_a_deletion() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1), samples::movie(2)]);
    let r = rig(&sim);
    assert_eq!(watchlist(&r).await.len(), 2);
    // ferry writes a play of something else; the user removes movie 1 on trakt.tv.
    play(&r, samples::movie(7)).await;
    sim.unwatchlist(&[samples::movie(1)]);

    let (ctx, events) = collecting();
    let snap = r
        .provider
        .build_index(&ctx, Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert!(!has(&snap, &samples::movie(1)));
    assert!(!has(&snap, &samples::movie(7)));
    assert_eq!(snap.len(), 1);
    assert!(events.named("trakt:watchlist_retained").is_empty());
}

#[tokio::test]
async fn nothing_is_invented_for_titles_not_seen_on_the_watchlist_since_the_play() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1)]);
    let r = rig(&sim);
    assert_eq!(watchlist(&r).await.len(), 1);

    // Never on the watchlist.
    play(&r, samples::movie(5)).await;
    // Put on the watchlist on trakt.tv after the last read, then played by ferry.
    sim.seed_watchlist(&[samples::movie(6)]);
    play(&r, samples::movie(6)).await;
    assert_eq!(sim.watchlist().len(), 1);
    let snap = watchlist(&r).await;
    assert!(!has(&snap, &samples::movie(5)));
    assert!(!has(&snap, &samples::movie(6)));
    assert_eq!(snap.len(), 1);

    // Played long before it was seen on the watchlist: the removal is the user's.
    r.clock.advance(Duration::from_secs(3 * 3600));
    sim.seed_watchlist(&[samples::movie(5)]);
    assert!(has(&watchlist(&r).await, &samples::movie(5)));
    sim.unwatchlist(&[samples::movie(5)]);
    assert!(!has(&watchlist(&r).await, &samples::movie(5)));
}

#[tokio::test]
async fn a_partial_read_does_not_change_the_records() {
    let sim = sim().await;
    sim.seed_watchlist(&(1..=4).map(samples::movie).collect::<Vec<_>>());
    let r = rig(&sim);
    assert_eq!(watchlist(&r).await.len(), 4);
    play(&r, samples::movie(1)).await;
    let seen = r.kv.get(NAMESPACE, "trakt-test:seen").unwrap();
    let played = r.kv.get(NAMESPACE, "trakt-test:played").unwrap();
    assert!(seen.is_some() && played.is_some());

    sim.inject(FaultRule::new(Fault::Truncate).on("/sync/watchlist"));
    let snap = watchlist(&r).await;
    assert!(!snap.is_complete());
    assert!(
        !has(&snap, &samples::movie(1)),
        "a partial read keeps nothing"
    );
    assert_eq!(r.kv.get(NAMESPACE, "trakt-test:seen").unwrap(), seen);
    assert_eq!(r.kv.get(NAMESPACE, "trakt-test:played").unwrap(), played);

    // The next complete read still knows movie 1 was on the watchlist before ferry's play.
    let snap = watchlist(&r).await;
    assert!(snap.is_complete());
    assert!(has(&snap, &samples::movie(1)));
    assert_eq!(snap.len(), 4);
}

#[tokio::test]
async fn a_retained_title_listed_again_is_trakts_own_again() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1)]);
    let r = rig(&sim);
    watchlist(&r).await;
    play(&r, samples::movie(1)).await;
    assert!(has(&watchlist(&r).await, &samples::movie(1)));
    // The user puts it back on trakt.tv, then takes it off again.
    sim.seed_watchlist(&[samples::movie(1)]);
    r.clock.advance(Duration::from_secs(3 * 3600));
    assert!(has(&watchlist(&r).await, &samples::movie(1)));
    sim.unwatchlist(&[samples::movie(1)]);
    assert!(!has(&watchlist(&r).await, &samples::movie(1)));
}

#[tokio::test]
async fn a_title_ferry_added_and_then_played_stays() {
    let sim = sim().await;
    let r = rig(&sim);
    assert!(watchlist(&r).await.is_empty());
    let report = listing(&r, "add", samples::movie(4)).await;
    assert_eq!(report.items[0].outcome, Outcome::Confirmed);
    play(&r, samples::movie(4)).await;
    assert!(sim.watchlist().is_empty());
    assert!(has(&watchlist(&r).await, &samples::movie(4)));
}

#[tokio::test]
async fn unreadable_records_are_reported_and_taken_as_empty() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1), samples::movie(2)]);
    let r = rig(&sim);
    r.kv.put(NAMESPACE, "trakt-test:seen", "{not json").unwrap();
    r.kv.put(NAMESPACE, "trakt-test:played", "[]").unwrap();
    let (ctx, events) = collecting();
    let snap = r
        .provider
        .build_index(&ctx, Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.len(), 2, "every row Trakt listed is there");
    assert_eq!(
        events.named("trakt:watchlist_memo").len(),
        2,
        "{}",
        events.dump()
    );
    // The records are rewritten and work again.
    play(&r, samples::movie(2)).await;
    assert!(has(&watchlist(&r).await, &samples::movie(2)));
}

#[tokio::test]
async fn a_play_never_sent_is_not_taken_for_the_cause_of_a_removal() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(1), samples::movie(200)]);
    let r = rig(&sim);
    assert_eq!(watchlist(&r).await.len(), 2);
    // Two batches of plays; the first fails with Trakt down, so the second (holding
    // movie 200) is never sent.
    sim.inject(
        FaultRule::new(Fault::Status(503))
            .on("/sync/history")
            .method("POST")
            .times(10),
    );
    let plays: Vec<Entry> = (100..=200)
        .map(|n| Entry::watch(samples::movie(n), samples::time(i64::from(n))))
        .collect();
    let report = r
        .provider
        .add(&cx(), Feature::History, &plays)
        .await
        .unwrap();
    assert!(report.items.iter().all(|i| !i.outcome.is_settled()));
    assert_eq!(sim.request_count("POST", "/sync/history"), 1);
    // The user removes movie 200 on trakt.tv: a removal ferry did not cause.
    sim.unwatchlist(&[samples::movie(200)]);
    let snap = watchlist(&r).await;
    assert!(snap.is_complete());
    assert!(!has(&snap, &samples::movie(200)));
    assert_eq!(snap.len(), 1);
}

/// The records as the previous version (1) wrote them: whole, one JSON object each.
#[tokio::test]
async fn records_the_previous_version_wrote_are_read_and_kept() {
    let sim = sim().await;
    sim.seed_watchlist(&[samples::movie(2)]);
    let r = rig(&sim);
    let now_ms = ferry_http::Clock::unix_ms(&*r.clock);
    let seen = serde_json::json!({
        "v": 1,
        "at": now_ms,
        "entries": {
            samples::movie(1).key(): {
                "entry": Entry::watchlist(samples::movie(1)),
                "at": now_ms,
                "retained": false,
            },
        },
    });
    r.kv.put(NAMESPACE, "trakt-test:seen", &seen.to_string())
        .unwrap();
    r.kv.put(NAMESPACE, "trakt-test:played", r#"{"v":1,"plays":{}}"#)
        .unwrap();
    // Movie 1 was on the watchlist at the last read; ferry plays it, Trakt takes it off.
    play(&r, samples::movie(1)).await;
    let (ctx, events) = collecting();
    let snap = r
        .provider
        .build_index(&ctx, Feature::Watchlist)
        .await
        .unwrap();
    assert!(
        has(&snap, &samples::movie(1)),
        "retained from the old record"
    );
    assert!(has(&snap, &samples::movie(2)));
    assert!(
        events.named("trakt:watchlist_memo").is_empty(),
        "{}",
        events.dump()
    );
    // Rewritten in the current version, and still read the same.
    let raw = r.kv.get(NAMESPACE, "trakt-test:seen").unwrap().unwrap();
    assert!(raw.starts_with(r#"{"v":2,"#), "{raw}");
    assert!(has(&watchlist(&r).await, &samples::movie(1)));
}

/// The records are kept as changes per batch between rewrites: a provider started
/// afresh on the same state reads all of them.
#[tokio::test]
async fn the_records_of_a_sync_in_batches_outlive_the_provider() {
    let sim = sim().await;
    sim.set_limits(TraktLimits::VIP);
    let r = rig(&sim);
    assert!(watchlist(&r).await.is_empty());
    let entries: Vec<Entry> = (0..250)
        .map(|n| Entry::watchlist(samples::movie(n)))
        .collect();
    for batch in entries.chunks(100) {
        let report = r
            .provider
            .add(&cx(), Feature::Watchlist, batch)
            .await
            .unwrap();
        assert_eq!(report.confirmed(), batch.len());
    }
    play(&r, samples::movie(0)).await;
    play(&r, samples::movie(249)).await;
    assert_eq!(
        sim.watchlist().len(),
        248,
        "Trakt took the played titles off"
    );

    let again = rig_on(common::config(&sim), r.kv.clone(), None);
    let (ctx, events) = collecting();
    let snap = again
        .provider
        .build_index(&ctx, Feature::Watchlist)
        .await
        .unwrap();
    assert!(snap.is_complete());
    assert!(has(&snap, &samples::movie(0)), "added in the first batch");
    assert!(has(&snap, &samples::movie(249)), "added in the last batch");
    assert_eq!(snap.len(), 250);
    assert!(
        events.named("trakt:watchlist_memo").is_empty(),
        "{}",
        events.dump()
    );
}

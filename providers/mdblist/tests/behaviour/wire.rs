//! MDBList's answers in the loose shapes a live service may send, served verbatim: a
//! flag or an echo of another type than expected is tolerated where it proves nothing,
//! and never turns into a confirmation or a complete read it does not prove.

use std::sync::Arc;

use ferry_core::{
    Context, Entry, Feature, IdKind, Ids, InventoryOps, Item, Outcome, Secret, UnresolvedReason,
};
use ferry_http::ManualClock;
use mdblist::{MdblistConfig, MdblistOptions, MdblistProvider};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider(server: &MockServer) -> MdblistProvider {
    let config = MdblistConfig {
        api_key: Secret::new("key-123456"),
        base_url: Some(server.uri()),
        page_size: None,
    };
    let options = MdblistOptions {
        clock: Some(Arc::new(ManualClock::new(1_750_000_000))),
        ..MdblistOptions::default()
    };
    MdblistProvider::new("mdblist-wire", config, options).expect("build")
}

/// Answers `verb route` with `body`; `first` answers only the first such request (and
/// wins over the others while it lasts).
async fn serve(server: &MockServer, verb: &str, route: &str, body: Value, first: bool) {
    let mock = Mock::given(method(verb))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(body));
    let mock = if first {
        mock.up_to_n_times(1).with_priority(1)
    } else {
        mock
    };
    mock.mount(server).await;
}

fn movie(n: u32) -> Item {
    let ids = Ids::new()
        .with(IdKind::Imdb, &format!("tt{n:07}"))
        .with(IdKind::Tmdb, &n.to_string());
    Item::movie(format!("Movie {n}"), 2000, ids)
}

fn watchlist_row(n: u32) -> Value {
    json!({"id": n, "imdb_id": format!("tt{n:07}"), "mediatype": "movie", "title": format!("Movie {n}")})
}

fn unresolved(o: &Outcome) -> Option<UnresolvedReason> {
    match o {
        Outcome::Unresolved { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[tokio::test]
async fn a_has_more_of_another_type_leaves_the_totals_to_decide() {
    let server = MockServer::start().await;
    let page = |more: Value, totals: bool| {
        let mut p = json!({"offset": 0, "limit": 200, "has_more": more});
        if totals {
            p["total_movies"] = json!(1);
            p["total_shows"] = json!(0);
        }
        json!({"movies": [watchlist_row(1)], "shows": [], "pagination": p})
    };
    serve(
        &server,
        "GET",
        "/watchlist/items",
        page(json!("no"), true),
        true,
    )
    .await;
    serve(
        &server,
        "GET",
        "/watchlist/items",
        page(json!(1), false),
        false,
    )
    .await;
    let p = provider(&server);
    let cx = Context::default();
    let snap = p.build_index(&cx, Feature::Watchlist).await.unwrap();
    assert!(snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 1);
    // Neither totals nor a boolean `has_more`: nothing proves the end of the list.
    let snap = p.build_index(&cx, Feature::Watchlist).await.unwrap();
    assert!(!snap.is_complete(), "{:?}", snap.completeness());
    assert_eq!(snap.len(), 1);
}

#[tokio::test]
async fn odd_not_found_echoes_leave_the_titles_echoed_by_their_ids_not_found() {
    let server = MockServer::start().await;
    let list = |rows: Vec<Value>| {
        let n = rows.len();
        json!({"movies": rows, "shows": [], "pagination": {"has_more": false, "total_movies": n, "total_shows": 0}})
    };
    // The read that plans, then the re-read that confirms.
    serve(&server, "GET", "/watchlist/items", list(vec![]), true).await;
    serve(
        &server,
        "GET",
        "/watchlist/items",
        list(vec![watchlist_row(1)]),
        false,
    )
    .await;
    let answer = json!({"added": {"movies": 1}, "existing": {"movies": 0},
        "not_found": {"movies": ["odd", 7, {"imdb": "tt0000002", "tmdb": 2}], "shows": []}});
    serve(&server, "POST", "/watchlist/items/add", answer, false).await;
    let p = provider(&server);
    let entries = [Entry::watchlist(movie(1)), Entry::watchlist(movie(2))];
    let r = p
        .add(&Context::default(), Feature::Watchlist, &entries)
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::Confirmed, "{r:?}");
    assert_eq!(
        unresolved(&r.items[1].outcome),
        Some(UnresolvedReason::NotFound),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_play_id_echoed_as_text_is_already_absent() {
    let server = MockServer::start().await;
    let play = json!({"play_id": 42, "watched_at": "2025-06-01T20:00:00Z",
        "movie": {"title": "Movie 1", "year": 2000, "ids": {"imdb": "tt0000001", "tmdb": 1}}});
    let list = json!({"movies": [play], "episodes": [],
        "pagination": {"has_more": false, "total_movies": 1, "total_episodes": 0}});
    serve(&server, "GET", "/sync/watched", list, false).await;
    let answer =
        json!({"removed": {"movies": 0, "episodes": 0}, "not_found": {"play_ids": ["42"]}});
    serve(&server, "POST", "/sync/watched/plays/remove", answer, false).await;
    let p = provider(&server);
    let at = ferry_core::Timestamp::parse("2025-06-01T20:00:00Z").unwrap();
    let r = p
        .remove(
            &Context::default(),
            Feature::History,
            &[Entry::watch(movie(1), at)],
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].outcome, Outcome::AlreadyAbsent, "{r:?}");
    let sent = server.received_requests().await.unwrap_or_default();
    let post = sent
        .iter()
        .find(|q| q.method.as_str() == "POST")
        .expect("one removal");
    assert_eq!(
        post.body_json::<Value>().unwrap(),
        json!({"play_ids": [42]})
    );
    assert_eq!(sent.len(), 2, "answered by the echo, no re-read");
}

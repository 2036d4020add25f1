//! Request building, response helpers, classification and `api:hit` against wiremock.

mod common;

use common::Rig;
use ferry_core::{ErrorKind, ErrorStatus, Secret};
use ferry_http::{AuthScheme, EXCERPT_MAX_CHARS, RetryPolicy, USER_AGENT, header::HeaderName};
use serde::Deserialize;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Debug, Deserialize, PartialEq)]
struct Show {
    title: String,
    year: u32,
}

#[tokio::test]
async fn get_json_sends_headers_query_and_reads_pagination() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sync/watchlist"))
        .and(header("user-agent", USER_AGENT))
        .and(header("accept", "application/json"))
        .and(header("trakt-api-version", "2"))
        .and(header("trakt-api-key", "client-id-1234"))
        .and(header("authorization", "Bearer access-5678"))
        .and(header("x-request-tag", "sync"))
        .and(query_param("page", "2"))
        .and(query_param("limit", "10"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"title": "Dark", "year": 2017}]))
                .insert_header("X-Pagination-Page", "2")
                .insert_header("X-Pagination-Limit", "10")
                .insert_header("X-Pagination-Page-Count", "3")
                .insert_header("X-Pagination-Item-Count", "21"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .header("trakt-api-version", "2")
        .secret_header("trakt-api-key", &Secret::new("client-id-1234"))
        .bearer(&Secret::new("access-5678"))
        .build()
        .unwrap();
    let resp = http
        .get("GET /sync/watchlist", "/sync/watchlist")
        .query("page", 2)
        .query("limit", 10)
        .header("X-Request-Tag", "sync")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let p = resp.pagination();
    assert_eq!(
        (p.page, p.limit, p.page_count, p.item_count),
        (Some(2), Some(10), Some(3), Some(21))
    );
    assert!(p.has_next());
    assert_eq!(resp.header_u64("x-pagination-item-count"), Some(21));
    let shows: Vec<Show> = resp.json().unwrap();
    assert_eq!(
        shows,
        [Show {
            title: "Dark".into(),
            year: 2017
        }]
    );
    assert_eq!(USER_AGENT, format!("ferry/{}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn api_hit_is_emitted_for_every_exchange() {
    let server = MockServer::start().await;
    Mock::given(path("/users/settings"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": {}})))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    let v: serde_json::Value = http
        .get_json(&rig.cx, "GET /users/settings", "/users/settings")
        .await
        .unwrap();
    assert_eq!(v, json!({"user": {}}));
    let hits = rig.sink.named("api:hit");
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert_eq!(h.str("provider"), Some("trakt"));
    assert_eq!(h.str("instance"), Some("trakt-test"));
    assert_eq!(h.str("op"), Some("GET /users/settings"));
    assert_eq!(h.str("method"), Some("GET"));
    assert_eq!(h.u64("status"), Some(200));
    assert_eq!(h.get("ok"), Some(&json!(true)));
    assert!(h.u64("ms").is_some());
}

#[tokio::test]
async fn base_url_keeps_a_reverse_proxy_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jellyfin/Users"))
        .and(header("x-emby-token", "jf-token-9876"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(2)
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&format!("{}/jellyfin/", server.uri()))
        .auth(
            AuthScheme::Header(HeaderName::from_static("x-emby-token")),
            &Secret::new("jf-token-9876"),
        )
        .build()
        .unwrap();
    let a: Vec<serde_json::Value> = http
        .get_json(&rig.cx, "GET /Users", "/Users")
        .await
        .unwrap();
    let b: Vec<serde_json::Value> = http.get_json(&rig.cx, "GET /Users", "Users").await.unwrap();
    assert!(a.is_empty() && b.is_empty());
}

#[tokio::test]
async fn query_auth_post_json_and_delete_with_empty_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sync/watchlist"))
        .and(query_param("apikey", "mdb-key-4321"))
        .and(body_json(
            json!({"movies": [{"ids": {"imdb": "tt0133093"}}]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"added": {"movies": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/lists/7"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .auth(
            AuthScheme::Query("apikey".into()),
            &Secret::new("mdb-key-4321"),
        )
        .build()
        .unwrap();
    let added: serde_json::Value = http
        .post_json(
            &rig.cx,
            "POST /sync/watchlist",
            "/sync/watchlist",
            &json!({"movies": [{"ids": {"imdb": "tt0133093"}}]}),
        )
        .await
        .unwrap();
    assert_eq!(added["added"]["movies"], 1);
    let () = http
        .delete_json(&rig.cx, "DELETE /lists/{id}", "/lists/7")
        .await
        .unwrap();
    let resp = http
        .delete("DELETE /lists/{id}", "/lists/7")
        .send(&rig.cx)
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.json::<Option<u32>>().unwrap(), None);
}

#[tokio::test]
async fn statuses_become_core_error_kinds_with_provider_and_op() {
    use ErrorKind as K;
    let server = MockServer::start().await;
    let cases = [
        (400, K::InvalidInput),
        (401, K::Auth),
        (403, K::Auth),
        (404, K::NotFound),
        (408, K::Unavailable),
        (409, K::Conflict),
        (420, K::AccountLimit),
        (422, K::InvalidInput),
        (423, K::Locked),
        (429, K::RateLimited),
        (500, K::Unavailable),
        (502, K::Unavailable),
        (503, K::Unavailable),
        (504, K::Unavailable),
    ];
    for (status, _) in cases {
        Mock::given(path(format!("/s/{status}")))
            .respond_with(ResponseTemplate::new(status).set_body_string(format!("error {status}")))
            .mount(&server)
            .await;
    }
    let rig = Rig::new();
    let http = rig
        .builder(&server.uri())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for (status, kind) in cases {
        let e = http
            .get("GET /s/{status}", format!("/s/{status}"))
            .send(&rig.cx)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{status}: {e}");
        assert_eq!(e.provider(), Some("trakt"));
        assert_eq!(e.operation(), Some("GET /s/{status}"));
        let ctx: Vec<(&str, &str)> = e.context().iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(
            ctx.contains(&("status", status.to_string().as_str())),
            "{ctx:?}"
        );
        assert!(
            ctx.contains(&("path", format!("/s/{status}").as_str())),
            "{ctx:?}"
        );
        assert!(
            ctx.contains(&("body", format!("error {status}").as_str())),
            "{ctx:?}"
        );
        let expected = if kind == K::Unavailable || kind == K::RateLimited {
            // One attempt allowed: retries exhausted at once.
            ErrorStatus::Persistent
        } else {
            ErrorStatus::Permanent
        };
        assert_eq!(e.status(), expected, "{status}");
    }
    let hits = rig.sink.named("api:hit");
    assert_eq!(hits.len(), cases.len());
    assert!(hits.iter().all(|h| h.get("ok") == Some(&json!(false))));
}

#[tokio::test]
async fn undecodable_bodies_are_malformed_with_a_short_excerpt() {
    let server = MockServer::start().await;
    let html = format!(
        "<html><body>{}</body></html>",
        "Bad gateway page. ".repeat(40)
    );
    Mock::given(path("/sync/history"))
        .respond_with(ResponseTemplate::new(200).set_body_string(html))
        .mount(&server)
        .await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    let e = http
        .get_json::<Vec<Show>>(&rig.cx, "GET /sync/history", "/sync/history")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MalformedResponse);
    assert_eq!(e.provider(), Some("trakt"));
    assert_eq!(e.operation(), Some("GET /sync/history"));
    let body = &e.context().iter().find(|(k, _)| *k == "body").unwrap().1;
    assert!(body.starts_with("<html><body>Bad gateway"), "{body}");
    assert!(body.chars().count() <= EXCERPT_MAX_CHARS);
    // The exchange itself succeeded: one attempt, no retry of a decode failure.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_configuration_is_invalid_input() {
    let rig = Rig::new();
    for base in ["", "not a url", "ftp://example.invalid", "http://"] {
        let e = rig.builder(base).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{base:?}");
    }
    let e = rig
        .builder("http://127.0.0.1:9")
        .header("bad header", "x")
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let http = rig.client("http://127.0.0.1:9");
    let e = http
        .get("GET /x", "/x")
        .header("x", "line\nbreak")
        .send(&rig.cx)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(rig.count("api:hit"), 0);
}

#[tokio::test]
async fn cancelled_runs_send_nothing() {
    let server = MockServer::start().await;
    let rig = Rig::new();
    let http = rig.client(&server.uri());
    rig.cx.cancel.cancel();
    let e = http.get("GET /x", "/x").send(&rig.cx).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(server.received_requests().await.unwrap().is_empty());
}

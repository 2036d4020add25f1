//! The HTTP side of the pager: one response to one page, against a loopback server.

use ferry_core::{Context, ErrorKind, Pager, Paging, Read, Result, Row};
use ferry_http::{HttpClient, RetryPolicy, page};
use serde_json::{Value, json};
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> HttpClient {
    HttpClient::builder("test", "t1")
        .base_url(server.uri())
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn keep(v: Value) -> Row<Value> {
    Row::Keep(v)
}

async fn offset_read(server: &MockServer) -> Result<Read<Value>> {
    let http = client(server);
    let cx = Context::default();
    let paging = Paging::Offset {
        page_size: 2,
        total_name: "TotalRecordCount",
    };
    Pager::new(&cx, "items", paging)
        .read(
            |req| {
                let http = &http;
                let cx = &cx;
                async move {
                    let resp = http
                        .get("GET /Items", "/Items")
                        .query("StartIndex", req.offset)
                        .send(cx)
                        .await?;
                    page::offset_page(&resp, "Items", "TotalRecordCount")
                }
            },
            keep,
        )
        .await
}

async fn serve(server: &MockServer, start: &str, body: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(query_param("StartIndex", start))
        .respond_with(body)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_whole_offset_read_is_complete() {
    let server = MockServer::start().await;
    let ok = |rows: Value| {
        ResponseTemplate::new(200).set_body_json(json!({"Items": rows, "TotalRecordCount": 3}))
    };
    serve(&server, "0", ok(json!([1, 2]))).await;
    serve(&server, "2", ok(json!([3]))).await;
    let read = offset_read(&server).await.unwrap();
    assert!(read.is_complete(), "{:?}", read.proof());
    assert_eq!(read.rows.len(), 3);
}

#[tokio::test]
async fn a_total_that_is_not_a_count_is_partial() {
    let server = MockServer::start().await;
    let page = |rows: Value, total: Value| {
        ResponseTemplate::new(200).set_body_json(json!({"Items": rows, "TotalRecordCount": total}))
    };
    serve(&server, "0", page(json!([1, 2]), json!("3"))).await;
    serve(&server, "2", page(json!([3]), json!("3"))).await;
    let read = offset_read(&server).await.unwrap();
    let why = read.proof().reason().unwrap_or_default();
    assert!(why.contains("TotalRecordCount invalid"), "{why}");
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_malformed_first_and_partial_later() {
    for bad in [
        ResponseTemplate::new(200).set_body_raw(&b"<html>login</html>"[..], "text/html"),
        ResponseTemplate::new(200).set_body_raw(&b""[..], "application/json"),
        ResponseTemplate::new(200).set_body_json(json!({"Rows": []})),
    ] {
        let server = MockServer::start().await;
        serve(&server, "0", bad.clone()).await;
        let err = offset_read(&server).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{err}");

        let server = MockServer::start().await;
        let first = ResponseTemplate::new(200)
            .set_body_json(json!({"Items": [1, 2], "TotalRecordCount": 3}));
        serve(&server, "0", first).await;
        serve(&server, "2", bad).await;
        let read = offset_read(&server).await.unwrap();
        assert!(!read.is_complete());
        assert_eq!(read.rows.len(), 2, "what was read is kept");
    }
}

#[tokio::test]
async fn numbered_pages_read_their_counts_from_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Pagination-Page-Count", "1")
                .insert_header("X-Pagination-Item-Count", "-2")
                .set_body_json(json!([1, 2])),
        )
        .mount(&server)
        .await;
    let http = client(&server);
    let cx = Context::default();
    let read = Pager::new(&cx, "list", Paging::Numbered { limit: 10 })
        .read(
            |_req| {
                let http = &http;
                let cx = &cx;
                async move { page::numbered_page(&http.get("GET /l", "/l").send(cx).await?) }
            },
            keep,
        )
        .await
        .unwrap();
    let why = read.proof().reason().unwrap_or_default();
    assert!(why.contains("item count invalid (-2)"), "{why}");
}

//! The origin policy: browsers say which page opened a socket (`Origin`),
//! and by default only the hub's own pages, and programs that send no
//! `Origin`, may connect. A "page on another port" is simulated as a
//! browser would send it: `Origin: http://127.0.0.1:<page port>` to the hub
//! on its own port.

use serde_json::json;
use switchboard_server::{OriginPolicy, Server, ServerHandle};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::*;

/// Connects to `server` as a page from `origin` would.
async fn connect_from(server: &ServerHandle, origin: &str) -> Result<Ws, WsError> {
    let mut request = url(server, "/").into_client_request().unwrap();
    request.headers_mut().insert("origin", origin.parse().unwrap());
    try_connect(request).await
}

/// A port nothing listens on: the "page's" own port, another than the hub's.
fn other_port(server: &ServerHandle) -> u16 {
    let hub = server.local_addr().unwrap().port();
    if hub == 65_535 { hub - 1 } else { hub + 1 }
}

#[tokio::test]
async fn a_page_from_another_origin_is_refused_with_403_by_default() {
    let server = start(Server::builder()).await;
    let page = format!("http://127.0.0.1:{}", other_port(&server));
    match connect_from(&server, &page).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert_eq!(body, format!("origin {page:?} is not allowed to connect to this hub"));
        }
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| "an upgrade")),
    }
    assert_eq!(refused_status(connect_from(&server, "http://evil.example").await), 403);
    assert_eq!(refused_status(connect_from(&server, "null").await), 403, "an opaque origin (sandboxed page)");
}

#[tokio::test]
async fn a_page_from_the_hubs_own_origin_is_admitted_by_default() {
    let server = start(Server::builder()).await;
    let own = format!("http://{}", server.local_addr().unwrap());
    let mut ws = connect_from(&server, &own).await.expect("same origin is admitted");
    assert_eq!(call(&mut ws, 1, "add", json!([2, 3])).await["result"], 5);
}

#[tokio::test]
async fn a_program_that_sends_no_origin_is_admitted_by_default() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "add", json!([1, 1])).await["result"], 2);
}

#[tokio::test]
async fn allowed_origins_admit_the_pages_they_match_and_no_others() {
    let probe = start(Server::builder()).await;
    let page_port = other_port(&probe);
    let page = format!("http://127.0.0.1:{page_port}");
    let builder = Server::builder().allowed_origins([page.as_str(), "https://*.example.org"]).unwrap();
    let server = start(builder).await;

    let mut ws = connect_from(&server, &page).await.expect("the listed page is admitted");
    assert_eq!(call(&mut ws, 1, "add", json!([1, 2])).await["result"], 3);
    let mut ws = connect_from(&server, "https://eu.app.example.org").await.expect("a subdomain is admitted");
    assert_eq!(call(&mut ws, 1, "add", json!([2, 2])).await["result"], 4);
    // The hub's own pages and programs still are.
    connect_from(&server, &format!("http://{}", server.local_addr().unwrap())).await.expect("same origin");
    connect(&server).await;

    for refused in ["https://example.org", "http://eu.example.org", "http://127.0.0.1:1", "https://evil.example"] {
        assert_eq!(refused_status(connect_from(&server, refused).await), 403, "{refused}");
    }
}

#[tokio::test]
async fn origin_policy_any_admits_every_page() {
    let server = start(Server::builder().origins(OriginPolicy::Any)).await;
    let mut ws = connect_from(&server, "https://evil.example").await.expect("any origin");
    assert_eq!(call(&mut ws, 1, "add", json!([1, 1])).await["result"], 2);
}

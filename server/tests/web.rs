//! The HTTP integration (`switchboard_server::web`, feature `web`): static
//! files and the hub's upgrade on one port, with the server's own admission
//! checks. Plain HTTP/1.1 over loopback and a plain tokio-tungstenite
//! client; every wait is on an event, timeouts are only hang guards.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use switchboard_server::web::WebServer;
use switchboard_server::{Rejection, Server, ServerBuilder, ServerHandle};
use switchboard_shared::{Context, ErrorObject, Methods};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod support;

use support::guard;
use support::http::{call, connect, http, post, refused_status};

/// A directory of static files, removed when dropped.
struct Site(PathBuf);

impl Site {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("switchboard-web-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("js")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html><title>hub</title>").unwrap();
        std::fs::write(dir.join("js/app.js"), "export const x = 1;\n").unwrap();
        std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
        Site(dir)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods.register_sync("whoami", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.auth().cloned()));
    methods
}

/// A hub served by a `WebServer` on 127.0.0.1:0: the hub on `/rpc`, the
/// site at `/`, one extra file at `/lib.js`.
async fn serve(builder: ServerBuilder, site: &Site) -> (ServerHandle, SocketAddr) {
    let hub = builder.build(methods()).handle();
    let addr = WebServer::new(hub.clone())
        .hub_path("/rpc")
        .file("/lib.js", site.0.join("js/app.js"))
        .dir("/", &site.0)
        .listen("127.0.0.1:0")
        .await
        .expect("listen on port 0");
    (hub, addr)
}

#[tokio::test]
async fn static_files_are_served_next_to_the_hub() {
    let site = Site::new();
    let (_hub, addr) = serve(Server::builder(), &site).await;

    let (status, head, body) = http(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(body.contains("<title>hub</title>"));

    let (status, head, body) = http(addr, "GET", "/js/app.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(body, "export const x = 1;\n");

    let (status, _, body) = http(addr, "GET", "/lib.js").await;
    assert_eq!((status, body.as_str()), (200, "export const x = 1;\n"));

    let (status, head, body) = http(addr, "HEAD", "/js/app.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-length: 20"), "{head}");
    assert!(body.is_empty());

    assert_eq!(http(addr, "GET", "/missing.js").await.0, 404);
    assert_eq!(http(addr, "POST", "/js/app.js").await.0, 405);
    // Nothing outside the directory, nothing hidden.
    assert_eq!(http(addr, "GET", "/js/..%2f..%2fetc/passwd").await.0, 404);
    assert_eq!(http(addr, "GET", "/.env").await.0, 404);
    // The hub's path without an upgrade.
    let (status, head, _) = http(addr, "GET", "/rpc").await;
    assert_eq!(status, 426);
    assert!(head.contains("upgrade: websocket"), "{head}");
}

#[tokio::test]
async fn the_hub_path_upgrades_to_the_hub() {
    let site = Site::new();
    let (hub, addr) = serve(Server::builder(), &site).await;
    let mut ws = connect(format!("ws://{addr}/rpc")).await.expect("upgrade");
    assert_eq!(call(&mut ws, 1, "add", json!([2, 3])).await["result"], 5);
    assert_eq!(hub.connection_count(), 1);
    assert_eq!(hub.local_addr(), Some(addr));
    // Only the hub's path upgrades.
    assert_eq!(refused_status(connect(format!("ws://{addr}/other")).await), 404);
}

#[tokio::test]
async fn the_hub_path_answers_json_rpc_posts_and_the_files_stay_files() {
    let site = Site::new();
    let (hub, addr) = serve(Server::builder(), &site).await;
    let (status, answer) = post(addr, "/rpc", r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer).unwrap(),
        json!({"jsonrpc": "2.0", "result": 5, "id": 1})
    );
    assert_eq!(post(addr, "/rpc", r#"{"jsonrpc":"2.0","method":"add","params":[2,3]}"#).await.0, 204);
    assert_eq!(hub.connection_count(), 0, "an HTTP request is not a connection");
    let (status, _, body) = http(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>hub</title>"));
}

#[tokio::test]
async fn the_admission_checks_apply_to_upgrades_over_http() {
    let site = Site::new();
    let builder = Server::builder().allowed_origins(["http://good.example"]).max_connections(1).authenticate(|req| {
        match req.query_param("token").as_deref() {
            Some("secret") => Ok(json!({"user": "ada"})),
            Some(_) => Err(Rejection::Forbidden("unknown token".into())),
            None => Err(Rejection::Unauthorized("a token is required".into())),
        }
    });
    let (_hub, addr) = serve(builder, &site).await;

    let with_origin = |path: &str, origin: &str| {
        let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        request
    };
    assert_eq!(refused_status(connect(with_origin("/rpc?token=secret", "http://evil.example")).await), 403);
    assert_eq!(refused_status(connect(format!("ws://{addr}/rpc")).await), 401);
    assert_eq!(refused_status(connect(format!("ws://{addr}/rpc?token=nope")).await), 403);

    let mut ws = connect(with_origin("/rpc?token=secret", "http://good.example")).await.expect("admitted");
    assert_eq!(call(&mut ws, 1, "whoami", json!([])).await["result"], json!({"user": "ada"}));
    // The limit of one connection is taken.
    assert_eq!(refused_status(connect(format!("ws://{addr}/rpc?token=secret")).await), 503);
    drop(ws);
}

#[tokio::test]
async fn a_shutdown_stops_the_http_listener_too() {
    let site = Site::new();
    let (hub, addr) = serve(Server::builder(), &site).await;
    let mut ws = connect(format!("ws://{addr}/rpc")).await.expect("upgrade");
    assert_eq!(call(&mut ws, 1, "add", json!([1, 1])).await["result"], 2);
    let shutdown = hub.shutdown(Duration::from_secs(1));
    // The connection is closed with 1001; answering the close lets it end at once.
    loop {
        match guard("the close", ws.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    drop(ws);
    guard("the shutdown", shutdown).await;
    guard("the stop", hub.stopped()).await;
    // The listening socket is closed: new connections are refused.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn at_the_pending_handshake_bound_the_web_server_waits_until_one_ends() {
    let site = Site::new();
    let (_hub, addr) = serve(Server::builder().max_pending_handshakes(1), &site).await;
    // A socket that never sends a request holds the only handshake slot.
    let silent = TcpStream::connect(addr).await.unwrap();
    // A second one that sends its upgrade: it is not accepted (so not
    // answered) while the first is in its handshake.
    let waiting = tokio::spawn(async move { connect(format!("ws://{addr}/rpc")).await });
    // The handshake timeout is 10 s, far beyond this window.
    let early = tokio::time::timeout(Duration::from_millis(300), async {
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(early.is_err(), "a second connection was served past the pending-handshake bound");
    // The silent socket goes away: its handshake ends, the waiting client gets in.
    drop(silent);
    let mut ws = guard("the waiting client's upgrade", waiting).await.unwrap().expect("upgraded");
    assert_eq!(call(&mut ws, 1, "add", json!([1, 2])).await["result"], 3);
}

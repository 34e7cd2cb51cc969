//! The axum integration (`switchboard_server::axum`, feature `axum`): the
//! hub mounted as a route of an axum Router next to tower-http's ServeDir,
//! served through the server's accept loop and through `axum::serve`.
//! Plain HTTP/1.1 over loopback and a plain tokio-tungstenite client; every
//! wait is on an event, timeouts are only hang guards.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::json;
use switchboard_server::{Rejection, Server, ServerBuilder, ServerHandle};
use switchboard_shared::{Context, ErrorObject, Methods};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tower_http::services::ServeDir;

mod support;

use support::guard;
use support::http::{call, connect, http, post, refused_status};

/// A site directory `site/` with a secret file next to it (outside it),
/// removed when dropped.
struct Site {
    root: PathBuf,
}

impl Site {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("switchboard-axum-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("site/js")).unwrap();
        std::fs::write(root.join("site/index.html"), "<!doctype html><title>axum hub</title>").unwrap();
        std::fs::write(root.join("site/js/app.js"), "export const y = 2;\n").unwrap();
        std::fs::write(root.join("secret.txt"), "TOP SECRET").unwrap();
        Site { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("site")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods.register_sync("whoami", |(): (), cx: Context| {
        Ok::<_, ErrorObject>(json!({
            "auth": cx.auth(),
            "path": cx.info().path,
            "remote": cx.remote().map(|r| r.to_string()),
        }))
    });
    methods
}

/// A hub that wants `?token=good`.
fn with_auth(builder: ServerBuilder) -> ServerBuilder {
    builder.authenticate(|req| match req.query_param("token").as_deref() {
        Some("good") => Ok(json!({"user": "ada"})),
        _ => Err(Rejection::Unauthorized("a token is required".into())),
    })
}

/// The app: the hub at `/ws`, one handler, the site for everything else.
fn app(hub: &ServerHandle, site: &Site) -> Router {
    Router::new()
        .route("/ws", switchboard_server::axum::route(hub.clone()))
        .route("/hello", get(|| async { "hello from axum" }))
        .fallback_service(ServeDir::new(site.dir()))
}

#[tokio::test]
async fn the_hub_mounted_in_a_router_serves_calls_next_to_static_files() {
    let site = Site::new();
    let hub = with_auth(Server::builder()).build(methods()).handle();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = switchboard_server::axum::serve(&hub, listener, app(&hub, &site)).expect("serve");
    assert_eq!(hub.local_addr(), Some(addr));

    // A WebSocket call through the router, with the hub's admission checks.
    let mut ws = connect(format!("ws://{addr}/ws?token=good")).await.expect("upgrade");
    assert_eq!(call(&mut ws, 1, "add", json!([2, 3])).await["result"], 5);
    let facts = call(&mut ws, 2, "whoami", json!([])).await["result"].clone();
    assert_eq!(facts["auth"], json!({"user": "ada"}));
    assert_eq!(facts["path"], "/ws");
    assert!(facts["remote"].as_str().is_some_and(|r| r.starts_with("127.0.0.1:")), "{facts}");
    assert_eq!(refused_status(connect(format!("ws://{addr}/ws")).await), 401);
    // JSON-RPC over POST on the same route, with the same authenticator.
    let body = r#"{"jsonrpc":"2.0","method":"whoami","id":1}"#;
    let (status, answer) = post(addr, "/ws?token=good", body).await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["result"]["auth"], json!({"user": "ada"}));
    assert_eq!(answer["result"]["path"], "/ws");
    assert_eq!(post(addr, "/ws", body).await.0, 401);
    let (status, head, _) = http(addr, "GET", "/ws").await;
    assert_eq!(status, 426, "a plain GET of the hub's route");
    assert!(head.contains("upgrade: websocket"), "{head}");

    // Static files and the app's own handlers.
    let (status, head, body) = http(addr, "GET", "/js/app.js").await;
    assert_eq!((status, body.as_str()), (200, "export const y = 2;\n"));
    assert!(head.contains("content-type: text/javascript"), "{head}");
    let (status, _, body) = http(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>axum hub</title>"));
    assert_eq!(http(addr, "GET", "/hello").await.2, "hello from axum");
    assert_eq!(http(addr, "GET", "/missing.js").await.0, 404);

    // Traversal attempts do not leave the directory.
    for attempt in ["/../secret.txt", "/js/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt", "/js/%2e%2e/%2e%2e/secret.txt"]
    {
        let (status, _, body) = http(addr, "GET", attempt).await;
        assert!(!body.contains("TOP SECRET"), "{attempt} was served the secret");
        assert!((400..500).contains(&status), "{attempt}: {status}");
    }

    // A shutdown closes the hub's connections and stops the listener.
    let stopped = hub.shutdown(Duration::from_secs(1));
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
    guard("the shutdown", stopped).await;
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn the_route_works_under_axum_serve_with_the_same_admission() {
    let site = Site::new();
    let hub = Server::builder().max_connections(1).build(methods()).handle();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(&hub, &site).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut ws = connect(format!("ws://{addr}/ws")).await.expect("upgrade");
    assert_eq!(call(&mut ws, 1, "add", json!([20, 22])).await["result"], 42);
    let facts = call(&mut ws, 2, "whoami", json!([])).await["result"].clone();
    assert!(facts["remote"].as_str().is_some_and(|r| r.starts_with("127.0.0.1:")), "ConnectInfo: {facts}");
    // The connection limit of one is taken.
    assert_eq!(refused_status(connect(format!("ws://{addr}/ws")).await), 503);
    assert_eq!(http(addr, "GET", "/js/app.js").await.0, 200);
}

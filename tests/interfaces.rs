//! One server on several interfaces at once (`ws://`, `tcp://`, `unix:`),
//! with Switchboard's client on each: the same methods, calls both ways,
//! the same publications, one graceful shutdown closing them all; Unix
//! socket files (stale ones replaced, live ones left alone, removed at
//! stop); raw sockets beside an authenticator; reconnecting over a raw socket.
//!
//! Tests wait on events (replies, stream items, the server's phase), never
//! on sleeps; timeouts are hang guards only.
#![cfg(unix)]

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::client::{Backoff, Client, Reconnect, State};
use switchboard::server::{ListenError, Listening, RawSockets, Rejection, Server, ServerHandle, ServerPhase};
use switchboard::shared::{Context, ErrorObject, Methods};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// A fresh path for a Unix socket, in a directory of its own (removed on drop).
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("sb-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("a temporary directory");
        SocketDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods.register("greet", |(): (), cx: Context| async move {
        // Calls the client back on the same connection, whatever it is.
        let name: String = cx.peer().call("client.name", ()).await?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    methods
}

fn client_methods(name: &'static str) -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("client.name", move |(): (), _cx: Context| Ok::<_, ErrorObject>(name));
    methods
}

/// The server listening on ws, tcp and unix; the three URLs, in that order.
async fn three_interfaces(server: &Server, socket: &Path) -> Vec<String> {
    server.listen("ws://127.0.0.1:0").await.expect("ws listens");
    server.listen("tcp://127.0.0.1:0").await.expect("tcp listens");
    let handle = server.listen(format!("unix:{}", socket.display())).await.expect("unix listens");
    let urls: Vec<String> = handle.listening().iter().map(ToString::to_string).collect();
    assert!(urls[0].starts_with("ws://127.0.0.1:") && urls[0].ends_with('/'), "{urls:?}");
    assert!(urls[1].starts_with("tcp://127.0.0.1:"), "{urls:?}");
    assert_eq!(urls[2], format!("unix:{}", socket.display()));
    urls
}

async fn connect(url: &str, name: &'static str) -> Client {
    within(url, Client::builder().endpoint(url).methods(client_methods(name)).reconnect(Reconnect::Never).connect())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_on_ws_tcp_and_unix_serves_each_client_the_same_methods_and_publications() {
    let dir = SocketDir::new();
    let server = Server::builder().build(methods());
    let urls = three_interfaces(&server, &dir.path("hub.sock")).await;
    let handle = server.handle();
    let names = ["over ws", "over tcp", "over unix"];
    let mut clients = Vec::new();
    for (url, name) in urls.iter().zip(names) {
        clients.push(connect(url, name).await);
    }
    let mut subscriptions = Vec::new();
    for (client, name) in clients.iter().zip(names) {
        assert_eq!(within("add", client.call::<i64>("add", [2, 3])).await.unwrap(), 5);
        assert_eq!(within("greet", client.call::<String>("greet", ())).await.unwrap(), format!("hello, {name}"));
        subscriptions.push(within("subscribe", client.subscribe("news")).await.unwrap());
    }
    // A raw socket is ready for the client once connected; the server has
    // registered it by the time it answered a call on it.
    assert_eq!(handle.connection_count(), 3);
    assert_eq!(handle.subscribers("news"), 3);
    handle.publish("news", "news", json!({"title": "one for all"})).unwrap();
    for subscription in &mut subscriptions {
        let item = within("a publication", subscription.next()).await.expect("the stream is open").unwrap();
        assert_eq!(item.params::<Value>().unwrap(), json!({"title": "one for all"}));
    }
    // Raw sockets have no upgrade request: no path, and for Unix no address.
    let mut paths: Vec<(String, bool)> =
        handle.connections().into_iter().map(|c| (c.path, c.remote.is_some())).collect();
    paths.sort();
    assert_eq!(paths, [(String::new(), false), (String::new(), true), ("/".to_owned(), true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_closes_every_interface_and_removes_the_socket_file() {
    let dir = SocketDir::new();
    let socket = dir.path("hub.sock");
    let server = Server::builder().build(methods());
    let urls = three_interfaces(&server, &socket).await;
    let handle = server.handle();
    let mut clients = Vec::new();
    for url in &urls {
        clients.push(connect(url, "anyone").await);
    }
    within("shutdown", handle.shutdown(Duration::from_secs(10))).await;
    assert_eq!(handle.phase(), ServerPhase::Stopped);
    for (client, url) in clients.iter().zip(&urls) {
        let mut state = client.watch_state();
        within(url, state.wait_for(|s| *s == State::Closed)).await.expect("the client lives");
    }
    assert!(!socket.exists(), "the socket file is removed at stop");
    for listening in handle.listening() {
        if let Some(addr) = listening.socket_addr() {
            let refused = tokio::net::TcpStream::connect(addr).await;
            assert!(refused.is_err(), "{listening} still accepts");
        }
    }
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_and_a_live_socket_or_another_file_is_left_alone() {
    let dir = SocketDir::new();
    let socket = dir.path("hub.sock");
    // A server that died without removing its socket file.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let first = Server::builder().build(methods());
    let url = format!("unix:{}", socket.display());
    let handle = within("listen", first.listen(&url)).await.expect("the stale file is replaced");
    assert_eq!(handle.listening(), [Listening::Unix(socket.clone())]);
    let client = connect(&url, "anyone").await;
    assert_eq!(within("add", client.call::<i64>("add", [1, 1])).await.unwrap(), 2);

    // A second server does not take a socket someone answers on.
    let second = Server::builder().build(methods());
    let err = within("listen", second.listen(&url)).await.unwrap_err();
    assert!(matches!(&err, ListenError::SocketInUse { path } if *path == socket), "{err}");
    assert!(err.to_string().contains("another server is listening"), "{err}");
    assert_eq!(within("add", client.call::<i64>("add", [2, 2])).await.unwrap(), 4, "the first one still serves");

    let file = dir.path("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let err = within("listen", second.listen(format!("unix:{}", file.display()))).await.unwrap_err();
    assert!(matches!(err, ListenError::NotASocket { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[tokio::test]
async fn raw_sockets_refuse_to_start_beside_an_authenticator_unless_allowed() {
    let dir = SocketDir::new();
    let with_auth = || {
        Server::builder().authenticate(|req| match req.bearer_token() {
            Some("secret") => Ok(json!({"user": "ada"})),
            _ => Err(Rejection::Unauthorized("a bearer token is required".into())),
        })
    };
    let server = with_auth().build(methods());
    for listen in ["tcp://127.0.0.1:0".to_owned(), format!("unix:{}", dir.path("a.sock").display())] {
        let err = within("listen", server.listen(listen.as_str())).await.unwrap_err();
        assert!(matches!(err, ListenError::NoCredentials { .. }), "{listen}: {err}");
        assert!(err.to_string().contains("carries no credentials and the server has an authenticator"), "{err}");
    }
    assert!(server.handle().listening().is_empty(), "nothing was bound");
    assert!(!dir.path("a.sock").exists());
    // WebSocket still works with its credentials.
    server.listen("ws://127.0.0.1:0").await.expect("ws listens");

    let mut whoami = methods();
    whoami.register_sync("whoami", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.auth().cloned()));
    let allowed = with_auth().raw_sockets(RawSockets::AllowUnauthenticated).build(whoami);
    let handle = within("listen", allowed.listen("tcp://127.0.0.1:0")).await.expect("explicitly allowed");
    let client = connect(&handle.listening()[0].to_string(), "anyone").await;
    let auth = within("whoami", client.call::<Option<Value>>("whoami", ())).await.unwrap();
    assert_eq!(auth, None, "a raw socket connection has no identity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnects_over_a_unix_socket_and_subscribes_again() {
    let dir = SocketDir::new();
    let url = format!("unix:{}", dir.path("hub.sock").display());
    let first = Server::builder().build(methods()).listen(&url).await.unwrap();
    let quick = Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(50), ..Backoff::default() };
    let client = within(
        "connect",
        Client::builder()
            .endpoint(&url)
            .reconnect(Reconnect::Backoff(quick))
            .methods(client_methods("again"))
            .connect(),
    )
    .await
    .unwrap();
    let mut news = within("subscribe", client.subscribe("news")).await.unwrap();
    let mut state = client.watch_state();
    within("shutdown", first.shutdown(Duration::from_secs(10))).await;
    within("offline", state.wait_for(|s| *s != State::Ready)).await.unwrap();

    let second: ServerHandle = Server::builder().build(methods()).listen(&url).await.unwrap();
    within("ready again", state.wait_for(|s| *s == State::Ready)).await.unwrap();
    assert_eq!(within("greet", client.call::<String>("greet", ())).await.unwrap(), "hello, again");
    // The client subscribes again on the new connection, on its own: each
    // round trip here gives it time to.
    within("resubscribed", async {
        while second.subscribers("news") == 0 {
            client.call::<i64>("add", [0, 0]).await.unwrap();
        }
    })
    .await;
    second.publish("news", "news", ["after the reconnect"]).unwrap();
    let item = within("a publication", news.next()).await.expect("open").unwrap();
    assert_eq!(item.params::<Value>().unwrap(), json!(["after the reconnect"]));
}

#[tokio::test]
async fn a_raw_socket_over_the_connection_limit_gets_one_error_line_then_the_end() {
    use tokio::io::AsyncReadExt;
    let handle = Server::builder().max_connections(1).build(methods()).listen("tcp://127.0.0.1:0").await.unwrap();
    let url = handle.listening()[0].to_string();
    let first = connect(&url, "first").await;
    // Answered: its connection holds the one slot.
    assert_eq!(within("add", first.call::<i64>("add", [1, 2])).await.unwrap(), 3);
    let mut second = tokio::net::TcpStream::connect(handle.local_addr().unwrap()).await.unwrap();
    let mut refusal = String::new();
    within("the refusal", second.read_to_string(&mut refusal)).await.unwrap();
    assert_eq!(
        refusal,
        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32002,\"message\":\"Server busy\",\"data\":\"the server is at its limit of 1 connections; try again later\"},\"id\":null}\n"
    );
    assert_eq!(handle.connection_count(), 1);
}

//! JSON-RPC 1.0, opt-in, byte for byte: the 1.0 specification's examples
//! against a server with `Jsonrpc1::Accept` (over raw TCP lines, over a
//! WebSocket and over HTTP POST), 2.0 on the same connection still answered
//! in 2.0, 1.0 refused when not enabled; and Switchboard's client speaking 1.0 to a server that
//! knows only 1.0 (a small one written here, over TCP lines).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::client::{Client, Error, Reconnect};
use switchboard::server::{Server, ServerHandle};
use switchboard::shared::tokio_tungstenite::{self, tungstenite::Message};
use switchboard::shared::{Context, ErrorObject, Jsonrpc1, Methods};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: std::future::IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// The 1.0 specification's example methods; `posted` receives what
/// `postMessage` notifications carried.
fn methods(posted: mpsc::UnboundedSender<String>) -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("echo", |(text,): (String,), _cx: Context| Ok::<_, ErrorObject>(text));
    methods.register("echo_later", |(text,): (String,), _cx: Context| async move {
        // Answers on a later poll: the answer comes from the handler's own task.
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(text)
    });
    methods.register_sync("postMessage", move |(text,): (String,), _cx: Context| {
        posted.send(text).expect("the test listens");
        Ok::<_, ErrorObject>(())
    });
    methods
}

async fn server(jsonrpc1: Jsonrpc1) -> (ServerHandle, mpsc::UnboundedReceiver<String>) {
    let (posted, received) = mpsc::unbounded_channel();
    let server = Server::builder().jsonrpc1(jsonrpc1).build(methods(posted));
    server.listen("ws://127.0.0.1:0").await.unwrap();
    let handle = server.listen("tcp://127.0.0.1:0").await.unwrap();
    (handle, received)
}

/// A raw TCP client of newline-delimited JSON: sends and reads lines as bytes.
struct Lines {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Lines {
    async fn connect(server: &ServerHandle) -> Lines {
        let addr = server.listening()[1].socket_addr().expect("the tcp listener");
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        Lines { read: BufReader::new(read), write }
    }

    async fn send(&mut self, line: &str) {
        self.write.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    async fn recv(&mut self) -> String {
        let mut line = String::new();
        within("a line", self.read.read_line(&mut line)).await.unwrap();
        line.strip_suffix('\n').unwrap_or_else(|| panic!("a whole line, got {line:?}")).to_owned()
    }

    async fn exchange(&mut self, line: &str) -> String {
        self.send(line).await;
        self.recv().await
    }
}

#[tokio::test]
async fn the_1_0_spec_examples_are_answered_exactly_as_the_spec_writes_them() {
    let (server, mut posted) = server(Jsonrpc1::Accept).await;
    let mut lines = Lines::connect(&server).await;
    assert_eq!(
        lines.exchange(r#"{"method": "echo", "params": ["Hello JSON-RPC"], "id": 1}"#).await,
        r#"{"result":"Hello JSON-RPC","error":null,"id":1}"#
    );
    // A notification is a request with a null id: run, never answered.
    lines.send(r#"{"method": "postMessage", "params": ["Hello all!"], "id": null}"#).await;
    assert_eq!(within("the notification", posted.recv()).await.unwrap(), "Hello all!");
    assert_eq!(
        lines.exchange(r#"{"method": "echo_later", "params": ["later"], "id": "s"}"#).await,
        r#"{"result":"later","error":null,"id":"s"}"#,
        "the next line answers the next request: the notification got nothing"
    );
    assert_eq!(
        lines.exchange(r#"{"method": "nope", "params": [], "id": 2}"#).await,
        r#"{"result":null,"error":{"code":-32601,"message":"Method not found","data":"no method named \"nope\""},"id":2}"#
    );
    assert_eq!(
        lines.exchange(r#"{"method": "echo", "params": [1], "id": 3}"#).await,
        r#"{"result":null,"error":{"code":-32602,"message":"Invalid params","data":"invalid type: integer `1`, expected a string at line 1 column 2"},"id":3}"#
    );
    // `"jsonrpc": "1.0"`, which some 1.0 clients send, is 1.0 too.
    assert_eq!(
        lines.exchange(r#"{"jsonrpc": "1.0", "method": "echo", "params": ["x"], "id": 4}"#).await,
        r#"{"result":"x","error":null,"id":4}"#
    );
}

#[tokio::test]
async fn a_2_0_request_on_the_same_connection_is_still_answered_in_2_0() {
    let (server, _posted) = server(Jsonrpc1::Accept).await;
    let mut lines = Lines::connect(&server).await;
    assert_eq!(
        lines.exchange(r#"{"method":"echo","params":["one"],"id":1}"#).await,
        r#"{"result":"one","error":null,"id":1}"#
    );
    assert_eq!(
        lines.exchange(r#"{"jsonrpc":"2.0","method":"echo","params":["two"],"id":2}"#).await,
        r#"{"jsonrpc":"2.0","result":"two","id":2}"#
    );
    assert_eq!(
        lines.exchange(r#"[{"jsonrpc":"2.0","method":"echo_later","params":["three"],"id":3}]"#).await,
        r#"[{"jsonrpc":"2.0","result":"three","id":3}]"#
    );
    assert_eq!(
        lines.exchange(r#"{"method":"echo_later","params":["four"],"id":4}"#).await,
        r#"{"result":"four","error":null,"id":4}"#
    );
}

#[tokio::test]
async fn json_rpc_1_0_is_served_over_a_websocket_too() {
    let (server, _posted) = server(Jsonrpc1::Accept).await;
    let url = server.listening()[0].to_string();
    let (mut ws, _) = within("connect", tokio_tungstenite::connect_async(url)).await.unwrap();
    ws.send(Message::text(r#"{"method":"echo","params":["over ws"],"id":9}"#)).await.unwrap();
    let Some(Ok(Message::Text(answer))) = within("the answer", ws.next()).await else { panic!("a text frame") };
    assert_eq!(answer.as_str(), r#"{"result":"over ws","error":null,"id":9}"#);
}

/// One HTTP/1.1 POST of `body` to the server's WebSocket port: the status and the body.
#[cfg(feature = "http")]
async fn post(server: &ServerHandle, body: &str) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let addr = server.local_addr().expect("the ws listener");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within("the response", stream.read_to_string(&mut response)).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, body.to_owned())
}

#[cfg(feature = "http")]
#[tokio::test]
async fn json_rpc_1_0_is_served_over_http_post_too() {
    let (server, mut posted) = server(Jsonrpc1::Accept).await;
    let answer = post(&server, r#"{"method": "echo", "params": ["over http"], "id": 1}"#).await;
    assert_eq!(answer, (200, r#"{"result":"over http","error":null,"id":1}"#.to_owned()));
    let answer = post(&server, r#"{"method": "nope", "params": [], "id": 2}"#).await;
    assert_eq!(
        answer,
        (
            200,
            r#"{"result":null,"error":{"code":-32601,"message":"Method not found","data":"no method named \"nope\""},"id":2}"#
                .to_owned()
        )
    );
    assert_eq!(
        post(&server, r#"{"method": "postMessage", "params": ["by post"], "id": null}"#).await,
        (204, String::new())
    );
    assert_eq!(within("the notification", posted.recv()).await.unwrap(), "by post");
    let answer = post(&server, r#"{"jsonrpc":"2.0","method":"echo","params":["two"],"id":3}"#).await;
    assert_eq!(answer, (200, r#"{"jsonrpc":"2.0","result":"two","id":3}"#.to_owned()));
}

#[tokio::test]
async fn without_jsonrpc1_a_1_0_request_is_refused_saying_jsonrpc_is_missing() {
    let (server, mut posted) = server(Jsonrpc1::Reject).await;
    let mut lines = Lines::connect(&server).await;
    assert_eq!(
        lines.exchange(r#"{"method": "echo", "params": ["Hello JSON-RPC"], "id": 1}"#).await,
        r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"\"jsonrpc\" is missing: a JSON-RPC 2.0 call carries \"jsonrpc\": \"2.0\" (JSON-RPC 1.0 is not accepted here)"},"id":1}"#
    );
    // A 1.0 notification is refused too (its id is null: an invalid request answers it).
    let refused = lines.exchange(r#"{"method": "postMessage", "params": ["Hello all!"], "id": null}"#).await;
    assert!(refused.starts_with(r#"{"jsonrpc":"2.0","error":{"code":-32600"#), "{refused}");
    assert!(posted.try_recv().is_err(), "the notification did not run");
}

/// A server that knows only JSON-RPC 1.0, over TCP lines: `add` and
/// `fail`; every line it receives goes to `seen`; a message with a
/// `jsonrpc` member is answered with a 1.0 error.
async fn old_server(seen: mpsc::UnboundedSender<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read).lines();
                while let Ok(Some(line)) = read.next_line().await {
                    let _ = seen.send(line.clone());
                    let request: Value = serde_json::from_str(&line).expect("the client sends JSON");
                    if request["id"].is_null() {
                        continue;
                    }
                    let outcome = if request.get("jsonrpc").is_some() {
                        Err(json!("unknown member jsonrpc"))
                    } else {
                        match request["method"].as_str() {
                            Some("add") => Ok(json!(
                                request["params"][0].as_i64().unwrap() + request["params"][1].as_i64().unwrap()
                            )),
                            _ => Err(json!({"code": 5, "message": "no such method"})),
                        }
                    };
                    let answer = match outcome {
                        Ok(result) => json!({"result": result, "error": null, "id": request["id"]}),
                        Err(error) => json!({"result": null, "error": error, "id": request["id"]}),
                    };
                    write.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
                }
            });
        }
    });
    format!("tcp://{addr}")
}

#[tokio::test]
async fn the_client_speaks_1_0_to_a_server_that_knows_only_1_0() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let url = old_server(seen_tx).await;
    let client = within(
        "connect",
        Client::builder().endpoint(&url).jsonrpc1(Jsonrpc1::Speak).reconnect(Reconnect::Never).connect(),
    )
    .await
    .unwrap();
    assert_eq!(within("add", client.call::<i64>("add", [1, 2])).await.unwrap(), 3);
    assert_eq!(within("the request", seen.recv()).await.unwrap(), r#"{"method":"add","params":[1,2],"id":1}"#);

    within("notify", client.notify("log", ["hello"])).await.unwrap();
    assert_eq!(
        within("the notification", seen.recv()).await.unwrap(),
        r#"{"method":"log","params":["hello"],"id":null}"#
    );

    let err = within("fail", client.call::<Value>("fail", ())).await.unwrap_err();
    assert_eq!(within("the request", seen.recv()).await.unwrap(), r#"{"method":"fail","params":[],"id":2}"#);
    let Error::Rpc(error) = err else { panic!("an error answer, got {err}") };
    assert_eq!((error.code, &*error.message), (5, "no such method"));

    let err = within("a batch", client.batch().call("add", [1, 1]).send()).await.unwrap_err();
    assert!(err.to_string().contains("JSON-RPC 1.0 has no batches"), "{err}");
    assert!(seen.try_recv().is_err(), "no batch went out");
}

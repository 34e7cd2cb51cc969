//! The conformance table: one list of wire-level cases (the text a client
//! sends, the JSON answer it must get, or no answer at all), run over every
//! interface a hub serves: `ws://`, `wss://`, `http://`, `https://`, raw
//! `tcp://` lines and `unix:` lines, each a real listener on loopback.
//!
//! Terms:
//! - a **case** is one text sent as is (a request, a notification, a batch,
//!   broken JSON) and its [`Expect`]ed answer; the cases follow the examples
//!   section of the JSON-RPC 2.0 specification, on the method set of the
//!   benchmark contract (`subtract`, `sum`, `update`, `get_data`, ...), which
//!   is the specification's;
//! - an **adapter** sends one text over one interface and collects what came
//!   back: a text frame (ws, wss), the body of a 200 or nothing for a 204
//!   (http, https), a line (tcp, unix). An interface's legitimate way of
//!   saying "no answer" (HTTP's 204) is mapped to the same "no answer";
//! - on a socket, "no answer" is proved by a **sentinel**: a call sent after
//!   the case, whose answer must be the next thing that arrives.
//!
//! Answers are compared as JSON values; a batch's answers in any order (the
//! specification lets a server answer a batch's requests in any order). An
//! error object's `data` is the server's own detail, which the specification
//! leaves free, so the table does not fix it; instead every interface must
//! answer exactly what the WebSocket answered, `data` included.
//!
//! Hang guards only: every wait is on an answer, never on a sleep.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard::server::{Server, ServerHandle, TlsConfig};
use switchboard::shared::tokio_tungstenite::{self, tungstenite::Message};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

mod support;

use support::certs::TestCerts;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(30);

async fn within<F: Future>(what: &str, future: F) -> Result<F::Output, String> {
    tokio::time::timeout(GUARD, future).await.map_err(|_| format!("no answer within {GUARD:?} ({what})"))
}

// ------------------------------------------------------------------ the table

/// What a case must get back.
#[derive(Debug, Clone)]
enum Expect {
    /// No answer at all (HTTP: 204 No Content).
    Nothing,
    /// Exactly this one answer (an object, or an array compared in order).
    Answer(Value),
    /// A batch answer: an array holding these answers, in any order.
    Batch(Vec<Value>),
}

/// One row of the table.
struct Case {
    /// What the case checks, as the failure message names it.
    name: &'static str,
    /// The text sent, byte for byte, over every interface (so one line:
    /// on a raw socket a newline ends the text).
    send: &'static str,
    expect: Expect,
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "result": result, "id": id})
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id})
}

fn parse_error() -> Value {
    error(Value::Null, -32700, "Parse error")
}

fn invalid_request(id: Value) -> Value {
    error(id, -32600, "Invalid Request")
}

/// The table: the specification's examples, then the cases around them.
fn table() -> Vec<Case> {
    use Expect::{Answer, Batch, Nothing};
    vec![
        Case {
            name: "a call with positional params",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
            expect: Answer(result(json!(1), json!(19))),
        },
        Case {
            name: "a call with positional params the other way round",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
            expect: Answer(result(json!(2), json!(-19))),
        },
        Case {
            name: "a call with named params",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
            expect: Answer(result(json!(3), json!(19))),
        },
        Case {
            name: "a call with named params in another order",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
            expect: Answer(result(json!(4), json!(19))),
        },
        Case {
            name: "a notification",
            send: r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
            expect: Nothing,
        },
        Case {
            name: "a notification of a method that does not exist",
            send: r#"{"jsonrpc": "2.0", "method": "foobar"}"#,
            expect: Nothing,
        },
        Case {
            name: "a call of a method that does not exist",
            send: r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
            expect: Answer(error(json!("1"), -32601, "Method not found")),
        },
        Case {
            name: "a call with params of the wrong type",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": ["forty-two", 23], "id": 5}"#,
            expect: Answer(error(json!(5), -32602, "Invalid params")),
        },
        Case {
            name: "a call with a param missing",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42], "id": 6}"#,
            expect: Answer(error(json!(6), -32602, "Invalid params")),
        },
        Case {
            name: "invalid JSON",
            send: r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
            expect: Answer(parse_error()),
        },
        Case {
            name: "a request object whose method is not a string",
            send: r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
            expect: Answer(invalid_request(Value::Null)),
        },
        Case {
            // The id could be read, so it is echoed (null is for an id that could not be).
            name: "a request object whose method is not a string, with an id",
            send: r#"{"jsonrpc":"2.0","method":1,"id":1}"#,
            expect: Answer(invalid_request(json!(1))),
        },
        Case {
            name: "a request without the jsonrpc member",
            send: r#"{"method": "subtract", "params": [42, 23], "id": 7}"#,
            expect: Answer(invalid_request(json!(7))),
        },
        Case {
            name: "a batch of invalid JSON",
            send: concat!(
                r#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, "#,
                r#"{"jsonrpc": "2.0", "method"]"#
            ),
            expect: Answer(parse_error()),
        },
        Case { name: "an empty batch", send: "[]", expect: Answer(invalid_request(Value::Null)) },
        Case { name: "a batch of one invalid element", send: "[1]", expect: Batch(vec![invalid_request(Value::Null)]) },
        Case {
            name: "a batch of invalid elements",
            send: "[1,2,3]",
            expect: Batch(vec![invalid_request(Value::Null); 3]),
        },
        Case {
            name: "a mixed batch answers its requests only",
            send: concat!(
                r#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, "#,
                r#"{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}, "#,
                r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"}, "#,
                r#"{"foo": "boo"}, "#,
                r#"{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"}, "#,
                r#"{"jsonrpc": "2.0", "method": "get_data", "id": "9"}]"#
            ),
            expect: Batch(vec![
                result(json!("1"), json!(7)),
                result(json!("2"), json!(19)),
                invalid_request(Value::Null),
                error(json!("5"), -32601, "Method not found"),
                result(json!("9"), json!(["hello", 5])),
            ]),
        },
        Case {
            name: "a batch of notifications only",
            send: concat!(
                r#"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, "#,
                r#"{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#
            ),
            expect: Nothing,
        },
        Case {
            name: "a string id is echoed",
            send: r#"{"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": "abc"}"#,
            expect: Answer(result(json!("abc"), json!(3))),
        },
        Case {
            name: "a null id is a call, answered with a null id",
            send: r#"{"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": null}"#,
            expect: Answer(result(Value::Null, json!(3))),
        },
        Case {
            name: "absent params are null for echo",
            send: r#"{"jsonrpc": "2.0", "method": "echo", "id": 8}"#,
            expect: Answer(result(json!(8), Value::Null)),
        },
    ]
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Nothing => f.write_str("no answer"),
            Expect::Answer(answer) => write!(f, "{answer}"),
            Expect::Batch(answers) => write!(f, "{} in any order", Value::Array(answers.clone())),
        }
    }
}

// ------------------------------------------------------------------ comparing

/// `answer` without the `data` of its error objects (the server's own detail).
fn without_data(answer: &Value) -> Value {
    let mut answer = answer.clone();
    let strip = |one: &mut Value| {
        if let Some(error) = one.get_mut("error").and_then(Value::as_object_mut) {
            error.remove("data");
        }
    };
    match &mut answer {
        Value::Array(all) => all.iter_mut().for_each(strip),
        one => strip(one),
    }
    answer
}

/// Whether `got` is what `expect` asks for (error `data` aside).
fn meets(expect: &Expect, got: Option<&Value>) -> bool {
    match (expect, got.map(without_data)) {
        (Expect::Nothing, None) => true,
        (Expect::Answer(want), Some(got)) => *want == got,
        (Expect::Batch(want), Some(Value::Array(got))) => same_items(want, &got),
        _ => false,
    }
}

/// The same values in any order, as many times each.
fn same_items(a: &[Value], b: &[Value]) -> bool {
    let mut left = b.to_vec();
    a.len() == b.len()
        && a.iter().all(|one| left.iter().position(|other| other == one).map(|at| left.swap_remove(at)).is_some())
}

/// Two answers alike, error `data` included; a batch's in any order.
fn same_answer(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Array(a)), Some(Value::Array(b))) => same_items(a, b),
        (a, b) => a == b,
    }
}

// ------------------------------------------------------------------ interfaces

/// The interfaces every case runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interface {
    Ws,
    Wss,
    Http,
    Https,
    Tcp,
    Unix,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interface::Ws => "ws",
            Interface::Wss => "wss",
            Interface::Http => "http",
            Interface::Https => "https",
            Interface::Tcp => "tcp",
            Interface::Unix => "unix",
        })
    }
}

const ALL: [Interface; 6] =
    [Interface::Ws, Interface::Wss, Interface::Http, Interface::Https, Interface::Tcp, Interface::Unix];

/// The call whose answer proves that nothing else was answered before it.
const SENTINEL: &str = r#"{"jsonrpc":"2.0","method":"echo","params":["sentinel"],"id":"sentinel"}"#;

fn sentinel_answer() -> Value {
    result(json!("sentinel"), json!(["sentinel"]))
}

/// The hubs under test: one plain server (ws and http on one port, tcp,
/// unix) and one with TLS (wss and https on one port), serving the same
/// methods with the same settings.
struct Hubs {
    plain: ServerHandle,
    tls: ServerHandle,
    tcp: std::net::SocketAddr,
    socket: PathBuf,
    _certs: TestCerts,
    trust: Arc<tokio_rustls::rustls::ClientConfig>,
}

impl Hubs {
    async fn start() -> Hubs {
        let certs = TestCerts::make();
        let socket = std::env::temp_dir().join(format!("sb-conformance-{}.sock", uuid::Uuid::new_v4().simple()));
        let plain = Server::builder().build(switchboard::demo::contract_methods());
        plain.listen("ws://127.0.0.1:0").await.expect("ws listens");
        plain.listen("tcp://127.0.0.1:0").await.expect("tcp listens");
        let plain = plain.listen(format!("unix:{}", socket.display())).await.expect("unix listens");
        let tcp = plain.listening()[1].socket_addr().expect("the tcp listener");
        let tls = TlsConfig::from_pem_files(certs.cert_file(), certs.key_file()).expect("a valid pair");
        let tls = Server::builder()
            .tls(tls)
            .build(switchboard::demo::contract_methods())
            .listen("127.0.0.1:0")
            .await
            .expect("wss listens");
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(certs.ca.as_bytes()).expect("the CA's PEM")).expect("a CA");
        let trust = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Hubs { plain, tls, tcp, socket, _certs: certs, trust: Arc::new(trust) }
    }

    /// A TLS connection to the TLS hub, verified against the test CA.
    async fn tls_stream(&self) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let tcp = TcpStream::connect(self.tls.local_addr().expect("bound")).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").expect("a DNS name");
        TlsConnector::from(Arc::clone(&self.trust)).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))
    }

    async fn plain_stream(&self) -> Result<TcpStream, String> {
        TcpStream::connect(self.plain.local_addr().expect("bound")).await.map_err(|e| e.to_string())
    }

    /// Sends `text` over `interface` on a fresh connection; what came back.
    async fn exchange(&self, interface: Interface, text: &str, expect: &Expect) -> Result<Option<Value>, String> {
        let answer_expected = !matches!(expect, Expect::Nothing);
        match interface {
            Interface::Ws => {
                let url = format!("ws://{}/", self.plain.local_addr().expect("bound"));
                websocket(self.plain_stream().await?, &url, text, answer_expected).await
            }
            Interface::Wss => {
                let url = format!("wss://localhost:{}/", self.tls.local_addr().expect("bound").port());
                websocket(self.tls_stream().await?, &url, text, answer_expected).await
            }
            Interface::Http => post(self.plain_stream().await?, text).await,
            Interface::Https => post(self.tls_stream().await?, text).await,
            Interface::Tcp => {
                let stream = TcpStream::connect(self.tcp).await.map_err(|e| e.to_string())?;
                lines(stream, text, answer_expected).await
            }
            Interface::Unix => {
                let stream = UnixStream::connect(&self.socket).await.map_err(|e| e.to_string())?;
                lines(stream, text, answer_expected).await
            }
        }
    }
}

impl Drop for Hubs {
    fn drop(&mut self) {
        // The server removes its socket file when it stops; a test that
        // failed before then leaves nothing behind either.
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn parse(what: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not JSON ({e}): {text:?}"))
}

/// ws / wss: the case as one text frame; its answer is the next text frame,
/// and the sentinel's answer must come next.
async fn websocket<S>(stream: S, url: &str, text: &str, answer_expected: bool) -> Result<Option<Value>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws, _) =
        within("the upgrade", tokio_tungstenite::client_async(url, stream)).await?.map_err(|e| e.to_string())?;
    ws.send(Message::text(text)).await.map_err(|e| e.to_string())?;
    let answer = if answer_expected { Some(next_frame(&mut ws).await?) } else { None };
    ws.send(Message::text(SENTINEL)).await.map_err(|e| e.to_string())?;
    sentinel_next(next_frame(&mut ws).await?)?;
    Ok(answer)
}

/// The next text frame, parsed.
async fn next_frame<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Result<Value, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match within("a frame", ws.next()).await? {
            Some(Ok(Message::Text(text))) => return parse("a text frame", &text),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => return Err(format!("not a text frame: {other:?}")),
            Some(Err(e)) => return Err(format!("the connection failed: {e}")),
            None => return Err("the connection closed".to_owned()),
        }
    }
}

/// Checks that what came after the case is the sentinel's answer.
fn sentinel_next(after: Value) -> Result<(), String> {
    if after == sentinel_answer() { Ok(()) } else { Err(format!("an answer where none (or no more) was due: {after}")) }
}

/// tcp / unix: the case as one line; its answer is the next line, and the
/// sentinel's answer must be the line after.
async fn lines<S>(stream: S, text: &str, answer_expected: bool) -> Result<Option<Value>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Every interface gets the same bytes, so a case is one line.
    assert!(!text.contains('\n'), "a case is sent as one line: {text:?}");
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    write.write_all(format!("{text}\n").as_bytes()).await.map_err(|e| e.to_string())?;
    let answer = if answer_expected { Some(next_line(&mut read).await?) } else { None };
    write.write_all(format!("{SENTINEL}\n").as_bytes()).await.map_err(|e| e.to_string())?;
    sentinel_next(next_line(&mut read).await?)?;
    Ok(answer)
}

/// The next line, parsed.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> Result<Value, String> {
    let mut line = String::new();
    let n = within("a line", read.read_line(&mut line)).await?.map_err(|e| e.to_string())?;
    match line.strip_suffix('\n') {
        Some(line) => parse("a line", line),
        None if n == 0 => Err("the connection closed".to_owned()),
        None => Err(format!("a line without its newline: {line:?}")),
    }
}

/// http / https: one POST; a 200's body is the answer, a 204 is none.
async fn post<S>(stream: S, text: &str) -> Result<Option<Value>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let connection = tokio::spawn(connection);
    let request = http::Request::post("/")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(text.to_owned())))
        .expect("a request");
    let response = within("the response", sender.send_request(request)).await?.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = within("the body", response.into_body().collect()).await?.map_err(|e| e.to_string())?.to_bytes();
    connection.abort();
    let body = String::from_utf8(body.to_vec()).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    match status {
        http::StatusCode::OK => parse("the body", &body).map(Some),
        http::StatusCode::NO_CONTENT if body.is_empty() => Ok(None),
        other => Err(format!("HTTP {other} with {body:?}")),
    }
}

// ------------------------------------------------------------------ running

/// Runs `cases` over `interfaces`; one line per failed case, naming the
/// interface and the case. The first interface's answers are the reference
/// the others must equal, error `data` included.
async fn run(hubs: &Hubs, cases: &[Case], interfaces: &[Interface]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let mut reference: Option<(Interface, Option<Value>)> = None;
        for &interface in interfaces {
            let got = match hubs.exchange(interface, case.send, &case.expect).await {
                Ok(got) => got,
                Err(e) => {
                    failures.push(format!("{interface}: {:?}: {e}", case.name));
                    continue;
                }
            };
            if !meets(&case.expect, got.as_ref()) {
                failures.push(format!(
                    "{interface}: {:?}: expected {}, got {}",
                    case.name,
                    case.expect,
                    got.map_or("no answer".to_owned(), |v| v.to_string())
                ));
                continue;
            }
            match &reference {
                None => reference = Some((interface, got)),
                Some((first, answer)) if !same_answer(answer.as_ref(), got.as_ref()) => failures.push(format!(
                    "{interface}: {:?}: answered {} where {first} answered {}",
                    case.name,
                    got.map_or("nothing".to_owned(), |v| v.to_string()),
                    answer.as_ref().map_or("nothing".to_owned(), Value::to_string),
                )),
                Some(_) => {}
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interface_answers_the_json_rpc_spec_examples_alike() {
    let hubs = Hubs::start().await;
    let failures = run(&hubs, &table(), &ALL).await;
    assert!(failures.is_empty(), "{} failed cases:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_wrong_expectation_fails_naming_the_interface_and_the_case() {
    let hubs = Hubs::start().await;
    let wrong = [
        Case {
            name: "subtract answered as an addition",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
            expect: Expect::Answer(result(json!(1), json!(65))),
        },
        Case {
            name: "a call expected to go unanswered",
            send: r#"{"jsonrpc": "2.0", "method": "sum", "params": [1], "id": 2}"#,
            expect: Expect::Nothing,
        },
    ];
    let failures = run(&hubs, &wrong, &ALL).await;
    for case in &wrong {
        for interface in ALL {
            let prefix = format!("{interface}: {:?}:", case.name);
            assert!(failures.iter().any(|f| f.starts_with(&prefix)), "no failure for {prefix} in {failures:#?}");
        }
    }
    assert_eq!(failures.len(), wrong.len() * ALL.len(), "{failures:#?}");
}

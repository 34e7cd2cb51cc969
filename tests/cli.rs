//! The `switchboard` command, run as a process against live hubs: the demo
//! hub of `switchboard serve` (a process too), and test hubs built here for
//! what the demo cannot show (a notification being received, auth).
//!
//! Every test waits on events — a line read from a child's stdout, a child's
//! exit, a message from a test hub — each bounded by a generous hang guard;
//! nothing sleeps. Children are killed when their guard is dropped, so a
//! failing test leaks no process.

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::server::{Rejection, Server, ServerHandle, SubscriptionDecision};
use switchboard::shared::{Context, ErrorObject, Methods};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

/// The binary under test, built by cargo for these tests.
const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

mod support;

use support::{Finished, Proc};

/// Starts `switchboard ARGS`, with `stdin` written to it if given.
fn switchboard(args: &[&str], stdin: Option<&str>) -> Proc {
    let mut command = Command::new(BIN);
    command.args(args).env("RUST_LOG", "warn");
    Proc::spawn(command, format!("switchboard {}", args.join(" ")), stdin)
}

/// Runs `switchboard ARGS` to its end.
fn run(args: &[&str]) -> Finished {
    switchboard(args, None).finish(GUARD)
}

/// Runs `switchboard ARGS` with `input` on stdin, to its end.
fn run_with_stdin(args: &[&str], input: &str) -> Finished {
    switchboard(args, Some(input)).finish(GUARD)
}

impl Finished {
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code; {self:#?}");
        self
    }

    /// Exactly one line on stderr, `switchboard: ...`, and it contains `part`.
    fn assert_one_line_error(&self, part: &str) -> &Self {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr; {self:#?}");
        assert!(lines[0].starts_with("switchboard: "), "{self:#?}");
        assert!(lines[0].contains(part), "stderr should mention {part:?}; {self:#?}");
        self
    }

    fn only_line(&self) -> &str {
        assert_eq!(self.stdout.len(), 1, "one line on stdout; {self:#?}");
        &self.stdout[0]
    }

    /// The one line of stdout, parsed.
    fn json(&self) -> Value {
        let line = self.only_line();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {line}"))
    }
}

/// `switchboard serve --addr 127.0.0.1:0`, and the URL it printed.
struct DemoHub {
    url: String,
    process: Proc,
}

impl DemoHub {
    fn start() -> DemoHub {
        let process = switchboard(&["serve", "--addr", "127.0.0.1:0"], None);
        let first = process.line(GUARD);
        let url = first
            .strip_prefix("switchboard hub listening on ")
            .unwrap_or_else(|| panic!("unexpected first line of serve: {first:?}"))
            .to_owned();
        DemoHub { url, process }
    }
}

/// A hub built here, on its own runtime, for what the demo hub cannot show.
struct TestHub {
    url: String,
    server: ServerHandle,
    runtime: tokio::runtime::Runtime,
}

impl TestHub {
    fn start(builder: switchboard::server::ServerBuilder, methods: Methods) -> TestHub {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
        let server =
            runtime.block_on(builder.build(methods).listen("127.0.0.1:0")).expect("the test hub listens on loopback");
        let url = format!("ws://{}/", server.local_addr().expect("bound"));
        TestHub { url, server, runtime }
    }
}

/// A URL nothing listens on: a port just bound and released.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}/")
}

// ---- serve ----------------------------------------------------------------

#[test]
fn serve_on_port_0_prints_the_bound_address_first_and_the_hub_answers_there() {
    let hub = DemoHub::start();
    let addr = hub.url.strip_prefix("ws://").and_then(|a| a.strip_suffix('/')).expect("ws://ADDR/");
    let addr: std::net::SocketAddr = addr.parse().expect("a socket address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the bound port, not the one asked for");

    let out = run(&["call", &hub.url, "add", "[2, 3]"]);
    out.assert_code(0);
    assert_eq!(out.only_line(), "5");
}

#[test]
fn serve_on_an_address_in_use_exits_3() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    run(&["serve", "--addr", &addr]).assert_code(3).assert_one_line_error("cannot listen on");
}

#[cfg(unix)]
#[test]
fn serve_shuts_down_gracefully_on_interrupt_and_exits_0() {
    let mut hub = DemoHub::start();
    let status = Command::new("kill")
        .args(["-INT", &hub.process.child().id().to_string()])
        .status()
        .expect("the kill command runs");
    assert!(status.success());
    let out = hub.process.finish(GUARD);
    assert_eq!(out.code, Some(0), "{out:#?}");
}

// ---- call -----------------------------------------------------------------

#[test]
fn call_prints_the_result_as_compact_json_and_exits_0() {
    let hub = DemoHub::start();
    let out = run(&["call", &hub.url, "get_data"]);
    out.assert_code(0);
    // stdout is a pipe, not a terminal: compact JSON, one value a line.
    assert_eq!(out.only_line(), r#"["hello",5]"#);
    assert!(out.stderr.is_empty(), "{out:#?}");

    let out = run(&["call", &hub.url, "subtract", r#"{"minuend": 42, "subtrahend": 23}"#]);
    out.assert_code(0);
    assert_eq!(out.json(), json!(19), "named params");

    let out = run(&["call", &hub.url, "echo", r#"{"nested": {"list": [1, 2]}}"#]);
    out.assert_code(0);
    assert_eq!(out.only_line(), r#"{"nested":{"list":[1,2]}}"#);
}

#[test]
fn call_of_unknown_method_prints_the_error_and_exits_1() {
    let hub = DemoHub::start();
    let out = run(&["call", &hub.url, "no_such_method", "[1]"]);
    out.assert_code(1).assert_one_line_error("-32601");
    let error = out.json();
    assert_eq!(error["code"], -32601, "the error object is printed on stdout: {error}");
    assert_eq!(error["message"], "Method not found");
}

#[test]
fn call_with_params_the_method_refuses_prints_the_error_and_exits_1() {
    let hub = DemoHub::start();
    let out = run(&["call", &hub.url, "add", r#"["two", 3]"#]);
    out.assert_code(1).assert_one_line_error("-32602");
    assert_eq!(out.json()["code"], -32602);
}

#[test]
fn call_with_bad_params_json_exits_2_with_one_line_on_stderr() {
    let hub = DemoHub::start();
    let out = run(&["call", &hub.url, "add", "[2,"]);
    out.assert_code(2).assert_one_line_error("PARAMS_JSON is not valid JSON");
    assert!(out.stdout.is_empty(), "{out:#?}");

    run(&["call", &hub.url, "add", "42"]).assert_code(2).assert_one_line_error("must be an array or an object");
}

#[test]
fn usage_errors_from_the_command_line_exit_2_with_one_line_on_stderr() {
    run(&["call"]).assert_code(2).assert_one_line_error("required arguments were not provided");
    run(&["frobnicate"]).assert_code(2).assert_one_line_error("unrecognized subcommand");
    run(&["call", "ws://127.0.0.1:9/", "add", "--timeout", "soon"]).assert_code(2).assert_one_line_error("--timeout");
    run(&["call", "ws://127.0.0.1:9/", "add", "--timeout", "0"]).assert_code(2).assert_one_line_error("positive");
    run(&["call", "ftp://127.0.0.1:9/", "add"]).assert_code(2).assert_one_line_error("ws");
    run(&["call", "ws://127.0.0.1:9/", "add", "--header", "no-colon"]).assert_code(2).assert_one_line_error("K:V");
}

#[test]
fn help_and_version_exit_0() {
    let out = run(&["--help"]);
    out.assert_code(0);
    let help = out.stdout.join("\n");
    for command in ["serve", "call", "notify", "batch", "describe", "listen"] {
        assert!(help.contains(command), "--help lists {command}: {help}");
    }
    for code in [
        "Exit codes:",
        "  0  success",
        "  1  the server answered with an error",
        "  2  usage error",
        "  3  could not connect",
    ] {
        assert!(help.contains(code), "--help documents the exit codes ({code:?}): {help}");
    }
    for command in ["call", "batch"] {
        let out = run(&[command, "--help"]);
        out.assert_code(0);
        let help = out.stdout.join("\n");
        assert!(help.contains("Exit codes:") && help.contains("switchboard: timeout: no reply within"), "{help}");
    }
    let out = run(&["--version"]);
    out.assert_code(0);
    assert_eq!(out.only_line(), format!("switchboard {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_bare_switchboard_prints_the_help_on_stderr_and_exits_2() {
    let out = run(&[]);
    out.assert_code(2);
    assert!(out.stdout.is_empty() && out.stderr.contains("Usage: switchboard <COMMAND>"), "{out:#?}");
}

#[test]
fn an_unreachable_url_exits_3_with_one_line_on_stderr() {
    let url = closed_url();
    let out = run(&["call", &url, "add", "[1, 2]"]);
    out.assert_code(3).assert_one_line_error(&format!("switchboard: could not connect to {url}: "));
    assert_eq!(out.stderr.matches(url.as_str()).count(), 1, "the URL once: {out:#?}");
    assert_eq!(out.stderr.matches("connect").count(), 1, "said once: {out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
    run(&["describe", &closed_url()]).assert_code(3).assert_one_line_error("could not connect");
    run(&["listen", &closed_url()]).assert_code(3).assert_one_line_error("could not connect");
}

#[test]
fn a_call_without_a_reply_in_time_exits_3() {
    let hub = DemoHub::start();
    let started = Instant::now();
    let out = run(&["call", &hub.url, "sleep", "[5000]", "--timeout", "0.3"]);
    // Said as a timeout of ours, never as an error object the server did not send.
    out.assert_code(3);
    assert_eq!(out.stderr.trim_end(), "switchboard: timeout: no reply within 300ms (--timeout 0.3)", "{out:#?}");
    assert!(started.elapsed() < Duration::from_secs(5), "it did not wait for the sleep: {:?}", started.elapsed());
    assert!(out.stdout.is_empty(), "{out:#?}");
}

// ---- notify ---------------------------------------------------------------

#[test]
fn notify_sends_a_notification_the_hub_receives_and_exits_0() {
    let (seen_tx, seen) = mpsc::channel::<Value>();
    let mut methods = Methods::new();
    methods.register_sync("record", move |params: Value, _cx: Context| {
        let _ = seen_tx.send(params);
        Ok::<_, ErrorObject>(())
    });
    let hub = TestHub::start(Server::builder(), methods);

    let out = run(&["notify", &hub.url, "record", r#"["hello", 42]"#]);
    out.assert_code(0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "a notification has no reply: {out:#?}");
    let params = seen.recv_timeout(GUARD).expect("the hub received the notification");
    assert_eq!(params, json!(["hello", 42]));

    // A notification to a method the hub lacks is not an error: nobody answers it.
    run(&["notify", &hub.url, "nothing_here"]).assert_code(0);
    drop(hub);
}

// ---- batch ----------------------------------------------------------------

const BATCH: &str = r#"[
    {"jsonrpc": "2.0", "method": "sum", "params": [1, 2, 3], "id": "first"},
    {"jsonrpc": "2.0", "method": "update", "params": [1]},
    {"jsonrpc": "2.0", "method": "get_data", "id": 7},
    {"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 10, "subtrahend": 4}, "id": 3}
]"#;

const BATCH_REPLIES: &str = r#"[{"jsonrpc":"2.0","result":6,"id":"first"},{"jsonrpc":"2.0","result":["hello",5],"id":7},{"jsonrpc":"2.0","result":6,"id":3}]"#;

#[test]
fn batch_from_a_file_prints_the_replies_in_order_with_their_ids() {
    let hub = DemoHub::start();
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("batch-{}.json", std::process::id()));
    std::fs::write(&file, BATCH).expect("write the batch file");
    let out = run(&["batch", &hub.url, file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    out.assert_code(0);
    assert_eq!(out.only_line(), BATCH_REPLIES, "no reply for the notification, the others in order");
}

#[test]
fn batch_from_stdin_prints_the_replies_in_order_with_their_ids() {
    let hub = DemoHub::start();
    for args in [vec!["batch", hub.url.as_str(), "-"], vec!["batch", hub.url.as_str()]] {
        let out = run_with_stdin(&args, BATCH);
        out.assert_code(0);
        assert_eq!(out.only_line(), BATCH_REPLIES, "{args:?}");
    }
}

#[test]
fn batch_with_an_entry_that_errs_prints_every_reply_and_exits_1() {
    let hub = DemoHub::start();
    let input = r#"[
        {"jsonrpc": "2.0", "method": "add", "params": [1, 1], "id": 1},
        {"jsonrpc": "2.0", "method": "missing", "id": 2},
        {"jsonrpc": "2.0", "method": "add", "params": [2, 2], "id": 3}
    ]"#;
    let out = run_with_stdin(&["batch", &hub.url], input);
    out.assert_code(1);
    let replies = out.json();
    assert_eq!(replies[0], json!({"jsonrpc": "2.0", "result": 2, "id": 1}));
    assert_eq!(replies[1]["error"]["code"], -32601);
    assert_eq!(replies[1]["id"], 2);
    assert_eq!(replies[2], json!({"jsonrpc": "2.0", "result": 4, "id": 3}));
}

#[test]
fn batch_over_the_servers_limit_prints_each_requests_own_error_and_exits_1() {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    let hub = TestHub::start(Server::builder().max_batch_len(2), methods);
    let input = r#"[
        {"jsonrpc": "2.0", "method": "add", "params": [1, 1], "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": [2, 2], "id": 2},
        {"jsonrpc": "2.0", "method": "add", "params": [3, 3], "id": 3}
    ]"#;
    // A --timeout far past the hang guard: the answer is printed when it comes, not after a timeout.
    let out = run_with_stdin(&["batch", &hub.url, "--timeout", "600"], input);
    out.assert_code(1);
    let reply = out.json();
    let answers = reply.as_array().expect("the server's array, as it came");
    assert_eq!(answers.iter().map(|a| a["id"].clone()).collect::<Vec<_>>(), vec![1, 2, 3], "{reply}");
    for answer in answers {
        assert_eq!(answer["error"]["code"], -32600, "the server's own error object: {reply}");
        assert!(answer["error"]["data"].as_str().is_some_and(|d| d.contains("limit of 2")), "{reply}");
    }
}

#[test]
fn batch_entries_without_a_reply_in_time_are_a_timeout_not_made_up_error_objects() {
    let hub = DemoHub::start();
    let input = r#"[
        {"jsonrpc": "2.0", "method": "add", "params": [1, 1], "id": 1},
        {"jsonrpc": "2.0", "method": "sleep", "params": [5000], "id": "slow"}
    ]"#;
    let out = run_with_stdin(&["batch", &hub.url, "--timeout", "0.3"], input);
    out.assert_code(3);
    // The server answers a batch in one frame, after its slowest call: nothing came in time.
    assert!(out.stdout.is_empty(), "nothing the server did not send: {out:#?}");
    assert_eq!(
        out.stderr.trim_end(),
        r#"switchboard: timeout: no reply within 300ms (--timeout 0.3) to the batch entries with ids 1, "slow""#,
        "{out:#?}"
    );
}

#[test]
fn batch_that_is_not_an_array_of_requests_exits_2() {
    let hub = DemoHub::start();
    run_with_stdin(&["batch", &hub.url], "{not json").assert_code(2).assert_one_line_error("not valid JSON");
    run_with_stdin(&["batch", &hub.url], r#"{"method": "add"}"#).assert_code(2).assert_one_line_error("array");
    run_with_stdin(&["batch", &hub.url], "[]").assert_code(2).assert_one_line_error("empty");
    run_with_stdin(&["batch", &hub.url], r#"[{"id": 1}]"#).assert_code(2).assert_one_line_error("method");
    run(&["batch", &hub.url, "/no/such/batch.json"]).assert_code(2).assert_one_line_error("cannot read");
}

// ---- describe -------------------------------------------------------------

#[test]
fn describe_lists_the_methods_with_their_descriptions() {
    let hub = DemoHub::start();
    let out = run(&["describe", &hub.url]);
    out.assert_code(0);
    assert_eq!(out.stdout[0], format!("switchboard demo hub {}", env!("CARGO_PKG_VERSION")));
    let line_of = |name: &str| {
        out.stdout
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is listed: {out:#?}"))
            .clone()
    };
    for (name, description) in [
        ("add", "Adds two numbers."),
        ("sum", "Adds any count of numbers."),
        ("sleep", "Returns ms after sleeping ms milliseconds."),
        ("rpc.discover", "Returns the OpenRPC 1.3 document"),
        ("clock", "The server's time, every second"),
    ] {
        assert!(line_of(name).contains(description), "{name}: {}", line_of(name));
    }
    assert!(out.stdout.iter().any(|l| l == "topics (rpc.subscribe):"), "{out:#?}");
}

#[test]
fn describe_with_a_method_shows_its_signature_params_and_result() {
    let hub = DemoHub::start();
    let out = run(&["describe", &hub.url, "add"]);
    out.assert_code(0);
    assert_eq!(out.stdout[0], "add(a: number, b: number) -> number");
    assert_eq!(out.stdout[1].trim(), "Adds two numbers.");
    assert_eq!(out.stdout[2].trim(), "params (by-position):");
    assert!(out.stdout[3].trim().starts_with("a (number, required): {"), "{out:#?}");
    assert!(out.stdout[4].trim().starts_with("b (number, required): {"), "{out:#?}");
    assert!(out.stdout[5].trim().starts_with("result (number): {"), "{out:#?}");

    let out = run(&["describe", &hub.url, "subtract"]);
    out.assert_code(0);
    assert!(out.stdout.iter().any(|l| l.trim() == "params (either):"), "{out:#?}");
    assert!(out.stdout.iter().any(|l| l.trim().starts_with("minuend (number, required)")), "{out:#?}");

    let out = run(&["describe", &hub.url, "clock"]);
    out.assert_code(0);
    assert_eq!(out.stdout[0], "topic clock");

    run(&["describe", &hub.url, "no_such_method"]).assert_code(1).assert_one_line_error("no method named");
}

// ---- listen ---------------------------------------------------------------

#[test]
fn listen_to_the_clock_topic_prints_one_json_object_a_line() {
    let hub = DemoHub::start();
    let listener = switchboard(&["listen", &hub.url, "--topic", "clock"], None);
    let ticks: Vec<Value> = (0..2)
        .map(|_| {
            let line = listener.line(GUARD);
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"))
        })
        .collect();
    for tick in &ticks {
        assert_eq!(tick["method"], "clock", "{tick}");
        assert!(tick["params"]["unix_ms"].is_u64() && tick["params"]["seq"].is_u64(), "{tick}");
    }
    let seq = |t: &Value| t["params"]["seq"].as_u64().unwrap();
    assert_eq!(seq(&ticks[1]), seq(&ticks[0]) + 1, "consecutive ticks: {ticks:?}");
    // The listener runs until interrupted; dropping its guard kills it.
    drop(listener);
}

#[test]
fn listen_prints_notifications_pushed_to_the_connection_and_refuses_calls() {
    let (connected_tx, connected) = mpsc::channel();
    let builder = Server::builder().on_connect(move |peer| {
        let _ = connected_tx.send(peer.id());
    });
    let hub = TestHub::start(builder, Methods::new());
    let listener = switchboard(&["listen", &hub.url], None);
    let connection = connected.recv_timeout(GUARD).expect("the listener connects");

    hub.server.notify(connection, "note", json!({"n": 1})).expect("notify the listener");
    assert_eq!(listener.line(GUARD), r#"{"method":"note","params":{"n":1}}"#);
    hub.server.broadcast("news", ["extra"]).expect("broadcast");
    assert_eq!(listener.line(GUARD), r#"{"method":"news","params":["extra"]}"#);

    let refused = hub
        .runtime
        .block_on(async { tokio::time::timeout(GUARD, hub.server.call::<Value>(connection, "anything", ())).await });
    let refused = refused.expect("the listener answers calls").unwrap_err();
    assert_eq!(refused.rpc().map(|e| e.code), Some(-32601), "{refused:?}");
    drop(listener);
}

/// A process whose stdout and stderr are both read line by line as they come
/// (the shared `Proc` reads stderr only once it ends); killed on drop.
struct Streaming {
    child: std::process::Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Streaming {
    fn spawn(args: &[&str]) -> Streaming {
        use std::io::BufRead;
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "off")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start switchboard");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().expect("piped")));
        let stderr = lines(Box::new(child.stderr.take().expect("piped")));
        Streaming { child, stdout, stderr }
    }

    fn stderr_line(&self) -> String {
        self.stderr.recv_timeout(GUARD).unwrap_or_else(|e| panic!("no line on stderr within {GUARD:?}: {e}"))
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn listen_says_on_stderr_when_the_connection_drops_when_it_is_back_and_when_a_topic_is_refused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (connected_tx, connected) = mpsc::channel();
    let (subscribing_tx, subscribing) = mpsc::channel();
    let subscribes = AtomicUsize::new(0);
    let builder = Server::builder()
        .on_connect(move |peer| {
            let _ = connected_tx.send(peer.clone());
        })
        // The first subscribe is allowed, every later one refused.
        .on_subscribe(move |_cx, _topic| {
            let _ = subscribing_tx.send(());
            match subscribes.fetch_add(1, Ordering::SeqCst) {
                0 => SubscriptionDecision::Allow,
                _ => SubscriptionDecision::Deny("not now".into()),
            }
        });
    let hub = TestHub::start(builder, Methods::new());
    let listener = Streaming::spawn(&["listen", &hub.url, "--topic", "news"]);
    let first = connected.recv_timeout(GUARD).expect("the listener connects");
    subscribing.recv_timeout(GUARD).expect("the listener subscribes");
    // A round trip after it: the connection handled the subscribe (a sync
    // handler) and queued its answer before it read this call's answer.
    let refused = hub
        .runtime
        .block_on(async { tokio::time::timeout(GUARD, hub.server.call::<Value>(first.id(), "anything", ())).await });
    assert!(refused.expect("the listener answers").is_err(), "the listener refuses calls");
    assert_eq!(hub.server.subscribers("news"), 1, "subscribed");
    hub.server.publish("news", "news", ["hello"]).expect("publish");
    assert_eq!(listener.stdout.recv_timeout(GUARD).expect("a line"), r#"{"method":"news","params":["hello"]}"#);

    first.close(1000, "go away");
    let _second = connected.recv_timeout(GUARD).expect("the listener reconnects");
    assert_eq!(listener.stderr_line(), format!("switchboard: connection to {} lost; reconnecting", hub.url));
    // "back" and the refused re-subscribe come in either order.
    let (a, b) = (listener.stderr_line(), listener.stderr_line());
    let back = format!("switchboard: reconnected to {}", hub.url);
    let refused = format!("switchboard: re-subscribing to \"news\" on {} failed: ", hub.url);
    let (back_line, refused_line) = if a == back { (a, b) } else { (b, a) };
    assert_eq!(back_line, back);
    assert!(refused_line.starts_with(&refused) && refused_line.contains("not now"), "{refused_line}");
    assert!(refused_line.ends_with("; retrying now"), "{refused_line}");
}

#[cfg(unix)]
#[test]
fn listen_stops_on_interrupt_and_exits_0() {
    let hub = DemoHub::start();
    let mut listener = switchboard(&["listen", &hub.url, "--topic", "clock"], None);
    // Subscribed once the first tick is printed.
    let _ = listener.line(GUARD);
    let status = Command::new("kill").args(["-INT", &listener.child().id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let out = listener.finish(GUARD);
    assert_eq!(out.code, Some(0), "{out:#?}");
}

// ---- --token and --header --------------------------------------------------

/// A hub that wants `Authorization: Bearer s3cret` and an `x-tenant` header,
/// and tells each connection what it was accepted with.
fn guarded_hub() -> TestHub {
    let builder = Server::builder().authenticate(|req| {
        match req.bearer_token() {
            Some("s3cret") => {}
            Some(_) => return Err(Rejection::Forbidden("wrong token".into())),
            None => return Err(Rejection::Unauthorized("a bearer token is required".into())),
        }
        let tenant = req.header("x-tenant").ok_or_else(|| Rejection::Forbidden("x-tenant is required".into()))?;
        Ok(json!({"user": "ada", "tenant": tenant}))
    });
    let mut methods = Methods::new();
    methods.register_sync("whoami", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.auth().cloned()));
    TestHub::start(builder, methods)
}

#[test]
fn token_and_header_reach_the_server() {
    let hub = guarded_hub();
    let out = run(&["call", &hub.url, "whoami", "--token", "s3cret", "--header", "x-tenant: acme"]);
    out.assert_code(0);
    assert_eq!(out.json(), json!({"user": "ada", "tenant": "acme"}));

    // The flags go anywhere after the subcommand, for every subcommand.
    let out = run(&["describe", "--header", "x-tenant:acme", "--token", "s3cret", &hub.url, "whoami"]);
    out.assert_code(0);
    assert_eq!(out.stdout[0], "whoami()");
}

#[test]
fn without_the_token_the_server_answers_401_and_the_command_exits_3() {
    let hub = guarded_hub();
    let out = run(&["call", &hub.url, "whoami", "--header", "x-tenant: acme"]);
    out.assert_code(3);
    // The status and the server's reason, the URL once.
    assert_eq!(
        out.stderr.trim_end(),
        format!("switchboard: could not connect to {}: HTTP 401 Unauthorized: a bearer token is required", hub.url)
    );
    assert!(out.stdout.is_empty(), "{out:#?}");

    run(&["call", &hub.url, "whoami", "--token", "wrong", "--header", "x-tenant: acme"])
        .assert_code(3)
        .assert_one_line_error("HTTP 403 Forbidden: wrong token");
}

// ---- listen --positioned and --since ---------------------------------------

/// A WebSocket server scripted by the test, one frame at a time, for the
/// topic-stream wire (positioned `rpc.subscribe`, `rpc.publication`): each
/// accepted connection is handed to the test, which reads and writes its
/// frames; dropping one is a crash (no close frame).
struct Scripted {
    url: String,
    conns: tokio::sync::mpsc::UnboundedReceiver<ScriptedConn>,
    runtime: tokio::runtime::Runtime,
}

type ScriptedConn = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

impl Scripted {
    fn start() -> Scripted {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind loopback");
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let (tx, conns) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    let _ = tx.send(ws);
                }
            }
        });
        Scripted { url, conns, runtime }
    }

    fn accept(&mut self) -> ScriptedConn {
        let conns = &mut self.conns;
        let next = self.runtime.block_on(async { tokio::time::timeout(GUARD, conns.recv()).await });
        next.expect("a connection within the guard").expect("the server accepts")
    }

    /// The next text frame, as JSON.
    fn recv(&self, conn: &mut ScriptedConn) -> Value {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        self.runtime.block_on(async {
            loop {
                let frame = tokio::time::timeout(GUARD, conn.next()).await.expect("a frame within the guard");
                match frame.expect("the connection is open").expect("a frame") {
                    Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                    _ => continue,
                }
            }
        })
    }

    fn send(&self, conn: &mut ScriptedConn, frame: Value) {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        self.runtime.block_on(conn.send(Message::text(frame.to_string()))).expect("the client is connected");
    }

    /// Reads the client's `rpc.subscribe`, checks its params, answers with `answer`.
    fn subscribe(&self, conn: &mut ScriptedConn, params: Value, answer: Value) {
        let request = self.recv(conn);
        assert_eq!(request["method"], "rpc.subscribe", "{request}");
        assert_eq!(request["params"], params, "the exact params of the subscribe");
        self.send(conn, json!({"jsonrpc": "2.0", "result": answer, "id": request["id"]}));
    }
}

/// Publication `epoch:offset` of topic `t` (method `tick`, params `{"n": offset}`), as sent.
fn publication(epoch: &str, offset: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "rpc.publication", "params": printed(epoch, offset)})
}

/// The line `listen --positioned` prints for publication `epoch:offset` of `t`.
fn printed(epoch: &str, offset: u64) -> Value {
    json!({"topic": "t", "epoch": epoch, "offset": offset, "method": "tick", "params": {"n": offset}})
}

impl Streaming {
    fn stdout_json(&self) -> Value {
        let line =
            self.stdout.recv_timeout(GUARD).unwrap_or_else(|e| panic!("no line on stdout within {GUARD:?}: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"))
    }

    /// The next `count` stderr lines, sorted: the connection's lines and the
    /// subscription's come from two sources, in either order on a busy machine.
    fn stderr_lines(&self, count: usize) -> Vec<String> {
        let mut lines: Vec<String> = (0..count).map(|_| self.stderr_line()).collect();
        lines.sort();
        lines
    }
}

#[test]
fn listen_positioned_prints_each_publication_with_its_position_and_says_what_a_reconnect_recovered() {
    let mut hub = Scripted::start();
    let listener = Streaming::spawn(&["listen", &hub.url, "--topic", "t", "--positioned"]);
    let mut first = hub.accept();
    hub.subscribe(
        &mut first,
        json!({"topic": "t", "positioned": true}),
        json!({"topic": "t", "epoch": "e1", "offset": 5, "recovered": false}),
    );
    hub.send(&mut first, publication("e1", 6));
    hub.send(&mut first, publication("e1", 7));
    assert_eq!(listener.stdout_json(), printed("e1", 6), "the whole publication, one JSON object a line");
    assert_eq!(listener.stdout_json(), printed("e1", 7));

    // A crash: the listener subscribes again after its last position; the
    // replay overlaps what it printed, which is not printed twice.
    drop(first);
    let mut second = hub.accept();
    let since = json!({"topic": "t", "since": {"epoch": "e1", "offset": 7}});
    hub.subscribe(&mut second, since, json!({"topic": "t", "epoch": "e1", "offset": 9, "recovered": true}));
    for offset in [7, 8, 9] {
        hub.send(&mut second, publication("e1", offset));
    }
    assert_eq!(listener.stdout_json(), printed("e1", 8));
    assert_eq!(listener.stdout_json(), printed("e1", 9));
    assert_eq!(
        listener.stderr_lines(3),
        vec![
            format!("switchboard: connection to {} lost; reconnecting", hub.url),
            format!("switchboard: reconnected to {}", hub.url),
            format!("switchboard: reconnected to {}; recovered 2 missed publications of \"t\" after e1:7", hub.url),
        ]
    );

    // The server lost its history (a new epoch): said, and the listener carries on.
    drop(second);
    let mut third = hub.accept();
    let since = json!({"topic": "t", "since": {"epoch": "e1", "offset": 9}});
    hub.subscribe(&mut third, since, json!({"topic": "t", "epoch": "e2", "offset": 4, "recovered": false}));
    hub.send(&mut third, publication("e2", 5));
    assert_eq!(listener.stdout_json(), printed("e2", 5));
    assert_eq!(
        listener.stderr_lines(3),
        vec![
            format!("switchboard: connection to {} lost; reconnecting", hub.url),
            format!("switchboard: reconnected to {}", hub.url),
            format!(
                "switchboard: reconnected to {}; missed publications of \"t\" are lost (new epoch e2); continuing after e2:4",
                hub.url
            ),
        ]
    );
}

#[test]
fn listen_since_resumes_after_the_position_and_says_whether_it_could() {
    let mut hub = Scripted::start();
    let listener = Streaming::spawn(&["listen", &hub.url, "--topic", "t", "--since", "e1:41"]);
    let mut conn = hub.accept();
    let since = json!({"topic": "t", "since": {"epoch": "e1", "offset": 41}});
    hub.subscribe(&mut conn, since, json!({"topic": "t", "epoch": "e1", "offset": 43, "recovered": true}));
    for offset in [41, 42, 43] {
        hub.send(&mut conn, publication("e1", offset));
    }
    assert_eq!(listener.stdout_json(), printed("e1", 42), "41 is where it resumed: not printed");
    assert_eq!(listener.stdout_json(), printed("e1", 43));
    assert_eq!(listener.stderr_line(), "switchboard: resumed \"t\" after e1:41; recovered 2 missed publications");

    let listener = Streaming::spawn(&["listen", &hub.url, "--topic", "t", "--since", "e0:7"]);
    let mut conn = hub.accept();
    let since = json!({"topic": "t", "since": {"epoch": "e0", "offset": 7}});
    hub.subscribe(&mut conn, since, json!({"topic": "t", "epoch": "e1", "offset": 43, "recovered": false}));
    hub.send(&mut conn, publication("e1", 44));
    assert_eq!(listener.stdout_json(), printed("e1", 44));
    assert_eq!(
        listener.stderr_line(),
        "switchboard: cannot resume \"t\" after e0:7: missed publications are lost (new epoch e1); continuing after e1:43"
    );
}

#[test]
fn listen_since_needs_one_topic_and_a_position() {
    let url = closed_url();
    run(&["listen", &url, "--topic", "t", "--since", "e1"]).assert_code(2).assert_one_line_error("EPOCH:OFFSET");
    run(&["listen", &url, "--topic", "t", "--since", "e1:x"]).assert_code(2).assert_one_line_error("offset");
    run(&["listen", &url, "--since", "e1:4"]).assert_code(2).assert_one_line_error("--topic");
    run(&["listen", &url, "--topic", "a", "--topic", "b", "--since", "e1:4"])
        .assert_code(2)
        .assert_one_line_error("exactly one --topic");
    let out = run(&["listen", "--help"]);
    out.assert_code(0);
    let help = out.stdout.join("\n");
    for part in ["--positioned", "--since <EPOCH:OFFSET>", "rpc.publication", "recovered"] {
        assert!(help.contains(part), "listen --help mentions {part:?}: {help}");
    }
}

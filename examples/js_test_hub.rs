//! The hub the JavaScript client's unit tests (`client/js/test/`) run
//! against: the demo hub's methods plus a few that let a test make the
//! server do things on cue (publish, plain or with positions, call the
//! client back, fail, drop the connection, send a raw frame), served through the HTTP integration
//! (`switchboard::server::web`) on `ws://ADDR/rpc`.
//!
//! ```text
//! cargo run --example js_test_hub -- --addr 127.0.0.1:0 --app-heartbeat-ms 200
//! ```
//!
//! It prints `js_test_hub listening on ws://ADDR/rpc` once it accepts
//! connections, and exits on Ctrl-C (or, with `--until-stdin-closes`, when
//! its standard input closes, so a test runner that dies takes it along).
//!
//! With `--tls-dir DIR` it serves TLS with a self-signed certificate for
//! `localhost` it makes at start (rcgen) and writes to `DIR/cert.pem` (a
//! browser test pins it), says `wss://localhost:PORT/rpc`, and serves the
//! files of DIR at `/` with the client at `/switchboard.js` and
//! `/protocol.js`, so a page can be served from the hub's own origin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use clap::Parser;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Read;
use switchboard::demo::{contract_methods, service_info};
use switchboard::server::web::WebServer;
use switchboard::server::{Server, ServerContext, TlsConfig};
use switchboard::shared::{Context, ErrorObject};

/// Serves the JavaScript client's test hub.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Interval of the application-level heartbeat (`rpc.heartbeat`) in ms; 0 = off.
    #[arg(long, default_value_t = 0)]
    app_heartbeat_ms: u64,
    /// Publications kept per topic (for resume and `rpc.history` tests).
    #[arg(long, default_value_t = switchboard::server::defaults::HISTORY_ENTRIES)]
    history: usize,
    /// Exit when standard input closes (a test runner that dies takes the hub along).
    #[arg(long)]
    until_stdin_closes: bool,
    /// Serve TLS with a self-signed certificate written to DIR/cert.pem, and DIR's files at `/`.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<std::path::PathBuf>,
}

/// `ask`'s params: `[method, params]` or `[method, params, timeout_ms]` (default 5 s).
#[derive(Debug, Deserialize)]
struct Ask {
    method: String,
    params: Value,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// `fail`'s params: `[code, message]` or `[code, message, data]`.
#[derive(Debug, Deserialize)]
struct Fail {
    code: i64,
    message: String,
    #[serde(default)]
    data: Option<Value>,
}

/// What each connection asked the hub to remember (`remember` / `recall`).
static NOTES: LazyLock<Mutex<HashMap<uuid::Uuid, Value>>> = LazyLock::new(Default::default);

fn methods() -> switchboard::shared::Methods {
    let mut methods = contract_methods();
    methods
        .register_sync("publish", |(topic, params): (String, Value), cx: Context| {
            let server = cx.server()?;
            let reached = server.subscribers(&topic);
            server.publish(&topic, &topic, params)?;
            Ok::<_, ErrorObject>(reached)
        })
        .describe("Publishes params to a topic (method = the topic); returns how many received it.");
    methods
        .register("publish_positioned", switchboard::demo::publish)
        .describe("The contract's `publish [topic, method, params]`: returns the publication's {epoch, offset}.");
    methods
        .register_sync("subscribers", |(topic,): (String,), cx: Context| {
            Ok::<_, ErrorObject>(cx.server()?.subscribers(&topic))
        })
        .describe("How many connections are in a topic.");
    methods
        .register("ask", |Ask { method, params, timeout_ms }: Ask, cx: Context| async move {
            let timeout = Duration::from_millis(timeout_ms.unwrap_or(5_000));
            let outcome = cx.peer().call_raw(&method, &params, Some(timeout)).await;
            Ok::<_, ErrorObject>(match outcome {
                Ok(raw) => {
                    json!({ "result": serde_json::from_str::<Value>(raw.get()).map_err(ErrorObject::internal)? })
                }
                Err(switchboard::shared::Error::Rpc(e)) => json!({ "error": e }),
                Err(other) => json!({ "failure": other.to_string() }),
            })
        })
        .describe("Calls METHOD with PARAMS back on the caller; returns {result}, {error} or {failure}.");
    methods
        .register_sync("fail", |Fail { code, message, data }: Fail, _cx: Context| {
            let mut error = ErrorObject::new(code, message);
            if let Some(data) = data {
                error = error.with_data(data);
            }
            Err::<(), _>(error)
        })
        .describe("Answers with the error object {code, message, data}.");
    methods
        .register_sync("remember", |(value,): (Value,), cx: Context| {
            NOTES.lock().insert(cx.connection_id(), value);
            Ok::<_, ErrorObject>(())
        })
        .describe("Keeps a value for this connection (send it as a notification, then `recall`).");
    methods
        .register_sync("recall", |(): (), cx: Context| {
            Ok::<_, ErrorObject>(NOTES.lock().get(&cx.connection_id()).cloned())
        })
        .describe("The value this connection last sent to `remember`.");
    methods
        .register_sync("kick", |(): (), cx: Context| {
            cx.peer().close(4001, "kicked");
            Ok::<_, ErrorObject>(())
        })
        .describe("Closes the caller's connection with 4001.");
    methods
        .register_sync("raw", |(frame,): (String,), cx: Context| {
            cx.peer().try_send_text(frame.into()).map_err(ErrorObject::internal)?;
            Ok::<_, ErrorObject>(true)
        })
        .describe("Sends FRAME, as is, as a text frame to the caller.");
    methods
        .register_sync("heartbeat_rtt", |(): (), cx: Context| {
            let rtt = cx.server()?.heartbeat_rtt(cx.connection_id());
            Ok::<_, ErrorObject>(rtt.map(|d| d.as_secs_f64() * 1e3))
        })
        .describe("The heartbeat round trip the server last measured on this connection, in ms.");
    methods
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    let heartbeat = (args.app_heartbeat_ms > 0).then(|| Duration::from_millis(args.app_heartbeat_ms));
    let mut builder =
        Server::builder().discovery(service_info()).app_heartbeat(heartbeat).history_entries(args.history);
    if let Some(dir) = &args.tls_dir {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("cert.pem"), cert.cert.pem())?;
        let tls = TlsConfig::from_pem(cert.cert.pem().as_bytes(), cert.signing_key.serialize_pem().as_bytes())?;
        builder = builder.tls(tls);
    }
    let hub = builder.build(methods()).handle();
    let mut web = WebServer::new(hub.clone()).hub_path("/rpc");
    if let Some(dir) = &args.tls_dir {
        let client = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("client/js");
        web = web
            .file("/switchboard.js", client.join("switchboard.js"))
            .file("/protocol.js", client.join("protocol.js"))
            .dir("/", dir);
    }
    let addr = web.listen(args.addr).await?;
    match args.tls_dir {
        Some(_) => println!("js_test_hub listening on wss://localhost:{}/rpc", addr.port()),
        None => println!("js_test_hub listening on ws://{addr}/rpc"),
    }

    let stdin_closed = async {
        if !args.until_stdin_closes {
            return std::future::pending().await;
        }
        // Blocking reads on a thread of their own: tokio's stdin is not enabled here.
        let _ = tokio::task::spawn_blocking(|| {
            let mut buf = [0u8; 64];
            while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        })
        .await;
    };
    tokio::select! {
        () = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    hub.shutdown(Duration::from_millis(200)).await;
    Ok(())
}

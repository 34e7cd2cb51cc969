//! A live dashboard in the browser: one axum app serves the page, the
//! JavaScript client (tower-http's `ServeDir` / `ServeFile`) and the hub
//! (`switchboard::server::axum::route`) on one port.
//!
//! ```text
//! cargo run --example dashboard            # then open http://127.0.0.1:8080/
//! cargo run --example dashboard -- --addr 127.0.0.1:0
//! ```
//!
//! - every 500 ms the server publishes to the `metrics` topic: connected
//!   clients, calls per second, calls answered, and a ticking demo signal;
//!   the page draws the last minute as an SVG chart;
//! - the page's form calls any method (the demo hub's `add`, `echo`,
//!   `sleep`... listed from `rpc.discover`) and shows the result or error;
//! - the server calls `browser.info` on every open dashboard (a button on
//!   the page, `dashboard.ask_browsers`, and every `--ask-every` seconds)
//!   with `call_many`, and publishes the answers to the `browsers` topic;
//! - the application-level heartbeat is on, so each page shows its round trip;
//! - the page lists the hub's own figures per method (calls, errors, p50,
//!   p99: `ServerHandle::method_stats`, from the registry that `GET /metrics`
//!   on the same port exports, with `/healthz` and `/readyz`);
//! - only the page's own origin may open the hub from a browser (the
//!   server's same-origin default; `--allow-origin` adds more); clients
//!   that send no `Origin` may too.
//!
//! The API is typed on both sides: in Rust with `#[switchboard::rpc]` (the
//! `Dashboard` method, the `Feeds` topics, the `Browser` API each page
//! serves), and in the page with the wrapper generated from the hub's
//! discovery document, `api.js` and its declarations `api.d.ts`:
//!
//! ```text
//! switchboard codegen ts ws://127.0.0.1:8080/rpc -o examples/dashboard/api.js --import ../../client/js/switchboard.js
//! ```
//!
//! (`tests/dashboard_api.rs` generates them again from the running example
//! and fails when the checked-in files differ.)
//!
//! The page lives in `examples/dashboard/` (`index.html`, `app.js`,
//! `api.js`, `style.css`); it imports the client from `/switchboard.js`,
//! served from `client/js/switchboard.js` (which imports `/protocol.js`
//! beside it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use clap::Parser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchboard::demo::contract_methods;
use switchboard::server::{
    Direction, MethodStats, MissingOrigin, OriginPolicy, Server, ServerContext, ServerHandle, Target,
};
use switchboard::shared::discover::ServiceInfo;
use switchboard::shared::{Context, Method, Methods, RpcResult};
use switchboard::topic::Topic;
use tower_http::services::{ServeDir, ServeFile};

/// The dashboard's own method.
#[switchboard::rpc(namespace = "dashboard")]
pub trait Dashboard {
    /// Calls browser.info on every open dashboard now; returns and publishes the answers.
    async fn ask_browsers(&self, cx: Context) -> RpcResult<BrowsersReport>;
}

/// What the dashboard pushes (topics named without a namespace).
#[switchboard::rpc]
pub trait Feeds {
    /// Every 500 ms: the hub's counters and a ticking signal (calls count batch entries).
    #[rpc(topic)]
    fn metrics() -> Topic<Metrics>;

    /// The answers of the last browser.info round.
    #[rpc(topic)]
    fn browsers() -> Topic<BrowsersReport>;
}

/// Served by every dashboard page; the server calls it.
#[switchboard::rpc(client, namespace = "browser")]
pub trait Browser {
    /// Answered by each dashboard page: its user agent, language, viewport, counters.
    async fn info(&self, asked_at: u64) -> BrowserInfo;
}

/// A publication of `metrics`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Metrics {
    /// 0 for the first, then one more each time.
    pub seq: u64,
    /// When, in milliseconds since 1970.
    pub t: u64,
    /// Connected clients.
    pub clients: usize,
    /// Calls answered per second since the last publication.
    pub calls_per_sec: f64,
    /// Calls answered since the hub started.
    pub calls_total: u64,
    /// A bounded random walk between 0 and 100.
    pub signal: f64,
    /// The hub's own figures per method, busiest first.
    pub methods: Vec<MethodRow>,
}

/// One method's figures in a `metrics` publication (outgoing calls, to the
/// browsers, marked with an arrow).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MethodRow {
    /// The method's name.
    pub method: String,
    /// Calls ended.
    pub calls: u64,
    /// Calls ended with an error.
    pub errors: u64,
    /// Median duration in milliseconds, once there are calls.
    pub p50_ms: Option<f64>,
    /// 99th percentile duration in milliseconds, once there are calls.
    pub p99_ms: Option<f64>,
}

/// What a dashboard page answers to `browser.info`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BrowserInfo {
    /// The page's own random id.
    pub page_id: String,
    /// `navigator.userAgent`.
    pub user_agent: String,
    /// `navigator.language`.
    pub language: String,
    /// `WIDTHxHEIGHT` of the window.
    pub viewport: String,
    /// How many times the page answered `browser.info`.
    pub answered: u64,
    /// How many metrics pushes it received.
    pub pushes: u64,
    /// How long the page has been open, in milliseconds.
    pub open_for_ms: u64,
}

/// One page's answer in a [`BrowsersReport`]: its info, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BrowserAnswer {
    /// The page's connection id.
    pub connection: String,
    /// What it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<BrowserInfo>,
    /// Why it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The round trip of its last heartbeat, in milliseconds.
    pub rtt_ms: Option<f64>,
}

/// The answers of one `browser.info` round.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BrowsersReport {
    /// When, in milliseconds since 1970.
    pub at: u64,
    /// Each page's answer, by connection id.
    pub answers: Vec<BrowserAnswer>,
}

/// Serves the live dashboard.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Address to serve the page and the hub on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Seconds between the server's own calls to `browser.info` (0: only on request).
    #[arg(long, default_value_t = 10)]
    ask_every: u64,
    /// Seconds between application-level heartbeats (`rpc.heartbeat`).
    #[arg(long, default_value_t = 2)]
    heartbeat: u64,
    /// More browser origins that may connect, as patterns like
    /// `https://*.example.com` (the page's own always may).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<switchboard::server::OriginPattern>,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Calls `browser.info` on every dashboard (the `metrics` subscribers) at
/// once, publishes the answers to `browsers` and returns them.
async fn ask_browsers(server: &ServerHandle) -> RpcResult<BrowsersReport> {
    let target = Target::Topic(FeedsApi::metrics().name().into());
    let answers = server.info_many(target, unix_ms(), Duration::from_secs(3)).await?;
    let mut answers: Vec<BrowserAnswer> = answers
        .into_iter()
        .map(|answer| {
            let rtt_ms = server.heartbeat_rtt(answer.connection).map(|d| d.as_secs_f64() * 1e3);
            let connection = answer.connection.to_string();
            match answer.result {
                Ok(info) => BrowserAnswer { connection, info: Some(info), error: None, rtt_ms },
                Err(e) => BrowserAnswer { connection, info: None, error: Some(e.to_string()), rtt_ms },
            }
        })
        .collect();
    answers.sort_by(|a, b| a.connection.cmp(&b.connection));
    let report = BrowsersReport { at: unix_ms(), answers };
    server.browsers().publish(&report)?;
    Ok(report)
}

struct Hub;

impl Dashboard for Hub {
    async fn ask_browsers(&self, cx: Context) -> RpcResult<BrowsersReport> {
        let server = cx.server()?.clone();
        ask_browsers(&server).await
    }
}

/// The demo hub's methods and `dashboard.ask_browsers`, each counting the
/// calls it gets into `calls` (batch entries included).
fn methods(calls: &Arc<AtomicU64>) -> Methods {
    let mut methods = contract_methods();
    methods.merge(Hub.into_methods());
    let mut counted = Methods::new();
    for (name, method) in methods.iter() {
        let (inner, calls) = (method.clone(), Arc::clone(calls));
        let mut wrapped = Method::raw(move |params, cx, id| {
            if id.is_some() {
                calls.fetch_add(1, Ordering::Relaxed);
            }
            inner.invoke(params, cx, id)
        });
        *wrapped.info_mut() = method.info().clone();
        counted.insert(name, wrapped);
    }
    counted
}

/// The dashboard's discovery document: its methods (from the registry), the
/// methods every page serves, and its topics. `api.js` and `api.d.ts` beside
/// the page are generated from it (`switchboard codegen ts`).
fn service_info() -> ServiceInfo {
    ServiceInfo::new("switchboard dashboard", env!("CARGO_PKG_VERSION"))
        .client_api(BrowserApi::docs())
        .topics(FeedsApi::topics())
}

/// Publishes the metrics every 500 ms until the server stops.
async fn publish_metrics(server: ServerHandle, calls: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_at = Instant::now();
    let mut last_total = 0u64;
    let mut signal = 50.0f64;
    let mut seed = unix_ms() | 1;
    for seq in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            () = server.stopped() => return,
        }
        let calls_total = calls.load(Ordering::Relaxed);
        let delta = calls_total - last_total;
        last_total = calls_total;
        let elapsed = last_at.elapsed().as_secs_f64().max(1e-3);
        last_at = Instant::now();
        // A bounded random walk: the "any live metric" of the chart.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let step = (seed % 2001) as f64 / 100.0 - 10.0;
        signal = (signal + step).clamp(0.0, 100.0);
        let metrics = Metrics {
            methods: method_rows(&server),
            seq,
            t: unix_ms(),
            clients: server.connection_count(),
            calls_per_sec: (delta as f64 / elapsed * 10.0).round() / 10.0,
            calls_total,
            signal: (signal * 10.0).round() / 10.0,
        };
        if server.metrics().publish(&metrics).is_err() {
            return;
        }
    }
}

/// The hub's own per-method figures (the same registry `GET /metrics`
/// exports): calls, errors, p50 and p99 in ms, busiest first.
fn method_rows(server: &ServerHandle) -> Vec<MethodRow> {
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0);
    let mut stats: Vec<_> = server.method_stats().into_iter().filter(|s| s.calls > 0).collect();
    stats.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.method.cmp(&b.method)));
    let row = |s: MethodStats| MethodRow {
        method: format!("{}{}", if s.direction == Direction::Outgoing { "→ " } else { "" }, s.method),
        calls: s.calls,
        errors: s.errors,
        p50_ms: ms(s.p50),
        p99_ms: ms(s.p99),
    };
    stats.into_iter().map(row).collect()
}

/// Asks every dashboard for its `browser.info` every `every`.
async fn ask_periodically(server: ServerHandle, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = server.stopped() => return,
        }
        if let Err(e) = ask_browsers(&server).await {
            tracing::warn!(error = %e, "asking the browsers failed");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    switchboard::logging::init_stderr("info");

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    // The page's own origin may connect (the server's default); other web
    // sites the user visits may not use the hub through the user's browser.
    let origins = OriginPolicy::AllowList { origins: args.allow_origins, missing: MissingOrigin::Accept };

    let calls = Arc::new(AtomicU64::new(0));
    let server = Server::builder()
        .origins(origins)
        .discovery(service_info())
        .app_heartbeat(Some(Duration::from_secs(args.heartbeat.max(1))))
        .build(methods(&calls))
        .handle();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let app = Router::new()
        .route("/rpc", switchboard::server::axum::route(server.clone()))
        .route_service("/switchboard.js", ServeFile::new(root.join("client/js/switchboard.js")))
        .route_service("/protocol.js", ServeFile::new(root.join("client/js/protocol.js")))
        .merge(switchboard::server::operations::routes(server.clone()))
        .fallback_service(ServeDir::new(root.join("examples/dashboard")));
    // Through the hub's own accept loop: its bounds apply, and a shutdown stops it.
    let addr = switchboard::server::axum::serve(&server, listener, app)?;
    println!("dashboard listening on http://{addr}/");

    tokio::spawn(publish_metrics(server.clone(), calls));
    if args.ask_every > 0 {
        tokio::spawn(ask_periodically(server.clone(), Duration::from_secs(args.ask_every)));
    }
    tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal?;
            server.shutdown(Duration::from_secs(2)).await;
        }
        () = server.stopped() => {}
    }
    Ok(())
}

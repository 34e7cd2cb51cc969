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
//! - only the page's own origin may open the hub from a browser
//!   (`--allow-origin` adds more); clients that send no `Origin` may too.
//!
//! The page lives in `examples/dashboard/` (`index.html`, `app.js`,
//! `style.css`); it imports the client from `/switchboard.js`, served from
//! `client/js/switchboard.js` (which imports `/protocol.js` beside it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use clap::Parser;
use serde_json::{Value, json};
use switchboard::demo::contract_methods;
use switchboard::server::{Direction, MethodStats, Server, ServerContext, ServerHandle, Target};
use switchboard::shared::discover::{ServiceInfo, TopicDoc};
use switchboard::shared::{Context, ErrorObject, Method, Methods};
use tower_http::services::{ServeDir, ServeFile};

/// The topic of the pushed metrics.
const METRICS: &str = "metrics";
/// The topic of the answers to `browser.info`.
const BROWSERS: &str = "browsers";
/// The method the server calls on each dashboard.
const BROWSER_INFO: &str = "browser.info";

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
    /// More browser origins that may connect (the page's own always may).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Calls `browser.info` on every dashboard (the `metrics` subscribers) at
/// once, publishes the answers to `browsers` and returns them.
async fn ask_browsers(server: &ServerHandle) -> Result<Value, ErrorObject> {
    let target = Target::Topic(METRICS.into());
    let answers = server
        .call_many::<Value>(target, BROWSER_INFO, json!({ "asked_at": unix_ms() }), Duration::from_secs(3))
        .await?;
    let mut rows: Vec<Value> = answers
        .into_iter()
        .map(|answer| {
            let rtt = server.heartbeat_rtt(answer.connection).map(|d| d.as_secs_f64() * 1e3);
            let id = answer.connection.to_string();
            match answer.result {
                Ok(info) => json!({ "connection": id, "info": info, "rtt_ms": rtt }),
                Err(e) => json!({ "connection": id, "error": e.to_string(), "rtt_ms": rtt }),
            }
        })
        .collect();
    rows.sort_by(|a, b| a["connection"].as_str().cmp(&b["connection"].as_str()));
    let report = json!({ "at": unix_ms(), "answers": rows });
    server.publish(BROWSERS, BROWSERS, &report)?;
    Ok(report)
}

/// The demo hub's methods and `dashboard.ask_browsers`, each counting the
/// calls it gets into `calls` (batch entries included).
fn methods(calls: &Arc<AtomicU64>) -> Methods {
    let mut methods = contract_methods();
    methods
        .register("dashboard.ask_browsers", |(): (), cx: Context| async move {
            let server = cx.server()?.clone();
            ask_browsers(&server).await
        })
        .describe("Calls browser.info on every open dashboard now; returns and publishes the answers.");
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

fn service_info() -> ServiceInfo {
    let browser_info = Method::sync(|(): (), _cx: Context| Ok::<_, ErrorObject>(()))
        .described("Answered by each dashboard page: its user agent, language, viewport, counters.");
    ServiceInfo::new("switchboard dashboard", env!("CARGO_PKG_VERSION"))
        .client_method(BROWSER_INFO, &browser_info)
        .topic(TopicDoc {
            name: METRICS.into(),
            summary: Some(
                "Every 500 ms: {seq, t, clients, calls_per_sec, calls_total, signal, methods}; calls count batch entries."
                    .into(),
            ),
            method: Some(METRICS.into()),
            schema: None,
        })
        .topic(TopicDoc {
            name: BROWSERS.into(),
            summary: Some("The answers of the last browser.info round: {at, answers: [...]}.".into()),
            method: Some(BROWSERS.into()),
            schema: None,
        })
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
        let metrics = json!({
            "methods": method_rows(&server),
            "seq": seq,
            "t": unix_ms(),
            "clients": server.connection_count(),
            "calls_per_sec": (delta as f64 / elapsed * 10.0).round() / 10.0,
            "calls_total": calls_total,
            "signal": (signal * 10.0).round() / 10.0,
        });
        if server.publish(METRICS, METRICS, metrics).is_err() {
            return;
        }
    }
}

/// The hub's own per-method figures (the same registry `GET /metrics`
/// exports): calls, errors, p50 and p99 in ms, busiest first.
fn method_rows(server: &ServerHandle) -> Vec<Value> {
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0);
    let mut stats: Vec<_> = server.method_stats().into_iter().filter(|s| s.calls > 0).collect();
    stats.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.method.cmp(&b.method)));
    let row = |s: MethodStats| {
        let method = format!("{}{}", if s.direction == Direction::Outgoing { "→ " } else { "" }, s.method);
        json!({ "method": method, "calls": s.calls, "errors": s.errors, "p50_ms": ms(s.p50), "p99_ms": ms(s.p99) })
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();

    // Bound first, so that the page's own origin is known: other web sites
    // the user visits may not use the hub through the user's browser.
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let bound = listener.local_addr()?;
    let mut origins = vec![format!("http://{bound}"), format!("http://localhost:{}", bound.port())];
    origins.extend(args.allow_origins);

    let calls = Arc::new(AtomicU64::new(0));
    let server = Server::builder()
        .allowed_origins(origins)
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

//! `switchboard serve`: the demo hub, with the settings its flags give.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use switchboard::demo::Guards;
use switchboard::server::{Listen, OriginPattern, Server, ServerBuilder};
use switchboard::shared::{Jsonrpc1, RateLimit};

use crate::commands::interrupt_signal;
use crate::{Failure, Outcome};

/// The flags of `switchboard serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on for WebSocket and HTTP POST (ws://ADDR/ and http://ADDR/).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Also listen on URL (repeatable): ws://HOST:PORT, tcp://HOST:PORT or unix:/PATH
    /// (newline-delimited JSON-RPC on a raw socket).
    #[arg(long = "listen", value_name = "URL")]
    listen: Vec<Listen>,
    /// Act as one with every hub given the same Redis URL (e.g. redis://127.0.0.1:6379):
    /// publications reach subscribers on every hub, a client resumes on any of them, and
    /// calls, notifications and presence reach connections on every hub.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// With --redis: the TTL of this hub's cluster entries in Redis, in milliseconds (how
    /// soon the other hubs forget it once it is gone). Default 15000.
    #[arg(long, value_name = "MS", requires = "redis")]
    cluster_ttl_ms: Option<u64>,
    /// Serve TLS (wss:// and https://) with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also answer JSON-RPC 1.0 on every interface: a request without a `jsonrpc` member is
    /// read by 1.0's rules (a null id is a notification) and answered with both `result` and
    /// `error`; 2.0 requests are still answered in 2.0. Off by default (1.0 is refused with -32600).
    #[arg(long)]
    jsonrpc1: bool,
    /// Let pages of this origin call over HTTP POST from a browser (CORS preflights answered,
    /// and the origin admitted as with --allow-origin; repeatable), e.g. https://app.example.com.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Let browser pages from ORIGIN connect too (repeatable): `scheme://host[:port]`, the host may
    /// start with `*.` (any subdomain) and the port may be `*`, e.g. `https://*.example.com`.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<OriginPattern>,
    /// Calls per second each connection may make on average; 0 turns the rate limit off.
    #[arg(long, value_name = "PER_SECOND", default_value_t = switchboard::demo::RATE_LIMIT.per_second, value_parser = rate)]
    rate_limit: f64,
    /// Calls each connection may make at once after a pause.
    #[arg(long, value_name = "CALLS", default_value_t = switchboard::demo::RATE_LIMIT.burst)]
    rate_burst: u32,
    #[command(flatten)]
    operations: crate::operations::Operations,
}

/// `--rate-limit`: a number of calls per second, 0 or more.
fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!("{text:?} is not a number of calls per second (0 or more; 0 turns the limit off)")),
    }
}

pub(crate) async fn serve(args: ServeArgs) -> Result<Outcome, Failure> {
    args.operations.init_logs();
    let rate_limit = (args.rate_limit > 0.0).then_some(RateLimit {
        per_second: args.rate_limit,
        burst: args.rate_burst,
        ..switchboard::demo::RATE_LIMIT
    });
    // A page allowed to read HTTP answers (CORS) must also pass the origin check.
    let mut allowed_origins = args.allow_origins;
    for origin in &args.cors_origins {
        let pattern = origin
            .parse::<OriginPattern>()
            .map_err(|e| Failure::new(Outcome::Usage, format!("--cors-origin {origin}: {e}")))?;
        allowed_origins.push(pattern);
    }
    let guards = Guards { allowed_origins, rate_limit };
    let mut builder = guards.apply(Server::builder());
    if let Some(url) = &args.redis {
        builder = with_redis(builder, url, args.cluster_ttl_ms.map(Duration::from_millis)).await?;
    }
    if !args.cors_origins.is_empty() {
        builder = builder.cors(switchboard::server::CorsPolicy::allow(args.cors_origins.iter().cloned()));
    }
    if args.jsonrpc1 {
        builder = builder.jsonrpc1(Jsonrpc1::Accept);
    }
    let (ws, http) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            builder = with_tls(builder, cert, key)?;
            ("wss", "https")
        }
        _ => ("ws", "http"),
    };
    // --addr first; without --addr or --listen, the default address.
    let default = (args.addr.is_none() && args.listen.is_empty()).then(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
    let listen: Vec<Listen> = args.addr.or(default).map(Listen::from).into_iter().chain(args.listen).collect();
    let hub = switchboard::demo::serve_with(builder, &listen).await.map_err(|e| {
        let asked: Vec<String> = listen.iter().map(ToString::to_string).collect();
        Failure::new(Outcome::Unreachable, format!("cannot listen on {}: {e}", asked.join(", ")))
    })?;
    // Register the signal handlers before announcing readiness.
    let interrupted =
        interrupt_signal().map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot watch for Ctrl-C: {e}")))?;
    let listening: Vec<String> = hub
        .listening()
        .iter()
        .map(|url| {
            let url = url.to_string();
            // A WebSocket listener of a TLS server is reached with wss://.
            match url.strip_prefix("ws://") {
                Some(rest) => format!("{ws}://{rest}"),
                None => url,
            }
        })
        .collect();
    for url in &listening {
        println!("switchboard hub listening on {url}");
    }
    if args.redis.is_some() {
        println!("cluster node {} through Redis: every hub given the same --redis URL acts as one", hub.node());
    }
    if let Some(first) = listening.first() {
        println!("try: cargo run --release -- call {first} add '[2, 3]'");
        println!("     cargo run --release -- listen {first} --topic clock");
    }
    if let (true, Some(bound)) = (cfg!(feature = "http"), hub.local_addr()) {
        let body = r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;
        println!("     curl -H 'Content-Type: application/json' -d '{body}' {http}://{bound}/");
    }
    args.operations.serve(&hub).await?;
    tokio::select! {
        () = interrupted => hub.shutdown(Duration::from_secs(5)).await,
        () = hub.stopped() => {}
    }
    Ok(Outcome::Success)
}

/// `builder` on the Redis at `url`: topic streams through a `RedisBroker`,
/// addressed traffic and presence through the cluster it brings.
#[cfg(feature = "redis")]
async fn with_redis(builder: ServerBuilder, url: &str, ttl: Option<Duration>) -> Result<ServerBuilder, Failure> {
    use switchboard::server::{Addressed, RedisBroker};
    let mut broker = RedisBroker::builder(url);
    if let Some(ttl) = ttl {
        broker = broker.addressed(Addressed::Cluster { ttl });
    }
    let broker = broker.connect().await.map_err(|e| Failure::new(Outcome::Unreachable, e.to_string()))?;
    Ok(builder.broker(broker))
}

#[cfg(not(feature = "redis"))]
async fn with_redis(_builder: ServerBuilder, url: &str, _ttl: Option<Duration>) -> Result<ServerBuilder, Failure> {
    Err(Failure::new(Outcome::Usage, format!("--redis {url}: this switchboard was built without the `redis` feature")))
}

/// The builder with the TLS identity read from `cert` and `key`; a bad file is a usage error.
#[cfg(feature = "tls")]
fn with_tls(builder: ServerBuilder, cert: &std::path::Path, key: &std::path::Path) -> Result<ServerBuilder, Failure> {
    let tls = switchboard::server::TlsConfig::from_pem_files(cert, key)
        .map_err(|e| Failure::new(Outcome::Usage, format!("--tls-cert/--tls-key: {e}")))?;
    Ok(builder.tls(tls))
}

#[cfg(not(feature = "tls"))]
fn with_tls(
    _builder: ServerBuilder,
    _cert: &std::path::Path,
    _key: &std::path::Path,
) -> Result<ServerBuilder, Failure> {
    Err(Failure::new(Outcome::Usage, "this switchboard was built without the `tls` feature"))
}

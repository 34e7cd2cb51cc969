//! `switchboard serve`: the demo hub, with the settings its flags give.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use switchboard::server::{Server, ServerBuilder};

use crate::commands::interrupt_signal;
use crate::{Failure, Outcome};

/// The flags of `switchboard serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (ws://ADDR/ and http://ADDR/).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
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
    /// Let pages of this origin call over HTTP POST from a browser (CORS preflights answered;
    /// repeatable), e.g. https://app.example.com.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    #[command(flatten)]
    operations: crate::operations::Operations,
}

pub(crate) async fn serve(args: ServeArgs) -> Result<Outcome, Failure> {
    args.operations.init_logs();
    let mut builder = Server::builder();
    if let Some(url) = &args.redis {
        builder = with_redis(builder, url, args.cluster_ttl_ms.map(Duration::from_millis)).await?;
    }
    if !args.cors_origins.is_empty() {
        builder = builder.cors(switchboard::server::CorsPolicy::allow(args.cors_origins.iter().cloned()));
    }
    let (ws, http) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            builder = with_tls(builder, cert, key)?;
            ("wss", "https")
        }
        _ => ("ws", "http"),
    };
    let addr = args.addr;
    let hub = switchboard::demo::serve_with(builder, addr)
        .await
        .map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot listen on {addr}: {e}")))?;
    // Register the signal handlers before announcing readiness.
    let interrupted =
        interrupt_signal().map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot watch for Ctrl-C: {e}")))?;
    let bound = hub.local_addr().map_or_else(|| addr.to_string(), |a| a.to_string());
    println!("switchboard hub listening on {ws}://{bound}/");
    if args.redis.is_some() {
        println!("cluster node {} through Redis: every hub given the same --redis URL acts as one", hub.node());
    }
    println!("try: cargo run --release -- call {ws}://{bound}/ add '[2, 3]'");
    println!("     cargo run --release -- listen {ws}://{bound}/ --topic clock");
    if cfg!(feature = "http") {
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

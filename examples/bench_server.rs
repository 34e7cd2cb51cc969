//! The benchmark server: exactly the method set of the benchmark contract
//! (`shared/CONTRACT.md`), so the load generator and the conformance checks
//! drive Switchboard the same way as every server it is compared with.
//!
//! ```text
//! cargo run --release --example bench_server -- --addr 127.0.0.1:9000
//! ```
//!
//! The method set is the typed `switchboard::demo::Contract` API, served by
//! `ContractHub` (shared with `switchboard serve`; its methods that answer
//! at once are `#[rpc(sync)]`, with no future per call); of the built-ins,
//! only the topic methods are served (`rpc.subscribe`, `rpc.unsubscribe`,
//! `rpc.history`), so `rpc.discover` gets -32601. `--history N` sets the
//! publications kept per topic (0: none; `since` then only recovers a
//! subscriber that missed nothing).
//! `--redis URL` (cargo feature `redis`, on by default) shares topic streams
//! through that Redis: every bench_server given the same URL acts as one hub.
//! `--tls-cert FILE --tls-key FILE` (cargo feature `tls`, on by default)
//! serves `wss://` and `https://` instead of `ws://` and `http://` (for a
//! throwaway pair: `loadgen gen-cert --out DIR`). JSON-RPC by HTTP POST is
//! answered on the same port either way (cargo feature `http`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use switchboard::demo::{Contract, ContractHub};
use switchboard::server::{Builtins, Metrics, Server, defaults};

/// Serves the benchmark method contract over WebSocket (and HTTP POST).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (ws://ADDR/, or wss://ADDR/ with --tls-cert).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// Connections served at once; more get HTTP 503.
    #[arg(long, default_value_t = defaults::MAX_CONNECTIONS)]
    max_connections: usize,
    /// Publications kept per topic for resuming subscribers and `rpc.history`.
    #[arg(long, default_value_t = defaults::HISTORY_ENTRIES)]
    history: usize,
    /// Seconds in-flight calls may take to finish after Ctrl-C.
    #[arg(long, default_value_t = 5)]
    shutdown_grace: u64,
    /// Keep the server's Prometheus metrics (every call counted and timed), to measure what they cost.
    #[arg(long)]
    metrics: bool,
    /// Share topic streams through the Redis at URL: every bench_server given the same URL acts
    /// as one hub (`--history` then sets the Redis streams' length).
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Serve TLS (wss:// and https://) with this PEM certificate chain (leaf first); needs --tls-key.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();

    #[allow(unused_mut)] // without the `redis` feature
    let mut builder = Server::builder()
        .builtins(Builtins::Topics)
        .max_connections(args.max_connections)
        // The load generator opens every connection from one address.
        .max_connections_per_ip(args.max_connections)
        .history_entries(args.history)
        .metrics(if args.metrics { Metrics::On } else { Metrics::Off });
    #[cfg(feature = "redis")]
    if let Some(url) = &args.redis {
        let broker =
            switchboard::server::RedisBroker::builder(url.as_str()).history_size(args.history).connect().await?;
        builder = builder.broker(broker);
    }
    #[allow(unused_mut)] // without the `tls` feature
    let mut scheme = "ws";
    #[cfg(feature = "tls")]
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.tls(switchboard::server::TlsConfig::from_pem_files(cert, key)?);
        scheme = "wss";
    }
    let server = builder.build(ContractHub.into_methods()).listen(args.addr).await?;
    let addr = server.local_addr().expect("the server listens");
    println!("bench_server listening on {scheme}://{addr}/");

    tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal?;
            server.shutdown(Duration::from_secs(args.shutdown_grace)).await;
        }
        () = server.stopped() => {}
    }
    Ok(())
}

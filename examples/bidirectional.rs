//! Calls in both directions over one WebSocket: the server asks a connected
//! client for data and uses the reply.
//!
//! Shows: an API the client serves (`Sensor`, declared with
//! `#[switchboard::rpc(client)]` and registered with
//! `ClientBuilder::methods`), which the server calls in two ways:
//! - from inside a handler, back over the caller's own connection
//!   (`cx.peer().readings(count)`): the client calls `report`, and to answer
//!   it the server first asks that client for its `client.readings`;
//! - from anywhere on the server, by connection id (`server.name(id)`): the
//!   server asks a client that just connected for its `client.name`.
//!
//! Every call is typed from the two traits; only the last one, of a method
//! the client does not serve, is made by name (`ServerHandle::call`), as
//! code that decides what to call at run time would.
//!
//! Both sides run in this one process; it prints what each side did and exits.
//!
//! ```text
//! cargo run --example bidirectional
//! ```

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchboard::client::Client;
use switchboard::server::Server;
use switchboard::shared::{Context, ErrorObject, RpcResult};
use tokio::sync::mpsc;

/// How long the demo waits for anything before calling it lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the server answers `report` with, computed from the client's own readings.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The sensor's name.
    pub sensor: String,
    /// How many readings were summarised.
    pub readings: usize,
    /// Their mean.
    pub average: f64,
    /// The largest.
    pub max: f64,
}

/// What the server serves.
#[switchboard::rpc]
pub trait Station {
    /// Summarises the caller's latest readings, which the server fetches from the caller.
    async fn report(&self, count: usize, cx: Context) -> RpcResult<Report>;
}

/// What the client serves; the server calls it.
#[switchboard::rpc(client, namespace = "client")]
pub trait Sensor {
    /// The latest readings, oldest first.
    #[rpc(sync)]
    fn readings(&self, count: usize) -> Vec<f64>;

    /// The sensor's name.
    #[rpc(sync)]
    fn name(&self) -> String;
}

/// The server: `report` asks the caller for its readings and summarises them.
struct Hub;

impl Station for Hub {
    async fn report(&self, count: usize, cx: Context) -> RpcResult<Report> {
        // A call from the server to the client, on the connection this call came in on.
        println!("server: report({count}) called; asking that client for client.readings({count})");
        let peer = cx.peer();
        let readings = peer.readings(count).await.map_err(ErrorObject::internal)?;
        let sensor = peer.name().await.map_err(ErrorObject::internal)?;
        println!("server: the client sent {readings:?}");
        if readings.is_empty() {
            return Err(ErrorObject::invalid_params("the client has no readings"));
        }
        let average = readings.iter().sum::<f64>() / readings.len() as f64;
        let max = readings.iter().copied().fold(f64::MIN, f64::max);
        Ok(Report { sensor, readings: readings.len(), average, max })
    }
}

/// The client: the methods the server may call on it.
struct Greenhouse;

impl Sensor for Greenhouse {
    fn readings(&self, count: usize) -> Vec<f64> {
        const READINGS: [f64; 6] = [21.5, 22.0, 22.5, 23.0, 21.0, 20.5];
        println!("client: the server asked for {count} readings");
        READINGS.iter().copied().take(count).collect()
    }

    fn name(&self) -> String {
        "greenhouse-7".into()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The connect hook tells main which connection arrived.
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    let server = Server::builder()
        .on_connect(move |peer| {
            let _ = connected_tx.send(peer.id());
        })
        .build(Hub.into_methods())
        .listen("127.0.0.1:0")
        .await?;
    let url = format!("ws://{}/", server.local_addr().expect("the server listens"));
    println!("server: listening on {url}");

    let client = Client::builder().endpoint(&url).methods(Greenhouse.into_methods()).connect().await?;
    let connection = tokio::time::timeout(PATIENCE, connected.recv()).await?.ok_or("the server stopped")?;
    println!("server: client {connection} connected");

    // 1. Server -> client, from outside any handler, by connection id (`SensorHub`).
    let name = server.name(connection).await?;
    println!("server: asked the new client its name: client.name() answered {name:?}");

    // 2. Client -> server -> client: the server needs the caller's data to answer (`StationClient`).
    println!("client: calling report(4)");
    let report = client.report(4).timeout(PATIENCE).await?;
    println!(
        "client: report from the server: sensor {}, {} readings, average {:.2}, max {:.1}",
        report.sensor, report.readings, report.average, report.max
    );
    if report.readings != 4 || report.sensor != name {
        return Err(format!("unexpected report {report:?}").into());
    }

    // 3. The server calling a method the client does not have gets -32601 (by name: no trait has it).
    let missing = server.call::<String>(connection, "client.secrets", ()).await.unwrap_err();
    println!("server: client.secrets() failed as expected: {missing}");

    client.close().await;
    server.shutdown(Duration::from_secs(5)).await;
    println!("done: 1 call from the client, 4 calls from the server, all over one socket");
    Ok(())
}

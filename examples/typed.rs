//! The typed API: one trait per direction defines the methods, and
//! `#[switchboard::rpc]` generates the rest.
//!
//! - `Station` is served by the server: its implementation is registered
//!   with `into_methods()`, and the client calls it as `client.add(2, 3)`
//!   (the generated `StationClient` trait);
//! - `Sensor` is served by the client (`client` in the attribute): the client
//!   registers its implementation the same way, and the server calls it from
//!   a handler (`cx.peer().readings(4)`, the generated `SensorPeer`) or by
//!   connection id (`server.name(id)`, `server.readings_many(..)`: `SensorHub`);
//! - both APIs' params, results and doc comments are in `rpc.discover`, the
//!   client's under `x-client-methods`, without a hand-written schema.
//!
//! Both sides run in this one process; it prints what each side did and exits.
//!
//! ```text
//! cargo run --example typed
//! ```

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchboard::client::{Client, Error};
use switchboard::server::{Server, Target};
use switchboard::shared::discover::ServiceInfo;
use switchboard::shared::{Context, ErrorObject, Methods, RpcResult};
use tokio::sync::mpsc;

/// How long the demo waits for anything before calling it lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// What `station.report` answers.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The sensor's name.
    pub sensor: String,
    /// How many readings were averaged.
    pub readings: usize,
    /// Their mean, in °C.
    pub average: f64,
}

/// The methods the server serves.
#[switchboard::rpc(namespace = "station")]
pub trait Station {
    /// Adds two integers; -32000 on overflow.
    async fn add(&self, a: i64, b: i64) -> Result<i64, ErrorObject>;

    /// Averages the caller's latest readings, which the server asks the caller for.
    async fn report(&self, count: usize, cx: Context) -> RpcResult<Report>;

    /// Writes a line to the server's log.
    #[rpc(notification)]
    async fn log(&self, line: String);
}

/// The methods every client serves; the server calls them.
#[switchboard::rpc(client, namespace = "sensor")]
pub trait Sensor {
    /// The latest readings in °C, oldest first.
    async fn readings(&self, count: usize) -> Vec<f64>;

    /// The sensor's name.
    async fn name(&self) -> String;
}

/// The server's implementation.
struct Hub {
    logged: mpsc::UnboundedSender<String>,
}

impl Station for Hub {
    async fn add(&self, a: i64, b: i64) -> Result<i64, ErrorObject> {
        a.checked_add(b).ok_or_else(|| ErrorObject::new(-32000, "overflow"))
    }

    async fn report(&self, count: usize, cx: Context) -> RpcResult<Report> {
        println!("server: report({count}) called; asking that client for sensor.readings({count})");
        let readings = cx.peer().readings(count).await.map_err(ErrorObject::internal)?;
        let sensor = cx.peer().name().await.map_err(ErrorObject::internal)?;
        if readings.is_empty() {
            return Err(ErrorObject::invalid_params("the sensor has no readings"));
        }
        let average = readings.iter().sum::<f64>() / readings.len() as f64;
        Ok(Report { sensor, readings: readings.len(), average })
    }

    async fn log(&self, line: String) {
        let _ = self.logged.send(line);
    }
}

/// The client's implementation.
struct Greenhouse;

impl Sensor for Greenhouse {
    async fn readings(&self, count: usize) -> Vec<f64> {
        println!("client: the server asked for {count} readings");
        [21.5, 22.0, 22.5, 23.0, 21.0].into_iter().take(count).collect()
    }

    async fn name(&self) -> String {
        "greenhouse-7".into()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (logged_tx, mut logged) = mpsc::unbounded_channel();
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    methods.merge(Hub { logged: logged_tx }.into_methods());
    let server = Server::builder()
        .discovery(ServiceInfo::new("typed-example", "1.0.0").client_api(SensorApi::docs()))
        .on_connect(move |peer| {
            let _ = connected_tx.send(peer.id());
        })
        .build(methods)
        .listen("127.0.0.1:0")
        .await?;
    let url = format!("ws://{}/", server.local_addr().expect("the server listens"));
    println!("server: listening on {url}");

    let client = Client::builder().endpoint(&url).methods(Greenhouse.into_methods()).connect().await?;
    let connection = tokio::time::timeout(PATIENCE, connected.recv()).await?.ok_or("the server stopped")?;

    // Client -> server: typed calls; they are the client's `Call`s, so `.timeout` applies.
    let sum = client.add(2, 3).timeout(PATIENCE).await?;
    println!("client: station.add(2, 3) = {sum}");
    // The same method by name, positional and named, as any JSON-RPC client would call it.
    let positional: i64 = client.call(StationApi::ADD, [40, 2]).await?;
    let named: i64 = client.call(StationApi::ADD, serde_json::json!({"a": 40, "b": 2})).await?;
    println!("client: by name, positional {positional}, named {named}");
    match client.call::<i64>(StationApi::ADD, serde_json::json!({"a": 1, "b": "two"})).await {
        Err(Error::Rpc(e)) => {
            println!("client: a string for b: {} {}", e.code, e.data.as_ref().and_then(|d| d.as_str()).unwrap_or(""))
        }
        other => return Err(format!("expected -32602, got {other:?}").into()),
    }
    match client.add(i64::MAX, 1).await {
        Err(Error::Rpc(e)) => println!("client: add(i64::MAX, 1): {e}"),
        other => return Err(format!("expected an overflow, got {other:?}").into()),
    }
    client.log("hello from the greenhouse".into()).await?;
    let line = tokio::time::timeout(PATIENCE, logged.recv()).await?.ok_or("the server stopped")?;
    println!("server: logged {line:?}");

    // Client -> server -> client: the handler calls the caller's typed API.
    let report = client.report(4).timeout(PATIENCE).await?;
    println!("client: report: sensor {}, {} readings, average {:.2}", report.sensor, report.readings, report.average);

    // Server -> client, from outside any handler: by connection id, or to every client at once.
    let name = server.name(connection).timeout(PATIENCE).await?;
    println!("server: sensor.name() on {connection} = {name:?}");
    for answer in server.readings_many(Target::All, 2, PATIENCE).await? {
        println!("server: sensor.readings(2) on {}: {:?}", answer.connection, answer.result?);
    }

    // Discovery: the generated entries, with no schema written by hand.
    let doc = client.discover().await?;
    for method in doc.methods.iter().filter(|m| m.name.starts_with("station.")) {
        println!("discover: {}  {}", method.signature(), method.summary.as_deref().unwrap_or(""));
    }
    for method in &doc.client_methods {
        println!("discover (client): {}  {}", method.signature(), method.summary.as_deref().unwrap_or(""));
    }

    client.close().await;
    server.shutdown(Duration::from_secs(5)).await;
    println!("done: both directions typed, over one socket");
    Ok(())
}

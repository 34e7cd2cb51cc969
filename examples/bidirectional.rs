//! Calls in both directions over one WebSocket: the server asks a connected
//! client for data and uses the reply.
//!
//! Shows: methods registered on the client (`ClientBuilder::methods`), which
//! the server calls in two ways:
//! - from inside a handler, back over the caller's own connection
//!   (`cx.peer().call(..)`): the client calls `report`, and to answer it the
//!   server first asks that client for its `client.readings`;
//! - from anywhere on the server, by connection id (`ServerHandle::call`):
//!   the server asks a client that just connected for its `client.name`.
//!
//! Both sides run in this one process; it prints what each side did and exits.
//!
//! ```text
//! cargo run --example bidirectional
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard::client::Client;
use switchboard::server::Server;
use switchboard::shared::{Context, ErrorObject, Methods};
use tokio::sync::mpsc;

/// How long the demo waits for anything before calling it lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the server answers `report` with, computed from the client's own readings.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    sensor: String,
    readings: usize,
    average: f64,
    max: f64,
}

/// The server: `report` asks the caller for its readings and summarises them.
fn server_methods() -> Methods {
    let mut methods = Methods::new();
    methods
        .register("report", |(count,): (usize,), cx: Context| async move {
            // A call from the server to the client, on the connection this call came in on.
            println!("server: report({count}) called; asking that client for client.readings({count})");
            let peer = cx.peer();
            let readings: Vec<f64> = peer.call("client.readings", [count]).await.map_err(ErrorObject::internal)?;
            let sensor: String = peer.call("client.name", ()).await.map_err(ErrorObject::internal)?;
            println!("server: the client sent {readings:?}");
            if readings.is_empty() {
                return Err(ErrorObject::invalid_params("the client has no readings"));
            }
            let average = readings.iter().sum::<f64>() / readings.len() as f64;
            let max = readings.iter().copied().fold(f64::MIN, f64::max);
            Ok(Report { sensor, readings: readings.len(), average, max })
        })
        .describe("Summarises the caller's latest readings, which the server fetches from the caller.");
    methods
}

/// The client: the methods the server may call on it.
fn client_methods() -> Methods {
    const READINGS: [f64; 6] = [21.5, 22.0, 22.5, 23.0, 21.0, 20.5];
    let mut methods = Methods::new();
    methods.register_sync("client.readings", |(count,): (usize,), _cx: Context| {
        println!("client: the server asked for {count} readings");
        Ok::<_, ErrorObject>(READINGS.iter().copied().take(count).collect::<Vec<f64>>())
    });
    methods.register_sync("client.name", |(): (), _cx: Context| Ok::<_, ErrorObject>("greenhouse-7"));
    methods
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The connect hook tells main which connection arrived.
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    let server = Server::builder()
        .on_connect(move |peer| {
            let _ = connected_tx.send(peer.id());
        })
        .build(server_methods())
        .listen("127.0.0.1:0")
        .await?;
    let url = format!("ws://{}/", server.local_addr().expect("the server listens"));
    println!("server: listening on {url}");

    let client = Client::builder().endpoint(&url).methods(client_methods()).connect().await?;
    let connection = tokio::time::timeout(PATIENCE, connected.recv()).await?.ok_or("the server stopped")?;
    println!("server: client {connection} connected");

    // 1. Server -> client, from outside any handler, by connection id.
    let name: String = server.call(connection, "client.name", ()).await?;
    println!("server: asked the new client its name: client.name() answered {name:?}");

    // 2. Client -> server -> client: the server needs the caller's data to answer.
    println!("client: calling report(4)");
    let report: Report = client.call("report", [4]).timeout(PATIENCE).await?;
    println!(
        "client: report from the server: sensor {}, {} readings, average {:.2}, max {:.1}",
        report.sensor, report.readings, report.average, report.max
    );
    if report.readings != 4 || report.sensor != name {
        return Err(format!("unexpected report {report:?}").into());
    }

    // 3. The server calling a method the client does not have gets -32601.
    let missing = server.call::<String>(connection, "client.secrets", ()).await.unwrap_err();
    println!("server: client.secrets() failed as expected: {missing}");

    client.close().await;
    server.shutdown(Duration::from_secs(5)).await;
    println!("done: 1 call from the client, 4 calls from the server, all over one socket");
    Ok(())
}

//! A client spreading its calls over two servers, one of which is stopped
//! mid-run and later comes back.
//!
//! Shows: `Client::builder().endpoints([..])` keeping a connection to each
//! server and sending each call to the next one that is up (round-robin);
//! a server going away while calls are under way, the calls going on against
//! the other one (a call caught on the closing socket fails with
//! `Error::Disconnected` and, being idempotent, is simply retried); the server
//! coming back on the same address, the client reconnecting with its backoff,
//! and the server taking its share of the load again.
//!
//! Both servers and the client run in this one process; it prints how many
//! calls each server answered in each phase and exits (1 if a call was lost).
//!
//! ```text
//! cargo run --example failover
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::client::{Backoff, Client, Error, Reconnect, State, WhenOffline};
use switchboard::server::{Server, ServerHandle};
use switchboard::shared::{Context, ErrorObject, Methods};

/// Calls per phase, one every [`PACE`].
const CALLS: usize = 40;
const PACE: Duration = Duration::from_millis(10);
/// Attempts per call before it counts as lost.
const ATTEMPTS: usize = 3;
/// How long the demo waits for anything before calling it lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// A server answering `whoami` with its name.
async fn start(name: &'static str, addr: SocketAddr) -> Result<ServerHandle, Box<dyn std::error::Error>> {
    let mut methods = Methods::new();
    methods.register_sync("whoami", move |(): (), _cx: Context| Ok::<_, ErrorObject>(name));
    Ok(Server::builder().build(methods).listen(addr).await?)
}

/// Per-server answers of one phase.
#[derive(Debug, Default)]
struct Tally {
    a: usize,
    b: usize,
    retried: usize,
}

/// Makes `CALLS` paced calls, retrying those caught by a closing connection;
/// `midway` runs once, after half of them.
async fn phase(client: &Client, mut midway: impl FnMut()) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    let mut pace = tokio::time::interval(PACE);
    for i in 0..CALLS {
        pace.tick().await;
        if i == CALLS / 2 {
            midway();
        }
        let mut attempt = 1;
        let name = loop {
            match client.call::<String>("whoami", ()).await {
                Ok(name) => break name,
                // The call may not have run; `whoami` is safe to repeat.
                Err(Error::Disconnected | Error::Offline) if attempt < ATTEMPTS => {
                    attempt += 1;
                    tally.retried += 1;
                }
                Err(e) => return Err(e),
            }
        };
        match name.as_str() {
            "A" => tally.a += 1,
            _ => tally.b += 1,
        }
    }
    Ok(tally)
}

/// Waits until the state of endpoint `index` of the client passes `test`.
async fn wait_endpoint(
    client: &Client,
    index: usize,
    what: &str,
    test: impl Fn(State) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut endpoints = client.watch_endpoints();
    tokio::time::timeout(PATIENCE, endpoints.wait_for(|states| test(states[index])))
        .await
        .map_err(|_| format!("endpoint {index} was not {what} within {PATIENCE:?}"))??;
    Ok(())
}

fn report(title: &str, tally: &Tally) {
    println!("{title:<40} A answered {:>2}, B answered {:>2}, retried {}", tally.a, tally.b, tally.retried);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = start("A", "127.0.0.1:0".parse()?).await?;
    let b = start("B", "127.0.0.1:0".parse()?).await?;
    let (a_addr, b_addr) = (a.local_addr().expect("A listens"), b.local_addr().expect("B listens"));
    println!("server A on ws://{a_addr}/, server B on ws://{b_addr}/");

    let client = Client::builder()
        .endpoints([format!("ws://{a_addr}/"), format!("ws://{b_addr}/")])
        // Come back quickly: retry at once, then every 50 ms to 250 ms.
        .reconnect(Reconnect::Backoff(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(250),
            ..Backoff::default()
        }))
        .when_offline(WhenOffline::WaitReady)
        .timeout(PATIENCE)
        .connect()
        .await?;
    wait_endpoint(&client, 1, "ready", |s| s == State::Ready).await?;

    let both = phase(&client, || {}).await?;
    report("1. both servers up:", &both);

    // B goes away halfway through the phase, while calls keep coming.
    let mut stopping = None;
    let without_b = phase(&client, || {
        println!("   stopping B (graceful shutdown) with calls under way");
        stopping = Some(tokio::spawn(b.shutdown(Duration::from_secs(1))));
    })
    .await?;
    report("2. B stopped halfway:", &without_b);
    if let Some(stopping) = stopping {
        stopping.await?;
    }
    wait_endpoint(&client, 1, "down", |s| s != State::Ready).await?;

    // B comes back on the same address; the client reconnects by itself.
    let b = start("B", b_addr).await?;
    let back = tokio::time::Instant::now();
    wait_endpoint(&client, 1, "ready", |s| s == State::Ready).await?;
    println!("   B restarted; the client reconnected to it in {:?}", back.elapsed());
    let again = phase(&client, || {}).await?;
    report("3. B back:", &again);

    for (endpoint, name) in client.endpoints().iter().zip(["A", "B"]) {
        println!("{name} {}: {} calls sent, {} connections opened", endpoint.url, endpoint.sent, endpoint.connections);
    }
    client.close().await;
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;

    let total = [&both, &without_b, &again].iter().map(|t| t.a + t.b).sum::<usize>();
    if both.b == 0 || again.b == 0 || both.a == 0 || again.a == 0 {
        return Err("each server should have taken load while it was up".into());
    }
    println!("all {total} calls succeeded; B took load again after coming back");
    Ok(())
}

//! The server's way in: arbitrary bytes as what a client sends on a fresh
//! connection (request head, headers, origin, tokens, and whatever follows),
//! through `ServerHandle::serve_stream` over an in-memory stream, to a
//! server with every admission check on: an origin allow-list with
//! patterns, an authenticator reading bearer and query tokens (some
//! expiring), the per-address limit and a rate limit.
//!
//! No input may panic or hang; the server's answer is always one HTTP
//! response head (a `101` exactly when the connection was served), and a
//! served connection ends once the input does.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_server::{Identity, Rejection, Server, ServerHandle, UpgradeRequest};
use switchboard_shared::{Context, ErrorObject, Methods, RateLimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    runtime: tokio::runtime::Runtime,
    server: ServerHandle,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut methods = Methods::new();
        methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a.wrapping_add(b)));
        let server = runtime.block_on(async {
            Server::builder()
                .allowed_origins(["https://app.example.com", "https://*.example.org", "http://localhost:*"])
                .unwrap()
                .max_connections_per_ip(4)
                .rate_limit(Some(RateLimit::new(10.0, 5).close_after(Some(10))))
                .handshake_timeout(Duration::from_millis(200))
                .refresh_grace(Duration::from_millis(5))
                .authenticate(|request: &UpgradeRequest| {
                    let token = request
                        .bearer_token()
                        .map(str::to_owned)
                        .or_else(|| request.query_param("token").map(|t| t.into_owned()));
                    match token.as_deref() {
                        Some("good") => Ok(Identity::new()),
                        Some(t) if t.starts_with("short") => Ok(Identity::new().expires_in(Duration::from_millis(1))),
                        Some(_) => Err(Rejection::Forbidden("unknown token".into())),
                        None => Err(Rejection::Unauthorized("a token is required".into())),
                    }
                })
                .build(methods)
                .handle()
        });
        World { runtime, server }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    world.runtime.block_on(async {
        let (mut client, stream) = tokio::io::duplex(64 << 10);
        client.write_all(data).await.unwrap();
        // The client has said all it will: every read past it is the end.
        client.shutdown().await.unwrap();
        let remote: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let served = tokio::time::timeout(Duration::from_secs(5), world.server.serve_stream(stream, Some(remote)))
            .await
            .expect("the handshake is bounded by its timeout");
        let mut answer = Vec::new();
        let reading = async {
            let mut chunk = [0u8; 4096];
            // Up to the end of the response head (a served connection's
            // socket stays open until its task has ended).
            while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                match client.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), reading).await.expect("the answer comes");
        match &served {
            Ok(peer) => {
                assert!(answer.starts_with(b"HTTP/1.1 101 "), "served without a 101: {:?}", String::from_utf8_lossy(&answer));
                // The input is over: the connection ends.
                tokio::time::timeout(Duration::from_secs(5), peer.closed()).await.expect("a served connection ends");
            }
            Err(_) => {
                assert!(
                    answer.is_empty() || (answer.starts_with(b"HTTP/1.1 ") && !answer.starts_with(b"HTTP/1.1 101 ")),
                    "refused with {:?}",
                    String::from_utf8_lossy(&answer)
                );
            }
        }
    });
});

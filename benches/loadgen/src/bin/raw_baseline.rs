//! The raw baseline: a minimal tokio-tungstenite WebSocket server with no
//! JSON-RPC machinery, the practical limit Switchboard is measured against.
//!
//! For each text frame it pulls out `id`, `method` and `params` with one
//! borrowed serde_json parse and answers `{"jsonrpc":"2.0","result":<params>,"id":<id>}`
//! (frames without an id get no answer). For `flood [n, bytes]` it first
//! pushes n `tick` notifications, then the reply `n`, so flood mode can be
//! measured against it too.
//!
//! It is kept honest: tungstenite's default buffer sizes, one task per
//! connection, one allocation per outgoing frame, and a flush when no more
//! input is immediately ready (what a reasonable hand-written server does).

use std::time::Duration;

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{
    WebSocketStream, accept_async,
    tungstenite::{Error as WsError, Message},
};

/// Upper bound on `flood`'s n, so a typo cannot make the server spin forever.
const MAX_FLOOD: u64 = 10_000_000;
/// Upper bound on `flood`'s pad size.
const MAX_PAD: usize = 1 << 20;

#[derive(Parser, Debug)]
#[command(name = "raw_baseline", about = "Minimal tokio-tungstenite echo server: the benchmark's practical limit")]
struct Args {
    /// Address to listen on (loopback only is sensible: it is a benchmark).
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: String,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.addr).await?;
    eprintln!("raw_baseline listening on ws://{}/", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(async move {
                    if let Err(e) = serve(tcp).await {
                        match e {
                            WsError::ConnectionClosed | WsError::AlreadyClosed => {}
                            WsError::Protocol(_) | WsError::Io(_) => {}
                            other => eprintln!("raw_baseline: connection error: {other}"),
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                eprintln!("raw_baseline: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(tcp: TcpStream) -> Result<(), WsError> {
    tcp.set_nodelay(true)?;
    let mut ws = accept_async(tcp).await?;
    let mut pad = String::new();
    while let Some(msg) = ws.next().await {
        let mut msg = msg?;
        loop {
            if !handle(&mut ws, msg, &mut pad).await? {
                return Ok(());
            }
            // Answer everything that is already here before one flush.
            match ws.next().now_or_never() {
                Some(Some(next)) => msg = next?,
                Some(None) => {
                    ws.flush().await?;
                    return Ok(());
                }
                None => break,
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

/// Handles one message, queueing any answer; false when the peer closed.
async fn handle(ws: &mut WebSocketStream<TcpStream>, msg: Message, pad: &mut String) -> Result<bool, WsError> {
    let text = match msg {
        Message::Text(text) => text,
        Message::Close(_) => return Ok(false),
        // tungstenite answers pings itself; binary frames are not JSON-RPC.
        _ => return Ok(true),
    };
    let Ok(req) = serde_json::from_str::<Request<'_>>(&text) else {
        return Ok(true);
    };
    let Some(id) = req.id else {
        return Ok(true); // a notification: no answer
    };
    let params = req.params.map_or("null", RawValue::get);
    if req.method.map(RawValue::get) == Some("\"flood\"") {
        let (n, bytes) = serde_json::from_str::<(u64, usize)>(params).unwrap_or((0, 0));
        let (n, bytes) = (n.min(MAX_FLOOD), bytes.min(MAX_PAD));
        if pad.len() != bytes {
            *pad = "x".repeat(bytes);
        }
        for seq in 0..n {
            let mut tick = String::with_capacity(64 + bytes);
            tick.push_str(r#"{"jsonrpc":"2.0","method":"tick","params":{"seq":"#);
            tick.push_str(itoa::Buffer::new().format(seq));
            tick.push_str(r#","pad":""#);
            tick.push_str(pad);
            tick.push_str(r#""}}"#);
            ws.feed(Message::text(tick)).await?;
        }
        let mut reply = String::with_capacity(64);
        reply.push_str(r#"{"jsonrpc":"2.0","result":"#);
        reply.push_str(itoa::Buffer::new().format(n));
        reply.push_str(r#","id":"#);
        reply.push_str(id.get());
        reply.push('}');
        ws.feed(Message::text(reply)).await?;
        return Ok(true);
    }
    let mut reply = String::with_capacity(40 + params.len() + id.get().len());
    reply.push_str(r#"{"jsonrpc":"2.0","result":"#);
    reply.push_str(params);
    reply.push_str(r#","id":"#);
    reply.push_str(id.get());
    reply.push('}');
    ws.feed(Message::text(reply)).await?;
    Ok(true)
}

//! The raw baseline: a minimal tokio-tungstenite WebSocket server with no
//! JSON-RPC machinery, the practical limit Switchboard is measured against.
//!
//! For each text frame it pulls out `id`, `method` and `params` with one
//! borrowed serde_json parse and answers `{"jsonrpc":"2.0","result":<params>,"id":<id>}`
//! (frames without an id get no answer). For `flood [n, bytes]` it first
//! pushes n `tick` notifications, then the reply `n`, so flood mode can be
//! measured against it too. For fan-out it keeps a map of topic to
//! subscribers: `rpc.subscribe ["topic"]` answers `true` and adds the
//! connection; `publish [topic, method, params]` encodes the notification
//! once, hands a clone to every subscriber's channel and answers
//! `{"epoch":"raw","offset":n}`.
//!
//! It is kept honest: tungstenite's default buffer sizes, one task per
//! connection, one allocation per outgoing frame, and a flush when no more
//! input is immediately ready (what a reasonable hand-written server does);
//! a pushed frame is written with whatever else is already in the channel,
//! then flushed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::{
    WebSocketStream, accept_async,
    tungstenite::{Error as WsError, Message, Utf8Bytes},
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

/// A subscriber: its connection's number and the channel its task writes from.
type Subscriber = (u64, mpsc::UnboundedSender<Utf8Bytes>);

/// Topic -> subscribers, and the publication count, shared by every connection.
#[derive(Default)]
struct Topics {
    subscribers: Mutex<HashMap<String, Vec<Subscriber>>>,
    published: AtomicU64,
}

/// One connection's part in fan-out: its number, and its push channel.
struct Conn {
    id: u64,
    topics: Arc<Topics>,
    push_tx: mpsc::UnboundedSender<Utf8Bytes>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.addr).await?;
    eprintln!("raw_baseline listening on ws://{}/", listener.local_addr()?);
    let topics = Arc::new(Topics::default());
    let mut next_id = 0u64;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                next_id += 1;
                let topics = topics.clone();
                let id = next_id;
                tokio::spawn(async move {
                    let (push_tx, push_rx) = mpsc::unbounded_channel();
                    let conn = Conn { id, topics: topics.clone(), push_tx };
                    let served = serve(tcp, &conn, push_rx).await;
                    for subscribers in topics.subscribers.lock().unwrap().values_mut() {
                        subscribers.retain(|(sid, _)| *sid != id);
                    }
                    if let Err(e) = served {
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

async fn serve(tcp: TcpStream, conn: &Conn, mut push_rx: mpsc::UnboundedReceiver<Utf8Bytes>) -> Result<(), WsError> {
    tcp.set_nodelay(true)?;
    let mut ws = accept_async(tcp).await?;
    let mut pad = String::new();
    loop {
        let msg = tokio::select! {
            msg = ws.next() => msg,
            Some(mut pushed) = push_rx.recv() => {
                loop {
                    ws.feed(Message::Text(pushed)).await?;
                    match push_rx.try_recv() {
                        Ok(next) => pushed = next,
                        Err(_) => break,
                    }
                }
                ws.flush().await?;
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let mut msg = msg?;
        loop {
            if !handle(&mut ws, msg, &mut pad, conn).await? {
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
async fn handle(
    ws: &mut WebSocketStream<TcpStream>,
    msg: Message,
    pad: &mut String,
    conn: &Conn,
) -> Result<bool, WsError> {
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
    let method = req.method.map(RawValue::get);
    // Echo borrows its params: no allocation beyond the reply's.
    let result: Cow<'_, str> = if method == Some("\"rpc.subscribe\"") {
        match serde_json::from_str::<(String,)>(params) {
            Ok((topic,)) => {
                let mut topics = conn.topics.subscribers.lock().unwrap();
                topics.entry(topic).or_default().push((conn.id, conn.push_tx.clone()));
                "true".into()
            }
            Err(_) => "false".into(),
        }
    } else if method == Some("\"publish\"") {
        match serde_json::from_str::<(String, &RawValue, &RawValue)>(params) {
            Ok((topic, method, params)) => {
                let mut frame = String::with_capacity(40 + method.get().len() + params.get().len());
                frame.push_str(r#"{"jsonrpc":"2.0","method":"#);
                frame.push_str(method.get());
                frame.push_str(r#","params":"#);
                frame.push_str(params.get());
                frame.push('}');
                let frame = Utf8Bytes::from(frame);
                let offset = conn.topics.published.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(subscribers) = conn.topics.subscribers.lock().unwrap().get_mut(&topic) {
                    subscribers.retain(|(_, tx)| tx.send(frame.clone()).is_ok());
                }
                format!(r#"{{"epoch":"raw","offset":{offset}}}"#).into()
            }
            Err(_) => "null".into(),
        }
    } else {
        params.into()
    };
    let mut reply = String::with_capacity(40 + result.len() + id.get().len());
    reply.push_str(r#"{"jsonrpc":"2.0","result":"#);
    reply.push_str(&result);
    reply.push_str(r#","id":"#);
    reply.push_str(id.get());
    reply.push('}');
    ws.feed(Message::text(reply)).await?;
    Ok(true)
}

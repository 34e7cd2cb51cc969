//! The demo hub behind `switchboard serve`, and the benchmark contract's
//! method set (`shared/CONTRACT.md`) that both it and `examples/bench_server`
//! serve.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = switchboard::demo::serve("127.0.0.1:9000".parse()?).await?;
//! println!("listening on {:?}", hub.local_addr());
//! hub.stopped().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Number, json};
use switchboard_server::{DeliveryError, ListenError, Server, ServerBuilder, ServerContext, ServerHandle};
use switchboard_shared::codec::encode;
use switchboard_shared::discover::{ServiceInfo, TopicDoc};
use switchboard_shared::{Context, ErrorObject, Methods, Overflow};

/// The largest `flood` pad, so one call cannot make the server allocate without bound.
pub const MAX_FLOOD_PAD: usize = 16 << 20;

/// The topic the demo hub publishes the time to, every second.
pub const CLOCK_TOPIC: &str = "clock";

/// `subtract`'s params: `[minuend, subtrahend]` or `{"minuend": x, "subtrahend": y}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Subtract {
    /// The number to subtract from.
    pub minuend: f64,
    /// The number to subtract.
    pub subtrahend: f64,
}

#[derive(Debug, Deserialize)]
struct ExactSubtract {
    minuend: Number,
    subtrahend: Number,
}

/// `flood`'s notification params; the pad is encoded once per call.
#[derive(serde::Serialize)]
struct Tick<'a> {
    seq: u64,
    pad: &'a RawValue,
}

/// Adds numbers exactly while they are integers that fit, else as floats.
fn sum<'a>(numbers: impl IntoIterator<Item = &'a Number>) -> Result<Number, ErrorObject> {
    let mut exact = Some(0i64);
    let mut float = 0.0f64;
    for n in numbers {
        exact = exact.zip(n.as_i64()).and_then(|(acc, v)| acc.checked_add(v));
        float += n.as_f64().unwrap_or(f64::NAN);
    }
    finite(exact, float)
}

fn finite(exact: Option<i64>, float: f64) -> Result<Number, ErrorObject> {
    match exact {
        Some(i) => Ok(i.into()),
        None => Number::from_f64(float).ok_or_else(|| ErrorObject::invalid_params("the result is not a finite number")),
    }
}

/// The benchmark contract's methods: `echo`, `add`, `subtract`, `sum`,
/// `get_data`, `update`, `notify_hello`, `notify_sum`, `sleep`, `flood`,
/// `callback`, `publish`.
/// Methods that answer at once are registered with `register_sync` (no
/// future, no task).
pub fn contract_methods() -> Methods {
    let mut methods = Methods::new();
    methods
        .register_sync("echo", |params: Box<RawValue>, _cx: Context| Ok::<_, ErrorObject>(params))
        .describe("Returns its params unchanged (absent params: null).")
        .schema_json(json!({}), json!({}));
    methods
        .register_sync("add", |(a, b): (Number, Number), _cx: Context| sum([&a, &b]))
        .describe("Adds two numbers.")
        .schema::<(f64, f64), f64>()
        .param_names(["a", "b"]);
    methods
        .register_sync("subtract", |ExactSubtract { minuend, subtrahend }: ExactSubtract, _cx: Context| {
            let exact = minuend.as_i64().zip(subtrahend.as_i64()).and_then(|(m, s)| m.checked_sub(s));
            let float = minuend.as_f64().unwrap_or(f64::NAN) - subtrahend.as_f64().unwrap_or(f64::NAN);
            finite(exact, float)
        })
        .describe("Subtracts subtrahend from minuend (positional or named params).")
        .schema::<Subtract, f64>();
    methods
        .register_sync("sum", |numbers: Vec<Number>, _cx: Context| sum(&numbers))
        .describe("Adds any count of numbers.")
        .schema::<Vec<f64>, f64>()
        .param_names(["numbers"]);
    methods
        .register_sync("get_data", |(): (), _cx: Context| Ok::<_, ErrorObject>(("hello", 5)))
        .describe("Returns [\"hello\", 5].")
        .schema::<(), (String, i64)>();
    for name in ["update", "notify_hello", "notify_sum"] {
        methods
            .register_sync(name, |_: IgnoredAny, _cx: Context| Ok::<_, ErrorObject>(()))
            .describe("Accepts anything and returns null; meant to be sent as a notification.")
            .schema_json(json!({}), json!({"type": "null"}));
    }
    methods
        .register("sleep", |(ms,): (u64,), _cx: Context| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ErrorObject>(ms)
        })
        .describe("Returns ms after sleeping ms milliseconds.")
        .schema::<(u64,), u64>()
        .param_names(["ms"]);
    methods
        .register("flood", |(n, bytes): (u64, usize), cx: Context| async move {
            if bytes > MAX_FLOOD_PAD {
                return Err(ErrorObject::invalid_params(format!("bytes must be at most {MAX_FLOOD_PAD}")));
            }
            let pad = serde_json::value::to_raw_value(&"x".repeat(bytes)).map_err(ErrorObject::internal)?;
            for seq in 0..n {
                let frame = encode::notification("tick", &Tick { seq, pad: &pad }).map_err(ErrorObject::internal)?;
                // Wait for room rather than cut off the client that asked for the flood.
                cx.peer().send_text_with(frame.into(), Overflow::Wait).await.map_err(ErrorObject::internal)?;
            }
            Ok(n)
        })
        .describe(
            "Pushes n `tick` notifications {seq, pad} with a pad of `bytes` x's to this connection, then returns n.",
        )
        .schema::<(u64, usize), u64>()
        .param_names(["n", "bytes"]);
    methods
        .register("callback", |(method, params): (String, Box<RawValue>), cx: Context| async move {
            // The caller's error object comes back as this call's error, unchanged.
            let result: Box<RawValue> = cx.peer().call(&method, params).await?;
            Ok::<_, ErrorObject>(result)
        })
        .describe("Calls `method` with `params` on the caller's own connection and returns the caller's result.")
        .schema_json(json!({"type": "array", "items": [{"type": "string"}, {}]}), json!({}))
        .param_names(["method", "params"]);
    methods
        .register("publish", publish)
        .describe("Publishes `method` with `params` to `topic`; returns the publication's {epoch, offset}.")
        .schema_json(
            json!({"type": "array", "items": [{"type": "string"}, {"type": "string"}, {}]}),
            json!({"type": "object", "required": ["epoch", "offset"],
                   "properties": {"epoch": {"type": "string"}, "offset": {"type": "integer"}}}),
        )
        .param_names(["topic", "method", "params"]);
    methods
}

/// The contract's `publish [topic, method, params]`: `{"epoch", "offset"}`
/// of the publication (ready at once with the in-memory broker, so the
/// engine answers it in place).
pub async fn publish(
    (topic, method, params): (String, String, Box<RawValue>),
    cx: Context,
) -> Result<switchboard_shared::stream::StreamPosition, ErrorObject> {
    if topic.is_empty() {
        return Err(ErrorObject::invalid_params("the topic must not be empty"));
    }
    let published = cx.server()?.publish(&topic, &method, params).map_err(|e| match e {
        DeliveryError::Encode(e) => ErrorObject::invalid_params(e.to_string()),
        other => other.into(),
    })?;
    Ok(published.await?)
}

/// What the demo hub's discovery document says beyond its methods.
pub fn service_info() -> ServiceInfo {
    ServiceInfo::new("switchboard demo hub", env!("CARGO_PKG_VERSION")).topic(TopicDoc {
        name: CLOCK_TOPIC.into(),
        summary: Some("The server's time, every second: {\"unix_ms\": .., \"seq\": ..}.".into()),
        method: Some(CLOCK_TOPIC.into()),
        schema: Some(
            json!({"type": "object", "properties": {"unix_ms": {"type": "integer"}, "seq": {"type": "integer"}}}),
        ),
    })
}

/// Starts the demo hub on `addr`: the contract's methods, `rpc.discover`,
/// `rpc.subscribe`, and the `clock` topic ticking every second.
pub async fn serve(addr: SocketAddr) -> Result<ServerHandle, ListenError> {
    serve_with(Server::builder(), addr).await
}

/// [`serve`] with the settings of `builder` (a broker, a cluster, TLS,
/// limits, auth...); the demo sets its discovery info. With a broker shared
/// by several hubs, each hub publishes its time to the one `clock` topic.
pub async fn serve_with(builder: ServerBuilder, addr: SocketAddr) -> Result<ServerHandle, ListenError> {
    let server = builder.discovery(service_info()).build(contract_methods()).listen(addr).await?;
    tokio::spawn(clock(server.clone()));
    Ok(server)
}

/// Publishes the time to [`CLOCK_TOPIC`] every second until the server stops.
async fn clock(server: ServerHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            () = server.stopped() => return,
        }
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        if server.publish(CLOCK_TOPIC, CLOCK_TOPIC, json!({"unix_ms": unix_ms, "seq": seq})).is_err() {
            return;
        }
    }
}

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
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;
use serde_json::value::RawValue;
use switchboard_server::{
    DeliveryError, Listen, ListenError, MissingOrigin, OriginPattern, OriginPolicy, Server, ServerBuilder,
    ServerContext, ServerHandle,
};
use switchboard_shared::discover::ServiceInfo;
use switchboard_shared::stream::StreamPosition;
use switchboard_shared::{Context, ErrorObject, Methods, Overflow, RateLimit, RpcResult};

use crate::topic::Topic;

/// The largest `flood` pad, so one call cannot make the server allocate without bound.
pub const MAX_FLOOD_PAD: usize = 16 << 20;

/// The topic the demo hub publishes the time to, every second.
pub const CLOCK_TOPIC: &str = ClockApi::clock().name();

/// The benchmark contract's methods (`shared/CONTRACT.md`): the names,
/// params and answers every server measured with the load generator serves.
/// Methods that answer at once are `sync` (no future, no task); those that
/// take anything, or any count of numbers, take their params whole.
#[crate::rpc(crate = "crate")]
pub trait Contract {
    /// Returns its params unchanged (absent params: null).
    #[rpc(sync, whole_params)]
    fn echo(&self, params: Box<RawValue>) -> Box<RawValue>;

    /// Adds two numbers.
    #[rpc(sync)]
    fn add(&self, a: Number, b: Number) -> RpcResult<Number>;

    /// Subtracts subtrahend from minuend (positional or named params).
    #[rpc(sync)]
    fn subtract(&self, minuend: Number, subtrahend: Number) -> RpcResult<Number>;

    /// Adds any count of numbers.
    #[rpc(sync, whole_params)]
    fn sum(&self, numbers: Vec<Number>) -> RpcResult<Number>;

    /// Returns ["hello", 5].
    #[rpc(sync)]
    fn get_data(&self) -> (Hello, u8);

    /// Accepts anything and returns null; meant to be sent as a notification.
    #[rpc(sync, whole_params)]
    fn update(&self, params: Anything);

    /// Accepts anything and returns null; meant to be sent as a notification.
    #[rpc(sync, whole_params)]
    fn notify_hello(&self, params: Anything);

    /// Accepts anything and returns null; meant to be sent as a notification.
    #[rpc(sync, whole_params)]
    fn notify_sum(&self, params: Anything);

    /// Returns ms after sleeping ms milliseconds.
    async fn sleep(&self, ms: u64) -> u64;

    /// Pushes n `tick` notifications {seq, pad} with a pad of `bytes` x's to this connection, then returns n.
    async fn flood(&self, n: u64, bytes: usize, cx: Context) -> RpcResult<u64>;

    /// Calls `method` with `params` on the caller's own connection and returns the caller's result.
    async fn callback(&self, method: String, params: Box<RawValue>, cx: Context) -> RpcResult<Box<RawValue>>;

    /// Publishes `method` with `params` to `topic`; returns the publication's {epoch, offset}.
    async fn publish(
        &self,
        topic: String,
        method: String,
        params: Box<RawValue>,
        cx: Context,
    ) -> RpcResult<StreamPosition>;
}

/// The demo hub's topic.
#[crate::rpc(crate = "crate")]
pub trait Clock {
    /// The server's time, every second.
    #[rpc(topic)]
    fn clock() -> Topic<Tick>;
}

/// A publication of the `clock` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tick {
    /// The server's clock, in milliseconds since 1970.
    pub unix_ms: u64,
    /// 0 for the first tick, then one more each second.
    pub seq: u64,
}

/// The `"hello"` of `get_data`: a constant, so that answering allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Hello {
    /// `"hello"`.
    #[serde(rename = "hello")]
    Hello,
}

/// Any params, skipped unread (a notification that only counts): decodes
/// from any JSON without allocating, encodes as `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Anything;

impl<'de> Deserialize<'de> for Anything {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Anything)
    }
}

impl JsonSchema for Anything {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Anything".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        true.into()
    }

    fn inline_schema() -> bool {
        true
    }
}

/// `flood`'s notification params; the pad is encoded once per call.
#[derive(Serialize)]
struct Flood<'a> {
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

/// The contract's implementation (no state: everything it needs comes with the call).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContractHub;

impl Contract for ContractHub {
    fn echo(&self, params: Box<RawValue>) -> Box<RawValue> {
        params
    }

    fn add(&self, a: Number, b: Number) -> RpcResult<Number> {
        sum([&a, &b])
    }

    fn subtract(&self, minuend: Number, subtrahend: Number) -> RpcResult<Number> {
        let exact = minuend.as_i64().zip(subtrahend.as_i64()).and_then(|(m, s)| m.checked_sub(s));
        let float = minuend.as_f64().unwrap_or(f64::NAN) - subtrahend.as_f64().unwrap_or(f64::NAN);
        finite(exact, float)
    }

    fn sum(&self, numbers: Vec<Number>) -> RpcResult<Number> {
        sum(&numbers)
    }

    fn get_data(&self) -> (Hello, u8) {
        (Hello::Hello, 5)
    }

    fn update(&self, _: Anything) {}

    fn notify_hello(&self, _: Anything) {}

    fn notify_sum(&self, _: Anything) {}

    async fn sleep(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn flood(&self, n: u64, bytes: usize, cx: Context) -> RpcResult<u64> {
        if bytes > MAX_FLOOD_PAD {
            return Err(ErrorObject::invalid_params(format!("bytes must be at most {MAX_FLOOD_PAD}")));
        }
        let pad = serde_json::value::to_raw_value(&"x".repeat(bytes)).map_err(ErrorObject::internal)?;
        for seq in 0..n {
            // Wait for room rather than cut off the client that asked for the flood.
            cx.peer()
                .notify_with("tick", &Flood { seq, pad: &pad }, Overflow::Wait)
                .await
                .map_err(ErrorObject::internal)?;
        }
        Ok(n)
    }

    async fn callback(&self, method: String, params: Box<RawValue>, cx: Context) -> RpcResult<Box<RawValue>> {
        // The caller's error object comes back as this call's error, unchanged.
        Ok(cx.peer().call(&method, params).await?)
    }

    async fn publish(
        &self,
        topic: String,
        method: String,
        params: Box<RawValue>,
        cx: Context,
    ) -> RpcResult<StreamPosition> {
        publish((topic, method, params), cx).await
    }
}

/// The benchmark contract's methods: `echo`, `add`, `subtract`, `sum`,
/// `get_data`, `update`, `notify_hello`, `notify_sum`, `sleep`, `flood`,
/// `callback`, `publish` (see [`Contract`]).
pub fn contract_methods() -> Methods {
    ContractHub.into_methods()
}

/// The contract's `publish [topic, method, params]`: `{"epoch", "offset"}`
/// of the publication (ready at once with the in-memory broker, so the
/// engine answers it in place).
pub async fn publish(
    (topic, method, params): (String, String, Box<RawValue>),
    cx: Context,
) -> Result<StreamPosition, ErrorObject> {
    if topic.is_empty() {
        return Err(ErrorObject::invalid_params("the topic must not be empty"));
    }
    let published = cx.server()?.publish(&topic, &method, params).map_err(|e| match e {
        DeliveryError::Encode(e) => ErrorObject::invalid_params(e.to_string()),
        other => other.into(),
    })?;
    Ok(published.await?)
}

/// What the demo hub's discovery document says beyond its methods: the `clock` topic.
pub fn service_info() -> ServiceInfo {
    ServiceInfo::new("switchboard demo hub", env!("CARGO_PKG_VERSION")).topics(ClockApi::topics())
}

/// The demo hub's rate limit, on unless `switchboard serve --rate-limit 0`:
/// 100 calls a second per connection on average, 200 at once after a pause;
/// over it calls are answered -32005 "Rate limited", and 1,000 refusals
/// without a pause close the connection with 1008.
pub const RATE_LIMIT: RateLimit = RateLimit { per_second: 100.0, burst: 200, close_after: Some(1_000) };

/// How the demo hub guards itself beyond the server's defaults (which it
/// keeps: same-origin browsers only, 256 connections per client address).
#[derive(Debug, Clone, PartialEq)]
pub struct Guards {
    /// Browser origins, besides the hub's own, that may connect
    /// (`switchboard serve --allow-origin`). Default: none.
    pub allowed_origins: Vec<OriginPattern>,
    /// The per-connection rate limit. Default: [`RATE_LIMIT`].
    pub rate_limit: Option<RateLimit>,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { allowed_origins: Vec::new(), rate_limit: Some(RATE_LIMIT) }
    }
}

impl Guards {
    /// `builder` with these guards: the hub's own origin and the allowed
    /// ones (and clients that send no `Origin`), and the rate limit.
    pub fn apply(self, builder: ServerBuilder) -> ServerBuilder {
        let origins = OriginPolicy::AllowList { origins: self.allowed_origins, missing: MissingOrigin::Accept };
        builder.origins(origins).rate_limit(self.rate_limit)
    }
}

/// Starts the demo hub on `addr`: the contract's methods, `rpc.discover`,
/// `rpc.subscribe`, and the `clock` topic ticking every second; with the
/// default [`Guards`].
pub async fn serve(addr: SocketAddr) -> Result<ServerHandle, ListenError> {
    serve_with(Guards::default().apply(Server::builder()), &[Listen::from(addr)]).await
}

/// The demo hub with the settings of `builder` (a broker, a cluster, TLS,
/// limits, auth...) on every listener of `listen` (`ws://`, `tcp://`,
/// `unix:`; see `Server::listen`), one server behind them all; the demo
/// sets its discovery info. Fails on the first listener that cannot start
/// (the ones started before it keep running until the returned error is
/// handled by shutting the process down). With a broker shared by several
/// hubs, each hub publishes its time to the one `clock` topic.
pub async fn serve_with(builder: ServerBuilder, listen: &[Listen]) -> Result<ServerHandle, ListenError> {
    let server = builder.discovery(service_info()).build(contract_methods());
    for one in listen {
        server.listen(one.clone()).await?;
    }
    let handle = server.handle();
    tokio::spawn(clock(handle.clone()));
    Ok(handle)
}

/// Publishes the time to the `clock` topic every second until the server stops.
async fn clock(server: ServerHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            () = server.stopped() => return,
        }
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        if server.clock().publish(&Tick { unix_ms, seq }).is_err() {
            return;
        }
    }
}

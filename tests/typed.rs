//! The typed API (`#[switchboard::rpc]`) over a real server and client on
//! loopback: positional and named params into the generated registration, a
//! -32602 naming the param, an application error, a notification, the
//! server calling the client's typed API (from a handler and by connection
//! id, one connection or many), and the discovery entries compared with the
//! checked-in `tests/typed_discovery.json` (`SWITCHBOARD_BLESS=1` rewrites it).
//!
//! Every wait is on an event (a reply, a channel), bounded by a hang guard;
//! nothing sleeps.

use std::future::IntoFuture;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard::client::{Client, Error};
use switchboard::server::{Server, ServerHandle, Target};
use switchboard::shared::discover::ServiceInfo;
use switchboard::shared::{Context, ErrorObject, Methods, RpcResult};
use switchboard::topic::Topic;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// What `station.report` answers, from the caller's own readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The sensor's name.
    pub sensor: String,
    /// How many readings were averaged.
    pub readings: usize,
    /// Their mean.
    pub average: f64,
}

/// Arithmetic, served by the server.
#[switchboard::rpc(namespace = "calc")]
pub trait Calculator {
    /// Adds two integers.
    ///
    /// Fails with -32000 on overflow.
    async fn add(&self, a: i64, b: i64) -> Result<i64, ErrorObject>;

    /// Multiplies two integers (named `mul` on the wire).
    #[rpc(name = "mul")]
    async fn multiply(&self, a: i64, b: i64) -> i64;

    /// Greets someone, with a title if given.
    async fn greet(&self, name: String, title: Option<String>) -> String;

    /// The caller's connection id, as the server sees it.
    async fn whoami(&self, cx: Context) -> RpcResult<String>;

    /// Answers nothing, successfully.
    async fn ping(&self);

    /// Records a value (a notification: no answer).
    #[rpc(notification)]
    async fn record(&self, value: i64);

    /// The API's version (a default body, which implementations may keep).
    async fn version(&self) -> String {
        self.ping().await;
        "1.0.0".to_owned()
    }

    /// Negates a value, at once (a plain `fn`: no future).
    #[rpc(sync)]
    fn negate(&self, value: i64) -> Result<i64, ErrorObject>;

    /// Adds any count of integers, given as the params themselves: `[1, 2, 3]`.
    #[rpc(sync, whole_params)]
    fn total(&self, values: Vec<i64>) -> i64;

    /// Describes a point given as the params themselves: `{"x": 1, "y": 2}` or `[1, 2]`.
    #[rpc(whole_params)]
    async fn locate(&self, point: Point) -> String;

    /// Every result of `calc.add`.
    #[rpc(topic)]
    fn sums() -> Topic<Sum>;
}

/// A point, taken as a whole params object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Point {
    /// Across.
    pub x: i64,
    /// Down.
    pub y: i64,
}

/// A publication of `calc.sums`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sum {
    /// The terms.
    pub terms: Vec<i64>,
    /// Their sum.
    pub sum: i64,
}

/// Served by the server: asks the caller for its readings to answer.
#[switchboard::rpc(namespace = "station")]
pub trait Station {
    /// Averages the caller's latest readings, which it asks the caller for.
    async fn report(&self, count: usize, cx: Context) -> RpcResult<Report>;
}

/// Served by the clients; the server calls it.
#[switchboard::rpc(client, namespace = "sensor")]
pub trait Sensor {
    /// The latest readings, oldest first.
    async fn readings(&self, count: usize) -> Vec<f64>;

    /// The sensor's name.
    async fn name(&self) -> String;

    /// Moves the set point; `target` and `deadline` are also the names of the
    /// generated callers' own params, which must not clash.
    async fn calibrate(&self, target: f64, deadline: u64) -> Result<f64, ErrorObject>;

    /// Raises an alert on the device (a notification).
    #[rpc(notification)]
    async fn alert(&self, level: u8);
}

struct Calc {
    recorded: mpsc::UnboundedSender<i64>,
}

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, ErrorObject> {
        a.checked_add(b).ok_or_else(|| ErrorObject::new(-32000, "overflow"))
    }

    async fn multiply(&self, a: i64, b: i64) -> i64 {
        a * b
    }

    async fn greet(&self, name: String, title: Option<String>) -> String {
        match title {
            Some(title) => format!("Hello, {title} {name}"),
            None => format!("Hello, {name}"),
        }
    }

    async fn whoami(&self, cx: Context) -> RpcResult<String> {
        Ok(cx.connection_id().to_string())
    }

    async fn ping(&self) {}

    async fn record(&self, value: i64) {
        let _ = self.recorded.send(value);
    }

    fn negate(&self, value: i64) -> Result<i64, ErrorObject> {
        value.checked_neg().ok_or_else(|| ErrorObject::new(-32000, "overflow"))
    }

    fn total(&self, values: Vec<i64>) -> i64 {
        values.iter().sum()
    }

    async fn locate(&self, point: Point) -> String {
        format!("({}, {})", point.x, point.y)
    }
}

struct Hub;

impl Station for Hub {
    async fn report(&self, count: usize, cx: Context) -> RpcResult<Report> {
        // Typed calls from the server back to the caller, on its own connection.
        let readings = cx.peer().readings(count).await.map_err(ErrorObject::internal)?;
        let sensor = cx.peer().name().await.map_err(ErrorObject::internal)?;
        if readings.is_empty() {
            return Err(ErrorObject::invalid_params("the sensor has no readings"));
        }
        let average = readings.iter().sum::<f64>() / readings.len() as f64;
        Ok(Report { sensor, readings: readings.len(), average })
    }
}

struct Greenhouse {
    name: &'static str,
    alerts: mpsc::UnboundedSender<u8>,
}

impl Sensor for Greenhouse {
    async fn readings(&self, count: usize) -> Vec<f64> {
        [21.0, 22.0, 23.0, 24.0].into_iter().take(count).collect()
    }

    async fn name(&self) -> String {
        self.name.to_owned()
    }

    async fn calibrate(&self, target: f64, deadline: u64) -> Result<f64, ErrorObject> {
        if deadline == 0 {
            return Err(ErrorObject::new(-32010, "no time to calibrate"));
        }
        Ok(target)
    }

    async fn alert(&self, level: u8) {
        let _ = self.alerts.send(level);
    }
}

/// A running server and what its handlers report.
struct Setup {
    server: ServerHandle,
    url: String,
    recorded: mpsc::UnboundedReceiver<i64>,
    connected: mpsc::UnboundedReceiver<Uuid>,
}

async fn serve() -> Setup {
    let (recorded_tx, recorded) = mpsc::unbounded_channel();
    let (connected_tx, connected) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    methods.merge(Calc { recorded: recorded_tx }.into_methods());
    methods.merge(Hub.into_methods());
    let server = Server::builder()
        .discovery(ServiceInfo::new("typed", "1.0.0").client_api(SensorApi::docs()).topics(CalculatorApi::topics()))
        .on_connect(move |peer| {
            let _ = connected_tx.send(peer.id());
        })
        .build(methods)
        .listen("127.0.0.1:0")
        .await
        .expect("listen on loopback");
    let url = format!("ws://{}/", server.local_addr().expect("bound"));
    Setup { server, url, recorded, connected }
}

/// A client serving the `Sensor` API.
async fn sensor_client(url: &str, name: &'static str) -> (Client, mpsc::UnboundedReceiver<u8>) {
    let (alerts_tx, alerts) = mpsc::unbounded_channel();
    let client = within(
        "connect",
        Client::builder().endpoint(url).methods(Greenhouse { name, alerts: alerts_tx }.into_methods()).connect(),
    )
    .await
    .expect("connect");
    (client, alerts)
}

fn rpc_error(outcome: Result<impl std::fmt::Debug, Error>) -> ErrorObject {
    match outcome {
        Err(Error::Rpc(e)) => e,
        other => panic!("expected an error object, got {other:?}"),
    }
}

fn data(e: &ErrorObject) -> &str {
    e.data.as_ref().and_then(Value::as_str).unwrap_or_else(|| panic!("a string data in {e:?}"))
}

#[tokio::test]
async fn typed_calls_take_positional_and_named_params() {
    let setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");

    assert_eq!(within("typed add", client.add(2, 3)).await.unwrap(), 5);
    let timed = client.add(40, 2).timeout(Duration::from_secs(30));
    assert_eq!(within("typed add with a timeout", timed).await.unwrap(), 42);
    assert_eq!(within("positional", client.call::<i64>("calc.add", [2, 3])).await.unwrap(), 5);
    assert_eq!(within("named", client.call::<i64>("calc.add", json!({"b": 3, "a": 2}))).await.unwrap(), 5);
    assert_eq!(CalculatorApi::MULTIPLY, "calc.mul");
    assert_eq!(within("renamed", client.multiply(6, 7)).await.unwrap(), 42);
    assert_eq!(within("raw renamed", client.call::<i64>("calc.mul", json!({"a": 6, "b": 7}))).await.unwrap(), 42);

    // An optional param may be left out, by position or by name.
    assert_eq!(within("greet", client.greet("Ada".into(), None)).await.unwrap(), "Hello, Ada");
    let titled = client.greet("Lovelace".into(), Some("Countess".into()));
    assert_eq!(within("greet titled", titled).await.unwrap(), "Hello, Countess Lovelace");
    let named = client.call::<String>("calc.greet", json!({"name": "Ada"}));
    assert_eq!(within("greet named", named).await.unwrap(), "Hello, Ada");

    // A `Context` param is the server's, not the caller's.
    let me = within("whoami", client.whoami()).await.unwrap();
    let ids: Vec<String> = setup.server.connections().iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids, vec![me]);
    within("ping", client.ping()).await.unwrap();
    assert_eq!(within("default body", client.version()).await.unwrap(), "1.0.0");
    client.close().await;
}

#[tokio::test]
async fn sync_and_whole_params_methods_answer_as_declared() {
    let setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");

    assert_eq!(within("sync", client.negate(5)).await.unwrap(), -5);
    assert_eq!(within("sync named", client.call::<i64>("calc.negate", json!({"value": 7}))).await.unwrap(), -7);
    let overflow = rpc_error(within("sync error", client.negate(i64::MIN)).await);
    assert_eq!(overflow, ErrorObject::new(-32000, "overflow"));
    let wrong = rpc_error(within("sync misfit", client.call::<i64>("calc.negate", ["x"])).await);
    assert!(data(&wrong).starts_with("param `value`: invalid type"), "{wrong:?}");

    // The whole params are the one param: a list of any length, sent as it is.
    assert_eq!(within("whole", client.total(vec![1, 2, 3, 4])).await.unwrap(), 10);
    assert_eq!(within("whole raw", client.call::<i64>("calc.total", [5, 6])).await.unwrap(), 11);
    assert_eq!(within("whole empty", client.call::<i64>("calc.total", json!([]))).await.unwrap(), 0);
    let wrong = rpc_error(within("whole misfit", client.call::<i64>("calc.total", json!({"values": [1]}))).await);
    assert_eq!(wrong.code, -32602);

    // A struct as the whole params: named (its fields) or positional.
    assert_eq!(within("whole struct", client.locate(Point { x: 1, y: 2 })).await.unwrap(), "(1, 2)");
    assert_eq!(within("whole struct raw", client.call::<String>("calc.locate", [3, 4])).await.unwrap(), "(3, 4)");
    client.close().await;
}

#[tokio::test]
async fn a_topic_declared_beside_the_methods_is_published_and_subscribed_typed() {
    let setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");
    let mut sums = within("subscribe", client.sums().subscribe()).await.expect("subscribed");
    let sum = Sum { terms: vec![2, 3], sum: within("add", client.add(2, 3)).await.unwrap() };
    let position = within("publish", setup.server.sums().publish(&sum).expect("publishable")).await.unwrap();
    assert_eq!(position.offset, 1);
    let got = within("a sum", sums.next()).await.expect("open").expect("a sum");
    assert_eq!(got, sum);
    client.close().await;
}

#[tokio::test]
async fn a_misfit_is_invalid_params_naming_the_param() {
    let setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");

    let wrong = rpc_error(within("wrong type", client.call::<i64>("calc.add", json!({"a": 2, "b": "three"}))).await);
    assert_eq!(wrong.code, -32602);
    assert!(data(&wrong).starts_with("param `b`: invalid type: string \"three\", expected i64"), "{wrong:?}");

    let wrong = rpc_error(within("wrong positional", client.call::<i64>("calc.add", json!([2, 3.5]))).await);
    assert!(data(&wrong).starts_with("param `b`: invalid type: floating point `3.5`"), "{wrong:?}");

    let missing = rpc_error(within("missing", client.call::<i64>("calc.add", [2])).await);
    assert_eq!((missing.code, data(&missing)), (-32602, "missing param `b`"));

    let unknown = rpc_error(within("unknown", client.call::<i64>("calc.add", json!({"a": 1, "c": 2}))).await);
    assert_eq!(data(&unknown), "unknown param `c` (the params are `a` and `b`)");

    let extra = rpc_error(within("too many", client.call::<i64>("calc.add", [1, 2, 3])).await);
    assert_eq!(data(&extra), "too many params: this method takes 2 (`a` and `b`)");

    let none = rpc_error(within("params to ping", client.call::<()>("calc.ping", [1])).await);
    assert_eq!(data(&none), "this method takes no params");
    client.close().await;
}

#[tokio::test]
async fn an_application_error_reaches_the_typed_caller_unchanged() {
    let setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");
    let overflow = rpc_error(within("overflow", client.add(i64::MAX, 1)).await);
    assert_eq!(overflow, ErrorObject::new(-32000, "overflow"));
    client.close().await;
}

#[tokio::test]
async fn a_typed_notification_runs_the_implementation() {
    let mut setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");
    within("notify", client.record(7)).await.expect("queued");
    within("notify again", client.record(8)).await.expect("queued");
    assert_eq!(within("first record", setup.recorded.recv()).await, Some(7));
    assert_eq!(within("second record", setup.recorded.recv()).await, Some(8));
    // Sent as a request instead, it is answered with a null result.
    let answered: Value = within("as a call", client.call("calc.record", json!({"value": 9}))).await.unwrap();
    assert_eq!(answered, Value::Null);
    assert_eq!(within("third record", setup.recorded.recv()).await, Some(9));
    client.close().await;
}

#[tokio::test]
async fn a_handler_calls_the_caller_back_through_its_typed_api() {
    let setup = serve().await;
    let (client, _alerts) = sensor_client(&setup.url, "greenhouse-7").await;
    let report: Report = within("report", client.call("station.report", [3])).await.unwrap();
    assert_eq!(report, Report { sensor: "greenhouse-7".into(), readings: 3, average: 22.0 });
    let empty = rpc_error(within("empty report", client.call::<Report>("station.report", [0])).await);
    assert_eq!((empty.code, data(&empty)), (-32602, "the sensor has no readings"));
    client.close().await;
}

#[tokio::test]
async fn the_server_calls_a_client_by_connection_id_and_many_at_once() {
    let mut setup = serve().await;
    let (first, mut first_alerts) = sensor_client(&setup.url, "north").await;
    let north = within("first connection", setup.connected.recv()).await.expect("connected");
    let (second, mut second_alerts) = sensor_client(&setup.url, "south").await;
    let south = within("second connection", setup.connected.recv()).await.expect("connected");
    let server = &setup.server;

    assert_eq!(within("name", server.name(north)).await.unwrap(), "north");
    let readings = server.readings(south, 2).timeout(Duration::from_secs(30));
    assert_eq!(within("readings", readings).await.unwrap(), vec![21.0, 22.0]);
    assert_eq!(within("calibrate", server.calibrate(north, 19.5, 10)).await.unwrap(), 19.5);
    let refused = within("calibrate refused", server.calibrate(north, 19.5, 0)).await.unwrap_err();
    assert_eq!(refused.rpc().map(|e| e.code), Some(-32010));
    let unknown = Uuid::new_v4();
    assert!(within("unknown connection", server.name(unknown)).await.is_err());

    let mut answers = within("names of all", server.name_many(Target::All, GUARD)).await.expect("encodable");
    answers.sort_by_key(|a| a.connection);
    let mut expected = vec![(north, "north".to_owned()), (south, "south".to_owned())];
    expected.sort();
    let got: Vec<(Uuid, String)> = answers.into_iter().map(|a| (a.connection, a.result.expect("answered"))).collect();
    assert_eq!(got, expected);
    let calibrated = server.calibrate_many(Target::Connections(vec![south]), 18.0, 5, GUARD);
    let calibrated = within("calibrate many", calibrated).await.expect("encodable");
    assert_eq!(calibrated.len(), 1);
    assert_eq!(calibrated[0].result.as_ref().ok(), Some(&18.0));

    server.alert(north, 3).expect("queued");
    assert_eq!(within("alert north", first_alerts.recv()).await, Some(3));
    assert_eq!(server.alert_many(&Target::All, 9).expect("encodable"), 2);
    assert_eq!(within("alert north again", first_alerts.recv()).await, Some(9));
    assert_eq!(within("alert south", second_alerts.recv()).await, Some(9));
    first.close().await;
    second.close().await;
}

/// The generated methods' entries in `rpc.discover`, and the client API's
/// under `x-client-methods`, as a non-Rust client reads them.
#[tokio::test]
async fn discovery_describes_the_generated_methods() {
    let setup = serve().await;
    let client = within("connect", Client::connect(&setup.url)).await.expect("connect");
    let doc: Value = within("rpc.discover", client.call("rpc.discover", ())).await.expect("a document");
    client.close().await;
    let ours: Vec<Value> = doc["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("calc.") || n.starts_with("station.")))
        .cloned()
        .collect();
    let got = json!({"methods": ours, "x-client-methods": doc["x-client-methods"], "x-topics": doc["x-topics"]});

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/typed_discovery.json");
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&got).expect("encodable") + "\n";
        std::fs::write(path, text).expect("write the expected document");
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the expected document"))
        .expect("the expected document is JSON");
    assert_eq!(got, expected, "got:\n{}", serde_json::to_string_pretty(&got).unwrap());

    // And the Rust side reads it back: summaries, order, required flags.
    let parsed = switchboard::shared::discover::Document::build(
        &ServiceInfo::new("t", "1").client_api(SensorApi::docs()),
        &Calc { recorded: mpsc::unbounded_channel().0 }.into_methods(),
    );
    let greet = parsed.method("calc.greet").expect("calc.greet");
    assert_eq!(greet.signature(), "calc.greet(name: string, title?: string|null) -> string");
    assert_eq!(greet.summary.as_deref(), Some("Greets someone, with a title if given."));
    let add = parsed.method("calc.add").expect("calc.add");
    assert_eq!(add.summary.as_deref(), Some("Adds two integers."));
    assert!(parsed.method("calc.record").expect("calc.record").result.is_none());
    let total = parsed.method("calc.total").expect("calc.total");
    assert_eq!(total.params_form, switchboard::shared::discover::ParamsForm::Whole);
    assert_eq!(total.signature(), "calc.total(values?: integer[]) -> integer");
    let locate = parsed.method("calc.locate").expect("calc.locate");
    assert_eq!(locate.params_form, switchboard::shared::discover::ParamsForm::Listed);
    assert_eq!(locate.signature(), "calc.locate(x: integer, y: integer) -> string");
    let client_names: Vec<&str> = parsed.client_methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(client_names, ["sensor.readings", "sensor.name", "sensor.calibrate", "sensor.alert"]);
}

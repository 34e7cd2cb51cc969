//! Service discovery over a real server on loopback: `rpc.discover` answers
//! an OpenRPC 1.3 document of every registered method (description, params
//! with their JSON Schemas and required flags, result, param structure,
//! documented errors), the built-in `rpc.*` methods, and Switchboard's
//! `x-client-methods` / `x-topics` extensions; `Client::discover` parses it.
//!
//! Every wait is bounded by a hang guard; nothing sleeps.

use std::future::IntoFuture;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::client::{Client, Error};
use switchboard::server::{Builtins, Server, ServerHandle};
use switchboard::shared::discover::{Document, OPENRPC_VERSION, ServiceInfo, TopicDoc};
use switchboard::shared::{Context, ErrorObject, Method, Methods};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// Named params: a struct, so positional `[x, y]` works too.
#[derive(Debug, Deserialize, JsonSchema)]
struct Transfer {
    /// Account to take the money from.
    from: String,
    /// Account to give it to.
    to: String,
    /// Amount in cents.
    cents: u64,
    /// A note for the statement.
    memo: Option<String>,
}

/// The methods of the service under test, one of each way to describe a method.
fn methods() -> Methods {
    let mut methods = Methods::new();
    methods
        .register_sync("add", |(a, b): (i64, i64), _cx: Context| {
            a.checked_add(b).ok_or_else(|| ErrorObject::new(-32000, "overflow"))
        })
        .describe("Adds two integers.")
        .schema::<(i64, i64), i64>()
        .param_names(["a", "b"])
        .error(-32000, "overflow");
    methods
        .register("transfer", |t: Transfer, _cx: Context| async move {
            let memo = t.memo.map(|m| format!(" ({m})")).unwrap_or_default();
            Ok::<_, ErrorObject>(format!("{} cents from {} to {}{memo}", t.cents, t.from, t.to))
        })
        .describe("Moves money between two accounts.")
        .schema::<Transfer, String>()
        .error(-32001, "insufficient funds")
        .error(-32002, "unknown account");
    methods
        .register_sync("version", |(): (), _cx: Context| Ok::<_, ErrorObject>("1.2.3"))
        .describe("The service's version.")
        .schema::<(), String>();
    methods
        .register_sync("echo", |v: Value, _cx: Context| Ok::<_, ErrorObject>(v))
        .describe("Returns its params.")
        .schema_json(json!({"type": "array", "items": {"type": "string"}}), json!({"type": "array"}));
    methods.register_sync("undocumented", |(): (), _cx: Context| Ok::<_, ErrorObject>(()));
    methods
}

/// What the service says beyond its methods: a client method and a topic.
fn service() -> ServiceInfo {
    let mut confirm = Method::sync(|(_question,): (String,), _cx: Context| Ok::<_, ErrorObject>(true));
    confirm.describe("Asks the user to confirm a transfer.").schema::<(String,), bool>().param_names(["question"]);
    ServiceInfo::new("bank", "2.0.1").client_method("client.confirm", &confirm).topic(TopicDoc {
        name: "balances".into(),
        summary: Some("Every balance change.".into()),
        method: Some("balance".into()),
        schema: Some(json!({"type": "object", "properties": {"account": {"type": "string"}}})),
    })
}

async fn serve(builder: switchboard::server::ServerBuilder) -> (ServerHandle, Client) {
    let server = builder.build(methods()).listen("127.0.0.1:0").await.expect("listen on loopback");
    let url = format!("ws://{}/", server.local_addr().expect("bound"));
    let client = within("connect", Client::connect(&url)).await.expect("connect");
    (server, client)
}

/// The document as raw JSON, exactly as a non-Rust client receives it.
async fn raw_document() -> Value {
    let (_server, client) = serve(Server::builder().discovery(service())).await;
    within("rpc.discover", client.call_raw("rpc.discover", ())).await.expect("rpc.discover answers")
}

fn method<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["methods"]
        .as_array()
        .expect("methods is an array")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the document: {doc:#}"))
}

fn param_names(method: &Value) -> Vec<(&str, bool)> {
    method["params"]
        .as_array()
        .expect("params is an array")
        .iter()
        .map(|p| {
            (p["name"].as_str().expect("a param has a name"), p["required"].as_bool().expect("and a required flag"))
        })
        .collect()
}

#[tokio::test]
async fn rpc_discover_answers_a_document_of_the_openrpc_1_3_shape() {
    let doc = raw_document().await;

    let version = doc["openrpc"].as_str().expect("an openrpc version string");
    assert!(version.starts_with("1.3."), "OpenRPC 1.3.x, got {version}");
    assert_eq!(version, OPENRPC_VERSION);
    assert_eq!(doc["info"]["title"], "bank");
    assert_eq!(doc["info"]["version"], "2.0.1");

    let methods = doc["methods"].as_array().expect("methods is an array");
    let names: Vec<&str> = methods.iter().map(|m| m["name"].as_str().expect("every method has a name")).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "methods are listed by name");
    for m in methods {
        // OpenRPC: params is required, and every content descriptor has a name and a schema.
        let params = m["params"].as_array().unwrap_or_else(|| panic!("params must be an array: {m}"));
        for p in params {
            assert!(p["name"].is_string() && p.get("schema").is_some(), "content descriptor {p} of {m}");
            assert!(p["required"].is_boolean(), "required flag of {p}");
        }
        let structure = m["paramStructure"].as_str().expect("paramStructure");
        assert!(["by-position", "by-name", "either"].contains(&structure), "{structure}");
        if let Some(result) = m.get("result") {
            assert!(result["name"].is_string() && result.get("schema").is_some(), "result of {m}");
        }
        for e in m.get("errors").and_then(Value::as_array).into_iter().flatten() {
            assert!(e["code"].is_i64() && e["message"].is_string(), "error {e}");
        }
    }
}

#[tokio::test]
async fn every_registered_method_is_listed_with_its_description() {
    let doc = raw_document().await;
    for (name, description) in [
        ("add", "Adds two integers."),
        ("transfer", "Moves money between two accounts."),
        ("version", "The service's version."),
        ("echo", "Returns its params."),
    ] {
        assert_eq!(method(&doc, name)["summary"], description, "{name}");
    }
    // A method registered without any description is still listed.
    let bare = method(&doc, "undocumented");
    assert!(bare.get("summary").is_none());
    assert_eq!(bare["params"], json!([]));
}

#[tokio::test]
async fn tuple_params_with_names_are_by_position_with_their_schemas_and_result() {
    let doc = raw_document().await;
    let add = method(&doc, "add");
    assert_eq!(add["paramStructure"], "by-position");
    assert_eq!(param_names(add), vec![("a", true), ("b", true)]);
    assert_eq!(add["params"][0]["schema"]["type"], "integer");
    assert_eq!(add["params"][1]["schema"]["type"], "integer");
    assert_eq!(add["result"]["schema"]["type"], "integer");
    assert_eq!(add["errors"], json!([{"code": -32000, "message": "overflow"}]));
}

#[tokio::test]
async fn struct_params_are_named_with_their_required_flags_and_accept_either_structure() {
    let doc = raw_document().await;
    let transfer = method(&doc, "transfer");
    assert_eq!(transfer["paramStructure"], "either");
    let mut params = param_names(transfer);
    params.sort_unstable();
    assert_eq!(params, vec![("cents", true), ("from", true), ("memo", false), ("to", true)]);
    let cents = transfer["params"].as_array().unwrap().iter().find(|p| p["name"] == "cents").unwrap();
    assert_eq!(cents["schema"]["type"], "integer");
    assert_eq!(cents["schema"]["description"], "Amount in cents.", "doc comments become descriptions");
    assert_eq!(transfer["result"]["schema"]["type"], "string");
    assert_eq!(
        transfer["errors"],
        json!([{"code": -32001, "message": "insufficient funds"}, {"code": -32002, "message": "unknown account"}])
    );
}

#[tokio::test]
async fn methods_without_params_and_hand_written_schemas_are_described_as_given() {
    let doc = raw_document().await;
    let version = method(&doc, "version");
    assert_eq!(version["params"], json!([]));
    assert_eq!(version["result"]["schema"]["type"], "string");

    let echo = method(&doc, "echo");
    assert_eq!(echo["params"][0]["schema"], json!({"type": "array", "items": {"type": "string"}}));
    assert_eq!(echo["result"]["schema"], json!({"type": "array"}));
}

#[tokio::test]
async fn the_built_in_rpc_methods_are_listed_too() {
    let doc = raw_document().await;
    for name in ["rpc.discover", "rpc.subscribe", "rpc.unsubscribe"] {
        let builtin = method(&doc, name);
        assert!(builtin["summary"].as_str().is_some_and(|s| !s.is_empty()), "{name} has a description");
    }
}

#[tokio::test]
async fn client_methods_and_topics_are_described_in_x_extensions() {
    let doc = raw_document().await;
    let client_methods = doc["x-client-methods"].as_array().expect("x-client-methods is an array");
    assert_eq!(client_methods.len(), 1);
    let confirm = &client_methods[0];
    assert_eq!(confirm["name"], "client.confirm");
    assert_eq!(confirm["summary"], "Asks the user to confirm a transfer.");
    assert_eq!(confirm["paramStructure"], "by-position");
    assert_eq!(param_names(confirm), vec![("question", true)]);
    assert_eq!(confirm["result"]["schema"]["type"], "boolean");
    assert!(method(&doc, "rpc.discover").get("x-client-methods").is_none());

    assert_eq!(
        doc["x-topics"],
        json!([{
            "name": "balances",
            "summary": "Every balance change.",
            "method": "balance",
            "schema": {"type": "object", "properties": {"account": {"type": "string"}}},
        }])
    );
}

#[tokio::test]
async fn client_discover_returns_the_parsed_document() {
    let (_server, client) = serve(Server::builder().discovery(service())).await;
    let doc: Document = within("discover", client.discover()).await.expect("discover");
    let raw: Value = within("rpc.discover", client.call_raw("rpc.discover", ())).await.unwrap();
    assert_eq!(serde_json::to_value(&doc).unwrap(), raw, "nothing is lost in parsing");

    assert_eq!(doc.openrpc, OPENRPC_VERSION);
    assert_eq!((doc.info.title.as_str(), doc.info.version.as_str()), ("bank", "2.0.1"));
    let add = doc.method("add").expect("add is described");
    assert_eq!(add.signature(), "add(a: integer, b: integer) -> integer");
    assert_eq!(add.param_structure, "by-position");
    assert_eq!(add.errors[0].code, -32000);
    assert_eq!(doc.client_methods[0].signature(), "client.confirm(question: string) -> boolean");
    assert_eq!(doc.topics[0].method.as_deref(), Some("balance"));
    client.close().await;
}

#[tokio::test]
async fn a_server_without_discovery_settings_is_titled_switchboard() {
    let (_server, client) = serve(Server::builder()).await;
    let doc = within("discover", client.discover()).await.expect("discover");
    assert_eq!(doc.info.title, "switchboard");
    assert!(!doc.info.version.is_empty());
    assert!(doc.client_methods.is_empty() && doc.topics.is_empty());
    let text = serde_json::to_value(&doc).unwrap();
    assert!(text.get("x-client-methods").is_none() && text.get("x-topics").is_none(), "empty extensions are left out");
    assert!(doc.method("add").is_some() && doc.method("rpc.discover").is_some());
}

#[tokio::test]
async fn without_built_ins_there_is_no_rpc_discover_and_discover_fails_with_method_not_found() {
    let (_server, client) = serve(Server::builder().builtins(Builtins::None)).await;
    let err = within("discover", client.discover()).await.unwrap_err();
    assert!(matches!(&err, Error::Rpc(e) if e.code == -32601), "{err:?}");
    // The connection is fine for everything else.
    assert_eq!(within("add", client.call::<i64>("add", [2, 3])).await.unwrap(), 5);
}

#[tokio::test]
async fn the_demo_hub_describes_the_contract_methods_and_the_clock_topic() {
    let hub = switchboard::demo::serve("127.0.0.1:0".parse().unwrap()).await.expect("the demo hub listens");
    let url = format!("ws://{}/", hub.local_addr().unwrap());
    let client = within("connect", Client::connect(&url)).await.unwrap();
    let doc = within("discover", client.discover()).await.unwrap();
    for name in ["echo", "add", "subtract", "sum", "get_data", "update", "notify_hello", "notify_sum", "sleep", "flood"]
    {
        let m = doc.method(name).unwrap_or_else(|| panic!("{name} is described"));
        assert!(m.summary.as_deref().is_some_and(|s| !s.is_empty()), "{name} has a description");
        assert!(m.result.is_some(), "{name} has a result schema");
    }
    assert_eq!(doc.method("sleep").unwrap().signature(), "sleep(ms: integer) -> integer");
    assert_eq!(doc.topics.len(), 1);
    assert_eq!(doc.topics[0].name, "clock");
    client.close().await;
    within("shutdown", hub.shutdown(Duration::from_secs(5))).await;
}

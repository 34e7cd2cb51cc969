//! One function per subcommand.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::client::{Client, ConnectError, Reconnect};
use switchboard::shared::discover::{Document, type_name};
use switchboard::shared::{Context, Dispatch, Error, Id, Method, Methods};

use crate::output::print_json;
use crate::{Failure, Outcome, Target};

pub(crate) async fn serve(addr: SocketAddr) -> Result<Outcome, Failure> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let hub = switchboard::demo::serve(addr)
        .await
        .map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot listen on {addr}: {e}")))?;
    let bound = hub.local_addr().map_or_else(|| addr.to_string(), |a| a.to_string());
    println!("switchboard hub listening on ws://{bound}/");
    println!("try: cargo run --release -- call ws://{bound}/ add '[2, 3]'");
    println!("     cargo run --release -- listen ws://{bound}/ --topic clock");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => hub.shutdown(Duration::from_secs(5)).await,
        () = hub.stopped() => {}
    }
    Ok(Outcome::Success)
}

async fn connect(target: &Target, methods: Methods, reconnect: Reconnect) -> Result<Client, Failure> {
    let timeout = target.timeout()?;
    let mut builder = Client::builder()
        .endpoint(target.url.as_str())
        .methods(methods)
        .timeout(timeout)
        .connect_timeout(timeout)
        .reconnect(reconnect);
    if let Some(token) = &target.token {
        builder = builder.token(token);
    }
    for header in &target.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::new(Outcome::Usage, format!("--header takes K:V, got {header:?}")))?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.connect().await.map_err(|e| match e {
        ConnectError::InvalidUrl { .. } | ConnectError::InvalidHeader { .. } | ConnectError::NoEndpoint => {
            Failure::new(Outcome::Usage, e.to_string())
        }
        _ => Failure::new(Outcome::Unreachable, format!("could not connect to {}: {e}", target.url)),
    })
}

fn parse_params(params: Option<&str>) -> Result<Value, Failure> {
    let Some(text) = params else { return Ok(Value::Null) };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Failure::new(Outcome::Usage, format!("PARAMS_JSON is not valid JSON: {e}")))?;
    if !(value.is_array() || value.is_object()) {
        return Err(Failure::new(Outcome::Usage, format!("PARAMS_JSON must be an array or an object, e.g. [{text}]")));
    }
    Ok(value)
}

/// Maps a call's error to its exit code, printing a server error object.
fn call_failure(error: Error) -> Failure {
    match error {
        Error::Rpc(object) => {
            print_json(&object);
            Failure::new(Outcome::ServerError, format!("the server answered with an error: {object}"))
        }
        Error::InvalidResponse(_) | Error::Decode(_) => Failure::new(Outcome::ServerError, error.to_string()),
        Error::Encode(_) => Failure::new(Outcome::Usage, error.to_string()),
        Error::Timeout(_) | Error::Disconnected | Error::Offline | Error::Transport(_) => {
            Failure::new(Outcome::Unreachable, error.to_string())
        }
    }
}

pub(crate) async fn call(target: &Target, method: &str, params: Option<&str>) -> Result<Outcome, Failure> {
    let params = parse_params(params)?;
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let result = client.call_raw(method, params).await;
    client.close().await;
    print_json(&result.map_err(call_failure)?);
    Ok(Outcome::Success)
}

pub(crate) async fn notify(target: &Target, method: &str, params: Option<&str>) -> Result<Outcome, Failure> {
    let params = parse_params(params)?;
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let sent = client.notify(method, params).await;
    // Closing writes everything queued before the close frame.
    client.close().await;
    sent.map_err(call_failure)?;
    Ok(Outcome::Success)
}

pub(crate) async fn batch(target: &Target, file: Option<&Path>) -> Result<Outcome, Failure> {
    let text = match file {
        Some(path) if path != Path::new("-") => std::fs::read_to_string(path)
            .map_err(|e| Failure::new(Outcome::Usage, format!("cannot read {}: {e}", path.display())))?,
        _ => std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::new(Outcome::Usage, format!("cannot read stdin: {e}")))?,
    };
    let Value::Array(entries) = serde_json::from_str(&text)
        .map_err(|e| Failure::new(Outcome::Usage, format!("the batch is not valid JSON: {e}")))?
    else {
        return Err(Failure::new(Outcome::Usage, "the batch must be a JSON array of request objects"));
    };
    if entries.is_empty() {
        return Err(Failure::new(Outcome::Usage, "the batch is empty"));
    }
    let mut calls = Vec::new();
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let mut batch = client.batch();
    for (i, entry) in entries.iter().enumerate() {
        let method = entry.get("method").and_then(Value::as_str).ok_or_else(|| {
            Failure::new(Outcome::Usage, format!("batch entry {i} has no string \"method\": {entry}"))
        })?;
        let params = entry.get("params").cloned().unwrap_or(Value::Null);
        match entry.get("id") {
            Some(id) => {
                calls.push(id.clone());
                batch = batch.call(method, params);
            }
            None => batch = batch.notify(method, params),
        }
    }
    let results = batch.send().await;
    client.close().await;
    let results = results.map_err(call_failure)?;
    let mut any_error = false;
    let replies: Vec<Value> = calls
        .into_iter()
        .enumerate()
        .map(|(i, id)| match results.get_raw(i) {
            Some(Ok(raw)) => json!({"jsonrpc": "2.0", "result": serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null), "id": id}),
            Some(Err(Error::Rpc(object))) => {
                any_error = true;
                json!({"jsonrpc": "2.0", "error": object, "id": id})
            }
            Some(Err(other)) => {
                any_error = true;
                json!({"jsonrpc": "2.0", "error": {"code": -32603, "message": other.to_string()}, "id": id})
            }
            None => Value::Null,
        })
        .collect();
    print_json(&replies);
    Ok(if any_error { Outcome::ServerError } else { Outcome::Success })
}

pub(crate) async fn describe(target: &Target, method: Option<&str>) -> Result<Outcome, Failure> {
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let doc = client.call::<Document>("rpc.discover", ()).await;
    client.close().await;
    let doc = doc.map_err(call_failure)?;
    match method {
        None => {
            println!("{} {}", doc.info.title, doc.info.version);
            let width = doc.methods.iter().map(|m| m.name.len()).max().unwrap_or(0);
            for m in &doc.methods {
                println!("  {:width$}  {}", m.name, m.summary.as_deref().unwrap_or(""));
            }
            if !doc.client_methods.is_empty() {
                println!("methods the server calls on clients:");
                for m in &doc.client_methods {
                    println!("  {:width$}  {}", m.name, m.summary.as_deref().unwrap_or(""));
                }
            }
            if !doc.topics.is_empty() {
                println!("topics (rpc.subscribe):");
                for t in &doc.topics {
                    println!("  {:width$}  {}", t.name, t.summary.as_deref().unwrap_or(""));
                }
            }
        }
        Some(name) => {
            let m =
                doc.method(name).or_else(|| doc.client_methods.iter().find(|m| m.name == name)).ok_or_else(|| {
                    Failure::new(Outcome::ServerError, format!("the service has no method named {name:?}"))
                })?;
            println!("{}", m.signature());
            if let Some(summary) = &m.summary {
                println!("  {summary}");
            }
            println!("  params ({}):", m.param_structure);
            for p in &m.params {
                let required = if p.required { "required" } else { "optional" };
                println!("    {} ({}, {required}): {}", p.name, type_name(&p.schema), p.schema);
            }
            if let Some(result) = &m.result {
                println!("  result ({}): {}", type_name(&result.schema), result.schema);
            }
            for e in &m.errors {
                println!("  error {}: {}", e.code, e.message);
            }
        }
    }
    Ok(Outcome::Success)
}

pub(crate) async fn listen(target: &Target, topics: &[String]) -> Result<Outcome, Failure> {
    // Every notification, whatever its method, is printed; calls from the
    // server are refused (-32601): a listener offers no methods.
    let mut methods = Methods::new();
    methods.router(|name: &str| {
        let name: Arc<str> = Arc::from(name);
        Some(Method::raw(move |params, _cx: &Context, id: Option<Id>| {
            if id.is_some() {
                return Dispatch::Ready(Some(switchboard::shared::codec::encode::error(
                    &id.unwrap_or(Id::Null),
                    &switchboard::shared::ErrorObject::method_not_found(&name),
                )));
            }
            let params: Value = params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or(Value::Null);
            print_json(&json!({"method": &*name, "params": params}));
            Dispatch::Ready(None)
        }))
    });
    let client = connect(target, methods, Reconnect::default()).await?;
    let mut subscriptions = Vec::new();
    for topic in topics {
        subscriptions.push(client.subscribe(topic).await.map_err(call_failure)?);
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            let mut state = client.watch_state();
            let _ = state.wait_for(|s| *s == switchboard::client::State::Closed).await;
        } => {
            return Err(Failure::new(Outcome::Unreachable, "the connection was lost for good"));
        }
    }
    drop(subscriptions);
    client.close().await;
    Ok(Outcome::Success)
}

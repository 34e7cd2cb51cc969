//! One function per subcommand.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use switchboard::client::{Client, ConnectError, Reconnect};
use switchboard::shared::codec::encode;
use switchboard::shared::discover::{Document, MethodDoc, TopicDoc, type_name};
use switchboard::shared::{Context, Dispatch, Error, ErrorObject, Id, Method, Methods};
use tokio::sync::Notify;

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
    // Ready for Ctrl-C before saying so: whoever reads the line may interrupt at once.
    let interrupted =
        interrupt_signal().map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot watch for Ctrl-C: {e}")))?;
    let bound = hub.local_addr().map_or_else(|| addr.to_string(), |a| a.to_string());
    println!("switchboard hub listening on ws://{bound}/");
    println!("try: cargo run --release -- call ws://{bound}/ add '[2, 3]'");
    println!("     cargo run --release -- listen ws://{bound}/ --topic clock");
    tokio::select! {
        () = interrupted => hub.shutdown(Duration::from_secs(5)).await,
        () = hub.stopped() => {}
    }
    Ok(Outcome::Success)
}

/// Resolves on Ctrl-C (and on SIGTERM on Unix). The handlers are installed
/// by this call, not when the future is first awaited, so a signal that
/// arrives right after is not missed.
fn interrupt_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
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
        // "could not connect to URL: why", the URL and the reason once each.
        _ => Failure::new(Outcome::Unreachable, e.to_string()),
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
            let _ = print_json(&object);
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
    // stdout closing early (a pipe to `head`) is not the call's failure.
    let _ = print_json(&result.map_err(call_failure)?);
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
    // The replies in the order of the requests, each with its request's own id.
    let replies: Vec<Reply> = calls
        .into_iter()
        .enumerate()
        .map(|(i, id)| match results.get_raw(i) {
            Some(Ok(raw)) => Reply::result(serde_json::from_str(raw.get()).unwrap_or(Value::Null), id),
            Some(Err(Error::Rpc(object))) => Reply::error(object.clone(), id),
            Some(Err(other)) => Reply::error(ErrorObject::internal(other), id),
            None => Reply::error(ErrorObject::internal("no reply"), id),
        })
        .collect();
    let any_error = replies.iter().any(|r| r.error.is_some());
    let _ = print_json(&replies);
    Ok(if any_error { Outcome::ServerError } else { Outcome::Success })
}

/// One reply of a batch, its fields in the spec's order.
#[derive(Serialize)]
struct Reply {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
    id: Value,
}

impl Reply {
    fn result(result: Value, id: Value) -> Self {
        Reply { jsonrpc: "2.0", result: Some(result), error: None, id }
    }

    fn error(error: ErrorObject, id: Value) -> Self {
        Reply { jsonrpc: "2.0", result: None, error: Some(error), id }
    }
}

pub(crate) async fn describe(target: &Target, method: Option<&str>) -> Result<Outcome, Failure> {
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let doc = client.discover().await;
    client.close().await;
    let doc = doc.map_err(call_failure)?;
    let text = match method {
        None => describe_service(&doc),
        Some(name) => {
            if let Some(m) = doc.method(name) {
                describe_method(m, None)
            } else if let Some(m) = doc.client_methods.iter().find(|m| m.name == name) {
                describe_method(m, Some("a method the server calls on its clients"))
            } else if let Some(t) = doc.topics.iter().find(|t| t.name == name) {
                describe_topic(t)
            } else {
                return Err(Failure::new(Outcome::ServerError, format!("the service has no method named {name:?}")));
            }
        }
    };
    // stdout closing early (a pipe to `head`) is not a failure.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(Outcome::Success)
}

/// The service's title and version, then one line per method, client method and topic.
fn describe_service(doc: &Document) -> String {
    let mut out = format!("{} {}\n", doc.info.title, doc.info.version);
    let names = doc.methods.iter().chain(&doc.client_methods).map(|m| m.name.len());
    let width = names.chain(doc.topics.iter().map(|t| t.name.len())).max().unwrap_or(0);
    for m in &doc.methods {
        entry(&mut out, &m.name, m.summary.as_deref(), width);
    }
    if !doc.client_methods.is_empty() {
        out.push_str("methods the server calls on clients:\n");
        for m in &doc.client_methods {
            entry(&mut out, &m.name, m.summary.as_deref(), width);
        }
    }
    if !doc.topics.is_empty() {
        out.push_str("topics (rpc.subscribe):\n");
        for t in &doc.topics {
            entry(&mut out, &t.name, t.summary.as_deref(), width);
        }
    }
    out
}

/// One `  name  summary` line, names padded to `width`.
fn entry(out: &mut String, name: &str, summary: Option<&str>, width: usize) {
    out.push_str(format!("  {name:width$}  {}", summary.unwrap_or("")).trim_end());
    out.push('\n');
}

/// A method in full: signature, summary, params, result, errors.
fn describe_method(m: &MethodDoc, kind: Option<&str>) -> String {
    let mut out = format!("{}\n", m.signature());
    for line in kind.into_iter().chain(m.summary.as_deref()) {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str(&format!("  params ({}):", m.param_structure));
    out.push_str(if m.params.is_empty() { " none\n" } else { "\n" });
    for p in &m.params {
        let required = if p.required { "required" } else { "optional" };
        out.push_str(&format!("    {} ({}, {required}): {}\n", p.name, type_name(&p.schema), p.schema));
    }
    if let Some(result) = &m.result {
        out.push_str(&format!("  result ({}): {}\n", type_name(&result.schema), result.schema));
    }
    for e in &m.errors {
        out.push_str(&format!("  error {}: {}\n", e.code, e.message));
    }
    out
}

/// A topic: its name, what it carries, the notification method and its schema.
fn describe_topic(t: &TopicDoc) -> String {
    let mut out = format!("topic {}\n", t.name);
    if let Some(summary) = &t.summary {
        out.push_str(&format!("  {summary}\n"));
    }
    out.push_str(&format!("  subscribe: rpc.subscribe [{}]\n", Value::from(t.name.as_str())));
    if let Some(method) = &t.method {
        out.push_str(&format!("  pushed as notifications named {method:?}\n"));
    }
    if let Some(schema) = &t.schema {
        out.push_str(&format!("  params ({}): {schema}\n", type_name(schema)));
    }
    out
}

pub(crate) async fn listen(target: &Target, topics: &[String]) -> Result<Outcome, Failure> {
    // Every notification, whatever its method, is printed; calls from the
    // server are refused (-32601): a listener offers no methods. When stdout
    // closes (a pipe to `head`), the listener stops.
    let stdout_closed = Arc::new(Notify::new());
    let mut methods = Methods::new();
    let closed = Arc::clone(&stdout_closed);
    methods.router(move |name: &str| {
        let name: Arc<str> = Arc::from(name);
        let closed = Arc::clone(&closed);
        Some(Method::raw(move |params, _cx: &Context, id: Option<Id>| {
            if let Some(id) = id {
                return Dispatch::Ready(Some(encode::error(&id, &ErrorObject::method_not_found(&name))));
            }
            let params: Value = params.and_then(|p| serde_json::from_str(p.get()).ok()).unwrap_or(Value::Null);
            if print_json(&json!({"method": &*name, "params": params})).is_err() {
                closed.notify_one();
            }
            Dispatch::Ready(None)
        }))
    });
    let interrupted =
        interrupt_signal().map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot watch for Ctrl-C: {e}")))?;
    let client = connect(target, methods, Reconnect::default()).await?;
    let mut subscriptions = Vec::new();
    for topic in topics {
        subscriptions.push(client.subscribe(topic).await.map_err(call_failure)?);
    }
    tokio::select! {
        () = interrupted => {}
        () = stdout_closed.notified() => {}
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

//! One function per subcommand.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard::client::{
    Client, ClientBuilder, ConnectError, RawSocket, Reconnect, State, StreamItem, StreamPosition,
};
use switchboard::shared::codec::encode;
use switchboard::shared::discover::{Document, MethodDoc, TopicDoc, type_name};
use switchboard::shared::stream::PUBLICATION_METHOD;
use switchboard::shared::tokio_tungstenite::tungstenite::Message;
use switchboard::shared::{Context, Dispatch, Error, ErrorObject, Id, Method, Methods};
use tokio::sync::Notify;

use crate::output::print_json;
use crate::transport_http as http;
use crate::{Failure, Outcome, Target};

/// Resolves on Ctrl-C (and on SIGTERM on Unix). The handlers are installed
/// by this call, not when the future is first awaited, so a signal that
/// arrives right after is not missed.
pub(crate) fn interrupt_signal() -> std::io::Result<impl Future<Output = ()>> {
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

/// A client builder with the target's URL, token, headers and timeout.
fn builder(target: &Target) -> Result<ClientBuilder, Failure> {
    let timeout = target.timeout()?;
    let mut builder = Client::builder().endpoint(target.url.as_str()).timeout(timeout).connect_timeout(timeout);
    if let Some(token) = &target.token {
        builder = builder.token(token);
    }
    for header in &target.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::new(Outcome::Usage, format!("--header takes K:V, got {header:?}")))?;
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(pem) = cacert(target)? {
        builder = builder.root_certificate(pem);
    }
    Ok(builder)
}

/// The --cacert file's contents, if given.
pub(crate) fn cacert(target: &Target) -> Result<Option<Vec<u8>>, Failure> {
    let Some(path) = &target.cacert else { return Ok(None) };
    std::fs::read(path)
        .map(Some)
        .map_err(|e| Failure::new(Outcome::Usage, format!("cannot read --cacert {}: {e}", path.display())))
}

/// Whether the target is an HTTP endpoint (one POST per command), not a WebSocket.
fn is_http(target: &Target) -> bool {
    let scheme = target.url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("http" | "https"))
}

/// Exit 2 for a bad setting, 3 for anything else.
fn connect_failure(e: ConnectError) -> Failure {
    match e {
        ConnectError::InvalidUrl { .. }
        | ConnectError::InvalidHeader { .. }
        | ConnectError::InvalidCertificate { .. }
        | ConnectError::NoEndpoint => Failure::new(Outcome::Usage, e.to_string()),
        // "could not connect to URL: why", the URL and the reason once each.
        _ => Failure::new(Outcome::Unreachable, e.to_string()),
    }
}

async fn connect(target: &Target, methods: Methods, reconnect: Reconnect) -> Result<Client, Failure> {
    builder(target)?.methods(methods).reconnect(reconnect).connect().await.map_err(connect_failure)
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
fn call_failure(error: Error, target: &Target) -> Failure {
    match error {
        Error::Rpc(object) => {
            let _ = print_json(&object);
            Failure::new(Outcome::ServerError, format!("the server answered with an error: {object}"))
        }
        Error::InvalidResponse(_) | Error::Decode(_) => Failure::new(Outcome::ServerError, error.to_string()),
        Error::Encode(_) => Failure::new(Outcome::Usage, error.to_string()),
        // Our own limit, not an answer: nothing is printed on stdout.
        Error::Timeout(after) => Failure::new(Outcome::Unreachable, timed_out(after, target)),
        // Disconnected, offline, transport, and whatever a later version adds.
        _ => Failure::new(Outcome::Unreachable, error.to_string()),
    }
}

/// `timeout: no reply within 300ms (--timeout 0.3)`: the client gave up
/// waiting; the server sent nothing.
pub(crate) fn timed_out(after: Duration, target: &Target) -> String {
    format!("timeout: no reply within {after:?} (--timeout {})", target.timeout)
}

pub(crate) async fn call(target: &Target, method: &str, params: Option<&str>) -> Result<Outcome, Failure> {
    let params = parse_params(params)?;
    if is_http(target) {
        return http::call(target, method, params).await;
    }
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let result = client.call_raw(method, params).await;
    client.close().await;
    // stdout closing early (a pipe to `head`) is not the call's failure.
    let _ = print_json(&result.map_err(|e| call_failure(e, target))?);
    Ok(Outcome::Success)
}

pub(crate) async fn notify(target: &Target, method: &str, params: Option<&str>) -> Result<Outcome, Failure> {
    let params = parse_params(params)?;
    if is_http(target) {
        return http::notify(target, method, params).await;
    }
    let client = connect(target, Methods::new(), Reconnect::Never).await?;
    let sent = client.notify(method, params).await;
    // Closing writes everything queued before the close frame.
    client.close().await;
    sent.map_err(|e| call_failure(e, target))?;
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
    // Each entry as a request (or notification) with the user's own id, so
    // the server's replies carry the ids the user wrote.
    let mut requests = Vec::new();
    let mut ids = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let method = entry.get("method").and_then(Value::as_str).ok_or_else(|| {
            Failure::new(Outcome::Usage, format!("batch entry {i} has no string \"method\": {entry}"))
        })?;
        let mut request = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = entry.get("params") {
            request["params"] = params.clone();
        }
        if let Some(id) = entry.get("id") {
            request["id"] = id.clone();
            ids.push(id.clone());
        }
        requests.push(request);
    }
    if is_http(target) {
        return Err(Failure::new(
            Outcome::Usage,
            "batch needs a ws:// or wss:// URL (over HTTP, POST the array with curl)",
        ));
    }
    let timeout = target.timeout()?;
    // A raw socket, not the client's engine: the server's answer is printed
    // as it came, even a single `"id": null` error for the whole batch.
    let mut ws = builder(target)?.open_socket().await.map_err(connect_failure)?;
    let sent = ws.send(Message::text(Value::Array(requests).to_string())).await;
    sent.map_err(|e| Failure::new(Outcome::Unreachable, format!("the connection failed while sending: {e}")))?;
    let answer = if ids.is_empty() { Ok(BatchAnswer::default()) } else { await_answer(&mut ws, &ids, timeout).await };
    let _ = tokio::time::timeout(timeout, async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let answer = answer?;
    if let Some(whole) = answer.whole {
        // stdout closing early (a pipe to `head`) is not the batch's failure.
        let _ = print_json(&whole);
        let error = whole.error.as_deref().map_or("", RawValue::get);
        return Err(Failure::new(
            Outcome::ServerError,
            format!("the server answered the whole batch with an error: {error}"),
        ));
    }
    let mut replies: Vec<&Reply> = answer.replies.iter().flatten().collect();
    replies.extend(&answer.unmatched);
    let any_error = replies.iter().any(|r| r.error.is_some());
    let missing: Vec<String> =
        ids.iter().zip(&answer.replies).filter(|(_, r)| r.is_none()).map(|(id, _)| id.to_string()).collect();
    if !replies.is_empty() || missing.is_empty() {
        let _ = print_json(&replies);
    }
    if !missing.is_empty() {
        let why = match answer.ended {
            Some(reason) => format!(
                "the connection ended ({reason}) before the replies to the batch entries with ids {}",
                missing.join(", ")
            ),
            None => format!("{} to the batch entries with ids {}", timed_out(timeout, target), missing.join(", ")),
        };
        return Err(Failure::new(Outcome::Unreachable, why));
    }
    Ok(if any_error { Outcome::ServerError } else { Outcome::Success })
}

/// What the server sent back for a batch.
#[derive(Default)]
struct BatchAnswer {
    /// One slot per call of the batch, in its order.
    replies: Vec<Option<Reply>>,
    /// Replies that matched no call (an error for a malformed entry, with id null).
    unmatched: Vec<Reply>,
    /// A single error answering the whole batch (`"id": null`, not in an array).
    whole: Option<Reply>,
    /// Why the connection ended before every call was answered, if it did.
    ended: Option<String>,
}

/// Reads frames until every call of the batch (ids `ids`, in order) has its
/// reply, the server answers the whole batch with one error, the socket ends,
/// or `timeout` passes. The server's own calls are answered -32601 meanwhile;
/// its notifications are ignored.
async fn await_answer(ws: &mut RawSocket, ids: &[Value], timeout: Duration) -> Result<BatchAnswer, Failure> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut answer = BatchAnswer { replies: ids.iter().map(|_| None).collect(), ..BatchAnswer::default() };
    while answer.replies.iter().any(Option::is_none) {
        let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Close(frame)))) => {
                answer.ended = Some(frame.map_or_else(|| "closed".to_owned(), |f| format!("closed with {}", f.code)));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => {
                answer.ended = Some(e.to_string());
                break;
            }
            Ok(None) => {
                answer.ended = Some("closed".to_owned());
                break;
            }
        };
        let messages = match serde_json::from_str::<Box<RawValue>>(&frame) {
            Ok(raw) if raw.get().starts_with('[') => serde_json::from_str(raw.get()).unwrap_or_default(),
            Ok(raw) => vec![raw],
            Err(_) => continue,
        };
        let single = !frame.trim_start().starts_with('[');
        for message in messages {
            let Ok(Probe { method, id }) = serde_json::from_str::<Probe>(message.get()) else { continue };
            match (method, id) {
                (Some(method), Some(id)) if !id.is_null() => {
                    let refusal = json!({"jsonrpc": "2.0", "error": ErrorObject::method_not_found(&method), "id": id});
                    let _ = ws.send(Message::text(refusal.to_string())).await;
                }
                (Some(_), _) => {}
                (None, _) => {
                    let Ok(reply) = serde_json::from_str::<Reply>(message.get()) else { continue };
                    let id: Value = serde_json::from_str(reply.id.get()).unwrap_or(Value::Null);
                    let slot = ids.iter().zip(&answer.replies).position(|(want, got)| got.is_none() && *want == id);
                    match slot {
                        Some(i) => answer.replies[i] = Some(reply),
                        None if single && id.is_null() && reply.error.is_some() => {
                            answer.whole = Some(reply);
                            return Ok(answer);
                        }
                        None => answer.unmatched.push(reply),
                    }
                }
            }
        }
    }
    Ok(answer)
}

/// Enough of a message from the server to tell a call or notification
/// (it has a method) from a reply.
#[derive(Deserialize)]
struct Probe {
    method: Option<String>,
    id: Option<Value>,
}

/// One reply as the server sent it: its result, error and id kept as raw
/// JSON, printed in the spec's field order.
#[derive(Serialize, Deserialize)]
struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    error: Option<Box<RawValue>>,
    id: Box<RawValue>,
}

/// A field that is there, even as `null` (`"result": null` is a result).
fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(field).map(Some)
}

pub(crate) async fn describe(target: &Target, method: Option<&str>) -> Result<Outcome, Failure> {
    let doc = if is_http(target) {
        http::discover(target).await?
    } else {
        let client = connect(target, Methods::new(), Reconnect::Never).await?;
        let doc = client.discover().await;
        client.close().await;
        doc.map_err(|e| call_failure(e, target))?
    };
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

pub(crate) async fn listen(
    target: &Target,
    topics: &[String],
    positioned: bool,
    since: Option<StreamPosition>,
) -> Result<Outcome, Failure> {
    if since.is_some() && topics.len() != 1 {
        let why = if topics.is_empty() { "--since needs a --topic" } else { "--since needs exactly one --topic" };
        return Err(Failure::new(Outcome::Usage, format!("{why} (a position belongs to one topic's stream)")));
    }
    let positioned = positioned || since.is_some();
    // Every notification, whatever its method, is printed; calls from the
    // server are refused (-32601): a listener offers no methods. When stdout
    // closes (a pipe to `head`), the listener stops. Positioned publications
    // are printed from their subscriptions instead: in order, once each.
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
            if positioned && *name == *PUBLICATION_METHOD {
                return Dispatch::Ready(None);
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
    tokio::pin!(interrupted);
    let client = connect(target, methods, Reconnect::default()).await?;
    let mut plain = Vec::new();
    let mut streams = Vec::new();
    for topic in topics {
        if positioned {
            let subscribing = client.subscribe_positioned(topic).since(since.clone());
            streams.push(subscribing.await.map_err(|e| call_failure(e, target))?);
        } else {
            plain.push(client.subscribe(topic).await.map_err(|e| call_failure(e, target))?);
        }
    }
    // The router above prints the notifications; plain subscriptions are read
    // here for what only they say: a re-subscribe that failed.
    let mut plain = futures_util::stream::select_all(plain);
    let mut streams = futures_util::stream::select_all(streams);
    let mut watch = Watch { url: &target.url, up: true, seen: connections(&client) };
    let mut state = client.watch_state();
    let now = *state.borrow_and_update();
    watch.look(now, connections(&client))?;
    loop {
        tokio::select! {
            () = &mut interrupted => break,
            () = stdout_closed.notified() => break,
            Some(item) = plain.next(), if !plain.is_empty() => {
                if let Err(e) = item {
                    eprintln!("switchboard: {e}");
                }
            }
            Some(item) = streams.next(), if !streams.is_empty() => match item {
                Ok(StreamItem::Publication(publication)) => {
                    if print_json(&publication).is_err() {
                        break;
                    }
                }
                // Recovered, Lost: what happened to the publications missed.
                Ok(other) => eprintln!("switchboard: {other}"),
                Err(e) => eprintln!("switchboard: {e}"),
            },
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *state.borrow_and_update();
                watch.look(now, connections(&client))?;
            }
        }
    }
    drop((plain, streams));
    client.close().await;
    Ok(Outcome::Success)
}

/// Sockets the client has opened so far.
fn connections(client: &Client) -> u64 {
    client.endpoints().iter().map(|e| e.connections).sum()
}

/// What `listen` last said of its connection, to say each drop and each
/// return once on stderr.
struct Watch<'a> {
    url: &'a str,
    up: bool,
    /// Connections opened when it was last seen up.
    seen: u64,
}

impl Watch<'_> {
    fn look(&mut self, now: State, connections: u64) -> Result<(), Failure> {
        match now {
            State::Ready => {
                // A new connection since the last look: a drop and a return
                // may both have happened between two looks.
                let new = connections > self.seen;
                if self.up && new {
                    self.lost();
                }
                if !self.up || new {
                    eprintln!("switchboard: reconnected to {}", self.url);
                }
                (self.up, self.seen) = (true, connections);
            }
            State::Closed => return Err(Failure::new(Outcome::Unreachable, "the connection was lost for good")),
            State::Connecting | State::Offline => {
                if self.up {
                    self.lost();
                    self.up = false;
                }
            }
        }
        Ok(())
    }

    fn lost(&self) {
        eprintln!("switchboard: connection to {} lost; reconnecting", self.url);
    }
}

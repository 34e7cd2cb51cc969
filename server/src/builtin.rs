//! Installs the built-in methods ([`Builtins`]): `rpc.discover`, and
//! `rpc.subscribe` / `rpc.unsubscribe` / `rpc.history` (topic membership
//! for push and topic streams, with a server hook that may deny a topic).
//! They hold the hub they are installed in (weakly: the hub holds them), not
//! a way back through the context.
//!
//! `rpc.subscribe` takes the topic as `["news"]` or `{"topic": "news"}`
//! (plain: answers `true`, then the plain notifications), or positioned as
//! `{"topic": "news", "positioned": true}` or `{"topic": "news", "since":
//! {"epoch": E, "offset": N}}` (answers `{"topic","epoch","offset","recovered"}`,
//! then `rpc.publication` notifications: see [`crate::streams`]). It is
//! denied with an error object of code [`code::SUBSCRIPTION_DENIED`] when
//! the hook denies it or the connection is in `max_subscriptions` topics
//! already. Either form is answered once the broker brings the topic's
//! publications to this server (at once with the in-memory broker; once
//! Redis confirmed the channel's subscription with the Redis broker), so
//! whatever is published after the answer reaches the subscriber; a broker
//! that cannot be reached answers -32003 "Broker unavailable"
//! ([`code::BROKER_UNAVAILABLE`]). `rpc.unsubscribe` takes the topic the
//! same two plain ways and answers whether the connection was a member.
//! `rpc.history` takes `{"topic", "since"?, "limit"?}`; the hook decides it
//! too.
//!
//! Over HTTP (a one-shot request, no connection to push to) `rpc.subscribe`
//! and `rpc.unsubscribe` answer [`code::PERSISTENT_CONNECTION_REQUIRED`]
//! (-32004); `rpc.discover` and `rpc.history` work as over a WebSocket.

use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use switchboard_shared::codec::encode;
use switchboard_shared::discover::{Document, ServiceInfo};
use switchboard_shared::methods::decode_params;
use switchboard_shared::stream::{HISTORY_METHOD, HistoryParams, SubscribeParams};
use switchboard_shared::{Context, Dispatch, ErrorObject, Id, Method, Methods, code};

use crate::config::subscriptions::{Builtins, SubscriptionDecision};
use crate::error::NotServed;
use crate::state::broker::BrokerError;
use crate::state::hub::Hub;
use crate::state::registry::Join;

pub(crate) const SUBSCRIBE: &str = "rpc.subscribe";
pub(crate) const UNSUBSCRIBE: &str = "rpc.unsubscribe";
pub(crate) const HISTORY: &str = HISTORY_METHOD;
pub(crate) const DISCOVER: &str = "rpc.discover";

/// The params of `rpc.unsubscribe` (and of a plain `rpc.subscribe`):
/// `[topic]` or `{"topic": topic}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct TopicParam {
    /// The topic's name.
    topic: String,
}

fn denied(reason: impl Into<String>) -> ErrorObject {
    ErrorObject::new(code::SUBSCRIPTION_DENIED, "Subscription denied").with_data(reason.into())
}

fn join_refused(join: Join) -> ErrorObject {
    match join {
        Join::LimitReached { limit } => denied(format!("this connection is in {limit} topics already")),
        Join::Ended | Join::Joined | Join::AlreadyMember => denied("the connection is closing"),
    }
}

/// The hub a built-in belongs to; gone only once the server is gone.
fn upgrade(hub: &Weak<Hub>) -> Result<Arc<Hub>, NotServed> {
    hub.upgrade().ok_or(NotServed)
}

/// Whether `cx` may subscribe to (or read the history of) `topic`.
fn admit(hub: &Hub, topic: &str, cx: &Context) -> Result<(), ErrorObject> {
    if topic.is_empty() {
        return Err(ErrorObject::invalid_params("the topic must not be empty"));
    }
    if let Some(filter) = &hub.policies().subscription_filter
        && let SubscriptionDecision::Deny(reason) = filter(cx, topic)
    {
        tracing::info!(target: "switchboard::server", topic, reason, "subscription denied");
        return Err(denied(reason));
    }
    Ok(())
}

/// `rpc.subscribe`'s params: an array is the plain form; an object is plain
/// unless it asks for positions.
fn subscribe_params(params: Option<&RawValue>) -> Result<SubscribeParams, ErrorObject> {
    match params.map(|p| p.get().trim_start()) {
        Some(text) if text.starts_with('{') => decode_params::<SubscribeParams>(params),
        _ => decode_params::<TopicParam>(params).map(|TopicParam { topic }| SubscribeParams {
            topic,
            since: None,
            positioned: false,
        }),
    }
}

fn answer(id: Option<Id>, outcome: Result<bool, ErrorObject>) -> Dispatch {
    Dispatch::Ready(encode_answer(id, outcome))
}

fn encode_answer(id: Option<Id>, outcome: Result<bool, ErrorObject>) -> Option<String> {
    id.map(|id| match outcome {
        Ok(value) => encode::success(&id, &value).unwrap_or_else(|e| encode::error(&id, &ErrorObject::internal(e))),
        Err(error) => encode::error(&id, &error),
    })
}

/// Topic membership needs a connection to push to: a one-shot request (an
/// HTTP POST) has none.
fn needs_connection(cx: &Context, method: &str) -> Result<(), ErrorObject> {
    if cx.peer().is_one_shot() {
        return Err(ErrorObject::persistent_connection_required(format!(
            "{method} needs a connection to push publications to; this request came over HTTP: use a WebSocket"
        )));
    }
    Ok(())
}

fn subscribe(hub: &Weak<Hub>, params: Option<&RawValue>, cx: &Context, id: Option<Id>) -> Dispatch {
    if let Err(e) = needs_connection(cx, SUBSCRIBE) {
        return answer(id, Err(e));
    }
    let hub = match upgrade(hub) {
        Ok(hub) => hub,
        Err(e) => return answer(id, Err(e.into())),
    };
    let params = match subscribe_params(params).and_then(|p| admit(&hub, &p.topic, cx).map(|()| p)) {
        Ok(params) => params,
        Err(e) => return answer(id, Err(e)),
    };
    if params.is_positioned() {
        return crate::streams::subscribe(&hub, params, cx.peer(), id, join_refused);
    }
    let joined = match hub.registry().join(cx.peer(), &params.topic, Some(hub.settings().max_subscriptions)) {
        joined @ (Join::Joined | Join::AlreadyMember) => joined,
        refused => return answer(id, Err(join_refused(refused))),
    };
    // Answered once the broker brings the topic's publications here (at once
    // with the in-memory broker), so whatever is published after the answer
    // reaches this subscriber.
    let mut watching = hub.broker().watching(&params.topic);
    let (topic, connection) = (params.topic, cx.connection_id());
    // The broker cannot bring the topic here: the subscribe did not happen.
    let failed = move |e: BrokerError| {
        tracing::warn!(target: "switchboard::server", topic, error = %e, "subscribe failed");
        if joined == Join::Joined {
            hub.registry().leave(connection, &topic);
        }
        Err(ErrorObject::from(e))
    };
    match (&mut watching).now_or_never() {
        Some(outcome) => answer(id, outcome.map(|()| true).or_else(failed)),
        None => {
            Dispatch::Pending(Box::pin(async move { encode_answer(id, watching.await.map(|()| true).or_else(failed)) }))
        }
    }
}

fn unsubscribe(hub: &Hub, TopicParam { topic }: TopicParam, cx: &Context) -> Result<bool, ErrorObject> {
    needs_connection(cx, UNSUBSCRIBE)?;
    Ok(hub.registry().leave(cx.connection_id(), &topic))
}

/// The JSON Schema of a stream position.
fn position_schema() -> serde_json::Value {
    json!({"type": "object", "required": ["epoch", "offset"], "properties": {
        "epoch": {"type": "string"}, "offset": {"type": "integer", "minimum": 0}}})
}

fn subscribe_method(hub: Weak<Hub>) -> Method {
    let mut method = Method::raw(move |params, cx, id| subscribe(&hub, params, cx, id)).described(
        "Joins this connection to a topic's publications: plain ([topic] or {topic}), or positioned \
         ({topic, positioned: true} or {topic, since: {epoch, offset}}: rpc.publication notifications, \
         resuming after `since` when the missed ones are all in history).",
    );
    method.schema_json(
        json!({"oneOf": [
            {"type": "array", "items": [{"type": "string"}], "minItems": 1, "maxItems": 1},
            {"type": "object", "required": ["topic"], "properties": {
                "topic": {"type": "string", "description": "The topic's name."},
                "positioned": {"type": "boolean", "description": "Receive rpc.publication notifications with offsets."},
                "since": position_schema()}}]}),
        json!({"oneOf": [
            {"type": "boolean", "description": "plain: true"},
            {"type": "object", "required": ["topic", "epoch", "offset", "recovered"], "properties": {
                "topic": {"type": "string"}, "epoch": {"type": "string"},
                "offset": {"type": "integer", "description": "The topic's latest offset when the subscription took effect."},
                "recovered": {"type": "boolean", "description": "Every publication after `since` follows (replayed)."}}}]}),
    );
    method
}

fn history_method(hub: Weak<Hub>) -> Method {
    let mut method = Method::new(move |params: HistoryParams, cx: Context| {
        let hub = upgrade(&hub);
        async move {
            let hub = hub?;
            admit(&hub, &params.topic, &cx)?;
            crate::streams::history(hub, params).await
        }
    })
    .described("Reads a topic's retained publications after `since` (oldest first), at most `limit`.");
    let publication = json!({"type": "object", "required": ["topic", "epoch", "offset", "method", "params"]});
    method.schema_json(
        json!({"type": "object", "required": ["topic"], "properties": {
            "topic": {"type": "string"}, "since": position_schema(), "limit": {"type": "integer", "minimum": 0}}}),
        json!({"type": "object", "required": ["epoch", "offset", "publications"], "properties": {
            "epoch": {"type": "string"}, "offset": {"type": "integer"},
            "publications": {"type": "array", "items": publication}}}),
    );
    method
}

/// Adds the chosen built-ins; a method the user registered under the same
/// name is kept.
pub(crate) fn install(methods: &mut Methods, builtins: Builtins, service: &ServiceInfo, hub: &Weak<Hub>) {
    if builtins == Builtins::None {
        return;
    }
    let on_unsubscribe = hub.clone();
    let unsubscribe = move |topic: TopicParam, cx: Context| unsubscribe(&*upgrade(&on_unsubscribe)?, topic, &cx);
    let mut unsubscribe =
        Method::sync(unsubscribe).described("Leaves a topic; answers whether this connection was in it.");
    unsubscribe.schema::<TopicParam, bool>();
    for (name, method) in
        [(SUBSCRIBE, subscribe_method(hub.clone())), (UNSUBSCRIBE, unsubscribe), (HISTORY, history_method(hub.clone()))]
    {
        if !methods.contains(name) {
            methods.insert(name, method);
        }
    }
    if builtins == Builtins::All && !methods.contains(DISCOVER) {
        install_discover(methods, service);
    }
}

/// Registers `rpc.discover`, answering with the OpenRPC document of every
/// method registered at build time (itself included), encoded once.
fn install_discover(methods: &mut Methods, service: &ServiceInfo) {
    let describe = |m: Method| {
        let mut m =
            m.described("Returns the OpenRPC 1.3 document of this service's methods, client methods and topics.");
        m.schema_json(
            serde_json::json!({"type": "null"}),
            serde_json::json!({"type": "object", "description": "an OpenRPC 1.3 document", "required": ["openrpc", "info", "methods"]}),
        );
        m
    };
    // Registered first so the document lists it too.
    methods.insert(DISCOVER, describe(Method::sync(|(): (), _cx: Context| Ok::<_, ErrorObject>(()))));
    let document = Document::build(service, methods);
    let encoded: Arc<RawValue> = match serde_json::value::to_raw_value(&document) {
        Ok(raw) => Arc::from(raw),
        Err(e) => {
            tracing::error!(target: "switchboard::server", error = %e, "rpc.discover document not encodable");
            return;
        }
    };
    let answer = move |(): (), _cx: Context| Ok::<_, ErrorObject>(SharedJson(Arc::clone(&encoded)));
    methods.insert(DISCOVER, describe(Method::sync(answer)));
}

/// Pre-encoded JSON shared by every answer.
struct SharedJson(Arc<RawValue>);

impl serde::Serialize for SharedJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

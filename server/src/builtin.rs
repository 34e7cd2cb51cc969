//! Installs the built-in methods ([`Builtins`]): `rpc.discover`, and
//! `rpc.subscribe` / `rpc.unsubscribe` (topic membership for push, with a
//! server hook that may deny a subscription). They hold the hub they are
//! installed in (weakly: the hub holds them), not a way back through the context.
//!
//! Both topic methods take the topic as `["news"]` or `{"topic": "news"}`.
//! `rpc.subscribe` answers `true`, or an error object with code
//! [`code::SUBSCRIPTION_DENIED`] when the hook denies it or the connection is
//! in `max_subscriptions` topics already. `rpc.unsubscribe` answers whether
//! the connection was a member.

use std::sync::{Arc, Weak};

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_shared::discover::{Document, ServiceInfo};
use switchboard_shared::{Context, ErrorObject, Method, Methods, code};

use crate::config::subscriptions::{Builtins, SubscriptionDecision};
use crate::error::NotServed;
use crate::state::hub::Hub;
use crate::state::registry::Join;

pub(crate) const SUBSCRIBE: &str = "rpc.subscribe";
pub(crate) const UNSUBSCRIBE: &str = "rpc.unsubscribe";
pub(crate) const DISCOVER: &str = "rpc.discover";

/// The params of both methods: `[topic]` or `{"topic": topic}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct TopicParam {
    /// The topic's name.
    topic: String,
}

fn denied(reason: impl Into<String>) -> ErrorObject {
    ErrorObject::new(code::SUBSCRIPTION_DENIED, "Subscription denied").with_data(reason.into())
}

/// The hub a built-in belongs to; gone only once the server is gone.
fn upgrade(hub: &Weak<Hub>) -> Result<Arc<Hub>, NotServed> {
    hub.upgrade().ok_or(NotServed)
}

fn subscribe(hub: &Hub, TopicParam { topic }: TopicParam, cx: &Context) -> Result<bool, ErrorObject> {
    if topic.is_empty() {
        return Err(ErrorObject::invalid_params("the topic must not be empty"));
    }
    if let Some(filter) = &hub.policies().subscription_filter {
        if let SubscriptionDecision::Deny(reason) = filter(cx, &topic) {
            tracing::info!(target: "switchboard::server", topic, reason, "subscription denied");
            return Err(denied(reason));
        }
    }
    match hub.registry().join(cx.peer(), &topic, Some(hub.settings().max_subscriptions)) {
        Join::Joined | Join::AlreadyMember => Ok(true),
        Join::LimitReached { limit } => Err(denied(format!("this connection is in {limit} topics already"))),
        Join::Ended => Err(denied("the connection is closing")),
    }
}

fn unsubscribe(hub: &Hub, TopicParam { topic }: TopicParam, cx: &Context) -> Result<bool, ErrorObject> {
    Ok(hub.registry().leave(cx.connection_id(), &topic))
}

/// Adds the chosen built-ins; a method the user registered under the same
/// name is kept.
pub(crate) fn install(methods: &mut Methods, builtins: Builtins, service: &ServiceInfo, hub: &Weak<Hub>) {
    match builtins {
        Builtins::None => {}
        Builtins::All => {
            let (on_subscribe, on_unsubscribe) = (hub.clone(), hub.clone());
            let subscribe = move |topic: TopicParam, cx: Context| subscribe(&*upgrade(&on_subscribe)?, topic, &cx);
            let unsubscribe =
                move |topic: TopicParam, cx: Context| unsubscribe(&*upgrade(&on_unsubscribe)?, topic, &cx);
            for (name, method) in [
                (SUBSCRIBE, Method::sync(subscribe).described("Joins this connection to a topic's publications.")),
                (
                    UNSUBSCRIBE,
                    Method::sync(unsubscribe).described("Leaves a topic; answers whether this connection was in it."),
                ),
            ]
            .map(|(name, mut method)| {
                method.schema::<TopicParam, bool>();
                (name, method)
            }) {
                if !methods.contains(name) {
                    methods.insert(name, method);
                }
            }
            if !methods.contains(DISCOVER) {
                install_discover(methods, service);
            }
        }
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

//! Relays: a method on one side that forwards its calls to another server
//! through a [`Client`] (jayson's relay).
//!
//! The caller's params are forwarded as they came (raw JSON, never decoded);
//! the upstream's result or error object comes back unchanged. When the
//! upstream cannot be asked or does not answer (offline, timeout,
//! disconnected, an invalid reply), the caller gets an error object with
//! code [`UPSTREAM_FAILED`] whose `data` says what happened. A notification
//! to a relayed method is forwarded as a notification.
//!
//! ```no_run
//! use switchboard_client::{Client, relay};
//! use switchboard_shared::Methods;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let upstream = Client::connect("ws://10.0.0.7:9000/rpc").await?;
//! let mut methods = Methods::new();
//! // `add` on our side answers whatever `add` answers upstream.
//! relay::relay(&mut methods, "add", &upstream);
//! // `legacy.sum` on our side calls `add` upstream.
//! relay::relay_as(&mut methods, "legacy.sum", "add", &upstream);
//! // ... hand `methods` to a server (or to another client's builder).
//! # Ok(()) }
//! ```

use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_shared::codec::encode;
use switchboard_shared::{Context, Dispatch, ErrorObject, Id, Method, Methods};

use crate::call::CallOptions;
use crate::{Client, Error};

/// The error code a relay answers with when the upstream could not be asked
/// or gave no usable answer (as opposed to an error the upstream returned,
/// which is passed on unchanged). In the server-error range the spec
/// reserves for implementations.
pub const UPSTREAM_FAILED: i64 = -32010;

/// Registers `name` on `methods` so that its calls are forwarded to the
/// method of the same name on `client`'s server. Returns the method so that
/// discovery details can be added.
pub fn relay<'m>(methods: &'m mut Methods, name: &str, client: &Client) -> &'m mut Method {
    relay_as(methods, name, name, client)
}

/// Registers `name` on `methods` so that its calls are forwarded to
/// `upstream_method` on `client`'s server.
pub fn relay_as<'m>(methods: &'m mut Methods, name: &str, upstream_method: &str, client: &Client) -> &'m mut Method {
    let method = relay_method(upstream_method, client.clone()).described(format!("relayed to {upstream_method}"));
    methods.insert(name, method)
}

/// The relaying method on its own, to register under any name.
pub fn relay_method(upstream_method: &str, client: Client) -> Method {
    let upstream: Arc<str> = Arc::from(upstream_method);
    Method::raw(move |params: Option<&RawValue>, _cx: &Context, id: Option<Id>| {
        let params: Option<Box<RawValue>> = params.map(ToOwned::to_owned);
        let client = client.clone();
        let upstream = Arc::clone(&upstream);
        Dispatch::Pending(Box::pin(async move {
            let Some(id) = id else {
                if let Err(error) = client.notify(&upstream, &params).await {
                    tracing::debug!(method = %upstream, %error, "relayed notification not delivered");
                }
                return None;
            };
            Some(match client.inner.request(&upstream, &params, CallOptions::default()).await {
                Ok(result) => encode::success(&id, &result)
                    .unwrap_or_else(|e| encode::error(&id, &ErrorObject::internal(format_args!("relay: {e}")))),
                Err(Error::Rpc(error)) => encode::error(&id, &error),
                Err(other) => encode::error(&id, &upstream_failed(&upstream, &other)),
            })
        }))
    })
}

fn upstream_failed(method: &str, error: &Error) -> ErrorObject {
    ErrorObject::new(UPSTREAM_FAILED, "Upstream failed")
        .with_data(serde_json::json!({ "method": method, "reason": error.to_string() }))
}

//! The JSON-RPC error object and the spec's reserved error codes.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The error codes JSON-RPC 2.0 reserves, with their standard messages.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error (also: a handler panicked).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Server error range used by Switchboard: the server is shutting down.
    pub const SHUTTING_DOWN: i64 = -32000;
    /// Server error range used by Switchboard: a subscription was refused.
    pub const SUBSCRIPTION_DENIED: i64 = -32001;
    /// Server error range used by Switchboard: the connection already has
    /// as many requests running and parked as its limits allow; `data` names
    /// the limit. Retry after some of your calls have been answered.
    pub const SERVER_BUSY: i64 = -32002;
    /// Server error range used by Switchboard: the server's broker (Redis,
    /// for several hubs acting as one) cannot be reached, so the topic
    /// operation (publish, subscribe, history) was not done; `data` says
    /// why. Retry later: the server reconnects by itself.
    pub const BROKER_UNAVAILABLE: i64 = -32003;
    /// The request was cancelled by its caller (`$/cancelRequest`, the
    /// Language Server Protocol's code and convention).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// Server error range used by Switchboard: the request came over a
    /// one-shot transport (an HTTP POST), but answering it needs a persistent
    /// connection: a subscription, or a handler that calls its caller back
    /// or pushes to it. `data` says what needed it. Use a WebSocket.
    pub const PERSISTENT_CONNECTION_REQUIRED: i64 = -32004;

    /// The standard message for a reserved code, if it has one.
    pub fn message(code: i64) -> Option<&'static str> {
        Some(match code {
            PARSE_ERROR => "Parse error",
            INVALID_REQUEST => "Invalid Request",
            METHOD_NOT_FOUND => "Method not found",
            INVALID_PARAMS => "Invalid params",
            INTERNAL_ERROR => "Internal error",
            SHUTTING_DOWN => "Server shutting down",
            SERVER_BUSY => "Server busy",
            BROKER_UNAVAILABLE => "Broker unavailable",
            REQUEST_CANCELLED => "Request cancelled",
            PERSISTENT_CONNECTION_REQUIRED => "Persistent connection required",
            _ => return None,
        })
    }
}

/// A JSON-RPC error object: `{"code": .., "message": .., "data": ..}`.
///
/// Handlers return it (or anything that converts into it) to answer with an
/// application error; callers receive it inside `Error::Rpc`.
///
/// ```
/// use switchboard_shared::ErrorObject;
/// let e = ErrorObject::new(42, "out of stock").with_data(serde_json::json!({"sku": 7}));
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"code":42,"message":"out of stock","data":{"sku":7}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error code; -32768..=-32000 are reserved by the spec.
    pub code: i64,
    /// A short description of the error.
    pub message: Cow<'static, str>,
    /// Optional detail about the error. `Some(Value::Null)` is a `"data": null`
    /// that was sent, kept apart from no `data` member at all.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub data: Option<Value>,
}

/// A member that is present is `Some`, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl ErrorObject {
    /// An application error with any code and message.
    pub fn new(code: i64, message: impl Into<Cow<'static, str>>) -> Self {
        ErrorObject { code, message: message.into(), data: None }
    }

    /// A reserved error with its standard message.
    pub fn standard(code: i64) -> Self {
        ErrorObject::new(code, code::message(code).unwrap_or("Server error"))
    }

    /// Attaches `data` (anything serializable).
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// -32700, for a frame that is not valid JSON.
    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::standard(code::PARSE_ERROR).with_data(detail.to_string())
    }

    /// -32600, saying which rule the request broke.
    pub fn invalid_request(detail: impl fmt::Display) -> Self {
        Self::standard(code::INVALID_REQUEST).with_data(detail.to_string())
    }

    /// -32601 for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::standard(code::METHOD_NOT_FOUND).with_data(format!("no method named {method:?}"))
    }

    /// -32602, saying why the params did not fit.
    pub fn invalid_params(detail: impl fmt::Display) -> Self {
        Self::standard(code::INVALID_PARAMS).with_data(detail.to_string())
    }

    /// -32603.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::standard(code::INTERNAL_ERROR).with_data(detail.to_string())
    }

    /// -32000: the server is shutting down and takes no new requests.
    pub fn shutting_down() -> Self {
        Self::standard(code::SHUTTING_DOWN)
    }

    /// -32002: a connection limit refused the request; `detail` names it.
    pub fn server_busy(detail: impl fmt::Display) -> Self {
        Self::standard(code::SERVER_BUSY).with_data(detail.to_string())
    }

    /// -32003: the server's broker is unreachable; `detail` says why.
    pub fn broker_unavailable(detail: impl fmt::Display) -> Self {
        Self::standard(code::BROKER_UNAVAILABLE).with_data(detail.to_string())
    }

    /// -32800: the caller cancelled the request.
    pub fn request_cancelled() -> Self {
        Self::standard(code::REQUEST_CANCELLED)
    }

    /// -32004: answering needs a persistent connection, and the request came
    /// over a one-shot transport (HTTP POST); `detail` says what needed it.
    pub fn persistent_connection_required(detail: impl fmt::Display) -> Self {
        Self::standard(code::PERSISTENT_CONNECTION_REQUIRED).with_data(detail.to_string())
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(data) = &self.data {
            write!(f, ": {data}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorObject {}

impl From<serde_json::Error> for ErrorObject {
    /// A result that cannot be encoded is an internal error.
    fn from(e: serde_json::Error) -> Self {
        ErrorObject::internal(e)
    }
}

//! The error a call to the other side ends with.

use std::time::Duration;

use crate::codec::{EncodeError, ErrorObject};

/// Why a call did not produce a result. Every pending call ends with a result
/// or exactly one of these; none hangs.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No reply arrived within the call's timeout; the call was forgotten, and
    /// a late reply to it is counted and dropped. Retry or raise the timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection ended while the call was pending. The call may or may
    /// not have run on the other side: it is never resent automatically.
    #[error("the connection closed before the reply arrived")]
    Disconnected,
    /// There was no open connection when the call was made. Wait for the
    /// client to be ready, or ask the call to wait for readiness.
    #[error("not connected")]
    Offline,
    /// The other side answered with an error object.
    #[error("the peer answered with an error: {0}")]
    Rpc(ErrorObject),
    /// The reply broke the spec (both result and error, neither, malformed error).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The result did not fit the type the caller asked for.
    #[error("the result did not decode into the requested type: {0}")]
    Decode(String),
    /// The params could not be encoded.
    #[error("the params could not be encoded: {0}")]
    Encode(String),
    /// The connection failed (connect, handshake, TLS or I/O error).
    #[error("transport error: {0}")]
    Transport(String),
    /// The handler runs for a request that came over a one-shot transport (an
    /// HTTP POST): there is no connection to call the caller back, notify it
    /// or push to it. A handler that passes it on with `?` answers
    /// [`code::PERSISTENT_CONNECTION_REQUIRED`](crate::code::PERSISTENT_CONNECTION_REQUIRED).
    #[error("the request came over a one-shot transport (HTTP): there is no connection to call back or push on")]
    OneShot,
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::Encode(e.to_string())
    }
}

impl Error {
    /// The server's error object, when the error is `Rpc`.
    pub fn rpc(&self) -> Option<&ErrorObject> {
        match self {
            Error::Rpc(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for ErrorObject {
    /// Lets a handler pass on the failure of a call it made with `?`: the
    /// other side's error object as it is (code, message, data kept),
    /// [`Error::OneShot`] as -32004 "Persistent connection required", any
    /// other failure as -32603 with the failure in `data`.
    ///
    /// ```
    /// use switchboard_shared::{Error, ErrorObject};
    /// let remote = ErrorObject::new(7, "no such user");
    /// assert_eq!(ErrorObject::from(Error::Rpc(remote.clone())), remote);
    /// assert_eq!(ErrorObject::from(Error::Disconnected).code, -32603);
    /// assert_eq!(ErrorObject::from(Error::OneShot).code, switchboard_shared::code::PERSISTENT_CONNECTION_REQUIRED);
    /// ```
    fn from(error: Error) -> Self {
        match error {
            Error::Rpc(object) => object,
            Error::OneShot => ErrorObject::persistent_connection_required(Error::OneShot),
            other => ErrorObject::internal(other),
        }
    }
}

//! The errors of the server's public API. Each says what went wrong and what
//! to do about it.

use std::io;

use switchboard_shared::codec::EncodeError;
use uuid::Uuid;

use crate::state::broker::BrokerError;
use crate::state::cluster::{ClusterError, NodeId};

/// Why the server could not start listening.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Binding the address failed.
    #[error(
        "could not listen on {addr}: {source} (is another process using the port, and is the address one of this host's?)"
    )]
    Bind {
        /// The address as it was given.
        addr: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The bound listener could not report its address (the socket is unusable).
    #[error("the listener has no local address: {0}; pass a bound, listening socket")]
    LocalAddr(#[source] io::Error),
}

/// Why a call from the server to a client produced no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No live connection has this id: it has closed, or the id is wrong
    /// (`ServerHandle::connections` lists the live ones). With a cluster, no
    /// hub serves it: the directory has no entry (the connection ended, or
    /// its hub died and its entries expired), or its hub no longer has it.
    #[error("no live connection {0}")]
    UnknownConnection(Uuid),
    /// The connection is on another hub of the cluster, which does not
    /// listen any more (killed, or cut off from Redis) or lost track of the
    /// call: the call may or may not have run. Its entries expire within the
    /// cluster's TTL, after which the connection is unknown.
    #[error("connection {connection} is on hub {node}, which is unreachable")]
    NodeUnreachable {
        /// The connection called.
        connection: Uuid,
        /// The hub the directory named.
        node: NodeId,
    },
    /// The connection is not on this hub, and the cluster could not be
    /// asked (Redis unreachable...): try again later.
    #[error(transparent)]
    Cluster(ClusterError),
    /// The call itself failed: timeout, disconnect, the client's error object...
    #[error(transparent)]
    Call(#[from] switchboard_shared::Error),
}

impl From<ClusterError> for CallError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::UnknownConnection(id) => CallError::UnknownConnection(id),
            ClusterError::NodeUnreachable { connection, node } => CallError::NodeUnreachable { connection, node },
            other => CallError::Cluster(other),
        }
    }
}

impl CallError {
    /// The client's error object, when it answered with one.
    pub fn rpc(&self) -> Option<&switchboard_shared::ErrorObject> {
        match self {
            CallError::Call(e) => e.rpc(),
            CallError::UnknownConnection(_) | CallError::NodeUnreachable { .. } | CallError::Cluster(_) => None,
        }
    }
}

/// Why a push (notification, broadcast, publish) was not queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No live connection has this id: it has closed, or the id is wrong.
    #[error("no live connection {0}")]
    UnknownConnection(Uuid),
    /// The params could not be encoded; pass something that serializes to a
    /// JSON array or object (or `()` for none).
    #[error("the notification could not be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// The connection is closing, or was just cut off as a slow consumer
    /// because its outbound queue was full: the frame was not queued.
    #[error("connection {0} is closing (or was cut off as a slow consumer); the frame was not queued")]
    Disconnected(Uuid),
    /// The broker could not publish (see [`BrokerError`]).
    #[error(transparent)]
    Broker(BrokerError),
}

impl From<BrokerError> for DeliveryError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Encode(e) => DeliveryError::Encode(e),
            other => DeliveryError::Broker(other),
        }
    }
}

/// A server-only operation was asked of a connection that no Switchboard
/// server serves (its context carries no `ServerHandle`, e.g. a client-side
/// handler). Serve the connection with `Server::listen`, `serve_stream`
/// or `serve_websocket`.
///
/// Converts into a -32603 error object, so a handler can use `?` on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this connection is not served by a Switchboard server")]
pub struct NotServed;

impl From<NotServed> for switchboard_shared::ErrorObject {
    fn from(e: NotServed) -> Self {
        switchboard_shared::ErrorObject::internal(e)
    }
}

impl From<DeliveryError> for switchboard_shared::ErrorObject {
    /// A push that failed inside a handler answers -32603 with the reason as
    /// `data`; a publish the broker could not make (unreachable) answers
    /// -32003 "Broker unavailable" ([`code::BROKER_UNAVAILABLE`](switchboard_shared::code::BROKER_UNAVAILABLE)).
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Broker(e) => e.into(),
            other => switchboard_shared::ErrorObject::internal(other),
        }
    }
}

impl From<BrokerError> for switchboard_shared::ErrorObject {
    /// -32003 "Broker unavailable" for an unreachable broker, -32602 for a
    /// publication that could not be encoded; the reason as `data`.
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Unavailable(_) => switchboard_shared::ErrorObject::broker_unavailable(e),
            BrokerError::Encode(_) => switchboard_shared::ErrorObject::invalid_params(e),
        }
    }
}

impl From<CallError> for switchboard_shared::ErrorObject {
    /// A call to a client that failed inside a handler answers -32603 with the reason as `data`.
    fn from(e: CallError) -> Self {
        switchboard_shared::ErrorObject::internal(e)
    }
}

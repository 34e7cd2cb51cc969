//! The bottom layer: what a server is configured with. Settings, limits and
//! policies with their documented defaults, the Origin check, CORS, TLS, the
//! authenticator's types, the subscription settings, the topic-stream settings and the hook types.
//! Nothing here imports another layer.

pub(crate) mod auth;
pub(crate) mod cors;
pub(crate) mod hooks;
pub(crate) mod listen;
pub(crate) mod origin;
pub(crate) mod settings;
pub(crate) mod subscriptions;
pub(crate) mod telemetry;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod topics;

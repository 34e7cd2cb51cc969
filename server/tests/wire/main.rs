//! Wire-level tests of the server: a plain tokio-tungstenite client over
//! real loopback sockets, so the server is checked independently of
//! Switchboard's own client. Every wait is on an event (a frame, a close, a
//! hook firing); timeouts are only hang guards.

mod auth;
mod batch;
mod common;
mod expiry;
mod lifecycle;
mod limits;
mod origin;
mod push;
mod rate_limit;
mod slow_consumers;
mod spec;
mod streams;
#[path = "../support/mod.rs"]
mod support;

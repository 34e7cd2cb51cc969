//! The client against hand-written raw tokio-tungstenite servers on
//! loopback: every behaviour of the client, including what a well-behaved
//! server never does (unknown ids, malformed replies, crashes, restarts,
//! silence).
//!
//! Tests wait on events (a reply, a state change, a frame seen by the
//! server), never on sleeps; timeouts appear only as the behaviour under
//! test (a few tens of milliseconds against a server that never answers)
//! or as hang guards.

mod calls;
mod connection_life;
mod failover;
mod misbehaving;
mod positioned;
mod relay;
mod server_to_client;
mod support;

//! Answering one message without a connection: the method table run
//! directly, for transports where each request carries its own answer (an
//! HTTP POST body in, the response body out).
//!
//! Terms:
//! - a **one-shot** request has no connection behind it: its handlers get a
//!   [`Context`] over a [`PeerHandle::one_shot`](crate::PeerHandle::one_shot),
//!   on which calling back, notifying and pushing fail with
//!   [`Error::OneShot`](crate::Error::OneShot);
//! - the **answer** is what the WebSocket engine would have written back for
//!   the same frame: one response, an array of responses for a batch (in the
//!   batch's order), or nothing when every entry was a notification.
//!
//! The rules are the engine's: JSON-RPC 1.0 is read, and answered in 1.0,
//! only when the peer's configuration accepts it (`PeerConfig::jsonrpc1`); a
//! frame that is not JSON gets -32700 (id `null`), an empty batch -32600; an
//! invalid entry gets its own -32600; a batch longer than `max_batch_len`
//! runs nothing and each of its requests is answered -32600 with its own id;
//! a handler that panics is answered -32603 with the request's id. Responses
//! in the body (there is no call of ours they could answer) are ignored. The
//! entries of a batch run concurrently. The engine's per-connection flow
//! control (in flight, parked, busy) does
//! not apply: each request is bounded by its transport (one body, one batch).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Instant;

use futures_util::FutureExt;

use crate::codec::{self, Entry, ErrorObject, Frame, Id, Invalid, InvalidKind, Message, Version, encode};
use crate::context::Context;
use crate::methods::{Dispatch, panicked};
use crate::peer::Jsonrpc1;

/// An answer still being computed by a handler that has to wait.
type Waiting = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// Answers `text` (one JSON-RPC frame: a message or a batch) by running its
/// requests and notifications against the methods of `cx`'s peer, with `cx`
/// as their context. `None` when there is nothing to answer (notifications
/// only). See the [module docs](self) for the rules.
///
/// ```
/// use std::sync::Arc;
/// use switchboard_shared::{ConnectionInfo, Context, ErrorObject, Methods, PeerConfig, PeerHandle, oneshot};
///
/// # tokio_test_block_on(async {
/// let mut methods = Methods::new();
/// methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
/// let peer = PeerHandle::one_shot(ConnectionInfo::new(), Arc::new(PeerConfig::default()), Arc::new(methods));
/// let answer = oneshot::answer(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#, &Context::new(peer), 100).await;
/// assert_eq!(answer.as_deref(), Some(r#"{"jsonrpc":"2.0","result":3,"id":1}"#));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn answer(text: &str, cx: &Context, max_batch_len: usize) -> Option<String> {
    // As on a connection: 1.0 is read (and answered in 1.0) only when the
    // peer's configuration accepts it.
    let decoded = match cx.peer().config().jsonrpc1 {
        Jsonrpc1::Reject => codec::decode_frame(text).map(|frame| (frame, Version::V2)),
        _ => codec::decode_frame_compat(text),
    };
    let (frame, version) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => return Some(encode::error(&Id::Null, &error)),
    };
    match frame {
        Frame::Single(entry) => {
            let answer = match run(entry, cx) {
                Outcome::Nothing => None,
                Outcome::Ready(answer) => answer,
                Outcome::Waiting(future) => future.await,
            };
            match version {
                Version::V1 => answer.map(|answer| codec::v1::answer(&answer)),
                _ => answer,
            }
        }
        Frame::Batch(entries) if entries.len() > max_batch_len => {
            let error = ErrorObject::invalid_request(format!(
                "batch of {} entries exceeds the limit of {max_batch_len}",
                entries.len()
            ));
            let answers: Vec<String> = entries.into_iter().filter_map(|entry| refuse(entry, &error)).collect();
            (!answers.is_empty()).then(|| encode::batch(&answers))
        }
        Frame::Batch(entries) => {
            // Started in order (the ready ones answered at once), awaited together.
            let outcomes: Vec<Waiting> = entries
                .into_iter()
                .filter_map(|entry| match run(entry, cx) {
                    Outcome::Nothing => None,
                    Outcome::Ready(answer) => Some(Box::pin(std::future::ready(answer)) as Waiting),
                    Outcome::Waiting(future) => Some(future),
                })
                .collect();
            let answers: Vec<String> = futures_util::future::join_all(outcomes).await.into_iter().flatten().collect();
            (!answers.is_empty()).then(|| encode::batch(&answers))
        }
    }
}

/// What running one entry gave.
enum Outcome {
    /// Not a request: a response, which nothing here waits for.
    Nothing,
    /// Answered at once (`None` for a notification).
    Ready(Option<String>),
    /// A handler that has to wait.
    Waiting(Waiting),
}

/// Runs one entry: its handler is invoked now (a sync handler answers at
/// once), an async one is returned to be awaited.
fn run(entry: Entry<'_>, cx: &Context) -> Outcome {
    let (method, params, id) = match entry {
        Ok(Message::Request(request)) => (request.method, request.params, Some(request.id)),
        Ok(Message::Notification(note)) => (note.method, note.params, None),
        Ok(Message::Response(_)) | Err(Invalid { kind: InvalidKind::Response, .. }) => {
            tracing::debug!("a response in a one-shot request ignored: no call of ours waits for it");
            return Outcome::Nothing;
        }
        Err(Invalid { id, error, .. }) => return Outcome::Ready(Some(encode::error(&id, &error))),
    };
    let started = Instant::now();
    let audit = tracing::enabled!(target: "switchboard::call", tracing::Level::DEBUG);
    let method = method.into_owned();
    match cx.peer().methods().dispatch(&method, params, cx, id.clone()) {
        Dispatch::Ready(answer) => {
            if audit {
                audit_call(&method, id.as_ref(), started, answer.as_deref());
            }
            Outcome::Ready(answer)
        }
        Dispatch::Pending(future) => Outcome::Waiting(Box::pin(async move {
            let answer = AssertUnwindSafe(future).catch_unwind().await.unwrap_or_else(|_| {
                tracing::error!(method, "handler panicked");
                panicked(id.clone())
            });
            if audit {
                audit_call(&method, id.as_ref(), started, answer.as_deref());
            }
            answer
        })),
    }
}

/// The answer to an entry of a batch that is not run: requests get `error`,
/// invalid entries their own error, notifications and responses nothing.
fn refuse(entry: Entry<'_>, error: &ErrorObject) -> Option<String> {
    match entry {
        Ok(Message::Request(request)) => Some(encode::error(&request.id, error)),
        Ok(Message::Notification(_) | Message::Response(_)) | Err(Invalid { kind: InvalidKind::Response, .. }) => None,
        Err(Invalid { id, error, .. }) => Some(encode::error(&id, &error)),
    }
}

/// The audit line of one call, as the engine writes it.
fn audit_call(method: &str, id: Option<&Id>, started: Instant, answer: Option<&str>) {
    let outcome = match answer {
        None => "notification",
        Some(frame) if frame.starts_with(r#"{"jsonrpc":"2.0","error""#) => "error",
        Some(_) => "ok",
    };
    tracing::debug!(
        target: "switchboard::call",
        method,
        id = %id.map(ToString::to_string).unwrap_or_default(),
        duration_us = started.elapsed().as_micros() as u64,
        outcome,
        transport = "one-shot",
        "call"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{ConnectionInfo, Error, Methods, PeerConfig, PeerHandle};

    fn context() -> Context {
        let mut methods = Methods::new();
        methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
        methods.register("later", |(n,): (i64,), _cx: Context| async move {
            tokio::task::yield_now().await;
            Ok::<_, ErrorObject>(n)
        });
        methods.register("call_back", |(): (), cx: Context| async move {
            let name: String = cx.peer().call("name", ()).await?;
            Ok::<_, ErrorObject>(name)
        });
        methods.register("boom", |(): (), _cx: Context| async move {
            tokio::task::yield_now().await;
            if true {
                panic!("boom");
            }
            Ok::<_, ErrorObject>(())
        });
        let peer = PeerHandle::one_shot(ConnectionInfo::new(), Arc::new(PeerConfig::default()), Arc::new(methods));
        Context::new(peer)
    }

    #[tokio::test]
    async fn json_rpc_1_0_is_answered_in_1_0_only_when_the_config_accepts_it() {
        let one = r#"{"method":"add","params":[1,2],"id":7}"#;
        let refused = answer(one, &context(), 10).await.unwrap();
        assert!(refused.starts_with(r#"{"jsonrpc":"2.0","error":{"code":-32600"#), "{refused}");

        let mut methods = Methods::new();
        methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
        let config = PeerConfig { jsonrpc1: Jsonrpc1::Accept, ..PeerConfig::default() };
        let peer = PeerHandle::one_shot(ConnectionInfo::new(), Arc::new(config), Arc::new(methods));
        let cx = Context::new(peer);
        assert_eq!(answer(one, &cx, 10).await.as_deref(), Some(r#"{"result":3,"error":null,"id":7}"#));
        let wrong = answer(r#"{"method":"add","params":["x"],"id":8}"#, &cx, 10).await.unwrap();
        assert!(wrong.starts_with(r#"{"result":null,"error":{"code":-32602"#), "{wrong}");
        assert_eq!(answer(r#"{"method":"add","params":[1,2],"id":null}"#, &cx, 10).await, None, "a 1.0 notification");
        let two = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":9}"#;
        assert_eq!(answer(two, &cx, 10).await.as_deref(), Some(r#"{"jsonrpc":"2.0","result":3,"id":9}"#));
    }

    #[tokio::test]
    async fn a_batch_is_answered_in_its_order_without_its_notifications() {
        let body = r#"[{"jsonrpc":"2.0","method":"later","params":[1],"id":"a"},
                      {"jsonrpc":"2.0","method":"add","params":[2,3]},
                      {"jsonrpc":"2.0","method":"add","params":[2,3],"id":2},
                      {"jsonrpc":"2.0","method":"nope","id":3},
                      {"jsonrpc":"2.0","result":1,"id":9}]"#;
        let answer = answer(body, &context(), 10).await.unwrap();
        let answers: Vec<serde_json::Value> = serde_json::from_str(&answer).unwrap();
        let ids: Vec<_> = answers.iter().map(|a| a["id"].clone()).collect();
        assert_eq!(ids, [serde_json::json!("a"), serde_json::json!(2), serde_json::json!(3)]);
        assert_eq!(answers[0]["result"], 1);
        assert_eq!(answers[1]["result"], 5);
        assert_eq!(answers[2]["error"]["code"], -32601);
    }

    #[tokio::test]
    async fn notifications_only_get_no_answer() {
        let cx = context();
        assert_eq!(answer(r#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#, &cx, 10).await, None);
        assert_eq!(answer(r#"[{"jsonrpc":"2.0","method":"later","params":[1]}]"#, &cx, 10).await, None);
    }

    #[tokio::test]
    async fn broken_frames_get_the_spec_errors() {
        let cx = context();
        let parse = answer("{not json", &cx, 10).await.unwrap();
        assert!(parse.contains("-32700") && parse.contains(r#""id":null"#), "{parse}");
        let empty = answer("[]", &cx, 10).await.unwrap();
        assert!(empty.contains("-32600"), "{empty}");
        let invalid = answer(r#"{"jsonrpc":"2.0","method":5,"id":4}"#, &cx, 10).await.unwrap();
        assert!(invalid.contains("-32600") && invalid.contains(r#""id":4"#), "{invalid}");
    }

    #[tokio::test]
    async fn a_batch_over_the_limit_answers_each_request_with_its_own_id() {
        let body = r#"[{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1},
                      {"jsonrpc":"2.0","method":"add","params":[1,1]},
                      {"jsonrpc":"2.0","method":"add","params":[1,1],"id":2}]"#;
        let answers: Vec<serde_json::Value> =
            serde_json::from_str(&answer(body, &context(), 2).await.unwrap()).unwrap();
        assert_eq!(answers.len(), 2);
        for (answer, id) in answers.iter().zip([1, 2]) {
            assert_eq!(answer["id"], id);
            assert_eq!(answer["error"]["code"], -32600);
        }
    }

    #[tokio::test]
    async fn calling_back_fails_with_persistent_connection_required() {
        let cx = context();
        assert!(matches!(cx.peer().notify("x", ()).await, Err(Error::OneShot)));
        let answer = answer(r#"{"jsonrpc":"2.0","method":"call_back","id":1}"#, &cx, 10).await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["code"], crate::code::PERSISTENT_CONNECTION_REQUIRED);
        assert_eq!(answer["id"], 1);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_internal_error_with_its_id() {
        let answer = answer(r#"{"jsonrpc":"2.0","method":"boom","id":"x"}"#, &context(), 10).await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["code"], -32603);
        assert_eq!(answer["id"], "x");
    }
}

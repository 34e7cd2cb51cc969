//! Publishing through Redis: one `publish.lua` call per publication (one
//! round trip: offset, stream append with its length cap and TTLs, PUBLISH),
//! from one task that sends them in the order `publish` was called.
//!
//! `publish` queues the publication at the call (so two calls made one
//! after the other are published in that order, awaited or not); the task
//! takes whatever is queued and sends it as one pipeline on the command
//! connection, which Redis runs in order, then the next. A busy publisher
//! thus sends many publications per round trip, an idle one each at once.
//!
//! Failures are definite and bounded: a pipeline with no answer within the
//! timeout (or whose connection failed) fails every publication in it
//! ([`BrokerError::Unavailable`]: it may or may not have been made, as with
//! any request whose answer was lost), and every publication queued behind
//! it, unsent (Redis is unreachable: they are not made). So while Redis is
//! down a publication fails within about the timeout of its call; while it
//! is up, a burst waits its turn (at most [`MAX_QUEUED`] publications wait;
//! past that, publishing fails at once). Redis forgets loaded scripts
//! when it restarts: publications refused with `NOSCRIPT` are sent again
//! after the script is loaded, when that keeps their order (they come after
//! every one that ran); else they fail.

use std::sync::{Arc, LazyLock};

use redis::{RedisResult, Script, ServerErrorKind, Value};
use serde_json::value::RawValue;
use switchboard_shared::stream::StreamPosition;
use tokio::sync::{mpsc, oneshot};

use crate::state::broker::history::new_epoch;
use crate::state::broker::redis::{Shared, codec, unavailable};
use crate::state::broker::{BrokerError, BrokerFuture};

/// The script, sent by its SHA1 (loaded at connect, and again when Redis lost it).
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("publish.lua")));

/// Publications waiting for Redis at most; past it `publish` fails at once.
pub(crate) const MAX_QUEUED: usize = 65_536;

/// Publications sent in one pipeline at most.
const MAX_BATCH: usize = 1_024;

/// One publication on its way.
struct Request {
    meta: String,
    stream: String,
    channel: String,
    body: Vec<u8>,
    reply: oneshot::Sender<Result<StreamPosition, BrokerError>>,
}

/// Where publications are queued for the publishing task.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<Request>,
}

impl Publisher {
    /// Starts the publishing task; it ends once every `Publisher` is dropped.
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (queue, requests) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(run(shared, requests));
        Publisher { queue }
    }

    /// Queues a publication now; the future gives its position.
    pub(crate) fn publish(
        &self,
        shared: &Shared,
        topic: &str,
        method: &str,
        params: &RawValue,
    ) -> BrokerFuture<StreamPosition> {
        let body = match codec::body(method, params) {
            Ok(body) => body,
            Err(e) => return Box::pin(std::future::ready(Err(BrokerError::Encode(e)))),
        };
        let (reply, answer) = oneshot::channel();
        let request = Request {
            meta: shared.keys.meta(topic),
            stream: shared.keys.stream(topic),
            channel: shared.keys.channel(topic),
            body,
            reply,
        };
        if let Err(e) = self.queue.try_send(request) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => {
                    format!("{MAX_QUEUED} publications are already waiting for Redis")
                }
                mpsc::error::TrySendError::Closed(_) => "the broker has stopped".to_owned(),
            };
            return Box::pin(std::future::ready(Err(BrokerError::Unavailable(why))));
        }
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(unavailable("the publishing task has stopped"))) })
    }
}

/// Sends what is queued, batch after batch, until every `Publisher` is gone.
async fn run(shared: Arc<Shared>, mut requests: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if let Err(why) = send(&shared, std::mem::take(&mut batch)).await {
            // Redis is unreachable: what waited behind the pipeline fails too, unsent.
            while let Ok(request) = requests.try_recv() {
                let why = format!("{why} (not published)");
                let _ = request.reply.send(Err(BrokerError::Unavailable(why)));
            }
        }
    }
}

/// Sends `pending` as one pipeline and answers each request; fails (with
/// the reason) when Redis did not answer it.
async fn send(shared: &Shared, mut pending: Vec<Request>) -> Result<(), String> {
    let mut reloaded = false;
    loop {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for request in &pending {
            pipe.cmd("EVALSHA")
                .arg(PUBLISH.get_hash())
                .arg(2)
                .arg(&request.meta)
                .arg(&request.stream)
                .arg(&request.channel)
                .arg(shared.settings.ttl_millis())
                .arg(shared.settings.history_size)
                .arg(&*new_epoch())
                .arg(&request.body);
        }
        let mut commands = shared.commands.clone();
        let results: Vec<RedisResult<Value>> = match shared.bounded("publishing", pipe.query_async(&mut commands)).await
        {
            Ok(results) => results,
            Err(e) => {
                let why = e.to_string();
                for request in pending {
                    let _ = request.reply.send(Err(BrokerError::Unavailable(why.clone())));
                }
                return Err(why);
            }
        };
        // Sent again after loading the script: the ones refused for want of
        // it after the last that ran (so their order holds), once.
        let retry_from =
            if reloaded { results.len() } else { results.iter().rposition(|r| !is_noscript(r)).map_or(0, |i| i + 1) };
        let mut retry = Vec::new();
        for (i, (request, result)) in pending.into_iter().zip(results).enumerate() {
            match result {
                Err(e) if is_noscript_error(&e) && i >= retry_from => retry.push(request),
                Err(e) => {
                    let _ = request.reply.send(Err(unavailable(format_args!("publishing: {e}"))));
                }
                Ok(reply) => {
                    let _ = request.reply.send(position(reply));
                }
            }
        }
        if retry.is_empty() {
            return Ok(());
        }
        let mut commands = shared.commands.clone();
        if let Err(e) = shared.bounded("loading the publish script", PUBLISH.load_async(&mut commands)).await {
            let why = e.to_string();
            for request in retry {
                let _ = request.reply.send(Err(BrokerError::Unavailable(why.clone())));
            }
            return Err(why);
        }
        tracing::info!(target: "switchboard::server", "Redis had lost the publish script (restarted?): loaded again");
        reloaded = true;
        pending = retry;
    }
}

fn is_noscript_error(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript)
}

fn is_noscript(result: &RedisResult<Value>) -> bool {
    matches!(result, Err(e) if is_noscript_error(e))
}

/// `{epoch, offset}`, as the script returns it.
fn position(reply: Value) -> Result<StreamPosition, BrokerError> {
    redis::from_redis_value::<(String, u64)>(reply)
        .map(|(epoch, offset)| StreamPosition::new(epoch, offset))
        .map_err(|e| unavailable(format_args!("publishing: unexpected reply: {e}")))
}

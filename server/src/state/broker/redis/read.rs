//! Reading a topic's stream from Redis with `read.lua`: where it stands
//! (its epoch, created when missing, and latest offset) and the
//! publications after a position, in one round trip and atomically. Used
//! for snapshots (all missed publications or none), `rpc.history` pages,
//! and by the subscriber to fill what its channel missed.

use std::sync::{Arc, LazyLock};

use redis::{Script, Value};
use switchboard_shared::stream::StreamPosition;

use crate::state::broker::BrokerError;
use crate::state::broker::entry::StreamEntry;
use crate::state::broker::history::new_epoch;
use crate::state::broker::redis::{Shared, codec, unavailable};

/// The script, sent by its SHA1 (loaded again when Redis lost it).
static READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("read.lua")));

/// What to read after the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every publication after it, or none when any is gone (a snapshot's replay).
    Replay,
    /// Up to the count of the retained ones after it (from the oldest for
    /// another epoch).
    Page,
}

/// Where a topic's stream stands, and what was read.
#[derive(Debug)]
pub(crate) struct Read {
    /// The epoch its next publications carry, and its latest offset.
    pub(crate) position: StreamPosition,
    /// The epoch, shared by the entries.
    pub(crate) epoch: Arc<str>,
    /// The publications read, oldest first; `None` for a replay that could
    /// not be complete.
    pub(crate) entries: Option<Vec<StreamEntry>>,
}

/// Reads `topic`'s stream: its position and, as `mode` says, up to `count`
/// publications after `since`.
pub(crate) async fn read(
    shared: &Shared,
    topic: &Arc<str>,
    mode: Mode,
    since: Option<&StreamPosition>,
    count: usize,
) -> Result<Read, BrokerError> {
    let (since_epoch, since_offset) = since.map_or(("", 0), |s| (s.epoch.as_str(), s.offset));
    let mut invocation = READ.prepare_invoke();
    invocation
        .key(shared.keys.meta(topic))
        .key(shared.keys.stream(topic))
        .arg(&*new_epoch())
        .arg(shared.settings.ttl_millis())
        .arg(match mode {
            Mode::Replay => "replay",
            Mode::Page => "page",
        })
        .arg(since_epoch)
        .arg(since_offset)
        .arg(count);
    let mut commands = shared.commands.clone();
    let reply: Value = shared.bounded("reading a topic's stream", invocation.invoke_async(&mut commands)).await?;
    parse(topic, reply).map_err(|e| unavailable(format_args!("{e}")))
}

/// `{epoch, offset, entries | nil}`.
fn parse(topic: &Arc<str>, reply: Value) -> Result<Read, codec::Malformed> {
    let Value::Array(mut items) = reply else { return Err(codec::Malformed("the read's reply is not an array")) };
    if items.len() != 3 {
        return Err(codec::Malformed("the read's reply is not [epoch, offset, entries]"));
    }
    let entries = items.pop().expect("three items");
    let offset = match items.pop().expect("three items") {
        Value::BulkString(text) => std::str::from_utf8(&text).ok().and_then(|t| t.parse::<u64>().ok()),
        Value::Int(n) => u64::try_from(n).ok(),
        _ => None,
    }
    .ok_or(codec::Malformed("the latest offset is not a number"))?;
    let epoch: Arc<str> = match items.pop().expect("three items") {
        Value::BulkString(text) => {
            String::from_utf8(text).map_err(|_| codec::Malformed("the epoch is not UTF-8"))?.into()
        }
        _ => return Err(codec::Malformed("the epoch is not a string")),
    };
    let entries = match entries {
        Value::Nil => None,
        entries => Some(codec::entries(topic, &epoch, entries)?),
    };
    Ok(Read { position: StreamPosition::new(&*epoch, offset), epoch, entries })
}

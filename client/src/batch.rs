//! Batches: several calls and notifications in one frame, results back in
//! the order the calls were added, each its own `Result`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use switchboard_shared::BatchBuilder;
use switchboard_shared::peer::decode_result;

use crate::call::{CallOptions, WhenOffline};
use crate::{Client, Error};

/// A batch being built, from [`Client::batch`]. Nothing is sent until
/// [`Batch::send`].
///
/// All entries go out in one frame on one connection. [`Batch::send`]
/// returns one result per **call** (notifications have none), in the order
/// the calls were added, whatever order the server answered in. The timeout
/// applies to each call of the batch; a call the server left out of its
/// answer ends with [`Error::Timeout`] (or, with no timeout, when the socket
/// ends).
///
/// ```no_run
/// # async fn demo(client: switchboard_client::Client) -> Result<(), switchboard_client::Error> {
/// let results = client
///     .batch()
///     .call("add", [1, 2])
///     .notify("log", ["adding"])
///     .call("echo", ["hi"])
///     .send()
///     .await?;
/// let sum: i64 = results.decode(0)?;
/// let echo: String = results.decode(1)?;
/// # let _ = (sum, echo); Ok(()) }
/// ```
#[must_use = "a batch is sent only by send()"]
pub struct Batch<'a> {
    client: &'a Client,
    entries: Vec<Entry>,
    /// The first params that failed to encode: `send` reports it.
    error: Option<Error>,
    options: CallOptions,
}

struct Entry {
    method: String,
    params: Box<RawValue>,
    is_call: bool,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Batch { client, entries: Vec::new(), error: None, options: CallOptions::default() }
    }

    fn push(mut self, method: &str, params: impl Serialize, is_call: bool) -> Self {
        match serde_json::value::to_raw_value(&params) {
            Ok(params) => self.entries.push(Entry { method: method.to_owned(), params, is_call }),
            Err(e) => {
                self.error.get_or_insert(Error::Encode(e.to_string()));
            }
        }
        self
    }

    /// Adds a call; its result is the next index of the results.
    pub fn call(self, method: &str, params: impl Serialize) -> Self {
        self.push(method, params, true)
    }

    /// Adds a notification (it takes no place in the results).
    pub fn notify(self, method: &str, params: impl Serialize) -> Self {
        self.push(method, params, false)
    }

    /// How many entries (calls and notifications) it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each call of the batch fails with [`Error::Timeout`] if not answered within `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.options.set_timeout(Some(limit));
        self
    }

    /// Waits for the answers however long it takes.
    pub fn no_timeout(mut self) -> Self {
        self.options.set_timeout(None);
        self
    }

    /// While no endpoint is connected, waits for one instead of failing with `Offline`.
    pub fn wait_ready(mut self) -> Self {
        self.options.when_offline = Some(WhenOffline::WaitReady);
        self
    }

    /// Fails at once with `Offline` while no endpoint is connected.
    pub fn fail_fast(mut self) -> Self {
        self.options.when_offline = Some(WhenOffline::FailFast);
        self
    }

    /// Sends the batch in one frame and waits for every call's result.
    ///
    /// `Err` when the batch as a whole could not go out: params that did not
    /// encode ([`Error::Encode`]), no connection ([`Error::Offline`]), or the
    /// socket ended while sending ([`Error::Disconnected`]). An empty batch
    /// sends nothing and returns no results.
    pub async fn send(self) -> Result<BatchResults, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.entries.is_empty() {
            return Ok(BatchResults { results: Vec::new() });
        }
        let inner = &self.client.inner;
        let _tracked = inner.track()?;
        let (peer, timeout) = inner.connection_for(self.options).await?;
        let mut builder = BatchBuilder::new();
        for entry in &self.entries {
            builder = if entry.is_call {
                builder.call(&peer, &entry.method, &entry.params)
            } else {
                builder.notify(&entry.method, &entry.params)
            };
        }
        let results = peer.batch(builder, timeout.left()).await?;
        let results = results
            .into_iter()
            .map(|r| match r {
                Err(Error::Timeout(_)) => Err(timeout.error()),
                other => other,
            })
            .collect();
        Ok(BatchResults { results })
    }
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let methods: Vec<&str> = self.entries.iter().map(|e| e.method.as_str()).collect();
        f.debug_struct("Batch").field("methods", &methods).field("options", &self.options).finish()
    }
}

/// The results of a batch: one per call, in the order the calls were added.
#[derive(Debug)]
pub struct BatchResults {
    results: Vec<Result<Box<RawValue>, Error>>,
}

impl BatchResults {
    /// How many calls the batch held.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the batch held no call.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// The result of call `index` (counting calls only, from 0) decoded into
    /// `R`: the server's error as [`Error::Rpc`], a result that does not fit
    /// as [`Error::Decode`].
    ///
    /// # Panics
    ///
    /// If the batch held fewer than `index + 1` calls.
    pub fn decode<R: DeserializeOwned>(&self, index: usize) -> Result<R, Error> {
        match &self.results[index] {
            Ok(raw) => decode_result(raw),
            Err(e) => Err(e.clone()),
        }
    }

    /// The raw result of call `index`, or `None` past the end.
    pub fn get_raw(&self, index: usize) -> Option<Result<&RawValue, &Error>> {
        self.results.get(index).map(|r| r.as_deref())
    }

    /// Every result decoded into the same type.
    pub fn decode_all<R: DeserializeOwned>(&self) -> Vec<Result<R, Error>> {
        (0..self.len()).map(|i| self.decode(i)).collect()
    }
}

impl IntoIterator for BatchResults {
    type Item = Result<Box<RawValue>, Error>;
    type IntoIter = std::vec::IntoIter<Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.results.into_iter()
    }
}

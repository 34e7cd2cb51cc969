//! [`StreamEntry`]: one publication of a topic's stream, encoded once as the
//! `rpc.publication` notification that every positioned subscriber
//! receives, retained and replayed as those same bytes. The plain
//! notification (`{"method": M, "params": P}`) and the `rpc.history` entry
//! are cut from it, never re-serialized.

use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_shared::codec::EncodeError;
use switchboard_shared::stream::{PUBLICATION_METHOD, StreamPosition};
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;

/// One publication of a topic's stream, as a [`Broker`](crate::Broker)
/// stores and delivers it: its topic, epoch and offset, and its
/// `rpc.publication` notification, encoded once. Cloning is cheap
/// (reference counts): every recipient and the history share the bytes.
#[derive(Clone)]
pub struct StreamEntry {
    topic: Arc<str>,
    epoch: Arc<str>,
    offset: u64,
    frame: Utf8Bytes,
    /// Where the publication object (the notification's params) starts.
    publication_at: usize,
    /// Where the method's JSON string starts and ends.
    method_at: (usize, usize),
    /// Where the params start (they end before the frame's last two braces).
    params_at: usize,
}

impl std::fmt::Debug for StreamEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEntry")
            .field("topic", &self.topic)
            .field("epoch", &self.epoch)
            .field("offset", &self.offset)
            .field("bytes", &self.frame.len())
            .finish()
    }
}

impl StreamEntry {
    /// Encodes the publication at (`epoch`, `offset`) of `topic`. `params`
    /// must be a JSON array, object or `null` (no params).
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use switchboard_server::StreamEntry;
    ///
    /// let params = RawValue::from_string(r#"{"p":1}"#.into()).unwrap();
    /// let entry = StreamEntry::encode("prices".into(), "e1".into(), 7, "tick", &params).unwrap();
    /// assert_eq!(
    ///     entry.frame().as_str(),
    ///     r#"{"jsonrpc":"2.0","method":"rpc.publication","params":{"topic":"prices","epoch":"e1","offset":7,"method":"tick","params":{"p":1}}}"#
    /// );
    /// assert_eq!(entry.plain_frame().as_str(), r#"{"jsonrpc":"2.0","method":"tick","params":{"p":1}}"#);
    /// ```
    pub fn encode(
        topic: Arc<str>,
        epoch: Arc<str>,
        offset: u64,
        method: &str,
        params: &RawValue,
    ) -> Result<StreamEntry, EncodeError> {
        let text = params.get();
        if !(text.starts_with(['[', '{']) || text == "null") {
            return Err(EncodeError::ScalarParams(text.to_owned()));
        }
        // The frame is retained as allocated: size it for the frame (129
        // bytes of syntax at most, besides the strings; escapes aside), not
        // for a doubling.
        let mut buf = Vec::with_capacity(129 + topic.len() + epoch.len() + method.len() + text.len());
        buf.extend_from_slice(br#"{"jsonrpc":"2.0","method":""#);
        buf.extend_from_slice(PUBLICATION_METHOD.as_bytes());
        buf.extend_from_slice(br#"","params":"#);
        let publication_at = buf.len();
        buf.extend_from_slice(br#"{"topic":"#);
        serde_json::to_writer(&mut buf, &*topic)?;
        buf.extend_from_slice(br#","epoch":"#);
        serde_json::to_writer(&mut buf, &*epoch)?;
        buf.extend_from_slice(br#","offset":"#);
        buf.extend_from_slice(offset.to_string().as_bytes());
        buf.extend_from_slice(br#","method":"#);
        let method_start = buf.len();
        serde_json::to_writer(&mut buf, method)?;
        let method_at = (method_start, buf.len());
        buf.extend_from_slice(br#","params":"#);
        let params_at = buf.len();
        buf.extend_from_slice(text.as_bytes());
        buf.extend_from_slice(b"}}");
        let frame = String::from_utf8(buf).expect("JSON writers emit UTF-8");
        Ok(StreamEntry { topic, epoch, offset, frame: Utf8Bytes::from(frame), publication_at, method_at, params_at })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The stream's epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The offset in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where it is in its stream.
    pub fn position(&self) -> StreamPosition {
        StreamPosition::new(&*self.epoch, self.offset)
    }

    /// The whole `rpc.publication` notification, as positioned subscribers receive it.
    pub fn frame(&self) -> &Utf8Bytes {
        &self.frame
    }

    /// The publication object `{"topic","epoch","offset","method","params"}`
    /// (the notification's params; an `rpc.history` entry), as JSON text.
    pub fn publication_json(&self) -> &str {
        &self.frame[self.publication_at..self.frame.len() - 1]
    }

    /// The method it was published as, as a JSON string (quoted, escaped).
    pub fn method_json(&self) -> &str {
        &self.frame[self.method_at.0..self.method_at.1]
    }

    /// The params as published (`null` for none), as JSON text.
    pub fn params_json(&self) -> &str {
        &self.frame[self.params_at..self.frame.len() - 2]
    }

    /// The plain notification `{"method": M, "params": P}` that plain
    /// subscribers receive, cut from the encoded frame (encode it once per
    /// publication, not once per recipient).
    pub fn plain_frame(&self) -> Utf8Bytes {
        let (method, params) = (self.method_json(), self.params_json());
        let mut text = String::with_capacity(40 + method.len() + params.len());
        text.push_str(r#"{"jsonrpc":"2.0","method":"#);
        text.push_str(method);
        if params != "null" {
            text.push_str(r#","params":"#);
            text.push_str(params);
        }
        text.push('}');
        Utf8Bytes::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::codec::encode;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn the_frame_is_the_notification_serde_would_write_and_the_plain_one_too() {
        #[derive(serde::Serialize)]
        struct Params<'a> {
            topic: &'a str,
            epoch: &'a str,
            offset: u64,
            method: &'a str,
            params: &'a RawValue,
        }
        for (topic, method, params) in
            [("t", "tick", r#"{"p":1}"#), ("a \"q\"\n", "m\u{e9}\\", "[1,2]"), ("t", "none", "null")]
        {
            let params = raw(params);
            let entry = StreamEntry::encode(topic.into(), "e".into(), 41, method, &params).unwrap();
            let expected = encode::notification(
                PUBLICATION_METHOD,
                &Params { topic, epoch: "e", offset: 41, method, params: &params },
            )
            .unwrap();
            assert_eq!(entry.frame().as_str(), expected);
            assert_eq!(entry.plain_frame().as_str(), encode::notification(method, &params).unwrap());
            let publication: switchboard_shared::stream::Publication =
                serde_json::from_str(entry.publication_json()).unwrap();
            assert_eq!((publication.topic.as_str(), publication.offset), (topic, 41));
            assert_eq!(publication.method, method);
        }
    }

    #[test]
    fn an_entry_is_as_small_as_the_builder_docs_say() {
        // With its frame's shared header (about 32 bytes) and the ring's
        // slack, this makes the ~175 bytes per retained publication.
        assert!(std::mem::size_of::<StreamEntry>() <= 104, "{}", std::mem::size_of::<StreamEntry>());
        let entry = StreamEntry::encode("t".into(), "0123456789ab".into(), 1, "tick", &raw(r#"{"p":1}"#)).unwrap();
        assert_eq!(entry.frame().len() - entry.plain_frame().len(), 82 + "t".len() + "1".len());
    }

    #[test]
    fn scalar_params_are_refused() {
        assert!(StreamEntry::encode("t".into(), "e".into(), 1, "m", &raw("3")).is_err());
    }
}

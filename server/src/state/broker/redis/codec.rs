//! How a publication travels through Redis: its **body**, written once by
//! the publishing server, kept in the topic's stream and announced on the
//! topic's channel behind its position.
//!
//! - body: `<method length in bytes> <method><params>`, e.g. `4 tick{"n":1}`
//!   (the params as published: a JSON array, object or `null`);
//! - stream entry: id `<offset>-0`, one field `d` holding the body (the epoch
//!   is the topic's, kept in its meta hash);
//! - channel message: `<epoch> <offset> <body>`.
//!
//! Every server turns what it reads into a [`StreamEntry`] (the
//! `rpc.publication` frame its subscribers share), once per publication.
//! What Redis hands back is checked: a malformed message is refused with
//! the reason, never trusted.

use std::sync::Arc;

use redis::Value;
use serde_json::value::RawValue;
use switchboard_shared::codec::EncodeError;

use crate::state::broker::entry::StreamEntry;

/// Why something read from Redis is not a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed publication in Redis: {0}")]
pub(crate) struct Malformed(pub(crate) &'static str);

/// The body of a publication of `method` with `params`; the params must be
/// a JSON array, object or `null`, as for [`StreamEntry::encode`].
pub(crate) fn body(method: &str, params: &RawValue) -> Result<Vec<u8>, EncodeError> {
    let params = params.get();
    if !(params.starts_with(['[', '{']) || params == "null") {
        return Err(EncodeError::ScalarParams(params.to_owned()));
    }
    let length = method.len().to_string();
    let mut body = Vec::with_capacity(length.len() + 1 + method.len() + params.len());
    body.extend_from_slice(length.as_bytes());
    body.push(b' ');
    body.extend_from_slice(method.as_bytes());
    body.extend_from_slice(params.as_bytes());
    Ok(body)
}

/// A channel message cut into its epoch, offset and body.
pub(crate) fn message(payload: &[u8]) -> Result<(&str, u64, &str), Malformed> {
    let text = std::str::from_utf8(payload).map_err(|_| Malformed("not UTF-8"))?;
    let (epoch, rest) = text.split_once(' ').ok_or(Malformed("no epoch"))?;
    let (offset, body) = rest.split_once(' ').ok_or(Malformed("no offset"))?;
    let offset = offset.parse().map_err(|_| Malformed("the offset is not a number"))?;
    Ok((epoch, offset, body))
}

/// The publication at (`epoch`, `offset`) of `topic` whose body is `body`,
/// encoded as its subscribers receive it.
pub(crate) fn entry(topic: &Arc<str>, epoch: &Arc<str>, offset: u64, body: &str) -> Result<StreamEntry, Malformed> {
    let (length, rest) = body.split_once(' ').ok_or(Malformed("no method length"))?;
    let length: usize = length.parse().map_err(|_| Malformed("the method length is not a number"))?;
    if !rest.is_char_boundary(length) || length > rest.len() {
        return Err(Malformed("the method length is out of bounds"));
    }
    let (method, params) = rest.split_at(length);
    let params: &RawValue = serde_json::from_str(params).map_err(|_| Malformed("the params are not JSON"))?;
    StreamEntry::encode(Arc::clone(topic), Arc::clone(epoch), offset, method, params)
        .map_err(|_| Malformed("the params are not an array, an object or null"))
}

/// The offset of a stream entry id (`<offset>-0`).
fn entry_offset(id: &[u8]) -> Result<u64, Malformed> {
    let id = std::str::from_utf8(id).map_err(|_| Malformed("an entry id is not UTF-8"))?;
    let offset = id.strip_suffix("-0").ok_or(Malformed("an entry id is not OFFSET-0"))?;
    offset.parse().map_err(|_| Malformed("an entry id is not OFFSET-0"))
}

/// The entries of an `XRANGE` reply (`[[id, [field, value, ...]], ...]`),
/// as publications of `topic` in `epoch`.
pub(crate) fn entries(topic: &Arc<str>, epoch: &Arc<str>, reply: Value) -> Result<Vec<StreamEntry>, Malformed> {
    let Value::Array(items) = reply else { return Err(Malformed("the entries are not an array")) };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else { return Err(Malformed("an entry is not an array")) };
        if pair.len() != 2 {
            return Err(Malformed("an entry is not [id, fields]"));
        }
        let fields = pair.pop().expect("two items");
        let Value::BulkString(id) = pair.pop().expect("two items") else {
            return Err(Malformed("an entry id is not a string"));
        };
        let offset = entry_offset(&id)?;
        let body = match fields {
            Value::Array(fields) => match fields.as_slice() {
                [Value::BulkString(name), Value::BulkString(body)] if name == b"d" => body.clone(),
                _ => return Err(Malformed("an entry's fields are not [d, body]")),
            },
            _ => return Err(Malformed("an entry's fields are not an array")),
        };
        let body = std::str::from_utf8(&body).map_err(|_| Malformed("a body is not UTF-8"))?;
        entries.push(entry(topic, epoch, offset, body)?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn a_body_read_back_is_the_publication_as_published() {
        let topic: Arc<str> = "t".into();
        let epoch: Arc<str> = "e1".into();
        for (method, params) in [("tick", r#"{"n":1}"#), ("m é \"x\" 12", "[1, 2]"), ("", "null")] {
            let body = String::from_utf8(body(method, &raw(params)).unwrap()).unwrap();
            let payload = format!("e1 7 {body}");
            let (e, offset, read) = message(payload.as_bytes()).unwrap();
            assert_eq!((e, offset), ("e1", 7));
            let entry = entry(&topic, &epoch, offset, read).unwrap();
            let expected = StreamEntry::encode(topic.clone(), epoch.clone(), 7, method, &raw(params)).unwrap();
            assert_eq!(entry.frame(), expected.frame());
        }
    }

    #[test]
    fn scalar_params_are_refused_when_published() {
        assert!(body("m", &raw("3")).is_err());
    }

    #[test]
    fn malformed_messages_are_refused_not_trusted() {
        let (topic, epoch): (Arc<str>, Arc<str>) = ("t".into(), "e".into());
        for payload in [&b"e1"[..], b"e1 x 4 tick{}", b"\xff 1 1 m{}"] {
            assert!(message(payload).is_err(), "{payload:?}");
        }
        for body in ["tick{}", "9 tick{}", "4 tick{", "4 tick3", "1 \u{e9}{}"] {
            assert!(entry(&topic, &epoch, 1, body).is_err(), "{body}");
        }
    }

    #[test]
    fn stream_entries_are_read_with_their_offsets() {
        let (topic, epoch): (Arc<str>, Arc<str>) = ("t".into(), "e".into());
        let item = |offset: u64, body: &str| {
            Value::Array(vec![
                Value::BulkString(format!("{offset}-0").into_bytes()),
                Value::Array(vec![Value::BulkString(b"d".to_vec()), Value::BulkString(body.as_bytes().to_vec())]),
            ])
        };
        let read = entries(&topic, &epoch, Value::Array(vec![item(3, "1 m[3]"), item(4, "1 m[4]")])).unwrap();
        assert_eq!(read.iter().map(StreamEntry::offset).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(read[1].params_json(), "[4]");
        assert!(entries(&topic, &epoch, Value::Array(vec![item(3, "x")])).is_err());
    }
}

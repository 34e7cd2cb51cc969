//! Encoding JSON-RPC messages straight into frame text.
//!
//! Every function writes one complete frame with `"jsonrpc":"2.0"` first and
//! the id last, the order the spec's examples use. Params and results are
//! serialized directly into the frame buffer: no intermediate `Value`.

use super::decode::{Message, Notification, Request, Response};
use super::{ErrorObject, Id};
use serde::Serialize;

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The value failed to serialize (a map with non-string keys, a failing `Serialize` impl...).
    #[error("could not serialize to JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Params must be positional (array) or named (object); pass `[x]` for a single value.
    #[error("params must serialize to a JSON array or object (or nothing), got {0}")]
    ScalarParams(String),
}

const HEAD: &[u8] = br#"{"jsonrpc":"2.0""#;

/// A scratch buffer grown past this is given back after use, so one big
/// frame does not pin its memory to the thread for good.
const SCRATCH_KEEP: usize = 64 << 10;

std::thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `write` on a per-thread scratch buffer and returns what it wrote as
/// an exactly sized `String`.
///
/// Why: a frame grown in its own `Vec` pays a reallocation or two and ends
/// with spare capacity, and a `Bytes` made from a `Vec` with spare capacity
/// allocates a second block to track it. Written into warm scratch memory
/// and copied out once, a frame costs one allocation of its exact size.
fn encode<E>(write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<String, E> {
    encode_sized(0, write)
}

/// Frames known to be at least this big are written straight into their
/// own buffer: the copy out of the scratch buffer would cost more than the
/// spare capacity it saves.
const DIRECT_FROM: usize = 2 << 10;

/// [`encode`] for a frame of about `size_hint` bytes.
fn encode_sized<E>(size_hint: usize, write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<String, E> {
    if size_hint >= DIRECT_FROM {
        let mut buf = Vec::with_capacity(size_hint);
        write(&mut buf)?;
        return Ok(String::from_utf8(buf).expect("JSON writers emit UTF-8"));
    }
    // serde_json and our own writers emit UTF-8 only (checked all the same:
    // the workspace forbids unsafe code).
    in_scratch(write, |buf| String::from_utf8(buf.to_vec()).expect("JSON writers emit UTF-8"))
}

/// Runs `write` on the per-thread scratch buffer, then `then` on what it
/// wrote (while still borrowed: nothing is copied unless `then` copies).
fn in_scratch<E, R>(write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>, then: impl FnOnce(&[u8]) -> R) -> Result<R, E> {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let written = write(&mut buf).map(|()| then(&buf));
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            written
        }
        // A `Serialize` impl that encodes a frame itself: a buffer of its own.
        Err(_) => {
            let mut buf = Vec::with_capacity(128);
            write(&mut buf).map(|()| then(&buf))
        }
    })
}

/// A notification frame, lent to `then` instead of returned: the engine
/// copies it straight into a connection's outbound buffer, so a notification
/// costs no allocation of its own. The text is JSON written by serde_json
/// and by this module: UTF-8.
pub(crate) fn notification_in<R>(
    method: &str,
    params: &(impl Serialize + ?Sized),
    then: impl FnOnce(&[u8]) -> R,
) -> Result<R, EncodeError> {
    in_scratch(|buf| write_notification(buf, method, params), then)
}

/// Writes `,"params":..` unless the params serialize to `null` (absent).
fn write_params(buf: &mut Vec<u8>, params: &(impl Serialize + ?Sized)) -> Result<(), EncodeError> {
    let mark = buf.len();
    buf.extend_from_slice(br#","params":"#);
    let start = buf.len();
    serde_json::to_writer(&mut *buf, params)?;
    match buf[start..].first() {
        Some(b'[' | b'{') => Ok(()),
        _ if &buf[start..] == b"null" => {
            buf.truncate(mark);
            Ok(())
        }
        _ => Err(EncodeError::ScalarParams(String::from_utf8_lossy(&buf[start..]).into_owned())),
    }
}

fn write_method(buf: &mut Vec<u8>, method: &str) -> Result<(), EncodeError> {
    buf.extend_from_slice(br#","method":"#);
    // Method names rarely need escaping; serde_json's general string
    // writer cost a flood of notifications 3% of its instructions.
    if method.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(method.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, method)?;
    }
    Ok(())
}

/// A request frame: `{"jsonrpc":"2.0","method":..,"params":..,"id":..}`.
///
/// ```
/// use switchboard_shared::{codec::encode, Id};
/// assert_eq!(
///     encode::request(&Id::Num(1), "add", &(1, 2)).unwrap(),
///     r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#
/// );
/// ```
pub fn request(id: &Id, method: &str, params: &(impl Serialize + ?Sized)) -> Result<String, EncodeError> {
    encode(|buf| {
        buf.extend_from_slice(HEAD);
        write_method(buf, method)?;
        write_params(buf, params)?;
        buf.extend_from_slice(br#","id":"#);
        id.write_json(buf);
        buf.push(b'}');
        Ok(())
    })
}

/// A notification frame (no id).
pub fn notification(method: &str, params: &(impl Serialize + ?Sized)) -> Result<String, EncodeError> {
    encode(|buf| write_notification(buf, method, params))
}

fn write_notification(buf: &mut Vec<u8>, method: &str, params: &(impl Serialize + ?Sized)) -> Result<(), EncodeError> {
    buf.extend_from_slice(HEAD);
    write_method(buf, method)?;
    write_params(buf, params)?;
    buf.push(b'}');
    Ok(())
}

/// A success response frame.
pub fn success(id: &Id, result: &(impl Serialize + ?Sized)) -> Result<String, EncodeError> {
    success_sized(id, result, 0)
}

/// A success response frame, its buffer pre-sized for a result of about
/// `result_len` bytes (the frame never regrows for a result that fits).
pub fn success_sized(id: &Id, result: &(impl Serialize + ?Sized), result_len: usize) -> Result<String, EncodeError> {
    encode_sized(64 + result_len, |buf| {
        buf.extend_from_slice(HEAD);
        buf.extend_from_slice(br#","result":"#);
        serde_json::to_writer(&mut *buf, result)?;
        buf.extend_from_slice(br#","id":"#);
        id.write_json(buf);
        buf.push(b'}');
        Ok(())
    })
}

/// An error response frame.
///
/// ```
/// use switchboard_shared::{codec::encode, ErrorObject, Id};
/// assert_eq!(
///     encode::error(&Id::Null, &ErrorObject::new(-32601, "Method not found")),
///     r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":null}"#
/// );
/// ```
pub fn error(id: &Id, error: &ErrorObject) -> String {
    let written: Result<String, std::convert::Infallible> = encode(|buf| {
        buf.extend_from_slice(HEAD);
        buf.extend_from_slice(br#","error":"#);
        // An ErrorObject holds only strings, integers and a serde_json::Value: it always serializes.
        serde_json::to_writer(&mut *buf, error).expect("an error object always serializes");
        buf.extend_from_slice(br#","id":"#);
        id.write_json(buf);
        buf.push(b'}');
        Ok(())
    });
    let Ok(frame) = written;
    frame
}

/// Joins already-encoded entries into one batch frame (`[a,b,..]`).
pub fn batch<S: AsRef<str>>(entries: &[S]) -> String {
    let len = entries.iter().map(|e| e.as_ref().len() + 1).sum::<usize>() + 1;
    let mut out = String::with_capacity(len);
    out.push('[');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(entry.as_ref());
    }
    out.push(']');
    out
}

/// Encodes a decoded message back into frame text.
pub fn message(msg: &Message<'_>) -> Result<String, EncodeError> {
    match msg {
        Message::Request(Request { id, method, params }) => request(id, method, params),
        Message::Notification(Notification { method, params }) => notification(method, params),
        Message::Response(Response { id, outcome: Ok(result) }) => success(id, result),
        Message::Response(Response { id, outcome: Err(e) }) => Ok(error(id, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_params_are_omitted() {
        assert_eq!(notification("tick", &()).unwrap(), r#"{"jsonrpc":"2.0","method":"tick"}"#);
    }

    #[test]
    fn scalar_params_are_refused_with_advice() {
        let err = request(&Id::Num(1), "m", &5).unwrap_err();
        assert!(matches!(err, EncodeError::ScalarParams(ref s) if s == "5"), "{err}");
    }

    #[test]
    fn frames_are_allocated_to_their_exact_size() {
        // Spare capacity would make the frame's `Bytes` allocate a second block.
        let frames = [
            notification("tick", &[1, 2, 3]).unwrap(),
            request(&Id::Num(7), "add", &(1, 2)).unwrap(),
            success(&Id::Str("a".into()), &"x".repeat(100_000)).unwrap(),
            error(&Id::Null, &ErrorObject::parse_error("bad")),
        ];
        for frame in frames {
            assert_eq!(frame.capacity(), frame.len(), "{frame:.60}");
        }
    }

    #[test]
    fn params_that_encode_a_frame_while_serializing_get_a_buffer_of_their_own() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let inner = notification("inner", &[1]).map_err(serde::ser::Error::custom)?;
                [inner].serialize(serializer)
            }
        }
        assert_eq!(
            notification("outer", &Nested).unwrap(),
            r#"{"jsonrpc":"2.0","method":"outer","params":["{\"jsonrpc\":\"2.0\",\"method\":\"inner\",\"params\":[1]}"]}"#
        );
    }

    #[test]
    fn method_names_are_escaped_exactly_as_serde_json_does() {
        for method in ["tick", "rpc.subscribe", "naïve/ü", "a\"b", "back\\slash", "tab\there", "\u{7f}del", ""] {
            let frame = notification(method, &()).unwrap();
            let expected = format!(r#"{{"jsonrpc":"2.0","method":{}}}"#, serde_json::to_string(method).unwrap());
            assert_eq!(frame, expected);
        }
    }

    #[test]
    fn batch_joins_entries() {
        assert_eq!(batch(&["1", "2"]), "[1,2]");
    }
}

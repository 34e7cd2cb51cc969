//! Encoding JSON-RPC 1.0 messages, for peers that opt in to it.
//!
//! The shapes are the 1.0 specification's: no `jsonrpc` member; a request is
//! `{"method":..,"params":[..],"id":..}` (params always present, `[]` when
//! there are none); a notification is a request with `"id": null`; an answer
//! carries both `result` and `error`, one of them `null`. 1.0 has no batches.

use serde::Serialize;

use super::decode::{Frame, Message, Response};
use super::encode::EncodeError;
use super::{ErrorObject, Id, decode_frame};

/// A 1.0 request: `{"method":..,"params":..,"id":..}`.
///
/// ```
/// use switchboard_shared::{codec::v1, Id};
/// assert_eq!(v1::request(&Id::Num(1), "echo", &["hi"]).unwrap(), r#"{"method":"echo","params":["hi"],"id":1}"#);
/// assert_eq!(v1::request(&Id::Num(2), "now", &()).unwrap(), r#"{"method":"now","params":[],"id":2}"#);
/// ```
pub fn request(id: &Id, method: &str, params: &(impl Serialize + ?Sized)) -> Result<String, EncodeError> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(br#"{"method":"#);
    serde_json::to_writer(&mut buf, method)?;
    buf.extend_from_slice(br#","params":"#);
    let start = buf.len();
    serde_json::to_writer(&mut buf, params)?;
    match buf[start..].first() {
        Some(b'[' | b'{') => {}
        _ if &buf[start..] == b"null" => {
            buf.truncate(start);
            buf.extend_from_slice(b"[]");
        }
        _ => return Err(EncodeError::ScalarParams(String::from_utf8_lossy(&buf[start..]).into_owned())),
    }
    buf.extend_from_slice(br#","id":"#);
    id.write_json(&mut buf);
    buf.push(b'}');
    Ok(String::from_utf8(buf).expect("JSON writers emit UTF-8"))
}

/// A 1.0 notification: a request with `"id": null`.
pub fn notification(method: &str, params: &(impl Serialize + ?Sized)) -> Result<String, EncodeError> {
    request(&Id::Null, method, params)
}

/// A 1.0 success answer: `{"result":..,"error":null,"id":..}`.
pub fn success(id: &Id, result: &(impl Serialize + ?Sized)) -> Result<String, EncodeError> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(br#"{"result":"#);
    serde_json::to_writer(&mut buf, result)?;
    buf.extend_from_slice(br#","error":null,"id":"#);
    id.write_json(&mut buf);
    buf.push(b'}');
    Ok(String::from_utf8(buf).expect("JSON writers emit UTF-8"))
}

/// A 1.0 error answer: `{"result":null,"error":{..},"id":..}`.
///
/// ```
/// use switchboard_shared::{codec::v1, ErrorObject, Id};
/// assert_eq!(
///     v1::error(&Id::Num(1), &ErrorObject::new(-32601, "Method not found")),
///     r#"{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":1}"#
/// );
/// ```
pub fn error(id: &Id, error: &ErrorObject) -> String {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(br#"{"result":null,"error":"#);
    serde_json::to_writer(&mut buf, error).expect("an error object always serializes");
    buf.extend_from_slice(br#","id":"#);
    id.write_json(&mut buf);
    buf.push(b'}');
    String::from_utf8(buf).expect("JSON writers emit UTF-8")
}

/// The 1.0 form of a 2.0 answer frame (a single response, as the engine and
/// the method registry encode them). Anything else is returned unchanged.
///
/// ```
/// use switchboard_shared::codec::v1;
/// assert_eq!(v1::answer(r#"{"jsonrpc":"2.0","result":3,"id":7}"#), r#"{"result":3,"error":null,"id":7}"#);
/// ```
pub fn answer(frame: &str) -> String {
    let converted = match decode_frame(frame) {
        Ok(Frame::Single(Ok(Message::Response(Response { id, outcome: Ok(result) })))) => success(&id, result).ok(),
        Ok(Frame::Single(Ok(Message::Response(Response { id, outcome: Err(e) })))) => Some(error(&id, &e)),
        _ => None,
    };
    converted.unwrap_or_else(|| frame.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_a_request_with_a_null_id() {
        assert_eq!(notification("tick", &[1]).unwrap(), r#"{"method":"tick","params":[1],"id":null}"#);
    }

    #[test]
    fn an_error_answer_keeps_its_id_and_data() {
        let two = r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"x"},"id":"a"}"#;
        assert_eq!(
            answer(two),
            r#"{"result":null,"error":{"code":-32602,"message":"Invalid params","data":"x"},"id":"a"}"#
        );
    }

    #[test]
    fn scalar_params_are_refused() {
        assert!(matches!(request(&Id::Num(1), "m", &5), Err(EncodeError::ScalarParams(_))));
    }
}

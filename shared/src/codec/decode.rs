//! Decoding one WebSocket frame into JSON-RPC messages in a single pass.
//!
//! Terms:
//! - a **frame** is the text of one WebSocket message: one JSON-RPC object or a
//!   batch (an array of them);
//! - an **entry** is one element of that: a valid [`Message`] or an
//!   [`Invalid`] object that must be answered (requests) or reported
//!   (responses);
//! - params, results and error data stay as borrowed raw JSON ([`RawValue`])
//!   slices of the frame until a handler or caller decodes them into its type.
//!
//! The decoder is symmetric: the same frame may hold requests for us and
//! responses to our own calls.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{ErrorObject, Id};

/// A decoded frame: one entry or a non-empty batch of entries.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A single JSON object (or a non-object, which is an invalid entry).
    Single(Entry<'a>),
    /// A batch: a JSON array with at least one element.
    Batch(Vec<Entry<'a>>),
}

/// One element of a frame.
pub type Entry<'a> = Result<Message<'a>, Invalid>;

/// A valid JSON-RPC message.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    /// A call that expects a response.
    Request(Request<'a>),
    /// A call without an id: no response is ever sent.
    Notification(Notification<'a>),
    /// The answer to one of our calls.
    Response(Response<'a>),
}

/// A call that expects a response.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Echoed in the response.
    pub id: Id,
    /// The method name.
    pub method: Cow<'a, str>,
    /// Positional (array) or named (object) params; `None` when absent.
    pub params: Option<&'a RawValue>,
}

/// A call without an id.
#[derive(Debug, Clone)]
pub struct Notification<'a> {
    /// The method name.
    pub method: Cow<'a, str>,
    /// Positional (array) or named (object) params; `None` when absent.
    pub params: Option<&'a RawValue>,
}

/// A response to one of our calls.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    /// The id of the call this answers.
    pub id: Id,
    /// The result, or the error object.
    pub outcome: Result<&'a RawValue, ErrorObject>,
}

/// An entry that breaks the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Whether it looked like a request (answer it) or a response (report it).
    pub kind: InvalidKind,
    /// The entry's id if it had a valid one, else `Id::Null`.
    pub id: Id,
    /// The error to answer with (requests) or to report (responses).
    pub error: ErrorObject,
}

/// What an invalid entry looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// It had a `method` member, or no recognisable shape at all: answer with `error`.
    Request,
    /// It had `result` or `error` but no `method`: never answered (a reply to a
    /// reply could loop), reported to the pending call instead.
    Response,
    /// It had neither `method` nor `result`/`error`. If its id is one of our
    /// pending calls it is a broken reply to it; otherwise it is answered
    /// like an invalid request.
    Shapeless,
}

/// Decodes one frame.
///
/// `Err` carries the single error object to answer with (id `null`): -32700
/// for invalid JSON, -32600 for an empty batch.
///
/// ```
/// use switchboard_shared::codec::{decode_frame, Frame, Message};
/// let frame = decode_frame(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#).unwrap();
/// let Frame::Single(Ok(Message::Request(req))) = frame else { panic!() };
/// assert_eq!(req.method, "add");
/// assert_eq!(req.params.unwrap().get(), "[1,2]");
/// ```
pub fn decode_frame(text: &str) -> Result<Frame<'_>, ErrorObject> {
    let top: TopLevel<'_> = serde_json::from_str(text).map_err(ErrorObject::parse_error)?;
    match top {
        TopLevel::Single(raw) => Ok(Frame::Single(raw.classify())),
        TopLevel::Batch(entries) if entries.is_empty() => {
            Err(ErrorObject::invalid_request("a batch must hold at least one entry"))
        }
        TopLevel::Batch(entries) => Ok(Frame::Batch(entries.into_iter().map(RawEntry::classify).collect())),
    }
}

enum TopLevel<'a> {
    Single(RawEntry<'a>),
    Batch(Vec<RawEntry<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC object or batch")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
                while let Some(entry) = seq.next_element::<RawEntry<'a>>()? {
                    entries.push(entry);
                }
                Ok(TopLevel::Batch(entries))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawEntryVisitor(std::marker::PhantomData).visit_map(map).map(TopLevel::Single)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TopLevel::Single(RawEntry::not_object("a boolean")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TopLevel::Single(RawEntry::not_object("a number")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TopLevel::Single(RawEntry::not_object("a number")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TopLevel::Single(RawEntry::not_object("a number")))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(TopLevel::Single(RawEntry::not_object("a string")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(TopLevel::Single(RawEntry::not_object("null")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The members of one object, each still raw.
#[derive(Default)]
struct RawEntry<'a> {
    not_object: Option<&'static str>,
    jsonrpc: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
}

impl<'a> RawEntry<'a> {
    fn not_object(what: &'static str) -> Self {
        RawEntry { not_object: Some(what), ..Default::default() }
    }

    fn classify(self) -> Entry<'a> {
        if let Some(what) = self.not_object {
            return Err(Invalid {
                kind: InvalidKind::Request,
                id: Id::Null,
                error: ErrorObject::invalid_request(format_args!("expected an object, got {what}")),
            });
        }
        let id = match self.id.map(Id::from_raw) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                let kind = if self.method.is_none() && (self.result.is_some() || self.error.is_some()) {
                    InvalidKind::Response
                } else {
                    InvalidKind::Request
                };
                return Err(Invalid { kind, id: Id::Null, error: ErrorObject::invalid_request(e) });
            }
        };
        if self.method.is_some() {
            self.classify_call(id)
        } else if self.result.is_some() || self.error.is_some() {
            self.classify_response(id)
        } else {
            Err(Invalid {
                kind: InvalidKind::Shapeless,
                id: id.unwrap_or(Id::Null),
                error: ErrorObject::invalid_request(
                    "an object needs \"method\" (a call) or \"result\"/\"error\" (a response)",
                ),
            })
        }
    }

    fn classify_call(self, id: Option<Id>) -> Entry<'a> {
        let invalid = |id: Option<Id>, why: &str| {
            Err(Invalid {
                kind: InvalidKind::Request,
                id: id.unwrap_or(Id::Null),
                error: ErrorObject::invalid_request(why),
            })
        };
        if !is_version_2(self.jsonrpc) {
            return invalid(id, "\"jsonrpc\" must be exactly \"2.0\"");
        }
        let Some(method) = self.method.and_then(raw_str) else {
            return invalid(id, "\"method\" must be a string");
        };
        if let Some(params) = self.params
            && !matches!(params.get().as_bytes().first(), Some(b'[' | b'{'))
        {
            return invalid(id, "\"params\" must be an array or an object");
        }
        if self.result.is_some() || self.error.is_some() {
            return invalid(id, "a call must not carry \"result\" or \"error\"");
        }
        Ok(match id {
            Some(id) => Message::Request(Request { id, method, params: self.params }),
            None => Message::Notification(Notification { method, params: self.params }),
        })
    }

    fn classify_response(self, id: Option<Id>) -> Entry<'a> {
        let invalid = |id: Option<Id>, why: &str| {
            Err(Invalid {
                kind: InvalidKind::Response,
                id: id.unwrap_or(Id::Null),
                error: ErrorObject::invalid_request(why),
            })
        };
        if !is_version_2(self.jsonrpc) {
            return invalid(id, "\"jsonrpc\" must be exactly \"2.0\"");
        }
        let Some(id) = id else {
            return invalid(None, "a response must carry an \"id\"");
        };
        let outcome = match (self.result, self.error) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => match serde_json::from_str::<ErrorObject>(error.get()) {
                Ok(error) => Err(error),
                Err(e) => return invalid(Some(id), &format!("malformed error object: {e}")),
            },
            _ => return invalid(Some(id), "a response must carry exactly one of \"result\" and \"error\""),
        };
        Ok(Message::Response(Response { id, outcome }))
    }
}

fn is_version_2(raw: Option<&RawValue>) -> bool {
    match raw {
        Some(raw) if raw.get() == "\"2.0\"" => true,
        // An escaped spelling such as "\u0032.0" is still the string "2.0".
        Some(raw) => raw_str(raw).is_some_and(|v| v == "2.0"),
        None => false,
    }
}

fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match <&str>::deserialize(&mut serde_json::Deserializer::from_str(text)) {
        Ok(s) => Some(Cow::Borrowed(s)),
        // Escapes cannot borrow: decode into an owned string.
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawEntryVisitor(std::marker::PhantomData))
    }
}

struct RawEntryVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RawEntryVisitor<'a> {
    type Value = RawEntry<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entry = RawEntry::default();
        while let Some(key) = map.next_key_seed(FieldSeed)? {
            let slot = match key {
                Field::Jsonrpc => &mut entry.jsonrpc,
                Field::Method => &mut entry.method,
                Field::Params => &mut entry.params,
                Field::Id => &mut entry.id,
                Field::Result => &mut entry.result,
                Field::Error => &mut entry.error,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<&'a RawValue>()?);
        }
        Ok(entry)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawEntry::not_object("an array"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RawEntry::not_object("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RawEntry::not_object("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RawEntry::not_object("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RawEntry::not_object("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawEntry::not_object("a string"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawEntry::not_object("null"))
    }
}

enum Field {
    Jsonrpc,
    Method,
    Params,
    Id,
    Result,
    Error,
    Other,
}

struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        Ok(match key {
            "jsonrpc" => Field::Jsonrpc,
            "method" => Field::Method,
            "params" => Field::Params,
            "id" => Field::Id,
            "result" => Field::Result,
            "error" => Field::Error,
            _ => Field::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Entry<'_> {
        match decode_frame(text).unwrap() {
            Frame::Single(entry) => entry,
            Frame::Batch(_) => panic!("expected a single entry"),
        }
    }

    #[test]
    fn null_id_is_a_request_not_a_notification() {
        let Ok(Message::Request(req)) = single(r#"{"jsonrpc":"2.0","method":"m","id":null}"#) else { panic!() };
        assert_eq!(req.id, Id::Null);
    }

    #[test]
    fn missing_id_is_a_notification() {
        assert!(matches!(single(r#"{"jsonrpc":"2.0","method":"m"}"#), Ok(Message::Notification(_))));
    }

    #[test]
    fn wrong_version_is_invalid_and_keeps_the_id() {
        let Err(inv) = single(r#"{"jsonrpc":"1.0","method":"m","id":3}"#) else { panic!() };
        assert_eq!((inv.kind, inv.id, inv.error.code), (InvalidKind::Request, Id::Num(3), -32600));
    }

    #[test]
    fn escaped_version_and_method_are_accepted() {
        let Ok(Message::Request(req)) = single(r#"{"jsonrpc":"\u0032.0","method":"a\u0064d","id":1}"#) else {
            panic!()
        };
        assert_eq!(req.method, "add");
    }

    #[test]
    fn object_and_array_ids_are_invalid_with_null_id() {
        for text in [r#"{"jsonrpc":"2.0","method":"m","id":{}}"#, r#"{"jsonrpc":"2.0","method":"m","id":[1]}"#] {
            let Err(inv) = single(text) else { panic!() };
            assert_eq!((inv.id, inv.error.code), (Id::Null, -32600));
        }
    }

    #[test]
    fn scalar_params_are_invalid() {
        let Err(inv) = single(r#"{"jsonrpc":"2.0","method":"m","params":3,"id":1}"#) else { panic!() };
        assert_eq!(inv.error.code, -32600);
    }

    #[test]
    fn responses_are_decoded_with_result_or_error() {
        let Ok(Message::Response(r)) = single(r#"{"jsonrpc":"2.0","result":{"a":1},"id":"x"}"#) else { panic!() };
        assert_eq!(r.outcome.unwrap().get(), r#"{"a":1}"#);
        let Ok(Message::Response(r)) = single(r#"{"jsonrpc":"2.0","error":{"code":5,"message":"no"},"id":2}"#) else {
            panic!()
        };
        assert_eq!(r.outcome.unwrap_err(), ErrorObject::new(5, "no"));
    }

    #[test]
    fn response_with_both_result_and_error_is_an_invalid_response() {
        let Err(inv) = single(r#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"x"},"id":9}"#) else {
            panic!()
        };
        assert_eq!((inv.kind, inv.id), (InvalidKind::Response, Id::Num(9)));
    }

    #[test]
    fn empty_batch_is_one_invalid_request() {
        assert_eq!(decode_frame("[]").unwrap_err().code, -32600);
        assert_eq!(decode_frame(" [ ] ").unwrap_err().code, -32600);
    }

    #[test]
    fn truncated_json_is_a_parse_error() {
        assert_eq!(decode_frame(r#"{"jsonrpc":"2.0","method""#).unwrap_err().code, -32700);
        assert_eq!(decode_frame("").unwrap_err().code, -32700);
    }

    #[test]
    fn unknown_members_are_ignored() {
        assert!(matches!(single(r#"{"jsonrpc":"2.0","method":"m","x":[1,{}],"id":1}"#), Ok(Message::Request(_))));
    }
}

//! Property tests: for every message kind, encode -> decode -> encode is the identity.

use proptest::prelude::*;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_shared::codec::{Frame, Message, decode_frame, encode};
use switchboard_shared::{ErrorObject, Id};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".*", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        prop::collection::vec(json_value(), 0..5).prop_map(|v| Some(Value::Array(v))),
        prop::collection::btree_map(".*", json_value(), 0..5)
            .prop_map(|m| Some(Value::Object(m.into_iter().collect()))),
    ]
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        Just(Id::Null),
        any::<i64>().prop_map(Id::Num),
        ".*".prop_map(Id::from),
        (any::<i32>(), 0u32..1000).prop_map(|(a, b)| Id::from_json(&format!("{a}.{b}")).unwrap()),
        (any::<i16>(), -30i32..30).prop_map(|(a, e)| Id::from_json(&format!("{a}e{e}")).unwrap()),
    ]
}

fn error_object() -> impl Strategy<Value = ErrorObject> {
    (any::<i64>(), ".*", prop::option::of(json_value())).prop_map(|(code, message, data)| ErrorObject {
        code,
        message: message.into(),
        data,
    })
}

/// One encoded frame of any kind.
fn encoded_message() -> impl Strategy<Value = String> {
    prop_oneof![
        (id(), ".*", params()).prop_map(|(id, m, p)| encode::request(&id, &m, &p).unwrap()),
        (".*", params()).prop_map(|(m, p)| encode::notification(&m, &p).unwrap()),
        (id(), json_value()).prop_map(|(id, r)| encode::success(&id, &r).unwrap()),
        (id(), error_object()).prop_map(|(id, e)| encode::error(&id, &e)),
    ]
}

fn reencode(message: &Message<'_>) -> String {
    encode::message(message).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_kind_round_trips(text in encoded_message()) {
        let Frame::Single(Ok(message)) = decode_frame(&text).unwrap() else {
            panic!("{text} did not decode as one valid message");
        };
        prop_assert_eq!(reencode(&message), text);
    }

    #[test]
    fn batches_round_trip(entries in prop::collection::vec(encoded_message(), 1..8)) {
        let text = encode::batch(&entries);
        let Frame::Batch(decoded) = decode_frame(&text).unwrap() else { panic!("not a batch") };
        let again: Vec<String> = decoded.iter().map(|e| reencode(e.as_ref().unwrap())).collect();
        prop_assert_eq!(encode::batch(&again), text);
    }

    #[test]
    fn ids_round_trip_through_their_text(id in id()) {
        let mut text = Vec::new();
        id.write_json(&mut text);
        let text = String::from_utf8(text).unwrap();
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(Id::from_raw(raw).unwrap(), id);
    }

    #[test]
    fn no_input_makes_the_decoder_panic(text in ".*") {
        let _ = decode_frame(&text);
    }
}

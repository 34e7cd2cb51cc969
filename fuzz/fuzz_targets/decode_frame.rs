//! Feeds arbitrary bytes to the frame decoder and re-encodes whatever it
//! accepts: no input may panic, and every accepted message must re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_shared::codec::{Frame, decode_frame, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match decode_frame(text) {
        Err(error) => {
            let _ = encode::error(&switchboard_shared::Id::Null, &error);
        }
        Ok(Frame::Single(entry)) => check(entry),
        Ok(Frame::Batch(entries)) => entries.into_iter().for_each(check),
    }
});

fn check(entry: switchboard_shared::codec::Entry<'_>) {
    match entry {
        Ok(message) => {
            let text = encode::message(&message).expect("a decoded message re-encodes");
            assert!(decode_frame(&text).is_ok(), "re-encoded message decodes: {text}");
        }
        Err(invalid) => {
            let _ = encode::error(&invalid.id, &invalid.error);
        }
    }
}

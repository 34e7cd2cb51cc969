//! Criterion benches of the codec: decode + encode of a small request, a
//! 16 KiB request, and a 100-entry batch, as the peer engine does per frame.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard::shared::Id;
use switchboard::shared::codec::{Frame, Message, decode_frame, encode};

/// What the engine does with a request: decode it, answer it with its params.
fn answer(text: &str) -> usize {
    let mut bytes = 0;
    let mut one = |message: &Message<'_>| {
        if let Message::Request(req) = message {
            bytes += encode::success(&req.id, &req.params).unwrap().len();
        }
    };
    match decode_frame(text).unwrap() {
        Frame::Single(entry) => one(&entry.unwrap()),
        Frame::Batch(entries) => entries.iter().for_each(|e| one(e.as_ref().unwrap())),
    }
    bytes
}

fn codec(c: &mut Criterion) {
    let small = r#"{"jsonrpc":"2.0","method":"echo","params":["0123456789abcdef0123456789abcdef0123456789abcdef01234567"],"id":42}"#;
    let big = encode::request(&Id::Num(42), "echo", &["x".repeat(16 * 1024)]).unwrap();
    let batch =
        encode::batch(&(0..100i64).map(|i| encode::request(&Id::Num(i), "add", &[i, i]).unwrap()).collect::<Vec<_>>());
    let mut group = c.benchmark_group("decode+encode");
    for (name, text) in [("small request", small.to_owned()), ("16 KiB request", big), ("100-entry batch", batch)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| answer(black_box(&text))));
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);

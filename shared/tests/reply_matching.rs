//! The reply-matching rule every Switchboard client follows, from the table
//! the JavaScript client's tests read too (`tests/vectors/reply_ids.json`):
//! a real peer engine calls a scripted peer, which answers with the table's id.

mod common;

use common::{guard, raw_client};
use serde_json::Value;
use switchboard_shared::{Methods, PeerConfig};

#[tokio::test]
async fn replies_match_calls_by_the_shared_table() {
    let table: Value = serde_json::from_str(include_str!("vectors/reply_ids.json")).unwrap();
    for case in table["cases"].as_array().unwrap() {
        let (sent, reply, matches) =
            (case["sent"].as_i64().unwrap(), case["reply"].as_str().unwrap(), case["matches"].as_bool().unwrap());
        let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
        // The engine numbers its calls 1, 2, ...: answer the ones before the probe plainly.
        for _ in 1..sent {
            let warmup = tokio::spawn({
                let peer = peer.clone();
                async move { peer.call::<Value>("warmup", ()).await }
            });
            let request: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
            raw.send(&format!(r#"{{"jsonrpc":"2.0","result":0,"id":{}}}"#, request["id"])).await;
            guard(warmup).await.unwrap().unwrap();
        }
        let probe = tokio::spawn({
            let peer = peer.clone();
            async move { peer.call::<Value>("probe", ()).no_timeout().await }
        });
        let request: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
        assert_eq!(request["id"], sent);
        raw.send(&format!(r#"{{"jsonrpc":"2.0","result":"matched","id":{reply}}}"#)).await;
        // A marker call after it: once it is answered, the probe's reply was read.
        let marker = tokio::spawn({
            let peer = peer.clone();
            async move { peer.call::<Value>("marker", ()).await }
        });
        let request: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
        raw.send(&format!(r#"{{"jsonrpc":"2.0","result":0,"id":{}}}"#, request["id"])).await;
        guard(marker).await.unwrap().unwrap();
        // The probe's reply was read before the marker's: it answered the probe or nothing.
        if matches {
            assert_eq!(guard(probe).await.unwrap().unwrap(), "matched", "reply id {reply} for call {sent}");
        } else {
            assert_eq!(peer.pending_calls(), 1, "reply id {reply} must not answer call {sent}");
        }
    }
}

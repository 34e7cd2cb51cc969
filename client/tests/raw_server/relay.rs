//! Relays: a method registered on one side forwards its calls to another
//! server through a client, params and answers unchanged.
//!
//! Here the relaying side is itself a client: a raw "front" server calls a
//! method registered on client R, which relays it through client U to a raw
//! "upstream" server.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard_client::relay::{UPSTREAM_FAILED, relay, relay_as};
use switchboard_client::{Client, Methods};
use tokio::sync::mpsc;

use crate::support::{RawServer, free_addr, within};

/// A front server that sends each of `frames` and reports each answer (as text).
async fn front(frames: &'static [&'static str]) -> (RawServer, mpsc::UnboundedReceiver<String>) {
    let (answers_tx, answers) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let answers_tx = answers_tx.clone();
        async move {
            for frame in frames {
                conn.send_text(*frame).await;
                if frame.contains("\"id\"") {
                    let _ = answers_tx.send(conn.recv_text().await.unwrap());
                }
            }
            let _ = conn.recv().await;
        }
    })
    .await;
    (server, answers)
}

#[tokio::test]
async fn a_relayed_method_forwards_params_raw_and_returns_the_upstreams_result_or_error_unchanged() {
    let (upstream_tx, mut upstream_saw) = mpsc::unbounded_channel();
    let upstream = RawServer::start(move |mut conn| {
        let upstream_tx = upstream_tx.clone();
        async move {
            #[derive(Deserialize)]
            struct Raw<'a> {
                method: &'a str,
                #[serde(borrow)]
                params: Option<&'a RawValue>,
                #[serde(borrow)]
                id: Option<&'a RawValue>,
            }
            while let Some(text) = conn.recv_text().await {
                let _ = upstream_tx.send(text.clone());
                let req: Raw<'_> = serde_json::from_str(&text).unwrap();
                let Some(id) = req.id else { continue };
                let answer = match req.method {
                    // The params, byte for byte, as the result.
                    "echo" => {
                        format!(r#"{{"jsonrpc":"2.0","result":{},"id":{}}}"#, req.params.unwrap().get(), id.get())
                    }
                    _ => format!(
                        r#"{{"jsonrpc":"2.0","error":{{"code":42,"message":"nope","data":{{"why":[1]}}}},"id":{}}}"#,
                        id.get()
                    ),
                };
                conn.send_text(answer).await;
            }
        }
    })
    .await;
    let upstream_client = Client::connect(&upstream.url()).await.unwrap();
    let mut methods = Methods::new();
    relay_as(&mut methods, "front.echo", "echo", &upstream_client);
    relay(&mut methods, "fail", &upstream_client);
    relay(&mut methods, "note", &upstream_client);

    let (front, mut answers) = front(&[
        r#"{"jsonrpc":"2.0","method":"front.echo","params":{"b": 1.50,  "a":[1, 2]},"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"fail","params":[],"id":"two"}"#,
        r#"{"jsonrpc":"2.0","method":"note","params":["fyi"]}"#,
    ])
    .await;
    let _relaying = Client::builder().endpoint(front.url()).methods(methods).connect().await.unwrap();

    let echoed = within("the relayed result", answers.recv()).await.unwrap();
    assert_eq!(echoed, r#"{"jsonrpc":"2.0","result":{"b": 1.50,  "a":[1, 2]},"id":1}"#, "byte for byte");
    let upstream_call = within("the upstream call", upstream_saw.recv()).await.unwrap();
    assert!(upstream_call.contains(r#""method":"echo","params":{"b": 1.50,  "a":[1, 2]}"#), "{upstream_call}");

    let failed: Value = serde_json::from_str(&within("the relayed error", answers.recv()).await.unwrap()).unwrap();
    assert_eq!(
        failed,
        json!({"jsonrpc": "2.0", "error": {"code": 42, "message": "nope", "data": {"why": [1]}}, "id": "two"})
    );
    within("the upstream call", upstream_saw.recv()).await.unwrap();

    let note: Value =
        serde_json::from_str(&within("the relayed notification", upstream_saw.recv()).await.unwrap()).unwrap();
    assert_eq!(note, json!({"jsonrpc": "2.0", "method": "note", "params": ["fyi"]}));
}

#[tokio::test]
async fn a_relay_whose_upstream_is_down_answers_upstream_failed_saying_why() {
    let nowhere = free_addr().await;
    let upstream_client = Client::builder().endpoint(format!("ws://{nowhere}/rpc")).build().unwrap();
    let mut methods = Methods::new();
    relay(&mut methods, "add", &upstream_client);

    let (front, mut answers) = front(&[r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#]).await;
    let _relaying = Client::builder().endpoint(front.url()).methods(methods).connect().await.unwrap();

    let answer: Value = serde_json::from_str(&within("the relay's answer", answers.recv()).await.unwrap()).unwrap();
    assert_eq!(answer["id"], json!(7));
    assert_eq!(answer["error"]["code"], json!(UPSTREAM_FAILED));
    assert_eq!(answer["error"]["data"]["method"], json!("add"));
    assert!(answer["error"]["data"]["reason"].as_str().unwrap().contains("not connected"), "{answer}");
}

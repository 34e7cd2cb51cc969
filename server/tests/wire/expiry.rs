//! Expiring credentials, as the wire shows them: at expiry the server calls
//! `rpc.refresh` on the client, the authenticator checks the credential it
//! answers, and a connection without a valid one by the end of the grace
//! period is closed with 4401 "credentials expired". The client here is a
//! plain WebSocket that answers by hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard_server::{Identity, Rejection, Server, ServerBuilder, UpgradeRequest};

use crate::common::*;

/// What the authenticator saw of one refresh: the connection, the bearer
/// token, and the `token` query parameter (if any was left).
type Seen = Arc<Mutex<Vec<(uuid::Uuid, String, Option<String>)>>>;

/// Accepts tokens starting with `good-` (bearer or `?token=`) for `ttl`;
/// records every refresh it checks.
fn expiring(builder: ServerBuilder, ttl: Duration) -> (ServerBuilder, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let builder = builder.authenticate(move |request: &UpgradeRequest| {
        let token = request
            .bearer_token()
            .map(str::to_owned)
            .or_else(|| request.query_param("token").map(|t| t.into_owned()))
            .ok_or_else(|| Rejection::Unauthorized("a token is required".into()))?;
        if let Some(connection) = request.refreshing() {
            let query_token = request.query_param("token").map(|t| t.into_owned());
            record.lock().push((connection, token.clone(), query_token));
        }
        if token.starts_with("good-") {
            Ok(Identity::new().with_json(json!({"user": "ada"})).expires_in(ttl))
        } else {
            Err(Rejection::Forbidden("not a good token".into()))
        }
    });
    (builder, seen)
}

/// Reads the server's `rpc.refresh` call: its id (it has no params).
async fn expect_refresh(ws: &mut Ws) -> Value {
    let call = recv(ws).await;
    assert_eq!(call["method"], "rpc.refresh", "{call}");
    assert!(call.get("params").is_none(), "rpc.refresh has no params: {call}");
    call["id"].clone()
}

#[tokio::test]
async fn expired_credentials_are_refreshed_with_rpc_refresh_and_the_connection_lives_on() {
    let (builder, seen) = expiring(Server::builder(), Duration::from_millis(300));
    let server = start(builder).await;
    let mut ws = try_connect(url(&server, "/rpc?room=7&token=good-1")).await.expect("admitted");
    let id = connection_id(&mut ws).await;

    for fresh in ["good-2", "good-3"] {
        let call = expect_refresh(&mut ws).await;
        send_json(&mut ws, json!({"jsonrpc": "2.0", "result": fresh, "id": call})).await;
        // Served all along, and still the same connection.
        assert_eq!(connection_id(&mut ws).await, id);
    }
    // And again when the third token expires.
    expect_refresh(&mut ws).await;
    let seen = seen.lock().clone();
    // The authenticator saw each fresh token as the bearer, for this
    // connection, with the upgrade's `token` query parameter gone.
    assert_eq!(seen, vec![(id, "good-2".to_owned(), None), (id, "good-3".to_owned(), None)]);
    // The handlers keep the identity the connection was admitted with.
    let facts = call(&mut ws, 1, "whoami", json!([])).await;
    assert_eq!(facts["result"]["auth"], json!({"user": "ada"}));
    assert_eq!(facts["result"]["query"], "room=7&token=good-1");
}

#[tokio::test]
async fn a_client_that_sends_no_fresh_credential_is_closed_with_4401_after_the_grace_period() {
    let (ttl, grace) = (Duration::from_millis(200), Duration::from_millis(600));
    let (builder, _) = expiring(Server::builder().refresh_grace(grace), ttl);
    let (builder, mut events) = Events::install(builder);
    let server = start(builder).await;
    let connected = Instant::now();
    let mut ws = try_connect(url(&server, "/?token=good-1")).await.expect("admitted");
    let id = events.next_connected().await;

    // Answered as a client without a token provider answers.
    let refresh = expect_refresh(&mut ws).await;
    let not_found = json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": refresh});
    send_json(&mut ws, not_found).await;
    // During the grace period the connection is served.
    assert_eq!(call(&mut ws, 1, "add", json!([1, 2])).await["result"], 3);

    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4401, "credentials expired"));
    assert!(connected.elapsed() >= ttl + grace, "closed after {:?}, before expiry and grace", connected.elapsed());
    while guard("the end", futures_util::StreamExt::next(&mut ws)).await.is_some() {}
    assert_eq!(
        events.next_disconnected().await,
        (id, switchboard_shared::CloseReason::Local { code: 4401, reason: "credentials expired".into() })
    );
}

#[tokio::test]
async fn a_fresh_credential_the_authenticator_refuses_closes_with_4401() {
    let (builder, seen) =
        expiring(Server::builder().refresh_grace(Duration::from_millis(300)), Duration::from_millis(200));
    let server = start(builder).await;
    let mut ws = try_connect(url(&server, "/?token=good-1")).await.expect("admitted");
    let refresh = expect_refresh(&mut ws).await;
    send_json(&mut ws, json!({"jsonrpc": "2.0", "result": "bad-2", "id": refresh})).await;
    assert_eq!(expect_close(&mut ws).await, (4401, "credentials expired".to_owned()));
    assert_eq!(seen.lock().len(), 1, "the authenticator checked it");
}

#[tokio::test]
async fn credentials_that_do_not_expire_are_never_asked_for_again() {
    let server =
        start(Server::builder().authenticate(|_req: &UpgradeRequest| Ok::<_, Rejection>(Identity::new()))).await;
    let mut ws = connect(&server).await;
    // Well past any expiry the tests use, the only frames are the answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(call(&mut ws, 1, "add", json!([1, 1])).await["result"], 2);
}

//! Authentication and the Origin allow-list, decided before the upgrade.

use serde_json::json;
use switchboard_server::{OriginPolicy, Rejection, Server, ServerBuilder};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::*;

/// Accepts the token "good" (header or `?token=`), forbids "bad", asks for one otherwise.
fn with_auth(builder: ServerBuilder) -> ServerBuilder {
    builder.authenticate(|req| {
        match req.bearer_token().map(str::to_owned).or_else(|| req.query_param("token").map(|t| t.into_owned())) {
            Some(token) if token == "good" => Ok(json!({"user": "ada", "path": req.path()})),
            Some(_) => Err(Rejection::Forbidden("this token grants no access".into())),
            None => Err(Rejection::Unauthorized("a bearer token is required".into())),
        }
    })
}

#[tokio::test]
async fn authenticator_accepts_with_auth_data_that_handlers_see() {
    let server = start(with_auth(Server::builder())).await;
    let mut request = url(&server, "/secure").into_client_request().unwrap();
    request.headers_mut().insert("authorization", "Bearer good".parse().unwrap());
    let mut ws = try_connect(request).await.expect("accepted");
    let facts = call(&mut ws, 1, "whoami", json!([])).await;
    assert_eq!(facts["result"]["auth"], json!({"user": "ada", "path": "/secure"}));
}

#[tokio::test]
async fn missing_credentials_get_401_before_the_upgrade() {
    let server = start(with_auth(Server::builder())).await;
    match try_connect(url(&server, "/")).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer");
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert_eq!(body, "a bearer token is required");
        }
        other => panic!("expected HTTP 401, got {:?}", other.map(|_| "an upgrade")),
    }
}

#[tokio::test]
async fn wrong_credentials_get_403_before_the_upgrade() {
    let server = start(with_auth(Server::builder())).await;
    let mut request = url(&server, "/").into_client_request().unwrap();
    request.headers_mut().insert("authorization", "Bearer bad".parse().unwrap());
    assert_eq!(refused_status(try_connect(request).await), 403);
}

#[tokio::test]
async fn query_token_is_seen_by_the_authenticator() {
    let server = start(with_auth(Server::builder())).await;
    let mut ws = try_connect(url(&server, "/?token=good")).await.expect("accepted");
    assert_eq!(call(&mut ws, 1, "whoami", json!([])).await["result"]["auth"]["user"], "ada");
    assert_eq!(refused_status(try_connect(url(&server, "/?token=bad")).await), 403);
}

#[tokio::test]
async fn origin_outside_the_allow_list_gets_403() {
    let server = start(Server::builder().allowed_origins(["https://app.example"])).await;
    let mut request = url(&server, "/").into_client_request().unwrap();
    request.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(refused_status(try_connect(request).await), 403);
}

#[tokio::test]
async fn origin_on_the_allow_list_is_accepted() {
    let server = start(Server::builder().allowed_origins(["https://app.example"])).await;
    let mut request = url(&server, "/").into_client_request().unwrap();
    request.headers_mut().insert("origin", "https://app.example".parse().unwrap());
    let mut ws = try_connect(request).await.expect("accepted");
    call(&mut ws, 1, "add", json!([1, 1])).await;
}

#[tokio::test]
async fn client_without_origin_is_accepted_unless_the_policy_requires_one() {
    let lenient = start(Server::builder().allowed_origins(["https://app.example"])).await;
    let mut ws = connect(&lenient).await;
    call(&mut ws, 1, "add", json!([1, 1])).await;

    let strict = start(Server::builder().origins(OriginPolicy::AllowList {
        origins: vec!["https://app.example".into()],
        missing: switchboard_server::MissingOrigin::Refuse,
    }))
    .await;
    assert_eq!(refused_status(try_connect(url(&strict, "/")).await), 403);
}

//! Authentication and the Origin allow-list, decided before the upgrade.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_server::{Identity, OriginPolicy, Rejection, Server, ServerBuilder, ServerContext, UpgradeRequest};
use switchboard_shared::{Context, ErrorObject, Methods};
use tokio::sync::{Semaphore, mpsc};
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
    let server = start(Server::builder().allowed_origins(["https://app.example"]).unwrap()).await;
    let mut request = url(&server, "/").into_client_request().unwrap();
    request.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(refused_status(try_connect(request).await), 403);
}

#[tokio::test]
async fn origin_on_the_allow_list_is_accepted() {
    let server = start(Server::builder().allowed_origins(["https://app.example"]).unwrap()).await;
    let mut request = url(&server, "/").into_client_request().unwrap();
    request.headers_mut().insert("origin", "https://app.example".parse().unwrap());
    let mut ws = try_connect(request).await.expect("accepted");
    call(&mut ws, 1, "add", json!([1, 1])).await;
}

#[tokio::test]
async fn client_without_origin_is_accepted_unless_the_policy_requires_one() {
    let lenient = start(Server::builder().allowed_origins(["https://app.example"]).unwrap()).await;
    let mut ws = connect(&lenient).await;
    call(&mut ws, 1, "add", json!([1, 1])).await;

    let strict = start(Server::builder().origins(
        OriginPolicy::allow(["https://app.example"]).unwrap().with_missing(switchboard_server::MissingOrigin::Refuse),
    ))
    .await;
    assert_eq!(refused_status(try_connect(url(&strict, "/")).await), 403);
}

/// What the tests' authenticators accept a connection with, typed.
#[derive(Debug, Clone, PartialEq)]
struct Claims {
    user: String,
    admin: bool,
}

/// The test methods and `claims`, which answers the typed identity.
fn methods_with_claims() -> Methods {
    let mut methods = methods();
    methods.register_sync("claims", |(): (), cx: Context| {
        let claims = cx.identity::<Claims>().ok_or_else(|| ErrorObject::internal("no claims"))?;
        // Through the peer handle too, as a hook would see it.
        assert_eq!(cx.peer().identity::<Claims>(), Some(claims));
        assert_eq!(cx.identity::<String>(), None, "only the types the authenticator set");
        Ok::<_, ErrorObject>(json!({"user": claims.user, "admin": claims.admin}))
    });
    methods
}

#[tokio::test]
async fn async_authenticator_awaits_before_the_upgrade_is_answered() {
    // The authenticator reports each request, then waits for the test's go.
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<String>();
    let go = Arc::new(Semaphore::new(0));
    let permits = Arc::clone(&go);
    let builder = Server::builder().authenticate_async(move |req: UpgradeRequest| {
        let (seen_tx, permits) = (seen_tx.clone(), Arc::clone(&permits));
        async move {
            let token = req.query_param("token").map(|t| t.into_owned());
            let _ = seen_tx.send(token.clone().unwrap_or_default());
            permits.acquire().await.expect("open").forget();
            match token.as_deref() {
                Some("good") => Ok(Identity::typed(Claims { user: "ada".into(), admin: false })
                    .with_json(json!({"user": "ada", "via": "async"}))),
                _ => Err(Rejection::Unauthorized("a token is required".into())),
            }
        }
    });
    let server = start_with(builder, methods_with_claims()).await;
    let connecting = tokio::spawn(try_connect(url(&server, "/?token=good")));
    assert_eq!(guard("the authenticator starting", seen.recv()).await.unwrap(), "good");
    // It is awaiting: no answer can have reached the client.
    tokio::task::yield_now().await;
    assert!(!connecting.is_finished(), "the upgrade was answered before the authenticator decided");
    assert_eq!(server.connection_count(), 0);
    go.add_permits(1);
    let mut ws = guard("the upgrade", connecting).await.unwrap().expect("accepted");
    assert_eq!(call(&mut ws, 1, "whoami", json!([])).await["result"]["auth"], json!({"user": "ada", "via": "async"}));
    assert_eq!(call(&mut ws, 2, "claims", json!([])).await["result"], json!({"user": "ada", "admin": false}));

    // A refusal after awaiting is answered as a synchronous one is.
    let refused = tokio::spawn(try_connect(url(&server, "/")));
    assert_eq!(guard("the authenticator starting", seen.recv()).await.unwrap(), "");
    go.add_permits(1);
    assert_eq!(refused_status(guard("the refusal", refused).await.unwrap()), 401);
}

#[tokio::test]
async fn async_authenticator_past_its_timeout_gets_503_and_frees_the_slot() {
    let builder = Server::builder().max_connections(1).auth_timeout(Duration::from_millis(50)).authenticate_async(
        |req: UpgradeRequest| async move {
            if req.query_param("token").as_deref() == Some("slow") {
                std::future::pending::<()>().await;
            }
            Ok::<_, Rejection>(json!({"user": "quick"}))
        },
    );
    let server = start(builder).await;
    match try_connect(url(&server, "/?token=slow")).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(response.headers().get("retry-after").unwrap(), "1");
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("authentication did not finish within 50ms"), "{body}");
        }
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| "an upgrade")),
    }
    // The timed-out handshake gave its slot back.
    let mut ws = try_connect(url(&server, "/?token=fast")).await.expect("accepted");
    assert_eq!(call(&mut ws, 1, "whoami", json!([])).await["result"]["auth"], json!({"user": "quick"}));
}

#[tokio::test]
async fn sync_authenticator_can_set_typed_claims_too() {
    let builder = Server::builder().authenticate(|req| match req.bearer_token() {
        Some("root") => Ok(Identity::typed(Claims { user: "root".into(), admin: true })),
        _ => Err(Rejection::Unauthorized("a bearer token is required".into())),
    });
    let server = start_with(builder, methods_with_claims()).await;
    let mut request = url(&server, "/").into_client_request().unwrap();
    request.headers_mut().insert("authorization", "Bearer root".parse().unwrap());
    let mut ws = try_connect(request).await.expect("accepted");
    assert_eq!(call(&mut ws, 1, "claims", json!([])).await["result"], json!({"user": "root", "admin": true}));
    // No JSON auth data was given.
    assert_eq!(call(&mut ws, 2, "whoami", json!([])).await["result"]["auth"], json!(null));
}

//! Settings that weaken a default say so in the log when the server is built.

mod support;

use support::logs::Buffer;
use switchboard::server::{OriginPolicy, Server};
use switchboard::shared::Methods;

/// What building a server with `policy` logs.
fn logged_when_built(policy: OriginPolicy) -> String {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt().with_writer(buffer.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, || drop(Server::builder().origins(policy).build(Methods::new())));
    buffer.text()
}

#[test]
fn origin_policy_any_logs_a_warning_when_the_server_is_built() {
    let logged = logged_when_built(OriginPolicy::Any);
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains("origin policy Any: a page from any web site may open a connection"), "{logged}");
    assert_eq!(logged_when_built(OriginPolicy::SameOrigin), "", "the default logs nothing");
}

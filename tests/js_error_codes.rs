//! The browser client names every error code the server sends: its
//! `ErrorCode` table (client/js/protocol.js, and the types in
//! switchboard.d.ts) matches the Rust constants, name for name.

use switchboard_shared::code;

/// (the JS name, the Rust constant)
const CODES: &[(&str, i64)] = &[
    ("ParseError", code::PARSE_ERROR),
    ("InvalidRequest", code::INVALID_REQUEST),
    ("MethodNotFound", code::METHOD_NOT_FOUND),
    ("InvalidParams", code::INVALID_PARAMS),
    ("InternalError", code::INTERNAL_ERROR),
    ("ShuttingDown", code::SHUTTING_DOWN),
    ("SubscriptionDenied", code::SUBSCRIPTION_DENIED),
    ("ServerBusy", code::SERVER_BUSY),
    ("BrokerUnavailable", code::BROKER_UNAVAILABLE),
    ("PersistentConnectionRequired", code::PERSISTENT_CONNECTION_REQUIRED),
    ("RateLimited", code::RATE_LIMITED),
    ("RequestCancelled", code::REQUEST_CANCELLED),
];

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

#[test]
fn the_javascript_client_names_every_error_code_the_server_sends() {
    let js = read("client/js/protocol.js");
    let types = read("client/js/switchboard.d.ts");
    for (name, value) in CODES {
        assert!(js.contains(&format!("  {name}: {value},")), "protocol.js ErrorCode lacks {name}: {value}");
        assert!(types.contains(&format!("  {name}: {value};")), "switchboard.d.ts ErrorCode lacks {name}: {value}");
    }
}

//! The origin policy and the secret redaction, on arbitrary text: the input
//! is split on newlines into an allow-list entry, an `Origin` and a `Host`.
//!
//! No input may panic. An entry that parses prints back to itself; a policy
//! admits every request without an `Origin`, and a same-origin request
//! whatever its list; `Any` admits everything. Redacting a URL twice changes
//! nothing more, and a redacted query keeps no value of a `token` parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_server::{OriginPattern, OriginPolicy};
use switchboard_shared::credentials::{redact_query, redact_url};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let (entry, origin, host) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));

    if let Ok(pattern) = entry.parse::<OriginPattern>() {
        let shown = pattern.to_string();
        assert_eq!(shown.parse::<OriginPattern>().as_ref(), Ok(&pattern), "{entry:?} printed as {shown:?}");
    }
    let policy = OriginPolicy::allow([entry]).unwrap_or_default();
    let _ = policy.admits(Some(origin), Some(host));
    assert!(policy.admits(None, Some(host)), "no Origin is admitted");
    assert!(OriginPolicy::Any.admits(Some(origin), Some(host)));
    // A plain `name.name:port` Host: the page served from it is same-origin.
    if let Some((name, port)) = host.split_once(':') {
        let plain_name = !name.is_empty() && name.split('.').all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase()));
        let plain_port = port.parse::<u16>().is_ok_and(|p| p > 0) && !port.starts_with('0') && !port.starts_with('+');
        if plain_name && plain_port {
            let same = format!("http://{host}");
            assert!(policy.admits(Some(&same), Some(host)), "same origin {same:?} for Host {host:?}");
        }
    }

    let once = redact_url(text);
    assert_eq!(redact_url(&once), once, "redacting twice");
    let query = redact_query(origin);
    for pair in query.split('&') {
        if let Some(("token", value)) = pair.split_once('=') {
            assert_eq!(value, "[redacted]", "{origin:?} became {query:?}");
        }
    }
});

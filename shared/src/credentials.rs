//! The wire of expiring credentials, and keeping secrets out of text.
//!
//! Terms:
//! - a server whose authenticator accepted a connection with an **expiry**
//!   calls [`REFRESH_METHOD`] on the client when it passes, with no params;
//!   the client answers with a fresh **credential** (a JSON string, the same
//!   kind of token it connected with), which the server's authenticator
//!   checks. A connection that has no valid credential by the end of the
//!   server's grace period is closed with [`CREDENTIALS_EXPIRED`];
//! - a **secret query parameter** is one named in [`SECRET_QUERY_PARAMS`]
//!   (`token`, `access_token`): the way browsers, which cannot set an
//!   `Authorization` header on a WebSocket, send their credential. Its value
//!   is shown as [`REDACTED`] wherever Switchboard prints a query or a URL
//!   (logs, `Debug`, error messages).

use std::borrow::Cow;

/// The method a server calls on a client whose credentials expired; the
/// result is a fresh credential (a JSON string).
pub const REFRESH_METHOD: &str = "rpc.refresh";

/// The close code of a connection whose credentials expired and were not
/// refreshed within the server's grace period, with the reason
/// [`CREDENTIALS_EXPIRED_REASON`]. (4401, after HTTP's 401: a client may
/// reconnect with a fresh credential.)
pub const CREDENTIALS_EXPIRED: u16 = 4401;

/// The close reason sent with [`CREDENTIALS_EXPIRED`].
pub const CREDENTIALS_EXPIRED_REASON: &str = "credentials expired";

/// Query parameters whose values are secrets, compared without regard to ASCII case.
pub const SECRET_QUERY_PARAMS: [&str; 2] = ["token", "access_token"];

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// `query` (without `?`) with the value of every secret parameter replaced
/// by [`REDACTED`]; borrowed when there is none.
///
/// ```
/// use switchboard_shared::credentials::redact_query;
/// assert_eq!(redact_query("room=7&token=s3cret"), "room=7&token=[redacted]");
/// assert_eq!(redact_query("room=7"), "room=7");
/// ```
pub fn redact_query(query: &str) -> Cow<'_, str> {
    if !query.split('&').any(is_secret_pair) {
        return Cow::Borrowed(query);
    }
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_pair(pair) => Cow::Owned(format!("{key}={REDACTED}")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    Cow::Owned(pairs.join("&"))
}

/// `url` with the values of secret query parameters and any password
/// (`ws://user:password@host`) replaced by [`REDACTED`]; borrowed when there
/// is neither.
///
/// ```
/// use switchboard_shared::credentials::redact_url;
/// assert_eq!(redact_url("ws://hub/rpc?token=s3cret"), "ws://hub/rpc?token=[redacted]");
/// assert_eq!(redact_url("ws://ada:pw@hub/"), "ws://ada:[redacted]@hub/");
/// ```
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (url, None),
    };
    let (head, query) = match before_fragment.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (before_fragment, None),
    };
    let head = redact_password(head);
    let query = query.map(redact_query);
    if matches!(head, Cow::Borrowed(_)) && !matches!(query, Some(Cow::Owned(_))) {
        return Cow::Borrowed(url);
    }
    let mut out = head.into_owned();
    if let Some(query) = query {
        out.push('?');
        out.push_str(&query);
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Cow::Owned(out)
}

/// `scheme://user:password@host/...` with the password redacted.
fn redact_password(head: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = head.split_once("://") else { return Cow::Borrowed(head) };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return Cow::Borrowed(head) };
    let Some((user, _password)) = userinfo.split_once(':') else { return Cow::Borrowed(head) };
    Cow::Owned(format!("{scheme}://{user}:{REDACTED}@{host}{}", &rest[authority_end..]))
}

/// Whether `key=value` (or a bare `key`) names a secret parameter.
fn is_secret_pair(pair: &str) -> bool {
    let key = pair.split_once('=').map_or(pair, |(key, _)| key);
    let key: Cow<'_, str> = if key.contains('%') || key.contains('+') {
        // Percent-decoded, so that `%74oken` is caught too.
        Cow::Owned(percent_decode(key))
    } else {
        Cow::Borrowed(key)
    };
    pair.contains('=') && SECRET_QUERY_PARAMS.iter().any(|secret| key.eq_ignore_ascii_case(secret))
}

/// A query key, `+` and `%XX` decoded (invalid escapes kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_parameters_are_redacted_whatever_their_case_or_encoding() {
        assert_eq!(redact_query("TOKEN=a&x=1&access_token=b"), "TOKEN=[redacted]&x=1&access_token=[redacted]");
        assert_eq!(redact_query("%74oken=a"), "%74oken=[redacted]");
        assert_eq!(redact_query("tokens=a&token"), "tokens=a&token");
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn urls_keep_everything_but_their_secrets() {
        assert_eq!(redact_url("wss://h:9/p?a=1&token=x#f"), "wss://h:9/p?a=1&token=[redacted]#f");
        assert!(matches!(redact_url("ws://h/p?a=1"), Cow::Borrowed(_)));
        assert_eq!(redact_url("ws://u:p@h/?token=x"), "ws://u:[redacted]@h/?token=[redacted]");
        assert_eq!(redact_url("ws://u@h/"), "ws://u@h/");
        assert_eq!(redact_url("not a url %"), "not a url %");
    }
}

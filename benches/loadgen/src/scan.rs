//! A lenient, allocation-free scanner for the top level of a JSON-RPC frame.
//!
//! It checks the shape of the outer object (keys, colons, commas, braces) and
//! returns the raw bytes of the members JSON-RPC cares about. Nested values are
//! skipped, not validated: the load generator only needs to know which call a
//! reply answers and whether it carries a result, and must stay cheaper than
//! the server it measures. Where a value has to be checked (an echoed result),
//! the caller compares the raw bytes and falls back to a real parse.

use memchr::memchr2;

/// The raw (still JSON-encoded) members of one JSON-RPC object.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `"jsonrpc"` member, e.g. `"2.0"` including the quotes.
    pub jsonrpc: Option<&'a [u8]>,
    /// `"id"` member.
    pub id: Option<&'a [u8]>,
    /// `"method"` member, including the quotes.
    pub method: Option<&'a [u8]>,
    /// `"params"` member.
    pub params: Option<&'a [u8]>,
    /// `"result"` member.
    pub result: Option<&'a [u8]>,
    /// `"error"` member.
    pub error: Option<&'a [u8]>,
}

impl Fields<'_> {
    /// True when `"jsonrpc":"2.0"` is present.
    pub fn is_v2(&self) -> bool {
        self.jsonrpc == Some(b"\"2.0\"")
    }

    /// The id as an unsigned integer, if it is one.
    pub fn id_u64(&self) -> Option<u64> {
        parse_u64(self.id?)
    }
}

/// Parses a plain unsigned decimal integer (no sign, no exponent).
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `b[i]` is an opening quote; returns the index just past the closing quote.
#[inline]
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = j + memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[k] == b'\\' {
            j = k + 2;
        } else {
            return Some(k + 1);
        }
    }
}

/// `b[i]` is `{` or `[`; returns the index just past the matching close.
fn skip_nested(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match *b.get(j)? {
            b'"' => {
                j = skip_string(b, j)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
}

fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => skip_nested(b, i),
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Scans one JSON object and returns its JSON-RPC members, or `None` if the
/// text is not a single well-formed top-level object.
pub fn scan_object(b: &[u8]) -> Option<Fields<'_>> {
    let mut f = Fields::default();
    let mut i = skip_ws(b, 0);
    if *b.get(i)? != b'{' {
        return None;
    }
    i = skip_ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return (skip_ws(b, i + 1) == b.len()).then_some(f);
    }
    loop {
        i = skip_ws(b, i);
        if *b.get(i)? != b'"' {
            return None;
        }
        let key_end = skip_string(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if *b.get(i)? != b':' {
            return None;
        }
        i = skip_ws(b, i + 1);
        let value_end = skip_value(b, i)?;
        let value = &b[i..value_end];
        match key {
            b"jsonrpc" => f.jsonrpc = Some(value),
            b"id" => f.id = Some(value),
            b"method" => f.method = Some(value),
            b"params" => f.params = Some(value),
            b"result" => f.result = Some(value),
            b"error" => f.error = Some(value),
            _ => {}
        }
        i = skip_ws(b, value_end);
        match *b.get(i)? {
            b',' => i += 1,
            b'}' => {
                i += 1;
                break;
            }
            _ => return None,
        }
    }
    (skip_ws(b, i) == b.len()).then_some(f)
}

/// True when two raw JSON values are equal: byte-equal (the fast path), or
/// equal after parsing (a server may re-encode with other spacing).
pub fn json_eq(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (serde_json::from_slice::<serde_json::Value>(a), serde_json::from_slice::<serde_json::Value>(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_fields() {
        let f = scan_object(br#"{"jsonrpc":"2.0","result":["a\"}]x",{"k":[1,2]}],"id":42}"#).unwrap();
        assert!(f.is_v2());
        assert_eq!(f.id_u64(), Some(42));
        assert_eq!(f.result, Some(&br#"["a\"}]x",{"k":[1,2]}]"#[..]));
        assert_eq!(f.error, None);
    }

    #[test]
    fn spaced_and_reordered() {
        let f = scan_object(b" { \"id\" : 7 , \"result\" : null , \"jsonrpc\" : \"2.0\" } ").unwrap();
        assert_eq!(f.id_u64(), Some(7));
        assert_eq!(f.result, Some(&b"null"[..]));
        assert!(f.is_v2());
    }

    #[test]
    fn notification() {
        let f = scan_object(br#"{"jsonrpc":"2.0","method":"tick","params":{"seq":3,"pad":"xx"}}"#).unwrap();
        assert_eq!(f.method, Some(&b"\"tick\""[..]));
        assert_eq!(f.id, None);
        assert_eq!(f.params, Some(&br#"{"seq":3,"pad":"xx"}"#[..]));
    }

    #[test]
    fn malformed() {
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{\"id\":1",
            b"{\"id\" 1}",
            b"{\"id\":1}x",
            b"{\"id\":}",
            b"{\"a\":\"unterminated}",
            b"{\"a\":[1,2}",
        ] {
            assert_eq!(scan_object(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(scan_object(b"{}"), Some(Fields::default()));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"1.0"), None);
        assert_eq!(parse_u64(b"\"1\""), None);
    }

    #[test]
    fn equality() {
        assert!(json_eq(b"[\"xx\"]", b"[\"xx\"]"));
        assert!(json_eq(b"[ \"xx\" ]", b"[\"xx\"]"));
        assert!(!json_eq(b"[\"xy\"]", b"[\"xx\"]"));
    }
}

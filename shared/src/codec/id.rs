//! Request ids: number, string or null, echoed exactly as the peer sent them.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON-RPC request id.
///
/// Numbers keep their original JSON text, so `9007199254740993`, `-1` and
/// `1.5` come back byte for byte (a float or a 64-bit integer that went
/// through `f64` would not). Canonical integers that fit an `i64` are stored
/// as [`Id::Num`] so that generated ids are cheap to hash and compare.
///
/// ```
/// use switchboard_shared::Id;
/// let id = Id::from_json("9007199254740993").unwrap();
/// assert_eq!(id.to_string(), "9007199254740993");
/// assert_eq!(Id::from_json("1.50").unwrap().to_string(), "1.50");
/// assert_eq!(Id::from_json(r#""ü""#).unwrap(), Id::from("ü"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// `null`: allowed by the spec, discouraged for requests.
    Null,
    /// An integer whose JSON text is canonical (`-12`, `0`, `42`).
    Num(i64),
    /// Any other JSON number, kept as its exact original text (`1.5`, `1e3`, `-0`).
    Number(Arc<str>),
    /// A string id (the decoded value).
    Str(Arc<str>),
}

/// Why a JSON value cannot be an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("id must be a number, a string or null, not {0}")]
pub struct InvalidId(pub &'static str);

impl Id {
    /// Reads an id from its raw JSON text (which must already be valid JSON).
    pub fn from_json(text: &str) -> Result<Id, InvalidId> {
        match text.as_bytes().first() {
            Some(b'n') => Ok(Id::Null),
            Some(b'"') => {
                let s: std::borrow::Cow<'_, str> =
                    serde_json::from_str(text).map_err(|_| InvalidId("a malformed string"))?;
                Ok(Id::Str(Arc::from(s.as_ref())))
            }
            Some(b'-' | b'0'..=b'9') => Ok(Self::number(text)),
            Some(b't' | b'f') => Err(InvalidId("a boolean")),
            Some(b'{') => Err(InvalidId("an object")),
            Some(b'[') => Err(InvalidId("an array")),
            _ => Err(InvalidId("empty")),
        }
    }

    /// Reads an id from a raw JSON value.
    pub fn from_raw(raw: &RawValue) -> Result<Id, InvalidId> {
        Self::from_json(raw.get())
    }

    fn number(text: &str) -> Id {
        match text.parse::<i64>() {
            // Only canonical text may lose its spelling: "007", "+1" or "-0" must not.
            Ok(n) if is_canonical_int(text) => Id::Num(n),
            _ => Id::Number(Arc::from(text)),
        }
    }

    /// Appends the id's JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Id::Null => out.extend_from_slice(b"null"),
            Id::Num(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Id::Number(text) => out.extend_from_slice(text.as_bytes()),
            Id::Str(s) => {
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, s.as_ref());
            }
        }
    }
}

fn is_canonical_int(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0"
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_json(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Num(n)
    }
}

impl From<u32> for Id {
    fn from(n: u32) -> Self {
        Id::Num(n.into())
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::Str(Arc::from(s))
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::Str(Arc::from(s))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Null => serializer.serialize_unit(),
            Id::Num(n) => serializer.serialize_i64(*n),
            Id::Number(text) => {
                let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
            Id::Str(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(deserializer)?;
        Id::from_raw(&raw).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_keep_their_exact_text() {
        for text in ["9007199254740993", "-1", "1.5", "0", "-0", "1e3", "1.50", "18446744073709551616"] {
            assert_eq!(Id::from_json(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn canonical_integers_are_stored_as_numbers() {
        assert_eq!(Id::from_json("42").unwrap(), Id::Num(42));
        assert_eq!(Id::from_json("-7").unwrap(), Id::Num(-7));
        assert!(matches!(Id::from_json("-0").unwrap(), Id::Number(_)));
    }

    #[test]
    fn structured_and_boolean_ids_are_rejected() {
        assert!(Id::from_json("{}").is_err());
        assert!(Id::from_json("[1]").is_err());
        assert!(Id::from_json("true").is_err());
    }

    #[test]
    fn string_ids_round_trip_unicode() {
        let id = Id::from_json(r#""ü""#).unwrap();
        assert_eq!(id.to_string(), r#""ü""#);
    }
}

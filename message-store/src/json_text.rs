//! [`JsonText`]: a message's data as the store returned it, decoded only
//! when somebody asks for it, straight into the type they ask for.

use std::fmt;

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// JSON text, kept as the store returned it.
///
/// A read message's data stays text until it is decoded, and is then
/// decoded once, directly into the handler's type: no
/// [`serde_json::Value`] is built on the way. [`Message::data`] is the
/// usual way in; [`decode`](Self::decode) is the same without the
/// message's context in the error.
///
/// Two texts are equal when their characters are; PostgreSQL's `jsonb`
/// prints `{"a": 1}` where serde prints `{"a":1}`, so compare decoded
/// values (or use the `PartialEq<Value>` impl, which decodes) when the
/// text may come from either.
///
/// ```
/// use ebb_message_store::JsonText;
/// use serde_json::json;
///
/// let text = JsonText::parse(r#"{"accountId": "123", "amount": 10}"#)?;
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Deposited { account_id: String, amount: i64 }
/// let deposited: Deposited = text.decode()?;
/// assert_eq!((deposited.account_id.as_str(), deposited.amount), ("123", 10));
/// assert_eq!(text, json!({ "amount": 10, "accountId": "123" }));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// [`Message::data`]: crate::Message::data
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// `text` if it is one well-formed JSON value, else serde's error.
    pub fn parse(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        let text = text.into();
        // Checks the syntax without building anything.
        serde_json::from_str::<&RawValue>(&text)?;
        Ok(Self(text.into_boxed_str()))
    }

    /// Text that is JSON by construction: what a `json` or `jsonb` column
    /// returns, or what serde_json printed.
    pub(crate) fn trusted(text: impl Into<Box<str>>) -> Self {
        Self(text.into())
    }

    /// The JSON `null`: what a message whose data column is SQL NULL reads
    /// as.
    pub fn null() -> Self {
        Self("null".into())
    }

    /// `value`, printed.
    pub fn from_value(value: &Value) -> Self {
        Self(value.to_string().into_boxed_str())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the JSON `null` (and for SQL NULL, which reads as it).
    pub fn is_null(&self) -> bool {
        self.0.trim() == "null"
    }

    /// Decodes the text into `T`, directly.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Decodes the text into a [`Value`], for code that wants to look
    /// around in it; a typed struct is cheaper (see [`decode`](Self::decode)).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        self.decode()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text itself: a debug print of a message shows its data as
        // it is stored.
        f.write_str(&self.0)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl From<&Value> for JsonText {
    fn from(value: &Value) -> Self {
        Self::from_value(value)
    }
}

/// Decodes `self` and compares values: key order and whitespace do not
/// matter. Text that does not decode equals nothing.
impl PartialEq<Value> for JsonText {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().is_ok_and(|value| value == *other)
    }
}

impl PartialEq<JsonText> for Value {
    fn eq(&self, other: &JsonText) -> bool {
        other == self
    }
}

/// Serializes as the JSON it holds, not as a string.
impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Deserializes any JSON value, keeping its text.
impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self(String::from(Box::<str>::from(raw)).into_boxed_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_refuses_what_is_not_one_json_value() {
        for bad in ["", "{", "{\"a\": }", "1 2", "nul", "{'a': 1}"] {
            assert!(JsonText::parse(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["null", " 1 ", "\"s\"", "[1, {\"a\": [true]}]"] {
            assert_eq!(JsonText::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn decodes_into_a_type_and_compares_with_values_by_value() {
        let text = JsonText::trusted(r#"{"b": [1, 2], "a": "x"}"#);
        let decoded: std::collections::BTreeMap<String, Value> = text.decode().unwrap();
        assert_eq!(decoded["a"], json!("x"));
        assert_eq!(text, json!({ "a": "x", "b": [1, 2] }));
        assert_ne!(text, json!({ "a": "x" }));
        assert_ne!(JsonText::trusted("{"), json!({}));
        assert!(JsonText::null().is_null());
        assert!(!JsonText::trusted("{}").is_null());
    }

    #[test]
    fn serializes_as_json_and_round_trips_through_serde() {
        let text = JsonText::trusted(r#"{"a": [1, 2]}"#);
        let outer = serde_json::to_string(&json!({ "data": text })).unwrap();
        assert_eq!(outer, r#"{"data":{"a":[1,2]}}"#);

        #[derive(Deserialize)]
        struct Outer {
            data: JsonText,
        }
        let back: Outer = serde_json::from_str(r#"{"data": {"a": [1, 2]}, "x": 1}"#).unwrap();
        assert_eq!(back.data.as_str(), r#"{"a": [1, 2]}"#);
        assert_eq!(format!("{:?}", back.data), r#"{"a": [1, 2]}"#);
    }
}

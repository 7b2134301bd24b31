//! Parsing a payload into a JSON value that keeps only the fields a parser reads. Provider
//! payloads are mostly repository, organisation and user objects full of URLs we never use;
//! skipping them while parsing (no allocation for skipped values) roughly halves the cost of
//! a delivery.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Parses `bytes`, keeping object keys in `keep` (sorted; at any depth) and dropping all others.
pub fn parse(bytes: &[u8], keep: &[&str]) -> Result<Value, serde_json::Error> {
    debug_assert!(keep.is_sorted(), "the kept field names must be sorted");
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Pruned { keep }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A delivery's raw body as a pruned value, or a payload error saying where it is broken.
pub fn parse_payload(bytes: &[u8], keep: &[&str]) -> Result<Value, super::json::InvalidPayload> {
    parse(bytes, keep)
        .map_err(|e| super::json::InvalidPayload(format!("request body is not valid JSON: {e}")))
}

#[derive(Clone, Copy)]
struct Pruned<'k> {
    keep: &'k [&'k str],
}

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if self.keep.binary_search(&key.as_ref()).is_ok() {
                let value = map.next_value_seed(self)?;
                object.insert(key.into_owned(), value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_listed_keys_at_any_depth() {
        let bytes = br#"{"a": {"b": 1, "skip": {"deep": [1, 2, {"a": 3}]}, "a": [{"b": "x\n"}]}, "skip": "long", "b": null}"#;
        let value = parse(bytes, &["a", "b"]).unwrap();
        assert!(crate::webhooks::gitlab::FIELDS.is_sorted());
        assert!(crate::webhooks::github::FIELDS.is_sorted());
        assert_eq!(
            value,
            json!({"a": {"b": 1, "a": [{"b": "x\n"}]}, "b": null})
        );
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for bad in [
            &b"{\"a\": 1"[..],
            b"{\"a\": 1} x",
            b"",
            b"{\"skip\": [1,}",
            b"[1 2]",
        ] {
            assert!(
                parse(bad, &["a"]).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(serde_json::from_slice::<Value>(bad).is_err());
        }
        assert_eq!(
            parse(b"[1, -2, 3.5, true]", &[]).unwrap(),
            json!([1, -2, 3.5, true])
        );
        assert_eq!(parse(br#"{"\u0061": 1}"#, &["a"]).unwrap(), json!({"a": 1}));
    }
}

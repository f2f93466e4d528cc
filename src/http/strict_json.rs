//! A JSON value read as `T` the way serde_json reads text, except that an
//! array is never taken for a struct (serde's derive accepts a sequence of
//! the fields in order, so `[null, null]` would pass for an object body).
//! Every nested value is read the same way.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use serde_json::{Map, Value};

/// Reads `value` as `T`, refusing arrays where `T` (or anything inside it)
/// expects a struct.
pub struct StrictValue<'a>(pub &'a Value);

type Error = serde_json::Error;

impl<'de, 'a> Deserializer<'de> for StrictValue<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(Items(items.iter())),
            Value::Object(map) => visitor.visit_map(Members::new(map)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &"an object")),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Enums are unit variants named by strings (or serde_json's
        // externally tagged objects): its own reading is the right one.
        self.0.clone().deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de, 'a> SeqAccess<'de> for Items<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(StrictValue(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Members<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'a> Members<'a> {
    fn new(map: &'a Map<String, Value>) -> Members<'a> {
        Members {
            iter: map.iter(),
            value: None,
        }
    }
}

impl<'de, 'a> MapAccess<'de> for Members<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let key: de::value::StrDeserializer<'_, Error> = key.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(StrictValue(value)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::StrictValue;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        name: Option<String>,
        inner: Option<Inner>,
        list: Vec<Inner>,
    }

    fn read<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
        serde_path_to_error::deserialize(StrictValue(&v)).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_read_as_serde_json_reads_them() {
        let got: Outer = read(json!({"name": "x", "inner": {"a": 1}, "list": [{"a": 2}]})).unwrap();
        assert_eq!(
            got,
            Outer {
                name: Some("x".into()),
                inner: Some(Inner { a: 1 }),
                list: vec![Inner { a: 2 }]
            }
        );
        assert_eq!(
            read::<Outer>(json!({"list": [{"a": -1}]})).unwrap_err(),
            "list[0].a: invalid value: integer `-1`, expected u32"
        );
    }

    #[test]
    fn arrays_are_never_structs() {
        assert_eq!(
            read::<Outer>(json!([null, null, []])).unwrap_err(),
            "invalid type: sequence, expected an object"
        );
        assert_eq!(
            read::<Outer>(json!({"inner": [1], "list": []})).unwrap_err(),
            "inner: invalid type: sequence, expected an object"
        );
        assert_eq!(
            read::<Outer>(json!({"list": [[1]]})).unwrap_err(),
            "list[0]: invalid type: sequence, expected an object"
        );
    }
}

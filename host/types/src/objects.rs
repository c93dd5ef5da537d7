//! Deserializers that take a JSON object and nothing else. serde's derived
//! structs also accept an array of their fields in order, so
//! `"settings": [null, "x"]` would set `agent_channel`; the API takes
//! objects only, as its OpenAPI document says. The object is handed to the
//! struct's own visitor, so serde_json's line and column stay right.
//!
//! Used with `#[serde(deserialize_with = "…")]` on the fields that hold a
//! struct, and by the API for whole request bodies.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A `T` read from a JSON object only.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ObjectVisitor<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// A struct field: an object.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    Object::deserialize(deserializer).map(|Object(value)| value)
}

/// An optional struct field: an object or `null`.
pub fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(value)| value))
}

/// A list of structs: an array of objects.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    struct ListVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of JSON objects")
        }

        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<T>, S::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(ObjectVisitor(PhantomData))? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_seq(ListVisitor(PhantomData))
}

/// A whole number, also when written `22.0`: JSON Schema's `integer`.
pub fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    use serde::de::{Error, Unexpected};
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(whole) = number.as_u64() {
        return u32::try_from(whole).map_err(|_| D::Error::invalid_value(Unexpected::Unsigned(whole), &"a whole number up to 4294967295"));
    }
    if let Some(negative) = number.as_i64() {
        return Err(D::Error::invalid_value(Unexpected::Signed(negative), &"a whole number from 0 to 4294967295"));
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&value) => Ok(value as u32),
        Some(value) if value.fract() == 0.0 => Err(D::Error::invalid_value(Unexpected::Float(value), &"a whole number from 0 to 4294967295")),
        Some(value) => Err(D::Error::invalid_type(Unexpected::Float(value), &"a whole number")),
        None => Err(D::Error::custom("expected a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: Option<String>,
        #[serde(default)]
        b: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(deserialize_with = "object")]
        one: Inner,
        #[serde(default, deserialize_with = "objects")]
        many: Vec<Inner>,
        #[serde(default, deserialize_with = "optional_object")]
        maybe: Option<Inner>,
        #[serde(default, deserialize_with = "whole_number")]
        weight: u32,
    }

    fn parse(text: &str) -> Result<Outer, String> {
        serde_json::from_str::<Object<Outer>>(text).map(|Object(outer)| outer).map_err(|error| error.to_string())
    }

    #[test]
    fn works_when_every_struct_is_an_object_and_a_weight_is_written_22_0() {
        let outer = parse(r#"{"one": {"a": "x"}, "many": [{"a": null}], "maybe": null, "weight": 22.0}"#).expect("valid");
        assert_eq!((outer.one.a.as_deref(), outer.many.len(), outer.maybe, outer.weight), (Some("x"), 1, None, 22));
    }

    #[test]
    fn errors_when_a_struct_is_an_array_with_the_line_and_column() {
        for (text, expected) in [
            (r#"["x"]"#, "invalid type: sequence, expected a JSON object at line 1 column 0"),
            ("{\"one\": [null, null]}", "invalid type: sequence, expected a JSON object at line 1 column 8"),
            ("{\"one\": {\"a\": \"x\"},\n \"many\": [[null]]}", "invalid type: sequence, expected a JSON object at line 2 column 10"),
            (r#"{"one": {"a": "x"}, "maybe": [null]}"#, "invalid type: sequence, expected a JSON object at line 1 column 29"),
            (r#"{"one": {"a": "x", "c": 1}}"#, "unknown field `c`, expected `a` or `b` at line 1 column 22"),
            (r#"{"one": {"a": "x"}, "weight": 22.5}"#, "invalid type: floating point `22.5`, expected a whole number at line 1 column 35"),
            (r#"{"one": {"a": "x"}, "weight": -1}"#, "invalid value: integer `-1`, expected a whole number from 0 to 4294967295 at line 1 column 33"),
        ] {
            assert_eq!(parse(text).expect_err(text), expected, "{text}");
        }
    }
}

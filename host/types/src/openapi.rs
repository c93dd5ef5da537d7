//! JSON Schema pieces for the `ToSchema` derives of this crate and of the
//! API (feature `openapi`): what a derive cannot say from a Rust type alone
//! — a name that is not blank, a code of letters and digits — in one place.

use serde_json::{json, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

/// The characters `str::trim` removes (Unicode White_Space).
pub const WHITESPACE_RANGES: &[(char, char)] = &[
    ('\u{9}', '\u{D}'),
    ('\u{20}', '\u{20}'),
    ('\u{85}', '\u{85}'),
    ('\u{A0}', '\u{A0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200A}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202F}', '\u{202F}'),
    ('\u{205F}', '\u{205F}'),
    ('\u{3000}', '\u{3000}'),
];

/// Those characters as the body of a regex class, in `\uXXXX` escapes
/// that ECMA-262 and Python read alike.
pub fn whitespace_class() -> String {
    WHITESPACE_RANGES
        .iter()
        .map(|&(low, high)| match low == high {
            true => format!("\\u{:04X}", low as u32),
            false => format!("\\u{:04X}-\\u{:04X}", low as u32, high as u32),
        })
        .collect()
}

/// A name as `crate::is_valid_name` accepts it: not blank, at most `max`
/// characters as sent. The pattern has no anchors, so every regex dialect
/// reads it alike.
pub fn name(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!("[^{}]", whitespace_class())))
        .description(Some(format!("1 to {max} characters, not only white space; stored trimmed")))
}

pub fn name_200() -> ObjectBuilder {
    name(200)
}

pub fn name_100() -> ObjectBuilder {
    name(100)
}

/// `null` or a name of at most 200 characters.
pub fn optional_name_200() -> Schema {
    Schema::OneOf(OneOfBuilder::new().item(name(200)).item(ObjectBuilder::new().schema_type(Type::Null)).build())
}

pub fn into_schema(object: Object) -> RefOr<Schema> {
    RefOr::T(Schema::Object(object))
}

/// Adds a JSON Schema keyword utoipa's model has no field for (`not`,
/// `if`, `then`), next to the object's own.
pub fn with_keyword(mut object: Object, keyword: &str, value: Value) -> Object {
    object.extensions.get_or_insert_with(Default::default).insert(keyword.to_owned(), value);
    object
}

/// Letters, digits and `_` only, at least one.
pub fn code() -> ObjectBuilder {
    let object = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).build();
    with_keyword(object, "not", json!({"pattern": "[^A-Za-z0-9_]"})).into()
}

/// A campaign result field's code: a code that is not a default field.
pub fn result_code() -> ObjectBuilder {
    let object = with_keyword(code().build(), "allOf", json!([{"not": {"enum": ["ResultFlag", "ResultDatetime"]}}]));
    ObjectBuilder::from(object)
        .description(Some("letters, digits and _; unique in the campaign; not a default field (ResultFlag, ResultDatetime)"))
}

/// A stage alternative's share, in percent.
pub fn weight() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(crate::stage::TOTAL_WEIGHT))
        .description(Some("percent of the contacts"))
}

pub fn date_time() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

/// The schema of a type whose fields are another's plus its own
/// (`#[serde(flatten)]`): one object, so that a response carrying both
/// validates although the inner type refuses unknown fields as a request.
pub fn extended(inner: RefOr<Schema>, outer: Object) -> Object {
    let RefOr::T(Schema::Object(mut object)) = inner else { panic!("a flattened type is an inline object") };
    object.additional_properties = None;
    // The inner type's example is a request's, not this type's.
    object.examples.clear();
    #[allow(deprecated)]
    {
        object.example = None;
    }
    object.description = outer.description.or(object.description);
    let own_required = outer.required.clone();
    for (name, property) in outer.properties {
        object.properties.insert(name, property);
    }
    object.required.extend(own_required);
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_the_name_pattern_is_what_trim_removes() {
        let blank = |c: char| WHITESPACE_RANGES.iter().any(|&(low, high)| (low..=high).contains(&c));
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(blank(c), c.is_whitespace(), "U+{:04X}", c as u32);
        }
    }
}

//! JSON Lines contact files: one contact object per line.

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;

use serde_json::Value;

use super::error::{FileError, RowError};
use super::row::{duplicate_object_id, new_contact, register_object_id};
use super::{ImportRow, OBJECT_ID, REQUIRED_FIELDS};
use crate::JsonMap;

/// Checks the file's shape and hands `visit` each non-blank line with its
/// number.
pub(super) fn scan_json_lines(
    text: &str,
    mut visit: impl FnMut(u64, &str) -> ControlFlow<()>,
) -> Result<(), FileError> {
    check_json_lines_shape(text)?;
    for (index, raw) in text.split('\n').enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        if visit(index as u64 + 1, raw).is_break() {
            break;
        }
    }
    Ok(())
}

/// Rejects the two shapes that are JSON but not JSON Lines: one array of
/// contacts, and objects pretty-printed over several lines each.
fn check_json_lines_shape(text: &str) -> Result<(), FileError> {
    let Some((first_index, first_line)) = text
        .split('\n')
        .enumerate()
        .find(|(_, line)| !line.trim().is_empty())
    else {
        return Ok(());
    };
    let line = first_index as u64 + 1;
    let first_parses = serde_json::from_str::<Value>(first_line).is_ok();
    let trimmed = first_line.trim_start();
    if trimmed.starts_with('[') {
        let whole_is_array = matches!(serde_json::from_str::<Value>(text), Ok(Value::Array(_)));
        if whole_is_array || !first_parses {
            let column = (first_line.len() - trimmed.len()) as u64 + 1;
            return Err(FileError::Malformed {
                line,
                column: Some(column),
                message: "the file is a JSON array, but a JSON Lines file holds one contact \
                          object per line, without the surrounding [ ] and without commas \
                          between lines, e.g. {\"object_id\": \"1\", \"external_id\": \"1\", \
                          \"name\": \"Ann\", \"email\": \"ann@example.com\", \"phone\": \"+1\"}"
                    .to_owned(),
            });
        }
    }
    if !first_parses && trimmed.starts_with('{') {
        let values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut count = 0;
        for value in values {
            if value.is_err() {
                return Ok(());
            }
            count += 1;
        }
        if count > 0 {
            return Err(FileError::Malformed {
                line,
                column: None,
                message: "the JSON object starting here spans several lines, but a JSON Lines \
                          file holds each contact as one object on a single line; write the \
                          objects compactly, one per line"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

pub(super) fn json_row(
    line: u64,
    raw: &str,
    seen: &mut HashMap<String, u64>,
) -> Result<ImportRow, RowError> {
    let object = json_object(line, raw)?;
    let by_folded = keys_by_folded(line, &object)?;
    let mut required: [String; 5] = Default::default();
    let mut problems = Vec::new();
    for (field, canonical) in REQUIRED_FIELDS.iter().enumerate() {
        match required_value(&object, &by_folded, canonical) {
            Ok(value) => required[field] = value,
            Err(problem) => problems.push(problem),
        }
    }
    let duplicate_of = register_object_id(seen, &required[OBJECT_ID], line);
    if let Some(error) = field_problems(line, &problems) {
        return Err(error);
    }
    if let Some(first_line) = duplicate_of {
        return Err(duplicate_object_id(
            line,
            None,
            &required[OBJECT_ID],
            first_line,
        ));
    }

    let parameters: JsonMap = object
        .into_iter()
        .filter(|(key, _)| !REQUIRED_FIELDS.contains(&key.trim().to_lowercase().as_str()))
        .map(|(key, value)| (key.trim().to_owned(), value))
        .collect();
    Ok(ImportRow {
        line,
        contact: new_contact(required, parameters),
    })
}

/// The line as a JSON object.
fn json_object(line: u64, raw: &str) -> Result<JsonMap, RowError> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(RowError {
            line,
            column: None,
            message: format!(
                "line {line}: expected a JSON object per line, found {}",
                json_kind(&other)
            ),
        }),
        Err(error) => {
            let full = error.to_string();
            let position = format!(" at line {} column {}", error.line(), error.column());
            let reason = full.strip_suffix(&position).unwrap_or(&full);
            let column = error.column() as u64;
            Err(RowError {
                line,
                column: Some(column),
                message: format!(
                    "line {line}, column {column}: {reason}; each line must be one complete \
                     JSON object"
                ),
            })
        }
    }
}

/// The object's keys by their trimmed lowercase spelling; an empty key, or
/// two that differ only in case or spaces, reject the row.
fn keys_by_folded<'o>(
    line: u64,
    object: &'o JsonMap,
) -> Result<HashMap<String, &'o str>, RowError> {
    let mut by_folded: HashMap<String, &str> = HashMap::new();
    for key in object.keys() {
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(RowError {
                line,
                column: None,
                message: format!("line {line}: a key is empty; give every value a name"),
            });
        }
        if let Some(other) = by_folded.insert(trimmed.to_lowercase(), key) {
            return Err(RowError {
                line,
                column: None,
                message: format!(
                    "line {line}: the keys `{other}` and `{key}` differ only in letter case or \
                     spaces; keep one of them"
                ),
            });
        }
    }
    Ok(by_folded)
}

/// The value of the required field `canonical`, as text.
fn required_value<'o>(
    object: &JsonMap,
    by_folded: &HashMap<String, &'o str>,
    canonical: &'o str,
) -> Result<String, FieldProblem<'o>> {
    let Some(&key) = by_folded.get(canonical) else {
        return Err(FieldProblem::Missing(canonical));
    };
    match object.get(key) {
        Some(Value::String(text)) if text.trim().is_empty() => Err(FieldProblem::Empty(key)),
        Some(Value::String(text)) => Ok(text.trim().to_owned()),
        Some(Value::Number(number)) => Ok(number.to_string()),
        Some(Value::Null) | None => Err(FieldProblem::Null(key)),
        Some(other) => Err(FieldProblem::WrongType(key, json_kind(other))),
    }
}

/// The error for the first problem of the required fields, naming the others.
fn field_problems(line: u64, problems: &[FieldProblem<'_>]) -> Option<RowError> {
    let (first, others) = problems.split_first()?;
    let mut message = format!("line {line}: {first}");
    if !matches!(first, FieldProblem::WrongType(..)) {
        message.push_str("; every contact needs one");
    }
    if !others.is_empty() {
        let also: Vec<String> = others.iter().map(ToString::to_string).collect();
        message.push_str(&format!(" (also: {})", also.join(", ")));
    }
    Some(RowError {
        line,
        column: None,
        message,
    })
}

enum FieldProblem<'a> {
    Missing(&'a str),
    Null(&'a str),
    Empty(&'a str),
    WrongType(&'a str, &'static str),
}

impl fmt::Display for FieldProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing(key) => write!(f, "`{key}` is missing"),
            FieldProblem::Null(key) => write!(f, "`{key}` is null"),
            FieldProblem::Empty(key) => write!(f, "`{key}` is empty"),
            FieldProblem::WrongType(key, kind) => {
                write!(f, "`{key}` must be a string, found {kind}")
            }
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_file::test_support::*;
    use crate::contact_file::FileFormat;

    #[test]
    fn works_when_the_spec_jsonl_example_is_parsed() {
        let text = "{\"Object_id\": \"123\", \"External_ID\": \"123\", \"Name\": \"John Doe\", \
                    \"Email\": \"john@example.com\", \"Phone\": \"+1234567890\", \
                    \"add_param1\": \"12\", \"add_param2\": \"Additional data\"}\n\
                    {\"object_id\": \"124\", \"external_id\": \"9\", \"name\": \"Jane Roe\", \
                    \"email\": \"jane@example.com\", \"phone\": \"+1999\"}\n";
        let file = jsonl(text).expect("file is accepted");
        assert_eq!(file.format, FileFormat::JsonLines);
        assert_eq!(file.delimiter, None);
        let rows = ok_rows(&file);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[1].line), (1, 2));
        let john = &rows[0].contact;
        assert_eq!(
            (
                john.object_id.as_str(),
                john.external_id.as_str(),
                john.name.as_str()
            ),
            ("123", "123", "John Doe")
        );
        assert_eq!(
            (john.email.as_str(), john.phone.as_str()),
            ("john@example.com", "+1234567890")
        );
        assert_eq!(john.parameters.get("add_param1"), Some(&Value::from("12")));
        assert_eq!(
            john.parameters.get("add_param2"),
            Some(&Value::from("Additional data"))
        );
        assert_eq!(john.parameters.len(), 2);
        assert_eq!(rows[1].contact.name, "Jane Roe");
        assert!(rows[1].contact.parameters.is_empty());
    }

    #[test]
    fn errors_when_a_jsonl_line_is_invalid_json() {
        let text = "{\"object_id\":\"1\",\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a@x\",\"phone\":\"1\"}\n\
                    {\"object_id\": \"2\" \"name\": \"B\"}\n";
        let file = jsonl(text).expect("file is accepted");
        assert!(file.rows[0].is_ok());
        let error = row_error(&file, 1);
        assert_eq!((error.line, error.column), (2, Some(19)));
        assert!(
            error
                .message
                .starts_with("line 2, column 19: expected `,` or `}`; "),
            "{error}"
        );
        assert!(!error.message.contains("at line 1"), "{error}");
    }

    #[test]
    fn errors_when_a_jsonl_line_is_not_an_object() {
        let file = jsonl("[1, 2]\n\"text\"\n{\"a\": 1} \n").expect("file is accepted");
        assert_eq!(
            row_error(&file, 0).message,
            "line 1: expected a JSON object per line, found an array"
        );
        assert_eq!(
            row_error(&file, 1).message,
            "line 2: expected a JSON object per line, found a string"
        );
        assert!(row_error(&file, 2)
            .message
            .starts_with("line 3: `object_id` is missing"));
    }

    #[test]
    fn works_when_a_jsonl_id_is_a_number() {
        let file = jsonl("{\"OBJECT_ID\": 123, \"external_id\": 456, \"name\": \"Ann\", \"email\": \"a@x\", \"phone\": 15551234}\n")
            .expect("file is accepted");
        let contact = &ok_rows(&file)[0].contact;
        assert_eq!(contact.object_id, "123");
        assert_eq!(contact.external_id, "456");
        assert_eq!(contact.phone, "15551234");
        assert!(contact.parameters.is_empty());
    }

    #[test]
    fn works_when_jsonl_parameters_keep_their_json_types() {
        let file = jsonl("{\"object_id\":\"1\",\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a@x\",\"phone\":\"1\",\
                          \" score \":12,\"vip\":true,\"tags\":[\"x\"],\"extra\":null}\n")
            .expect("file is accepted");
        let parameters = &ok_rows(&file)[0].contact.parameters;
        assert_eq!(parameters.get("score"), Some(&Value::from(12)));
        assert_eq!(parameters.get("vip"), Some(&Value::Bool(true)));
        assert_eq!(parameters.get("tags"), Some(&serde_json::json!(["x"])));
        assert_eq!(parameters.get("extra"), Some(&Value::Null));
    }

    #[test]
    fn errors_when_a_jsonl_name_is_not_a_string() {
        let file = jsonl("{\"object_id\":\"1\",\"external_id\":\"a\",\"name\":{\"first\":\"A\"},\"email\":\"a@x\",\"phone\":\"1\"}\n\
                          {\"object_id\":\"2\",\"external_id\":\"b\",\"Name\":true,\"email\":null,\"phone\":\" \"}\n")
            .expect("file is accepted");
        assert_eq!(
            row_error(&file, 0).message,
            "line 1: `name` must be a string, found an object"
        );
        assert_eq!(
            row_error(&file, 1).message,
            "line 2: `Name` must be a string, found a boolean (also: `email` is null, `phone` is empty)"
        );
    }

    #[test]
    fn errors_when_a_jsonl_required_key_is_missing() {
        let file =
            jsonl("{\"object_id\":\"1\",\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a@x\"}\n")
                .expect("file is accepted");
        let error = row_error(&file, 0);
        assert_eq!((error.line, error.column), (1, None));
        assert_eq!(
            error.message,
            "line 1: `phone` is missing; every contact needs one"
        );
    }

    #[test]
    fn errors_when_jsonl_keys_differ_only_in_case() {
        let file = jsonl("{\"object_id\":\"1\",\"external_id\":\"a\",\"Name\":\"A\",\"name\":\"B\",\"email\":\"a@x\",\"phone\":\"1\"}\n")
            .expect("file is accepted");
        let error = row_error(&file, 0);
        assert!(error.message.starts_with("line 1: the keys `"), "{error}");
        assert!(
            error.message.contains("`Name`") && error.message.contains("`name`"),
            "{error}"
        );
    }

    #[test]
    fn errors_when_the_jsonl_file_is_a_json_array() {
        let one_line = "[{\"object_id\":\"1\"},{\"object_id\":\"2\"}]\n";
        let error = jsonl(one_line).expect_err("file is rejected");
        assert!(
            matches!(
                error,
                FileError::Malformed {
                    line: 1,
                    column: Some(1),
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("one contact object per line"),
            "{error}"
        );

        let pretty = "[\n  {\"object_id\": \"1\"},\n  {\"object_id\": \"2\"}\n]\n";
        assert!(matches!(
            jsonl(pretty),
            Err(FileError::Malformed { line: 1, .. })
        ));
        assert_eq!(
            FileFormat::detect(None, None, pretty.as_bytes()),
            FileFormat::JsonLines
        );
    }

    #[test]
    fn errors_when_a_jsonl_object_spans_several_lines() {
        let text = "{\n  \"object_id\": \"1\",\n  \"name\": \"A\"\n}\n";
        let error = jsonl(text).expect_err("file is rejected");
        assert!(
            matches!(
                error,
                FileError::Malformed {
                    line: 1,
                    column: None,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("single line"), "{error}");
    }
}

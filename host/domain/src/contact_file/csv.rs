//! CSV contact files: the header, then one contact per record.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde_json::Value;

use super::csv_text::{check_quotes_closed, detect_delimiter};
use super::error::{FileError, RowError};
use super::export::{json_column_name, unescape_cell};
use super::row::{duplicate_object_id, new_contact, register_object_id};
use super::{ImportRow, OBJECT_ID, REQUIRED_FIELDS};
use crate::JsonMap;

/// What a header column holds.
enum Column {
    /// One of [`REQUIRED_FIELDS`], by index.
    Required(usize),
    /// A parameter, under the header's trimmed spelling; `json` when the
    /// header ends in `:json` (dropped from the name) and its cells are
    /// JSON values.
    Parameter { key: String, json: bool },
    /// A column whose header cell is blank: tolerated while its cells are
    /// blank too (spreadsheets often export such trailing columns).
    Unnamed,
}

pub(super) struct CsvHeader {
    columns: Vec<Column>,
    /// The header's trimmed names, for messages.
    names: Vec<String>,
}

/// Checks the CSV as a whole (quotes, the reader, the header) and hands
/// `visit` each non-blank record after the header. Returns the delimiter.
pub(super) fn scan_csv(
    text: &str,
    mut visit: impl FnMut(&csv::StringRecord, &CsvHeader, u8) -> ControlFlow<()>,
) -> Result<u8, FileError> {
    let delimiter = detect_delimiter(text);
    check_quotes_closed(text, delimiter)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut header: Option<CsvHeader> = None;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                let line = error.position().map_or(1, csv::Position::line);
                return Err(FileError::Malformed {
                    line,
                    column: None,
                    message: format!("the CSV cannot be read: {error}"),
                });
            }
        }
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        match &header {
            None => header = Some(csv_header(&record)?),
            Some(header) => {
                if visit(&record, header, delimiter).is_break() {
                    break;
                }
            }
        }
    }
    Ok(delimiter)
}

fn csv_header(record: &csv::StringRecord) -> Result<CsvHeader, FileError> {
    let names: Vec<String> = record.iter().map(|name| unescape_cell(name.trim()).to_owned()).collect();
    let mut positions: HashMap<String, u64> = HashMap::new();
    let mut columns = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let position = index as u64 + 1;
        if name.is_empty() {
            columns.push(Column::Unnamed);
            continue;
        }
        let mut folded = name.to_lowercase();
        let required = REQUIRED_FIELDS.iter().position(|field| *field == folded);
        let json_key = json_column_name(name).filter(|_| required.is_none());
        if let Some(key) = json_key {
            folded = key.trim().to_lowercase();
        }
        if let Some(&first) = positions.get(&folded) {
            return Err(FileError::DuplicateColumn {
                name: name.clone(),
                first,
                second: position,
            });
        }
        columns.push(match (required, json_key) {
            (Some(field), _) => Column::Required(field),
            (None, Some(key)) => Column::Parameter { key: key.trim().to_owned(), json: true },
            (None, None) => Column::Parameter { key: name.clone(), json: false },
        });
        positions.insert(folded, position);
    }
    let missing: Vec<String> = REQUIRED_FIELDS
        .iter()
        .filter(|field| !positions.contains_key(**field))
        .map(|field| (*field).to_owned())
        .collect();
    if !missing.is_empty() {
        let found = names.into_iter().filter(|name| !name.is_empty()).collect();
        return Err(FileError::MissingColumns { missing, found });
    }
    Ok(CsvHeader { columns, names })
}

fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b';' => "`;`",
        b'\t' => "a tab",
        _ => "`,`",
    }
}

pub(super) fn csv_row(
    line: u64,
    record: &csv::StringRecord,
    header: &CsvHeader,
    delimiter: u8,
    seen: &mut HashMap<String, u64>,
) -> Result<ImportRow, RowError> {
    check_field_count(line, record, header, delimiter)?;
    let RecordFields {
        required,
        required_column,
        parameters,
        stray_value,
        bad_json,
    } = record_fields(record, header);
    let duplicate_of = register_object_id(seen, required[OBJECT_ID], line);
    if let Some(error) = empty_required(line, header, &required, &required_column) {
        return Err(error);
    }
    if let Some(column) = stray_value {
        return Err(RowError {
            line,
            column: Some(column),
            message: format!(
                "line {line}, column {column}: this value is in a column with no name in the \
                 header; name the column in the header or delete the value"
            ),
        });
    }
    if let Some((column, problem)) = bad_json {
        let name = &header.names[column as usize - 1];
        return Err(RowError {
            line,
            column: Some(column),
            message: format!(
                "line {line}, column {column} ({name}): {problem}; the column's name ends in \
                 `:json`, so its values are JSON: a number, true, false, null, \"quoted text\", \
                 a [list] or an {{object}}. Fix the value, or drop `:json` from the header to \
                 import the column as text"
            ),
        });
    }
    if let Some(first_line) = duplicate_of {
        return Err(duplicate_object_id(
            line,
            Some(required_column[OBJECT_ID]),
            required[OBJECT_ID],
            first_line,
        ));
    }
    Ok(ImportRow {
        line,
        contact: new_contact(required.map(str::to_owned), parameters),
    })
}

fn check_field_count(
    line: u64,
    record: &csv::StringRecord,
    header: &CsvHeader,
    delimiter: u8,
) -> Result<(), RowError> {
    let expected = header.columns.len();
    if record.len() == expected {
        return Ok(());
    }
    let fix = if record.len() > expected {
        format!(
            "a value that contains {} must be wrapped in double quotes",
            delimiter_name(delimiter)
        )
    } else {
        "leave an unknown value empty but keep its separator".to_owned()
    };
    Err(RowError {
        line,
        column: None,
        message: format!(
            "line {line}: expected {expected} fields as in the header, found {}; {fix}",
            record.len()
        ),
    })
}

/// A record's values sorted by what their columns hold.
struct RecordFields<'r> {
    /// The required values, trimmed, in [`REQUIRED_FIELDS`] order.
    required: [&'r str; 5],
    /// The 1-based column of each required value.
    required_column: [u64; 5],
    parameters: JsonMap,
    /// The first column with no name that holds a value.
    stray_value: Option<u64>,
    /// The first JSON column whose value is not JSON, and why.
    bad_json: Option<(u64, String)>,
}

fn record_fields<'r>(record: &'r csv::StringRecord, header: &CsvHeader) -> RecordFields<'r> {
    let mut fields = RecordFields {
        required: [""; 5],
        required_column: [0; 5],
        parameters: JsonMap::new(),
        stray_value: None,
        bad_json: None,
    };
    for (index, (column, value)) in header.columns.iter().zip(record.iter()).enumerate() {
        match column {
            Column::Required(field) => {
                fields.required[*field] = unescape_cell(value.trim());
                fields.required_column[*field] = index as u64 + 1;
            }
            Column::Parameter { key, json: false } => {
                fields
                    .parameters
                    .insert(key.clone(), Value::String(unescape_cell(value).to_owned()));
            }
            // An empty cell is a contact without the parameter.
            Column::Parameter { json: true, .. } if value.trim().is_empty() => {}
            Column::Parameter { key, json: true } => {
                match serde_json::from_str::<Value>(unescape_cell(value.trim())) {
                    Ok(parsed) => {
                        fields.parameters.insert(key.clone(), parsed);
                    }
                    // serde_json's reasons ("expected ident") help nobody here.
                    Err(_) if fields.bad_json.is_none() => {
                        let quoted: String = value.trim().chars().take(40).collect();
                        let problem = format!("`{quoted}` is not a JSON value");
                        fields.bad_json = Some((index as u64 + 1, problem));
                    }
                    Err(_) => {}
                }
            }
            Column::Unnamed => {
                if fields.stray_value.is_none() && !value.trim().is_empty() {
                    fields.stray_value = Some(index as u64 + 1);
                }
            }
        }
    }
    fields
}

/// The error for the first empty required value, naming the others.
fn empty_required(
    line: u64,
    header: &CsvHeader,
    required: &[&str; 5],
    required_column: &[u64; 5],
) -> Option<RowError> {
    let empty: Vec<usize> = (0..REQUIRED_FIELDS.len())
        .filter(|&field| required[field].is_empty())
        .collect();
    let (&first, others) = empty.split_first()?;
    let column = required_column[first];
    let mut message = format!(
        "line {line}, column {column} ({}): {} is empty; every contact needs one",
        header.names[column as usize - 1],
        REQUIRED_FIELDS[first]
    );
    if !others.is_empty() {
        let also: Vec<String> = others
            .iter()
            .map(|&field| {
                format!(
                    "{} in column {}",
                    REQUIRED_FIELDS[field], required_column[field]
                )
            })
            .collect();
        message.push_str(&format!(" (also empty: {})", also.join(", ")));
    }
    Some(RowError {
        line,
        column: Some(column),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_file::test_support::*;
    use crate::contact_file::FileFormat;

    #[test]
    fn works_when_the_spec_csv_example_is_parsed() {
        let file = csv(SPEC_CSV).expect("file is accepted");
        assert_eq!(file.format, FileFormat::Csv);
        assert_eq!(file.delimiter, Some(b','));
        let rows = ok_rows(&file);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        let contact = &rows[0].contact;
        assert_eq!(contact.object_id, "123");
        assert_eq!(contact.external_id, "123");
        assert_eq!(contact.name, "John Doe");
        assert_eq!(contact.email, "john@example.com");
        assert_eq!(contact.phone, "+1234567890");
        let mut expected = JsonMap::new();
        expected.insert("add_param1".into(), Value::from("12"));
        expected.insert("add_param2".into(), Value::from("Additional data"));
        assert_eq!(contact.parameters, expected);
        assert_eq!(contact.current_stage, None);
        assert!(contact.communications.is_empty());
    }

    #[test]
    fn errors_when_a_row_has_the_wrong_number_of_fields() {
        let text = "Object_id,External_ID,Name,Email,Phone,add_param1,add_param2\n\
                    1,a,Ann,ann@example.com,+1\n\
                    2,b,Doe, John,bob@example.com,+2,x,y\n\
                    3,c,Cy,cy@example.com,+3,x,y\n";
        let file = csv(text).expect("file is accepted");
        let short = row_error(&file, 0);
        assert_eq!((short.line, short.column), (2, None));
        assert!(
            short
                .message
                .starts_with("line 2: expected 7 fields as in the header, found 5"),
            "{short}"
        );
        let long = row_error(&file, 1);
        assert!(
            long.message
                .starts_with("line 3: expected 7 fields as in the header, found 8"),
            "{long}"
        );
        assert!(long.message.contains("double quotes"), "{long}");
        assert_eq!(ok_rows_from(&file, 2).contact.object_id, "3");
    }

    #[test]
    fn errors_when_a_header_column_repeats_ignoring_case() {
        let error = csv("object_id,external_id,Name,email,phone, NAME \n1,a,b,c,d,e\n")
            .expect_err("file is rejected");
        assert_eq!(
            error,
            FileError::DuplicateColumn {
                name: "NAME".into(),
                first: 3,
                second: 6
            }
        );
        let text = error.to_string();
        assert!(text.contains("columns 3 and 6"), "{text}");
    }

    #[test]
    fn errors_when_required_columns_are_missing() {
        let error = csv("Object_id,Name,Phone,extra\n1,Ann,+1,x\n").expect_err("file is rejected");
        assert_eq!(
            error,
            FileError::MissingColumns {
                missing: vec!["external_id".into(), "email".into()],
                found: vec![
                    "Object_id".into(),
                    "Name".into(),
                    "Phone".into(),
                    "extra".into()
                ],
            }
        );
        let text = error.to_string();
        assert!(text.contains("external_id, email"), "{text}");
        assert!(text.contains("Object_id, Name, Phone, extra"), "{text}");
    }

    #[test]
    fn errors_when_a_required_csv_value_is_empty() {
        let text = format!("{HEADER}\"  \",a,Ann,,+1\n2,b,Bob,bob@example.com,  +2  \n");
        let file = csv(&text).expect("file is accepted");
        let error = row_error(&file, 0);
        assert_eq!((error.line, error.column), (2, Some(1)));
        assert_eq!(
            error.message,
            "line 2, column 1 (object_id): object_id is empty; every contact needs one \
             (also empty: email in column 4)"
        );
        assert_eq!(ok_rows_from(&file, 1).contact.phone, "+2");
    }

    #[test]
    fn works_when_json_columns_keep_value_types() {
        let text = format!(
            "object_id,external_id,name,email,phone,score:JSON,tags:json,note\n\
             1,a,Ann,a@x,+1,12,\"[\"\"x\"\"]\",'=hi\n\
             2,b,Bob,b@x,+2,,null,plain\n"
        );
        let file = csv(&text).expect("file is accepted");
        let first = &ok_rows_from(&file, 0).contact.parameters;
        assert_eq!(first.get("score"), Some(&Value::from(12)));
        assert_eq!(first.get("tags"), Some(&serde_json::json!(["x"])));
        assert_eq!(first.get("note"), Some(&Value::from("=hi")), "the formula guard is removed");
        let second = &ok_rows_from(&file, 1).contact.parameters;
        assert_eq!(second.get("score"), None, "an empty JSON cell is no parameter");
        assert_eq!(second.get("tags"), Some(&Value::Null));
    }

    #[test]
    fn errors_when_a_json_column_holds_text() {
        let text = "object_id,external_id,name,email,phone,score:json\n1,a,Ann,a@x,+1,twelve\n2,b,Bob,b@x,+2,3\n";
        let file = csv(text).expect("file is accepted");
        let error = row_error(&file, 0);
        assert_eq!((error.line, error.column), (2, Some(6)));
        assert!(error.message.starts_with("line 2, column 6 (score:json): `twelve` is not a JSON value; "), "{error}");
        assert!(error.message.contains("drop `:json` from the header"), "{error}");
        assert_eq!(ok_rows_from(&file, 1).contact.parameters.get("score"), Some(&Value::from(3)));

        let error = csv("object_id,external_id,name,email,phone,score:json,Score\n").expect_err("same name twice");
        assert_eq!(error, FileError::DuplicateColumn { name: "Score".into(), first: 6, second: 7 });
    }

    #[test]
    fn errors_when_a_value_sits_under_an_unnamed_column() {
        let text =
            "object_id,external_id,name,email,phone,,\n1,a,Ann,a@x,+1,,\n2,b,Bob,b@x,+2,,oops\n";
        let file = csv(text).expect("trailing unnamed columns are tolerated");
        assert!(ok_rows_from(&file, 0).contact.parameters.is_empty());
        let error = row_error(&file, 1);
        assert_eq!((error.line, error.column), (3, Some(7)));
        assert!(error.message.contains("no name in the header"), "{error}");
    }
}

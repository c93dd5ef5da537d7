//! Contact files: the CSV or JSON Lines file a customer uploads to add
//! contacts to a campaign, and the CSV / JSON Lines export of contacts.
//!
//! Every contact needs `object_id`, `external_id`, `name`, `email` and
//! `phone`. Column names (CSV) and keys (JSON Lines) match ignoring letter
//! case and surrounding spaces, so `Object_id` or ` EMAIL ` work. Every other
//! column or key becomes an entry of [`Contact::parameters`] under its own
//! spelling (trimmed): a string for CSV, the JSON value as written for JSON
//! Lines.
//!
//! ```text
//! Object_id,External_ID,Name,Email,Phone,add_param1,add_param2
//! 123,123,John Doe,john@example.com,+1234567890,12,"Additional data"
//! ```
//!
//! ```text
//! {"Object_id": "123", "External_ID": "123", "Name": "John Doe", "Email": "john@example.com", "Phone": "+1234567890"}
//! ```
//!
//! [`parse`] separates two kinds of failure. A [`FileError`] rejects the
//! whole file (empty, too large, not UTF-8, bad header, broken structure):
//! nothing should be imported. A [`RowError`] rejects one contact; the other
//! rows still parse. Positions are 1-based lines of the file. A CSV
//! `column` is the field's position in its row (as a spreadsheet shows it);
//! a JSON Lines `column` is the byte offset in the line that `serde_json`
//! reports. Every message says what is wrong and how to fix it.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::ControlFlow;

use serde_json::Value;

use crate::{Contact, JsonMap};

/// The fields every imported contact needs, in their canonical spelling.
pub const REQUIRED_FIELDS: [&str; 5] = ["object_id", "external_id", "name", "email", "phone"];

const OBJECT_ID: usize = 0;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The fixed leading columns of a [`CsvExport`].
const EXPORT_COLUMNS: [&str; 8] = [
    "object_id",
    "external_id",
    "name",
    "email",
    "phone",
    "current_stage",
    "communications",
    "result_flag",
];

/// The two formats of a contact file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Comma-, semicolon- or tab-separated values with a header row.
    Csv,
    /// One JSON object per line (JSON Lines / NDJSON).
    JsonLines,
}

impl FileFormat {
    /// The format of an upload: JSON Lines when the file name ends in
    /// `.jsonl`, `.ndjson` or `.json`, when the content type is a JSON one,
    /// or when the content (after an optional BOM and blank space) starts
    /// with `{` — or with `[` and then `{`, a JSON array, which [`parse`]
    /// then rejects with a hint. CSV otherwise.
    pub fn detect(file_name: Option<&str>, content_type: Option<&str>, bytes: &[u8]) -> FileFormat {
        let json_name = file_name
            .and_then(|name| name.trim().rsplit_once('.'))
            .is_some_and(|(_, extension)| {
                ["jsonl", "ndjson", "json"]
                    .iter()
                    .any(|known| extension.eq_ignore_ascii_case(known))
            });
        let json_type = content_type
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                [
                    "application/x-ndjson",
                    "application/jsonl",
                    "application/x-jsonlines",
                    "application/json",
                ]
                .iter()
                .any(|known| mime.trim().eq_ignore_ascii_case(known))
            });
        if json_name || json_type {
            return FileFormat::JsonLines;
        }
        let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let mut rest = body.iter().copied().skip_while(u8::is_ascii_whitespace);
        match rest.next() {
            Some(b'{') => FileFormat::JsonLines,
            Some(b'[') if rest.find(|byte| !byte.is_ascii_whitespace()) == Some(b'{') => {
                FileFormat::JsonLines
            }
            _ => FileFormat::Csv,
        }
    }
}

/// A contact read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The 1-based line on which the record starts.
    pub line: u64,
    pub contact: Contact,
}

/// A row the import rejects; the other rows are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RowError {
    /// The 1-based line on which the record starts.
    pub line: u64,
    /// CSV: the field's 1-based position; JSON Lines: the byte offset
    /// serde_json reports. `None` when the problem is the whole row.
    pub column: Option<u64>,
    /// What is wrong and how to fix it, starting with the position
    /// (`line 4, column 1 (Object_id): …`), ready to show as is.
    pub message: String,
}

/// A problem with the whole file: nothing in it should be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Zero bytes, or only blank space and a byte order mark.
    #[error(
        "the file is empty; upload a CSV file with a header row and one contact per line, \
         or a JSON Lines file with one JSON object per line"
    )]
    Empty,
    #[error(
        "the file is larger than the limit of {}; split it into smaller files and upload \
         them one at a time",
        size_text(*.limit_bytes)
    )]
    TooLarge { limit_bytes: u64 },
    /// `column` counts bytes from the start of the line (after a BOM).
    #[error(
        "line {line}, column {column}: the file is not UTF-8 text (it may be saved as \
         Windows-1252, Latin-1 or UTF-16); save it with UTF-8 encoding (in Excel: \
         \"CSV UTF-8\") and upload it again"
    )]
    NotUtf8 { line: u64, column: u64 },
    /// Required CSV columns absent from the header; `found` lists the
    /// header's names as written (trimmed).
    #[error(
        "the header (first line) is missing the required column(s) {}; it has: {}. Add the \
         missing columns; names match ignoring letter case, and columns are separated by \
         `,`, `;` or a tab",
        .missing.join(", "),
        list_or_none(.found)
    )]
    MissingColumns {
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// Two header columns with the same name ignoring case; 1-based positions.
    #[error(
        "the header has the column `{name}` twice, as columns {first} and {second} (names \
         match ignoring letter case); rename or remove one of them"
    )]
    DuplicateColumn {
        name: String,
        first: u64,
        second: u64,
    },
    /// The file's structure is broken (an unclosed quote, a JSON array
    /// instead of JSON Lines…).
    #[error("line {line}{}: {message}", column_suffix(*.column))]
    Malformed {
        line: u64,
        column: Option<u64>,
        message: String,
    },
}

/// `512 bytes`, `2.5 KiB (2560 bytes)`, `10.0 MiB (10485760 bytes)`.
pub(crate) fn size_text(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    match bytes {
        MIB.. => format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / MIB as f64),
        KIB.. => format!("{:.1} KiB ({bytes} bytes)", bytes as f64 / KIB as f64),
        _ => format!("{bytes} bytes"),
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "no column names".to_owned()
    } else {
        names.join(", ")
    }
}

fn column_suffix(column: Option<u64>) -> String {
    column
        .map(|column| format!(", column {column}"))
        .unwrap_or_default()
}

/// The outcome of reading a file that is acceptable as a whole: one entry
/// per non-blank record, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    pub rows: Vec<Result<ImportRow, RowError>>,
    pub format: FileFormat,
    /// The CSV delimiter found in the header; `None` for JSON Lines.
    pub delimiter: Option<u8>,
}

/// Reads a contact file of at most `limit_bytes` bytes.
pub fn parse(format: FileFormat, bytes: &[u8], limit_bytes: u64) -> Result<ParsedFile, FileError> {
    let mut rows = Vec::new();
    let delimiter = read_rows(format, bytes, limit_bytes, |row| {
        rows.push(row);
        ControlFlow::Continue(())
    })?;
    Ok(ParsedFile { rows, format, delimiter })
}

/// Reads a contact file of at most `limit_bytes` bytes a row at a time:
/// `each` gets every non-blank record in file order, and may stop the
/// reading by breaking. Returns the CSV delimiter (`None` for JSON Lines).
///
/// A file error can come after some rows were handed over, so a caller
/// that writes rows checks the file with [`count_rows`] first (a large
/// file is then never held as rows, only as bytes).
pub fn read_rows(
    format: FileFormat,
    bytes: &[u8],
    limit_bytes: u64,
    mut each: impl FnMut(Result<ImportRow, RowError>) -> ControlFlow<()>,
) -> Result<Option<u8>, FileError> {
    let text = file_text(bytes, limit_bytes)?;
    // Object ids seen so far and their lines: a repeated one is a row error.
    let mut seen = HashMap::new();
    match format {
        FileFormat::Csv => {
            let mut lines = LineCounter::new(text);
            scan_csv(text, |record, header, delimiter| {
                let line = record
                    .position()
                    .map_or(1, |position| lines.record_line(position.byte()));
                each(csv_row(line, record, header, delimiter, &mut seen))
            })
            .map(Some)
        }
        FileFormat::JsonLines => {
            scan_json_lines(text, |line, raw| each(json_row(line, raw, &mut seen))).map(|()| None)
        }
    }
}

/// Checks a contact file as a whole exactly as [`read_rows`] does, without
/// building its rows: the number of rows `read_rows` would hand over, or
/// the file error it would end with. Row problems never fail a file.
pub fn count_rows(format: FileFormat, bytes: &[u8], limit_bytes: u64) -> Result<u64, FileError> {
    let text = file_text(bytes, limit_bytes)?;
    let mut rows = 0;
    let mut count = || {
        rows += 1;
        ControlFlow::Continue(())
    };
    match format {
        FileFormat::Csv => scan_csv(text, |_, _, _| count()).map(drop)?,
        FileFormat::JsonLines => scan_json_lines(text, |_, _| count())?,
    }
    Ok(rows)
}

/// The file's text, once its size, encoding and content are acceptable.
fn file_text(bytes: &[u8], limit_bytes: u64) -> Result<&str, FileError> {
    if bytes.len() as u64 > limit_bytes {
        return Err(FileError::TooLarge { limit_bytes });
    }
    let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(body).map_err(|error| {
        let valid = &body[..error.valid_up_to()];
        let line_start = valid
            .iter()
            .rposition(|&byte| byte == b'\n' || byte == b'\r')
            .map_or(0, |index| index + 1);
        FileError::NotUtf8 {
            line: count_line_breaks(valid) + 1,
            column: (valid.len() - line_start) as u64 + 1,
        }
    })?;
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    Ok(text)
}

/// Line breaks: LF, CRLF, or a lone CR (old Mac spreadsheets), as the csv
/// crate reads them.
fn count_line_breaks(bytes: &[u8]) -> u64 {
    (0..bytes.len())
        .filter(|&index| is_line_break(bytes, index))
        .count() as u64
}

fn is_line_break(bytes: &[u8], index: usize) -> bool {
    match bytes[index] {
        b'\n' => true,
        b'\r' => bytes.get(index + 1) != Some(&b'\n'),
        _ => false,
    }
}

// ---------------------------------------------------------------- CSV

/// What a header column holds.
enum Column {
    /// One of [`REQUIRED_FIELDS`], by index.
    Required(usize),
    /// A parameter, under the header's trimmed spelling.
    Parameter(String),
    /// A column whose header cell is blank: tolerated while its cells are
    /// blank too (spreadsheets often export such trailing columns).
    Unnamed,
}

struct CsvHeader {
    columns: Vec<Column>,
    /// The header's trimmed names, for messages.
    names: Vec<String>,
}

/// Checks the CSV as a whole (quotes, the reader, the header) and hands
/// `visit` each non-blank record after the header. Returns the delimiter.
fn scan_csv(
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

/// Line numbers of CSV records. The csv crate's `Position::line()` is the
/// line where its reader stopped after the previous record, which is off by
/// one after a CRLF and by the number of blank lines it skipped; so count
/// from the record's byte offset instead, past those line breaks.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            bytes: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record whose reading started at byte `start`;
    /// calls must come in increasing order of `start`.
    fn record_line(&mut self, start: u64) -> u64 {
        let mut start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.offset {
            self.line += count_line_breaks(&self.bytes[self.offset..start]);
            self.offset = start;
        }
        self.line
    }
}

/// `,`, `;` or tab: the one that splits the first non-blank line (outside
/// quotes) into the most columns; `,` on a tie.
fn detect_delimiter(text: &str) -> u8 {
    const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            break;
        }
        offset += line.len();
    }
    let mut counts = [0usize; 3];
    let mut in_quotes = false;
    for byte in text[offset..].bytes() {
        match byte {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes => break,
            _ if !in_quotes => {
                if let Some(index) = CANDIDATES.iter().position(|&candidate| candidate == byte) {
                    counts[index] += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = 0;
    for index in 1..CANDIDATES.len() {
        if counts[index] > counts[best] {
            best = index;
        }
    }
    CANDIDATES[best]
}

/// The csv crate reads an unclosed quote as a value running to the end of
/// the file. Follows its quoting rules to find that opening quote instead.
fn check_quotes_closed(text: &str, delimiter: u8) -> Result<(), FileError> {
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let (mut line, mut field) = (1u64, 1u64);
    let mut opened_at = (1u64, 1u64);
    let bytes = text.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        let terminator = byte == b'\n' || byte == b'\r';
        state = match state {
            State::Quoted if byte == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if byte == b'"' => State::Quoted,
            State::FieldStart if byte == b'"' => {
                opened_at = (line, field);
                State::Quoted
            }
            _ if byte == delimiter => {
                field += 1;
                State::FieldStart
            }
            _ if terminator => {
                field = 1;
                State::FieldStart
            }
            _ => State::Unquoted,
        };
        if is_line_break(bytes, index) {
            line += 1;
        }
    }
    match state {
        State::Quoted => Err(FileError::Malformed {
            line: opened_at.0,
            column: Some(opened_at.1),
            message: "this value opens a double quote (\") that is never closed, so the rest of \
                      the file would be read as part of it; add the closing quote, or write a \
                      quote inside a quoted value as two quotes (\"\")"
                .to_owned(),
        }),
        _ => Ok(()),
    }
}

fn csv_header(record: &csv::StringRecord) -> Result<CsvHeader, FileError> {
    let names: Vec<String> = record.iter().map(|name| name.trim().to_owned()).collect();
    let mut positions: HashMap<String, u64> = HashMap::new();
    let mut columns = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let position = index as u64 + 1;
        if name.is_empty() {
            columns.push(Column::Unnamed);
            continue;
        }
        let folded = name.to_lowercase();
        if let Some(&first) = positions.get(&folded) {
            return Err(FileError::DuplicateColumn {
                name: name.clone(),
                first,
                second: position,
            });
        }
        match REQUIRED_FIELDS.iter().position(|field| *field == folded) {
            Some(field) => columns.push(Column::Required(field)),
            None => columns.push(Column::Parameter(name.clone())),
        }
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

fn csv_row(
    line: u64,
    record: &csv::StringRecord,
    header: &CsvHeader,
    delimiter: u8,
    seen: &mut HashMap<String, u64>,
) -> Result<ImportRow, RowError> {
    let expected = header.columns.len();
    if record.len() != expected {
        let fix = if record.len() > expected {
            format!(
                "a value that contains {} must be wrapped in double quotes",
                delimiter_name(delimiter)
            )
        } else {
            "leave an unknown value empty but keep its separator".to_owned()
        };
        return Err(RowError {
            line,
            column: None,
            message: format!(
                "line {line}: expected {expected} fields as in the header, found {}; {fix}",
                record.len()
            ),
        });
    }
    let mut required: [&str; 5] = [""; 5];
    let mut required_column = [0u64; 5];
    let mut parameters = JsonMap::new();
    let mut stray_value = None;
    for (index, (column, value)) in header.columns.iter().zip(record.iter()).enumerate() {
        match column {
            Column::Required(field) => {
                required[*field] = value.trim();
                required_column[*field] = index as u64 + 1;
            }
            Column::Parameter(key) => {
                parameters.insert(key.clone(), Value::String(value.to_owned()));
            }
            Column::Unnamed => {
                if stray_value.is_none() && !value.trim().is_empty() {
                    stray_value = Some(index as u64 + 1);
                }
            }
        }
    }
    let duplicate_of = register_object_id(seen, required[OBJECT_ID], line);

    let empty: Vec<usize> = (0..REQUIRED_FIELDS.len())
        .filter(|&field| required[field].is_empty())
        .collect();
    if let Some((&first, others)) = empty.split_first() {
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
        return Err(RowError {
            line,
            column: Some(column),
            message,
        });
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

// ---------------------------------------------------------- JSON Lines

/// Checks the file's shape and hands `visit` each non-blank line with its
/// number.
fn scan_json_lines(text: &str, mut visit: impl FnMut(u64, &str) -> ControlFlow<()>) -> Result<(), FileError> {
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

fn json_row(line: u64, raw: &str, seen: &mut HashMap<String, u64>) -> Result<ImportRow, RowError> {
    let object = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return Err(RowError {
                line,
                column: None,
                message: format!(
                    "line {line}: expected a JSON object per line, found {}",
                    json_kind(&other)
                ),
            })
        }
        Err(error) => {
            let full = error.to_string();
            let position = format!(" at line {} column {}", error.line(), error.column());
            let reason = full.strip_suffix(&position).unwrap_or(&full);
            let column = error.column() as u64;
            return Err(RowError {
                line,
                column: Some(column),
                message: format!(
                    "line {line}, column {column}: {reason}; each line must be one complete \
                     JSON object"
                ),
            });
        }
    };

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

    let mut required: [String; 5] = Default::default();
    let mut problems = Vec::new();
    for (field, canonical) in REQUIRED_FIELDS.iter().enumerate() {
        let Some(&key) = by_folded.get(*canonical) else {
            problems.push(FieldProblem::Missing(canonical));
            continue;
        };
        match object.get(key) {
            Some(Value::String(text)) if text.trim().is_empty() => {
                problems.push(FieldProblem::Empty(key))
            }
            Some(Value::String(text)) => required[field] = text.trim().to_owned(),
            Some(Value::Number(number)) => required[field] = number.to_string(),
            Some(Value::Null) | None => problems.push(FieldProblem::Null(key)),
            Some(other) => problems.push(FieldProblem::WrongType(key, json_kind(other))),
        }
    }
    let duplicate_of = register_object_id(seen, &required[OBJECT_ID], line);
    if let Some((first, others)) = problems.split_first() {
        let mut message = format!("line {line}: {first}");
        if !matches!(first, FieldProblem::WrongType(..)) {
            message.push_str("; every contact needs one");
        }
        if !others.is_empty() {
            let also: Vec<String> = others.iter().map(ToString::to_string).collect();
            message.push_str(&format!(" (also: {})", also.join(", ")));
        }
        return Err(RowError {
            line,
            column: None,
            message,
        });
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

// -------------------------------------------------------------- shared

/// Records the first line of each object_id; returns that line when
/// `object_id` was seen before. Empty ids are not recorded.
fn register_object_id(seen: &mut HashMap<String, u64>, object_id: &str, line: u64) -> Option<u64> {
    if object_id.is_empty() {
        return None;
    }
    match seen.entry(object_id.to_owned()) {
        Entry::Occupied(first) => Some(*first.get()),
        Entry::Vacant(slot) => {
            slot.insert(line);
            None
        }
    }
}

fn duplicate_object_id(
    line: u64,
    column: Option<u64>,
    object_id: &str,
    first_line: u64,
) -> RowError {
    RowError {
        line,
        column,
        message: format!(
            "line {line}: object_id {object_id} already appears on line {first_line}; each \
             object_id may appear once per file"
        ),
    }
}

fn new_contact(required: [String; 5], parameters: JsonMap) -> Contact {
    let [object_id, external_id, name, email, phone] = required;
    Contact {
        object_id,
        external_id,
        name,
        email,
        phone,
        parameters,
        current_stage: None,
        internal_data: JsonMap::new(),
        results: JsonMap::new(),
        result_flag: None,
        result_datetime: None,
        communications: Vec::new(),
    }
}

// -------------------------------------------------------------- export

/// A CSV export: `object_id, external_id, name, email, phone,
/// current_stage, communications` (their number), `result_flag`
/// (`true`/`false`/empty), then one column per parameter name, sorted. The
/// columns are fixed before the first row, so an export is written a chunk
/// of contacts at a time. Parameter strings are written as is, `null` as an
/// empty cell, other JSON values as compact JSON. A parameter name that
/// would repeat a column name (ignoring case) is written as
/// `parameters.<name>`. Every cell, header included, goes through
/// [`escape_cell`].
pub struct CsvExport {
    /// The parameter names, in column order.
    parameters: Vec<String>,
}

impl CsvExport {
    /// `parameter_names`: every parameter name of any contact the export
    /// will hold (a parameter not named here is not written).
    pub fn new(parameter_names: BTreeSet<String>) -> Self {
        Self { parameters: parameter_names.into_iter().collect() }
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        let mut used: HashSet<String> = EXPORT_COLUMNS.iter().map(|name| (*name).to_owned()).collect();
        let mut header: Vec<Cow<'_, str>> = EXPORT_COLUMNS.iter().map(|name| Cow::Borrowed(*name)).collect();
        for key in &self.parameters {
            let mut name = key.clone();
            if key.trim().is_empty() || used.contains(&key.trim().to_lowercase()) {
                name = format!("parameters.{key}");
                let mut suffix = 2;
                while used.contains(&name.trim().to_lowercase()) {
                    name = format!("parameters.{key}.{suffix}");
                    suffix += 1;
                }
            }
            used.insert(name.trim().to_lowercase());
            header.push(guard(Cow::Owned(name)));
        }
        write_records(out, [header]);
    }

    pub fn write_rows(&self, contacts: &[Contact], out: &mut Vec<u8>) {
        write_records(out, contacts.iter().map(|contact| self.row(contact)));
    }

    fn row<'a>(&self, contact: &'a Contact) -> Vec<Cow<'a, str>> {
        let flag = match contact.result_flag {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        };
        let mut cells: Vec<Cow<'a, str>> = vec![
            guard(Cow::Borrowed(contact.object_id.as_str())),
            guard(Cow::Borrowed(contact.external_id.as_str())),
            guard(Cow::Borrowed(contact.name.as_str())),
            guard(Cow::Borrowed(contact.email.as_str())),
            guard(Cow::Borrowed(contact.phone.as_str())),
            guard(Cow::Borrowed(contact.current_stage.as_deref().unwrap_or(""))),
            Cow::Owned(contact.communications.len().to_string()),
            Cow::Borrowed(flag),
        ];
        for key in &self.parameters {
            let cell = match contact.parameters.get(key) {
                None | Some(Value::Null) => Cow::Borrowed(""),
                Some(Value::String(text)) => Cow::Borrowed(text.as_str()),
                Some(other) => Cow::Owned(other.to_string()),
            };
            cells.push(guard(cell));
        }
        cells
    }
}

fn write_records<'a>(out: &mut Vec<u8>, records: impl IntoIterator<Item = Vec<Cow<'a, str>>>) {
    let mut writer = csv::Writer::from_writer(out);
    for record in records {
        let result = writer.write_record(record.iter().map(|cell| cell.as_bytes()));
        // A Vec sink cannot fail and every record has the header's length.
        debug_assert!(result.is_ok(), "writing CSV to memory failed: {result:?}");
    }
    let result = writer.flush();
    debug_assert!(result.is_ok(), "writing CSV to memory failed: {result:?}");
}

/// [`escape_cell`] for a value that may already be owned.
fn guard(cell: Cow<'_, str>) -> Cow<'_, str> {
    match escape_cell(&cell) {
        Cow::Borrowed(_) => cell,
        Cow::Owned(escaped) => Cow::Owned(escaped),
    }
}

/// Writes one JSON object per line: each contact as serde serializes it.
pub fn write_jsonl(contacts: &[Contact], out: &mut Vec<u8>) {
    for contact in contacts {
        let result = serde_json::to_writer(&mut *out, contact);
        // Contact has only string-keyed maps, and a Vec sink cannot fail.
        debug_assert!(result.is_ok(), "serializing a contact failed: {result:?}");
        out.push(b'\n');
    }
}

/// Guards a cell against CSV (formula) injection, following OWASP: a value
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'` so that spreadsheets show it as text instead of running it.
/// Other values are returned unchanged. Note that this also prefixes phone
/// numbers such as `+1234567890` and negative numbers.
pub fn escape_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 20;
    const SPEC_CSV: &str = "Object_id,External_ID,Name,Email,Phone,add_param1,add_param2\n\
                            123,123,John Doe,john@example.com,+1234567890,12,\"Additional data\"\n";
    const HEADER: &str = "object_id,external_id,name,email,phone\n";

    /// `super::parse`, checked against [`count_rows`]: an import counts its
    /// file with it before reading the rows, so the two must agree on
    /// every file these tests read, rows and file errors alike.
    fn parse(format: FileFormat, bytes: &[u8], limit: u64) -> Result<ParsedFile, FileError> {
        let parsed = super::parse(format, bytes, limit);
        let expected = parsed.as_ref().map(|file| file.rows.len() as u64).map_err(Clone::clone);
        assert_eq!(count_rows(format, bytes, limit), expected, "count_rows disagrees with parse");
        parsed
    }

    fn csv(text: &str) -> Result<ParsedFile, FileError> {
        parse(FileFormat::Csv, text.as_bytes(), LIMIT)
    }

    fn jsonl(text: &str) -> Result<ParsedFile, FileError> {
        parse(FileFormat::JsonLines, text.as_bytes(), LIMIT)
    }

    fn ok_rows(file: &ParsedFile) -> Vec<&ImportRow> {
        file.rows
            .iter()
            .map(|row| row.as_ref().expect("row is accepted"))
            .collect()
    }

    fn row_error(file: &ParsedFile, index: usize) -> &RowError {
        file.rows[index].as_ref().expect_err("row is rejected")
    }

    fn lines(file: &ParsedFile) -> Vec<u64> {
        file.rows
            .iter()
            .map(|row| match row {
                Ok(row) => row.line,
                Err(error) => error.line,
            })
            .collect()
    }

    fn contact(object_id: &str) -> Contact {
        new_contact(
            [object_id, "ext", "Ann", "ann@example.com", "555"].map(str::to_owned),
            JsonMap::new(),
        )
    }

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
    fn works_when_rows_are_read_one_at_a_time_and_the_reader_stops() {
        let text = "object_id,external_id,name,email,phone\n1,a,Ann,ann@example.com,+1\n1,b,Bob,bob@example.com,+2\n3,c,Cy,cy@example.com,+3\n";
        let mut lines = Vec::new();
        let delimiter = read_rows(FileFormat::Csv, text.as_bytes(), 1 << 20, |row| {
            lines.push(row.map_or_else(|error| error.line, |row| row.line));
            ControlFlow::Continue(())
        });
        assert_eq!(delimiter, Ok(Some(b',')));
        assert_eq!(lines, [2, 3, 4], "the duplicate on line 3 comes as its error, in order");
        assert_eq!(lines, self::lines(&csv(text).expect("parses")), "parse collects the same rows");

        let mut taken = 0;
        read_rows(FileFormat::Csv, text.as_bytes(), 1 << 20, |_| {
            taken += 1;
            if taken == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .expect("readable");
        assert_eq!(taken, 2, "no row after the break");
    }

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
    fn works_when_the_csv_starts_with_a_bom() {
        let bytes = [BOM, SPEC_CSV.as_bytes()].concat();
        let file = parse(FileFormat::Csv, &bytes, LIMIT).expect("file is accepted");
        let rows = ok_rows(&file);
        assert_eq!(rows[0].contact.object_id, "123");
        assert!(rows[0].contact.parameters.contains_key("add_param1"));
        assert_eq!(FileFormat::detect(None, None, &bytes), FileFormat::Csv);
    }

    #[test]
    fn works_when_the_csv_uses_crlf_line_endings() {
        let text = "Object_id,External_ID,Name,Email,Phone,note\r\n\
                    1,a,Ann,ann@example.com,+1,x\r\n\
                    2,b,Bob,bob@example.com,+2,y\r\n";
        let file = csv(text).expect("file is accepted");
        let rows = ok_rows(&file);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[1].line), (2, 3));
        assert_eq!(rows[1].contact.phone, "+2");
        assert_eq!(
            rows[1].contact.parameters.get("note"),
            Some(&Value::from("y"))
        );
    }

    #[test]
    fn works_when_the_csv_uses_old_mac_line_endings() {
        let text = "object_id,external_id,name,email,phone\r1,a,Ann,a@x,+1\r\r2,b,Bob,b@x\r";
        let file = csv(text).expect("file is accepted");
        assert_eq!(lines(&file), vec![2, 4]);
        assert!(row_error(&file, 1)
            .message
            .starts_with("line 4: expected 5 fields"));
    }

    #[test]
    fn works_when_the_csv_uses_semicolons() {
        let text = "Object_id;External_ID;Name;Email;Phone;City\n\
                    1;a;Doe, John;john@example.com;+1;Paris, France\n";
        let file = csv(text).expect("file is accepted");
        assert_eq!(file.delimiter, Some(b';'));
        let rows = ok_rows(&file);
        assert_eq!(rows[0].contact.name, "Doe, John");
        assert_eq!(
            rows[0].contact.parameters.get("City"),
            Some(&Value::from("Paris, France"))
        );
    }

    #[test]
    fn works_when_the_csv_uses_tabs() {
        let text = "object_id\texternal_id\tname\temail\tphone\n1\ta\tAnn\tann@example.com\t+1\n";
        let file = csv(text).expect("file is accepted");
        assert_eq!(file.delimiter, Some(b'\t'));
        assert_eq!(ok_rows(&file)[0].contact.email, "ann@example.com");
    }

    #[test]
    fn works_when_a_quoted_field_contains_a_newline() {
        let text = "object_id,external_id,name,email,phone,note\n\
                    1,a,Ann,ann@example.com,+1,\"first line\nsecond line, with \"\"quotes\"\"\"\n\
                    2,b,Bob,bob@example.com,+2,plain\n\
                    3,c,Cy,cy@example.com\n";
        let file = csv(text).expect("file is accepted");
        assert_eq!(lines(&file), vec![2, 4, 5]);
        let first = &file.rows[0].as_ref().expect("row 1 is accepted").contact;
        assert_eq!(
            first.parameters.get("note"),
            Some(&Value::from("first line\nsecond line, with \"quotes\""))
        );
        let second = file.rows[1].as_ref().expect("row 2 is accepted");
        assert_eq!((second.line, second.contact.object_id.as_str()), (4, "2"));
        assert_eq!(row_error(&file, 2).line, 5);
        assert!(
            row_error(&file, 2).message.starts_with("line 5: "),
            "{}",
            row_error(&file, 2)
        );
    }

    #[test]
    fn works_when_blank_lines_separate_rows() {
        let text = format!(
            "\n{HEADER}\n1,a,Ann,ann@example.com,+1\n\n\r\n2,b,Bob,bob@example.com,+2\n   \n,,,,\n"
        );
        let file = csv(&text).expect("file is accepted");
        assert_eq!(lines(&file), vec![4, 7]);
        assert_eq!(ok_rows(&file)[1].contact.name, "Bob");

        let file = jsonl("\n{\"object_id\":1,\"external_id\":1,\"name\":\"A\",\"email\":\"a@x\",\"phone\":1}\n\n  \n")
            .expect("file is accepted");
        assert_eq!(lines(&file), vec![2]);
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

    fn ok_rows_from(file: &ParsedFile, index: usize) -> &ImportRow {
        file.rows[index].as_ref().expect("row is accepted")
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
    fn errors_when_a_value_sits_under_an_unnamed_column() {
        let text =
            "object_id,external_id,name,email,phone,,\n1,a,Ann,a@x,+1,,\n2,b,Bob,b@x,+2,,oops\n";
        let file = csv(text).expect("trailing unnamed columns are tolerated");
        assert!(ok_rows_from(&file, 0).contact.parameters.is_empty());
        let error = row_error(&file, 1);
        assert_eq!((error.line, error.column), (3, Some(7)));
        assert!(error.message.contains("no name in the header"), "{error}");
    }

    #[test]
    fn errors_when_the_file_is_not_utf8() {
        let bytes = b"object_id,external_id,name,email,phone\n1,a,Ren\xE9,r@x,+1\n";
        let error = parse(FileFormat::Csv, bytes, LIMIT).expect_err("file is rejected");
        assert_eq!(error, FileError::NotUtf8 { line: 2, column: 8 });
        let text = error.to_string();
        assert!(text.starts_with("line 2, column 8: "), "{text}");
        assert!(text.contains("UTF-8"), "{text}");

        let utf16 = b"\xFF\xFEo\0b\0";
        assert_eq!(
            parse(FileFormat::Csv, utf16, LIMIT),
            Err(FileError::NotUtf8 { line: 1, column: 1 })
        );
    }

    #[test]
    fn errors_when_the_file_is_empty() {
        assert_eq!(csv(""), Err(FileError::Empty));
        assert_eq!(jsonl(""), Err(FileError::Empty));
        assert!(FileError::Empty.to_string().contains("header row"));
    }

    #[test]
    fn errors_when_the_file_is_only_whitespace() {
        assert_eq!(csv(" \r\n\t\n "), Err(FileError::Empty));
        assert_eq!(jsonl("\n\n"), Err(FileError::Empty));
        assert_eq!(
            parse(FileFormat::Csv, b"\xEF\xBB\xBF\n", LIMIT),
            Err(FileError::Empty)
        );
    }

    #[test]
    fn errors_when_the_file_exceeds_the_limit() {
        let limit = SPEC_CSV.len() as u64;
        assert!(parse(FileFormat::Csv, SPEC_CSV.as_bytes(), limit).is_ok());
        let error = parse(FileFormat::Csv, SPEC_CSV.as_bytes(), limit - 1).expect_err("too large");
        assert_eq!(
            error,
            FileError::TooLarge {
                limit_bytes: limit - 1
            }
        );
        assert!(
            error
                .to_string()
                .contains(&format!("limit of {} bytes;", limit - 1)),
            "{error}"
        );
        assert!(FileError::TooLarge {
            limit_bytes: 10 << 20
        }
        .to_string()
        .contains("limit of 10.0 MiB (10485760 bytes);"));
    }

    #[test]
    fn errors_when_a_quote_is_never_closed() {
        let text = format!(
            "{HEADER}1,a,Ann,ann@example.com,+1\n2,b,\"Bob,bob@example.com,+2\n3,c,Cy,c@x,+3\n"
        );
        let error = csv(&text).expect_err("file is rejected");
        assert!(
            matches!(
                error,
                FileError::Malformed {
                    line: 3,
                    column: Some(3),
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("line 3, column 3: "),
            "{error}"
        );
    }

    #[test]
    fn errors_when_an_object_id_repeats() {
        let text = format!("{HEADER}123,a,Ann,a@x,+1\n124,b,Bob,b@x,+2\n 123 ,c,Cy,c@x,+3\n");
        let file = csv(&text).expect("file is accepted");
        assert_eq!(ok_rows_from(&file, 1).contact.object_id, "124");
        let error = row_error(&file, 2);
        assert_eq!(
            error.message,
            "line 4: object_id 123 already appears on line 2; each object_id may appear once per file"
        );
        assert_eq!((error.line, error.column), (4, Some(1)));

        let text = "{\"object_id\":\"7\",\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a@x\",\"phone\":\"1\"}\n\
                    {\"object_id\":7,\"external_id\":\"b\",\"name\":\"B\",\"email\":\"b@x\",\"phone\":\"2\"}\n";
        let file = jsonl(text).expect("file is accepted");
        assert_eq!(
            row_error(&file, 1).message,
            "line 2: object_id 7 already appears on line 1; each object_id may appear once per file"
        );
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

    #[test]
    fn works_when_the_format_is_detected_from_name_type_or_content() {
        assert_eq!(
            FileFormat::detect(Some("contacts.JSONL"), None, b"x"),
            FileFormat::JsonLines
        );
        assert_eq!(
            FileFormat::detect(Some("c.ndjson"), None, b"x"),
            FileFormat::JsonLines
        );
        assert_eq!(
            FileFormat::detect(None, Some("application/x-ndjson; charset=utf-8"), b"x"),
            FileFormat::JsonLines
        );
        assert_eq!(
            FileFormat::detect(None, None, b"\xEF\xBB\xBF \n {\"a\":1}"),
            FileFormat::JsonLines
        );
        assert_eq!(
            FileFormat::detect(Some("contacts.csv"), Some("text/csv"), SPEC_CSV.as_bytes()),
            FileFormat::Csv
        );
        assert_eq!(
            FileFormat::detect(None, None, b"[id],name"),
            FileFormat::Csv
        );
        assert_eq!(FileFormat::detect(None, None, b""), FileFormat::Csv);
    }

    #[test]
    fn works_when_escape_cell_guards_formula_prefixes() {
        assert_eq!(escape_cell("=cmd()"), "'=cmd()");
        assert_eq!(escape_cell("-5"), "'-5");
        assert_eq!(escape_cell("+1234567890"), "'+1234567890");
        assert_eq!(escape_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(escape_cell("\tx"), "'\tx");
        assert_eq!(escape_cell("\rx"), "'\rx");
        assert!(matches!(escape_cell("John Doe"), Cow::Borrowed("John Doe")));
        assert!(matches!(escape_cell("a=b"), Cow::Borrowed("a=b")));
        assert!(matches!(escape_cell(""), Cow::Borrowed("")));
    }

    #[test]
    fn works_when_a_csv_export_is_escaped_and_reparses() {
        let mut first = contact("1");
        first.name = "=cmd()".into();
        first.parameters.insert("balance".into(), Value::from("-5"));
        first
            .parameters
            .insert("note".into(), Value::from("line one\nline, two \"quoted\""));
        first.current_stage = Some("intro".into());
        first.result_flag = Some(true);
        let mut second = contact("2");
        second.parameters.insert("score".into(), Value::from(12));
        second
            .parameters
            .insert("name".into(), Value::from("shadow"));
        second.result_flag = Some(false);

        let contacts = [first, second];
        let names = contacts.iter().flat_map(|contact| contact.parameters.keys().cloned()).collect();
        let export = CsvExport::new(names);
        let mut out = Vec::new();
        export.write_header(&mut out);
        export.write_rows(&contacts[..1], &mut out);
        export.write_rows(&contacts[1..], &mut out);
        let text = String::from_utf8(out).expect("export is UTF-8");
        assert!(
            text.starts_with(
                "object_id,external_id,name,email,phone,current_stage,communications,result_flag,\
             balance,parameters.name,note,score\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("1,ext,'=cmd(),ann@example.com,555,intro,0,true,'-5,,"),
            "{text}"
        );

        let file = csv(&text).expect("export re-parses");
        let rows = ok_rows(&file);
        assert_eq!(rows.len(), 2);
        assert_eq!(lines(&file), vec![2, 4]);
        let again = &rows[0].contact;
        assert_eq!(
            (again.object_id.as_str(), again.name.as_str()),
            ("1", "'=cmd()")
        );
        assert_eq!(again.parameters.get("balance"), Some(&Value::from("'-5")));
        assert_eq!(
            again.parameters.get("note"),
            Some(&Value::from("line one\nline, two \"quoted\""))
        );
        assert_eq!(
            again.parameters.get("result_flag"),
            Some(&Value::from("true"))
        );
        assert_eq!(
            rows[1].contact.parameters.get("parameters.name"),
            Some(&Value::from("shadow"))
        );
        assert_eq!(
            rows[1].contact.parameters.get("score"),
            Some(&Value::from("12"))
        );
        assert_eq!(
            rows[1].contact.parameters.get("note"),
            Some(&Value::from(""))
        );
    }

    #[test]
    fn works_when_a_jsonl_export_reparses() {
        let mut first = contact("1");
        first.parameters.insert("score".into(), Value::from(12));
        first.result_flag = Some(true);
        let contacts = [first, contact("2")];
        let mut out = Vec::new();
        write_jsonl(&contacts, &mut out);
        let text = String::from_utf8(out).expect("export is UTF-8");
        let back: Vec<Contact> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is a Contact"))
            .collect();
        assert_eq!(back, contacts);
        assert_eq!(text.lines().count(), 2);

        let file = jsonl(&text).expect("export re-imports");
        let rows = ok_rows(&file);
        assert_eq!(
            rows[0].contact.parameters.get("parameters"),
            Some(&serde_json::json!({"score": 12}))
        );
    }
}

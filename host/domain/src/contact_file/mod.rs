//! Contact files: the CSV or JSON Lines file a customer uploads to add
//! contacts to a campaign, and the CSV / JSON Lines export of contacts.
//!
//! Every contact needs `object_id`, `external_id`, `name`, `email` and
//! `phone`. Column names (CSV) and keys (JSON Lines) match ignoring letter
//! case and surrounding spaces, so `Object_id` or ` EMAIL ` work. Every other
//! column or key becomes an entry of [`Contact::parameters`] under its own
//! spelling (trimmed): a string for CSV, the JSON value as written for JSON
//! Lines. A CSV column named `<name>:json` holds JSON values instead (an
//! empty cell: no such parameter), and a CSV cell that starts with `'`
//! before a formula character (`=`, `+`, `-`, `@`) loses that `'`, as a
//! spreadsheet shows it: the contacts file [`CsvExport`] writes reads back
//! as the same contacts.
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

mod csv;
mod csv_text;
mod detect;
mod error;
mod export;
mod jsonl;
mod row;

use std::collections::HashMap;
use std::ops::ControlFlow;

use self::csv::{csv_row, scan_csv};
use self::csv_text::LineCounter;
use self::jsonl::{json_row, scan_json_lines};
use crate::Contact;

pub use detect::FileFormat;
pub(crate) use error::size_text;
pub use error::{FileError, RowError};
pub use export::{escape_cell, unescape_cell, write_jsonl, write_report_jsonl, CsvExport, ReportCsv, JSON_COLUMN_SUFFIX};

/// The fields every imported contact needs, in their canonical spelling.
pub const REQUIRED_FIELDS: [&str; 5] = ["object_id", "external_id", "name", "email", "phone"];

const OBJECT_ID: usize = 0;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A contact read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The 1-based line on which the record starts.
    pub line: u64,
    pub contact: Contact,
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
    Ok(ParsedFile {
        rows,
        format,
        delimiter,
    })
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

#[cfg(test)]
pub(crate) mod test_support {
    use super::row::new_contact;
    use super::*;
    use crate::JsonMap;

    pub(crate) const LIMIT: u64 = 1 << 20;

    pub(crate) const SPEC_CSV: &str =
        "Object_id,External_ID,Name,Email,Phone,add_param1,add_param2\n\
                            123,123,John Doe,john@example.com,+1234567890,12,\"Additional data\"\n";

    pub(crate) const HEADER: &str = "object_id,external_id,name,email,phone\n";

    /// `super::parse`, checked against [`count_rows`]: an import counts its
    /// file with it before reading the rows, so the two must agree on
    /// every file these tests read, rows and file errors alike.
    pub(crate) fn parse(
        format: FileFormat,
        bytes: &[u8],
        limit: u64,
    ) -> Result<ParsedFile, FileError> {
        let parsed = super::parse(format, bytes, limit);
        let expected = parsed
            .as_ref()
            .map(|file| file.rows.len() as u64)
            .map_err(Clone::clone);
        assert_eq!(
            count_rows(format, bytes, limit),
            expected,
            "count_rows disagrees with parse"
        );
        parsed
    }

    pub(crate) fn csv(text: &str) -> Result<ParsedFile, FileError> {
        parse(FileFormat::Csv, text.as_bytes(), LIMIT)
    }

    pub(crate) fn jsonl(text: &str) -> Result<ParsedFile, FileError> {
        parse(FileFormat::JsonLines, text.as_bytes(), LIMIT)
    }

    pub(crate) fn ok_rows(file: &ParsedFile) -> Vec<&ImportRow> {
        file.rows
            .iter()
            .map(|row| row.as_ref().expect("row is accepted"))
            .collect()
    }

    pub(crate) fn row_error(file: &ParsedFile, index: usize) -> &RowError {
        file.rows[index].as_ref().expect_err("row is rejected")
    }

    pub(crate) fn lines(file: &ParsedFile) -> Vec<u64> {
        file.rows
            .iter()
            .map(|row| match row {
                Ok(row) => row.line,
                Err(error) => error.line,
            })
            .collect()
    }

    pub(crate) fn contact(object_id: &str) -> Contact {
        new_contact(
            [object_id, "ext", "Ann", "ann@example.com", "555"].map(str::to_owned),
            JsonMap::new(),
        )
    }

    pub(crate) fn ok_rows_from(file: &ParsedFile, index: usize) -> &ImportRow {
        file.rows[index].as_ref().expect("row is accepted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_file::test_support::parse;
    use crate::contact_file::test_support::*;

    #[test]
    fn works_when_rows_are_read_one_at_a_time_and_the_reader_stops() {
        let text = "object_id,external_id,name,email,phone\n1,a,Ann,ann@example.com,+1\n1,b,Bob,bob@example.com,+2\n3,c,Cy,cy@example.com,+3\n";
        let mut lines = Vec::new();
        let delimiter = read_rows(FileFormat::Csv, text.as_bytes(), 1 << 20, |row| {
            lines.push(row.map_or_else(|error| error.line, |row| row.line));
            ControlFlow::Continue(())
        });
        assert_eq!(delimiter, Ok(Some(b',')));
        assert_eq!(
            lines,
            [2, 3, 4],
            "the duplicate on line 3 comes as its error, in order"
        );
        assert_eq!(
            lines,
            self::lines(&csv(text).expect("parses")),
            "parse collects the same rows"
        );

        let mut taken = 0;
        read_rows(FileFormat::Csv, text.as_bytes(), 1 << 20, |_| {
            taken += 1;
            if taken == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("readable");
        assert_eq!(taken, 2, "no row after the break");
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
}

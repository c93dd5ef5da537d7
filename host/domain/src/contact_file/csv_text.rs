//! What the CSV reader needs found in the raw text first: the delimiter,
//! an unclosed quote, and the line on which each record starts.

use super::error::FileError;
use super::{count_line_breaks, is_line_break};

/// Line numbers of CSV records. The csv crate's `Position::line()` is the
/// line where its reader stopped after the previous record, which is off by
/// one after a CRLF and by the number of blank lines it skipped; so count
/// from the record's byte offset instead, past those line breaks.
pub(super) struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        LineCounter {
            bytes: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record whose reading started at byte `start`;
    /// calls must come in increasing order of `start`.
    pub(super) fn record_line(&mut self, start: u64) -> u64 {
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
pub(super) fn detect_delimiter(text: &str) -> u8 {
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
pub(super) fn check_quotes_closed(text: &str, delimiter: u8) -> Result<(), FileError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_file::test_support::*;
    use serde_json::Value;

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
}

//! What rejects one row, and what rejects the whole file.

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

//! Which of the two formats an upload is.

use super::BOM;

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
    /// with `{` — or with `[` and then `{`, a JSON array, which [`parse`](super::parse)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_file::test_support::*;

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
}

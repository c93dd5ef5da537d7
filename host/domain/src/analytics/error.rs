//! Problems of an analytics file, each at its line and column.

use super::yaml::Pos;

/// One problem of an analytics file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {}{message}", path_prefix(.path))]
pub struct AnalyticsError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Where in the document, e.g. `metrics[1].type`; empty for the file
    /// itself and its top-level mapping.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every problem found in an analytics file, in file order; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct AnalyticsErrors(pub Vec<AnalyticsError>);

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

fn one_per_line(errors: &[AnalyticsError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn whole_file(message: String) -> AnalyticsError {
    AnalyticsError {
        line: 1,
        column: 1,
        path: String::new(),
        message,
    }
}

pub(super) fn at(pos: Pos, message: &str) -> AnalyticsError {
    AnalyticsError {
        line: pos.line,
        column: pos.column,
        path: String::new(),
        message: message.to_owned(),
    }
}

//! A batch's rows as one parameter per column, for PostgreSQL's
//! `unnest($1::text[], $2::bigint[], …)`: each parameter is the text form
//! of an array, `{"a","b",NULL}`. sqlx's `Any` driver binds no arrays, and
//! PostgreSQL reads a column's array literal in half the time it takes to
//! read the same rows as JSON objects (docs/BENCHMARKS.md).

use std::borrow::Cow;
use std::fmt::Write;

use crate::communication_row::AnyQuery;

/// One value of a row.
pub(crate) enum Cell<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
}

impl<'a> Cell<'a> {
    pub(crate) fn text(value: &'a str) -> Self {
        Cell::Text(Some(Cow::Borrowed(value)))
    }

    pub(crate) fn owned(value: String) -> Self {
        Cell::Text(Some(Cow::Owned(value)))
    }

    pub(crate) fn optional(value: Option<&'a str>) -> Self {
        Cell::Text(value.map(Cow::Borrowed))
    }

    /// Binds the value as one parameter: the same row written with
    /// multi-row `VALUES` instead of arrays (SQLite).
    pub(crate) fn bind(self, query: AnyQuery<'a>) -> AnyQuery<'a> {
        match self {
            Cell::Text(Some(Cow::Borrowed(text))) => query.bind(text),
            Cell::Text(Some(Cow::Owned(text))) => query.bind(text),
            Cell::Text(None) => query.bind(None::<&str>),
            Cell::Int(number) => query.bind(number),
        }
    }
}

/// Rows of the columns `(name, SQL type)`, a literal per column.
pub(crate) struct ArrayRows {
    columns: &'static [(&'static str, &'static str)],
    literals: Vec<String>,
}

impl ArrayRows {
    pub(crate) fn new(columns: &'static [(&'static str, &'static str)]) -> Self {
        Self { columns, literals: columns.iter().map(|_| String::from("{")).collect() }
    }

    /// Appends a row: a cell per column, in the columns' order.
    pub(crate) fn push<'a>(&mut self, row: impl IntoIterator<Item = Cell<'a>>) {
        let mut cells = 0;
        for (literal, cell) in self.literals.iter_mut().zip(row) {
            if literal.len() > 1 {
                literal.push(',');
            }
            match cell {
                Cell::Text(Some(text)) => quote(literal, &text),
                Cell::Int(Some(number)) => {
                    let _ = write!(literal, "{number}");
                }
                Cell::Text(None) | Cell::Int(None) => literal.push_str("NULL"),
            }
            cells += 1;
        }
        assert_eq!(cells, self.columns.len(), "a row has a cell per column");
    }

    /// `unnest($first::type[], …) AS alias(name, …)`: the rows as a table.
    pub(crate) fn source(&self, first: usize, alias: &str) -> String {
        let arrays: Vec<String> = self.columns.iter().enumerate().map(|(at, (_, kind))| format!("${}::{kind}[]", first + at)).collect();
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        format!("unnest({}) AS {alias}({})", arrays.join(", "), names.join(", "))
    }

    /// Binds the columns' literals, in the order [`ArrayRows::source`] numbers them.
    pub(crate) fn bind(self, mut query: AnyQuery<'_>) -> AnyQuery<'_> {
        for mut literal in self.literals {
            literal.push('}');
            query = query.bind(literal);
        }
        query
    }
}

/// `text` as an array element: quoted, with `"` and `\` escaped, so that
/// commas, braces, spaces and the word NULL stay text.
fn quote(literal: &mut String, text: &str) {
    literal.push('"');
    let mut rest = text;
    while let Some(at) = rest.find(['"', '\\']) {
        literal.push_str(&rest[..at]);
        literal.push('\\');
        literal.push_str(&rest[at..at + 1]);
        rest = &rest[at + 1..];
    }
    literal.push_str(rest);
    literal.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[(&str, &str)] = &[("name", "TEXT"), ("count", "BIGINT")];

    fn literals(rows: ArrayRows) -> Vec<String> {
        rows.literals.into_iter().map(|literal| literal + "}").collect()
    }

    #[test]
    fn works_when_text_that_looks_like_syntax_stays_text() {
        let mut rows = ArrayRows::new(COLUMNS);
        rows.push([Cell::text(r#"say "hi", {to} me\you"#), Cell::Int(Some(-3))]);
        rows.push([Cell::text("NULL"), Cell::Int(None)]);
        rows.push([Cell::optional(None), Cell::Int(Some(i64::MAX))]);
        rows.push([Cell::owned(String::new()), Cell::Int(Some(0))]);
        assert_eq!(
            literals(rows),
            [r#"{"say \"hi\", {to} me\\you","NULL",NULL,""}"#, "{-3,NULL,9223372036854775807,0}"]
        );
    }

    #[test]
    fn works_when_no_rows_are_empty_arrays() {
        let rows = ArrayRows::new(COLUMNS);
        assert_eq!(rows.source(3, "r"), "unnest($3::TEXT[], $4::BIGINT[]) AS r(name, count)");
        assert_eq!(literals(rows), ["{}", "{}"]);
    }

    #[test]
    #[should_panic(expected = "a row has a cell per column")]
    fn errors_when_a_row_lacks_a_cell() {
        ArrayRows::new(COLUMNS).push([Cell::text("only a name")]);
    }
}

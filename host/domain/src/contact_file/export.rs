//! The exports of contacts: the contacts file (CSV or JSON Lines), which
//! imports into a campaign as the same contacts, and the state report (where
//! each contact stands: stage, communications, outcome, results).
//!
//! A contacts file holds what an import reads and nothing else: the
//! required fields, then the parameters. In CSV, a parameter column whose
//! values are not all text (a number, true/false, a list, a contact without
//! it) is named `<name>:json` and holds JSON values, which the import reads
//! back with their types. Every cell that a spreadsheet would run as a
//! formula gets a leading `'`, which the import removes again; phone
//! numbers and plain numbers such as `+1 (555) 123-4567` or `-5` cannot run
//! and are written as they are.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::contact::ContactSummary;
use crate::Contact;

use super::REQUIRED_FIELDS;

/// The header suffix of a CSV column that holds JSON values.
pub const JSON_COLUMN_SUFFIX: &str = ":json";

/// What starts a spreadsheet formula (OWASP's list).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV contacts file: the required fields, then one column per parameter
/// name, sorted. The columns are fixed before the first row, so an export
/// is written a chunk of contacts at a time. A parameter name that would
/// repeat a required field (ignoring case) is written as
/// `parameters.<name>`.
pub struct CsvExport {
    parameters: Vec<ParameterColumn>,
}

struct ParameterColumn {
    key: String,
    header: String,
    /// Its cells are JSON values: some contact's value is not text, or
    /// some contact lacks it (an empty text cell would import as "").
    json: bool,
}

impl CsvExport {
    /// `parameters`: every parameter name any contact of the export has,
    /// and whether its column must hold JSON (see [`ParameterColumn`]). A
    /// parameter not named here is not written.
    pub fn new(parameters: BTreeMap<String, bool>) -> Self {
        let mut used: HashSet<String> = REQUIRED_FIELDS.iter().map(|name| (*name).to_owned()).collect();
        let parameters = parameters
            .into_iter()
            .map(|(key, typed)| {
                let mut name = key.clone();
                if key.trim().is_empty() || key.trim() != key || used.contains(&key.to_lowercase()) {
                    name = unique(&used, &format!("parameters.{}", key.trim()));
                }
                used.insert(name.to_lowercase());
                // A text parameter whose name ends in `:json` is written
                // as a JSON column too, so that the import strips the one
                // suffix it adds.
                let json = typed || json_column_name(&name).is_some();
                let header = if json { format!("{name}{JSON_COLUMN_SUFFIX}") } else { name };
                ParameterColumn { key, header, json }
            })
            .collect();
        Self { parameters }
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        let header = REQUIRED_FIELDS
            .iter()
            .map(|name| Cow::Borrowed(*name))
            .chain(self.parameters.iter().map(|column| guard(Cow::Borrowed(column.header.as_str()))));
        write_records(out, [header.collect()]);
    }

    pub fn write_rows(&self, contacts: &[Contact], out: &mut Vec<u8>) {
        write_records(out, contacts.iter().map(|contact| self.row(contact)));
    }

    fn row<'a>(&self, contact: &'a Contact) -> Vec<Cow<'a, str>> {
        let mut cells: Vec<Cow<'a, str>> = [&contact.object_id, &contact.external_id, &contact.name, &contact.email, &contact.phone]
            .into_iter()
            .map(|value| guard(Cow::Borrowed(value.as_str())))
            .collect();
        for column in &self.parameters {
            let cell = match (contact.parameters.get(&column.key), column.json) {
                (None, _) => Cow::Borrowed(""),
                (Some(value), true) => Cow::Owned(value.to_string()),
                (Some(Value::String(text)), false) => Cow::Borrowed(text.as_str()),
                (Some(other), false) => Cow::Owned(other.to_string()),
            };
            cells.push(guard(cell));
        }
        cells
    }
}

/// `name`, or `name.2`, `name.3`… when that is taken (ignoring case).
fn unique(used: &HashSet<String>, name: &str) -> String {
    let mut candidate = name.to_owned();
    let mut suffix = 2;
    while used.contains(&candidate.to_lowercase()) {
        candidate = format!("{name}.{suffix}");
        suffix += 1;
    }
    candidate
}

/// The parameter name of a CSV header that marks a JSON column.
pub(super) fn json_column_name(header: &str) -> Option<&str> {
    let split = header.len().checked_sub(JSON_COLUMN_SUFFIX.len())?;
    let (name, suffix) = (header.get(..split)?, header.get(split..)?);
    suffix.eq_ignore_ascii_case(JSON_COLUMN_SUFFIX).then_some(name)
}

/// Writes each contact as one JSON object per line, in the form an import
/// reads: the required fields, then each parameter under its own name (a
/// name that would repeat a required field, ignoring case, as
/// `parameters.<name>`), values with their JSON types.
pub fn write_jsonl(contacts: &[Contact], out: &mut Vec<u8>) {
    for contact in contacts {
        let mut object = serde_json::Map::new();
        for (field, value) in REQUIRED_FIELDS.iter().zip([&contact.object_id, &contact.external_id, &contact.name, &contact.email, &contact.phone]) {
            object.insert((*field).to_owned(), Value::String(value.clone()));
        }
        for (key, value) in &contact.parameters {
            let mut name = key.clone();
            if key.trim().is_empty() || key.trim() != key || object.keys().any(|taken| taken.eq_ignore_ascii_case(key)) {
                let used: HashSet<String> = object.keys().map(|taken| taken.to_lowercase()).collect();
                name = unique(&used, &format!("parameters.{}", key.trim()));
            }
            object.insert(name, value.clone());
        }
        write_json_line(&object, out);
    }
}

/// The state report as JSON Lines: each contact whole, as the API shows
/// it (stage, internal data, results, every communication).
pub fn write_report_jsonl(contacts: &[Contact], out: &mut Vec<u8>) {
    for contact in contacts {
        write_json_line(contact, out);
    }
}

fn write_json_line(value: &impl serde::Serialize, out: &mut Vec<u8>) {
    let result = serde_json::to_writer(&mut *out, value);
    // Only string-keyed maps, and a Vec sink cannot fail.
    debug_assert!(result.is_ok(), "serializing a contact failed: {result:?}");
    out.push(b'\n');
}

/// The fixed leading columns of a [`ReportCsv`].
const REPORT_COLUMNS: [&str; 10] = [
    "object_id",
    "external_id",
    "name",
    "current_stage",
    "communications",
    "sent",
    "planned",
    "outcome",
    "result_flag",
    "result_datetime",
];

/// The state report as CSV: where each contact stands, as the contacts
/// table shows it, then one `results.<code>` column per result code,
/// sorted (text as it is, other values as JSON). For reading, not for
/// importing; cells are guarded like a contacts file's.
pub struct ReportCsv {
    results: Vec<String>,
}

impl ReportCsv {
    /// `result_codes`: every result code any contact of the report has.
    pub fn new(result_codes: BTreeSet<String>) -> Self {
        Self { results: result_codes.into_iter().collect() }
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        let header = REPORT_COLUMNS
            .iter()
            .map(|name| Cow::Borrowed(*name))
            .chain(self.results.iter().map(|code| guard(Cow::Owned(format!("results.{code}")))));
        write_records(out, [header.collect()]);
    }

    /// `rows`: each contact with its row of the contacts table.
    pub fn write_rows(&self, rows: &[(&Contact, &ContactSummary)], out: &mut Vec<u8>) {
        write_records(out, rows.iter().map(|(contact, summary)| self.row(contact, summary)));
    }

    fn row<'a>(&self, contact: &'a Contact, summary: &'a ContactSummary) -> Vec<Cow<'a, str>> {
        let flag = match contact.result_flag {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        };
        let mut cells: Vec<Cow<'a, str>> = vec![
            guard(Cow::Borrowed(contact.object_id.as_str())),
            guard(Cow::Borrowed(contact.external_id.as_str())),
            guard(Cow::Borrowed(contact.name.as_str())),
            guard(Cow::Borrowed(contact.current_stage.as_deref().unwrap_or(""))),
            Cow::Owned(summary.communication_count.to_string()),
            Cow::Owned(summary.sent_count.to_string()),
            Cow::Owned(summary.planned_count.to_string()),
            guard(Cow::Borrowed(summary.outcome.as_deref().unwrap_or(""))),
            Cow::Borrowed(flag),
            Cow::Owned(contact.result_datetime.map(|at| at.to_rfc3339()).unwrap_or_default()),
        ];
        for code in &self.results {
            let cell = match contact.results.get(code) {
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

/// Guards a cell against CSV (formula) injection, following OWASP: a value
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'` so that spreadsheets show it as text instead of running it.
/// A plain number or phone number (`+`/`-`, then only digits, spaces,
/// `(`, `)`, `.` and `-`) cannot run and is left as it is; a value that
/// already starts with `'` before such a character gets one more, so that
/// [`unescape_cell`] gives every value back exactly.
pub fn escape_cell(value: &str) -> Cow<'_, str> {
    let unquoted = value.trim_start_matches('\'');
    let formula = unquoted.starts_with(FORMULA_STARTS);
    if formula && (unquoted.len() != value.len() || !is_plain_number(value)) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Reverses [`escape_cell`]: removes the one `'` it adds. The import reads
/// every CSV cell through it, as a spreadsheet hides that `'`.
pub fn unescape_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// `+1 (555) 123-4567`, `-5`, `-0.25`: a sign, then only digits and
/// number punctuation, with at least one digit — nothing a spreadsheet
/// can call or link.
fn is_plain_number(value: &str) -> bool {
    let Some(rest) = value.strip_prefix(['+', '-']) else { return false };
    rest.chars().any(|c| c.is_ascii_digit()) && rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact_file::test_support::*;

    fn names(contacts: &[Contact]) -> BTreeMap<String, bool> {
        let mut names = BTreeMap::new();
        for contact in contacts {
            for (key, value) in &contact.parameters {
                *names.entry(key.clone()).or_insert(false) |= !value.is_string();
            }
        }
        for (key, typed) in names.iter_mut() {
            *typed |= contacts.iter().any(|contact| !contact.parameters.contains_key(key));
        }
        names
    }

    fn csv_export(contacts: &[Contact]) -> String {
        let export = CsvExport::new(names(contacts));
        let mut out = Vec::new();
        export.write_header(&mut out);
        export.write_rows(&contacts[..1], &mut out);
        export.write_rows(&contacts[1..], &mut out);
        String::from_utf8(out).expect("export is UTF-8")
    }

    #[test]
    fn works_when_escape_cell_guards_formula_prefixes() {
        assert_eq!(escape_cell("=cmd()"), "'=cmd()");
        assert_eq!(escape_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(escape_cell("\tx"), "'\tx");
        assert_eq!(escape_cell("\rx"), "'\rx");
        assert_eq!(escape_cell("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(escape_cell("-1e5"), "'-1e5");
        assert_eq!(escape_cell("-"), "'-");
        assert_eq!(escape_cell("'=x"), "''=x");
        assert_eq!(escape_cell("'+1234567890"), "''+1234567890");
        for plain in ["+1234567890", "+1 (555) 123-4567", "-5", "-0.25", "John Doe", "a=b", "", "'quoted'"] {
            assert!(matches!(escape_cell(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn works_when_unescape_cell_gives_every_value_back() {
        for value in ["=cmd()", "+1234567890", "'=x", "''@y", "'+1", "-5", "-1e5", "'", "''", "'quoted'", "plain", "", "\tx"] {
            assert_eq!(unescape_cell(&escape_cell(value)), value, "{value:?}");
        }
        // A guarded phone number of an older export reads as the number.
        assert_eq!(unescape_cell("'+1234567890"), "+1234567890");
    }

    #[test]
    fn works_when_a_csv_contacts_file_reimports_as_the_same_contacts() {
        let mut first = contact("1");
        first.name = "=cmd()".into();
        first.phone = "+1 (555) 123-4567".into();
        first.parameters.insert("balance".into(), Value::from("-5"));
        first.parameters.insert("note".into(), Value::from("line one\nline, two \"quoted\""));
        first.parameters.insert("score".into(), Value::from(12));
        first.parameters.insert("tags".into(), serde_json::json!(["a", "=b"]));
        first.parameters.insert("raw:json".into(), Value::from("text"));
        first.current_stage = Some("intro".into());
        first.result_flag = Some(true);
        let mut second = contact("2");
        second.parameters.insert("balance".into(), Value::from("'=x"));
        second.parameters.insert("note".into(), Value::from(""));
        second.parameters.insert("score".into(), Value::from("12"));
        second.parameters.insert("raw:json".into(), Value::Null);
        second.parameters.insert("Name".into(), Value::from("shadow"));

        let text = csv_export(&[first.clone(), second.clone()]);
        assert!(
            text.starts_with("object_id,external_id,name,email,phone,parameters.Name:json,balance,note,raw:json:json,score:json,tags:json\n"),
            "{text}"
        );
        assert!(text.contains("1,ext,'=cmd(),ann@example.com,+1 (555) 123-4567,,-5,"), "{text}");

        let file = csv(&text).expect("export re-parses");
        let rows = ok_rows(&file);
        let mut expected_second = second;
        let shadow = expected_second.parameters.remove("Name").expect("Name");
        expected_second.parameters.insert("parameters.Name".into(), shadow);
        let mut expected_first = first;
        expected_first.current_stage = None;
        expected_first.result_flag = None;
        assert_eq!(rows[0].contact, expected_first);
        assert_eq!(rows[1].contact, expected_second);
    }

    #[test]
    fn works_when_a_jsonl_contacts_file_reimports_as_the_same_contacts() {
        let mut first = contact("1");
        first.parameters.insert("score".into(), Value::from(12));
        first.parameters.insert("nested".into(), serde_json::json!({"a": [1, null]}));
        first.result_flag = Some(true);
        first.current_stage = Some("intro".into());
        let contacts = [first, contact("2")];
        let mut out = Vec::new();
        write_jsonl(&contacts, &mut out);
        let text = String::from_utf8(out).expect("export is UTF-8");
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("current_stage") && !text.contains("communications"), "{text}");

        let file = jsonl(&text).expect("export re-imports");
        let rows = ok_rows(&file);
        assert_eq!(rows[0].contact.parameters, contacts[0].parameters);
        assert_eq!(rows[1].contact, contacts[1]);
    }

    #[test]
    fn works_when_the_report_lists_state_and_results() {
        let mut first = contact("1");
        first.current_stage = Some("=intro".into());
        first.result_flag = Some(true);
        first.results.insert("Outcome".into(), Value::from("PAID"));
        first.results.insert("amount".into(), Value::from(120.5));
        let summary = ContactSummary {
            id: "c1".into(),
            object_id: "1".into(),
            external_id: "ext".into(),
            name: "Ann".into(),
            email: String::new(),
            phone: String::new(),
            current_stage: first.current_stage.clone(),
            communication_count: 3,
            sent_count: 2,
            planned_count: 1,
            result_flag: Some(true),
            outcome: Some("PAID".into()),
        };
        let report = ReportCsv::new(first.results.keys().cloned().collect());
        let mut out = Vec::new();
        report.write_header(&mut out);
        report.write_rows(&[(&first, &summary)], &mut out);
        let text = String::from_utf8(out).expect("report is UTF-8");
        assert_eq!(
            text,
            "object_id,external_id,name,current_stage,communications,sent,planned,outcome,result_flag,result_datetime,results.Outcome,results.amount\n\
             1,ext,Ann,'=intro,3,2,1,PAID,true,,PAID,120.5\n"
        );
    }
}

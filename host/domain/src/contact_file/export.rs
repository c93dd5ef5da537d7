//! The CSV and JSON Lines exports of contacts.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::Contact;

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
        Self {
            parameters: parameter_names.into_iter().collect(),
        }
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        let mut used: HashSet<String> = EXPORT_COLUMNS
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        let mut header: Vec<Cow<'_, str>> = EXPORT_COLUMNS
            .iter()
            .map(|name| Cow::Borrowed(*name))
            .collect();
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
            guard(Cow::Borrowed(
                contact.current_stage.as_deref().unwrap_or(""),
            )),
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
    use crate::contact_file::test_support::*;

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
        let names = contacts
            .iter()
            .flat_map(|contact| contact.parameters.keys().cloned())
            .collect();
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

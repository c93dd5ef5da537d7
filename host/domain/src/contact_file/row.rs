//! What CSV and JSON Lines rows share: the contact built from a row, and
//! the check that each object_id appears once per file.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::error::RowError;
use crate::{Contact, JsonMap};

/// Records the first line of each object_id; returns that line when
/// `object_id` was seen before. Empty ids are not recorded.
pub(super) fn register_object_id(
    seen: &mut HashMap<String, u64>,
    object_id: &str,
    line: u64,
) -> Option<u64> {
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

pub(super) fn duplicate_object_id(
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

pub(super) fn new_contact(required: [String; 5], parameters: JsonMap) -> Contact {
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

#[cfg(test)]
mod tests {
    use crate::contact_file::test_support::*;

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
}

//! A communication as a row of `communications`: its columns and how a
//! [`Communication`] is read from them and bound to them. Every query that
//! reads or writes a communication's own fields uses these, so a new field
//! is added here once.

use sqlx::any::AnyRow;
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus};

use crate::{from_json, from_micros, get, micros, to_json, Result, StoreError};

/// The columns of a communication's own fields, in the order
/// [`bind_fields`] binds them.
macro_rules! field_columns {
    () => {
        "position, name, stage_name, start_date, end_date, status, status_detail, status_updated_at, flagged, \
         alternative, parameters"
    };
}

/// The columns [`bind_fields`] writes, in its order.
pub(crate) const FIELD_COLUMNS: &str = field_columns!();
/// How many values [`bind_fields`] binds.
pub(crate) const FIELD_COUNT: usize = 11;
/// What [`communication`] reads: the id and the fields.
pub(crate) const COMMUNICATION_COLUMNS: &str = concat!("id, ", field_columns!());

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// `columns` (a list such as [`FIELD_COLUMNS`]) with each name prefixed:
/// `m.` for a joined table, `new_` for the columns of a `VALUES` list.
pub(crate) fn prefixed(columns: &str, prefix: &str) -> String {
    columns.split(", ").map(|column| format!("{prefix}{column}")).collect::<Vec<_>>().join(", ")
}

/// Binds the fields of the communication at `position` of its contact, as
/// [`FIELD_COLUMNS`] lists them.
pub(crate) fn bind_fields<'q>(query: AnyQuery<'q>, position: usize, comm: &'q Communication) -> Result<AnyQuery<'q>> {
    Ok(query
        .bind(position as i64)
        .bind(comm.name.as_str())
        .bind(comm.stage_name.as_str())
        .bind(micros(comm.start_date))
        .bind(comm.end_date.map(micros))
        .bind(comm.status.status.as_str())
        .bind(comm.status.detail.as_deref())
        .bind(comm.status.updated_at.map(micros))
        .bind(i64::from(comm.flagged))
        .bind(comm.alternative.as_deref())
        .bind(to_json(&comm.parameters)?))
}

/// The columns of [`FIELD_COLUMNS`] with their types, for a statement
/// that reads its rows from a JSON array (PostgreSQL's `json_to_recordset`)
/// of [`FieldsRecord`]s.
pub(crate) const FIELD_RECORD: &str = "position BIGINT, name TEXT, stage_name TEXT, start_date BIGINT, end_date BIGINT, \
     status TEXT, status_detail TEXT, status_updated_at BIGINT, flagged BIGINT, alternative TEXT, parameters TEXT";

/// A communication's fields as one object of a JSON array of rows: what
/// [`bind_fields`] binds, named as [`FIELD_COLUMNS`] names them.
#[derive(serde::Serialize)]
pub(crate) struct FieldsRecord<'a> {
    position: i64,
    name: &'a str,
    stage_name: &'a str,
    start_date: i64,
    end_date: Option<i64>,
    status: &'a str,
    status_detail: Option<&'a str>,
    status_updated_at: Option<i64>,
    flagged: i64,
    alternative: Option<&'a str>,
    parameters: String,
}

impl<'a> FieldsRecord<'a> {
    pub(crate) fn new(position: usize, comm: &'a Communication) -> Result<Self> {
        Ok(Self {
            position: position as i64,
            name: &comm.name,
            stage_name: &comm.stage_name,
            start_date: micros(comm.start_date),
            end_date: comm.end_date.map(micros),
            status: comm.status.status.as_str(),
            status_detail: comm.status.detail.as_deref(),
            status_updated_at: comm.status.updated_at.map(micros),
            flagged: i64::from(comm.flagged),
            alternative: comm.alternative.as_deref(),
            parameters: to_json(&comm.parameters)?,
        })
    }
}

/// A row read with [`COMMUNICATION_COLUMNS`].
pub(crate) fn communication(row: &AnyRow) -> Result<Communication> {
    Ok(Communication {
        id: Some(get(row, "id")?),
        name: get(row, "name")?,
        stage_name: get(row, "stage_name")?,
        start_date: from_micros(get(row, "start_date")?)?,
        end_date: get::<Option<i64>>(row, "end_date")?.map(from_micros).transpose()?,
        status: CommunicationState {
            status: {
                let text: String = get(row, "status")?;
                CommunicationStatus::parse(&text)
                    .ok_or_else(|| StoreError::Corrupt(format!("communication status {text}")))?
            },
            detail: get(row, "status_detail")?,
            updated_at: get::<Option<i64>>(row, "status_updated_at")?.map(from_micros).transpose()?,
        },
        flagged: get::<i64>(row, "flagged")? != 0,
        alternative: get(row, "alternative")?,
        parameters: from_json(&get::<String>(row, "parameters")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_the_field_list_has_one_column_per_bound_value() {
        assert_eq!(FIELD_COLUMNS.split(", ").count(), FIELD_COUNT);
        assert_eq!(prefixed("a, b", "v.new_"), "v.new_a, v.new_b");
    }

    /// A field's JSON key, its record column and its `INSERT` column are
    /// three lists; a field added to one and not the others must fail here,
    /// not leave a column empty.
    #[test]
    fn works_when_the_json_record_names_the_field_columns() {
        let sorted = |mut names: Vec<String>| {
            names.sort_unstable();
            names
        };
        let columns = sorted(FIELD_COLUMNS.split(", ").map(str::to_owned).collect());
        let record = sorted(FIELD_RECORD.split(", ").map(|column| column.split(' ').next().unwrap().to_owned()).collect());
        assert_eq!(record, columns);
        let comm = Communication {
            id: None,
            name: "First".into(),
            stage_name: "1. Email".into(),
            start_date: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            end_date: None,
            status: CommunicationState { status: CommunicationStatus::Planned, detail: None, updated_at: None },
            flagged: false,
            alternative: None,
            parameters: Default::default(),
        };
        let serde_json::Value::Object(object) = serde_json::to_value(FieldsRecord::new(3, &comm).unwrap()).unwrap() else {
            panic!("a record is a JSON object")
        };
        assert_eq!(sorted(object.keys().cloned().collect()), columns);
        assert_eq!(object["position"], 3);
        assert_eq!(object["start_date"], 1_800_000_000_000_000i64);
    }
}

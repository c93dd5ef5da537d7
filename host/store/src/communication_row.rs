//! A communication as a row of `communications`: its columns and how a
//! [`Communication`] is read from them and bound to them. Every query that
//! reads or writes a communication's own fields uses these, so a new field
//! is added here once.

use sqlx::any::AnyRow;
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus};

use crate::array_rows::Cell;
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
    Ok(field_cells(position, comm)?.into_iter().fold(query, |query, cell| cell.bind(query)))
}

/// The columns of [`FIELD_COLUMNS`] with their types, for a statement
/// that reads its rows from arrays ([`crate::array_rows::ArrayRows`]) of
/// [`field_cells`].
pub(crate) const FIELD_ARRAYS: [(&str, &str); FIELD_COUNT] = [
    ("position", "BIGINT"),
    ("name", "TEXT"),
    ("stage_name", "TEXT"),
    ("start_date", "BIGINT"),
    ("end_date", "BIGINT"),
    ("status", "TEXT"),
    ("status_detail", "TEXT"),
    ("status_updated_at", "BIGINT"),
    ("flagged", "BIGINT"),
    ("alternative", "TEXT"),
    ("parameters", "TEXT"),
];

/// The fields of the communication at `position` of its contact as a row
/// of [`FIELD_ARRAYS`], also what [`bind_fields`] binds.
pub(crate) fn field_cells(position: usize, comm: &Communication) -> Result<[Cell<'_>; FIELD_COUNT]> {
    Ok([
        Cell::Int(Some(position as i64)),
        Cell::text(&comm.name),
        Cell::text(&comm.stage_name),
        Cell::Int(Some(micros(comm.start_date))),
        Cell::Int(comm.end_date.map(micros)),
        Cell::text(comm.status.status.as_str()),
        Cell::optional(comm.status.detail.as_deref()),
        Cell::Int(comm.status.updated_at.map(micros)),
        Cell::Int(Some(i64::from(comm.flagged))),
        Cell::optional(comm.alternative.as_deref()),
        Cell::owned(to_json(&comm.parameters)?),
    ])
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

    /// The array columns and the `INSERT` columns are two lists of the
    /// same fields, in the same order: a field added to one and not the
    /// other must fail here, not write a value into another column.
    #[test]
    fn works_when_the_field_arrays_are_the_field_columns() {
        let names: Vec<&str> = FIELD_ARRAYS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, FIELD_COLUMNS.split(", ").collect::<Vec<_>>());
    }
}

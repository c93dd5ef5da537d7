//! What a tenant consumed, per UTC day, for billing: `GET /usage` (the
//! tenant's own) and `stratagem tenant usage` (the operator's), as JSON or
//! CSV.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The longest span one report covers.
pub const MAX_DAYS: i64 = 366;

/// The days `from` to `to` (defaults: the 30 days up to `today`), checked:
/// in order and at most [`MAX_DAYS`]; `Err` says what is wrong.
pub fn span(from: Option<NaiveDate>, to: Option<NaiveDate>, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), String> {
    let to = to.unwrap_or(today);
    let from = from.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(format!("from {from} to {to} is more than {MAX_DAYS} days; ask for a year or less at a time"));
    }
    Ok((from, to))
}

/// One day's value of one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageRow {
    /// The UTC day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub day: NaiveDate,
    /// `invocations`, `fuel`, `http_calls`, `imports`, `import_rows`, `messages` or `llm_tokens`.
    pub metric: String,
    /// The hook (invocations, fuel, http_calls), the channel (messages),
    /// the LLM use: conversation, extraction or analysis (llm_tokens);
    /// empty for imports and import_rows.
    pub dimension: String,
    pub value: u64,
}

/// What the tenant stores now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageUsage {
    pub campaigns: u64,
    pub contacts: u64,
    pub communications: u64,
    pub strategy_versions: u64,
    /// The compiled components' bytes.
    pub component_bytes: u64,
    /// All of the tenant's data, in bytes (characters of text): contacts,
    /// communications, strategy versions and kept invocations, without the
    /// database's overhead. The storage quota counts this.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub from: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub to: NaiveDate,
    /// By day, metric and dimension; days without use are left out.
    pub rows: Vec<UsageRow>,
    pub storage: StorageUsage,
}

impl UsageReport {
    /// `day,metric,dimension,value` lines under a header.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("day,metric,dimension,value\n");
        for row in &self.rows {
            csv.push_str(&format!("{},{},{},{}\n", row.day, row.metric, row.dimension, row.value));
        }
        csv
    }
}

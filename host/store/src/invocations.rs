//! What strategies did: one row per invocation, written in the same
//! transaction as what the invocation changed (an import's batch, an
//! AGGREGATION outcome, a CONTACT_ANSWER), and deleted after the
//! retention period.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::invocation::{InvocationDetail, InvocationRecord, VersionInvocations};
use stratagem_domain::StrategyType;

use crate::contacts::placeholders;
use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

/// An invocation to keep: the record the API shows (its `replayable`
/// says whether `input` is kept), the tenant, and what replaying it needs.
#[derive(Debug, Clone)]
pub struct NewInvocation {
    pub tenant_id: String,
    pub record: InvocationRecord,
    /// The hook's arguments; kept for failed calls and a sample of others.
    pub input: Option<serde_json::Value>,
    /// The returned contact, kept with the input of a successful call.
    pub output: Option<serde_json::Value>,
    pub limits: Option<serde_json::Value>,
}

impl NewInvocation {
    /// A fresh id for an invocation, known before it is written (an
    /// import's report names it).
    pub fn new_id() -> String {
        new_id("inv")
    }
}

const COLUMNS: usize = 21;
/// Rows per INSERT: within SQLite's 32 766 and PostgreSQL's 65 535
/// parameters.
const ROWS_PER_INSERT: usize = 500;
const RECORD_COLUMNS: &str = "id, campaign_id, hook, component_hash, object_id, import_job_id, started_at, outcome, error, message, \
     logs, dropped_log_records, fuel, peak_memory_bytes, duration_us, http_calls, \
     CAST(CASE WHEN input IS NULL THEN 0 ELSE 1 END AS BIGINT) AS replayable";

#[derive(Clone, Copy)]
pub struct Invocations<'a> {
    store: &'a Store,
}

impl Store {
    pub fn invocations(&self) -> Invocations<'_> {
        Invocations { store: self }
    }
}

/// Writes `invocations` within a caller's transaction.
pub(crate) async fn record_invocations(store: &Store, tx: &mut sqlx::AnyConnection, invocations: &[NewInvocation]) -> Result<()> {
    let recorded_at = micros(Utc::now());
    for chunk in invocations.chunks(ROWS_PER_INSERT) {
        let sql = store.positional(format!(
            "INSERT INTO strategy_invocations (id, tenant_id, campaign_id, hook, component_hash, object_id, import_job_id, \
             started_at, outcome, error, message, logs, dropped_log_records, fuel, peak_memory_bytes, duration_us, http_calls, input, \
             output, limits, recorded_at) VALUES {}",
            placeholders(1, COLUMNS, chunk.len())
        ));
        let mut query = sqlx::query(&sql);
        for invocation in chunk {
            let json = |value: &Option<serde_json::Value>| value.as_ref().map(to_json).transpose();
            let record = &invocation.record;
            query = query
                .bind(record.id.clone())
                .bind(invocation.tenant_id.clone())
                .bind(record.campaign_id.clone())
                .bind(record.hook.as_str())
                .bind(record.component_hash.clone())
                .bind(record.object_id.clone())
                .bind(record.import_job_id.clone())
                .bind(micros(record.started_at))
                .bind(record.outcome.clone())
                .bind(json(&record.error)?)
                .bind(record.message.clone())
                .bind(to_json(&record.logs)?)
                .bind(to_i64(record.dropped_log_records))
                .bind(to_i64(record.fuel))
                .bind(to_i64(record.peak_memory_bytes))
                .bind(to_i64(record.duration_us))
                .bind(to_i64(record.http_calls))
                .bind(json(&invocation.input)?)
                .bind(json(&invocation.output)?)
                .bind(json(&invocation.limits)?)
                .bind(recorded_at);
        }
        query.execute(&mut *tx).await?;
    }
    // Billing's count, kept beyond the invocations' retention.
    crate::usage::Tally::of_invocations(invocations).write(tx).await
}

/// `sql` with `values` bound as its first parameters.
fn scoped<'q>(sql: &'q str, values: &[String]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    values.iter().fold(sqlx::query(sql), |query, value| query.bind(value.clone()))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn record(row: &AnyRow) -> Result<InvocationRecord> {
    let hook: String = get(row, "hook")?;
    let count = |column: &str| -> Result<u64> { Ok(get::<i64>(row, column)?.max(0) as u64) };
    Ok(InvocationRecord {
        id: get(row, "id")?,
        campaign_id: get(row, "campaign_id")?,
        hook: StrategyType::parse(&hook).ok_or_else(|| StoreError::Corrupt(format!("invocation hook {hook}")))?,
        component_hash: get(row, "component_hash")?,
        object_id: get(row, "object_id")?,
        import_job_id: get(row, "import_job_id")?,
        started_at: from_micros(get(row, "started_at")?)?,
        outcome: get(row, "outcome")?,
        error: get::<Option<String>>(row, "error")?.as_deref().map(from_json).transpose()?,
        message: get(row, "message")?,
        logs: from_json(&get::<String>(row, "logs")?)?,
        dropped_log_records: count("dropped_log_records")?,
        fuel: count("fuel")?,
        peak_memory_bytes: count("peak_memory_bytes")?,
        duration_us: count("duration_us")?,
        http_calls: count("http_calls")?,
        replayable: get::<i64>(row, "replayable")? != 0,
    })
}

impl Invocations<'_> {
    /// Writes invocations that changed nothing else (or whose change is
    /// written apart).
    pub async fn record(self, invocations: &[NewInvocation]) -> Result<()> {
        if invocations.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        record_invocations(self.store, &mut tx, invocations).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One invocation with its input and output, and the strategy version
    /// that ran it when it still exists.
    pub async fn invocation(self, tenant_id: &str, id: &str) -> Result<InvocationDetail> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS}, input, output, limits FROM strategy_invocations WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(StoreError::NotFound("invocation"))?;
        let record = record(&row)?;
        let json = |column: &str| -> Result<Option<serde_json::Value>> { get::<Option<String>>(&row, column)?.as_deref().map(from_json).transpose() };
        // The newest version of the campaign's strategy of this type that
        // has this component: the same sources, whichever upload it was.
        let version = sqlx::query(
            "SELECT v.strategy_id, v.version, v.origin, v.entry, v.sources FROM strategy_versions v JOIN strategies s ON s.id = v.strategy_id \
             WHERE s.tenant_id = $1 AND s.campaign_id = $2 AND s.kind = $3 AND v.component_hash = $4 \
             ORDER BY v.version DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(&record.campaign_id)
        .bind(record.hook.as_str())
        .bind(&record.component_hash)
        .fetch_optional(&self.store.pool)
        .await?;
        let mut detail = InvocationDetail {
            input: json("input")?,
            output: json("output")?,
            limits: json("limits")?,
            record,
            strategy_id: None,
            version: None,
            entry: None,
            sources: None,
        };
        if let Some(row) = version {
            detail.strategy_id = Some(get(&row, "strategy_id")?);
            detail.version = Some(get(&row, "version")?);
            if get::<String>(&row, "origin")? == "source" {
                detail.entry = Some(get(&row, "entry")?);
                detail.sources = Some(from_json(&get::<String>(&row, "sources")?)?);
            }
        }
        Ok(detail)
    }

    /// A contact's invocations, newest first.
    pub async fn of_contact(self, tenant_id: &str, campaign_id: &str, object_id: &str, limit: i64) -> Result<Vec<InvocationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM strategy_invocations WHERE tenant_id = $1 AND campaign_id = $2 AND object_id = $3 \
             ORDER BY started_at DESC, id DESC LIMIT $4"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(object_id)
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// How a strategy version's invocations went, and its `limit` newest.
    pub async fn of_version(self, tenant_id: &str, strategy_id: &str, version: i64, limit: i64) -> Result<VersionInvocations> {
        let row = sqlx::query(
            "SELECT s.campaign_id, s.kind, v.component_hash FROM strategy_versions v JOIN strategies s ON s.id = v.strategy_id \
             WHERE s.tenant_id = $1 AND v.strategy_id = $2 AND v.version = $3",
        )
        .bind(tenant_id)
        .bind(strategy_id)
        .bind(version)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(StoreError::NotFound("strategy version"))?;
        let mut stats = VersionInvocations {
            strategy_id: strategy_id.to_owned(),
            version,
            invocations: 0,
            errors: 0,
            error_rate: 0.0,
            median_fuel: None,
            median_duration_us: None,
            recent: Vec::new(),
        };
        // A version that never built ran nothing.
        let Some(hash) = get::<Option<String>>(&row, "component_hash")? else { return Ok(stats) };
        let (campaign_id, hook): (String, String) = (get(&row, "campaign_id")?, get(&row, "kind")?);
        let scope = "tenant_id = $1 AND campaign_id = $2 AND hook = $3 AND component_hash = $4";
        let values = [tenant_id.to_owned(), campaign_id, hook, hash];
        let sql = format!(
            "SELECT COUNT(*) AS invocations, COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END), 0) AS errors \
             FROM strategy_invocations WHERE {scope}"
        );
        let counts = scoped(&sql, &values).fetch_one(&self.store.pool).await?;
        stats.invocations = get::<i64>(&counts, "invocations")?.max(0) as u64;
        stats.errors = get::<i64>(&counts, "errors")?.max(0) as u64;
        if stats.invocations == 0 {
            return Ok(stats);
        }
        stats.error_rate = stats.errors as f64 / stats.invocations as f64;
        let middle = (stats.invocations / 2) as i64;
        for (column, median) in [("fuel", &mut stats.median_fuel), ("duration_us", &mut stats.median_duration_us)] {
            let sql = format!("SELECT {column} AS value FROM strategy_invocations WHERE {scope} ORDER BY {column} LIMIT 1 OFFSET $5");
            let row = scoped(&sql, &values)
                .bind(middle)
                .fetch_optional(&self.store.pool)
                .await?;
            *median = row.map(|row| get::<i64>(&row, "value")).transpose()?.map(|value| value.max(0) as u64);
        }
        let sql = format!("SELECT {RECORD_COLUMNS} FROM strategy_invocations WHERE {scope} ORDER BY started_at DESC, id DESC LIMIT $5");
        let recent = scoped(&sql, &values)
            .bind(limit)
            .fetch_all(&self.store.pool)
            .await?;
        stats.recent = recent.iter().map(record).collect::<Result<_>>()?;
        Ok(stats)
    }

    /// Deletes invocations recorded before `before`, a bounded number per
    /// statement so no transaction holds the table long; how many.
    pub async fn prune(self, before: DateTime<Utc>) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM strategy_invocations WHERE id IN \
                 (SELECT id FROM strategy_invocations WHERE recorded_at < $1 LIMIT 5000)",
            )
            .bind(micros(before))
            .execute(&self.store.pool)
            .await?;
            deleted += done.rows_affected();
            if done.rows_affected() < 5000 {
                return Ok(deleted);
            }
        }
    }
}

//! What each tenant consumed, per UTC day: invocations and fuel by hook
//! and LLM tokens by use, counted into `usage_daily` as they happen;
//! imports and messages counted from their own tables; storage as it is
//! now.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use stratagem_domain::usage::{StorageUsage, UsageReport, UsageRow};

use crate::contacts::placeholders;
use crate::invocations::NewInvocation;
use crate::{get, Result, Store, StoreError};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 (UTC) of `time`.
fn day_number(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros().div_euclid(MICROS_PER_DAY)
}

/// Today's day number: the day `usage_daily` counts into now.
pub(crate) fn today() -> i64 {
    day_number(Utc::now())
}

fn date_of(day: i64) -> Result<NaiveDate> {
    DateTime::from_timestamp(day * 86_400, 0).map(|time| time.date_naive()).ok_or_else(|| StoreError::Corrupt(format!("usage day {day}")))
}

fn number_of(date: NaiveDate) -> i64 {
    day_number(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// Counts to add: (tenant, metric, dimension) → value, all of today.
#[derive(Debug, Default)]
pub(crate) struct Tally(BTreeMap<(String, &'static str, String), i64>);

impl Tally {
    pub(crate) fn add(&mut self, tenant: &str, metric: &'static str, dimension: &str, value: u64) {
        *self.0.entry((tenant.to_owned(), metric, dimension.to_owned())).or_default() += i64::try_from(value).unwrap_or(i64::MAX);
    }

    /// Invocations and their fuel, by hook.
    pub(crate) fn of_invocations(invocations: &[NewInvocation]) -> Self {
        let mut tally = Tally::default();
        for NewInvocation { tenant_id, record, .. } in invocations {
            let hook = record.hook.as_str();
            tally.add(tenant_id, "invocations", hook, 1);
            tally.add(tenant_id, "fuel", hook, record.fuel);
            if record.http_calls > 0 {
                tally.add(tenant_id, "http_calls", hook, record.http_calls);
            }
        }
        tally
    }

    /// Adds the counts to today's rows, in one statement, within the
    /// caller's transaction; the rows are written in key order, so two
    /// transactions never wait on each other's rows crosswise.
    pub(crate) async fn write(self, connection: &mut sqlx::AnyConnection) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let today = today();
        let sql = format!(
            "INSERT INTO usage_daily (tenant_id, day, metric, dimension, value) VALUES {} \
             ON CONFLICT (tenant_id, day, metric, dimension) DO UPDATE SET value = usage_daily.value + excluded.value",
            placeholders(1, 5, self.0.len())
        );
        let mut query = sqlx::query(&sql);
        for ((tenant, metric, dimension), value) in self.0 {
            query = query.bind(tenant).bind(today).bind(metric).bind(dimension).bind(value);
        }
        query.execute(&mut *connection).await?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
pub struct Usage<'a> {
    store: &'a Store,
}

impl Store {
    pub fn usage(&self) -> Usage<'_> {
        Usage { store: self }
    }
}

impl Usage<'_> {
    /// Counts LLM tokens a tenant's conversation, extraction or analysis
    /// used (the provider's `usage.total_tokens`).
    pub async fn add_llm_tokens(self, tenant_id: &str, used_for: &str, tokens: u64) -> Result<()> {
        let mut tally = Tally::default();
        tally.add(tenant_id, "llm_tokens", used_for, tokens);
        let mut connection = self.store.pool.acquire().await?;
        tally.write(&mut connection).await
    }

    /// The tenant's use from `from` to `to` (UTC days, both included), and
    /// its storage now.
    pub async fn report(self, tenant_id: &str, from: NaiveDate, to: NaiveDate) -> Result<UsageReport> {
        let (first, last) = (number_of(from), number_of(to));
        let mut snapshot = self.store.begin_snapshot().await?;
        let mut rows = Vec::new();
        let counted = sqlx::query(
            "SELECT day, metric, dimension, value FROM usage_daily WHERE tenant_id = $1 AND day >= $2 AND day <= $3",
        )
        .bind(tenant_id)
        .bind(first)
        .bind(last)
        .fetch_all(&mut *snapshot)
        .await?;
        for row in &counted {
            rows.push((get::<i64>(row, "day")?, get::<String>(row, "metric")?, get::<String>(row, "dimension")?, get::<i64>(row, "value")?));
        }
        let (start, end) = (first * MICROS_PER_DAY, (last + 1) * MICROS_PER_DAY);
        let imports = sqlx::query(
            "SELECT CAST(created_at / 86400000000 AS BIGINT) AS day, COUNT(*) AS imports, CAST(SUM(processed_rows) AS BIGINT) AS import_rows \
             FROM import_jobs WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY CAST(created_at / 86400000000 AS BIGINT)",
        )
        .bind(tenant_id)
        .bind(start)
        .bind(end)
        .fetch_all(&mut *snapshot)
        .await?;
        for row in &imports {
            let day = get::<i64>(row, "day")?;
            rows.push((day, "imports".into(), String::new(), get::<i64>(row, "imports")?));
            rows.push((day, "import_rows".into(), String::new(), get::<Option<i64>>(row, "import_rows")?.unwrap_or(0)));
        }
        // A send counts once its outcome is recorded (an announced send
        // whose outcome is lost is IN_DOUBT, and recorded as such).
        let messages = sqlx::query(
            "SELECT CAST(created_at / 86400000000 AS BIGINT) AS day, channel, COUNT(*) AS messages FROM channel_sends \
             WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 AND outcome IS NOT NULL \
             GROUP BY CAST(created_at / 86400000000 AS BIGINT), channel",
        )
        .bind(tenant_id)
        .bind(start)
        .bind(end)
        .fetch_all(&mut *snapshot)
        .await?;
        for row in &messages {
            rows.push((get::<i64>(row, "day")?, "messages".into(), get::<String>(row, "channel")?, get::<i64>(row, "messages")?));
        }
        let storage = storage(&mut snapshot, tenant_id).await?;
        snapshot.commit().await?;
        rows.sort();
        let rows = rows
            .into_iter()
            .filter(|(_, _, _, value)| *value > 0)
            .map(|(day, metric, dimension, value)| Ok(UsageRow { day: date_of(day)?, metric, dimension, value: value.max(0) as u64 }))
            .collect::<Result<_>>()?;
        Ok(UsageReport { from, to, rows, storage })
    }
}

async fn storage(connection: &mut sqlx::AnyConnection, tenant_id: &str) -> Result<StorageUsage> {
    let count = |sql: &'static str| sqlx::query(sql).bind(tenant_id.to_owned());
    let mut storage = StorageUsage::default();
    for (sql, field) in [
        ("SELECT COUNT(*) AS n FROM campaigns WHERE tenant_id = $1", &mut storage.campaigns),
        ("SELECT COUNT(*) AS n FROM contacts WHERE tenant_id = $1", &mut storage.contacts),
        ("SELECT COUNT(*) AS n FROM communications WHERE tenant_id = $1", &mut storage.communications),
        ("SELECT COUNT(*) AS n FROM strategy_versions WHERE tenant_id = $1", &mut storage.strategy_versions),
        (
            "SELECT CAST(COALESCE(SUM(LENGTH(component)), 0) AS BIGINT) AS n FROM strategy_versions WHERE tenant_id = $1",
            &mut storage.component_bytes,
        ),
    ] {
        let row = count(sql).fetch_one(&mut *connection).await?;
        *field = get::<i64>(&row, "n")?.max(0) as u64;
    }
    storage.bytes = stored_bytes(connection, tenant_id).await?;
    Ok(storage)
}

/// The bytes (characters of text) of the tenant's data: contacts,
/// communications, strategy versions and kept invocations, without the
/// database's indexes and overhead. The storage quota counts the same.
pub(crate) async fn stored_bytes(connection: &mut sqlx::AnyConnection, tenant_id: &str) -> Result<u64> {
    let row = sqlx::query(
        "SELECT CAST( \
           (SELECT COALESCE(SUM(LENGTH(object_id) + LENGTH(external_id) + LENGTH(name) + LENGTH(email) + LENGTH(phone) \
              + LENGTH(parameters) + LENGTH(internal_data) + LENGTH(results) + COALESCE(LENGTH(last_error), 0)), 0) \
            FROM contacts WHERE tenant_id = $1) \
         + (SELECT COALESCE(SUM(LENGTH(name) + LENGTH(stage_name) + LENGTH(parameters) + COALESCE(LENGTH(session_results), 0) \
              + COALESCE(LENGTH(status_detail), 0)), 0) FROM communications WHERE tenant_id = $1) \
         + (SELECT COALESCE(SUM(LENGTH(sources) + COALESCE(LENGTH(component), 0)), 0) FROM strategy_versions WHERE tenant_id = $1) \
         + (SELECT COALESCE(SUM(LENGTH(logs) + COALESCE(LENGTH(input), 0) + COALESCE(LENGTH(output), 0) + COALESCE(LENGTH(error), 0)), 0) \
            FROM strategy_invocations WHERE tenant_id = $1) \
         AS BIGINT) AS bytes",
    )
    .bind(tenant_id)
    .fetch_one(&mut *connection)
    .await?;
    Ok(get::<i64>(&row, "bytes")?.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_days_and_dates_convert_both_ways() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 5).expect("date");
        assert_eq!(date_of(number_of(date)).expect("date"), date);
        let late = "2026-12-05T23:59:59.999999Z".parse::<DateTime<Utc>>().expect("time");
        assert_eq!(day_number(late), number_of(date));
    }
}

//! What a tenant may hold and use per day: its own limits
//! (`tenant_quotas`; none set is the node's default, 0 unlimited), checked
//! inside the transaction that would go over, with the tenant's row locked
//! so two requests cannot both take the last of a quota. The daily ones
//! are read from `usage_daily`, which the invocations' transactions count
//! into (`usage.rs`).

use std::collections::HashSet;

use stratagem_domain::quota::{QuotaExceeded, Quotas};

use crate::{get, Result, Store, StoreError};

/// A tenant's own quota settings: `None` is the node's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaSettings {
    pub contacts: Option<i64>,
    pub campaigns: Option<i64>,
    pub fuel_per_day: Option<i64>,
    pub http_calls_per_day: Option<i64>,
    pub storage_mib: Option<i64>,
}

impl QuotaSettings {
    /// The limits in force with the node's `defaults`.
    pub fn effective(&self, defaults: Quotas) -> Quotas {
        Quotas {
            contacts: Quotas::effective(self.contacts, defaults.contacts),
            campaigns: Quotas::effective(self.campaigns, defaults.campaigns),
            fuel_per_day: Quotas::effective(self.fuel_per_day, defaults.fuel_per_day),
            http_calls_per_day: Quotas::effective(self.http_calls_per_day, defaults.http_calls_per_day),
            storage_mib: Quotas::effective(self.storage_mib, defaults.storage_mib),
        }
    }
}

/// Which quota a check is for, and what it asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asked {
    /// `new` contacts, beyond those of imports in progress.
    Contacts { new: u64 },
    Campaign,
    /// `bytes` more of the tenant's data.
    Storage { bytes: u64 },
    /// Work that runs strategies: admitted while today's fuel and HTTP
    /// calls are below their quotas.
    StrategyWork,
}

const QUOTA_COLUMNS: &str = "contacts, campaigns, fuel_per_day, http_calls_per_day, storage_mib";

fn settings_of(row: &sqlx::any::AnyRow) -> Result<QuotaSettings> {
    Ok(QuotaSettings {
        contacts: get(row, "contacts")?,
        campaigns: get(row, "campaigns")?,
        fuel_per_day: get(row, "fuel_per_day")?,
        http_calls_per_day: get(row, "http_calls_per_day")?,
        storage_mib: get(row, "storage_mib")?,
    })
}

pub(crate) async fn settings(connection: &mut sqlx::AnyConnection, tenant_id: &str) -> Result<QuotaSettings> {
    let row = sqlx::query(&format!("SELECT {QUOTA_COLUMNS} FROM tenant_quotas WHERE tenant_id = $1"))
        .bind(tenant_id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(settings_of).transpose().map(Option::unwrap_or_default)
}

/// A day's strategy fuel and outbound HTTP calls, summed from its
/// `usage_daily` rows: what the daily quotas count.
const DAILY_USE: &str = "CAST(COALESCE(SUM(CASE WHEN metric = 'fuel' THEN value ELSE 0 END), 0) AS BIGINT) AS fuel, \
     CAST(COALESCE(SUM(CASE WHEN metric = 'http_calls' THEN value ELSE 0 END), 0) AS BIGINT) AS http_calls";

/// Today's (UTC) strategy fuel and outbound HTTP calls of `tenant_id`.
async fn used_today(connection: &mut sqlx::AnyConnection, tenant_id: &str) -> Result<(u64, u64)> {
    let row = sqlx::query(
        &format!("SELECT {DAILY_USE} FROM usage_daily WHERE tenant_id = $1 AND day = $2"),
    )
    .bind(tenant_id)
    .bind(crate::usage::today())
    .fetch_one(&mut *connection)
    .await?;
    Ok((get::<i64>(&row, "fuel")?.max(0) as u64, get::<i64>(&row, "http_calls")?.max(0) as u64))
}

/// Refuses strategy work when today's use has reached a daily quota.
fn admit_strategy_work(quotas: Quotas, (fuel, http_calls): (u64, u64)) -> Result<()> {
    for (quota, limit, used) in [("fuel_per_day", quotas.fuel_per_day, fuel), ("http_calls_per_day", quotas.http_calls_per_day, http_calls)] {
        if let Some(limit) = limit.filter(|limit| used >= *limit) {
            return Err(StoreError::QuotaExceeded(QuotaExceeded { quota: quota.into(), used, requested: 0, limit }));
        }
    }
    Ok(())
}

/// Refuses `asked` when it would take the tenant past its quota. Call it
/// in the transaction that writes, after locking the tenant's row.
pub(crate) async fn check(connection: &mut sqlx::AnyConnection, tenant_id: &str, defaults: Quotas, asked: Asked) -> Result<()> {
    let quotas = settings(connection, tenant_id).await?.effective(defaults);
    let (quota, limit, requested) = match asked {
        Asked::StrategyWork => {
            if quotas.fuel_per_day.is_none() && quotas.http_calls_per_day.is_none() {
                return Ok(());
            }
            let used = used_today(connection, tenant_id).await?;
            return admit_strategy_work(quotas, used);
        }
        Asked::Contacts { new } => ("contacts", quotas.contacts, new),
        Asked::Campaign => ("campaigns", quotas.campaigns, 1),
        Asked::Storage { bytes } => ("storage_bytes", quotas.storage_mib.map(|mib| mib.saturating_mul(1 << 20)), bytes),
    };
    let Some(limit) = limit else { return Ok(()) };
    let used = match asked {
        Asked::Storage { .. } => crate::usage::stored_bytes(connection, tenant_id).await?,
        _ => {
            let used_sql = match asked {
                // An import in progress may still add every row it has not read.
                Asked::Contacts { .. } => {
                    "SELECT (SELECT COUNT(*) FROM contacts WHERE tenant_id = $1) \
                     + (SELECT COALESCE(SUM(total_rows - processed_rows), 0) FROM import_jobs WHERE tenant_id = $1 AND status IN ('queued', 'running')) AS used"
                }
                _ => "SELECT COUNT(*) AS used FROM campaigns WHERE tenant_id = $1",
            };
            let row = sqlx::query(&format!("SELECT CAST(used AS BIGINT) AS used FROM ({used_sql}) AS counted"))
                .bind(tenant_id)
                .fetch_one(&mut *connection)
                .await?;
            get::<i64>(&row, "used")?.max(0) as u64
        }
    };
    if used + requested > limit {
        return Err(StoreError::QuotaExceeded(QuotaExceeded { quota: quota.into(), used, requested, limit }));
    }
    Ok(())
}

impl crate::Tenants<'_> {
    pub async fn quota_settings(self, tenant_id: &str) -> Result<QuotaSettings> {
        let mut connection = self.store.pool.acquire().await?;
        settings(&mut connection, tenant_id).await
    }

    /// Sets a tenant's own quotas (`None`: the node's default).
    pub async fn set_quota_settings(self, tenant_id: &str, quotas: QuotaSettings) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO tenant_quotas (tenant_id, {QUOTA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id) DO UPDATE SET contacts = excluded.contacts, campaigns = excluded.campaigns, \
             fuel_per_day = excluded.fuel_per_day, http_calls_per_day = excluded.http_calls_per_day, storage_mib = excluded.storage_mib"
        ))
        .bind(tenant_id)
        .bind(quotas.contacts)
        .bind(quotas.campaigns)
        .bind(quotas.fuel_per_day)
        .bind(quotas.http_calls_per_day)
        .bind(quotas.storage_mib)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Admits `bytes` more of the tenant's data (a strategy version's
    /// sources or component), or says it would pass the storage quota.
    /// Checked before the version is written, not in its transaction: two
    /// uploads at once may both fit; the next is refused.
    pub async fn admit_storage(self, tenant_id: &str, bytes: u64, defaults: Quotas) -> Result<()> {
        let mut connection = self.store.pool.acquire().await?;
        check(&mut connection, tenant_id, defaults, Asked::Storage { bytes }).await
    }

    /// Admits strategy work of the tenant (an import, …), or says which
    /// daily quota today's use has reached.
    pub async fn admit_strategy_work(self, tenant_id: &str, defaults: Quotas) -> Result<()> {
        let mut connection = self.store.pool.acquire().await?;
        check(&mut connection, tenant_id, defaults, Asked::StrategyWork).await
    }

    /// The tenants whose use today has reached a daily quota (with the
    /// node's `defaults`): their AGGREGATION waits. Reads today's usage
    /// rows (a few per active tenant) and the quotas set.
    pub async fn past_daily_quotas(self, defaults: Quotas) -> Result<HashSet<String>> {
        let used = sqlx::query(&format!(
            "SELECT tenant_id, {DAILY_USE} FROM usage_daily WHERE day = $1 AND metric IN ('fuel', 'http_calls') GROUP BY tenant_id"
        ))
        .bind(crate::usage::today())
        .fetch_all(&self.store.pool)
        .await?;
        let own: std::collections::HashMap<String, QuotaSettings> = sqlx::query(&format!("SELECT tenant_id, {QUOTA_COLUMNS} FROM tenant_quotas"))
            .fetch_all(&self.store.pool)
            .await?
            .iter()
            .map(|row| Ok((get::<String>(row, "tenant_id")?, settings_of(row)?)))
            .collect::<Result<_>>()?;
        let mut past = HashSet::new();
        for row in &used {
            let tenant: String = get(row, "tenant_id")?;
            let quotas = own.get(&tenant).copied().unwrap_or_default().effective(defaults);
            let today = (get::<i64>(row, "fuel")?.max(0) as u64, get::<i64>(row, "http_calls")?.max(0) as u64);
            if admit_strategy_work(quotas, today).is_err() {
                past.insert(tenant);
            }
        }
        Ok(past)
    }
}

impl Store {
    /// How many of `object_ids` the tenant's campaign does not have yet.
    pub async fn count_new_contacts(&self, tenant_id: &str, campaign_id: &str, object_ids: &[String]) -> Result<u64> {
        let mut new = 0;
        for chunk in object_ids.chunks(crate::contacts::ID_CHUNK) {
            let sql = self.positional(format!(
                "SELECT COUNT(*) AS found FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND object_id IN ({})",
                crate::contacts::placeholders(3, 1, chunk.len())
            ));
            let mut query = sqlx::query(&sql).bind(tenant_id).bind(campaign_id);
            for id in chunk {
                query = query.bind(id.clone());
            }
            let found = get::<i64>(&query.fetch_one(&self.pool).await?, "found")?.max(0) as u64;
            new += chunk.len() as u64 - found.min(chunk.len() as u64);
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(quotas: Quotas, used: (u64, u64)) -> Option<QuotaExceeded> {
        match admit_strategy_work(quotas, used) {
            Ok(()) => None,
            Err(StoreError::QuotaExceeded(exceeded)) => Some(exceeded),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn works_when_strategy_work_is_admitted_below_the_daily_quotas() {
        let quotas = Quotas { fuel_per_day: Some(1_000), http_calls_per_day: Some(10), ..Quotas::default() };
        assert_eq!(refused(quotas, (999, 9)), None);
        assert_eq!(refused(Quotas::default(), (u64::MAX, u64::MAX)), None, "no quota: unlimited");
    }

    #[test]
    fn errors_when_todays_use_reached_a_daily_quota() {
        let quotas = Quotas { fuel_per_day: Some(1_000), http_calls_per_day: Some(10), ..Quotas::default() };
        let http = refused(quotas, (0, 10)).expect("refused");
        assert_eq!(http, QuotaExceeded { quota: "http_calls_per_day".into(), used: 10, requested: 0, limit: 10 });
        assert!(http.to_string().starts_with("the tenant's quota of outbound HTTP calls per UTC day is 10, and 10 were used today"), "{http}");
        assert_eq!(refused(quotas, (1_000, 0)).map(|e| e.quota), Some("fuel_per_day".into()));
    }
}

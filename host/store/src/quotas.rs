//! What a tenant may hold: its own limits (`tenant_quotas`; none set is
//! the node's default, 0 unlimited), checked inside the transaction that
//! would go over, with the tenant's row locked so two requests cannot both
//! take the last of a quota.

use stratagem_domain::quota::{QuotaExceeded, Quotas};

use crate::{get, Result, Store, StoreError};

/// A tenant's own quota settings: `None` is the node's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaSettings {
    pub contacts: Option<i64>,
    pub campaigns: Option<i64>,
}

/// Which quota a check is for, and what it asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asked {
    /// `new` contacts, beyond those of imports in progress.
    Contacts { new: u64 },
    Campaign,
}

pub(crate) async fn settings(connection: &mut sqlx::AnyConnection, tenant_id: &str) -> Result<QuotaSettings> {
    let row = sqlx::query("SELECT contacts, campaigns FROM tenant_quotas WHERE tenant_id = $1").bind(tenant_id).fetch_optional(&mut *connection).await?;
    Ok(match row {
        Some(row) => QuotaSettings { contacts: get(&row, "contacts")?, campaigns: get(&row, "campaigns")? },
        None => QuotaSettings::default(),
    })
}

/// Refuses `asked` when it would take the tenant past its quota. Call it
/// in the transaction that writes, after locking the tenant's row.
pub(crate) async fn check(connection: &mut sqlx::AnyConnection, tenant_id: &str, defaults: Quotas, asked: Asked) -> Result<()> {
    let own = settings(connection, tenant_id).await?;
    let (quota, limit, requested, used_sql) = match asked {
        Asked::Contacts { new } => (
            "contacts",
            Quotas::effective(own.contacts, defaults.contacts),
            new,
            // An import in progress may still add every row it has not read.
            "SELECT (SELECT COUNT(*) FROM contacts WHERE tenant_id = $1) \
             + (SELECT COALESCE(SUM(total_rows - processed_rows), 0) FROM import_jobs WHERE tenant_id = $1 AND status = 'running') AS used",
        ),
        Asked::Campaign => (
            "campaigns",
            Quotas::effective(own.campaigns, defaults.campaigns),
            1,
            "SELECT COUNT(*) AS used FROM campaigns WHERE tenant_id = $1",
        ),
    };
    let Some(limit) = limit else { return Ok(()) };
    let row = sqlx::query(&format!("SELECT CAST(used AS BIGINT) AS used FROM ({used_sql}) AS counted"))
        .bind(tenant_id)
        .fetch_one(&mut *connection)
        .await?;
    let used = get::<i64>(&row, "used")?.max(0) as u64;
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
        sqlx::query(
            "INSERT INTO tenant_quotas (tenant_id, contacts, campaigns) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET contacts = excluded.contacts, campaigns = excluded.campaigns",
        )
        .bind(tenant_id)
        .bind(quotas.contacts)
        .bind(quotas.campaigns)
        .execute(&self.store.pool)
        .await?;
        Ok(())
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

//! Campaigns: settings, result fields and the status machine.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::{Campaign, CampaignStatus, ResultField};

use stratagem_domain::quota::Quotas;

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

pub struct NewCampaign {
    pub name: String,
    pub description: String,
    pub llm_integration_id: Option<String>,
    pub llm_model: Option<String>,
    pub result_fields: Vec<ResultField>,
    /// Checked hosts (`stratagem_domain::allowlist::parse`).
    pub http_allowlist: Vec<String>,
}

const COLUMNS: &str =
    "id, name, description, status, error_reason, llm_integration_id, llm_model, result_fields, http_allowlist, created_at, updated_at, started_at";

fn campaign(row: &AnyRow) -> Result<Campaign> {
    let status: String = get(row, "status")?;
    let fields: String = get(row, "result_fields")?;
    Ok(Campaign {
        id: get(row, "id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        status: CampaignStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        error_reason: get(row, "error_reason")?,
        llm_integration_id: get(row, "llm_integration_id")?,
        llm_model: get(row, "llm_model")?,
        result_fields: from_json(&fields)?,
        http_allowlist: from_json(&get::<String>(row, "http_allowlist")?)?,
        waiting_for: None,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
        started_at: get::<Option<i64>>(row, "started_at")?.map(from_micros).transpose()?,
    })
}

/// Campaigns, their status and their analytics YAML. Reached through [`Store::campaigns`].
#[derive(Clone, Copy)]
pub struct Campaigns<'a> {
    store: &'a Store,
}

impl Store {
    pub fn campaigns(&self) -> Campaigns<'_> {
        Campaigns { store: self }
    }
}

impl Campaigns<'_> {
    /// Creates a campaign within the tenant's campaigns quota (`quotas`:
    /// the node's defaults).
    pub async fn create_campaign(self, tenant_id: &str, new: NewCampaign, quotas: Quotas) -> Result<Campaign> {
        let id = new_id("cmp");
        let now = micros(Utc::now());
        let mut tx = self.store.begin_write().await?;
        self.store.tenants().lock_tenant(&mut tx, tenant_id).await?;
        crate::quotas::check(&mut tx, tenant_id, quotas, crate::quotas::Asked::Campaign).await?;
        sqlx::query(
            "INSERT INTO campaigns (id, tenant_id, name, description, status, llm_model, result_fields, created_at, updated_at, llm_integration_id, http_allowlist) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(&new.name)
        .bind(&new.description)
        .bind(CampaignStatus::Created.as_str())
        .bind(&new.llm_model)
        .bind(to_json(&new.result_fields)?)
        .bind(now)
        .bind(&new.llm_integration_id)
        .bind(to_json(&new.http_allowlist)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.campaign(tenant_id, &id).await
    }

    pub async fn campaign(self, tenant_id: &str, id: &str) -> Result<Campaign> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("campaign"))?;
        campaign(&row)
    }

    pub async fn list_campaigns(self, tenant_id: &str, status: Option<CampaignStatus>) -> Result<Vec<Campaign>> {
        let rows = match status {
            Some(status) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND status = $2 ORDER BY created_at DESC"
                ))
                .bind(tenant_id)
                .bind(status.as_str())
                .fetch_all(&self.store.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 ORDER BY created_at DESC"))
                    .bind(tenant_id)
                    .fetch_all(&self.store.pool)
                    .await?
            }
        };
        rows.iter().map(campaign).collect()
    }

    pub async fn update_campaign(self, tenant_id: &str, id: &str, changes: NewCampaign) -> Result<Campaign> {
        let done = sqlx::query(
            "UPDATE campaigns SET name = $1, description = $2, llm_model = $3, result_fields = $4, updated_at = $5, llm_integration_id = $8, \
             http_allowlist = $9 WHERE id = $6 AND tenant_id = $7",
        )
        .bind(&changes.name)
        .bind(&changes.description)
        .bind(&changes.llm_model)
        .bind(to_json(&changes.result_fields)?)
        .bind(micros(Utc::now()))
        .bind(id)
        .bind(tenant_id)
        .bind(&changes.llm_integration_id)
        .bind(to_json(&changes.http_allowlist)?)
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("campaign"));
        }
        self.campaign(tenant_id, id).await
    }

    /// Moves the campaign to `next` if the status machine allows it from the
    /// status it has *now* (compare-and-set, so two nodes cannot both win).
    /// Its first move to RUNNING is its start (`started_at`).
    pub async fn set_campaign_status(
        self,
        tenant_id: &str,
        id: &str,
        next: CampaignStatus,
        reason: Option<&str>,
    ) -> Result<Campaign> {
        let current = self.campaign(tenant_id, id).await?;
        if !current.status.can_become(next) {
            let allowed: Vec<&str> = current.status.next().iter().map(|s| s.as_str()).collect();
            return Err(StoreError::Conflict(format!(
                "a {} campaign cannot become {}; allowed: {}",
                current.status.as_str(),
                next.as_str(),
                if allowed.is_empty() { "none (FINISHED is final)".into() } else { allowed.join(", ") }
            )));
        }
        let done = sqlx::query(
            "UPDATE campaigns SET status = $1, error_reason = $2, updated_at = $3, \
             started_at = CASE WHEN $1 = 'RUNNING' AND started_at IS NULL THEN $3 ELSE started_at END \
             WHERE id = $4 AND tenant_id = $5 AND status = $6",
        )
        .bind(next.as_str())
        .bind(reason)
        .bind(micros(Utc::now()))
        .bind(id)
        .bind(tenant_id)
        .bind(current.status.as_str())
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("the campaign's status changed meanwhile; retry".into()));
        }
        if next == CampaignStatus::Running {
            self.store.refresh_statistics().await?;
        }
        self.campaign(tenant_id, id).await
    }
}

impl Campaigns<'_> {
    /// Stores the campaign's YAML analytics file (already validated) and
    /// its schedule: the first scheduled analysis is `every_minutes` from
    /// now (`None`: `schedule: off`).
    pub async fn set_analytics_yaml(self, tenant_id: &str, campaign_id: &str, yaml: &str, every_minutes: Option<u32>) -> Result<DateTime<Utc>> {
        let now = Utc::now();
        let done = sqlx::query(
            "UPDATE campaigns SET analytics_yaml = $1, analytics_updated_at = $2, analysis_every_minutes = $5, \
             analysis_next_at = $2 + $5 * 60000000 WHERE id = $3 AND tenant_id = $4",
        )
        .bind(yaml)
        .bind(micros(now))
        .bind(campaign_id)
        .bind(tenant_id)
        .bind(every_minutes.map(i64::from))
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("campaign"));
        }
        from_micros(micros(now))
    }

    /// The campaign's YAML analytics file and when it was uploaded, if any.
    pub async fn analytics_yaml(self, tenant_id: &str, campaign_id: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        let row = sqlx::query("SELECT analytics_yaml, analytics_updated_at FROM campaigns WHERE id = $1 AND tenant_id = $2")
            .bind(campaign_id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("campaign"))?;
        let yaml: Option<String> = get(&row, "analytics_yaml")?;
        let at: Option<i64> = get(&row, "analytics_updated_at")?;
        match (yaml, at) {
            (Some(yaml), Some(at)) => Ok(Some((yaml, from_micros(at)?))),
            _ => Ok(None),
        }
    }
}

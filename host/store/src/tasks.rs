//! The operators' queue: HUMAN communications whose session is open until
//! an operator records its outcome.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use stratagem_domain::JsonMap;

use crate::{from_micros, get, micros, to_json, Result, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct HumanTask {
    /// The communication's id.
    pub id: String,
    pub campaign_id: String,
    pub object_id: String,
    pub contact_name: String,
    pub email: String,
    pub phone: String,
    pub stage: String,
    pub name: String,
    pub start_date: DateTime<Utc>,
    pub end_date: Option<DateTime<Utc>>,
    /// The operator working on it, once claimed.
    pub claimed_by: Option<String>,
}

const OPEN_TASK: &str = "m.channel = 'HUMAN' AND m.status = 'IN_PROGRESS' AND m.session_ended_at IS NULL";

fn task(row: &AnyRow) -> Result<HumanTask> {
    Ok(HumanTask {
        id: get(row, "id")?,
        campaign_id: get(row, "campaign_id")?,
        object_id: get(row, "object_id")?,
        contact_name: get(row, "contact_name")?,
        email: get(row, "email")?,
        phone: get(row, "phone")?,
        stage: get(row, "stage_name")?,
        name: get(row, "name")?,
        start_date: from_micros(get(row, "start_date")?)?,
        end_date: get::<Option<i64>>(row, "end_date")?.map(from_micros).transpose()?,
        claimed_by: get(row, "claimed_by")?,
    })
}

/// Human tasks (the HUMAN channel). Reached through [`Store::tasks`].
#[derive(Clone, Copy)]
pub struct Tasks<'a> {
    store: &'a Store,
}

impl Store {
    pub fn tasks(&self) -> Tasks<'_> {
        Tasks { store: self }
    }
}

impl Tasks<'_> {
    /// Open tasks of the tenant, oldest first; of one campaign if given.
    pub async fn human_tasks(self, tenant_id: &str, campaign_id: Option<&str>) -> Result<Vec<HumanTask>> {
        let rows = sqlx::query(&format!(
            "SELECT m.id, m.campaign_id, c.object_id, c.name AS contact_name, c.email, c.phone, m.stage_name, m.name, \
             m.start_date, m.end_date, m.claimed_by FROM communications m JOIN contacts c ON c.id = m.contact_id \
             WHERE m.tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR m.campaign_id = $2) AND {OPEN_TASK} \
             ORDER BY m.start_date, m.id LIMIT 1000"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(task).collect()
    }

    async fn human_task(self, tenant_id: &str, id: &str) -> Result<HumanTask> {
        let row = sqlx::query(&format!(
            "SELECT m.id, m.campaign_id, c.object_id, c.name AS contact_name, c.email, c.phone, m.stage_name, m.name, \
             m.start_date, m.end_date, m.claimed_by FROM communications m JOIN contacts c ON c.id = m.contact_id \
             WHERE m.tenant_id = $1 AND m.id = $2 AND {OPEN_TASK}"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(StoreError::NotFound("open task"))?;
        task(&row)
    }

    /// Assigns an open task to an operator; another operator's claim stands.
    pub async fn claim_task(self, tenant_id: &str, id: &str, operator: &str) -> Result<HumanTask> {
        let done = sqlx::query(
            "UPDATE communications SET claimed_by = $1 WHERE tenant_id = $2 AND id = $3 \
             AND (claimed_by IS NULL OR claimed_by = $1) AND channel = 'HUMAN' AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(operator)
        .bind(tenant_id)
        .bind(id)
        .execute(&self.store.pool)
        .await?;
        let current = self.human_task(tenant_id, id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the task is claimed by `{}`",
                current.claimed_by.unwrap_or_default()
            )));
        }
        Ok(current)
    }

    /// Ends an open task's session with the operator's outcome; the engine
    /// then runs AGGREGATION on it like any ended session.
    pub async fn complete_task(self, tenant_id: &str, id: &str, session_results: &JsonMap, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE communications SET session_results = $1, session_ended_at = $2 WHERE tenant_id = $3 AND id = $4 \
             AND channel = 'HUMAN' AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(to_json(session_results)?)
        .bind(micros(now))
        .bind(tenant_id)
        .bind(id)
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("open task"));
        }
        Ok(())
    }
}

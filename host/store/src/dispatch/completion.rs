//! Where a campaign's work stands, and finishing campaigns whose work is
//! done.

use chrono::{DateTime, Utc};
use stratagem_domain::{Communication, JsonMap};

use crate::communication_row::{communication, prefixed, COMMUNICATION_COLUMNS};
use crate::{from_json, get, micros, Result};
use super::Dispatch;

impl Dispatch<'_> {
    /// The earliest start of a PLANNED communication of a campaign: where a
    /// simulation moves its clock when nothing is due.
    pub async fn next_planned_start(self, tenant_id: &str, campaign_id: &str) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT MIN(start_date) AS next FROM communications WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'PLANNED'",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.store.pool)
        .await?;
        get::<Option<i64>>(&row, "next")?.map(crate::from_micros).transpose()
    }

    /// Every communication of a campaign with its contact's object id and
    /// how its session ended, by start date: a simulation's timeline.
    pub async fn campaign_timeline(self, tenant_id: &str, campaign_id: &str) -> Result<Vec<(String, Communication, Option<JsonMap>)>> {
        let rows = sqlx::query(&format!(
            "SELECT t.object_id, m.session_results, {} FROM communications m JOIN contacts t ON t.id = m.contact_id \
             WHERE m.tenant_id = $1 AND m.campaign_id = $2 ORDER BY m.start_date, t.object_id, m.position",
            prefixed(COMMUNICATION_COLUMNS, "m.")
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let results = get::<Option<String>>(row, "session_results")?.map(|text| from_json(&text)).transpose()?;
                Ok((get(row, "object_id")?, communication(row)?, results))
            })
            .collect()
    }

    /// Of a campaign's processed contacts (a session outcome applied), how
    /// many there are and how many whose last strategy run failed.
    pub async fn strategy_failures(self, tenant_id: &str, campaign_id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS processed, COUNT(last_error) AS failing FROM contacts \
             WHERE tenant_id = $1 AND campaign_id = $2 AND last_session_at IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.store.pool)
        .await?;
        Ok((get(&row, "processed")?, get(&row, "failing")?))
    }

    /// Communications of a campaign not yet done: planned, in progress, or
    /// with a session whose outcome is not applied yet.
    pub async fn pending_communications(self, tenant_id: &str, campaign_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending FROM communications WHERE tenant_id = $1 AND campaign_id = $2 \
             AND (status IN ('PLANNED', 'IN_PROGRESS') OR (session_ended_at IS NOT NULL AND aggregated_at IS NULL))",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(&self.store.pool)
        .await?;
        get(&row, "pending")
    }

    /// RUNNING campaigns in which every contact has a final result and no
    /// communication is pending become FINISHED. Returns their ids.
    ///
    /// This runs every tick. The checks go in a `CASE`, cheapest and most
    /// often decisive first, each a lookup in an index of its own: as
    /// joins, PostgreSQL read every contact of the database for a campaign
    /// with work still pending.
    pub async fn finish_done_campaigns(self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "UPDATE campaigns SET status = 'FINISHED', updated_at = $1 WHERE status = 'RUNNING' AND CASE \
               WHEN EXISTS (SELECT 1 FROM communications m WHERE m.campaign_id = campaigns.id \
                 AND (m.status IN ('PLANNED', 'IN_PROGRESS') OR (m.session_ended_at IS NOT NULL AND m.aggregated_at IS NULL))) THEN 0 \
               WHEN EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = campaigns.tenant_id AND c.campaign_id = campaigns.id \
                 AND c.result_flag IS NULL) THEN 0 \
               WHEN EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = campaigns.tenant_id AND c.campaign_id = campaigns.id) THEN 1 \
               ELSE 0 END = 1 \
             RETURNING id",
        )
        .bind(micros(now))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(|row| get(row, "id")).collect()
    }
}

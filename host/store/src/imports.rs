//! Contact import jobs: progress and the report (accepted, updated,
//! rejected rows with line and reason, strategy failures with traceback).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    Running,
    Done,
    /// The node running it stopped before the end; imported batches stay.
    Interrupted,
}

impl ImportStatus {
    fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Done => "done",
            ImportStatus::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        [ImportStatus::Running, ImportStatus::Done, ImportStatus::Interrupted]
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("import status {text}")))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRow {
    pub line: u64,
    pub column: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyFailure {
    pub line: u64,
    pub object_id: String,
    /// The runtime's error, with the Python traceback when there is one.
    pub error: serde_json::Value,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub rejected: Vec<RejectedRow>,
    pub strategy_errors: Vec<StrategyFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    pub id: String,
    pub campaign_id: String,
    pub status: ImportStatus,
    pub file_name: Option<String>,
    pub total_rows: i64,
    pub processed_rows: i64,
    pub accepted: i64,
    pub updated: i64,
    pub rejected: i64,
    pub report: ImportReport,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn job(row: &AnyRow) -> Result<ImportJob> {
    let status: String = get(row, "status")?;
    Ok(ImportJob {
        id: get(row, "id")?,
        campaign_id: get(row, "campaign_id")?,
        status: ImportStatus::parse(&status)?,
        file_name: get(row, "file_name")?,
        total_rows: get(row, "total_rows")?,
        processed_rows: get(row, "processed_rows")?,
        accepted: get(row, "accepted")?,
        updated: get(row, "updated")?,
        rejected: get(row, "rejected")?,
        report: from_json(&get::<String>(row, "report")?)?,
        created_at: from_micros(get(row, "created_at")?)?,
        finished_at: get::<Option<i64>>(row, "finished_at")?.map(from_micros).transpose()?,
    })
}

impl Store {
    pub async fn create_import_job(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        file_name: Option<&str>,
        total_rows: i64,
    ) -> Result<ImportJob> {
        let id = new_id("imp");
        sqlx::query(
            "INSERT INTO import_jobs (id, tenant_id, campaign_id, status, file_name, total_rows, processed_rows, \
             accepted, updated, rejected, report, created_at) VALUES ($1, $2, $3, 'running', $4, $5, 0, 0, 0, 0, $6, $7)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(file_name)
        .bind(total_rows)
        .bind(to_json(&ImportReport::default())?)
        .bind(micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        self.import_job(tenant_id, &id).await
    }

    /// Records progress; `finished` closes the job.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_import_job(
        &self,
        id: &str,
        processed_rows: i64,
        accepted: i64,
        updated: i64,
        rejected: i64,
        report: &ImportReport,
        status: ImportStatus,
    ) -> Result<()> {
        if status != ImportStatus::Running && accepted + updated > 0 {
            // Before the job reads as finished, so that a campaign started
            // on seeing it is planned on its new rows.
            self.refresh_statistics().await?;
        }
        let finished = (status != ImportStatus::Running).then(|| micros(Utc::now()));
        sqlx::query(
            "UPDATE import_jobs SET processed_rows = $1, accepted = $2, updated = $3, rejected = $4, report = $5, \
             status = $6, finished_at = $7 WHERE id = $8",
        )
        .bind(processed_rows)
        .bind(accepted)
        .bind(updated)
        .bind(rejected)
        .bind(to_json(report)?)
        .bind(status.as_str())
        .bind(finished)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn import_job(&self, tenant_id: &str, id: &str) -> Result<ImportJob> {
        let row = sqlx::query(
            "SELECT id, campaign_id, status, file_name, total_rows, processed_rows, accepted, updated, rejected, report, \
             created_at, finished_at FROM import_jobs WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("import job"))?;
        job(&row)
    }

    /// Jobs left `running` by a node that stopped are marked interrupted
    /// once they have not progressed for `stale_after`.
    pub async fn mark_stale_imports_interrupted(&self, older_than: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("UPDATE import_jobs SET status = 'interrupted', finished_at = $1 WHERE status = 'running' AND created_at < $2")
            .bind(micros(Utc::now()))
            .bind(micros(older_than))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

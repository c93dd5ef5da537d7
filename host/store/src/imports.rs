//! Contact import jobs: progress and the report (accepted, updated,
//! rejected rows with line and reason, strategy failures with traceback).
//!
//! A job belongs to the node (one `serve` process) that received the file:
//! it carries the node's id and a heartbeat the node renews while it works.
//! Each batch of contacts is written in one transaction with the job's
//! counts after it, and only while the job is still that node's and
//! `running`: the counts are exactly the rows committed, and a node that
//! was taken for dead writes nothing more. A job whose node stopped is
//! marked `interrupted` (see `migrations/*/0015_import_heartbeats.sql`).

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
pub use stratagem_types::import::{ImportCounts, ImportJob, ImportReport, ImportStatus, InterruptedReason, RejectedRow, StrategyFailure};
use stratagem_domain::quota::Quotas;
use stratagem_domain::Contact;

use crate::quotas::Asked;
use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError, UpsertOutcome};

fn import_status(text: &str) -> Result<ImportStatus> {
    ImportStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("import status {text}")))
}

fn interrupted_reason(text: &str) -> Result<InterruptedReason> {
    InterruptedReason::parse(text).ok_or_else(|| StoreError::Corrupt(format!("import interruption reason {text}")))
}

/// An import job to create, for a checked file.
#[derive(Debug, Clone, Copy)]
pub struct NewImportJob<'a> {
    pub tenant_id: &'a str,
    pub campaign_id: &'a str,
    pub file_name: Option<&'a str>,
    pub total_rows: i64,
    /// Its rows whose contacts the campaign does not have yet.
    pub new_contacts: u64,
    pub file_bytes: u64,
    /// The campaign has a DATA_LOAD strategy: the daily quotas apply.
    pub runs_strategy: bool,
}

/// A job a node holds that has not ended, as its queue sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImport {
    pub id: String,
    pub tenant_id: String,
    /// `Queued` or `Running`.
    pub status: ImportStatus,
    pub created_at: DateTime<Utc>,
}

/// How a node closes its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportEnd {
    Done,
    Interrupted(InterruptedReason),
    /// The DATA_LOAD strategy it waited for failed to build: why, in one line.
    StrategyFailed(String),
}

/// A batch of an import, written with the job's counts after it.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub job_id: String,
    /// The node that holds the job; the batch is written only while it does.
    pub node_id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    /// The accepted rows, as DATA_LOAD left them.
    pub contacts: Vec<(Contact, Option<serde_json::Value>)>,
    /// The file's rows in this batch, `contacts` and `rejected` together.
    pub rows: i64,
    pub rejected: i64,
    /// The job's whole report once this batch is written.
    pub report: ImportReport,
    /// The batch's DATA_LOAD invocations.
    pub invocations: Vec<crate::NewInvocation>,
}

const JOB_COLUMNS: &str = "id, campaign_id, status, file_name, total_rows, processed_rows, accepted, updated, rejected, report, \
     interrupted_reason, blocked_by, heartbeat_at, created_at, started_at, finished_at";

fn job(row: &AnyRow) -> Result<ImportJob> {
    let status = import_status(&get::<String>(row, "status")?)?;
    let interrupted_reason = get::<Option<String>>(row, "interrupted_reason")?.as_deref().map(interrupted_reason).transpose()?;
    let heartbeat_at = get::<Option<i64>>(row, "heartbeat_at")?.map(from_micros).transpose()?;
    let blocked_by = get::<Option<String>>(row, "blocked_by")?;
    let mut job = ImportJob {
        id: get(row, "id")?,
        campaign_id: get(row, "campaign_id")?,
        status,
        file_name: get(row, "file_name")?,
        total_rows: get(row, "total_rows")?,
        processed_rows: get(row, "processed_rows")?,
        accepted: get(row, "accepted")?,
        updated: get(row, "updated")?,
        rejected: get(row, "rejected")?,
        report: from_json(&get::<String>(row, "report")?)?,
        queue_position: None,
        started_at: get::<Option<i64>>(row, "started_at")?.map(from_micros).transpose()?,
        waiting_for: blocked_by.clone().filter(|_| status == ImportStatus::Running),
        interrupted_reason,
        detail: None,
        heartbeat_at,
        created_at: from_micros(get(row, "created_at")?)?,
        finished_at: get::<Option<i64>>(row, "finished_at")?.map(from_micros).transpose()?,
    };
    job.detail = interruption_detail(&job, blocked_by.as_deref());
    Ok(job)
}

/// An interrupted job's report in words.
fn interruption_detail(job: &ImportJob, blocked_by: Option<&str>) -> Option<String> {
    if job.status != ImportStatus::Interrupted {
        return None;
    }
    if job.interrupted_reason == Some(InterruptedReason::StrategyFailed) {
        let why = blocked_by.unwrap_or("the campaign's DATA_LOAD strategy failed to build");
        return Some(format!("the import did not start: {why}. No row was written."));
    }
    let why = match (job.interrupted_reason, job.heartbeat_at) {
        (Some(InterruptedReason::Error), _) => "it stopped on a server error".to_owned(),
        (Some(InterruptedReason::Shutdown), _) => "the server running it was shut down".to_owned(),
        (_, Some(heartbeat)) => format!(
            "the server running it stopped before it finished (last heard from at {})",
            heartbeat.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        (_, None) => "the server running it stopped before it finished".to_owned(),
    };
    if job.started_at.is_none() {
        return Some(format!("the import did not start: {why} while it waited in the queue. No row was written; import the file again."));
    }
    let unread = (job.total_rows - job.processed_rows).max(0);
    Some(format!(
        "the import was interrupted: {why}. {} of {} rows were written ({} new, {} updated, {} rejected); \
         the other {unread} were not. Import the file again to finish: rows already written are matched by object_id \
         and updated, not duplicated.",
        job.processed_rows, job.total_rows, job.accepted, job.updated, job.rejected
    ))
}

/// Import jobs: progress, batches, heartbeats, recovery. Reached through [`Store::imports`].
#[derive(Clone, Copy)]
pub struct Imports<'a> {
    store: &'a Store,
}

impl Store {
    pub fn imports(&self) -> Imports<'_> {
        Imports { store: self }
    }
}

impl Imports<'_> {
    /// A `queued` job held by `node_id`, its heartbeat now, if the file
    /// fits the tenant's quotas (`quotas`: the node's defaults): its new
    /// contacts, its bytes, and (when it runs DATA_LOAD) today's fuel and
    /// HTTP calls below their daily quotas. The node starts it with [`Imports::start_queued_import`].
    pub async fn create_import_job(self, job: NewImportJob<'_>, quotas: Quotas, node_id: &str) -> Result<ImportJob> {
        let NewImportJob { tenant_id, campaign_id, file_name, total_rows, new_contacts, file_bytes, runs_strategy } = job;
        let id = new_id("imp");
        let now = micros(Utc::now());
        let mut tx = self.store.begin_write().await?;
        self.store.tenants().lock_tenant(&mut tx, tenant_id).await?;
        let mut asked = vec![Asked::Contacts { new: new_contacts }, Asked::Storage { bytes: file_bytes }];
        asked.extend(runs_strategy.then_some(Asked::StrategyWork));
        for asked in asked {
            crate::quotas::check(&mut tx, tenant_id, quotas, asked).await?;
        }
        sqlx::query(
            "INSERT INTO import_jobs (id, tenant_id, campaign_id, status, file_name, total_rows, processed_rows, \
             accepted, updated, rejected, report, created_at, node_id, heartbeat_at) \
             VALUES ($1, $2, $3, 'queued', $4, $5, 0, 0, 0, 0, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(file_name)
        .bind(total_rows)
        .bind(to_json(&ImportReport::default())?)
        .bind(now)
        .bind(node_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.import_job(tenant_id, &id).await
    }

    /// The jobs `node_id` holds that have not ended, oldest first.
    pub async fn node_queue(self, node_id: &str) -> Result<Vec<NodeImport>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, status, created_at FROM import_jobs WHERE node_id = $1 AND status IN ('queued', 'running') \
             ORDER BY created_at, id",
        )
        .bind(node_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeImport {
                    id: get(row, "id")?,
                    tenant_id: get(row, "tenant_id")?,
                    status: import_status(&get::<String>(row, "status")?)?,
                    created_at: from_micros(get(row, "created_at")?)?,
                })
            })
            .collect()
    }

    /// The node holding a queued job.
    pub async fn import_node(self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT node_id FROM import_jobs WHERE id = $1 AND status = 'queued'").bind(id).fetch_optional(&self.store.pool).await?;
        row.map(|row| get::<Option<String>>(&row, "node_id")).transpose().map(Option::flatten)
    }

    /// Starts a job `node_id` queued; `false` when it is not queued on
    /// that node any more (taken for dead and marked interrupted).
    pub async fn start_queued_import(self, id: &str, node_id: &str) -> Result<bool> {
        let now = micros(Utc::now());
        let done = sqlx::query(
            "UPDATE import_jobs SET status = 'running', started_at = $1, heartbeat_at = $1 WHERE id = $2 AND node_id = $3 AND status = 'queued'",
        )
        .bind(now)
        .bind(id)
        .bind(node_id)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Renews the heartbeat of every job `node_id` holds in its queue.
    pub async fn renew_queued_heartbeats(self, node_id: &str) -> Result<()> {
        sqlx::query("UPDATE import_jobs SET heartbeat_at = $1 WHERE node_id = $2 AND status = 'queued'")
            .bind(micros(Utc::now()))
            .bind(node_id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Writes a batch's contacts and the job's counts after it in one
    /// transaction, if the job is still `running` on `node_id`; the counts
    /// after it, or `None` (nothing written) when the job is not, because
    /// it was marked interrupted meanwhile.
    ///
    /// `turn` resolves once the batch before this one has committed
    /// (`true`), or failed to (`false`: this one is rolled back too and
    /// `None` returned). The contacts are written before it is awaited, so
    /// on PostgreSQL consecutive batches write at the same time (batches
    /// never share a contact), while the job's counts and report are
    /// updated, and the batches committed, in the file's order. On SQLite
    /// a write transaction holds the database: the batch before must have
    /// committed before this one is called.
    pub async fn write_import_batch(self, batch: &ImportBatch, turn: impl std::future::Future<Output = bool>) -> Result<Option<ImportCounts>> {
        let mut tx = self.store.begin_write().await?;
        let outcomes = self.store.contacts().upsert_contacts_in(&mut tx, &batch.tenant_id, &batch.campaign_id, &batch.contacts).await?;
        // Only the batch's own rows are locked while it waits for its turn.
        // The invocations (their usage counters) and the job's row are
        // shared with the batch before: locked before it, they would wait
        // for each other.
        if !turn.await {
            tx.rollback().await?;
            return Ok(None);
        }
        crate::invocations::record_invocations(self.store, &mut tx, &batch.invocations).await?;
        let inserted = outcomes.iter().filter(|outcome| **outcome == UpsertOutcome::Inserted).count() as i64;
        let row = sqlx::query(
            "UPDATE import_jobs SET processed_rows = processed_rows + $1, accepted = accepted + $2, updated = updated + $3, \
             rejected = rejected + $4, report = $5, heartbeat_at = $6 WHERE id = $7 AND node_id = $8 AND status = 'running' \
             RETURNING processed_rows, accepted, updated, rejected",
        )
        .bind(batch.rows)
        .bind(inserted)
        .bind(outcomes.len() as i64 - inserted)
        .bind(batch.rejected)
        .bind(to_json(&batch.report)?)
        .bind(micros(Utc::now()))
        .bind(&batch.job_id)
        .bind(&batch.node_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let after = ImportCounts {
            processed_rows: get(&row, "processed_rows")?,
            accepted: get(&row, "accepted")?,
            updated: get(&row, "updated")?,
            rejected: get(&row, "rejected")?,
        };
        tx.commit().await?;
        Ok(Some(after))
    }

    /// Renews the heartbeat of a job `node_id` holds; `false` when the
    /// job is no longer running on it (marked interrupted meanwhile).
    pub async fn renew_import_heartbeat(self, id: &str, node_id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE import_jobs SET heartbeat_at = $1 WHERE id = $2 AND node_id = $3 AND status = 'running'")
            .bind(micros(Utc::now()))
            .bind(id)
            .bind(node_id)
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Says what a running job `node_id` holds waits for (`None`: nothing
    /// any more); `false` when the job is not running on that node.
    pub async fn set_import_waiting(self, id: &str, node_id: &str, waiting_for: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE import_jobs SET blocked_by = $1, heartbeat_at = $2 WHERE id = $3 AND node_id = $4 AND status = 'running'")
            .bind(waiting_for)
            .bind(micros(Utc::now()))
            .bind(id)
            .bind(node_id)
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Closes a job `node_id` holds, queued or running; its counts are the
    /// batches' already. `false` when it had ended meanwhile.
    pub async fn finish_import_job(self, id: &str, node_id: &str, end: ImportEnd) -> Result<bool> {
        let (status, reason, blocked_by) = match &end {
            ImportEnd::Done => (ImportStatus::Done, None, None),
            ImportEnd::Interrupted(reason) => (ImportStatus::Interrupted, Some(reason.as_str()), None),
            ImportEnd::StrategyFailed(why) => (ImportStatus::Interrupted, Some(InterruptedReason::StrategyFailed.as_str()), Some(why.as_str())),
        };
        let now = micros(Utc::now());
        let done = sqlx::query(
            "UPDATE import_jobs SET status = $1, interrupted_reason = $2, blocked_by = $3, finished_at = $4, heartbeat_at = $5 \
             WHERE id = $6 AND node_id = $7 AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(blocked_by)
        .bind(now)
        .bind(now)
        .bind(id)
        .bind(node_id)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn import_job(self, tenant_id: &str, id: &str) -> Result<ImportJob> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("import job"))?;
        job(&row)
    }

    /// Marks interrupted the queued and running jobs whose node has not been heard
    /// from since `heartbeat_before` (jobs from before heartbeats: since
    /// they were created). Returns how many.
    pub async fn interrupt_lapsed_imports(self, heartbeat_before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE import_jobs SET status = 'interrupted', interrupted_reason = 'node_stopped', finished_at = $1 \
             WHERE status IN ('queued', 'running') AND COALESCE(heartbeat_at, created_at) < $2",
        )
        .bind(micros(Utc::now()))
        .bind(micros(heartbeat_before))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Marks interrupted every queued or running job that is not `node_id`'s: on
    /// SQLite, which one process uses at a time, a new process's start-up
    /// knows every other process that held a job has stopped.
    pub async fn interrupt_imports_of_other_nodes(self, node_id: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE import_jobs SET status = 'interrupted', interrupted_reason = 'node_stopped', finished_at = $1 \
             WHERE status IN ('queued', 'running') AND (node_id IS NULL OR node_id <> $2)",
        )
        .bind(micros(Utc::now()))
        .bind(node_id)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

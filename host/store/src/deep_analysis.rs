//! Deep Analysis runs and the values they write: one row per (session,
//! metric). A run is work shared by the nodes the way dispatch is — a
//! PROGRESS run is claimed with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), one batch of sessions is analysed, the lease is given back
//! — so a node that dies loses nothing: its lease expires and another node
//! continues from what is written.
//!
//! What "done" means is the values table itself: a pair is done for a
//! RECALCULATE run when a value written *by that run* exists (older values
//! are replaced as it goes), and for a CONTINUE run when any value exists.
//! A value is written with an upsert that never overwrites the same run's
//! value, and the run's counters grow by the rows the upsert changed, so a
//! session analysed twice (a lease that expired under a slow LLM) is
//! counted once. The cursor only saves rescanning finished sessions; it is
//! never trusted over the values table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::analytics::Metric;

use crate::{from_json, from_micros, get, micros, new_id, to_json, Backend, Result, Store, StoreError};

/// A run as the API shows it (`AnalysisRun`): `total`, `done` and
/// `failed` count values (one per session and metric): `done` of `total`
/// are written, `failed` of those are errors.
pub use stratagem_types::deep_analysis::{AnalysisMode, AnalysisRun, AnalysisStatus, SessionValue};

fn analysis_mode(text: &str) -> Result<AnalysisMode> {
    AnalysisMode::parse(text).ok_or_else(|| StoreError::Corrupt(format!("analysis mode `{text}`")))
}

fn analysis_status(text: &str) -> Result<AnalysisStatus> {
    AnalysisStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("analysis status `{text}`")))
}

/// A run claimed by a node, with what it needs to work.
#[derive(Debug, Clone)]
pub struct ClaimedAnalysis {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub mode: AnalysisMode,
    /// The definitions as they were when the run started.
    pub metrics: Vec<Metric>,
    /// Sessions that ended in `[since, until]` are analysed.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    cursor: Option<(i64, String)>,
}

/// A session of a claimed run with metrics still to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSession {
    pub communication_id: String,
    /// The codes still to compute, in the run's order.
    pub metrics: Vec<String>,
    ended_at: i64,
}

/// Where a batch got to: every session up to here is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisCursor(i64, String);

impl PendingSession {
    /// The cursor just past this session.
    pub fn cursor(&self) -> AnalysisCursor {
        AnalysisCursor(self.ended_at, self.communication_id.clone())
    }
}

/// One metric's outcome for one session.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisValue {
    pub metric: String,
    /// `Ok(Null)` when the conversation does not tell; `Err` says why no
    /// valid value was given.
    pub value: std::result::Result<serde_json::Value, String>,
}

/// The stored values of one metric over a campaign, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricTally {
    /// Each distinct answer and how many sessions gave it.
    pub answers: Vec<(serde_json::Value, i64)>,
    /// Sessions whose conversation did not tell (the LLM answered null).
    pub unanswered: i64,
    pub errors: i64,
    /// The answers again per day their session ended (UTC): each
    /// `(day, answer, sessions)`, oldest day first.
    pub by_day: Vec<(chrono::NaiveDate, serde_json::Value, i64)>,
}

const RUN_COLUMNS: &str = "id, mode, status, metrics, scheduled, total, done, failed, skipped, last_error, created_at, finished_at";

fn run(row: &AnyRow) -> Result<AnalysisRun> {
    let metrics: Vec<Metric> = from_json(&get::<String>(row, "metrics")?)?;
    Ok(AnalysisRun {
        id: get(row, "id")?,
        mode: analysis_mode(&get::<String>(row, "mode")?)?,
        status: analysis_status(&get::<String>(row, "status")?)?,
        metrics: metrics.into_iter().map(|metric| metric.code).collect(),
        scheduled: get::<i64>(row, "scheduled")? != 0,
        total: get(row, "total")?,
        done: get(row, "done")?,
        failed: get(row, "failed")?,
        skipped: get(row, "skipped")?,
        last_error: get(row, "last_error")?,
        created_at: from_micros(get(row, "created_at")?)?,
        finished_at: get::<Option<i64>>(row, "finished_at")?.map(from_micros).transpose()?,
    })
}

/// `$first, $first+1, …` for `count` parameters.
fn params(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// The sessions of a campaign a run covers, as a filter on `c`
/// (communications): `$1` tenant, `$2` campaign, `$3`..`$4` the window.
/// Sessions without a transcript (a notification, a missed call) have
/// nothing to analyse; [`ENDED`] counts them too.
const SESSIONS: &str = "c.tenant_id = $1 AND c.campaign_id = $2 AND c.session_ended_at >= $3 AND c.session_ended_at <= $4 \
     AND EXISTS (SELECT 1 FROM messages m WHERE m.communication_id = c.id)";

/// Every session of the window, with a transcript or not.
const ENDED: &str = "c.tenant_id = $1 AND c.campaign_id = $2 AND c.session_ended_at >= $3 AND c.session_ended_at <= $4";

/// Micro-seconds in a day, to group by the day a session ended (UTC).
const DAY_MICROS: i64 = 86_400_000_000;

/// A stored value, canonical so equal answers group together.
fn value_text(value: &serde_json::Value) -> Result<String> {
    to_json(value)
}

/// Deep Analysis runs and the values they computed. Reached through [`Store::deep_analysis`].
#[derive(Clone, Copy)]
pub struct DeepAnalysis<'a> {
    store: &'a Store,
}

impl Store {
    pub fn deep_analysis(&self) -> DeepAnalysis<'_> {
        DeepAnalysis { store: self }
    }
}

impl DeepAnalysis<'_> {
    /// Starts a run over the sessions that ended since `since` (up to
    /// `now`). A CONTINUE run computes only the metrics some of those
    /// sessions lack; a run with nothing to compute is DONE at once, and a
    /// `scheduled` one with nothing to compute is not started (`None`).
    /// `Conflict` when a run is in progress for the campaign.
    pub async fn create_analysis_run(
        self,
        tenant_id: &str,
        campaign_id: &str,
        mode: AnalysisMode,
        metrics: &[Metric],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        scheduled: bool,
    ) -> Result<Option<AnalysisRun>> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        if let Some(active) = self.active_analysis_run(tenant_id, campaign_id).await? {
            return Err(in_progress(&active));
        }
        let now = from_micros(micros(now))?;
        // The window's sessions, and those of them with a transcript.
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS ended, COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM messages m WHERE m.communication_id = c.id) \
             THEN 1 ELSE 0 END), 0) AS sessions FROM communications c WHERE {ENDED}"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(micros(since))
        .bind(micros(now))
        .fetch_one(&self.store.pool)
        .await?;
        let sessions: i64 = get(&row, "sessions")?;
        let skipped = get::<i64>(&row, "ended")? - sessions;
        let (metrics, total): (Vec<Metric>, i64) = match mode {
            AnalysisMode::Recalculate => (metrics.to_vec(), sessions * metrics.len() as i64),
            AnalysisMode::Continue => {
                let codes: Vec<&str> = metrics.iter().map(|metric| metric.code.as_str()).collect();
                let have = self.values_per_metric(tenant_id, campaign_id, since, now, &codes).await?;
                let missing: Vec<(Metric, i64)> = metrics
                    .iter()
                    .map(|metric| (metric.clone(), sessions - have.get(&metric.code).copied().unwrap_or(0)))
                    .filter(|(_, missing)| *missing > 0)
                    .collect();
                let total = missing.iter().map(|(_, missing)| missing).sum();
                (missing.into_iter().map(|(metric, _)| metric).collect(), total)
            }
        };
        if scheduled && total == 0 {
            return Ok(None);
        }
        let id = new_id("anr");
        let status = if total == 0 { "DONE" } else { "PROGRESS" };
        let inserted = sqlx::query(
            "INSERT INTO analysis_runs (id, tenant_id, campaign_id, mode, status, metrics, since, total, done, failed, \
             created_at, updated_at, finished_at, scheduled, skipped) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(mode.as_str())
        .bind(status)
        .bind(to_json(&metrics)?)
        .bind(micros(since))
        .bind(total)
        .bind(micros(now))
        .bind((total == 0).then_some(micros(now)))
        .bind(i64::from(scheduled))
        .bind(skipped)
        .execute(&self.store.pool)
        .await;
        match inserted {
            Ok(_) => {}
            // Another request started one in the meantime.
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                return match self.active_analysis_run(tenant_id, campaign_id).await? {
                    Some(active) => Err(in_progress(&active)),
                    None => Err(StoreError::Conflict("another analysis run started meanwhile; try again".into())),
                };
            }
            Err(other) => return Err(other.into()),
        }
        self.analysis_run(tenant_id, campaign_id, &id).await.map(Some)
    }

    /// Claims up to `limit` campaigns whose scheduled analysis is due at
    /// `now`, moving each one's next time on by its interval, so that one
    /// node starts each: `(tenant_id, campaign_id)`.
    pub async fn claim_scheduled_analyses(self, now: DateTime<Utc>, limit: i64) -> Result<Vec<(String, String)>> {
        // Read first: the claim is a write, and on SQLite every write takes
        // the database's one write lock; nearly every tick has nothing due.
        let due = sqlx::query("SELECT id FROM campaigns WHERE analysis_next_at <= $1 LIMIT 1")
            .bind(micros(now))
            .fetch_all(&self.store.pool)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let lock = match self.store.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE campaigns SET analysis_next_at = $1 + analysis_every_minutes * 60000000 WHERE id IN ( \
               SELECT id FROM campaigns WHERE analysis_next_at <= $1 AND analysis_every_minutes IS NOT NULL \
               ORDER BY analysis_next_at LIMIT $2 {lock}) \
             RETURNING tenant_id, id"
        );
        sqlx::query(&sql)
            .bind(micros(now))
            .bind(limit)
            .fetch_all(&self.store.pool)
            .await?
            .iter()
            .map(|row| Ok((get(row, "tenant_id")?, get(row, "id")?)))
            .collect()
    }

    /// Of the sessions in the window, how many have a value per metric.
    async fn values_per_metric(
        self,
        tenant_id: &str,
        campaign_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        codes: &[&str],
    ) -> Result<HashMap<String, i64>> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT v.metric, COUNT(*) AS n FROM analysis_values v JOIN communications c ON c.id = v.communication_id \
             WHERE {SESSIONS} AND v.metric IN ({}) GROUP BY v.metric",
            params(5, codes.len())
        );
        let mut query = sqlx::query(&sql).bind(tenant_id).bind(campaign_id).bind(micros(since)).bind(micros(until));
        for code in codes {
            query = query.bind(*code);
        }
        query.fetch_all(&self.store.pool).await?.iter().map(|row| Ok((get(row, "metric")?, get(row, "n")?))).collect()
    }

    async fn active_analysis_run(self, tenant_id: &str, campaign_id: &str) -> Result<Option<AnalysisRun>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM analysis_runs WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'PROGRESS'"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(run).transpose()
    }

    pub async fn analysis_run(self, tenant_id: &str, campaign_id: &str, run_id: &str) -> Result<AnalysisRun> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM analysis_runs WHERE id = $1 AND tenant_id = $2 AND campaign_id = $3"))
            .bind(run_id)
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("analysis run"))?;
        run(&row)
    }

    /// The campaign's most recent run, if it ever had one.
    pub async fn latest_analysis_run(self, tenant_id: &str, campaign_id: &str) -> Result<Option<AnalysisRun>> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM analysis_runs WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(run).transpose()
    }

    /// Stops a run in progress: no further batch starts, and values of the
    /// batch in flight are not written. `Conflict` when it is not running.
    pub async fn stop_analysis_run(self, tenant_id: &str, campaign_id: &str, run_id: &str, now: DateTime<Utc>) -> Result<AnalysisRun> {
        let done = sqlx::query(
            "UPDATE analysis_runs SET status = 'STOPPED', finished_at = $1, updated_at = $1, lease_until = NULL \
             WHERE id = $2 AND tenant_id = $3 AND campaign_id = $4 AND status = 'PROGRESS'",
        )
        .bind(micros(now))
        .bind(run_id)
        .bind(tenant_id)
        .bind(campaign_id)
        .execute(&self.store.pool)
        .await?;
        let stored = self.analysis_run(tenant_id, campaign_id, run_id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the analysis run is {}, not in progress; there is nothing to stop",
                match stored.status {
                    AnalysisStatus::Done => "DONE",
                    AnalysisStatus::Stopped => "already STOPPED",
                    AnalysisStatus::Progress => "PROGRESS",
                }
            )));
        }
        Ok(stored)
    }

    /// Claims up to `limit` runs in progress that no node holds, leasing
    /// them until `lease_until`; the least recently worked on first.
    pub async fn claim_analysis_runs(self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> Result<Vec<ClaimedAnalysis>> {
        let lock = match self.store.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE analysis_runs SET lease_until = $2 WHERE id IN ( \
               SELECT id FROM analysis_runs WHERE status = 'PROGRESS' AND (lease_until IS NULL OR lease_until < $1) \
               ORDER BY updated_at LIMIT $3 {lock}) \
             RETURNING id, tenant_id, campaign_id, mode, metrics, since, created_at, cursor_ended_at, cursor_id"
        );
        let rows = sqlx::query(&sql).bind(micros(now)).bind(micros(lease_until)).bind(limit).fetch_all(&self.store.pool).await?;
        rows.iter()
            .map(|row| {
                let cursor = match (get::<Option<i64>>(row, "cursor_ended_at")?, get::<Option<String>>(row, "cursor_id")?) {
                    (Some(ended_at), Some(id)) => Some((ended_at, id)),
                    _ => None,
                };
                Ok(ClaimedAnalysis {
                    id: get(row, "id")?,
                    tenant_id: get(row, "tenant_id")?,
                    campaign_id: get(row, "campaign_id")?,
                    mode: analysis_mode(&get::<String>(row, "mode")?)?,
                    metrics: from_json(&get::<String>(row, "metrics")?)?,
                    since: from_micros(get(row, "since")?)?,
                    until: from_micros(get(row, "created_at")?)?,
                    cursor,
                })
            })
            .collect()
    }

    /// The next `limit` sessions of a claimed run that lack values, in the
    /// order they ended, each with the metrics it lacks.
    pub async fn pending_analysis_sessions(self, run: &ClaimedAnalysis, limit: i64) -> Result<Vec<PendingSession>> {
        let codes: Vec<&str> = run.metrics.iter().map(|metric| metric.code.as_str()).collect();
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        // $5, $6: the cursor; then the codes; then the run id (RECALCULATE
        // only), then the limit.
        let codes_at = 7;
        let mut next = codes_at + codes.len();
        let of_run = match run.mode {
            AnalysisMode::Recalculate => {
                next += 1;
                format!("AND v.run_id = ${}", next - 1)
            }
            AnalysisMode::Continue => String::new(),
        };
        let sql = format!(
            "SELECT c.id, c.session_ended_at FROM communications c WHERE {SESSIONS} \
               AND (c.session_ended_at > $5 OR (c.session_ended_at = $5 AND c.id > $6)) \
               AND (SELECT COUNT(*) FROM analysis_values v WHERE v.communication_id = c.id AND v.metric IN ({codes}) {of_run}) < {n} \
             ORDER BY c.session_ended_at, c.id LIMIT ${next}",
            codes = params(codes_at, codes.len()),
            n = codes.len(),
        );
        let (after_ended, after_id) = run.cursor.clone().unwrap_or((i64::MIN, String::new()));
        let mut query = sqlx::query(&sql)
            .bind(&run.tenant_id)
            .bind(&run.campaign_id)
            .bind(micros(run.since))
            .bind(micros(run.until))
            .bind(after_ended)
            .bind(after_id);
        for code in &codes {
            query = query.bind(*code);
        }
        if run.mode == AnalysisMode::Recalculate {
            query = query.bind(&run.id);
        }
        let rows = query.bind(limit).fetch_all(&self.store.pool).await?;
        let sessions: Vec<(String, i64)> =
            rows.iter().map(|row| Ok((get(row, "id")?, get(row, "session_ended_at")?))).collect::<Result<_>>()?;
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        // What each of them already has.
        let of_run = match run.mode {
            AnalysisMode::Recalculate => format!("AND run_id = ${}", 1 + sessions.len() + codes.len()),
            AnalysisMode::Continue => String::new(),
        };
        let sql = format!(
            "SELECT communication_id, metric FROM analysis_values WHERE communication_id IN ({}) AND metric IN ({}) {of_run}",
            params(1, sessions.len()),
            params(1 + sessions.len(), codes.len()),
        );
        let mut query = sqlx::query(&sql);
        for (id, _) in &sessions {
            query = query.bind(id);
        }
        for code in &codes {
            query = query.bind(*code);
        }
        if run.mode == AnalysisMode::Recalculate {
            query = query.bind(&run.id);
        }
        let mut have: HashMap<String, Vec<String>> = HashMap::new();
        for row in query.fetch_all(&self.store.pool).await? {
            have.entry(get(&row, "communication_id")?).or_default().push(get(&row, "metric")?);
        }
        Ok(sessions
            .into_iter()
            .map(|(communication_id, ended_at)| {
                let done = have.remove(&communication_id).unwrap_or_default();
                let metrics = codes.iter().filter(|code| !done.iter().any(|d| d == *code)).map(|code| (*code).to_owned()).collect();
                PendingSession { communication_id, metrics, ended_at }
            })
            .collect())
    }

    /// Writes a session's values for a run in one transaction and counts
    /// them on the run: `(written, failed)`. Nothing is written once the
    /// run is no longer in progress, and a value the run already wrote is
    /// kept (and not counted again).
    pub async fn record_analysis_values(
        self,
        run: &ClaimedAnalysis,
        communication_id: &str,
        values: &[AnalysisValue],
        now: DateTime<Utc>,
    ) -> Result<(i64, i64)> {
        let mut tx = self.store.begin_write().await?;
        // A write first, so SQLite takes its write lock here (a read first
        // could not upgrade), and PostgreSQL orders this with a stop.
        let running = sqlx::query("UPDATE analysis_runs SET updated_at = $1 WHERE id = $2 AND status = 'PROGRESS'")
            .bind(micros(now))
            .bind(&run.id)
            .execute(&mut *tx)
            .await?;
        if running.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok((0, 0));
        }
        let mut counts = [0i64; 2];
        let (answers, errors): (Vec<&AnalysisValue>, Vec<&AnalysisValue>) = values.iter().partition(|value| value.value.is_ok());
        for (slot, group) in [answers, errors].into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let rows: Vec<String> = (0..group.len()).map(|i| format!("({})", params(1 + i * 8, 8))).collect();
            let sql = format!(
                "INSERT INTO analysis_values (communication_id, metric, tenant_id, campaign_id, run_id, value, error, computed_at) \
                 VALUES {} ON CONFLICT (communication_id, metric) DO UPDATE SET run_id = excluded.run_id, value = excluded.value, \
                 error = excluded.error, computed_at = excluded.computed_at WHERE analysis_values.run_id <> excluded.run_id",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for value in group {
                let (text, error) = match &value.value {
                    Ok(answer) => (Some(value_text(answer)?), None),
                    Err(error) => (None, Some(error.clone())),
                };
                query = query
                    .bind(communication_id)
                    .bind(&value.metric)
                    .bind(&run.tenant_id)
                    .bind(&run.campaign_id)
                    .bind(&run.id)
                    .bind(text)
                    .bind(error)
                    .bind(micros(now));
            }
            counts[slot] = query.execute(&mut *tx).await?.rows_affected() as i64;
        }
        let written = counts[0] + counts[1];
        sqlx::query("UPDATE analysis_runs SET done = done + $1, failed = failed + $2 WHERE id = $3")
            .bind(written)
            .bind(counts[1])
            .bind(&run.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((written, counts[1]))
    }

    /// Ends a batch: moves the cursor past the sessions completed in order,
    /// records why the batch could not finish (or clears that), gives the
    /// lease back — or keeps it until `retry_at`, so no node tries again
    /// before — and with `complete` marks a running run DONE.
    pub async fn finish_analysis_batch(
        self,
        run_id: &str,
        cursor: Option<&AnalysisCursor>,
        last_error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
        complete: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE analysis_runs SET cursor_ended_at = COALESCE($1, cursor_ended_at), cursor_id = COALESCE($2, cursor_id), \
             last_error = $3, lease_until = $4, updated_at = $5, \
             finished_at = CASE WHEN $6 = 1 AND status = 'PROGRESS' THEN $5 ELSE finished_at END, \
             status = CASE WHEN $6 = 1 AND status = 'PROGRESS' THEN 'DONE' ELSE status END \
             WHERE id = $7",
        )
        .bind(cursor.map(|c| c.0))
        .bind(cursor.map(|c| c.1.clone()))
        .bind(last_error)
        .bind(retry_at.map(micros))
        .bind(micros(now))
        .bind(i64::from(complete))
        .bind(run_id)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// The stored values of `codes` over the campaign, counted per metric
    /// in the database.
    pub async fn analysis_tallies(self, tenant_id: &str, campaign_id: &str, codes: &[String]) -> Result<HashMap<String, MetricTally>> {
        let mut tallies: HashMap<String, MetricTally> = HashMap::new();
        if codes.is_empty() {
            return Ok(tallies);
        }
        let sql = format!(
            "SELECT metric, value, CAST(CASE WHEN error IS NULL THEN 0 ELSE 1 END AS BIGINT) AS failed, COUNT(*) AS n \
             FROM analysis_values WHERE tenant_id = $1 AND campaign_id = $2 AND metric IN ({}) \
             GROUP BY metric, value, CAST(CASE WHEN error IS NULL THEN 0 ELSE 1 END AS BIGINT)",
            params(3, codes.len())
        );
        let mut query = sqlx::query(&sql).bind(tenant_id).bind(campaign_id);
        for code in codes {
            query = query.bind(code);
        }
        for row in query.fetch_all(&self.store.pool).await? {
            let tally = tallies.entry(get(&row, "metric")?).or_default();
            let n: i64 = get(&row, "n")?;
            if get::<i64>(&row, "failed")? == 1 {
                tally.errors += n;
                continue;
            }
            match get::<Option<String>>(&row, "value")?.map(|text| from_json::<serde_json::Value>(&text)).transpose()? {
                None | Some(serde_json::Value::Null) => tally.unanswered += n,
                Some(answer) => tally.answers.push((answer, n)),
            }
        }
        let sql = format!(
            "SELECT v.metric, v.value, c.session_ended_at / {DAY_MICROS} AS day, COUNT(*) AS n \
             FROM analysis_values v JOIN communications c ON c.id = v.communication_id \
             WHERE v.tenant_id = $1 AND v.campaign_id = $2 AND v.error IS NULL AND v.value IS NOT NULL AND v.metric IN ({}) \
             GROUP BY v.metric, v.value, c.session_ended_at / {DAY_MICROS} ORDER BY day",
            params(3, codes.len())
        );
        let mut query = sqlx::query(&sql).bind(tenant_id).bind(campaign_id);
        for code in codes {
            query = query.bind(code);
        }
        for row in query.fetch_all(&self.store.pool).await? {
            let answer: serde_json::Value = from_json(&get::<String>(&row, "value")?)?;
            if answer.is_null() {
                continue;
            }
            let day = from_micros(get::<i64>(&row, "day")? * DAY_MICROS)?.date_naive();
            tallies.entry(get(&row, "metric")?).or_default().by_day.push((day, answer, get(&row, "n")?));
        }
        Ok(tallies)
    }

    /// A session's values of `codes`, in that order. `NotFound` when the
    /// session is not the campaign's.
    pub async fn session_analysis(self, tenant_id: &str, campaign_id: &str, communication_id: &str, codes: &[String]) -> Result<Vec<SessionValue>> {
        sqlx::query("SELECT id FROM communications WHERE id = $1 AND tenant_id = $2 AND campaign_id = $3")
            .bind(communication_id)
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("session"))?;
        let rows = sqlx::query(
            "SELECT metric, value, error, computed_at FROM analysis_values WHERE communication_id = $1 AND tenant_id = $2",
        )
        .bind(communication_id)
        .bind(tenant_id)
        .fetch_all(&self.store.pool)
        .await?;
        let mut values: Vec<SessionValue> = rows
            .iter()
            .map(|row| {
                Ok(SessionValue {
                    metric: get(row, "metric")?,
                    value: get::<Option<String>>(row, "value")?.map(|text| from_json(&text)).transpose()?.unwrap_or_default(),
                    error: get(row, "error")?,
                    computed_at: from_micros(get(row, "computed_at")?)?,
                })
            })
            .collect::<Result<_>>()?;
        values.retain(|value| codes.contains(&value.metric));
        values.sort_by_key(|value| codes.iter().position(|code| *code == value.metric));
        Ok(values)
    }
}

fn in_progress(active: &AnalysisRun) -> StoreError {
    StoreError::Conflict(format!(
        "analysis run {} is in progress ({} of {} values); wait for it to finish or stop it first",
        active.id, active.done, active.total
    ))
}

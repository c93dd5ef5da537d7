//! Claiming work with a lease: due communications (and marking missed
//! ones), and ended sessions that await AGGREGATION.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, JsonMap};

use crate::communication_row::{communication, COMMUNICATION_COLUMNS};
use crate::{from_json, from_micros, get, micros, Result};
use crate::fair::{self, Waiting};
use super::Dispatch;

/// A communication claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedCommunication {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub communication: Communication,
    /// The outcome of a send already recorded under this communication's
    /// key: a node that claimed it before sent it and died before its
    /// session was written.
    pub recorded: Option<JsonMap>,
    /// Earlier attempts a provider could not take for now.
    pub attempts: i64,
}

/// A session that ended and awaits the AGGREGATION strategy.
#[derive(Debug, Clone)]
pub struct EndedSession {
    pub communication_id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub session_results: JsonMap,
    /// Its communication's state when the platform marked it IN_DOUBT: the
    /// strategy sees it so (the contact may have been read before), and it
    /// is kept whatever the strategy returns.
    pub in_doubt: Option<CommunicationState>,
}

/// Due communications of RUNNING campaigns that no node has claimed yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueBacklog {
    pub waiting: i64,
    /// When the longest-waiting one became due.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

impl Dispatch<'_> {
    /// What [`Dispatch::claim_due_communications`] would find due now,
    /// counted: how far the node(s) are behind.
    pub async fn due_backlog(self, now: DateTime<Utc>, default_window: Duration) -> Result<DueBacklog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS waiting, MIN(c.start_date) AS oldest FROM communications c JOIN campaigns p ON p.id = c.campaign_id \
             WHERE p.status = 'RUNNING' AND c.status = 'PLANNED' AND c.start_date <= $1 AND COALESCE(c.end_date, c.start_date + $2) > $1",
        )
        .bind(micros(now))
        .bind(default_window.num_microseconds().unwrap_or(i64::MAX))
        .fetch_one(&self.store.pool)
        .await?;
        Ok(DueBacklog { waiting: get(&row, "waiting")?, oldest_due_at: get::<Option<i64>>(&row, "oldest")?.map(from_micros).transpose()? })
    }

    /// Communications whose window passed before they started become
    /// MISSED — never sent later — and their session ends with
    /// `OutcomeStatus: MISSED`, so AGGREGATION can plan what comes next.
    /// `default_window` is the window of one planned without an end. A
    /// window that ends before it starts is marked once its start has
    /// passed. Each half of the query reads only the rows it marks
    /// (`communications_window_end`, and `communications_due`'s start-date
    /// range), whatever the planner's statistics: a campaign's many planned
    /// rows whose window is still open are not scanned every tick.
    pub async fn mark_missed(self, now: DateTime<Utc>, default_window: Duration) -> Result<u64> {
        let open_ended_before = now.checked_sub_signed(default_window).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let done = sqlx::query(
            "UPDATE communications SET status = 'MISSED', status_updated_at = $1, session_ended_at = $1, \
             session_results = $2, lease_until = NULL \
             WHERE start_date <= $1 AND id IN ( \
               SELECT id FROM communications WHERE status = 'PLANNED' AND end_date IS NOT NULL AND end_date <= $1 \
               UNION ALL \
               SELECT id FROM communications WHERE status = 'PLANNED' AND end_date IS NULL AND start_date <= $3)",
        )
        .bind(micros(now))
        .bind(r#"{"OutcomeStatus":"MISSED"}"#)
        .bind(micros(open_ended_before))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims up to `limit` communications of RUNNING campaigns that are due
    /// and inside their window — or were claimed by a node whose lease
    /// expired before their session ended (they are sent again under the
    /// same idempotency key, unless a send to a provider without one was
    /// announced and has no outcome: [`Dispatch::mark_in_doubt`] takes those)
    /// — leasing them until `lease_until`. The batch is shared fairly among
    /// tenants, then campaigns (`fair.rs`); each campaign's oldest first.
    pub async fn claim_due_communications(
        self,
        now: DateTime<Utc>,
        default_window: Duration,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedCommunication>> {
        let window = default_window.num_microseconds().unwrap_or(i64::MAX);
        let waiting = self.waiting_to_send(now, window).await?;
        if waiting.is_empty() || limit <= 0 {
            return Ok(Vec::new());
        }
        let lock = self.store.skip_locked();
        let statement = |selects: &str| {
            format!(
                "UPDATE communications SET status = 'IN_PROGRESS', status_updated_at = $1, lease_until = $2 WHERE {} \
                 RETURNING tenant_id, campaign_id, contact_id, send_attempts, {COMMUNICATION_COLUMNS}, \
                   (SELECT s.outcome FROM channel_sends s WHERE s.communication_id = communications.id) AS recorded",
                self.store.id_among(selects)
            )
        };
        // Due and expired apart, each in its index's order, so that neither
        // reads more than the share: one select with an OR read all of a
        // campaign's due rows to sort them.
        let select = |campaign: &Waiting, id: usize, share: usize| {
            let of = |condition: &str| {
                format!(
                    "SELECT c.id, c.start_date FROM communications c JOIN campaigns p ON p.id = c.campaign_id \
                     WHERE c.campaign_id = ${id} AND p.status = 'RUNNING' AND {condition} ORDER BY c.start_date LIMIT ${share} {lock}"
                )
            };
            match campaign.expired {
                false => of(DUE),
                true => format!(
                    "SELECT id, start_date FROM ({}) AS d UNION ALL SELECT id, start_date FROM ({}) AS e ORDER BY start_date LIMIT ${share}",
                    of(DUE),
                    of(EXPIRED)
                ),
            }
        };
        let claim = fair::Claim { statement: &statement, select: &select, parameters: &[micros(now), micros(lease_until), window] };
        let mut tx = self.store.begin_write().await?;
        let claimed = fair::claim(&mut tx, claim, waiting, limit, micros(now) as u64, claimed_communication, |c| c.campaign_id.as_str()).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// RUNNING campaigns with communications to send now (due, or claimed
    /// by a node whose lease expired): a look into one index per campaign.
    async fn waiting_to_send(self, now: DateTime<Utc>, window: i64) -> Result<Vec<Waiting>> {
        let rows = sqlx::query(
            "SELECT p.id, p.tenant_id, \
               (SELECT c.start_date FROM communications c WHERE c.campaign_id = p.id AND c.status = 'PLANNED' AND c.start_date <= $1 \
                  AND COALESCE(c.end_date, c.start_date + $2) > $1 ORDER BY c.start_date LIMIT 1) AS due, \
               (SELECT c.start_date FROM communications c WHERE c.campaign_id = p.id AND c.status = 'IN_PROGRESS' \
                  AND c.session_ended_at IS NULL AND c.lease_until < $1 ORDER BY c.start_date LIMIT 1) AS expired \
             FROM campaigns p WHERE p.status = 'RUNNING'",
        )
        .bind(micros(now))
        .bind(window)
        .fetch_all(&self.store.pool)
        .await?;
        let mut waiting = Vec::new();
        for row in &rows {
            let (due, expired) = (get::<Option<i64>>(row, "due")?.is_some(), get::<Option<i64>>(row, "expired")?.is_some());
            if due || expired {
                waiting.push(Waiting { campaign_id: get(row, "id")?, tenant_id: get(row, "tenant_id")?, expired });
            }
        }
        Ok(waiting)
    }

    /// Keeps a claimed communication that a provider could not take for
    /// now (`error`) until `retry_at`, when it is claimed again under the
    /// same idempotency key if its window is still open.
    pub async fn retry_send_later(self, communication_id: &str, retry_at: DateTime<Utc>, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE communications SET lease_until = $1, send_attempts = send_attempts + 1, send_error = $2 \
             WHERE id = $3 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(micros(retry_at))
        .bind(error)
        .bind(communication_id)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Sends a provider kept refusing for now until their window passed:
    /// their session ends FAILED with the last error, and AGGREGATION
    /// decides what comes next. Returns how many.
    pub async fn fail_lapsed_retries(self, now: DateTime<Utc>, default_window: Duration) -> Result<u64> {
        let window = default_window.num_microseconds().unwrap_or(i64::MAX);
        let lapsed = sqlx::query(
            "SELECT id, send_attempts, send_error FROM communications WHERE status = 'IN_PROGRESS' AND session_ended_at IS NULL \
             AND send_attempts > 0 AND lease_until < $1 AND COALESCE(end_date, start_date + $2) <= $1",
        )
        .bind(micros(now))
        .bind(window)
        .fetch_all(&self.store.pool)
        .await?;
        let mut failed = 0;
        for row in &lapsed {
            let attempts: i64 = get(row, "send_attempts")?;
            let error: Option<String> = get(row, "send_error")?;
            let results = stratagem_domain::failed_outcome(format!(
                "the provider could not take the message in {attempts} attempt(s) before its window closed; the last: {}",
                error.as_deref().unwrap_or("no error was recorded")
            ));
            let done = sqlx::query(
                "UPDATE communications SET session_results = $1, session_ended_at = $2, lease_until = NULL \
                 WHERE id = $3 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL AND lease_until < $2",
            )
            .bind(crate::to_json(&results)?)
            .bind(micros(now))
            .bind(get::<String>(row, "id")?)
            .execute(&self.store.pool)
            .await?;
            failed += done.rows_affected();
        }
        Ok(failed)
    }

    /// Puts a claimed communication back, unsent (its channel's rate limit
    /// was reached); it is claimed again while its window is open.
    pub async fn unclaim(self, communication_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE communications SET status = 'PLANNED', lease_until = NULL \
             WHERE id = $1 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(communication_id)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` ended sessions of RUNNING campaigns that await
    /// aggregation, leasing them until `lease_until`: shared fairly among
    /// tenants, then campaigns (`fair.rs`); each campaign's oldest first.
    /// Those of the `held` tenants (a daily quota reached) stay unclaimed.
    pub async fn claim_ended_sessions(
        self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        held: &HashSet<String>,
    ) -> Result<Vec<EndedSession>> {
        let mut waiting = self.waiting_to_aggregate(now).await?;
        waiting.retain(|campaign| !held.contains(&campaign.tenant_id));
        if waiting.is_empty() || limit <= 0 {
            return Ok(Vec::new());
        }
        let lock = self.store.skip_locked();
        let statement = |selects: &str| {
            format!(
                "UPDATE communications SET lease_until = $2 WHERE {} \
                 RETURNING id, tenant_id, campaign_id, contact_id, session_results, status, status_detail, status_updated_at",
                self.store.id_among(selects)
            )
        };
        let select = |_: &Waiting, id: usize, share: usize| {
            format!(
                "SELECT c.id FROM communications c JOIN campaigns p ON p.id = c.campaign_id \
                 WHERE c.campaign_id = ${id} AND p.status = 'RUNNING' AND {ENDED} ORDER BY c.session_ended_at LIMIT ${share} {lock}"
            )
        };
        let claim = fair::Claim { statement: &statement, select: &select, parameters: &[micros(now), micros(lease_until)] };
        let mut tx = self.store.begin_write().await?;
        let claimed = fair::claim(&mut tx, claim, waiting, limit, micros(now) as u64, ended_session, |s| s.campaign_id.as_str()).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// RUNNING campaigns with ended sessions that await aggregation and no
    /// node holds.
    async fn waiting_to_aggregate(self, now: DateTime<Utc>) -> Result<Vec<Waiting>> {
        let rows = sqlx::query(&format!(
            "SELECT p.id, p.tenant_id, \
               (SELECT c.session_ended_at FROM communications c WHERE c.campaign_id = p.id AND {ENDED} \
                  ORDER BY c.session_ended_at LIMIT 1) AS ended \
             FROM campaigns p WHERE p.status = 'RUNNING'"
        ))
        .bind(micros(now))
        .fetch_all(&self.store.pool)
        .await?;
        let mut waiting = Vec::new();
        for row in &rows {
            if get::<Option<i64>>(row, "ended")?.is_some() {
                waiting.push(Waiting { campaign_id: get(row, "id")?, tenant_id: get(row, "tenant_id")?, expired: false });
            }
        }
        Ok(waiting)
    }
}

/// A due communication (`c`, `$1` now, `$3` the default window).
const DUE: &str = "c.status = 'PLANNED' AND c.start_date <= $1 AND COALESCE(c.end_date, c.start_date + $3) > $1";

/// A claim whose lease expired before its session ended, to send again.
const EXPIRED: &str = "c.status = 'IN_PROGRESS' AND c.session_ended_at IS NULL AND c.lease_until < $1 \
    AND (c.send_attempts = 0 OR COALESCE(c.end_date, c.start_date + $3) > $1) \
    AND NOT EXISTS (SELECT 1 FROM channel_sends s WHERE s.communication_id = c.id AND s.outcome IS NULL)";

/// An ended session awaiting aggregation that no node holds (`c`, `$1` now).
const ENDED: &str = "c.session_ended_at IS NOT NULL AND c.aggregated_at IS NULL AND (c.lease_until IS NULL OR c.lease_until < $1)";

/// A claimed communication's row.
fn claimed_communication(row: &AnyRow) -> Result<ClaimedCommunication> {
    Ok(ClaimedCommunication {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        campaign_id: get(row, "campaign_id")?,
        contact_id: get(row, "contact_id")?,
        communication: communication(row)?,
        recorded: get::<Option<String>>(row, "recorded")?.map(|text| from_json(&text)).transpose()?,
        attempts: get(row, "send_attempts")?,
    })
}

/// A communication row (`id`, `tenant_id`, `campaign_id`, `contact_id`,
/// `session_results`, `status`, `status_detail`, `status_updated_at`) as a
/// session awaiting AGGREGATION.
fn ended_session(row: &AnyRow) -> Result<EndedSession> {
    let in_doubt = match get::<String>(row, "status")?.as_str() {
        "IN_DOUBT" => Some(CommunicationState {
            status: CommunicationStatus::InDoubt,
            detail: get(row, "status_detail")?,
            updated_at: get::<Option<i64>>(row, "status_updated_at")?.map(crate::from_micros).transpose()?,
        }),
        _ => None,
    };
    Ok(EndedSession {
        communication_id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        campaign_id: get(row, "campaign_id")?,
        contact_id: get(row, "contact_id")?,
        session_results: get::<Option<String>>(row, "session_results")?.map(|text| from_json(&text)).transpose()?.unwrap_or_default(),
        in_doubt,
    })
}

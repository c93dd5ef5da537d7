//! Conversations on two-way channels: the transcript of each session, the
//! address by which inbound messages find their session, and the queues
//! the engine works from — sessions whose contact wrote and await the
//! agent's answer, and sessions gone quiet past the inactivity timeout.
//! Both are claimed with a lease (`answer_lease_until`), like dispatch.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use stratagem_domain::{JsonMap, Message, MessageRole};

use crate::fair::{self, Waiting};
use crate::{from_micros, get, micros, new_id, Result, Store};

/// Where a session opened on a provider can be reached.
#[derive(Debug, Clone)]
pub struct Conversation<'a> {
    pub integration_id: &'a str,
    pub agent_id: Option<&'a str>,
    /// The contact's address on the provider (chat id, phone, email).
    pub address: &'a str,
    /// The provider's id of the first message or call.
    pub provider_ref: &'a str,
}

/// An open session, as the engine works on it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    pub communication_id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub contact_id: String,
    pub stage_name: String,
    pub channel: String,
    pub alternative: Option<String>,
    pub integration_id: Option<String>,
    pub agent_id: Option<String>,
    pub address: Option<String>,
    /// When the contact's unanswered message arrived; `None` when the
    /// session was claimed for inactivity.
    pub awaiting_since: Option<DateTime<Utc>>,
}

const OPEN_SESSION_COLUMNS: &str = "id, tenant_id, campaign_id, contact_id, stage_name, channel, alternative, \
     integration_id, agent_id, session_address, awaiting_answer_since";

/// An open session no node holds for an answer (`c`, `$1` now).
const OPEN: &str = "c.status = 'IN_PROGRESS' AND c.session_ended_at IS NULL AND (c.answer_lease_until IS NULL OR c.answer_lease_until < $1)";

/// One of the two queues of open sessions the engine claims from: which
/// sessions (`c`; `$1` now, `$3` on what it reads) and in what order.
struct OpenQueue {
    filter: &'static str,
    order: &'static str,
}

fn open_session(row: &AnyRow) -> Result<OpenSession> {
    Ok(OpenSession {
        communication_id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        campaign_id: get(row, "campaign_id")?,
        contact_id: get(row, "contact_id")?,
        stage_name: get(row, "stage_name")?,
        channel: get::<Option<String>>(row, "channel")?.unwrap_or_default(),
        alternative: get(row, "alternative")?,
        integration_id: get(row, "integration_id")?,
        agent_id: get(row, "agent_id")?,
        address: get(row, "session_address")?,
        awaiting_since: get::<Option<i64>>(row, "awaiting_answer_since")?.map(from_micros).transpose()?,
    })
}

fn message(row: &AnyRow) -> Result<Message> {
    Ok(Message {
        role: role(&get::<String>(row, "role")?),
        content: get(row, "content")?,
        sent_at: from_micros(get(row, "sent_at")?)?,
        communication_id: Some(get(row, "communication_id")?),
    })
}

fn role(text: &str) -> MessageRole {
    if text == "CONTACT" {
        MessageRole::Contact
    } else {
        MessageRole::Agent
    }
}

fn role_name(role: MessageRole) -> &'static str {
    match role {
        MessageRole::Agent => "AGENT",
        MessageRole::Contact => "CONTACT",
    }
}

/// Conversations with contacts: sessions, transcripts, answers awaited. Reached through [`Store::conversations`].
#[derive(Clone, Copy)]
pub struct Conversations<'a> {
    store: &'a Store,
}

impl Store {
    pub fn conversations(&self) -> Conversations<'_> {
        Conversations { store: self }
    }
}

impl Conversations<'_> {
    /// The send opened a conversation: the session stays open, unleased,
    /// until the agent ends it, the contact goes quiet past the timeout or
    /// the provider reports the call over.
    pub async fn open_conversation(
        self,
        communication_id: &str,
        alternative: &str,
        channel: &str,
        conversation: &Conversation<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE communications SET alternative = $1, channel = $2, integration_id = $3, agent_id = $4, session_address = $5, \
             provider_ref = $6, last_activity_at = $7, lease_until = NULL \
             WHERE id = $8 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(alternative)
        .bind(channel)
        .bind(conversation.integration_id)
        .bind(conversation.agent_id)
        .bind(conversation.address)
        .bind(conversation.provider_ref)
        .bind(micros(now))
        .bind(communication_id)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Appends a message to a session's transcript. An inbound message the
    /// provider sent before (same `provider_message_id` on the integration)
    /// is not stored again: returns `false`.
    pub async fn append_message(
        self,
        tenant_id: &str,
        communication_id: &str,
        integration_id: Option<&str>,
        message: &Message,
        provider_message_id: Option<&str>,
    ) -> Result<bool> {
        let done = append_message(tenant_id, communication_id, integration_id, message, provider_message_id).execute(&self.store.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// A session's messages in order.
    pub async fn transcript(self, tenant_id: &str, communication_id: &str) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT communication_id, role, content, sent_at FROM messages WHERE communication_id = $1 AND tenant_id = $2 ORDER BY sent_at, id",
        )
        .bind(communication_id)
        .bind(tenant_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(message).collect()
    }

    /// The open session on `integration_id` whose contact writes from
    /// `address` — the latest one, if a contact has several.
    pub async fn session_at_address(self, tenant_id: &str, integration_id: &str, address: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM communications WHERE integration_id = $1 AND session_address = $2 AND tenant_id = $3 \
             AND status = 'IN_PROGRESS' AND session_ended_at IS NULL ORDER BY last_activity_at DESC LIMIT 1",
        )
        .bind(integration_id)
        .bind(address)
        .bind(tenant_id)
        .fetch_optional(&self.store.pool)
        .await?;
        row.map(|row| get(&row, "id")).transpose()
    }

    /// The open session whose first message or call the provider knows as
    /// `provider_ref`.
    pub async fn session_of_provider_ref(self, tenant_id: &str, integration_id: &str, provider_ref: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM communications WHERE integration_id = $1 AND provider_ref = $2 AND tenant_id = $3 \
             AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
        )
        .bind(integration_id)
        .bind(provider_ref)
        .bind(tenant_id)
        .fetch_optional(&self.store.pool)
        .await?;
        row.map(|row| get(&row, "id")).transpose()
    }

    /// The contact wrote: the session awaits the agent's answer (from the
    /// first unanswered message on) and counts as active.
    pub async fn await_answer(self, communication_id: &str, at: DateTime<Utc>) -> Result<()> {
        await_answer(communication_id, at).execute(&self.store.pool).await?;
        Ok(())
    }

    /// Claims open sessions of RUNNING campaigns whose contact awaits an
    /// answer, leasing them until `lease_until`: shared fairly among
    /// tenants, then campaigns (`fair.rs`); each campaign's longest
    /// waiting first.
    pub async fn claim_awaiting_answers(self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> Result<Vec<OpenSession>> {
        let queue = OpenQueue { filter: "c.awaiting_answer_since IS NOT NULL", order: "c.awaiting_answer_since" };
        self.claim_open_sessions(queue, &[micros(now), micros(lease_until)], limit).await
    }

    /// Claims open conversations of RUNNING campaigns with no activity since
    /// `quiet_since`, to be ended for inactivity: shared fairly like
    /// [`Conversations::claim_awaiting_answers`]; each campaign's quietest
    /// first.
    pub async fn claim_inactive_sessions(
        self,
        now: DateTime<Utc>,
        quiet_since: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OpenSession>> {
        let queue = OpenQueue {
            filter: "c.awaiting_answer_since IS NULL AND c.session_address IS NOT NULL AND c.last_activity_at < $3",
            order: "c.last_activity_at",
        };
        self.claim_open_sessions(queue, &[micros(now), micros(lease_until), micros(quiet_since)], limit).await
    }

    /// Claims up to `limit` open sessions of `queue`; `parameters` are `$1`
    /// now, `$2` the lease's end, and what the queue's filter reads.
    async fn claim_open_sessions(self, queue: OpenQueue, parameters: &[i64], limit: i64) -> Result<Vec<OpenSession>> {
        let waiting = self.waiting_in(&queue, parameters).await?;
        if waiting.is_empty() || limit <= 0 {
            return Ok(Vec::new());
        }
        let lock = self.store.skip_locked();
        let statement = |selects: &str| {
            format!("UPDATE communications SET answer_lease_until = $2 WHERE {} RETURNING {OPEN_SESSION_COLUMNS}", self.store.id_among(selects))
        };
        let select = |_: &Waiting, id: usize, share: usize| {
            format!(
                "SELECT c.id FROM communications c JOIN campaigns p ON p.id = c.campaign_id \
                 WHERE c.campaign_id = ${id} AND p.status = 'RUNNING' AND {OPEN} AND {} ORDER BY {} LIMIT ${share} {lock}",
                queue.filter, queue.order
            )
        };
        let claim = fair::Claim { statement: &statement, select: &select, parameters };
        let mut tx = self.store.begin_write().await?;
        let claimed = fair::claim(&mut tx, claim, waiting, limit, parameters[0] as u64, open_session, |s| s.campaign_id.as_str()).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// RUNNING campaigns with sessions in `queue` that no node holds: a
    /// look into one index per campaign.
    async fn waiting_in(self, queue: &OpenQueue, parameters: &[i64]) -> Result<Vec<Waiting>> {
        let sql = format!(
            "SELECT p.id, p.tenant_id FROM campaigns p WHERE p.status = 'RUNNING' AND EXISTS ( \
               SELECT 1 FROM communications c WHERE c.campaign_id = p.id AND {OPEN} AND {})",
            queue.filter
        );
        let mut query = sqlx::query(&sql);
        for value in parameters {
            query = query.bind(*value);
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        rows.iter().map(|row| Ok(Waiting { campaign_id: get(row, "id")?, tenant_id: get(row, "tenant_id")?, expired: false })).collect()
    }

    /// The agent answered the transcript it read, in which the contact had
    /// written `contact_messages_seen` messages: the session no longer
    /// awaits an answer — unless the contact wrote again meanwhile. A
    /// message arriving then finds the session already awaiting (its
    /// `awaiting_answer_since` is kept so retries keep their idempotency
    /// key), so it is counted here: the session awaits again from `now`,
    /// a new key, and the next tick answers it.
    pub async fn answered(self, communication_id: &str, awaiting_since: DateTime<Utc>, contact_messages_seen: usize, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE communications SET awaiting_answer_since = CASE \
               WHEN awaiting_answer_since IS NULL OR awaiting_answer_since <> $1 THEN awaiting_answer_since \
               WHEN (SELECT COUNT(*) FROM messages m WHERE m.communication_id = $3 AND m.role = 'CONTACT') > $4 THEN $2 \
               ELSE NULL END, \
             answer_lease_until = NULL, last_activity_at = $2 WHERE id = $3",
        )
        .bind(micros(awaiting_since))
        .bind(micros(now))
        .bind(communication_id)
        .bind(i64::try_from(contact_messages_seen).unwrap_or(i64::MAX))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Gives a claimed open session back (the LLM is down, say) so the next
    /// tick tries again.
    pub async fn release_open_session(self, communication_id: &str) -> Result<()> {
        sqlx::query("UPDATE communications SET answer_lease_until = NULL WHERE id = $1")
            .bind(communication_id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Ends an open session with its results; only once, whoever ends it.
    pub async fn end_conversation(self, communication_id: &str, session_results: &JsonMap, now: DateTime<Utc>) -> Result<bool> {
        let done = end_conversation(communication_id, crate::to_json(session_results)?, now).execute(&self.store.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Keeps an inbound event that matched no open session, for a session
    /// whose send is under way to take when it opens ([`Conversations::adopt_early_inbound`]).
    /// Kept events older than a day are deleted here.
    pub async fn keep_early_inbound(self, tenant_id: &str, integration_id: &str, event: &EarlyInbound<'_>, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("DELETE FROM early_inbound WHERE received_at < $1")
            .bind(micros(now - chrono::Duration::days(1)))
            .execute(&self.store.pool)
            .await?;
        let (address, content, provider_message_id, provider_ref, session_results) = match event {
            EarlyInbound::Message { address, content, provider_message_id } => (Some(*address), Some(*content), Some(*provider_message_id), None, None),
            EarlyInbound::Status { provider_ref, session_results } => (None, None, None, Some(*provider_ref), Some(crate::to_json(session_results)?)),
        };
        sqlx::query(
            "INSERT INTO early_inbound (id, tenant_id, integration_id, address, content, provider_message_id, provider_ref, session_results, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(new_id("inb"))
        .bind(tenant_id)
        .bind(integration_id)
        .bind(address)
        .bind(content)
        .bind(provider_message_id)
        .bind(provider_ref)
        .bind(session_results)
        .bind(micros(now))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Moves the kept events of `address` or `provider_ref` on an
    /// integration that arrived at or after `since` into the session
    /// `communication_id`, as if they had arrived after it opened:
    /// messages join its transcript and await the agent's answer, a call's
    /// final status ends it. Each kept event is taken once, whoever calls
    /// this (the engine opening the session, or the webhook that kept it
    /// and then found the session). Returns how many events it took.
    pub async fn adopt_early_inbound(
        self,
        tenant_id: &str,
        communication_id: &str,
        integration_id: &str,
        address: Option<&str>,
        provider_ref: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<usize> {
        let mut tx = self.store.begin_write().await?;
        let kept = sqlx::query(
            "DELETE FROM early_inbound WHERE tenant_id = $1 AND integration_id = $2 AND received_at >= $3 \
             AND (address = $4 OR provider_ref = $5) \
             RETURNING content, provider_message_id, session_results, received_at",
        )
        .bind(tenant_id)
        .bind(integration_id)
        .bind(micros(since))
        .bind(address)
        .bind(provider_ref)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(kept.len());
        for row in &kept {
            let received_at = from_micros(get(row, "received_at")?)?;
            let results: Option<String> = get(row, "session_results")?;
            let message: Option<(String, String)> = get::<Option<String>>(row, "content")?.zip(get(row, "provider_message_id")?);
            events.push((received_at, message, results));
        }
        events.sort_by_key(|(received_at, ..)| *received_at);
        for (received_at, message, results) in events {
            if let Some(results) = results {
                end_conversation(communication_id, results, received_at).execute(&mut *tx).await?;
            } else if let Some((content, provider_message_id)) = message {
                let message = Message { role: MessageRole::Contact, content, sent_at: received_at, communication_id: None };
                let stored = append_message(tenant_id, communication_id, Some(integration_id), &message, Some(&provider_message_id))
                    .execute(&mut *tx)
                    .await?;
                if stored.rows_affected() == 1 {
                    await_answer(communication_id, received_at).execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(kept.len())
    }
}

/// Every message of a contact's sessions, in order.
pub(crate) async fn contact_messages(connection: &mut sqlx::AnyConnection, tenant_id: &str, contact_id: &str) -> Result<Vec<Message>> {
    let rows = sqlx::query(
        "SELECT m.communication_id, m.role, m.content, m.sent_at FROM messages m JOIN communications c ON c.id = m.communication_id \
         WHERE c.contact_id = $1 AND m.tenant_id = $2 ORDER BY m.sent_at, m.id",
    )
    .bind(contact_id)
    .bind(tenant_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(message).collect()
}

/// An inbound event kept until its session opens.
#[derive(Debug, Clone, Copy)]
pub enum EarlyInbound<'a> {
    /// The contact wrote `content` from `address`.
    Message { address: &'a str, content: &'a str, provider_message_id: &'a str },
    /// The call or message `provider_ref` ended with these session results.
    Status { provider_ref: &'a str, session_results: &'a JsonMap },
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn append_message<'q>(
    tenant_id: &'q str,
    communication_id: &'q str,
    integration_id: Option<&'q str>,
    message: &'q Message,
    provider_message_id: Option<&'q str>,
) -> AnyQuery<'q> {
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, communication_id, integration_id, role, content, sent_at, provider_message_id) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM communications WHERE id = $3 AND tenant_id = $2 \
         ON CONFLICT DO NOTHING",
    )
    .bind(new_id("msg"))
    .bind(tenant_id)
    .bind(communication_id)
    .bind(integration_id)
    .bind(role_name(message.role))
    .bind(message.content.as_str())
    .bind(micros(message.sent_at))
    .bind(provider_message_id)
}

fn await_answer(communication_id: &str, at: DateTime<Utc>) -> AnyQuery<'_> {
    sqlx::query(
        "UPDATE communications SET awaiting_answer_since = COALESCE(awaiting_answer_since, $1), last_activity_at = $1 \
         WHERE id = $2 AND session_ended_at IS NULL",
    )
    .bind(micros(at))
    .bind(communication_id)
}

fn end_conversation(communication_id: &str, session_results: String, at: DateTime<Utc>) -> AnyQuery<'_> {
    sqlx::query(
        "UPDATE communications SET session_results = $1, session_ended_at = $2, awaiting_answer_since = NULL, \
         answer_lease_until = NULL, lease_until = NULL WHERE id = $3 AND status = 'IN_PROGRESS' AND session_ended_at IS NULL",
    )
    .bind(session_results)
    .bind(micros(at))
    .bind(communication_id)
}

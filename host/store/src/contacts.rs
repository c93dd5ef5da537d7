//! Contacts and their communications. A contact and its communications are
//! written in one transaction, batched: an import never leaves a contact
//! half-written.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use stratagem_domain::{Communication, CommunicationState, CommunicationStatus, Contact};

use crate::{from_micros, get, json_map, micros, new_id, Result, Store, StoreError};

/// A stored contact with the platform's bookkeeping.
#[derive(Debug, Clone, Serialize)]
pub struct StoredContact {
    pub id: String,
    #[serde(flatten)]
    pub contact: Contact,
    /// The last strategy failure for this contact (traceback, input).
    pub last_error: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of the contacts table view.
#[derive(Debug, Clone, Serialize)]
pub struct ContactSummary {
    pub id: String,
    pub object_id: String,
    pub external_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub current_stage: Option<String>,
    pub communication_count: i64,
    pub result_flag: Option<bool>,
    /// The latest outcome reported by a session (`results.last_outcome`).
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub stage: Option<String>,
    /// Matches object id, external id, name, email or phone (substring).
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Inserted,
    Updated,
}

fn status_text(status: CommunicationStatus) -> &'static str {
    match status {
        CommunicationStatus::Planned => "PLANNED",
        CommunicationStatus::InProgress => "IN_PROGRESS",
        CommunicationStatus::Completed => "COMPLETED",
        CommunicationStatus::Missed => "MISSED",
        CommunicationStatus::Failed => "FAILED",
        CommunicationStatus::Cancelled => "CANCELLED",
    }
}

fn parse_status(text: &str) -> Result<CommunicationStatus> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|_| StoreError::Corrupt(format!("communication status {text}")))
}

fn flag(value: Option<bool>) -> Option<i64> {
    value.map(i64::from)
}

impl Store {
    /// Inserts or replaces contacts (matched by object id) with their
    /// communications, in one transaction for the whole batch.
    pub async fn upsert_contacts(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        contacts: &[(Contact, Option<serde_json::Value>)],
    ) -> Result<Vec<UpsertOutcome>> {
        let mut tx = self.pool.begin().await?;
        let now = micros(Utc::now());
        let mut outcomes = Vec::with_capacity(contacts.len());
        for (contact, last_error) in contacts {
            let existing = sqlx::query("SELECT id FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND object_id = $3")
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(&contact.object_id)
                .fetch_optional(&mut *tx)
                .await?;
            let parameters = serde_json::Value::Object(contact.parameters.clone()).to_string();
            let internal = serde_json::Value::Object(contact.internal_data.clone()).to_string();
            let results = serde_json::Value::Object(contact.results.clone()).to_string();
            let error = last_error.as_ref().map(|e| e.to_string());
            let id = match existing {
                Some(row) => {
                    let id: String = get(&row, "id")?;
                    sqlx::query(
                        "UPDATE contacts SET external_id = $1, name = $2, email = $3, phone = $4, parameters = $5, \
                         current_stage = $6, internal_data = $7, results = $8, result_flag = $9, result_datetime = $10, \
                         communication_count = $11, last_error = $12, updated_at = $13 WHERE id = $14",
                    )
                    .bind(&contact.external_id)
                    .bind(&contact.name)
                    .bind(&contact.email)
                    .bind(&contact.phone)
                    .bind(parameters)
                    .bind(&contact.current_stage)
                    .bind(internal)
                    .bind(results)
                    .bind(flag(contact.result_flag))
                    .bind(contact.result_datetime.map(micros))
                    .bind(contact.communications.len() as i64)
                    .bind(error)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM communications WHERE contact_id = $1").bind(&id).execute(&mut *tx).await?;
                    outcomes.push(UpsertOutcome::Updated);
                    id
                }
                None => {
                    let id = new_id("ctc");
                    sqlx::query(
                        "INSERT INTO contacts (id, tenant_id, campaign_id, object_id, external_id, name, email, phone, \
                         parameters, current_stage, internal_data, results, result_flag, result_datetime, \
                         communication_count, last_error, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
                    )
                    .bind(&id)
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(&contact.object_id)
                    .bind(&contact.external_id)
                    .bind(&contact.name)
                    .bind(&contact.email)
                    .bind(&contact.phone)
                    .bind(parameters)
                    .bind(&contact.current_stage)
                    .bind(internal)
                    .bind(results)
                    .bind(flag(contact.result_flag))
                    .bind(contact.result_datetime.map(micros))
                    .bind(contact.communications.len() as i64)
                    .bind(error)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    outcomes.push(UpsertOutcome::Inserted);
                    id
                }
            };
            for (position, comm) in contact.communications.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO communications (id, tenant_id, campaign_id, contact_id, position, name, stage_name, \
                     start_date, end_date, status, status_detail, status_updated_at, flagged, alternative, parameters) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(comm.id.clone().unwrap_or_else(|| new_id("com")))
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(&id)
                .bind(position as i64)
                .bind(&comm.name)
                .bind(&comm.stage_name)
                .bind(micros(comm.start_date))
                .bind(comm.end_date.map(micros))
                .bind(status_text(comm.status.status))
                .bind(&comm.status.detail)
                .bind(comm.status.updated_at.map(micros))
                .bind(i64::from(comm.flagged))
                .bind(&comm.alternative)
                .bind(serde_json::Value::Object(comm.parameters.clone()).to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    pub async fn contact(&self, tenant_id: &str, campaign_id: &str, object_id: &str) -> Result<StoredContact> {
        self.find_contact(tenant_id, campaign_id, object_id).await?.ok_or(StoreError::NotFound("contact"))
    }

    pub async fn find_contact(&self, tenant_id: &str, campaign_id: &str, object_id: &str) -> Result<Option<StoredContact>> {
        let row = sqlx::query(
            "SELECT id, object_id, external_id, name, email, phone, parameters, current_stage, internal_data, results, \
             result_flag, result_datetime, last_error, created_at, updated_at \
             FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND object_id = $3",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(object_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = get(&row, "id")?;
        let comms = sqlx::query(
            "SELECT id, name, stage_name, start_date, end_date, status, status_detail, status_updated_at, flagged, \
             alternative, parameters FROM communications WHERE contact_id = $1 ORDER BY position",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(stored_contact(&row, comms.iter().map(communication).collect::<Result<_>>()?)?))
    }

    pub async fn list_contacts(&self, tenant_id: &str, campaign_id: &str, filter: &ContactFilter) -> Result<(Vec<ContactSummary>, i64)> {
        self.campaign(tenant_id, campaign_id).await?;
        let search = filter.search.as_ref().map(|s| format!("%{}%", s.replace('%', "").replace('_', "")));
        let condition = "tenant_id = $1 AND campaign_id = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR current_stage = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR object_id LIKE $4 OR external_id LIKE $4 OR name LIKE $4 OR email LIKE $4 OR phone LIKE $4)";
        let total = sqlx::query(&format!("SELECT COUNT(*) AS total FROM contacts WHERE {condition}"))
            .bind(tenant_id)
            .bind(campaign_id)
            .bind(&filter.stage)
            .bind(&search)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT id, object_id, external_id, name, email, phone, current_stage, communication_count, result_flag, results \
             FROM contacts WHERE {condition} ORDER BY object_id LIMIT $5 OFFSET $6"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(&filter.stage)
        .bind(&search)
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&self.pool)
        .await?;
        let summaries = rows
            .iter()
            .map(|row| {
                let results = json_map(&get::<String>(row, "results")?)?;
                Ok(ContactSummary {
                    id: get(row, "id")?,
                    object_id: get(row, "object_id")?,
                    external_id: get(row, "external_id")?,
                    name: get(row, "name")?,
                    email: get(row, "email")?,
                    phone: get(row, "phone")?,
                    current_stage: get(row, "current_stage")?,
                    communication_count: get(row, "communication_count")?,
                    result_flag: get::<Option<i64>>(row, "result_flag")?.map(|v| v != 0),
                    outcome: results.get("last_outcome").and_then(|v| v.as_str()).map(str::to_owned),
                })
            })
            .collect::<Result<_>>()?;
        Ok((summaries, get(&total, "total")?))
    }

    /// Every contact of a campaign, with communications, for export.
    pub async fn export_contacts(&self, tenant_id: &str, campaign_id: &str) -> Result<Vec<Contact>> {
        let (summaries, _) = self
            .list_contacts(tenant_id, campaign_id, &ContactFilter { limit: i64::MAX, ..ContactFilter::default() })
            .await?;
        let mut contacts = Vec::with_capacity(summaries.len());
        for summary in summaries {
            contacts.push(self.contact(tenant_id, campaign_id, &summary.object_id).await?.contact);
        }
        Ok(contacts)
    }
}

fn stored_contact(row: &AnyRow, communications: Vec<Communication>) -> Result<StoredContact> {
    Ok(StoredContact {
        id: get(row, "id")?,
        contact: Contact {
            object_id: get(row, "object_id")?,
            external_id: get(row, "external_id")?,
            name: get(row, "name")?,
            email: get(row, "email")?,
            phone: get(row, "phone")?,
            parameters: json_map(&get::<String>(row, "parameters")?)?,
            current_stage: get(row, "current_stage")?,
            internal_data: json_map(&get::<String>(row, "internal_data")?)?,
            results: json_map(&get::<String>(row, "results")?)?,
            result_flag: get::<Option<i64>>(row, "result_flag")?.map(|v| v != 0),
            result_datetime: get::<Option<i64>>(row, "result_datetime")?.map(from_micros).transpose()?,
            communications,
        },
        last_error: get::<Option<String>>(row, "last_error")?
            .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn communication(row: &AnyRow) -> Result<Communication> {
    Ok(Communication {
        id: Some(get(row, "id")?),
        name: get(row, "name")?,
        stage_name: get(row, "stage_name")?,
        start_date: from_micros(get(row, "start_date")?)?,
        end_date: get::<Option<i64>>(row, "end_date")?.map(from_micros).transpose()?,
        status: CommunicationState {
            status: parse_status(&get::<String>(row, "status")?)?,
            detail: get(row, "status_detail")?,
            updated_at: get::<Option<i64>>(row, "status_updated_at")?.map(from_micros).transpose()?,
        },
        flagged: get::<i64>(row, "flagged")? != 0,
        alternative: get(row, "alternative")?,
        parameters: json_map(&get::<String>(row, "parameters")?)?,
    })
}
